"""Delivery masters and QC on real audio: synthesized music-like signals and one engine render, each mastered,
encoded, decoded again and measured as a library would."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import butter, sosfilt

from tasks.catalog.ledger import LedgerRecord
from tasks.delivery.finish import qc_fields
from tasks.delivery.mastering import master_file
from tasks.delivery.qc import QC_COLUMNS, check, measure, write_qc_csv
from tasks.settings import SPECS
from tests.support import ROOT
from textmusic.audio.limiter import limiter_gain
from textmusic.audio.loudness import loudness_range
from textmusic.audio.peaks import peak_envelope, true_peak_dbtp
from textmusic.audio.read import read_audio

RATE = 44100
SECONDS = 20.0
CHORDS = ((220.0, 277.18, 329.63), (196.0, 246.94, 293.66), (174.61, 220.0, 261.63), (164.81, 207.65, 246.94))


def music(seconds: float = SECONDS, rate: int = RATE, seed: int = 1) -> np.ndarray:
    """Stereo chords of harmonic tones under a decaying envelope, a bass line, and loud band-limited noise
    bursts on the beat (a crest factor like a drum track's, so -14 LUFS needs the limiter)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    bar = 2.0
    chord = ((t // bar).astype(int)) % len(CHORDS)
    envelope = np.exp(-1.5 * (t % bar)) * (1 - np.exp(-60 * (t % bar)))
    tones = np.zeros((len(t), 2))
    for voice in range(3):
        freq = np.array([c[voice] for c in CHORDS])[chord]
        phase = 2 * np.pi * np.cumsum(freq) / rate
        tone = sum(np.sin(k * phase) / k for k in (1, 2, 3, 4))
        tones[:, 0] += tone * (0.5 + 0.2 * voice)
        tones[:, 1] += tone * (0.9 - 0.2 * voice)
    bass = np.sin(np.pi * np.cumsum(np.array([c[0] for c in CHORDS])[chord]) / rate)
    beat = 0.5
    noise = sosfilt(butter(4, 8000, fs=rate, output="sos"), rng.standard_normal(len(t)))  # a snare's band
    hits = np.exp(-30 * (t % beat)) * noise
    signal = 0.08 * tones * envelope[:, None] + 0.15 * bass[:, None] + 0.35 * hits[:, None] * [1.0, 0.8]
    return signal / np.abs(signal).max() * 0.7


def write(path: Path, data: np.ndarray, rate: int = RATE, subtype: str = "PCM_24") -> Path:
    soundfile.write(path, data, rate, subtype=subtype)
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("src") / "song.wav", music())


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "m4a"])
def test_broadcast_master_meets_r128_after_encoding(song: Path, tmp_path: Path, fmt: str) -> None:
    result = master_file(song, tmp_path / f"out.{fmt}", SPECS["broadcast"], fmt=fmt)
    figures = measure(result.path)  # measured again from the delivered file, not taken from the result
    assert abs(figures.loudness_lufs + 23.0) <= 0.5, figures
    assert figures.true_peak_dbtp <= -1.0, figures
    assert check(figures, SPECS["broadcast"]) == []
    assert abs(figures.duration_s - SECONDS) < 0.1
    assert not list(tmp_path.glob(".*"))  # the temp file was renamed, not left behind


@pytest.mark.parametrize("fmt", ["wav", "mp3", "m4a"])
def test_streaming_master_limits_true_peak_after_encoding(song: Path, tmp_path: Path, fmt: str) -> None:
    data, _ = read_audio(song)
    source_lufs = measure(song).loudness_lufs
    # the plain gain to -14 LUFS would put the peaks above the ceiling: the limiter has work to do
    assert true_peak_dbtp(data) + (-14.0 - source_lufs) > 0.0
    result = master_file(song, tmp_path / f"out.{fmt}", SPECS["streaming"], fmt=fmt)
    figures = measure(result.path)
    assert abs(figures.loudness_lufs + 14.0) <= 0.5, figures
    assert figures.true_peak_dbtp <= -1.0, figures
    assert figures.clipped_runs == 0
    assert check(figures, SPECS["streaming"]) == []


