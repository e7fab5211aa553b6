"""Writing any output format, atomically: a temp file in the target folder, then os.replace.

Which library writes a format, and with which container and codec, is the contract's FORMATS table:
today wav/flac and ogg (Vorbis) go through soundfile; m4a (native AAC in an iPod/MP4 container)
through PyAV; mp3 through Debian's `lame` (constant bit rate, -q 2, with the LAME tag so decoders
trim the encoder delay and padding and return exactly the rendered samples). LAME through PyAV's
bundled libmp3lame took 9 s for 3 minutes of stereo on these machines, `lame` 3.8 s.

Samples come as integer PCM, written as they are (int16, or int32 holding 24-bit samples left-aligned),
or as float (-1..1): a lossless format then quantises them to its bit depth (16-bit with TPDF dither
unless told not to), a lossy encoder takes them as they are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from textmusic.contract import FORMATS

LAME_QUALITY = "2"  # LAME's "near-best quality, not too slow"
CHUNK_FRAMES = 65536  # soundfile's Vorbis encoder crashes on one huge write; PyAV frames of this size
DITHER_SEED = 0  # the same input quantises to the same bytes (a re-render reproduces files)


def write_audio(audio: np.ndarray, sample_rate: int, out_path: Path, output_format: str,
                bit_rate_kbps: int | None = None, *, bit_depth: int | None = None, dither: bool = True) -> None:
    """Write (frames, channels) `audio` to `out_path` in `output_format`; nothing appears at `out_path` unless
    the write completed. `bit_depth` (lossless formats): of float samples, else the format's; `bit_rate_kbps`
    (formats with bit rates): else the format's default."""
    out_path = Path(out_path)
    spec = FORMATS.get(output_format)
    if spec is None:
        raise ValueError(f"unsupported output format {output_format}")
    kbps = bit_rate_kbps or int(spec.default_bit_rate or 0)  # 0 only for formats that take no bit rate
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if spec.lossless:
            depth = bit_depth or _int_depth(audio) or spec.bit_depth or 16
            pcm = audio if _int_depth(audio) else quantize(audio, depth, dither=dither)
            _write_soundfile(pcm, sample_rate, tmp, spec.container, f"PCM_{depth}")
        elif spec.encoder == "soundfile":
            _write_soundfile(audio, sample_rate, tmp, spec.container, spec.codec)
        elif spec.encoder == "lame":
            _write_lame(audio, sample_rate, tmp, kbps)
        else:
            _write_pyav(audio, sample_rate, tmp, spec.container, spec.codec, kbps * 1000)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def _int_depth(audio: np.ndarray) -> int | None:
    """Bits of integer PCM (int32 holds 24-bit samples left-aligned, as `quantize` makes them); None for float."""
    if not np.issubdtype(audio.dtype, np.integer):
        return None
    return 16 if audio.dtype.itemsize == 2 else 24


def quantize(audio: np.ndarray, depth: int, *, dither: bool = True) -> np.ndarray:
    """Integer samples: 16-bit, with TPDF dither (±1 LSB triangular, so the rounding error is signal-independent
    noise instead of distortion) unless `dither` is off (samples already on the 16-bit grid stay exact);
    24-bit rounded (its error sits near -144 dBFS), left-aligned in int32."""
    scale = 2.0 ** (depth - 1)
    scaled = audio * scale
    if depth == 16 and dither:
        rng = np.random.default_rng(DITHER_SEED)
        scaled = scaled + rng.random(audio.shape) - rng.random(audio.shape)
    quantized = np.clip(np.round(scaled), -scale, scale - 1)
    return quantized.astype(np.int16) if depth == 16 else quantized.astype(np.int32) << 8


def _write_soundfile(samples: np.ndarray, sample_rate: int, path: Path, fmt: str, subtype: str) -> None:
    import soundfile

    with soundfile.SoundFile(path, "w", samplerate=sample_rate, channels=samples.shape[1], format=fmt,
                             subtype=subtype) as handle:
        for start in range(0, len(samples), CHUNK_FRAMES):
            handle.write(samples[start:start + CHUNK_FRAMES])


def _write_lame(audio: np.ndarray, sample_rate: int, path: Path, bit_rate_kbps: int) -> None:
    """Raw little-endian PCM into `lame`: int16 as 16-bit, anything else as full-scale 32-bit integers
    (float is not a raw input LAME takes; 32 bits lose nothing a 16-bit source had)."""
    lame = shutil.which("lame")
    if lame is None:
        raise RuntimeError("mp3 output needs the LAME encoder: apt-get install lame")
    if audio.dtype == np.int16:
        raw, bits = np.ascontiguousarray(audio, dtype="<i2"), "16"
    else:
        raw, bits = _int32(audio), "32"
    command = [lame, "--quiet", "-r", "-s", f"{sample_rate / 1000:g}", "--bitwidth", bits, "--signed",
               "--little-endian", "-m", "j" if raw.shape[1] == 2 else "m", "-b", str(bit_rate_kbps), "--cbr",
               "-q", LAME_QUALITY, "--noreplaygain", "-", str(path)]
    done = subprocess.run(command, input=raw.tobytes(), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"lame failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")


def _int32(audio: np.ndarray) -> np.ndarray:
    """Full-scale little-endian int32 samples of float audio, or of int32 PCM as it is."""
    if audio.dtype == np.int32:
        return np.ascontiguousarray(audio, dtype="<i4")
    scale = 2.0 ** 31
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * scale), -scale, scale - 1).astype("<i4")


def _write_pyav(audio: np.ndarray, sample_rate: int, path: Path, container_format: str, codec: str,
                bit_rate: int) -> None:
    import av

    layout = "mono" if audio.shape[1] == 1 else "stereo"
    if np.issubdtype(audio.dtype, np.integer):
        audio = audio.astype(np.float32) / float(2 ** (8 * audio.dtype.itemsize - 1))
    planar = np.asarray(audio, dtype=np.float32).T  # (channels, frames), what both encoders take
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        stream.bit_rate = bit_rate
        time_base = Fraction(1, sample_rate)
        for start in range(0, planar.shape[1], CHUNK_FRAMES):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planar[:, start:start + CHUNK_FRAMES]), format="fltp", layout=layout
            )
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
