"""Cut-downs and loops edited on the beats of finished engine tracks treated as hosted audio (no engine
versions asked): lengths, endings, seams and wraps measured on the written files."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tasks.delivery.beats import BeatGrid, analyse
from tasks.delivery.edits import (
    CUT_SECONDS,
    LOOP_BARS,
    VERSION_KINDS,
    Edit,
    Failure,
    cut_down,
    edit_versions,
    loop,
    write_edit,
)
from tests.support import ROOT
from tests.support.tempo import onset_tempo

TRACKS = {"house": ("deep house instrumental", 124, 3), "lofi": ("lofi hip hop instrumental", 84, 4)}
SECONDS = 75
ENDING_SECONDS = 2.0


@dataclass(frozen=True)
class Hosted:
    path: Path
    bpm: int
    samples: np.ndarray
    sr: int
    grid: BeatGrid  # measured once more here, as the edits measured it
    versions: dict[str, Edit | Failure]
    files: dict[str, Path]


def render(out: Path, prompt: str, bpm: int, seed: int) -> Path:
    """A finished track from the engine's command line, as a provider would hand one back."""
    subprocess.run([sys.executable, "-m", "textmusic", "render", "--out", str(out), "--prompt", prompt,
                    "--bpm", str(bpm), "--duration", str(SECONDS), "--seed", str(seed)],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module", params=sorted(TRACKS))
def hosted(request, tmp_path_factory) -> Hosted:
    prompt, bpm, seed = TRACKS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    path = render(folder / f"{request.param}.wav", prompt, bpm, seed)
    samples, sr = soundfile.read(path, dtype="float64", always_2d=True)
    versions = edit_versions(path, VERSION_KINDS, bpm)
    files = {kind: write_edit(edit, path, folder / f"{request.param}_{kind}.wav")
             for kind, edit in versions.items() if isinstance(edit, Edit)}
    return Hosted(path, bpm, samples, sr, analyse(samples, sr, bpm), versions, files)


def typical_step(samples: np.ndarray) -> float:
    """The signal's typical large sample-to-sample change: the 99th percentile of |diff|."""
    return float(np.percentile(np.abs(np.diff(samples, axis=0)), 99))


def test_the_grid_is_the_tracks_tempo_and_bars(hosted: Hosted) -> None:
    grid = hosted.grid
    assert grid.steady, grid.reason
    assert abs(grid.tempo_bpm / hosted.bpm - 1) < 0.005
    # the engine starts its first bar at sample 0: a downbeat sits within 15 ms of a whole bar from it
    offsets = (grid.downbeats() / grid.bar + 0.5) % 1 - 0.5
    assert np.all(np.abs(offsets * grid.bar) < 0.015 * hosted.sr)


@pytest.mark.parametrize("kind", sorted(CUT_SECONDS))
def test_cut_down_length_ending_and_seam(hosted: Hosted, kind: str) -> None:
    edit = hosted.versions[kind]
    assert isinstance(edit, Edit), edit
    written, sr = soundfile.read(hosted.files[kind], dtype="float64", always_2d=True)
    assert sr == hosted.sr and soundfile.info(hosted.files[kind]).subtype == soundfile.info(hosted.path).subtype
    assert abs(len(written) / sr - CUT_SECONDS[kind]) <= 0.5
    tail = round(ENDING_SECONDS * sr)
    assert np.array_equal(written[-tail:], hosted.samples[-tail:])  # the track's own ending, no fade added
    (_, intro_end), (ending_start, _) = edit.spans
    bar = 4 * 60 / hosted.bpm * sr  # the engine's true bar, not the measured one
    removed = (ending_start - intro_end) / bar
    assert removed >= 1 and abs(removed - round(removed)) * bar < 0.006 * sr  # whole bars, within 6 ms
    join = edit.joins[0]
    fade = round(0.04 * sr)
    seam = np.abs(np.diff(written[join - fade - 2 : join + 2], axis=0)).max()
    assert seam <= typical_step(hosted.samples)


@pytest.mark.parametrize("kind", sorted(LOOP_BARS))
def test_loop_length_wrap_and_tempo(hosted: Hosted, kind: str) -> None:
    grid = hosted.grid
    written, sr = soundfile.read(hosted.files[kind], dtype="float64", always_2d=True)
    assert len(written) == round(LOOP_BARS[kind] * grid.bar)
    wrap = np.abs(written[0] - written[-1]).max()
    assert wrap <= typical_step(written)
    repeated = np.tile(written, (max(2, int(np.ceil(20 * sr / len(written)))), 1))
    assert abs(onset_tempo(repeated, sr, lo=70.0) / grid.tempo_bpm - 1) < 0.02


def test_a_track_shorter_than_the_cut_fails_with_its_reason(hosted: Hosted, tmp_path: Path) -> None:
    short = tmp_path / "short.wav"
    soundfile.write(short, hosted.samples[: 20 * hosted.sr], hosted.sr, subtype="PCM_16")
    failure = edit_versions(short, ("30",), hosted.bpm)["30"]
    assert isinstance(failure, Failure) and failure.code == "too_short" and "20.0 s" in failure.reason


def rubato(sr: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Plucked notes whose tempo swells and sags by a third, as a solo player's would."""
    y, t = np.zeros(int(seconds * sr)), 0.0
    decay = np.arange(int(0.3 * sr))
    while t < seconds - 0.5:
        pitch = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        start = int(t * sr)
        y[start : start + len(decay)] += np.sin(2 * np.pi * pitch * decay / sr) * np.exp(-decay / (0.08 * sr))
        t += 0.5 * (1 + 0.35 * np.sin(t / 3)) * (1 + 0.1 * rng.normal())
    return np.stack([y, y], axis=1) * 0.3


@pytest.mark.parametrize("signal", ["noise", "rubato"])
def test_no_steady_beat_fails_cut_and_loop(signal: str) -> None:
    sr, rng = 44100, np.random.default_rng(7)
    audio = rng.normal(0.0, 0.1, (60 * sr, 2)) if signal == "noise" else rubato(sr, 60.0, rng)
    grid = analyse(audio, sr, 120.0)
    assert not grid.steady
    for result in (cut_down(audio, sr, grid, 30.0), loop(audio, sr, grid, 8)):
        assert isinstance(result, Failure) and result.code == "no_steady_beat"
        assert result.reason.startswith("no steady beat")


def test_files_of_no_output_format_are_refused_not_faked(tmp_path: Path) -> None:
    results = edit_versions(tmp_path / "track.aiff", ("30", "loop8"), 120.0)
    assert all(isinstance(r, Failure) and r.code == "format" and ".aiff" in r.reason for r in results.values())