def test_48k_24bit_wav_reads_back_as_such(song: Path, tmp_path: Path) -> None:
    result = master_file(song, tmp_path / "out.wav", SPECS["streaming"], sample_rate=48000, bit_depth=24, fmt="wav")
    info = soundfile.info(str(result.path))
    assert (info.samplerate, info.subtype, info.channels) == (48000, "PCM_24", 2)
    assert abs(info.duration - SECONDS) < 0.001
    assert (result.figures.sample_rate, result.figures.bit_depth) == (48000, 24)


def test_16bit_master_is_tpdf_dithered(tmp_path: Path) -> None:
    rate = 48000
    data = music(12.0, rate)
    gap = slice(4 * rate, 7 * rate)
    data[gap] = 0.0  # three seconds of digital silence inside the music
    src = write(tmp_path / "src.wav", data, rate, "FLOAT")
    result = master_file(src, tmp_path / "out.wav", SPECS["broadcast"], sample_rate=44100, bit_depth=16, fmt="wav")
    info = soundfile.info(str(result.path))
    assert (info.samplerate, info.subtype) == (44100, "PCM_16")
    pcm, _ = soundfile.read(result.path, dtype="int16", always_2d=True)
    floor = pcm[int(4.5 * 44100):int(6.5 * 44100)].astype(float)  # away from the resampler's ringing
    assert np.count_nonzero(floor) > 0.1 * floor.size  # not truncated to digital zero
    assert np.abs(floor).max() <= 1  # ±1 LSB: triangular dither of two LSBs' width, rounded
    assert abs(floor.mean()) < 0.02  # zero-mean
    assert 0.7 < np.mean(floor == 0) < 0.8  # TPDF rounds 0 to 0 three times in four (uniform would be 1/2)
    assert abs(np.corrcoef(floor[:, 0], floor[:, 1])[0, 1]) < 0.05  # independent per channel


def test_faulty_file_is_measured_and_named(tmp_path: Path) -> None:
    data = np.concatenate([np.zeros((3 * RATE, 2)), music(15.0) * 0.5 + 0.02])
    for start in range(5 * RATE, 10 * RATE, RATE):  # five flat tops of 20 samples at full scale
        data[start:start + 20] = 1.0
    src = write(tmp_path / "faulty.wav", data, subtype="PCM_16")
    figures = measure(src)
    assert abs(figures.head_silence_s - 3.0) < 0.001
    assert (figures.clipped_runs, figures.clipped_samples) == (10, 200)  # 5 per channel
    expected_dc = read_audio(src)[0].mean(axis=0)
    assert np.allclose(figures.dc_offset, expected_dc, atol=1e-9) and min(figures.dc_offset) > 0.015
    assert (figures.sample_rate, figures.bit_depth, figures.channels) == (RATE, 16, 2)
    reasons = check(figures, SPECS["broadcast"])
    for problem in ("clipping: 200 samples in 10 runs", "DC offset 0.01", "head silence 3.00 s", "loudness"):
        assert any(problem in reason for reason in reasons), (problem, reasons)


def test_none_keeps_loudness_and_resamples(song: Path, tmp_path: Path) -> None:
    result = master_file(song, tmp_path / "out.flac", SPECS["none"], sample_rate=48000, fmt="flac")
    assert abs(result.figures.loudness_lufs - measure(song).loudness_lufs) <= 0.1
    assert (soundfile.info(str(result.path)).samplerate, result.gain_db, result.ceiling_dbtp) == (48000, 0.0, None)


