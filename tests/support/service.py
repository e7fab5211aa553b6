"""The local service in tests: started on a free loopback port over its own data folder, keys made for
it, requests and their checks, and its SQLite database read back."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.support import ROOT
from textmusic.contract import (
    FORMATS,
    STATUS_PATH,
    SUBMIT_PATH,
    TextToMusicRequest,
)

DURATION = 10


READY_TIMEOUT = 120.0


STARTUP_TIMEOUT = 30.0


PROMPT = "an upbeat synth-pop instrumental"


CONTENT_TYPES = {name: f.media_type for name, f in FORMATS.items()}  # each checked against its bytes in test_contract


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    data: Path
    log: Path

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful); kill the whole group if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def crash(self) -> None:
        """Kill the server and its workers at once, as a power cut would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, *extra: str, port: int | None = None) -> Server:
    data.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    log = data / f"server-{port}.log"
    cmd = [sys.executable, "-m", "textmusic", "serve", "--data", str(data), "--port", str(port)]
    cmd += ["--workers", "1", *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(proc, f"http://127.0.0.1:{port}", data, log)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(server.url("/healthz"), timeout=1.0).json() == {"ok": True}:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"server did not start within {STARTUP_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A local service of the module's own (its own data folder), stopped after the module's last test.

    A fixture here, not in a conftest: the service's tests (tests/textmusic/server) and the pipeline's
    (tests/tasks/generation) use it, and elsewhere `server` means the review server (tests/support/review.py).
    """
    srv = start_server(tmp_path_factory.mktemp("tm-service"))
    yield srv
    srv.stop()


def create_key(data: Path, balance_usd: float) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "textmusic", "keys", "create", "--data", str(data)]
        + ["--balance-usd", str(balance_usd)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("tm_") and len(key) > 30
    return key


def usage_json(data: Path) -> dict[str, Any]:
    """`textmusic usage --json`, keyed by key id (a hash prefix)."""
    out = subprocess.run(
        [sys.executable, "-m", "textmusic", "usage", "--data", str(data), "--json"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return {k["key_id"]: k for k in json.loads(out.stdout)["keys"]}


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def submit(server: Server, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url(SUBMIT_PATH), json=body, headers=auth(key), timeout=30)


def get_track(server: Server, key: str, track_id: str) -> httpx.Response:
    return httpx.get(server.url(STATUS_PATH.format(id=track_id)), headers=auth(key), timeout=30)


def wait_ready(server: Server, key: str, ids: list[str], timeout: float = READY_TIMEOUT) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        tracks = []
        for track_id in ids:
            resp = get_track(server, key, track_id)
            assert resp.status_code == 200, resp.text
            tracks.append(resp.json())
        failed = [t for t in tracks if t["status"] == "failed"]
        assert not failed, f"render failed: {failed}"
        if all(t["status"] == "ready" for t in tracks):
            return tracks
        if time.monotonic() > deadline:
            pytest.fail(f"tracks not ready after {timeout} s: {tracks}\n{server.log.read_text()[-3000:]}")
        time.sleep(0.5)


def assert_error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False
    assert set(body) == {"success", "error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def db(data: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(data / "textmusic.db", timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def db_balance(data: Path, key: str) -> int:
    with db(data) as conn:
        row = conn.execute(
            "SELECT balance_cents FROM keys WHERE key_hash = ?", (hashlib.sha256(key.encode()).hexdigest(),)
        ).fetchone()
    return int(row["balance_cents"])


def decoded_seconds(content: bytes, fmt: str) -> float:
    """Decode the whole file and return its length; asserts it is not silence."""
    if FORMATS[fmt].encoder == "soundfile":
        data, rate = sf.read(io.BytesIO(content), dtype="float32")
        assert np.abs(data).max() > 1e-3, "decoded audio is silent"
        return len(data) / rate
    with av.open(io.BytesIO(content)) as container:
        stream = container.streams.audio[0]
        samples, peak = 0, 0.0
        for frame in container.decode(stream):
            arr = frame.to_ndarray()
            samples += frame.samples
            if arr.size:
                peak = max(peak, float(np.abs(arr).max()))
        assert peak > 1e-3, "decoded audio is silent"
        return samples / stream.rate


def reserved_per_song() -> int:
    return TextToMusicRequest(prompt=PROMPT, duration_seconds=DURATION).max_cost_cents()
