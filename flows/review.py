"""The review server: `trackfoundry review DIR` serves the catalog page in review mode, so a person can approve
or reject each delivered take; the decisions go to `DIR/review.csv` (tasks/catalog/decisions.py).

Only whoever started it may use it, as with Jupyter: it listens on 127.0.0.1 alone and every request must carry
the token printed at start (in the URL, then a cookie, or the `X-Review-Token` header). Other pages cannot use
the browser as a way in: a POST from a foreign `Origin`, or one that is not JSON (a plain form), is refused, and
so is any `Host` other than 127.0.0.1/localhost (DNS rebinding). Only the ledger's delivered audio files and the
waveform images are served, never the ledger, its journal or the provider's raw answers.
"""

from __future__ import annotations

import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import typer
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tasks.catalog.decisions import REVIEW_CSV, ReviewEntry, load_decisions, record_decision
from tasks.catalog.ledger import JOURNAL, LEDGER_PARQUET, READY, LedgerRecord, load_ledger
from tasks.catalog.page import render_page, write_page
from tasks.catalog.page.waveform import WAVEFORM_DIR

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
TOKEN_HEADER = "X-Review-Token"
MAX_BODY_BYTES = 16_384  # a decision with the longest note, with room to spare
STARTUP_SECONDS = 10.0
# Sent with every answer: no framing by other sites (clickjacking), no sniffing, and no Referer that would
# carry the token in the page's URL to anywhere else.
SAFE_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def cookie_name(port: int) -> str:
    """Cookies do not tell ports apart: one name per port keeps two review servers from logging each other out."""
    return f"trackfoundry_review_{port}"


def refusal(request: Request, token: str, port: int) -> str | None:
    """Why this request may not reach the catalog (answered 403), or None when it may."""
    if request.headers.get("host") not in {f"{host}:{port}" for host in LOOPBACK_HOSTS}:
        return "unknown Host (this server answers only to 127.0.0.1 and localhost)"
    origin = request.headers.get("origin")
    if request.method not in ("GET", "HEAD") and origin is not None and origin not in _origins(port):
        return "requests from other sites are refused"
    offered = (request.query_params.get("token"), request.headers.get(TOKEN_HEADER),
               request.cookies.get(cookie_name(port)))
    if not any(o is not None and secrets.compare_digest(o.encode(), token.encode()) for o in offered):
        return "a review token is required: open the URL the review server printed"
    return None


def _origins(port: int) -> set[str]:
    return {f"http://{host}:{port}" for host in LOOPBACK_HOSTS}


class Guard:
    """ASGI middleware that answers 403 before any route runs, so no route can forget a check."""

    def __init__(self, app: ASGIApp, token: str, port: int) -> None:
        self.app, self.token, self.port = app, token, port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = refusal(Request(scope), self.token, self.port) if scope["type"] == "http" else None
        response = PlainTextResponse(reason, 403) if reason else self.app
        await response(scope, receive, send)


