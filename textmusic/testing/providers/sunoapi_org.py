"""A sunoapi.org stand-in on loopback, written from sunoapi.org's public docs, not from
textmusic/providers/sunoapi-org.toml:

- https://docs.sunoapi.org/suno-api/generate-music: `POST /api/v1/generate`, `Authorization: Bearer <key>`, a JSON
  body with `customMode`, `instrumental` (booleans), `model` (V3_5, V4, V4_5, V4_5PLUS, V5) and `callBackUrl`
  required; in custom mode `style` and `title` (≤ 80 characters) are required, and `prompt` (the lyrics: ≤ 3000
  characters on V3_5/V4, ≤ 5000 on V4_5+) unless instrumental; style ≤ 200 (V3_5/V4) or ≤ 1000 (V4_5+); out of
  custom mode only `prompt` (≤ 500). No seed. The answer is HTTP 200 with `{"code": 200, "msg": "success", "data":
  {"taskId": ...}}`; errors come in the envelope's `code`: 400 bad parameters, 401 key, 405 rate limit (20
  requests per 10 s), 413 too long, 429 insufficient credits, 430 too frequent, 455 maintenance, 500. EACH
  REQUEST MAKES TWO SONGS. The callback URL is POSTed at the stages text, first, complete (snake_case songs at
  `data.data[]`), or `{"code": 400, ..., "data": {"callbackType": "error", "task_id": ..., "data": null}}`; the
  same task may call back several times; callbacks are not signed.
- https://docs.sunoapi.org/suno-api/get-music-generation-details: `GET /api/v1/generate/record-info?taskId=` answers
  `{"code": 200, "msg": "success", "data": {"taskId", "status", "response": {"taskId", "sunoData": [{"id",
  "audioUrl", "streamAudioUrl", "imageUrl", "prompt", "modelName", "title", "tags", "createTime", "duration"},
  ...]}, "errorCode", "errorMessage"}}` (camelCase); status PENDING, TEXT_SUCCESS, FIRST_SUCCESS, SUCCESS,
  CREATE_TASK_FAILED, GENERATE_AUDIO_FAILED, CALLBACK_EXCEPTION, SENSITIVE_WORD_ERROR.
- https://docs.sunoapi.org/suno-api/get-remaining-credits: `GET /api/v1/generate/credit` answers `{"code": 200,
  "msg": "success", "data": <credits>}`, free.
- Price (a third party, 2026-03): 12 credits a call at $0.005 a credit, 6 cents for the two songs.

What the docs do not say is this stand-in's reading: every error is HTTP 200 with its code in the envelope (the
harder case for a client); an unknown taskId is code 400; at FIRST_SUCCESS the first song has its audioUrl and the
second an empty one; the CDN needs no key. A `style` containing "FAIL" ends GENERATE_AUDIO_FAILED. `credits` is
the account's balance: a call it cannot pay is code 429 and charged nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from textmusic.testing.providers.origins import ProviderStandIn
from textmusic.testing.standins import CONTENT_TYPES, tone

SUBMIT_PATH = "/api/v1/generate"
STATUS_PATH = "/api/v1/generate/record-info"
CREDIT_PATH = "/api/v1/generate/credit"
MODELS = ("V3_5", "V4", "V4_5", "V4_5PLUS", "V5")
OLD_MODELS = ("V3_5", "V4")  # shorter limits
SONGS_PER_CALL = 2
CREDITS_PER_CALL = 12
CENTS_PER_CALL = 6  # 12 credits × $0.005
RATE_LIMIT = (20, 10.0)  # requests per seconds


def call_cents() -> int:
    return CENTS_PER_CALL


def refusal(body: Any) -> tuple[int, str] | None:
    """Why the real API would refuse this body: (envelope code, message), or None."""
    if not isinstance(body, dict):
        return 400, "the body must be a JSON object"
    for name in ("customMode", "instrumental"):
        if not isinstance(body.get(name), bool):
            return 400, f"{name} is required (a boolean)"
    if body.get("model") not in MODELS:
        return 400, f"model must be one of {', '.join(MODELS)}"
    if not isinstance(body.get("callBackUrl"), str) or not body["callBackUrl"].startswith(("http://", "https://")):
        return 400, "callBackUrl is required"
    old = body["model"] in OLD_MODELS
    prompt, style, title = body.get("prompt"), body.get("style"), body.get("title")
    for name, value in (("prompt", prompt), ("style", style), ("title", title)):
        if value is not None and not isinstance(value, str):
            return 400, f"{name} must be a string"
    if body["customMode"]:
        if not style or not title:
            return 400, "style and title are required in custom mode"
        if not body["instrumental"] and not prompt:
            return 400, "prompt (the lyrics) is required in custom mode unless instrumental"
        if len(title) > 80:
            return 413, "title is longer than 80 characters"
        if len(style) > (200 if old else 1000):
            return 413, "style is too long"
        if prompt and len(prompt) > (3000 if old else 5000):
            return 413, "prompt is too long"
    else:
        if not prompt:
            return 400, "prompt is required"
        if len(prompt) > 500:
            return 413, "prompt is too long"
    for name in ("styleWeight", "weirdnessConstraint", "audioWeight"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1):
            return 400, f"{name} must be from 0 to 1"
    if body.get("vocalGender") not in (None, "m", "f"):
        return 400, "vocalGender must be m or f"
    return None


@dataclass
class _Task:
    id: str
    body: dict[str, Any]
    created: float
    song_ids: list[str] = field(default_factory=lambda: [uuid.uuid4().hex for _ in range(SONGS_PER_CALL)])


class SunoapiOrgStandIn(ProviderStandIn):
    """sunoapi.org's API origin (`base_url`) and its CDN (`cdn_url`), each on its own loopback port.

    `callbacks`: POST the callBackUrl at text, first and complete (complete twice: the docs say a task may call back
    several times). Recorded: `posts` (every body POSTed), `charges` (cents per accepted call), `requests` (method,
    path, envelope code), `callbacks_sent` (task id, stage, HTTP status or 0), `cdn_auth_seen`."""

    api_key = "sunoapi_standin_0123456789abcdef"

    def __init__(self, seconds_to_ready: float = 0.6, *, callbacks: bool = True, credits: int = 10_000,
                 audio_seconds: float = 2.0, complete_copies: int = 2) -> None:
        self.seconds_to_ready, self.callbacks, self.credits = seconds_to_ready, callbacks, credits
        self.audio_seconds, self.complete_copies = audio_seconds, complete_copies
        super().__init__(methods=("GET", "POST"), cdn=True)
        self._tasks: dict[str, _Task] = {}
        self._recent: list[float] = []
        self._callbacks_sent: list[tuple[str, str, int]] = []

    @property
    def callbacks_sent(self) -> list[tuple[str, str, int]]:
        """(task id, stage, the receiver's HTTP status or 0) of every callback POSTed."""
        return self._copy(self._callbacks_sent)

    def polls(self) -> int:
        """record-info requests answered with a task."""
        with self._lock:
            return sum(1 for method, path, code in self._requests if path == STATUS_PATH and code == 200)

    # --- the API origin ----------------------------------------------------------------------------

    async def _answer(self, request: Request) -> Response:
        code, data, msg = await self._envelope(request)
        return JSONResponse({"code": code, "msg": msg, "data": data})  # always HTTP 200, as the docs show

    def _status_of(self, response: Response) -> int:
        """Recorded: the envelope's code (the HTTP status is always 200)."""
        return int(json.loads(bytes(response.body))["code"])

    async def _envelope(self, request: Request) -> tuple[int, Any, str]:
        path = request.url.path
        body = await self._posted(request, SUBMIT_PATH)
        if not self._key_ok(request):
            return 401, None, "Unauthorized: invalid API key"
        if self._over_rate_limit():
            return 405, None, "Rate limit exceeded"
        if request.method == "POST" and path == SUBMIT_PATH:
            return self._submit(body)
        if request.method == "GET" and path == CREDIT_PATH:
            return 200, self.credits, "success"
        if request.method == "GET" and path == STATUS_PATH:
            task = self._tasks.get(request.query_params.get("taskId", ""))
            if task is None:
                return 400, None, "taskId not found"
            return 200, self._details(task), "success"
        return 404, None, "Not Found"

    def _over_rate_limit(self) -> bool:
        now = time.monotonic()
        with self._lock:
            self._recent = [t for t in self._recent if now - t < RATE_LIMIT[1]] + [now]
            return len(self._recent) > RATE_LIMIT[0]

    def _submit(self, body: Any) -> tuple[int, Any, str]:
        why = refusal(body)
        if why is not None:
            return why[0], None, why[1]
        with self._lock:
            if self.credits < CREDITS_PER_CALL:
                return 429, None, "Insufficient credits"
            self.credits -= CREDITS_PER_CALL
            task = _Task(uuid.uuid4().hex, body, time.monotonic())
            self._tasks[task.id] = task
            self._charge_locked(CENTS_PER_CALL, body)
        if self.callbacks:
            threading.Thread(target=self._call_back, args=(task,), daemon=True, name=f"callback-{task.id[:8]}").start()
        return 200, {"taskId": task.id}, "success"

    def _word(self, task: _Task) -> str:
        age = (time.monotonic() - task.created) / self.seconds_to_ready
        if age < 1 / 3:
            return "PENDING"
        if age < 2 / 3:
            return "TEXT_SUCCESS"
        if age < 1:
            return "FIRST_SUCCESS"
        return "GENERATE_AUDIO_FAILED" if "FAIL" in str(task.body.get("style", "")) else "SUCCESS"

    def _songs(self, task: _Task, word: str) -> list[dict[str, Any]]:
        """The task's two songs as record-info shows them (camelCase)."""
        done = {"SUCCESS": SONGS_PER_CALL, "FIRST_SUCCESS": 1}.get(word, 0)
        return [{"id": song, "audioUrl": f"{self.cdn_url}/audio/{song}.mp3" if i < done else "",
                 "streamAudioUrl": f"{self.cdn_url}/stream/{song}", "imageUrl": f"{self.cdn_url}/image/{song}.jpeg",
                 "prompt": task.body.get("prompt", ""), "modelName": "chirp-v4-5", "title": task.body.get("title", ""),
                 "tags": task.body.get("style", ""), "createTime": "2026-12-06 12:00:00",
                 "duration": self.audio_seconds if i < done else None}
                for i, song in enumerate(task.song_ids)]

    def _details(self, task: _Task) -> dict[str, Any]:
        word = self._word(task)
        failed = word == "GENERATE_AUDIO_FAILED"
        return {"taskId": task.id, "status": word, "type": "chirp-v4-5",
                "response": {"taskId": task.id, "sunoData": [] if failed else self._songs(task, word)},
                "errorCode": 500 if failed else None, "errorMessage": "audio generation failed" if failed else None}

    # --- callbacks -----------------------------------------------------------------------------------

    def _call_back(self, task: _Task) -> None:
        """text, first, then complete (twice: a task may call back several times), or error, at their times."""
        url = task.body["callBackUrl"]
        for stage, at in (("text", 1 / 3), ("first", 2 / 3)):
            time.sleep(max(0.0, task.created + self.seconds_to_ready * at - time.monotonic()))
            self._post(task, url, stage)
        time.sleep(max(0.0, task.created + self.seconds_to_ready - time.monotonic()) + 0.01)
        if self._word(task) != "SUCCESS":
            return self._post(task, url, "error")
        for _ in range(self.complete_copies):
            self._post(task, url, "complete")

    def _post(self, task: _Task, url: str, stage: str) -> None:
        if stage == "error":
            body: dict[str, Any] = {"code": 400, "msg": "audio generation failed",
                                    "data": {"callbackType": "error", "task_id": task.id, "data": None}}
        else:
            word = {"text": "TEXT_SUCCESS", "first": "FIRST_SUCCESS", "complete": "SUCCESS"}[stage]
            songs = [{"id": s["id"], "audio_url": s["audioUrl"], "stream_audio_url": s["streamAudioUrl"],
                      "image_url": s["imageUrl"], "prompt": s["prompt"], "model_name": s["modelName"],
                      "title": s["title"], "tags": s["tags"], "createTime": s["createTime"], "duration": s["duration"]}
                     for s in self._songs(task, word)]
            body = {"code": 200, "msg": "All generated successfully." if stage == "complete" else f"{stage} done",
                    "data": {"callbackType": stage, "task_id": task.id, "data": songs}}
        try:
            status = httpx.post(url, content=json.dumps(body).encode(), timeout=15,
                                headers={"Content-Type": "application/json"}).status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self._callbacks_sent.append((task.id, stage, status))

    # --- the CDN -------------------------------------------------------------------------------------

    async def _cdn_answer(self, request: Request) -> Response:
        found = re.fullmatch(r"/audio/([0-9a-f]+)\.mp3", request.url.path)
        task = next((t for t in list(self._tasks.values()) if found and found[1] in t.song_ids), None)
        if task is None or self._word(task) not in ("FIRST_SUCCESS", "SUCCESS"):
            return Response(b"Not Found", 404)
        seed = task.song_ids.index(found[1]) * 7 + len(task.id)  # the two songs sound apart
        audio = await asyncio.to_thread(tone, seed, self.audio_seconds, "mp3", None)
        return Response(audio, media_type=CONTENT_TYPES["mp3"])
