"""The brief's key through a whole run: the local service is asked for it and its engine composes in it, a
hosted provider is not told it; either way every delivered song, cut-down and loop is measured, the ledger and
qc.csv carry the key heard, a key other than the brief's is a warning (never a QC failure), and the `key` tag
carries the key the audio has."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tasks.catalog.ledger import load_ledger
from tasks.delivery.key import CONFIDENT, measure_key
from tasks.delivery.tagging import read_tags
from tests.support import ROOT
from tests.support.runs import trackfoundry
from textmusic.contract import TextToMusicRequest
from textmusic.testing.standins import Shape, StandIn


def _qc_rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "qc.csv").open(encoding="utf-8", newline="") as handle:
        return {row["version"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow  # ~25-45 s: a whole run on the real engine, with a cut-down and stems (make test-slow)
def test_the_local_engine_composes_in_the_briefs_key_and_the_ledger_measures_it(tmp_path: Path) -> None:
    """Long form: the key asked, composed, measured per file (song and cut-down, not stems), tagged, in qc.csv.
    make test keeps its short form below (engine in key, measured as the ledger does) and the hosted run after
    it (ledger, qc.csv and tag carry the key heard through a whole run)."""
    brief = tmp_path / "brief.csv"
    pd.DataFrame([{"track_id": "dm", "name": "Dark Water", "prompt": "emotional cinematic film score", "seed": 3,
                   "duration_seconds": 20, "key": "Dm", "versions": "15|stems", "output_format": "wav"}]
                 ).to_csv(brief, index=False)
    out = tmp_path / "out"
    env = {**os.environ, "TRACKFOUNDRY_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "keys", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    records = {r.version if r.parent else "full": r for r in load_ledger(out)}
    song = records["full"]
    assert song.key == song.key_requested == song.key_measured == "Dm"
    assert song.key_confidence is not None and song.key_confidence > 0.6 and song.key_warning == ""
    assert records["15s"].key_measured == "Dm"  # a cut-down is measured on its own file
    stems = [r for name, r in records.items() if name.startswith("stem:")]
    assert stems and all(r.key_measured == "" and r.key_confidence is None for r in stems)  # parts: not measured
    assert read_tags(out / song.audio_path)["key"] == "Dm"
    qc = _qc_rows(out)
    assert (qc["full"]["key"], qc["full"]["key_measured"], qc["full"]["key_warning"]) == ("Dm", "Dm", "")


def test_the_engine_composes_a_short_song_in_the_briefs_key_as_the_ledger_measures_it(tmp_path: Path) -> None:
    """Short form of the whole local run above (marked slow): the engine asked for Dm composes in Dm, and the
    ledger's measurement (`measure_key` on the written file) hears Dm confidently; 10 s, in process, no run."""
    from textmusic.engine import Engine

    out = tmp_path / "dm.wav"
    result = Engine().render(TextToMusicRequest(prompt="emotional cinematic film score", lyrics="", seed=3,
                                                duration_seconds=10, key="Dm"), out)
    assert result.key == "D minor"  # what the engine says it composed in
    found = measure_key(out)
    assert found["key_measured"] == "Dm"
    assert isinstance(found["key_confidence"], float) and found["key_confidence"] >= CONFIDENT


def _engine_wav(tmp_path: Path, key: str) -> tuple[bytes, float]:
    from textmusic.engine import Engine

    out = tmp_path / "hosted.wav"
    result = Engine().render(TextToMusicRequest(prompt="catchy summer pop hit", lyrics="", seed=8,
                                                duration_seconds=20, key=key), out)
    return out.read_bytes(), result.duration_seconds


def test_a_hosted_track_is_not_told_the_key_and_a_different_key_is_a_warning(tmp_path: Path) -> None:
    audio, seconds = _engine_wav(tmp_path, "F")  # what the hosted model happened to make
    brief = tmp_path / "brief.csv"
    pd.DataFrame([{"track_id": "h", "name": "Hosted", "prompt": "catchy pop", "seed": 3, "key": "Dm",
                   "output_format": "wav"}]).to_csv(brief, index=False)
    with StandIn(Shape(audio_bytes=audio, audio_seconds=seconds)) as api:
        done = trackfoundry(tmp_path, api, brief)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(api.posts) == 1 and "key" not in api.posts[0]  # the hosted API has no key field
    song = next(r for r in load_ledger(tmp_path / "out") if not r.parent)
    assert (song.key, song.key_requested, song.key_measured, song.qc) == ("Dm", "", "F", "pass")
    assert song.key_warning == "brief asks Dm, the audio is in F (the relative major)"
    assert read_tags(tmp_path / "out" / song.audio_path)["key"] == "F"  # the key the audio has
    assert _qc_rows(tmp_path / "out")["full"]["key_warning"] == song.key_warning
