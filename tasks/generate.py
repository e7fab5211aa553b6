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

import logging
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from textmusic.client import TextMusicClient
from textmusic.contract import FORMATS, Track, price_cents
from textmusic.redaction import redact

from .audio import check_audio, sha256_file
from .finish import Delivery, QcFailed, finish
from .ledger import HELD, SUBMITTED, SUBMITTING, SUPPORT_DIR, LedgerRecord
from .naming import hashed_stem, inside
from .plan import PlannedRow
from .tagging import tag_and_verify

log = logging.getLogger(__name__)
PARTIAL_DIR = ".partial"
# A provider's own figures are believed up to this much over what the request allows (the price table's
# worst case for its longest song): past it, they are treated as missing and the price table's figure is used.
FIGURE_MARGIN = 1.5
# The most bytes per second a file may take: lossless at up to 96 kHz, 2 channels, 32 bits; lossy at twice
# its highest bit rate (500 kbps for a format that names none, e.g. Ogg Vorbis at its top quality).
LOSSLESS_BYTES_PER_SECOND = 96_000 * 2 * 4
HEADER_BYTES = 1 << 20  # container headers, tags and cover art
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


@dataclass(frozen=True)
class RunOptions:
    """What a user decided for this run about money that may already be spent."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    resubmit_unanswered: bool = False  # send again rows whose earlier submission may have been charged
    regenerate_lost: bool = False  # generate anew paid tracks whose audio could not be had
    regenerate_rejected: bool = False  # replace takes a reviewer rejected (review.csv) by takes with new seeds


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
        "parent": record.parent,
    }


def named_bpm(record: LedgerRecord) -> float | None:
    """The BPM a file name carries: what the provider reports, else what the brief asked for."""
    if record.bpm:
        return record.bpm
    try:
        return float(record.bpm_requested)
    except ValueError:
        return None  # "auto" or empty, and nothing reported


def charged_cents(track: Track) -> int:
    if track.cost_cents is not None:
        return track.cost_cents
    return price_cents(track.duration_seconds) if track.duration_seconds else 0


@dataclass(frozen=True)
class Bounds:
    """What a song of a row may last and cost, at most (the price table's worst case with a margin)."""

    seconds: float
    cents: int

    @classmethod
    def for_song(cls, longest_seconds: float) -> Bounds:
        return cls(longest_seconds * FIGURE_MARGIN, math.ceil(price_cents(longest_seconds) * FIGURE_MARGIN))


def max_audio_bytes(output_format: str, longest_seconds: float) -> int:
    """What a download of one song may weigh, on the wire and decoded: past it, the download is refused."""
    spec = FORMATS[output_format]
    per_second = LOSSLESS_BYTES_PER_SECOND if spec.lossless else \
        2 * max((int(k) for k in spec.bit_rates), default=500) * 1000 // 8
    return HEADER_BYTES + math.ceil(per_second * longest_seconds)


def doubted_figures(track: Track, bounds: Bounds) -> dict[str, str]:
    """The track's duration and cost that cannot be believed (not finite, negative, past the bounds), by field,
    with the reason: each is then treated as missing, so a hostile number never reaches the ledger."""
    doubts = {}
    for name, value, most in (("duration_seconds", track.duration_seconds, bounds.seconds),
                              ("cost_cents", track.cost_cents, bounds.cents)):
        if value is None:
            continue
        if not math.isfinite(value) or value < 0 or value > most:
            doubts[name] = f"{value!r} is outside 0 … {most:g}"
    return doubts


def believable(track: Track, bounds: Bounds) -> tuple[Track, dict[str, str]]:
    """The track with its unbelievable figures dropped (see `doubted_figures`), and what was dropped."""
    doubts = doubted_figures(track, bounds)
    return (track.model_copy(update=dict.fromkeys(doubts)) if doubts else track), doubts


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
) -> LedgerRecord:
    """Download (at most `max_bytes`), verify, bring to the delivery spec (or raise QcFailed), tag, then rename
    into the catalog under the name `name_for` gives the track's BPM."""
    partial = out_dir / PARTIAL_DIR
    partial.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=partial, suffix=f".{record.output_format}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        client.download(track, tmp, max_bytes=max_bytes)
        info = check_audio(tmp, record.output_format, track.duration_seconds, tolerance)
        duration = track.duration_seconds if track.duration_seconds is not None else info.duration_seconds
        cost = track.cost_cents if track.cost_cents is not None else price_cents(duration)
        paid = {
            "bpm": track.bpm if track.bpm is not None else record.bpm,
            "engine_version": track.engine_version or "",
            "duration_seconds": round(duration, 3),
            "cost_cents": cost,
            "cost_usd": cost / 100,
        }
        record = record.model_copy(update=paid)
        file_name = name_for(named_bpm(record))
        try:
            record = record.model_copy(update=finish(tmp, record.output_format, record.output_bit_rate, delivery,
                                                     out_dir, file_name))
        except QcFailed as exc:  # what was paid and what came travels with the figures
            exc.fields.update(paid)
            raise
        tag_and_verify(tmp, tag_values(record, catalog))
        digest = sha256_file(tmp)
        tmp.chmod(FILE_MODE)  # mkstemp makes files private; catalog files are meant to be shared
        os.replace(tmp, inside(out_dir, file_name))
        return record.model_copy(update={"status": "ready", "resume": "", "audio_path": file_name,
                                         "sha256": digest, "error": ""})
    finally:
        tmp.unlink(missing_ok=True)


