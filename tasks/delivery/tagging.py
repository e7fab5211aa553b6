"""Tags through `mediafile` (beets' cross-format layer over mutagen): each field is declared once with its
storage per format — ID3v2.4 (TXXX for custom fields) in MP3 and WAV, Vorbis comments in FLAC/OGG, MP4
atoms with freeform `----:com.apple.iTunes:NAME` in M4A. WAV also gets a RIFF LIST-INFO chunk, which
some Windows tools read instead of ID3. Written tags are read back; a difference fails the file.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import struct
from pathlib import Path
from typing import Any, BinaryIO

from mediafile import MediaField, MediaFile, MP3DescStorageStyle, MP3StorageStyle, MP4StorageStyle, StorageStyle

from tasks.intake.fields import METADATA_FIELDS, Tag

_FREEFORM = "----:com.apple.iTunes:"
_CUSTOM_PREFIX = "tf_"  # our attributes on MediaFile, apart from its own


class TagMismatch(Exception):
    pass


# The tags of every file besides the metadata fields (tasks/intake/fields.py): the title, the catalog, and the
# request and answer the ledger keeps, so that the tags say how to re-render the track.
RECORD_TAGS: dict[str, Tag] = {
    "title": Tag(mediafile="title", riff_info="INAM"),
    "album": Tag(mediafile="album", riff_info="IPRD"),
    "genre": Tag(mediafile="genre", riff_info="IGNR"),
    "bpm": Tag(mediafile="bpm"),
    "comment": Tag(mediafile="comments", riff_info="ICMT"),
    "lyrics": Tag(mediafile="lyrics"),
    "date": Tag(mediafile="date", riff_info="ICRD"),
    "seed": Tag(custom="SEED"),
    "prompt": Tag(custom="PROMPT"),
    "prompt_strength": Tag(custom="PROMPT_STRENGTH"),
    "balance_strength": Tag(custom="BALANCE_STRENGTH"),
    "tags": Tag(custom="TAGS"),
    "generation_id": Tag(custom="GENERATION_ID"),
    "provider": Tag(custom="PROVIDER"),
    "request_fingerprint": Tag(custom="REQUEST_FINGERPRINT"),
    "parent": Tag(custom="PARENT"),
}
# Every tag a file gets, by our name: the record's, then the metadata fields.
TAGS: dict[str, Tag] = {**RECORD_TAGS, **{f.name: f.tag for f in METADATA_FIELDS}}


def _custom(tag: Tag) -> MediaField:
    id3 = MP3StorageStyle(tag.id3_frame) if tag.id3_frame else MP3DescStorageStyle(tag.custom)
    return MediaField(id3, MP4StorageStyle(_FREEFORM + tag.custom), StorageStyle(tag.custom))


# Our names for the fields → mediafile attributes (its own, or ours declared on it here, once per process).
FIELD_ATTRIBUTES: dict[str, str] = {name: tag.mediafile or _CUSTOM_PREFIX + name for name, tag in TAGS.items()}
for _name, _tag in TAGS.items():
    if _tag.custom and FIELD_ATTRIBUTES[_name] not in MediaFile.fields():
        MediaFile.add_field(FIELD_ATTRIBUTES[_name], _custom(_tag))
# Our names → RIFF INFO ids (WAV), for the fields a Windows tool shows.
RIFF_INFO: dict[str, bytes] = {name: tag.riff_info.encode("ascii") for name, tag in TAGS.items() if tag.riff_info}
_COPY_BLOCK = 1 << 20


def _as_stored(name: str, value: str) -> Any:
    if name == "bpm":
        return int(round(float(value)))
    if name == "date":
        return dt.date.fromisoformat(value)
    return value


def _as_text(name: str, value: str) -> str:
    """How a value reads back: BPM as a whole number, dates in ISO form, the rest verbatim."""
    stored = _as_stored(name, value)
    return stored.isoformat() if isinstance(stored, dt.date) else str(stored)


def _riff_chunks(fh: BinaryIO, size: int) -> list[tuple[bytes, int, int]]:
    """The top-level chunks of a RIFF WAVE file: (id, offset of the payload, payload size)."""
    fh.seek(0)
    riff, _, form = struct.unpack("<4sI4s", fh.read(12).ljust(12, b"\0"))
    if riff != b"RIFF" or form != b"WAVE":
        raise TagMismatch(f"not a RIFF WAVE file (starts with {riff!r}): cannot write its INFO chunk")
    chunks, pos = [], 12
    while pos + 8 <= size:
        fh.seek(pos)
        chunk_id, length = struct.unpack("<4sI", fh.read(8))
        length = min(length, size - pos - 8)  # a truncated last chunk ends where the file ends
        chunks.append((chunk_id, pos + 8, length))
        pos += 8 + length + (length & 1)
    return chunks


def _info_entries(fh: BinaryIO, offset: int, length: int) -> list[tuple[bytes, bytes]]:
    """The (id, payload) entries of a LIST-INFO chunk whose payload (after "INFO") starts at `offset`."""
    fh.seek(offset)
    body = fh.read(length)
    entries, pos = [], 0
    while pos + 8 <= len(body):
        entry_id, entry_length = struct.unpack_from("<4sI", body, pos)
        entries.append((entry_id, body[pos + 8 : pos + 8 + entry_length]))
        pos += 8 + entry_length + (entry_length & 1)
    return entries


def _chunk(chunk_id: bytes, payload: bytes) -> bytes:
    return struct.pack("<4sI", chunk_id, len(payload)) + payload + b"\0" * (len(payload) & 1)


def _copy(src: BinaryIO, dst: BinaryIO, offset: int, length: int) -> None:
    src.seek(offset)
    while length > 0:
        block = src.read(min(length, _COPY_BLOCK))
        if not block:
            raise TagMismatch("the WAV file changed while its INFO chunk was written")
        dst.write(block)
        length -= len(block)


def _write_riff_info(path: Path, values: dict[str, str]) -> None:
    """Set the LIST-INFO strings of a WAV by editing its RIFF chunks: every other chunk, the `fmt ` and
    `data` chunks included, is copied byte for byte, so the audio keeps its sample format (16/24/32-bit
    PCM or float) and its samples. INFO entries of other fields are kept; the strings are UTF-8, as
    libsndfile writes and reads them. The LIST-INFO chunk goes right before `data`, where every reader
    finds it."""
    new = {info_id: values[name].encode("utf-8") + b"\0" for name, info_id in RIFF_INFO.items() if values.get(name)}
    size = path.stat().st_size
    tmp = path.with_name(path.name + ".riff.tmp")
    try:
        with open(path, "rb") as src:
            chunks = _riff_chunks(src, size)
            if not any(chunk_id == b"data" for chunk_id, _, _ in chunks):
                raise TagMismatch("the WAV file has no data chunk")
            kept: list[tuple[bytes, int, int]] = []
            entries: list[tuple[bytes, bytes]] = []
            for chunk_id, offset, length in chunks:
                src.seek(offset)
                if chunk_id == b"LIST" and length >= 4 and src.read(4) == b"INFO":
                    entries += _info_entries(src, offset + 4, length - 4)
                else:
                    kept.append((chunk_id, offset, length))
            if not new and not entries:
                return  # nothing to write and nothing to move: the file stays as it is
            entries = [(i, payload) for i, payload in entries if i not in new] + list(new.items())
            info = _chunk(b"LIST", b"INFO" + b"".join(_chunk(i, payload) for i, payload in entries))
            total = 4 + len(info) + sum(8 + length + (length & 1) for _, _, length in kept)
            if total > 0xFFFFFFFF:
                raise TagMismatch("the WAV file is too large for a RIFF INFO chunk")
            with open(tmp, "wb") as dst:
                dst.write(struct.pack("<4sI4s", b"RIFF", total, b"WAVE"))
                for chunk_id, offset, length in kept:
                    if chunk_id == b"data":
                        dst.write(info)
                    dst.write(struct.pack("<4sI", chunk_id, length))
                    _copy(src, dst, offset, length)
                    if length & 1:
                        src.seek(offset + length)
                        dst.write(src.read(1) or b"\0")
                dst.flush()
                os.fsync(dst.fileno())
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_tags(path: Path, values: dict[str, str]) -> None:
    """Write `values` (our field name → text; empty values are left out) into the file in place."""
    present = {k: v for k, v in values.items() if v}
    if path.suffix.lower() == ".wav":
        _write_riff_info(path, present)
    media = MediaFile(str(path))
    for name, value in present.items():
        setattr(media, FIELD_ATTRIBUTES[name], _as_stored(name, value))
    media.save()


def read_tags(path: Path) -> dict[str, str]:
    media = MediaFile(str(path))
    found = {}
    for name, attribute in FIELD_ATTRIBUTES.items():
        value = getattr(media, attribute)
        if value not in (None, ""):
            found[name] = value.isoformat() if isinstance(value, dt.date) else str(value)
    return found


def tag_and_verify(path: Path, values: dict[str, str]) -> None:
    """Write, read back, and fail on any difference: a file whose tags did not stick is not done."""
    write_tags(path, values)
    back = read_tags(path)
    wrong = [k for k, v in values.items() if v and back.get(k) != _as_text(k, v)]
    if wrong:
        raise TagMismatch(f"{path.name}: tags {wrong} did not read back as written")

