"""The audio core's meters and limiter: loudness against pyloudnorm (the independent judge), true peak between
samples, the limiter's ceiling, and the engine's master meeting both targets by measurement."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from textmusic.audio import STREAMING_LUFS
from textmusic.audio.limiter import limiter_gain
from textmusic.audio.loudness import integrated_loudness, loudness_range
from textmusic.audio.peaks import local_true_peak, peak_envelope, true_peak_dbtp
from textmusic.engine.master import master

SR = 44100


def limit_true_peak(audio: np.ndarray, sample_rate: int, ceiling_dbtp: float) -> np.ndarray:
    """Brickwall limiting of `audio` to a true-peak ceiling, as a master applies the limiter's gain."""
    return audio * limiter_gain(peak_envelope(audio), sample_rate, ceiling_dbtp)[:, None]


def signal(seconds: float = 5.0, channels: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    audio = np.stack([np.sin(2 * np.pi * 440 * t) * (0.3 + 0.2 * np.sin(t)), rng.normal(0, 0.1, len(t))], axis=1)
    return audio[:, :channels]


@pytest.mark.parametrize("channels", [1, 2])
def test_loudness_matches_pyloudnorm(channels: int) -> None:
    audio = signal(channels=channels)
    assert integrated_loudness(audio, SR) == pytest.approx(pyloudnorm.Meter(SR).integrated_loudness(audio), abs=0.02)
    assert integrated_loudness(np.zeros((SR, 2)), SR) == float("-inf")
    assert loudness_range(audio[: 2 * SR], SR) is None  # shorter than one short-term window


def test_limiter_holds_true_peak_and_master_meets_both_targets() -> None:
    t = np.arange(5 * SR) / SR
    # A quarter-rate sine sampled at 45 degrees: sample peaks 3 dB below its true peak.
    hot = np.repeat(np.sin(2 * np.pi * (SR / 4) * t + np.pi / 4)[:, None], 2, axis=1) * 1.4
    assert true_peak_dbtp(hot) > 20 * np.log10(np.abs(hot).max()) + 2.5
    assert true_peak_dbtp(limit_true_peak(hot, SR, -1.0)) <= -1.0 + 0.05
    assert 20 * np.log10(local_true_peak(hot, 0.5)) == pytest.approx(true_peak_dbtp(hot), abs=0.01)
    mastered = master(signal() * 4, SR, -1.3)
    assert integrated_loudness(mastered.audio, SR) == pytest.approx(STREAMING_LUFS, abs=0.3) == mastered.loudness_lufs
    assert true_peak_dbtp(mastered.audio) <= -1.3 + 1e-6
    assert true_peak_dbtp(mastered.audio) == pytest.approx(mastered.true_peak_dbtp, abs=1e-3)
