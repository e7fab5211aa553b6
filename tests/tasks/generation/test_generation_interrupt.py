"""A stop request (what Ctrl-C and SIGTERM set) ends a run's generation within seconds, every row with a record
from what is known: paid tracks resumable, rows not yet sent skipped, nothing paid twice by the next run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tasks import interrupt
from tasks.generation.machinery import Generation
from tasks.run import Provider, RunOptions
from tests.support.generation import CATALOG
from tests.support.hostile import SETTINGS, Hostile, NeverReady, bounded_run, client_for, rows
from textmusic.client import Unauthorized

pytestmark = pytest.mark.reliability


@pytest.fixture
def stop_later() -> object:
    timer = threading.Timer(2.0, interrupt.request_stop)
    timer.start()
    yield timer
    timer.cancel()
    interrupt.STOP.clear()
    interrupt.received.clear()


def test_a_stop_request_ends_every_row_resumably_and_the_next_run_pays_nothing_twice(
        tmp_path: Path, stop_later: object) -> None:
    prompts = tuple(f"calm {i}" for i in range(12))
    settings = SETTINGS.model_copy(update={"initial_in_flight": 4, "max_in_flight": 4})
    with Hostile(NeverReady()) as api:
        started = time.monotonic()
        first, _ = bounded_run(rows(*prompts), client_for(api, poll_deadline_seconds=600), tmp_path,
                               settings=settings)
        stopped_in = time.monotonic() - started - 2.0
        interrupt.STOP.clear()
        paid = [r for r in first if r.generation_id]
        assert len(first) == len(prompts) and stopped_in < 10
        assert paid and all(r.status == "failed" and r.resume == "poll" for r in paid)
        assert all(r.status == "skipped" and r.cost_cents == 0 for r in first if not r.generation_id)
        api.play.ready_after = 0.0
        second, _ = bounded_run(rows(*prompts), client_for(api), tmp_path, first, settings=settings)
    assert sorted(r.status for r in second) == ["ready"] * len(prompts)
    assert all(n == 1 for n in api.posts_per_prompt().values()) and len(api.posts) == len(prompts)


def test_a_run_stopped_before_it_reached_paid_rows_keeps_them_in_its_records(tmp_path: Path) -> None:
    """A resumed run stopped while rows paid for by an earlier run still wait their turn (one row in flight):
    those rows end with their paid tracks (to poll), never as skipped, which would drop them from the ledger and
    have the next run pay for them again."""
    prompts = tuple(f"calm {i}" for i in range(6))
    with Hostile(NeverReady()) as api:
        stop = threading.Timer(2.0, interrupt.request_stop)
        stop.start()
        try:
            first, _ = bounded_run(rows(*prompts), client_for(api, poll_deadline_seconds=600), tmp_path,
                                   settings=SETTINGS.model_copy(update={"initial_in_flight": 6, "max_in_flight": 6}))
        finally:
            stop.cancel()
            interrupt.STOP.clear()
            interrupt.received.clear()
        paid = {r.track_id for r in first if r.generation_id}
        assert len(paid) >= 2
        stop = threading.Timer(1.5, interrupt.request_stop)
        stop.start()
        try:
            second, _ = bounded_run(rows(*prompts), client_for(api, poll_deadline_seconds=600), tmp_path, first,
                                    settings=SETTINGS.model_copy(update={"initial_in_flight": 1, "max_in_flight": 1}))
        finally:
            stop.cancel()
            interrupt.STOP.clear()
            interrupt.received.clear()
        kept = {r.track_id: r for r in second if r.track_id in paid}
        assert set(kept) == paid and all(r.generation_id and r.resume == "poll" for r in kept.values())
        api.play.ready_after = 0.0
        third, _ = bounded_run(rows(*prompts), client_for(api), tmp_path, second)
    assert sorted(r.status for r in third) == ["ready"] * len(prompts)
    assert len(api.posts) == len(prompts)  # every row paid once over three runs


def test_rows_handed_on_after_the_run_stopped_or_failed_end_at_once(tmp_path: Path) -> None:
    """A Prefect task that hands its rows on after a stop request, or after a refused key ended the run, gets
    their records (or the run's error) at once: no thread would ever take them, and the run must not hang."""
    with Hostile(NeverReady()) as api, Generation(client_for(api), tmp_path, CATALOG, Provider.of(
            client_for(api).profile), client_for(api).profile, SETTINGS, RunOptions(), lambda records: None,
            0.25) as generation:
        generation.stop.set()
        stopped = generation.add(rows("calm 1"), {})
        assert [r.status for r in stopped[0].result(timeout=5)] == ["skipped"]
        generation._fail_run(Unauthorized("refused", status=401))
        with pytest.raises(Unauthorized):
            generation.add(rows("calm 2"), {})[0].result(timeout=5)
    assert api.posts == []
