import pytest
from pydantic import ValidationError

from textmusic.contract import (
    TextToMusicRequest,
    combination_error,
    price_cents,
    song_seed,
)

# The seven-row combination table of the contract page.
COMBINATIONS = [
    ({"prompt": "p"}, True),
    ({"prompt": "p", "tags": ["a"]}, True),
    ({"prompt": "p", "lyrics": "l"}, True),
    ({"tags": ["a"], "lyrics": "l"}, True),
    ({"lyrics": "l"}, False),
    ({"tags": ["a"]}, False),
    ({"prompt": "p", "tags": ["a"], "lyrics": "l"}, False),
]


@pytest.mark.parametrize(("fields", "allowed"), COMBINATIONS)
def test_combination_table(fields, allowed):
    assert (combination_error(fields.get("prompt"), fields.get("tags"), fields.get("lyrics")) is None) == allowed
    if allowed:
        TextToMusicRequest(**fields)
    else:
        with pytest.raises(ValidationError, match="invalid input combination"):
            TextToMusicRequest(**fields)


def test_empty_lyrics_with_prompt_and_tags_is_an_instrumental():
    request = TextToMusicRequest(prompt="p", tags=["a"], lyrics="")
    assert request.is_instrumental


def test_empty_lyrics_with_tags_alone_is_an_instrumental_not_tags_only():
    assert TextToMusicRequest(tags=["lofi"], lyrics="").is_instrumental
    with pytest.raises(ValidationError, match="tags must be paired"):
        TextToMusicRequest(tags=["lofi"])


def test_nothing_given_is_refused():
    with pytest.raises(ValidationError, match="at least one"):
        TextToMusicRequest(prompt="  ", tags=[])


def test_defaults():
    r = TextToMusicRequest(prompt="p")
    assert (r.prompt_strength, r.balance_strength, r.num_songs, r.output_format, r.bpm, r.store_audio) == (
        2.0, 0.7, 1, "wav", "auto", False)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_bit_rate_only_with_mp3_and_m4a(fmt):
    with pytest.raises(ValidationError, match="only allowed with mp3 or m4a"):
        TextToMusicRequest(prompt="p", output_format=fmt, output_bit_rate="192")
    assert TextToMusicRequest(prompt="p", output_format="m4a", output_bit_rate=256).output_bit_rate == "256"


@pytest.mark.parametrize(
    "bad",
    [{"seed": -1}, {"seed": 2**32}, {"seed": 1.5}, {"seed": True}, {"num_songs": 3}, {"bpm": "fast"},
     {"bpm": 500}, {"output_format": "aiff"}, {"output_bit_rate": "100"}, {"unknown": 1}, {"tags": [""]}],
)
def test_out_of_range_fields_are_refused(bad):
    with pytest.raises(ValidationError):
        TextToMusicRequest(prompt="p", **({"output_format": "mp3"} if "output_bit_rate" in bad else {}), **bad)


def test_pricing_is_twenty_cents_a_minute_rounded_up():
    assert price_cents(60) == 20
    assert price_cents(180) == 60
    assert price_cents(30) == 10
    assert price_cents(31) == 11  # 10.33 cents → 11
    two = TextToMusicRequest(prompt="p", num_songs=2, duration_seconds=60)
    assert two.max_cost_cents() == 2 * price_cents(64)


def test_song_seeds_are_derived_and_stable():
    assert song_seed(42, 0) == 42
    assert song_seed(42, 1) == song_seed(42, 1) != 42
    request = TextToMusicRequest(prompt="p", seed=42, num_songs=2)
    assert request.for_song(1).seed == song_seed(42, 1) and request.for_song(1).num_songs == 1
