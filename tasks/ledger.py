"""The cost and status ledger: one record per produced song and per rejected, failed or skipped row.

Finished rows are appended to a journal (`.ledger.jsonl`, flushed and fsynced per row) the moment they
end, so a crash loses no finished track; `ledger.parquet` and `ledger.csv` are rewritten atomically
from it at the end of a run. The ledger is what a later run consults to skip work already paid for.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

JOURNAL = ".ledger.jsonl"
LEDGER_PARQUET = "ledger.parquet"
LEDGER_CSV = "ledger.csv"
REJECTS_CSV = "rejects.csv"
STATUSES = ("ready", "failed", "rejected", "skipped")
# Journal-only: a request the provider accepted (and charged for) whose audio is not yet in the catalog.
SUBMITTED = "submitted"
# Journal-only: a request about to be sent with its Idempotency-Key; if the answer never arrives, the
# next run sends the same key and the local service answers the first submission instead of charging again.
SUBMITTING = "submitting"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class LedgerRecord(BaseModel):
    catalog: str
    track_id: str
    song_index: int = 0
    name: str = ""
    status: str
    seed: int | None = None
    seed_source: str = ""
    prompt: str = ""
    tags: str = ""
    lyrics: str = ""
    prompt_strength: float | None = None
    balance_strength: float | None = None
    num_songs: int | None = None
    output_format: str = ""
    output_bit_rate: str = ""
    bpm: float | None = None
    bpm_requested: str = ""
    duration_requested: float | None = None
    store_audio: bool | None = None
    generation_id: str = ""
    engine_version: str = ""
    idempotency_key: str = ""
    audio_path: str = ""
    duration_seconds: float | None = None
    cost_cents: int = 0
    cost_usd: float = 0.0
    error: str = ""
    row: int | None = None
    request_fingerprint: str = ""
    sha256: str = ""
    provider: str = ""
    attempts: int = 0
    started_at: str = ""
    finished_at: str = ""
    # Catalog metadata from the brief (or the catalog settings), as tagged.
    artist: str = ""
    composer: str = ""
    publisher: str = ""
    mood: str = ""
    key: str = ""
    isrc: str = ""
    version: str = ""
    description: str = ""
    keywords: str = ""
    # Re-renders only: whether the decoded audio equals the original's.
    identical_to_original: bool | None = None


COLUMNS: tuple[str, ...] = tuple(LedgerRecord.model_fields)
_NULLABLE_INTS = ("seed", "num_songs", "row")


def append_journal(out_dir: Path, records: list[LedgerRecord]) -> None:
    with open(out_dir / JOURNAL, "a", encoding="utf-8") as fh:
        for record in records:
            fh.write(record.model_dump_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _read_journal(out_dir: Path) -> list[LedgerRecord]:
    path = out_dir / JOURNAL
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(LedgerRecord.model_validate_json(line))
        except ValueError:
            continue  # a line cut short by a crash mid-write
    return records


def load_ledger(out_dir: Path) -> list[LedgerRecord]:
    """The latest record per (track_id, song_index, fingerprint): the ledger overlaid by the journal.

    A rejected duplicate of a track_id has no fingerprint, so it never hides the produced original."""
    latest: dict[tuple[str, int, str], LedgerRecord] = {}
    parquet = out_dir / LEDGER_PARQUET
    if parquet.exists():
        frame = pd.read_parquet(parquet)
        for item in frame.to_dict(orient="records"):
            clean = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in item.items()}
            record = LedgerRecord.model_validate({k: v for k, v in clean.items() if k in COLUMNS and v is not None})
            latest[(record.track_id, record.song_index, record.request_fingerprint)] = record
    for record in _read_journal(out_dir):
        latest[(record.track_id, record.song_index, record.request_fingerprint)] = record
    return list(latest.values())


def _atomic_write(path: Path, write: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)  # type: ignore[operator]
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def spreadsheet_safe(value: object) -> object:
    """Neutralise text that a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def ledger_frame(records: list[LedgerRecord]) -> pd.DataFrame:
    frame = pd.DataFrame([r.model_dump() for r in records], columns=list(COLUMNS))
    frame = frame.astype({c: "Int64" for c in _NULLABLE_INTS})
    return frame.sort_values(["row", "track_id", "song_index"], na_position="last").reset_index(drop=True)


def write_ledger(out_dir: Path, records: list[LedgerRecord]) -> pd.DataFrame:
    """Replace ledger.parquet and ledger.csv atomically; the journal is folded in and emptied."""
    frame = ledger_frame(records)
    _atomic_write(out_dir / LEDGER_PARQUET, lambda tmp: frame.to_parquet(tmp, index=False))
    safe = frame.map(spreadsheet_safe)
    _atomic_write(out_dir / LEDGER_CSV, lambda tmp: safe.to_csv(tmp, index=False))
    journal = out_dir / JOURNAL
    if journal.exists():
        journal.unlink()
    return frame


def write_rejects(out_dir: Path, rejects: list[dict[str, object]]) -> None:
    frame = pd.DataFrame(rejects, columns=["row", "track_id", "column", "reason"]).map(spreadsheet_safe)
    _atomic_write(out_dir / REJECTS_CSV, lambda tmp: frame.to_csv(tmp, index=False))


def summarize(records: list[LedgerRecord]) -> dict[str, object]:
    counts = {status: sum(1 for r in records if r.status == status) for status in STATUSES}
    cents = sum(r.cost_cents for r in records)
    minutes = sum((r.duration_seconds or 0.0) for r in records if r.status == "ready") / 60
    return {**counts, "minutes": round(minutes, 2), "cost_cents": cents, "cost_usd": cents / 100}
