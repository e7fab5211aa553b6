"""Checking a downloaded file: it decodes (through the audio core's reader), in the asked container, and lasts as
long as reported."""

from __future__ import annotations

from pathlib import Path

from textmusic.audio import read
from textmusic.audio.identity import sha256_file
from textmusic.audio.read import AudioInfo
from textmusic.contract import FORMATS


class AudioCheckError(Exception):
    pass


def probe(path: Path) -> AudioInfo:
    """Decode the whole file (a truncated or corrupt file fails here, not in a listener's player)."""
    try:
        return read.probe(path)
    except read.UnreadableAudio as exc:
        raise AudioCheckError(str(exc)) from None


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
