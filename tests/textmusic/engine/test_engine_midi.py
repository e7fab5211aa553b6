"""The `midi` version: the score the audio is rendered from, as a Standard MIDI File read back with mido; its
tempo, bars, notes and lyrics are the render's, its bytes the same for the same request, and asking for it
leaves the audio untouched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

from textmusic.contract import TextToMusicRequest
from textmusic.engine import Engine, RenderResult
from textmusic.engine.arrange import BEATS_PER_BAR
from textmusic.engine.compose import DRUMS, VOCAL, Score
from textmusic.engine.midi import key_signature
from textmusic.server.workers import beside

LYRICS = """[verse]
neon rain is falling down
on the empty streets of town
[chorus]
hold on tonight
"""
REQUESTS = {
    "instrumental": TextToMusicRequest(prompt="deep house groove", lyrics="", seed=5, duration_seconds=24,
                                       versions=["midi"]),
    "sung": TextToMusicRequest(prompt="upbeat synth pop", lyrics=LYRICS, seed=7, bpm=110, duration_seconds=20,
                               versions=["midi"]),
}


@dataclass(frozen=True)
class Rendered:
    request: TextToMusicRequest
    result: RenderResult
    audio: Path
    midi: mido.MidiFile
    data: bytes
    score: Score


@pytest.fixture(scope="module", params=sorted(REQUESTS))
def rendered(request: pytest.FixtureRequest, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    req = REQUESTS[request.param]
    out = tmp_path_factory.mktemp(request.param) / "song.wav"
    result = engine.render(req, out, lambda name: beside(out, name))
    (version,) = result.versions
    assert version.name == "midi" and version.path == out.with_name("song.midi.mid")
    data = version.path.read_bytes()
    return Rendered(req, result, out, mido.MidiFile(version.path, charset="utf-8"), data, engine.compose(req))


def _messages(midi: mido.MidiFile, kind: str) -> list[mido.Message]:
    return [m for track in midi.tracks for m in track if m.type == kind]


def test_tempo_and_length_are_the_renders(rendered: Rendered) -> None:
    midi, result = rendered.midi, rendered.result
    assert midi.type == 1 and midi.ticks_per_beat == 480
    (tempo,) = _messages(midi, "set_tempo")
    assert abs(mido.tempo2bpm(tempo.tempo) - result.bpm) < 0.001
    (signature,) = _messages(midi, "time_signature")
    assert (signature.numerator, signature.denominator) == (BEATS_PER_BAR, 4)
    (key,) = _messages(midi, "key_signature")
    assert key.key == key_signature(rendered.score.tonic, rendered.score.mode)
    bar = 60.0 / result.bpm * BEATS_PER_BAR
    assert abs(midi.length / bar - result.duration_seconds / bar) <= 1.0
    assert abs(midi.length - rendered.score.duration_seconds) < 0.01  # to the end of the final chord's ring
    ticks = [sum(m.time for m in track[:i + 1]) for track in midi.tracks for i, m in enumerate(track)
             if m.type == "note_on"]
    assert max(ticks) == round(rendered.score.end_beat * midi.ticks_per_beat)  # the final chord, on its beat


def test_every_note_of_every_part_is_there_on_its_channel_with_its_program(rendered: Rendered) -> None:
    score, midi = rendered.score, rendered.midi
    names = [track.name for track in midi.tracks[1:]]
    assert names == [c.role for c in score.channels] + (["vocals"] if score.vocal else [])
    programs = {m.channel: m.program for m in _messages(midi, "program_change")}
    assert all(programs[c.channel] == c.program for c in score.channels)
    notes = [m for m in _messages(midi, "note_on") if m.velocity > 0]
    for channel in {e.channel for e in score.events}:  # per part: each note struck once, at its key
        expected = sorted(e.key for e in score.events if e.channel == channel)
        assert sorted(m.note for m in notes if m.channel == channel) == expected, channel
    assert any(m.channel == DRUMS for m in notes) == any(e.channel == DRUMS for e in score.events)
    assert sum(m.channel == VOCAL for m in notes) == len(score.vocal)
    assert len(notes) == len(score.events) + len(score.vocal)


def test_a_sung_song_carries_its_words_as_lyric_events(rendered: Rendered) -> None:
    lyrics = _messages(rendered.midi, "lyrics")
    if rendered.request.is_instrumental:
        assert lyrics == [] and not rendered.score.vocal
        return
    words = " ".join(m.text for m in lyrics).split()
    assert words == " ".join(rendered.score.lines).split()
    assert words == [w for line in LYRICS.splitlines() if not line.startswith("[") for w in line.split()]


def test_the_same_request_gives_the_same_bytes(rendered: Rendered, engine: Engine) -> None:
    assert engine.midi(rendered.request) == rendered.data
    assert engine.midi(rendered.request.model_copy(update={"versions": None})) == rendered.data


def test_asking_for_midi_leaves_the_audio_sample_identical(rendered: Rendered, engine: Engine,
                                                           tmp_path: Path) -> None:
    plain = tmp_path / "plain.wav"
    result = engine.render(rendered.request.model_copy(update={"versions": None}), plain)
    assert result.bpm == rendered.result.bpm and result.duration_seconds == rendered.result.duration_seconds
    assert np.array_equal(soundfile.read(plain, dtype="int16")[0], soundfile.read(rendered.audio, dtype="int16")[0])


@pytest.mark.parametrize(("tonic", "mode", "key"), [
    (0, "major", "C"), (9, "minor", "Am"), (2, "dorian", "Am"), (7, "mixolydian", "C"), (4, "phrygian", "Am"),
    (5, "lydian", "C"), (6, "major", "F#"), (3, "minor", "Ebm"), (7, "minor", "Gm"),
])
def test_a_mode_is_written_with_the_signature_of_its_notes(tonic: int, mode: str, key: str) -> None:
    assert key_signature(tonic, mode) == key
