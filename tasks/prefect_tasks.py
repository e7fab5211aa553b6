"""Thin Prefect task wrappers; the logic lives in the plain functions they call."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from textmusic.client import TextMusicClient
from textmusic.settings import TextMusicSettings

from .brief import load_brief
from .generate import CatalogInfo, Provider, RunGate, generate_row
from .ledger import LedgerRecord, append_journal
from .plan import PlannedRow
from .settings import PipelineSettings
from .validate import Validation, validate_brief

if TYPE_CHECKING:
    from .provider import Connection

_journal_lock = threading.Lock()


@task(name="load-brief", cache_policy=NO_CACHE)
def load_brief_task(path: Path) -> pd.DataFrame:
    return load_brief(path)


@task(name="validate-brief", cache_policy=NO_CACHE)
def validate_task(table: pd.DataFrame, docs_dir: Path | None = None) -> Validation:
    return validate_brief(table, docs_dir)


@task(name="generate-row", cache_policy=NO_CACHE, task_run_name="generate-{row.track_id}")
def generate_task(
    row: PlannedRow,
    client: TextMusicClient | None,
    provider: Provider,
    out_dir: Path,
    catalog: CatalogInfo,
    gate: RunGate | None,
    settings: PipelineSettings,
    previous: list[LedgerRecord],
    connection: Connection | None = None,
) -> list[LedgerRecord]:
    """One row: generated, delivered into the catalog, and journaled before the task returns. Without a
    shared client (Dask processes cannot receive one), the task opens its own from `connection`."""
    with contextlib.ExitStack() as stack:
        if client is None:
            if connection is None:
                raise ValueError("generate_task needs a client or a connection")
            from .metering import prefect_throttle
            from .provider import connect

            client = stack.enter_context(connect(connection, TextMusicSettings(), prefect_throttle(settings)))
        records = generate_row(
            row, client.fork(), out_dir, catalog, provider, gate or RunGate(), lambda rs: journal(out_dir, rs),
            previous, settings.duration_tolerance_seconds,
        )
    journal(out_dir, records)
    return records


def journal(out_dir: Path, records: list[LedgerRecord]) -> None:
    with _journal_lock:
        append_journal(out_dir, records)
