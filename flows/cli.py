"""`trackfoundry` command line: plan a brief, validate, estimate, produce, re-render, review and export catalogs."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tasks.settings import BIT_DEPTHS, SAMPLE_RATES, SPECS, TASK_RUNNERS, MasterSpec, PipelineSettings

if TYPE_CHECKING:
    from tasks.catalog.verification import Verification
    from tasks.intake.routes import Routes
    from tasks.run import RunOptions

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

BriefArg = Annotated[Path, typer.Argument(help="CSV or Parquet brief.")]
# Exit codes a scheduler can act on: 0 all delivered, 1 could not start or could not write its ledger,
# 2 bad brief rows (validate), 3 rows failed or unanswered, 130/143 interrupted by SIGINT/SIGTERM.
EXIT_ROWS_FAILED = 3
# The command line prints the brief's warnings itself, before Prefect boots; without a handler of its own,
# the brief's logger would print each once more through logging's last resort.
logging.getLogger("tasks.intake.brief").addHandler(logging.NullHandler())


def _either(choices: tuple[object, ...]) -> str:
    """'a, b or c': a setting's choices as the help lists them."""
    said = [str(choice) for choice in choices]
    return ", ".join(said[:-1]) + f" or {said[-1]}" if len(said) > 1 else "".join(said)


def _default(setting: str) -> object:
    return PipelineSettings.model_fields[setting].default


def _spec_choices() -> str:
    """The master specs as the help lists them, from their one declaration, with the settings' default."""
    def said(spec: MasterSpec) -> str:
        if spec.lufs is None:
            return f"{spec.name} (health checks only)"
        return f"{spec.name} ({spec.lufs:g} LUFS, {spec.true_peak_dbtp:g} dBTP)"

    return f"{_either(tuple(said(spec) for spec in SPECS.values()))}; default {_default('master')}"


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]trackfoundry: {message}[/red]", soft_wrap=True)
    return typer.Exit(1)


def _summary_table(title: str, summary: dict[str, object], columns: tuple[str, ...]) -> Table:
    """One line per figure: readable in any terminal width, however many figures."""
    table = Table(title=title)
    table.add_column("")
    table.add_column("", justify="right")
    for k in columns:
        value = summary[k]
        table.add_row(k, "none set" if value is None else f"${value:.2f}" if k.endswith("usd")  # type: ignore[str-format]
                      else str(value))
    return table


@app.command()
def run(
    brief: Annotated[Path, typer.Argument(
        help="CSV or Parquet brief, or a plan spec (TOML): planned into OUT/brief.csv first, its budget the run's "
             "unless --budget is given.")],
    catalog: Annotated[str, typer.Option(help="Catalog name (album tag, seed derivation).")],
    out: Annotated[Path, typer.Option(help="Catalog folder.")],
    budget: Annotated[float | None, typer.Option(help="Hard cap in USD on what this run may spend.")] = None,
    task_runner: Annotated[
        str | None,
        typer.Option("--task-runner", help=f"{_either(TASK_RUNNERS)} (default {_default('task_runner')}); dask: "
                                           "Dask processes when PREFECT_API_URL is set, else Dask threads "
                                           "(TRACKFOUNDRY_TASK_RUNNER)."),
    ] = None,
    resubmit_unanswered: Annotated[bool, typer.Option(
        "--resubmit-unanswered", help="Send again rows whose earlier submission may have been charged "
                                      "(answer lost or unreadable).")] = False,
    regenerate_lost: Annotated[bool, typer.Option(
        "--regenerate-lost", help="Generate anew paid tracks whose audio could not be had (410, never decodes).")
    ] = False,
    versions: Annotated[str | None, typer.Option(
        "--versions", metavar="KINDS",
        help="Library versions for every row whose own `versions` cell is empty, |-separated: 60|30|15 "
             "(seconds), loop4|loop8|loop16 (bars), stems, underscore, nodrums, midi (the score, from the "
             "local engine).")] = None,
    regenerate_rejected: Annotated[bool, typer.Option(
        "--regenerate-rejected", help="Replace takes rejected in review (review.csv) by new takes with new seeds; "
                                      "rejected takes move to DIR/rejected/, approved ones are never touched.")
    ] = False,
    master: Annotated[str | None, typer.Option(
        "--master", metavar="SPEC",
        help=f"Delivery loudness of every file: {_spec_choices()}. Measured after encoding; a file outside it "
             "fails QC (TRACKFOUNDRY_MASTER).")] = None,
    sample_rate: Annotated[int | None, typer.Option(
        "--sample-rate", metavar="HZ",
        help=f"WAV/FLAC files at {_either(SAMPLE_RATES)} Hz (soxr VHQ resampling).")] = None,
    bit_depth: Annotated[int | None, typer.Option(
        "--bit-depth", metavar="BITS",
        help=f"WAV/FLAC files at {_either(BIT_DEPTHS)} bits (TPDF dither at 16).")] = None,
) -> None:
    """Produce the catalog. Exit 0 when every valid row is delivered (or skipped by the budget), 3 when rows
    failed or went unanswered, 130 (Ctrl-C) or 143 (SIGTERM) when interrupted (run it again to resume), 1 when
    the run could not start or could not write its ledger."""
    from tasks.run import RunOptions

    options = RunOptions(budget_usd=budget, task_runner=task_runner, resubmit_unanswered=resubmit_unanswered,
                         regenerate_lost=regenerate_lost, regenerate_rejected=regenerate_rejected,
                         versions=versions, master=master, sample_rate=sample_rate, bit_depth=bit_depth)
    check_options(options)
    check_can_start(brief, out)
    code = run_and_report(brief, catalog, out, options)
    if code:
        raise typer.Exit(code)


