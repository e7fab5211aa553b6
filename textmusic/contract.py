"""The Text-to-Music API contract: the one source of truth for requests, tracks, formats, rules and pricing.

Used alike by the brief validator, the client and the local service, so that what the pipeline
accepts is exactly what a provider accepts. Imports nothing of ours.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

SUBMIT_PATH = "/api/v1/text-to-music"
STATUS_PATH = "/api/v1/text-to-music/{id}"
# EXTENSION (local service): a submission repeated with the same key and body answers the first
# submission's tracks instead of charging again, so a client that lost the answer can safely retry.
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"[\x21-\x7e]{1,255}"
# EXTENSION (local service): /healthz says in this header how many tracks are worth having in flight.
CAPACITY_HEADER = "X-TextMusic-Capacity"


@dataclass(frozen=True)
class AudioFormat:
    """Everything about one output format, declared once: the contract, the service, the encoder, the
    pipeline's audio check, re-render and the catalog page all read it from `FORMATS`."""

    name: str  # the contract's `output_format` word
    extension: str  # of the file, without the dot
    media_type: str  # the Content-Type it is served with and what `<audio>` is told
    encoder: Literal["soundfile", "pyav", "lame"]  # which library writes it
    container: str  # the writer's container: soundfile's major format or PyAV's muxer
    codec: str  # the writer's codec: soundfile's subtype or PyAV's encoder
    probe_container: str  # the container name PyAV reports when it reads the file back
    lossless: bool  # decodes to exactly the samples encoded
    bit_rates: tuple[str, ...] = ()  # kbps a request may ask for; empty: output_bit_rate is refused
    default_bit_rate: str | None = None  # kbps when a request asks for none
    bit_depth: int | None = None  # bits per sample of a lossless file

    def bit_rate_for(self, asked: str | None) -> str | None:
        """The bit rate a file of this format is encoded at: the one asked, else the default."""
        return (asked or self.default_bit_rate) if self.bit_rates else None


_KBPS = ("128", "192", "256", "320")
_LOSSY_DEFAULT_KBPS = "192"

# Ordered as the contract lists them (the request schema's enum keeps this order).
FORMATS: dict[str, AudioFormat] = {
    f.name: f
    for f in (
        AudioFormat("flac", "flac", "audio/flac", "soundfile", "FLAC", "PCM_16", "flac", True, bit_depth=16),
        AudioFormat("mp3", "mp3", "audio/mpeg", "lame", "mp3", "libmp3lame", "mp3", False, _KBPS,
                    _LOSSY_DEFAULT_KBPS),
        AudioFormat("wav", "wav", "audio/wav", "soundfile", "WAV", "PCM_16", "wav", True, bit_depth=16),
        AudioFormat("ogg", "ogg", "audio/ogg", "soundfile", "OGG", "VORBIS", "ogg", False),
        AudioFormat("m4a", "m4a", "audio/mp4", "pyav", "ipod", "aac", "mov,mp4,m4a,3gp,3g2,mj2", False, _KBPS,
                    _LOSSY_DEFAULT_KBPS),
    )
}

OUTPUT_FORMATS: tuple[str, ...] = tuple(FORMATS)
BIT_RATE_FORMATS: tuple[str, ...] = tuple(name for name, f in FORMATS.items() if f.bit_rates)
BIT_RATES: tuple[str, ...] = tuple(sorted({kbps for f in FORMATS.values() for kbps in f.bit_rates}, key=int))
LOSSLESS_FORMATS: tuple[str, ...] = tuple(name for name, f in FORMATS.items() if f.lossless)
NUM_SONGS: tuple[int, ...] = (1, 2)

# Literal types built from the table (runtime-checked by pydantic; the names live only in FORMATS).
OutputFormat = Literal[OUTPUT_FORMATS]  # type: ignore[valid-type]
BitRate = Literal[BIT_RATES]  # type: ignore[valid-type]
# A track's state, the provider vocabulary every provider's own words are read into (textmusic/providers).
TrackStatus = Literal["pending", "ready", "failed"]
TRACK_STATUSES: tuple[TrackStatus, ...] = get_args(TrackStatus)
PENDING, READY, FAILED = TRACK_STATUSES

DEFAULT_PROMPT_STRENGTH = 2.0
DEFAULT_BALANCE_STRENGTH = 0.7
DEFAULT_FORMAT: OutputFormat = "wav"

