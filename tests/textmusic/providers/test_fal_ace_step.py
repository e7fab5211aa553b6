"""The shipped fal.ai ACE-Step profile (textmusic/providers/fal-ace-step.toml) against a stand-in written from fal's
queue and model docs (textmusic/testing/providers/fal_queue.py), over real loopback HTTP: a 3-row brief runs end to
end (one POST per row, status polls until COMPLETED, the result read from its own path, the audio fetched from the
CDN origin without the key), and the ledger's cost per row is the stand-in's charge ($0.0002 per second of audio)
rounded up to the cent; the stand-in refuses what fal would; validation says what the provider cannot take."""

from __future__ import annotations

import re
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
from textmusic.testing.providers.fal_queue import FalQueue

API = TextMusicSettings(max_attempts=3, poll_deadline_seconds=30)
ROWS = [  # (prompt, tags, lyrics, seconds): 0.2, 0.22 and 0.24 cents at fal (short: delivery analyses the audio)
    (None, ["pop", "female vocals"], "[verse]\nSun on the road", 10.0),
    (None, ["lofi", "chill"], "", 11.0),  # lyrics "": an instrumental
    ("slow ambient drone", None, None, 12.0),
]


def planned() -> list:
    brief = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(
        prompt=prompt, tags=tags, lyrics=lyrics, seed=7 * i, duration_seconds=seconds, output_format="wav"))
        for i, (prompt, tags, lyrics, seconds) in enumerate(ROWS, start=1)]
    return plan_rows(brief, "demo", "hosted", False)


def test_the_profile_is_shipped() -> None:
    assert "fal-ace-step" in SHIPPED


def test_a_brief_runs_end_to_end_through_the_queue_and_each_row_costs_what_fal_charged(tmp_path: Path) -> None:
    with FalQueue(seconds_to_ready=0.5) as api:
        profile = load_profile("fal-ace-step").model_copy(
            update={"base_url": api.base_url, "expected_ready_seconds": 0.5})
        with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
            records, _ = run_rows(planned(), client, tmp_path, settings=QUICK)
        assert [r.status for r in records] == ["ready"] * 3, [r.error for r in records]
        # one POST per row, each the model's input
        assert [m for m, p, s in api.requests if m == "POST"] == ["POST"] * 3 and api.submissions() == 3
        by_tags = {p["tags"]: p for p in api.posts}
        assert by_tags == {
            "pop, female vocals": {"tags": "pop, female vocals", "lyrics": "[verse]\nSun on the road",
                                   "duration": 10.0, "seed": 7},
            "lofi, chill": {"tags": "lofi, chill", "lyrics": "[inst]", "duration": 11.0, "seed": 14},
            "slow ambient drone": {"tags": "slow ambient drone", "lyrics": "[inst]", "duration": 12.0, "seed": 21},
        }
        # polled on the status path until COMPLETED, then the result asked once per row from its own path
        paths = [p for m, p, s in api.requests if m == "GET"]
        results = [p for p in paths if re.fullmatch(r"/fal-ai/ace-step/requests/[0-9a-f]+", p)]
        assert len(results) == 3 and len(set(results)) == 3
        assert all(p.endswith("/status") for p in paths if p not in results) and len(paths) > len(results)
        # the audio came from the CDN origin, which never saw the key
        assert len(api.cdn_requests) == 3 and all(s == 200 for *_, s in api.cdn_requests)
        assert api.cdn_auth_seen == []
        for record, (_, _, _, seconds) in zip(sorted(records, key=lambda r: r.track_id), ROWS, strict=True):
            assert (tmp_path / record.audio_path).stat().st_size > 100_000
            assert abs(record.duration_seconds - seconds) < 0.1
        # the ledger per row == fal's charge rounded up to the cent, never under the exact bill
        ledger = {r.track_id: r.cost_cents for r in records}
        row_of = {"pop, female vocals": "t1", "lofi, chill": "t2", "slow ambient drone": "t3"}
        charged = {row_of[body["tags"]]: cents for body, cents in zip(api.posts, api.charges, strict=True)}
        exact = {row_of[body["tags"]]: m for body, m in zip(api.posts, api.exact_charges, strict=True)}
        assert exact == {"t1": 200, "t2": 220, "t3": 240}  # millicents: 0.2, 0.22 and 0.24 cents
        assert ledger == charged == {"t1": 1, "t2": 1, "t3": 1}
        assert all(0 <= c * 1000 - m < 1000 for c, m in zip(api.charges, api.exact_charges, strict=True))


