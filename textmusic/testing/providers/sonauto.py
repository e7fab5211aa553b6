"""A Sonauto stand-in on loopback, written from Sonauto's public docs, not from textmusic/providers/sonauto.toml:

- https://sonauto.ai/developers/docs: `POST /v1/generations/v3` with `Authorization: Bearer <key>` and a JSON
  body answers `{"task_id": ...}`; `GET /v1/generations/status/{task_id}` tells the state (the newer docs read
  `.status` of an object); `GET /v1/generations/{task_id}` gives `song_paths`, `seed`, `lyrics`, `tags`,
  `error_message`.
- https://github.com/Sonauto/sonauto-api-examples rock_song_generator.py: the status answer is a bare JSON string
  (`response.text.strip('"')`): "GENERATING" … then "SUCCESS" or "FAILURE"; the song is on a CDN, downloaded
  without the key.
- https://sonauto.ai/developers: the body's fields (`prompt` required, "" allowed, with `tags` and/or `lyrics`;
  `instrumental` then no lyrics; `prompt_strength`; `output_format` ogg (default) | mp3 | flac | wav | m4a;
  `output_bit_rate` 128/192/256/320 for mp3/m4a only); v3 takes no seed, bpm, num_songs, balance_strength
  (third-party summary https://neural-audio-theory.vercel.app/docs/apis/sunauto-api). A song costs 100 credits;
  extra credits are $0.06 per 100 (Starter/Pro plans).

What the docs do not say is this stand-in's reading: a body the real API would refuse gets 422 with a FastAPI-style
`{"detail": ...}`, a bad key 401, an unknown task 404. A prompt containing "FAIL" ends FAILURE (to test that path).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from textmusic.testing.providers.origins import ProviderStandIn
from textmusic.testing.standins import CONTENT_TYPES, tone

SUBMIT_PATH = "/v1/generations/v3"
STATUS_PATH = re.compile(r"/v1/generations/status/(?P<id>[^/]+)")
RESULT_PATH = re.compile(r"/v1/generations/(?P<id>[^/]+)")
FORMATS = ("ogg", "mp3", "flac", "wav", "m4a")
BIT_RATES = (128, 192, 256, 320)
BIT_RATE_FORMATS = ("mp3", "m4a")
V3_UNSUPPORTED = ("seed", "bpm", "num_songs", "balance_strength")  # v2 fields
# The price list: 100 credits a song; extra credits at $0.06 per 100 (6 cents).
CREDITS_PER_SONG = 100
CENTS_PER_100_CREDITS = 6


def song_cents() -> int:
    return CREDITS_PER_SONG * CENTS_PER_100_CREDITS // 100


def refusal(body: Any) -> str | None:
    """Why the real API would refuse this body (422), or None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not isinstance(body.get("prompt"), str):
        return "prompt is required (a string; \"\" with tags or lyrics)"
    tags, lyrics = body.get("tags"), body.get("lyrics")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        return "tags must be a list of strings"
    if lyrics is not None and not isinstance(lyrics, str):
        return "lyrics must be a string"
    if not (body["prompt"] or tags or lyrics):
        return "at least one of prompt, tags, lyrics"
    instrumental = body.get("instrumental", False)
    if not isinstance(instrumental, bool):
        return "instrumental must be a boolean"
    if instrumental and lyrics:
        return "an instrumental takes no lyrics"
    strength = body.get("prompt_strength")
    if strength is not None and (isinstance(strength, bool) or not isinstance(strength, int | float)):
        return "prompt_strength must be a number"
    fmt = body.get("output_format", "ogg")
    if fmt not in FORMATS:
        return f"output_format must be one of {', '.join(FORMATS)}"
    if "output_bit_rate" in body:
        if fmt not in BIT_RATE_FORMATS:
            return "output_bit_rate is for mp3 and m4a only"
        if body["output_bit_rate"] not in BIT_RATES or isinstance(body["output_bit_rate"], bool):
            return f"output_bit_rate must be one of {', '.join(map(str, BIT_RATES))}"
    unsupported = [name for name in V3_UNSUPPORTED if name in body]
    if unsupported:
        return f"v3 does not support {', '.join(unsupported)}"
    return None


@dataclass
class _Task:
    id: str
    body: dict[str, Any]
    seed: int
    created: float


class SonautoStandIn(ProviderStandIn):
    """Sonauto's API origin (`base_url`) and its CDN (`cdn_url`), each on its own loopback port.

    `status_form`: "string" answers the status as a bare JSON string (the official example), "object" as
    {"status": ...} (the newer docs). Recorded: `posts` (every body POSTed), `charges` (cents per accepted
    task), `requests` (method, path, status), `cdn_auth_seen` (any Authorization the CDN received)."""

    api_key = "sksonauto_standin_0123456789abcdef"

    def __init__(self, seconds_to_ready: float = 0.3, status_form: Literal["string", "object"] = "string",
                 audio_seconds: float = 3.0) -> None:
        self.seconds_to_ready, self.status_form, self.audio_seconds = seconds_to_ready, status_form, audio_seconds
        self._tasks: dict[str, _Task] = {}
        super().__init__(cdn=True)

    # --- the API origin ----------------------------------------------------------------------------

    async def _answer(self, request: Request) -> Response:
        path = request.url.path
        body = await self._posted(request, SUBMIT_PATH)
        if not self._key_ok(request):
            return JSONResponse({"detail": "Invalid API key"}, 401)
        if request.method == "POST" and path == SUBMIT_PATH:
            return self._submit(body)
        if request.method != "GET":
            return JSONResponse({"detail": "Method Not Allowed"}, 405)
        status, result = STATUS_PATH.fullmatch(path), RESULT_PATH.fullmatch(path)
        task = self._tasks.get((status or result)["id"]) if status or result else None
        if task is None:
            return JSONResponse({"detail": "Not Found"}, 404)
        word = self._word(task)
        if status:
            return JSONResponse(word if self.status_form == "string" else {"status": word})
        done = word == "SUCCESS"
        fmt = task.body.get("output_format", "ogg")
        return JSONResponse({
            "song_paths": [f"{self.cdn_url}/audio/{task.id}.{fmt}"] if done else [],
            "seed": task.seed, "lyrics": task.body.get("lyrics") or "", "tags": task.body.get("tags") or [],
            "error_message": "generation failed" if word == "FAILURE" else None})

    def _submit(self, body: Any) -> Response:
        why = refusal(body)
        if why is not None:
            return JSONResponse({"detail": why}, 422)
        task = _Task(str(uuid.uuid4()), body, uuid.uuid4().int % 2**31, time.monotonic())
        with self._lock:
            self._tasks[task.id] = task
            self._charge_locked(song_cents(), body)
        return JSONResponse({"task_id": task.id})

    def _word(self, task: _Task) -> str:
        if time.monotonic() - task.created < self.seconds_to_ready:
            return "GENERATING"
        return "FAILURE" if "FAIL" in task.body["prompt"] else "SUCCESS"

    # --- the CDN -------------------------------------------------------------------------------------

    async def _cdn_answer(self, request: Request) -> Response:
        found = re.fullmatch(r"/audio/([^/]+)\.(\w+)", request.url.path)
        task = self._tasks.get(found[1]) if found else None
        if task is None or self._word(task) != "SUCCESS":
            return Response(b"Not Found", 404)
        fmt = found[2]
        kbps = str(task.body.get("output_bit_rate", 192)) if fmt in BIT_RATE_FORMATS else None
        audio = await asyncio.to_thread(tone, task.seed, self.audio_seconds, fmt, kbps)
        return Response(audio, media_type=CONTENT_TYPES[fmt])
