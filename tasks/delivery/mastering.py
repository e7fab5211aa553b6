"""Delivery masters: one decoded file in, one file at the catalog's loudness and true-peak ceiling out.

Steps: decode; resample with soxr (VHQ) when the rate changes; a DC-blocking high-pass; gain to the
integrated-loudness target (BS.1770, pyloudnorm); a look-ahead true-peak limiter driven by the 4x oversampled
peak envelope; TPDF dither when writing 16-bit; encode into a temp file beside the target; measure the decoded
temp file; and, when an encoder pushed the peak (or the loudness) out of the spec, lower the ceiling (or
correct the gain) and encode
again — at most MAX_PASSES times. Only then does the file replace `dst`. Whether it passed is for
`qc.check` to say: a file still outside its spec after the last pass is written, and its figures tell why.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile
import soxr
from scipy.ndimage import minimum_filter1d
from scipy.signal import butter, oaconvolve, sosfiltfilt
from scipy.signal.windows import hann

from tasks.delivery.qc import (
    SPECS,
    MasterSpec,
    QcFigures,
    bit_depth,
    integrated_lufs,
    measure,
    peak_envelope,
    read_audio,
)

__all__ = ["SPECS", "MasterResult", "MasterSpec", "limiter_gain", "master_file"]

PCM_CONTAINERS = {"wav": "WAV", "flac": "FLAC"}
PYAV_ENCODERS = {"mp3": ("mp3", "libmp3lame"), "m4a": ("ipod", "aac")}  # container, codec
MASTER_FORMATS = (*PCM_CONTAINERS, "ogg", *PYAV_ENCODERS)
BIT_DEPTHS = (16, 24)
DEFAULT_BIT_DEPTH = 24
DEFAULT_BIT_RATE = "192"  # kbit/s, what the engine's encoder uses when none is asked
# Ceiling below the spec before the first pass: lossless files move only by the dither; lossy encoders
# overshoot by a fraction of a dB to a dB, and re-measuring lowers the ceiling further where needed.
HEADROOM_DB = {"wav": 0.1, "flac": 0.1, "ogg": 1.0, "mp3": 1.0, "m4a": 1.0}
MAX_PASSES = 3  # encode + measure rounds
DC_CUTOFF_HZ = 5.0
LEVEL_PASSES = 3  # gain + limit rounds before encoding (limiting lowers the loudness a little)
LEVEL_AIM_LU = 0.1
ATTACK_S = 0.005  # look-ahead: the gain is fully down when the peak arrives, ramped over this time
HOLD_S = 0.010
RELEASE_DB_PER_S = 40.0
DITHER_SEED = 0  # the same input masters to the same bytes (re-render reproduces files)
CHUNK_FRAMES = 65536  # soundfile's Vorbis encoder crashes on one huge write; PyAV frames of this size


@dataclass(frozen=True)
class MasterResult:
    path: Path
    spec: str
    gain_db: float
    ceiling_dbtp: float | None  # the limiter's last ceiling (below the spec by the encoder's headroom)
    passes: int
    figures: QcFigures  # measured on the delivered file, after encoding
    seconds: float


def master_file(src: Path, dst: Path, spec: MasterSpec, *, sample_rate: int | None = None,
                bit_depth: int | None = None, fmt: str, bit_rate: str | None = None,
                gain_db: float | None = None) -> MasterResult:
    """Master `src` to `dst` in `fmt` (bit depth for wav/flac only, bit rate for mp3/m4a only). `gain_db`: a
    fixed gain instead of the spec's loudness target (a stem or an alternative mix takes its full mix's gain,
    so the parts still add up to it); the ceiling still holds."""
    started = time.perf_counter()
    depth = _depth(src, fmt, bit_depth, bit_rate)
    data, rate = read_audio(src)
    if sample_rate and sample_rate != rate:
        data, rate = soxr.resample(data, rate, sample_rate, quality="VHQ"), sample_rate
    data = remove_dc(data, rate)
    target = spec if gain_db is None else dataclasses.replace(spec, lufs=None)  # a fixed gain has no loudness to meet
    aim = target.lufs
    if gain_db is None:
        source_lufs = integrated_lufs(data, rate)
        gain_db = spec.lufs - source_lufs if spec.lufs is not None and source_lufs is not None else 0.0
    ceiling = None if spec.true_peak_dbtp is None else spec.true_peak_dbtp - HEADROOM_DB[fmt]
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.stem}.", suffix=f".{fmt}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        for passes in range(1, MAX_PASSES + 1):
            audio, gain_db = _level(data, rate, gain_db, ceiling, aim)
            _encode(audio, rate, tmp, fmt, depth, bit_rate or DEFAULT_BIT_RATE)
            figures = measure(tmp)
            step = _correction(figures, target)
            if step is None or passes == MAX_PASSES:
                break
            aim = None if aim is None else aim + step[0]
            ceiling = None if ceiling is None else ceiling - step[1]
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return MasterResult(dst, spec.name, gain_db, ceiling, passes, figures, time.perf_counter() - started)


def remove_dc(data: np.ndarray, rate: int) -> np.ndarray:
    """A DC-blocking high-pass (2nd-order Butterworth at DC_CUTOFF_HZ, run forwards and backwards: no phase
    shift), so a master carries no offset whatever the source had; far below any music."""
    if len(data) < 4 * rate / DC_CUTOFF_HZ:
        return data - data.mean(axis=0)
    return sosfiltfilt(butter(2, DC_CUTOFF_HZ, btype="highpass", fs=rate, output="sos"), data, axis=0)


def _depth(src: Path, fmt: str, asked: int | None, bit_rate: str | None) -> int | None:
    """The PCM bit depth to write: the asked one, else the source's 16/24, else 24; None for lossy formats."""
    if fmt not in MASTER_FORMATS:
        raise ValueError(f"cannot master to {fmt!r}: one of {', '.join(MASTER_FORMATS)}")
    if bit_rate is not None and fmt not in PYAV_ENCODERS:
        raise ValueError(f"a bit rate applies to {' or '.join(PYAV_ENCODERS)}, not {fmt}")
    if fmt not in PCM_CONTAINERS:
        if asked is not None:
            raise ValueError(f"a bit depth applies to {' or '.join(PCM_CONTAINERS)}, not {fmt}")
        return None
    if asked is not None and asked not in BIT_DEPTHS:
        raise ValueError(f"bit depth {asked}: one of {BIT_DEPTHS}")
    source = bit_depth(src)
    return asked or (source if source in BIT_DEPTHS else DEFAULT_BIT_DEPTH)


