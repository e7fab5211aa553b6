"""The catalog flow: brief → rows → plan → generation → files → tags → ledger.

Rows are not Prefect tasks one by one: hundreds in flight would each hold a thread sleeping on its own
schedule, and Prefect's fan-out of thousands of mapped tasks strains its server (PrefectHQ/prefect#18883).
Rows go to Prefect in tasks of `TRACKFOUNDRY_ROWS_PER_TASK` (a 10,000-row brief is 400 task runs), and all
of a run's tasks feed one generation machinery (tasks/generation/machinery.py): adaptive rows in flight, one poller.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, as_completed
from prefect.states import Completed, Failed, State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.verify import verify_and_record
from tasks import interrupt
from tasks.catalog.decisions import load_decisions
from tasks.catalog.ledger import (
    FAILED,
    POLL,
    READY,
    REJECTED,
    SKIPPED,
    SUBMITTED,
    SUBMITTING,
    UNANSWERED,
    LedgerRecord,
    append_journal,
    load_ledger,
    record_key,
    summarize,
    utc_now,
    write_ledger,
    write_rejects,
)
from tasks.catalog.page import write_page
from tasks.catalog.retake import replaced_takes, retire_rejected
from tasks.catalog.similar import flag_similar
from tasks.catalog.verification import Verification
from tasks.delivery.place import clear_partials
from tasks.delivery.qc import write_qc_csv
from tasks.delivery.versions import superseded_not
from tasks.generation.records import base_record
from tasks.generation.resume import resumption, split_done
from tasks.intake.brief import with_default_versions
from tasks.intake.plan import PlannedRow, max_cost_cents, plan_rows, within_budget
from tasks.intake.planning.outcome import is_plan_spec
from tasks.intake.routes import DEFAULT_ROUTE
from tasks.intake.validate import Validation, grouped_warnings
from tasks.prefect_tasks import (
    deliver_versions_task,
    generate_rows_task,
    load_brief_task,
    open_generation,
    plan_brief_task,
    validate_task,
)
from tasks.progress import report_progress
from tasks.provider.connection import Connection, metered_by, open_route
from tasks.provider.metering import ensure_rate_limit
from tasks.provider.preflight import provider_routes
from tasks.run import CatalogInfo, Provider, RunOptions
from tasks.settings import TASK_RUNNERS, PipelineSettings
from textmusic.providers import Profile
from textmusic.redaction import redact
from textmusic.settings import TextMusicSettings

T = TypeVar("T")
VALIDATION_REPORT_DIR = "validation-report"


def task_slots(settings: PipelineSettings) -> int:
    """Prefect tasks running at once: enough rows handed to the machinery to fill its window twice."""
    ceiling = settings.max_in_flight or Profile.model_fields["max_in_flight"].default
    return max(4, 2 * math.ceil(ceiling / settings.rows_per_task))


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


def rejected_records(validation: Validation, catalog: str, names: dict[int, str]) -> list[LedgerRecord]:
    """One ledger row per rejected brief row, its reasons joined, under its brief `name` (by row number)."""
    reasons: dict[int, list[str]] = {}
    ids: dict[int, str] = {}
    for r in validation.rejections:
        reasons.setdefault(r.row, []).append(f"{r.column}: {r.reason}")
        ids[r.row] = r.track_id
    now = utc_now()
    return [
        LedgerRecord(catalog=catalog, track_id=ids[row], name=names.get(row, ""), status=REJECTED,
                     error="; ".join(why), row=row, started_at=now, finished_at=now)
        for row, why in sorted(reasons.items())
    ]


def brief_names(table: pd.DataFrame) -> dict[int, str]:
    """Each brief row's `name`, by its 1-based row number."""
    return {int(row): str(name) for row, name in zip(table["row"], table["name"], strict=True)}


Providers = Provider | Mapping[str, Provider]  # one for every row, or each row's by its route


def provider_of(row: PlannedRow, providers: Providers) -> Provider:
    """The provider a row goes to: the one, or the one its route names."""
    return providers[row.provider] if isinstance(providers, Mapping) else providers


