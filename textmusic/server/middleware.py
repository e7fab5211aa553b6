"""What wraps every request, when the service is started for it: injected slow answers (faults.py), and a
request log a client can measure its real request rate by."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

from textmusic.server.faults import FaultInjector, SlowResponseMiddleware


def install_middleware(app: FastAPI, injector: FaultInjector, request_log: Path | None) -> None:
    """Only what was asked for: without slow-response faults or a log, requests pass through untouched."""
    if injector.config.probabilities.get("slow_response", 0) > 0:
        app.add_middleware(SlowResponseMiddleware, injector=injector)
    if request_log is not None:
        _install_request_log(app, request_log)


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
