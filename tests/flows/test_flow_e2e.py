"""The whole path for real: Prefect (ephemeral) → embedded local service over loopback HTTP → catalog."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tasks.delivery.check import probe
from tasks.delivery.tagging import read_tags
from tasks.intake.brief import BRIEF_COLUMNS
from tests.support.usage import service_charges
from textmusic.contract import price_cents
from textmusic.engine import ENGINE_VERSION

ROWS = [
    # track_id, name, prompt, tags, lyrics, seed, num_songs, format, bit rate, bpm, duration
    ("inst-1", "Quiet Keys 🎹 ünïcode", "calm lofi piano beat", "", "", "11", "", "mp3", "128", "84", "10"),
    ("song-2", "Road Song", "", "folk|acoustic", "[verse]\nwalking down the road\n[chorus]\nla la la", "",
     "", "ogg", "", "100", "12"),
    ("pair-3", "Twin Grooves", "funky house groove", "house", "", "33", "2", "m4a", "256", "120", "10"),
    ("flac-4", "../../escape", "ambient pads", "", "", "44", "", "flac", "", "auto", "10"),
    ("wav-5", "=SUM(A1)", "rock anthem", "rock", "", "55", "", "wav", "", "140", "10"),
    ("bad-1", "Lyrics Only", "", "", "just words", "1", "", "wav", "", "", "10"),
    ("bad-2", "Fast", "p", "", "", "2", "", "wav", "", "fast", "10"),
    ("bad-3", "Bitrate", "p", "", "", "3", "", "wav", "192", "", "10"),
    ("inst-1", "Duplicate", "p", "", "", "4", "", "wav", "", "", "10"),
]
AUDIO = ("wav", "mp3", "ogg", "flac", "m4a")


def _number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


COLUMNS = ["track_id", "name", "prompt", "tags", "lyrics", "seed", "num_songs", "output_format",
           "output_bit_rate", "bpm", "duration_seconds"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    from flows.produce_catalog import run_catalog

    root = tmp_path_factory.mktemp("e2e")
    brief = root / "brief.csv"
    frame = pd.DataFrame(ROWS, columns=COLUMNS)
    for column in BRIEF_COLUMNS:
        if column not in frame:
            frame[column] = ""
    frame.to_csv(brief, index=False)
    out = root / "catalog"
    summary = run_catalog(brief, "e2e", out)
    return brief, out, summary


def test_good_rows_produced_and_bad_rows_reported(catalog):
    _, out, summary = catalog
    ledger = pd.read_parquet(out / "ledger.parquet")
    ready = ledger[ledger.status == "ready"]
    assert sorted(ready.track_id) == ["flac-4", "inst-1", "pair-3", "pair-3", "song-2", "wav-5"]
    rejected = ledger[ledger.status == "rejected"]
    assert sorted(rejected.row) == [6, 7, 8, 9]
    rejects = pd.read_csv(out / "rejects.csv")
    assert set(rejects.row) == {6, 7, 8, 9} and rejects.reason.str.len().min() > 5
    produced = {p.resolve() for p in out.rglob("*") if p.is_file() and p.suffix[1:] in AUDIO
                and not any(part.startswith(".") for part in p.relative_to(out).parts)}  # .textmusic: service state
    assert produced == {(out / path).resolve() for path in ready.audio_path}  # nothing outside, no extras
    assert not list(out.parent.glob("escape*")) and not list(out.parent.parent.glob("escape*"))
    import csv

    with open(out / "ledger.csv", newline="", encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not _number(c))]
    assert summary["ready"] == 6 and summary["rejected"] == 4 and summary["failed"] == 0


def test_files_decode_last_as_reported_and_carry_tags(catalog):
    _, out, _ = catalog
    ledger = pd.read_parquet(out / "ledger.parquet")
    for rec in ledger[ledger.status == "ready"].itertuples():
        path = out / rec.audio_path
        assert path.parent == out and path.is_file()
        info = probe(path)
        assert abs(info.duration_seconds - rec.duration_seconds) < 0.25, rec.audio_path
        assert rec.duration_seconds >= rec.duration_requested
        assert rec.cost_cents == price_cents(rec.duration_seconds)
        assert rec.cost_usd == pytest.approx(rec.cost_cents / 100)
        tags = read_tags(path)
        assert tags["title"] == rec.name and tags["seed"] == str(rec.seed) and tags["album"] == "e2e"
        assert tags["generation_id"] == rec.generation_id and tags["request_fingerprint"] == rec.request_fingerprint
        assert int(tags["bpm"]) == round(rec.bpm)
        assert rec.engine_version == ENGINE_VERSION  # what the local service reported it rendered with
        assert len(rec.idempotency_key) == 32  # the local provider gets one per submission
        if rec.bpm_requested != "auto":
            assert rec.bpm == float(rec.bpm_requested)
    pair = ledger[ledger.track_id == "pair-3"]
    assert sorted(pair.song_index) == [0, 1] and pair.seed.nunique() == 2 and pair.generation_id.nunique() == 2
    derived = ledger[ledger.track_id == "song-2"].iloc[0]
    assert derived.seed_source == "derived" and derived.seed >= 0
    assert not any(p.name.startswith(".") and p.is_file() and p.suffix in (".wav", ".mp3") for p in out.iterdir())
    assert not (out / ".partial").exists() or not any((out / ".partial").iterdir())


def test_same_brief_again_generates_and_charges_nothing(catalog):
    brief, out, _ = catalog
    before = pd.read_parquet(out / "ledger.parquet")
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix[1:] in AUDIO}
    done = subprocess.run(
        [sys.executable, "-m", "flows", "run", str(brief), "--catalog", "e2e", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    after = pd.read_parquet(out / "ledger.parquet")
    ready_before = before[before.status == "ready"].sort_values(["track_id", "song_index"])
    ready_after = after[after.status == "ready"].sort_values(["track_id", "song_index"])
    assert list(ready_after.generation_id) == list(ready_before.generation_id)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in mtimes} == mtimes
    assert "plan: 0 rows to generate, 5 already in the catalog" in done.stdout + done.stderr
    charges = service_charges(out)  # what the provider charged, over both runs: each song once
    assert sorted(c["track_id"] for c in charges) == sorted(ready_after.generation_id)
    assert sum(c["cents"] for c in charges) == after.cost_cents.sum()


def test_rerender_is_sample_identical(catalog):
    from flows.rerender import rerender_catalog

    _, out, _ = catalog
    summary = rerender_catalog(str(out))
    rerendered = pd.read_parquet(Path(summary["out"]) / "ledger.parquet")
    assert len(rerendered) == 6 and set(rerendered.status) == {"ready"}
    assert rerendered.identical_to_original.all() and summary["engine_changed"] == 0
    original = pd.read_parquet(out / "ledger.parquet").set_index("audio_path")
    for rec in rerendered.itertuples():
        assert (Path(summary["out"]) / rec.audio_path).is_file()
        assert rec.seed == original.loc[rec.audio_path, "seed"]


def test_budget_caps_what_a_run_spends(catalog, tmp_path):
    from flows.produce_catalog import run_catalog
    from tasks.run import RunOptions

    brief, _, _ = catalog
    summary = run_catalog(brief, "budget", tmp_path / "capped", RunOptions(budget_usd=0.10))
    ledger = pd.read_parquet(tmp_path / "capped" / "ledger.parquet")
    assert ledger.cost_cents.sum() <= 10 and summary["run_cost_usd"] <= 0.10
    assert sum(c["cents"] for c in service_charges(tmp_path / "capped")) <= 10
    skipped = ledger[ledger.status == "skipped"]
    assert len(skipped) >= 1 and skipped.error.str.contains("over budget").all()
    assert (ledger.status == "ready").sum() >= 1
