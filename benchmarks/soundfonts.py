"""FluidR3 vs MuseScore General, instrument by instrument (a script, not a test): the figures of docs/soundfonts.md.

    .venv/bin/python benchmarks/soundfonts.py [--programs 0,4,16 ...] [--wav-dir DIR]

Each GM program plays the same phrase with both soundfonts on a bare FluidSynth (the engine's gain,
no reverb/chorus): one note held 2.5 s at velocity 100, released, then the same note 1 s at velocity 40,
then a short phrase (a triad and a four-note run). Drum kits (bank 128) play kick, snare, clap, closed and
open hat, crash and ride one after the other. Per program it prints:

- ``rms``: level of the held note (dBFS, engine gain); ``vel``: level difference velocity 100 vs 40 (dB);
- ``att``: attack, ms to 90 % of the note's peak envelope; ``tail``: ms from note-off to -60 dB;
- ``cent``: spectral centroid (Hz); ``top``: highest frequency within 70 dB of the strongest bin (the
  samples' bandwidth: a sample recorded at 22 kHz stops near 11 kHz);
- ``noise``: energy between the harmonics (the middle half of each gap, below 10 kHz) relative to all
  energy (dB; lower is cleaner; meaningless for noisy or inharmonic sounds);
- ``ripple``: std (dB) of the held note's 20 ms level around a straight-line decay (loop clicks and
  pumping show up here; so do vibrato and tremolo, which are intended);
- ``width``: side/mid energy (dB; stereo samples show up here);
- ``ms``: preset preparation (MuseScore's compressed samples are decoded when the preset is first
  selected) plus rendering time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textmusic.engine.synth import (  # noqa: E402
    FONT_PATHS,
    SYNTH_GAIN,
    SYNTH_SETTINGS,
    _import_fluidsynth,
    _libfluidsynth,
)

SR = 44100
HOLD, SOFT_AT, PHRASE_AT, END = 2.5, 3.5, 5.5, 8.5
KITS = (0, 8, 16, 24, 25, 32, 40, 48)
DRUM_HITS = (36, 38, 39, 42, 46, 49, 51)
LOW = set(range(32, 40)) | {43, 58, 67, 70, 87}
HIGH = {72, 73, 74, 75, 78, 79, 9, 10, 112}


def key_for(program: int) -> int:
    return 36 if program in LOW else 72 if program in HIGH else 60


def events(program: int) -> list[tuple[float, int, int, int]]:
    """(seconds, on, key, velocity) of the phrase."""
    key = key_for(program)
    out = [(0.0, 1, key, 100), (HOLD, 0, key, 0), (SOFT_AT, 1, key, 40), (SOFT_AT + 1.0, 0, key, 0)]
    for k in (key, key + 4, key + 7):
        out += [(PHRASE_AT, 1, k, 90), (PHRASE_AT + 1.2, 0, k, 0)]
    for index, k in enumerate((key + 12, key + 14, key + 16, key + 19)):
        start = PHRASE_AT + 1.3 + 0.3 * index
        out += [(start, 1, k, 96), (start + 0.28, 0, k, 0)]
    return out


def drum_events() -> list[tuple[float, int, int, int]]:
    out = []
    for index, key in enumerate(DRUM_HITS):
        out += [(0.8 * index, 1, key, 110), (0.8 * index + 0.1, 0, key, 0)]
    return out


class Font:
    def __init__(self, name: str, path: Path) -> None:
        fluidsynth = _import_fluidsynth()
        self.lib = _libfluidsynth()
        self.fluidsynth = fluidsynth
        start = time.perf_counter()
        self.synth = fluidsynth.Synth(gain=SYNTH_GAIN, samplerate=float(SR), channels=16,
                                      **SYNTH_SETTINGS, **{"synth.dynamic-sample-loading": 1})
        self.sfid = self.synth.sfload(str(path))
        self.load_seconds = time.perf_counter() - start
        self.name = name

    def render(self, bank: int, program: int, evs: list[tuple[float, int, int, int]], seconds: float
               ) -> tuple[np.ndarray, float]:
        channel = 9 if bank == 128 else 0
        start = time.perf_counter()
        self.synth.system_reset()
        self.synth.program_select(channel, self.sfid, bank, program)
        out = np.zeros((int(seconds * SR), 2), dtype=np.float32)
        position = 0
        for at, on, key, velocity in sorted(evs):
            sample = int(round(at * SR))
            if sample > position:
                pointer = out.ctypes.data + position * out.strides[0]
                self.lib.fluid_synth_write_float(self.synth.synth, sample - position, pointer, 0, 2, pointer, 1, 2)
                position = sample
            if on:
                self.synth.noteon(channel, key, velocity)
            else:
                self.synth.noteoff(channel, key)
        pointer = out.ctypes.data + position * out.strides[0]
        self.lib.fluid_synth_write_float(self.synth.synth, len(out) - position, pointer, 0, 2, pointer, 1, 2)
        return out, time.perf_counter() - start


def db(x: float) -> float:
    return float(10 * np.log10(max(x, 1e-20)))


def envelope(mono: np.ndarray, frame: int) -> np.ndarray:
    n = len(mono) // frame
    return np.sqrt(np.mean(mono[: n * frame].reshape(n, frame) ** 2, axis=1))


def tonal_figures(audio: np.ndarray, key: int) -> dict[str, float]:
    mono = audio.mean(axis=1).astype(np.float64)
    held = mono[: int(HOLD * SR)]
    soft = mono[int(SOFT_AT * SR): int((SOFT_AT + 1.0) * SR)]
    env = envelope(mono[: int(SOFT_AT * SR)], int(0.005 * SR))
    peak = float(env.max())
    attack = float(np.argmax(env >= 0.9 * peak) * 5.0) if peak > 0 else float("nan")
    after = env[int(HOLD / 0.005):]
    quiet = np.flatnonzero(after < peak * 1e-3)
    tail = float(quiet[0] * 5.0) if len(quiet) else float("nan")
    window = held[int(0.1 * SR):] * np.hanning(len(held) - int(0.1 * SR))
    power = np.abs(np.fft.rfft(window)) ** 2
    freqs = np.fft.rfftfreq(len(window), 1 / SR)
    total = float(power.sum())
    centroid = float((freqs * power).sum() / total) if total > 0 else float("nan")
    smooth = np.convolve(power, np.ones(64) / 64, mode="same")
    strong = np.flatnonzero(smooth > smooth.max() * 1e-7)
    top = float(freqs[strong[-1]]) if len(strong) else float("nan")
    f0 = 440.0 * 2 ** ((key - 69) / 12)
    harmonic = freqs / f0
    between = (np.abs(harmonic - np.round(harmonic)) > 0.25) & (freqs < 10000) & (freqs > f0 / 2)
    below = (freqs < 10000) & (freqs > f0 / 2)
    noise = db(power[between].sum()) - db(power[below].sum())
    frames = 20 * np.log10(np.maximum(envelope(mono[int(0.4 * SR): int(2.4 * SR)], int(0.02 * SR)), 1e-9))
    t = np.arange(len(frames))
    ripple = float(np.std(frames - np.polyval(np.polyfit(t, frames, 1), t)))
    mid, side = audio[:, 0] + audio[:, 1], audio[:, 0] - audio[:, 1]
    return {
        "rms": db(float(np.mean(held ** 2))),
        "vel": db(float(np.mean(held[: SR] ** 2))) - db(float(np.mean(soft ** 2))),
        "att": attack, "tail": tail, "cent": centroid, "top": top, "noise": noise, "ripple": ripple,
        "width": db(float(np.sum(side.astype(np.float64) ** 2))) - db(float(np.sum(mid.astype(np.float64) ** 2))),
    }


def drum_figures(audio: np.ndarray) -> dict[str, float]:
    mono = audio.mean(axis=1).astype(np.float64)
    hits = [mono[int(0.8 * i * SR): int(0.8 * (i + 1) * SR)] for i in range(len(DRUM_HITS))]
    figures: dict[str, float] = {}
    for name, hit in zip(("kick", "snare", "clap", "chat", "ohat", "crash", "ride"), hits, strict=True):
        power = np.abs(np.fft.rfft(hit * np.hanning(len(hit)))) ** 2
        freqs = np.fft.rfftfreq(len(hit), 1 / SR)
        figures[f"{name}_pk"] = 20 * np.log10(max(float(np.abs(hit).max()), 1e-9))
        figures[f"{name}_cent"] = float((freqs * power).sum() / max(power.sum(), 1e-20))
    mid, side = audio[:, 0] + audio[:, 1], audio[:, 0] - audio[:, 1]
    figures["width"] = db(float(np.sum(side.astype(np.float64) ** 2))) - db(float(np.sum(mid.astype(np.float64) ** 2)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--programs", default="", help="comma-separated GM programs (default: all 128 + kits)")
    parser.add_argument("--wav-dir", type=Path, default=None, help="also write each rendering as a WAV")
    options = parser.parse_args()
    fonts = [Font(name, path) for name, path in FONT_PATHS.items()]
    for font in fonts:
        print(f"# {font.name}: header load {font.load_seconds:.2f} s")
    programs = [int(p) for p in options.programs.split(",") if p] if options.programs else list(range(128))
    columns = ("rms", "vel", "att", "tail", "cent", "top", "noise", "ripple", "width")
    print("program font " + " ".join(f"{c:>7s}" for c in columns) + "      ms")
    for program in programs:
        for font in fonts:
            audio, seconds = font.render(0, program, events(program), END)
            figures = tonal_figures(audio, key_for(program))
            print(f"{program:7d} {font.name:9s} " + " ".join(f"{figures[c]:7.1f}" for c in columns)
                  + f" {1000 * seconds:7.0f}")
            if options.wav_dir:
                import soundfile

                options.wav_dir.mkdir(parents=True, exist_ok=True)
                soundfile.write(options.wav_dir / f"p{program:03d}-{font.name}.wav", audio, SR)
    if options.programs:
        return
    for kit in KITS:
        for font in fonts:
            audio, seconds = font.render(128, kit, drum_events(), 0.8 * len(DRUM_HITS))
            figures = drum_figures(audio)
            print(f"kit {kit:3d} {font.name:9s} " + " ".join(f"{k}={v:.0f}" for k, v in figures.items())
                  + f" ms={1000 * seconds:.0f}")


if __name__ == "__main__":
    main()
