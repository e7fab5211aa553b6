"""Hosted timing in the local service, over real HTTP on 127.0.0.1: `--latency MIN-MAX` keeps each track
pending for its seeded time (kept across a kill -9), and `--synthetic-audio` makes valid audio of every
format in milliseconds without the engine. Both together with --faults, --request-log and --rate-limit.

Servers start as in test_server.py (`python -m textmusic serve` in its own process group, --workers 1).
"""

from __future__ import annotations

import io
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mutagen.mp3
import mutagen.mp4
import pytest
from typer.testing import CliRunner

from tests.support.figures import FIGURES
from tests.support.service import (
    CONTENT_TYPES,
    PROMPT,
    Server,
    auth,
    create_key,
    db,
    db_balance,
    decoded_seconds,
    get_track,
    key_id,
    start_server,
    submit,
    usage_json,
    wait_ready,
)
from textmusic.cli import app as cli_app
from textmusic.contract import FORMATS, STATUS_PATH, SUBMIT_PATH, TextToMusicRequest, price_cents
from textmusic.server.faults import TRACK_FAIL, FaultInjector, parse_faults
from textmusic.server.latency import LatencyConfig, latency_seconds, parse_latency
from textmusic.server.synthetic import DEFAULT_SECONDS, SYNTHETIC_VERSION, SyntheticEngine

ENV_OPTIONS = ("TEXTMUSIC_LATENCY", "TEXTMUSIC_LATENCY_SEED", "TEXTMUSIC_SYNTHETIC_AUDIO")
POLL_SECONDS = 0.1
FAST_POLLS = "100000/10s"  # a poll every POLL_SECONDS per track is far above the default 100 per 10 s


@pytest.fixture(scope="module", autouse=True)
def _no_option_env() -> Iterator[None]:
    """Servers here get their options on the command line only, never from the caller's environment."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ENV_OPTIONS:
            mp.delenv(name, raising=False)
        yield


def _rows(data: Path, ids: list[str]) -> dict[str, dict[str, Any]]:
    with db(data) as conn:
        return {
            i: dict(conn.execute(
                "SELECT status, created_at, ready_not_before, cost_cents, reserved_cents FROM tracks WHERE id = ?",
                (i,),
            ).fetchone())
            for i in ids
        }


def _wait_db(data: Path, ids: list[str], timeout: float = 20.0) -> dict[str, dict[str, Any]]:
    """Until the store has settled every track (whatever the API shows)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _rows(data, ids)
        if all(r["status"] != "pending" for r in rows.values()):
            return rows
        assert time.monotonic() < deadline, f"not rendered within {timeout} s: {rows}"
        time.sleep(POLL_SECONDS)


