"""Delivery masters and QC in a run: every delivered file measured after encoding, mastered to the catalog's
spec when outside it, named by the template; a paid file that still fails QC is held, never delivered
silently and never paid for again without consent."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyloudnorm
import pytest
import soundfile

from tasks.delivery.finish import QC_FAILED_DIR, Delivery, QcFailed, finish, health_only
from tasks.naming import check_name_template, fill_name
from tasks.settings import SPECS
from tests.support.runs import trackfoundry
from textmusic.audio.peaks import true_peak_dbtp
from textmusic.testing.standins import Shape, StandIn

RATE = 44100


def _wav_bytes(data: np.ndarray, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, data, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _music(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220.0, 330.0, 440.0), start=1))
    beat = np.exp(-20 * (t % 0.5))
    mono = level * tone / 1.9 * (0.6 + 0.4 * beat)
    return np.stack([mono, 0.9 * mono], axis=1)


def _brief(tmp_path: Path) -> Path:
    path = tmp_path / "brief.csv"
    pd.DataFrame([{"track_id": "cue-1", "name": "Rainy Window", "prompt": "calm piano", "seed": 4, "bpm": 90,
                   "output_format": "wav"}]).to_csv(path, index=False)
    return path


def test_a_broadcast_catalog_is_delivered_at_r128_as_48k_24_bit_wav(tmp_path: Path) -> None:
    with StandIn(Shape(audio_bytes=_wav_bytes(_music(12.0)), audio_seconds=12.0)) as api:
        done = trackfoundry(tmp_path, api, _brief(tmp_path), "--master", "broadcast", "--sample-rate", "48000",
                            "--bit-depth", "24")
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    song = pd.read_parquet(out / "ledger.parquet").iloc[0]
    assert song.audio_path == "demo_cue-1_Rainy_Window_full_90bpm.wav"  # the default name template
    info = soundfile.info(out / song.audio_path)
    assert (info.samplerate, info.subtype) == (48000, "PCM_24")  # read back as delivered
    data, rate = soundfile.read(out / song.audio_path, always_2d=True)
    assert pyloudnorm.Meter(rate).integrated_loudness(data) == pytest.approx(-23.0, abs=0.5)
    assert true_peak_dbtp(data) <= -1.0
    assert (song.master, song.qc, song.sample_rate, song.bit_depth) == ("broadcast", "pass", 48000, 24)
    assert song.loudness_lufs == pytest.approx(-23.0, abs=0.5) and song.master_gain_db < -1  # turned down
    with (out / "qc.csv").open(newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["file"], row["qc"], row["master"]) == (song.audio_path, "pass", "broadcast")


def test_a_paid_file_that_fails_qc_is_held_with_its_figure_and_never_paid_again(tmp_path: Path) -> None:
    clipped = np.clip(_music(12.0, level=3.0), -1.0, 1.0)  # flat tops at full scale: clipping
    with StandIn(Shape(audio_bytes=_wav_bytes(clipped), audio_seconds=12.0)) as api:
        first = trackfoundry(tmp_path, api, _brief(tmp_path), "--master", "none")
        again = trackfoundry(tmp_path, api, _brief(tmp_path), "--master", "none")
        posts = len(api.posts)
    assert first.returncode == 3 and again.returncode == 3  # not delivered: the run says so
    assert posts == 1  # held, not generated again
    out = tmp_path / "out"
    song = pd.read_parquet(out / "ledger.parquet").iloc[0]
    assert (song.status, song.resume, song.qc) == ("failed", "qc", "fail")
    assert song.error.startswith("qc: clipping: ") and song.clipped_samples > 0 and song.cost_cents > 0
    assert (out / song.held_file).is_file() and song.held_file.startswith(QC_FAILED_DIR)
    assert not list(out.glob("*.wav"))  # nothing outside its spec in the catalog


def test_stems_take_their_songs_gain_and_are_held_to_health_only(tmp_path: Path) -> None:
    stem = tmp_path / "stem.wav"
    soundfile.write(stem, np.concatenate([np.zeros((RATE * 6, 2)), _music(6.0, 0.05)]), RATE, subtype="PCM_16")
    before, _ = soundfile.read(stem, always_2d=True)
    fields = finish(stem, "wav", "", Delivery(SPECS["broadcast"]), tmp_path, "s.wav", parent_gain_db=-9.0)
    after, _ = soundfile.read(stem, always_2d=True)
    gain = 20 * math.log10(np.sqrt(np.mean(after ** 2)) / np.sqrt(np.mean(before ** 2)))
    assert gain == pytest.approx(-9.0, abs=0.1) and fields["qc"] == "pass"  # 6 s of rest are no fault
    assert health_only(SPECS["broadcast"]).lufs is None


def test_a_file_within_its_spec_keeps_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(_wav_bytes(_music(8.0)))
    bytes_before = path.read_bytes()
    fields = finish(path, "wav", "", Delivery(SPECS["none"]), tmp_path, "x.wav")
    assert path.read_bytes() == bytes_before and fields["master_gain_db"] == 0.0 and fields["qc"] == "pass"
    strict = dataclasses.replace(SPECS["none"], max_head_silence_s=-1.0)  # no file can meet it
    with pytest.raises(QcFailed, match="head silence"):
        finish(path, "wav", "", Delivery(strict), tmp_path, "x.wav")
    assert not path.exists() and (tmp_path / QC_FAILED_DIR / "x.wav").read_bytes() == bytes_before


def test_file_name_template() -> None:
    name = fill_name("{catalog}_{track}_{title}_{version}_{bpm}", "wav", catalog="lib", track="lofi-001",
                     title="Rainy Window / ../x", version="30s", bpm="84bpm")
    assert name == "lib_lofi-001_Rainy_Window_x_30s_84bpm.wav"
    assert fill_name("{track}_{version}_{bpm}", "mp3", track="t", version="full", bpm="") == "t_full.mp3"
    long = fill_name("{track}_{title}_{version}", "wav", track="t", title="w" * 300, version="loop8")
    assert long.endswith("_loop8.wav") and len(long) < 120
    for bad in ("{track}", "{track}_{version}_{artist}"):
        with pytest.raises(ValueError):
            check_name_template(bad)