def over_budget_records(rows: list[PlannedRow], catalog: CatalogInfo, providers: Providers, budget_usd: float,
                        settings: PipelineSettings, previous: list[LedgerRecord]) -> list[LedgerRecord]:
    """Skipped rows; one whose lost answer may be sent again keeps its Idempotency-Key for a later run."""
    now = utc_now()
    records = []
    for row in rows:
        provider = provider_of(row, providers)
        keep = next((r for r in previous if r.track_id == row.track_id and r.request_fingerprint == row.fingerprint
                     and r.song_index == 0 and r.idempotency_key and not r.generation_id), None)
        records.append(base_record(row, catalog, provider).model_copy(update={
            "status": SKIPPED, "started_at": now, "finished_at": now,
            "idempotency_key": keep.idempotency_key if keep else "", "resume": "resend" if keep else "",
            "error": f"over budget: up to ${max_cost_cents(row.request, settings, provider) / 100:.2f}"
                     f" would exceed the ${budget_usd:.2f} budget",
        }))
    return records


def already_paid(rows: list[PlannedRow], previous: list[LedgerRecord], options: RunOptions,
                 connections: Mapping[str, Connection]) -> set[str]:
    """Rows whose tracks are paid for (to poll or download) or held for the user's decision: they cost
    nothing now, so the budget never skips them (skipping would forget what was paid)."""
    by_track = _group(previous)
    return {row.track_id for row in rows
            if resumption(row, by_track.get(row.track_id, []), options,
                          connections[row.provider].profile.sends_idempotency_key).kind in ("poll", "hold")}


def _group(records: list[LedgerRecord]) -> dict[str, list[LedgerRecord]]:
    by_track: dict[str, list[LedgerRecord]] = {}
    for record in records:
        by_track.setdefault(record.track_id, []).append(record)
    return by_track


def carried_over(previous: list[LedgerRecord], records: list[LedgerRecord]) -> list[LedgerRecord]:
    """Paid tracks, and submissions that may have been charged, of earlier runs that this run's records do not
    cover (a row changed, moved to another provider, or left the brief): kept in the ledger, so every cent charged
    or at risk stays in it, a paid track is never forgotten, and a row that comes back finds its unanswered
    submission (never sent again unasked)."""
    covered = {(r.track_id, r.song_index, r.request_fingerprint) for r in records}
    kept = []
    for record in previous:
        maybe_paid = record.status in (SUBMITTING, UNANSWERED) or record.at_risk_cents > 0
        if (record.track_id, record.song_index, record.request_fingerprint) in covered or not (
                record.generation_id or maybe_paid):
            continue
        if not record.generation_id:
            kept.append(settled(record, "its row is not in this brief"))
            continue
        if record.status in (SUBMITTED, SUBMITTING):
            record = record.model_copy(update={"status": FAILED, "resume": POLL,
                                               "error": "paid track not delivered: its row is not in this brief"})
        kept.append(record)
    return kept


def retire_takes(out_dir: Path, previous: list[LedgerRecord]) -> list[LedgerRecord]:
    """Takes rejected in review leave the delivered folder (kept as `replaced`); their rows plan new seeds."""
    logger = get_run_logger()
    retirement = retire_rejected(out_dir, previous, load_decisions(out_dir),
                                 lambda records: append_journal(out_dir, records))
    logger.info("review: %d rejected takes replaced by new seeds", len(retirement.retired))
    for track_id, why in retirement.kept.items():
        logger.warning("review: %s has a rejected take but is not regenerated: %s", track_id, why)
    return retirement.records


def routed_settings(settings: PipelineSettings, connections: Mapping[str, Connection]) -> dict[str, PipelineSettings]:
    """Each route's settings: the run's (metered by its own provider) or a routed provider's own rate limit."""
    return {route: settings if route == DEFAULT_ROUTE else metered_by(settings, connection, route)
            for route, connection in connections.items()}


def route_chunks(rows: list[PlannedRow], rows_per_task: int) -> list[tuple[str, list[PlannedRow]]]:
    """Each provider's rows in Prefect tasks of `rows_per_task`, the providers' tasks taken in turn: the task
    runner's threads serve every provider from the start, none waits for another's rows to end."""
    by_route: dict[str, list[PlannedRow]] = {}
    for row in rows:
        by_route.setdefault(row.provider, []).append(row)
    queues = [[(route, mine[i:i + rows_per_task]) for i in range(0, len(mine), rows_per_task)]
              for route, mine in by_route.items()]
    return [chunk for turn in itertools.zip_longest(*queues) for chunk in turn if chunk is not None]


