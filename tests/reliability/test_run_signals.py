"""Ctrl-C and SIGTERM of `trackfoundry run`, as a terminal and a scheduler send them: the run stops within
10 s with its ledger written, says so in one line, exits 130/143, leaves no process behind, and the same
command then resumes without paying for any row twice. And kill -9 of a run leaves no helper running.

Before: the terminal's Ctrl-C (sent to the whole process group) killed Prefect's temporary server and the
embedded service while the run went on, retrying the dead server for ~10 minutes; only SIGTERM ended it,
without a ledger; after kill -9 Prefect's server stayed up, orphaned."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tasks.interrupt import MESSAGE
from tests.support import ROOT
from tests.support.figures import FIGURES
from tests.support.runs import brief, write_profile
from tests.support.usage import service_charges
from textmusic.testing.standins import Shape, StandIn

ROWS = 40
DEADLINE_SECONDS = 10.0


pytestmark = pytest.mark.reliability


def start(tmp_path: Path, env: dict[str, str], path: Path, out: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`trackfoundry run` in a session of its own, as a terminal starts it (its pid is its group's id)."""
    log = tmp_path / f"run-{time.monotonic_ns()}.log"
    with open(log, "wb") as sink:
        run = subprocess.Popen([sys.executable, "-m", "flows", "run", str(path), "--catalog", "demo", "--out",
                                str(out)], stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env},
                               cwd=ROOT, start_new_session=True)
    return run, log


def hosted_env(tmp_path: Path, api: StandIn) -> dict[str, str]:
    return {"TEXTMUSIC_API_URL": api.base_url, "TEXTMUSIC_API_KEY": api.api_key, "COLUMNS": "200",
            "TRACKFOUNDRY_PROVIDER": str(write_profile(tmp_path, api))}


def wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def gone(processes: list[psutil.Process]) -> bool:
    return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(("signum", "code"), [
    (signal.SIGINT, 130), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)])  # make test: Ctrl-C
def test_a_signal_to_the_group_stops_the_run_in_time_with_its_ledger_and_the_next_run_pays_nothing_twice(
        tmp_path: Path, signum: int, code: int) -> None:
    with StandIn(Shape(seconds_to_ready=120.0, cost_field="cost_cents")) as api:
        path, out = brief(tmp_path, [f"r{i:02d}" for i in range(ROWS)]), tmp_path / "out"
        env = hosted_env(tmp_path, api)
        run, log = start(tmp_path, env, path, out)
        try:
            wait_for(lambda: len(api.posts) >= 8, 180, "tracks pending at the provider")
            helpers = descendants(run.pid)
            assert helpers, "the run's helpers (Prefect's temporary server) were not found"
            signalled = time.monotonic()
            os.killpg(run.pid, signum)  # the whole group, as the terminal's Ctrl-C does
            rc = run.wait(timeout=60)
            stopped = time.monotonic() - signalled
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
        text = log.read_text(errors="replace")
        assert rc == code, text[-3000:]
        assert stopped < DEADLINE_SECONDS, f"{stopped:.1f} s from {signum} to exit"
        assert text.count(MESSAGE) == 1, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        ledger = pd.read_csv(out / "ledger.csv")
        assert sorted(ledger.track_id) == [f"r{i:02d}" for i in range(ROWS)]  # every row, each once
        paid = ledger[ledger.generation_id.notna()]
        assert len(paid) >= 8 and set(paid.resume) <= {"poll"}  # pending paid tracks are polled next time
        assert not (out / ".ledger.jsonl").exists() or (out / ".ledger.jsonl").stat().st_size == 0
        wait_for(lambda: group_gone(run.pid) and gone(helpers), 10, "the run's processes to end")
        first_posts = len(api.posts)

        api.shape = dataclasses.replace(api.shape, seconds_to_ready=0.0)
        again = subprocess.run([sys.executable, "-m", "flows", "run", str(path), "--catalog", "demo", "--out",
                                str(out)], capture_output=True, text=True, timeout=300, env={**os.environ, **env},
                               cwd=ROOT)
        assert again.returncode in (0, 3), again.stderr[-3000:]
        posts = Counter(p["name"] for p in api.posts)
        assert max(posts.values()) == 1, posts.most_common(3)  # no row paid twice over both runs
        resumed = pd.read_csv(out / "ledger.csv").set_index("track_id")
        assert set(resumed.loc[paid.track_id, "status"]) == {"ready"}  # what the first run paid, delivered
    FIGURES.append(f"run {signal.Signals(signum).name} to the group, {ROWS} rows ({first_posts} sent): exit {rc} "
                   f"after {stopped:.1f} s, ledger with every row; the next run sent "
                   f"{len(api.posts) - first_posts} more, none twice")


