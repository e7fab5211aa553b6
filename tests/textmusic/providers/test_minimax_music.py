"""The shipped MiniMax Music profile against a stand-in written from MiniMax's docs
(textmusic/testing/providers/minimax_music.py), over real loopback HTTP through the run machinery: each row is
POSTed once (synchronous: the JSON answer carries the mp3 as hex), delivered, and costed per song as the stand-in
charged it; the stand-in refuses what the API refuses (in a 200, as MiniMax does); what the provider cannot take is
said before paying; and the known limit: an error in a 200 answer (base_resp.status_code != 0) is read as a paid
answer without audio, so the row is held `lost` with its worst case at risk and never sent again unasked."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx
import pytest

from tasks.catalog.ledger import SUBMITTED, SUBMITTING
from tasks.delivery.place import PARTIAL_DIR
from tasks.intake.plan import max_cost_cents, plan_rows
from tasks.intake.validate import BriefRow
from tasks.run import Provider, RunOptions
from tests.support.generation import QUICK, run_rows
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.providers import Profile, load_profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.providers.minimax_music import PRICE, MiniMaxMusic

API = TextMusicSettings(max_attempts=3, poll_deadline_seconds=30)
# Delivered as they come (no loudness mastering): these tests are about the provider's wire, and mastering mp3s
# on a loaded 2-core machine takes seconds per song.
SETTINGS = QUICK.model_copy(update={"master": "none"})
REQUESTS = [  # an instrumental, a song from a prompt, a song from tags
    {"prompt": "calm piano, rain at night", "tags": ["ambient"]},
    {"prompt": "road trip pop", "lyrics": "[Verse]\nDown the road we go\n[Chorus]\nHome, home"},
    {"tags": ["folk", "acoustic"], "lyrics": "[Verse]\nRiver wide and slow"},
]


def rows(requests: list[dict] = REQUESTS) -> list:
    brief = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(  # type: ignore[arg-type]
        **{"output_format": "mp3", "seed": i, **request}), {}) for i, request in enumerate(requests, start=1)]
    return plan_rows(brief, "demo", "hosted", False)


def run(api: MiniMaxMusic, planned: list, out: Path, previous=(), options: RunOptions | None = None):
    profile = load_profile("minimax-music").model_copy(update={"base_url": api.base_url})
    with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
        return run_rows(planned, client, out, previous, settings=SETTINGS, options=options)


def test_a_small_brief_is_posted_once_per_row_delivered_and_costed_per_song(tmp_path: Path) -> None:
    with MiniMaxMusic() as api:
        records, journal = run(api, rows(), tmp_path)
        assert [r.status for r in records] == ["ready"] * 3, [r.error for r in records]
        assert len(api.posts) == 3 and api.answers == [(200, 0)] * 3
        bodies = {body.get("lyrics"): body for body in api.posts}
        assert bodies[None] == {"model": "music-2.6", "output_format": "hex", "prompt": "calm piano, rain at night, "
                                "ambient", "is_instrumental": True,
                                "audio_setting": {"sample_rate": 44100, "bitrate": 256000, "format": "mp3"}}
        assert bodies[REQUESTS[2]["lyrics"]]["prompt"] == "folk, acoustic"
        assert bodies[REQUESTS[1]["lyrics"]]["is_instrumental"] is False
        assert api.charges == [18, 18, 18] == [PRICE.song_cents(12.0)] * 3
        assert sorted(r.cost_cents for r in records) == api.charges  # the ledger, to the cent
        for record in records:
            assert (tmp_path / record.audio_path).stat().st_size > 10_000
            assert abs(record.duration_seconds - 12.0) < 0.5  # measured from the file (extra_info is in ms)
            mine = [r.status for r in journal if r.track_id == record.track_id]
            assert mine[:2] == [SUBMITTING, SUBMITTED] and mine[-1] == "ready"
    assert not any((tmp_path / PARTIAL_DIR).iterdir())


@pytest.mark.parametrize("body", [
    {"model": "music-2.6", "prompt": "calm"},  # no lyrics, not instrumental
    {"model": "music-2.6", "is_instrumental": True},  # instrumental without a prompt
    {"model": "music-2.0", "prompt": "calm", "is_instrumental": True},  # music-2.0 has no is_instrumental
    {"model": "music-2.6", "prompt": "calm", "lyrics": "x" * 3501},
    {"model": "music-9", "prompt": "calm", "lyrics": "la la la la"},
    {"model": "music-2.6", "lyrics": "la la la la", "audio_setting": {"format": "ogg"}},
])
def test_the_stand_in_refuses_what_the_api_refuses_in_a_200_and_charges_nothing(body: dict) -> None:
    with MiniMaxMusic() as api:
        answer = httpx.post(f"{api.base_url}/v1/music_generation", json=body,
                            headers={"Authorization": f"Bearer {api.api_key}"})
        assert answer.status_code == 200 and answer.json()["base_resp"]["status_code"] == 2013
        assert answer.json()["data"] is None and answer.headers["Trace-Id"]
        wrong_key = httpx.post(f"{api.base_url}/v1/music_generation", json=body, headers={"Authorization": "Bearer x"})
        assert wrong_key.json()["base_resp"]["status_code"] == 1004 and api.charges == []


def test_what_the_provider_cannot_take_is_said_before_paying() -> None:
    mapped = load_profile("minimax-music").request
    said = lambda **kw: {(c.column, c.severity) for c in mapped.consequences(  # noqa: E731
        TextToMusicRequest(**{"prompt": "calm", "output_format": "mp3", **kw}))}  # type: ignore[arg-type]
    assert said(seed=3) == {("seed", "warning")}  # sent, but not reproducible
    assert ("duration_seconds", "warning") in said(duration_seconds=60)  # the length follows the lyrics
    assert ("output_format", "rejection") in said(output_format="flac")
    assert ("lyrics", "rejection") in said(lyrics="la " * 1200)  # 3600 characters, over 3500
    assert ("num_songs", "rejection") in said(num_songs=2)


@pytest.mark.parametrize("code", [1002, 1008])
def test_an_error_in_a_200_answer_is_held_lost_with_its_worst_case_never_sent_again(tmp_path: Path,
                                                                                     code: int) -> None:
    """KNOWN LIMIT (the profile's header, OPEN): a profile cannot map base_resp.status_code to 429/402, so a rate
    limit (1002) or an empty balance (1008), answered in a 200, is read as an accepted, paid answer without audio.
    What the pipeline does with it, asserted: the row is lost and costed at its worst case (per song, the price
    model knows the charge without a length: it is booked as the row's cost, not as `at_risk`), though the
    provider charged nothing; a second run does not send it again (no back-off, no retry)."""
    planned = rows()[:1]
    profile = load_profile("minimax-music")
    worst = max_cost_cents(planned[0].request, SETTINGS, Provider.of(profile, base_url=profile.base_url))
    with MiniMaxMusic() as api:
        api.fail_next = [code]
        records, journal = run(api, planned, tmp_path)
        assert [(r.status, r.resume) for r in records] == [("failed", "lost")]
        assert "did not come whole" in records[0].error and "AnswerUnreadable" in records[0].error
        assert api.answers == [(200, code)] and api.charges == []  # the provider charged nothing
        assert records[0].cost_cents == worst == 18 and records[0].at_risk_cents == 0  # booked as spent
        assert [r.status for r in journal][:2] == [SUBMITTING, SUBMITTED]  # journaled paid as the answer began

        again, _ = run(api, planned, tmp_path, journal)  # the provider would answer now: still not sent
        assert [r.resume for r in again] == ["lost"] and len(api.posts) == 1


def test_a_refused_key_answered_in_a_200_loses_every_row_instead_of_stopping_the_run(tmp_path: Path) -> None:
    """The same KNOWN LIMIT with MiniMax's 1004 (a wrong key, answered in a 200): the run is not stopped as a
    refused key would stop it (a 401 does, before anything is paid): every row is sent once and held lost,
    each booked at its worst case. Asserted so that mapping in-body codes (OPEN) shows here when it lands."""
    with MiniMaxMusic() as api:
        profile = load_profile("minimax-music").model_copy(update={"base_url": api.base_url})
        with TextMusicClient(api.base_url, "not-the-key", profile=profile, settings=API) as client:
            records, _ = run_rows(rows(), client, tmp_path, settings=SETTINGS)
        assert [(r.status, r.resume, r.cost_cents) for r in records] == [("failed", "lost", 18)] * 3
        assert api.answers == [(200, 1004)] * 3 and api.charges == []


def test_the_profile_survives_to_toml() -> None:
    """What probe --write-profile writes of it reads back the same (the query in submit_path, dotted constants)."""
    profile = load_profile("minimax-music")
    assert Profile.model_validate(tomllib.loads(profile.to_toml())) == profile
