"""The ledger record a planned row starts from: every parameter a re-render needs, before any answer."""

from __future__ import annotations

from tasks.catalog.ledger import FAILED, LedgerRecord
from tasks.intake.fields import METADATA_FIELDS, disclosure_defaults
from tasks.intake.plan import PlannedRow
from tasks.run import CatalogInfo, Provider, pipeline_version, prompt_sha256


def base_record(row: PlannedRow, catalog: CatalogInfo, provider: Provider, song_index: int = 0) -> LedgerRecord:
    request = row.request
    credits = {f.name: getattr(catalog, f.name) for f in METADATA_FIELDS if f.from_catalog}
    return LedgerRecord(
        catalog=catalog.name,
        track_id=row.track_id,
        song_index=song_index,
        name=row.name,
        status=FAILED,
        seed=request.for_song(song_index).seed,
        seed_source=row.seed_source,
        prompt=request.prompt or "",
        tags="|".join(request.tags or []),
        lyrics=request.lyrics or "",
        prompt_strength=float(request.prompt_strength),
        balance_strength=float(request.balance_strength),
        num_songs=request.num_songs,
        output_format=request.output_format,
        output_bit_rate=request.output_bit_rate or "",
        bpm_requested=str(request.bpm),
        duration_requested=float(request.duration_seconds) if request.duration_seconds else None,
        store_audio=request.store_audio,
        key_requested=(request.key or "") if provider.local_extensions else "",
        row=row.row,
        request_fingerprint=row.fingerprint,
        provider=provider.name,
        provider_profile=provider.profile,
        prompt_sha256=prompt_sha256(request.prompt or ""),
        pipeline_version=pipeline_version(),
        **{**credits, **disclosure_defaults(not request.is_instrumental), **row.metadata},
    )
