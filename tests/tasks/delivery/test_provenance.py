"""What a file says of its making follows its record: the IPTC source type by provider, voice and version; the
processing steps; and the same facts in the tags, the broadcast chunks and the manifest."""

from __future__ import annotations

from tasks.catalog.ledger import LedgerRecord
from tasks.delivery.credentials import (
    ALGORITHMIC_MEDIA,
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
)
from tasks.delivery.provenance import ai_statement, manifest_provenance, processing_steps, source_type
from textmusic.providers import HOSTED_PROFILE, LOCAL_PROFILE


def record(**fields: object) -> LedgerRecord:
    return LedgerRecord(catalog="c", track_id="t", status="ready", **fields)


def test_the_source_type_follows_the_provider_the_voice_and_the_version() -> None:
    sung = {"provider": LOCAL_PROFILE, "lyrics": "[verse]\nla la"}
    assert source_type(record(provider=LOCAL_PROFILE)) == ALGORITHMIC_MEDIA
    assert source_type(record(**sung)) == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert source_type(record(**sung, version="stem:vocals")) == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert source_type(record(**sung, version="stem:drums")) == ALGORITHMIC_MEDIA
    assert source_type(record(**sung, version="underscore")) == ALGORITHMIC_MEDIA
    assert source_type(record(**sung, version="midi")) == ALGORITHMIC_MEDIA  # a score holds no voice
    assert source_type(record(provider=HOSTED_PROFILE)) == TRAINED_ALGORITHMIC_MEDIA
    assert source_type(record(provider="anything-else", lyrics="la")) == TRAINED_ALGORITHMIC_MEDIA


def test_the_manifest_says_what_the_record_says() -> None:
    made = record(provider=LOCAL_PROFILE, engine_version="2026.12.04.2", generation_id="g1", seed=7,
                  prompt_sha256="ab" * 32, pipeline_version="0.1.0", finished_at="2026-12-06T07:00:00+00:00",
                  ai_composition="ai", ai_lyrics="human", ai_vocals="ai", ai_instrumentation="ai",
                  ai_post_production="none", digital_source_type=COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA)
    made = made.model_copy(update={"processing": processing_steps(made, ("edited:30s", "mastered:streaming:+1.20dB"))})
    provenance = manifest_provenance(made, None)
    assert provenance.processing == ("edited:30s", "mastered:streaming:+1.20dB", "tagged")
    assert provenance.disclosure == {"composition": "ai", "lyrics": "human", "vocals": "ai", "instrumentation": "ai",
                                     "post_production": "none"}
    assert (provenance.model, provenance.seed, provenance.created) == ("2026.12.04.2", 7, made.finished_at)
    assert ai_statement(made) == "AI-generated music: made by textmusic-local 2026.12.04.2 with TrackFoundry 0.1.0"
