"""Beats and bars of a finished track, found in its audio: where a hosted track may be cut and looped.

A hosted provider hands back audio only, so its grid is measured: librosa's beat tracker (the BPM the track
reports or the brief asked for as its prior), a straight line fitted through the beats (a steady tempo is
one period and one phase; the fit also averages away the tracker's frame quantisation, so cuts land within a
few samples of the beat), and bars of four beats whose first beat is the one with the most low-end onsets
and harmonic change. Whether the beat is steady enough to cut on is decided from the figures, with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import librosa
import numpy as np

HOP = 512  # onset-envelope hop (11.6 ms at 44.1 kHz); the fitted line is far finer than this
BEATS_PER_BAR = 4
LOW_HZ = 150.0  # kick and bass: where downbeats carry their weight
MAX_IBI_CV = 0.08  # inter-beat intervals may spread this much (std / mean) and still be one steady tempo
MAX_JITTER = 0.06  # beats may sit this far (std, in beats) from the fitted steady grid
PRIOR_TOLERANCE = 0.08  # the measured tempo may be this far from the prior (or its double or half)
MIN_BEATS = 16  # fewer tracked beats than four bars is no grid
# librosa's onset strength (log-mel flux, level-independent) at its 99th percentile: music with a pulse
# measured 3.6-14 here (ambient included), a sustained tone 0.03. Below this there is nothing to cut on,
# however evenly the beat tracker then spaces its guesses.
MIN_ONSET_STRENGTH = 0.5


@dataclass(frozen=True, eq=False)
class BeatGrid:
    """A steady grid: beat k sits at `first_beat + k * period` samples; bars start at beats `phase + 4 m`."""

    sr: int
    frames: int  # length of the analysed audio
    tempo_bpm: float
    first_beat: float  # sample position of the first grid beat at or after the start (fractional)
    phase: int  # index of the first downbeat among the grid's beats (0..3)
    ibi_cv: float  # spread of the tracked inter-beat intervals (std / mean)
    jitter: float  # std of the tracked beats from the fitted grid, in beats
    reason: str | None  # why there is no steady beat; None when there is one
    similarity: np.ndarray  # bar × bar cosine similarity (chroma and MFCC), bars as in `downbeats()`

    @property
    def steady(self) -> bool:
        return self.reason is None

    @property
    def period(self) -> float:
        """Samples per beat."""
        return 60.0 * self.sr / self.tempo_bpm

    @property
    def bar(self) -> float:
        """Samples per bar."""
        return BEATS_PER_BAR * self.period

    def beats(self) -> np.ndarray:
        """Every grid beat inside the audio, in (fractional) samples."""
        count = int((self.frames - 1 - self.first_beat) // self.period) + 1
        return self.first_beat + self.period * np.arange(max(count, 0))

    def downbeats(self) -> np.ndarray:
        """Sample positions (rounded) of every bar start inside the audio."""
        return np.round(self.beats()[self.phase :: BEATS_PER_BAR]).astype(np.int64)


def mono(samples: np.ndarray) -> np.ndarray:
    return np.asarray(samples.mean(axis=1) if samples.ndim == 2 else samples, dtype=np.float32)


def analyse(samples: np.ndarray, sr: int, bpm_prior: float | None) -> BeatGrid:
    """Track the beats, fit the steady grid, put it on the beat (not the off-beat) and on the bar, and judge
    whether it is steady enough to cut on."""
    y = mono(samples)
    envelope = librosa.onset.onset_strength(y=y, sr=sr, hop_length=HOP)
    _, tracked = librosa.beat.beat_track(onset_envelope=envelope, sr=sr, hop_length=HOP,
                                         start_bpm=bpm_prior or 120.0, units="samples")
    tracked = np.asarray(tracked, dtype=np.float64)
    if np.percentile(envelope, 99) < MIN_ONSET_STRENGTH:
        return BeatGrid(sr, len(y), bpm_prior or 120.0, 0.0, 0, float("nan"), float("nan"),
                        "no steady beat: no onsets (a sustained sound)", np.zeros((0, 0)))
    if len(tracked) < MIN_BEATS:
        return BeatGrid(sr, len(y), bpm_prior or 120.0, 0.0, 0, float("nan"), float("nan"),
                        f"no steady beat: only {len(tracked)} beats found", np.zeros((0, 0)))
    period, offset, jitter = _fit_grid(tracked)
    period *= _octave(60.0 * sr / period, bpm_prior)
    intervals = np.diff(tracked)
    ibi_cv = float(intervals.std() / intervals.mean())
    cues = _Cues.of(y, sr, envelope)
    offset = max((offset, offset + period / 2), key=lambda o: cues.onset_at(_grid(o, period, tracked)).mean())
    offset += _onset_lag(y, sr, offset, period, tracked)
    first = offset - np.floor(offset / period) * period
    phase = _downbeat_phase(cues, _grid(first, period, tracked), first, period)
    tempo = 60.0 * sr / period
    grid = BeatGrid(sr, len(y), tempo, float(first), phase, ibi_cv, jitter,
                    _unsteady_reason(tempo, ibi_cv, jitter, bpm_prior), np.zeros((0, 0)))
    return replace(grid, similarity=cues.bar_similarity(grid.downbeats()))


def _fit_grid(tracked: np.ndarray) -> tuple[float, float, float]:
    """Period, offset and jitter (in beats) of the steady grid through the tracked beats.

    The beats are first numbered interval by interval (a skipped beat counts two) for a rough line, then
    renumbered in half beats and fitted again: trackers often hop between the beat and the off-beat (house
    hi-hats) for a stretch, which is a phase slip, not an unsteady tempo, and must not bend the line.
    """
    intervals = np.diff(tracked)
    index = np.concatenate([[0.0], np.cumsum(np.maximum(np.round(intervals / np.median(intervals)), 1.0))])
    period, offset = np.polyfit(index, tracked, 1)
    halves = np.round((tracked - offset) / (period / 2))
    half, offset = np.polyfit(halves, tracked, 1)
    residual = tracked - (offset + half * halves)
    return float(2 * half), float(offset), float(residual.std() / (2 * half))


def _octave(tempo: float, prior: float | None) -> float:
    """Factor on the period that brings a half- or double-time reading to the prior's octave."""
    if not prior:
        return 1.0
    return min((0.5, 1.0, 2.0), key=lambda k: abs(np.log2(tempo / k / prior)))


