"""The cost and status ledger: one record per produced song and per rejected, failed or skipped row.

Finished rows are appended to a journal (`.ledger.jsonl`, flushed and fsynced per row) the moment they
end, so a crash loses no finished track; `ledger.parquet` and `ledger.csv` are rewritten atomically
from it at the end of a run. The ledger is what a later run consults to skip work already paid for.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

import pandas as pd
from pydantic import BaseModel, create_model

from tasks.intake.fields import METADATA_FIELDS
from textmusic.redaction import redact_value

JOURNAL = ".ledger.jsonl"
LEDGER_PARQUET = "ledger.parquet"
LEDGER_CSV = "ledger.csv"
REJECTS_CSV = "rejects.csv"
SUPPORT_DIR = "support"
# A row's outcome in the ledger, the ledger's own vocabulary (a provider's track states are the contract's).
# `ready`: the file is delivered in the catalog (the page says "delivered"). `rejected`: the brief row was
# refused. `unanswered`: the submission was sent and its answer lost; the provider may have charged it, so it
# is not sent again without --resubmit-unanswered. `replaced`: a take a reviewer rejected and
# `--regenerate-rejected` replaced by a take with a new seed; its file moved to `rejected/`, its record (and
# cost) stays in the ledger.
# Journal-only: `submitted`, a request the provider accepted (and charged for) whose audio is not yet in the
# catalog; `submitting`, a request about to be sent. If its answer never arrives, the next run sends the same
# Idempotency-Key again (providers that honour one), else records the row `unanswered`.
Status = Literal["ready", "failed", "rejected", "skipped", "unanswered", "replaced", "submitting", "submitted"]
READY, FAILED, REJECTED, SKIPPED, UNANSWERED, REPLACED, SUBMITTING, SUBMITTED = get_args(Status)
STATUSES: tuple[Status, ...] = tuple(s for s in get_args(Status) if s not in (SUBMITTING, SUBMITTED))
REJECTED_DIR = "rejected"
# What a later run does with a row that did not end ready: a decision kept as data, never read from `error`.
#   ""           nothing to resume: the row is generated anew (nothing was charged, or the generation failed)
#   "poll"       the provider holds paid tracks (known ids): poll and download them, never pay again
#   "resend"     the answer of a submission with an Idempotency-Key was lost: send it again with that key
#   "unanswered" maybe charged, no track known: only --resubmit-unanswered sends the row again
#   "lost"       paid, but the audio cannot be had (410 Gone, never decodes): only --regenerate-lost
#   "qc"         paid and downloaded, but outside the delivery spec even after mastering (the file is held in
#                qc-failed/): held like "lost", only --regenerate-lost generates it anew
Resume = Literal["", "poll", "resend", "unanswered", "lost", "qc"]
_, POLL, RESEND, RESUBMIT_UNANSWERED, LOST, QC_HELD = get_args(Resume)
HELD: tuple[Resume, ...] = (LOST, QC_HELD)  # resume values a run never regenerates without --regenerate-lost
QcVerdict = Literal["", "pass", "fail"]
CredentialsKind = Literal["", "embedded", "sidecar"]  # where a file's C2PA manifest is ("": not signed)
SignerKind = Literal["", "studio", "development"]  # whose certificate signed it
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Request(BaseModel):
    """The ledger's columns before the catalog metadata: the request, its answer and its cost."""

    catalog: str
    track_id: str
    song_index: int = 0
    name: str = ""
    status: Status
    resume: Resume = ""
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
    prompt_sha256: str = ""  # the prompt's SHA-256: the provenance names the prompt without repeating it
    pipeline_version: str = ""  # the TrackFoundry release that made the record
    attempts: int = 0
    delivery_attempts: int = 0  # runs that tried and failed to deliver this paid track
    run_id: str = ""  # the run that paid for the generation (this run's cost is what its run_id paid)
    support_file: str = ""  # the provider's raw answer (key redacted) when it could not be read
    # What the provider may have charged that `cost_cents` cannot say (an unanswered submission, a paid track
    # whose provider reported neither cost nor duration): the worst case.
    at_risk_cents: int = 0
    started_at: str = ""
    finished_at: str = ""


# Catalog metadata from the brief (or the catalog settings), as tagged: one text column per field of the field
# table, in its order, so that a field declared there is a ledger column with no second declaration here.
_WithMetadata = create_model(
    "_WithMetadata", __base__=_Request, __module__=__name__, **{f.name: (str, "") for f in METADATA_FIELDS}
)


