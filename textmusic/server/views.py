"""A stored track as the contract shows it: its status as the caller may see it (hosted timing, injected
faults), its audio URLs. Shared by the endpoints that answer tracks and the one that serves their audio."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime

from textmusic.contract import (
    FORMATS,
    PENDING,
    READY,
    Track,
    TrackVersion,
    version_extension,
    version_file_tag,
    version_media,
)
from textmusic.server.faults import TRACK_STUCK
from textmusic.server.store import stored_versions

AUDIO_PATH = "/api/v1/audio/{filename}"
STUCK_ERROR = "generation timed out (injected fault: the track stayed pending)"


def _iso(epoch: float | None) -> str | None:
    """The contract's timestamps: UTC, to the second, with a Z."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expired(row: sqlite3.Row, now: float | None = None) -> bool:
    """Unstored audio (store_audio false) past its time to live: answered 410, its file removed."""
    expires = row["expires_at"]
    return expires is not None and (time.time() if now is None else now) >= expires


def stuck_overdue(row: sqlite3.Row, stuck_seconds: float, now: float | None = None) -> bool:
    """An injected stuck track whose time is up: it fails (refunded) when next seen, as a hosted timeout."""
    return (
        row["status"] == PENDING
        and row["fault"] == TRACK_STUCK
        and (time.time() if now is None else now) >= row["created_at"] + stuck_seconds
    )


def held_back(row: sqlite3.Row, now: float | None = None) -> bool:
    """Hosted timing (latency.py): a settled track whose time to ready has not come yet shows as pending."""
    not_before = row["ready_not_before"]
    return (
        not_before is not None
        and row["status"] != PENDING
        and (time.time() if now is None else now) < not_before
    )


def track_view(row: sqlite3.Row, base_url: str, now: float | None = None) -> Track:
    """A stored track as the contract's Track; audio_url only once there is audio to fetch.

    A track held back by hosted timing looks exactly like a pending one: no audio_url, no duration,
    the amount held as its cost, whatever the store already settled."""
    held = held_back(row, now)
    status = PENDING if held else row["status"]
    audio_url = None
    versions = []
    request = json.loads(row["request_json"])
    if status == READY:
        audio_url = audio_url_of(row, base_url)
        if request.get("versions"):  # the song itself is the full version, then each version made with it
            full = TrackVersion(name="full", audio_url=audio_url, duration_seconds=row["duration_seconds"])
            versions = [full] + [TrackVersion(name=v.name, audio_url=audio_url_of(row, base_url, v.name),
                                              duration_seconds=v.duration_seconds,
                                              format=version_extension(v.name, row["output_format"])
                                              if version_media(v.name) != "audio" else None)
                                 for v in stored_versions(row)]
    bpm = None if held else row["bpm"]
    if bpm is None and status != READY:
        requested = request.get("bpm")
        bpm = requested if isinstance(requested, int | float) else None
    settled = not held and row["cost_cents"] is not None
    return Track(
        id=row["id"],
        name=row["name"],
        audio_url=audio_url,
        seed=row["seed"],
        tags=json.loads(row["tags_json"]) if row["tags_json"] else None,
        status=status,
        error=None if held else row["error"],
        duration_seconds=None if held else row["duration_seconds"],
        output_format=row["output_format"],
        output_bit_rate=request.get("output_bit_rate") if held else row["output_bit_rate"],
        bpm=bpm,
        # While pending: the amount held for it; once settled: what it cost (0 when failed).
        cost_cents=row["cost_cents"] if settled else row["reserved_cents"],
        created_at=_iso(row["created_at"]),
        expires_at=_iso(row["expires_at"]),
        engine_version=None if held else row["engine_version"],
        versions=versions,
    )


def audio_url_of(row: sqlite3.Row, base_url: str, version: str | None = None) -> str:
    """The URL of a track's audio, or of one of its versions (`<id>.<version tag>.<ext>`)."""
    tag = f".{version_file_tag(version)}" if version else ""
    extension = version_extension(version, row["output_format"]) if version else FORMATS[row["output_format"]].extension
    filename = f"{row['id']}{tag}.{extension}"
    return base_url.rstrip("/") + AUDIO_PATH.format(filename=filename)
