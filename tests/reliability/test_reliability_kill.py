"""kill -9 of a run at seeded random moments, then a restart: the catalog completes, each song paid once."""

import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tasks.delivery.check import probe
from tests.support.figures import FIGURES
from tests.support.usage import service_charges

pytestmark = pytest.mark.reliability

FORMATS = ["mp3", "wav", "flac", "ogg", "m4a"]


def write_brief(path, rows=10):
    pd.DataFrame({
        "track_id": [f"k{i:02d}" for i in range(rows)],
        "name": [f"Kill Test {i}" for i in range(rows)],
        "prompt": ["steady house groove" if i % 2 else "calm piano" for i in range(rows)],
        "seed": [str(100 + i) for i in range(rows)],
        "num_songs": ["2" if i == 3 else "1" for i in range(rows)],
        "output_format": [FORMATS[i % 5] for i in range(rows)],
        "bpm": ["100"] * rows,
        "duration_seconds": ["10"] * rows,
    }).to_csv(path, index=False)


def start_run(brief, out, log):
    return subprocess.Popen(
        [sys.executable, "-m", "flows", "run", str(brief), "--catalog", "kills", "--out", str(out)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy(),
    )


# Five kills are the nightly form (make test-reliability); make test kills once.
@pytest.mark.parametrize("kills", [pytest.param(5, marks=pytest.mark.slow), 1])
def test_killed_runs_complete_with_every_song_paid_once(tmp_path, kills):
    brief, out = tmp_path / "brief.csv", tmp_path / "catalog"
    write_brief(brief)
    rng = random.Random(20261123)
    with open(tmp_path / "runs.log", "ab") as log:
        for _ in range(kills):
            run = start_run(brief, out, log)
            time.sleep(rng.uniform(6, 40))
            os.killpg(run.pid, signal.SIGKILL)  # the run, its Prefect server and its local service, all at once
            run.wait()
        final = start_run(brief, out, log)
        assert final.wait(timeout=900) == 0, (tmp_path / "runs.log").read_text()[-3000:]

    ledger = pd.read_parquet(out / "ledger.parquet")
    ready = ledger[ledger.status == "ready"]
    assert len(ready) == 11 and set(ledger.status) == {"ready"}
    for rec in ready.itertuples():
        assert abs(probe(out / rec.audio_path).duration_seconds - rec.duration_seconds) < 0.25
    audio = {p.name for p in out.iterdir() if p.is_file() and p.suffix[1:] in FORMATS}
    assert audio == set(ready.audio_path)  # no orphaned or partial file
    assert not (out / ".partial").exists() or not any((out / ".partial").iterdir())

    charges = service_charges(out)
    charged_ids = [c["track_id"] for c in charges]
    assert sorted(charged_ids) == sorted(ready.generation_id), "a song was paid for twice or not recorded"
    assert sum(c["cents"] for c in charges) == ledger.cost_cents.sum()
    FIGURES.append(f"run kills: {kills} kill -9 + restart, {len(ledger)} songs ready, {len(charges)} charges, "
                   f"each once, "
          f"{sum(c['cents'] for c in charges)} cents = ledger {ledger.cost_cents.sum()}")


def test_service_killed_mid_run_then_the_run_again_completes(tmp_path):
    import psutil

    brief, out = tmp_path / "brief.csv", tmp_path / "catalog"
    write_brief(brief)
    with open(tmp_path / "runs.log", "ab") as log:
        run = start_run(brief, out, log)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # wait until rows are in flight
            journal = out / ".ledger.jsonl"
            if journal.exists() and journal.read_text().count('"submitted"') >= 2:
                break
            time.sleep(0.2)
        services = [p for p in psutil.Process(run.pid).children(recursive=True)
                    if "serve" in p.cmdline() and "textmusic" in " ".join(p.cmdline())]
        assert len(services) == 1
        services[0].kill()
        assert run.wait(timeout=900) == 0, (tmp_path / "runs.log").read_text()[-3000:]
        first = pd.read_parquet(out / "ledger.parquet")
        again = start_run(brief, out, log)
        assert again.wait(timeout=900) == 0, (tmp_path / "runs.log").read_text()[-3000:]

    ledger = pd.read_parquet(out / "ledger.parquet")
    assert set(ledger.status) == {"ready"} and len(ledger) == 11
    charges = service_charges(out)
    assert sorted(c["track_id"] for c in charges) == sorted(ledger.generation_id)
    FIGURES.append(f"service kill -9 mid-run: first run {(first.status == 'ready').sum()} ready / "
          f"{(first.status == 'failed').sum()} failed, after the rerun {len(ledger)} songs ready, "
          f"{len(charges)} charges ({sum(c['cents'] for c in charges)} cents = ledger {ledger.cost_cents.sum()})")
