"""The local service bounds what a submission body may cost it, over real HTTP on 127.0.0.1: a declared
length over the limit is answered before the body is sent, and an endless chunked body is refused once it
passes the limit, so neither grows the server's memory. Raw sockets, because an HTTP client would not
start a request it cannot finish."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.figures import FIGURES
from tests.support.service import Server, auth
from textmusic.contract import SUBMIT_PATH
from textmusic.server.guards import MAX_BODY_BYTES

ANSWER_TIMEOUT = 10.0  # seconds for the refusal to come; the old server waited for the whole body
DECLARED = 300_000_000  # bytes a client announces and never sends
CHUNK = b"x" * 65536
SEND_CAP = 64 * MAX_BODY_BYTES  # an endless body, as far as a bounded test goes


def _connect(server: Server) -> socket.socket:
    url = urlsplit(server.base)
    sock = socket.create_connection((url.hostname, url.port), timeout=ANSWER_TIMEOUT)
    sock.setblocking(False)
    return sock


def _head(server: Server, key: str, framing: str) -> bytes:
    lines = [f"POST {SUBMIT_PATH} HTTP/1.1", f"Host: {urlsplit(server.base).netloc}",
             "Content-Type: application/json", framing, *(f"{k}: {v}" for k, v in auth(key).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _content_length(head: bytes) -> int | None:
    lengths = [line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return int(lengths[0]) if lengths else None


def _response(data: bytes) -> tuple[int, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body[: _content_length(head)])


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = _content_length(head)
    return length is not None and len(body) >= length


def _exchange(sock: socket.socket, first: bytes, more: bytes | None) -> tuple[bytes, int]:
    """Send `first`, then `more` again and again (if given) until the whole answer is in; returns the answer
    and the bytes sent when it was complete. Fails when no answer comes in time or past SEND_CAP."""
    _send_all(sock, first)
    sent, answer = len(first), b""
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while not _complete(answer):
        remaining = deadline - time.monotonic()
        assert remaining > 0 and sent < SEND_CAP, f"no answer after {sent} bytes sent: {answer[:200]!r}"
        readable, writable, _ = select.select([sock], [sock] if more else [], [], min(remaining, 0.5))
        if readable:
            got = sock.recv(65536)
            assert got or _complete(answer), f"connection closed without an answer after {sent} bytes sent"
            answer += got
        elif writable and more:
            with contextlib.suppress(BlockingIOError, ConnectionError):  # the server may close once it answered
                sent += sock.send(more)
    return answer, sent


def _send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        select.select([], [sock], [], ANSWER_TIMEOUT)
        view = view[sock.send(view):]


def _peak_rss_kib(server: Server) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def _assert_too_large(answer: bytes) -> None:
    status, body = _response(answer)
    assert status == 400, answer[:300]
    assert body["success"] is False and body["error"]["code"] == "invalid_input"
    assert f"larger than {MAX_BODY_BYTES} bytes" in body["error"]["message"]


def test_declared_length_over_the_limit_is_answered_before_the_body_is_sent(server: Server, key: str) -> None:
    sock = _connect(server)
    with sock:
        started = time.monotonic()
        answer, sent = _exchange(sock, _head(server, key, f"Content-Length: {DECLARED}") + b'{"prompt": "', None)
        took = time.monotonic() - started
    _assert_too_large(answer)
    assert sent < 1024
    FIGURES.append(f"body limit: {DECLARED} bytes declared, {sent} sent, refused in {took * 1000:.0f} ms")


def test_endless_chunked_body_is_refused_at_the_limit(server: Server, key: str) -> None:
    before = _peak_rss_kib(server)
    chunk = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
    sock = _connect(server)
    with sock:
        answer, sent = _exchange(sock, _head(server, key, "Transfer-Encoding: chunked"), chunk)
    _assert_too_large(answer)
    after = _peak_rss_kib(server)
    # What was sent before the answer: the limit, plus what the socket buffers held on the way.
    assert sent < 16 * MAX_BODY_BYTES
    assert after - before < 8 * MAX_BODY_BYTES // 1024, (before, after)
    FIGURES.append(f"body limit: endless chunked body refused after {sent / 1e6:.1f} MB sent; "
                   f"server peak RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB")
