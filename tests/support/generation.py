"""Running rows through a run's generation machinery (tasks/generation/machinery.py) in tests, with quick timings."""

from __future__ import annotations

from pathlib import Path

from tasks.catalog.ledger import LedgerRecord
from tasks.generation.machinery import Generation
from tasks.intake.plan import PlannedRow
from tasks.run import CatalogInfo, Provider, RunOptions
from tasks.settings import PipelineSettings
from textmusic.client import TextMusicClient
from textmusic.providers import Profile, load_profile

CATALOG = CatalogInfo(name="demo", artist="TF", date="2026-11-23")
QUICK = PipelineSettings(outage_probe_seconds=0.2, outage_budget_seconds=2.0, initial_in_flight=8)


def quick_profile(name: str = "verbatik", **update: object) -> Profile:
    """A shipped profile whose prior time to ready suits a test double (first polls after ~0.1 s)."""
    return load_profile(name).model_copy(update={"expected_ready_seconds": 0.4, **update})


def group(records: list[LedgerRecord] | tuple[LedgerRecord, ...]) -> dict[str, list[LedgerRecord]]:
    by_track: dict[str, list[LedgerRecord]] = {}
    for record in records:
        by_track.setdefault(record.track_id, []).append(record)
    return by_track


def run_rows(rows: list[PlannedRow], client: TextMusicClient, out: Path, previous=(), *,
             provider: Provider | None = None, settings: PipelineSettings = QUICK,
             options: RunOptions | None = None, catalog: CatalogInfo = CATALOG,
             ) -> tuple[list[LedgerRecord], list[LedgerRecord]]:
    """(the rows' records, everything journaled), as a run would produce them."""
    journal: list[LedgerRecord] = []
    provider = provider or Provider.of(client.profile, base_url=client.base_url)
    with Generation(client, out, catalog, provider, client.profile, settings, options or RunOptions(),
                    journal.extend, 0.25) as generation:
        records = generation.run(rows, group(list(previous)))
    return records, journal
