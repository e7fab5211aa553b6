"""Plan, audio checks, tags and ledger: the plain functions between the brief and the catalog."""

import pandas as pd
import pytest

from tasks.catalog.ledger import LedgerRecord, append_journal, load_ledger, write_ledger
from tasks.delivery.check import AudioCheckError, check_audio
from tasks.delivery.tagging import read_tags, tag_and_verify
from tasks.generation.resume import split_done
from tasks.intake.plan import derive_seed, plan_rows, request_fingerprint, safe_stem
from tasks.intake.validate import BriefRow
from tests.support.audio_files import make_audio
from tests.support.riff_info import read_riff_info
from textmusic.audio.identity import sha256_file
from textmusic.contract import OUTPUT_FORMATS, TextToMusicRequest

VALUES = {
    "title": "Ünïcode ☂ Title", "artist": "TrackFoundry", "composer": "A. Composer", "publisher": "Pub Ltd",
    "album": "demo", "genre": "lofi, chill", "bpm": "84", "comment": "a calm prompt", "lyrics": "[verse]\nla la",
    "date": "2026-11-23", "isrc": "USRC17607839", "key": "Dbm", "version": "60s", "mood": "calm",
    "description": "for study playlists", "keywords": "study, rain", "seed": "4294967295",
    "prompt": "a calm prompt", "prompt_strength": "2", "balance_strength": "0.7", "tags": "lofi|chill",
    "generation_id": "abc123", "provider": "textmusic-local", "request_fingerprint": "f" * 64,
}


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_tags_round_trip_in_each_format(tmp_path, fmt):
    path = make_audio(tmp_path / f"a.{fmt}", fmt)
    tag_and_verify(path, VALUES)
    assert read_tags(path) == VALUES
    assert check_audio(path, fmt, 2.0, 0.1).sample_rate == 44100  # still decodes after tagging


def test_native_storage_per_format(tmp_path):
    from mutagen.flac import FLAC
    from mutagen.mp4 import MP4
    from mutagen.wave import WAVE

    wav = make_audio(tmp_path / "a.wav", "wav")
    tag_and_verify(wav, VALUES)
    tags = WAVE(wav).tags
    assert tags.version[:2] == (2, 4) and tags["TXXX:SEED"].text == ["4294967295"]
    assert tags["TBPM"].text == ["84"] and tags["TKEY"].text == ["Dbm"] and tags["TMOO"].text == ["calm"]
    assert tags["TSRC"].text == ["USRC17607839"] and tags["TIT3"].text == ["60s"]
    assert read_riff_info(wav)["title"] == VALUES["title"]  # RIFF LIST-INFO for Windows tools
    flac = make_audio(tmp_path / "a.flac", "flac")
    tag_and_verify(flac, VALUES)
    assert FLAC(flac)["INITIALKEY"] == ["Dbm"] and FLAC(flac)["MOOD"] == ["calm"]
    m4a = make_audio(tmp_path / "a.m4a", "m4a")
    tag_and_verify(m4a, VALUES)
    assert MP4(m4a).tags["tmpo"] == [84] and bytes(MP4(m4a).tags["----:com.apple.iTunes:SEED"][0]) == b"4294967295"


def test_audio_check_catches_truncation_wrong_container_and_length(tmp_path):
    path = make_audio(tmp_path / "a.mp3", "mp3", seconds=3)
    with pytest.raises(AudioCheckError, match="not flac"):
        check_audio(path, "flac", None, 0.1)
    with pytest.raises(AudioCheckError, match="lasts"):
        check_audio(path, "mp3", 10.0, 0.25)
    wav = make_audio(tmp_path / "b.wav", "wav", seconds=3)
    data = wav.read_bytes()
    wav.write_bytes(data[:40])
    with pytest.raises(AudioCheckError):
        check_audio(wav, "wav", 3.0, 0.25)


