"""Synthetic audio: a valid file of the requested format and length, made in milliseconds without the engine.

For testing and benchmarking the pipeline at scale (`textmusic serve --synthetic-audio`): no soundfont,
no embedding model, no voice is loaded, so a worker starts at once and a track costs a few milliseconds
of CPU. The audio is a click track at 44100 Hz stereo over a held tone: one short blip per beat at the request's
BPM (120 when "auto"), on a tone whose pitch depends on the seed (the downbeat of each bar an octave
up). Its length is the request's `duration_seconds`, or DEFAULT_SECONDS when absent. It goes through the
encoders every render uses (textmusic/audio/write.py), so every format, bit rate and container is the one a
real render produces, and the track is settled exactly like one (same duration, bpm, price); only its
`engine_version` says "synthetic-1".

Versions (the local extension) are click tracks too, of the lengths the engine's would have: a cut-down
its seconds, a loop its bars at the track's BPM (to the sample), each stem (drums, bass, harmony, lead,
vocals when there are lyrics) and the alt mixes the full length; a stem clicks on its own tone. The `midi`
version is the click track as a Standard MIDI File (one rim-shot per beat on the drum channel, the tempo
set), the full length.

m4a only: FFmpeg's AAC encoder spends bits on content, not on the rate it is given, so a bare click
track would come out at ~25 kbps whatever was asked; a hiss at -40 dBFS under the clicks makes the file
reach the requested bit rate, as music does (LAME's mp3 is constant bit rate anyway).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import mido
import numpy as np

from textmusic.audio.write import write_audio
from textmusic.contract import (
    CUT_SECONDS,
    FORMATS,
    LOOP_BARS,
    MIDI_VERSION,
    STEM_PARTS,
    TextToMusicRequest,
    stem_name,
    version_name,
)
from textmusic.engine import RenderResult, VersionFile

SYNTHETIC_VERSION = "synthetic-1"
SAMPLE_RATE = 44100
DEFAULT_SECONDS = 10.0  # when the request names no duration_seconds
DEFAULT_BPM = 120.0  # when the request's bpm is "auto"
BEATS_PER_BAR = 4
BLIP_SECONDS = 0.04
LEVEL = 0.2  # peak of a blip, about -14 dBFS
# Under the blips a steady tone (the seed's, with short fades) brings the track to about -14 LUFS, -8 dBTP:
# at the streaming spec like an engine master, so the pipeline's delivery QC keeps it as it comes.
DRONE_LEVEL = 0.214
DRONE_TILT_DB = 0.02  # per semitone of the seed's tone: BS.1770's K-weighting rises with frequency
DRONE_FADE_SECONDS = 0.01
_LOWEST_HZ = 220.0  # A3; the seed picks one of 24 semitones up from it
HISS_DBFS = -40.0
_HISS_FRAMES = 1 << 16  # one block of seeded noise, repeated: generating it per track would cost more
_hiss_block: np.ndarray | None = None
CLICK_KEY = 37  # GM side stick, on the drum channel (index 9)
TICKS_PER_BEAT = 480


def click_midi(seconds: float, bpm: float) -> bytes:
    """The click track as a type-1 MIDI file: a conductor track (tempo, 4/4) and one note per beat, so the
    pipeline's MIDI delivery is exercised without composing (the engine's `midi` is the real score)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)),
                                       mido.MetaMessage("time_signature", numerator=BEATS_PER_BAR, denominator=4)]))
    clicks = mido.MidiTrack([mido.MetaMessage("track_name", name="click")])
    for beat in range(max(1, int(seconds * bpm / 60.0))):
        velocity = 110 if beat % BEATS_PER_BAR == 0 else 80
        clicks.append(mido.Message("note_on", channel=9, note=CLICK_KEY, velocity=velocity, time=0))
        clicks.append(mido.Message("note_off", channel=9, note=CLICK_KEY, velocity=0, time=TICKS_PER_BEAT))
    midi.tracks.append(clicks)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def tone_hz(seed: int) -> float:
    return _LOWEST_HZ * 2.0 ** ((seed % 24) / 12.0)


def _blip(frequency: float) -> np.ndarray:
    n = int(BLIP_SECONDS * SAMPLE_RATE)
    t = np.arange(n, dtype=np.float32) / SAMPLE_RATE
    envelope = np.exp(-t * (6.0 / BLIP_SECONDS)).astype(np.float32)
    envelope[: 44] *= np.linspace(0.0, 1.0, 44, dtype=np.float32)  # a 1 ms attack: no click from a step
    return (LEVEL * 32767.0 * envelope * np.sin(2.0 * np.pi * frequency * t)).astype(np.int16)


