"""The catalog flow: brief → rows → plan → generation → files → tags → ledger."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from prefect import flow, get_run_logger, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.generate import RunGate, clear_partials
from tasks.ledger import LedgerRecord, load_ledger, summarize, utc_now, write_ledger, write_rejects
from tasks.metering import ensure_rate_limit
from tasks.plan import plan_rows
from tasks.prefect_tasks import generate_task, load_brief_task, validate_task
from tasks.provider import open_provider
from tasks.resume import split_done
from tasks.settings import PipelineSettings
from tasks.validate import Validation
from textmusic.settings import TextMusicSettings


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


@flow(name="produce-catalog", task_runner=ThreadPoolTaskRunner(max_workers=4))
def produce_catalog(brief: str, catalog: str, out: str) -> dict[str, object]:
    """Produce the catalog `catalog` from `brief` into the folder `out`; returns the run summary."""
    logger = get_run_logger()
    settings, api = PipelineSettings(), TextMusicSettings()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_partials(out_dir)

    table = load_brief_task(Path(brief))
    validation = validate_task(table)
    write_rejects(out_dir, [asdict(r) for r in validation.rejections])
    logger.info("brief: %d rows, %d valid, %d rejected", len(table), len(validation.rows),
                len(validation.rejected_rows))

    previous = load_ledger(out_dir)
    records: list[LedgerRecord] = rejected_records(validation, catalog)
    with open_provider(settings, api) as connection:
        provider = connection.provider
        planned = plan_rows(validation.rows, catalog, provider.name, provider.local_extensions)
        todo, done = split_done(planned, previous, out_dir)
        records += done
        logger.info("plan: %d rows to generate, %d already in the catalog", len(todo), len(planned) - len(todo))
        if todo:
            ensure_rate_limit(settings)
            futures = generate_task.map(
                todo,
                connection=unmapped(connection),
                out_dir=unmapped(out_dir),
                catalog=unmapped(catalog),
                gate=unmapped(RunGate()),
                settings=unmapped(settings),
            )
            for future in futures:
                records += future.result()

    clear_partials(out_dir)
    ledger = write_ledger(out_dir, records)
    summary = summarize(records)
    logger.info("ledger: %s", summary)
    return {**summary, "rows": len(ledger)}


def run_catalog(brief: Path, catalog: str, out: Path) -> dict[str, object]:
    """Run the flow with the configured number of generation tasks in flight."""
    workers = PipelineSettings().max_in_flight
    flow_with_runner = produce_catalog.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    return flow_with_runner(brief=str(brief), catalog=catalog, out=str(out))
