"""The offline engine: text → style intent, composition, GM rendering, sung vocals, mix and master.

Importing this package stays light: numpy, FluidSynth, pedalboard, the embedding model and the voice
load on first use and then stay loaded for the life of the Engine (the server keeps one per worker).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textmusic.contract import FORMATS, MAX_MIDI_BYTES, MIDI_VERSION, TextToMusicRequest
from textmusic.settings import TextMusicSettings, load_settings

if TYPE_CHECKING:
    import numpy as np

    from textmusic.embed import MiniLM
    from textmusic.engine.arrange import Form
    from textmusic.engine.compose import Score, SyllableCounter
    from textmusic.engine.intent import Intent
    from textmusic.engine.master import Mixdown
    from textmusic.engine.synth import SynthRenderer
    from textmusic.engine.versions import Version
    from textmusic.engine.vocals import Singer

# Bumped by any change that alters the samples rendered for a given request (styles, composition,
# synthesis, vocals, mix, master, encoders): a re-render is sample-identical only within one version.
ENGINE_VERSION = "2026.12.06.3"
# Mix buses: MIDI channels rendered together (see compose.CHORDS, BASS, LEAD, PAD, DRUMS).
BUSES: dict[str, tuple[int, ...]] = {"drums": (9,), "bass": (1,), "harmony": (0, 3), "lead": (2,)}


@dataclass(frozen=True)
class VersionFile:
    """One library version encoded beside a song (see `Engine.render`)."""

    name: str  # 60s, 30s, 15s, loop8, stem:drums …, underscore, nodrums
    path: Path
    duration_seconds: float


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
    loudness_lufs: float = 0.0
    true_peak_dbtp: float = 0.0
    has_vocals: bool = False
    engine_version: str = ENGINE_VERSION
    versions: tuple[VersionFile, ...] = ()  # the versions besides the song itself, when asked for


@dataclass
class Rendered:
    """Everything one render produced before encoding: the score, each stem and the mastered mix."""

    score: Score
    stems: dict[str, np.ndarray] = field(default_factory=dict)
    master: np.ndarray | None = None
    loudness_lufs: float = float("nan")  # measured on `master`
    true_peak_dbtp: float = float("nan")
    parts: dict[str, np.ndarray] = field(default_factory=dict)  # each bus's mastered share of `master`
    open_parts: dict[str, np.ndarray] = field(default_factory=dict)  # shares without the vocal pocket (Mixdown)


def _warm_imports() -> None:
    """Import the mastering stack (scipy.signal alone takes ~0.9 s) off the critical path."""
    import pedalboard  # noqa: F401
    import pyloudnorm  # noqa: F401
    import scipy.signal  # noqa: F401


class Engine:
    """Long-lived: holds the soundfont, the embedding model and the voice so later renders start at once."""

    def __init__(self, settings: TextMusicSettings | None = None) -> None:
        self.settings = settings or load_settings()
        self._renderer: SynthRenderer | None = None
        self._model: tuple[MiniLM, Any] | None = None
        self._singer: Singer | None = None
        self._lock = threading.RLock()

    @property
    def renderer(self) -> SynthRenderer:
        """The FluidSynth renderer, created (soundfont loaded) on first use."""
        with self._lock:
            if self._renderer is None:
                from textmusic.engine.synth import SynthRenderer

                self._renderer = SynthRenderer(self.settings.soundfont, self.settings.sample_rate)
            return self._renderer

    @property
    def model(self) -> tuple[MiniLM, Any]:
        """The embedding model and the style embedding matrix, loaded on first use."""
        with self._lock:
            if self._model is None:
                from textmusic.embed import MiniLM
                from textmusic.engine.intent import load_style_matrix

                model = MiniLM()
                self._model = (model, load_style_matrix(model.embed))
            return self._model

    @property
    def singer(self) -> Singer:
        with self._lock:
            if self._singer is None:
                from textmusic.engine.vocals import Singer

                self._singer = Singer(self.settings.sample_rate)
            return self._singer

    def warm(self) -> None:
        """Load the soundfont, the embedding model and the voice now (a long-lived worker's start-up:
        0.3 s, 0.1 s and 0.9 s here), so no track pays for them."""
        self.renderer  # noqa: B018 - the properties load on first use
        if self.settings.engine_embeddings:
            self.model  # noqa: B018
        if self.settings.engine_vocals:
            self.singer  # noqa: B018

    def intent(self, request: TextToMusicRequest) -> Intent:
        from textmusic.engine.intent import resolve_intent

        if not self.settings.engine_embeddings:
            return resolve_intent(request)
        model, matrix = self.model
        return resolve_intent(request, model.embed, matrix)

    def compose(self, request: TextToMusicRequest, form: Form | None = None) -> Score:
        from textmusic.engine.compose import FULL, compose

        return compose(request, self.settings.sample_rate, self.intent(request), self.syllable_counter(request),
                       form or FULL)

    def syllable_counter(self, request: TextToMusicRequest) -> SyllableCounter | None:
        """How the composition counts a lyric line's sung syllables: the singer's count when it sings, else
        compose's spelling-based count (None)."""
        sings = not request.is_instrumental and self.settings.engine_vocals
        return self.singer.count_syllables if sings else None

    def midi(self, request: TextToMusicRequest, score: Score | None = None) -> bytes:
        """The song's composition as a Standard MIDI File (`engine.midi`): the very Score its audio is
        rendered from (`score`, when the caller composed it already), so tempo, bars and notes match."""
        from textmusic.engine.midi import score_midi

        data = score_midi(score or self.compose(request), self.syllable_counter(request))
        if len(data) > MAX_MIDI_BYTES:  # no song's score comes near: a file this big is a fault, not a score
            raise ValueError(f"the MIDI file would be {len(data)} bytes (more than {MAX_MIDI_BYTES})")
        return data

    def render_parts(self, request: TextToMusicRequest, ceiling_dbtp: float | None = None,
                     keep_stems: bool = True, form: Form | None = None, separate: bool = False) -> Rendered:
        """Compose one version (`form`: the full song by default), render the stems, sing, mix and master
        (no encoding); without `keep_stems` the stems are let go before mastering (a 3-minute render
        then peaks ~0.5 GB lower); with `separate` each bus's mastered share of the mix is kept too.

        Buses render on two threads (each on its own synth; FluidSynth and pedalboard release the GIL)
        and each bus's effects start as soon as it is rendered; no result depends on the scheduling.
        A loop's stems are wrapped (the tail past its end added onto its start) and mixed and mastered
        three times over, keeping the middle pass: every compressor, the reverb and the limiter then
        see the loop's own end before its start, as when it is played round.
        """
        import numpy as np

        if request.seed is None:
            raise ValueError("the engine renders only requests with an explicit seed")
        score = self.compose(request, form)
        stems, mixdown = self._mixdown(score, request, separate)
        if not keep_stems:
            stems = {name: np.zeros((0, 2), np.float32) for name in stems}
        return self._mastered(score, stems, mixdown, ceiling_dbtp)

    def _mixdown(self, score: Score, request: TextToMusicRequest,
                 separate: bool) -> tuple[dict[str, np.ndarray], Mixdown]:
        """The stems (a loop's wrapped and played three times) and their mix. Buses render on two threads
        and each bus's effects start as soon as it is rendered; the processed buses are let go on return."""
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np

        from textmusic.engine.master import bus_chain, mix_stems
        from textmusic.engine.versions import LOOP_PASSES, wrap

        sample_rate = self.settings.sample_rate
        mix = score.style.mix
        period = score.loop_frames

        def prepare(audio: np.ndarray) -> np.ndarray:
            return np.tile(wrap(audio, period), (LOOP_PASSES, 1)) if period else audio

        stems: dict[str, np.ndarray] = {}
        with ThreadPoolExecutor(2) as pool:
            warm = pool.submit(_warm_imports)  # ~1 s of imports while FluidSynth (GIL released) renders
            rendered = {bus: pool.submit(self.renderer.render, score, channels) for bus, channels in BUSES.items()}
            chains = {}
            for bus, future in rendered.items():
                stems[bus] = prepare(future.result())
                chains[bus] = pool.submit(bus_chain, bus, stems[bus], mix, sample_rate)
            warm.result()
            if score.vocal and self.settings.engine_vocals:
                from textmusic.engine.vocals import balance_vocal

                balance = float(request.balance_strength)
                stems["vocal"] = balance_vocal(self.singer.sing(score, balance), sum(stems.values()), balance)
            processed = {bus: future.result() for bus, future in chains.items()}
        return stems, mix_stems(stems, mix, sample_rate, processed, separate)

    def _mastered(self, score: Score, stems: dict[str, np.ndarray], mixdown: Mixdown,
                  ceiling_dbtp: float | None) -> Rendered:
        """The mix with its composed ending, mastered to the ceiling, each bus's share scaled by the same
        gain; of a loop, only the middle pass, measured again (the master measured all three)."""
        from textmusic.audio.loudness import integrated_loudness
        from textmusic.audio.peaks import true_peak_dbtp
        from textmusic.engine.master import LOSSLESS_CEILING_DBTP, master
        from textmusic.engine.versions import ending_curve

        sample_rate = self.settings.sample_rate
        period = score.loop_frames
        curve = ending_curve(score, len(mixdown.mix))
        mixed = mixdown.mix
        mixed *= curve[:, None]
        ceiling = LOSSLESS_CEILING_DBTP if ceiling_dbtp is None else ceiling_dbtp
        mastered = master(mixed, sample_rate, ceiling)
        del mixed
        gain = mastered.gain * curve
        window = slice(period, 2 * period) if period else slice(None)
        parts = {bus: (share * gain[:, None])[window] for bus, share in mixdown.parts.items()}
        opened = {bus: (share * gain[:, None])[window] for bus, share in mixdown.open_parts.items()}
        if not period:
            return Rendered(score, stems, mastered.audio, mastered.loudness_lufs, mastered.true_peak_dbtp, parts,
                            opened)
        loop = mastered.audio[window]  # measured again: the master measured all three passes
        stems = {bus: audio[window] for bus, audio in stems.items()}
        return Rendered(score, stems, loop, integrated_loudness(loop, sample_rate), true_peak_dbtp(loop), parts)

    def render_versions(self, request: TextToMusicRequest, kinds: Iterable[str],
                        ceiling_dbtp: float | None = None) -> dict[str, Version]:
        """Every version `kinds` asks for (see `contract.VERSION_KINDS`), mastered, by name: full, 60s,
        30s, 15s, loop8, stem:drums …, underscore, nodrums."""
        from textmusic.engine.versions import render_versions

        return render_versions(self, request, kinds, ceiling_dbtp)

    def render(self, request: TextToMusicRequest, out_path: Path,
               version_path: Callable[[str], Path] | None = None) -> RenderResult:
        """Compose, synthesise, master and encode one song to `out_path` in the request's format.

        With `version_path`, the versions the request asks for (`request.versions`) are encoded the same
        way, each to `version_path(name)`; the song itself is then the full version, sample-identical to
        a render without versions (the full mix never depends on the versions asked).
        """
        from textmusic.engine.master import LOSSLESS_CEILING_DBTP, LOSSY_CEILING_DBTP

        ceiling = LOSSLESS_CEILING_DBTP if FORMATS[request.output_format].lossless else LOSSY_CEILING_DBTP
        if version_path is not None and request.versions:
            return self._render_with_versions(request, out_path, version_path, ceiling)
        parts = self.render_parts(request, ceiling, keep_stems=False)
        assert parts.master is not None
        frames, bit_rate = self._encode(parts.master, request, out_path)
        return self._result(request, parts.score, frames, bit_rate, parts.loudness_lufs, parts.true_peak_dbtp,
                            has_vocals="vocal" in parts.stems)

    def _render_with_versions(self, request: TextToMusicRequest, out_path: Path,
                              version_path: Callable[[str], Path], ceiling: float) -> RenderResult:
        from textmusic.audio.loudness import integrated_loudness
        from textmusic.audio.peaks import true_peak_dbtp

        assert request.versions is not None
        versions = self.render_versions(request, request.versions, ceiling)
        full = versions.pop("full").audio
        frames, bit_rate = self._encode(full, request, out_path)
        files = []
        for name, version in versions.items():
            path = version_path(name)
            files.append(VersionFile(name, path, self._encode(version.audio, request, path)[0] / version.sample_rate))
        del versions
        score = self.compose(request)  # render_versions hands back audio only; the metadata is the score's
        if MIDI_VERSION in request.versions:
            path = version_path(MIDI_VERSION)
            path.write_bytes(self.midi(request, score))
            files.append(VersionFile(MIDI_VERSION, path, score.duration_seconds))
        sample_rate = self.settings.sample_rate
        result = self._result(request, score, frames, bit_rate, integrated_loudness(full, sample_rate),
                              true_peak_dbtp(full), has_vocals=bool(score.vocal) and self.settings.engine_vocals)
        return replace(result, versions=tuple(files))

    def _encode(self, audio: np.ndarray, request: TextToMusicRequest, out_path: Path) -> tuple[int, str | None]:
        """Mastered float audio to `out_path` as every render writes it (16-bit PCM into the request's format
        and bit rate); returns the frames written and the bit rate used."""
        from textmusic.audio.write import write_audio
        from textmusic.engine.master import to_pcm16

        pcm = to_pcm16(audio)
        bit_rate = FORMATS[request.output_format].bit_rate_for(request.output_bit_rate)
        write_audio(pcm, self.settings.sample_rate, Path(out_path), request.output_format,
                    int(bit_rate) if bit_rate else None)
        return len(pcm), bit_rate

    def _result(self, request: TextToMusicRequest, score: Score, frames: int, bit_rate: str | None,
                loudness_lufs: float, true_peak: float, has_vocals: bool) -> RenderResult:
        sample_rate = self.settings.sample_rate
        return RenderResult(
            duration_seconds=frames / sample_rate,
            bpm=score.bpm,
            style=score.style.name,
            sample_rate=sample_rate,
            output_format=request.output_format,
            output_bit_rate=bit_rate,
            key=score.key_name,
            sections=tuple(section.name for section in score.sections),
            frames=frames,
            loudness_lufs=loudness_lufs,
            true_peak_dbtp=true_peak,
            has_vocals=has_vocals,
        )


__all__ = ["BUSES", "ENGINE_VERSION", "Engine", "RenderResult", "Rendered", "VersionFile"]