class Takes:
    """The ledger's delivered takes, read again only when the ledger changes (a run between two decisions)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._stamp: tuple[int, ...] | None = None
        self._records: list[LedgerRecord] = []

    def current(self) -> list[LedgerRecord]:
        stamp = tuple(_mtime_ns(self.out_dir / name) for name in (LEDGER_PARQUET, JOURNAL))
        if stamp != self._stamp:
            self._records = [r for r in load_ledger(self.out_dir) if r.status == READY and r.audio_path]
            self._stamp = stamp
        return self._records

    def find(self, entry: ReviewEntry) -> LedgerRecord | None:
        return next((r for r in self.current() if entry.applies_to(r)), None)


def _mtime_ns(path: Path) -> int:
    return path.stat().st_mtime_ns if path.exists() else 0


def servable(out_dir: Path, relative: str, audio_paths: set[str]) -> Path | None:
    """The file a catalog URL path names, when it is a delivered take's audio or a waveform image inside DIR."""
    if relative in audio_paths:
        root = out_dir.resolve()
    elif relative.startswith(f"{WAVEFORM_DIR}/"):
        root = (out_dir / WAVEFORM_DIR).resolve()
    else:
        return None
    path = (out_dir / relative).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def review_app(out_dir: Path, token: str, port: int) -> Starlette:
    """The review server's routes behind the Guard; `port` is the one it is reached on (Host, Origin, cookie)."""
    takes, page_lock = Takes(out_dir), threading.Lock()

    def page(request: Request) -> Response:
        response = HTMLResponse(render_page(out_dir, review_token=token), headers={"Cache-Control": "no-store"})
        response.set_cookie(cookie_name(port), token, httponly=True, samesite="strict")
        return response

    def decisions(request: Request) -> Response:
        return JSONResponse([e.model_dump() for e in load_decisions(out_dir)], headers={"Cache-Control": "no-store"})

    def store(entry: ReviewEntry) -> Response:
        record = takes.find(entry)
        if record is None:
            return _error(404, "no delivered take with this track, song and seed in the ledger")
        if entry.file not in ("", record.audio_path):
            return _error(400, f"the take's file is {record.audio_path!r}")
        stored = record_decision(out_dir, entry.model_copy(update={"file": record.audio_path}))
        with page_lock:  # the static page shows the decisions so far; one writer at a time
            write_page(out_dir)
        return JSONResponse(stored.model_dump())

    async def decide(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return _error(415, "send the decision as application/json")
        body = await _bounded_body(request)
        if body is None:
            return _error(413, f"a decision is at most {MAX_BODY_BYTES} bytes")
        try:
            entry = ReviewEntry.model_validate_json(body)
        except ValidationError as exc:
            return _error(400, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
        return await run_in_threadpool(store, entry)

    def catalog_file(request: Request) -> Response:
        audio = {r.audio_path for r in takes.current()}
        path = servable(out_dir, request.path_params["path"], audio)
        return FileResponse(path) if path else PlainTextResponse("not found", 404)

    routes = [Route("/", page), Route("/api/decisions", decisions), Route("/api/decisions", decide, methods=["POST"]),
              Route("/{path:path}", catalog_file)]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, token=token, port=port)
    app.add_middleware(_SafeHeaders)
    return app


class _SafeHeaders:
    """Adds SAFE_HEADERS to every answer, refusals included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_safe(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      *((k.lower().encode(), v.encode()) for k, v in SAFE_HEADERS.items())]
            await send(message)

        await self.app(scope, receive, send_safe)


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY_BYTES (read no further than that)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return body


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


@dataclass
class ReviewServer:
    """A review server running in a background thread; `stop()` ends it (the catalog keeps its decisions)."""

    url: str
    token: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def wait(self) -> None:
        """Block until the server ends. Joined in short slices: the main thread wakes at least twice a second,
        so a Ctrl-C is handled at once even where a bare join would not return to the interpreter."""
        while self.thread.is_alive():
            self.thread.join(0.5)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> ReviewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(out_dir: Path, port: int = 0, host: str = "127.0.0.1") -> ReviewServer:
    """Start the review server for the catalog in `out_dir` on loopback (`port` 0: any free port), with a fresh
    token. Raises ValueError for a host other than loopback or a folder without a ledger, OSError for a port
    in use."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"the review server listens on loopback only (127.0.0.1 or localhost), not {host!r}")
    if not any((out_dir / name).exists() for name in (LEDGER_PARQUET, JOURNAL)):
        raise ValueError(f"{out_dir} holds no ledger: is it a catalog folder?")
    sock = _bind(port)
    port, token = sock.getsockname()[1], secrets.token_urlsafe(32)
    config = uvicorn.Config(review_app(out_dir, token, port), log_level="warning", access_log=False,
                            lifespan="off", proxy_headers=False, server_header=False,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="review-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the review server did not start")
        time.sleep(0.02)
    return ReviewServer(f"http://127.0.0.1:{port}/?token={token}", token, port, server, thread)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart on the same port need not wait
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def review_command(out_dir: Path, port: int) -> None:
    """`trackfoundry review DIR`: serve until Ctrl-C, printing the URL (with its token) to open. Ctrl-C raises
    here even when the process was started with SIGINT ignored (a child inherits an ignored SIGINT, and Python
    then installs no handler), since it is the only way this command ends."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server = serve(out_dir, port)
    except (ValueError, OSError) as exc:
        typer.echo(f"trackfoundry: the review server cannot start: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Reviewing {out_dir} (decisions go to {out_dir / REVIEW_CSV}). Open this URL in a browser:\n"
               f"    {server.url}\nCtrl-C stops the server.")
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    typer.echo("review server stopped")

