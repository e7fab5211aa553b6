"""ElevenLabs Music on loopback, written from its docs (not from our profile):
the official SDK's `compose` (github.com/elevenlabs/elevenlabs-python src/elevenlabs/music/raw_client.py, 2026-07)
and https://elevenlabs.io/docs/api-reference/music/compose.

`POST /v1/music?output_format=<fmt>` with the bare key in `xi-api-key` and a JSON body; the 200 answer IS the
audio (raw bytes, sent after the whole generation), errors are JSON: 422 `{"detail": [...]}` (the SDK's
HttpValidationError) for a body the API refuses, 401 for a missing or wrong key. Checked as the SDK documents:
prompt and composition_plan exclusive (one needed); music_length_ms an integer of 3000-600000 and
force_instrumental a boolean, both only with a prompt; seed not with a prompt; output_format one of the
documented words. Charged per minute of audio made (its own price list: $0.30/min, the notes' third-party figure,
to the exact second), once per 200 answer, whether or not the caller reads it whole.

    with ElevenLabsMusic() as api:   # api.base_url, api.api_key, api.posts, api.charges, api.requests
        ...
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from textmusic.testing.providers.origins import ProviderStandIn
from textmusic.testing.standins import Billing, tone

PRICE = Billing(per="minute", millicents=30_000)  # $0.30 per minute of audio
DEFAULT_LENGTH_MS = 30_000  # no music_length_ms: "the model picks" (the stand-in picks 30 s)
MODELS = ("music_v1", "music_v2")  # an open enum in the SDK: other strings pass
MP3_FORMATS = ("mp3_22050_32", "mp3_44100_32", "mp3_44100_64", "mp3_44100_96", "mp3_44100_128", "mp3_44100_192",
               "mp3_48000_128", "mp3_48000_192", "mp3_48000_240", "mp3_48000_320")
OTHER_FORMATS = ("auto", *(f"pcm_{r}" for r in (8000, 16000, 22050, 24000, 44100, 48000)), "ulaw_8000",
                 "alaw_8000", *(f"opus_48000_{k}" for k in (32, 64, 96, 128, 192)))


def _problem(loc: list[Any], msg: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}, 422)


def refusal(body: Any, output_format: str) -> JSONResponse | None:
    """The 422 the API answers to a body its docs do not allow, else None."""
    if output_format not in MP3_FORMATS + OTHER_FORMATS:
        return _problem(["query", "output_format"], f"unknown output_format {output_format!r}")
    if not isinstance(body, dict):
        return _problem(["body"], "the body must be a JSON object")
    prompt, plan = body.get("prompt"), body.get("composition_plan")
    if (prompt is None) == (plan is None):
        return _problem(["body", "prompt"], "exactly one of prompt and composition_plan is required")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        return _problem(["body", "prompt"], "prompt must be a non-empty string")
    length = body.get("music_length_ms")
    if length is not None:
        if prompt is None:
            return _problem(["body", "music_length_ms"], "music_length_ms can only be used with prompt")
        if isinstance(length, bool) or not isinstance(length, int) or not 3000 <= length <= 600_000:
            return _problem(["body", "music_length_ms"], "music_length_ms must be an integer from 3000 to 600000")
    instrumental = body.get("force_instrumental")
    if instrumental is not None and (not isinstance(instrumental, bool) or prompt is None):
        return _problem(["body", "force_instrumental"], "force_instrumental is a boolean, only with prompt")
    if body.get("seed") is not None and prompt is not None:
        return _problem(["body", "seed"], "seed cannot be used in conjunction with prompt")
    if not isinstance(body.get("model_id", MODELS[0]), str):
        return _problem(["body", "model_id"], "model_id must be a string")
    return None


class ElevenLabsMusic(ProviderStandIn):
    """The provider on 127.0.0.1. `cut_after`: 200 answers drop their connection after that many bytes of
    audio (a Content-Length promising the whole), as a network or the provider may cut a long answer."""

    def __init__(self, api_key: str = "sk_standin_elevenlabs_0123456789", seconds_to_answer: float = 0.1,
                 cut_after: int | None = None) -> None:
        self.api_key, self.seconds_to_answer, self.cut_after = api_key, seconds_to_answer, cut_after
        super().__init__(methods=("GET", "POST", "PUT", "DELETE"))

    async def _answer(self, request: Request) -> Response:
        if request.method != "POST" or request.url.path != "/v1/music":
            return JSONResponse({"detail": "Not Found"}, 404)
        body = await self._posted(request)
        if not self._key_ok(request, "", "xi-api-key"):
            return JSONResponse({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}, 401)
        output_format = request.query_params.get("output_format", "auto")
        refused = refusal(body, output_format)
        if refused is not None:
            return refused
        if output_format not in MP3_FORMATS + ("auto",):
            return JSONResponse({"detail": "the stand-in makes mp3 only"}, 501)
        seconds = body.get("music_length_ms", DEFAULT_LENGTH_MS) / 1000
        kbps = "128" if output_format == "auto" else output_format.rsplit("_", 1)[1]
        await asyncio.sleep(self.seconds_to_answer)  # the generation: the answer begins when the audio is made
        number = self._record_charge(PRICE.song_cents(seconds), body)
        audio = tone(number, seconds, "mp3", kbps)
        if self.cut_after is None:
            return Response(audio, 200, media_type="audio/mpeg")
        cut = self.cut_after

        async def cut_off() -> Any:  # part of the promised length, then the connection drops
            yield audio[:cut]
            raise ConnectionAbortedError("the stand-in drops the connection mid-answer")

        return StreamingResponse(cut_off(), 200, headers={"Content-Length": str(len(audio))},
                                 media_type="audio/mpeg")
