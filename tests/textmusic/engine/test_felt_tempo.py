"""Fast styles felt at their tempo (issue 21, engine 2026.12.06.3): every beat of a fast groove carries the
same weight (kick and guitar on each beat), so a listener counts 180, not 90 (benchmarks/felt_tempo.py)."""

from __future__ import annotations

import pytest

from textmusic.contract import TextToMusicRequest
from textmusic.engine.compose import BASS, CHORDS, DRUMS, compose
from textmusic.engine.styles import DRUM_KEYS


def groove_bars(score) -> list[int]:  # noqa: ANN001
    """The bars of full-energy sections, each section's last bar (a fill) left out."""
    return [bar for s in score.sections if s.energy >= 0.6 for bar in range(s.start_bar, s.start_bar + s.bars - 1)]


def onsets(score, channel: int, key: int | None = None) -> dict[float, int]:  # noqa: ANN001
    return {e.beat: e.velocity for e in score.events
            if e.channel == channel and (key is None or e.key == key)}


@pytest.mark.parametrize(("prompt", "bpm"), [("fast punk rock", 180), ("fast thrash metal with double kick", 170)])
def test_a_fast_rock_groove_has_kick_and_guitar_accents_on_every_beat(prompt: str, bpm: int) -> None:
    score = compose(TextToMusicRequest(prompt=prompt, seed=1, bpm=bpm, duration_seconds=30))
    kicks, guitar = onsets(score, DRUMS, DRUM_KEYS["kick"]), onsets(score, CHORDS)
    beats = [4.0 * bar + beat for bar in groove_bars(score) for beat in range(4)]
    assert len(beats) >= 40
    assert all(beat in kicks for beat in beats)
    assert all(any(abs(b - beat) < 0.02 for b in guitar) for beat in beats)
    accents = [b for b, v in guitar.items() if v >= 92 and int(b // 4) in set(groove_bars(score))]
    assert accents and all(abs(b - round(b)) < 0.02 for b in accents)  # no syncopated accent halves the pulse


def test_punk_snare_never_outweighs_the_kick() -> None:
    """The backbeat no longer halves the tempo: no snare hit is louder than the kicks on the beats."""
    score = compose(TextToMusicRequest(prompt="fast punk rock", seed=2, bpm=180, duration_seconds=30))
    bars = set(groove_bars(score))
    snares = [v for b, v in onsets(score, DRUMS, DRUM_KEYS["snare"]).items() if int(b // 4) in bars]
    kicks = [v for b, v in onsets(score, DRUMS, DRUM_KEYS["kick"]).items() if int(b // 4) in bars and b == int(b)]
    assert snares and max(snares) < min(kicks)


def test_drum_and_bass_bass_follows_the_kick_and_the_hats_mark_the_beat() -> None:
    score = compose(TextToMusicRequest(prompt="liquid drum and bass", seed=1, bpm=174, duration_seconds=30))
    bars = set(groove_bars(score))
    kicks = onsets(score, DRUMS, DRUM_KEYS["kick"])
    bass = [b for b in onsets(score, BASS) if int(b // 4) in bars]
    assert bass and all(b in kicks for b in bass)  # no dotted bass line against the two-step
    hats = {b: v for b, v in onsets(score, DRUMS, DRUM_KEYS["chat"]).items() if int(b // 4) in bars}
    on_beat = [v for b, v in hats.items() if b == int(b)]
    off_beat = [v for b, v in hats.items() if b != int(b)]
    assert min(on_beat) > max(off_beat)
