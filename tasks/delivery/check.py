"""Checking a downloaded file: it decodes, in the asked container, and lasts as long as reported."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from textmusic.contract import FORMATS


class AudioCheckError(Exception):
    pass


@dataclass(frozen=True)
class AudioInfo:
    container: str
    codec: str
    sample_rate: int
    channels: int
    duration_seconds: float
    bit_rate: int | None


def probe(path: Path) -> AudioInfo:
    """Decode the whole file (a truncated or corrupt file fails here, not in a listener's player)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            frames = 0
            for frame in container.decode(stream):
                frames += frame.samples
            rate = stream.codec_context.sample_rate
            return AudioInfo(
                container=container.format.name,
                codec=stream.codec_context.name,
                sample_rate=rate,
                channels=stream.codec_context.channels,
                duration_seconds=frames / rate if rate else 0.0,
                bit_rate=stream.bit_rate or container.bit_rate,
            )
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise AudioCheckError(f"{path.name} does not decode: {exc}") from None


def check_audio(path: Path, output_format: str, expected_seconds: float | None, tolerance: float) -> AudioInfo:
    info = probe(path)
    if info.container != FORMATS[output_format].probe_container:
        raise AudioCheckError(f"{path.name} is {info.container}, not {output_format}")
    if info.duration_seconds <= 0:
        raise AudioCheckError(f"{path.name} holds no audio")
    if expected_seconds is not None and abs(info.duration_seconds - expected_seconds) > tolerance:
        raise AudioCheckError(
            f"{path.name} lasts {info.duration_seconds:.2f} s, the provider reported {expected_seconds:.2f} s"
        )
    return info


def intact(out_dir: Path, audio_path: str, sha256: str) -> bool:
    """Whether a catalog file is still the one recorded: present under `out_dir` with the recorded SHA-256 (the
    one check a resumed run, a version delivery and the machinery all make before they trust a file)."""
    path = out_dir / audio_path
    return bool(audio_path) and path.is_file() and sha256_file(path) == sha256


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def decode_samples(path: Path) -> np.ndarray:
    """All decoded samples (interleaved per frame, as the decoder gives them), for sample-exact comparison."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
    return np.concatenate(chunks) if chunks else np.zeros(0)


def same_audio(a: Path, b: Path) -> bool:
    first, second = decode_samples(a), decode_samples(b)
    return first.shape == second.shape and bool(np.array_equal(first, second))
