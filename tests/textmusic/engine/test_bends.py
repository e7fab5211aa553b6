"""Pitch bends (engine 2026.12.06.1): the slides, string bends, vibrato and 808 glides that GM presets cannot
play by themselves are pitch-wheel moves of the Score, sent to FluidSynth with a 12-semitone wheel range."""

from __future__ import annotations

import dataclasses

import numpy as np

from textmusic.contract import TextToMusicRequest
from textmusic.engine import Engine
from textmusic.engine.compose import BASS, LEAD, Bend, NoteEvent, compose
from textmusic.engine.synth import BEND, BEND_RANGE, NOTE_OFF, NOTE_ON, _messages

SR = 44100


def request(prompt: str, seed: int = 3, duration: float = 30.0) -> TextToMusicRequest:
    return TextToMusicRequest(prompt=prompt, seed=seed, duration_seconds=duration)


def test_a_bend_comes_before_the_note_it_bends_and_scales_to_the_wheel_range() -> None:
    score = compose(request("upbeat pop"), SR)
    note = NoteEvent(1.0, 1.0, LEAD, 69, 100, "lead")
    bent = dataclasses.replace(score, events=(note,), bends=(Bend(1.0, LEAD, -2.0), Bend(1.5, LEAD, 0.0)))
    messages = _messages(bent, None)
    at_onset = [m for m in messages if m[0] == bent.onset_sample(note)]
    assert [m[1] for m in at_onset] == [BEND, NOTE_ON]  # the note starts at the bent pitch
    assert at_onset[0][3] == round(-2.0 / BEND_RANGE * 8192)
    assert [m[1] for m in messages] == [BEND, NOTE_ON, BEND, NOTE_OFF]


def test_the_wheel_moves_the_rendered_pitch(engine: Engine) -> None:
    score = compose(request("upbeat pop"), SR)
    channels = tuple(dataclasses.replace(c, program=80) for c in score.channels if c.channel == LEAD)  # square lead
    note = NoteEvent(0.0, 4.0, LEAD, 57, 110, "lead")  # A3, 220 Hz
    plain = dataclasses.replace(score, events=(note,), bends=(), channels=channels, total_frames=SR * 2)

    def peak_hz(s: object) -> float:
        audio = engine.renderer.render(s, (LEAD,)).mean(axis=1)[SR // 2: SR + SR // 2]
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
        return float(np.fft.rfftfreq(len(audio), 1 / SR)[np.argmax(spectrum)])

    assert abs(peak_hz(plain) - 220.0) < 5.0
    assert abs(peak_hz(dataclasses.replace(plain, bends=(Bend(0.0, LEAD, 12.0),))) - 440.0) < 10.0  # an octave


def test_genre_bends_return_the_wheel_to_rest() -> None:
    trap = compose(request("menacing trap banger with deep 808 bass"), SR)
    glides = [b for b in trap.bends if b.channel == BASS]
    assert glides and max(abs(b.semitones) for b in glides) <= BEND_RANGE  # the 808 slides into the next note
    blues = compose(request("delta blues shuffle with harmonica", duration=60.0), SR)
    lead = [b for b in blues.bends if b.channel == LEAD]
    assert min(b.semitones for b in lead) <= -1.0 and lead[-1].semitones == 0.0  # bends up, vibrato, at rest
    assert [b.beat for b in blues.bends] == sorted(b.beat for b in blues.bends)
