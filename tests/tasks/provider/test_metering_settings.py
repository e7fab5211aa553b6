"""Every flow that sends requests meters them by the provider profile's rate limit, unless the user set one."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from tasks.provider.connection import Connection, metered_by
from tasks.run import Provider
from tasks.settings import PipelineSettings
from textmusic.providers import RateLimit, load_profile


def connection(requests: int, window: float) -> Connection:
    profile = load_profile("verbatik").model_copy(update={"rate_limit": RateLimit(requests=requests,
                                                                                  window_seconds=window)})
    return Connection(Provider.of(profile, name="hosted"), SecretStr("k" * 12), profile)


def test_the_profiles_rate_limit_meters_the_run() -> None:
    settings = metered_by(PipelineSettings(), connection(7, 2.0))
    assert (settings.requests_per_window, settings.window_seconds) == (7, 2.0)


def test_a_limit_the_user_set_wins_over_the_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKFOUNDRY_REQUESTS_PER_WINDOW", "50")
    settings = metered_by(PipelineSettings(), connection(7, 2.0))
    assert (settings.requests_per_window, settings.window_seconds) == (50, 2.0)
