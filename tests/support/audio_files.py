"""Small real audio files of each format for tests that need a file but not the engine."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from textmusic.contract import TextToMusicRequest
from textmusic.engine.compose import FULL, Score, compose
from textmusic.engine.intent import resolve_intent
from textmusic.engine.synth import PROGRAM_FONTS, SynthRenderer

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


SR = 44100


DRUMS, LEAD = 9, 2  # compose's channels: a kit plays on the drum channel, a melodic route takes the lead line


def score_with(bank: int, program: int, prompt: str = "jazz trio", seed: int = 11) -> Score:
    """A 10 s song with one part switched to (bank, program); the other parts keep their FluidR3 presets."""
    request = TextToMusicRequest(prompt=prompt, seed=seed, duration_seconds=10)
    score = compose(request, SR, resolve_intent(request), None, FULL)
    part = DRUMS if bank == 128 else LEAD
    channels = tuple(dataclasses.replace(c, bank=bank, program=program) if c.channel == part else c
                     for c in score.channels)
    assert part in {c.channel for c in channels}
    return dataclasses.replace(score, channels=channels)


def fingerprints(renderer: SynthRenderer) -> dict[str, str]:
    """A hash of the full mix of one song per routed preset (both fonts play in each render)."""
    return {f"{bank}:{program}": hashlib.sha1(renderer.render(score_with(bank, program)).tobytes()).hexdigest()
            for bank, program in sorted(PROGRAM_FONTS)}
