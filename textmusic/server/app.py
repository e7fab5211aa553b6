"""The local Text-to-Music service: the contract's HTTP API over the offline engine.

Submission validates with the contract's own model, reserves the worst-case price atomically and
queues the songs on the worker pool, so the POST answers at once with pending tracks that the client
polls. The track's audio URL needs no key: its id is a random 128-bit token.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from textmusic.contract import (
    SEED_MAX,
    STATUS_PATH,
    SUBMIT_PATH,
    TextToMusicRequest,
    TextToMusicResponse,
    Track,
)
from textmusic.server.errors import ApiError, install_error_handlers, validation_message
from textmusic.server.ratelimit import KeyRateLimiter
from textmusic.server.store import InsufficientBalance, NewTrack, Store, hash_key
from textmusic.server.workers import EXTENSIONS, EngineFactory, GenerationPool

AUDIO_PATH = "/api/v1/audio/{filename}"
MAX_BODY_BYTES = 1_000_000
MEDIA_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
}
_TRACK_ID = re.compile(r"^[0-9a-f]{32}$")
_AUDIO_NAME = re.compile(r"^([0-9a-f]{32})\.([a-z0-9]{1,5})$")


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expired(row: sqlite3.Row, now: float | None = None) -> bool:
    expires = row["expires_at"]
    return expires is not None and (time.time() if now is None else now) >= expires


def track_view(row: sqlite3.Row, base_url: str) -> Track:
    """A stored track as the contract's Track; audio_url only once there is audio to fetch."""
    ready = row["status"] == "ready"
    audio_url = None
    if ready:
        audio_url = base_url.rstrip("/") + AUDIO_PATH.format(filename=f"{row['id']}.{EXTENSIONS[row['output_format']]}")
    bpm = row["bpm"]
    if bpm is None and not ready:
        requested = json.loads(row["request_json"]).get("bpm")
        bpm = requested if isinstance(requested, int | float) else None
    return Track(
        id=row["id"],
        name=row["name"],
        audio_url=audio_url,
        seed=row["seed"],
        tags=json.loads(row["tags_json"]) if row["tags_json"] else None,
        status=row["status"],
        error=row["error"],
        duration_seconds=row["duration_seconds"],
        output_format=row["output_format"],
        output_bit_rate=row["output_bit_rate"],
        bpm=bpm,
        # While pending: the amount held for it; once settled: what it cost (0 when failed).
        cost_cents=row["cost_cents"] if row["cost_cents"] is not None else row["reserved_cents"],
        created_at=_iso(row["created_at"]),
        expires_at=_iso(row["expires_at"]),
    )


def _bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authorized_key(request: Request) -> str:
    """Dependency: the caller's key hash, after authentication (401) and its rate limit (429)."""
    state = request.app.state
    key = _bearer_key(request)
    if key is None:
        raise ApiError(401, "missing API token: send Authorization: Bearer <key>", {"WWW-Authenticate": "Bearer"})
    key_hash = hash_key(key)
    if not state.store.key_exists(key_hash):
        raise ApiError(401, "invalid API token", {"WWW-Authenticate": "Bearer"})
    retry_after = state.limiter.hit(key_hash)
    if retry_after is not None:
        raise ApiError(
            429,
            f"rate limit exceeded ({state.limiter.item}); retry in {retry_after} s",
            {"Retry-After": str(retry_after)},
        )
    return key_hash


async def _json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(400, "Content-Type must be application/json")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(400, f"request body is larger than {MAX_BODY_BYTES} bytes")

    def _no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None