def check_options(options: RunOptions) -> None:
    """A choice no stage knows fails now, as a usage error naming its option, before anything is read or
    started. The choices are the settings' (tasks/settings.py declares each once), so the command line never
    offers one the pipeline lacks."""
    from textmusic.contract import check_version_kinds

    if options.versions:
        try:
            check_version_kinds(v.strip().lower() for v in options.versions.split("|") if v.strip())
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--versions") from None
    for value, allowed, hint in ((options.master, tuple(SPECS), "--master"),
                                 (options.sample_rate, SAMPLE_RATES, "--sample-rate"),
                                 (options.bit_depth, BIT_DEPTHS, "--bit-depth"),
                                 (options.task_runner, TASK_RUNNERS, "--task-runner")):
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"use one of {', '.join(map(str, allowed))}", param_hint=hint)


def check_can_start(brief: Path, out: Path) -> None:
    """Fail (exit 1) when the run cannot start: an unreadable brief, an unusable folder, an unreachable or
    refusing provider. The brief's warnings are printed once it is known to be readable."""
    from tasks.delivery.signing import SigningError
    from tasks.intake.brief import BriefError, check_brief
    from tasks.intake.planning.outcome import is_plan_spec
    from tasks.intake.planning.spec import SpecError, load_spec
    from tasks.provider.preflight import PreflightError, check_provider

    try:
        if is_plan_spec(brief):  # planned into the catalog folder by the flow, then run like a brief
            load_spec(brief)
            warnings = []
        else:
            check_brief(brief)
            warnings = column_warnings(brief)
    except (BriefError, SpecError) as exc:
        raise _fail(f"the run cannot start: {exc}") from None
    unusable = unusable_folder(out)
    if unusable:
        raise _fail(f"the run cannot start: {unusable}")
    _warn(warnings)
    try:
        check_provider()
        check_signing(PipelineSettings())
    except (PreflightError, SigningError) as exc:
        raise _fail(f"the run cannot start: {exc}") from None


def check_signing(settings: PipelineSettings) -> None:
    """The signing identity loads (a certificate without its key, an unreadable file, a key C2PA cannot sign with:
    SigningError), unless its key is in a Prefect Secret block, which only the flow reads."""
    from tasks.delivery.signing import signing_identity

    if settings.content_credentials and not settings.signing_key_secret_block:
        signing_identity(settings)


