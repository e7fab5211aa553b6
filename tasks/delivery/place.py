"""Placing a paid file in the catalog: download it (bounded), check it, bring it to the delivery spec, tag it,
then rename it into place from the catalog's `.partial/` folder, so the catalog never holds a half-written
file; and the provider's unreadable answers kept for support, redacted, inside the catalog.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks.catalog.ledger import READY, SUPPORT_DIR, LedgerRecord
from tasks.delivery.check import check_audio
from tasks.delivery.credentials import Signing, sidecar_path
from tasks.delivery.finish import Delivery, QcFailed, finish
from tasks.delivery.key import key_warning, tagged_key
from tasks.delivery.provenance import mark, processing_steps, provenance_tags, source_type
from tasks.delivery.tagging import tag_and_verify
from tasks.intake.fields import METADATA_FIELDS
from tasks.naming import hashed_stem, inside
from tasks.run import CatalogInfo
from textmusic.audio.identity import sha256_file
from textmusic.client import TextMusicClient
from textmusic.contract import Track
from textmusic.redaction import redact

PARTIAL_DIR = ".partial"


FILE_MODE = 0o644


def clear_partials(out_dir: Path) -> None:
    """Remove what a killed run left half-downloaded."""
    shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)


def tag_values(record: LedgerRecord, catalog: CatalogInfo) -> dict[str, str]:
    """Every tag of a file, from its ledger record: the tags say how to re-render the track."""
    return {
        "title": record.name,
        "album": catalog.name,
        "genre": ", ".join(t for t in record.tags.split("|") if t),
        "bpm": str(record.bpm) if record.bpm else "",
        "comment": record.prompt,
        "lyrics": record.lyrics,
        "date": catalog.date,
        "seed": str(record.seed),
        "prompt": record.prompt,
        "prompt_strength": f"{record.prompt_strength:g}" if record.prompt_strength is not None else "",
        "balance_strength": f"{record.balance_strength:g}" if record.balance_strength is not None else "",
        "tags": record.tags,
        "generation_id": record.generation_id,
        "provider": record.provider,
        "request_fingerprint": record.request_fingerprint,
        "parent": record.parent,
        **provenance_tags(record),
        **{f.name: getattr(record, f.name) for f in METADATA_FIELDS},
        "key": tagged_key(record.key, record.key_measured, record.key_confidence),  # as heard, when sure
    }


def named_bpm(record: LedgerRecord) -> float | None:
    """The BPM a file name carries: what the provider reports, else what the brief asked for."""
    if record.bpm:
        return record.bpm
    try:
        return float(record.bpm_requested)
    except ValueError:
        return None  # "auto" or empty, and nothing reported


def deliver(
    track: Track,
    record: LedgerRecord,
    client: TextMusicClient,
    out_dir: Path,
    name_for: Callable[[float | None], str],
    catalog: CatalogInfo,
    tolerance: float,
    delivery: Delivery,
    max_bytes: int | None = None,
    *,
    share: Callable[[float], int],
) -> LedgerRecord:
    """Download (at most `max_bytes`), then `deliver_file`."""
    with partial_file(out_dir, f".{record.output_format}") as tmp:
        client.download(track, tmp, max_bytes=max_bytes)
        return deliver_file(tmp, track, record, out_dir, name_for, catalog, tolerance, delivery, share=share)


def deliver_file(
    tmp: Path,
    track: Track,
    record: LedgerRecord,
    out_dir: Path,
    name_for: Callable[[float | None], str],
    catalog: CatalogInfo,
    tolerance: float,
    delivery: Delivery,
    *,
    share: Callable[[float], int],
) -> LedgerRecord:
    """A paid track's audio, already in `.partial/` (downloaded, or the answer of a synchronous provider):
    verify, bring to the delivery spec (or raise QcFailed), tag, then rename into the catalog under the name
    `name_for` gives the track's BPM. Its cost: the provider's figure, else its `share` (seconds → cents) of
    the charge by the provider's price model."""
    info = check_audio(tmp, record.output_format, track.duration_seconds, tolerance)
    duration = track.duration_seconds if track.duration_seconds is not None else info.duration_seconds
    cost = track.cost_cents if track.cost_cents is not None else share(duration)
    paid = {
        "bpm": track.bpm if track.bpm is not None else record.bpm,
        "engine_version": track.engine_version or "",
        "duration_seconds": round(duration, 3),
        "cost_cents": cost,
        "cost_usd": cost / 100,
    }
    record = record.model_copy(update=paid)
    try:
        placed = place_file(tmp, record, out_dir, name_for(named_bpm(record)), catalog, delivery)
    except QcFailed as exc:  # what was paid and what came travels with the figures
        exc.fields.update(paid)
        raise
    return placed.model_copy(update={"resume": "", "error": ""})


