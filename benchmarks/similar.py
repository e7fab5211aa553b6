"""Near-duplicate figures (a script, not a test): what fingerprints cost, and the scores behind the threshold.

    .venv/bin/python benchmarks/similar.py [--catalog DIR] [--files 20]

1. A calibration catalog rendered by the real flow (embedded local service): PROMPTS prompts × SEEDS seeds of
   30 s as wav, each prompt's first seed again as mp3 128, m4a 128, ogg and flac (the same audio, re-encoded),
   and one 3-minute track. `--catalog DIR` reuses one made earlier.
2. Fingerprint time per file (cold: nothing cached) on `--files` of the 30 s files and on the 3-minute one
   (a fingerprint decodes at most 70 s, so longer files cost no more), extrapolated to 1,000 files; then
   `flag_similar` on the whole catalog, cold and cached.
3. All-pairs comparison of 1,000 and 10,000 fingerprints: real fingerprints jittered (Gaussian noise, then
   unit length again) to make up the count; the product's cost does not depend on the values.
4. Scores by kind of pair: the same audio, other seeds of one prompt, different prompts; and how many of
   each the default threshold flags.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.catalog import similar  # noqa: E402
from tasks.catalog.ledger import LedgerRecord, load_ledger  # noqa: E402

PROMPTS = {
    "lofi": ("Chill lo-fi hip hop beat with mellow piano for studying", "84"),
    "techno": ("hypnotic warehouse techno", "130"),
    "piano": ("sad piano ballad", "72"),
    "folk": ("campfire acoustic folk", "104"),
    "synth": ("80s synthwave night drive", "100"),
    "bossa": ("bossa nova with congas", "108"),
}
SEEDS = 6
REENCODES = (("mp3", "128"), ("m4a", "128"), ("ogg", ""), ("flac", ""))


def _row(track_id: str, prompt: str, bpm: str, seed: int, fmt: str = "wav", rate: str = "",
         seconds: int = 30) -> dict[str, object]:
    return {"track_id": track_id, "name": track_id, "prompt": prompt, "seed": seed, "output_format": fmt,
            "output_bit_rate": rate, "bpm": bpm, "duration_seconds": seconds}


def calibration_brief(path: Path) -> None:
    rows = []
    for family, (prompt, bpm) in PROMPTS.items():
        base = 1000 * len(rows)
        rows += [_row(f"{family}-s{k}", prompt, bpm, base + k) for k in range(SEEDS)]
        rows += [_row(f"{family}-s0-{fmt}{rate}", prompt, bpm, base, fmt, rate) for fmt, rate in REENCODES]
    rows.append(_row("lofi-3min", PROMPTS["lofi"][0], "84", 7, seconds=180))
    pd.DataFrame(rows).to_csv(path, index=False)


def make_catalog(work: Path) -> Path:
    calibration_brief(work / "brief.csv")
    out = work / "catalog"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flows", "run", str(work / "brief.csv"), "--catalog", "similar-bench",
                    "--out", str(out)], cwd=ROOT, check=True, capture_output=True)
    print(f"calibration catalog: {len(pd.read_csv(work / 'brief.csv'))} rows rendered in "
          f"{time.perf_counter() - started:.0f} s → {out}")
    return out


def time_fingerprints(out: Path, records: list[LedgerRecord], files: int) -> None:
    short = [out / r.audio_path for r in records if r.duration_requested == 30][:files]
    long = [out / r.audio_path for r in records if r.track_id == "lofi-3min"]
    similar.fingerprint(short[0])  # librosa's first call compiles (numba): not a per-file cost
    for label, paths in (("30 s files", short), ("3-minute file", long)):
        started = time.perf_counter()
        for path in paths:
            similar.fingerprint(path)
        each = (time.perf_counter() - started) / len(paths)
        print(f"fingerprint, {label}: {each * 1000:.0f} ms per file over {len(paths)} → "
              f"{each * 1000:.0f} s per 1,000 files (one core)")
    (out / similar.CACHE_FILE).unlink(missing_ok=True)
    for state in ("cold", "cached"):
        started = time.perf_counter()
        similar.flag_similar(out, records)
        print(f"flag_similar on {len(records)} songs, {state}: {time.perf_counter() - started:.2f} s")


def time_comparison(vectors: np.ndarray, counts: tuple[int, ...] = (1000, 10000)) -> None:
    rng = np.random.default_rng(0)
    for count in counts:
        picked = vectors[rng.integers(0, len(vectors), count)]
        jittered = picked + rng.normal(0, 0.02, picked.shape).astype(np.float32)
        jittered /= np.linalg.norm(jittered, axis=1, keepdims=True)
        started = time.perf_counter()
        found = sum(1 for _ in similar.pairs_above(jittered, similar.DEFAULT_THRESHOLD))
        print(f"all pairs of {count:,} fingerprints ({vectors.shape[1]} floats each, jittered copies of real "
              f"ones): {time.perf_counter() - started:.3f} s ({found:,} pairs ≥ threshold)")


def _kind(a: LedgerRecord, b: LedgerRecord) -> str:
    family = a.track_id.split("-")[0]
    if a.seed == b.seed and a.prompt == b.prompt and a.bpm == b.bpm and a.duration_requested == b.duration_requested:
        return "same audio (re-encoded or lossless copy)"
    return "same prompt, other seed" if family == b.track_id.split("-")[0] else "different prompts"


def score_table(out: Path, records: list[LedgerRecord]) -> None:
    scores: dict[str, list[tuple[float, str, str]]] = {}
    for a, b, score in similar.similar_pairs(out, records, threshold=-1.0):
        scores.setdefault(_kind(a, b), []).append((score, a.track_id, b.track_id))
    print(f"scores by kind of pair (threshold {similar.DEFAULT_THRESHOLD}):")
    for kind, found in scores.items():
        values = np.array([s for s, _, _ in found])
        top = max(found)
        flagged = int((values >= similar.DEFAULT_THRESHOLD).sum())
        print(f"  {kind:42s} {len(values):4d} pairs  min {values.min():.4f}  median {np.median(values):.4f}  "
              f"max {values.max():.4f} ({top[1]} ~ {top[2]})  flagged {flagged}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, help="a calibration catalog made earlier by this script")
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="similar-bench-") as work:
        out = args.catalog or make_catalog(Path(work))
        records = [r for r in load_ledger(out) if r.status == "ready"]
        time_fingerprints(out, records, args.files)
        vectors = similar.cached_fingerprints(out, records)
        time_comparison(np.stack(list(vectors.values())))
        score_table(out, records)


if __name__ == "__main__":
    main()
