"""A hostile stand-in provider: a real HTTP server on loopback whose every answer a test chooses.

`standins` plays the shapes a hosted provider's docs allow; this one plays what a broken or malicious
provider may send: the key echoed back in errors, track ids that are paths, numbers that are NaN or 10^25,
JSON nested ten thousand deep, a 404 for a track it charged for. A `Play` decides each answer; the server
records every request as it arrived on the wire (raw path, query, headers), so a test can prove where the key
went and how often a row was paid for.

    class EchoKey(Play):
        def submit(self, api, body, auth):
            return Reply(400, {"success": False, "error": {"message": f"bad header {auth}"}})

    with Hostile(EchoKey()) as api:
        ...
        assert api.posts_per_prompt() == {...}
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from textmusic.client import TextMusicClient
from textmusic.providers import load_profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import CONTENT_TYPES, Loopback, posted_body, song_price_cents, tone

SUBMIT_PATH = "/api/v1/text-to-music"
STATUS_PREFIX = SUBMIT_PATH + "/"
API_KEY = "vbt_hostile_key_5f3c9a71d2e84b06"
AUDIO_SECONDS = 10.0
_NO_JSON = object()


@dataclass
class Reply:
    """One answer: a status, then a JSON value (`body`), raw bytes (`raw`) or a stream of chunks."""

    status: int = 200
    body: Any = _NO_JSON
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Callable[[], Iterator[bytes]] | None = None
    media_type: str = "application/json"

    def response(self) -> Response:
        if self.chunks is not None:
            return StreamingResponse(self.chunks(), self.status, headers=self.headers, media_type=self.media_type)
        if self.raw is not None:
            return Response(self.raw, self.status, headers=self.headers, media_type=self.media_type)
        text = json.dumps(self.body, allow_nan=True) if self.body is not _NO_JSON else ""
        return Response(text, self.status, headers=self.headers, media_type=self.media_type)


@dataclass
class Song:
    id: str
    prompt: str
    seed: int
    fmt: str
    created: float = field(default_factory=time.monotonic)


class Play:
    """An honest provider (accepts, pending for `ready_after` s, then ready with a real file): subclasses
    override the answers they corrupt."""

    ready_after = 0.3

    def new_id(self, api: Hostile, body: dict[str, Any], index: int) -> str:
        return uuid.uuid4().hex

    def submit(self, api: Hostile, body: Any, auth: str) -> Reply:
        songs = api.accept(body, self)
        return Reply(200, {"success": True, "tracks": [self.track(api, s) for s in songs]})

    def track(self, api: Hostile, song: Song) -> dict[str, Any]:
        if time.monotonic() - song.created < self.ready_after:
            return {"id": song.id, "status": "pending"}
        audio_url = f"{api.base_url}/audio/{quote(song.id, safe='')}.{song.fmt}"
        return {"id": song.id, "status": "ready", "audio_url": audio_url,
                "duration_seconds": AUDIO_SECONDS, "cost_cents": song_price_cents(AUDIO_SECONDS), "seed": song.seed}

    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        song = api.song(track_id)
        if song is None:
            return Reply(404, {"success": False, "error": {"code": "not_found", "message": "no such track"}})
        return Reply(200, self.track(api, song))

    def audio(self, api: Hostile, song: Song) -> Reply:
        return Reply(200, raw=tone(song.seed, AUDIO_SECONDS, song.fmt), media_type=CONTENT_TYPES[song.fmt])


class Hostile:
    """The server. `play` may be replaced while it runs (a second run against another behaviour)."""

    def __init__(self, play: Play) -> None:
        self.play = play
        self._lock = threading.Lock()
        self._songs: dict[str, Song] = {}
        self.posts: list[Any] = []
        self.requests: list[tuple[str, str, str]] = []  # method, raw path with query, Authorization header
        routes = [Route("/{rest:path}", self._endpoint, methods=["GET", "POST", "PUT", "DELETE"])]
        self._server = Loopback(Starlette(routes=routes))

    def __enter__(self) -> Hostile:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def accept(self, body: Any, play: Play) -> list[Song]:
        """Charge a submission: its songs, remembered for status and audio."""
        body = body if isinstance(body, dict) else {}
        seed = body.get("seed") if isinstance(body.get("seed"), int) else 1
        songs = [Song(play.new_id(self, body, i), str(body.get("prompt") or ""), (seed + i) % 2**32,
                      str(body.get("output_format") or "wav")) for i in range(int(body.get("num_songs") or 1))]
        with self._lock:
            self._songs.update((s.id, s) for s in songs)
        return songs

    def song(self, track_id: str) -> Song | None:
        with self._lock:
            return self._songs.get(track_id)

    def posts_per_prompt(self) -> Counter[str]:
        with self._lock:
            return Counter(str(p.get("prompt")) if isinstance(p, dict) else "?" for p in self.posts)

    def paths(self) -> list[str]:
        with self._lock:
            return [path for _, path, _ in self.requests]

    async def _endpoint(self, request: Request) -> Response:
        raw_path = request.scope["raw_path"].decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        auth = request.headers.get("authorization", "")
        with self._lock:
            self.requests.append((request.method, raw_path + (f"?{query}" if query else ""), auth))
        if request.method == "POST" and raw_path == SUBMIT_PATH:
            body = await posted_body(request)
            with self._lock:
                self.posts.append(body)
            return self.play.submit(self, body, auth).response()
        if request.method == "GET" and raw_path.startswith(STATUS_PREFIX) and not query:
            return self.play.status(self, unquote(raw_path[len(STATUS_PREFIX):]), auth).response()
        if request.method == "GET" and raw_path.startswith("/audio/"):
            song = self.song(unquote(raw_path[len("/audio/"):].rsplit(".", 1)[0]))
            if song is not None:
                return self.play.audio(self, song).response()
        return Reply(404, {"success": False, "error": {"code": "not_found", "message": "no route"}}).response()


def profile_toml(api: Hostile, **extra: object) -> str:
    """The hosted profile pointed at the stand-in, quick to poll."""
    lines = ['name = "hostile"', f'base_url = "{api.base_url}"', "expected_ready_seconds = 0.3"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def client_for(api: Hostile, **settings: Any) -> TextMusicClient:
    profile = load_profile("verbatik").model_copy(update={"expected_ready_seconds": 0.3})
    quick = TextMusicSettings(poll_deadline_seconds=settings.pop("poll_deadline_seconds", 6.0), max_attempts=2,
                              poll_max_interval_seconds=0.5, request_timeout_seconds=10, **settings)
    return TextMusicClient(api.base_url, API_KEY, profile=profile, settings=quick)
