"""Decoding any file the catalog holds: whole at a dtype, streamed in chunks, its opening as mono at a
rate, probed, its bit depth.

Which library reads a file is the contract's: formats that soundfile writes (`FORMATS[...].encoder`) are
read by libsndfile, without FFmpeg's overhead; every other file, of a listed format or not, by PyAV
(FFmpeg reads them all). Whatever goes wrong while decoding is one error, `UnreadableAudio`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from textmusic.contract import FORMATS, AudioFormat

if TYPE_CHECKING:
    from av.container import InputContainer

CHUNK_FRAMES = 1 << 16
SUBTYPE_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 64}


class UnreadableAudio(Exception):
    """The file is missing, truncated, corrupt or holds no audio stream."""


@dataclass(frozen=True)
class AudioInfo:
    container: str  # as PyAV names it (`AudioFormat.probe_container`)
    codec: str
    sample_rate: int
    channels: int
    duration_seconds: float
    bit_rate: int | None


def audio_format(path: Path) -> AudioFormat | None:
    """The FORMATS entry a file's extension names, None for another extension."""
    extension = Path(path).suffix.lower().lstrip(".")
    return next((f for f in FORMATS.values() if f.extension == extension), None)


def _by_soundfile(path: Path) -> bool:
    spec = audio_format(path)
    return spec is not None and spec.encoder == "soundfile"


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Decoder errors (libsndfile's, FFmpeg's, no audio stream, no file) as `UnreadableAudio`."""
    import av
    import soundfile

    try:
        yield
    except (soundfile.LibsndfileError, av.error.FFmpegError, IndexError, OSError) as exc:
        raise UnreadableAudio(f"{Path(path).name} does not decode: {exc}") from None


def read_audio(path: Path, dtype: str = "float64") -> tuple[np.ndarray, int]:
    """The whole file as (frames, channels) float samples at `dtype` (-1..1), and its sample rate."""
    if _by_soundfile(path):
        import soundfile

        with _decoding(path):
            data, rate = soundfile.read(path, dtype=dtype, always_2d=True)
        return data, int(rate)
    import av

    with _decoding(path), av.open(str(path)) as container:
        context = container.streams.audio[0].codec_context
        blocks = list(_decoded(container))
    data = np.concatenate(blocks) if blocks else np.zeros((0, context.channels), np.float32)
    return data.astype(dtype, copy=False), context.sample_rate


def read_chunks(path: Path, frames: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
    """The file's samples as float32 (frames, channels) blocks, streamed (never the whole song in memory);
    soundfile's blocks hold `frames` frames, PyAV's a decoded frame's worth."""
    if _by_soundfile(path):
        import soundfile

        with _decoding(path), soundfile.SoundFile(path) as handle:
            yield from handle.blocks(blocksize=frames, dtype="float32", always_2d=True)
        return
    import av

    with _decoding(path), av.open(str(path)) as container:
        yield from _decoded(container)


def _decoded(container: InputContainer) -> Iterator[np.ndarray]:
    """The first audio stream's frames as float32 (frames, channels) blocks, whatever the decoder's sample format."""
    import av

    stream = container.streams.audio[0]
    planar = av.AudioResampler(format="fltp")  # a pass-through for the float decoders (mp3, aac)
    for frame in chain(container.decode(stream), [None]):  # None flushes what the resampler still holds
        for converted in planar.resample(frame):
            if converted is not None:  # a pass-through hands the flush's None back
                yield converted.to_ndarray().T


def read_mono(path: Path, sample_rate: int, seconds: float) -> np.ndarray:
    """The file's first `seconds` as mono float32 at `sample_rate`, decoding no further than that (a
    fingerprint of a long song costs its first minute, not the whole file); FFmpeg's resampler for every
    format, so a file and its re-encode are resampled alike."""
    import av

    limit = int(seconds * sample_rate)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    decoded = 0
    with _decoding(path), av.open(str(path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
                decoded += chunks[-1].size
            if decoded >= limit:
                break
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks)[:limit] if chunks else np.zeros(0, np.float32)


def probe(path: Path) -> AudioInfo:
    """Container, codec and stream figures, decoding the whole file (a truncated or corrupt file fails
    here, not in a listener's player); always through PyAV, whose container names FORMATS lists."""
    import av

    with _decoding(path), av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = sum(frame.samples for frame in container.decode(stream))
        rate = stream.codec_context.sample_rate
        return AudioInfo(
            container=container.format.name,
            codec=stream.codec_context.name,
            sample_rate=rate,
            channels=stream.codec_context.channels,
            duration_seconds=frames / rate if rate else 0.0,
            bit_rate=stream.bit_rate or container.bit_rate,
        )


def bit_depth(path: Path) -> int | None:
    """Bits per sample of a file soundfile reads (its PCM or float subtype); None for lossy codecs."""
    if not _by_soundfile(path):
        return None
    import soundfile

    with _decoding(path):
        return SUBTYPE_BITS.get(soundfile.info(str(path)).subtype)