def in_turns(chunks: list[tuple[str, list[PlannedRow]]],
             submit: Callable[[str, list[PlannedRow]], PrefectFuture[list[LedgerRecord]]],
             per_route: int) -> list[PrefectFuture[list[LedgerRecord]]]:
    """Each provider's tasks submitted as its earlier ones end, at most `per_route` at once: a task holds its
    thread until its rows end, so a provider in an outage (or slow to answer) holds only its share of the task
    runner's threads and the others go on. The futures in the order of `chunks` (those submitted: a stopped run
    submits no more)."""
    waiting: dict[str, collections.deque[tuple[int, list[PlannedRow]]]] = {}
    for index, (route, chunk) in enumerate(chunks):
        waiting.setdefault(route, collections.deque()).append((index, chunk))
    running: dict[PrefectFuture[list[LedgerRecord]], str] = {}
    futures: dict[int, PrefectFuture[list[LedgerRecord]]] = {}
    while True:
        if interrupt.stop_requested():  # a stopped run sends nothing new: rows never handed on are skipped
            waiting.clear()
        for route, queue in waiting.items():
            while queue and sum(1 for r in running.values() if r == route) < per_route:
                index, chunk = queue.popleft()
                futures[index] = future = submit(route, chunk)
                running[future] = route
        if not running:
            return [futures[i] for i in sorted(futures)]
        done = next(as_completed(list(running)))
        running.pop(done)
        try:
            done.result()
        except Exception:  # a failed task (a refused key, a bug) ends the run: nothing more is handed out
            waiting.clear()