PROMPT_STRENGTH_RANGE = (0.0, 10.0)
BALANCE_STRENGTH_RANGE = (0.0, 1.0)
BPM_RANGE = (40.0, 240.0)
SEED_MAX = 2**32 - 1
MAX_PROMPT_CHARS = 2000
MAX_NAME_CHARS = 200
MAX_LYRICS_CHARS = 5000
MAX_TAGS = 32
MAX_TAG_CHARS = 64

# Local-service extension (not in the hosted API): an explicit length for the generated audio.
# Clients send it only to the local provider.
DURATION_RANGE = (10.0, 600.0)
# Upper bound on what a render may add past the requested length (the last chord's release).
RENDER_TAIL_MAX_SECONDS = 4.0
# Upper bound on the engine's own choice of length when the request names none.
DEFAULT_DURATION_MAX_SECONDS = 240.0

# Local-service extension: library versions of each song, rendered natively with it and charged nothing
# extra. A kind is what a request asks for; a version's name is what the answer calls each file (a cut-down
# "30" is named "30s", "stems" gives one "stem:NAME" per part present).
CUT_SECONDS: dict[str, int] = {"60": 60, "30": 30, "15": 15}
LOOP_BARS: dict[str, int] = {"loop4": 4, "loop8": 8, "loop16": 16}
MIXES: tuple[str, ...] = ("stems", "underscore", "nodrums")  # made from the full render's own parts
# Symbolic versions: the composition itself, not audio. "midi" is the score the song was rendered from, as a
# Standard MIDI File (type 1, tempo, time and key signature, one track per part, sung lyrics as lyric events).
MIDI_VERSION = "midi"
SYMBOLIC_VERSIONS: tuple[str, ...] = (MIDI_VERSION,)
VERSION_KINDS: tuple[str, ...] = ("full", *CUT_SECONDS, *LOOP_BARS, *MIXES, *SYMBOLIC_VERSIONS)
MIDI_EXTENSION = "mid"
MIDI_MEDIA_TYPE = "audio/midi"
MAX_MIDI_BYTES = 4 * 1024 * 1024  # far above any score (a 10-minute song is ~0.2 MB): more is not a score
STEM_PARTS: tuple[str, ...] = ("drums", "bass", "harmony", "lead", "vocals")  # as present in the song
# Local-service extension: the musical key a song is composed in ("C", "F#m", "Bbm": a tonic letter, a sharp
# or flat, `m` for minor), as a brief's `key` column spells it. It overrides the key the prompt implies.
KEY_PATTERN = r"[A-G][#b]?m?"
_KEY = re.compile(KEY_PATTERN)
_NOTE_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# The request fields a hosted provider does not know: a client sends them only to the local service.
LOCAL_EXTENSION_FIELDS: tuple[str, ...] = ("duration_seconds", "versions", "key")

PRICE_CENTS_PER_MINUTE = 20

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_CHARS)]


def is_given(value: object) -> bool:
    """'Given' in the contract's sense: present and not empty."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, list | tuple):
        return len(value) > 0
    return True


def combination_error(prompt: object, tags: object, lyrics: object) -> str | None:
    """The contract's input-combination table; returns the reason a combination is refused, or None.

    "lyrics \"\" with prompt or tags is an instrumental": tags with lyrics present but empty ask for an
    instrumental from the tags, so they are not the refused "tags only" (the pairing the page names)."""
    p, t, lyr = is_given(prompt), is_given(tags), is_given(lyrics)
    instrumental = isinstance(lyrics, str) and not lyr
    if p and t and lyr:
        return "prompt, tags and lyrics must never all be given together"
    if not (p or t or lyr):
        return "at least one of prompt, tags, lyrics must be given"
    if lyr and not (p or t):
        return "lyrics must be paired with prompt or tags"
    if t and not (p or lyr or instrumental):
        return 'tags must be paired with prompt or lyrics (lyrics "" for an instrumental)'
    return None


def check_version_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """The asked kinds once each, in VERSION_KINDS order with ``full`` first (always delivered); a word
    that is not a kind is a ValueError naming it."""
    asked = set(kinds)
    unknown = sorted(asked - set(VERSION_KINDS))
    if unknown:
        raise ValueError(f"unknown version kind(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(VERSION_KINDS)}")
    return tuple(kind for kind in VERSION_KINDS if kind == "full" or kind in asked)


def version_name(kind: str) -> str:
    """The name of the version a (non-stems) kind produces: "30" → "30s", "loop8" → "loop8"."""
    return f"{kind}s" if kind in CUT_SECONDS else kind


def stem_name(part: str) -> str:
    return f"stem:{part}"


def version_file_tag(name: str) -> str:
    """A version's name as it may appear in a file name or URL ("stem:drums" → "stem-drums")."""
    return name.replace(":", "-")


