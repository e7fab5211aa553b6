"""A look-ahead brickwall limiter on a true-peak envelope, computed on short blocks (and the block helpers
the engine's glue compressor and sidechain duck share with it)."""

from __future__ import annotations

import numpy as np

LIMITER_BLOCK = 32  # samples per limiter gain block (0.7 ms at 44.1 kHz)
LIMITER_WINDOW_SECONDS = 0.004  # half the gain-smoothing window: gain moves over 2x this
RELEASE_WINDOW_SECONDS = 0.04


def block_peaks(signal: np.ndarray) -> np.ndarray:
    """The peak of each LIMITER_BLOCK-sample block of a 1-D signal (the last block padded with zeros)."""
    blocks = -(-len(signal) // LIMITER_BLOCK)
    return np.pad(signal, (0, blocks * LIMITER_BLOCK - len(signal))).reshape(blocks, LIMITER_BLOCK).max(axis=1)


def to_samples(per_block: np.ndarray, frames: int) -> np.ndarray:
    """Per-block values back to `frames` samples, linearly between block centres."""
    centres = (np.arange(len(per_block)) + 0.5) * LIMITER_BLOCK
    return np.interp(np.arange(frames), centres, per_block)


def _sliding_min(x: np.ndarray, radius: int) -> np.ndarray:
    """Centred running minimum over 2*radius+1 samples in O(n) (van Herk / Gil-Werman)."""
    if radius <= 0:
        return x.copy()
    width = 2 * radius + 1
    padded = np.pad(x, (radius, radius + (-(len(x) + 2 * radius)) % width), constant_values=np.inf)
    blocks = padded.reshape(-1, width)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[: len(x)], prefix[width - 1 : width - 1 + len(x)])


def _moving_average(x: np.ndarray, radius: int) -> np.ndarray:
    width = 2 * radius + 1
    cumulative = np.cumsum(np.pad(x, (radius + 1, radius), mode="edge"))
    return (cumulative[width:] - cumulative[:-width]) / width


def limiter_gain(envelope: np.ndarray, sample_rate: int, ceiling_dbtp: float) -> np.ndarray:
    """Per-sample linear gain of a look-ahead brickwall limiter that keeps `envelope` (linear, e.g.
    `peaks.peak_envelope`) under the ceiling.

    Works on blocks of LIMITER_BLOCK samples (their peak) for speed. A running minimum of the
    required gain followed by a moving average of the same radius is never above the requirement
    (each averaged value is itself a minimum over a window holding that block); one extra block of
    radius covers the linear interpolation back to samples. A slower second stage of the same form
    is the release.
    """
    ceiling = 10 ** (ceiling_dbtp / 20)
    frames = len(envelope)
    peaks = block_peaks(envelope)
    required = np.minimum(1.0, ceiling / np.maximum(peaks.astype(np.float64), 1e-12))
    if float(required.min()) >= 1.0:
        return np.ones(frames)
    fast = max(1, round(LIMITER_WINDOW_SECONDS * sample_rate / LIMITER_BLOCK))
    slow = max(fast, round(RELEASE_WINDOW_SECONDS * sample_rate / LIMITER_BLOCK))
    gain = _moving_average(_sliding_min(required, fast + 1), fast)
    gain = _moving_average(_sliding_min(gain, slow), slow)
    return to_samples(gain, frames)