def _grid(offset: float, period: float, tracked: np.ndarray) -> np.ndarray:
    """Grid points (samples) where the tracker heard music: from its first beat to its last."""
    start = np.ceil((tracked[0] - period / 2 - offset) / period)
    stop = np.floor((tracked[-1] + period / 2 - offset) / period)
    return offset + period * np.arange(start, stop + 1)


def _onset_lag(y: np.ndarray, sr: int, offset: float, period: float, tracked: np.ndarray) -> float:
    """Shift (samples) that puts the grid on the attacks themselves: the tracker's onset envelope is frame-
    quantised and peaks a frame or two late, and a loop that starts after its first kick's attack, or a join
    whose crossfade smears it, is heard. The shift is the one, within ±2 frames, at which the grid meets the
    steepest rises of a sub-millisecond energy envelope."""
    fine = 32
    energy = np.convolve(y.astype(np.float64) ** 2, np.ones(256) / 256, "same")[::fine]
    rise = np.maximum(np.diff(np.log(energy + 1e-10)), 0.0)
    shifts = np.arange(-2 * HOP, 2 * HOP + 1, fine)
    grid = _grid(offset, period, tracked)
    totals = [rise[np.clip(((grid + shift) / fine).astype(int), 0, len(rise) - 1)].sum() for shift in shifts]
    return float(shifts[int(np.argmax(totals))])


