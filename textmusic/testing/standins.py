"""Stand-ins for HOSTED Text-to-Music providers: real HTTP servers on loopback that answer in shapes the
hosted docs allow but our own local service never produces.

The hosted service documents the request fully and the response only in part (track fields id, name,
audio_url, seed, tags; no status endpoint; nothing on redirects, encodings or outages). Our local service
is one reading of that page; a client tested only against it is tested against its author's assumptions.
`StandIn` is one configurable app whose `Shape` picks another reading: other status words, other keys,
202 answers, audio behind a redirect to a CDN, gzip on the wire, HTML from a load balancer, and so on.

    with StandIn(Shape(submit_status=202, seconds_to_ready=1.0, audio="redirect")) as api:
        client = TextMusicClient(api.base_url, api.api_key, settings=...)
        ...
        assert api.cdn_auth_seen == []

Everything a test checks afterwards (posts, charges, requests, polls) is recorded thread-safely. `shape`
may be replaced while running (`api.shape = dataclasses.replace(api.shape, gone_audio=True)`): each
request reads the current one.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import hashlib
import hmac
import io
import json
import math
import re
import secrets
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from email.utils import formatdate
from fractions import Fraction
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

SAMPLE_RATE = 44100
CENTS_PER_MINUTE = 20  # the hosted price: $0.20 per minute of audio, per song
CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg",
                 "m4a": "audio/mp4"}
OUTAGE_PAGE = ("<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
               "<center><h1>503 Service Temporarily Unavailable</h1></center></body></html>")


@dataclass(frozen=True)
class Billing:
    """How a stand-in charges: the provider's own rule, as its price list states it. Written here from the
    price list, not from `textmusic.pricing` (what the pipeline prices with), so a test can hold one to the
    other. The default is the seed's: $0.20 per minute of audio, per song, rounded up to the cent."""

    per: Literal["minute", "second", "song", "call"] = "minute"
    millicents: int = CENTS_PER_MINUTE * 1000  # the price of one minute, second, song or call, in 1/1000 cent
    songs_per_call: int = 1  # per call: the songs one call makes (a submission asking more takes more calls)
    step_seconds: int = 0  # per minute/second: the length billed is rounded up to a multiple of this (0: exact)
    minimum_cents: int = 0  # per minute/second: the least a song is charged

    def song_cents(self, seconds: float) -> int:
        """What one song of `seconds` is charged (per call: what its call is charged)."""
        if self.per in ("song", "call"):
            return -(-self.millicents // 1000)
        billed = Fraction(repr(float(seconds)))
        if self.step_seconds:
            billed = math.ceil(billed / self.step_seconds) * self.step_seconds
        unit = 60 if self.per == "minute" else 1
        return max(self.minimum_cents, math.ceil(billed * self.millicents / (unit * 1000)))

    def submission_cents(self, num_songs: int, seconds: float) -> int:
        if self.per == "call":
            return -(-num_songs // self.songs_per_call) * self.song_cents(seconds)
        return num_songs * self.song_cents(seconds)

    def reported_cents(self, index: int, seconds: float) -> int:
        """The cost this provider reports on song `index` of a submission: its own charge, or (per call) the
        call's charge on the call's first song and 0 on the others."""
        if self.per == "call":
            return self.song_cents(seconds) if index % self.songs_per_call == 0 else 0
        return self.song_cents(seconds)


@dataclass(frozen=True)
class Shape:
    """One reading of the hosted docs. Defaults = the local service's own shape minus its extensions."""

    # submission
    submit_path: str = "/api/v1/text-to-music"
    submit_status: int = 200  # 200, 201 or 202 for an accepted submission
    unreadable_submit: Literal["html", "truncated"] | None = None  # accepted and charged, body not the JSON
    success_false_in_2xx: bool = False  # 200 {"success": false, "error": {"message": ...}}; not charged
    submit_faults_first: int | None = None  # the two faults above hit only the first N submissions (None: all)
    # track shape
    status_path: str = "/api/v1/text-to-music/{id}"
    tracks_key: str = "tracks"
    id_field: str = "id"
    audio_field: str = "audio_url"
    status_field: str | None = "status"  # None: no status; a track is ready when it has an audio URL
    pending_words: tuple[str, ...] = ("pending",)  # shown in turn over seconds_to_ready
    ready_word: str = "ready"
    failed_word: str = "failed"
    fail_seeds: frozenset[int] = frozenset()  # songs with these seeds end failed (with an "error")
    duration_field: str | None = None  # None: duration not reported
    cost_field: str | None = None  # None: cost not reported; else per track and top level, in cents
    billing: Billing = Billing()  # what a submission is charged (`charges`)
    numbers_as_strings: bool = False  # seed, duration and cost as JSON strings
    seconds_to_ready: float = 0.0  # 0: ready in the submission's answer itself
    # audio
    audio_seconds: float = 10.0
    audio_bytes: bytes | None = None  # served instead of a tone, whatever the seed (real music: set audio_seconds)
    audio: Literal["direct", "redirect", "cdn"] = "direct"
    redirect_status: int = 302  # for audio="redirect": 301, 302, 303, 307 or 308
    content_encoding: Literal["gzip", "br"] | None = None  # compressed on the wire whatever Accept-Encoding says
    chunked: bool = False  # audio streamed with Transfer-Encoding: chunked, no Content-Length
    gone_audio: bool = False  # downloads answer 410
    audio_delay_seconds: float = 0.0  # a slow CDN: each audio answer starts this late
    # access
    api_key: str = "vbt_standin_0123456789abcdef"
    auth_header: str = "Authorization"  # "Authorization" takes "Bearer <key>"; any other header the bare key
    rate_limit: tuple[int, float] | None = None  # (requests, window seconds) on the API origin, else 429
    retry_after_date: bool = False  # 429's Retry-After as an HTTP date instead of seconds
    # a synchronous provider: the submission's answer (after seconds_to_ready) is the audio itself ("body"), or
    # JSON {"data": {"audio": <hex or base64>}}; its connection may drop after `sync_cut_after` bytes of answer
    sync: Literal["body", "hex", "base64"] | None = None
    sync_cut_after: int | None = None
    sync_id_header: str = "request-id"  # names the generation in a synchronous answer ("": not named)
    sync_echo_key: bool = False  # ... with the caller's API key instead of its id (a hostile provider)
    # which bodies a submission takes: the seed API's, or "styled" (a provider with a body of its own, STYLED):
    # anything else is a 400, as the real API would answer it
    request_rules: Literal["seed", "styled"] = "seed"
    # callbacks: the URL found at `callback_field` of a submission's body is POSTed
    # `{"event": word, "track": <the status answer's track>}` at each word of `callback_stages` (spread over
    # seconds_to_ready) and then `callback_copies` times once the track is done; "signed" adds Standard Webhooks
    # headers (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>)
    # made with `callback_secret`. `late_word` (e.g. "failed") is sent, signed alike, after the last copy.
    # Only loopback URLs are called: another one is a 400 at submission.
    callbacks: Literal["unsigned", "signed", "lost"] | None = None
    callback_field: str = "callBackUrl"
    callback_secret: str = ""
    callback_stages: tuple[str, ...] = ()
    callback_copies: int = 1
    late_word: str | None = None


def song_price_cents(seconds: float) -> int:
    return math.ceil(round(seconds * CENTS_PER_MINUTE / 60.0, 6))


@functools.lru_cache(maxsize=64)
def tone(seed: int, seconds: float, fmt: str, bit_rate: str | None = None) -> bytes:
    """Decodable audio: a stereo sine whose pitch follows the seed, so two songs are told apart by ear."""
    frames = round(seconds * SAMPLE_RATE)
    freq = 220.0 * 2 ** ((seed % 36) / 12)
    t = np.arange(frames) / SAMPLE_RATE
    wave = 0.3 * np.sin(2 * np.pi * freq * t) * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    pcm = (np.stack([wave, wave * 0.8], axis=1) * 32767).astype("<i2")
    kbps = bit_rate or "192"
    if fmt == "mp3":
        command = ["lame", "--quiet", "-r", "-s", "44.1", "--bitwidth", "16", "--signed", "--little-endian",
                   "-m", "j", "-b", kbps, "--cbr", "-", "-"]
        return subprocess.run(command, input=pcm.tobytes(), capture_output=True, check=True).stdout
    out = io.BytesIO()
    if fmt == "m4a":
        import av

        with av.open(out, mode="w", format="ipod") as container:
            stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
            stream.bit_rate = int(kbps) * 1000
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray((pcm.T / 32768).astype(np.float32)),
                                               format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, 0, Fraction(1, SAMPLE_RATE)
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                container.mux(packet)
        return out.getvalue()
    import soundfile

    fmt_subtype = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}[fmt]
    with soundfile.SoundFile(out, "w", SAMPLE_RATE, 2, format=fmt_subtype[0], subtype=fmt_subtype[1]) as f:
        for start in range(0, frames, 65536):  # libsndfile's Vorbis encoder dislikes one huge write
            f.write(pcm[start:start + 65536])
    return out.getvalue()


def encode_wire(data: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=1)
    if encoding == "br":
        import brotli  # imported here: only br shapes need it

        return brotli.compress(data, quality=1)
    return data


async def posted_body(request: Request) -> Any:
    """A submission's body as the provider saw it: its JSON, or its text when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def error_body(code: str, message: str) -> dict[str, Any]:
    """The documented error body."""
    return {"success": False, "error": {"code": code, "message": message}}


@dataclass
class _Song:
    id: str
    name: str | None
    seed: int
    tags: list[str] | None
    fmt: str
    bit_rate: str | None
    index: int = 0  # its place among the songs of its submission
    created: float = field(default_factory=time.monotonic)


class Loopback:
    """A uvicorn server in a daemon thread on 127.0.0.1; `port` is kept across stop/start."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.app, self.port = app, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"standin-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"stand-in server on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self, wait: bool = True) -> None:
        """Stop listening and close connections (uvicorn's graceful shutdown); `wait=False` returns at once."""
        if self._server is not None:
            self._server.should_exit = True
        if wait and self._thread is not None:
            self._thread.join(10)
            self._server = self._thread = None


class StandIn:
    """A hosted provider on loopback: the API origin (`base_url`) and a CDN origin (`cdn_url`)."""

    def __init__(self, shape: Shape | None = None) -> None:
        self.shape = shape or Shape()
        self._lock = threading.Lock()
        self._songs: dict[str, _Song] = {}
        self._posts: list[Any] = []
        self._charges: list[int] = []
        self._accepted: list[dict[str, Any]] = []
        self._requests: list[tuple[str, str, int, float]] = []
        self._cdn_requests: list[tuple[str, str, int, float]] = []
        self._cdn_auth_seen: list[str] = []
        self._polls: Counter[str] = Counter()
        self._peak_running = 0
        self._seen_ready: dict[str, float] = {}  # song → when a status answer first told it ready
        self._fetched: dict[str, float] = {}  # song → when its audio was first asked for
        self._post_times: list[float] = []
        self._callbacks: list[tuple[str, str, int]] = []
        self._valid_submissions = 0
        self._window: deque[float] = deque()
        self._outage_until = 0.0
        self._reopen: threading.Timer | None = None
        self._cdn_secret = secrets.token_bytes(16)
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        self._api = Loopback(Starlette(routes=[Route("/{path:path}", self._api_endpoint, methods=methods)]))
        self._cdn = Loopback(Starlette(routes=[Route("/{path:path}", self._cdn_endpoint, methods=methods)]))

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> StandIn:
        self._cdn.start()
        self._api.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen.join()
        self._api.stop(wait=False)  # both at once: each takes uvicorn a few ticks
        self._cdn.stop()
        self._api.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._api.port}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._cdn.port}"

    @property
    def api_key(self) -> str:
        return self.shape.api_key

    def auth_headers(self, key: str | None = None) -> dict[str, str]:
        """The headers that authenticate with this shape (`key` to try another one)."""
        key = self.shape.api_key if key is None else key
        if self.shape.auth_header.lower() == "authorization":
            return {"Authorization": f"Bearer {key}"}
        return {self.shape.auth_header: key}

    def outage(self, seconds: float, mode: Literal["503", "refuse"] = "503") -> None:
        """Start an outage now, for `seconds`; returns once it is in effect. "503": a load balancer answers every API
        request with an HTML 503. "refuse": the API stops listening (connections refused), then listens
        again on the same port. The CDN stays up."""
        if mode == "503":
            self._outage_until = time.monotonic() + seconds
            return
        self._api.stop()
        self._reopen = threading.Timer(seconds, self._api.start)
        self._reopen.daemon = True
        self._reopen.start()

    # --- bookkeeping (copies; safe to read while the servers run) --------------------------------

    @property
    def posts(self) -> list[Any]:
        """Every body POSTed to the submit path, whatever the answer (parsed JSON, else the raw text)."""
        with self._lock:
            return list(self._posts)

    @property
    def charges(self) -> list[int]:
        """Cents charged, one entry per accepted (2xx, incl. unreadable) submission."""
        with self._lock:
            return list(self._charges)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """The bodies of the charged submissions, in the order of `charges`."""
        with self._lock:
            return list(self._accepted)

    @property
    def charged_cents(self) -> int:
        return sum(self.charges)

    @property
    def requests(self) -> list[tuple[str, str, int, float]]:
        """(method, path, status, time.monotonic()) per request on the API origin, outage answers included."""
        with self._lock:
            return list(self._requests)

    @property
    def cdn_requests(self) -> list[tuple[str, str, int, float]]:
        with self._lock:
            return list(self._cdn_requests)

    @property
    def cdn_auth_seen(self) -> list[str]:
        """Every Authorization or auth-header value the CDN received: must stay empty for a correct client."""
        with self._lock:
            return list(self._cdn_auth_seen)

    @property
    def callbacks_sent(self) -> list[tuple[str, str, int]]:
        """(track id, event word, HTTP status answered or 0 when unanswered) per callback POSTed."""
        with self._lock:
            return list(self._callbacks)

    @property
    def polls(self) -> Counter[str]:
        """Status polls per track id."""
        with self._lock:
            return Counter(self._polls)

    @property
    def poll_count(self) -> int:
        return sum(self.polls.values())

    @property
    def peak_running(self) -> int:
        """The most songs this provider was generating at once (accepted, not yet ready)."""
        with self._lock:
            return self._peak_running

    def ready_unfetched_at_posts(self) -> list[int]:
        """At each accepted submission, how many songs the caller had been told were ready but had not begun to
        download: a caller that fetches short-lived audio first keeps these at zero."""
        with self._lock:
            seen, fetched, posts = dict(self._seen_ready), dict(self._fetched), list(self._post_times)
        return [sum(1 for song, ready in seen.items() if ready < at and fetched.get(song, math.inf) > at)
                for at in posts]

    def posts_where(self, key: str, value: Any) -> int:
        """How many POSTed bodies had `key` == `value` (e.g. a row's name or seed)."""
        return sum(1 for b in self.posts if isinstance(b, dict) and b.get(key) == value)

    # --- the API origin --------------------------------------------------------------------------

    async def _api_endpoint(self, request: Request) -> Response:
        try:
            response = await self._api_answer(request)
        except Exception as exc:  # a bug here must show as a 500 in the log, not a hang
            response = JSONResponse(error_body("internal_error", f"stand-in failed: {exc!r}"), 500)
        with self._lock:
            self._requests.append((request.method, request.url.path, response.status_code, time.monotonic()))
        return response

    async def _api_answer(self, request: Request) -> Response:
        shape, path = self.shape, request.url.path
        if request.method == "POST" and path == shape.submit_path:
            body = await posted_body(request)
            with self._lock:
                self._posts.append(body)
        if time.monotonic() < self._outage_until:
            return HTMLResponse(OUTAGE_PAGE, 503)
        limited = self._rate_limited(shape)
        if limited is not None:
            return limited
        audio = re.fullmatch(r"/audio/([^/]+)\.(\w+)", path)
        if audio and request.method == "GET":
            return await asyncio.to_thread(self._audio_from_api, shape, audio[1])
        if not self._authorised(shape, request):
            return JSONResponse(error_body("unauthorized", "invalid or missing API token"), 401)
        if request.method == "POST" and path == shape.submit_path:
            if shape.sync:  # the answer comes when the audio is made
                await asyncio.sleep(shape.seconds_to_ready)
            return self._submit(shape, body)
        status = re.fullmatch(re.escape(shape.status_path).replace(r"\{id\}", "(?P<id>[^/]+)"), path)
        if status and request.method == "GET":
            return self._status(shape, status["id"])
        return JSONResponse(error_body("not_found", f"no route {request.method} {path}"), 404)

    def _authorised(self, shape: Shape, request: Request) -> bool:
        sent = request.headers.get(shape.auth_header, "")
        expected = f"Bearer {shape.api_key}" if shape.auth_header.lower() == "authorization" else shape.api_key
        return hmac.compare_digest(sent.encode(), expected.encode())

    def _rate_limited(self, shape: Shape) -> Response | None:
        """A sliding window over the API origin's requests; a refused request does not count."""
        if shape.rate_limit is None:
            return None
        limit, window = shape.rate_limit
        now = time.monotonic()
        with self._lock:
            while self._window and self._window[0] <= now - window:
                self._window.popleft()
            if len(self._window) < limit:
                self._window.append(now)
                return None
            wait = self._window[0] + window - now
        if shape.retry_after_date:  # whole seconds only: round the moment up so it is never too early
            retry_after = formatdate(math.ceil(time.time() + wait), usegmt=True)
        else:
            retry_after = str(max(1, math.ceil(wait)))
        return JSONResponse(error_body("rate_limit_exceeded", "rate limit exceeded"), 429,
                            headers={"Retry-After": retry_after})

    def _submit(self, shape: Shape, body: Any) -> Response:
        callback_url = None
        if shape.callbacks and isinstance(body, dict):  # the rest of the body is checked as without callbacks
            callback_url = body.get(shape.callback_field)
            body = {k: v for k, v in body.items() if k != shape.callback_field}
        invalid = _invalid(body) if shape.request_rules == "seed" else _invalid_styled(body)
        if shape.callbacks and not invalid:
            invalid = _invalid_callback(callback_url, shape.callback_field)
        if invalid:
            return JSONResponse(error_body("invalid_input", invalid), 400)
        self._valid_submissions += 1  # the event loop is one thread: no race
        faulty = shape.submit_faults_first is None or self._valid_submissions <= shape.submit_faults_first
        if shape.success_false_in_2xx and faulty:
            return JSONResponse({"success": False, "error": {"message": "generation could not be started"}}, 200)
        seed = body.get("seed")
        seed = int(seed) if seed is not None else secrets.randbelow(2**32)
        num_songs = int(body.get("num_songs", 1))
        songs = [_Song(uuid.uuid4().hex, body.get("name"), (seed + i) % 2**32, body.get("tags"),
                       _format_of(body), body.get("output_bit_rate"), i) for i in range(num_songs)]
        cents = shape.billing.submission_cents(num_songs, shape.audio_seconds)
        with self._lock:
            self._post_times.append(time.monotonic())
            running = sum(1 for s in self._songs.values() if time.monotonic() - s.created < shape.seconds_to_ready)
            self._peak_running = max(self._peak_running, running + num_songs)
            self._songs.update((s.id, s) for s in songs)
            self._charges.append(cents)
            self._accepted.append(body)
        if shape.sync:
            return self._sync_answer(shape, songs[0])
        if callback_url and shape.callbacks != "lost":
            for song in songs:
                threading.Thread(target=self._call_back, args=(shape, song, callback_url), daemon=True,
                                 name=f"callback-{song.id[:8]}").start()
        if shape.unreadable_submit and faulty:
            if shape.unreadable_submit == "html":
                return HTMLResponse("<!DOCTYPE html><html><body><p>Request received.</p></body></html>",
                                    shape.submit_status)
            text = json.dumps({"success": True, shape.tracks_key: [self._track(shape, s) for s in songs]})
            return Response(text[: len(text) // 2], shape.submit_status, media_type="application/json")
        answer: dict[str, Any] = {"success": True, shape.tracks_key: [self._track(shape, s) for s in songs]}
        if shape.cost_field:
            answer[shape.cost_field] = self._number(shape, cents)
        return JSONResponse(answer, shape.submit_status)

    def _sync_answer(self, shape: Shape, song: _Song) -> Response:
        """A synchronous provider's answer: the audio, raw or in JSON, cut off when the shape says."""
        audio = shape.audio_bytes or tone(song.seed, shape.audio_seconds, song.fmt, song.bit_rate)
        media, data = CONTENT_TYPES[song.fmt], audio
        if shape.sync != "body":
            text = audio.hex() if shape.sync == "hex" else base64.b64encode(audio).decode()
            payload: dict[str, Any] = {"data": {"audio": text}}
            if shape.duration_field:
                payload[shape.duration_field] = self._number(shape, float(shape.audio_seconds))
            media, data = "application/json", json.dumps(payload).encode()
        name = shape.api_key if shape.sync_echo_key else song.id
        headers = {shape.sync_id_header: name} if shape.sync_id_header else {}
        if shape.content_encoding:  # compressed on the wire, as for downloads
            data, headers["Content-Encoding"] = encode_wire(data, shape.content_encoding), shape.content_encoding
        if shape.sync_cut_after is None:
            return Response(data, 200, headers=headers, media_type=media)

        async def cut_off() -> Any:  # the promised length, then the connection drops
            yield data[: shape.sync_cut_after]
            raise ConnectionAbortedError("the stand-in drops the connection mid-answer")

        return StreamingResponse(cut_off(), 200, headers={**headers, "Content-Length": str(len(data))},
                                 media_type=media)

    def _status(self, shape: Shape, track_id: str) -> Response:
        with self._lock:
            self._polls[track_id] += 1
            song = self._songs.get(track_id)
        if song is None:
            return JSONResponse(error_body("not_found", f"no track {track_id}"), 404)
        answer = self._track(shape, song)
        if answer.get(shape.audio_field):
            with self._lock:
                self._seen_ready.setdefault(song.id, time.monotonic())
        return JSONResponse(answer)

    def _number(self, shape: Shape, value: float) -> float | str:
        return str(value) if shape.numbers_as_strings else value

    def _track(self, shape: Shape, song: _Song) -> dict[str, Any]:
        elapsed = time.monotonic() - song.created
        ready = elapsed >= shape.seconds_to_ready
        failed = ready and song.seed in shape.fail_seeds
        track: dict[str, Any] = {shape.id_field: song.id, "name": song.name,
                                 "seed": self._number(shape, song.seed), "tags": song.tags}
        if shape.status_field:
            if failed:
                word = shape.failed_word
            elif ready:
                word = shape.ready_word
            else:
                n = len(shape.pending_words)
                word = shape.pending_words[min(n - 1, int(elapsed / shape.seconds_to_ready * n))]
            track[shape.status_field] = word
        track[shape.audio_field] = self._audio_url(shape, song) if ready and not failed else None
        if failed:
            track["error"] = "generation failed"
        if shape.duration_field and ready and not failed:
            track[shape.duration_field] = self._number(shape, float(shape.audio_seconds))
        if shape.cost_field:
            track[shape.cost_field] = self._number(shape, shape.billing.reported_cents(song.index, shape.audio_seconds))
        return track

    def _call_back(self, shape: Shape, song: _Song, url: str) -> None:
        """The callbacks of one song, as the provider would send them (see Shape.callbacks)."""
        stages = shape.callback_stages
        for i, word in enumerate(stages):
            time.sleep(max(0.0, song.created + shape.seconds_to_ready * (i + 1) / (len(stages) + 1)
                           - time.monotonic()))
            self._post_callback(shape, song, url, {**self._track(shape, song), shape.status_field or "status": word})
        time.sleep(max(0.0, song.created + shape.seconds_to_ready - time.monotonic()) + 0.01)
        for _ in range(shape.callback_copies):
            self._post_callback(shape, song, url, self._track(shape, song))
        if shape.late_word is not None:
            self._post_callback(shape, song, url, {**self._track(shape, song), shape.status_field or "status":
                                                   shape.late_word, shape.audio_field: None})

    def _post_callback(self, shape: Shape, song: _Song, url: str, track: dict[str, Any]) -> None:
        event = str(track.get(shape.status_field or "status", "ready"))
        body = json.dumps({"event": event, "track": track}).encode()
        headers = {"Content-Type": "application/json"}
        if shape.callbacks == "signed":
            msg_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
            digest = hmac.new(shape.callback_secret.encode(), f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256)
            headers.update({"webhook-id": msg_id, "webhook-timestamp": stamp,
                            "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode()})
        try:
            status = httpx.post(url, content=body, headers=headers, timeout=5).status_code
        except httpx.HTTPError:
            status = 0
        with self._lock:
            self._callbacks.append((song.id, event, status))

    def _audio_url(self, shape: Shape, song: _Song) -> str:
        name = f"{song.id}.{song.fmt}"
        return self._signed_cdn_url(name) if shape.audio == "cdn" else f"{self.base_url}/audio/{name}"

    def _signed_cdn_url(self, name: str) -> str:
        expires = int(time.time()) + 3600
        return f"{self.cdn_url}/files/{name}?expires={expires}&sig={self._signature(name, expires)}"

    def _signature(self, name: str, expires: int | str) -> str:
        return hmac.new(self._cdn_secret, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def _audio_from_api(self, shape: Shape, track_id: str) -> Response:
        with self._lock:
            song = self._songs.get(track_id)
        if song is None:
            return JSONResponse(error_body("not_found", f"no audio {track_id}"), 404)
        if shape.audio == "redirect":
            return RedirectResponse(self._signed_cdn_url(f"{song.id}.{song.fmt}"), shape.redirect_status)
        return self._audio_bytes(shape, song)

    def _audio_bytes(self, shape: Shape, song: _Song) -> Response:
        with self._lock:
            self._fetched.setdefault(song.id, time.monotonic())
        time.sleep(shape.audio_delay_seconds)  # in a worker thread (asyncio.to_thread)
        if shape.gone_audio:
            return JSONResponse(error_body("gone", "this audio has expired"), 410)
        audio = shape.audio_bytes or tone(song.seed, shape.audio_seconds, song.fmt, song.bit_rate)
        data = encode_wire(audio, shape.content_encoding)
        headers = {"Content-Encoding": shape.content_encoding} if shape.content_encoding else None
        if shape.chunked:  # no length known up front, as a CDN streaming from its origin sends it
            pieces = (data[i:i + 8192] for i in range(0, len(data), 8192))
            return StreamingResponse(pieces, 200, headers=headers, media_type=CONTENT_TYPES[song.fmt])
        return Response(data, 200, headers=headers, media_type=CONTENT_TYPES[song.fmt])

    # --- the CDN origin --------------------------------------------------------------------------

    async def _cdn_endpoint(self, request: Request) -> Response:
        shape = self.shape
        seen = [v for h in {"authorization", shape.auth_header.lower()} for v in request.headers.getlist(h)]
        response = await asyncio.to_thread(self._cdn_answer, shape, request)
        with self._lock:
            self._cdn_auth_seen.extend(seen)
            self._cdn_requests.append((request.method, request.url.path, response.status_code, time.monotonic()))
        return response

    def _cdn_answer(self, shape: Shape, request: Request) -> Response:
        match = re.fullmatch(r"/files/([^/]+)\.(\w+)", request.url.path)
        with self._lock:
            song = self._songs.get(match[1]) if match else None
        expires, sig = request.query_params.get("expires", "0"), request.query_params.get("sig", "")
        valid = match is not None and hmac.compare_digest(sig, self._signature(f"{match[1]}.{match[2]}", expires))
        if song is None or not valid or not expires.isdigit() or int(expires) < time.time():
            return Response("<Error><Code>AccessDenied</Code><Message>Request has expired or is not signed"
                            "</Message></Error>", 403, media_type="application/xml")
        return self._audio_bytes(shape, song)


def _invalid(body: Any) -> str | None:
    """The few checks a hosted API certainly makes; the full rules are tested against the local service."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not any(body.get(k) for k in ("prompt", "tags", "lyrics")):
        return "invalid input combination: at least one of prompt, tags, lyrics must be given"
    if body.get("num_songs", 1) not in (1, 2):
        return "num_songs must be 1 or 2"
    if body.get("output_format", "wav") not in CONTENT_TYPES:
        return "output_format must be one of flac, mp3, wav, ogg, m4a"
    seed = body.get("seed")
    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 2**32):
        return "seed must be an integer from 0 to 4294967295"
    return None



def _invalid_callback(url: Any, field: str) -> str | None:
    """A stand-in calls back loopback URLs only (a test must never make it call out)."""
    if not isinstance(url, str) or urlsplit(url).scheme != "http" or \
            urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return f"{field} is required, and must be an http URL on loopback (stand-in): got {str(url)[:80]!r}"
    return None


def _format_of(body: dict[str, Any]) -> str:
    """The format a body asks for: ours, or a styled provider's word ("mp3_44100_128" → mp3, "wav_44100" → wav)."""
    asked = str(body.get("output_format", "wav"))
    return asked if asked in CONTENT_TYPES else "mp3" if asked.startswith("mp3_") else "wav"


# A provider whose body is not the seed API's, in the manner of sunoapi.org / ElevenLabs / Stable Audio: a
# description, a style string, the length in milliseconds, an instrumental flag, a guidance scale and a model.
STYLED_MODEL = "styled-v2"
STYLED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "prompt": str, "style": str, "music_length_ms": int, "instrumental": bool, "seed": int,
    "cfg_scale": (int, float), "model": str, "output_format": str,
}
STYLED_FORMATS = ("mp3_44100_128", "mp3_44100_192", "wav_44100")


def _invalid_styled(body: Any) -> str | None:
    """The styled provider's checks: known fields of the right type, a model, a length in its range."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = sorted(set(body) - set(STYLED_FIELDS))
    if unknown:
        return f"unknown field(s): {', '.join(unknown)}"
    wrong = [k for k, v in body.items() if isinstance(v, bool) is not (STYLED_FIELDS[k] is bool)
             or not isinstance(v, STYLED_FIELDS[k])]
    if wrong:
        return f"wrong type for {', '.join(wrong)}"
    if body.get("model") != STYLED_MODEL or not (body.get("prompt") or body.get("style")):
        return f"model must be {STYLED_MODEL!r}, and a prompt or a style is required"
    if not 10_000 <= body.get("music_length_ms", 30_000) <= 300_000:
        return "music_length_ms must be from 10000 to 300000"
    if not 1 <= body.get("cfg_scale", 7) <= 25 or body.get("output_format", STYLED_FORMATS[0]) not in STYLED_FORMATS:
        return f"cfg_scale must be from 1 to 25 and output_format one of {', '.join(STYLED_FORMATS)}"
    return None