def generate_all(rows: list[PlannedRow], previous: list[LedgerRecord], connections: Mapping[str, Connection],
                 out_dir: Path, catalog: CatalogInfo, settings: PipelineSettings,
                 options: RunOptions) -> list[LedgerRecord]:
    """Rows in Prefect tasks of `rows_per_task`, each provider's fed to its one machinery (threads), or each
    task with its own (Dask processes); metered by each provider's shared rate limit."""
    logger = get_run_logger()
    metered = routed_settings(settings, connections)
    for own in metered.values():
        ensure_rate_limit(own)
    by_track = _group(previous)
    done = [0]

    def row_done(records: list[LedgerRecord]) -> None:
        done[0] += 1
        logger.info("progress %d/%d rows: %s %s", done[0], len(rows), records[0].track_id,
                    ",".join(r.status for r in records))
        report_progress(done[0], len(rows))

    chunks = route_chunks(rows, settings.rows_per_task)
    runner = FlowRunContext.get().task_runner  # type: ignore[union-attr]
    shared = isinstance(runner, ThreadPoolTaskRunner)
    with contextlib.ExitStack() as stack:
        generations = {route: stack.enter_context(open_generation(connections[route], out_dir, catalog,
                                                                  metered[route], options, row_done))
                       for route in dict(chunks)} if shared else {}

        def submit(route: str, chunk: list[PlannedRow]) -> PrefectFuture[list[LedgerRecord]]:
            return generate_rows_task.submit(
                chunk, generation=generations.get(route),
                previous={row.track_id: by_track.get(row.track_id, []) for row in chunk},
                connection=None if shared else connections[route], out_dir=out_dir, catalog=catalog,
                settings=metered[route], options=options)

        routes = len(dict(chunks))
        threads = getattr(runner, "_max_workers", None) or task_slots(settings)
        futures = in_turns(chunks, submit, max(1, threads // max(routes, 1))) if routes > 1 else \
            [submit(route, chunk) for route, chunk in chunks]
        records = [record for future in futures for record in future.result()]
    if not shared:
        report_progress(len(rows), len(rows))
    return records


def run_summary(records: list[LedgerRecord], run_cents: int, budget_usd: float | None) -> dict[str, object]:
    """The run's figures with songs, versions, rejected and skipped rows told apart, and the budget left."""
    songs = [r for r in records if not r.parent]
    rows = {(r.row, r.track_id) for r in songs}
    return {**summarize(records), "rows": len(rows),
            "songs": sum(1 for r in songs if r.status == READY),
            "rejected": len({(r.row, r.track_id) for r in songs if r.status == REJECTED}),
            "skipped": len({(r.row, r.track_id) for r in songs if r.status == SKIPPED}),
            "run_cost_usd": run_cents / 100,
            "budget_left_usd": None if budget_usd is None else round(budget_usd - run_cents / 100, 2),
            "development_signed": sum(1 for r in records if r.status == READY and r.signer == "development")}


def verification_summary(verification: Verification | None) -> dict[str, object]:
    """What the summary says of the catalog's verification: files verified of all, and each problem."""
    if verification is None:
        return {}
    files = verification.files
    return {"verified": f"{sum(1 for f in files if f.ok)} of {len(files)}",
            "verification_problems": [p for f in files for p in f.problems]}


SUMMARY_COLUMNS = ("rows", "songs", "versions", "failed", "unanswered", "rejected", "skipped", "replaced",
                   "minutes", "cost_usd", "run_cost_usd", "budget_left_usd", "at_risk_usd")


def publish_summary(summary: dict[str, object], catalog: str, out_dir: Path) -> None:
    key = re.sub(r"[^a-z0-9-]+", "-", catalog.lower()).strip("-") or "catalog"
    left = summary["budget_left_usd"]
    budget_left = "no budget set" if left is None else f"${float(left):.2f}"  # type: ignore[arg-type]
    create_table_artifact(key=f"{key}-summary", table=[{k: summary[k] for k in SUMMARY_COLUMNS}],
                          description=f"Run summary of catalog {catalog}")
    create_markdown_artifact(
        key=f"{key}-report",
        markdown=(f"# Catalog {catalog}\n\n| songs | versions | failed | unanswered | rejected rows | skipped rows "
                  f"| minutes | run cost | budget left |\n|---|---|---|---|---|---|---|---|---|\n"
                  f"| {summary['songs']} | {summary['versions']} | {summary['failed']} | {summary['unanswered']} | "
                  f"{summary['rejected']} | {summary['skipped']} | {summary['minutes']} | "
                  f"${float(summary['run_cost_usd']):.2f} | {budget_left} |\n\n"  # type: ignore[arg-type]
                  f"Ledger: `{out_dir / 'ledger.csv'}`\n{_credentials_line(summary)}"),
        description=f"Run report of catalog {catalog}",
    )


def _credentials_line(summary: dict[str, object]) -> str:
    """The report's word on the files' verification and who signed them, plainly for the development identity."""
    line = f"\nFiles verified: {summary['verified']}.\n" if "verified" in summary else ""
    if summary.get("development_signed"):
        line += (f"\n{summary['development_signed']} files are signed with a development certificate made on this "
                 "machine: their content credentials verify, but no one else trusts that certificate.\n")
    return line


class RunEnded(Exception):
    """The run ended early (interrupted, or a bug) after writing its ledger and page from what it knew: its
    rows are all in the ledger, so this is a row outcome (exit 3, or 130/143), not a run that never started."""

    def __init__(self, reason: str, summary: dict[str, object]) -> None:
        super().__init__(reason, summary)
        self.reason, self.summary = reason, summary

    def __str__(self) -> str:
        return self.reason


@dataclass
class Known:
    """What the run knows, kept as it goes, so its ledger can be written however it ends."""

    out_dir: Path
    info: CatalogInfo
    options: RunOptions
    settings: PipelineSettings
    logger: logging.Logger | logging.LoggerAdapter  # type: ignore[type-arg]
    started: str = field(default_factory=utc_now)
    records: list[LedgerRecord] = field(default_factory=list)
    previous: list[LedgerRecord] | None = None  # the ledger at the start (None: the run never read it)
    earlier_versions: list[LedgerRecord] = field(default_factory=list)
    todo: list[PlannedRow] = field(default_factory=list)
    providers: dict[str, Provider] = field(default_factory=dict)  # by route, once open
    ended_by: str = ""  # why the run ended early ("": it did not)


def settled(record: LedgerRecord, why: str, worst_cents: int = 0) -> LedgerRecord:
    """A journal-only record as the ledger keeps it: a paid track (submitted) is failed and polled by the next
    run, never paid again; a submission whose answer never came is unanswered (resent only with its key)."""
    if record.status == SUBMITTED:
        return record.model_copy(update={"status": FAILED, "resume": POLL, "finished_at": utc_now(),
                                         "error": f"{why}: paid track not delivered, the next run polls it"})
    if record.status == SUBMITTING:
        return record.model_copy(update={
            "status": "unanswered", "resume": "resend" if record.idempotency_key else "unanswered",
            "at_risk_cents": max(record.at_risk_cents, worst_cents), "finished_at": utc_now(),
            "error": f"{why} while its submission was on the wire: it may have been charged"})
    return record


def open_row_records(known: Known, rows: list[PlannedRow], journal: list[LedgerRecord]) -> list[LedgerRecord]:
    """Records of rows the generation did not hand back (the run ended early), from the journal: what this run
    or an earlier one journaled that still matters (a paid track, a submission, a decision), settled; a row
    with none is skipped, with why."""
    why = known.ended_by or "interrupted"
    records = []
    for row in rows:
        mine = [r for r in journal if r.track_id == row.track_id and r.request_fingerprint == row.fingerprint
                and not r.parent]
        if any(r.generation_id or r.resume or r.status in (SUBMITTING, SUBMITTED) or r.started_at >= known.started
               for r in mine):
            worst = max_cost_cents(row.request, known.settings, known.providers[row.provider])
            records += [settled(r, why, worst).model_copy(update={"row": row.row}) for r in mine]
            continue
        now = utc_now()
        records.append(base_record(row, known.info, known.providers[row.provider]).model_copy(update={
            "status": SKIPPED, "started_at": now, "finished_at": now, "error": f"{why} before it was sent"}))
    return records


def final_records(known: Known) -> list[LedgerRecord]:
    """Every record the ledger must hold: the run's, the rows it left open (from the journal), and what
    earlier runs paid for that this run does not cover."""
    journal = load_ledger(known.out_dir)
    if known.previous is None:  # it never planned: the ledger as it was, the journal folded in
        return [settled(r, known.ended_by or "interrupted") for r in journal]
    records = list(known.records)
    covered = {(r.track_id, r.request_fingerprint) for r in records if not r.parent}  # a rejected row has none
    records += open_row_records(known, [row for row in known.todo if (row.track_id, row.fingerprint) not in covered],
                                journal)
    keys = {record_key(r) for r in records}  # anything else this run journaled (versions…) is kept, settled
    why = known.ended_by or "interrupted"
    records += [settled(r, why) for r in journal if r.started_at >= known.started and record_key(r) not in keys]
    records += carried_over(known.previous, records)
    return records + superseded_not(known.earlier_versions, records)


def write_outputs(known: Known, publish: bool = True) -> dict[str, object]:
    """Write the ledger (it must be written: else this raises), then what derives from it: the QC sheet, the
    Prefect summary and the page, each of which only logs when it fails."""
    logger = known.logger
    records = final_records(known)
    if not known.ended_by:  # near-duplicate flags: the next complete run sets them
        songs = _logged(logger, "similarity flags", flag_similar, known.out_dir, [r for r in records if not r.parent],
                        known.settings.similarity_threshold)
        records = (songs if songs is not None else [r for r in records if not r.parent]) + \
            [r for r in records if r.parent]
    write_ledger(known.out_dir, records)
    _logged(logger, "QC sheet", write_qc_csv, known.out_dir, records)
    run_cents = sum(r.cost_cents for r in records if r.run_id == known.options.run_id)
    summary = run_summary(records, run_cents, known.options.budget_usd)
    if not known.ended_by:  # an interrupted run ends within its deadline: `trackfoundry verify` checks it later
        verification = _logged(logger, "verification", verify_and_record, known.out_dir, known.settings)
        summary |= verification_summary(verification)
    logger.info("ledger: %s", summary)
    if publish:
        _logged(logger, "Prefect summary", publish_summary, summary, known.info.name, known.out_dir)
    if _logged(logger, "catalog page", write_page, known.out_dir, budget_usd=known.options.budget_usd,
               run_cost_usd=run_cents / 100) is None:
        logger.error("`trackfoundry page %s` writes the catalog page again from the ledger", known.out_dir)
    return summary


def _logged(logger: logging.Logger | logging.LoggerAdapter, what: str,  # type: ignore[type-arg]
            call: Callable[..., T], *args: object, **kwargs: object) -> T | None:
    """What derives from the ledger: a failure is logged, in one line, and never loses the ledger."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        logger.error("%s not written: %s: %s", what, type(exc).__name__, exc)
        return None


@flow(name="produce-catalog",
      task_runner=make_task_runner(PipelineSettings().task_runner, task_slots(PipelineSettings())))
def produce_catalog(brief: str, catalog: str, out: str, options: RunOptions | None = None) -> State:
    """Produce the catalog `catalog` from `brief` into the folder `out`, as `options` say (none: a fresh
    run with the settings' delivery spec and no budget). The flow run's final state is Completed when every
    valid row was delivered (or skipped by the budget), else Failed; both carry the run summary.

    Whatever ends it (done, Ctrl-C, a bug), the ledger and page are written from what is known before the
    error goes on (as `RunEnded`); an interrupted run ends within the deadline (tasks/interrupt.py)."""
    interrupt.reclaim()
    options = options or RunOptions()
    settings = with_delivery(PipelineSettings(), options)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    known = Known(out_dir, CatalogInfo(name=catalog, artist=settings.artist, composer=settings.composer,
                                       publisher=settings.publisher, date=datetime.now(UTC).date().isoformat()),
                  options, settings, get_run_logger())

    def on_deadline() -> None:
        """The deadline's writer, should the flow not end in time: as interrupted, without Prefect's summary."""
        write_outputs(replace(known, ended_by=known.ended_by or "interrupted"), publish=False)

    with contextlib.ExitStack() as stack, interrupt.ledger_writer(on_deadline):
        try:
            produce(known, stack, Path(brief))
        except BaseException as exc:
            known.ended_by = "interrupted" if interrupt.stop_requested() else \
                redact(f"the run ended early ({type(exc).__name__}: {exc})")
            with interrupt.writing():
                summary = write_outputs(known)
            raise RunEnded(known.ended_by, summary) from exc
        if interrupt.stop_requested():
            known.ended_by = "interrupted"
        with interrupt.writing():
            summary = write_outputs(known)
    undelivered = int(summary["failed"]) + int(summary["unanswered"])  # type: ignore[call-overload]
    if undelivered:
        return Failed(message=f"{undelivered} rows not delivered (see the ledger)", data=summary)
    return Completed(message="every valid row delivered or skipped by the budget", data=summary)


def brief_of_plan(known: Known, spec: Path) -> Path:
    """A plan spec given for a brief: its brief is planned into the catalog folder, and its budget is the run's
    unless the run was given one."""
    outcome = plan_brief_task(spec, known.out_dir)
    if outcome.rejections:  # the planner writes valid rows; a rejection is a planner bug, not a row to skip
        raise ValueError(f"the plan {spec} wrote {len(outcome.rejections)} invalid rows: {outcome.rejections[0]}")
    if known.options.budget_usd is None and outcome.estimate.budget_usd is not None:
        known.options = replace(known.options, budget_usd=outcome.estimate.budget_usd)
    known.logger.info("plan %s: %d rows into %s (budget %s)", spec, len(outcome.tracks), outcome.brief,
                      known.options.budget_usd)
    return outcome.brief


def produce(known: Known, stack: contextlib.ExitStack, brief: Path) -> None:
    """Brief → plan → generation → versions, each step kept in `known` as it ends. The provider is left
    open on `stack` until the ledger is written (the embedded service must outlive the run's last word)."""
    if is_plan_spec(brief):
        brief = brief_of_plan(known, brief)
    logger, out_dir, options = known.logger, known.out_dir, known.options
    clear_partials(out_dir)
    table = with_default_versions(load_brief_task(brief), options.versions)
    # Each row's provider profile is known before any request: its request mapping's limits and losses are
    # validation's (the connections themselves are opened after).
    routes = provider_routes(known.settings, TextMusicSettings())
    validation = validate_task(table, out_dir / VALIDATION_REPORT_DIR, routes)
    for line in grouped_warnings(validation.warnings):
        logger.warning("provider %s: %s", routes.default.name, line)
    write_rejects(out_dir, [asdict(r) for r in validation.rejections])
    logger.info("brief: %d rows, %d valid, %d rejected", len(table), len(validation.rows),
                len(validation.rejected_rows))
    previous = load_ledger(out_dir)
    known.earlier_versions = [r for r in previous if r.parent]
    previous = [r for r in previous if not r.parent]
    if options.regenerate_rejected:
        previous = retire_takes(out_dir, previous)
    known.previous = previous
    known.records = rejected_records(validation, known.info.name, brief_names(table))
    connections = {route: stack.enter_context(open_route(routes, route, known.settings, TextMusicSettings(), out_dir))
                   for route in sorted({r.provider for r in validation.rows} or {DEFAULT_ROUTE})}
    known.providers = {route: c.provider for route, c in connections.items()}
    if DEFAULT_ROUTE in connections:
        known.settings = metered_by(known.settings, connections[DEFAULT_ROUTE])
    settings, providers = known.settings, known.providers
    default = providers.get(DEFAULT_ROUTE) or Provider.of(routes.default)
    planned = plan_rows(validation.rows, known.info.name, default.name, default.local_extensions,
                        replaced_takes(previous), settings.file_name_template, routed=providers)
    todo, done = split_done(planned, previous, out_dir)
    paid = already_paid(todo, previous, options, connections)
    budget_cents = round(options.budget_usd * 100) if options.budget_usd is not None else None
    fits, over = within_budget([r for r in todo if r.track_id not in paid], budget_cents, settings, providers)
    todo = [r for r in todo if r.track_id in paid or r in fits]
    known.records += done + over_budget_records(over, known.info, providers, options.budget_usd or 0.0, settings,
                                                previous)
    logger.info("plan: %d rows to generate, %d already in the catalog, %d over budget (%d already paid)",
                len(todo), len(planned) - len(todo) - len(over), len(over), len(paid))
    if len(connections) > 1:
        logger.info("providers: %s", ", ".join(f"{providers[route].name} {sum(r.provider == route for r in todo)} rows"
                                              for route in connections))
    known.todo = todo
    if todo and not interrupt.stop_requested():
        known.records += generate_all(todo, previous, connections, out_dir, known.info, settings, options)
    metered = routed_settings(settings, connections)
    for route, connection in connections.items():
        if interrupt.stop_requested():
            break
        mine = [row for row in planned if row.provider == route]
        ids = {row.track_id for row in mine}
        known.records += deliver_versions_task([r for r in known.records if r.track_id in ids], mine,
                                               [r for r in known.earlier_versions if r.track_id in ids], connection,
                                               out_dir, known.info, metered[route])
    clear_partials(out_dir)


def with_delivery(settings: PipelineSettings, options: RunOptions) -> PipelineSettings:
    """The settings with the run's delivery spec where it names one (checked like the settings' own)."""
    asked = {k: v for k, v in (("master", options.master), ("sample_rate", options.sample_rate),
                               ("bit_depth", options.bit_depth)) if v is not None}
    return PipelineSettings.model_validate({**settings.model_dump(), **asked}) if asked else settings


def run_catalog(brief: Path, catalog: str, out: Path, options: RunOptions | None = None) -> dict[str, object]:
    """Run the flow on the task runner `options` name (else the settings'); returns the run summary (its
    `delivered` says whether every valid row was delivered). A run that could not complete raises."""
    options = options or RunOptions()
    settings = PipelineSettings()
    runner = make_task_runner(options.task_runner or settings.task_runner, task_slots(settings))
    flow_with_runner = produce_catalog.with_options(task_runner=runner)
    state = flow_with_runner(brief=str(brief), catalog=catalog, out=str(out), options=options, return_state=True)
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, BaseException):
        raise summary  # what ended the run before it could complete
    if not isinstance(summary, dict):
        raise RuntimeError(f"the flow run ended {state.type.value} without a summary")
    return {**summary, "delivered": state.is_completed()}
