"""The shipped Sonauto profile (textmusic/providers/sonauto.toml) against a stand-in written from Sonauto's docs
(textmusic/testing/providers/sonauto.py), over real loopback HTTP: a brief is validated with the profile (what v3
cannot take is said before paying; a row asking two songs never reaches the API), then run end to end through
the run machinery: one POST per row, status polled (as a bare JSON string or as an object), the result fetched,
the audio downloaded from the CDN without the key, every song delivered, the ledger's cost the stand-in's charge."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tasks.intake.brief import load_brief
from tasks.intake.plan import plan_rows
from tasks.intake.validate import validate_brief
from tests.support.generation import QUICK, run_rows
from textmusic.client import TextMusicClient
from textmusic.providers import load_profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.providers.sonauto import SUBMIT_PATH, SonautoStandIn, song_cents

API = TextMusicSettings(max_attempts=3, poll_deadline_seconds=30)
NO_SEED = "this provider takes no seed: re-renders will not be reproducible"
BRIEF = """track_id,name,prompt,tags,lyrics,seed,num_songs,output_format,output_bit_rate,bpm
t1,Rain,calm piano in the rain,lofi|chill,,7,1,ogg,,
t2,Road,,folk,[verse] down the road,,1,mp3,320,
t3,Pads,warm synth pads,,,,1,flac,,96
t4,Twice,two songs please,,,3,2,wav,,
"""


@pytest.fixture(scope="module")
def profile():
    return load_profile("sonauto")


@pytest.fixture(scope="module")
def validation(tmp_path_factory, profile):
    path = tmp_path_factory.mktemp("brief") / "brief.csv"
    path.write_text(BRIEF, encoding="utf-8")
    return validate_brief(load_brief(path), None, profile)


def test_validation_says_what_v3_cannot_take_before_paying(validation):
    assert [(r.track_id, r.column) for r in validation.rejections] == [("t4", "num_songs")]
    assert [r.track_id for r in validation.rows] == ["t1", "t2", "t3"]
    assert [(w.track_id, w.column, w.reason) for w in validation.warnings if w.column == "seed"] == [
        ("t1", "seed", NO_SEED), ("t2", "seed", NO_SEED), ("t3", "seed", NO_SEED)]
    assert [(w.track_id, w.column) for w in validation.warnings if w.column != "seed"] == [("t3", "bpm")]


@pytest.mark.parametrize("status_form", ["string", "object"])
def test_a_brief_runs_end_to_end_one_post_per_row_every_song_delivered_at_the_charged_cost(
        tmp_path: Path, profile, validation, status_form: str) -> None:
    planned = plan_rows(validation.rows, "demo", "sonauto", False)
    with SonautoStandIn(seconds_to_ready=0.3, status_form=status_form) as api:  # type: ignore[arg-type]
        pointed = profile.model_copy(update={"base_url": api.base_url, "expected_ready_seconds": 0.4})
        with TextMusicClient(api.base_url, api.api_key, profile=pointed, settings=API) as client:
            records, _ = run_rows(planned, client, tmp_path, settings=QUICK)

        assert [r.status for r in records] == ["ready"] * 3, [r.error for r in records]
        assert len(api.posts) == 3 and api.posts == api.accepted  # one POST per row, each accepted
        by_prompt = {body["prompt"]: body for body in api.posts}
        assert by_prompt[""] == {"prompt": "", "tags": ["folk"], "lyrics": "[verse] down the road",
                                 "instrumental": False, "prompt_strength": 2.0, "output_format": "mp3",
                                 "output_bit_rate": 320}  # tags + lyrics only: the required prompt is ""
        assert by_prompt["calm piano in the rain"]["instrumental"] is True
        assert "lyrics" not in by_prompt["warm synth pads"] and by_prompt["warm synth pads"]["output_format"] == "flac"
        assert not any(name in body for body in api.posts for name in ("seed", "bpm", "num_songs"))

        paths = [path for method, path, status in api.requests if method == "GET" and status == 200]
        assert sum(p.startswith("/v1/generations/status/") for p in paths) >= 3  # each track polled
        assert sum(not p.startswith("/v1/generations/status/") for p in paths) == 3  # its result fetched once
        assert api.cdn_auth_seen == []  # the key never reaches the CDN

        for record in records:
            audio = tmp_path / record.audio_path
            assert audio.suffix == "." + {"t1": "ogg", "t2": "mp3", "t3": "flac"}[record.track_id]
            assert audio.stat().st_size > 1_000
        assert [r.cost_cents for r in records] == [song_cents()] * 3 == api.charges  # 6 cents each
        assert sum(r.cost_cents for r in records) == api.charged_cents == 18


def test_a_failure_status_fails_the_row_with_the_providers_word(tmp_path: Path, profile) -> None:
    from tasks.intake.validate import BriefRow
    from textmusic.contract import TextToMusicRequest

    row = BriefRow(1, "f1", "Bad", TextToMusicRequest(prompt="FAIL on purpose", output_format="ogg"), {})  # type: ignore[arg-type]
    with SonautoStandIn(seconds_to_ready=0.2) as api:
        pointed = profile.model_copy(update={"base_url": api.base_url, "expected_ready_seconds": 0.3})
        with TextMusicClient(api.base_url, api.api_key, profile=pointed, settings=API) as client:
            records, _ = run_rows(plan_rows([row], "demo", "sonauto", False), client, tmp_path, settings=QUICK)
        assert [r.status for r in records] == ["failed"] and "the provider says 'FAILURE'" in records[0].error
        assert len(api.posts) == 1 and api.cdn_auth_seen == []
        assert not any(not p.startswith("/v1/generations/status/")  # a failed task's result is not fetched
                       for method, p, _ in api.requests if method == "GET")


GOOD = {"prompt": "calm", "output_format": "ogg"}


@pytest.fixture(scope="module")
def standin():
    with SonautoStandIn() as api:
        yield api


@pytest.mark.parametrize("body", [
    {"output_format": "ogg", "tags": ["rock"]},  # no prompt: required even with tags
    {"prompt": ""},  # nothing to make a song of
    {**GOOD, "seed": 1},  # v3 takes no seed
    {**GOOD, "num_songs": 2},
    {**GOOD, "output_format": "aac"},
    {**GOOD, "output_bit_rate": 192},  # a bit rate is for mp3/m4a only
    {**GOOD, "output_format": "mp3", "output_bit_rate": "192"},  # a number, not a text
    {**GOOD, "instrumental": True, "lyrics": "la la"},
], ids=["no-prompt", "empty", "seed", "num-songs", "format", "bit-rate-ogg", "bit-rate-text", "instrumental-lyrics"])
def test_the_stand_in_answers_422_to_a_body_the_real_api_refuses(standin, body) -> None:
    with httpx.Client(base_url=standin.base_url) as http:
        headers = {"Authorization": f"Bearer {standin.api_key}"}
        charged = len(standin.charges)
        assert http.post(SUBMIT_PATH, json=GOOD, headers=headers).status_code == 200  # the control
        answer = http.post(SUBMIT_PATH, json=body, headers=headers)
        assert answer.status_code == 422 and "detail" in answer.json()
        assert http.post(SUBMIT_PATH, json=GOOD, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert standin.charges[charged:] == [song_cents()]  # only the control was charged


def test_the_validation_report_lists_sonautos_rules(profile) -> None:
    """A map without duration limits once broke `rules()` (an unset limit formatted as a number)."""
    rules = profile.request.rules()
    assert f"{NO_SEED} (warning)" in rules and not any("duration_seconds at" in rule for rule in rules)
    assert "output_format (and bit rate) one of ogg, mp3, flac, wav, m4a (rejection)" in rules
