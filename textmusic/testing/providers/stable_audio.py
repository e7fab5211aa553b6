"""A stand-in for Stable Audio 2.5 (Stability AI's Platform API), written from what is public of its docs
(ComfyUI's comfy_api_nodes/apis/stability.py schema, the Replicate
mirror's ranges, the Stability support article on rate limits, api-evangelist/stability-audio for the price),
not from our profile.

- ``POST /v2beta/audio/stable-audio-2/text-to-audio``, ``Authorization: Bearer <key>`` (401 otherwise), a
  multipart/form-data body (anything else, e.g. JSON, is a 400). Fields: ``prompt`` (required), ``model``
  (stable-audio-2.5 | stable-audio-2), ``duration`` (whole seconds 1-190, default 190), ``seed``
  (0-4294967294), ``steps`` (4-8 for 2.5), ``cfg_scale`` (1-25), ``output_format`` (mp3 | wav). A field out
  of range, of an unknown value, or unknown (this stand-in is stricter than the docs say: it refuses fields
  it does not know, so a mapping error shows) is a 400 ``{"name": "bad_request", "errors": [...]}``.
- ``Accept: audio/*`` → 200 with the raw audio (audio/mpeg or audio/wav); ``Accept: application/json`` → 200
  ``{"audio": <base64>, "finish_reason": "SUCCESS", "seed": ...}``; another Accept is a 400.
- ``GET /v1/user/balance`` → ``{"credits": ...}``.
- Price: a flat 20 credits ($0.20) per successful generation, whatever its length (`charges`, in cents).

The audio is `tone()` of the asked length (wav/mp3), after `seconds_to_ready` (the real API takes ~the
song's length). Python's email parser reads the form (python-multipart, which Starlette's `form()` needs, is
not installed here).
"""

from __future__ import annotations

import asyncio
import base64
from email.parser import BytesParser
from email.policy import HTTP

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from textmusic.testing.providers.origins import ProviderStandIn
from textmusic.testing.standins import CONTENT_TYPES, tone

SUBMIT_PATH = "/v2beta/audio/stable-audio-2/text-to-audio"
BALANCE_PATH = "/v1/user/balance"
MODELS = ("stable-audio-2.5", "stable-audio-2")
FORMATS = ("mp3", "wav")
CREDITS_PER_GENERATION = 20  # 1 credit = $0.01: 20 cents
FIELDS = ("prompt", "model", "duration", "seed", "steps", "cfg_scale", "output_format")


def read_form(content_type: str, body: bytes) -> dict[str, str] | None:
    """A multipart/form-data body's fields as text (file parts too), None when the body is not such a form."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    if not message.is_multipart():
        return None
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
    return fields


def _number(text: str | None, whole: bool) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    if value is not None and whole and not value.is_integer():
        return None
    return value


def invalid(form: dict[str, str]) -> list[str]:
    """What the API would refuse in a form, as its `errors` list (empty: accepted)."""
    errors = [f"{name}: unknown field" for name in form if name not in FIELDS and name != "none"]
    if not form.get("prompt", "").strip():
        errors.append("prompt: cannot be blank")
    model = form.get("model", MODELS[0])
    if model not in MODELS:
        errors.append(f"model: must be one of {', '.join(MODELS)}")
    ranges = {"duration": (1, 190, True), "seed": (0, 4294967294, True), "cfg_scale": (1, 25, False),
              "steps": (4, 8, True) if model == "stable-audio-2.5" else (30, 100, True)}
    for name, (low, high, whole) in ranges.items():
        if name in form:
            value = _number(form[name], whole)
            if value is None or not low <= value <= high:
                errors.append(f"{name}: must be {'an integer' if whole else 'a number'} from {low} to {high}")
    if form.get("output_format", "mp3") not in FORMATS:
        errors.append(f"output_format: must be one of {', '.join(FORMATS)}")
    return errors


class StableAudio(ProviderStandIn):
    """The API on loopback (`base_url`), with what a test checks afterwards: `posts` (every form POSTed, as
    parsed), `charges` (cents per charged generation), `requests` ((method, path, status))."""

    def __init__(self, api_key: str = "sk-standin0123456789", seconds_to_ready: float = 0.1,
                 credits: int = 1000) -> None:
        self.api_key, self.seconds_to_ready, self.credits = api_key, seconds_to_ready, credits
        super().__init__()

    async def _answer(self, request: Request) -> Response:
        path, form = request.url.path, None
        if request.method == "POST" and path == SUBMIT_PATH:
            form = read_form(request.headers.get("content-type", ""), await request.body())
            self._record_post(form)
        if not self._key_ok(request):
            return _error(401, "unauthorized", "authorization: missing or invalid API key")
        if request.method == "GET" and path == BALANCE_PATH:
            return JSONResponse({"credits": self.credits})
        if request.method != "POST" or path != SUBMIT_PATH:
            return _error(404, "not_found", f"{request.method} {path}: not found")
        if form is None:
            return _error(400, "bad_request", "content-type: must be multipart/form-data")
        accept = request.headers.get("accept", "")
        if accept not in ("audio/*", "application/json"):
            return _error(400, "bad_request", "accept: must be audio/* or application/json")
        errors = invalid(form)
        if errors:
            return _error(400, "bad_request", *errors)
        await asyncio.sleep(self.seconds_to_ready)
        fmt, seconds = form.get("output_format", "mp3"), float(form.get("duration", 190))
        seed = int(form.get("seed", 0))
        audio = await asyncio.to_thread(tone, seed, seconds, fmt)
        with self._lock:
            self._charge_locked(CREDITS_PER_GENERATION, form)
            self.credits -= CREDITS_PER_GENERATION
        if accept == "application/json":
            return JSONResponse({"audio": base64.b64encode(audio).decode(), "finish_reason": "SUCCESS",
                                 "seed": seed})
        return Response(audio, 200, media_type=CONTENT_TYPES[fmt])


def _error(status: int, name: str, *errors: str) -> JSONResponse:
    return JSONResponse({"id": "standin", "name": name, "errors": list(errors)}, status)
