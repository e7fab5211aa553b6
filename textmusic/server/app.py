"""The local Text-to-Music service: the contract's HTTP API over the offline engine.

Submission validates with the contract's own model, reserves the worst-case price atomically and
queues the songs on the worker pool, so the POST answers at once with pending tracks that the client
polls. The track's audio URL needs no key: its id is a random 128-bit token. The OpenAPI document is
built from the same contract models, so a schema-driven client or fuzzer reads the real rules.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from textmusic.contract import (
    BALANCE_STRENGTH_RANGE,
    BIT_RATE_FORMATS,
    BIT_RATES,
    BPM_RANGE,
    CAPACITY_HEADER,
    DURATION_RANGE,
    FORMATS,
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    PROMPT_STRENGTH_RANGE,
    SEED_MAX,
    STATUS_PATH,
    SUBMIT_PATH,
    VERSION_KINDS,
    ErrorResponse,
    TextToMusicRequest,
    TextToMusicResponse,
    Track,
    TrackVersion,
    version_file_tag,
)
from textmusic.server.errors import ApiError, install_error_handlers, validation_message
from textmusic.server.faults import (
    TRACK_STUCK,
    FaultConfig,
    FaultInjector,
    SlowResponseMiddleware,
    TruncatedFileResponse,
)
from textmusic.server.latency import LatencyConfig
from textmusic.server.ratelimit import KeyRateLimiter
from textmusic.server.store import (
    UNSTORED_TTL_SECONDS,
    IdempotencyConflict,
    InsufficientBalance,
    NewTrack,
    Store,
    Submitted,
    hash_key,
    stored_versions,
)
from textmusic.server.workers import EngineFactory, GenerationPool

AUDIO_PATH = "/api/v1/audio/{filename}"
SYNTHETIC_CAPACITY = 1000
MAX_BODY_BYTES = 1_000_000
_TRACK_ID = re.compile(r"^[0-9a-f]{32}$")
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
# <track id>[.<version tag>].<extension>: the song, or one of its versions (`stem-drums`, `30s` …).
_AUDIO_NAME = re.compile(r"^([0-9a-f]{32})(?:\.([a-z0-9-]{1,32}))?\.([a-z0-9]{1,5})$")
STUCK_ERROR = "generation timed out (injected fault: the track stayed pending)"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expired(row: sqlite3.Row, now: float | None = None) -> bool:
    expires = row["expires_at"]
    return expires is not None and (time.time() if now is None else now) >= expires


def _stuck_overdue(row: sqlite3.Row, stuck_seconds: float, now: float | None = None) -> bool:
    return (
        row["status"] == "pending"
        and row["fault"] == TRACK_STUCK
        and (time.time() if now is None else now) >= row["created_at"] + stuck_seconds
    )


def held_back(row: sqlite3.Row, now: float | None = None) -> bool:
    """Hosted timing (latency.py): a settled track whose time to ready has not come yet shows as pending."""
    not_before = row["ready_not_before"]
    return (
        not_before is not None
        and row["status"] != "pending"
        and (time.time() if now is None else now) < not_before
    )


def track_view(row: sqlite3.Row, base_url: str, now: float | None = None) -> Track:
    """A stored track as the contract's Track; audio_url only once there is audio to fetch.

    A track held back by hosted timing looks exactly like a pending one: no audio_url, no duration,
    the amount held as its cost, whatever the store already settled."""
    held = held_back(row, now)
    status = "pending" if held else row["status"]
    audio_url = None
    versions = []
    request = json.loads(row["request_json"])
    if status == "ready":
        audio_url = audio_url_of(row, base_url)
        if request.get("versions"):  # the song itself is the full version, then each version made with it
            full = TrackVersion(name="full", audio_url=audio_url, duration_seconds=row["duration_seconds"])
            versions = [full] + [TrackVersion(name=v.name, audio_url=audio_url_of(row, base_url, v.name),
                                              duration_seconds=v.duration_seconds) for v in stored_versions(row)]
    bpm = None if held else row["bpm"]
    if bpm is None and status != "ready":
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
    filename = f"{row['id']}{tag}.{FORMATS[row['output_format']].extension}"
    return base_url.rstrip("/") + AUDIO_PATH.format(filename=filename)


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")


async def authorized_key(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Dependency: the caller's key hash, after authentication (401) and its rate limit (429).

    The rate-limit headers go on every answer to a known key, error or not (see errors.py). Runs on
    the event loop: its reads are WAL reads that never wait for a writer (store.py).
    """
    state = request.app.state
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(401, "missing API token: send Authorization: Bearer <key>", {"WWW-Authenticate": "Bearer"})
    key_hash = hash_key(credentials.credentials.strip())
    if not state.store.key_exists(key_hash):
        raise ApiError(401, "invalid API token", {"WWW-Authenticate": "Bearer"})
    decision = state.limiter.hit(key_hash)
    headers = decision.headers()
    request.state.extra_headers = headers
    if not decision.allowed:
        raise ApiError(
            429, f"rate limit exceeded ({state.limiter.item}); retry in {decision.reset_seconds} s", headers
        )
    response.headers.update(headers)
    return key_hash


