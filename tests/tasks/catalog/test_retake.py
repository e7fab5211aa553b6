"""The review → regenerate loop: rejected takes get new seeds and new files, approved and undecided ones are
untouched and not charged again; the rejected takes stay in the ledger (as `replaced`) and in `rejected/`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tasks.catalog.decisions import ReviewEntry, load_decisions, record_decision
from tasks.catalog.ledger import REPLACED, LedgerRecord, load_ledger
from tasks.catalog.retake import retire_rejected
from tasks.intake.plan import retake_seed
from tests.support.runs import brief, trackfoundry
from textmusic.audio.identity import sha256_file
from textmusic.testing.standins import Shape, StandIn


def _decide(out: Path, record: LedgerRecord, decision: str, note: str = "") -> None:
    record_decision(out, ReviewEntry(track_id=record.track_id, song_index=record.song_index, seed=record.seed,
                                     file=record.audio_path, decision=decision, note=note))  # type: ignore[arg-type]


def _ready(out: Path) -> dict[str, LedgerRecord]:
    return {r.track_id: r for r in load_ledger(out) if r.status == "ready"}


def test_reject_two_regenerate_new_seeds_new_files_others_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with StandIn(Shape()) as api:
        path = brief(tmp_path, ["a", "b", "c", "d"])
        first = trackfoundry(tmp_path, api, path)
        assert first.returncode == 0, first.stderr[-3000:]
        before = _ready(out)
        stamps = {t: ((out / r.audio_path).stat().st_mtime_ns, sha256_file(out / r.audio_path))
                  for t, r in before.items()}
        _decide(out, before["a"], "reject", "too busy")
        _decide(out, before["c"], "reject")
        _decide(out, before["b"], "approve")
        paid_before = api.charged_cents
        posts_before = len(api.posts)

        second = trackfoundry(tmp_path, api, path, "--regenerate-rejected")
        assert second.returncode == 0, second.stderr[-3000:]
        assert len(api.posts) - posts_before == 2  # only the two rejected rows were sent
        sent = sorted(post["seed"] for post in api.posts[posts_before:])
        assert sent == sorted(retake_seed(before[t].seed or 0) for t in ("a", "c"))
        assert api.charged_cents > paid_before

        after = _ready(out)
        for track in ("a", "c"):
            new = after[track]
            assert new.seed == retake_seed(before[track].seed or 0) and new.seed_source == "retake"
            assert new.sha256 != before[track].sha256 and sha256_file(out / new.audio_path) == new.sha256
        for track in ("b", "d"):  # approved and undecided: the same file, not rewritten, not charged again
            assert after[track] == before[track].model_copy(update={"row": after[track].row})
            assert stamps[track] == ((out / after[track].audio_path).stat().st_mtime_ns,
                                     sha256_file(out / after[track].audio_path))

        ledger = pd.read_parquet(out / "ledger.parquet")
        replaced = ledger[ledger.status == REPLACED]
        assert sorted(replaced.track_id) == ["a", "c"]
        assert (replaced.cost_cents > 0).all()  # the rejected takes were paid: their cost stays in the ledger
        assert ledger[ledger.track_id == "a"].error.str.contains("too busy").any()
        for _, take in replaced.iterrows():  # kept out of the delivered folder, checksum intact
            assert take.audio_path.startswith("rejected/")
            assert sha256_file(out / take.audio_path) == before[take.track_id].sha256
        delivered = {p.name for p in out.glob("*.flac")}
        assert delivered == {Path(r.audio_path).name for r in after.values()}
        assert sum(ledger.cost_cents) == api.charged_cents  # every cent charged is in the ledger

        posts = len(api.posts)
        third = trackfoundry(tmp_path, api, path)  # a later plain run lands on the new takes: nothing sent
        assert third.returncode == 0, third.stderr[-3000:]
        assert len(api.posts) == posts and _ready(out) == after
        # the old decisions name the old takes: they do not reject the new ones
        assert all(d.seed != after[d.track_id].seed for d in load_decisions(out) if d.decision == "reject")


def _take(track_id: str, song: int, seed: int, tmp: Path) -> LedgerRecord:
    name = f"{track_id}-{song}.flac"
    (tmp / name).write_bytes(f"{track_id}{song}".encode())
    return LedgerRecord(catalog="c", track_id=track_id, song_index=song, status="ready", seed=seed,
                        audio_path=name, request_fingerprint=f"fp-{track_id}", generation_id=f"g{seed}")


def test_a_row_with_an_approved_song_is_not_regenerated(tmp_path: Path) -> None:
    records = [_take("pair", 0, 1, tmp_path), _take("pair", 1, 2, tmp_path), _take("solo", 0, 3, tmp_path)]
    _decide(tmp_path, records[0], "approve")
    _decide(tmp_path, records[1], "reject")
    _decide(tmp_path, records[2], "note", "maybe")
    journaled: list[LedgerRecord] = []
    result = retire_rejected(tmp_path, records, load_decisions(tmp_path), journaled.extend)
    assert result.retired == [] and journaled == [] and "approved" in result.kept["pair"]
    assert result.records == records and all((tmp_path / r.audio_path).exists() for r in records)


def test_a_row_rejected_twice_keeps_both_rejected_takes(tmp_path: Path) -> None:
    first = _take("solo", 0, 7, tmp_path)
    _decide(tmp_path, first, "reject")
    retired = retire_rejected(tmp_path, [first], load_decisions(tmp_path), lambda _: None).retired
    second = _take("solo", 0, retake_seed(7), tmp_path).model_copy(update={"request_fingerprint": "fp-2"})
    _decide(tmp_path, second, "reject")
    retired += retire_rejected(tmp_path, [second], load_decisions(tmp_path), lambda _: None).retired
    assert len({r.audio_path for r in retired}) == 2
    assert all((tmp_path / r.audio_path).read_bytes() == b"solo0" for r in retired)
    assert not (tmp_path / first.audio_path).exists()


def test_decisions_read_back_as_written_latest_per_take(tmp_path: Path) -> None:
    take = _take("solo", 0, 7, tmp_path)
    _decide(tmp_path, take, "reject", "=HYPERLINK(\"http://x\",\"y\"), ünïcode, \"quoted\"\nsecond line")
    _decide(tmp_path, take, "approve", "-3 dB please")
    _decide(tmp_path, take.model_copy(update={"seed": 8}), "reject")
    entries = load_decisions(tmp_path)
    assert [(e.seed, e.decision, e.note) for e in entries] == [(7, "approve", "-3 dB please"), (8, "reject", "")]
    text = (tmp_path / "review.csv").read_text(encoding="utf-8")
    assert "'-3 dB" in text  # a spreadsheet does not run it as a formula
    _decide(tmp_path, take, "note", "=HYPERLINK(\"http://x\",\"y\"), ünïcode, \"quoted\"\nsecond line")
    kept = load_decisions(tmp_path)[0]  # a note on an approved take keeps the approval
    assert kept.decision == "approve" and kept.note.startswith("=HYPERLINK") and kept.note.endswith("\nsecond line")
    assert not list(tmp_path.glob(".review.csv*"))  # no temporary file left behind


def test_a_rejected_take_leaves_with_its_versions_and_sidecars(tmp_path: Path) -> None:
    """Each file of the take goes to its own place in rejected/ (the song, its cut-down, the OGG's credentials
    sidecar): none is left behind as a stray file, none overwrites another."""
    song = _take("solo", 0, 7, tmp_path).model_copy(update={"credentials_file": "solo-0.c2pa"})
    (tmp_path / "solo-0.c2pa").write_bytes(b"manifest")
    cut = song.model_copy(update={"version": "30s", "parent": song.audio_path, "audio_path": "solo-0-30s.ogg",
                                  "credentials_file": "solo-0-30s.c2pa"})
    (tmp_path / cut.audio_path).write_bytes(b"cut")
    (tmp_path / cut.credentials_file).write_bytes(b"cut manifest")
    _decide(tmp_path, song, "reject")
    result = retire_rejected(tmp_path, [song, cut], load_decisions(tmp_path), lambda _: None)
    retired = result.retired
    moved = {r.version: r for r in retired}
    assert sorted(r.version for r in result.records) == ["", "30s"]  # each record replaced by its own
    assert (tmp_path / moved[""].audio_path).read_bytes() == b"solo0"
    assert (tmp_path / moved["30s"].audio_path).read_bytes() == b"cut"
    assert (tmp_path / moved[""].credentials_file).read_bytes() == b"manifest"
    assert (tmp_path / moved["30s"].credentials_file).read_bytes() == b"cut manifest"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file() and not p.name.startswith(".")) == ["review.csv"]
