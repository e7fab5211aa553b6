"""Mix the stems by the style's recipe, then master to streaming loudness with a true-peak ceiling.

Mix (pedalboard, deterministic): each bus gets a high-pass, a compressor and a gain, plus a send
to one shared reverb (cheaper than a reverb per bus, and it glues the parts into one room). The sum
gets a tilt EQ and a gentle glue compressor.

Master: gain to MASTER_LUFS integrated (ITU-R BS.1770, measured with pyloudnorm), then a
look-ahead brickwall limiter on the 4x-oversampled (true) peak, then the result is measured again
and corrected, so the written file meets both targets by measurement, not by assumption.
``pedalboard.Limiter`` is not used: it adds make-up gain and does not hold a ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

MASTER_LUFS = -14.0
TRUE_PEAK_DBTP = -1.0
LOSSLESS_CEILING_DBTP = -1.3  # a margin for int16 rounding
LOSSY_CEILING_DBTP = -2.2  # lossy encoders overshoot the source's peaks by up to ~0.8 dB
OVERSAMPLE = 4
LIMITER_WINDOW_SECONDS = 0.004  # half the gain-smoothing window: gain moves over 2x this
RELEASE_WINDOW_SECONDS = 0.04
LOUDNESS_TOLERANCE_DB = 0.15


@dataclass(frozen=True)
class Mix:
    """A style's mix recipe: bus gains (dB), reverb sends (0-1), room, EQ tilt and compression."""

    gains: Mapping[str, float] = field(default_factory=dict)
    sends: Mapping[str, float] = field(default_factory=dict)
    room: float = 0.45  # reverb room size 0-1
    damping: float = 0.5
    reverb_db: float = -4.0  # reverb return level
    low_db: float = 0.0  # master low shelf at 120 Hz
    high_db: float = 0.0  # master high shelf at 6 kHz
    drum_ratio: float = 3.0  # drum-bus compression
    glue_ratio: float = 1.6  # master-bus compression

    def gain(self, bus: str) -> float:
        return self.gains.get(bus, 0.0)

    def send(self, bus: str) -> float:
        return self.sends.get(bus, DEFAULT_SENDS.get(bus, 0.1))


DEFAULT_SENDS: Mapping[str, float] = {"drums": 0.08, "bass": 0.0, "harmony": 0.22, "lead": 0.28, "vocal": 0.3}
HIGH_PASS_HZ: Mapping[str, float] = {"drums": 30.0, "bass": 28.0, "harmony": 110.0, "lead": 150.0, "vocal": 90.0}
BUS_COMPRESSION: Mapping[str, tuple[float, float, float, float]] = {  # threshold dB, ratio, attack, release ms
    "bass": (-18.0, 3.0, 10.0, 120.0),
    "harmony": (-20.0, 1.8, 15.0, 200.0),
    "lead": (-18.0, 2.0, 8.0, 150.0),
    "vocal": (-20.0, 3.0, 5.0, 120.0),
}


def mix_stems(stems: Mapping[str, np.ndarray], mix: Mix, sample_rate: int) -> np.ndarray:
    """Sum the (frames, 2) float stems through their bus chains and the shared reverb."""
    import pedalboard as pb

    frames = len(next(iter(stems.values())))
    dry = np.zeros((2, frames), dtype=np.float32)
    send = np.zeros((2, frames), dtype=np.float32)
    for bus, audio in stems.items():
        if not np.any(audio):
            continue
        chain: list[pb.Plugin] = [pb.HighpassFilter(HIGH_PASS_HZ.get(bus, 40.0))]
        if bus == "drums":
            chain.append(pb.Compressor(threshold_db=-16.0, ratio=mix.drum_ratio, attack_ms=6.0, release_ms=90.0))
        elif bus in BUS_COMPRESSION:
            threshold, ratio, attack, release = BUS_COMPRESSION[bus]
            chain.append(pb.Compressor(threshold_db=threshold, ratio=ratio, attack_ms=attack, release_ms=release))
        chain.append(pb.Gain(mix.gain(bus)))
        out = pb.Pedalboard(chain)(np.ascontiguousarray(audio.T, dtype=np.float32), sample_rate)
        dry += out
        if mix.send(bus) > 0:
            send += mix.send(bus) * out
    if np.any(send):
        reverb = pb.Pedalboard([pb.HighpassFilter(200.0), pb.Reverb(room_size=mix.room, damping=mix.damping,
                                                                    wet_level=1.0, dry_level=0.0, width=1.0)])
        dry += 10 ** (mix.reverb_db / 20) * reverb(send, sample_rate)
    peak = float(np.max(np.abs(dry)))
    if peak > 0:
        dry *= np.float32(0.5 / peak)  # the glue compressor's threshold is relative to a -6 dBFS peak
    master_chain = pb.Pedalboard([
        pb.LowShelfFilter(120.0, mix.low_db),
        pb.HighShelfFilter(6000.0, mix.high_db),
        pb.Compressor(threshold_db=-20.0, ratio=mix.glue_ratio, attack_ms=20.0, release_ms=250.0),
    ])
    return np.asarray(master_chain(dry, sample_rate), dtype=np.float64).T


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4 gating), -inf for silence."""
    import pyloudnorm

    if len(audio) < int(0.4 * sample_rate):  # shorter than one gating block: pad with silence
        audio = np.pad(audio, ((0, int(0.4 * sample_rate) - len(audio) + 1), (0, 0)))
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(np.asarray(audio, dtype=np.float64)))


def _oversampling_filter() -> np.ndarray:
    """Polyphase interpolation filter (Kaiser-windowed sinc, 12 taps per phase) like BS.1770's."""
    taps = 12 * OVERSAMPLE
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(n / OVERSAMPLE) * np.kaiser(taps, 8.0)
    return OVERSAMPLE * h / h.sum()


