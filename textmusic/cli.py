"""`textmusic` command line: serve the local API, manage its keys, render one track offline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from textmusic.settings import RATE_LIMIT

if TYPE_CHECKING:
    from textmusic.server.faults import FaultConfig
    from textmusic.server.latency import LatencyConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
keys_app = typer.Typer(add_completion=False, no_args_is_help=True, help="API keys of the local service.")
app.add_typer(keys_app, name="keys")

DataDir = Annotated[Path, typer.Option("--data", help="State folder of the local service.")]


# The service's switches for testing against hostile or hosted-like conditions, each off by default.
FaultsOption = Annotated[
    str | None,
    typer.Option(
        envvar="TEXTMUSIC_FAULTS",
        help=(
            "Fault injection (off by default): a .json/.toml file or inline 'name=probability,...'. "
            "Names: submit_429, submit_500, poll_500, track_failed, track_stuck, slow_response, "
            "truncated_download; options: slow_seconds, stuck_seconds, seed."
        ),
    ),
]
LatencyOption = Annotated[
    str | None,
    typer.Option(
        "--latency", envvar="TEXTMUSIC_LATENCY", metavar="MIN-MAX",
        help=(
            "Hosted timing (off by default): each track stays pending for a time drawn uniformly in "
            "[MIN, MAX] seconds from its submission, e.g. 15-25 (floats allowed), or one number for a "
            "fixed time (20). Seeded per track id and --latency-seed; kept across restarts."
        ),
    ),
]
SyntheticAudioOption = Annotated[
    bool,
    typer.Option(
        "--synthetic-audio", envvar="TEXTMUSIC_SYNTHETIC_AUDIO",
        help=(
            "Make a quiet click track (request's BPM, 120 when auto; 44100 Hz stereo; 10 s when "
            "duration_seconds is absent) in the requested format instead of running the music engine: "
            "milliseconds per track, no models loaded. Tracks report engine_version synthetic-1 and "
            "are charged like real ones."
        ),
    ),
]


@app.command()
def serve(
    data: DataDir,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8765,
    rate_limit: Annotated[str, typer.Option(help="Per-key limit: N/Ws (N requests per W seconds).")] = RATE_LIMIT,
    workers: Annotated[int | None, typer.Option(help="Generation processes (default: usable CPUs).")] = None,
    audio_ttl: Annotated[
        float, typer.Option("--audio-ttl", help="Seconds an unstored track's audio stays downloadable, then 410.")
    ] = 3600.0,
    faults: FaultsOption = None,
    faults_seed: Annotated[
        int | None, typer.Option(envvar="TEXTMUSIC_FAULTS_SEED", help="Seed of the faults (reproducible runs).")
    ] = None,
    request_log: Annotated[
        Path | None,
        typer.Option("--request-log", envvar="TEXTMUSIC_REQUEST_LOG",
                     help="Append one line per request received (epoch, method, path, status) to this file."),
    ] = None,
    latency: LatencyOption = None,
    latency_seed: Annotated[
        int, typer.Option("--latency-seed", envvar="TEXTMUSIC_LATENCY_SEED",
                          help="Seed of the per-track latencies (same track id and seed, same time).")
    ] = 0,
    synthetic_audio: SyntheticAudioOption = False,
) -> None:
    """Run the local Text-to-Music service over HTTP."""
    from textmusic.server.app import serve as run_server

    fault_config, latency_config = _checked_conditions(rate_limit, audio_ttl, faults, faults_seed, latency,
                                                       latency_seed)
    run_server(
        data_dir=data,
        host=host,
        port=port,
        rate_limit=rate_limit,
        workers=workers,
        audio_ttl_seconds=audio_ttl,
        faults=fault_config,
        request_log=request_log,
        latency=latency_config,
        synthetic_audio=synthetic_audio,
    )


def _checked_conditions(rate_limit: str, audio_ttl: float, faults: str | None, faults_seed: int | None,
                        latency: str | None, latency_seed: int) -> tuple[FaultConfig, LatencyConfig | None]:
    """The service's conditions parsed before it starts, so a bad one is a usage error naming its option
    rather than a traceback from a half-started server."""
    from textmusic.server.faults import parse_faults
    from textmusic.server.latency import parse_latency
    from textmusic.server.ratelimit import parse_rate_limit

    try:
        fault_config = parse_faults(faults, faults_seed)
        parse_rate_limit(rate_limit)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        latency_config = parse_latency(latency, latency_seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--latency") from exc
    if audio_ttl <= 0:
        raise typer.BadParameter("--audio-ttl must be positive")
    return fault_config, latency_config


@app.command()
def usage(
    data: DataDir,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document, for a ledger to reconcile.")] = False,
) -> None:
    """Per key (a prefix of its hash; keys are never stored): every charge, and the balance."""
    import dataclasses
    import json

    from textmusic.server.store import DB_NAME, Store

    if not (data / DB_NAME).is_file():
        raise typer.BadParameter(f"no service state in {data}", param_hint="--data")
    accounts = Store(data).usage()
    if as_json:
        typer.echo(json.dumps({"keys": [dataclasses.asdict(a) for a in accounts]}, indent=2))
        return
    for a in accounts:
        initial = "?" if a.initial_cents is None else f"{a.initial_cents}"
        typer.echo(
            f"key {a.key_id}: balance {a.balance_cents} cents (initial {initial}, charged {a.charged_cents}, "
            f"held for pending {a.reserved_cents}); tracks ready {a.tracks_ready}, pending {a.tracks_pending}, "
            f"failed {a.tracks_failed}"
        )
        for c in a.charges:
            typer.echo(f"  {c.track_id}  {c.seconds:8.2f} s  {c.cents:5d} cents")


@keys_app.command("create")
def keys_create(
    data: DataDir,
    balance_usd: Annotated[float, typer.Option("--balance-usd", help="Starting balance in USD.")] = 10.0,
) -> None:
    """Create a key; the key is printed alone on the last line."""
    from textmusic.server.store import create_key

    key = create_key(data, balance_cents=round(balance_usd * 100))
    typer.echo(f"created a key with a balance of ${balance_usd:.2f}")
    typer.echo(key)


@app.command()
def render(
    out: Annotated[Path, typer.Option("--out", help="Output file.")],
    prompt: Annotated[str | None, typer.Option()] = None,
    tags: Annotated[str | None, typer.Option(help="Comma- or |-separated style tags.")] = None,
    lyrics_file: Annotated[Path | None, typer.Option("--lyrics-file")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    bpm: Annotated[str, typer.Option(help="A number or 'auto'.")] = "auto",
    duration: Annotated[float | None, typer.Option(help="Seconds (10-600).")] = None,
    format: Annotated[str, typer.Option("--format")] = "wav",
    bit_rate: Annotated[str | None, typer.Option("--bit-rate")] = None,
    prompt_strength: Annotated[float, typer.Option()] = 2.0,
    balance_strength: Annotated[float, typer.Option()] = 0.7,
) -> None:
    """Render one track offline with the same engine the service uses."""
    from pydantic import ValidationError

    from textmusic.contract import TextToMusicRequest
    from textmusic.engine import Engine

    tag_list = [t.strip() for t in tags.replace("|", ",").split(",") if t.strip()] if tags else None
    try:
        request = TextToMusicRequest(
            prompt=prompt,
            tags=tag_list,
            lyrics=lyrics_file.read_text(encoding="utf-8") if lyrics_file else None,
            seed=seed,
            bpm="auto" if bpm == "auto" else float(bpm),
            duration_seconds=duration,
            output_format=format,
            output_bit_rate=bit_rate,
            prompt_strength=prompt_strength,
            balance_strength=balance_strength,
        )
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    result = Engine().render(request, out)
    typer.echo(
        f"{out}: {result.duration_seconds:.2f} s, {result.bpm:g} BPM, style {result.style}, "
        f"{result.output_format}"
    )


def main() -> None:
    app()
