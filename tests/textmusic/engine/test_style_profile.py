"""Style identity by measurement (issue 12): profile features measured from renders separate the hard
neighbours — hip hop vs jazz, blues vs jazz and rock, rock/punk/metal vs country/folk."""

from __future__ import annotations

import numpy as np
import pytest

from textmusic.engine import Engine
from textmusic.testing.style_profile import FEATURES, measure, render_features, style_request, swing_ratio

STYLES = ("boom-bap", "trap", "jazz", "blues", "rock", "punk", "metal", "country", "acoustic-folk")
DURATION = 10.0


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, float]]:
    engine = Engine()
    out = {}
    for name in STYLES:
        chosen, features = render_features(engine, style_request(name, 3, duration=DURATION))
        assert chosen == name
        out[name] = features
    return out


def test_swing_ratio_reads_onsets() -> None:
    beat = 0.5
    straight = np.sort(np.concatenate([np.arange(32) * beat, np.arange(32) * beat + beat / 2]))
    swung = np.sort(np.concatenate([np.arange(32) * beat, np.arange(32) * beat + 2 * beat / 3]))
    assert swing_ratio(straight + 0.01, beat) == pytest.approx(1.0, abs=0.05)
    assert swing_ratio(swung + 0.01, beat) == pytest.approx(2.0, abs=0.1)


def test_features_of_synthetic_audio() -> None:
    sr = 44100
    t = np.arange(sr * 4) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    noise = (0.3 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)
    kick = np.zeros_like(t, dtype=np.float32)
    for start in range(0, len(t), sr // 2):
        n = min(4000, len(t) - start)
        kick[start:start + n] = np.sin(2 * np.pi * 55 * t[:n]) * np.exp(-t[:n] * 30)
    silent = np.zeros_like(tone)
    stereo = {name: np.stack([a, a], axis=1) for name, a in
              (("drums", kick), ("bass", silent), ("harmony", tone), ("lead", silent))}
    clean = measure(stereo, sr, 120)
    dirty = measure({**stereo, "harmony": np.stack([noise, noise], axis=1)}, sr, 120)
    assert set(clean) == set(FEATURES)
    assert dirty["distortion"] > clean["distortion"] + 3
    assert clean["kick"] > -15 and clean["bass_share"] < -20


def test_hip_hop_hits_harder_than_jazz(measured: dict[str, dict[str, float]]) -> None:
    for name in ("boom-bap", "trap"):
        assert measured[name]["kick"] > measured["jazz"]["kick"] + 3, name
        assert measured[name]["drums"] > measured["jazz"]["drums"] + 2, name
        assert measured[name]["harmonic_rhythm"] < measured["jazz"]["harmonic_rhythm"], name


def test_rock_family_is_distorted_and_dense_next_to_country_and_folk(measured: dict[str, dict[str, float]]) -> None:
    for loud in ("rock", "punk", "metal"):
        for soft in ("country", "acoustic-folk"):
            assert measured[loud]["distortion"] > measured[soft]["distortion"], (loud, soft)
            assert measured[loud]["kick"] > measured[soft]["kick"], (loud, soft)  # kick-driven, loud


def test_blues_and_jazz_swing_rock_does_not(measured: dict[str, dict[str, float]]) -> None:
    swing = {name: max(measured[name]["swing8"], measured[name]["swing16"]) for name in ("blues", "jazz", "rock")}
    assert swing["blues"] > swing["rock"] + 0.25
    assert swing["jazz"] > swing["rock"] + 0.25


def test_blues_apart_from_jazz_and_rock(measured: dict[str, dict[str, float]]) -> None:
    blues, jazz, rock = measured["blues"], measured["jazz"], measured["rock"]
    assert blues["harmonic_rhythm"] < jazz["harmonic_rhythm"]  # 12-bar I-IV-V vs ii-V changes
    assert blues["distortion"] < rock["distortion"]