def _watch(srv: Server, key: str, ids: list[str], not_before: dict[str, float],
           timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """Poll until every track is settled; each answer must agree with the track's ready time.

    The server decides between the client's send and receive times, so `pending` implies the poll was
    sent before the ready time, and `ready`/`failed` that it came back after it."""
    final: dict[str, dict[str, Any]] = {}
    seen_pending: set[str] = set()
    deadline = time.monotonic() + timeout
    with httpx.Client(headers=auth(key), timeout=30) as client:
        while len(final) < len(ids):
            for track_id in ids:
                if track_id in final:
                    continue
                sent = time.time()
                resp = client.get(srv.url(STATUS_PATH.format(id=track_id)))
                received = time.time()
                assert resp.status_code == 200, resp.text
                track = resp.json()
                if track["status"] == "pending":
                    assert sent < not_before[track_id], (track, not_before[track_id] - sent)
                    assert track["audio_url"] is None and track["duration_seconds"] is None
                    seen_pending.add(track_id)
                else:
                    assert received >= not_before[track_id], (track, not_before[track_id] - received)
                    final[track_id] = track
            assert time.monotonic() < deadline, f"not settled within {timeout} s: {final}"
            time.sleep(POLL_SECONDS)
    assert seen_pending == set(ids), "every track was seen pending first"
    return final


# --- latency -------------------------------------------------------------------------------------


def test_latency_spec_and_seeded_times() -> None:
    assert parse_latency("15-25") == LatencyConfig(15.0, 25.0, 0)
    assert parse_latency(" 0.5 - 2.5 ", seed=3) == LatencyConfig(0.5, 2.5, 3)
    assert parse_latency("20") == LatencyConfig(20.0, 20.0, 0)
    assert parse_latency(None) is None and parse_latency("0") is None and parse_latency("") is None
    for bad in ("25-15", "abc", "-5", "1-2-3", "nan"):
        with pytest.raises(ValueError):
            parse_latency(bad)
    fixed = LatencyConfig(20.0, 20.0)
    assert {fixed.seconds_for(os.urandom(16).hex()) for _ in range(20)} == {20.0}
    ids = [os.urandom(16).hex() for _ in range(500)]
    times = [latency_seconds(i, 15.0, 25.0, seed=7) for i in ids]
    assert times == [latency_seconds(i, 15.0, 25.0, seed=7) for i in ids]  # same id and seed: same time
    assert times != [latency_seconds(i, 15.0, 25.0, seed=8) for i in ids]  # another seed: other times
    assert all(15.0 <= t <= 25.0 for t in times)
    deciles = [sum(15.0 + d <= t < 16.0 + d for t in times) for d in range(10)]
    assert min(deciles) > 25, deciles  # roughly uniform: 50 expected per second of the range


def test_serve_help_documents_the_options() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("--latency", "--latency-seed", "--synthetic-audio", "MIN-MAX", "TEXTMUSIC_LATENCY",
                 "TEXTMUSIC_LATENCY_SEED", "TEXTMUSIC_SYNTHETIC_AUDIO", "synthetic-1"):
        assert text in result.output, text


def test_pending_for_its_latency_then_ready_or_failed(tmp_path: Path) -> None:
    """Together with --faults and --request-log: a failed track also shows failed only at its time,
    and costs nothing; a ready one is charged its length once."""
    data = tmp_path / "timing"
    request_log = tmp_path / "requests.log"
    fault_seed = 4
    injector = FaultInjector(parse_faults("track_failed=0.5", fault_seed))
    fates = [injector.track_fault() for _ in range(4)]  # the server draws the same, song by song
    assert None in fates and TRACK_FAIL in fates
    srv = start_server(data, "--latency", "2-3", "--latency-seed", "5", "--synthetic-audio",
                       "--faults", "track_failed=0.5", "--faults-seed", str(fault_seed),
                       "--request-log", str(request_log), "--rate-limit", FAST_POLLS)
    try:
        k = create_key(data, 10.0)
        ids = []
        for seed in (1, 2):
            body = {"prompt": PROMPT, "num_songs": 2, "seed": seed, "duration_seconds": 12, "output_format": "flac"}
            resp = submit(srv, k, body)
            assert resp.status_code == 200, resp.text
            assert all(t["status"] == "pending" for t in resp.json()["tracks"])
            ids += [t["id"] for t in resp.json()["tracks"]]
        rows = _rows(data, ids)
        not_before = {i: r["ready_not_before"] for i, r in rows.items()}
        for i, r in rows.items():
            assert r["ready_not_before"] - r["created_at"] == pytest.approx(latency_seconds(i, 2.0, 3.0, 5), abs=1e-6)

        # Rendered and settled at once, yet shown pending, with no audio to fetch.
        settled = _wait_db(data, ids)
        held = [i for i in ids if time.time() < not_before[i] - 0.5]
        assert held, "the synthetic renders should settle well before their ready time"
        for track_id in held:
            track = get_track(srv, k, track_id).json()
            assert track["status"] == "pending" and track["cost_cents"] == settled[track_id]["reserved_cents"]
            if settled[track_id]["status"] == "ready":
                assert httpx.get(srv.url(f"/api/v1/audio/{track_id}.flac")).status_code == 404

        final = _watch(srv, k, ids, not_before)
        for track_id, fate in zip(ids, fates, strict=True):
            track = final[track_id]
            if fate == TRACK_FAIL:
                assert track["status"] == "failed" and track["cost_cents"] == 0 and track["error"]
            else:
                assert track["status"] == "ready" and track["engine_version"] == SYNTHETIC_VERSION
                assert track["duration_seconds"] == 12.0 and track["cost_cents"] == price_cents(12.0)
                audio = httpx.get(track["audio_url"])
                assert audio.status_code == 200
                assert abs(decoded_seconds(audio.content, "flac") - 12.0) < 0.25
        account = usage_json(data)[key_id(k)]
        ready = [i for i, f in zip(ids, fates, strict=True) if f is None]
        assert sorted(c["track_id"] for c in account["charges"]) == sorted(ready)  # once each; failed: never
        assert account["balance_cents"] == 1000 - len(ready) * price_cents(12.0) == db_balance(data, k)
    finally:
        srv.stop()
    lines = request_log.read_text().splitlines()
    assert sum(f"POST {SUBMIT_PATH} 200" in line for line in lines) == 2
    assert sum(" GET /api/v1/text-to-music/" in line for line in lines) >= 2 * len(ids)


def test_hundreds_pending_tracks_are_cheap_and_seeded(tmp_path: Path) -> None:
    """200 tracks held pending: no thread per track, polls stay fast, each time within [MIN, MAX] and
    exactly the seeded function of its id."""
    data = tmp_path / "many"
    srv = start_server(data, "--latency", "15-25", "--latency-seed", "7", "--synthetic-audio",
                       "--rate-limit", FAST_POLLS)
    try:
        k = create_key(data, 100.0)
        tasks = Path(f"/proc/{srv.proc.pid}/task")
        threads_before = len(list(tasks.iterdir()))
        ids: list[str] = []
        with httpx.Client(headers=auth(k), timeout=30) as client:
            for seed in range(100):
                resp = client.post(srv.url(SUBMIT_PATH), json={"prompt": PROMPT, "num_songs": 2, "seed": seed,
                                                                 "duration_seconds": 10})
                assert resp.status_code == 200, resp.text
                ids += [t["id"] for t in resp.json()["tracks"]]
            rows = _wait_db(data, ids, timeout=60.0)  # all rendered (a worker's few ms each) and settled
            threads_after = len(list(tasks.iterdir()))
            assert threads_after - threads_before <= 8, (threads_before, threads_after)
            poll_ms = []
            for track_id in ids:
                started = time.perf_counter()
                resp = client.get(srv.url(STATUS_PATH.format(id=track_id)))
                poll_ms.append(1000 * (time.perf_counter() - started))
                track = resp.json()
                assert track["status"] == "pending" and track["audio_url"] is None, track
                assert track["engine_version"] is None and track["cost_cents"] == rows[track_id]["reserved_cents"]
        assert time.time() < min(r["ready_not_before"] for r in rows.values())  # all checked while held back
        FIGURES.append(
            f"hosted timing: 200 tracks held pending, server threads {threads_before} -> {threads_after}, "
            f"status poll median {statistics.median(poll_ms):.1f} ms, max {max(poll_ms):.1f} ms"
        )
        assert statistics.median(poll_ms) < 50, statistics.median(poll_ms)
        waits = [r["ready_not_before"] - r["created_at"] for r in rows.values()]
        assert all(15.0 <= w <= 25.0 for w in waits)
        assert max(waits) - min(waits) > 5.0  # drawn over the range, not one value
        for track_id, r in rows.items():
            assert r["ready_not_before"] - r["created_at"] == pytest.approx(
                latency_seconds(track_id, 15.0, 25.0, 7), abs=1e-6
            )
    finally:
        srv.stop()


@pytest.mark.reliability
def test_kill_9_keeps_ready_times_and_charges_each_track_once(tmp_path: Path) -> None:
    """Settled-but-held tracks and one still rendering at the crash; the restarted server (another
    latency and seed on purpose) shows each at its stored time and charges each once."""
    data = tmp_path / "crash"
    srv = start_server(data, "--latency", "8-10", "--synthetic-audio", "--rate-limit", FAST_POLLS)
    k = create_key(data, 10.0)
    ids = []
    for seed in (1, 2):
        resp = submit(srv, k, {"prompt": PROMPT, "num_songs": 2, "seed": seed, "duration_seconds": 10,
                               "output_format": "flac"})
        assert resp.status_code == 200, resp.text
        ids += [t["id"] for t in resp.json()["tracks"]]
    _wait_db(data, ids)
    long_body = {"prompt": PROMPT, "seed": 3, "duration_seconds": 120, "output_format": "m4a"}
    resp = submit(srv, k, long_body)  # ~2 s of AAC encoding: still rendering at the crash
    assert resp.status_code == 200, resp.text
    long_id = resp.json()["tracks"][0]["id"]
    ids.append(long_id)
    srv.crash()
    before = _rows(data, ids)
    assert [r["status"] for r in before.values()] == ["ready"] * 4 + ["pending"]
    held = usage_json(data)[key_id(k)]
    assert held["reserved_cents"] == TextToMusicRequest(**long_body).max_cost_cents()
    assert len(held["charges"]) == 4

    srv = start_server(data, "--latency", "1", "--latency-seed", "99", "--synthetic-audio", "--rate-limit", FAST_POLLS)
    try:
        not_before = {i: r["ready_not_before"] for i, r in before.items()}
        assert time.time() < min(not_before.values()), "the restart should beat the shortest ready time"
        final = _watch(srv, k, ids, not_before)
        assert all(t["status"] == "ready" for t in final.values()), final
        after = _rows(data, ids)
        assert {i: r["ready_not_before"] for i, r in after.items()} == not_before  # kept, not redrawn
        assert final[long_id]["duration_seconds"] == 120.0
        account = usage_json(data)[key_id(k)]
        assert sorted(c["track_id"] for c in account["charges"]) == sorted(ids)  # one charge each
        assert {c["track_id"]: c["cents"] for c in account["charges"]} == {
            i: t["cost_cents"] for i, t in final.items()
        }
        assert account["reserved_cents"] == 0 and account["tracks_pending"] == 0
        assert account["balance_cents"] == 1000 - sum(t["cost_cents"] for t in final.values()) == db_balance(data, k)
        assert not list((data / "audio").glob(".*part*")), "temp files left behind"
    finally:
        srv.stop()


# --- synthetic audio -----------------------------------------------------------------------------

# (output_format, output_bit_rate asked, duration_seconds asked, bpm asked)
SYNTHETIC_CASES: list[tuple[str, str | None, float | None, float | str]] = [
    ("wav", None, None, "auto"),
    ("flac", None, 10, 90),
    ("ogg", None, 15.5, 140),
    ("mp3", "320", 11, "auto"),
    ("mp3", None, 10, 128),
    ("m4a", "128", 12.25, 100),
    ("m4a", None, None, "auto"),
]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every case submitted at once to a --synthetic-audio server (no latency), then waited for."""
    data = tmp_path_factory.mktemp("tm-synthetic")
    srv = start_server(data, "--synthetic-audio", "--latency", "0")
    try:
        k = create_key(data, 10.0)
        started = time.monotonic()
        ids = []
        for fmt, bit_rate, duration, bpm in SYNTHETIC_CASES:
            body: dict[str, Any] = {"prompt": PROMPT, "output_format": fmt, "bpm": bpm, "seed": 11}
            if bit_rate is not None:
                body["output_bit_rate"] = bit_rate
            if duration is not None:
                body["duration_seconds"] = duration
            resp = submit(srv, k, body)
            assert resp.status_code == 200, resp.text
            ids.append(resp.json()["tracks"][0]["id"])
        tracks = wait_ready(srv, k, ids, timeout=30)
        yield {"server": srv, "key": k, "tracks": tracks, "seconds": time.monotonic() - started}
    finally:
        srv.stop()


@pytest.mark.parametrize(("fmt", "bit_rate", "duration", "bpm"), SYNTHETIC_CASES)
def test_synthetic_audio_decodes_to_its_length(
    synthetic: dict[str, Any], fmt: str, bit_rate: str | None, duration: float | None, bpm: float | str
) -> None:
    track = synthetic["tracks"][SYNTHETIC_CASES.index((fmt, bit_rate, duration, bpm))]
    seconds = DEFAULT_SECONDS if duration is None else float(duration)
    assert track["engine_version"] == SYNTHETIC_VERSION
    assert track["output_format"] == fmt
    assert track["duration_seconds"] == seconds
    assert track["bpm"] == (120.0 if bpm == "auto" else bpm)
    assert track["cost_cents"] == price_cents(seconds)
    expected_rate = FORMATS[fmt].bit_rate_for(bit_rate)
    assert track["output_bit_rate"] == expected_rate
    audio = httpx.get(track["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == CONTENT_TYPES[fmt]
    assert abs(decoded_seconds(audio.content, fmt) - seconds) < 0.25
    if fmt == "mp3":
        info = mutagen.mp3.MP3(io.BytesIO(audio.content)).info
        assert round(info.bitrate / 1000) == int(expected_rate or 0)
        assert info.bitrate_mode == mutagen.mp3.BitrateMode.CBR
    elif fmt == "m4a":
        kbps = mutagen.mp4.MP4(io.BytesIO(audio.content)).info.bitrate / 1000
        assert abs(kbps - int(expected_rate or 0)) / int(expected_rate or 1) < 0.1, kbps


def test_synthetic_tracks_are_charged_like_real_ones(synthetic: dict[str, Any]) -> None:
    srv, k, tracks = synthetic["server"], synthetic["key"], synthetic["tracks"]
    assert synthetic["seconds"] < 20, "worker start-up and every synthetic track should take seconds"
    account = usage_json(srv.data)[key_id(k)]
    assert {c["track_id"]: c["cents"] for c in account["charges"]} == {t["id"]: t["cost_cents"] for t in tracks}
    assert account["balance_cents"] == 1000 - sum(t["cost_cents"] for t in tracks) == db_balance(srv.data, k)


def test_synthetic_flac_costs_milliseconds_of_cpu(tmp_path: Path) -> None:
    """10 s of FLAC, made and encoded in this process: the aim is well under 50 ms of CPU."""
    engine = SyntheticEngine()
    engine.warm()
    request = TextToMusicRequest(prompt=PROMPT, seed=1, duration_seconds=10, output_format="flac")
    cpu = []
    for _ in range(5):
        started = time.process_time()
        result = engine.render(request, tmp_path / "x.flac")
        cpu.append(time.process_time() - started)
    assert result.duration_seconds == 10.0 and result.engine_version == SYNTHETIC_VERSION
    FIGURES.append(f"synthetic audio: 10 s FLAC in {1000 * min(cpu):.1f} ms of CPU (best of 5, in-process)")
    assert min(cpu) < 0.05, cpu
