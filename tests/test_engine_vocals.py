"""Sung vocals: syllables, pitch tracking against the melody, balance, determinism."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from textmusic.contract import TextToMusicRequest
from textmusic.engine import Engine, Rendered
from textmusic.engine.vocals import syllables_from_alignment

SR = 44100
ROOT = Path(__file__).resolve().parents[1]
LYRICS = """[verse]
walking down the empty road
counting every light
[chorus]
oh we sing tonight
"""


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


@pytest.fixture(scope="module")
def song(engine: Engine) -> Rendered:
    return engine.render_parts(TextToMusicRequest(prompt="upbeat pop", lyrics=LYRICS, seed=2))


def test_syllables_group_onsets_nuclei_and_codas(engine: Engine) -> None:
    # "walking" = w ˈ ɔ ː k ɪ ŋ: two syllables, the stress mark and length mark folded in.
    alignment = [("^", 10), ("w", 5), ("ˈ", 2), ("ɔ", 8), ("ː", 4), ("k", 5), ("ɪ", 6), ("ŋ", 5), ("$", 10)]
    first, second = syllables_from_alignment(alignment)
    assert first.onset == (10, 17) and first.nucleus == (17, 29) and first.coda == (29, 29)
    assert second.onset == (29, 34) and second.nucleus == (34, 40) and second.coda == (40, 45)
    assert engine.singer.count_syllables("walking down the empty road") == 7


def _pitch_agreement(rendered: Rendered) -> float:
    """Share of voiced frames inside sung notes whose pitch is within 50 cents of the note."""
    import pyworld

    score = rendered.score
    mono = rendered.stems["vocal"].mean(axis=1).astype(np.float64)
    f0, times = pyworld.dio(mono, SR, frame_period=10.0, f0_floor=70.0, f0_ceil=800.0)
    f0 = pyworld.stonemask(mono, f0, times, SR)
    seconds = 60.0 / score.bpm
    good = total = 0
    for note in score.vocal:
        inside = (times >= note.beat * seconds + 0.05) & (times < (note.beat + note.duration) * seconds) & (f0 > 0)
        cents = 1200 * np.log2(f0[inside] / (440.0 * 2 ** ((note.key - 69) / 12)))
        good += int((np.abs(cents) < 50).sum())
        total += len(cents)
    assert total > 100  # the vocal is voiced where it should sing
    return good / total


def test_vocal_follows_the_melody(song: Rendered) -> None:
    assert song.score.vocal and "vocal" in song.stems
    assert _pitch_agreement(song) >= 0.75
    vocal = song.stems["vocal"]
    seconds = 60.0 / song.score.bpm
    first = round(song.score.vocal[0].beat * seconds * SR)
    assert np.abs(vocal[: first - SR // 2]).max() < 1e-3  # silent before the first line (intro)


def test_female_voice_sings_higher(engine: Engine) -> None:
    female = engine.compose(TextToMusicRequest(prompt="upbeat pop, female vocal", lyrics=LYRICS, seed=2))
    male = engine.compose(TextToMusicRequest(prompt="upbeat pop, male vocal", lyrics=LYRICS, seed=2))
    assert female.voice == "female" and male.voice == "male"
    assert np.mean([n.key for n in female.vocal]) - np.mean([n.key for n in male.vocal]) >= 9


def test_instrumentals_have_no_vocal(engine: Engine) -> None:
    parts = engine.render_parts(TextToMusicRequest(prompt="upbeat pop", seed=2, duration_seconds=10))
    assert not parts.score.vocal and "vocal" not in parts.stems


def test_balance_strength_raises_the_vocal(engine: Engine, song: Rendered) -> None:
    quiet = engine.render_parts(TextToMusicRequest(prompt="upbeat pop", lyrics=LYRICS, seed=2, balance_strength=0.0))

    def ratio(parts: Rendered) -> float:
        backing = sum(v for k, v in parts.stems.items() if k != "vocal")
        return float(np.sqrt(np.mean(parts.stems["vocal"] ** 2)) / np.sqrt(np.mean(backing**2)))

    assert 20 * np.log10(ratio(song) / ratio(quiet)) == pytest.approx(0.7 * 8.0, abs=1.0)


def test_songs_are_identical_in_a_fresh_process(engine: Engine, song: Rendered) -> None:
    request = TextToMusicRequest(prompt="upbeat pop", lyrics=LYRICS, seed=2)
    assert song.master is not None
    digest = hashlib.sha256(song.master.tobytes()).hexdigest()
    again = engine.render_parts(request)
    assert again.master is not None and hashlib.sha256(again.master.tobytes()).hexdigest() == digest
    script = textwrap.dedent(f"""
        import hashlib
        from textmusic.contract import TextToMusicRequest
        from textmusic.engine import Engine
        req = TextToMusicRequest.model_validate_json({request.model_dump_json()!r})
        print(hashlib.sha256(Engine().render_parts(req).master.tobytes()).hexdigest())
    """)
    out = subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, timeout=300, capture_output=True,
                         text=True)
    assert out.stdout.strip() == digest