@dataclass(frozen=True)
class _Cues:
    """Per-frame evidence of beats and bars: onset strength (the tracker's own), low-end onsets (kick,
    bass) and chroma (harmony)."""

    onset: np.ndarray
    low: np.ndarray
    chroma: np.ndarray
    mfcc: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray, sr: int, onset: np.ndarray) -> _Cues:
        spectrum = np.abs(librosa.stft(y, n_fft=2048, hop_length=HOP))
        low = np.log1p(spectrum[librosa.fft_frequencies(sr=sr, n_fft=2048) < LOW_HZ])
        flux = np.concatenate([[0.0], np.maximum(np.diff(low, axis=1), 0.0).sum(axis=0)])
        mel = librosa.feature.melspectrogram(S=spectrum**2, sr=sr)
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)
        return cls(onset, flux, librosa.feature.chroma_stft(S=spectrum**2, sr=sr), mfcc)

    def frames(self, positions: np.ndarray) -> np.ndarray:
        return np.clip(np.round(positions / HOP).astype(int), 0, len(self.low) - 1)

    def onset_at(self, positions: np.ndarray) -> np.ndarray:
        return _peak_near(self.onset, self.frames(positions))

    def low_at(self, positions: np.ndarray) -> np.ndarray:
        return _peak_near(self.low, self.frames(positions))

    def spans(self, features: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Mean of `features` from each position to the next (the last: to the end), one column each."""
        bounds = np.append(self.frames(positions), features.shape[1])
        return np.stack([features[:, a:b].mean(axis=1) if b > a else features[:, a] for a, b
                         in zip(bounds[:-1], bounds[1:], strict=True)], axis=1)

    def change_at(self, positions: np.ndarray) -> np.ndarray:
        """How much the harmony changes at each position (from the second on): chroma after it against before."""
        return np.linalg.norm(np.diff(self.spans(self.chroma, positions), axis=1), axis=0)

    def bar_similarity(self, downbeats: np.ndarray) -> np.ndarray:
        """Cosine similarity of every bar to every other, chroma and MFCC weighted alike: joining the start
        of bar i to the start of bar j (or wrapping a loop) sounds like a continuation when they resemble."""
        bars = np.vstack([_unit(self.spans(self.chroma, downbeats)), _unit(self.spans(self.mfcc, downbeats))])
        return bars.T @ bars / 2.0


def _unit(features: np.ndarray) -> np.ndarray:
    """Each column centred on the track's mean and scaled to unit length (a cosine is then a dot product)."""
    centred = features - features.mean(axis=1, keepdims=True)
    return centred / np.maximum(np.linalg.norm(centred, axis=0, keepdims=True), 1e-12)


def _peak_near(curve: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Strongest value within ±2 frames of each frame (an onset peaks a frame or two off the beat)."""
    return np.array([curve[max(f - 2, 0) : f + 3].max() for f in frames])


def _downbeat_phase(cues: _Cues, beats: np.ndarray, first: float, period: float) -> int:
    """The beat phase (0..3) whose beats, taken as bar starts, carry the strongest onsets, the most low end
    and the biggest harmonic change from bar to bar: kicks and bass notes land on the one, chords change
    there. Each cue is compared across the four phases (z-scored) so that none dominates by its scale."""
    shift = int(round((beats[0] - first) / period))
    starts = [beats[(p - shift) % BEATS_PER_BAR :: BEATS_PER_BAR] for p in range(BEATS_PER_BAR)]
    table = np.array([[cues.onset_at(s).mean(), cues.low_at(s).mean(), cues.change_at(s).mean()] for s in starts])
    spread = table.std(axis=0)
    scores = ((table - table.mean(axis=0)) / np.where(spread > 0, spread, 1.0)).sum(axis=1)
    return int(np.argmax(scores))


def _unsteady_reason(tempo: float, ibi_cv: float, jitter: float, prior: float | None) -> str | None:
    if ibi_cv > MAX_IBI_CV:
        return f"no steady beat: inter-beat intervals spread {ibi_cv:.0%} (at most {MAX_IBI_CV:.0%})"
    if jitter > MAX_JITTER:
        return f"no steady beat: beats stray {jitter:.2f} beat from a steady grid (at most {MAX_JITTER})"
    if prior and abs(tempo / prior - 1.0) > PRIOR_TOLERANCE:
        return f"no steady beat near the expected tempo: measured {tempo:.1f} BPM, expected {prior:g} BPM"
    return None
