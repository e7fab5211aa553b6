"""Tempo of rendered audio, shared by the engine tests and benchmarks/engine.py."""

import numpy as np


def onset_tempo(audio: np.ndarray, sr: int, lo: float = 60.0, hi: float = 200.0) -> float:
    """Dominant periodicity (BPM) of a log-energy onset envelope, by autocorrelation."""
    hop, win = 256, 1024
    mono = audio.mean(axis=1).astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(mono, win)[::hop]
    energy = np.log1p(1000.0 * (frames**2).mean(axis=1))
    flux = np.maximum(np.diff(energy), 0.0)
    flux -= flux.mean()
    ac = np.correlate(flux, flux, "full")[len(flux) - 1 :]
    rate = sr / hop
    lag_min, lag_max = int(rate * 60 / hi), int(rate * 60 / lo) + 1
    k = lag_min + int(np.argmax(ac[lag_min:lag_max]))
    a, b, c = ac[k - 1], ac[k], ac[k + 1]
    return 60.0 * rate / (k + 0.5 * (a - c) / (a - 2 * b + c))