def _too_large() -> ApiError:
    # The contract has no 413: an oversized body is invalid input, with the documented error body.
    return ApiError(400, f"request body is larger than {MAX_BODY_BYTES} bytes")


async def _bounded_body(request: Request) -> bytes:
    """The body, never more than MAX_BODY_BYTES of it held: a declared length over the limit is refused
    before a byte is read, and a chunked (or lying) body is refused as soon as it passes the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    return bytes(body)


async def _json_body(request: Request) -> bytes:
    """The raw body once it is known to be one well-formed JSON document (strict: no NaN/Infinity)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(400, "Content-Type must be application/json")
    raw = await _bounded_body(request)

    def _no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None
    return raw


# --- OpenAPI -------------------------------------------------------------------------------------

_RATE_HEADERS: dict[str, Any] = {
    "X-RateLimit-Limit": {"description": "Requests allowed per window, per key.", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left in the window.", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {
        "description": "Seconds until the oldest request leaves the sliding window (0: the window is empty).",
        "schema": {"type": "integer"},
    },
}
_RETRY_AFTER = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
_ERROR_DESCRIPTIONS = {
    400: "Invalid input: a rule of the contract, malformed JSON, or a Content-Type other than application/json.",
    401: "Invalid or missing API token.",
    402: "Insufficient balance for the request's upper-bound price; nothing is charged.",
    404: "No such track for this key.",
    410: "The audio has expired (store_audio was false).",
    429: "Rate limit exceeded (or an injected fault); nothing is charged.",
    500: "Internal server error (or an injected fault); try again. A failed submission is not charged.",
}


def _errors(*statuses: int, rate_headers: bool = True) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[status]}
        headers = dict(_RATE_HEADERS) if rate_headers and status not in (400, 401) else {}
        if status == 429:
            headers["Retry-After"] = _RETRY_AFTER
        if headers:
            entry["headers"] = headers
        out[status] = entry
    return out


_AUDIO_CONTENT = {m: {"schema": {"type": "string", "format": "binary"}}
                  for m in sorted({f.media_type for f in FORMATS.values()})}
_COMBINATIONS = (
    "At least one of prompt, tags, lyrics must be given (present and not empty). Allowed: prompt only, "
    "prompt + tags, prompt + lyrics, tags + lyrics; refused: lyrics only, tags only, all three. "
    "`lyrics: \"\"` with prompt or tags is an instrumental. "
    f"output_bit_rate only with {' or '.join(BIT_RATE_FORMATS)}."
)


def request_schema() -> dict[str, Any]:
    """The request model's JSON Schema, made exact where pydantic's export is loose.

    pydantic puts the ranges of `StrictFloat | StrictInt` fields under non-standard keys and cannot
    express the bit rate's number form or the bpm validator; a schema-driven client needs them all.
    """
    schema = copy.deepcopy(TextToMusicRequest.model_json_schema(mode="validation"))
    props = schema["properties"]

    def number(lo: float, hi: float) -> dict[str, Any]:
        return {"type": "number", "minimum": lo, "maximum": hi}

    for name, (lo, hi) in (("prompt_strength", PROMPT_STRENGTH_RANGE), ("balance_strength", BALANCE_STRENGTH_RANGE)):
        props[name] = {**number(lo, hi), "default": props[name]["default"], "title": props[name]["title"]}
    props["bpm"] = {
        "anyOf": [number(*BPM_RANGE), {"type": "string", "const": "auto"}],
        "default": "auto",
        "title": "Bpm",
        "description": "Beats per minute, or auto.",
    }
    props["output_bit_rate"] = {
        "anyOf": [
            {"type": "string", "enum": list(BIT_RATES)},
            {"type": "integer", "enum": [int(b) for b in BIT_RATES]},
            {"type": "null"},
        ],
        "default": None,
        "title": "Output Bit Rate",
        "description": f"kbps, as a string or a number; only with output_format {' or '.join(BIT_RATE_FORMATS)}.",
    }
    props["seed"]["description"] = "Seed for reproducibility (32-bit); random when absent, returned in the track."
    props["duration_seconds"] = {
        "anyOf": [number(*DURATION_RANGE), {"type": "null"}],
        "default": None,
        "title": "Duration Seconds",
        "description": (
            "EXTENSION of the local service, not in the hosted API: the length of each song in seconds "
            f"({DURATION_RANGE[0]:g}-{DURATION_RANGE[1]:g}). Send it only to the local provider."
        ),
        "x-extension": "textmusic-local",
    }
    props["versions"] = {
        "anyOf": [{"type": "array", "items": {"type": "string", "enum": list(VERSION_KINDS)}}, {"type": "null"}],
        "default": None,
        "title": "Versions",
        "description": (
            "EXTENSION of the local service, not in the hosted API: library versions to render with each song, "
            "natively from the same composition: cut-downs of 60, 30 or 15 s with a composed ending, seamless "
            "loops of 4, 8 or 16 bars, `stems` (drums, bass, harmony, lead, vocals as present, summing to the "
            "full mix), `underscore` (no lead, no vocals), `nodrums`. `full` (the song) is always delivered. "
            "The ready track lists each under `versions` with its own `audio_url` and `duration_seconds`. "
            "Versions cost nothing extra: a song is charged its own length only. Send it only to the local "
            "provider."
        ),
        "x-extension": "textmusic-local",
    }
    schema["description"] = f"Body of `POST {SUBMIT_PATH}`. Unknown fields are refused. {_COMBINATIONS}"
    return schema


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas["TextToMusicRequest"] = request_schema()
            # FastAPI documents a 422 for parameter errors; this service answers those 400 (errors.py).
            for ops in doc["paths"].values():
                for op in ops.values():
                    op["responses"].pop("422", None)
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# --- the app -------------------------------------------------------------------------------------