@pytest.mark.slow  # make test keeps the hosted form above
def test_ctrl_c_with_the_embedded_service_lets_it_outlive_the_signal_until_the_ledger_is_written(
        tmp_path: Path) -> None:
    """The service is not in the terminal's group: paid tracks pending in it are recorded for the next run,
    which polls them from the same service state and pays for none of them again."""
    ids = [f"e{i}" for i in range(6)]
    path, out = brief(tmp_path, ids), tmp_path / "out"
    env = {"TRACKFOUNDRY_EMBEDDED_LATENCY": "15", "TRACKFOUNDRY_EMBEDDED_SYNTHETIC_AUDIO": "true"}
    run, log = start(tmp_path, env, path, out)
    helpers: list[psutil.Process] = []
    try:
        wait_for(lambda: (out / ".ledger.jsonl").exists() and '"submitted"' in (out / ".ledger.jsonl").read_text(),
                 180, "a paid track pending in the service")
        helpers = descendants(run.pid)
        signalled = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)
        rc = run.wait(timeout=60)
        stopped = time.monotonic() - signalled
        wait_for(lambda: gone(helpers), 10, "the service and Prefect's server to end")
    finally:
        for process in [*helpers, psutil.Process(run.pid)] if run.poll() is None else helpers:
            if process.is_running():
                process.kill()
    text = log.read_text(errors="replace")
    assert rc == 130 and stopped < DEADLINE_SECONDS and text.count(MESSAGE) == 1, (rc, stopped, text[-3000:])
    first = pd.read_csv(out / "ledger.csv", keep_default_na=False).set_index("track_id")
    assert sorted(first.index) == ids and set(first.resume[first.generation_id != ""]) == {"poll"}
    again, _ = start(tmp_path, env, path, out)
    assert again.wait(timeout=300) == 0
    ledger = pd.read_csv(out / "ledger.csv", keep_default_na=False)
    charged = [c["track_id"] for c in service_charges(out)]
    assert set(ledger.status) == {"ready"} and sorted(charged) == sorted(ledger.generation_id)  # each paid once
    assert set(first.generation_id[first.generation_id != ""]) <= set(charged)
    FIGURES.append(f"run SIGINT to the group, embedded service: exit {rc} after {stopped:.1f} s; the next run "
                   f"delivered {len(ledger)} songs, {len(charged)} charges, each once")


def test_kill_9_of_a_run_leaves_neither_prefect_server_nor_service_running(tmp_path: Path) -> None:
    """The embedded service and Prefect's temporary server both die with the run (parent-death signal)."""
    path, out = brief(tmp_path, [f"k{i}" for i in range(6)]), tmp_path / "out"
    env = {"TRACKFOUNDRY_EMBEDDED_LATENCY": "60", "TRACKFOUNDRY_EMBEDDED_SYNTHETIC_AUDIO": "true",
           "TRACKFOUNDRY_STATE_DIR": str(tmp_path / "state")}
    run, log = start(tmp_path, env, path, out)
    helpers: list[psutil.Process] = []
    try:
        wait_for(lambda: (out / ".ledger.jsonl").exists(), 180, "a row journaled (generation started)")
        helpers = descendants(run.pid)
        commands = [" ".join(p.cmdline()) for p in helpers]
        assert any("uvicorn" in c and "prefect" in c for c in commands), commands
        assert any("textmusic serve" in c for c in commands), commands
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        killed = time.monotonic()
        wait_for(lambda: gone(helpers), 10, "Prefect's server and the service to end with the run")
        FIGURES.append(f"run kill -9: Prefect's server and the service gone {time.monotonic() - killed:.1f} s later")
    finally:
        for process in [*helpers, psutil.Process(run.pid)] if run.poll() is None else helpers:
            if process.is_running():
                process.kill()


