"""Submitting songs and polling their tracks: what a key may ask for and what it is charged."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from textmusic.contract import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    SEED_MAX,
    STATUS_PATH,
    SUBMIT_PATH,
    TextToMusicRequest,
    TextToMusicResponse,
    Track,
)
from textmusic.server import callbacks
from textmusic.server.errors import ApiError, validation_message
from textmusic.server.faults import FaultInjector
from textmusic.server.guards import authorized_key, json_body
from textmusic.server.latency import LatencyConfig
from textmusic.server.openapi import RATE_HEADERS, errors
from textmusic.server.store import IdempotencyConflict, InsufficientBalance, NewTrack, Store, Submitted
from textmusic.server.views import STUCK_ERROR, stuck_overdue, track_view
from textmusic.server.workers import GenerationPool

router = APIRouter()
_TRACK_ID = re.compile(r"^[0-9a-f]{32}$")
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


@router.post(
    SUBMIT_PATH,
    response_model=TextToMusicResponse,
    tags=["text-to-music"],
    summary="Generate songs from a prompt, tags and/or lyrics",
    description=(
        "Validates the body, reserves the upper-bound price (402 when the balance cannot cover it) and "
        "answers with pending tracks to poll. A ready track is charged its real length; a failed one is "
        "refunded. `cost_cents` is what this request reserved; `balance_cents` the balance after it. "
        "EXTENSION: the `versions` a request asks for cost nothing extra."
    ),
    responses={200: {"headers": RATE_HEADERS}, **errors(400, 401, 402, 429, 500)},
    openapi_extra={
        "parameters": [{
            "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
            "description": "EXTENSION: repeating a submission with the same key and body answers the first "
                           "submission's tracks and charges nothing more; another body is a 400.",
            "schema": {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY_PATTERN}$"},
        }],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TextToMusicRequest"}}},
        },
    },
)
async def submit(request: Request, key_hash: str = Depends(authorized_key)) -> TextToMusicResponse:
    state = request.app.state
    if state.faults.fires("submit_429"):
        raise ApiError(429, "rate limit exceeded (injected fault); retry in 1 s", {"Retry-After": "1"})
    if state.faults.fires("submit_500"):
        raise ApiError(500, "internal server error (injected fault); try again")
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
    if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise ApiError(400, f"{IDEMPOTENCY_HEADER} must be 1 to 255 visible ASCII characters")
    raw = await json_body(request)
    try:
        body, callback_url = callbacks.callback_url(json.loads(raw))
        req = TextToMusicRequest.model_validate_json(raw if callback_url is None else json.dumps(body))
    except ValidationError as exc:
        raise ApiError(400, validation_message(exc)) from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    # Before a random seed is drawn; without versions, as before they existed (keys of older runs replay).
    canonical = req.model_dump_json(exclude=None if req.versions else {"versions"})
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    if req.seed is None:
        req = req.model_copy(update={"seed": secrets.randbelow(SEED_MAX + 1)})
    new_tracks = _new_tracks(req, state.faults, state.latency)
    idempotency = (idempotency_key, digest) if idempotency_key else None
    submitted = await _reserve(state.store, key_hash, new_tracks, idempotency)
    if not submitted.replayed:
        _queue(state.store, state.pool, new_tracks)
        if callback_url is not None:
            state.callbacks.submitted([t.id for t in new_tracks], callback_url, str(request.base_url))
    rows = [row for row in map(state.store.get_track, submitted.track_ids) if row is not None]
    base = str(request.base_url)
    return TextToMusicResponse(
        success=True,
        tracks=[track_view(r, base) for r in rows],
        cost_cents=sum(int(r["reserved_cents"]) for r in rows),  # a replay: what the first answer reserved
        balance_cents=submitted.balance_cents,
    )


def _new_tracks(req: TextToMusicRequest, injector: FaultInjector, latency: LatencyConfig | None) -> list[NewTrack]:
    """One stored track per song of the request, each with its own seed, reservation, fault and latency."""
    new_tracks = []
    for i in range(req.num_songs):
        song = req.for_song(i)
        track_id = uuid.uuid4().hex
        new_tracks.append(
            NewTrack(
                id=track_id,
                request_json=song.model_dump_json(),
                song_index=i,
                seed=song.seed or 0,  # for_song always sets it
                name=req.name,
                tags_json=json.dumps(req.tags) if req.tags is not None else None,
                output_format=req.output_format,
                output_bit_rate=req.output_bit_rate,
                store_audio=req.store_audio,
                reserved_cents=song.max_cost_cents(),
                fault=injector.track_fault(),
                latency_seconds=latency.seconds_for(track_id) if latency is not None else None,
            )
        )
    return new_tracks


async def _reserve(store: Store, key_hash: str, new_tracks: list[NewTrack],
                   idempotency: tuple[str, str] | None) -> Submitted:
    """The tracks stored and their upper-bound price reserved (or the first submission's, replayed)."""
    try:
        return await run_in_threadpool(store.submit, key_hash, new_tracks, None, idempotency)
    except IdempotencyConflict as exc:
        raise ApiError(400, str(exc)) from None
    except InsufficientBalance as exc:
        raise ApiError(
            402,
            f"insufficient balance: this request needs up to {exc.needed_cents} cents, "
            f"the balance is {exc.balance_cents} cents",
        ) from None


def _queue(store: Store, pool: GenerationPool, new_tracks: list[NewTrack]) -> None:
    """Each new track to the render workers; one that cannot be queued fails (and is refunded)."""
    for t in new_tracks:
        try:
            pool.submit(t.id, t.request_json, t.output_format, t.fault)
        except Exception:
            store.mark_failed(t.id, "could not queue the render")
            raise


@router.get(
    STATUS_PATH,
    response_model=Track,
    tags=["text-to-music"],
    summary="A track's status (local service; the hosted docs name no status endpoint)",
    description="`cost_cents` is the amount held while pending, the price once ready, 0 once failed.",
    responses={200: {"headers": RATE_HEADERS}, **errors(401, 404, 429, 500)},
)
async def status(id: str, request: Request, key_hash: str = Depends(authorized_key)) -> Track:
    store, stuck_seconds = request.app.state.store, request.app.state.faults.config.stuck_seconds
    if request.app.state.faults.fires("poll_500"):
        raise ApiError(500, "internal server error (injected fault); try again")
    row = store.get_track(id) if _TRACK_ID.match(id) else None  # a WAL read: no waiting on the loop
    if row is None or row["key_hash"] != key_hash:
        raise ApiError(404, f"no track {id!r}")
    if stuck_overdue(row, stuck_seconds):
        await run_in_threadpool(store.mark_failed, row["id"], STUCK_ERROR)
        row = store.get_track(id) or row
    return track_view(row, str(request.base_url))
