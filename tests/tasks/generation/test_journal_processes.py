"""The journal is written by tasks in several processes at once (Dask): records longer than a pipe or
stdio buffer (long lyrics) must never interleave, because those lines are what prevents paying twice."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from tasks.catalog.ledger import SUBMITTED, LedgerRecord, _read_journal, append_journal

PROCESSES, RECORDS = 4, 40
LYRICS = "la " * 20_000  # 60 kB per record: many write() calls for a buffered writer


def writer(out_dir: str, worker: int) -> None:
    for i in range(RECORDS):
        record = LedgerRecord(catalog="c", track_id=f"w{worker}-{i}", status=SUBMITTED, lyrics=LYRICS,
                              generation_id=f"g{worker}-{i}")
        append_journal(Path(out_dir), [record, record.model_copy(update={"song_index": 1})])


def test_concurrent_processes_never_interleave_journal_lines(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=writer, args=(str(tmp_path), w)) for w in range(PROCESSES)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    records = _read_journal(tmp_path)
    assert len(records) == PROCESSES * RECORDS * 2
    assert all(r.lyrics == LYRICS for r in records)
