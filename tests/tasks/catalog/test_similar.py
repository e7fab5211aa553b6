"""Near-duplicate flags on real engine audio: one flow run over the local service, then tasks/catalog/similar.py."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile

from tasks.catalog import similar
from tasks.catalog.ledger import LedgerRecord, load_ledger, write_ledger
from tasks.catalog.similar import DEFAULT_THRESHOLD, fingerprint, flag_similar, similar_pairs
from tasks.intake.brief import BRIEF_COLUMNS
from textmusic.audio.identity import same_audio

LOFI = "Chill lo-fi hip hop beat with mellow piano for studying"
COLUMNS = ["track_id", "name", "prompt", "tags", "lyrics", "seed", "num_songs", "output_format",
           "output_bit_rate", "bpm", "duration_seconds"]
ROWS = [
    # one request three times: twice as wav under two ids (identical audio), once as mp3 (re-encoded)
    ("dup-a", "Rainy A", LOFI, "lofi", "", "101", "", "wav", "", "84", "15"),
    ("dup-b", "Rainy B", LOFI, "lofi", "", "101", "", "wav", "", "84", "15"),
    ("dup-mp3", "Rainy C", LOFI, "lofi", "", "101", "", "mp3", "128", "84", "15"),
    # the same prompt with another seed (another key and progression): a different cue
    ("seed-103", "Rainy D", LOFI, "lofi", "", "103", "", "wav", "", "84", "15"),
    # rows of catalogs/briefs/example.csv, shortened; jazz-005's two songs are two seeds of one prompt
    ("house-002", "Night Drive", "Driving deep house groove with warm pads and a steady four-on-the-floor kick",
     "house|electronic", "", "", "", "wav", "", "122", "15"),
    ("ambient-003", "Slow Tides", "Calm ambient soundscape, soft evolving pads, no drums", "ambient|calm", "",
     "303", "", "flac", "", "auto", "15"),
    ("jazz-005", "Blue Corner", "Late night jazz trio with upright bass, brushed drums and piano", "jazz|trio",
     "", "505", "2", "m4a", "256", "110", "15"),
    ("cine-006", "Rising Banners", "Epic cinematic orchestral theme with strings and brass, building to a big "
     "finish", "", "", "606", "", "mp3", "320", "90", "15"),
]
DUPLICATES = {"dup-a", "dup-b", "dup-mp3"}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """The catalog folder and its ledger, as the flow produced them (no flags yet)."""
    from flows.produce_catalog import run_catalog

    root = tmp_path_factory.mktemp("similar")
    frame = pd.DataFrame(ROWS, columns=COLUMNS)
    for column in BRIEF_COLUMNS:
        if column not in frame:
            frame[column] = ""
    frame.to_csv(root / "brief.csv", index=False)
    out = root / "catalog"
    summary = run_catalog(root / "brief.csv", "similar", out)
    assert summary["ready"] == 9, summary
    return out, load_ledger(out)


@pytest.fixture(scope="module")
def flagged(catalog):
    out, records = catalog
    return {(r.track_id, r.song_index): r for r in flag_similar(out, records)}


def _paths(record: LedgerRecord) -> set[str]:
    return set(record.similar_to.split("|")) - {""}


def test_same_request_under_two_ids_is_flagged_both_ways(catalog, flagged):
    out, _ = catalog
    a, b = flagged[("dup-a", 0)], flagged[("dup-b", 0)]
    assert same_audio(out / a.audio_path, out / b.audio_path)  # the engine rendered the same samples
    assert a.sha256 != b.sha256  # different files (their tags differ) ...
    assert b.audio_path in _paths(a) and a.audio_path in _paths(b)  # ... flagged as each other's duplicate
    assert a.similarity >= 0.999 and b.similarity >= 0.999
    assert a.similar_to.split("|")[0] == b.audio_path  # the identical audio is listed before the mp3


def test_same_request_as_wav_and_mp3_is_flagged(flagged):
    mp3, wav = flagged[("dup-mp3", 0)], flagged[("dup-a", 0)]
    assert mp3.audio_path.endswith(".mp3") and wav.audio_path.endswith(".wav")
    assert _paths(mp3) == {wav.audio_path, flagged[("dup-b", 0)].audio_path}
    assert mp3.similarity >= DEFAULT_THRESHOLD


def test_distinct_tracks_and_other_seeds_are_not_flagged(flagged):
    others = [r for key, r in flagged.items() if key[0] not in DUPLICATES]
    assert len(others) == 6 and {r.track_id for r in others} >= {"seed-103", "jazz-005"}
    assert [(r.track_id, r.similar_to, r.similarity) for r in others if r.similar_to or r.similarity is not None] == []
    jazz = [flagged[("jazz-005", 0)], flagged[("jazz-005", 1)]]
    assert jazz[0].seed != jazz[1].seed  # two takes of one prompt, compared with each other too
    for dup in DUPLICATES:
        assert _paths(flagged[(dup, 0)]) == {flagged[(d, 0)].audio_path for d in DUPLICATES - {dup}}


def test_scores_separate_duplicates_from_other_takes_with_a_margin(catalog):
    """Every pair's score: the duplicates near 1, everything else well under the threshold."""
    out, records = catalog
    pairs = similar_pairs(out, records, threshold=-1.0)
    assert len(pairs) == 9 * 8 // 2
    dup_scores = [s for a, b, s in pairs if {a.track_id, b.track_id} <= DUPLICATES]
    other_scores = [s for a, b, s in pairs if not {a.track_id, b.track_id} <= DUPLICATES]
    assert len(dup_scores) == 3 and min(dup_scores) >= 0.998
    assert max(other_scores) <= DEFAULT_THRESHOLD - 0.05, max(other_scores)


