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

_FREEFORM = "----:com.apple.iTunes:"


class TagMismatch(Exception):
    pass


def _custom(name: str, id3_frame: str | None = None) -> MediaField:
    id3 = MP3StorageStyle(id3_frame) if id3_frame else MP3DescStorageStyle(name)
    return MediaField(id3, MP4StorageStyle(_FREEFORM + name), StorageStyle(name))


# Library-music and re-render fields mediafile has no name for: (attribute, storage name, ID3 frame).
CUSTOM_FIELDS: tuple[tuple[str, str, str | None], ...] = (
    ("tf_version", "VERSION", "TIT3"),
    ("tf_mood", "MOOD", "TMOO"),
    ("tf_description", "DESCRIPTION_TEXT", None),
    ("tf_keywords", "KEYWORDS", None),
    ("tf_seed", "SEED", None),
    ("tf_prompt", "PROMPT", None),
    ("tf_prompt_strength", "PROMPT_STRENGTH", None),
    ("tf_balance_strength", "BALANCE_STRENGTH", None),
    ("tf_tags", "TAGS", None),
    ("tf_generation_id", "GENERATION_ID", None),
    ("tf_provider", "PROVIDER", None),
    ("tf_request_fingerprint", "REQUEST_FINGERPRINT", None),
)
for _attribute, _name, _frame in CUSTOM_FIELDS:
    if _attribute not in MediaFile.fields():
        MediaFile.add_field(_attribute, _custom(_name, _frame))

# Our names for the fields → mediafile attributes.
FIELD_ATTRIBUTES: dict[str, str] = {
    "title": "title",
    "artist": "artist",
    "composer": "composer",
    "publisher": "label",
    "album": "album",
    "genre": "genre",
    "bpm": "bpm",
    "comment": "comments",
    "lyrics": "lyrics",
    "date": "date",
    "isrc": "isrc",
    "key": "initial_key",
    **{name.lower().removesuffix("_text"): attribute for attribute, name, _ in CUSTOM_FIELDS},
}
# RIFF INFO ids (WAV) that soundfile writes, for the fields a Windows tool shows.
_RIFF_INFO = {"title": "title", "artist": "artist", "album": "album", "genre": "genre", "comment": "comment",
              "date": "date"}


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


def _write_riff_info(path: Path, values: dict[str, str]) -> None:
    """Rewrite the WAV with LIST-INFO strings (libsndfile writes them only while creating a file)."""
    import soundfile as sf

    data, rate = sf.read(path, dtype="int16", always_2d=True)
    tmp = path.with_suffix(".riff.tmp")
    with sf.SoundFile(tmp, "w", samplerate=rate, channels=data.shape[1], format="WAV", subtype="PCM_16") as out:
        for name, attribute in _RIFF_INFO.items():
            if values.get(name):
                setattr(out, attribute, values[name])
        out.write(data)
    tmp.replace(path)


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


def read_riff_info(path: Path) -> dict[str, str]:
    import soundfile as sf

    with sf.SoundFile(path) as wav:
        return {name: getattr(wav, attribute) for name, attribute in _RIFF_INFO.items() if getattr(wav, attribute)}


def tag_and_verify(path: Path, values: dict[str, str]) -> None:
    """Write, read back, and fail on any difference: a file whose tags did not stick is not done."""
    write_tags(path, values)
    back = read_tags(path)
    wrong = [k for k, v in values.items() if v and back.get(k) != _as_text(k, v)]
    if wrong:
        raise TagMismatch(f"{path.name}: tags {wrong} did not read back as written")

