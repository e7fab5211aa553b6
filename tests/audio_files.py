"""Small real audio files of each format for tests that need a file but not the engine."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf

_CODECS = {
    "wav": ("wav", "pcm_s16le", "s16"),
    "flac": ("flac", "flac", "s16"),
    "mp3": ("mp3", "libmp3lame", "fltp"),
    "m4a": ("ipod", "aac", "fltp"),
}


def make_audio(path: Path, output_format: str, seconds: float = 2.0, rate: int = 44100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    if output_format == "ogg":  # PyAV has no usable Vorbis encoder
        sf.write(str(path), tone, rate, format="OGG", subtype="VORBIS")
        return path
    container_format, codec, sample_format = _CODECS[output_format]
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        for start in range(0, len(tone), 4096):
            chunk = tone[start : start + 4096]
            data = (chunk * 32767).astype(np.int16)[None, :] if sample_format == "s16" else chunk[None, :]
            frame = av.AudioFrame.from_ndarray(data, format=sample_format, layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
