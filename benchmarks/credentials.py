"""Content Credentials figures (a script, not a test): for each delivery format, a 3-minute stereo 44.1 kHz
file is signed (median of --runs, each on a fresh copy of the unsigned file) and verified (check_credentials,
median of --runs), and the bytes signing adds are reported (embedded: file size after − before; OGG: the
sidecar's size, the file itself is unchanged).

    .venv/bin/python benchmarks/credentials.py [--seconds 180] [--runs 5]

The audio is a chord with a little noise (not silence: lossy encoders would shrink silence to nothing), written
by the pipeline's own writer at each format's defaults (WAV/FLAC 16-bit, MP3/M4A 192 kbit/s, OGG Vorbis).
The development identity (ES256, no timestamp authority) signs; signing verifies its own result (c2pa-rs'
verify_after_sign), which is part of the time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.delivery.credentials import (  # noqa: E402
    Provenance,
    check_credentials,
    digital_source_type,
    sign_file,
    signing_identity,
)
from tasks.settings import PipelineSettings  # noqa: E402
from textmusic.audio.write import write_audio  # noqa: E402
from textmusic.contract import FORMATS  # noqa: E402

RATE = 44100
PROVENANCE = Provenance(
    title="Benchmark", provider="textmusic-local", model="engine", generation_id="gen-1", request_fingerprint="fp",
    seed=1, prompt_sha256="0" * 64, created="2026-12-06T00:00:00+00:00", pipeline_version="0.1.0",
    processing=("mastered:streaming:+1.20dB", "tagged"),
    disclosure={"composition": "ai", "lyrics": "none", "vocals": "none", "instrumentation": "ai",
                "post_production": "ai"},
    digital_source_type=digital_source_type(provider_is_local=True, has_vocals=False))


def signal(seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    chord = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    noise = np.random.default_rng(0).normal(0.0, 0.01, (t.size, 2))
    return np.stack([chord, 0.9 * chord], axis=1) + noise


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    audio = signal(args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        signing = signing_identity(PipelineSettings(state_dir=folder / "state"))
        print(f"{args.seconds:.0f} s stereo {RATE} Hz, median of {args.runs} runs, development identity "
              f"({signing.alg}), no timestamp authority")
        print(f"{'format':<7}{'file MB':>9}{'sign ms':>10}{'verify ms':>11}{'bytes added':>13}  where")
        for fmt, spec in FORMATS.items():
            unsigned = folder / f"unsigned.{spec.extension}"
            write_audio(audio, RATE, unsigned, fmt)
            size = unsigned.stat().st_size
            sign_times, verify_times = [], []
            for run in range(args.runs):
                path = folder / f"run{run}" / f"track.{spec.extension}"
                path.parent.mkdir()
                shutil.copyfile(unsigned, path)
                start = time.perf_counter()
                creds = sign_file(path, fmt, PROVENANCE, signing)
                sign_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                check = check_credentials(path, fmt)
                verify_times.append(time.perf_counter() - start)
                assert check.state == "untrusted", check
            added = path.stat().st_size - size + (creds.sidecar.stat().st_size if creds.sidecar else 0)
            print(f"{fmt:<7}{size / 1e6:>9.1f}{median_ms(sign_times):>10.0f}{median_ms(verify_times):>11.0f}"
                  f"{added:>13,}  {creds.kind}")
            for run in range(args.runs):
                shutil.rmtree(folder / f"run{run}")


if __name__ == "__main__":
    main()