# A run whose flow never returns after the signal (a task still waiting on the provider): only the deadline
# can end it, with the run's registered ledger writer.
STUCK_RUN = """
import sys
import threading
from pathlib import Path

from tasks import interrupt

interrupt.install()
with interrupt.ledger_writer(lambda: Path(sys.argv[1]).write_text("written by the deadline")):
    print("running", flush=True)
    threading.Event().wait()
"""


def stuck_run(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    ledger = tmp_path / "ledger.csv"
    run = subprocess.Popen([sys.executable, "-c", STUCK_RUN, str(ledger)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    assert run.stdout is not None and run.stdout.readline() == "running\n"
    return run, ledger


def test_a_run_that_does_not_end_is_ended_by_the_deadline_with_its_ledger_written(tmp_path: Path) -> None:
    run, ledger = stuck_run(tmp_path)
    signalled = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=30)
    stopped = time.monotonic() - signalled
    assert run.returncode == 130 and stopped < DEADLINE_SECONDS, (run.returncode, stopped)
    assert ledger.read_text() == "written by the deadline" and err.count(MESSAGE) == 1


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    run, ledger = stuck_run(tmp_path)
    signalled = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130 and time.monotonic() - signalled < 2.0 and err.count(MESSAGE) == 1
    assert not ledger.exists()  # the journal is the ledger's source on the next run


# `trackfoundry run` whose generation machinery does not hear the stop request (as before it watched it):
# its futures never resolve, so only the deadline can write the ledger, from the journal.
DEAF_RUN = """
import sys
import threading

import flows
import tasks.generation.machinery

tasks.generation.machinery.STOP = threading.Event()
from flows.cli import main

sys.argv = ["trackfoundry", "run", *sys.argv[1:]]
main()
"""


@pytest.mark.slow  # make test keeps the deadline's short form (a stuck process) above
def test_a_run_whose_generation_does_not_stop_writes_its_ledger_from_the_journal_by_the_deadline(
        tmp_path: Path) -> None:
    ids = [f"d{i:02d}" for i in range(20)]
    with StandIn(Shape(seconds_to_ready=120.0)) as api:
        path, out, env = brief(tmp_path, ids), tmp_path / "out", hosted_env(tmp_path, api)
        with open(tmp_path / "deaf.log", "wb") as sink:
            run = subprocess.Popen([sys.executable, "-c", DEAF_RUN, str(path), "--catalog", "demo", "--out",
                                    str(out)], stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env},
                                   cwd=ROOT, start_new_session=True)
        try:
            wait_for(lambda: len(api.posts) >= 4, 180, "tracks pending at the provider")
            signalled = time.monotonic()
            os.killpg(run.pid, signal.SIGINT)
            rc = run.wait(timeout=60)
            stopped = time.monotonic() - signalled
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
        text = (tmp_path / "deaf.log").read_text(errors="replace")
        assert rc == 130 and stopped < DEADLINE_SECONDS, (rc, stopped, text[-3000:])
        assert text.count(MESSAGE) == 1
        ledger = pd.read_csv(out / "ledger.csv", keep_default_na=False).set_index("track_id")
        assert sorted(ledger.index) == ids
        paid = ledger[ledger.generation_id != ""]
        assert len(paid) >= 4 and set(paid.status) == {"failed"} and set(paid.resume) == {"poll"}
        assert set(ledger.status) <= {"failed", "skipped", "unanswered"}, dict(ledger.status)
        api.shape = dataclasses.replace(api.shape, seconds_to_ready=0.0)
        again = subprocess.run([sys.executable, "-m", "flows", "run", str(path), "--catalog", "demo", "--out",
                                str(out)], capture_output=True, text=True, timeout=300, env={**os.environ, **env},
                               cwd=ROOT)
        assert again.returncode in (0, 3), again.stderr[-3000:]
        assert max(Counter(p["name"] for p in api.posts).values()) == 1  # no row paid twice
    FIGURES.append(f"run whose generation ignores the stop, SIGINT to the group: exit {rc} after {stopped:.1f} s "
                   f"(the deadline wrote the ledger from the journal, {len(paid)} paid tracks to poll)")
