"""Generation of one planned row: submit, poll, download, verify, tag, and move into the catalog.

Once the provider accepts a request, its track ids are journaled before anything else happens, so a run
killed while waiting resumes those tracks instead of paying for the row again. With the local provider,
each submission also carries an Idempotency-Key journaled before it is sent: a run killed (or a
connection lost) between the provider's acceptance and its answer sends the same key again and gets the
first submission's tracks, not a second charge. A file reaches its final
name only once it decodes, lasts as reported and carries its tags, by an atomic rename from the
catalog's `.partial/` folder: the catalog never holds a half-written file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from textmusic.client import (
    InsufficientBalance,
    InvalidRequest,
    NotFound,
    PollTimeout,
    TextMusicClient,
    TextMusicError,
    Unauthorized,
)
from textmusic.contract import Track, price_cents

from .audio import AudioCheckError, check_audio, sha256_file
from .ledger import SUBMITTED, SUBMITTING, LedgerRecord, utc_now
from .plan import PlannedRow
from .tagging import TagMismatch, tag_and_verify

PARTIAL_DIR = ".partial"
# Failures that leave a paid track on the provider's side; the next run picks the track up, not a new one.
TIMEOUT = "timeout"
WAIT_BROKEN = "lost the provider while waiting"
DELIVERY_FAILED = "delivery failed"
RESUMABLE = (TIMEOUT, WAIT_BROKEN, DELIVERY_FAILED)
FILE_MODE = 0o644
Journal = Callable[[list[LedgerRecord]], None]


@dataclass(frozen=True)
class Provider:
    """Where requests go; holds no secret, so it may be logged and recorded."""

    name: str
    base_url: str
    local_extensions: bool


@dataclass(frozen=True)
class CatalogInfo:
    """What every file of the catalog carries: its name and the default credits."""

    name: str
    artist: str = ""
    composer: str = ""
    publisher: str = ""
    date: str = ""


@dataclass
class RunGate:
    """Shared by a run's generation tasks: once the balance runs out, no new row is submitted."""

    out_of_funds: threading.Event = field(default_factory=threading.Event)


def clear_partials(out_dir: Path) -> None:
    """Remove what a killed run left half-downloaded."""
    shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)


def base_record(row: PlannedRow, catalog: CatalogInfo, provider: Provider, song_index: int = 0) -> LedgerRecord:
    request = row.request
    credits = {"artist": catalog.artist, "composer": catalog.composer, "publisher": catalog.publisher}
    return LedgerRecord(
        catalog=catalog.name,
        track_id=row.track_id,
        song_index=song_index,
        name=row.name,
        status="failed",
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
        row=row.row,
        request_fingerprint=row.fingerprint,
        provider=provider.name,
        **{**credits, **row.metadata},
    )


def tag_values(record: LedgerRecord, catalog: CatalogInfo) -> dict[str, str]:
    """Every tag of a file, from its ledger record: the tags say how to re-render the track."""
    return {
        "title": record.name,
        "artist": record.artist,
        "composer": record.composer,
        "publisher": record.publisher,
        "album": catalog.name,
        "genre": ", ".join(t for t in record.tags.split("|") if t),
        "bpm": str(record.bpm) if record.bpm else "",
        "comment": record.prompt,
        "lyrics": record.lyrics,
        "date": catalog.date,
        "isrc": record.isrc,
        "key": record.key,
        "version": record.version,
        "mood": record.mood,
        "description": record.description,
        "keywords": record.keywords,
        "seed": str(record.seed),
        "prompt": record.prompt,
        "prompt_strength": f"{record.prompt_strength:g}" if record.prompt_strength is not None else "",
        "balance_strength": f"{record.balance_strength:g}" if record.balance_strength is not None else "",
        "tags": record.tags,
        "generation_id": record.generation_id,
        "provider": record.provider,
        "request_fingerprint": record.request_fingerprint,
    }


def _charged_cents(track: Track) -> int:
    if track.cost_cents is not None:
        return track.cost_cents
    return price_cents(track.duration_seconds) if track.duration_seconds else 0


def _deliver(
    track: Track,
    record: LedgerRecord,
    client: TextMusicClient,
    out_dir: Path,
    file_name: str,
    catalog: CatalogInfo,
    tolerance: float,
) -> LedgerRecord:
    """Download, verify, tag, then rename into the catalog."""
    partial = out_dir / PARTIAL_DIR
    partial.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=partial, suffix=f".{record.output_format}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        client.download(track, tmp)
        info = check_audio(tmp, record.output_format, track.duration_seconds, tolerance)
        duration = track.duration_seconds if track.duration_seconds is not None else info.duration_seconds
        cost = _charged_cents(track) if track.duration_seconds is not None else price_cents(duration)
        record = record.model_copy(
            update={
                "bpm": track.bpm if track.bpm is not None else record.bpm,
                "engine_version": track.engine_version or "",
                "duration_seconds": round(duration, 3),
                "cost_cents": cost,
                "cost_usd": cost / 100,
            }
        )
        tag_and_verify(tmp, tag_values(record, catalog))
        digest = sha256_file(tmp)
        tmp.chmod(FILE_MODE)  # mkstemp makes files private; catalog files are meant to be shared
        os.replace(tmp, out_dir / file_name)
        return record.model_copy(update={"status": "ready", "audio_path": file_name, "sha256": digest})
    finally:
        tmp.unlink(missing_ok=True)