def run_and_report(brief: Path, catalog: str, out: Path, options: RunOptions) -> int:
    """Run the flow with Ctrl-C and SIGTERM asking it to stop (tasks/interrupt.py); the exit code."""
    from rich.progress import Progress

    from flows.produce_catalog import RunEnded, run_catalog
    from tasks import interrupt
    from tasks.progress import listening
    from textmusic.redaction import redact

    interrupt.keep_prefect_server_apart()
    interrupt.install()
    summary: dict[str, object] = {}
    why = failure = ""
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("generating", total=None)
        try:
            with listening(lambda done, total: progress.update(bar, completed=done, total=total)):
                summary = run_catalog(brief, catalog, out, options)
        except RunEnded as ended:  # the ledger is written: the rows say what happened
            summary, why = {**ended.summary, "delivered": False}, ended.reason
        except Exception as exc:  # the ledger could not be written
            failure = redact(f"{type(exc).__name__}: {exc}")
    # Leaving at once once stopped or failed: the interpreter's exit would wait for threads still
    # waiting on the provider. (After the progress bar: it gives the terminal its cursor back.)
    if interrupt.stop_requested():
        interrupt.announce()
    if failure:
        console.print(f"trackfoundry: the run did not complete: {failure}", style="red", soft_wrap=True,
                      markup=False)
        interrupt.leave(1)
    if interrupt.stop_requested():
        interrupt.leave(interrupt.exit_code())
    print_summary(summary, catalog, out, why)
    return 0 if summary["delivered"] else EXIT_ROWS_FAILED


def print_summary(summary: dict[str, object], catalog: str, out: Path, why: str) -> None:
    """The run's summary table, then what the user should know about it, one line each."""
    from flows.produce_catalog import SUMMARY_COLUMNS

    console.print(_summary_table(f"catalog {catalog} → {out}", summary, SUMMARY_COLUMNS))
    if why:
        console.print(f"trackfoundry: {why}; every row is in {out / 'ledger.csv'}", style="red", soft_wrap=True,
                      markup=False)
    if summary["rejected"]:
        console.print(f"rejected rows are listed with their reasons in {out / 'rejects.csv'}")
    if "verified" in summary:
        console.print(f"verified: {summary['verified']} files (checksum, decode, tags, AI disclosure, content "
                      f"credentials; `trackfoundry verify {out}` checks again)", soft_wrap=True, markup=False)
    for problem in summary.get("verification_problems", []):  # type: ignore[attr-defined]
        console.print(f"verification: {problem}", style="red", soft_wrap=True, markup=False)
    if summary.get("development_signed"):
        console.print(f"{summary['development_signed']} files carry content credentials signed with a development "
                      "certificate made on this machine: they verify, but no one else trusts that certificate; "
                      "set TRACKFOUNDRY_SIGNING_CERT_FILE and TRACKFOUNDRY_SIGNING_KEY_FILE to sign with the "
                      "studio's (docs/provenance.md)", style="yellow", soft_wrap=True, markup=False)
    if float(summary["at_risk_usd"]):  # type: ignore[arg-type]
        console.print(f"up to ${float(summary['at_risk_usd']):.2f} more may have been charged (answers lost or "  # type: ignore[arg-type]
                      "unreadable, costs not reported): those rows are not sent again without "
                      "--resubmit-unanswered, and lost audio is not regenerated without --regenerate-lost",
                      soft_wrap=True)


def column_warnings(brief: Path) -> list[str]:
    """The brief's columns the pipeline ignores, each with the known column it most likely meant."""
    from tasks.intake.brief import WARNINGS_ATTR, load_brief

    return list(load_brief(brief).attrs[WARNINGS_ATTR])


def _routes() -> Routes:
    """The providers a run would use now (TRACKFOUNDRY_PROVIDER, TEXTMUSIC_API_URL, and those a row's `provider`
    cell may name): validation holds each row to its provider's request mapping."""
    from tasks.provider.preflight import provider_routes
    from tasks.settings import PipelineSettings
    from textmusic.settings import TextMusicSettings

    return provider_routes(PipelineSettings(), TextMusicSettings())


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False, soft_wrap=True)


