"""A stop request (what Ctrl-C and SIGTERM set) ends a run's generation within seconds, every row with a record
from what is known: paid tracks resumable, rows not yet sent skipped, nothing paid twice by the next run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tasks import interrupt
from tests.support.hostile import SETTINGS, Hostile, NeverReady, bounded_run, client_for, rows

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
