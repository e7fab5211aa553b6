"""What a provider charges, as data: the `[price]` table of a provider profile, and the one place the pipeline
prices anything (the estimate, the budget's worst case, `at_risk`, the check of a provider's reported cost, the
ledger's cost when the provider reports none, and so the run summary).

Four models, each charged in whole cents, rounded up:

- ``per_minute``: ``cents`` per minute of audio, per song (the seed's API: 20, the default when a profile has
  no `[price]` table); ``rounding`` bills the length in steps of that many seconds, ``minimum_cents`` the least
  a song is charged;
- ``per_second``: the same with ``cents`` per second (DiffRhythm on fal: 0.1, billed in whole seconds:
  ``rounding = 1``);
- ``per_song``: ``cents`` per song whatever its length (MiniMax ≈ 15, Stable Audio 20);
- ``per_call``: ``cents`` per call, one call making up to ``songs_per_call`` songs (sunoapi.org ≈ 6 for 2);
  a submission asking for more songs than one call makes counts as ``ceil(num_songs / songs_per_call)`` calls.

A per-call charge is split over the songs of the call so that the ledger's rows add up to it exactly: every
song carries ``charge // songs`` and the call's first song also carries the remainder (7 cents over 2 songs:
4 then 3). Imports nothing of ours but the contract's price constant.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from textmusic.contract import PRICE_CENTS_PER_MINUTE

PriceModelName = Literal["per_minute", "per_second", "per_song", "per_call"]
# The length a time-priced model's `cents` buys.
UNIT_SECONDS: dict[str, int] = {"per_minute": 60, "per_second": 1}
TIME_MODELS: tuple[str, ...] = tuple(UNIT_SECONDS)
MAX_CENTS = Decimal(1_000_000)  # $10,000 for one unit: past it a price table is a typo, not a price
_MICRO = Decimal("0.000001")  # figures are read to the millionth before rounding up (float noise, as the seed does)


def _ceil(value: Decimal) -> int:
    """`value` rounded up to a whole number, after reading it to the millionth (30 s × 20/60 is 10, not 11)."""
    return int(value.quantize(_MICRO).to_integral_value(rounding=ROUND_CEILING))


def _exact(value: Any, name: str) -> Decimal:
    """A number from a profile as an exact decimal (0.1 stays 0.1); booleans, strings, NaN and infinities are
    refused with the reason."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = Decimal(repr(value))
    else:
        raise ValueError(f"{name} must be a number (got {value!r})")
    if not number.is_finite():
        raise ValueError(f"{name} must be a finite number (got {value!r})")
    return number


class Price(BaseModel):
    """A profile's `[price]` table: how the provider charges, in cents (fractions allowed: 0.1 = $0.001)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: PriceModelName
    cents: Decimal  # the price of one unit: a minute, a second, a song or a call
    songs_per_call: int = Field(1, ge=1, le=100)  # per_call only: the songs one call makes
    rounding: Decimal = Decimal(0)  # per_minute / per_second only: bill the length in steps of this many seconds
    minimum_cents: int = Field(0, ge=0, le=MAX_CENTS)  # per_minute / per_second only: the least one song is charged

    @field_validator("cents", "rounding", mode="before")
    @classmethod
    def _a_number(cls, value: Any, info: Any) -> Decimal:
        return _exact(value, info.field_name)

    @field_validator("songs_per_call", "minimum_cents", mode="before")
    @classmethod
    def _an_integer(cls, value: Any, info: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{info.field_name} must be a whole number (got {value!r})")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Price:
        if not 0 <= self.cents <= MAX_CENTS:
            raise ValueError(f"cents must be from 0 to {MAX_CENTS} (got {self.cents})")
        if self.rounding < 0 or self.rounding > 3600:
            raise ValueError(f"rounding must be from 0 to 3600 seconds (got {self.rounding})")
        if self.model not in TIME_MODELS:
            for name, default in (("rounding", 0), ("minimum_cents", 0)):
                if getattr(self, name) != default:
                    raise ValueError(f"{name} is for per_minute and per_second prices, not {self.model}")
        if self.model != "per_call" and self.songs_per_call != 1:
            raise ValueError(f"songs_per_call is for per_call prices, not {self.model}")
        return self

    # -- what one song, one submission and one call cost -------------------------------------------------

    @property
    def by_length(self) -> bool:
        """Whether a song's charge depends on its length (per_minute, per_second)."""
        return self.model in TIME_MODELS

    def billed_seconds(self, seconds: float) -> Decimal:
        """The length a time-priced song is billed for: `seconds`, rounded up to the `rounding` step."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"a song's length must be a finite number of seconds ≥ 0 (got {seconds!r})")
        length = Decimal(repr(float(seconds)))
        return _ceil(length / self.rounding) * self.rounding if self.rounding else length

    def song_cents(self, seconds: float) -> int:
        """What one song of `seconds` is charged (per_call: what the call that makes it is charged)."""
        if self.model == "per_song":
            return _ceil(self.cents)
        if self.model == "per_call":
            return self.call_cents
        return max(self.minimum_cents, _ceil(self.billed_seconds(seconds) * self.cents / UNIT_SECONDS[self.model]))

    @property
    def call_cents(self) -> int:
        """What one call is charged (per_call)."""
        return _ceil(self.cents)

    def calls(self, songs: int) -> int:
        """The calls a submission of `songs` songs takes (per_call)."""
        return -(-max(1, songs) // self.songs_per_call)

    def request_cents(self, songs: int, seconds: float) -> int:
        """What a submission of `songs` songs, each `seconds` long, is charged."""
        if self.model == "per_call":
            return self.calls(songs) * self.call_cents
        return songs * self.song_cents(seconds)

    def share_cents(self, index: int, songs: int, seconds: float) -> int:
        """The part of a submission's charge that song `index` of the `songs` it brought carries in the ledger:
        its own charge, or (per_call) its share of its call's, the call's first song carrying the remainder
        cent(s), so the songs of a submission add up to `request_cents(songs, seconds)` exactly."""
        if self.model != "per_call":
            return self.song_cents(seconds)
        songs = max(songs, index + 1)
        first = index - index % self.songs_per_call
        in_call = min(self.songs_per_call, songs - first)
        base, rest = divmod(self.call_cents, in_call)
        return base + (rest if index == first else 0)


# The seed's hosted API (and TrackFoundry's local service): $0.20 per minute of audio, per song, rounded up to
# the cent. A profile without a `[price]` table is priced so.
SEED_PRICE = Price(model="per_minute", cents=Decimal(PRICE_CENTS_PER_MINUTE))
