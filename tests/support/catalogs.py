"""A small delivered catalog made by a real run (the local service's synthetic audio), and its takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tasks.catalog.ledger import LedgerRecord, load_ledger
from tests.support import ROOT

ROWS = [  # track_id, name, prompt, seed, num_songs, output_format
    ("calm-1", "Calm Keys", "calm piano", 11, 1, "wav"),
    ("pair-2", "Twin Grooves", "funky house groove", 22, 2, "mp3"),
    ("pads-3", "Pads", "ambient pads", 33, 1, "flac"),
]


def build_catalog(root: Path) -> Path:
    """A three-row catalog (four takes) from `trackfoundry run`, with the embedded service's synthetic audio."""
    return build_catalog_of(root, ROWS)


def build_catalog_of(root: Path, rows: list[tuple[str, str, str, int, int, str]]) -> Path:
    """A catalog of `rows` (as ROWS) from `trackfoundry run`, with the embedded service's synthetic audio."""
    brief = root / "brief.csv"
    columns = ["track_id", "name", "prompt", "seed", "num_songs", "output_format"]
    pd.DataFrame(rows, columns=columns).assign(duration_seconds=10).to_csv(brief, index=False)
    out = root / "catalog"
    env = {**os.environ, "TRACKFOUNDRY_EMBEDDED_SYNTHETIC_AUDIO": "1", "TRACKFOUNDRY_STATE_DIR": str(root / "state")}
    run = subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "review", "--out", str(out)],
                         capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def takes(out: Path) -> list[LedgerRecord]:
    return sorted((r for r in load_ledger(out) if r.status == "ready"), key=lambda r: (r.track_id, r.song_index))
