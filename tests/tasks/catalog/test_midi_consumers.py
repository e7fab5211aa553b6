"""Catalog readers of version records meeting a MIDI version: a re-render compares it by its score (its tags name
another generation), and near-duplicate fingerprints never try to decode it as audio."""

from __future__ import annotations

import logging
from pathlib import Path

import mido
import pytest

from tasks.catalog.ledger import READY, LedgerRecord
from tasks.catalog.rerender import same_score
from tasks.catalog.similar import similar_pairs
from tasks.delivery.midi import tag_midi, tag_texts
from textmusic.audio.identity import sha256_file
from textmusic.server.synthetic import click_midi


@pytest.fixture
def original(tmp_path: Path) -> Path:
    path = tmp_path / "a.mid"
    path.write_bytes(click_midi(8.0, 120.0))
    tag_midi(path, tag_texts("Song", "(C) 2026 Label", "AI-generated. generation_id=one; seed=1"))
    return path


def test_a_rerendered_score_with_other_tags_is_the_same_score(original: Path, tmp_path: Path) -> None:
    again = tmp_path / "b.mid"
    again.write_bytes(click_midi(8.0, 120.0))
    tag_midi(again, tag_texts("Song", "(C) 2026 Label", "AI-generated. generation_id=two; seed=1"))
    assert original.read_bytes() != again.read_bytes()
    assert same_score(original, again)


def test_another_note_tempo_or_garbage_is_not_the_same_score(original: Path, tmp_path: Path) -> None:
    slower = tmp_path / "slower.mid"
    slower.write_bytes(click_midi(8.0, 100.0))
    assert not same_score(original, slower)
    moved = tmp_path / "moved.mid"
    midi = mido.MidiFile(original, charset="utf-8")
    note = next(i for i, m in enumerate(midi.tracks[1]) if m.type == "note_on")
    midi.tracks[1][note] = midi.tracks[1][note].copy(note=38)
    midi.save(moved)
    assert not same_score(original, moved)
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"MThd garbage")
    assert not same_score(original, junk)


def test_near_duplicate_fingerprints_leave_midi_files_out(original: Path, caplog: pytest.LogCaptureFixture) -> None:
    record = LedgerRecord(catalog="c", track_id="t", status=READY, audio_path=original.name, version="midi",
                          parent="t.wav", output_format="mid", sha256=sha256_file(original))
    with caplog.at_level(logging.WARNING):
        assert similar_pairs(original.parent, [record, record.model_copy(update={"track_id": "u"})]) == []
    assert "no fingerprint" not in caplog.text  # never decoded as audio, so never failed as audio
