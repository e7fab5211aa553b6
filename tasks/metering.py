"""Provider metering through Prefect's global concurrency limits, so all runs share one budget of requests."""

from __future__ import annotations

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


def prefect_throttle(settings: PipelineSettings) -> Callable[[], None]:
    """A call that blocks until the shared limit admits one more provider request."""
    from prefect.concurrency.sync import rate_limit

    def throttle() -> None:
        rate_limit(settings.rate_limit_name, occupy=1, strict=True)

    return throttle
