"""Text → style (MiniLM embeddings, explicit words, prompt_strength), the style library, mix and master."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.support.scores import events_for
from textmusic.contract import TextToMusicRequest
from textmusic.embed import MiniLM, model_dir
from textmusic.engine import BUSES, Engine
from textmusic.engine.compose import compose
from textmusic.engine.intent import (
    blend,
    explicit_instruments,
    explicit_key,
    load_style_matrix,
    resolve_intent,
)
from textmusic.engine.styles import STYLES, STYLES_BY_NAME

SR = 44100
# One prompt per style, none naming the style's own keywords outright where avoidable.
PROMPTS = {
    "lofi-hip-hop": "mellow beats to study to on a rainy night", "boom-bap": "90s rap instrumental",
    "trap": "dark beat with booming 808s and hi-hat rolls", "house": "four on the floor club groove",
    "techno": "hypnotic warehouse rave", "drum-and-bass": "fast rolling breakbeats at 174",
    "synthwave": "neon night drive in 1985", "chiptune": "retro video game level music",
    "ambient": "floating drone soundscape", "meditation": "calm yoga music for sleep",
    "cinematic-orchestral": "emotional film score", "epic-trailer": "massive battle trailer with taiko",
    "classical-strings": "elegant string quartet", "piano-ballad": "sad tender piano song",
    "acoustic-folk": "campfire singer songwriter", "indie-rock": "jangly alternative band",
    "rock": "heavy distorted riffs", "punk": "fast loud rebellious three chords",
    "pop": "catchy radio hit for the summer", "corporate-upbeat": "motivational business presentation",
    "funk": "slap bass and brass stabs", "rnb-soul": "smooth late night neo soul",
    "jazz": "walking upright bass and ride cymbal", "blues": "twelve bar shuffle with harmonica",
    "reggae": "island one drop with offbeat skank", "latin": "bossa nova with congas",
    "metal": "palm muted chugs and double kick drums", "country": "twangy honky tonk with a fiddle",
    "disco": "mirror ball dance floor with strings", "gospel": "church choir singing praise",
    "bright-pop": "sparkling anime opening theme", "afrobeat": "lagos party groove with shekere",
    "hybrid-trailer": "pulsing braams and string ostinato for an action trailer",
    "big-room-edm": "festival mainstage drop", "lofi-jazz": "jazzy coffee shop beats on a rainy day",
    "world-ambient": "shakuhachi over a drone on a desert journey",
}


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return MiniLM()


@pytest.fixture(scope="module")
def matrix(model: MiniLM) -> np.ndarray:
    return load_style_matrix(model.embed)


def req(**kwargs: object) -> TextToMusicRequest:
    return TextToMusicRequest(**{"prompt": "pop", "seed": 3, "duration_seconds": 12, **kwargs})


def test_numpy_minilm_matches_sentence_transformers(model: MiniLM) -> None:
    from sentence_transformers import SentenceTransformer

    texts = ["chill lofi beats to study to", "An epic orchestral trailer, with choir!", "x"]
    reference = SentenceTransformer(str(model_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    ours = np.stack([model.embed(text) for text in texts])
    assert np.allclose(ours, reference, atol=1e-5)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def stale_styles(model: MiniLM) -> list[str]:
    """Styles whose text the shipped cache lacks: the ones loading the style matrix has to embed afresh."""
    embedded: list[str] = []

    def embed(text: str) -> np.ndarray:
        embedded.append(text)
        return model.embed(text)

    load_style_matrix(embed)
    return [style.name for style in STYLES if style.text in embedded]


def test_shipped_style_embeddings_are_current(model: MiniLM, matrix: np.ndarray) -> None:
    assert stale_styles(model) == []
    assert np.allclose(matrix[5], model.embed(STYLES[5].text), atol=1e-6)


def test_library_has_36_styles_and_each_is_reachable_from_text(model: MiniLM, matrix: np.ndarray) -> None:
    assert len(STYLES) >= 36 and set(PROMPTS) == {style.name for style in STYLES}
    chosen = {name: resolve_intent(req(prompt=prompt), model.embed, matrix).primary.name
              for name, prompt in PROMPTS.items()}
    assert sum(chosen[name] == name for name in PROMPTS) >= 0.9 * len(PROMPTS), chosen
    tagged = resolve_intent(req(prompt="music for a night walk", tags=["synthwave"]), model.embed, matrix)
    assert tagged.primary.name == "synthwave"


def test_prompt_strength_sharpens_the_blend(model: MiniLM, matrix: np.ndarray) -> None:
    prompt = "a song about the ocean at dawn"  # no genre named: several styles are plausible
    weights = [resolve_intent(req(prompt=prompt, prompt_strength=s), model.embed, matrix).weights[0][1]
               for s in (0.0, 2.0, 10.0)]
    assert weights[0] < weights[1] < weights[2] and weights[2] > 0.95 and weights[0] < 0.6
    loose = resolve_intent(req(prompt=prompt, prompt_strength=0.0), model.embed, matrix)
    assert sum(blend(loose, np.random.default_rng(seed)) != loose.primary for seed in range(12)) >= 6
    exact = resolve_intent(req(prompt="jazz trio"), model.embed, matrix)  # a named genre: nothing borrowed
    assert all(blend(exact, np.random.default_rng(seed)) == exact.primary for seed in range(12))


def test_explicit_words_win(model: MiniLM, matrix: np.ndarray) -> None:
    text = "lofi hip hop in D minor, 120 bpm, with a cello, no drums, female vocal"
    intent = resolve_intent(req(prompt=text), model.embed, matrix)
    assert intent.primary.name == "lofi-hip-hop"
    assert (intent.tonic, intent.mode, intent.bpm, intent.drums, intent.voice) == (2, "minor", 120.0, False, "female")
    score = compose(req(prompt=text), SR, intent)
    assert score.bpm == 120.0 and score.key_name == "D minor"
    assert not events_for(score, "drums") and 42 in {c.program for c in score.channels}
    assert compose(req(prompt=text, bpm=97), SR, intent).bpm == 97  # the request's bpm beats the text
    assert explicit_key("something in F# major") == (6, "major")
    assert explicit_key("key of Bb") == (10, "major")
    assert explicit_key("walking in a dark room") is None
    named = explicit_instruments("heavy rock guitar with a saxophone solo")
    assert named == (("chords", 27, True), ("lead", 66, False))
    rock = compose(req(prompt="heavy rock guitar"), SR, resolve_intent(req(prompt="heavy rock guitar"), model.embed,
                                                                          matrix))
    assert rock.style.chord_program == STYLES_BY_NAME["rock"].chord_program  # generic "guitar" keeps the style's


def test_fills_close_sections() -> None:
    score = compose(req(prompt="deep house", duration_seconds=60, bpm=124), SR)
    assert score.style.fill == "snare"
    ends = [s.start_bar + s.bars - 1 for s in score.sections[:-1] if s.energy >= 0.5 and s.bars >= 2]
    for bar in ends:
        rolls = [e for e in events_for(score, "drums") if e.key == 38 and bar * 4 + 3 <= e.beat < bar * 4 + 4]
        assert len(rolls) == 4 and rolls[-1].velocity > rolls[0].velocity


def _profile(audio: np.ndarray) -> float:
    """Spectral centroid (Hz) of a mono mix."""
    spectrum = np.abs(np.fft.rfft(audio.mean(axis=1)))
    freqs = np.fft.rfftfreq(len(audio), 1 / SR)
    return float((spectrum * freqs).sum() / spectrum.sum())


def test_style_families_sound_different() -> None:
    engine = Engine()
    prompts = ["floating ambient drone", "pounding warehouse techno", "heavy distorted rock riffs",
               "elegant string quartet"]
    parts = [engine.render_parts(req(prompt=p, duration_seconds=10)) for p in prompts]
    families = [p.score.style.family for p in parts]
    assert len(set(families)) == 4
    signatures = {(p.score.bpm, tuple(sorted(c.program for c in p.score.channels)), bool(events_for(p.score, "drums")))
                  for p in parts}
    assert len(signatures) == 4
    centroids = sorted(_profile(p.master) for p in parts)
    assert centroids[-1] / centroids[0] > 2
    assert all(b / a > 1.03 for a, b in zip(centroids, centroids[1:], strict=False))


def test_stems_add_up_and_mix_is_deterministic(tmp_path: Path) -> None:
    engine = Engine()
    request = req(prompt="funky slap bass groove")
    a, b = engine.render_parts(request), engine.render_parts(request)
    assert set(a.stems) == set(BUSES)
    assert all(np.array_equal(a.stems[k], b.stems[k]) for k in a.stems)
    assert a.master is not None and b.master is not None and np.array_equal(a.master, b.master)
    assert dataclasses.replace(a.score.style).mix == STYLES_BY_NAME["funk"].mix
