"""The review → regenerate loop: takes a reviewer rejected leave the delivered folder and their rows get a new seed.

A rejected take is not forgotten: its record stays in the ledger as `replaced` (with its cost: it was paid
for) and its file moves to `DIR/rejected/`. Planning then sees the replaced fingerprint and moves the row on
to the next seed of its chain (`tasks.intake.plan.retake_seed`), so the row is generated anew, and every later run
arrives at the same new take without being told. A row is one request: when a reviewer approved one of its
songs, the row is left alone (regenerating it would replace the approved song too).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tasks.catalog.decisions import ReviewEntry, decision_for
from tasks.catalog.ledger import READY, REJECTED_DIR, REPLACED, LedgerRecord, record_key


@dataclass(frozen=True)
class Retirement:
    """What `retire_rejected` did: the ledger as it now stands and the rows it would not touch, with why."""

    records: list[LedgerRecord]
    retired: list[LedgerRecord]
    kept: dict[str, str]  # track_id → why its rejected take was not replaced


def replaced_takes(records: list[LedgerRecord]) -> frozenset[tuple[str, str]]:
    """(track_id, request fingerprint) of every replaced take: what planning steps past."""
    return frozenset((r.track_id, r.request_fingerprint) for r in records if r.status == REPLACED)


def retire_rejected(out_dir: Path, records: list[LedgerRecord], entries: list[ReviewEntry],
                    journal: Callable[[list[LedgerRecord]], None]) -> Retirement:
    """Mark the rejected delivered takes `replaced` (journaled first: money facts before files), then move
    their files out of the delivered folder."""
    rows: dict[tuple[str, str], list[LedgerRecord]] = {}
    for record in records:
        if record.status == READY:
            rows.setdefault((record.track_id, record.request_fingerprint), []).append(record)
    retired: list[LedgerRecord] = []
    kept: dict[str, str] = {}
    for (track_id, _), songs in rows.items():
        decisions = [decision_for(song, entries) for song in songs]
        rejects = [d for d in decisions if d is not None and d.decision == "reject"]
        if not rejects:
            continue
        if any(d is not None and d.decision == "approve" for d in decisions):
            kept[track_id] = "another song of the row is approved; the row is one request"
            continue
        note = "; ".join(d.note for d in rejects if d.note)
        retired += [song.model_copy(update={
            "status": REPLACED, "audio_path": _rejected_path(song),
            "credentials_file": _rejected_path(song, song.credentials_file) if song.credentials_file else "",
            "error": f"rejected in review{': ' + note if note else ''}"}) for song in songs]
    if retired:
        journal(retired)
        moves = {record_key(r): r for r in retired}
        for record in records:
            target = moves.get(record_key(record))
            if target:
                _move_out(out_dir / record.audio_path, out_dir / target.audio_path)
                if record.credentials_file:  # a sidecar manifest goes with its file
                    _move_out(out_dir / record.credentials_file, out_dir / target.credentials_file)
    done = {record_key(r): r for r in retired}
    merged = [done.get(record_key(r), r) for r in records]
    return Retirement(merged, retired, kept)


def _rejected_path(record: LedgerRecord, name: str = "") -> str:
    """Where a rejected take's file (`name`, by default its audio) goes: named by its seed, so a row rejected
    twice keeps both takes."""
    path = Path(name or record.audio_path)
    return f"{REJECTED_DIR}/{path.stem}-seed{record.seed}{path.suffix}"


def _move_out(source: Path, target: Path) -> None:
    """Move a delivered file out (a rerun after a crash between journal and move finds it gone: fine)."""
    if source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