@pytest.mark.parametrize("seconds", [5.0, 49.9, 50.0, 50.5, 55.0, 99.99, 240.0])
def test_the_profile_prices_any_length_as_fal_charges_it_rounded_up_to_the_cent(seconds: float) -> None:
    """Longer songs than the run above renders: what fal charges at submission, against the profile's price."""
    with FalQueue() as api:
        answer = httpx.post(f"{api.base_url}/fal-ai/ace-step", json={"tags": "pop", "duration": seconds},
                            headers={"Authorization": f"Key {api.api_key}"})
        assert answer.status_code == 200
        assert [load_profile("fal-ace-step").price.song_cents(seconds)] == api.charges
        assert 0 <= api.charges[0] * 1000 - api.exact_charges[0] < 1000  # never under fal's exact bill


@pytest.mark.parametrize("body", [
    {"lyrics": "[inst]", "duration": 30},  # no tags
    {"tags": "  ", "duration": 30},
    {"tags": "pop", "duration": 4},
    {"tags": "pop", "duration": 241},
    {"tags": "pop", "seed": "7"},
    {"tags": "pop", "scheduler": "ddim"},
    {"tags": "pop", "number_of_steps": 61},
    ["tags", "pop"],
], ids=["no-tags", "blank-tags", "too-short", "too-long", "seed-string", "unknown-scheduler", "steps", "not-object"])
def test_the_stand_in_refuses_a_body_the_model_would_refuse(body: object) -> None:
    with FalQueue() as api:
        key = {"Authorization": f"Key {api.api_key}"}
        refused = httpx.post(f"{api.base_url}/fal-ai/ace-step", json=body, headers=key)
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][0] == "body", refused.text
        accepted = httpx.post(f"{api.base_url}/fal-ai/ace-step", json={"tags": "pop", "duration": 30}, headers=key)
        assert accepted.status_code == 200 and set(accepted.json()) == {
            "request_id", "response_url", "status_url", "cancel_url"}
        assert api.exact_charges == [600]  # the refused body cost nothing


def test_the_stand_in_wants_the_key_scheme_and_the_key_check_costs_nothing() -> None:
    with FalQueue() as api:
        bearer = httpx.post(f"{api.base_url}/fal-ai/ace-step", json={"tags": "pop"},
                            headers={"Authorization": f"Bearer {api.api_key}"})
        assert bearer.status_code == 401
        with TextMusicClient(api.base_url, api.api_key, profile=load_profile("fal-ace-step"), settings=API) as client:
            client.check_auth()  # a status of a request that cannot exist: 404, the key accepted
        assert api.requests[-1][2] == 404 and api.exact_charges == []


def consequences(**fields: object) -> dict[str, str]:
    request = TextToMusicRequest.model_validate({"prompt": "calm", "seed": 1, "output_format": "wav", **fields})
    return {c.column: c.severity for c in load_profile("fal-ace-step").request.consequences(request)}


def test_validation_says_before_paying_what_ace_step_on_fal_cannot_take() -> None:
    # seed and lyrics taken: nothing to say
    assert consequences(duration_seconds=30, prompt=None, tags=["folk"], lyrics="[verse]\nla") == {}
    assert consequences(duration_seconds=241) == {"duration_seconds": "rejection"}  # 5-240 s
    assert consequences(output_format="mp3") == {"output_format": "rejection"}
    assert consequences(num_songs=2, bpm=120) == {"num_songs": "rejection", "bpm": "warning"}
