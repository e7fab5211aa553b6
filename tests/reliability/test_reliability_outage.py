"""A nightly batch rides out a provider outage: the local service in hosted-like mode (latency, synthetic
audio) is killed mid-run and stays down for a minute, then comes back on the same port and data folder.
Every row is still delivered, each charged once, and the run exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.support import ROOT
from tests.support.figures import FIGURES
from tests.support.service import create_key, key_id, start_server, usage_json

pytestmark = pytest.mark.reliability

SERVE = ("--latency", "4-8", "--synthetic-audio", "--rate-limit", "100/10s")


# A minute down over 40 rows is the nightly form (make test-reliability); make test: 15 s over 16 rows.
@pytest.mark.parametrize(("rows", "down_seconds"), [pytest.param(40, 60.0, marks=pytest.mark.slow), (16, 15.0)])
def test_provider_down_mid_run(tmp_path: Path, rows: int, down_seconds: float) -> None:
    data = tmp_path / "service"
    server = start_server(data, *SERVE)
    port = int(server.base.rsplit(":", 1)[1])
    key = create_key(data, 100.0)
    brief, out = tmp_path / "brief.csv", tmp_path / "catalog"
    pd.DataFrame({"track_id": [f"o{i:02d}" for i in range(rows)], "name": [f"Outage {i}" for i in range(rows)],
                  "prompt": ["calm piano"] * rows, "seed": list(range(rows)), "duration_seconds": [10] * rows,
                  "output_format": ["flac"] * rows}).to_csv(brief, index=False)
    env = {**os.environ, "TEXTMUSIC_API_URL": server.base, "TEXTMUSIC_API_KEY": key,
           "TRACKFOUNDRY_PROVIDER": "textmusic-local", "TRACKFOUNDRY_MAX_IN_FLIGHT": "8"}
    run = subprocess.Popen([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "outage", "--out", str(out)],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(run.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while sum("progress" in line for line in output) < 5:  # some rows delivered, most still to come
            assert run.poll() is None and time.monotonic() < deadline, "".join(output)[-3000:]
            time.sleep(0.2)
        server.crash()  # kill -9 of the service and its workers: refused connections from now on
        down_at = time.monotonic()
        delivered_before = sum("progress" in line for line in output)
        time.sleep(down_seconds)
        server = start_server(data, *SERVE, port=port)
        code = run.wait(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
        server.stop()
    reader.join(timeout=10)
    assert code == 0, "".join(output)[-4000:]
    ledger = pd.read_parquet(out / "ledger.parquet")
    assert len(ledger) == rows and set(ledger.status) == {"ready"}
    charges = usage_json(data)[key_id(key)]["charges"]
    assert sorted(c["track_id"] for c in charges) == sorted(ledger.generation_id)  # each charged once
    assert sum(c["cents"] for c in charges) == ledger.cost_cents.sum()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    FIGURES.append(f"outage run: {rows} rows, service down {down_seconds:.0f} s after {delivered_before} rows "
                   f"(at +{down_at - deadline + 300:.0f} s), all {len(ledger)} delivered, "
                   f"{len(charges)} charges = ledger")
