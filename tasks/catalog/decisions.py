"""Review decisions: what a person decided about each delivered take, kept in `DIR/review.csv`.

A decision names the take it was made on (track, song, seed and file): after `--regenerate-rejected` gives a
row a new seed, the old "reject" no longer applies to the new take. The file is rewritten atomically under a
lock on every decision, so a crash or a second review server never leaves half a file or loses a decision.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, Field

from tasks.catalog.ledger import LedgerRecord, spreadsheet_safe

REVIEW_CSV = "review.csv"
_LOCK = ".review.lock"
Decision = Literal["approve", "reject", "note"]  # "note": a comment, no decision yet
DECISIONS: tuple[str, ...] = get_args(Decision)
MAX_NOTE_CHARS = 2000


class ReviewEntry(BaseModel):
    """One take's latest decision."""

    track_id: str
    song_index: int = 0
    seed: int | None = None
    file: str = ""
    decision: Decision
    note: str = Field("", max_length=MAX_NOTE_CHARS)
    decided_at: str = ""

    def applies_to(self, record: LedgerRecord) -> bool:
        """Whether this decision was made on `record`'s take (same track, song and seed)."""
        return (self.track_id, self.song_index, self.seed) == (record.track_id, record.song_index, record.seed)


COLUMNS: tuple[str, ...] = tuple(ReviewEntry.model_fields)


def load_decisions(out_dir: Path) -> list[ReviewEntry]:
    """Every take's latest decision, in the order they were first made; none when there is no review yet."""
    path = out_dir / REVIEW_CSV
    if not path.exists():
        return []
    entries: dict[tuple[str, int, int | None], ReviewEntry] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            clean = {k: _unescape(v) for k, v in row.items() if k in COLUMNS and v not in (None, "")}
            entry = ReviewEntry.model_validate(clean)
            entries[(entry.track_id, entry.song_index, entry.seed)] = entry
    return list(entries.values())


def decision_for(record: LedgerRecord, entries: Iterable[ReviewEntry]) -> ReviewEntry | None:
    """The decision made on this record's take, if any."""
    return next((e for e in entries if e.applies_to(record)), None)


def record_decision(out_dir: Path, entry: ReviewEntry) -> ReviewEntry:
    """Store `entry` as its take's latest decision (stamped with the time) and return it as stored. A "note"
    on a take already approved or rejected changes the note and keeps the decision."""
    entry = entry.model_copy(update={"decided_at": datetime.now(UTC).isoformat(timespec="seconds")})
    with _locked(out_dir):
        entries = {(e.track_id, e.song_index, e.seed): e for e in load_decisions(out_dir)}
        key = (entry.track_id, entry.song_index, entry.seed)
        if entry.decision == "note" and key in entries:
            entry = entry.model_copy(update={"decision": entries[key].decision})
        entries[key] = entry
        _write(out_dir / REVIEW_CSV, entries.values())
    return entry


@contextmanager
def _locked(out_dir: Path):  # type: ignore[no-untyped-def]
    fd = os.open(out_dir / _LOCK, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, entries: Iterable[ReviewEntry]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS))
    writer.writeheader()
    for entry in entries:
        writer.writerow({k: spreadsheet_safe(v) if v is not None else "" for k, v in entry.model_dump().items()})
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _unescape(value: str) -> str:
    """Undo `spreadsheet_safe`'s leading quote, so a note reads back as it was written."""
    return value[1:] if value.startswith("'") and value[1:2] in ("=", "+", "-", "@", "\t", "\r") else value
