"""tasks/delivery/riff.py sets the chunks it is given and copies every other chunk byte for byte."""

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tasks.delivery.riff import RiffError, read_chunks, read_info, write_chunks


def chunk_list(path: Path) -> list[tuple[bytes, bytes]]:
    """Every top-level chunk in order, (id, payload), parsed here; the RIFF size must add up."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        chunk_id, length = struct.unpack_from("<4sI", data, pos)
        chunks.append((chunk_id, data[pos + 8 : pos + 8 + length]))
        pos += 8 + length + (length & 1)
    assert pos == len(data)
    return chunks


def append_chunk(path: Path, chunk_id: bytes, payload: bytes) -> None:
    """Add a chunk at the end of the file (where mutagen puts `id3 ` and a C2PA signer its chunk)."""
    data = bytearray(path.read_bytes())
    data += struct.pack("<4sI", chunk_id, len(payload)) + payload + b"\0" * (len(payload) & 1)
    struct.pack_into("<I", data, 4, len(data) - 8)
    path.write_bytes(bytes(data))


def make_wav(path: Path, frames: int = 1001) -> Path:
    rng = np.random.default_rng(3)
    sf.write(str(path), rng.uniform(-1, 1, (frames, 1)), 44100, format="WAV", subtype="PCM_24")
    return path


def test_set_chunks_go_before_data_and_others_are_kept(tmp_path):
    path = make_wav(tmp_path / "a.wav")  # 1001 frames × 3 bytes: an odd data chunk with its pad byte
    append_chunk(path, b"id3 ", b"ID3\x04" + b"x" * 37)
    append_chunk(path, b"C2PA", b"\x01\x02\x03")
    before = chunk_list(path)
    write_chunks(path, {b"bext": b"b" * 602, b"_PMX": b"<x/>!"})
    after = chunk_list(path)
    ids = [chunk_id for chunk_id, _ in after]
    assert ids.index(b"bext") < ids.index(b"_PMX") < ids.index(b"data")
    assert dict(after)[b"_PMX"] == b"<x/>!"
    assert [c for c in after if c[0] not in (b"bext", b"_PMX")] == before  # the rest: same bytes, same order


def test_setting_again_replaces_every_chunk_of_that_id(tmp_path):
    path = make_wav(tmp_path / "a.wav")
    append_chunk(path, b"iXML", b"<old/>")
    append_chunk(path, b"iXML", b"<older/>")
    write_chunks(path, {b"iXML": b"<first/>"})
    write_chunks(path, {b"iXML": b"<new/>"})
    assert [payload for chunk_id, payload in chunk_list(path) if chunk_id == b"iXML"] == [b"<new/>"]
    assert read_chunks(path, {b"iXML"}) == {b"iXML": b"<new/>"}


def test_info_entries_merge_and_an_empty_payload_removes_one(tmp_path):
    path = make_wav(tmp_path / "a.wav")
    write_chunks(path, info={b"INAM": b"title\0", b"ISFT": b"encoder\0"})
    write_chunks(path, info={b"INAM": b"second\0", b"ISFT": b""})
    assert read_info(path) == {b"INAM": b"second\0"}
    write_chunks(path, {b"bext": b"\0" * 602})  # info=None: the LIST-INFO chunk is left as it is
    assert read_info(path) == {b"INAM": b"second\0"}
    assert sf.SoundFile(str(path)).title == "second"


def test_the_samples_and_format_are_untouched(tmp_path):
    path = make_wav(tmp_path / "a.wav")
    before, _ = sf.read(str(path), dtype="int32")
    write_chunks(path, {b"bext": b"\0" * 603}, info={b"ICMT": b"odd\0"})
    after, _ = sf.read(str(path), dtype="int32")
    assert np.array_equal(before, after) and sf.info(str(path)).subtype == "PCM_24"
    assert len(dict(chunk_list(path))[b"bext"]) == 603  # the payload as given; the pad byte is outside it


def test_nothing_to_do_leaves_the_file_alone(tmp_path):
    path = make_wav(tmp_path / "a.wav")
    before = path.read_bytes(), path.stat().st_ino
    write_chunks(path, {}, info={})
    assert (path.read_bytes(), path.stat().st_ino) == before


@pytest.mark.parametrize("chunks", [{b"data": b""}, {b"fmt ": b""}, {b"LIST": b""}, {b"bex": b""}, {b"b\0xt": b""}])
def test_the_audio_and_malformed_ids_cannot_be_set(tmp_path, chunks):
    path = make_wav(tmp_path / "a.wav")
    with pytest.raises(RiffError):
        write_chunks(path, chunks)


def test_a_file_that_is_not_wave_or_has_no_data_fails_and_leaves_no_temp_file(tmp_path):
    not_wav = tmp_path / "a.wav"
    not_wav.write_bytes(b"ID3\x04" + b"\0" * 100)
    with pytest.raises(RiffError):
        write_chunks(not_wav, {b"bext": b"x"})
    no_data = tmp_path / "b.wav"
    fmt_only = b"fmt " + struct.pack("<I", 16) + b"\0" * 16
    no_data.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(fmt_only)) + b"WAVE" + fmt_only)
    with pytest.raises(RiffError):
        write_chunks(no_data, {b"bext": b"x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]
