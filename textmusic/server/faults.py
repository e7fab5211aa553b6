"""Fault injection: the local service can fail the ways a hosted service fails, on purpose and reproducibly.

Off by default. Each fault has a probability; each draws from its own seeded random stream, so the
n-th submission meets the same fate in every run with the same seed, however many polls came between.
A fault on submission strikes before any charge, so an injected 429 or 500 never costs anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

FAULTS: dict[str, str] = {
    "submit_429": "a submission answered 429 rate limit exceeded, with Retry-After (nothing charged)",
    "submit_500": "a submission answered 500 internal server error (nothing charged)",
    "poll_500": "a status poll answered 500 internal server error",
    "track_failed": "a submitted song ends failed instead of rendering (refunded)",
    "track_stuck": "a submitted song stays pending for stuck_seconds, then fails (refunded)",
    "slow_response": "an API response delayed by slow_seconds",
    "truncated_download": "an audio download that announces the whole Content-Length, sends half, then closes",
}
OPTIONS: dict[str, float] = {"slow_seconds": 2.0, "stuck_seconds": 3600.0}

# What the store records on a song the submission chose to break.
TRACK_FAIL = "fail"
TRACK_STUCK = "stuck"


@dataclass(frozen=True)
class FaultConfig:
    """Probabilities (0..1) per fault name, the seed, and the two delays the faults use."""

    probabilities: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    slow_seconds: float = OPTIONS["slow_seconds"]
    stuck_seconds: float = OPTIONS["stuck_seconds"]

    @property
    def enabled(self) -> bool:
        return any(p > 0 for p in self.probabilities.values())


def _inline(spec: str) -> dict[str, Any]:
    """`submit_500=0.1, slow_response=0.05, slow_seconds=3` as a mapping."""
    out: dict[str, Any] = {}
    for part in spec.replace(";", ",").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"fault {part.strip()!r}: write name=probability, e.g. submit_500=0.1")
        out[name.strip()] = value.strip()
    return out


def parse_faults(spec: str | None, seed: int | None = None) -> FaultConfig:
    """Read `--faults`: a .json or .toml file, or inline `name=p,...`; `seed` (if given) wins over the file's."""
    raw: dict[str, Any] = {}
    if spec and spec.strip():
        path = Path(spec)
        if path.suffix.lower() in (".json", ".toml") or path.is_file():
            text = path.read_text(encoding="utf-8")
            raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError(f"{path}: the fault file must hold a table/object of name = probability")
        else:
            raw = _inline(spec)
    raw = dict(raw)
    probabilities: dict[str, float] = {}
    options = dict(OPTIONS)
    file_seed = raw.pop("seed", None)
    for name, value in raw.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"fault {name!r}: {value!r} is not a number") from None
        if name in FAULTS:
            if not 0.0 <= number <= 1.0:
                raise ValueError(f"fault {name!r}: a probability must be from 0 to 1, not {number:g}")
            probabilities[name] = number
        elif name in OPTIONS:
            if number < 0:
                raise ValueError(f"{name} cannot be negative")
            options[name] = number
        else:
            known = ", ".join([*FAULTS, *OPTIONS, "seed"])
            raise ValueError(f"unknown fault {name!r}; known: {known}")
    chosen_seed = seed if seed is not None else int(file_seed) if file_seed is not None else 0
    return FaultConfig(probabilities, chosen_seed, options["slow_seconds"], options["stuck_seconds"])


class FaultInjector:
    """Draws the faults; thread-safe (requests run on the event loop and in the thread pool)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self._lock = threading.Lock()
        self._streams = {name: random.Random(f"{self.config.seed}:{name}") for name in FAULTS}

    def fires(self, name: str) -> bool:
        """One draw for `name`; a fault with no probability draws nothing, so it never shifts the others."""
        p = self.config.probabilities.get(name, 0.0)
        if p <= 0.0:
            return False
        with self._lock:
            hit = self._streams[name].random() < p
        if hit:
            log.info("fault injected: %s", name)
        return hit

    def track_fault(self) -> str | None:
        """The fate of one submitted song: stuck, failed, or none."""
        if self.fires("track_stuck"):
            return TRACK_STUCK
        if self.fires("track_failed"):
            return TRACK_FAIL
        return None


class SlowResponseMiddleware:
    """Delays API requests (not health checks or the OpenAPI document) when `slow_response` fires."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/") and self.injector.fires("slow_response"):
            await asyncio.sleep(self.injector.config.slow_seconds)
        await self.app(scope, receive, send)


class TruncatedFileResponse(Response):
    """Headers for the whole file, then half its bytes, then the connection closes (uvicorn drops a
    connection whose app returns with the body unfinished), as a network cut mid-download would."""

    def __init__(self, path: Path, media_type: str) -> None:
        super().__init__(media_type=media_type)
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        data = self.path.read_bytes()
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
