"""The offline music engine: compose, render with a GM soundfont, encode. Deterministic per seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textmusic.contract import TextToMusicRequest


@dataclass(frozen=True)
class RenderResult:
    duration_seconds: float
    bpm: float
    style: str
    sample_rate: int
    output_format: str
    output_bit_rate: str | None


class Engine:
    """Long-lived: holds the loaded soundfont so renders after the first start at once."""

    def render(self, request: TextToMusicRequest, out_path: Path) -> RenderResult:
        raise NotImplementedError