def keep_raw_answer(out_dir: Path, track_id: str, raw: str) -> str:
    """Keep a provider's unreadable answer beside the ledger, for support: redacted, under a name made of a
    safe slug and a hash of the track_id (never the id as it is), proven to stay inside the catalog."""
    name = f"{SUPPORT_DIR}/{hashed_stem(track_id)}-{uuid.uuid4().hex[:8]}.txt"
    path = inside(out_dir, name)
    path.parent.mkdir(exist_ok=True)
    path.write_text(redact(raw), encoding="utf-8", errors="replace")
    return name


@dataclass(frozen=True)
class Resumption:
    """What a row needs given the ledger: a new submission, its paid tracks polled, its lost answer sent
    again with the same Idempotency-Key, or nothing without the user's consent (`hold`)."""

    kind: Literal["new", "poll", "resend", "hold"]
    records: list[LedgerRecord]
    key: str = ""


def resumption(row: PlannedRow, previous: list[LedgerRecord], options: RunOptions,
               idempotent: bool) -> Resumption:
    """Decided from the records' `status` and `resume` fields (data, never the error text)."""
    mine = {r.song_index: r for r in previous if r.track_id == row.track_id
            and r.request_fingerprint == row.fingerprint and r.song_index < row.request.num_songs}
    songs = [mine.get(i) for i in range(row.request.num_songs)]
    present = [s for s in songs if s is not None]
    # Paid tracks, known by id, not all in the catalog (the row would not be here otherwise): fetch them.
    if present and all(s.generation_id and (s.status in (SUBMITTED, "ready") or s.resume == "poll")
                       for s in present):
        return Resumption("poll", present)
    first = songs[0]
    if first is None:
        return Resumption("new", [])
    unanswered = first.status in (SUBMITTING, "unanswered") or first.resume in ("resend", "unanswered")
    if unanswered and not first.generation_id:
        if idempotent and first.idempotency_key:
            return Resumption("resend", [first], first.idempotency_key)
        if not options.resubmit_unanswered:
            note = "may have been charged; run with --resubmit-unanswered to send it again"
            return Resumption("hold", [first.model_copy(update={
                "status": "unanswered" if first.status == SUBMITTING else first.status,
                "resume": "unanswered", "row": row.row,
                "error": first.error or f"the submission's answer never came: {note}"})])
    held = [s for s in songs if s is not None and s.resume in HELD]
    if held and not options.regenerate_lost:
        return Resumption("hold", [s.model_copy(update={"row": row.row}) for s in songs if s is not None])
    if any(s is not None and s.resume == "unanswered" for s in songs) and not options.resubmit_unanswered:
        return Resumption("hold", [s.model_copy(update={"row": row.row}) for s in songs if s is not None])
    return Resumption("new", [])
