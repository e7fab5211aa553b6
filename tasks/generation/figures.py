"""A provider's figures (duration, cost) checked against its price model before they reach the money,
and what a download may weigh: the bounds a row's request allows, with a margin."""

from __future__ import annotations

import math
from dataclasses import dataclass

from textmusic.contract import FORMATS, Track
from textmusic.pricing import Price

# A provider's own figures are believed up to this much over what the request allows (its price model's
# worst case for its longest song): past it, they are treated as missing and the price model's figure is used.
FIGURE_MARGIN = 1.5


# The most bytes per second a file may take: lossless at up to 96 kHz, 2 channels, 32 bits; lossy at twice
# its highest bit rate (500 kbps for a format that names none, e.g. Ogg Vorbis at its top quality).
LOSSLESS_BYTES_PER_SECOND = 96_000 * 2 * 4


HEADER_BYTES = 1 << 20  # container headers, tags and cover art


def charged_cents(track: Track, price: Price, index: int, songs: int) -> int:
    """What paid song `index` of the `songs` a submission brought cost, when it was not delivered: the
    provider's figure, else its share of the charge by the price model; 0 when that needs a length nobody told."""
    if track.cost_cents is not None:
        return track.cost_cents
    if price.by_length and not track.duration_seconds:
        return 0
    return price.share_cents(index, songs, track.duration_seconds or 0.0)


@dataclass(frozen=True)
class Bounds:
    """What a song of a row may last and cost, at most (the price model's worst case with a margin)."""

    seconds: float
    cents: int

    @classmethod
    def for_song(cls, longest_seconds: float, price: Price) -> Bounds:
        """A song may cost what one song of the longest length costs (per_call: what its whole call costs)."""
        return cls(longest_seconds * FIGURE_MARGIN, math.ceil(price.song_cents(longest_seconds) * FIGURE_MARGIN))


def max_audio_bytes(output_format: str, longest_seconds: float) -> int:
    """What a download of one song may weigh, on the wire and decoded: past it, the download is refused."""
    spec = FORMATS[output_format]
    per_second = LOSSLESS_BYTES_PER_SECOND if spec.lossless else \
        2 * max((int(k) for k in spec.bit_rates), default=500) * 1000 // 8
    return HEADER_BYTES + math.ceil(per_second * longest_seconds)


def doubted_figures(track: Track, bounds: Bounds) -> dict[str, str]:
    """The track's duration and cost that cannot be believed (not finite, negative, past the bounds), by field,
    with the reason: each is then treated as missing, so a hostile number never reaches the ledger."""
    doubts = {}
    for name, value, most in (("duration_seconds", track.duration_seconds, bounds.seconds),
                              ("cost_cents", track.cost_cents, bounds.cents)):
        if value is None:
            continue
        if not math.isfinite(value) or value < 0 or value > most:
            doubts[name] = f"{value!r} is outside 0 … {most:g}"
    return doubts


def believable(track: Track, bounds: Bounds) -> tuple[Track, dict[str, str]]:
    """The track with its unbelievable figures dropped (see `doubted_figures`), and what was dropped."""
    doubts = doubted_figures(track, bounds)
    return (track.model_copy(update=dict.fromkeys(doubts)) if doubts else track), doubts
