"""Reading a provider's answers through its profile, tolerantly.

Hosted APIs document their answers in part, so the reader accepts what real services send: status words
from a vocabulary (an unknown word counts as pending), numbers as strings, fields under other names or
nested, unknown fields kept (as extras of the Track). A track that claims to be ready but has no audio
yet is pending. `success: false` inside a 2xx answer is a refusal with the provider's message.
A track's `versions` are a local-service extension: read from a local service's answer only (a profile
with `local_extensions`); a hosted track lists none.
"""

from __future__ import annotations

from typing import Any

from textmusic.contract import BIT_RATES, OUTPUT_FORMATS, TextToMusicResponse, Track, TrackStatus
from textmusic.providers import Profile

_MISSING = object()


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


def first(data: Any, paths: list[str]) -> Any:
    for path in paths:
        value = lookup(data, path)
        if value is not _MISSING and value is not None:
            return value
    return _MISSING


def _number(value: Any) -> float | None:
    if value is _MISSING or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
        return "ready" if audio_url else "pending"
    status = profile.status_for(word) or "pending"
    return "pending" if status == "ready" and not audio_url else status


def read_track(profile: Profile, obj: Any) -> Track:
    """One track object of an answer, as the contract's Track (the provider's word kept in status_word)."""
    if not isinstance(obj, dict):
        raise AnswerUnreadable(f"a track is not an object: {str(obj)[:120]}")
    paths = profile.answer
    track_id = first(obj, paths.id)
    if track_id is _MISSING or isinstance(track_id, dict | list):
        raise AnswerUnreadable(f"no track id at {paths.id} in {sorted(obj)[:20]}")
    audio = first(obj, paths.audio_url)
    audio_url = audio if isinstance(audio, str) and audio else None
    word = _text(first(obj, paths.status))
    seed, cost, bpm = _number(first(obj, paths.seed)), _number(first(obj, paths.cost_cents)), \
        _number(first(obj, paths.bpm))
    known = {"id": str(track_id), "audio_url": audio_url, "status": status_of(profile, word, audio_url),
             "status_word": word, "duration_seconds": _number(first(obj, paths.duration_seconds)),
             "cost_cents": round(cost) if cost is not None else None, "bpm": bpm,
             "seed": int(seed) if seed is not None and seed == int(seed) else None}
    if known["status"] == "failed":
        known["error"] = _text(first(obj, paths.error)) or f"the provider says {word!r}"
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


def read_status(profile: Profile, body: Any) -> Track:
    """A status answer: the track, or a failed track when the answer says `success: false`."""
    candidates = [lookup(body, path) for path in profile.answer.track]
    with_id = [c for c in candidates if isinstance(c, dict) and first(c, profile.answer.id) is not _MISSING]
    refusal = _refusal(body)
    if refusal is not None and not with_id:
        raise AnswerRefused(refusal)
    return read_track(profile, with_id[0] if with_id else body)


def read_submission(profile: Profile, body: Any) -> TextToMusicResponse:
    """A submission's answer: its tracks (a list, or a single track object, where the profile says)."""
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
    tracks = [read_track(profile, t) for t in found]
    top = body if isinstance(body, dict) else {}
    cost, balance = _number(top.get("cost_cents")), _number(top.get("balance_cents"))
    return TextToMusicResponse(success=True, tracks=tracks, cost_cents=round(cost) if cost is not None else None,
                               balance_cents=round(balance) if balance is not None else None)
