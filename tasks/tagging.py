"""Tags with mutagen, each field declared once with its storage in each format's own convention.

ID3v2.4 (TXXX for custom fields) in MP3 and WAV, Vorbis comments in FLAC and OGG, MP4 atoms with
freeform `----:com.apple.iTunes:NAME` atoms in M4A. Written tags are read back and compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mutagen.flac import FLAC
from mutagen.id3 import COMM, ID3, TALB, TBPM, TCON, TIT2, TXXX
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4FreeForm
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE


class TagMismatch(Exception):
    pass


@dataclass(frozen=True)
class Field:
    name: str
    id3: str  # frame id, or "TXXX" (custom, described by `name`)
    vorbis: str
    mp4: str  # atom, or "----" (freeform, named by `name`)


FIELDS: tuple[Field, ...] = (
    Field("title", "TIT2", "TITLE", "\xa9nam"),
    Field("album", "TALB", "ALBUM", "\xa9alb"),
    Field("genre", "TCON", "GENRE", "\xa9gen"),
    Field("bpm", "TBPM", "BPM", "tmpo"),
    Field("comment", "COMM", "COMMENT", "\xa9cmt"),
    Field("SEED", "TXXX", "SEED", "----"),
    Field("PROMPT", "TXXX", "PROMPT", "----"),
    Field("TAGS", "TXXX", "TAGS", "----"),
    Field("GENERATION_ID", "TXXX", "GENERATION_ID", "----"),
    Field("PROVIDER", "TXXX", "PROVIDER", "----"),
    Field("REQUEST_FINGERPRINT", "TXXX", "REQUEST_FINGERPRINT", "----"),
)
_FRAMES = {"TIT2": TIT2, "TALB": TALB, "TCON": TCON, "TBPM": TBPM}
_FREEFORM = "----:com.apple.iTunes:"


def _open(path: Path, output_format: str):  # noqa: ANN202 - a mutagen file of the format's class
    return {"mp3": MP3, "wav": WAVE, "flac": FLAC, "ogg": OggVorbis, "m4a": MP4}[output_format](path)


def _write_id3(tags: ID3, values: dict[str, str]) -> None:
    for field in FIELDS:
        value = values.get(field.name)
        if not value:
            continue
        if field.id3 == "TXXX":
            tags.setall(f"TXXX:{field.name}", [TXXX(encoding=3, desc=field.name, text=[value])])
        elif field.id3 == "COMM":
            tags.setall("COMM", [COMM(encoding=3, lang="eng", desc="", text=[value])])
        else:
            tags.setall(field.id3, [_FRAMES[field.id3](encoding=3, text=[value])])


def _read_id3(tags: ID3) -> dict[str, str]:
    found = {}
    for field in FIELDS:
        key = f"TXXX:{field.name}" if field.id3 == "TXXX" else ("COMM::eng" if field.id3 == "COMM" else field.id3)
        frame = tags.get(key)
        if frame is not None:
            found[field.name] = str(frame.text[0])
    return found


def write_tags(path: Path, output_format: str, values: dict[str, str]) -> None:
    """Write `values` (field name → text; empty values are left out) into the file in place."""
    audio = _open(path, output_format)
    if output_format in ("mp3", "wav"):
        if audio.tags is None:
            audio.add_tags()
        _write_id3(audio.tags, values)
        audio.save(v2_version=4)
        return
    if output_format == "m4a":
        if audio.tags is None:
            audio.add_tags()
        for field in FIELDS:
            value = values.get(field.name)
            if not value:
                continue
            if field.mp4 == "----":
                audio.tags[_FREEFORM + field.name] = [MP4FreeForm(value.encode("utf-8"))]
            elif field.mp4 == "tmpo":
                audio.tags["tmpo"] = [int(value)]
            else:
                audio.tags[field.mp4] = [value]
        audio.save()
        return
    for field in FIELDS:
        value = values.get(field.name)
        if value:
            audio[field.vorbis] = [value]
    audio.save()


def read_tags(path: Path, output_format: str) -> dict[str, str]:
    audio = _open(path, output_format)
    if audio.tags is None:
        return {}
    if output_format in ("mp3", "wav"):
        return _read_id3(audio.tags)
    found = {}
    for field in FIELDS:
        if output_format == "m4a":
            key = _FREEFORM + field.name if field.mp4 == "----" else field.mp4
            items = audio.tags.get(key)
            if items:
                item = items[0]
                found[field.name] = item.decode("utf-8") if isinstance(item, bytes) else str(item)
        else:
            items = audio.get(field.vorbis)
            if items:
                found[field.name] = items[0]
    return found


def tag_and_verify(path: Path, output_format: str, values: dict[str, str]) -> None:
    """Write, read back, and fail on any difference: a file whose tags did not stick is not done."""
    write_tags(path, output_format, values)
    back = read_tags(path, output_format)
    wrong = [k for k, v in values.items() if v and back.get(k) != v]
    if wrong:
        raise TagMismatch(f"{path.name}: tags {wrong} did not read back as written")
