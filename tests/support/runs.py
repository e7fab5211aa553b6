"""`trackfoundry run` as a user runs it against a stand-in provider: its profile, the brief, the command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.support import ROOT
from textmusic.testing.standins import StandIn


def write_profile(tmp_path: Path, api: StandIn, name: str = "standin", tables: str = "") -> Path:
    """A profile `name` for the stand-in (in `tmp_path`/`name`.toml): the hosted one, with a prior time to ready
    that suits a test, and the TOML `tables` after it ([sync], [price] …)."""
    profile = tmp_path / f"{name}.toml"
    profile.write_text(f'name = "{name}"\nbase_url = "{api.base_url}"\nexpected_ready_seconds = 0.4\n\n{tables}')
    return profile


def trackfoundry(tmp_path: Path, api: StandIn, brief: Path, *args: str, key: str | None = None,
                 **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "TEXTMUSIC_API_URL": api.base_url, "TEXTMUSIC_API_KEY": key or api.api_key,
               "TRACKFOUNDRY_PROVIDER": str(write_profile(tmp_path, api)), "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "demo", "--out",
                           str(tmp_path / "out"), *args], capture_output=True, text=True, timeout=300,
                          env=environ, cwd=ROOT)


def brief(tmp_path: Path, ids: list[str]) -> Path:
    path = tmp_path / "brief.csv"
    rows = [{"track_id": t, "name": f"Song {t}", "prompt": f"calm piano {t}", "seed": i + 1,
             "output_format": "flac"} for i, t in enumerate(ids)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
