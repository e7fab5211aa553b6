"""Tagging a WAV keeps its audio as it was: same sample format, same samples, byte for byte."""

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tasks.delivery.tagging import read_tags, tag_and_verify
from tests.support.riff_info import read_riff_info

SUBTYPES = ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]
VALUES = {
    "title": "Café – naïve ☂", "artist": "TrackFoundry", "album": "depth", "genre": "ambient",
    "comment": "a quiet prompt", "date": "2026-11-23", "bpm": "84", "seed": "7", "prompt": "a quiet prompt",
}


def riff_chunks(path: Path) -> dict[bytes, bytes]:
    """Top-level chunk id → payload (the last one of each id)."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8  # the RIFF size still adds up
    chunks, pos = {}, 12
    while pos + 8 <= len(data):
        chunk_id, length = struct.unpack_from("<4sI", data, pos)
        chunks[chunk_id] = data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)
    return chunks


def info_strings(path: Path) -> dict[bytes, str]:
    """The LIST-INFO entries, parsed here rather than through libsndfile (what a Windows tool sees)."""
    body = riff_chunks(path)[b"LIST"]
    assert body[:4] == b"INFO"
    entries, pos = {}, 4
    while pos + 8 <= len(body):
        entry_id, length = struct.unpack_from("<4sI", body, pos)
        entries[entry_id] = body[pos + 8 : pos + 8 + length].rstrip(b"\0").decode("utf-8")
        pos += 8 + length + (length & 1)
    return entries


def make_wav(path: Path, subtype: str, channels: int = 2, frames: int = 22051) -> Path:
    rng = np.random.default_rng(7)
    # Full-scale noise with values 16-bit cannot hold (and, for float, beyond ±1): requantising shows.
    samples = rng.uniform(-1.2 if subtype in ("FLOAT", "DOUBLE") else -1, 1, (frames, channels))
    sf.write(str(path), samples, 44100, format="WAV", subtype=subtype)
    return path


@pytest.mark.parametrize("subtype", SUBTYPES)
def test_tagging_keeps_the_audio_of_every_subtype(tmp_path, subtype):
    path = make_wav(tmp_path / f"{subtype}.wav", subtype)
    before_info = sf.info(str(path))
    before, _ = sf.read(str(path), dtype="float64", always_2d=True)
    before_raw = riff_chunks(path)
    tag_and_verify(path, VALUES)

    after_info = sf.info(str(path))
    assert (after_info.subtype, after_info.samplerate, after_info.channels, after_info.frames) == (
        before_info.subtype, before_info.samplerate, before_info.channels, before_info.frames)
    after, _ = sf.read(str(path), dtype="float64", always_2d=True)
    assert np.array_equal(after, before)
    raw = riff_chunks(path)
    assert raw[b"data"] == before_raw[b"data"] and raw[b"fmt "] == before_raw[b"fmt "]

    assert {k: v for k, v in read_tags(path).items() if k in VALUES} == VALUES
    assert read_riff_info(path) == {k: VALUES[k] for k in ("title", "artist", "album", "genre", "comment", "date")}
    info = info_strings(path)
    assert info[b"INAM"] == VALUES["title"] and info[b"IART"] == VALUES["artist"]


def test_retagging_replaces_the_info_strings_and_keeps_others(tmp_path):
    path = make_wav(tmp_path / "a.wav", "PCM_24", channels=1, frames=1001)  # odd-sized data chunk
    with sf.SoundFile(str(tmp_path / "b.wav"), "w", 44100, 1, "PCM_24", format="WAV") as wav:
        wav.software = "some encoder"
        wav.title = "old title"
        wav.write(sf.read(str(path))[0])
    path = tmp_path / "b.wav"
    before, _ = sf.read(str(path), dtype="int32")
    tag_and_verify(path, {"title": "first"})
    tag_and_verify(path, {"title": "second", "artist": "x"})
    after, _ = sf.read(str(path), dtype="int32")
    assert np.array_equal(after, before)
    assert sf.info(str(path)).subtype == "PCM_24"
    info = info_strings(path)
    assert info[b"INAM"] == "second" and info[b"IART"] == "x" and info[b"ISFT"].startswith("some encoder")
    assert read_riff_info(path)["title"] == "second"
    assert read_tags(path)["title"] == "second"
