"""Cut-downs and loops edited from a finished (hosted) track on its own beats and bars.

A hosted provider delivers one file; a library wants 60/30/15-second versions with a musical ending and
loops that repeat without a click. This module cuts them from the audio on its measured grid
(`tasks.delivery.beats`): a cut-down is the track's opening bars joined on a downbeat to its own last bars (its real
ending, nothing faded), a loop is N bars where the bar after the loop resembles the loop's first bar, with
the audio that follows the loop mixed into its start so that the wrap continues the waveform. When a
version cannot be made well it is a `Failure` with a reason, never a blind fade.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tasks.delivery.beats import BeatGrid, analyse, mono
from textmusic.audio.read import audio_format, bit_depth, probe, read_audio
from textmusic.audio.write import write_audio
from textmusic.contract import CUT_SECONDS, FORMATS, LOOP_BARS

# The kinds an edit can make (the contract declares them); stems and alternative mixes cannot be edited
# out of a finished mix.
VERSION_KINDS: tuple[str, ...] = (*CUT_SECONDS, *LOOP_BARS)

FailureCode = Literal["no_steady_beat", "too_short", "no_bar_fit", "format"]

LENGTH_TOLERANCE = 0.5  # seconds a cut-down may be off its target
FADE_SECONDS = 0.04  # equal-power crossfade at a join or a loop's wrap
LEAD_SECONDS = 0.012  # a join's crossfade ends this long before the downbeat, so the attack is untouched
DECLICK_SECONDS = 0.005  # fade-in where a cut-down starts on a later beat (a pickup), not at sample 0
ZERO_CROSSING_SECONDS = 0.001  # a cut point moves at most this far to meet a zero crossing
MIN_BARS = 2  # bars each side of a join keeps at least


@dataclass(frozen=True)
class Edit:
    """An edited version: its samples (frames, channels) and where it came from in the parent."""

    samples: np.ndarray
    sr: int
    joins: tuple[int, ...]  # positions (in the edit) where a crossfade ends: the seams to listen to
    spans: tuple[tuple[int, int], ...]  # parent sample ranges, in playing order
    note: str  # what was done, for the ledger and a listener

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sr


@dataclass(frozen=True)
class Failure:
    code: FailureCode
    reason: str


def edit_versions(path: Path, kinds: tuple[str, ...], bpm_prior: float | None) -> dict[str, Edit | Failure]:
    """Every asked version of the track at `path` (cut-downs and loops; other kinds are not edits), in any of
    the contract's formats (an edit is written back in its parent's)."""
    if audio_format(path) is None:
        refusal = Failure("format", f"{path.suffix} is not an output format (one of {', '.join(FORMATS)})")
        return {kind: refusal for kind in kinds}
    samples, sr = read_audio(path)
    grid = analyse(samples, sr, bpm_prior)
    return {kind: make_version(samples, sr, grid, kind) for kind in kinds}


def make_version(samples: np.ndarray, sr: int, grid: BeatGrid, kind: str) -> Edit | Failure:
    if kind in CUT_SECONDS:
        return cut_down(samples, sr, grid, CUT_SECONDS[kind])
    return loop(samples, sr, grid, LOOP_BARS[kind])


def write_edit(edit: Edit, parent: Path, out: Path) -> Path:
    """Write `edit` in the parent's own format, atomically: a lossless parent's bit depth (a 24-bit WAV stays
    24-bit; no dither, the copied samples are already on its grid), a lossy parent's bit rate where its format
    offers it (else the format's default)."""
    spec = audio_format(parent)
    if spec is None:
        raise ValueError(f"{parent.name}: not an output format")
    write_audio(edit.samples, edit.sr, out, spec.name, _bit_rate(parent, spec.bit_rates),
                bit_depth=bit_depth(parent), dither=False)
    return out


def _bit_rate(parent: Path, offered: tuple[str, ...]) -> int | None:
    """The offered bit rate (kbps) nearest the parent's own; None when the format offers none."""
    if not offered:
        return None
    measured = (probe(parent).bit_rate or 0) / 1000
    return min((int(kbps) for kbps in offered), key=lambda kbps: abs(kbps - measured))


# --- cut-downs ---------------------------------------------------------------------------------------------


def cut_down(samples: np.ndarray, sr: int, grid: BeatGrid, seconds: float) -> Edit | Failure:
    """Opening bars + the track's own last bars, joined on a downbeat, within ±0.5 s of `seconds`.

    Removing whole bars keeps the meter but moves the length in whole bars only, so the cut may also start
    on a later beat of the first bar or two (heard as a pickup into the next downbeat), which brings every
    target within half a beat. Among the edits that fit, the preferred one starts earliest (at the very
    start if it can), removes whole four-bar phrases, and joins two bars that sound alike.
    """
    n, target, tolerance = len(samples), seconds * sr, LENGTH_TOLERANCE * sr
    if n < target - tolerance:
        return Failure("too_short", f"the track lasts {n / sr:.1f} s, shorter than the {seconds:g} s cut")
    if abs(n - target) <= tolerance:
        return Edit(samples.copy(), sr, (), ((0, n),), f"the whole track already lasts {n / sr:.2f} s")
    if not grid.steady:
        return Failure("no_steady_beat", grid.reason or "no steady beat")
    plan = _best_cut(samples, sr, grid, target, tolerance * 0.95)
    if isinstance(plan, Failure):
        return plan
    return _splice(samples, sr, *plan)


def _best_cut(samples: np.ndarray, sr: int, grid: BeatGrid, target: float,
              tolerance: float) -> tuple[int, int, int] | Failure:
    """(start, intro end, ending start) in samples: the best-placed edit whose length fits the target."""
    downbeats = grid.downbeats()
    beats = np.round(grid.beats()).astype(np.int64)
    starts = [0, *map(int, beats[(beats > 0) & (beats < downbeats[0] + grid.bar)])]  # the start, or a beat of bar one
    similarity = grid.similarity
    best, nearest = None, None
    for rank, start in enumerate(starts):
        for i in range(MIN_BARS, len(downbeats)):
            for j in range(i + 1, len(downbeats) - MIN_BARS):
                length = downbeats[i] - start + len(samples) - downbeats[j]
                error = abs(length - target)
                nearest = length if nearest is None or error < abs(nearest - target) else nearest
                if error > tolerance:
                    continue
                key = (rank, (j - i) % 4 != 0, -similarity[i, j], error)
                if best is None or key < best[0]:
                    best = (key, (start, int(downbeats[i]), int(downbeats[j])))
    if best is None:
        shown = f"; the nearest is {nearest / sr:.2f} s" if nearest is not None else ""
        return Failure("no_bar_fit", f"no edit on the bars fits {target / sr:g} s ± {LENGTH_TOLERANCE} s{shown}")
    return best[1]


def _splice(samples: np.ndarray, sr: int, start: int, intro_end: int, ending_start: int) -> Edit:
    """samples[start:intro_end] then samples[ending_start:], the seam an equal-power crossfade that ends just
    before both downbeats, each cut point moved onto a zero crossing where one is near."""
    lead, fade = round(LEAD_SECONDS * sr), round(FADE_SECONDS * sr)
    a = _zero_crossing(samples, intro_end - lead, sr)
    b = _zero_crossing(samples, ending_start - lead, sr)
    begin = 0 if start == 0 else _zero_crossing(samples, start - lead, sr)
    head = samples[begin:a].copy()
    if begin > 0:  # a pickup start: a few milliseconds of declick, not a fade
        ramp = round(DECLICK_SECONDS * sr)
        head[:ramp] *= np.sin(np.linspace(0.0, np.pi / 2, ramp))[:, None] ** 2
    fade_out, fade_in = _equal_power(fade)
    head[-fade:] = head[-fade:] * fade_out[:, None] + samples[b - fade : b] * fade_in[:, None]
    out = np.concatenate([head, samples[b:]])
    bar = (ending_start - intro_end) / sr
    note = f"{(intro_end - start) / sr:.2f} s from the start + the last {(len(samples) - ending_start) / sr:.2f} s"
    return Edit(out, sr, (len(head),), ((begin, a), (b, len(samples))),
                f"{note}; {bar:.2f} s removed at the join")


def _zero_crossing(samples: np.ndarray, position: int, sr: int) -> int:
    """The zero crossing (of the channels' mean) nearest `position` within a millisecond, else `position`."""
    reach = round(ZERO_CROSSING_SECONDS * sr)
    lo = max(position - reach, 1)
    window = mono(samples[lo - 1 : position + reach + 1])
    crossings = np.nonzero(np.signbit(window[:-1]) != np.signbit(window[1:]))[0] + lo
    return int(crossings[np.argmin(np.abs(crossings - position))]) if len(crossings) else position


def _equal_power(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Gains whose squares sum to one: the loudness holds through a crossfade of unrelated material."""
    angle = np.linspace(0.0, np.pi / 2, frames)
    return np.cos(angle), np.sin(angle)


# --- loops -------------------------------------------------------------------------------------------------


def loop(samples: np.ndarray, sr: int, grid: BeatGrid, bars: int) -> Edit | Failure:
    """`bars` bars from a downbeat, exactly bars × the measured bar in samples, placed where the bar after
    the loop best resembles its first bar; the audio that follows the loop is crossfaded into its start, so
    that the wrap (last sample → first) continues the waveform exactly as the track did."""
    if not grid.steady:
        return Failure("no_steady_beat", grid.reason or "no steady beat")
    length, fade = round(bars * grid.bar), round(FADE_SECONDS * sr)
    downbeats = grid.downbeats()
    candidates = [i for i in range(len(downbeats) - bars) if downbeats[i] + length + fade <= len(samples)]
    if not candidates:
        return Failure("too_short", f"the track lasts {len(samples) / sr:.1f} s, too short for {bars} bars "
                                    f"and the bar after them ({(bars + 1) * grid.bar / sr:.1f} s)")
    similarity = grid.similarity
    best = max(candidates, key=lambda i: similarity[i, i + bars])
    start = int(downbeats[best])
    out = samples[start : start + length].copy()
    fade_out, fade_in = _equal_power(fade)
    out[:fade] = samples[start + length : start + length + fade] * fade_out[:, None] + out[:fade] * fade_in[:, None]
    return Edit(out, sr, (0,), ((start, start + length),),
                f"bars {best + 1}-{best + bars} of the track ({bars} × {grid.bar / sr:.3f} s at "
                f"{grid.tempo_bpm:.2f} BPM); bar similarity at the wrap {similarity[best, best + bars]:.2f}")
