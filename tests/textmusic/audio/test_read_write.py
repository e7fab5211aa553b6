"""The core's writers and reader over every format of the contract's table: float or integer samples in, the
same length (and for lossless formats the same samples) out, through the whole-file, streamed and probe reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textmusic.audio.read import UnreadableAudio, bit_depth, probe, read_audio, read_chunks
from textmusic.audio.write import quantize, write_audio
from textmusic.contract import FORMATS, OUTPUT_FORMATS

RATE = 44100


def tone(seconds: float = 1.5, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return 0.5 * np.stack([np.sin(2 * np.pi * f * t) for f in (440.0, 554.4)[:channels]], axis=1)


@pytest.mark.parametrize("name", OUTPUT_FORMATS)
@pytest.mark.parametrize("channels", [1, 2])
def test_float_samples_round_trip(name: str, channels: int, tmp_path: Path) -> None:
    spec, audio = FORMATS[name], tone(channels=channels)
    path = tmp_path / f"song.{spec.extension}"
    write_audio(audio, RATE, path, name, bit_depth=24 if spec.lossless else None)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # the temp file was renamed, not left behind
    decoded, rate = read_audio(path)
    assert rate == RATE and decoded.shape[1] == channels and decoded.dtype == np.float64
    assert abs(len(decoded) - len(audio)) <= (0 if spec.lossless or spec.encoder == "lame" else 2048)  # AAC pads
    streamed = np.concatenate(list(read_chunks(path, 4096)))
    assert np.array_equal(streamed, decoded.astype(np.float32))
    info = probe(path)
    assert (info.container, info.channels) == (spec.probe_container, channels)
    if spec.lossless:
        assert bit_depth(path) == 24 and np.array_equal(decoded, quantize(audio, 24) / 2.0 ** 31)
    else:
        rms = np.sqrt(np.mean(np.square(decoded), axis=0))
        assert bit_depth(path) is None and rms == pytest.approx([0.5 / np.sqrt(2)] * channels, abs=0.02)


def test_integer_pcm_is_written_as_it_is(tmp_path: Path) -> None:
    pcm = quantize(tone(), 16)
    for name in ("wav", "flac"):
        write_audio(pcm, RATE, tmp_path / f"a.{name}", name)
        assert bit_depth(tmp_path / f"a.{name}") == 16
        assert np.array_equal(read_audio(tmp_path / f"a.{name}", "float32")[0], pcm / np.float32(32768))


def test_sixteen_bit_dither_is_optional(tmp_path: Path) -> None:
    exact = quantize(tone(), 16, dither=False) / 32768.0  # already on the 16-bit grid
    write_audio(exact, RATE, tmp_path / "kept.wav", "wav", dither=False)
    write_audio(exact, RATE, tmp_path / "dithered.wav", "wav")
    assert np.array_equal(read_audio(tmp_path / "kept.wav")[0], exact)
    assert not np.array_equal(read_audio(tmp_path / "dithered.wav")[0], exact)


@pytest.mark.parametrize("name", ["song.wav", "song.mp3", "missing.flac"])
def test_unreadable_files_are_one_error(name: str, tmp_path: Path) -> None:
    if name != "missing.flac":
        (tmp_path / name).write_bytes(b"not audio at all" * 64)
    for read in (read_audio, probe, lambda path: list(read_chunks(path))):
        with pytest.raises(UnreadableAudio):
            read(tmp_path / name)