def _level(data: np.ndarray, rate: int, gain_db: float, ceiling: float | None,
           aim: float | None) -> tuple[np.ndarray, float]:
    """Gain then limit; re-aim the gain while limiting keeps the loudness more than LEVEL_AIM_LU off `aim`.
    The peak envelope scales with the gain, so it is measured once."""
    envelope_db = 20 * np.log10(np.maximum(peak_envelope(data, rate), 1e-12)) if ceiling is not None else None
    for _ in range(LEVEL_PASSES):
        audio = data * 10 ** (gain_db / 20)
        if envelope_db is not None and ceiling is not None:
            audio = audio * limiter_gain(envelope_db + gain_db, rate, ceiling)[:, None]
        loud = integrated_lufs(audio, rate) if aim is not None else None
        if loud is None or abs(loud - aim) <= LEVEL_AIM_LU:
            break
        gain_db += aim - loud
    return audio, gain_db


def _correction(figures: QcFigures, spec: MasterSpec) -> tuple[float, float] | None:
    """(loudness re-aim in LU, ceiling drop in dB) for another pass, or None when the file is in spec
    with margin (loudness within half the tolerance, so a re-measure elsewhere does not flip it)."""
    shift = drop = 0.0
    loud, peak = figures.loudness_lufs, figures.true_peak_dbtp
    if spec.lufs is not None and loud is not None and abs(loud - spec.lufs) > spec.lufs_tolerance / 2:
        shift = spec.lufs - loud
    if spec.true_peak_dbtp is not None and peak is not None and peak > spec.true_peak_dbtp:
        drop = peak - spec.true_peak_dbtp + 0.1
    return (shift, drop) if shift or drop else None


