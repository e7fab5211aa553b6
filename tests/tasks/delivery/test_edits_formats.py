"""Edits of parents in lossy formats: the audio core decodes and re-encodes every format of the contract's table,
so a cut-down or a loop of an mp3 (or m4a, ogg) track is written in its parent's format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.delivery.edits import Edit, edit_versions, write_edit
from textmusic.audio.read import probe, read_audio
from textmusic.audio.write import write_audio
from textmusic.contract import FORMATS

RATE = 44100
BPM = 120.0


def groove(seconds: float = 48.0) -> np.ndarray:
    """A steady 4/4 groove: a kick on every beat (louder on the downbeat), a noise hat between, and a chord
    per bar cycling every four bars, so the bars have a grid and alike bars to join."""
    rng = np.random.default_rng(5)
    t = np.arange(int(seconds * RATE)) / RATE
    beat = 60.0 / BPM
    phase = t % beat
    downbeat = (t // beat) % 4 == 0
    kick = np.sin(2 * np.pi * 55 * phase) * np.exp(-phase / 0.08) * np.where(downbeat, 1.0, 0.6)
    off = (t + beat / 2) % beat
    hat = rng.standard_normal(len(t)) * np.exp(-off / 0.01) * 0.15
    root = np.array([220.0, 196.0, 174.6, 164.8])[((t // (4 * beat)) % 4).astype(int)]
    chord = sum(np.sin(2 * np.pi * np.cumsum(root * k) / RATE) for k in (1.0, 1.26, 1.5)) * 0.08
    mix = 0.6 * kick + hat + chord
    return np.stack([mix, mix], axis=1) * 0.8


def test_a_cut_down_of_an_mp3_parent_is_written_as_mp3(tmp_path: Path) -> None:
    fmt = "mp3"
    parent = tmp_path / f"track.{fmt}"
    write_audio(groove(), RATE, parent, fmt, 256)
    edit = edit_versions(parent, ("30",), BPM)["30"]
    assert isinstance(edit, Edit), edit
    out = write_edit(edit, parent, tmp_path / f"track_30.{fmt}")
    decoded, rate = read_audio(out)
    assert rate == RATE and abs(len(decoded) - len(edit.samples)) == 0  # LAME's tag trims delay and padding
    assert abs(len(decoded) / rate - 30.0) <= 0.5
    info = probe(out)
    assert info.container == FORMATS[fmt].probe_container and info.bit_rate == 256_000  # the parent's bit rate