def test_a_pairs_score_does_not_depend_on_the_rest_of_the_catalog(catalog):
    out, records = catalog
    two = [r for r in records if r.track_id in ("dup-a", "dup-mp3")]
    alone = similar_pairs(out, two, threshold=-1.0)
    among_all = [s for a, b, s in similar_pairs(out, records, threshold=-1.0)
                 if {a.track_id, b.track_id} == {"dup-a", "dup-mp3"}]
    assert len(alone) == 1 and alone[0][2] == pytest.approx(among_all[0], abs=1e-6)


def test_fingerprints_are_cached_by_sha256(catalog, monkeypatch):
    out, records = catalog
    calls: list[str] = []

    def counting(path):
        calls.append(path.name)
        return fingerprint(path)

    monkeypatch.setattr(similar, "fingerprint", counting)
    (out / similar.CACHE_FILE).unlink(missing_ok=True)
    first = flag_similar(out, records)
    assert sorted(calls) == sorted(r.audio_path for r in records if r.status == "ready")
    calls.clear()
    second = flag_similar(out, records)
    assert calls == [] and second == first  # the second call decodes nothing and finds the same
    copy = out / "dup-a-again.wav"
    shutil.copyfile(out / next(r.audio_path for r in records if r.track_id == "dup-a"), copy)
    extra = LedgerRecord(catalog="similar", track_id="dup-again", status="ready", audio_path=copy.name,
                         output_format="wav", sha256="0" * 64)
    third = flag_similar(out, [*records, extra])
    assert calls == [copy.name]  # only the new file
    assert third[-1].similarity >= 0.999 and "dup-a" in third[-1].similar_to
    copy.unlink()


def test_stale_flags_are_cleared_and_other_statuses_untouched(catalog, flagged):
    out, records = catalog
    stale = [r.model_copy(update={"similar_to": "gone.wav", "similarity": 0.999}) for r in records]
    failed = LedgerRecord(catalog="similar", track_id="lost-1", status="failed", similar_to="x.wav", similarity=0.5)
    result = flag_similar(out, [*stale, failed])
    assert result[-1] == failed
    by_key = {(r.track_id, r.song_index): r for r in result[:-1]}
    assert {k: (r.similar_to, r.similarity) for k, r in by_key.items()} == \
        {k: (r.similar_to, r.similarity) for k, r in flagged.items()}


def test_flags_survive_the_ledger_files(flagged, tmp_path):
    write_ledger(tmp_path, list(flagged.values()))
    loaded = {(r.track_id, r.song_index): r for r in load_ledger(tmp_path)}
    assert {k: (r.similar_to, r.similarity) for k, r in loaded.items()} == \
        {k: (r.similar_to, r.similarity) for k, r in flagged.items()}
    assert "similar_to" in pd.read_csv(tmp_path / "ledger.csv").columns


def test_gain_and_leading_silence_do_not_change_the_score(catalog, tmp_path):
    """A quieter copy with 1.5 s of silence before it is still the same audio."""
    out, records = catalog
    original = out / next(r.audio_path for r in records if r.track_id == "dup-a")
    audio, rate = soundfile.read(original, dtype="float32")
    shifted = np.concatenate([np.zeros((int(1.5 * rate), audio.shape[1]), np.float32), audio * 0.25])
    soundfile.write(tmp_path / "quiet.wav", shifted, rate)
    score = float(fingerprint(original) @ fingerprint(tmp_path / "quiet.wav"))
    assert score >= 0.99, score
    assert np.linalg.norm(fingerprint(original)) == pytest.approx(1.0, abs=1e-5)


def test_a_file_that_does_not_decode_is_left_out(catalog, tmp_path):
    out, records = catalog
    folder = tmp_path / "cat"
    folder.mkdir()
    good = next(r for r in records if r.track_id == "dup-a")
    shutil.copyfile(out / good.audio_path, folder / good.audio_path)
    (folder / "broken.wav").write_bytes(b"RIFF not audio")
    broken = good.model_copy(update={"track_id": "broken", "audio_path": "broken.wav", "sha256": "f" * 64,
                                     "similar_to": good.audio_path, "similarity": 1.0})
    result = flag_similar(folder, [good, broken])
    assert [(r.similar_to, r.similarity) for r in result] == [("", None), ("", None)]