def test_true_peak_sees_intersample_peaks() -> None:
    """A full-scale sine at a quarter of the rate, sampled 45° off its crests: samples at -3 dBFS, true 0 dBTP."""
    n = np.arange(RATE)
    sine = np.sin(np.pi / 2 * n + np.pi / 4)[:, None]
    assert 20 * np.log10(np.abs(sine).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(sine) == pytest.approx(0.0, abs=0.1)


def test_limiter_holds_the_ceiling_and_lets_the_rest_through() -> None:
    t = np.arange(4 * RATE) / RATE
    quiet = 0.1 * np.sin(2 * np.pi * 440 * t)
    quiet[2 * RATE:2 * RATE + 30] += 0.8  # a click 11 dB over a -7 dBTP ceiling
    data = np.stack([quiet, quiet], axis=1)
    gain = limiter_gain(peak_envelope(data), RATE, -7.0)
    out = data * gain[:, None]
    assert true_peak_dbtp(out) <= -7.0 + 0.05
    assert np.all(gain[: int(1.9 * RATE)] == 1.0) and np.all(gain[int(2.6 * RATE):] == 1.0)  # transparent elsewhere


def test_loudness_range_follows_tech_3342() -> None:
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((40 * RATE, 2)) * 0.1
    steps = noise * np.repeat([1.0, 10 ** (-10 / 20)], 20 * RATE)[:, None]  # 20 s, then 20 s 10 dB lower
    assert loudness_range(steps, RATE) == pytest.approx(10.0, abs=1.0)
    assert loudness_range(noise, RATE) < 1.0


def test_qc_csv_reads_back(song: Path, tmp_path: Path) -> None:
    good = master_file(song, tmp_path / "good.wav", SPECS["broadcast"], fmt="wav")
    loud = measure(song)
    reasons = check(loud, SPECS["broadcast"])
    records = [
        LedgerRecord(catalog="c", track_id="a", status="ready", audio_path="good.wav", duration_seconds=20.0,
                     **qc_fields(good.figures, "broadcast", good.gain_db, "pass")),
        LedgerRecord(catalog="c", track_id="b", status="failed", version="30s", parent="b.wav",
                     error="; ".join(reasons),
                     **qc_fields(loud, "broadcast", 0.0, "fail"), held_file="=cmd.wav"),
        LedgerRecord(catalog="c", track_id="c", status="failed", error="generation failed"),  # nothing measured
    ]
    path = write_qc_csv(tmp_path, records)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        read = list(reader)
    assert tuple(reader.fieldnames) == QC_COLUMNS
    assert [(r["qc"], r["version"]) for r in read] == [("pass", "full"), ("fail", "30s")]
    assert read[0]["reasons"] == "" and float(read[0]["loudness_lufs"]) == pytest.approx(-23.0, abs=0.5)
    assert read[1]["file"] == "'=cmd.wav"  # a spreadsheet shows it, does not run it
    assert read[1]["reasons"].startswith("loudness ") and "target -23 ± 0.5 LUFS" in read[1]["reasons"]
    assert (read[0]["bit_depth"], read[0]["sample_rate"]) == ("24", str(RATE))


def test_bad_settings_are_refused(song: Path, tmp_path: Path) -> None:
    for kwargs in ({"fmt": "mp3", "bit_depth": 16}, {"fmt": "wav", "bit_rate": "192"}, {"fmt": "aiff"},
                   {"fmt": "flac", "bit_depth": 20}):
        with pytest.raises(ValueError):
            master_file(song, tmp_path / "x", SPECS["streaming"], **kwargs)
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def engine_render(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real track from the offline engine, rendered by its CLI (the pipeline never imports the engine)."""
    out = tmp_path_factory.mktemp("engine") / "render.wav"
    subprocess.run([sys.executable, "-m", "textmusic", "render", "--out", str(out), "--duration", "12", "--prompt",
                    "Driving deep house groove with a steady four-on-the-floor kick", "--seed", "11"],
                   cwd=ROOT, check=True, capture_output=True)
    return out


@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_engine_render_broadcast_master(engine_render: Path, tmp_path: Path, fmt: str) -> None:
    result = master_file(engine_render, tmp_path / f"out.{fmt}", SPECS["broadcast"], sample_rate=48000, fmt=fmt)
    figures = measure(result.path)
    assert abs(figures.loudness_lufs + 23.0) <= 0.5 and figures.true_peak_dbtp <= -1.0, figures
    assert figures.sample_rate == 48000 and check(figures, SPECS["broadcast"]) == []
