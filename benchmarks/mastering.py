"""Delivery-master figures (a script, not a test): time to master a 3-minute track to each format and spec, and
the loudness and true peak measured on the delivered (encoded, decoded again) file.

    .venv/bin/python benchmarks/mastering.py [--src FILE] [--seconds 180]

Without --src, one track is rendered by the engine's CLI (`textmusic render`, 44.1 kHz 16-bit WAV).
WAV/FLAC are written as 48 kHz 24-bit (what libraries ask for); mp3/m4a at 192 kbit/s, ogg at Vorbis' default.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.delivery.mastering import master_file  # noqa: E402
from tasks.delivery.qc import check, measure  # noqa: E402
from tasks.settings import SPECS  # noqa: E402
from textmusic.contract import FORMATS  # noqa: E402


def render(out: Path, seconds: float) -> Path:
    subprocess.run([sys.executable, "-m", "textmusic", "render", "--out", str(out), "--duration", str(seconds),
                    "--prompt", "Chill lo-fi hip hop beat with mellow piano for studying", "--seed", "7"],
                   cwd=ROOT, check=True, capture_output=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path)
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = args.src or render(Path(tmp) / "track.wav", args.seconds)
        source = measure(src)
        print(f"source {src.name}: {source.duration_s:.1f} s, {source.sample_rate} Hz, {source.bit_depth} bit, "
              f"{source.loudness_lufs:.2f} LUFS, {source.true_peak_dbtp:.2f} dBTP, LRA {source.lra_lu:.1f} LU")
        print("spec       fmt   seconds  passes  LUFS     dBTP    LRA   gain dB  ceiling  qc")
        for name in ("streaming", "broadcast"):
            for fmt, spec in FORMATS.items():
                pcm = {"sample_rate": 48000, "bit_depth": 24} if spec.lossless else {}
                result = master_file(src, Path(tmp) / f"{name}.{fmt}", SPECS[name], fmt=fmt, **pcm)
                f = result.figures
                verdict = "; ".join(check(f, SPECS[name])) or "pass"
                print(f"{name:<10} {fmt:<5} {result.seconds:7.1f}  {result.passes:6d}  {f.loudness_lufs:7.2f}  "
                      f"{f.true_peak_dbtp:6.2f}  {f.lra_lu:4.1f}  {result.gain_db:7.2f}  {result.ceiling_dbtp:7.2f}  "
                      f"{verdict}")


if __name__ == "__main__":
    main()
