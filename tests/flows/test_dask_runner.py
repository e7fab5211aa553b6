"""`--task-runner dask` for real: Prefect (ephemeral) with prefect-dask → embedded local service → catalog.

Without a server (no PREFECT_API_URL) the Dask cluster runs threads; the tasks still open their own provider
client from the connection, the path Dask processes take with a real server."""

import subprocess
import sys

import pandas as pd
import pytest

from tasks.delivery.check import probe
from tasks.intake.brief import BRIEF_COLUMNS
from tests.support.usage import service_charges

ROWS = [
    {"track_id": f"d{i}", "name": f"Dask {i}", "prompt": "calm lofi piano", "seed": str(i), "output_format": fmt,
     "bpm": "90", "duration_seconds": "10"}
    for i, fmt in enumerate(["wav", "mp3", "flac"], start=1)
]


def test_make_task_runner_picks_dask_threads_without_a_server(monkeypatch):
    from prefect_dask import DaskTaskRunner

    from flows.produce_catalog import make_task_runner

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    runner = make_task_runner("dask", 4)
    assert isinstance(runner, DaskTaskRunner) and runner.cluster_kwargs["processes"] is False
    with pytest.raises(ValueError, match="unknown task runner"):
        make_task_runner("ray", 4)


def test_flow_on_dask_produces_every_row_once(tmp_path):
    from flows.produce_catalog import run_catalog
    from tasks.run import RunOptions

    frame = pd.DataFrame(ROWS)
    for column in BRIEF_COLUMNS:
        if column not in frame:
            frame[column] = ""
    brief = tmp_path / "brief.csv"
    frame.to_csv(brief, index=False)
    out = tmp_path / "catalog"
    summary = run_catalog(brief, "dask", out, RunOptions(task_runner="dask"))

    assert summary["ready"] == 3 and summary["failed"] == 0, summary
    ledger = pd.read_parquet(out / "ledger.parquet")
    assert sorted(ledger.track_id) == ["d1", "d2", "d3"] and set(ledger.status) == {"ready"}
    for rec in ledger.itertuples():
        assert abs(probe(out / rec.audio_path).duration_seconds - rec.duration_seconds) < 0.25
    charges = service_charges(out)  # each row charged exactly once by the provider
    assert sorted(c["track_id"] for c in charges) == sorted(ledger.generation_id)
    assert sum(c["cents"] for c in charges) == ledger.cost_cents.sum()


def test_cli_refuses_an_unknown_task_runner(tmp_path):
    done = subprocess.run([sys.executable, "-m", "flows", "run", str(tmp_path / "b.csv"), "--catalog", "x",
                           "--out", str(tmp_path / "o"), "--task-runner", "ray"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--task-runner" in done.stderr
