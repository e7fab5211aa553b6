"""The local Text-to-Music service: the contract's HTTP API over the offline engine.

Submission validates with the contract's own model, reserves the worst-case price atomically and
queues the songs on the worker pool, so the POST answers at once with pending tracks that the client
polls. The track's audio URL needs no key: its id is a random 128-bit token. The OpenAPI document is
built from the same contract models, so a schema-driven client or fuzzer reads the real rules.

This module only assembles the service: the endpoints are in routes/ (health, tracks, audio), what a
request passes first in guards.py, the track as answered in views.py, the document in openapi.py and
the optional middleware in middleware.py. What they share is on `app.state` (see create_app).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from textmusic.server.callbacks import SECRET_ENV, CallbackSender
from textmusic.server.errors import install_error_handlers
from textmusic.server.faults import FaultConfig, FaultInjector
from textmusic.server.latency import LatencyConfig
from textmusic.server.middleware import install_middleware
from textmusic.server.openapi import install_openapi
from textmusic.server.ratelimit import KeyRateLimiter
from textmusic.server.routes import ROUTERS
from textmusic.server.store import UNSTORED_TTL_SECONDS, Store
from textmusic.server.views import STUCK_ERROR, stuck_overdue
from textmusic.server.workers import EngineFactory, GenerationPool
from textmusic.settings import RATE_LIMIT

SYNTHETIC_CAPACITY = 1000
_DESCRIPTION = (
    "The local reading of the Text-to-Music API contract. Fields marked EXTENSION are not in the "
    "hosted API. Every error has the body `{success: false, error: {code, message}}`."
)


def create_app(
    data_dir: Path,
    rate_limit: str = RATE_LIMIT,
    workers: int | None = None,
    engine_factory: EngineFactory | None = None,
    audio_ttl_seconds: float = UNSTORED_TTL_SECONDS,
    faults: FaultConfig | None = None,
    request_log: Path | None = None,
    latency: LatencyConfig | None = None,
    synthetic_audio: bool = False,
    callback_secret: str | None = None,
) -> FastAPI:
    """Build the service for one data folder; workers start and stop with the app's lifespan.

    `latency`: hosted timing, each track shown pending for its seeded time (latency.py).
    `synthetic_audio`: workers make a click track instead of running the engine (synthetic.py).
    `callback_secret`: signs the callbacks a submission asks for (callbacks.py); None: they go unsigned.
    """
    store = Store(Path(data_dir), audio_ttl_seconds=audio_ttl_seconds)
    limiter = KeyRateLimiter(rate_limit)
    if synthetic_audio and engine_factory is None:
        from textmusic.server.synthetic import SyntheticEngine

        engine_factory = SyntheticEngine
    pool = GenerationPool(store, workers=workers, engine_factory=engine_factory)
    injector = FaultInjector(faults)
    callbacks = CallbackSender(store, callback_secret)
    app = FastAPI(title="TrackFoundry local Text-to-Music", version="1", description=_DESCRIPTION,
                  lifespan=_lifespan(store, pool, injector.config.stuck_seconds, callbacks), docs_url=None,
                  redoc_url=None)
    app.state.store = store
    app.state.limiter = limiter
    app.state.pool = pool
    app.state.faults = injector
    app.state.callbacks = callbacks
    app.state.latency = latency if latency is not None and latency.enabled else None
    app.state.capacity = SYNTHETIC_CAPACITY if synthetic_audio else 2 * pool.workers
    install_error_handlers(app)
    install_openapi(app)
    install_middleware(app, injector, request_log)
    for router in ROUTERS:
        app.include_router(router)
    return app


def _lifespan(store: Store, pool: GenerationPool, stuck_seconds: float,
              callbacks: CallbackSender) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The service's start and stop. Before accepting requests: audio that expired while it was down is
    deleted and injected stuck tracks whose time passed are failed (refunded), then the workers start;
    on stop, the workers stop (workers.py says what becomes of the renders in flight)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for rel in store.expired_files():
            (store.data_dir / rel).unlink(missing_ok=True)
        for row in store.pending_tracks():
            if stuck_overdue(row, stuck_seconds):
                store.mark_failed(row["id"], STUCK_ERROR)
        await run_in_threadpool(pool.start)
        try:
            yield
        finally:
            await callbacks.close()
            await run_in_threadpool(pool.stop)

    return lifespan


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
        callback_secret=os.environ.get(SECRET_ENV) or None,
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


__all__ = ["create_app", "serve"]
