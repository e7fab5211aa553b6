"""Request mapping (textmusic/providers/request.py): a profile's `[request]` table turns a contract request into
the provider's own body; what the provider cannot take is left out and said (warnings, rejections); a bad table is
a ProfileError naming the key and why."""

from __future__ import annotations

import pytest

from tests.support.request_maps import STYLED_PROFILE, styled_profile
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.providers import Profile, ProfileError, load_profile

REQUEST = TextToMusicRequest(prompt="calm piano", tags=["lofi", "chill"], seed=7, prompt_strength=5.0,
                             output_format="mp3", output_bit_rate="128", duration_seconds=30, name="Rain")


def body(profile: Profile, request: TextToMusicRequest = REQUEST) -> dict:
    with TextMusicClient(profile.base_url, "k", profile=profile) as client:
        return client.request_body(request)


def test_the_client_sends_the_mapped_body_with_its_constants():
    assert body(styled_profile()) == {"model": "styled-v2", "prompt": "calm piano", "style": "lofi, chill",
                                      "instrumental": True, "music_length_ms": 30000, "cfg_scale": 13.0,
                                      "output_format": "mp3_44100_128"}


def test_without_a_request_table_the_body_is_the_seed_apis():
    profile = load_profile("verbatik")
    assert profile.request is None
    assert body(profile) == REQUEST.model_dump(mode="json", exclude_none=True,
                                               exclude={"duration_seconds", "versions", "key"})


@pytest.mark.parametrize(("field", "request_update", "expected"), [
    ("music_length_ms", {"duration_seconds": 12.3456}, 12346),  # seconds → whole ms
    ("cfg_scale", {"prompt_strength": 0.0}, 1.0),  # the contract's 0..10 onto the provider's 1..25
    ("cfg_scale", {"prompt_strength": 10.0}, 25.0),
    ("output_format", {"output_bit_rate": None}, "mp3_44100_192"),  # mp3's default bit rate, 192
    ("output_format", {"output_format": "wav", "output_bit_rate": None}, "wav_44100"),  # a format for any rate
    ("instrumental", {"lyrics": "[verse] la la", "tags": None}, False),
    ("style", {"tags": ["one"]}, "one"),
])
def test_each_transform(field, request_update, expected):
    assert body(styled_profile(), REQUEST.model_copy(update=request_update))[field] == expected


def test_an_unset_source_leaves_its_field_out():
    sent = body(styled_profile(), REQUEST.model_copy(update={"duration_seconds": None, "tags": None}))
    assert "music_length_ms" not in sent and "style" not in sent


def test_fields_the_provider_lacks_are_never_sent():
    sent = body(styled_profile())
    assert not {"seed", "tags", "num_songs", "bpm", "name", "duration_seconds", "output_bit_rate"} & set(sent)


def test_an_integer_scale_rounds():
    fields = {**styled_profile().request.model_dump()["fields"],
              "steps": {"transform": "scale", "source": "balance_strength", "to": [10, 100], "integer": True}}
    assert body(styled_profile(fields=fields), REQUEST.model_copy(update={"balance_strength": 0.5}))["steps"] == 55


def consequences(request: TextToMusicRequest, **update) -> dict[str, tuple[str, str]]:
    return {c.column: (c.severity, c.reason) for c in styled_profile(**update).request.consequences(request)}


def test_no_seed_mapping_warns_that_re_renders_will_not_be_reproducible():
    found = consequences(REQUEST)
    assert found == {"seed": ("warning", "this provider takes no seed: re-renders will not be reproducible")}


def test_a_seed_mapping_takes_the_warning_away():
    fields = {**styled_profile().request.model_dump()["fields"], "seed": {"source": "seed"}}
    assert consequences(REQUEST, fields=fields) == {}
    assert body(styled_profile(fields=fields))["seed"] == 7


