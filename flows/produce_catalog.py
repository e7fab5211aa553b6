"""The catalog flow: brief → rows → plan → generation → files → tags → ledger."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.generate import CatalogInfo, Provider, RunGate, base_record, clear_partials
from tasks.ledger import LedgerRecord, load_ledger, summarize, utc_now, write_ledger, write_rejects
from tasks.metering import ensure_rate_limit, prefect_throttle
from tasks.plan import PlannedRow, max_cost_cents, plan_rows, within_budget
from tasks.prefect_tasks import generate_task, load_brief_task, validate_task
from tasks.progress import report_progress
from tasks.provider import Connection, connect, open_provider
from tasks.resume import split_done
from tasks.settings import PipelineSettings
from tasks.validate import Validation
from textmusic.settings import TextMusicSettings

VALIDATION_REPORT_DIR = "validation-report"
TASK_RUNNERS = ("threads", "dask")


def make_task_runner(kind: str, workers: int) -> TaskRunner:  # type: ignore[type-arg]
    """Threads (default) or Dask: with a real Prefect server (PREFECT_API_URL) Dask fans rows out across
    processes; without one each process would boot its own temporary server, so Dask runs threads."""
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if kind != "dask":
        raise ValueError(f"unknown task runner {kind!r}: use one of {', '.join(TASK_RUNNERS)}")
    from prefect.settings import PREFECT_API_URL
    from prefect_dask import DaskTaskRunner

    processes = bool(PREFECT_API_URL.value())
    cluster = {"n_workers": min(workers, 2), "threads_per_worker": max(1, workers // 2)} if processes else \
        {"n_workers": 1, "threads_per_worker": workers}
    return DaskTaskRunner(cluster_kwargs={**cluster, "processes": processes, "dashboard_address": None})


def rejected_records(validation: Validation, catalog: str) -> list[LedgerRecord]:
    """One ledger row per rejected brief row, its reasons joined."""
    reasons: dict[int, list[str]] = {}
    ids: dict[int, str] = {}
    for r in validation.rejections:
        reasons.setdefault(r.row, []).append(f"{r.column}: {r.reason}")
        ids[r.row] = r.track_id
    now = utc_now()
    return [
        LedgerRecord(catalog=catalog, track_id=ids[row], status="rejected", error="; ".join(why), row=row,
                     started_at=now, finished_at=now)
        for row, why in sorted(reasons.items())
    ]


def over_budget_records(rows: list[PlannedRow], catalog: CatalogInfo, provider: Provider, budget_usd: float,
                        settings: PipelineSettings) -> list[LedgerRecord]:
    now = utc_now()
    return [
        base_record(row, catalog, provider).model_copy(update={
            "status": "skipped", "started_at": now, "finished_at": now,
            "error": f"over budget: up to ${max_cost_cents(row.request, settings, provider.local_extensions) / 100:.2f}"
                     f" would exceed the ${budget_usd:.2f} budget",
        })
        for row in rows
    ]


def generate_all(rows: list[PlannedRow], previous: list[LedgerRecord], connection: Connection, out_dir: Path,
                 catalog: CatalogInfo, settings: PipelineSettings) -> list[LedgerRecord]:
    """Fan out one task per row (bounded by the task runner, metered by the shared rate limit)."""
    logger = get_run_logger()
    ensure_rate_limit(settings)
    records: list[LedgerRecord] = []
    by_track: dict[str, list[LedgerRecord]] = {}
    for record in previous:
        by_track.setdefault(record.track_id, []).append(record)
    # Dask may ship tasks to other processes: a client (sockets, locks) cannot travel, so each task opens
    # its own from the connection; with threads the run's tasks share one client and one gate.
    shared = isinstance(FlowRunContext.get().task_runner, ThreadPoolTaskRunner)  # type: ignore[union-attr]
    with connect(connection, TextMusicSettings(), prefect_throttle(settings)) as client:
        futures = generate_task.map(
            rows,
            client=unmapped(client if shared else None),
            connection=unmapped(None if shared else connection),
            provider=unmapped(connection.provider),
            out_dir=unmapped(out_dir),
            catalog=unmapped(catalog),
            gate=unmapped(RunGate() if shared else None),
            settings=unmapped(settings),
            previous=[by_track.get(row.track_id, []) for row in rows],
        )
        for done, future in enumerate(as_completed(futures), start=1):
            finished = future.result()
            records += finished
            logger.info("progress %d/%d rows: %s %s", done, len(rows), finished[0].track_id,
                        ",".join(r.status for r in finished))
            report_progress(done, len(rows))
    return records


def publish_summary(summary: dict[str, object], catalog: str, out_dir: Path, budget_usd: float | None) -> None:
    key = re.sub(r"[^a-z0-9-]+", "-", catalog.lower()).strip("-") or "catalog"
    spent = float(summary["run_cost_usd"])  # type: ignore[arg-type]
    budget_left = f"${budget_usd - spent:.2f}" if budget_usd is not None else "no budget set"
    create_table_artifact(key=f"{key}-summary", table=[{**summary, "budget_left": budget_left}],
                          description=f"Run summary of catalog {catalog}")
    create_markdown_artifact(
        key=f"{key}-report",
        markdown=(f"# Catalog {catalog}\n\n| ready | failed | rejected | skipped | minutes | cost | budget left |\n"
                  f"|---|---|---|---|---|---|---|\n| {summary['ready']} | {summary['failed']} | "
                  f"{summary['rejected']} | {summary['skipped']} | {summary['minutes']} | "
                  f"${float(summary['cost_usd']):.2f} | {budget_left} |\n\nLedger: `{out_dir / 'ledger.csv'}`\n"),
        description=f"Run report of catalog {catalog}",
    )


@flow(name="produce-catalog",
      task_runner=make_task_runner(PipelineSettings().task_runner, PipelineSettings().max_in_flight))
def produce_catalog(brief: str, catalog: str, out: str, budget_usd: float | None = None) -> dict[str, object]:
    """Produce the catalog `catalog` from `brief` into the folder `out`; returns the run summary."""
    logger = get_run_logger()
    settings, api = PipelineSettings(), TextMusicSettings()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_partials(out_dir)
    info = CatalogInfo(name=catalog, artist=settings.artist, composer=settings.composer,
                       publisher=settings.publisher, date=datetime.now(UTC).date().isoformat())

    table = load_brief_task(Path(brief))
    validation = validate_task(table, out_dir / VALIDATION_REPORT_DIR)
    write_rejects(out_dir, [asdict(r) for r in validation.rejections])
    logger.info("brief: %d rows, %d valid, %d rejected", len(table), len(validation.rows),
                len(validation.rejected_rows))

    previous = load_ledger(out_dir)
    records: list[LedgerRecord] = rejected_records(validation, catalog)
    run_cents = 0
    with open_provider(settings, api, out_dir) as connection:
        provider = connection.provider
        planned = plan_rows(validation.rows, catalog, provider.name, provider.local_extensions)
        todo, done = split_done(planned, previous, out_dir)
        budget_cents = round(budget_usd * 100) if budget_usd is not None else None
        todo, over = within_budget(todo, budget_cents, settings, provider.local_extensions)
        records += done + over_budget_records(over, info, provider, budget_usd or 0.0, settings)
        logger.info("plan: %d rows to generate, %d already in the catalog, %d over budget",
                    len(todo), len(planned) - len(todo) - len(over), len(over))
        if todo:
            new = generate_all(todo, previous, connection, out_dir, info, settings)
            records += new
            run_cents = sum(r.cost_cents for r in new)

    clear_partials(out_dir)
    ledger = write_ledger(out_dir, records)
    summary = {**summarize(records), "rows": len(ledger), "run_cost_usd": run_cents / 100}
    logger.info("ledger: %s", summary)
    publish_summary(summary, catalog, out_dir, budget_usd)
    return summary


def run_catalog(brief: Path, catalog: str, out: Path, budget_usd: float | None = None,
                task_runner: str | None = None) -> dict[str, object]:
    """Run the flow with the configured number of generation tasks in flight, on threads or Dask."""
    settings = PipelineSettings()
    runner = make_task_runner(task_runner or settings.task_runner, settings.max_in_flight)
    flow_with_runner = produce_catalog.with_options(task_runner=runner)
    return flow_with_runner(brief=str(brief), catalog=catalog, out=str(out), budget_usd=budget_usd)