router = APIRouter()  # the service's endpoints; what they share is on `request.app.state` (see create_app)



@router.get("/healthz", tags=["service"])
def healthz(request: Request, response: Response) -> dict[str, bool]:
    """Liveness: answers as soon as the service accepts requests. EXTENSION: the `X-TextMusic-Capacity`
    header says how many tracks are worth having in flight (more only queue behind the renders)."""
    response.headers[CAPACITY_HEADER] = str(request.app.state.capacity)
    return {"ok": True}


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
    responses={200: {"headers": _RATE_HEADERS}, **_errors(400, 401, 402, 429, 500)},
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
    raw = await _json_body(request)
    try:
        req = TextToMusicRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError(400, validation_message(exc)) from None
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
    responses={200: {"headers": _RATE_HEADERS}, **_errors(401, 404, 429, 500)},
)
async def status(id: str, request: Request, key_hash: str = Depends(authorized_key)) -> Track:
    store, stuck_seconds = request.app.state.store, request.app.state.faults.config.stuck_seconds
    if request.app.state.faults.fires("poll_500"):
        raise ApiError(500, "internal server error (injected fault); try again")
    row = store.get_track(id) if _TRACK_ID.match(id) else None  # a WAL read: no waiting on the loop
    if row is None or row["key_hash"] != key_hash:
        raise ApiError(404, f"no track {id!r}")
    if _stuck_overdue(row, stuck_seconds):
        await run_in_threadpool(store.mark_failed, row["id"], STUCK_ERROR)
        row = store.get_track(id) or row
    return track_view(row, str(request.base_url))


@router.get(
    AUDIO_PATH,
    response_class=FileResponse,
    tags=["text-to-music"],
    summary="A ready track's audio (no key: the track id is the secret)",
    description=(
        "Supports `Range` requests (206). Unstored audio answers 410 once expired. EXTENSION: a version "
        "of the track is served as `<id>.<version>.<ext>` (`stem:drums` as `stem-drums`), the URL its "
        "track lists under `versions`."
    ),
    responses={
        200: {"content": _AUDIO_CONTENT, "description": "The audio file."},
        206: {"content": _AUDIO_CONTENT, "description": "The requested byte range."},
        **_errors(404, 410, rate_headers=False),
    },
)
def audio(filename: str, request: Request) -> Response:
    store, injector = request.app.state.store, request.app.state.faults
    match = _AUDIO_NAME.match(filename)
    row = store.get_track(match.group(1)) if match else None
    if row is None or match is None or match.group(3) != FORMATS[row["output_format"]].extension:
        raise ApiError(404, "no such audio")
    if held_back(row):
        raise ApiError(404, "the track is pending; no audio")
    if row["status"] != "ready" or not row["file_path"]:
        raise ApiError(404, f"the track is {row['status']}; no audio")
    file_path = row["file_path"]
    if match.group(2) is not None:
        tagged = {version_file_tag(v.name): v.file_path for v in stored_versions(row)}
        if match.group(2) not in tagged:
            raise ApiError(404, "no such version of the track")
        file_path = tagged[match.group(2)]
    path = (store.data_dir / file_path).resolve()
    if _expired(row):
        path.unlink(missing_ok=True)
        raise ApiError(410, "the audio has expired (store_audio was false)")
    if not path.is_relative_to(store.audio_dir.resolve()) or not path.is_file():
        raise ApiError(404, "the audio file is missing")
    media_type = FORMATS[row["output_format"]].media_type
    if injector.fires("truncated_download"):
        return TruncatedFileResponse(path, media_type)
    return FileResponse(path, media_type=media_type)


