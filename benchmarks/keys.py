"""Keys as asked (issue 21), a script, not a test: a 24-row brief of mixed keys through the offline engine.

    .venv/bin/python benchmarks/keys.py [--seconds 30] [--seed 21]

The brief (12 major, 12 minor keys, each a different style family, no key words in the prompts) is validated
as any brief is (tasks/intake/validate.py), so each row's `key` cell becomes the request's `key` extension as the
pipeline would send it to the local service. Every row is rendered twice by the engine, 30 s each:

- BEFORE: the request without `key`, what the engine rendered before the extension existed (and what a hosted
  provider, which is never sent the key, is asked): the prompt and the style choose the key;
- AFTER: the request as the brief makes it, `key` sent.

Both are measured by the pipeline's own key finder (tasks/delivery/key.py) on the written WAV, read back as a
delivered file is, and compared with the brief's key: exact key only (relative or a fifth away is a miss).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.delivery.key import key_warning, measure_key, same_key  # noqa: E402
from tasks.intake.brief import load_brief  # noqa: E402
from tasks.intake.validate import validate_brief  # noqa: E402
from textmusic.contract import TextToMusicRequest  # noqa: E402
from textmusic.engine import Engine  # noqa: E402

# (track_id, prompt, key): 12 major, 12 minor, every tonic once per mode, varied styles.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("k01", "catchy summer pop hit", "C"),
    ("k02", "uplifting corporate presentation music", "G"),
    ("k03", "campfire acoustic folk", "D"),
    ("k04", "honky tonk country with fiddle", "A"),
    ("k05", "jangly indie rock band", "E"),
    ("k06", "fast punk rock", "B"),
    ("k07", "gospel choir with organ", "F#"),
    ("k08", "bright k-pop idol song", "Db"),
    ("k09", "roots reggae one drop", "Ab"),
    ("k10", "70s disco with strings", "Eb"),
    ("k11", "jazz trio with walking bass", "Bb"),
    ("k12", "calm meditation music for yoga", "F"),
    ("k13", "mellow lofi beats to study to", "Am"),
    ("k14", "dark trap beat with 808s", "Em"),
    ("k15", "deep house for the club", "Bm"),
    ("k16", "80s synthwave night drive", "F#m"),
    ("k17", "emotional cinematic film score", "C#m"),
    ("k18", "epic battle trailer with taiko drums", "G#m"),
    ("k19", "heavy metal with double kick and palm mutes", "Ebm"),
    ("k20", "liquid drum and bass", "Bbm"),
    ("k21", "sad piano ballad", "Fm"),
    ("k22", "smooth late night neo soul", "Cm"),
    ("k23", "afrobeat with horns and shekere", "Gm"),
    ("k24", "90s boom bap rap instrumental", "Dm"),
)


def write_brief(path: Path, seconds: float, seed: int) -> Path:
    """The 24 rows as a brief CSV, as a user would write it."""
    rows = [{"track_id": track_id, "name": prompt.title(), "prompt": prompt, "lyrics": "", "key": key, "seed": seed,
             "duration_seconds": seconds} for track_id, prompt, key in ROWS]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def measured(engine: Engine, request: TextToMusicRequest, out: Path) -> tuple[str, float | None]:
    engine.render(request, out)
    fields = measure_key(out)
    return str(fields["key_measured"]), fields["key_confidence"]  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    engine = Engine()
    before = after = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        validation = validate_brief(load_brief(write_brief(Path(tmp) / "keys.csv", args.seconds, args.seed)))
    if validation.rejections:
        raise SystemExit(f"the benchmark brief is refused: {validation.rejections}")
    print(f"{'row':4} {'prompt':44} {'asked':5} {'before':>6} {'conf':>5}  {'after':>6} {'conf':>5}  warning (after)")
    with tempfile.TemporaryDirectory() as tmp:
        for row in validation.rows:
            asked = row.metadata["key"]
            assert row.request.key == asked, "the brief's key must reach the request"
            old_key, old_conf = measured(engine, row.request.model_copy(update={"key": None}), Path(tmp) / "b.wav")
            new_key, new_conf = measured(engine, row.request, Path(tmp) / "a.wav")
            before += same_key(asked, old_key)
            after += same_key(asked, new_key)
            print(f"{row.track_id:4} {row.request.prompt or '':44} {asked:5} {old_key:>6} {old_conf or 0:5.2f}  "
                  f"{new_key:>6} {new_conf or 0:5.2f}  {key_warning(asked, new_key, new_conf)}", flush=True)
    total = len(validation.rows)
    print(f"\nkeys as asked, BEFORE (key not sent, the old behaviour): {before}/{total}")
    print(f"keys as asked, AFTER (key sent as the request's extension): {after}/{total}")
    print(f"({2 * total} renders of {args.seconds:g} s and their measurement in {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
