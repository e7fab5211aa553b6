"""The local service survives a crash (kill -9 of its whole process group) and a graceful SIGTERM.

After either, every track ends ready or failed, nothing is lost, and `textmusic usage` shows each
ready track charged exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.service import (
    DURATION,
    PROMPT,
    create_key,
    db,
    db_balance,
    key_id,
    reserved_per_song,
    start_server,
    submit,
    usage_json,
    wait_ready,
)

pytestmark = pytest.mark.reliability


def _statuses(data: Path, ids: list[str]) -> list[str]:
    with db(data) as conn:
        return [conn.execute("SELECT status FROM tracks WHERE id = ?", (i,)).fetchone()[0] for i in ids]


def _assert_charged_once(data: Path, key: str, tracks: list[dict]) -> None:
    account = usage_json(data)[key_id(key)]
    charges = account["charges"]
    assert sorted(c["track_id"] for c in charges) == sorted(t["id"] for t in tracks)  # one each, no more
    assert {c["track_id"]: c["cents"] for c in charges} == {t["id"]: t["cost_cents"] for t in tracks}
    assert account["reserved_cents"] == 0 and account["tracks_pending"] == 0 and account["tracks_failed"] == 0
    assert account["balance_cents"] == account["initial_cents"] - account["charged_cents"] == db_balance(data, key)


def test_kill_9_then_restart_finishes_every_track_charged_once(tmp_path: Path) -> None:
    data = tmp_path / "crash"
    srv = start_server(data)
    k = create_key(data, 10.0)
    ids = []
    for seed in (1, 2):
        resp = submit(srv, k, {"prompt": PROMPT, "num_songs": 2, "seed": seed, "duration_seconds": DURATION})
        assert resp.status_code == 200, resp.text
        ids += [t["id"] for t in resp.json()["tracks"]]
    srv.crash()  # SIGKILL to the process group: the server and its render workers die at once
    assert "pending" in _statuses(data, ids)  # one worker cannot have finished four songs
    held = usage_json(data)[key_id(k)]
    assert held["reserved_cents"] > 0
    assert held["balance_cents"] == 1000 - held["charged_cents"] - held["reserved_cents"]

    srv = start_server(data)
    try:
        tracks = wait_ready(srv, k, ids)
        _assert_charged_once(data, k, tracks)
        assert db_balance(data, k) == 1000 - sum(t["cost_cents"] for t in tracks)
        assert not list((data / "audio").glob(".*part*")), "temp files left behind"
    finally:
        srv.stop()


def test_sigterm_to_the_group_finishes_or_requeues_in_flight_work(tmp_path: Path) -> None:
    """A SIGTERM to the whole group (as a terminal's Ctrl-C or a supervisor sends it) fails nothing:
    the running render finishes and is charged, queued ones stay pending and finish after a restart."""
    data = tmp_path / "sigterm"
    srv = start_server(data)
    k = create_key(data, 10.0)
    ids = []
    for seed in (3, 4, 5):
        resp = submit(srv, k, {"prompt": PROMPT, "num_songs": 2, "seed": seed, "duration_seconds": DURATION})
        assert resp.status_code == 200, resp.text
        ids += [t["id"] for t in resp.json()["tracks"]]
    time.sleep(0.3)  # let the first render start
    os.killpg(srv.proc.pid, signal.SIGTERM)
    assert srv.proc.wait(60) in (0, -signal.SIGTERM)
    log = srv.log.read_text()
    assert "Application shutdown complete" in log
    statuses = _statuses(data, ids)
    assert "failed" not in statuses, log
    assert "pending" in statuses  # queued songs were not started: they wait for the next start
    account = usage_json(data)[key_id(k)]
    assert account["tracks_ready"] == statuses.count("ready") == len(account["charges"])
    assert account["reserved_cents"] == statuses.count("pending") * reserved_per_song()

    srv = start_server(data)
    try:
        tracks = wait_ready(srv, k, ids)
        _assert_charged_once(data, k, tracks)
    finally:
        srv.stop()