@contextmanager
def partial_file(out_dir: Path, suffix: str) -> Iterator[Path]:
    """A fresh file in the catalog's `.partial/` folder (the same file system, so the final rename is atomic),
    removed on the way out unless it was renamed into place."""
    partial = out_dir / PARTIAL_DIR
    partial.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=partial, suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
        sidecar_path(tmp).unlink(missing_ok=True)


def place_file(tmp: Path, record: LedgerRecord, out_dir: Path, file_name: str, catalog: CatalogInfo,
               delivery: Delivery, parent_gain_db: float | None = None, parent: Path | None = None) -> LedgerRecord:
    """The one path every delivered audio file takes, a song or a version: bring it to the delivery spec (or
    raise QcFailed), tag it and read the tags back, then `settle` it. `record.processing`: what was already done
    to make the file (a cut of its parent); `parent`: a version's song, as delivered. Returns the record as
    delivered."""
    qc = finish(tmp, record.output_format, record.output_bit_rate, delivery, out_dir, file_name,
                parent_gain_db=parent_gain_db)
    steps = tuple(s for s in (record.processing, qc.pop("processing")) if s)
    record = record.model_copy(update=qc)
    record = record.model_copy(update={"digital_source_type": source_type(record),
                                       "processing": processing_steps(record, steps),
                                       "key_warning": key_warning(record.key, record.key_measured,
                                                                  record.key_confidence)})
    tags = tag_values(record, catalog)
    tag_and_verify(tmp, tags)
    return settle(tmp, record, out_dir, file_name, catalog, tags, delivery.signing, parent)


def settle(tmp: Path, record: LedgerRecord, out_dir: Path, file_name: str, catalog: CatalogInfo,
           tags: dict[str, str], signing: Signing | None, parent: Path | None) -> LedgerRecord:
    """A tagged file's last steps, audio or MIDI: mark it (broadcast chunks, content credentials: the last
    write), hash it, and rename it into the catalog at `file_name`, proven inside it; a sidecar manifest first,
    so the file never lies in the catalog without its credentials."""
    record = record.model_copy(update=mark(tmp, record, catalog, tags, signing, parent))
    digest = sha256_file(tmp)
    if record.credentials_file:
        sidecar = sidecar_path(tmp)
        record = record.model_copy(update={"credentials_file": sidecar_path(Path(file_name)).name})
        sidecar.chmod(FILE_MODE)
        os.replace(sidecar, inside(out_dir, record.credentials_file))
    tmp.chmod(FILE_MODE)  # mkstemp makes files private; catalog files are meant to be shared
    os.replace(tmp, inside(out_dir, file_name))
    return record.model_copy(update={"status": READY, "audio_path": file_name, "sha256": digest})


def keep_raw_answer(out_dir: Path, track_id: str, raw: str) -> str:
    """Keep a provider's unreadable answer beside the ledger, for support: redacted, under a name made of a
    safe slug and a hash of the track_id (never the id as it is), proven to stay inside the catalog."""
    name = f"{SUPPORT_DIR}/{hashed_stem(track_id)}-{uuid.uuid4().hex[:8]}.txt"
    path = inside(out_dir, name)
    path.parent.mkdir(exist_ok=True)
    path.write_text(redact(raw), encoding="utf-8", errors="replace")
    return name
