"""Felt tempo of the fast styles (issue 21): is a track asked at >= 150 BPM heard at that tempo?

    .venv/bin/python benchmarks/felt_tempo.py [--seeds 1 2] [--styles punk metal]

benchmarks/engine.py folds octave errors (MIREX accuracy 2), so punk asked at 180 and heard at 90
passes there although a listener feels it at half tempo. Here every fast style is rendered from a few
phrasings x seeds at a fixed fast BPM (30 s, one long-lived Engine) and the *unfolded* tempo is
checked: an estimate counts only within 4 % of the asked BPM (double, half, 2/3 are all wrong).

Two ears, both librosa (neither madmom nor essentia is installed in .venv):
- `prior`: `librosa.feature.tempo` as shipped (its log-normal prior centred on 120 BPM, the one
  benchmarks/engine.py uses), 22.05 kHz, 128-sample hop;
- `flat`: the same tempogram with a uniform prior from 30 to 320 BPM (`prior=scipy.stats.uniform`; note
  that librosa's `prior=None` is *not* flat, it is the default log-normal prior): the strongest
  periodicity wins, an ear without librosa's pull towards 120 BPM (which favours 90 and 120 over 180).

Each style's line first gives what the two ears report for a metronome at the asked BPM (identical clicks
on every beat, nothing else): the best any track can do. The `prior` ear hears a metronome at 174 or 180
at half tempo, so for those rows only the `flat` ear can say whether the accents carry the tempo.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import scipy.stats
import soundfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textmusic.contract import TextToMusicRequest  # noqa: E402
from textmusic.engine import Engine  # noqa: E402

TOLERANCE = 0.04
# Style (the one the text must pick), asked BPM, phrasings.
FAST: list[tuple[str, int, tuple[str, ...]]] = [
    ("punk", 180, ("fast punk rock", "angry fast punk song", "skate punk with shouted choruses")),
    ("punk", 165, ("fast punk rock", "angry fast punk song", "skate punk with shouted choruses")),
    ("metal", 170, ("fast thrash metal with double kick", "heavy metal with double kick and palm mutes",
                    "brutal speed metal headbang")),
    ("drum-and-bass", 174, ("liquid drum and bass", "rolling jungle dnb", "drum and bass with deep sub bass")),
    ("chiptune", 156, ("8-bit chiptune level music", "fast arcade video game music", "retro 8 bit console game theme")),
    ("jazz", 160, ("fast bebop jazz trio with walking bass", "uptempo swing jazz combo", "jazz trio with ride cymbal")),
]


def estimates(audio: np.ndarray, sr: int) -> tuple[float, float]:
    """Tempo with librosa's default prior and with a uniform prior (the `flat` ear), unfolded."""
    mono = librosa.resample(audio.mean(axis=1).astype(np.float32), orig_sr=sr, target_sr=22050)
    envelope = librosa.onset.onset_strength(y=mono, sr=22050, hop_length=128)
    prior = float(librosa.feature.tempo(onset_envelope=envelope, sr=22050, hop_length=128)[0])
    flat = float(librosa.feature.tempo(onset_envelope=envelope, sr=22050, hop_length=128,
                                       prior=scipy.stats.uniform(30.0, 290.0))[0])
    return prior, flat


def metronome(bpm: float, seconds: float = 28.0) -> tuple[float, float]:
    """What the two ears report for identical clicks on every beat at `bpm`."""
    sr = 22050
    clicks = librosa.clicks(times=np.arange(0.0, seconds, 60.0 / bpm), sr=sr, length=int(seconds * sr))
    return estimates(np.stack([clicks, clicks], axis=1), sr)


def felt(estimate: float, bpm: float) -> bool:
    return abs(estimate - bpm) / bpm <= TOLERANCE


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--styles", nargs="+", help="only these styles")
    options = parser.parse_args()
    engine = Engine()
    totals = [0, 0, 0]
    start = time.perf_counter()
    print(f"{'prompt':44s} {'seed':>4s} {'style':14s} {'bpm':>4s} {'prior':>6s} {'flat':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        for style, bpm, prompts in FAST:
            if options.styles and style not in options.styles:
                continue
            hits = [0, 0, 0]
            prior, flat = metronome(bpm)
            print(f"{'(a metronome at ' + str(bpm) + ')':44s} {'':4s} {'':14s} {bpm:4d} {prior:6.1f} {flat:6.1f}")
            for prompt in prompts:
                for seed in options.seeds:
                    out = Path(tmp) / "felt.wav"
                    result = engine.render(TextToMusicRequest(prompt=prompt, seed=seed, bpm=bpm,
                                                              duration_seconds=30), out)
                    audio, sr = soundfile.read(out, always_2d=True)
                    prior, flat = estimates(audio[: int(28 * sr)], sr)
                    hits[0] += felt(prior, bpm)
                    hits[1] += felt(flat, bpm)
                    hits[2] += 1
                    mark = "" if result.style == style else f"  (text chose {result.style})"
                    print(f"{prompt:44s} {seed:4d} {result.style:14s} {bpm:4d} {prior:6.1f} {flat:6.1f}{mark}")
            print(f"  {style} at {bpm}: felt (within {100 * TOLERANCE:.0f}%) prior {hits[0]}/{hits[2]}, "
                  f"flat {hits[1]}/{hits[2]}")
            totals = [a + b for a, b in zip(totals, hits, strict=True)]
    print(f"\nfast styles felt at tempo: prior {totals[0]}/{totals[2]}, flat {totals[1]}/{totals[2]} "
          f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