def click_track(seconds: float, bpm: float, seed: int) -> np.ndarray:
    """int16 stereo (frames, 2): a blip on every beat, the downbeat an octave above the seed's tone, over the
    seed's tone held throughout."""
    frames = round(seconds * SAMPLE_RATE)
    mono = np.zeros(frames, dtype=np.int16)
    beat = SAMPLE_RATE * 60.0 / bpm
    blips = (_blip(tone_hz(seed)), _blip(2.0 * tone_hz(seed)))
    starts = np.round(np.arange(0.0, frames, beat)).astype(np.int64)
    for i, start in enumerate(starts):
        blip = blips[1] if i % BEATS_PER_BAR == 0 else blips[0]
        end = min(frames, start + len(blip))
        mono[start:end] = blip[: end - start]
    t = np.arange(frames, dtype=np.float64) / SAMPLE_RATE
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / DRONE_FADE_SECONDS)
    level = DRONE_LEVEL * 10.0 ** (-DRONE_TILT_DB * (seed % 24 - 12) / 20.0)
    drone = level * 32767.0 * fade * np.sin(2.0 * np.pi * tone_hz(seed) * t)
    return np.repeat((mono + drone).astype(np.int16)[:, None], 2, axis=1)


def with_hiss(pcm: np.ndarray) -> np.ndarray:
    """`pcm` with a quiet noise floor added (for the AAC encoder, see the module's doc)."""
    global _hiss_block
    if _hiss_block is None:
        amplitude = 32767.0 * 10.0 ** (HISS_DBFS / 20.0)
        noise = np.random.default_rng(0).standard_normal((_HISS_FRAMES, 2)) * amplitude
        _hiss_block = noise.astype(np.int32)
    reps = -(-len(pcm) // _HISS_FRAMES)
    hiss = np.tile(_hiss_block, (reps, 1))[: len(pcm)]
    return np.clip(pcm.astype(np.int32) + hiss, -32768, 32767).astype(np.int16)


def version_tracks(request: TextToMusicRequest, seconds: float, bpm: float) -> dict[str, np.ndarray]:
    """The click track of each version the request asks for besides the full one, by version name."""
    seed = request.seed or 0
    out: dict[str, np.ndarray] = {}
    for kind in request.versions or ():
        if kind in CUT_SECONDS:
            out[version_name(kind)] = click_track(CUT_SECONDS[kind], bpm, seed)
        elif kind in LOOP_BARS:
            out[version_name(kind)] = click_track(LOOP_BARS[kind] * BEATS_PER_BAR * 60.0 / bpm, bpm, seed)
        elif kind == "stems":
            parts = STEM_PARTS if not request.is_instrumental else tuple(p for p in STEM_PARTS if p != "vocals")
            for i, part in enumerate(parts, start=1):
                out[stem_name(part)] = click_track(seconds, bpm, seed + i)
        elif kind not in ("full", MIDI_VERSION):
            out[version_name(kind)] = click_track(seconds, bpm, seed)
    return out


class SyntheticEngine:
    """Stands in for textmusic.engine.Engine in the service's workers (same `render` signature)."""

    def warm(self) -> None:
        """Import the one encoder library every format but mp3/m4a needs, so the first track is quick."""
        import soundfile  # noqa: F401

    def render(self, request: TextToMusicRequest, out_path: Path,
               version_path: Callable[[str], Path] | None = None) -> RenderResult:
        seconds = float(request.duration_seconds) if request.duration_seconds is not None else DEFAULT_SECONDS
        bpm = DEFAULT_BPM if request.bpm == "auto" else float(request.bpm)
        fmt = request.output_format
        bit_rate = FORMATS[fmt].bit_rate_for(request.output_bit_rate)
        pcm = click_track(seconds, bpm, request.seed or 0)
        _write(pcm, out_path, fmt, bit_rate)
        files = []
        if version_path is not None:
            for name, audio in version_tracks(request, seconds, bpm).items():
                path = version_path(name)
                _write(audio, path, fmt, bit_rate)
                files.append(VersionFile(name, path, len(audio) / SAMPLE_RATE))
            if MIDI_VERSION in (request.versions or ()):
                path = version_path(MIDI_VERSION)
                path.write_bytes(click_midi(seconds, bpm))
                files.append(VersionFile(MIDI_VERSION, path, seconds))
        return RenderResult(
            duration_seconds=len(pcm) / SAMPLE_RATE,
            bpm=bpm,
            style="synthetic",
            sample_rate=SAMPLE_RATE,
            output_format=fmt,
            output_bit_rate=bit_rate,
            frames=len(pcm),
            engine_version=SYNTHETIC_VERSION,
            versions=tuple(files),
        )


def _write(pcm: np.ndarray, path: Path, fmt: str, bit_rate: str | None) -> None:
    """Through the engine's own encoders; m4a over a hiss (see the module's doc)."""
    if FORMATS[fmt].codec == "aac":
        pcm = with_hiss(pcm)
    write_audio(pcm, SAMPLE_RATE, Path(path), fmt, int(bit_rate) if bit_rate else None)


__all__ = ["DEFAULT_SECONDS", "SYNTHETIC_VERSION", "SyntheticEngine", "click_midi", "click_track", "tone_hz",
           "version_tracks", "with_hiss"]