def _resumable(row: PlannedRow, previous: list[LedgerRecord]) -> list[LedgerRecord] | None:
    """Records of tracks an earlier run submitted (and paid) for this very request but did not deliver,
    because it was killed or lost the provider while waiting or downloading: picked up, not resubmitted."""
    open_tracks = sorted(
        (r for r in previous if r.track_id == row.track_id and r.request_fingerprint == row.fingerprint
         and r.generation_id and (r.status == SUBMITTED or (r.status == "failed" and r.error.startswith(RESUMABLE)))),
        key=lambda r: r.song_index,
    )
    if [r.song_index for r in open_tracks] != list(range(row.request.num_songs)):
        return None
    return open_tracks


def idempotency_key(row: PlannedRow, previous: list[LedgerRecord]) -> str:
    """The key of a submission whose answer never came (reusing it is safe: a provider that never
    accepted it starts afresh), else a new one: a row whose tracks are known and failed is generated anew."""
    for record in previous:
        if (record.track_id == row.track_id and record.request_fingerprint == row.fingerprint
                and record.song_index == 0 and record.idempotency_key and not record.generation_id):
            return record.idempotency_key
    return uuid.uuid4().hex


def generate_row(
    row: PlannedRow,
    client: TextMusicClient,
    out_dir: Path,
    catalog: CatalogInfo,
    provider: Provider,
    gate: RunGate,
    journal: Journal,
    previous: list[LedgerRecord],
    tolerance: float,
) -> list[LedgerRecord]:
    """All songs of one row, as ledger records. Only a rejected key (401) escapes as an exception.

    `client` is this row's own (its `attempts` counts this row's requests)."""
    started = utc_now()
    key = ""

    def song(index: int) -> LedgerRecord:
        return base_record(row, catalog, provider, index).model_copy(
            update={"started_at": started, "idempotency_key": key})

    def ended(record: LedgerRecord, **update: object) -> LedgerRecord:
        return record.model_copy(update={"finished_at": utc_now(), "attempts": client.attempts, **update})

    def unfinished(tracks: list[Track], exc: TextMusicError) -> list[LedgerRecord]:
        reason = TIMEOUT if isinstance(exc, PollTimeout) else WAIT_BROKEN
        return [ended(song(i), generation_id=t.id, error=f"{reason}: {exc.message}") for i, t in enumerate(tracks)]

    tracks: list[Track] | None = None
    resumed = _resumable(row, previous)
    if resumed is not None:
        key = resumed[0].idempotency_key
        pending = [Track(id=r.generation_id, status="pending") for r in resumed]
        try:
            tracks = client.wait(pending)
        except NotFound:
            tracks = None  # the provider forgot them (another key or data folder): this row starts over
        except TextMusicError as exc:
            return unfinished(pending, exc)
    if tracks is None:
        key = idempotency_key(row, previous) if provider.local_extensions else ""
        first = song(0)
        if gate.out_of_funds.is_set():
            return [ended(first, status="skipped", error="insufficient balance")]
        if key:
            journal([first.model_copy(update={"status": SUBMITTING})])
        try:
            response = client.submit(row.request, key or None)
        except Unauthorized:
            raise
        except InsufficientBalance as exc:
            gate.out_of_funds.set()
            return [ended(first, status="skipped", error=f"insufficient balance: {exc.message}")]
        except InvalidRequest as exc:
            return [ended(first, error=f"rejected by the provider: {exc.message}")]
        except TextMusicError as exc:
            return [ended(first, error=exc.message)]
        journal([song(i).model_copy(update={"status": SUBMITTED, "generation_id": t.id})
                 for i, t in enumerate(response.tracks)])
        try:
            tracks = client.wait(response.tracks)
        except TextMusicError as exc:
            return unfinished(response.tracks, exc)

    records = []
    for index, track in enumerate(tracks):
        record = song(index).model_copy(update={"generation_id": track.id})
        if track.seed is not None:
            record = record.model_copy(update={"seed": track.seed})
        if track.effective_status == "failed":
            records.append(ended(record, error=f"generation failed: {track.error or 'no reason given'}"))
            continue
        try:
            delivered = _deliver(track, record, client, out_dir, row.file_name(index), catalog, tolerance)
            records.append(ended(delivered))
        except (TextMusicError, AudioCheckError, TagMismatch) as exc:
            # The provider charged for a ready track even if its file then failed here.
            charged = _charged_cents(track)
            records.append(ended(record, error=f"{DELIVERY_FAILED}: {exc}", cost_cents=charged,
                                 cost_usd=charged / 100))
    return records