def version_media(name: str) -> Literal["audio", "midi"]:
    """What a version's file holds: audio (in the track's output format) or a MIDI file (whatever the format).
    Every reader of versions asks here, so a MIDI version is never decoded, measured or mastered as audio."""
    return "midi" if name in SYMBOLIC_VERSIONS else "audio"


def version_extension(name: str, output_format: str) -> str:
    """The file extension (no dot) of a version of a track in `output_format`: the format's, or ``mid``."""
    return MIDI_EXTENSION if version_media(name) == "midi" else FORMATS[output_format].extension


def version_media_type(name: str, output_format: str) -> str:
    """The Content-Type a version of a track in `output_format` is served with."""
    return MIDI_MEDIA_TYPE if version_media(name) == "midi" else FORMATS[output_format].media_type


def parse_key(key: str) -> tuple[int, Literal["major", "minor"]]:
    """(tonic pitch class, mode) of a key spelled as KEY_PATTERN ("F#m" → (6, "minor")), so the engine and
    the pipeline's key check read one spelling the same way; a ValueError for anything else."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"key must be a musical key like C, F#m or Bbm (got {key!r})")
    shift = {"#": 1, "b": -1}.get(key[1:2], 0)
    return (_NOTE_CLASSES[key[0]] + shift) % 12, "minor" if key.endswith("m") else "major"


def song_seed(seed: int, song_index: int) -> int:
    """Seed of the song at `song_index` of a request: song 0 keeps the request's seed.

    Later songs get seeds derived from it, so re-rendering one song of a pair needs only its own seed.
    """
    if song_index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{song_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def price_cents(duration_seconds: float) -> int:
    """Price of one song: $0.20 per minute of audio, rounded up to a whole cent."""
    return math.ceil(round(duration_seconds * PRICE_CENTS_PER_MINUTE / 60.0, 6))


def duration_upper_bound(duration_seconds: float | None) -> float:
    """The longest a song of a request may last; what a provider reserves funds for."""
    if duration_seconds is None:
        return DEFAULT_DURATION_MAX_SECONDS + RENDER_TAIL_MAX_SECONDS
    return duration_seconds + RENDER_TAIL_MAX_SECONDS


class TextToMusicRequest(BaseModel):
    """Body of `POST /api/v1/text-to-music`."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    tags: list[Tag] | None = Field(None, max_length=MAX_TAGS)
    lyrics: str | None = Field(None, max_length=MAX_LYRICS_CHARS)
    seed: StrictInt | None = Field(None, ge=0, le=SEED_MAX)
    prompt_strength: StrictFloat | StrictInt = Field(
        DEFAULT_PROMPT_STRENGTH, ge=PROMPT_STRENGTH_RANGE[0], le=PROMPT_STRENGTH_RANGE[1]
    )
    balance_strength: StrictFloat | StrictInt = Field(
        DEFAULT_BALANCE_STRENGTH, ge=BALANCE_STRENGTH_RANGE[0], le=BALANCE_STRENGTH_RANGE[1]
    )
    num_songs: Literal[1, 2] = 1
    output_format: OutputFormat = DEFAULT_FORMAT
    output_bit_rate: BitRate | None = None
    bpm: StrictFloat | StrictInt | Literal["auto"] = "auto"
    store_audio: StrictBool = False
    name: str | None = Field(None, max_length=MAX_NAME_CHARS)
    duration_seconds: StrictFloat | StrictInt | None = Field(
        None, ge=DURATION_RANGE[0], le=DURATION_RANGE[1], description="Local-service extension."
    )
    versions: list[str] | None = Field(None, description="Local-service extension: VERSION_KINDS.")
    key: str | None = Field(None, description="Local-service extension: the key, e.g. C, F#m, Bbm.")

    @field_validator("output_bit_rate", mode="before")
    @classmethod
    def _bit_rate_as_string(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("versions")
    @classmethod
    def _known_version_kinds(cls, value: list[str] | None) -> list[str] | None:
        # Canonical (full first, each once, the table's order), so equal asks are equal requests;
        # an empty list asks for nothing beyond the song itself.
        return list(check_version_kinds(value)) if value else None

    @field_validator("key")
    @classmethod
    def _key_is_a_key(cls, value: str | None) -> str | None:
        if value is not None:
            parse_key(value)
        return value

    @field_validator("num_songs", mode="before")
    @classmethod
    def _num_songs_is_an_integer(cls, value: Any) -> Any:
        # Literal[1, 2] alone takes true and 1.0 for 1 (they compare equal).
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("num_songs must be the integer 1 or 2")
        return value

    @field_validator("bpm")
    @classmethod
    def _bpm_in_range(cls, value: float | str) -> float | str:
        if value != "auto" and not BPM_RANGE[0] <= float(value) <= BPM_RANGE[1]:
            raise ValueError(f"bpm must be 'auto' or a number from {BPM_RANGE[0]:g} to {BPM_RANGE[1]:g}")
        return value

    @model_validator(mode="after")
    def _rules(self) -> TextToMusicRequest:
        reason = combination_error(self.prompt, self.tags, self.lyrics)
        if reason:
            raise ValueError(f"invalid input combination: {reason}")
        allowed = FORMATS[self.output_format].bit_rates
        if self.output_bit_rate is not None and not allowed:
            raise ValueError(
                f"output_bit_rate is only allowed with {' or '.join(BIT_RATE_FORMATS)}, "
                f"not {self.output_format}"
            )
        if self.output_bit_rate is not None and self.output_bit_rate not in allowed:
            raise ValueError(f"output_bit_rate for {self.output_format} must be one of {', '.join(allowed)}")
        return self

    @property
    def is_instrumental(self) -> bool:
        return not is_given(self.lyrics)

    def for_song(self, song_index: int) -> TextToMusicRequest:
        """The single-song request that renders song `song_index` of this one (seed required)."""
        if self.seed is None:
            raise ValueError("a song is rendered from an explicit seed")
        return self.model_copy(update={"seed": song_seed(self.seed, song_index), "num_songs": 1})

    def max_cost_cents(self) -> int:
        """What a provider reserves at submission: every song at its longest possible length."""
        return self.num_songs * price_cents(duration_upper_bound(self.duration_seconds))


class TrackVersion(BaseModel):
    """EXTENSION (local service): one library version of a ready track, with its own audio."""

    model_config = ConfigDict(extra="allow")

    name: str  # full, 60s, 30s, 15s, loop4, loop8, loop16, stem:drums …, underscore, nodrums, midi
    audio_url: str  # the file's URL (for `midi`, the MIDI file's)
    duration_seconds: float
    # The file's format when it is not the track's output_format: "mid" for the MIDI version (see version_media).
    format: str | None = None


class Track(BaseModel):
    """A track as a provider returns it. The hosted API documents only id, name, audio_url, seed, tags."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str | None = None
    audio_url: str | None = None
    seed: int | None = None
    tags: list[str] | None = None
    status: TrackStatus | None = None
    error: str | None = None
    duration_seconds: float | None = None
    output_format: OutputFormat | None = None
    output_bit_rate: BitRate | None = None
    bpm: float | None = None
    cost_cents: int | None = None
    created_at: str | None = None
    expires_at: str | None = None
    engine_version: str | None = None  # EXTENSION (local service): the engine release that rendered it
    status_word: str | None = None  # the provider's own word for the status, as answered (`status` is ours)
    # EXTENSION (local service): the versions the request asked for, once ready; `full` is the track's audio.
    versions: list[TrackVersion] = []

    def version(self, name: str) -> TrackVersion | None:
        """The listed version called `name` ("full", "30s", "stem:drums" …), or None."""
        return next((v for v in self.versions if v.name == name), None)

    @property
    def effective_status(self) -> TrackStatus:
        """A missing status means ready when there is audio to fetch (the hosted service's reading)."""
        if self.status is not None:
            return self.status
        return READY if self.audio_url else PENDING


class TextToMusicResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    success: bool
    tracks: list[Track]
    cost_cents: int | None = None
    balance_cents: int | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    success: Literal[False] = False
    error: ErrorDetail


ERROR_CODES: dict[int, str] = {
    400: "invalid_input",
    401: "unauthorized",
    402: "insufficient_balance",
    404: "not_found",
    410: "gone",
    429: "rate_limit_exceeded",
    500: "internal_error",
}
