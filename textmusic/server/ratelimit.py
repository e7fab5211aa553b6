"""Per-key rate limiting (moving window, via `limits`), mirroring the hosted ~100 requests per 10 s."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

_UNITS = {
    "s": "second",
    "sec": "second",
    "secs": "second",
    "m": "minute",
    "min": "minute",
    "mins": "minute",
    "h": "hour",
    "hr": "hour",
    "hrs": "hour",
    "d": "day",
}
_SHORT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_rate_limit(spec: str) -> RateLimitItem:
    """Parse `100/10s` (the CLI's short form) or anything `limits` reads, e.g. `100 per 10 seconds`."""
    match = _SHORT.match(spec)
    if match and match.group(3).lower() in _UNITS:
        count, multiple, unit = match.groups()
        spec = f"{count}/{multiple or 1} {_UNITS[unit.lower()]}"
    try:
        return parse(spec)
    except ValueError as exc:
        raise ValueError(f"invalid rate limit {spec!r}: use e.g. 100/10s") from exc


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one request against a key's window, and what its headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the oldest request in the window leaves it (a slot frees up)

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.reset_seconds)
        return out


class KeyRateLimiter:
    """In-memory: the service is a single process, and limits need not survive a restart."""

    def __init__(self, spec: str) -> None:
        self.item = parse_rate_limit(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key_hash: str) -> RateDecision:
        """Count one request (a refused one is not counted) and report the window after it."""
        allowed = self._limiter.hit(self.item, key_hash)
        stats = self._limiter.get_window_stats(self.item, key_hash)
        wait = max(0.0, stats.reset_time - time.time())
        # A refused request waits at least a second; an allowed one reports 0 only on an empty window.
        reset = max(1, math.ceil(wait)) if not allowed or stats.remaining < self.item.amount else 0
        return RateDecision(allowed, self.item.amount, max(0, stats.remaining), reset)
