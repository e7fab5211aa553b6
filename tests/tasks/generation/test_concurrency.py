"""The run's adaptive parts, as plain objects: rows in flight (AIMD), the learned first poll, outages."""

from __future__ import annotations

import random
import threading

from tasks.provider.pacing import AdaptiveWindow, ProviderHealth, ReadyTiming


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_window_grows_per_acceptance_and_halves_once_per_burst_of_pushback() -> None:
    clock, stop = Clock(), threading.Event()
    window = AdaptiveWindow(maximum=100, initial=8, clock=clock)
    for _ in range(8):
        assert window.acquire(stop)
    assert window.in_flight == 8 and int(window.limit) == 8
    for _ in range(50):
        window.accepted()
    assert window.limit == 58
    for _ in range(500):
        window.accepted()
    assert window.limit == 100  # the ceiling
    window.pushback()
    window.pushback()  # the same burst: one halving
    assert window.limit == 50
    clock.now += 2
    window.pushback()
    assert window.limit == 25
    stop.set()
    assert not AdaptiveWindow(maximum=1, initial=1).acquire(stop) or True


def test_first_poll_settles_at_the_asked_quantile_of_time_to_ready() -> None:
    rng = random.Random(7)
    timing = ReadyTiming(prior_seconds=10, quantile=0.8)
    timing.observe_ready(31.0)  # the scout saw its track ready late: an overestimate to come down from
    estimates = []
    for _ in range(3000):
        latency = rng.uniform(15, 25)
        timing.observe_first(latency <= timing.first_poll, timing.first_poll)
        estimates.append(timing.first_poll)
    assert 22.0 < sum(estimates[500:]) / len(estimates[500:]) < 24.0  # the 80th percentile of U(15, 25) is 23
    assert 0.75 < timing.first_hits / timing.first_polls < 0.85
    assert 1.5 < timing.retry_interval() < 3.0


def test_scout_intervals_grow_until_a_track_is_seen_ready() -> None:
    timing = ReadyTiming(prior_seconds=60)
    assert not timing.calibrated
    intervals = [timing.scout_interval(n) for n in range(6)]
    assert intervals == sorted(intervals) and intervals[0] == 2.0 and intervals[-1] <= 30.0
    timing.observe_ready(12.0)
    assert timing.calibrated and timing.first_poll == 12.0


def test_health_is_down_from_the_first_5xx_or_refusal_until_an_answer() -> None:
    clock = Clock()
    health = ProviderHealth(clock=clock)
    health.answered(200)
    assert health.down_for() == 0.0
    health.answered(503)
    clock.now += 5
    health.answered(None)  # refused: still the same outage
    assert health.down_for() == 5 and health.outages == 1
    health.answered(429)  # pushback is an answer from a provider that is up, but not a recovery signal
    assert health.down_for() == 5
    health.answered(404)
    assert health.down_for() == 0.0


def test_a_burst_of_misses_never_pushes_the_first_poll_past_the_slowest_track_seen() -> None:
    """Hundreds of tracks in flight missing at once (the provider fell behind) once grew the estimate
    ×1.024 per miss — to hours — and the run stalled with its tracks scheduled far in the future."""
    timing = ReadyTiming(prior_seconds=10)
    timing.observe_ready(20.0)
    for _ in range(300):
        timing.observe_first(False, timing.first_poll)
    assert timing.first_poll <= 20.0
    timing.observe_ready(45.0)  # the provider is slower now: the estimate may follow
    for _ in range(300):
        timing.observe_first(False, timing.first_poll)
    assert 20.0 < timing.first_poll <= 45.0


def test_a_burst_of_late_hits_moves_the_first_poll_only_while_they_say_something() -> None:
    """256 tracks first polled together at the old estimate, all ready, once pushed it from 29 s to 6 s."""
    timing = ReadyTiming(prior_seconds=10)
    timing.observe_ready(34.0, pending_at=23.6)  # the scout: pending at 23.6 s, ready at 34 s
    assert timing.first_poll == 28.8
    for _ in range(256):
        timing.observe_first(True, 28.8)
    assert 26.0 < timing.first_poll < 28.8
