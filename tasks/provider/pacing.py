"""How much to ask of a provider at once, and when to ask again: learned from its answers, not configured.

- `AdaptiveWindow`: rows in flight grow by one per accepted submission and halve on pushback (429, 5xx,
  refused connections): additive increase, multiplicative decrease, as TCP does, up to a ceiling.
- `ReadyTiming`: when to poll a track first. Until one track has been seen ready, only the oldest pending
  track is polled (a scout, on growing intervals); from then on each track is first polled at an estimate
  of the q-quantile of the time to ready, tracked by stochastic approximation: every first poll that finds
  its track ready moves the estimate down by `rate·(1−q)`, every miss moves it up by `rate·q` (relative),
  so it settles where a fraction q of tracks are ready at their first poll. Misses are polled again at
  short intervals. With q = 0.8 a track costs about 1.2 polls on average; the run aims at q = 0.95 while
  rows wait for the rate limit (a poll then costs a submission).
- `JobSlots`: a provider's cap on jobs running at once (`max_parallel_jobs`), apart from its rate limit.
- `ProviderHealth`: whether the provider is answering, and since when it has not been.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class AdaptiveWindow:
    """Bounds rows in flight; `acquire` blocks while the window is full."""

    PUSHBACK_HOLD_SECONDS = 1.0  # one halving per burst of pushbacks, not one per refused request

    def __init__(self, maximum: int, initial: int = 8, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(min(max(1, initial), self.maximum))
        self.in_flight = 0
        self._clock = clock
        self._last_cut = -1e9
        self._cond = threading.Condition()

    def acquire(self, stop: threading.Event) -> bool:
        with self._cond:
            while self.in_flight >= int(self.limit) and not stop.is_set():
                self._cond.wait(0.5)
            if stop.is_set():
                return False
            self.in_flight += 1
            return True

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def accepted(self) -> None:
        with self._cond:
            self.limit = min(float(self.maximum), self.limit + 1.0)
            self._cond.notify_all()

    def pushback(self) -> None:
        with self._cond:
            now = self._clock()
            if now - self._last_cut >= self.PUSHBACK_HOLD_SECONDS:
                self.limit = max(1.0, self.limit / 2)
                self._last_cut = now


class JobSlots:
    """A provider's cap on the jobs it runs at once (Mureka, MusicGPT: about 10 per account), apart from its rate
    limit and from our own rows in flight: a submission takes a slot per song it asks, a track gives its slot back
    the moment it is seen to leave pending (its download no longer runs at the provider). None: no cap."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.taken = 0
        self._cond = threading.Condition()

    def acquire(self, songs: int, stop: threading.Event) -> int:
        """Blocks until the songs' slots are free; returns how many were taken (0 when stopped meanwhile). A row
        asking more songs than the cap takes the whole cap."""
        if self.cap is None:
            return 0
        wanted = min(songs, self.cap)
        with self._cond:
            while self.taken + wanted > self.cap and not stop.is_set():
                self._cond.wait(0.5)
            if stop.is_set():
                return 0
            self.taken += wanted
            return wanted

    def release(self, slots: int) -> None:
        if slots <= 0:
            return
        with self._cond:
            self.taken -= slots
            self._cond.notify_all()


class ReadyTiming:
    """The learned first-poll delay (see the module's docstring). Thread-safe."""

    SLACK = 0.1  # a first poll this much off its due time (pacing) still counts as made at the estimate

    def __init__(self, prior_seconds: float, quantile: float = 0.8, rate: float = 0.03,
                 min_interval: float = 0.5, max_interval: float = 30.0) -> None:
        self.quantile = quantile
        self.rate = rate
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.first_poll: float | None = None  # None until a track has been seen ready
        self.scout_start = min(2.0, prior_seconds / 4)
        self.first_polls = 0
        self.first_hits = 0
        self.slowest = 0.0  # the longest time to ready seen
        self._lock = threading.Lock()

    @property
    def calibrated(self) -> bool:
        return self.first_poll is not None

    def observe_first(self, ready: bool, age: float) -> None:
        """The outcome of a track's first poll at `age` seconds after its submission. Only an outcome that
        says something about the estimate moves it: ready by the estimate (down), not ready at it (up). A
        burst of polls made late, all ready, says nothing about an estimate they already moved below."""
        with self._lock:
            self.first_polls += 1
            self.first_hits += ready
            if self.first_poll is None:
                if ready:
                    self.first_poll = age
                return
            step = self.rate * self.first_poll
            if ready and age <= self.first_poll * (1 + self.SLACK):
                self.first_poll -= step * (1 - self.quantile)
            elif not ready and age >= self.first_poll * (1 - self.SLACK):
                self.first_poll += step * self.quantile
            # Misses of many tracks in flight at once carry one piece of news (the provider is slower), not
            # hundreds: never wait longer than the slowest track yet seen ready took.
            self.first_poll = min(self.first_poll, self.slowest)

    def observe_ready(self, age: float, pending_at: float = 0.0) -> None:
        """A track seen ready `age` seconds after submission, last seen pending at `pending_at`: the first
        estimate is the middle of that interval (the scout's growing intervals make `age` late)."""
        with self._lock:
            self.slowest = max(self.slowest, age)
            if self.first_poll is None:
                self.first_poll = (age + pending_at) / 2 if pending_at else age

    def scout_interval(self, polls: int) -> float:
        """Growing intervals of the scout before any track was seen ready."""
        return min(self.max_interval, self.scout_start * 1.5 ** polls)

    def retry_interval(self) -> float:
        """After a missed poll: a tenth of the typical time to ready."""
        typical = self.first_poll or self.scout_start * 10
        return min(self.max_interval, max(self.min_interval, typical / 10))


class ProviderHealth:
    """Down from the first failure to reach the provider (5xx, refused) until any answer that is not one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.down_since: float | None = None
        self.outages = 0
        self._cond = threading.Condition()

    def answered(self, status: int | None) -> None:
        """Every request's outcome: an HTTP status, or None when no answer came."""
        with self._cond:
            if status is None or status >= 500:
                if self.down_since is None:
                    self.down_since = self._clock()
                    self.outages += 1
            elif self.down_since is not None and status != 429:
                self.down_since = None
                self._cond.notify_all()

    def down_for(self) -> float:
        with self._cond:
            return 0.0 if self.down_since is None else self._clock() - self.down_since

    def wait_up(self, stop: threading.Event, timeout: float) -> bool:
        """Block while the provider is down (at most `timeout`); True when it is up."""
        deadline = self._clock() + timeout
        with self._cond:
            while self.down_since is not None and not stop.is_set() and self._clock() < deadline:
                self._cond.wait(min(1.0, max(0.01, deadline - self._clock())))
            return self.down_since is None
