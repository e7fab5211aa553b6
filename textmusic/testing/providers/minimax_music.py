"""MiniMax Music on loopback, written from its docs (not from our profile):
https://platform.minimax.io/docs/api-reference/music-generation, the error codes of
https://platform.minimax.io/docs/api-reference/errorcode.md, and the official client github.com/MiniMax-AI/MiniMax-MCP
(server.py `music_generation`, client.py).

`POST /v1/music_generation` with `Authorization: Bearer <key>` and a JSON body; the answer comes when the song is
made: `{"data": {"audio": <hex of the mp3>, "status": 2}, "trace_id", "extra_info": {"music_duration": <ms>,
"music_sample_rate", "music_channel", "bitrate", "music_size"}, "base_resp": {"status_code": 0, "status_msg":
"success"}}`. Errors are HTTP 200 too, with `base_resp.status_code` != 0, `data` null and a `Trace-Id` header:
1004 for a wrong key, 1002 rate limit, 1008 insufficient balance (queued with `fail_next`), and 2013 "invalid
params" for a body the docs do not allow (2013 is not in the notes' list: seen in third-party MiniMax clients).
Checked as documented: a known model; prompt and lyrics lengths by model; lyrics required unless is_instrumental
(music-2.5 and later) or lyrics_optimizer; a prompt required with is_instrumental; audio_setting's enums;
output_format hex or url. Charged per song (its own price list: $0.18, a reseller's music-2.5/2.6 figure), for
success answers only.

    with MiniMaxMusic() as api:   # api.base_url, api.api_key, api.posts, api.charges, api.fail_next
        ...
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from textmusic.testing.providers.origins import ProviderStandIn
from textmusic.testing.standins import Billing, tone

SUBMIT_PATH = "/v1/music_generation"
PRICE = Billing(per="song", millicents=18_000)  # $0.18 per song
# model → (prompt chars, lyrics chars) allowed
MODELS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    **dict.fromkeys(("music-2.5", "music-2.5+", "music-2.6", "music-2.6-free"), ((0, 2000), (1, 3500))),
    "music-2.0": ((0, 2000), (10, 3000)),
    **dict.fromkeys(("music-1.5", "music-01"), ((10, 300), (10, 600))),
}
INSTRUMENTAL_MODELS = ("music-2.5", "music-2.5+", "music-2.6", "music-2.6-free")
SAMPLE_RATES, BITRATES, FORMATS = (16000, 24000, 32000, 44100), (32000, 64000, 128000, 256000), ("mp3", "wav", "pcm")
MESSAGES = {1000: "unknown error", 1002: "rate limit exceeded", 1004: "authentication failed",
            1008: "insufficient balance", 1024: "internal error"}


def invalid(body: Any) -> str | None:
    """Why the API refuses this body (answered as 2013 invalid params), else None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    model = body.get("model")
    if model not in MODELS:
        return f"unknown model {model!r}"
    (p_low, p_high), (l_low, l_high) = MODELS[model]
    prompt, lyrics, instrumental = body.get("prompt", ""), body.get("lyrics"), body.get("is_instrumental", False)
    if not isinstance(prompt, str) or not p_low <= len(prompt) <= p_high:
        return f"prompt must be {p_low}-{p_high} characters for {model}"
    if not isinstance(instrumental, bool) or (instrumental and model not in INSTRUMENTAL_MODELS):
        return f"is_instrumental is a boolean, for {', '.join(INSTRUMENTAL_MODELS)} only"
    if instrumental and not prompt:
        return "prompt is required when is_instrumental"
    if lyrics is None and not instrumental and not body.get("lyrics_optimizer"):
        return "lyrics is required unless is_instrumental or lyrics_optimizer"
    if lyrics is not None and (not isinstance(lyrics, str) or not l_low <= len(lyrics) <= l_high):
        return f"lyrics must be {l_low}-{l_high} characters for {model}"
    setting = body.get("audio_setting", {})
    if not isinstance(setting, dict) or setting.get("sample_rate", 44100) not in SAMPLE_RATES \
            or setting.get("bitrate", 256000) not in BITRATES or setting.get("format", "mp3") not in FORMATS:
        return "audio_setting: sample_rate, bitrate or format not supported"
    if body.get("output_format", "hex") not in ("hex", "url"):
        return "output_format must be hex or url"
    return None


class MiniMaxMusic(ProviderStandIn):
    """The provider on 127.0.0.1. `song_seconds`: the length of every song it makes (the real one follows the
    lyrics). `fail_next`: base_resp codes the next valid requests answer with instead of a song, in order."""

    def __init__(self, api_key: str = "sk-api-standin-minimax-0123456789", song_seconds: float = 12.0,
                 seconds_to_answer: float = 0.1) -> None:
        self.api_key, self.song_seconds, self.seconds_to_answer = api_key, song_seconds, seconds_to_answer
        self.fail_next: list[int] = []
        self._answers: list[tuple[int, int]] = []  # (HTTP status, base_resp.status_code) per POST
        super().__init__(methods=("GET", "POST", "PUT", "DELETE"))

    @property
    def answers(self) -> list[tuple[int, int]]:
        """(HTTP status, base_resp.status_code) of every POST, in order."""
        return self._copy(self._answers)

    async def _answer(self, request: Request) -> Response:
        if request.method != "POST" or request.url.path != SUBMIT_PATH:
            return JSONResponse({"base_resp": {"status_code": 404, "status_msg": "not found"}}, 404)
        return await self._generate(request, await self._posted(request))

    def _recorded(self, request: Request, response: Response) -> None:
        if request.method == "POST" and request.url.path == SUBMIT_PATH:  # every answer carries its base_resp
            self._answers.append((response.status_code, json.loads(response.body)["base_resp"]["status_code"]))

    async def _generate(self, request: Request, body: Any) -> Response:
        if not self._key_ok(request):
            return self._error(1004, "authentication failed: invalid api key")
        why = invalid(body)
        if why is not None:
            return self._error(2013, f"invalid params, {why}")
        await asyncio.sleep(self.seconds_to_answer)  # the generation: the answer comes when the song is made
        with self._lock:
            fault = self.fail_next.pop(0) if self.fail_next else None
            if fault is None:
                number = self._charge_locked(PRICE.song_cents(self.song_seconds), body)
        if fault is not None:
            return self._error(fault, MESSAGES.get(fault, "error"))
        if body.get("output_format", "hex") != "hex" or body.get("audio_setting", {}).get("format", "mp3") != "mp3":
            return self._error(1000, "the stand-in makes hex mp3 answers only")
        setting = body.get("audio_setting", {})
        bitrate = setting.get("bitrate", 256000)
        audio = tone(number, self.song_seconds, "mp3", str(bitrate // 1000))
        trace = uuid.uuid4().hex
        return JSONResponse({
            "data": {"audio": audio.hex(), "status": 2}, "trace_id": trace,
            "extra_info": {"music_duration": round(self.song_seconds * 1000), "music_sample_rate": 44100,
                           "music_channel": 2, "bitrate": bitrate, "music_size": len(audio)},
            "base_resp": {"status_code": 0, "status_msg": "success"}})

    @staticmethod
    def _error(code: int, message: str) -> Response:
        trace = uuid.uuid4().hex
        return JSONResponse({"data": None, "trace_id": trace, "base_resp": {"status_code": code,
                                                                            "status_msg": message}},
                            200, headers={"Trace-Id": trace})
