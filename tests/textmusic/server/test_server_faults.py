"""Fault injection (`serve --faults`): each fault over real HTTP, its money rules, and seeded reproducibility."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT
from tests.support.service import (
    DURATION,
    PROMPT,
    assert_error,
    auth,
    create_key,
    db,
    get_track,
    key_id,
    start_server,
    submit,
    usage_json,
    wait_ready,
)
from textmusic.contract import SUBMIT_PATH

BODY = {"prompt": PROMPT, "duration_seconds": DURATION}


def _no_tracks_no_charge(data: Path, key: str, initial_cents: int) -> None:
    account = usage_json(data)[key_id(key)]
    assert account["balance_cents"] == initial_cents and account["charges"] == []
    assert account["tracks_ready"] + account["tracks_pending"] + account["tracks_failed"] == 0


@pytest.mark.parametrize(
    ("fault", "status", "code"), [("submit_429", 429, "rate_limit_exceeded"), ("submit_500", 500, "internal_error")]
)
def test_submit_fault_answers_the_error_and_charges_nothing(tmp_path: Path, fault: str, status: int, code: str) -> None:
    srv = start_server(tmp_path / fault, "--faults", f"{fault}=1")
    try:
        k = create_key(srv.data, 1.0)
        for _ in range(3):
            resp = submit(srv, k, BODY)
            assert "injected" in assert_error(resp, status, code)
            assert "x-ratelimit-remaining" in resp.headers
            if status == 429:
                assert resp.headers["retry-after"] == "1"
        _no_tracks_no_charge(srv.data, k, 100)
        assert get_track(srv, k, uuid.uuid4().hex).status_code == 404  # polls are untouched
    finally:
        srv.stop()


def test_poll_500(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "poll", "--faults", "poll_500=1")
    try:
        k = create_key(srv.data, 1.0)
        resp = submit(srv, k, BODY)
        assert resp.status_code == 200, resp.text
        track_id = resp.json()["tracks"][0]["id"]
        for _ in range(3):
            assert_error(get_track(srv, k, track_id), 500, "internal_error")
        # The track itself is unharmed: it is rendered and charged once, as `usage` shows.
        deadline = time.monotonic() + 60
        while usage_json(srv.data)[key_id(k)]["tracks_ready"] != 1:
            assert time.monotonic() < deadline, "track never became ready"
            time.sleep(0.3)
        assert [c["track_id"] for c in usage_json(srv.data)[key_id(k)]["charges"]] == [track_id]
    finally:
        srv.stop()


def test_track_failed_is_refunded(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "failed", "--faults", "track_failed=1")
    try:
        k = create_key(srv.data, 1.0)
        resp = submit(srv, k, {**BODY, "num_songs": 2})
        assert resp.status_code == 200, resp.text
        assert resp.json()["balance_cents"] < 100  # reserved at submission, like any request
        ids = [t["id"] for t in resp.json()["tracks"]]
        deadline = time.monotonic() + 60
        while True:
            tracks = [get_track(srv, k, i).json() for i in ids]
            if all(t["status"] == "failed" for t in tracks):
                break
            assert all(t["status"] in ("pending", "failed") for t in tracks), tracks
            assert time.monotonic() < deadline, tracks
            time.sleep(0.2)
        for t in tracks:
            assert "injected" in t["error"] and t["cost_cents"] == 0 and t["audio_url"] is None
        account = usage_json(srv.data)[key_id(k)]
        assert (account["balance_cents"], account["charges"], account["tracks_failed"]) == (100, [], 2)
    finally:
        srv.stop()


def test_track_stuck_stays_pending_then_fails_refunded(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "stuck", "--faults", "track_stuck=1,stuck_seconds=3")
    try:
        k = create_key(srv.data, 1.0)
        resp = submit(srv, k, BODY)
        assert resp.status_code == 200, resp.text
        track_id = resp.json()["tracks"][0]["id"]
        with db(srv.data) as conn:
            created = conn.execute("SELECT created_at FROM tracks WHERE id = ?", (track_id,)).fetchone()[0]
        time.sleep(1.5)  # a normal 10 s track would be ready by now
        early = get_track(srv, k, track_id).json()
        if time.time() < created + 3:
            assert early["status"] == "pending" and early["audio_url"] is None
        assert usage_json(srv.data)[key_id(k)]["reserved_cents"] > 0
        time.sleep(max(0.0, created + 3 - time.time()) + 0.2)
        late = get_track(srv, k, track_id).json()
        assert late["status"] == "failed" and "timed out" in late["error"] and late["cost_cents"] == 0
        account = usage_json(srv.data)[key_id(k)]
        assert (account["balance_cents"], account["reserved_cents"], account["charges"]) == (100, 0, [])
    finally:
        srv.stop()


def test_slow_response(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "slow", "--faults", "slow_response=1,slow_seconds=1.5")
    try:
        k = create_key(srv.data, 1.0)
        started = time.monotonic()
        assert get_track(srv, k, uuid.uuid4().hex).status_code == 404
        assert time.monotonic() - started >= 1.5
    finally:
        srv.stop()


def test_truncated_download(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "truncated", "--faults", "truncated_download=1")
    try:
        k = create_key(srv.data, 1.0)
        resp = submit(srv, k, BODY)
        (track,) = wait_ready(srv, k, [resp.json()["tracks"][0]["id"]])
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(track["audio_url"])
        # On the wire: the whole length announced, about half of it sent, then the connection closed.
        path = httpx.URL(track["audio_url"]).path
        with socket.create_connection(("127.0.0.1", httpx.URL(srv.base).port), timeout=10) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
        assert head.startswith(b"HTTP/1.1 200") and b"audio/wav" in head
        assert length > 1000 and len(body) == length // 2
    finally:
        srv.stop()


def _submission_fates(data: Path, *serve_args: str) -> list[int]:
    """Statuses of 16 submissions that are invalid unless a fault strikes first: 500 or 400, nothing rendered."""
    srv = start_server(data, *serve_args)
    try:
        k = create_key(srv.data, 1.0)
        return [submit(srv, k, {"tags": ["pop"]}).status_code for _ in range(16)]
    finally:
        srv.stop()


def test_faults_are_reproducible_per_seed(tmp_path: Path) -> None:
    """Same seed, same fates, whether the faults come inline or from a JSON or TOML file; another seed differs."""
    as_json = tmp_path / "faults.json"
    as_json.write_text(json.dumps({"submit_500": 0.5, "poll_500": 0.5, "seed": 7}), encoding="utf-8")
    as_toml = tmp_path / "faults.toml"
    as_toml.write_text("submit_500 = 0.5\nseed = 7\n", encoding="utf-8")
    first = _submission_fates(tmp_path / "a", "--faults", "submit_500=0.5", "--faults-seed", "7")
    assert set(first) == {400, 500}
    assert _submission_fates(tmp_path / "b", "--faults", str(as_json)) == first
    assert _submission_fates(tmp_path / "c", "--faults", str(as_toml), "--faults-seed", "8") != first


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [("bogus=1", "unknown fault"), ("submit_500=2", "from 0 to 1"), ("submit_500", "name=probability")],
)
def test_bad_fault_spec_refuses_to_start(tmp_path: Path, spec: str, fragment: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "textmusic", "serve", "--data", str(tmp_path), "--port", "1", "--faults", spec],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and fragment in done.stderr


def test_faults_are_off_by_default(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "default")
    try:
        k = create_key(srv.data, 1.0)
        url = srv.url(SUBMIT_PATH)
        statuses = {httpx.post(url, json={"tags": ["pop"]}, headers=auth(k)).status_code for _ in range(30)}
        assert statuses == {400}
        assert "fault injection ON" not in srv.log.read_text()
    finally:
        srv.stop()


def test_an_engine_that_cannot_start_fails_each_track_with_its_reason(tmp_path: Path, monkeypatch) -> None:
    """A missing soundfont used to break the worker pool: every track failed as "worker crashed"."""
    monkeypatch.setenv("TEXTMUSIC_SOUNDFONT", str(tmp_path / "missing.sf2"))
    srv = start_server(tmp_path / "nofont")
    try:
        k = create_key(srv.data, 1.0)
        ids = [t["id"] for t in submit(srv, k, BODY).json()["tracks"]]
        deadline = time.monotonic() + 60
        while (track := get_track(srv, k, ids[0]).json())["status"] == "pending":
            assert time.monotonic() < deadline, track
            time.sleep(0.2)
        assert track["status"] == "failed" and track["cost_cents"] == 0, track
        assert "missing.sf2" in track["error"] and "apt-get install fluid-soundfont-gm" in track["error"], track
        assert "crashed" not in track["error"]
    finally:
        srv.stop()
