"""Hosted timing: each track stays `pending` for a seeded time, as on the hosted service (30-90 s there).

Off by default. With `--latency MIN-MAX` every submitted song gets a time drawn uniformly in [MIN, MAX]
seconds from a hash of its track id and the latency seed, so the same id and seed always give the same
time. The store keeps the resulting epoch ("not ready before") in the track's row, so a restart, even
after kill -9, keeps every track's time to ready. Nothing waits on it: rendering and settlement happen as
usual, and the status endpoint simply shows a settled track as pending until its time has come (a pure
comparison on each poll, no timer or thread per track).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_SPEC = re.compile(rf"^\s*{_NUMBER}\s*s?\s*(?:-\s*{_NUMBER}\s*s?\s*)?$")


@dataclass(frozen=True)
class LatencyConfig:
    """Time a track stays pending: uniform in [min_seconds, max_seconds], seeded per track id."""

    min_seconds: float = 0.0
    max_seconds: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for value in (self.min_seconds, self.max_seconds):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"a latency must be a finite number of seconds >= 0, not {value!r}")
        if self.min_seconds > self.max_seconds:
            raise ValueError(f"latency MIN ({self.min_seconds:g}) is above MAX ({self.max_seconds:g})")

    @property
    def enabled(self) -> bool:
        return self.max_seconds > 0

    def describe(self) -> str:
        if self.min_seconds == self.max_seconds:
            return f"{self.min_seconds:g} s"
        return f"{self.min_seconds:g}-{self.max_seconds:g} s"

    def seconds_for(self, track_id: str) -> float:
        """This track's time pending (from its submission); see `latency_seconds`."""
        return latency_seconds(track_id, self.min_seconds, self.max_seconds, self.seed)


def latency_fraction(track_id: str, seed: int = 0) -> float:
    """A uniform number in [0, 1) that depends only on the track id and the seed."""
    digest = hashlib.sha256(f"textmusic-latency:{seed}:{track_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def latency_seconds(track_id: str, min_seconds: float, max_seconds: float, seed: int = 0) -> float:
    """How long the track `track_id` stays pending: MIN + (MAX - MIN) * fraction(id, seed)."""
    return min_seconds + (max_seconds - min_seconds) * latency_fraction(track_id, seed)


def parse_latency(spec: str | None, seed: int = 0) -> LatencyConfig | None:
    """Read `--latency`: "MIN-MAX" (seconds, e.g. "15-25" or "0.5-2.5"), or one number for a fixed time.

    None, "" and "0" mean off."""
    if spec is None or not spec.strip():
        return None
    match = _SPEC.match(spec)
    if match is None:
        raise ValueError(f"--latency {spec!r}: write MIN-MAX in seconds (e.g. 15-25) or one number (e.g. 20)")
    low = float(match.group(1))
    high = float(match.group(2)) if match.group(2) is not None else low
    config = LatencyConfig(low, high, seed)
    return config if config.enabled else None


__all__ = ["LatencyConfig", "latency_fraction", "latency_seconds", "parse_latency"]
