"""Reading a provider's answers through its profile, tolerantly.

Hosted APIs document their answers in part, so the reader accepts what real services send: status words
from a vocabulary (an unknown word counts as pending), numbers as strings, fields under other names or
nested, unknown fields kept (as extras of the Track). A track that claims to be ready but has no audio
yet is pending. `success: false` inside a 2xx answer is a refusal with the provider's message.
What comes from outside is checked before it is believed: an answer nested deeper than a cap is refused
before parsing, a track id must be usable as one path segment, and a number that is not finite, negative or
absurd (JSON's NaN, Infinity and 1e400 parse as floats) counts as missing, with a warning once per provider
and field.
A track's `versions` are a local-service extension: read from a local service's answer only (a profile
with `local_extensions`); a hosted track lists none.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import threading
from typing import Any

from textmusic.contract import (
    BIT_RATES,
    FAILED,
    OUTPUT_FORMATS,
    PENDING,
    READY,
    TextToMusicResponse,
    Track,
    TrackStatus,
)
from textmusic.providers import Profile

_MISSING = object()
MAX_ID_CHARS = 256
MAX_DEPTH = 64  # no provider's answer nests deeper; a deeper one is hostile (json's recursion, pydantic's)
MAX_SEED = 2**32 - 1
# The plausible range of each number of a track (inclusive); outside it a value counts as missing.
BOUNDS: dict[str, tuple[float, float]] = {
    "duration_seconds": (0.0, 24 * 3600.0),
    "cost_cents": (0.0, 1e9),
    "bpm": (1.0, 1000.0),
    "seed": (0.0, float(MAX_SEED)),
    "balance_cents": (-1e12, 1e12),
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A JSON string, or an unterminated one up to the end (possessive: a hostile text cannot make it rescan).
_STRINGS = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")

log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


class AnswerRefused(ValueError):
    """A 2xx answer that says `success: false`."""


class AnswerUnreadable(ValueError):
    """A 2xx answer in which the profile finds no track."""


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path ("" is `data` itself), or _MISSING."""
    if path == "":
        return data
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def first(data: Any, paths: list[str], song: int = 0) -> Any:
    """The first value found at `paths` (`{song}` in a path: the song's place in its task)."""
    for path in paths:
        value = lookup(data, path.replace("{song}", str(song)))
        if value is not _MISSING and value is not None:
            return value
    return _MISSING


def _number(value: Any) -> float | None:
    if value is _MISSING or isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer past any float
        return math.inf if value > 0 else -math.inf
    except (TypeError, ValueError):
        return None


def checked(profile: Profile, field: str, value: Any) -> float | None:
    """A number of the answer within BOUNDS[field], else None: NaN, ±Infinity, negative or absurd values
    are not believed (a cost of 1e400 cents must not reach a ledger). Warned once per provider and field."""
    number = _number(value)
    low, high = BOUNDS[field]
    if number is None or (math.isfinite(number) and low <= number <= high):
        return number
    with _warned_lock:
        first_time = (profile.name, field) not in _warned
        _warned.add((profile.name, field))
    if first_time:
        log.warning("provider %s answered %s = %s, outside %g..%g: taken as missing", profile.name, field,
                    repr(value)[:40], low, high)
    return None


def track_id(value: Any) -> str:
    """The provider's track id, if it can be one path segment of a status request: not empty, at most
    MAX_ID_CHARS, no control characters (a newline or NUL would end a header or a log line)."""
    if value is _MISSING or isinstance(value, dict | list | bool):
        raise AnswerUnreadable("the track has no id")
    text = str(value)
    if not text or len(text) > MAX_ID_CHARS or _CONTROL.search(text):
        raise AnswerUnreadable(f"the track id is unusable ({len(text)} characters, empty, too long or with "
                               "control characters)")
    return text


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON `text` nests arrays/objects deeper than `limit`, counted on the brackets outside strings
    (cheap, and no recursion: json.loads would recurse once per level)."""
    depth = 0
    for bracket in _NOT_BRACKETS.sub("", _STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def parse_answer(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """An answer's body as JSON, refused (AnswerUnreadable) when it is not JSON or nests too deep."""
    try:
        text = data.decode(json.detect_encoding(data))
    except UnicodeDecodeError:
        raise AnswerUnreadable("the answer is not JSON (not text)") from None
    if too_deep(text, max_depth):
        raise AnswerUnreadable(f"the answer nests deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise AnswerUnreadable("the answer is not JSON") from None


def _text(value: Any) -> str | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, dict):
        value = value.get("message") or value.get("detail") or value.get("code") or value
    return str(value)


def _refusal(body: Any) -> str | None:
    if isinstance(body, dict) and body.get("success") is False:
        return _text(body.get("error") or body.get("message")) or "the provider answered success: false"
    return None


def status_of(profile: Profile, word: str | None, audio_url: str | None) -> TrackStatus:
    """The contract status from the provider's word: unknown words and ready-without-audio are pending;
    no word at all means ready when there is audio (the documented hosted shape)."""
    if word is None:
        return READY if audio_url else PENDING
    status = profile.status_for(word) or PENDING
    return PENDING if status == READY and not audio_url else status