def peak_envelope(audio: np.ndarray) -> np.ndarray:
    """Per-sample true-peak magnitude (max over channels and the 4x-oversampled points around it)."""
    from scipy.signal import upfirdn

    h = _oversampling_filter()
    delay = (len(h) - 1) // 2
    env = np.max(np.abs(audio), axis=1)
    for channel in range(audio.shape[1]):
        up = upfirdn(h, audio[:, channel], up=OVERSAMPLE)[delay : delay + OVERSAMPLE * len(audio)]
        up = np.pad(up, (0, OVERSAMPLE * len(audio) - len(up)))
        env = np.maximum(env, np.abs(up).reshape(-1, OVERSAMPLE).max(axis=1))
    return env


def true_peak_dbtp(audio: np.ndarray) -> float:
    peak = float(np.max(peak_envelope(audio))) if len(audio) else 0.0
    return 20 * np.log10(max(peak, 1e-12))


def _sliding_min(x: np.ndarray, radius: int) -> np.ndarray:
    """Centred running minimum over 2*radius+1 samples in O(n) (van Herk / Gil-Werman)."""
    if radius <= 0:
        return x.copy()
    width = 2 * radius + 1
    padded = np.pad(x, (radius, radius + (-(len(x) + 2 * radius)) % width), constant_values=np.inf)
    blocks = padded.reshape(-1, width)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    start = np.arange(len(x))
    return np.minimum(suffix[start], prefix[start + width - 1])


def _moving_average(x: np.ndarray, radius: int) -> np.ndarray:
    width = 2 * radius + 1
    padded = np.pad(x, (radius + 1, radius), mode="edge")
    cumulative = np.cumsum(padded)
    return (cumulative[width:] - cumulative[:-width]) / width


def limit_true_peak(audio: np.ndarray, sample_rate: int, ceiling_dbtp: float) -> np.ndarray:
    """Brickwall limiter: the gain never exceeds what keeps each true peak under the ceiling.

    A running minimum of the required gain followed by a moving average of the same radius is
    never above the requirement at any sample (each averaged value is itself a minimum over a
    window containing that sample), so the ceiling holds up to the oversampling approximation; a
    slower second stage of the same form gives the release.
    """
    ceiling = 10 ** (ceiling_dbtp / 20)
    required = np.minimum(1.0, ceiling / np.maximum(peak_envelope(audio), 1e-12))
    if float(required.min()) >= 1.0:
        return audio
    fast = max(1, round(LIMITER_WINDOW_SECONDS * sample_rate))
    slow = max(fast, round(RELEASE_WINDOW_SECONDS * sample_rate))
    gain = _moving_average(_sliding_min(required, fast), fast)
    gain = _moving_average(_sliding_min(gain, slow), slow)
    return audio * gain[:, None]


def fade_out(audio: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    audio = np.array(audio, dtype=np.float64)
    fade = min(len(audio), round(seconds * sample_rate))
    if fade > 0:
        audio[-fade:] *= np.cos(np.linspace(0.0, np.pi / 2, fade))[:, None] ** 2
    return audio


def master(audio: np.ndarray, sample_rate: int, ceiling_dbtp: float = LOSSLESS_CEILING_DBTP,
           target_lufs: float = MASTER_LUFS) -> np.ndarray:
    """Loudness to `target_lufs` and true peak under `ceiling_dbtp`, both checked by measurement."""
    audio = np.asarray(audio, dtype=np.float64)
    loudness = integrated_loudness(audio, sample_rate)
    if not np.isfinite(loudness):
        return audio
    gain_db = target_lufs - loudness
    out = audio
    for _ in range(4):  # limiting lowers loudness a little: push the input and limit again
        out = limit_true_peak(audio * 10 ** (gain_db / 20), sample_rate, ceiling_dbtp)
        error = target_lufs - integrated_loudness(out, sample_rate)
        if abs(error) <= LOUDNESS_TOLERANCE_DB:
            break
        gain_db += error
    excess = true_peak_dbtp(out) - ceiling_dbtp
    if excess > 0:  # the oversampled estimate between samples can still poke through by a hair
        out = out * 10 ** (-(excess + 0.01) / 20)
    return out


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(audio) * 32767.0), -32768, 32767).astype(np.int16)
