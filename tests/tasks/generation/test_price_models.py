"""The budget is a hard cap whatever the provider's price model: budget runs against stand-ins that charge per
call and per second (their own price lists, over real loopback HTTP) never spend past the cap, and the ledger's
costs are the stand-in's charges to the cent. Against these prices the seed's $0.20 per minute would not have
held the cap."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from tasks.catalog.ledger import summarize
from tasks.intake.plan import max_cost_cents, plan_rows, within_budget
from tasks.intake.validate import BriefRow
from tasks.run import Provider
from tests.support.generation import QUICK, quick_profile, run_rows
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.pricing import Price
from textmusic.providers import Profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import Billing, Shape, StandIn

API = TextMusicSettings(max_attempts=4, poll_deadline_seconds=60)
# Songs of at most 15 s (a provider's documented length cap): the worst case is close to what is paid, so the
# cap is tight, and the seed's per-minute price (5 cents for 15 s) is under these providers' charges.
SETTINGS = QUICK.model_copy(update={"max_minutes_per_song": 0.25})


def rows(songs: list[int]) -> list:
    brief = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(
        prompt=f"calm piano {i}", seed=10 * i, num_songs=n, output_format="flac"), {})  # type: ignore[arg-type]
        for i, n in enumerate(songs, start=1)]
    return plan_rows(brief, "demo", "hosted", False)


def budget_run(api: StandIn, profile: Profile, songs: list[int], budget_cents: int | None, out: Path):
    """What `run --budget` does: rows taken in brief order while their worst case fits, then generated."""
    profile = profile.model_copy(update={"base_url": api.base_url})
    planned = rows(songs)
    fits, over = within_budget(planned, budget_cents, SETTINGS, profile)
    with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
        records, _ = run_rows(fits, client, out, settings=SETTINGS)
    return planned, fits, over, records


def charged_per_row(api: StandIn) -> dict[str, int]:
    return {body["name"]: cents for body, cents in zip(api.accepted, api.charges, strict=True)}


def ledger_per_row(records: list) -> dict[str, int]:
    costs: dict[str, int] = defaultdict(int)
    for record in records:
        costs[record.name] += record.cost_cents
    return dict(costs)


def seed_would_take(planned: list, budget_cents: int, billing: Billing, seconds: float) -> int:
    """What the rows the seed's per-minute worst case lets through would really be charged."""
    seed = Provider("hosted", "https://api.example.test", False, quick_profile().price)
    fits, _ = within_budget(planned, budget_cents, SETTINGS, seed)
    return sum(billing.submission_cents(r.request.num_songs, seconds) for r in fits)


def test_a_per_call_budget_run_never_passes_its_cap_and_the_ledger_splits_each_call_to_the_cent(
        tmp_path: Path) -> None:
    billing = Billing("call", 7000, songs_per_call=2)  # 7 cents a call of up to 2 songs: 2-song rows split 4 + 3
    price = Price(model="per_call", cents=Decimal(7), songs_per_call=2)
    songs, budget = [2, 1, 1, 1, 1], 25
    with StandIn(Shape(billing=billing, seconds_to_ready=0.3)) as api:  # no cost reported: the model decides
        planned, fits, over, records = budget_run(api, quick_profile(price=price), songs, budget, tmp_path)
        assert [r.track_id for r in over] == ["t4", "t5"]  # 3 calls of 7 fit in 25 cents, a fourth does not
        assert [r.status for r in records] == ["ready"] * 4, [r.error for r in records]
        assert api.charged_cents == 21 <= budget
        assert sum(r.cost_cents for r in records) == api.charged_cents  # every cent charged is in the ledger
        assert ledger_per_row(records) == charged_per_row(api)
        assert [r.cost_cents for r in records if r.track_id == "t1"] == [4, 3]
        assert summarize(records)["cost_usd"] == 0.21
    assert seed_would_take(planned, budget, billing, 10.0) == 28 > budget  # the seed's price: four rows


@pytest.mark.slow  # ~3 s (make test-slow)
def test_a_per_second_budget_run_never_passes_its_cap_and_the_ledger_is_what_was_charged(tmp_path: Path) -> None:
    """Slow form: make test keeps the per-call budget run above (the cap, the ledger equal to the charges) and
    tests/textmusic/client/test_pricing.py's per-second billing (rounded length, minimum, the stand-in's list)."""
    # Half a cent a second, billed in 5-second steps, at least 4 cents: a 12.4 s song is billed 15 s, 8 cents.
    billing = Billing("second", 500, step_seconds=5, minimum_cents=4)
    price = Price(model="per_second", cents=Decimal("0.5"), rounding=Decimal(5), minimum_cents=4)
    songs, budget = [1, 1, 2, 1], 30
    with StandIn(Shape(billing=billing, audio_seconds=12.4, duration_field="duration_seconds",
                       seconds_to_ready=0.3)) as api:
        profile = quick_profile(price=price)
        planned, fits, over, records = budget_run(api, profile, songs, budget, tmp_path)
        assert [max_cost_cents(r.request, SETTINGS, profile) for r in planned] == [8, 8, 16, 8]
        assert [r.track_id for r in over] == ["t3"]  # 8 + 8 + 16 > 30; the next row still fits
        assert [r.status for r in records] == ["ready"] * 3, [r.error for r in records]
        assert api.charged_cents == 24 <= budget
        assert ledger_per_row(records) == charged_per_row(api)
        assert {r.cost_cents for r in records} == {8}
    assert seed_would_take(planned, budget, billing, 12.4) == 40 > budget


def test_a_maybe_charged_submission_puts_the_models_worst_case_at_risk(tmp_path: Path) -> None:
    billing = Billing("call", 7000, songs_per_call=2)
    price = Price(model="per_call", cents=Decimal(7), songs_per_call=2)
    with StandIn(Shape(billing=billing, unreadable_submit="html")) as api:
        _, _, _, records = budget_run(api, quick_profile(price=price), [2], 100, tmp_path)
        assert [(r.resume, r.cost_cents, r.at_risk_cents) for r in records] == [("unanswered", 0, 7)]
        assert api.charges == [7]  # the row's worst case by the model is what was charged


def test_a_reported_cost_is_believed_by_the_profiles_model_and_wins_over_its_figure(tmp_path: Path) -> None:
    """The provider now charges 16 cents a song where the profile says 15: its own figure is what the ledger
    keeps. Checked against the seed's price for a 15 s song (at most 8 cents with the margin) it was dropped."""
    billing = Billing("song", 16_000)
    with StandIn(Shape(billing=billing, cost_field="cost_cents", seconds_to_ready=0.3)) as api:
        profile = quick_profile(price=Price(model="per_song", cents=Decimal(15)))
        _, _, _, records = budget_run(api, profile, [1, 1], None, tmp_path)
        assert [(r.status, r.cost_cents) for r in records] == [("ready", 16)] * 2, [r.error for r in records]
        assert api.charged_cents == 32
