"""Resume: a row whose songs are already ready, with the same fingerprint and intact files, is not redone; any
other row's fate is decided from its ledger records' `status` and `resume` fields (`resumption`): submitted
anew, its paid tracks polled, its lost answer sent again with the same Idempotency-Key, or held for the user."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tasks.catalog.ledger import (
    HELD,
    POLL,
    READY,
    RESEND,
    RESUBMIT_UNANSWERED,
    SUBMITTED,
    SUBMITTING,
    UNANSWERED,
    LedgerRecord,
)
from tasks.delivery.check import intact
from tasks.intake.plan import PlannedRow
from tasks.run import RunOptions


def row_songs(row: PlannedRow, records: list[LedgerRecord]) -> int:
    """The songs a row has: those it asks, or more when its provider made more (a task of several songs,
    sunoapi.org's 2 a call), known from their paid records (the row's own: same track_id and fingerprint)."""
    return max([row.request.num_songs, *(r.song_index + 1 for r in records if r.generation_id)])


def finished_records(row: PlannedRow, previous: list[LedgerRecord], out_dir: Path) -> list[LedgerRecord] | None:
    """The previous run's records for this row if every song is done and its file is what was recorded."""
    mine = [r for r in previous if r.track_id == row.track_id and r.request_fingerprint == row.fingerprint]
    songs = [r for r in mine if r.status == READY]
    if sorted(r.song_index for r in songs) != list(range(row_songs(row, mine))):
        return None
    if not all(intact(out_dir, r.audio_path, r.sha256) for r in songs):
        return None
    return [r.model_copy(update={"row": row.row}) for r in sorted(songs, key=lambda r: r.song_index)]


def split_done(
    planned: list[PlannedRow], previous: list[LedgerRecord], out_dir: Path
) -> tuple[list[PlannedRow], list[LedgerRecord]]:
    """(rows still to generate, records of rows already finished)."""
    todo, done = [], []
    for row in planned:
        records = finished_records(row, previous, out_dir)
        if records is None:
            todo.append(row)
        else:
            done.extend(records)
    return todo, done



@dataclass(frozen=True)
class Resumption:
    """What a row needs given the ledger: a new submission, its paid tracks polled, its lost answer sent
    again with the same Idempotency-Key, or nothing without the user's consent (`hold`)."""

    kind: Literal["new", "poll", "resend", "hold"]
    records: list[LedgerRecord]
    key: str = ""


def resumption(row: PlannedRow, previous: list[LedgerRecord], options: RunOptions,
               idempotent: bool) -> Resumption:
    """Decided from the records' `status` and `resume` fields (data, never the error text)."""
    ours = [r for r in previous if r.track_id == row.track_id and r.request_fingerprint == row.fingerprint]
    count = row_songs(row, ours)
    mine = {r.song_index: r for r in ours if r.song_index < count}
    songs = [mine.get(i) for i in range(count)]
    present = [s for s in songs if s is not None]
    # Paid tracks, known by id, not all in the catalog (the row would not be here otherwise): fetch them.
    if present and all(s.generation_id and (s.status in (SUBMITTED, READY) or s.resume == POLL)
                       for s in present):
        return Resumption("poll", present)
    first = songs[0]
    if first is None:
        return Resumption("new", [])
    unanswered = first.status in (SUBMITTING, UNANSWERED) or first.resume in (RESEND, RESUBMIT_UNANSWERED)
    if unanswered and not first.generation_id:
        if idempotent and first.idempotency_key:
            return Resumption("resend", [first], first.idempotency_key)
        if not options.resubmit_unanswered:
            note = "may have been charged; run with --resubmit-unanswered to send it again"
            return Resumption("hold", [first.model_copy(update={
                "status": UNANSWERED if first.status == SUBMITTING else first.status,
                "resume": "unanswered", "row": row.row,
                "error": first.error or f"the submission's answer never came: {note}"})])
    held = [s for s in songs if s is not None and s.resume in HELD]
    if held and not options.regenerate_lost:
        return Resumption("hold", [s.model_copy(update={"row": row.row}) for s in songs if s is not None])
    if any(s is not None and s.resume == RESUBMIT_UNANSWERED for s in songs) and not options.resubmit_unanswered:
        return Resumption("hold", [s.model_copy(update={"row": row.row}) for s in songs if s is not None])
    return Resumption("new", [])
