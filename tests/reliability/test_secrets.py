"""The API key never shows: not in output, logs, ledger, tags, rejects, Prefect's database or error text."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest

pytestmark = pytest.mark.reliability


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_key_appears_in_no_output_of_a_run(tmp_path):
    data = tmp_path / "provider"
    made = subprocess.run([sys.executable, "-m", "textmusic", "keys", "create", "--data", str(data),
                           "--balance-usd", "5"], capture_output=True, text=True, check=True)
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    service_log = open(tmp_path / "service.log", "wb")  # noqa: SIM115 - closed below
    service = subprocess.Popen([sys.executable, "-m", "textmusic", "serve", "--data", str(data), "--port", str(port),
                                "--workers", "1"], stdout=service_log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        brief = tmp_path / "brief.csv"
        brief.write_text("track_id,name,prompt,lyrics,output_format,duration_seconds\n"
                         "s1,One,calm piano,,mp3,10\ns2,Two,rock,,flac,10\nbad,Bad,,words only,wav,10\n")
        prefect_home = tmp_path / "prefect"
        env = {**os.environ, "TEXTMUSIC_API_URL": f"http://127.0.0.1:{port}", "TEXTMUSIC_API_KEY": key,
               "TEXTMUSIC_LOCAL_EXTENSIONS": "true", "PREFECT_HOME": str(prefect_home)}
        out = tmp_path / "catalog"
        good = subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "secret",
                               "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)
        assert good.returncode == 0, good.stderr[-2000:]
        assert (pd.read_parquet(out / "ledger.parquet").status == "ready").sum() == 2
        wrong_key = key[:-4] + "XXXX"
        refused = subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "secret",
                                  "--out", str(tmp_path / "refused")], capture_output=True, text=True,
                                 env={**env, "TEXTMUSIC_API_KEY": wrong_key}, timeout=600)
        assert refused.returncode != 0 and "401" in refused.stderr
    finally:
        service.terminate()
        service.wait(timeout=60)
        service_log.close()

    for secret in (key, wrong_key):
        for text in (good.stdout, good.stderr, refused.stdout, refused.stderr):
            assert secret not in text
        for path in [*out.rglob("*"), *(tmp_path / "refused").rglob("*"), *prefect_home.rglob("*"),
                     tmp_path / "service.log", *data.rglob("*")]:
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