@pytest.mark.parametrize(("update", "column", "reason"), [
    ({"duration_seconds": 400}, "duration_seconds", "this provider makes songs of at most 300 s (got 400)"),
    ({"prompt": "x" * 401}, "prompt", "this provider takes at most 400 characters of prompt (got 401)"),
    ({"output_format": "flac", "output_bit_rate": None}, "output_format",
     "this provider takes no flac (it takes mp3:128, mp3:192, wav)"),
    ({"output_bit_rate": "320"}, "output_bit_rate", "this provider takes no mp3 at 320 kbps (it takes mp3:128, "
                                                    "mp3:192, wav)"),
    ({"lyrics": "[verse] la", "tags": None}, "lyrics", "this provider takes no lyrics: the song would be instrumental"),
    ({"num_songs": 2}, "num_songs", "this provider takes no num_songs: ask one song per row"),
])
def test_what_the_provider_refuses_is_a_rejection_with_its_reason(update, column, reason):
    assert consequences(REQUEST.model_copy(update=update))[column] == ("rejection", reason)


def test_declared_limits_on_formats_and_lyrics():
    limits = {"formats": ["wav"], "max_lyrics_chars": 5, "min_duration_seconds": 20}
    fields = {**styled_profile().request.model_dump()["fields"], "lyrics": {"source": "lyrics"}}
    found = consequences(REQUEST.model_copy(update={"lyrics": "la la la", "tags": None, "duration_seconds": 15}),
                         limits=limits, fields=fields)
    assert found["output_format"] == ("rejection", "this provider delivers only wav (got mp3)")
    assert found["lyrics"] == ("rejection", "this provider takes at most 5 characters of lyrics (got 8)")
    assert found["duration_seconds"] == ("rejection", "this provider makes songs of 20 s or more (got 15)")


def test_settings_left_to_the_provider_are_warnings():
    found = consequences(REQUEST.model_copy(update={"bpm": 90}))
    assert found["bpm"] == ("warning", "this provider takes no bpm: the tempo is the provider's choice")
    assert "bpm" not in consequences(REQUEST)  # "auto", the default, loses nothing


def test_the_profile_round_trips_through_its_toml():
    profile = styled_profile()
    assert Profile.model_validate(__import__("tomllib").loads(profile.to_toml())) == profile


BAD_TABLES = {
    'x = { source = "sead" }': "request.fields.x.copy.source",
    'x = { transform = "cube", source = "seed" }': "does not match any of the expected tags",
    'x = { transform = "scale", source = "seed", to = [1, 2] }': "request.fields.x.scale.source",
    'x = { transform = "scale", source = "prompt_strength", to = [2, 1] }': "low < high",
    'x = { transform = "ms", separator = "," }': "request.fields.x.ms.separator",
    'x = { transform = "format", table = { "mp4" = "a" } }': "'mp4' is not one of flac, mp3, wav, ogg, m4a",
    'x = { transform = "format", table = { "wav:128" = "a" } }': "wav has no bit rate '128'",
    'x = { transform = "join", source = "seed" }': "request.fields.x.join.source",
    'model = { source = "prompt" }\n[request.constants]\nmodel = "m"': "model: both a mapped field and a constant",
    'x = { source = "prompt" }\n[request.limits]\nmin_duration_seconds = 60\nmax_duration_seconds = 30':
        "min_duration_seconds 60 is above max_duration_seconds 30",
    'x = { source = "prompt" }\n[request.extras]\ny = 1': "request.extras",
}


@pytest.mark.parametrize("table", BAD_TABLES)
def test_a_bad_request_table_is_a_profile_error_with_the_reason(tmp_path, table):
    path = tmp_path / "bad.toml"
    path.write_text(f'name = "bad"\nbase_url = "http://x"\n[request.fields]\n{table}\n', encoding="utf-8")
    with pytest.raises(ProfileError, match="provider profile") as caught:
        load_profile(path)
    assert BAD_TABLES[table] in str(caught.value)


def test_the_styled_profile_loads_from_a_file(tmp_path):
    path = tmp_path / "styled.toml"
    path.write_text(STYLED_PROFILE, encoding="utf-8")
    assert load_profile(path) == styled_profile()


def test_every_field_the_unsent_table_names_is_a_contract_field():
    from textmusic.providers.request import UNSENT

    assert set(UNSENT) <= set(TextToMusicRequest.model_fields)
