"""The ledger's columns, in order: the metadata fields come from the field table, and the files a catalog
already has must keep reading the same."""

from __future__ import annotations

from tasks.catalog.ledger import COLUMNS, LedgerRecord
from tasks.intake.fields import METADATA_COLUMNS

LEDGER_COLUMNS = (
    "catalog", "track_id", "song_index", "name", "status", "resume", "seed", "seed_source", "prompt", "tags",
    "lyrics", "prompt_strength", "balance_strength", "num_songs", "output_format", "output_bit_rate", "bpm",
    "bpm_requested", "duration_requested", "store_audio", "generation_id", "engine_version", "idempotency_key",
    "audio_path", "duration_seconds", "cost_cents", "cost_usd", "error", "row", "request_fingerprint", "sha256",
    "provider", "prompt_sha256", "pipeline_version", "attempts", "delivery_attempts", "run_id", "support_file",
    "at_risk_cents", "started_at", "finished_at", "artist", "composer", "publisher", "mood", "key", "isrc",
    "version", "description", "keywords",
    "ai_composition", "ai_lyrics", "ai_vocals", "ai_instrumentation", "ai_post_production",
    "parent", "identical_to_original", "similar_to", "similarity", "master", "master_gain_db", "loudness_lufs",
    "true_peak_dbtp", "lra_lu", "head_silence_s", "tail_silence_s", "clipped_samples", "dc_offset", "sample_rate",
    "bit_depth", "qc", "held_file", "digital_source_type", "processing", "credentials", "signer",
    "credentials_file", "key_requested", "key_measured", "key_confidence", "key_warning",
    "provider_profile",
)


def test_the_ledger_columns_keep_their_order() -> None:
    assert COLUMNS == LEDGER_COLUMNS


def test_every_metadata_field_is_a_text_column_after_the_request() -> None:
    start = COLUMNS.index("finished_at") + 1
    assert COLUMNS[start : start + len(METADATA_COLUMNS)] == METADATA_COLUMNS
    record = LedgerRecord(catalog="c", track_id="t", status="ready")
    assert all(getattr(record, name) == "" for name in METADATA_COLUMNS)
