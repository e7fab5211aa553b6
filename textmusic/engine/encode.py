"""Writing the output formats, atomically: a temp file in the target folder, then os.replace.

Which library writes a format, and with which container and codec, is the contract's FORMATS table:
today wav/flac (PCM_16) and ogg (Vorbis) go through soundfile; m4a (native AAC in an iPod/MP4 container)
through PyAV; mp3 through Debian's `lame` (constant bit rate, -q 2, with the LAME tag so decoders
trim the encoder delay and padding and return exactly the rendered samples). LAME through PyAV's
bundled libmp3lame took 9 s for 3 minutes of stereo on these machines, `lame` 3.8 s.
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
CHUNK_FRAMES = 65536  # soundfile's Vorbis encoder crashes on one huge write


def write_audio(pcm: np.ndarray, sample_rate: int, out_path: Path, output_format: str,
                bit_rate_kbps: int | None = None) -> None:
    """Write int16 stereo `pcm` to `out_path`; nothing appears at `out_path` unless the write completed."""
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
        if spec.encoder == "soundfile":
            _write_soundfile(pcm, sample_rate, tmp, spec.container, spec.codec)
        elif spec.encoder == "lame":
            _write_lame(pcm, sample_rate, tmp, kbps)
        else:
            _write_pyav(pcm, sample_rate, tmp, spec.container, spec.codec, kbps * 1000)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_soundfile(pcm: np.ndarray, sample_rate: int, path: Path, fmt: str, subtype: str) -> None:
    import soundfile

    with soundfile.SoundFile(path, "w", samplerate=sample_rate, channels=pcm.shape[1], format=fmt,
                             subtype=subtype) as handle:
        for start in range(0, len(pcm), CHUNK_FRAMES):
            handle.write(pcm[start:start + CHUNK_FRAMES])


def _write_lame(pcm: np.ndarray, sample_rate: int, path: Path, bit_rate_kbps: int) -> None:
    lame = shutil.which("lame")
    if lame is None:
        raise RuntimeError("mp3 output needs the LAME encoder: apt-get install lame")
    raw = np.ascontiguousarray(pcm, dtype="<i2")
    command = [lame, "--quiet", "-r", "-s", f"{sample_rate / 1000:g}", "--bitwidth", "16", "--signed",
               "--little-endian", "-m", "j" if raw.shape[1] == 2 else "m", "-b", str(bit_rate_kbps), "--cbr",
               "-q", LAME_QUALITY, "--noreplaygain", "-", str(path)]
    done = subprocess.run(command, input=raw.tobytes(), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"lame failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")


def _write_pyav(pcm: np.ndarray, sample_rate: int, path: Path, container_format: str, codec: str,
                bit_rate: int) -> None:
    import av

    planar = (pcm.astype(np.float32) / 32768.0).T  # (channels, frames), what both encoders take
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout="stereo")
        stream.bit_rate = bit_rate
        time_base = Fraction(1, sample_rate)
        for start in range(0, planar.shape[1], CHUNK_FRAMES):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planar[:, start:start + CHUNK_FRAMES]), format="fltp", layout="stereo"
            )
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decode any output format to float32 (frames, channels): PyAV for the formats soundfile does not
    write (and .mp4/.aac, other names of the AAC container), soundfile otherwise."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    by_extension = {f.extension: f for f in FORMATS.values()}
    if suffix in ("mp4", "aac") or (suffix in by_extension and by_extension[suffix].encoder != "soundfile"):
        import av

        chunks = []
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            for frame in container.decode(stream):
                array = frame.to_ndarray()
                if frame.format.is_planar:
                    chunks.append(array.T)
                else:
                    chunks.append(array.reshape(-1, len(frame.layout.channels)))
        data = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 2), np.float32)
        return data, rate
    import soundfile

    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return data, rate
