"""A request map's `copy` field may name a `default` (sent when the row does not give the source: ACE-Step's lyrics
"[inst]" for an instrumental) and ask for an `integer` (Stable Audio's duration in whole seconds); both survive
to_toml, and the two shipped profiles that use them do too."""

from __future__ import annotations

import tomllib

import pytest

from textmusic.contract import TextToMusicRequest
from textmusic.providers import Profile, load_profile
from textmusic.providers.request import RequestMap

MAP = RequestMap.model_validate({"fields": {
    "lyrics": {"source": "lyrics", "default": "[inst]"},
    "duration": {"source": "duration_seconds", "integer": True},
    "seed": {"source": "seed"},
}})


def test_a_default_is_sent_when_the_row_gives_nothing_and_the_row_wins_when_it_does() -> None:
    assert MAP.body(TextToMusicRequest(prompt="calm", lyrics=""))["lyrics"] == "[inst]"  # the contract's instrumental
    assert MAP.body(TextToMusicRequest(prompt="calm"))["lyrics"] == "[inst]"
    assert MAP.body(TextToMusicRequest(prompt="calm", lyrics="[verse]\nla"))["lyrics"] == "[verse]\nla"
    assert "seed" not in MAP.body(TextToMusicRequest(prompt="calm"))  # no default: left out, as before
    assert "lyrics" in MAP.carried  # a copied field with a default still carries its source


@pytest.mark.parametrize(("seconds", "sent"), [(30.0, 30), (12.4, 12), (12.6, 13), (45, 45)])
def test_an_integer_copy_sends_a_whole_number(seconds: float, sent: int) -> None:
    value = MAP.body(TextToMusicRequest(prompt="calm", duration_seconds=seconds))["duration"]
    assert value == sent and type(value) is int
    assert "duration" not in MAP.body(TextToMusicRequest(prompt="calm"))  # unset: the provider's default


@pytest.mark.parametrize("name", ["stable-audio-2-5", "fal-ace-step"])
def test_the_shipped_profiles_survive_to_toml(name: str) -> None:
    profile = load_profile(name)
    assert Profile.model_validate(tomllib.loads(profile.to_toml())) == profile
