"""Provider metering through Prefect's global concurrency limits, so all runs share one budget of requests.

Prefect stays the authority: every request is covered by a slot taken from the shared limit (a slot-decay
limit, i.e. a rate). Taking one slot per request costs one round trip to the Prefect API, which measured
only ~1–3 acquisitions/s on these machines; so slots are taken in batches of B (at most a tenth of the
window's allowance) and handed out locally.

Why the window holds: the limit's capacity is one batch, so Prefect admits a batch only once the previous
one has fully decayed — batches start at least B/d apart, d being the decay rate. A batch's slots lapse E
seconds after they were asked for, so each window of W seconds meets at most ceil((W + E)·d / B) batches;
with d = B·floor(L/B) / (W + E) that is floor(L/B) batches, at most L requests (L per W: the limit).

Why it reaches ~95% of L/W: Prefect 3.8's server restarts the decay clock on every refused request (a 423
writes the row's `updated` without decaying it), so contenders that retry blindly (`rate_limit`'s loop)
keep the limit from ever decaying. Here each run reads the limit (a read writes nothing), sleeps until
the batch's room has decayed, and only then asks; a refusal only happens when two runs race for the same
room, and costs a few milliseconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from tasks.settings import PipelineSettings


def decay_per_second(settings: PipelineSettings) -> float:
    """The limit's decay d = B·floor(L/B) / (W + E): derated so that lapsing batches never break the window."""
    batch = batch_size(settings)
    allowed = batch * (settings.requests_per_window // batch)
    return allowed / (settings.window_seconds + settings.metering_lapse_seconds)


def ensure_rate_limit(settings: PipelineSettings) -> None:
    """Create (or correct) the limit — capacity one batch, derated decay — so metering never runs unlimited."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            settings.rate_limit_name,
            limit=batch_size(settings),
            slot_decay_per_second=decay_per_second(settings),
        )


class BatchedThrottle:
    """Blocks until a request is covered by a slot of the shared limit; slots come in batches and lapse
    `lapse_seconds` after they were asked for (None: never), so a batch cannot be spent late. `acquire` may
    return when (on `clock`) the granting request was sent; else the time before the call is used."""

    def __init__(self, acquire: Callable[[int], float | None], batch: int, lapse_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._acquire = acquire
        self._batch = max(1, batch)
        self._lapse = lapse_seconds
        self._clock = clock
        self._left = 0
        self._expires = math.inf
        self._lock = threading.Lock()
        self.acquired = 0
        self.lapsed = 0

    def __call__(self) -> None:
        with self._lock:
            if self._left and self._clock() >= self._expires:
                self.lapsed += self._left
                self._left = 0
            if self._left == 0:
                asked = self._clock()
                granted = self._acquire(self._batch)
                asked = granted if granted is not None else asked
                self._left = self._batch
                self._expires = asked + self._lapse if self._lapse is not None else math.inf
                self.acquired += self._batch
            self._left -= 1


def batch_size(settings: PipelineSettings) -> int:
    return max(1, min(settings.requests_per_window // 10, settings.metering_batch_max))


class PrefectSlots:
    """Takes slots from the Prefect limit `name`, asking only once the limit has room (see the module's
    docstring): a missing limit is an error, never a silent 'unlimited'."""

    MARGIN_SECONDS = 0.005

    def __init__(self, name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = name
        self._sleep = sleep
        self._client: Any = None
        self.refused = 0

    def _prefect(self) -> Any:
        if self._client is None:
            from prefect.client.orchestration import get_client

            self._client = get_client(sync_client=True).__enter__()
        return self._client

    def __call__(self, slots: int) -> float | None:
        """Returns when (time.monotonic) the granting request was sent: the slots' lapse counts from there."""
        import httpx

        client = self._prefect()
        limit = self._read(client)
        while True:
            if not limit.active:
                return None  # a deactivated limit does not meter, as in Prefect's own `rate_limit`
            if slots > limit.limit or limit.slot_decay_per_second <= 0:
                raise RuntimeError(f"the rate limit {self.name!r} cannot meter batches of {slots}")
            if limit.active_slots + slots > limit.limit:
                # Sleep until the room has decayed, then ask at once: a fresh read would cost a round trip.
                self._sleep(self._wait_seconds(limit, slots))
            try:
                sent = time.monotonic()
                client.increment_concurrency_slots(names=[self.name], slots=slots, mode="rate_limit")
                return sent
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:
                    raise
                self.refused += 1  # another run took the room first (or decay lagged): read again
                limit = self._read(client)

    def _read(self, client: Any) -> Any:
        from prefect.exceptions import ObjectNotFound

        try:
            return client.read_global_concurrency_limit_by_name(self.name)
        except ObjectNotFound:
            raise RuntimeError(f"the rate limit {self.name!r} does not exist in Prefect") from None

    def _wait_seconds(self, limit: Any, slots: int) -> float:
        """Until enough slots have decayed: exact from the row's last write, bounded by the slowest case."""
        decay = limit.slot_decay_per_second
        need = limit.active_slots + slots - limit.limit
        elapsed = max(0.0, time.time() - limit.updated.timestamp()) if limit.updated else 0.0
        raw = limit.active_slots + math.floor(decay * elapsed)
        exact = (raw - limit.limit + slots) / decay - elapsed
        return min(max(exact, 0.0), need / decay) + self.MARGIN_SECONDS


def prefect_throttle(settings: PipelineSettings) -> BatchedThrottle:
    """A run's throttle: shared by its generation tasks, drawing on the Prefect limit shared by all runs.
    Slots lapse a little before E, leaving the rest of E for the request's way to the provider."""
    return BatchedThrottle(PrefectSlots(settings.rate_limit_name), batch_size(settings),
                           lapse_seconds=0.8 * settings.metering_lapse_seconds)
