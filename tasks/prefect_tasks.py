"""Thin Prefect task wrappers; the logic lives in the plain functions they call."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.catalog.ledger import LedgerRecord, append_journal
from tasks.delivery.finish import Delivery
from tasks.delivery.versions import deliver_versions
from tasks.generation.machinery import Generation
from tasks.intake.brief import load_brief
from tasks.intake.plan import PlannedRow
from tasks.intake.planning.outcome import PLANNED_BRIEF, PlanOutcome, plan_brief
from tasks.intake.validate import Validation, validate_brief
from tasks.provider.connection import Connection, connect
from tasks.provider.metering import BatchedThrottle, prefect_throttle
from tasks.run import CatalogInfo, RunOptions
from tasks.settings import PipelineSettings
from textmusic.providers import Profile
from textmusic.settings import TextMusicSettings


@task(name="load-brief", cache_policy=NO_CACHE)
def load_brief_task(path: Path) -> pd.DataFrame:
    return load_brief(path)


@task(name="plan-brief", cache_policy=NO_CACHE)
def plan_brief_task(spec: Path, out_dir: Path) -> PlanOutcome:
    """A plan spec's brief, written into the catalog folder: the same spec and seed give the same bytes, so a
    scheduled or repeated run resumes the catalog instead of planning another."""
    from textmusic.embed import MiniLM

    return plan_brief(spec, out_dir / PLANNED_BRIEF, MiniLM().embed)


@task(name="validate-brief", cache_policy=NO_CACHE)
def validate_task(table: pd.DataFrame, docs_dir: Path | None = None, profile: Profile | None = None) -> Validation:
    return validate_brief(table, docs_dir, profile)


_throttles: dict[str, BatchedThrottle] = {}
_throttles_lock = threading.Lock()


def process_throttle(settings: PipelineSettings) -> BatchedThrottle:
    """This process's throttle for the settings' rate limit: made once, so its batches are shared."""
    key = settings.model_dump_json(include={"rate_limit_name", "requests_per_window", "window_seconds",
                                            "metering_batch_max", "metering_lapse_seconds"})
    with _throttles_lock:
        if key not in _throttles:
            _throttles[key] = prefect_throttle(settings)
        return _throttles[key]


@contextlib.contextmanager
def open_generation(connection: Connection, out_dir: Path, catalog: CatalogInfo, settings: PipelineSettings,
                    options: RunOptions,
                    on_row_done: Callable[[list[LedgerRecord]], None] | None = None) -> Iterator[Generation]:
    """A run's generation machinery over one client, metered by the shared Prefect rate limit through one
    batched throttle per process (Dask tasks in one process share their batches)."""
    with connect(connection, TextMusicSettings(), process_throttle(settings)) as client, Generation(
        client, out_dir, catalog, connection.provider, connection.profile, settings, options,
        lambda records: append_journal(out_dir, records), settings.duration_tolerance_seconds, on_row_done,
        connection.max_in_flight,
    ) as generation:
        yield generation


@task(name="generate-rows", cache_policy=NO_CACHE, task_run_name="generate-rows-{rows[0].track_id}")
def generate_rows_task(
    rows: list[PlannedRow],
    generation: Generation | None,
    previous: dict[str, list[LedgerRecord]],
    connection: Connection | None = None,
    out_dir: Path | None = None,
    catalog: CatalogInfo | None = None,
    settings: PipelineSettings | None = None,
    options: RunOptions | None = None,
) -> list[LedgerRecord]:
    """Rows generated, delivered and journaled by the run's shared machinery; without one (Dask processes
    cannot receive threads and sockets) the task runs its own from `connection`."""
    if generation is not None:
        return generation.run(rows, previous)
    if connection is None or out_dir is None or catalog is None or settings is None or options is None:
        raise ValueError("generate_rows_task needs the run's generation or a connection and its settings")
    with open_generation(connection, out_dir, catalog, settings, options) as own:
        return own.run(rows, previous)


@task(name="deliver-versions", cache_policy=NO_CACHE)
def deliver_versions_task(records: list[LedgerRecord], rows: list[PlannedRow], earlier: list[LedgerRecord],
                          connection: Connection, out_dir: Path, catalog: CatalogInfo,
                          settings: PipelineSettings) -> list[LedgerRecord]:
    """Library versions of the delivered songs: from the provider when it renders them, else edited."""
    by_track = {row.track_id: row for row in rows}
    if not any(by_track.get(r.track_id) and by_track[r.track_id].request.versions for r in records):
        return []
    journal = lambda made: append_journal(out_dir, made)  # noqa: E731 - a one-line callback
    offers = connection.provider.local_extensions
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(connect(connection, TextMusicSettings(), process_throttle(settings))) \
            if offers else None
        return deliver_versions(records, by_track, earlier, client, out_dir, catalog,
                                settings.duration_tolerance_seconds, Delivery.from_settings(settings), journal)
