"""`trackfoundry rerender` says what it will cost before it pays, keeps to --budget (songs that do not fit are
skipped with the reason, as in `run`) and prints what it cost. Before: it charged silently ($0.22 when tried)
and had no budget."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tasks.catalog.ledger import load_ledger
from tasks.catalog.rerender import ready_originals, rerender_rows
from tasks.intake.plan import max_cost_cents
from tasks.settings import PipelineSettings
from tests.support import ROOT
from tests.support.runs import brief, trackfoundry, write_profile
from textmusic.providers import load_profile
from textmusic.testing.standins import Shape, StandIn


def test_rerender_says_its_cost_first_keeps_to_the_budget_and_prints_what_it_cost(tmp_path: Path) -> None:
    with StandIn(Shape(cost_field="cost_cents")) as api:
        made = trackfoundry(tmp_path, api, brief(tmp_path, ["a", "b"]))
        assert made.returncode == 0, made.stderr[-3000:]
        out = tmp_path / "out"
        rows = rerender_rows(ready_originals(load_ledger(out)), "standin", False)
        # room for one song of the two
        worst = max_cost_cents(rows[0].request, PipelineSettings(), load_profile("verbatik"))
        env = {**os.environ, "TEXTMUSIC_API_URL": api.base_url, "TEXTMUSIC_API_KEY": api.api_key,
               "TRACKFOUNDRY_PROVIDER": str(write_profile(tmp_path, api)), "COLUMNS": "200"}
        done = subprocess.run([sys.executable, "-m", "flows", "rerender", str(out), "--budget", f"{worst / 100:.2f}"],
                              capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(api.posts) == 3 and len(api.charges) == 3  # two for the catalog, one re-rendered
        paid = api.charges[-1]
    said = done.stderr.index("re-render of 2 songs: expected $")
    assert f"at most ${2 * worst / 100:.2f}; songs past the ${worst / 100:.2f} budget are skipped" in done.stderr
    assert said < done.stderr.index("Starting temporary server")  # before anything is paid
    (folder,) = (out / "rerenders").iterdir()
    ledger = pd.read_csv(folder / "ledger.csv", keep_default_na=False).set_index("track_id")
    assert dict(ledger.status) == {"a": "ready", "b": "skipped"} and "over budget" in ledger.error["b"]
    table = " ".join(done.stderr[done.stderr.index("re-render →"):].split())
    assert f"cost_usd │ ${paid / 100:.2f}" in table and "skipped │ 1" in table, table
    assert f"budget_left_usd │ ${(worst - paid) / 100:.2f}" in table, table
