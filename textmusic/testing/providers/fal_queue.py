"""A stand-in for fal.ai's queue running ACE-Step (`fal-ai/ace-step`), written from its
docs (docs.fal.ai/model-endpoints/queue, the model page
fal.ai/models/fal-ai/ace-step, docs.fal.ai media expiration), not from our profile.

- ``POST /fal-ai/ace-step`` with ``Authorization: Key <key>`` (401 otherwise) and the model's input as JSON:
  ``tags`` (string, required), ``lyrics`` (string; "[inst]" = no vocals), ``duration`` (seconds, 5-240,
  default 60), ``seed`` (integer), ``number_of_steps`` (3-60), ``scheduler`` (euler | heun),
  ``guidance_type`` (cfg | apg | cfg_star). A body the model would refuse (not a JSON object, a missing or
  blank ``tags``, a value out of range or of the wrong type, an unknown enum word) is a 422 with FastAPI's
  ``{"detail": [{"loc", "msg", "type"}]}``. Accepted: ``{request_id, response_url, status_url, cancel_url}``.
- ``GET /fal-ai/ace-step/requests/{id}/status`` → ``{"status": "IN_QUEUE", "queue_position": n}``, then
  ``IN_PROGRESS``, then ``COMPLETED`` (with ``metrics``), over `seconds_to_ready`; no audio, no request id.
- ``GET /fal-ai/ace-step/requests/{id}`` → the result once completed: ``{"audio": {"url", "content_type",
  "file_name", "file_size"}, "seed", "tags", "lyrics"}``; before that a 400 ("still in progress").
- The audio is served from a second origin, the CDN (``v3.fal.media``: public URLs, no key): `cdn_auth_seen`
  records any Authorization header it receives (a correct client sends none).
- Price: $0.0002 per second of generated audio. fal counts fractions of a cent: `exact_charges` holds each
  request's charge in millicents (1/1000 cent, exact); `charges` the same rounded up to whole cents per
  request (how a ledger in cents can hold it without ever being under fal's bill).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from textmusic.testing.providers.origins import ProviderStandIn
from textmusic.testing.standins import tone

MODEL = "fal-ai/ace-step"
MILLICENTS_PER_SECOND = 20  # $0.0002 = 0.02 cents = 20 millicents per second of audio
DEFAULT_DURATION = 60.0
ENUMS = {"scheduler": ("euler", "heun"), "guidance_type": ("cfg", "apg", "cfg_star")}
RANGES = {"duration": (5.0, 240.0), "number_of_steps": (3, 60), "seed": (0, 2**32 - 1)}


@dataclass
class _Request:
    id: str
    body: dict[str, Any]
    seconds: float
    seed: int
    created: float = field(default_factory=time.monotonic)


def _issue(name: str, message: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", name], "msg": message, "type": kind}


def invalid(body: Any) -> list[dict[str, Any]]:
    """What ACE-Step's input schema refuses, as FastAPI's `detail` list (empty: accepted)."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    issues = []
    if not isinstance(body.get("tags"), str) or not body["tags"].strip():
        issues.append(_issue("tags", "Field required (a non-empty string)", "missing"))
    if "lyrics" in body and not isinstance(body["lyrics"], str):
        issues.append(_issue("lyrics", "Input should be a valid string", "string_type"))
    for name, (low, high) in RANGES.items():
        value = body.get(name)
        if name in body and (isinstance(value, bool) or not isinstance(value, int | float)
                             or (name != "duration" and not isinstance(value, int)) or not low <= value <= high):
            issues.append(_issue(name, f"Input should be a number from {low} to {high}", "value_error"))
    for name, words in ENUMS.items():
        if name in body and body[name] not in words:
            issues.append(_issue(name, f"Input should be {' or '.join(map(repr, words))}", "literal_error"))
    return issues