def read_track(profile: Profile, obj: Any, asked_id: str | None = None, song: int = 0) -> Track:
    """One track object of an answer, as the contract's Track (the provider's word kept in status_word). A
    status answer that names no id (fal's queue) is the track asked for, `asked_id`. `song`: which song of a task
    that makes several (`{song}` in the answer paths); each has the task's id."""
    if not isinstance(obj, dict):
        raise AnswerUnreadable(f"a track is not an object: {str(obj)[:120]}")
    paths = profile.answer
    found = first(obj, paths.id)
    if found is _MISSING and asked_id is not None:
        found = asked_id
    if found is _MISSING:
        raise AnswerUnreadable(f"no track id at {paths.id} in {sorted(obj)[:20]}")
    audio = first(obj, paths.audio_url, song)
    audio_url = audio if isinstance(audio, str) and audio else None
    word = _text(first(obj, paths.status, song))
    number = {name: checked(profile, name, first(obj, getattr(paths, name), song))
              for name in ("duration_seconds", "cost_cents", "bpm", "seed")}
    seed, cost = number["seed"], number["cost_cents"]
    known = {"id": track_id(found), "audio_url": audio_url, "status": status_of(profile, word, audio_url),
             "status_word": word, "duration_seconds": number["duration_seconds"],
             "cost_cents": round(cost) if cost is not None else None, "bpm": number["bpm"],
             "seed": int(seed) if seed is not None and seed == int(seed) else None}
    if known["status"] == FAILED:
        known["error"] = _text(first(obj, paths.error, song)) or f"the provider says {word!r}"
    extras = {k: v for k, v in obj.items() if k not in Track.model_fields}
    contract = {k: obj[k] for k in ("name", "created_at", "expires_at", "engine_version")
                if isinstance(obj.get(k), str)}
    if str(obj.get("output_format", "")).lower() in OUTPUT_FORMATS:
        contract["output_format"] = str(obj["output_format"]).lower()
    if str(obj.get("output_bit_rate", "")) in BIT_RATES:
        contract["output_bit_rate"] = str(obj["output_bit_rate"])
    if isinstance(obj.get("tags"), list):
        contract["tags"] = [str(t) for t in obj["tags"]]
    if profile.local_extensions and isinstance(obj.get("versions"), list):
        contract["versions"] = obj["versions"]  # checked by the contract's TrackVersion
    return Track.model_validate({**extras, **contract, **known})


def read_status(profile: Profile, body: Any, asked_id: str | None = None, song: int = 0) -> Track:
    """A status answer: the track, or a failed track when the answer says `success: false`. `asked_id`: the
    id polled, for an answer that names none; given it, an answer that is a bare JSON string is that track's
    status word. `song`: which song of a task that makes several (`songs_per_task`)."""
    if isinstance(body, str) and asked_id is not None:  # a bare JSON string (Sonauto's status answer): the word
        status = status_of(profile, body, None)
        return Track(id=track_id(asked_id), status=status, status_word=body,
                     error=f"the provider says {body!r}" if status == FAILED else None)
    candidates = [lookup(body, path) for path in profile.answer.track]
    with_id = [c for c in candidates if isinstance(c, dict) and first(c, profile.answer.id) is not _MISSING]
    refusal = _refusal(body)
    if refusal is not None and not with_id:
        raise AnswerRefused(refusal)
    if with_id:
        return read_track(profile, with_id[0], song=song)
    nested = [c for c in candidates if isinstance(c, dict)]
    return read_track(profile, nested[0] if nested else body, asked_id, song)


def read_songs(profile: Profile, body: Any, asked_id: str | None = None) -> list[Track]:
    """A status answer of a task that makes `songs_per_task` songs: every song's track, in order."""
    return [read_status(profile, body, asked_id, song) for song in range(profile.songs_per_task)]


def read_submission(profile: Profile, body: Any) -> TextToMusicResponse:
    """A submission's answer: its tracks (a list, or a single track object, where the profile says); a task that
    makes several songs (`songs_per_task`) brings one track per song, each with the task's id."""
    refusal = _refusal(body)
    if refusal is not None:
        raise AnswerRefused(refusal)
    found = first(body, profile.answer.tracks)
    if isinstance(found, dict):
        found = [found]
    if not isinstance(found, list) or not found:
        if isinstance(body, dict) and first(body, profile.answer.id) is not _MISSING:
            found = [body]  # the answer is the track itself
        else:
            raise AnswerUnreadable(f"no tracks at {profile.answer.tracks} in the answer")
    tracks = [read_track(profile, t, song=song) for t in found for song in range(profile.songs_per_task)]
    top = body if isinstance(body, dict) else {}
    cost = checked(profile, "cost_cents", top.get("cost_cents", _MISSING))
    balance = checked(profile, "balance_cents", top.get("balance_cents", _MISSING))
    return TextToMusicResponse(success=True, tracks=tracks, cost_cents=round(cost) if cost is not None else None,
                               balance_cents=round(balance) if balance is not None else None)


def read_sync_answer(profile: Profile, body: Any, generation_id: str) -> tuple[bytes, Track]:
    """A synchronous JSON answer (`[sync]` audio "hex" or "base64"): the audio, decoded from the first of the
    profile's `sync.field` paths that holds text, and the track's figures where the answer paths find them."""
    refusal = _refusal(body)
    if refusal is not None:
        raise AnswerRefused(refusal)
    fields = profile.sync.field if profile.sync else []
    text = first(body, fields)
    if not isinstance(text, str) or not text:
        raise AnswerUnreadable(f"no audio at {fields} in the answer")
    kind = profile.sync.audio if profile.sync else "hex"
    try:
        audio = bytes.fromhex(text) if kind == "hex" else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise AnswerUnreadable(f"the audio at {fields} is not {kind}") from None
    number = {name: checked(profile, name, first(body, getattr(profile.answer, name)))
              for name in ("duration_seconds", "cost_cents", "bpm", "seed")}
    seed, cost = number["seed"], number["cost_cents"]
    return audio, Track(id=generation_id, status=READY, duration_seconds=number["duration_seconds"],
                        cost_cents=round(cost) if cost is not None else None, bpm=number["bpm"],
                        seed=int(seed) if seed is not None and seed == int(seed) else None)
