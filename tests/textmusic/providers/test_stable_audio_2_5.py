"""The shipped Stable Audio 2.5 profile (textmusic/providers/stable-audio-2-5.toml) against a stand-in written from
Stability's docs (textmusic/testing/providers/stable_audio.py), over real loopback HTTP: a 3-row brief runs end to
end (one multipart POST per row, the audio taken from the answer, $0.20 per generation in the ledger as charged);
the stand-in refuses what the real API would; validation says before paying what the provider cannot take."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tasks.intake.plan import plan_rows
from tasks.intake.validate import BriefRow
from tests.support.generation import QUICK, run_rows
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.providers import SHIPPED, load_profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.providers.stable_audio import SUBMIT_PATH, StableAudio

API = TextMusicSettings(max_attempts=3, poll_deadline_seconds=30)
ROWS = [  # (prompt, tags, seconds, format, prompt_strength)
    ("warm synth pad", ["ambient"], 10.0, "mp3", 2.0),
    ("bright marimba loop", None, 12.0, "wav", 0.0),
    ("slow cello drone", ["cinematic", "dark"], 15.0, "mp3", 10.0),
]


def planned() -> list:
    brief = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(
        prompt=prompt, tags=tags, seed=100 + i, duration_seconds=seconds, output_format=fmt,  # type: ignore[arg-type]
        prompt_strength=strength)) for i, (prompt, tags, seconds, fmt, strength) in enumerate(ROWS, start=1)]
    return plan_rows(brief, "demo", "hosted", False)


def test_the_profile_is_shipped() -> None:
    assert "stable-audio-2-5" in SHIPPED


def test_a_brief_runs_end_to_end_one_multipart_post_per_row_charged_per_generation(tmp_path: Path) -> None:
    with StableAudio(seconds_to_ready=0.2) as api:
        profile = load_profile("stable-audio-2-5").model_copy(update={"base_url": api.base_url})
        with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
            records, _ = run_rows(planned(), client, tmp_path, settings=QUICK)
        assert [r.status for r in records] == ["ready"] * 3, [r.error for r in records]
        # exactly one POST per row, each a multipart form the API accepted; nothing else asked of it
        assert len(api.posts) == 3 and all(isinstance(p, dict) for p in api.posts)
        assert {(m, path, s) for m, path, s in api.requests} == {("POST", SUBMIT_PATH, 200)}
        by_prompt = {p["prompt"]: p for p in api.posts}
        assert by_prompt["warm synth pad, ambient"] == {
            "model": "stable-audio-2.5", "prompt": "warm synth pad, ambient", "duration": "10", "seed": "101",
            "cfg_scale": "5.8", "output_format": "mp3"}
        assert by_prompt["bright marimba loop"]["cfg_scale"] == "1.0"  # prompt_strength 0 → the range's low end
        assert by_prompt["slow cello drone, cinematic, dark"]["cfg_scale"] == "25.0"
        for record, (_, _, seconds, fmt, _) in zip(sorted(records, key=lambda r: r.track_id), ROWS, strict=True):
            audio = tmp_path / record.audio_path
            assert audio.suffix == f".{fmt}" and audio.stat().st_size > 10_000
            assert abs(record.duration_seconds - seconds) < 0.2
        # the ledger's cost per row is what the stand-in charged: a flat 20 cents, whatever the length
        assert [r.cost_cents for r in records] == api.charges == [20, 20, 20]
        assert sum(r.cost_cents for r in records) == api.charged_cents == 60


def form(**fields: str) -> dict[str, tuple[None, str]]:
    return {name: (None, value) for name, value in fields.items()}


GOOD = {"prompt": "calm piano", "model": "stable-audio-2.5", "duration": "10", "output_format": "wav"}


@pytest.mark.parametrize("change", [
    {"prompt": ""}, {"duration": "191"}, {"duration": "0"}, {"duration": "12.5"}, {"output_format": "flac"},
    {"model": "stable-audio-3"}, {"cfg_scale": "30"}, {"steps": "50"}, {"seed": "4294967295"}, {"lyrics": "la"},
], ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_the_stand_in_refuses_a_form_the_api_would_refuse(change: dict[str, str]) -> None:
    with StableAudio() as api:
        headers = {"Authorization": f"Bearer {api.api_key}", "Accept": "audio/*"}
        answer = httpx.post(api.base_url + SUBMIT_PATH, files=form(**{**GOOD, **change}), headers=headers)
        assert answer.status_code == 400 and answer.json()["errors"], answer.text
        ok = httpx.post(api.base_url + SUBMIT_PATH, files=form(**GOOD), headers=headers)
        assert ok.status_code == 200 and ok.headers["content-type"] == "audio/wav" and ok.content[:4] == b"RIFF"
        assert api.charges == [20]  # only the accepted generation is charged


def test_the_stand_in_refuses_json_a_bad_accept_and_a_wrong_key() -> None:
    with StableAudio() as api:
        key = {"Authorization": f"Bearer {api.api_key}"}
        as_json = httpx.post(api.base_url + SUBMIT_PATH, json=GOOD, headers={**key, "Accept": "audio/*"})
        assert as_json.status_code == 400 and "multipart" in as_json.text
        html = httpx.post(api.base_url + SUBMIT_PATH, files=form(**GOOD), headers={**key, "Accept": "text/html"})
        assert html.status_code == 400
        wrong = httpx.post(api.base_url + SUBMIT_PATH, files=form(**GOOD),
                           headers={"Authorization": "Bearer nope", "Accept": "audio/*"})
        assert wrong.status_code == 401
        assert api.charges == []
        as_base64 = httpx.post(api.base_url + SUBMIT_PATH, files=form(**GOOD),
                               headers={**key, "Accept": "application/json"})
        assert as_base64.status_code == 200 and as_base64.json()["finish_reason"] == "SUCCESS"


def test_the_key_check_costs_nothing(tmp_path: Path) -> None:
    with StableAudio() as api:
        profile = load_profile("stable-audio-2-5")
        with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
            client.check_auth()
        assert api.requests == [("GET", "/v1/user/balance", 200)] and api.charges == []


def consequences(**fields: object) -> dict[str, str]:
    request = TextToMusicRequest.model_validate({"prompt": "calm", "seed": 1, **fields})
    return {c.column: c.severity for c in load_profile("stable-audio-2-5").request.consequences(request)}


def test_validation_says_before_paying_what_stable_audio_cannot_take() -> None:
    assert consequences(duration_seconds=30, output_format="mp3") == {}  # seed taken: no warning
    assert consequences(duration_seconds=200) == {"duration_seconds": "rejection"}  # at most 190 s
    assert consequences(output_format="flac") == {"output_format": "rejection"}
    assert consequences(lyrics="[verse]\nla la") == {"lyrics": "rejection"}  # instrumental only
    assert consequences(output_format="mp3", output_bit_rate="320", bpm=90) == {
        "output_bit_rate": "warning", "bpm": "warning"}
    assert consequences(num_songs=2) == {"num_songs": "rejection"}
