"""`trackfoundry run SPEC.toml`: a plan spec is planned into the catalog folder, then run like a brief; its budget
is the run's unless `--budget` is given; a second run plans the same bytes and pays nothing twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.support import ROOT

SPEC = """
count = 3
seed = 4

[styles]
corporate = 1
tech = 1

[moods]
uplifting = 1

[[bpm]]
min = 100
max = 120
bands = 1

[audio]
durations = [10]
format = "wav"

[naming]
prefix = "pl"

[provider]
name = "textmusic-local"
budget_usd = 0.06   # one row's upper bound (5 cents), not two
"""


def _run(spec: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows", "run", str(spec), "--catalog", "plan", "--out", str(out),
                           *extra], capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, bytes, pd.DataFrame, bytes]:
    root = tmp_path_factory.mktemp("plan-run")
    spec = root / "spec.toml"
    spec.write_text(SPEC)
    out = root / "catalog"
    first = _run(spec, out)
    assert first.returncode == 0, first.stderr[-3000:]
    ledger, brief = pd.read_parquet(out / "ledger.parquet"), (out / "brief.csv").read_bytes()
    second = _run(spec, out, "--budget", "1")
    assert second.returncode == 0, second.stderr[-3000:]
    return out, ledger, brief, pd.read_parquet(out / "ledger.parquet"), (out / "brief.csv").read_bytes()


def test_the_spec_is_planned_into_the_catalog_folder_and_its_budget_is_the_runs(runs) -> None:
    out, ledger, brief, _, _ = runs
    assert brief.count(b"\npl-") == 3 and (out / "brief.preview.html").is_file()
    songs = ledger[ledger.parent == ""].set_index("track_id")
    assert sorted(songs.index) == ["pl-0001", "pl-0002", "pl-0003"]
    assert (songs.status == "ready").sum() == 1 and (songs.status == "skipped").sum() == 2
    assert songs.cost_usd.sum() <= 0.06


def test_a_second_run_plans_the_same_brief_and_pays_nothing_twice(runs) -> None:
    _, first, brief, second, again = runs
    assert again == brief
    songs = second[second.parent == ""].set_index("track_id")
    assert (songs.status == "ready").all()
    paid = first[(first.parent == "") & (first.status == "ready")].set_index("track_id")
    for track_id, row in paid.iterrows():
        assert songs.loc[track_id, "generation_id"] == row.generation_id  # kept, not generated again
