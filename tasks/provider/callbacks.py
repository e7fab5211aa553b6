"""The run's callback receiver: a small HTTP server the provider calls back when a track is done.

Started by a run whose provider profile has a `[callback]` table. It listens on loopback (a free port unless
TRACKFOUNDRY_CALLBACK_PORT says) and each submission is sent `<base>/callbacks/<run id>/<token>`, with a fresh
unguessable token per row: `base` is TRACKFOUNDRY_CALLBACK_URL (the public URL a studio exposes through its own
tunnel or ingress) or the receiver's own loopback address.

What comes in is not trusted: the body is read up to the profile's cap (413 past it), must be JSON no deeper
than the answer reader allows, and has every registered key redacted before anything reads it. A profile with a
signature has every callback verified (401 and nothing changes when it does not verify); an unsigned callback is
handed on as unsigned, and the run confirms it with one status request before it believes it. A callback for
another run, an unknown token or an unknown track is ignored (logged, boundedly: the first few, then counted).
The receiver answers at once: what a callback leads to happens on the run's own threads. The providers of one run
(per-row providers) each have their own receiver; on a fixed TRACKFOUNDRY_CALLBACK_PORT they share one listener,
which hands each callback to the receiver its token was made by.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from textmusic import redaction
from textmusic.contract import Track
from textmusic.providers import Profile
from textmusic.providers.callback import secret_bytes, small_number, verify
from textmusic.providers.reader import AnswerRefused, parse_answer, read_status

log = logging.getLogger(__name__)
MAX_LOGGED = 20  # ignored or refused callbacks logged one by one; past this they are only counted
_PATH = re.compile(r"(?:.*/)?callbacks/([^/]{1,64})/([^/]{1,64})/?")
# What became of a callback the run was handed: used (or confirmed by a poll), or ignored and why.
Handled = Literal["accepted", "unknown track", "already ended", "intermediate"]
Handler = Callable[[Any, Track, bool], Handled]
_HANDLED = ("accepted", "already ended", "intermediate")


class CallbackError(RuntimeError):
    """The receiver cannot run as the profile asks (e.g. its signing secret is not set)."""


class _Listener:
    """One HTTP server on loopback: the receivers attached to it each own the tokens they made."""

    def __init__(self, host: str, port: int) -> None:
        self.receivers: list[CallbackReceiver] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True,
                                        name=f"callbacks-{self.port}")

    def start(self) -> None:
        """Serve (once; later calls return at once): called under the registry's lock."""
        if self._thread.is_alive():
            return
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise CallbackError(f"the callback receiver on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(5)
        self._sock.close()

    async def _endpoint(self, request: Request) -> JSONResponse:
        match = _PATH.fullmatch(request.url.path.lstrip("/"))
        receivers = [r for r in list(self.receivers) if not r.closed]
        for receiver in receivers:
            target = receiver.target(match[2]) if match and match[1] == receiver.run_id else None
            if target is not None:
                return await receiver.receive(request, target)
        answer = JSONResponse({"ok": False}, 404)
        for receiver in receivers:  # none made it: each receiver here counts it
            answer = receiver.ignored(404, "unknown run or token")
        return answer


_shared: dict[tuple[str, int], _Listener] = {}  # listeners on a fixed port, by (host, port)
_shared_lock = threading.Lock()


def _attach(receiver: CallbackReceiver, host: str, port: int) -> _Listener:
    """The listener a receiver is reached through, serving: its own on a free port, else the one on that fixed
    port. Under one lock with `_detach`, so a listener is never started twice nor bound while another stops."""
    with _shared_lock:
        listener = _shared.get((host, port)) if port else None
        if listener is None:
            listener = _Listener(host, port)
            if port:
                _shared[(host, port)] = listener
        listener.receivers.append(receiver)
        try:
            listener.start()
        except BaseException:
            _leave(receiver, listener)
            raise
        return listener


def _detach(receiver: CallbackReceiver, listener: _Listener) -> None:
    """The receiver leaves its listener; the last one to leave stops it."""
    with _shared_lock:
        _leave(receiver, listener)


def _leave(receiver: CallbackReceiver, listener: _Listener) -> None:
    if receiver in listener.receivers:
        listener.receivers.remove(receiver)
    if listener.receivers:
        return
    for key in [k for k, v in _shared.items() if v is listener]:
        del _shared[key]
    listener.stop()


class CallbackReceiver:
    """Receives a run's callbacks; `register(target)` gives the token of a submission and `handle(target,
    track, signed)` is called (on a worker thread) for each callback that passed the checks."""

    def __init__(self, profile: Profile, run_id: str, handle: Handler, *, public_url: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.time) -> None:
        if profile.callback is None:
            raise CallbackError(f"provider {profile.name} has no [callback] table")
        self.spec, self.reader = profile.callback, profile.for_callbacks()
        self.run_id, self.handle, self.clock = run_id, handle, clock
        self.key = self._secret()
        self.counts: Counter[str] = Counter()  # every callback's fate, for the run's figures and tests
        self._targets: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._host, self._fixed_port, self._public_url = host, port, public_url
        self._listener: _Listener | None = None
        self.port, self.base_url = 0, ""  # once started
        self.closed = False  # stopped: its tokens are no one's (a late callback is ignored, never handed on)

    def _secret(self) -> bytes | None:
        signature = self.spec.signature
        if signature is None:
            return None
        secret = os.environ.get(signature.secret_env, "")
        if not secret:
            raise CallbackError(f"provider profile signs callbacks with the secret in {signature.secret_env}, "
                                "which is not set")
        redaction.register(secret)
        return secret_bytes(signature, secret)

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> CallbackReceiver:
        self._listener = _attach(self, self._host, self._fixed_port)
        self.port = self._listener.port
        self.base_url = (self._public_url or f"http://{self._host}:{self.port}").rstrip("/")
        return self

    def stop(self) -> None:
        self.closed = True
        if self._listener is not None:
            _detach(self, self._listener)

    def __enter__(self) -> CallbackReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the run asks ----------------------------------------------------------------------------------

    def register(self, target: Any) -> str:
        """A new unguessable token for one submission; its callbacks are handed on with `target`."""
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._targets[token] = target
        return token

    def url_for(self, token: str) -> str:
        return f"{self.base_url}/callbacks/{self.run_id}/{token}"

    # -- the endpoint ---------------------------------------------------------------------------------------

    def target(self, token: str) -> Any:
        """What a token of this receiver's was registered for (None: not one of its tokens)."""
        with self._lock:
            return self._targets.get(token)

    async def receive(self, request: Request, target: Any) -> JSONResponse:
        """A callback to one of this receiver's tokens: checked, then handed on."""
        body = await self._body(request)
        if body is None:
            return self.ignored(413, f"body larger than {self.spec.max_body_bytes} bytes")
        signed = self.key is not None
        if self.spec.signature is not None and self.key is not None and not verify(
                self.spec.signature, self.key, request.headers, body, self.clock()):
            return self.ignored(401, "bad or missing signature")
        try:
            track = read_status(self.reader, redaction.redact_value(parse_answer(body)))
        except (AnswerRefused, ValueError, ValidationError) as exc:
            return self.ignored(400, f"unreadable body ({str(exc)[:120]})")
        outcome = await run_in_threadpool(self.handle, target, track, signed)
        if outcome == "unknown track":
            return self.ignored(200, f"{outcome}: {track.id[:64]}")
        self._count(outcome)  # used, or a stage before the end, or a duplicate: all expected, none logged
        return JSONResponse({"ok": True})

    async def _body(self, request: Request) -> bytes | None:
        """The body up to the cap, or None past it (not a byte more is read)."""
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and not (
                small_number(declared) and int(declared) <= self.spec.max_body_bytes):
            return None
        pieces, size = [], 0
        async for piece in request.stream():
            size += len(piece)
            if size > self.spec.max_body_bytes:
                return None
            pieces.append(piece)
        return b"".join(pieces)

    def _count(self, what: str) -> int:
        """Counts `what`; returns how many callbacks were ignored or refused so far."""
        with self._lock:
            self.counts[what] += 1
            return sum(n for k, n in self.counts.items() if k not in _HANDLED)

    def ignored(self, status: int, why: str) -> JSONResponse:
        """Refused or ignored: counted, logged while few (a flood of forged callbacks cannot fill the log)."""
        kind = why.split(":", 1)[0].split(" (", 1)[0]
        seen = self._count(kind)
        if seen <= MAX_LOGGED:
            log.warning("callback ignored (HTTP %d): %s%s", status, redaction.redact(why),
                        "; further ignored callbacks are only counted" if seen == MAX_LOGGED else "")
        return JSONResponse({"ok": False}, status)
