"""The offline music engine: compose, render with a GM soundfont, encode. Deterministic per seed.

Importing this package stays light: numpy, FluidSynth, soundfile and PyAV load on first use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textmusic.contract import BIT_RATE_FORMATS, TextToMusicRequest
from textmusic.settings import TextMusicSettings, load_settings

if TYPE_CHECKING:
    from textmusic.engine.synth import SynthRenderer

DEFAULT_BIT_RATE = "192"


@dataclass(frozen=True)
class RenderResult:
    duration_seconds: float
    bpm: float
    style: str
    sample_rate: int
    output_format: str
    output_bit_rate: str | None
    key: str = ""
    sections: tuple[str, ...] = ()
    frames: int = 0


class Engine:
    """Long-lived: holds the loaded soundfont so renders after the first start at once."""

    def __init__(self, settings: TextMusicSettings | None = None) -> None:
        self.settings = settings or load_settings()
        self._renderer: SynthRenderer | None = None
        self._lock = threading.Lock()

    @property
    def renderer(self) -> SynthRenderer:
        """The FluidSynth renderer, created (soundfont loaded) on first use."""
        with self._lock:
            if self._renderer is None:
                from textmusic.engine.synth import SynthRenderer

                self._renderer = SynthRenderer(self.settings.soundfont, self.settings.sample_rate)
            return self._renderer

    def render(self, request: TextToMusicRequest, out_path: Path) -> RenderResult:
        """Compose, synthesise and encode one song to `out_path` in the request's format."""
        from textmusic.engine.compose import FADE_SECONDS, compose
        from textmusic.engine.encode import to_pcm16, write_audio

        if request.seed is None:
            raise ValueError("the engine renders only requests with an explicit seed")
        sample_rate = self.settings.sample_rate
        score = compose(request, sample_rate)
        audio = self.renderer.render(score)
        pcm = to_pcm16(audio, FADE_SECONDS, sample_rate)
        fmt = request.output_format
        bit_rate = (request.output_bit_rate or DEFAULT_BIT_RATE) if fmt in BIT_RATE_FORMATS else None
        write_audio(pcm, sample_rate, Path(out_path), fmt, int(bit_rate) if bit_rate else None)
        return RenderResult(
            duration_seconds=len(pcm) / sample_rate,
            bpm=score.bpm,
            style=score.style.name,
            sample_rate=sample_rate,
            output_format=fmt,
            output_bit_rate=bit_rate,
            key=score.key_name,
            sections=tuple(section.name for section in score.sections),
            frames=len(pcm),
        )


__all__ = ["Engine", "RenderResult"]
