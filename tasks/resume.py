"""Resume: a row whose songs are already ready, with the same fingerprint and intact files, is not redone."""

from __future__ import annotations

from pathlib import Path

from .audio import sha256_file
from .ledger import LedgerRecord
from .plan import PlannedRow


def finished_records(row: PlannedRow, previous: list[LedgerRecord], out_dir: Path) -> list[LedgerRecord] | None:
    """The previous run's records for this row if every song is done and its file is what was recorded."""
    songs = [r for r in previous if r.track_id == row.track_id and r.request_fingerprint == row.fingerprint]
    songs = [r for r in songs if r.status == "ready"]
    if sorted(r.song_index for r in songs) != list(range(row.request.num_songs)):
        return None
    for record in songs:
        path = out_dir / record.audio_path
        if not record.audio_path or not path.is_file() or sha256_file(path) != record.sha256:
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
