"""Per-key rate limiting (moving window, via `limits`), mirroring the hosted ~100 requests per 10 s."""

from __future__ import annotations

import math
import re
import time

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


class KeyRateLimiter:
    """In-memory: the service is a single process, and limits need not survive a restart."""

    def __init__(self, spec: str) -> None:
        self.item = parse_rate_limit(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key_hash: str) -> int | None:
        """Count one request; None when allowed, else the whole seconds to wait (>= 1) for Retry-After."""
        if self._limiter.hit(self.item, key_hash):
            return None
        stats = self._limiter.get_window_stats(self.item, key_hash)
        return max(1, math.ceil(stats.reset_time - time.time()))
