"""The request's `key` (a local extension, from a brief's `key` column) is the key the engine composes in, and
the key the pipeline's own finder hears in the render; a request without it renders as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.delivery.key import measure_key
from textmusic.contract import TextToMusicRequest, parse_key
from textmusic.engine import Engine
from textmusic.engine.compose import DRUMS, Score, compose
from textmusic.engine.styles import DRUM_KEYS, PITCHED_DRUMS, TIMPANI_KITS
from textmusic.engine.synth import BEND, BEND_RANGE, NOTE_ON, _messages

SECONDS = 20


@pytest.mark.parametrize(("prompt", "key"), [
    ("catchy summer pop hit", "A"),
    ("emotional cinematic film score", "C#m"),
    ("roots reggae one drop", "Eb"),
    ("sad piano ballad", "Fm"),
])
def test_a_render_is_heard_in_the_key_asked(engine: Engine, tmp_path: Path, prompt: str, key: str) -> None:
    request = TextToMusicRequest(prompt=prompt, lyrics="", seed=21, duration_seconds=SECONDS, key=key)
    engine.render(request, tmp_path / "song.wav")
    assert measure_key(tmp_path / "song.wav")["key_measured"] == key


def test_the_requests_key_wins_over_the_prompts_words_and_its_absence_leaves_them(engine: Engine) -> None:
    asked = TextToMusicRequest(prompt="dark techno in D minor", seed=3, key="A")
    score = engine.compose(asked)
    assert (score.tonic % 12, score.mode) == (9, "major")
    score = engine.compose(asked.model_copy(update={"key": None}))
    assert (score.tonic % 12, score.mode) == (2, "minor")  # the prompt's own "in D minor", as before


def _sounded(score: Score) -> list[tuple[int, int]]:
    """(channel, MIDI note as it sounds: the key plus the pitch wheel at its onset) of every pitched note, replayed
    from the synth's own message order."""
    wheel: dict[int, int] = {}
    notes = []
    for _, kind, channel, value, _ in _messages(score, None):
        if kind == BEND:
            wheel[channel] = value
        elif kind == NOTE_ON and channel != DRUMS:
            notes.append((channel, value + round(wheel.get(channel, 0) * BEND_RANGE / 8192)))
    return notes


def test_a_minor_key_beat_sounds_its_minor_third_and_never_the_major_one() -> None:
    # The 808 glides up into the next note: the wheel's return to rest shares the glide's last sample and used
    # to sort before it (by value), so the next E sounded G#: E minor was heard as E major (engine 2026.12.06.1).
    for prompt, key in (("dark trap beat with 808s", "Em"), ("90s boom bap rap instrumental", "Dm")):
        score = compose(TextToMusicRequest(prompt=prompt, lyrics="", seed=21, duration_seconds=30, key=key))
        tonic, _ = parse_key(key)
        pitch_classes = {(note - tonic) % 12 for _, note in _sounded(score)}
        assert 3 in pitch_classes and 4 not in pitch_classes, (prompt, sorted(pitch_classes))
        assert pitch_classes <= {0, 2, 3, 5, 7, 8, 10}  # natural minor: no glide parks the wheel off the scale


def test_pitched_drums_are_tuned_to_the_key() -> None:
    # An 808's boom and a trailer's bass drum ring at a pitch: tuned onto the tonic or the fifth, and the orchestra
    # kit's timpani play the tonic and the fifth (untuned, the 808 sat on E minor's major third, the timpani on an
    # A in G# minor).
    for prompt, key in (("dark trap beat with 808s", "Em"), ("epic battle trailer with taiko drums", "G#m")):
        score = compose(TextToMusicRequest(prompt=prompt, lyrics="", seed=21, duration_seconds=30, key=key))
        tonic, _ = parse_key(key)
        kit = next(channel for channel in score.channels if channel.channel == DRUMS)
        tuned = dict(kit.tuning)
        assert set(tuned) == set(PITCHED_DRUMS[kit.program])
        for drum, cents in tuned.items():
            assert round(PITCHED_DRUMS[kit.program][drum] + cents / 100 - tonic) % 12 in (0, 7)
        if kit.program in TIMPANI_KITS:  # G#m: the timpani on G#2 and D#3, never the GM toms' A2 and B2
            timpani = {e.key for e in score.events if e.channel == DRUMS}
            assert {44, 51} <= timpani and not {DRUM_KEYS["tom_lo"], DRUM_KEYS["tom_mid"]} & timpani