class LedgerRecord(_WithMetadata):  # type: ignore[misc,valid-type]
    """One ledger row: `_Request`'s columns, then the metadata fields, then the delivery's."""

    # A library version's parent: the song's own file (audio_path); `version` then names the version (30s,
    # loop8, stem:drums …). Empty for the song itself, whose `version` is the brief's label, if any.
    parent: str = ""
    # Re-renders only: whether the decoded audio equals the original's.
    identical_to_original: bool | None = None
    # Near-duplicates (tasks/catalog/similar.py), ready songs only: the audio_path(s) of the other delivered files whose
    # fingerprint scores at least the threshold against this one, `|`-separated, most similar first; and the
    # best score (cosine of the fingerprints, 1.0 = the same audio). Empty / None: nothing that close.
    similar_to: str = ""
    similarity: float | None = None
    # Delivery QC (tasks/delivery/finish.py), measured on the file as delivered (after encoding): the spec it was held
    # to, the gain mastering applied (0.0: the provider's audio kept as it came), loudness (LUFS), true peak
    # (dBTP), loudness range (LU), head/tail silence (s), clipped samples, the largest DC offset, the
    # sample rate and bit depth; `qc` pass or fail (the reasons then in `error`).
    master: str = ""
    master_gain_db: float | None = None
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    lra_lu: float | None = None
    head_silence_s: float | None = None
    tail_silence_s: float | None = None
    clipped_samples: int | None = None
    dc_offset: float | None = None
    sample_rate: int | None = None
    bit_depth: int | None = None
    qc: QcVerdict = ""
    held_file: str = ""  # a paid file kept out of the catalog because it failed QC (qc-failed/…)
    # Provenance, also carried by the file itself (its tags and its C2PA manifest, tasks/delivery/credentials.py):
    # the IPTC digital source type, what was done to the audio after generation (`|`-separated steps, e.g.
    # `mastered:streaming:+1.20dB|cut:30s`), and the content credentials: embedded in the file or in a sidecar
    # manifest (`credentials_file`), signed by the studio's certificate or the development one.
    digital_source_type: str = ""
    processing: str = ""
    credentials: CredentialsKind = ""
    signer: SignerKind = ""
    credentials_file: str = ""
    # Key (tasks/delivery/key.py): the key the provider was asked to compose in (`key_requested`: the local
    # service's extension, empty when none was sent: a hosted provider, or a brief without a key), the key a
    # delivered song, cut-down or loop is heard in and the correlation that says how sure (stems, mixes and MIDI:
    # empty), and a warning when that is not the brief's `key` (a warning: QC still passes).
    key_requested: str = ""
    key_measured: str = ""
    key_confidence: float | None = None
    key_warning: str = ""
    # The profile the row went through (`provider` names the provider itself, by its host): a re-render goes back
    # to it (per-row providers).
    provider_profile: str = ""


COLUMNS: tuple[str, ...] = tuple(LedgerRecord.model_fields)


def redacted(record: LedgerRecord) -> LedgerRecord:
    """The record as it may be written: every text with the API key taken out (the ledger's sinks, the journal
    and the ledger files, call this, whichever path the text came by)."""
    return LedgerRecord.model_validate(redact_value(record.model_dump()))
_NULLABLE_INTS = ("seed", "num_songs", "row", "clipped_samples", "sample_rate", "bit_depth")


def append_journal(out_dir: Path, records: list[LedgerRecord]) -> None:
    """Append records as one write under an exclusive lock: lines from tasks in other processes (Dask)
    never interleave, however long (lyrics), and each is on disk before the call returns."""
    data = "".join(redacted(record).model_dump_json() + "\n" for record in records).encode()
    fd = os.open(out_dir / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock


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
    """The latest record per (track_id, song_index, fingerprint[, version]): the ledger overlaid by the journal.

    A rejected duplicate of a track_id has no fingerprint, so it never hides the produced original."""
    latest: dict[tuple[str, int, str, str], LedgerRecord] = {}
    parquet = out_dir / LEDGER_PARQUET
    if parquet.exists():
        frame = pd.read_parquet(parquet)
        for item in frame.to_dict(orient="records"):
            clean = {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in item.items()}
            record = LedgerRecord.model_validate({k: v for k, v in clean.items() if k in COLUMNS and v is not None})
            latest[record_key(record)] = record
    for record in _read_journal(out_dir):
        latest[record_key(record)] = record
    return list(latest.values())


def record_key(record: LedgerRecord) -> tuple[str, int, str, str]:
    """What one ledger record stands for: a song of a request, or one version of it."""
    return record.track_id, record.song_index, record.request_fingerprint, record.version if record.parent else ""


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
    frame = pd.DataFrame([redacted(r).model_dump() for r in records], columns=list(COLUMNS))
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
    minutes = sum((r.duration_seconds or 0.0) for r in records if r.status == READY and not r.parent) / 60
    versions = sum(1 for r in records if r.status == READY and r.parent)
    at_risk = sum(r.at_risk_cents for r in records)
    return {**counts, "versions": versions, "minutes": round(minutes, 2), "cost_cents": cents, "cost_usd": cents / 100,
            "at_risk_usd": at_risk / 100}
