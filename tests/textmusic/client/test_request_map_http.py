"""Over real loopback HTTP: the client POSTs the profile's mapped body to a stand-in that, like the real API,
answers 400 to any other body (textmusic/testing/standins.py, request_rules="styled")."""

from __future__ import annotations

import pytest

from tests.support.request_maps import styled_profile
from textmusic.client import InvalidRequest, TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.providers import load_profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import STYLED_MODEL, Shape, StandIn

REQUEST = TextToMusicRequest(prompt="calm piano", tags=["lofi"], seed=7, duration_seconds=30,
                             output_format="mp3", output_bit_rate="128", name="Rain")
API = TextMusicSettings(max_attempts=2)


@pytest.fixture(scope="module")
def api():
    with StandIn(Shape(submit_path="/v1/music", status_path="/v1/music/{id}", request_rules="styled")) as api:
        yield api


def client(api: StandIn, profile) -> TextMusicClient:
    return TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API)


def test_the_mapped_body_is_accepted(api):
    with client(api, styled_profile()) as c:
        answer = c.submit(REQUEST)
    assert len(answer.tracks) == 1
    assert api.accepted[-1] == {"model": STYLED_MODEL, "prompt": "calm piano", "style": "lofi",
                                "instrumental": True, "music_length_ms": 30000, "cfg_scale": 5.8,
                                "output_format": "mp3_44100_128"}


def test_the_seed_body_is_refused_by_such_a_provider(api):
    """Without a `[request]` table the seed API's body goes out, which this provider refuses: the mapping is
    what makes it usable, not the stand-in's leniency."""
    profile = load_profile("verbatik").model_copy(update={"submit_path": "/v1/music"})
    posts = len(api.posts)
    with client(api, profile) as c, pytest.raises(InvalidRequest, match="unknown field"):
        c.submit(REQUEST)
    assert len(api.posts) == posts + 1 and "tags" in api.posts[-1]


def test_a_mapping_the_provider_refuses_is_a_400(api):
    """Seconds sent where the provider wants milliseconds (a copy instead of `ms`): the real API's 400."""
    fields = {**styled_profile().request.model_dump()["fields"],
              "music_length_ms": {"source": "duration_seconds"}}
    with client(api, styled_profile(fields=fields)) as c, pytest.raises(InvalidRequest, match="music_length_ms"):
        c.submit(REQUEST)