def unusable_folder(out: Path) -> str:
    """Why `out` cannot be the catalog folder (not a folder, cannot be made, cannot be written), or ""."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--out {out} cannot be created: {exc.strerror or exc}"
    try:
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        return f"--out {out} cannot be written: {exc.strerror or exc}"
    return ""


@app.command()
def validate(
    brief: BriefArg,
    report: Annotated[Path | None, typer.Option(help="Folder for the HTML validation report (GE Data Docs).")] = None,
) -> None:
    """Check a brief without generating anything; exit non-zero when any row is rejected."""
    from tasks.intake.brief import WARNINGS_ATTR, BriefError, load_brief
    from tasks.intake.validate import grouped_warnings, validate_brief

    try:
        table = load_brief(brief)
        routes = _routes()
    except (BriefError, ValueError) as exc:
        raise _fail(str(exc)) from None
    _warn(table.attrs[WARNINGS_ATTR])
    validation = validate_brief(table, report, routes)
    _warn([f"provider {routes.default.name}: {line}" for line in grouped_warnings(validation.warnings)])
    if not validation.rejections:
        console.print(f"{brief}: all {len(validation.rows)} rows are valid")
        return
    table = Table(title=f"{brief}: {len(validation.rejected_rows)} rejected rows")
    for column in ("row", "track_id", "column", "reason"):
        table.add_column(column)
    for r in validation.rejections:
        table.add_row(str(r.row), r.track_id, r.column, r.reason)
    Console().print(table)
    raise typer.Exit(2)


@app.command()
def estimate(brief: BriefArg) -> None:
    """Estimate what a brief costs (valid rows only) before anything is requested."""
    from tasks.intake.brief import BriefError, load_brief
    from tasks.intake.plan import brief_cost_cents
    from tasks.intake.validate import validate_brief
    from tasks.settings import PipelineSettings
    from textmusic.providers import ProfileError

    settings = PipelineSettings()
    try:
        routes = _routes()
    except ProfileError as exc:  # its price decides the estimate: a bad one is said in a line
        raise _fail(str(exc)) from None
    try:
        validation = validate_brief(load_brief(brief), profile=routes)
    except BriefError as exc:
        raise _fail(str(exc)) from None
    profiles = routes.profiles({r.provider for r in validation.rows} or {""})
    expected, worst = brief_cost_cents(validation.rows, settings, profiles)
    songs = sum(r.request.num_songs for r in validation.rows)
    prices = "; ".join(f"{p.name}: {p.price.model}, {p.price.cents} cents" for p in profiles.values())
    summary = {"valid rows": len(validation.rows), "songs": songs, "rejected rows": len(validation.rejected_rows),
               "price": prices, "expected_usd": expected / 100, "at most_usd": worst / 100}
    Console().print(_summary_table(f"estimate for {brief}", summary, tuple(summary)))


@app.command()
def plan(
    spec: Annotated[Path, typer.Argument(help="Plan spec (TOML), e.g. catalogs/plans/corporate.toml.")],
    out: Annotated[Path, typer.Option(help="The brief to write (CSV); the preview goes beside it.")],
    seed: Annotated[int | None, typer.Option(min=0, help="Plan seed (default: the spec's).")] = None,
    count: Annotated[int | None, typer.Option(min=1, max=5000, help="Rows (default: the spec's count).")] = None,
) -> None:
    """Write a brief from a plan spec: rows spread over style × mood × tempo band, prompts held apart, titles
    unique. Prints the coverage, the prompt distances, the validation and the estimate; exit 1 when the spec
    cannot be planned, 2 when the brief it wrote is not valid."""
    from tasks.intake.planning.outcome import plan_brief
    from tasks.intake.planning.planner import PlanError
    from tasks.intake.planning.spec import SpecError
    from textmusic.embed import MiniLM

    try:
        outcome = plan_brief(spec, out, MiniLM().embed, seed=seed, count=count)
    except (SpecError, PlanError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{out} cannot be written: {exc.strerror or exc}") from None
    table = Table(title=f"{out}: {len(outcome.tracks)} rows planned in {outcome.seconds:.1f} s")
    for column in ("dimension", "value", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for dimension, counts in outcome.coverage.items():
        for value, rows in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(dimension, value, str(rows))
    Console().print(table)
    if outcome.distances:
        d = outcome.distances
        spread = ", ".join(f"p{p} {v:.3f}" for p, v in d.percentiles.items())
        typer.echo(f"prompt distances (MiniLM cosine): minimum {d.minimum:.3f} ({' and '.join(d.nearest_pair)}); "
                   f"{spread}")
    typer.echo(f"tempo clashes (same style, mood, key, BPM within the spec's bpm_apart): {len(outcome.tempo_clashes)}")
    e = outcome.estimate
    budget = "no budget" if e.budget_usd is None else f"budget ${e.budget_usd:.2f}"
    typer.echo(f"estimate ({e.provider}): expected ${e.expected_usd:.2f}, at most ${e.at_most_usd:.2f}; {budget}")
    if e.budget_usd is not None and e.at_most_usd > e.budget_usd:
        console.print("warning: the worst case exceeds the spec's budget: a run with it would skip rows",
                      style="yellow", markup=False)
    typer.echo(f"preview: {outcome.preview}")
    _warn([f"provider {e.provider}: {line}" for line in outcome.warnings])
    if outcome.rejections:
        for r in outcome.rejections:
            console.print(f"row {r.row} {r.track_id} {r.column}: {r.reason}", style="red", markup=False)
        raise typer.Exit(2)
    typer.echo(f"{out}: all {len(outcome.tracks)} rows are valid")


@app.command()
def rerender(
    catalog_dir: Annotated[Path, typer.Argument(help="A catalog folder holding ledger.parquet.")],
    track: Annotated[list[str] | None, typer.Option("--track", help="Only this track_id (repeatable).")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Render in another format.")] = None,
    bit_rate: Annotated[str | None, typer.Option("--bit-rate", help="Bit rate for mp3/m4a.")] = None,
    budget: Annotated[float | None, typer.Option(
        help="Hard cap in USD: songs whose worst case would exceed it are skipped, with the reason.")] = None,
) -> None:
    """Regenerate tracks from the ledger's parameters and seeds into CATALOG_DIR/rerenders/<UTC time>/. Says
    what it will cost before it pays, and what it cost after."""
    from flows.rerender import rerender_catalog
    from tasks.interrupt import keep_prefect_server_apart

    console.print(rerender_estimate(catalog_dir, track, format, bit_rate, budget), soft_wrap=True, markup=False)
    keep_prefect_server_apart()  # never outlives the command, even after kill -9
    try:
        summary = rerender_catalog(str(catalog_dir), track, format, bit_rate, budget)
    except Exception as exc:
        raise _fail(f"the re-render did not complete: {type(exc).__name__}: {exc}") from None
    columns = ("ready", "failed", "skipped", "identical", "engine_changed", "cost_usd", "budget_left_usd")
    console.print(_summary_table(f"re-render → {summary['out']}", summary, columns))


def rerender_estimate(catalog_dir: Path, track: list[str] | None, output_format: str | None, bit_rate: str | None,
                      budget: float | None) -> str:
    """One line: what a re-render should and may at most cost, before Prefect boots or anything is paid."""
    from tasks.catalog.ledger import load_ledger
    from tasks.catalog.rerender import ready_originals, rerender_cost_cents, rerender_route, routed_rerender_rows
    from tasks.intake.routes import RouteError
    from tasks.settings import PipelineSettings

    settings, routes = PipelineSettings(), _routes()
    originals = ready_originals(load_ledger(catalog_dir), track)
    try:
        profiles = routes.profiles({rerender_route(r, routes) for r in originals})
    except RouteError as exc:  # a provider a song was made at, whose key is not set
        raise _fail(str(exc)) from None
    rows = routed_rerender_rows(originals, routes, profiles, output_format, bit_rate)
    if not rows:
        raise _fail(f"no ready tracks to re-render in {catalog_dir}")
    expected, most = rerender_cost_cents(rows, settings, profiles)
    cap = f"; songs past the ${budget:.2f} budget are skipped" if budget is not None else ""
    return f"re-render of {len(rows)} songs: expected ${expected / 100:.2f}, at most ${most / 100:.2f}{cap}"


@app.command()
def probe(
    auth_only: Annotated[bool, typer.Option(
        "--auth-only", help="Only check that the key is accepted, with one request that costs nothing.")] = False,
    write_profile: Annotated[Path | None, typer.Option(
        "--write-profile", metavar="FILE",
        help="Write the observed profile (status words seen, time to ready, [sync] when the provider "
             "looks synchronous) as TOML to FILE.")] = None,
    format: Annotated[str, typer.Option("--format", help="Output format to ask for (mp3 and m4a at 128 kbps).")
                      ] = "mp3",
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", min=1.0,
                                           help="How long to wait for the track to be ready.")] = 600.0,
) -> None:
    """Check the configured provider with its profile, spending as little as possible: one smallest paid
    request followed to the end (or --auth-only). Exit 0 when the profile reads all a run needs, else 1."""
    from flows.probe import run_probe
    from textmusic.contract import OUTPUT_FORMATS

    if format not in OUTPUT_FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(OUTPUT_FORMATS)}", param_hint="--format")
    code = run_probe(auth_only, write_profile, format, timeout, out=typer.echo,
                     err=lambda message: typer.echo(message, err=True))
    raise typer.Exit(code)


@app.command()
def page(
    catalog_dir: Annotated[Path, typer.Argument(help="A catalog folder holding ledger.parquet.")],
    budget: Annotated[float | None, typer.Option(help="Show what is left of this budget (USD).")] = None,
) -> None:
    """Write CATALOG_DIR/index.html: the catalog page (players, waveforms, search, filters), self-contained."""
    from tasks.catalog.ledger import LEDGER_PARQUET
    from tasks.catalog.page import write_page

    if not (catalog_dir / LEDGER_PARQUET).is_file():
        raise _fail(f"{catalog_dir} holds no {LEDGER_PARQUET}: not a catalog folder")
    path = write_page(catalog_dir, budget_usd=budget)
    console.print(f"catalog page: {path} (self-contained: open it in a browser, also from file://)")


@app.command()
def review(
    catalog_dir: Annotated[Path, typer.Argument(help="A catalog folder holding ledger.parquet.")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 0,
) -> None:
    """Serve the catalog page on 127.0.0.1 to approve or reject each take (decisions go to DIR/review.csv).
    Open the URL it prints: its token is the key. Ctrl-C stops it."""
    from flows.review import review_command

    review_command(catalog_dir, port)


@app.command()
def export(
    catalog_dir: Annotated[Path, typer.Argument(help="A catalog folder holding ledger.parquet.")],
    sheet: Annotated[str, typer.Option("--sheet", help="generic, harvest or sourceaudio (see docs/sheets.md).")],
    xlsx: Annotated[bool, typer.Option("--xlsx", help="Write an Excel workbook instead of CSV.")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE", help="Where to write (default DIR/metadata-<sheet>.csv or .xlsx).")] = None,
    approved_only: Annotated[bool, typer.Option(
        "--approved-only", help="Only takes whose review decision is approve.")] = False,
) -> None:
    """Write a metadata sheet for music libraries: one row per delivered file."""
    from tasks.catalog.sheets import SHEETS, delivered_takes, export_sheet

    if sheet not in SHEETS:
        raise typer.BadParameter(f"use one of {', '.join(SHEETS)}", param_hint="--sheet")
    try:
        path = export_sheet(catalog_dir, sheet, out, xlsx, approved_only)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{path}: {len(delivered_takes(catalog_dir, approved_only))} rows")


@app.command()
def verify(
    catalog_dir: Annotated[Path, typer.Argument(help="A catalog folder holding ledger.parquet.")],
    trust_anchors: Annotated[Path | None, typer.Option(
        "--trust-anchors", metavar="PEM", exists=True, dir_okay=False, readable=True,
        help="Root certificates the credentials must chain to (default: "
        "TRACKFOUNDRY_SIGNING_TRUST_ANCHORS; none: a valid signature by any root passes).")] = None,
) -> None:
    """Check every file of a catalog against its ledger: checksum, decode, tags, AI disclosure, content
    credentials, broadcast-WAV chunks; and that no other file lies in it. Exit 1 on any problem."""
    from flows.verify import verify_and_record
    from tasks.catalog.ledger import LEDGER_PARQUET

    if not (catalog_dir / LEDGER_PARQUET).is_file():
        raise _fail(f"{catalog_dir} holds no {LEDGER_PARQUET}: not a catalog folder")
    try:
        verification = verify_and_record(catalog_dir, PipelineSettings(), trust_anchors)
    except OSError as exc:  # TRACKFOUNDRY_SIGNING_TRUST_ANCHORS names a file that cannot be read
        raise _fail(f"cannot read the trust anchors: {exc}") from None
    # The command's output, on stdout: wide enough for file names when piped (rich assumes 80 columns).
    Console(width=None if sys.stdout.isatty() else 200).print(verification_table(verification))
    problems = [p for f in verification.files for p in f.problems]
    for problem in problems:
        console.print(problem, style="red", markup=False, soft_wrap=True)
    console.print(f"{len(verification.files) - sum(1 for f in verification.files if f.problems)} of "
                  f"{len(verification.files)} files verified", style="red" if problems else "green")
    raise typer.Exit(1 if problems else 0)


def verification_table(verification: Verification) -> Table:
    from tasks.delivery.verify import CHECKS

    table = Table(title=f"verification of {len(verification.files)} files")
    table.add_column("file", overflow="fold")
    for check in CHECKS:
        table.add_column(check)
    for verdict in verification.files:
        table.add_row(verdict.audio_path, *(verdict.checks.get(check, "–") for check in CHECKS),
                      style="red" if verdict.problems else None)
    return table


def main() -> None:
    app()