class FalQueue(ProviderStandIn):
    """fal's queue (`base_url`) and CDN (`cdn_url`) on loopback, with what a test checks afterwards: `posts`
    (bodies POSTed), `charges`/`exact_charges`, `requests` ((method, path, status) on the queue),
    `cdn_requests`, `cdn_auth_seen`."""

    def __init__(self, api_key: str = "fal-standin-key:0123456789", seconds_to_ready: float = 0.4) -> None:
        self.api_key, self.seconds_to_ready = api_key, seconds_to_ready
        self._requests_by_id: dict[str, _Request] = {}
        self._exact_charges: list[int] = []  # millicents per request
        super().__init__(methods=("GET", "POST", "PUT"), cdn=True)

    @property
    def exact_charges(self) -> list[int]:
        """Each request's charge in millicents (exact); `charges` holds the same rounded up to whole cents."""
        return self._copy(self._exact_charges)

    def submissions(self) -> int:
        return sum(1 for method, path, status in self.requests if method == "POST" and status == 200)

    # --- the queue -------------------------------------------------------------------------------------

    async def _answer(self, request: Request) -> Response:
        path = request.url.path
        body = await self._posted(request)
        if not self._key_ok(request, "Key"):
            return JSONResponse({"detail": "Unauthorized: missing or invalid key"}, 401)
        if request.method == "POST" and path == f"/{MODEL}":
            return self._submit(body)
        found = re.fullmatch(rf"/{re.escape(MODEL)}/requests/([^/]+)(/status)?", path)
        if found is None or request.method != "GET":
            return JSONResponse({"detail": "Not Found"}, 404)
        with self._lock:
            queued = self._requests_by_id.get(found[1])
        if queued is None:
            return JSONResponse({"detail": f"Request {found[1]} not found"}, 404)
        if found[2]:
            return JSONResponse(self._status(queued))
        if time.monotonic() - queued.created < self.seconds_to_ready:
            return JSONResponse({"detail": "Request is still in progress"}, 400)
        return await self._result(queued)

    def _submit(self, body: Any) -> Response:
        issues = invalid(body)
        if issues:
            return JSONResponse({"detail": issues}, 422)
        seconds = float(body.get("duration", DEFAULT_DURATION))
        queued = _Request(uuid.uuid4().hex, body, seconds, int(body.get("seed", uuid.uuid4().int % 2**32)))
        with self._lock:
            self._requests_by_id[queued.id] = queued
            # fal bills the audio it generates; every request here completes, so it is billed at once
            millicents = math.ceil(seconds * MILLICENTS_PER_SECOND)
            self._exact_charges.append(millicents)
            self._charge_locked(math.ceil(millicents / 1000), body)
        urls = f"{self.base_url}/{MODEL}/requests/{queued.id}"
        return JSONResponse({"request_id": queued.id, "response_url": urls, "status_url": f"{urls}/status",
                             "cancel_url": f"{urls}/cancel"})

    def _status(self, queued: _Request) -> dict[str, Any]:
        elapsed = time.monotonic() - queued.created
        response_url = f"{self.base_url}/{MODEL}/requests/{queued.id}"
        if elapsed < self.seconds_to_ready / 2:
            return {"status": "IN_QUEUE", "queue_position": 0, "response_url": response_url}
        if elapsed < self.seconds_to_ready:
            return {"status": "IN_PROGRESS", "logs": [], "response_url": response_url}
        return {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": queued.seconds / 10},
                "response_url": response_url}

    async def _result(self, queued: _Request) -> Response:
        audio = await asyncio.to_thread(tone, queued.seed, queued.seconds, "wav")
        return JSONResponse({
            "audio": {"url": f"{self.cdn_url}/files/{queued.id}/output.wav", "content_type": "audio/wav",
                      "file_name": "output.wav", "file_size": len(audio)},
            "seed": queued.seed, "tags": queued.body["tags"], "lyrics": queued.body.get("lyrics", ""),
        })

    # --- the CDN (public URLs) -------------------------------------------------------------------------

    async def _cdn_answer(self, request: Request) -> Response:
        found = re.fullmatch(r"/files/([^/]+)/output\.wav", request.url.path)
        with self._lock:
            queued = self._requests_by_id.get(found[1]) if found else None
        if queued is None:
            return Response("Not Found", 404, media_type="text/plain")
        audio = await asyncio.to_thread(tone, queued.seed, queued.seconds, "wav")
        return Response(audio, 200, media_type="audio/wav")
