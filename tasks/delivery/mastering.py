"""Delivery masters: one decoded file in, one file at the catalog's loudness and true-peak ceiling out.

Steps: decode; resample (soxr VHQ, the core's) when the rate changes; a DC-blocking high-pass; gain to the
integrated-loudness target (BS.1770); a look-ahead true-peak limiter driven by the 4x oversampled peak
envelope; TPDF dither when writing 16-bit; encode into a temp file beside the target; measure the decoded
temp file; and, when an encoder pushed the peak (or the loudness) out of the spec, lower the ceiling (or
correct the gain) and encode again — at most MAX_PASSES times. Only then does the file replace `dst`. Whether
it passed is for `qc.check` to say: a file still outside its spec after the last pass is written, and its
figures tell why.

The reader, meters, limiter and encoders are the audio core's (`textmusic.audio`), the engine's own; what a
format is (lossless with a bit depth, or lossy with bit rates, and its encoder) is the contract's FORMATS.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

from tasks.delivery.qc import QcFigures, integrated_lufs, measure
from tasks.settings import BIT_DEPTHS, MasterSpec
from textmusic.audio.limiter import limiter_gain
from textmusic.audio.peaks import peak_envelope
from textmusic.audio.read import bit_depth, read_audio
from textmusic.audio.resample import resample
from textmusic.audio.write import write_audio
from textmusic.contract import BIT_RATE_FORMATS, FORMATS, LOSSLESS_FORMATS

DEFAULT_BIT_DEPTH = 24
# Ceiling below the spec before the first pass: lossless files move only by the dither; lossy encoders
# overshoot by a fraction of a dB to a dB, and re-measuring lowers the ceiling further where needed.
LOSSLESS_HEADROOM_DB = 0.1
LOSSY_HEADROOM_DB = 1.0
MAX_PASSES = 3  # encode + measure rounds
DC_CUTOFF_HZ = 5.0
LEVEL_PASSES = 3  # gain + limit rounds before encoding (limiting lowers the loudness a little)
LEVEL_AIM_LU = 0.1


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
    """Master `src` to `dst` in `fmt` (a bit depth for lossless formats only, a bit rate for those FORMATS gives
    bit rates, else the format's default). `gain_db`: a fixed gain instead of the spec's loudness target (a stem
    or an alternative mix takes its full mix's gain, so the parts still add up to it); the ceiling still holds."""
    started = time.perf_counter()
    depth = _depth(src, fmt, bit_depth, bit_rate)
    data, rate = read_audio(src)
    if sample_rate and sample_rate != rate:
        data, rate = resample(data, rate, sample_rate), sample_rate
    data = remove_dc(data, rate)
    target = spec if gain_db is None else dataclasses.replace(spec, lufs=None)  # a fixed gain has no loudness to meet
    aim = target.lufs
    if gain_db is None:
        source_lufs = integrated_lufs(data, rate)
        gain_db = spec.lufs - source_lufs if spec.lufs is not None and source_lufs is not None else 0.0
    headroom = LOSSLESS_HEADROOM_DB if FORMATS[fmt].lossless else LOSSY_HEADROOM_DB
    ceiling = None if spec.true_peak_dbtp is None else spec.true_peak_dbtp - headroom
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.stem}.", suffix=f".{FORMATS[fmt].extension}")
    os.close(fd)
    tmp = Path(tmp_name)
    kbps = FORMATS[fmt].bit_rate_for(bit_rate)
    try:
        for passes in range(1, MAX_PASSES + 1):
            audio, gain_db = _level(data, rate, gain_db, ceiling, aim)
            write_audio(audio, rate, tmp, fmt, int(kbps) if kbps else None, bit_depth=depth)
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
    if fmt not in FORMATS:
        raise ValueError(f"cannot master to {fmt!r}: one of {', '.join(FORMATS)}")
    if bit_rate is not None and fmt not in BIT_RATE_FORMATS:
        raise ValueError(f"a bit rate applies to {' or '.join(BIT_RATE_FORMATS)}, not {fmt}")
    if fmt not in LOSSLESS_FORMATS:
        if asked is not None:
            raise ValueError(f"a bit depth applies to {' or '.join(LOSSLESS_FORMATS)}, not {fmt}")
        return None
    if asked is not None and asked not in BIT_DEPTHS:
        raise ValueError(f"bit depth {asked}: one of {BIT_DEPTHS}")
    source = bit_depth(src)
    return asked or (source if source in BIT_DEPTHS else DEFAULT_BIT_DEPTH)


def _level(data: np.ndarray, rate: int, gain_db: float, ceiling: float | None,
           aim: float | None) -> tuple[np.ndarray, float]:
    """Gain then limit; re-aim the gain while limiting keeps the loudness more than LEVEL_AIM_LU off `aim`.
    The peak envelope scales with the gain, so it is measured once."""
    envelope = peak_envelope(data) if ceiling is not None else None
    for _ in range(LEVEL_PASSES):
        scale = 10 ** (gain_db / 20)
        audio = data * scale
        if envelope is not None and ceiling is not None:
            audio = audio * limiter_gain(envelope * scale, rate, ceiling)[:, None]
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
