"""`trackfoundry run` as a user runs it, against a provider that echoes the key in every place it can: the key
is in none of the run's outputs — the catalog folder (ledger, journal, page, support files, rejects, QC sheet,
validation report), the terminal, and Prefect's own database of logs and artifacts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.support import ROOT
from tests.support.hostile import API_KEY, KEY_SPELLINGS, EchoKey, Hostile, profile_toml

pytestmark = pytest.mark.reliability


def test_a_run_against_a_provider_echoing_the_key_writes_it_nowhere(tmp_path: Path) -> None:
    prompts = ["calm reject", "calm refuse", "calm unreadable", "calm fail", "calm cdn", "calm fine"]
    brief = tmp_path / "brief.csv"
    pd.DataFrame([{"track_id": f"t{i}", "name": f"Song {i}", "prompt": p, "seed": i + 1, "output_format": "wav"}
                  for i, p in enumerate(prompts)] +
                 [{"track_id": "../../../../tmp/x", "name": "escape", "prompt": "calm", "seed": 9,
                   "output_format": "wav"}]).to_csv(brief, index=False)
    home, out = tmp_path / "prefect-home", tmp_path / "out"
    with Hostile(EchoKey()) as api:
        profile = tmp_path / "hostile.toml"
        profile.write_text(profile_toml(api))
        env = {**os.environ, "TEXTMUSIC_API_URL": api.base_url, "TEXTMUSIC_API_KEY": API_KEY,
               "TRACKFOUNDRY_PROVIDER": str(profile), "PREFECT_HOME": str(home), "COLUMNS": "200",
               "TEXTMUSIC_POLL_DEADLINE_SECONDS": "20"}
        run = subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "demo", "--out",
                              str(out)], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert run.returncode == 3, run.stderr[-3000:]  # rows failed; the run itself completed
    ledger = pd.read_csv(out / "ledger.csv").set_index("name")
    assert ledger.status["Song 5"] == "ready" and ledger.status["escape"] == "rejected"
    assert "[redacted]" in " ".join(ledger.error.dropna())  # the echoes were there, and were redacted
    assert len(api.posts) == 6  # the hostile track_id was rejected before anything was paid
    outputs = [p for root in (out, home) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "index.html" for p in outputs) and any("support" in p.parts for p in outputs)
    for path in outputs:
        data = path.read_bytes()
        for spelling in KEY_SPELLINGS:
            assert spelling.encode() not in data, f"the key is in {path}"
    for spelling in KEY_SPELLINGS:
        assert spelling not in run.stdout + run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["brief.csv", "hostile.toml", "out", "prefect-home"]
