"""What a delivered file says of its own making, from its ledger record: the provenance fields of the record, the
AI marks in its tags, its broadcast-WAV chunks and its C2PA manifest. One place turns a record into each of
them, so the ledger, the tags, the chunks and the signed manifest never disagree.

Marking happens last, in `place_file`: tags, then (WAV) bext/iXML/XMP, then the signature, which covers every
byte before it (tasks/delivery/credentials.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import c2pa

from tasks.catalog.ledger import LedgerRecord
from tasks.delivery.bwf import Broadcast, coding_history_of, originator_reference, write_broadcast
from tasks.delivery.credentials import Provenance, Signing, digital_source_type, sign_file
from tasks.delivery.riff import RiffError
from tasks.intake.fields import DISCLOSURE_FIELDS
from tasks.run import CatalogInfo
from textmusic.contract import version_media
from textmusic.providers import LOCAL_PROFILE

TAGGED = "tagged"  # the last processing step of every file: its tags and marks were written
_UNSUNG_MIXES = ("underscore",)  # alternative mixes without the lead and the vocals


class MarkingError(Exception):
    """A file that could not be marked (its chunks or its signature): not delivered unmarked."""


def sings(record: LedgerRecord) -> bool:
    """Whether the file holds the sung voice: a song with lyrics, unless it is a stem or mix without it."""
    if not record.lyrics or version_media(record.version) == "midi":  # a score holds no voice
        return False
    if record.version.startswith("stem:"):
        return record.version == "stem:vocals"
    return record.version not in _UNSUNG_MIXES


def source_type(record: LedgerRecord) -> str:
    """The IPTC digital source type of the file (see `credentials.digital_source_type` for the choice)."""
    return digital_source_type(record.provider == LOCAL_PROFILE, sings(record))


def ai_statement(record: LedgerRecord) -> str:
    """The plain-words mark, for readers that speak neither C2PA nor IPTC."""
    made_by = " ".join(p for p in (record.provider, record.engine_version) if p)
    return f"AI-generated music: made by {made_by} with TrackFoundry {record.pipeline_version}".strip()


def processing_steps(record: LedgerRecord, steps: tuple[str, ...]) -> str:
    """The record's `processing`: what was done to the audio after generation, then the tagging."""
    return "|".join((*steps, TAGGED))


def provenance_tags(record: LedgerRecord) -> dict[str, str]:
    """The AI marks the tags carry besides the disclosure fields (declared in tagging.RECORD_TAGS)."""
    return {"digital_source_type": record.digital_source_type, "ai_statement": ai_statement(record),
            "processing": record.processing, "pipeline_version": record.pipeline_version,
            "prompt_sha256": record.prompt_sha256}


def broadcast(record: LedgerRecord, catalog: CatalogInfo, path: Path, tags: dict[str, str]) -> Broadcast:
    """The bext/iXML/XMP chunks of a WAV: the description a library shows, the publisher as originator, the
    loudness as measured, the coding history of the file as it is, and every tag for iXML."""
    spec = f"; master {record.master} {record.loudness_lufs} LUFS" if record.loudness_lufs is not None else ""
    return Broadcast(
        title=record.name, description=record.description or record.prompt or record.name,
        originator=record.publisher or catalog.publisher or record.artist,
        originator_reference=originator_reference(record.generation_id or record.track_id),
        origination=_moment(record.finished_at or record.started_at),
        coding_history=coding_history_of(path, f"{ai_statement(record)}{spec}"),
        loudness_lufs=record.loudness_lufs, loudness_range_lu=record.lra_lu, true_peak_dbtp=record.true_peak_dbtp,
        metadata={k: v for k, v in tags.items() if v}, digital_source_type=record.digital_source_type,
        ai_statement=ai_statement(record))


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.now(UTC)


def manifest_provenance(record: LedgerRecord, parent: Path | None) -> Provenance:
    return Provenance(
        title=record.name or record.track_id, provider=record.provider, model=record.engine_version,
        generation_id=record.generation_id, request_fingerprint=record.request_fingerprint, seed=record.seed,
        prompt_sha256=record.prompt_sha256, created=record.finished_at or record.started_at,
        pipeline_version=record.pipeline_version, processing=tuple(p for p in record.processing.split("|") if p),
        disclosure={name.removeprefix("ai_"): getattr(record, name) for name in DISCLOSURE_FIELDS},
        parent=parent, digital_source_type=record.digital_source_type)


def mark(path: Path, record: LedgerRecord, catalog: CatalogInfo, tags: dict[str, str], signing: Signing | None,
         parent: Path | None) -> dict[str, str]:
    """The file's last writes, after its tags: broadcast chunks (WAV), then the signature. Returns the record's
    credential fields; the sidecar (a format C2PA cannot embed in) lies beside `path`, to be placed with it."""
    try:
        if record.output_format == "wav":
            write_broadcast(path, broadcast(record, catalog, path, tags))
        if signing is None:
            return {}
        signed = sign_file(path, record.output_format, manifest_provenance(record, parent), signing)
    except (RiffError, c2pa.C2paError) as exc:
        raise MarkingError(f"{path.name} could not be marked: {exc}") from None
    return {"credentials": signed.kind, "signer": signed.signer,
            "credentials_file": signed.sidecar.name if signed.sidecar else ""}