def test_seeds_fingerprints_and_safe_names():
    assert derive_seed("cat", "t1") == derive_seed("cat", "t1") != derive_seed("cat", "t2")
    assert derive_seed("cat", "t1") != derive_seed("other", "t1")
    rows = [BriefRow(1, "t1", "../../x", TextToMusicRequest(prompt="p")),
            BriefRow(2, "=cmd", "=HYPERLINK(\"evil\")", TextToMusicRequest(prompt="p", seed=9))]
    planned = plan_rows(rows, "cat", "local", True)
    assert planned[0].request.seed == derive_seed("cat", "t1") and planned[0].seed_source == "derived"
    assert planned[1].request.seed == 9 and planned[1].seed_source == "brief"
    for row in planned:
        name = row.file_name(0)
        assert "/" not in name and "\\" not in name and not name.startswith((".", "=", "-"))
    base = TextToMusicRequest(prompt="p", seed=1, duration_seconds=30)
    assert request_fingerprint(base, "local", True) != request_fingerprint(
        base.model_copy(update={"duration_seconds": 40}), "local", True)
    assert request_fingerprint(base, "h", False) == request_fingerprint(
        base.model_copy(update={"duration_seconds": 40}), "h", False)
    assert safe_stem("🎵 émoji name") and len(safe_stem("x" * 500)) <= 90


def test_long_track_ids_keep_their_row_and_song_numbers_in_file_names():
    """Names are bounded per part: the "-row" and song suffixes that keep files apart must survive the cut."""
    long_id = "a" * 100
    rows = [BriefRow(1, long_id, "Song", TextToMusicRequest(prompt="p", seed=1, num_songs=2)),
            BriefRow(2, long_id, "Song", TextToMusicRequest(prompt="p", seed=2, num_songs=2)),
            BriefRow(3, long_id, "Song", TextToMusicRequest(prompt="p", seed=3))]
    planned = plan_rows(rows, "cat", "local", True)
    names = [row.file_name(i, 84.0, version) for row in planned for i in range(row.request.num_songs)
             for version in ("", "30s")]
    assert len(set(names)) == len(names) == 10, names


def test_ledger_journal_survives_and_consolidates(tmp_path):
    first = LedgerRecord(catalog="c", track_id="a", status="ready", cost_cents=20, row=1, prompt="=1+1")
    append_journal(tmp_path, [first])
    with open(tmp_path / ".ledger.jsonl", "a") as fh:
        fh.write('{"catalog": "c", "track_id": "b", "sta')  # a crash mid-line
    assert [r.track_id for r in load_ledger(tmp_path)] == ["a"]
    write_ledger(tmp_path, [first, LedgerRecord(catalog="c", track_id="b", status="failed", row=2)])
    assert not (tmp_path / ".ledger.jsonl").exists()
    frame = pd.read_parquet(tmp_path / "ledger.parquet")
    assert list(frame["track_id"]) == ["a", "b"] and frame["cost_cents"].sum() == 20
    csv_text = (tmp_path / "ledger.csv").read_text()
    assert "'=1+1" in csv_text and ",=1+1" not in csv_text
    assert {r.track_id for r in load_ledger(tmp_path)} == {"a", "b"}


def test_resume_skips_only_intact_matching_rows(tmp_path):
    row = plan_rows([BriefRow(1, "t1", "One", TextToMusicRequest(prompt="p", seed=3))], "c", "local", True)[0]
    audio = make_audio(tmp_path / row.file_name(0), "wav")
    done = LedgerRecord(catalog="c", track_id="t1", status="ready", audio_path=audio.name,
                        sha256=sha256_file(audio), request_fingerprint=row.fingerprint)
    todo, finished = split_done([row], [done], tmp_path)
    assert not todo and finished[0].track_id == "t1"
    changed = done.model_copy(update={"request_fingerprint": "other"})
    assert split_done([row], [changed], tmp_path)[0] == [row]
    audio.write_bytes(audio.read_bytes()[:-10])  # the file was damaged since
    assert split_done([row], [done], tmp_path)[0] == [row]