def create_app(
    data_dir: Path,
    rate_limit: str = "100/10s",
    workers: int | None = None,
    engine_factory: EngineFactory | None = None,
) -> FastAPI:
    """Build the service for one data folder; workers start and stop with the app's lifespan."""
    store = Store(Path(data_dir))
    limiter = KeyRateLimiter(rate_limit)
    pool = GenerationPool(store, workers=workers, engine_factory=engine_factory)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for rel in store.expired_files():
            (store.data_dir / rel).unlink(missing_ok=True)
        await run_in_threadpool(pool.start)
        try:
            yield
        finally:
            await run_in_threadpool(pool.stop)

    app = FastAPI(title="TrackFoundry local Text-to-Music", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.store = store
    app.state.limiter = limiter
    app.state.pool = pool
    install_error_handlers(app)

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post(SUBMIT_PATH)
    async def submit(request: Request, key_hash: str = Depends(authorized_key)) -> dict[str, Any]:
        body = await _json_body(request)
        try:
            req = TextToMusicRequest.model_validate(body)
        except ValidationError as exc:
            raise ApiError(400, validation_message(exc)) from None
        if req.seed is None:
            req = req.model_copy(update={"seed": secrets.randbelow(SEED_MAX + 1)})
        new_tracks = []
        for i in range(req.num_songs):
            song = req.for_song(i)
            new_tracks.append(
                NewTrack(
                    id=uuid.uuid4().hex,
                    request_json=song.model_dump_json(),
                    song_index=i,
                    seed=song.seed or 0,  # for_song always sets it
                    name=req.name,
                    tags_json=json.dumps(req.tags) if req.tags is not None else None,
                    output_format=req.output_format,
                    output_bit_rate=req.output_bit_rate,
                    store_audio=req.store_audio,
                    reserved_cents=song.max_cost_cents(),
                )
            )
        try:
            balance = await run_in_threadpool(store.submit, key_hash, new_tracks)
        except InsufficientBalance as exc:
            raise ApiError(
                402,
                f"insufficient balance: this request needs up to {exc.needed_cents} cents, "
                f"the balance is {exc.balance_cents} cents",
            ) from None
        for t in new_tracks:
            try:
                pool.submit(t.id, t.request_json, t.output_format)
            except Exception:
                store.mark_failed(t.id, "could not queue the render")
                raise
        rows = [await run_in_threadpool(store.get_track, t.id) for t in new_tracks]
        base = str(request.base_url)
        response = TextToMusicResponse(
            success=True,
            tracks=[track_view(r, base) for r in rows if r is not None],
            cost_cents=sum(t.reserved_cents for t in new_tracks),
            balance_cents=balance,
        )
        return response.model_dump()

    @app.get(STATUS_PATH)
    def status(id: str, request: Request, key_hash: str = Depends(authorized_key)) -> dict[str, Any]:
        row = store.get_track(id) if _TRACK_ID.match(id) else None
        if row is None or row["key_hash"] != key_hash:
            raise ApiError(404, f"no track {id!r}")
        return track_view(row, str(request.base_url)).model_dump()

    @app.get(AUDIO_PATH)
    def audio(filename: str) -> FileResponse:
        match = _AUDIO_NAME.match(filename)
        row = store.get_track(match.group(1)) if match else None
        if row is None or match is None or match.group(2) != EXTENSIONS[row["output_format"]]:
            raise ApiError(404, "no such audio")
        if row["status"] != "ready" or not row["file_path"]:
            raise ApiError(404, f"the track is {row['status']}; no audio")
        path = (store.data_dir / row["file_path"]).resolve()
        if _expired(row):
            path.unlink(missing_ok=True)
            raise ApiError(410, "the audio has expired (store_audio was false)")
        if not path.is_relative_to(store.audio_dir.resolve()) or not path.is_file():
            raise ApiError(404, "the audio file is missing")
        return FileResponse(path, media_type=MEDIA_TYPES[row["output_format"]])

    return app


def serve(data_dir: Path, host: str, port: int, rate_limit: str, workers: int | None) -> None:
    """Run the service until interrupted; uvicorn's access log shows request lines only, never keys."""
    app = create_app(data_dir, rate_limit=rate_limit, workers=workers)
    uvicorn.run(app, host=host, port=port, log_level="info")


__all__ = ["create_app", "serve", "track_view"]
