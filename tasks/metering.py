"""Provider metering through Prefect's global concurrency limits, so all runs share one budget of requests.

Prefect stays the authority: every request is covered by a slot taken from the shared limit (a slot-decay
limit, i.e. a rate). Taking one slot per request costs one round trip to the Prefect API, which measured
only ~1–3 acquisitions/s on these machines; so slots are taken in batches and handed out locally. A batch
is never more than a tenth of the window's allowance, and unused slots simply lapse, so the provider never
sees more requests than the limit allows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .settings import PipelineSettings


def ensure_rate_limit(settings: PipelineSettings) -> None:
    """Create (or correct) the limit, so that `rate_limit` never silently runs unlimited."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            settings.rate_limit_name,
            limit=settings.requests_per_window,
            slot_decay_per_second=settings.requests_per_window / settings.window_seconds,
        )


class BatchedThrottle:
    """Blocks until a request is covered by a slot of the shared limit; slots come in batches."""

    def __init__(self, acquire: Callable[[int], None], batch: int) -> None:
        self._acquire = acquire
        self._batch = max(1, batch)
        self._left = 0
        self._lock = threading.Lock()
        self.acquired = 0

    def __call__(self) -> None:
        with self._lock:
            if self._left == 0:
                self._acquire(self._batch)
                self._left = self._batch
                self.acquired += self._batch
            self._left -= 1


def batch_size(settings: PipelineSettings) -> int:
    return max(1, min(settings.requests_per_window // 10, settings.metering_batch_max))


def prefect_throttle(settings: PipelineSettings) -> BatchedThrottle:
    """A run's throttle: shared by its generation tasks, drawing on the Prefect limit shared by all runs."""
    from prefect.concurrency.sync import rate_limit

    def acquire(slots: int) -> None:
        rate_limit(settings.rate_limit_name, occupy=slots, strict=True)

    return BatchedThrottle(acquire, batch_size(settings))
