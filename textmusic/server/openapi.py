"""The service's OpenAPI document, built from the contract's own models and made exact where FastAPI's
export is loose, so a schema-driven client or fuzzer reads the real rules. The endpoints' response
documentation (errors, rate-limit headers, audio types) lives here too: each route module names its own."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from textmusic.contract import (
    BALANCE_STRENGTH_RANGE,
    BIT_RATE_FORMATS,
    BIT_RATES,
    BPM_RANGE,
    DURATION_RANGE,
    FORMATS,
    KEY_PATTERN,
    MIDI_MEDIA_TYPE,
    PROMPT_STRENGTH_RANGE,
    SUBMIT_PATH,
    VERSION_KINDS,
    ErrorResponse,
    TextToMusicRequest,
)

RATE_HEADERS: dict[str, Any] = {
    "X-RateLimit-Limit": {"description": "Requests allowed per window, per key.", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left in the window.", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {
        "description": "Seconds until the oldest request leaves the sliding window (0: the window is empty).",
        "schema": {"type": "integer"},
    },
}
_RETRY_AFTER = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
_ERROR_DESCRIPTIONS = {
    400: "Invalid input: a rule of the contract, malformed JSON, or a Content-Type other than application/json.",
    401: "Invalid or missing API token.",
    402: "Insufficient balance for the request's upper-bound price; nothing is charged.",
    404: "No such track for this key.",
    410: "The audio has expired (store_audio was false).",
    429: "Rate limit exceeded (or an injected fault); nothing is charged.",
    500: "Internal server error (or an injected fault); try again. A failed submission is not charged.",
}


def errors(*statuses: int, rate_headers: bool = True) -> dict[int | str, dict[str, Any]]:
    """An endpoint's documented error answers: the error body, and the headers each status carries."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[status]}
        headers = dict(RATE_HEADERS) if rate_headers and status not in (400, 401) else {}
        if status == 429:
            headers["Retry-After"] = _RETRY_AFTER
        if headers:
            entry["headers"] = headers
        out[status] = entry
    return out


AUDIO_CONTENT = {m: {"schema": {"type": "string", "format": "binary"}}
                  for m in sorted({f.media_type for f in FORMATS.values()} | {MIDI_MEDIA_TYPE})}
_COMBINATIONS = (
    "At least one of prompt, tags, lyrics must be given (present and not empty). Allowed: prompt only, "
    "prompt + tags, prompt + lyrics, tags + lyrics; refused: lyrics only, tags only, all three. "
    "`lyrics: \"\"` with prompt or tags is an instrumental. "
    f"output_bit_rate only with {' or '.join(BIT_RATE_FORMATS)}."
)


def request_schema() -> dict[str, Any]:
    """The request model's JSON Schema, made exact where pydantic's export is loose.

    pydantic puts the ranges of `StrictFloat | StrictInt` fields under non-standard keys and cannot
    express the bit rate's number form or the bpm validator; a schema-driven client needs them all.
    """
    schema = copy.deepcopy(TextToMusicRequest.model_json_schema(mode="validation"))
    _exact_hosted_fields(schema["properties"])
    _local_extension_fields(schema["properties"])
    schema["description"] = f"Body of `POST {SUBMIT_PATH}`. Unknown fields are refused. {_COMBINATIONS}"
    return schema


def _number(lo: float, hi: float) -> dict[str, Any]:
    return {"type": "number", "minimum": lo, "maximum": hi}


def _exact_hosted_fields(props: dict[str, Any]) -> None:
    """The hosted API's fields whose rules pydantic exports loosely: number ranges, bpm's `auto`, the bit
    rate as a string or a number, what an absent seed means."""
    for name, (lo, hi) in (("prompt_strength", PROMPT_STRENGTH_RANGE), ("balance_strength", BALANCE_STRENGTH_RANGE)):
        props[name] = {**_number(lo, hi), "default": props[name]["default"], "title": props[name]["title"]}
    props["bpm"] = {
        "anyOf": [_number(*BPM_RANGE), {"type": "string", "const": "auto"}],
        "default": "auto",
        "title": "Bpm",
        "description": "Beats per minute, or auto.",
    }
    props["output_bit_rate"] = {
        "anyOf": [
            {"type": "string", "enum": list(BIT_RATES)},
            {"type": "integer", "enum": [int(b) for b in BIT_RATES]},
            {"type": "null"},
        ],
        "default": None,
        "title": "Output Bit Rate",
        "description": f"kbps, as a string or a number; only with output_format {' or '.join(BIT_RATE_FORMATS)}.",
    }
    props["seed"]["description"] = "Seed for reproducibility (32-bit); random when absent, returned in the track."


def _local_extension_fields(props: dict[str, Any]) -> None:
    """The local service's own fields, marked `x-extension` so a client sends them only to it."""
    props["duration_seconds"] = {
        "anyOf": [_number(*DURATION_RANGE), {"type": "null"}],
        "default": None,
        "title": "Duration Seconds",
        "description": (
            "EXTENSION of the local service, not in the hosted API: the length of each song in seconds "
            f"({DURATION_RANGE[0]:g}-{DURATION_RANGE[1]:g}). Send it only to the local provider."
        ),
        "x-extension": "textmusic-local",
    }
    props["versions"] = {
        "anyOf": [{"type": "array", "items": {"type": "string", "enum": list(VERSION_KINDS)}}, {"type": "null"}],
        "default": None,
        "title": "Versions",
        "description": (
            "EXTENSION of the local service, not in the hosted API: library versions to render with each song, "
            "natively from the same composition: cut-downs of 60, 30 or 15 s with a composed ending, seamless "
            "loops of 4, 8 or 16 bars, `stems` (drums, bass, harmony, lead, vocals as present, summing to the "
            "full mix), `underscore` (no lead, no vocals), `nodrums`, and `midi`: the composition itself as a "
            "Standard MIDI File (`.mid`, `audio/midi`, listed with `format: \"mid\"`), tempo and bars as the "
            "render's. `full` (the song) is always delivered. "
            "The ready track lists each under `versions` with its own `audio_url` and `duration_seconds`. "
            "Versions cost nothing extra: a song is charged its own length only. Send it only to the local "
            "provider."
        ),
        "x-extension": "textmusic-local",
    }
    props["key"] = {
        "anyOf": [{"type": "string", "pattern": f"^{KEY_PATTERN}$"}, {"type": "null"}],
        "default": None,
        "title": "Key",
        "description": (
            "EXTENSION of the local service, not in the hosted API: the musical key of each song, a tonic "
            "letter with an optional sharp or flat and `m` for minor (`C`, `F#m`, `Bbm`). It overrides the key "
            "the prompt implies (\"in D minor\"); absent, the prompt and the style choose. Send it only to the "
            "local provider."
        ),
        "x-extension": "textmusic-local",
    }


def install_openapi(app: FastAPI) -> None:
    """`app.openapi()` answers the exact document (built once): the request's own schema, and no 422,
    which this service never answers (errors.py turns parameter errors into 400s)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas["TextToMusicRequest"] = request_schema()
            # FastAPI documents a 422 for parameter errors; this service answers those 400 (errors.py).
            for ops in doc["paths"].values():
                for op in ops.values():
                    op["responses"].pop("422", None)
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
