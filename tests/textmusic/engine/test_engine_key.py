"""The request's `key` (a local extension, from a brief's `key` column) is the key the engine composes in, and
the key the pipeline's own finder hears in the render; a request without it renders as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.delivery.key import measure_key
from textmusic.contract import TextToMusicRequest
from textmusic.engine import Engine

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
