"""The client against a HOSTILE provider, over real HTTP on loopback: one that echoes the key back, answers
with huge, deep or non-finite JSON, hands out ids that are paths, and serves bombs and endless or stalled
downloads. Each test's origin is a small Starlette app whose answer the test writes."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import tracemalloc
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from textmusic.client import (
    DownloadLimit,
    Gone,
    InvalidRequest,
    Refused,
    ServerError,
    TextMusicClient,
    TextMusicError,
    UnreadableAnswer,
    UnreadableStatus,
)
from textmusic.contract import TextToMusicRequest, Track
from textmusic.providers import load_profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import Loopback

KEY = "vbt+hostile/key=0123456789abcdef"
SPELLINGS = (KEY, quote(KEY, safe=""), quote(KEY, safe="").lower(), quote_plus(KEY))
STATUS = "/api/v1/text-to-music/"
REQUEST = TextToMusicRequest(prompt="calm piano", seed=5)
MiB = 1 << 20
Endpoint = Callable[[Request], Awaitable[Response]]


class Origin:
    """A loopback origin answering every request with `endpoint`; records each request's method and RAW
    path (as sent, before any decoding) and whether it carried an Authorization header."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.seen: list[tuple[str, str, bool]] = []
        methods = ["GET", "POST"]
        self._server = Loopback(Starlette(routes=[Route("/{path:path}", self._answer, methods=methods)]))

    async def _answer(self, request: Request) -> Response:
        raw = request.scope["raw_path"].decode() + (f"?{request.url.query}" if request.url.query else "")
        self.seen.append((request.method, raw, "authorization" in request.headers))
        return await self.endpoint(request)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def gets(self) -> int:
        return sum(1 for method, _, _ in self.seen if method == "GET")


@contextmanager
def origin(endpoint: Endpoint) -> Iterator[Origin]:
    site = Origin(endpoint)
    site._server.start()
    try:
        yield site
    finally:
        site._server.stop()


def client_for(site: Origin, **settings: Any) -> TextMusicClient:
    values = {"max_attempts": 3, "request_timeout_seconds": 10.0, "connect_timeout_seconds": 5.0, **settings}
    profile = load_profile("verbatik").model_copy(update={"name": f"hostile-{uuid.uuid4().hex[:8]}"})
    return TextMusicClient(site.url, KEY, profile=profile, settings=TextMusicSettings(**values))


def leaks(text: str) -> bool:
    return any(form in text for form in SPELLINGS)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tenacity.nap.time.sleep", lambda seconds: None)


# --- 1. the key echoed back -----------------------------------------------------------------------------


