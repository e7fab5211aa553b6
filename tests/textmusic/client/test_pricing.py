"""Price models (textmusic/pricing.py): the profile's `[price]` table, how each model rounds, how a per-call
charge is split over its songs, what the budget holds back, and a bad table refused with its reason."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest

from tasks.generation.figures import Bounds, believable, charged_cents
from tasks.intake.plan import expected_cost_cents, max_cost_cents
from tasks.settings import PipelineSettings
from textmusic.contract import TextToMusicRequest, price_cents
from textmusic.pricing import SEED_PRICE, Price
from textmusic.providers import ProfileError, load_profile
from textmusic.testing.standins import Billing

PER_SECOND = Price(model="per_second", cents=Decimal("0.1"), rounding=Decimal(1))  # DiffRhythm on fal: $0.001/s
PER_SONG = Price(model="per_song", cents=Decimal(15))  # MiniMax: ≈ $0.15 per track
PER_CALL = Price(model="per_call", cents=Decimal(7), songs_per_call=2)  # a call of 2 songs, an odd charge


def profile_file(tmp_path: Path, price: str) -> Path:
    path = tmp_path / "priced.toml"
    path.write_text(f'name = "priced"\nbase_url = "https://api.priced.example"\n\n[price]\n{price}\n')
    return path


def test_a_profile_without_a_price_table_is_priced_as_the_seed_to_the_cent() -> None:
    assert {load_profile(name).price for name in ("verbatik", "textmusic-local")} == {SEED_PRICE}
    durations = [i / 100 for i in range(0, 70_000, 7)] + [random.Random(19).uniform(0, 700) for _ in range(5000)]
    assert all(SEED_PRICE.song_cents(d) == price_cents(d) for d in durations)
    request = TextToMusicRequest(prompt="calm piano", num_songs=2, duration_seconds=60)
    assert SEED_PRICE.request_cents(2, 64) == request.max_cost_cents()


def test_time_prices_bill_the_rounded_length_then_round_up_to_the_cent_with_a_minimum() -> None:
    assert PER_SECOND.song_cents(10.4) == 2  # billed 11 s: 1.1 cents → 2
    assert PER_SECOND.song_cents(30.0000000001) == PER_SECOND.song_cents(30.0) == 3  # float noise is not a second
    assert PER_SECOND.song_cents(0) == 0
    stepped = Price(model="per_second", cents=Decimal("0.5"), rounding=Decimal(5), minimum_cents=4)
    assert [stepped.song_cents(s) for s in (0, 1, 5, 5.01, 12.4, 15)] == [4, 4, 4, 5, 8, 8]
    per_minute = Price(model="per_minute", cents=Decimal(60), rounding=Decimal(60))  # whole minutes
    assert [per_minute.song_cents(s) for s in (1, 60, 61)] == [60, 60, 120]
    assert PER_SONG.song_cents(1) == PER_SONG.song_cents(600) == 15
    assert Price(model="per_song", cents=Decimal("14.5")).song_cents(30) == 15
    with pytest.raises(ValueError, match="finite"):
        PER_SECOND.song_cents(float("nan"))


def test_a_per_call_charge_is_split_over_its_songs_and_adds_up_to_the_call_exactly() -> None:
    assert [PER_CALL.share_cents(i, 2, 0) for i in range(2)] == [4, 3]  # the first song carries the remainder
    assert PER_CALL.share_cents(0, 1, 0) == 7  # a call that made one song: it carries the whole charge
    for songs_per_call in (1, 2, 3, 4):
        for cents in range(0, 14):
            price = Price(model="per_call", cents=Decimal(cents), songs_per_call=songs_per_call)
            for songs in range(1, 7):
                shares = [price.share_cents(i, songs, 0) for i in range(songs)]
                calls = -(-songs // songs_per_call)
                assert sum(shares) == price.request_cents(songs, 0) == calls * cents
                for first in range(0, songs, songs_per_call):  # within a call: the first carries the remainder
                    call = shares[first:first + songs_per_call]
                    assert call[0] - min(call) < len(call) and all(s == call[-1] for s in call[1:])


def test_estimate_and_worst_case_follow_the_model() -> None:
    settings = PipelineSettings()
    one, two = (TextToMusicRequest(prompt="calm piano", num_songs=n) for n in (1, 2))
    hosted = load_profile("verbatik")
    assert max_cost_cents(one, settings, hosted) == price_cents(300) == 100  # 5 minutes at $0.20
    for price, expected, worst in ((PER_SECOND, 18, 30), (PER_SONG, 15, 15), (PER_CALL, 7, 7)):
        priced = hosted.model_copy(update={"price": price})
        assert (expected_cost_cents(one, settings, priced), max_cost_cents(one, settings, priced)) == (expected, worst)
    single = hosted.model_copy(update={"price": Price(model="per_call", cents=Decimal(6))})
    assert max_cost_cents(two, settings, single) == 12  # two songs of one-song calls: two calls
    assert max_cost_cents(two, settings, hosted.model_copy(update={"price": PER_CALL})) == 7


def test_a_reported_cost_is_checked_against_the_profiles_model_and_wins_when_believable() -> None:
    from textmusic.contract import Track

    bounds = Bounds.for_song(15.0, PER_SONG)  # a 15 s worst case the seed would price at 5 cents
    assert bounds.cents == 23
    kept, doubts = believable(Track(id="a", cost_cents=15, duration_seconds=12.0), bounds)
    assert kept.cost_cents == 15 and not doubts
    dropped, doubts = believable(Track(id="a", cost_cents=40, duration_seconds=12.0), bounds)
    assert dropped.cost_cents is None and set(doubts) == {"cost_cents"}
    assert charged_cents(dropped, PER_SONG, 0, 1) == 15  # then the model's figure
    assert charged_cents(Track(id="b"), PER_CALL, 1, 2) == 3  # a per-call share needs no length
    assert charged_cents(Track(id="c"), PER_SECOND, 0, 1) == 0  # a per-second one does: unknown


@pytest.mark.parametrize(("table", "reason"), [
    ('model = "per_hour"\ncents = 1', "per_minute"),
    ('model = "per_song"', "cents\n  Field required"),
    ('model = "per_song"\ncents = "15"', "cents must be a number"),
    ('model = "per_song"\ncents = nan', "finite"),
    ('model = "per_song"\ncents = -1', "cents must be from 0"),
    ('model = "per_song"\ncents = 15\nrounding = 1', "rounding is for per_minute and per_second prices"),
    ('model = "per_call"\ncents = 6\nminimum_cents = 2', "minimum_cents is for per_minute and per_second"),
    ('model = "per_second"\ncents = 0.1\nsongs_per_call = 2', "songs_per_call is for per_call prices"),
    ('model = "per_call"\ncents = 6\nsongs_per_call = 0', "greater than or equal to 1"),
    ('model = "per_call"\ncents = 6\nsongs_per_call = 1.5', "songs_per_call must be a whole number"),
    ('model = "per_second"\ncents = 0.1\nrounding = -1', "rounding must be from 0"),
    ('model = "per_second"\ncents = 0.1\nper = "second"', "Extra inputs are not permitted"),
])
def test_a_bad_price_table_is_a_profile_error_with_the_reason(tmp_path: Path, table: str, reason: str) -> None:
    with pytest.raises(ProfileError, match="price") as refused:
        load_profile(profile_file(tmp_path, table))
    assert reason in str(refused.value)


def test_a_price_table_loads_exactly_and_survives_to_toml(tmp_path: Path) -> None:
    profile = load_profile(profile_file(tmp_path, 'model = "per_second"\ncents = 0.1\nrounding = 1\nminimum_cents = 2'))
    assert profile.price == Price(model="per_second", cents=Decimal("0.1"), rounding=Decimal(1), minimum_cents=2)
    again = tmp_path / "again.toml"
    again.write_text(profile.to_toml())
    assert load_profile(again) == profile
    assert load_profile(profile_file(tmp_path, 'model = "per_call"\ncents = 6\nsongs_per_call = 2')).price == \
        Price(model="per_call", cents=Decimal(6), songs_per_call=2)


def test_the_standins_own_price_list_agrees_with_the_model_written_from_the_same_list() -> None:
    pairs = [(Billing(), SEED_PRICE),
             (Billing("second", 100, step_seconds=1), PER_SECOND),
             (Billing("second", 500, step_seconds=5, minimum_cents=4),
              Price(model="per_second", cents=Decimal("0.5"), rounding=Decimal(5), minimum_cents=4)),
             (Billing("song", 15_000), PER_SONG),
             (Billing("call", 7000, songs_per_call=2), PER_CALL)]
    for billing, price in pairs:
        for seconds in (0.0, 9.99, 10.0, 12.4, 61.0, 240.5):
            for songs in (1, 2):
                assert billing.submission_cents(songs, seconds) == price.request_cents(songs, seconds)
