"""Tags through `mediafile` (beets' cross-format layer over mutagen): each field is declared once with its
storage per format — ID3v2.4 (TXXX for custom fields) in MP3 and WAV, Vorbis comments in FLAC/OGG, MP4
atoms with freeform `----:com.apple.iTunes:NAME` in M4A. WAV also gets a RIFF LIST-INFO chunk, which
some Windows tools read instead of ID3. Written tags are read back; a difference fails the file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from mediafile import MediaField, MediaFile, MP3DescStorageStyle, MP3StorageStyle, MP4StorageStyle, StorageStyle

from tasks.delivery.riff import RiffError, write_chunks
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
    # Provenance (tasks/delivery/provenance.py): the AI marks for readers that speak neither C2PA nor XMP.
    "digital_source_type": Tag(custom="DIGITAL_SOURCE_TYPE"),  # the IPTC term, as in the C2PA manifest
    "ai_statement": Tag(custom="AI_GENERATED"),
    "processing": Tag(custom="PROCESSING"),
    "pipeline_version": Tag(custom="TRACKFOUNDRY_VERSION"),
    "prompt_sha256": Tag(custom="PROMPT_SHA256"),
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


def _as_stored(name: str, value: str) -> Any:
    if name == "bpm":
        return int(round(float(value)))
    if name == "date":
        return dt.date.fromisoformat(value)
    return value


def tag_text(name: str, value: str) -> str:
    """How a value reads back: BPM as a whole number, dates in ISO form, the rest verbatim."""
    stored = _as_stored(name, value)
    return stored.isoformat() if isinstance(stored, dt.date) else str(stored)


def _write_riff_info(path: Path, values: dict[str, str]) -> None:
    """Set the LIST-INFO strings of a WAV (tasks/delivery/riff.py edits its chunks: every other chunk, the
    `fmt ` and `data` chunks included, is copied byte for byte, so the audio keeps its sample format and its
    samples). INFO entries of other fields are kept; the strings are UTF-8, as libsndfile writes and reads
    them. The LIST-INFO chunk goes right before `data`, where every reader finds it."""
    new = {info_id: values[name].encode("utf-8") + b"\0" for name, info_id in RIFF_INFO.items() if values.get(name)}
    try:
        write_chunks(path, info=new)
    except RiffError as exc:
        raise TagMismatch(f"{path.name}: {exc}") from exc


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
    wrong = [k for k, v in values.items() if v and back.get(k) != tag_text(k, v)]
    if wrong:
        raise TagMismatch(f"{path.name}: tags {wrong} did not read back as written")

