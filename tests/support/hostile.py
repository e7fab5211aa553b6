"""A hostile stand-in provider: a real HTTP server on loopback whose every answer a test chooses.

`tests/support/standins.py` plays the shapes a hosted provider's docs allow; this one plays what a broken or malicious
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
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tasks.catalog.ledger import LedgerRecord
from tasks.intake.plan import PlannedRow, plan_rows
from tasks.intake.validate import BriefRow
from tasks.settings import PipelineSettings
from tests.support.generation import CATALOG, run_rows
from tests.support.standins import CONTENT_TYPES, _Loopback, posted_body, song_price_cents, tone
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest, price_cents
from textmusic.providers import load_profile
from textmusic.settings import TextMusicSettings

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
        self._server = _Loopback(Starlette(routes=routes))

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


SETTINGS = PipelineSettings(outage_probe_seconds=0.2, outage_budget_seconds=2.0, initial_in_flight=8,
                            lost_confirm_polls=3, lost_confirm_seconds=0.6)


KEY_SPELLINGS = (API_KEY, f"Bearer {API_KEY}", quote(API_KEY, safe=""))


RUN_BOUND_SECONDS = 120  # no run below may take longer: past it, the run hangs


def rows(*prompts: str) -> list[PlannedRow]:
    briefs = [BriefRow(i + 1, f"t{i + 1}", f"Song {i + 1}",
                       TextToMusicRequest(prompt=p, seed=i + 1, output_format="wav")) for i, p in enumerate(prompts)]
    return plan_rows(briefs, CATALOG.name, "hostile", False)


def client_for(api: Hostile, **settings: Any) -> TextMusicClient:
    profile = load_profile("verbatik").model_copy(update={"expected_ready_seconds": 0.3})
    quick = TextMusicSettings(poll_deadline_seconds=settings.pop("poll_deadline_seconds", 6.0), max_attempts=2,
                              poll_max_interval_seconds=0.5, request_timeout_seconds=10, **settings)
    return TextMusicClient(api.base_url, API_KEY, profile=profile, settings=quick)


def bounded_run(planned: list[PlannedRow], client: TextMusicClient, out: Path, previous: Any = (),
                settings: PipelineSettings = SETTINGS) -> tuple[list[LedgerRecord], list[LedgerRecord]]:
    """run_rows in a thread that must end within RUN_BOUND_SECONDS: a hang fails the test instead of the suite."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(run_rows(planned, client, out, previous,
                                                                     settings=settings)), daemon=True)
    worker.start()
    worker.join(RUN_BOUND_SECONDS)
    assert result, f"the run did not end within {RUN_BOUND_SECONDS} s"
    return result[0]


def assert_no_key(texts: list[str]) -> None:
    for text in texts:
        for spelling in KEY_SPELLINGS:
            assert spelling not in text, f"the key reached an output: {text[:300]!r}"


def every_file_text(root: Path) -> list[str]:
    return [p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file()]


def assert_money_sane(records: list[LedgerRecord], songs: int) -> None:
    worst = math.ceil(price_cents(PipelineSettings().max_minutes_per_song * 60) * 1.5)
    for record in records:
        assert 0 <= record.cost_cents <= worst, record
        assert record.duration_seconds is None or 0 <= record.duration_seconds <= 3600, record
        assert math.isfinite(record.cost_usd) and record.cost_usd >= 0
    assert sum(r.cost_cents for r in records) <= songs * worst


class EchoKey(Play):
    """Every error it can make carries the request's Authorization header, the bare key and its URL form."""

    def _echo(self, auth: str) -> str:
        return f"header was {auth!r}; key {auth.removeprefix('Bearer ')}; url ?key={quote(API_KEY, safe='')}"

    def submit(self, api: Hostile, body: Any, auth: str) -> Reply:
        prompt = str(body.get("prompt")) if isinstance(body, dict) else ""
        if "reject" in prompt:
            return Reply(400, {"success": False, "error": {"code": "invalid_input", "message": self._echo(auth)}})
        if "refuse" in prompt:
            return Reply(200, {"success": False, "error": {"message": self._echo(auth)}})
        if "unreadable" in prompt:
            api.accept(body, self)
            return Reply(200, raw=f"<html>accepted for {self._echo(auth)}</html>".encode(), media_type="text/html")
        return super().submit(api, body, auth)

    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        song = api.song(track_id)
        if song is not None and "fail" in song.prompt:
            return Reply(200, {"id": track_id, "status": "failed", "error": self._echo(auth)},
                         headers={"X-Echo": auth})
        return super().status(api, track_id, auth)

    def audio(self, api: Hostile, song: Song) -> Reply:
        if "cdn" in song.prompt:
            return Reply(403, raw=b"<Error>AccessDenied for token cdn-secret-token-77</Error>", media_type="text/xml")
        return super().audio(api, song)


class NeverReady(Play):
    ready_after = 1e9
