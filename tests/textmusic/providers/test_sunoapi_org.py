"""The shipped sunoapi.org profile (textmusic/providers/sunoapi-org.toml) against a stand-in written from
sunoapi.org's docs (textmusic/testing/providers/sunoapi_org.py), over real loopback HTTP through the run machinery.
Each call makes TWO songs under one task id: every row is POSTed once and both its songs are delivered (song 0 and
song 1, files `<track>` and `<track>-2`), each carrying half the call's 6 cents, whether the task calls back (text,
first, complete twice: confirmed by one poll that reads both songs) or is only polled; a run resumed after the
submission was journaled polls the task and delivers both songs without paying again; and an error said inside a
200 (code 429, insufficient credits) is read as the 402 it stands for: the run stops paying, nothing is at risk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.catalog.ledger import SUBMITTED
from tasks.generation.resume import split_done
from tasks.intake.plan import plan_rows
from tasks.intake.validate import BriefRow
from tests.support.generation import QUICK, run_rows
from textmusic.client import InsufficientBalance, TextMusicClient, Unauthorized
from textmusic.contract import TextToMusicRequest
from textmusic.providers import load_profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.providers.sunoapi_org import (
    CREDITS_PER_CALL,
    STATUS_PATH,
    SUBMIT_PATH,
    SunoapiOrgStandIn,
    call_cents,
)

API = TextMusicSettings(max_attempts=3, poll_deadline_seconds=30)
SETTINGS = QUICK.model_copy(update={"master": "none"})  # delivered as they come: the wire is under test
REQUESTS = [  # an instrumental, a sung row, a row from tags and lyrics
    {"prompt": "calm piano, rain at night", "tags": ["ambient"]},
    {"prompt": "road trip pop", "lyrics": "[Verse]\nDown the road we go\n[Chorus]\nHome, home"},
    {"tags": ["folk", "acoustic"], "lyrics": "[Verse]\nRiver wide and slow"},
]


def rows(requests: list[dict] = REQUESTS) -> list:
    brief = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(  # type: ignore[arg-type]
        output_format="mp3", **request), {}) for i, request in enumerate(requests, 1)]
    return plan_rows(brief, "demo", "sunoapi-org", False)


def run(api: SunoapiOrgStandIn, out: Path, planned: list, previous=()) -> tuple[list, list]:
    profile = load_profile("sunoapi-org").model_copy(update={"base_url": api.base_url,
                                                             "expected_ready_seconds": 0.4})
    with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
        return run_rows(planned, client, out, previous, settings=SETTINGS)


def delivered_both_songs_of_each_row(records: list, out: Path, api: SunoapiOrgStandIn) -> None:
    assert [(r.track_id, r.song_index, r.status) for r in records] == [
        (f"t{i}", song, "ready") for i in (1, 2, 3) for song in (0, 1)], [r.error for r in records]
    files = [out / r.audio_path for r in records]
    assert len(set(files)) == 6 and all(f.stat().st_size > 1_000 for f in files)
    names = [f"demo_t{i}{song}_Row_{i}_full.mp3" for i in (1, 2, 3) for song in ("-2", "")]  # song 1: `-2`
    assert sorted(f.name for f in files) == names
    assert len({r.sha256 for r in records}) == 6  # six different songs
    for first, second in zip(records[::2], records[1::2], strict=True):  # one task, two songs
        assert first.generation_id == second.generation_id and first.generation_id
    assert [r.cost_cents for r in records] == [3] * 6  # each song half its call's 6 cents
    assert sum(r.cost_cents for r in records) == api.charged_cents == 3 * call_cents() == 18
    assert api.cdn_auth_seen == []  # the key never reaches the CDN


@pytest.mark.parametrize("callbacks", [True, False], ids=["callbacks", "polling-only"])
def test_three_rows_three_posts_six_songs_delivered_at_the_charged_cost(tmp_path: Path, callbacks: bool) -> None:
    with SunoapiOrgStandIn(seconds_to_ready=0.6, callbacks=callbacks) as api:
        records, journal = run(api, tmp_path, rows())
        assert len(api.posts) == 3 and len(api.charges) == 3  # one POST per row, each accepted
        delivered_both_songs_of_each_row(records, tmp_path, api)
        submitted = sorted((r.track_id, r.song_index) for r in journal if r.status == SUBMITTED)
        assert submitted == [(f"t{i}", song) for i in (1, 2, 3) for song in (0, 1)]  # both songs paid and journaled
        body = next(b for b in api.posts if b.get("style") == "calm piano, rain at night, ambient")
        assert body["instrumental"] is True and body["customMode"] is True and body["callBackUrl"].startswith("http")
        # One poll answer carries both songs: a task is polled for both, never once per song.
        assert api.polls() <= 3 * 4, api.requests
        if callbacks:
            stages = sorted({stage for _, stage, status in api.callbacks_sent if status == 200})
            assert stages == ["complete", "first", "text"]
            assert sum(stage == "complete" for _, stage, _ in api.callbacks_sent) == 6  # a duplicate per task
            assert api.polls() == 3  # each task confirmed by one status request reading both songs


def test_a_run_resumed_after_the_submission_delivers_both_songs_without_paying_again(tmp_path: Path) -> None:
    with SunoapiOrgStandIn(seconds_to_ready=0.6, callbacks=False) as api:
        planned = rows(REQUESTS[:1])
        _, journal = run(api, tmp_path / "first", planned)
        # The run killed the moment its submission was journaled: only the two songs' `submitted` records remain.
        paid = [r for r in journal if r.status == SUBMITTED]
        assert [(r.song_index, r.generation_id) for r in paid] == [(0, paid[0].generation_id),
                                                                   (1, paid[0].generation_id)]
        polls = api.polls()
        records, _ = run(api, tmp_path / "again", planned, paid)
        assert len(api.posts) == 1 and api.charged_cents == call_cents()  # never sent again
        assert [(r.song_index, r.status, r.generation_id) for r in records] == [
            (0, "ready", paid[0].generation_id), (1, "ready", paid[0].generation_id)], [r.error for r in records]
        assert api.polls() - polls == 1  # the task polled once for both songs
        assert len({r.sha256 for r in records}) == 2 and sum(r.cost_cents for r in records) == call_cents()


def test_a_resumed_row_with_one_song_delivered_polls_for_the_other(tmp_path: Path) -> None:
    with SunoapiOrgStandIn(seconds_to_ready=0.3, callbacks=False) as api:
        planned = rows(REQUESTS[:1])
        first, _ = run(api, tmp_path, planned)
        assert [r.status for r in first] == ["ready", "ready"]
        # The second song's delivery never happened: its record still says submitted (paid, to be polled).
        previous = [first[0], first[1].model_copy(update={"status": SUBMITTED, "audio_path": "", "sha256": ""})]
        # A row is done only when every song its task made is delivered (it asked one; the task made two).
        assert [r.song_index for r in split_done(planned, first, tmp_path)[1]] == [0, 1]
        assert split_done(planned, previous, tmp_path) == (planned, [])
        records, _ = run(api, tmp_path, planned, previous)
        assert len(api.posts) == 1
        assert [(r.song_index, r.status) for r in records] == [(0, "ready"), (1, "ready")]
        assert records[0].sha256 == first[0].sha256


def test_an_insufficient_credits_code_in_a_200_stops_paying_with_nothing_at_risk(tmp_path: Path) -> None:
    with SunoapiOrgStandIn(seconds_to_ready=0.3, callbacks=False, credits=CREDITS_PER_CALL) as api:
        records, _ = run(api, tmp_path, rows(REQUESTS[:2]))
        assert api.charged_cents == call_cents() and len(api.charges) == 1
        by_row: dict[str, list] = {}
        for record in records:
            by_row.setdefault(record.track_id, []).append(record)
        paid, (refused,) = sorted(by_row.values(), key=len, reverse=True)  # rows are sent concurrently: either pays
        assert [r.status for r in paid] == ["ready", "ready"]
        assert refused.status in ("failed", "skipped") and "nsufficient" in refused.error, refused
        assert not refused.at_risk_cents and not refused.generation_id and refused.resume != "unanswered"
        assert ("POST", SUBMIT_PATH, 429) in api.requests


def test_the_envelope_maps_a_200_with_an_error_code_to_its_http_error(tmp_path: Path) -> None:
    with SunoapiOrgStandIn(credits=0) as api:
        profile = load_profile("sunoapi-org").model_copy(update={"base_url": api.base_url})
        with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
            with pytest.raises(InsufficientBalance, match="Insufficient credits"):
                client.submit(TextToMusicRequest(prompt="calm", name="Rain", output_format="mp3"),
                              callback_url="http://127.0.0.1:9/callbacks/x/y")
            client.check_auth()  # the free credit endpoint: accepted
        with TextMusicClient(api.base_url, "wrong", profile=profile, settings=API) as client, \
                pytest.raises(Unauthorized):
            client.check_auth()
        assert api.charges == [] and ("GET", STATUS_PATH, 200) not in api.requests


@pytest.mark.parametrize("callbacks", [True, False], ids=["callbacks", "polling-only"])
def test_a_failed_task_ends_both_its_songs_with_the_providers_reason(tmp_path: Path, callbacks: bool) -> None:
    with SunoapiOrgStandIn(seconds_to_ready=0.3, callbacks=callbacks) as api:
        records, _ = run(api, tmp_path, rows([{"prompt": "FAIL on purpose"}]))
        assert len(api.posts) == 1
        assert [(r.song_index, r.status) for r in records] == [(0, "failed"), (1, "failed")]
        assert all("audio generation failed" in r.error for r in records), [r.error for r in records]
        if callbacks:
            assert ("error" in {stage for _, stage, _ in api.callbacks_sent}) and api.polls() == 1