def create_app(
    data_dir: Path,
    rate_limit: str = "100/10s",
    workers: int | None = None,
    engine_factory: EngineFactory | None = None,
    audio_ttl_seconds: float = UNSTORED_TTL_SECONDS,
    faults: FaultConfig | None = None,
    request_log: Path | None = None,
    latency: LatencyConfig | None = None,
    synthetic_audio: bool = False,
) -> FastAPI:
    """Build the service for one data folder; workers start and stop with the app's lifespan.

    `latency`: hosted timing, each track shown pending for its seeded time (latency.py).
    `synthetic_audio`: workers make a click track instead of running the engine (synthetic.py).
    """
    store = Store(Path(data_dir), audio_ttl_seconds=audio_ttl_seconds)
    limiter = KeyRateLimiter(rate_limit)
    if synthetic_audio and engine_factory is None:
        from textmusic.server.synthetic import SyntheticEngine

        engine_factory = SyntheticEngine
    pool = GenerationPool(store, workers=workers, engine_factory=engine_factory)
    latency = latency if latency is not None and latency.enabled else None
    injector = FaultInjector(faults)
    stuck_seconds = injector.config.stuck_seconds

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for rel in store.expired_files():
            (store.data_dir / rel).unlink(missing_ok=True)
        for row in store.pending_tracks():
            if _stuck_overdue(row, stuck_seconds):
                store.mark_failed(row["id"], STUCK_ERROR)
        await run_in_threadpool(pool.start)
        try:
            yield
        finally:
            await run_in_threadpool(pool.stop)

    app = FastAPI(
        title="TrackFoundry local Text-to-Music",
        version="1",
        description=(
            "The local reading of the Text-to-Music API contract. Fields marked EXTENSION are not in the "
            "hosted API. Every error has the body `{success: false, error: {code, message}}`."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.limiter = limiter
    app.state.pool = pool
    app.state.faults = injector
    app.state.latency = latency
    app.state.capacity = SYNTHETIC_CAPACITY if synthetic_audio else 2 * pool.workers
    install_error_handlers(app)
    _install_openapi(app)
    if injector.config.probabilities.get("slow_response", 0) > 0:
        app.add_middleware(SlowResponseMiddleware, injector=injector)
    if request_log is not None:
        _install_request_log(app, request_log)
    app.include_router(router)
    return app


def _install_request_log(app: FastAPI, path: Path) -> None:
    """One line per request received (`epoch method path status`): lets a client measure, from the provider's
    side, the request rate it really produced (benchmarks/scale.py). Holds no header, so never a key."""
    log = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the app's lifetime

    @app.middleware("http")
    async def request_log(request: Request, call_next: Any) -> Response:
        received = time.time()
        response = await call_next(request)
        log.write(f"{received:.6f} {request.method} {request.url.path} {response.status_code}\n")
        return response


def serve(
    data_dir: Path,
    host: str,
    port: int,
    rate_limit: str,
    workers: int | None,
    audio_ttl_seconds: float = UNSTORED_TTL_SECONDS,
    faults: FaultConfig | None = None,
    request_log: Path | None = None,
    latency: LatencyConfig | None = None,
    synthetic_audio: bool = False,
) -> None:
    """Run the service until interrupted; uvicorn's access log shows request lines only, never keys."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    app = create_app(
        data_dir, rate_limit=rate_limit, workers=workers, audio_ttl_seconds=audio_ttl_seconds, faults=faults,
        request_log=request_log, latency=latency, synthetic_audio=synthetic_audio,
    )
    logger = logging.getLogger(__name__)
    if faults is not None and faults.enabled:
        logger.warning("fault injection ON (seed %d): %s", faults.seed, faults.probabilities)
    if latency is not None and latency.enabled:
        logger.warning("hosted timing ON: each track pending %s from submission (seed %d)", latency.describe(),
                       latency.seed)
    if synthetic_audio:
        logger.warning("synthetic audio ON: click tracks, not the music engine (engine_version synthetic-1)")
    # SIGTERM: stop accepting, give open requests 10 s, then the lifespan stops the pool (workers.py).
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=10)


__all__ = ["audio_url_of", "create_app", "held_back", "request_schema", "serve", "track_view"]
