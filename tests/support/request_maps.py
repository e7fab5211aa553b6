"""A provider profile with a `[request]` table, for the tests of request mapping: the body of the "styled"
stand-in (textmusic/testing/standins.py, STYLED_FIELDS), mapped from the contract."""

from __future__ import annotations

import tomllib
from typing import Any

from textmusic.providers import Profile

STYLED_PROFILE = """
name = "styled"
base_url = "http://127.0.0.1:1"
submit_path = "/v1/music"
status_path = "/v1/music/{id}"
expected_ready_seconds = 0.4

[request.constants]
model = "styled-v2"

[request.fields]
prompt = { source = "prompt" }
style = { transform = "join", source = "tags", separator = ", " }
instrumental = { transform = "instrumental" }
music_length_ms = { transform = "ms" }
cfg_scale = { transform = "scale", source = "prompt_strength", to = [1, 25] }

[request.fields.output_format]
transform = "format"
table = { "mp3:128" = "mp3_44100_128", "mp3:192" = "mp3_44100_192", "wav" = "wav_44100" }

[request.limits]
min_duration_seconds = 10
max_duration_seconds = 300
max_prompt_chars = 400
"""


def styled_profile(**request_update: Any) -> Profile:
    """The styled profile; `request_update` replaces keys of its `[request]` table (a value None drops one)."""
    data = tomllib.loads(STYLED_PROFILE)
    for key, value in request_update.items():
        if value is None:
            data["request"].pop(key, None)
        else:
            data["request"][key] = value
    return Profile.model_validate(data)
