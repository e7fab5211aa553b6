"""A row's failure is the row's, never the run's: whatever raises in a run (generation, versions, a bug), its
ledger and page are written from what it knew, then the error goes on; the command exits 3 (rows not
delivered), not 1 (which means: could not start, or could not write its ledger). And the terminal tells the
truth early: an unusable --out and unknown brief columns are said before Prefect boots.

Before: an exception out of generation ended the run with exit 1 and a traceback, no ledger and no page;
a file given as --out failed after Prefect booted, with a traceback; rejected rows lost their name."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.support import ROOT
from tests.support.runs import brief, trackfoundry, write_profile
from textmusic.testing.standins import Shape, StandIn

# The run as `trackfoundry run` starts it, with the flow's generation broken before it sends anything.
BROKEN_RUN = """
import sys
import flows.produce_catalog as produce_catalog

def broken(*args, **kwargs):
    raise RuntimeError("generation broke")

produce_catalog.generate_all = broken
from flows.cli import main

sys.argv = ["trackfoundry", "run", *sys.argv[1:]]
main()
"""


def with_rejected_row(tmp_path: Path, ids: list[str]) -> Path:
    """The brief with one more row the validator rejects (a seed that is not an integer), named."""
    path = brief(tmp_path, ids)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    bad = {"track_id": "bad", "name": "Named But Bad", "prompt": "calm piano", "seed": "7.5", "output_format": "flac"}
    pd.concat([frame, pd.DataFrame([bad])]).to_csv(path, index=False)
    return path


def test_a_bug_in_generation_still_writes_the_ledger_and_page_and_exits_3(tmp_path: Path) -> None:
    with StandIn(Shape()) as api:
        path, out = with_rejected_row(tmp_path, ["a", "b"]), tmp_path / "out"
        env = {**os.environ, "TEXTMUSIC_API_URL": api.base_url, "TEXTMUSIC_API_KEY": api.api_key,
               "TRACKFOUNDRY_PROVIDER": str(write_profile(tmp_path, api)), "COLUMNS": "200"}
        done = subprocess.run([sys.executable, "-c", BROKEN_RUN, str(path), "--catalog", "demo", "--out", str(out)],
                              capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
        assert not api.posts
    assert done.returncode == 3, done.stderr[-3000:]
    assert "generation broke" in done.stderr and "every row is in" in done.stderr
    ledger = pd.read_csv(out / "ledger.csv", keep_default_na=False).set_index("track_id")
    assert dict(ledger.status) == {"a": "skipped", "b": "skipped", "bad": "rejected"}
    assert "generation broke" in ledger.error["a"] and ledger.error["a"].endswith("before it was sent")
    assert ledger.name["bad"] == "Named But Bad"  # a rejected row keeps its brief name
    assert "Named But Bad" in (out / "index.html").read_text(encoding="utf-8")


def test_tracks_journaled_before_the_run_broke_are_in_its_ledger_as_ready(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Generation delivered every row, then the run broke before it collected them: the journal has them (also
    the row whose track_id a rejected duplicate row shares)."""
    from prefect.artifacts import Artifact

    import flows.produce_catalog as produce_catalog
    from tasks.catalog.ledger import JOURNAL

    real = produce_catalog.generate_all

    def generate_then_break(*args: object, **kwargs: object) -> list[object]:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("broke after generation")

    monkeypatch.setattr(produce_catalog, "generate_all", generate_then_break)
    with StandIn(Shape()) as api:
        monkeypatch.setenv("TEXTMUSIC_API_URL", api.base_url)
        monkeypatch.setenv("TEXTMUSIC_API_KEY", api.api_key)
        monkeypatch.setenv("TRACKFOUNDRY_PROVIDER", str(write_profile(tmp_path, api)))
        out = tmp_path / "out"
        path = brief(tmp_path, ["a", "b", "c"])
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        pd.concat([frame, frame.iloc[[0]]]).to_csv(path, index=False)  # "a" again: rejected as a duplicate
        with pytest.raises(produce_catalog.RunEnded, match="broke after generation") as ended:
            produce_catalog.run_catalog(path, "demo", out)
        assert len(api.posts) == 3
    ledger = pd.read_csv(out / "ledger.csv", keep_default_na=False)
    assert sorted(zip(ledger.track_id, ledger.status, strict=True)) == [
        ("a", "ready"), ("a", "rejected"), ("b", "ready"), ("c", "ready")]
    assert all((out / p).is_file() for p in ledger.audio_path[ledger.status == "ready"])
    assert ended.value.summary["songs"] == 3 and ended.value.summary["failed"] == 0
    assert (out / "index.html").is_file() and not (out / JOURNAL).exists()
    report = Artifact.get("demo-report")  # the Prefect summary, published however the run ended
    assert report is not None and "| songs | versions | failed |" in str(report.data)
    assert "| 3 | 0 | 0 | 0 | 1 |" in str(report.data) and "no budget set" in str(report.data)


@pytest.mark.parametrize(("make", "said"), [
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "is a file, not a folder"),
    (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "catalog", "cannot be created"),
    (lambda tmp: Path("/proc/self"), "cannot be written"),  # root may write anywhere but there
])
def test_an_unusable_out_is_refused_in_one_line_before_prefect_boots(tmp_path: Path, make: object,
                                                                     said: str) -> None:
    with StandIn(Shape()) as api:
        started = time.monotonic()
        out = make(tmp_path)  # type: ignore[operator]
        path = brief(tmp_path, ["a"])
        environ = {**os.environ, "TEXTMUSIC_API_URL": api.base_url, "TEXTMUSIC_API_KEY": api.api_key,
                   "TRACKFOUNDRY_PROVIDER": str(write_profile(tmp_path, api)), "COLUMNS": "200"}
        done = subprocess.run([sys.executable, "-m", "flows", "run", str(path), "--catalog", "demo", "--out",
                               str(out)], capture_output=True, text=True, timeout=120, env=environ, cwd=ROOT)
        assert not api.posts
    assert done.returncode == 1 and said in done.stderr, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "Starting temporary server" not in done.stderr and time.monotonic() - started < 60


def test_unknown_brief_columns_are_said_before_prefect_boots_in_run_and_validate(tmp_path: Path) -> None:
    path = brief(tmp_path, ["a"])
    frame = pd.read_csv(path, dtype=str)
    frame["tempo"] = "90"
    frame.to_csv(path, index=False)
    checked = subprocess.run([sys.executable, "-m", "flows", "validate", str(path)], capture_output=True,
                             text=True, timeout=120, cwd=ROOT)
    assert checked.returncode == 0
    assert checked.stderr.count("`tempo`: unknown column, did you mean `bpm`?") == 1, checked.stderr
    with StandIn(Shape(cost_field="cost_cents")) as api:
        ran = trackfoundry(tmp_path, api, path, "--budget", "100")
        paid = api.charged_cents
    assert ran.returncode == 0, ran.stderr[-3000:]
    warning = ran.stderr.index("warning: `tempo`: unknown column, did you mean `bpm`?")
    assert warning < ran.stderr.index("Starting temporary server")
    table = " ".join(ran.stderr[ran.stderr.index("catalog demo →"):].split())  # songs, versions, rows apart
    for figure in ("rows │ 1", "songs │ 1", "versions │ 0", "rejected │ 0", "skipped │ 0",
                   f"budget_left_usd │ ${100 - paid / 100:.2f}"):
        assert figure in table, table