def limiter_gain(envelope_db: np.ndarray, rate: int, ceiling_dbtp: float) -> np.ndarray:
    """Linear gain of a look-ahead true-peak limiter for a signal whose linked 4x oversampled peak envelope
    is `envelope_db`: the needed reduction held for HOLD_S, released at RELEASE_DB_PER_S, and smoothed by a
    Hann window of ATTACK_S that starts before the peak. Every value the smoothing averages at a peak is at
    most the reduction that peak needs, so the output's true peak stays at the ceiling."""
    need = np.minimum(0.0, ceiling_dbtp - envelope_db)
    if not need.any():
        return np.ones(len(need))
    attack, hold = max(2, round(ATTACK_S * rate)), round(HOLD_S * rate)
    pad = attack + hold
    padded = np.pad(need, pad)  # 0 dB (nothing to do) around the signal, so the windows see real bounds
    # held[i] = min(padded[i - hold .. i + attack - 1]): the centred filter's window shifted to that span
    size = hold + attack
    held = np.roll(minimum_filter1d(padded, size=size, mode="nearest"), -(size // 2 - hold))
    ramp = np.arange(len(held)) * (RELEASE_DB_PER_S / rate)
    released = np.minimum.accumulate(held - ramp) + ramp  # min over j <= i of held[j] + (i - j)·slope
    window = hann(attack + 2)[1:-1]
    smooth = oaconvolve(released, window / window.sum())[: len(released)]
    return 10 ** (smooth[pad:pad + len(need)] / 20)


def _encode(audio: np.ndarray, rate: int, path: Path, fmt: str, depth: int | None, bit_rate: str) -> None:
    if fmt in PCM_CONTAINERS:
        soundfile.write(path, _pcm(audio, depth or DEFAULT_BIT_DEPTH), rate, format=PCM_CONTAINERS[fmt],
                        subtype=f"PCM_{depth}")
    elif fmt == "ogg":
        with soundfile.SoundFile(path, "w", samplerate=rate, channels=audio.shape[1], format="OGG",
                                 subtype="VORBIS") as handle:
            for start in range(0, len(audio), CHUNK_FRAMES):
                handle.write(audio[start:start + CHUNK_FRAMES])
    else:
        _encode_pyav(audio, rate, path, *PYAV_ENCODERS[fmt], int(bit_rate) * 1000)


def _pcm(audio: np.ndarray, depth: int) -> np.ndarray:
    """Integer samples: 16-bit with TPDF dither (±1 LSB triangular, so the rounding error is signal-independent
    noise instead of distortion); 24-bit rounded (its error sits near -144 dBFS), left-aligned in int32."""
    scale = 2.0 ** (depth - 1)
    scaled = audio * scale
    if depth == 16:
        rng = np.random.default_rng(DITHER_SEED)
        scaled = scaled + rng.random(audio.shape) - rng.random(audio.shape)
    quantized = np.clip(np.round(scaled), -scale, scale - 1)
    return quantized.astype(np.int16) if depth == 16 else quantized.astype(np.int32) << 8


def _encode_pyav(audio: np.ndarray, rate: int, path: Path, container_format: str, codec: str,
                 bit_rate: int) -> None:
    layout = "mono" if audio.shape[1] == 1 else "stereo"
    planar = np.ascontiguousarray(audio.T, dtype=np.float32)
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        stream.bit_rate = bit_rate
        for start in range(0, planar.shape[1], CHUNK_FRAMES):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, start:start + CHUNK_FRAMES]),
                                               format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