def echoing(status: int, shape: str) -> Endpoint:
    """A provider that puts what it received as Authorization (the header, the bare key, the key
    percent-encoded) into its answer."""

    async def endpoint(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        key = header.removeprefix("Bearer ")
        echo = f"token {header} / {key} / {quote(key, safe='')} / {quote_plus(key)}"
        if shape == "error":
            return JSONResponse({"success": False, "error": {"code": f"bad_{key}", "message": echo}}, status)
        if shape == "refusal":
            return JSONResponse({"success": False, "error": {"message": echo}}, status)
        if shape == "html":
            return Response(f"<html><body>Request received from {echo}</body></html>", status,
                            media_type="text/html")
        return JSONResponse({"id": "t1", "status": "failed", "error": echo, "name": key, "note": echo}, status)

    return endpoint


@pytest.mark.parametrize(("status", "shape", "expected"), [
    (400, "error", InvalidRequest), (500, "error", ServerError), (200, "refusal", Refused),
    (200, "html", UnreadableAnswer)])
def test_a_key_echoed_in_an_answer_reaches_no_error_or_raw_text(status: int, shape: str,
                                                                 expected: type[TextMusicError]) -> None:
    with origin(echoing(status, shape)) as site, pytest.raises(expected) as info:
        client_for(site).submit(REQUEST)
    exc = info.value
    kept = [str(exc), repr(exc), exc.message, exc.code or "", getattr(exc, "raw", "")]
    assert not any(leaks(text) for text in kept), kept
    assert "[redacted]" in exc.message + getattr(exc, "raw", "")  # the echo is kept to read, without the key


def test_a_key_echoed_in_a_failed_tracks_error_reaches_no_track_field() -> None:
    with origin(echoing(200, "track")) as site:
        track = client_for(site).get_track("t1")
    assert track.status == "failed" and "[redacted]" in (track.error or "")
    assert not leaks(track.model_dump_json())


# --- 2. another origin's error body ---------------------------------------------------------------------

CDN_SECRET = "cdn-session-token-7f3a9c1e5b"


@pytest.mark.parametrize(("route", "status", "expected"), [("direct", 403, TextMusicError), ("redirect", 410, Gone)])
def test_another_origins_error_body_is_never_copied(route: str, status: int, expected: type[TextMusicError],
                                                    tmp_path: Path) -> None:
    body = f"<Error><Code>AccessDenied</Code><Token>{CDN_SECRET}</Token></Error>"

    async def cdn_endpoint(request: Request) -> Response:
        return Response(body, status, media_type="application/xml")

    with origin(cdn_endpoint) as cdn:
        async def api_endpoint(request: Request) -> Response:
            return RedirectResponse(f"{cdn.url}/files/a.mp3?sig=abc", 302)

        with origin(api_endpoint) as api, pytest.raises(expected) as info:
            audio_url = f"{cdn.url}/files/a.mp3" if route == "direct" else f"{api.url}/audio/a.mp3"
            client_for(api).download(Track(id="t1", audio_url=audio_url), tmp_path / "a.mp3")
    message = str(info.value)
    assert info.value.status == status and CDN_SECRET not in message and "AccessDenied" not in message
    assert f"{len(body)} bytes" in message
    assert not any(auth for _, _, auth in cdn.seen)


# --- 3. track ids that are paths --------------------------------------------------------------------------


@pytest.mark.parametrize(("track_id", "sent"), [
    ("../../../admin/x", "..%2F..%2F..%2Fadmin%2Fx"), ("q?token=1", "q%3Ftoken%3D1"), ("..", "%2E%2E"),
    ("a#b%2F", "a%23b%252F")])
def test_a_track_id_is_one_segment_of_the_status_path(track_id: str, sent: str) -> None:
    async def endpoint(request: Request) -> Response:
        return JSONResponse({"id": "t1", "status": "pending"})

    with origin(endpoint) as site:
        client_for(site).get_track(track_id)
    assert site.seen == [("GET", STATUS + sent, True)]


@pytest.mark.parametrize("bad_id", ["", "x" * 257, "a\nb", "a\x00b", "tab\there"])
def test_an_unusable_track_id_in_an_answer_is_unreadable(bad_id: str) -> None:
    async def endpoint(request: Request) -> Response:
        track = {"id": bad_id, "status": "pending"}
        return JSONResponse({"success": True, "tracks": [track]} if request.method == "POST" else track)

    with origin(endpoint) as site:
        client = client_for(site)
        with pytest.raises(UnreadableStatus):
            client.get_track("t1")
        with pytest.raises(UnreadableAnswer):
            client.submit(REQUEST)
    assert [method for method, _, _ in site.seen] == ["GET", "POST"]  # neither retried nor resent


# --- 4. numbers from outside ----------------------------------------------------------------------------

NUMBER_FIELDS = ("duration_seconds", "cost_cents", "bpm", "seed")


@pytest.mark.parametrize("values", [
    ("NaN", "Infinity", "-Infinity", "NaN"), ("1e400", "1e400", "1e400", "1e400"),
    ("-1", "-5", "-120", "-7"), ("86401", "1000000001", "1001", "4294967296"), ('"1e400"', '"NaN"', '"0.5"', '"-1"'),
    ("1" + "0" * 400, "1" + "0" * 400, "0", "1" + "0" * 400)])
def test_non_finite_negative_or_absurd_numbers_count_as_missing(values: tuple[str, ...],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    fields = ", ".join(f'"{name}": {value}' for name, value in zip(NUMBER_FIELDS, values, strict=True))
    body = f'{{"id": "t1", "status": "ready", "audio_url": "https://cdn.example/a.mp3", {fields}}}'

    async def endpoint(request: Request) -> Response:
        if request.method == "POST":
            return Response(f'{{"success": true, "cost_cents": {values[1]}, "tracks": [{body}]}}',
                            media_type="application/json")
        return Response(body, media_type="application/json")

    caplog.set_level(logging.WARNING, logger="textmusic.providers.reader")
    with origin(endpoint) as site:
        client = client_for(site)
        tracks = [client.get_track("t1"), client.get_track("t1"), *client.submit(REQUEST).tracks]
    for track in tracks:
        assert [getattr(track, name) for name in NUMBER_FIELDS] == [None] * 4
    warned = [r.getMessage() for r in caplog.records if r.name == "textmusic.providers.reader"]
    for name in NUMBER_FIELDS:  # once per provider and field, however often it is answered
        assert sum(f" {name} = " in message for message in warned) == 1, warned


def test_plausible_numbers_are_kept() -> None:
    async def endpoint(request: Request) -> Response:
        return JSONResponse({"id": "t1", "audio_url": "https://cdn.example/a.mp3", "duration_seconds": 86400,
                             "cost_cents": 0, "bpm": 1000, "seed": 2**32 - 1})

    with origin(endpoint) as site:
        track = client_for(site).get_track("t1")
    assert (track.duration_seconds, track.cost_cents, track.bpm, track.seed) == (86400, 0, 1000, 2**32 - 1)


# --- 5. answers too large or too deep ---------------------------------------------------------------------


def test_a_200_mb_status_answer_is_refused_without_reading_it() -> None:
    async def endpoint(request: Request) -> Response:
        async def body() -> Any:
            chunk = b" " * MiB
            yield b'{"id": "t1", "pad": "'
            for _ in range(200):
                yield chunk
            yield b'"}'

        return StreamingResponse(body(), media_type="application/json")

    with origin(endpoint) as site:
        client = client_for(site)
        tracemalloc.start()
        try:
            with pytest.raises(UnreadableStatus, match="larger than"):
                client.get_track("t1")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert site.gets() == 1
    assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.parametrize("answer", [
    "[" * 100_000, '{"id": "t1", "x": ' + "[" * 80 + "]" * 80 + "}", "<html><body>Bad Gateway</body></html>",
    '{"status": "ready"}', '{"id": "t1", "status": NaN'])
def test_an_unreadable_status_answer_is_not_retried(answer: str) -> None:
    async def endpoint(request: Request) -> Response:
        return Response(answer, media_type="application/json")

    with origin(endpoint) as site, pytest.raises(UnreadableStatus):
        client_for(site).get_track("t1")
    assert site.gets() == 1


@pytest.mark.parametrize("answer", [b"[" * 100_000, b'{"tracks": [{"id": "t1", "x": ' + b"[" * 70 + b"]" * 70 + b"}]}",
                                    b'{"success": true, "tracks": [{"id": "t1", "pad": "' + b"x" * 2 * MiB + b'"}]}'])
def test_a_too_deep_or_too_large_submission_answer_is_accepted_and_never_resent(answer: bytes) -> None:
    async def endpoint(request: Request) -> Response:
        return Response(answer, media_type="application/json")

    with origin(endpoint) as site, pytest.raises(UnreadableAnswer):
        client_for(site, max_answer_bytes=MiB).submit(REQUEST)
    assert [method for method, _, _ in site.seen] == ["POST"]


# --- 6. downloads with limits ---------------------------------------------------------------------------


class PeakSize:
    """The largest size `path` reached while the block ran (sampled every millisecond)."""

    def __init__(self, path: Path) -> None:
        self.path, self.peak, self._done = path, 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.wait(0.001):
            with suppress(FileNotFoundError):
                self.peak = max(self.peak, self.path.stat().st_size)

    def __enter__(self) -> PeakSize:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def test_a_gzip_bomb_stops_within_a_few_mb(tmp_path: Path) -> None:
    async def endpoint(request: Request) -> Response:
        def bomb() -> Iterator[bytes]:  # 2 GiB of zeros, ~2 MB gzipped, compressed as it is pulled
            packer, zeros = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(MiB)
            for _ in range(2048):
                yield packer.compress(zeros)
            yield packer.flush()

        return StreamingResponse(bomb(), media_type="audio/wav", headers={"Content-Encoding": "gzip"})

    dest = tmp_path / "a.wav"
    with origin(endpoint) as site, PeakSize(dest) as size:
        start = time.monotonic()
        with pytest.raises(DownloadLimit) as info:
            client_for(site).download(Track(id="t1", audio_url="/audio/a.wav"), dest)
        elapsed = time.monotonic() - start
    print(f"gzip bomb: stopped after {elapsed:.2f} s, dest peaked at {size.peak / MiB:.1f} MiB")
    assert info.value.limit == "ratio" and site.gets() == 1 and not dest.exists()
    assert size.peak <= 8 * MiB


def test_a_content_length_over_the_limit_is_refused_unread_and_not_retried(tmp_path: Path) -> None:
    async def endpoint(request: Request) -> Response:
        async def trickle() -> Any:
            yield b"RIFF" * 256
            await asyncio.sleep(30)  # cancelled when the client hangs up

        return StreamingResponse(trickle(), media_type="audio/wav", headers={"Content-Length": str(5 << 30)})

    dest = tmp_path / "a.wav"
    with origin(endpoint) as site, pytest.raises(DownloadLimit, match="Content-Length") as info:
        client_for(site, max_attempts=6).download(Track(id="t1", audio_url="/audio/a.wav"), dest)
    assert info.value.limit == "bytes" and site.gets() == 1 and not dest.exists()


def endless(pause: float = 0.0, chunk: bytes = b"\0" * 65536, count: int = 10**9) -> Endpoint:
    """Audio that never ends (or trickles `chunk` every `pause` seconds, `count` times)."""

    async def endpoint(request: Request) -> Response:
        async def body() -> Any:
            for _ in range(count):
                yield chunk
                await asyncio.sleep(pause)

        return StreamingResponse(body(), media_type="audio/wav")

    return endpoint


@pytest.mark.parametrize("how", ["settings", "argument"])
def test_an_endless_download_stops_at_the_byte_limit(how: str, tmp_path: Path) -> None:
    dest = tmp_path / "a.wav"
    with origin(endless()) as site:
        if how == "settings":
            client, max_bytes = client_for(site, max_download_bytes=4 * MiB), None
        else:
            client, max_bytes = client_for(site), 4 * MiB
        with pytest.raises(DownloadLimit, match=str(4 * MiB)) as info:
            client.download(Track(id="t1", audio_url="/audio/a.wav"), dest, max_bytes=max_bytes)
    assert info.value.limit == "bytes" and site.gets() == 1 and not dest.exists()


def test_a_stalled_download_stops_after_the_stall_time(tmp_path: Path) -> None:
    dest = tmp_path / "a.wav"
    with origin(endless(pause=3.0, chunk=b"R", count=4)) as site:
        client = client_for(site, download_stall_seconds=0.5, max_attempts=1)
        start = time.monotonic()
        with pytest.raises(ServerError, match="ReadTimeout"):
            client.download(Track(id="t1", audio_url="/audio/a.wav"), dest)
        elapsed = time.monotonic() - start
    assert elapsed < 2.5 and not dest.exists()


def test_a_trickling_download_stops_at_its_deadline(tmp_path: Path) -> None:
    dest = tmp_path / "a.wav"
    with origin(endless(pause=0.1, chunk=b"R", count=100)) as site:
        client = client_for(site, download_stall_seconds=1.0, download_deadline_seconds=1.0)
        start = time.monotonic()
        with pytest.raises(DownloadLimit) as info:
            client.download(Track(id="t1", audio_url="/audio/a.wav"), dest)
        elapsed = time.monotonic() - start
    assert info.value.limit == "deadline" and elapsed < 3.0 and not dest.exists()


def test_a_download_within_its_limits_is_kept(tmp_path: Path) -> None:
    audio = bytes(range(256)) * 4096  # 1 MiB, gzipped on the wire

    async def endpoint(request: Request) -> Response:
        return Response(zlib.compress(audio, wbits=31), media_type="audio/wav", headers={"Content-Encoding": "gzip"})

    dest = tmp_path / "a.wav"
    with origin(endpoint) as site:
        got = client_for(site, max_download_bytes=2 * MiB).download(Track(id="t1", audio_url="/a.wav"), dest)
    assert dest.read_bytes() == audio and got.bytes_written == len(audio) and got.wire_bytes < len(audio)


def test_a_download_error_of_the_own_origin_keeps_its_message(tmp_path: Path) -> None:
    async def endpoint(request: Request) -> Response:
        return JSONResponse({"success": False, "error": {"code": "gone", "message": "this audio has expired"}}, 410)

    with origin(endpoint) as site, pytest.raises(Gone, match="this audio has expired"):
        client_for(site).download(Track(id="t1", audio_url="/audio/a.wav"), tmp_path / "a.wav")
