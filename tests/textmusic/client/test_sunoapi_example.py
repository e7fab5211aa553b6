"""The shipped profile textmusic/providers/sunoapi-org.toml (written from sunoapi.org's docs, see its header): its
body from brief rows, and its submit → poll answers read, through an httpx transport answering in the docs'
shapes (no network)."""

from __future__ import annotations

import json

import httpx
import pytest

from textmusic.client import TextMusicClient, TextMusicError
from textmusic.contract import READY, TextToMusicRequest
from textmusic.providers import load_profile
from textmusic.providers.reader import read_status
from textmusic.settings import TextMusicSettings

PROFILE = "sunoapi-org"
TASK = "5c79be8e"
DETAILS = {"code": 200, "msg": "success", "data": {
    "taskId": TASK, "status": "SUCCESS", "errorMessage": None,
    "response": {"taskId": TASK, "sunoData": [
        {"id": "a1", "audioUrl": "https://cdn.example/a1.mp3", "title": "Rain", "duration": 182.4},
        {"id": "a2", "audioUrl": "https://cdn.example/a2.mp3", "title": "Rain", "duration": 175.0}]}}}


@pytest.fixture(scope="module")
def profile():
    return load_profile(PROFILE)


def test_an_instrumental_row_becomes_a_custom_mode_body(profile):
    request = TextToMusicRequest(prompt="Chill lo-fi beat", tags=["lofi", "chill"], lyrics="", seed=1, name="Rain")
    assert profile.request.body(request) == {
        "customMode": True, "model": "V4_5",
        "style": "Chill lo-fi beat, lofi, chill", "title": "Rain", "instrumental": True}


def test_a_sung_row_sends_its_lyrics_as_the_prompt(profile):
    request = TextToMusicRequest(tags=["folk"], lyrics="[verse]\nDown the road", seed=1, name="Road")
    body = profile.request.body(request)
    assert body["prompt"] == "[verse]\nDown the road" and body["instrumental"] is False and body["style"] == "folk"


def test_what_it_cannot_take_is_said(profile):
    request = TextToMusicRequest(prompt="p", seed=1, output_format="wav", num_songs=2, bpm=90)
    found = {c.column: c.severity for c in profile.request.consequences(request)}
    assert found == {"seed": "warning", "bpm": "warning", "num_songs": "rejection", "output_format": "rejection"}


def test_submit_then_poll_reads_the_documented_answers(profile):
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(200, json={"code": 200, "msg": "success", "data": {"taskId": TASK}})
        return httpx.Response(200, json=DETAILS)

    with TextMusicClient(profile.base_url, "k", profile=profile, transport=httpx.MockTransport(answer)) as client:
        submitted = client.submit(TextToMusicRequest(prompt="calm", seed=1, output_format="mp3", name="Rain"),
                                  callback_url="https://studio.example/callbacks/run1/tok")
        track = client.get_track(submitted.tracks[0].id)
        songs = client.get_songs(TASK)
    assert [t.id for t in submitted.tracks] == [TASK, TASK]  # one task, two songs
    assert [(t.audio_url, t.duration_seconds) for t in songs] == [("https://cdn.example/a1.mp3", 182.4),
                                                                  ("https://cdn.example/a2.mp3", 175.0)]
    posted = json.loads(seen[0].content)
    assert posted["style"] == "calm" and seen[0].url.path == "/api/v1/generate"
    assert posted["callBackUrl"] == "https://studio.example/callbacks/run1/tok"  # the [callback] table's field
    assert seen[1].url.path == "/api/v1/generate/record-info" and seen[1].url.params["taskId"] == TASK
    assert (track.effective_status, track.audio_url, track.duration_seconds) == (
        READY, "https://cdn.example/a1.mp3", 182.4)


@pytest.mark.parametrize(("stage", "expected"), [("text", "pending"), ("first", "pending"), ("complete", "ready"),
                                                 ("error", "failed")])
def test_its_callbacks_read_by_stage(profile, stage, expected):
    body = {"code": 200, "msg": "All generated successfully.", "data": {"callbackType": stage, "task_id": TASK,
            "data": [{"id": "a1", "audio_url": "https://cdn.example/a1.mp3", "duration": 182.4}]}}
    track = read_status(profile.for_callbacks(), body)
    assert (track.id, track.effective_status) == (TASK, expected)
    assert track.audio_url == "https://cdn.example/a1.mp3" and track.duration_seconds == 182.4
    second = read_status(profile.for_callbacks(), body, song=1)  # not in this body: no audio, so not ready
    assert second.id == TASK and second.audio_url is None


@pytest.mark.parametrize(("code", "error"), [(429, "InsufficientBalance"), (401, "Unauthorized"),
                                             (405, "RateLimited"), (413, "InvalidRequest"), (455, "ServerError")])
def test_an_error_code_inside_a_200_is_the_http_error_it_stands_for(profile, code, error):
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": code, "msg": f"said {code}", "data": None})

    settings = TextMusicSettings(max_attempts=1)
    with TextMusicClient(profile.base_url, "k", profile=profile, transport=httpx.MockTransport(answer),
                         settings=settings) as client, pytest.raises(TextMusicError) as caught:
        client.submit(TextToMusicRequest(prompt="calm", seed=1, output_format="mp3", name="Rain"),
                      callback_url="https://studio.example/callbacks/run1/tok")
    assert type(caught.value).__name__ == error and f"said {code} (code {code})" in caught.value.message


def test_an_unmapped_5xx_code_in_a_2xx_submission_answer_is_held_never_sent_again() -> None:
    """A 2xx whose envelope says 500 came from the provider's application, which may have made the task: the
    POST is held as unanswered, not retried; a code the profile maps itself (455 → 503) is retried."""
    from textmusic.client import ServerError, Unanswered
    from textmusic.providers import Envelope

    answers = iter([{"code": 500, "msg": "internal"}, {"code": 455, "msg": "maintenance"}])
    posts = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(200, json=next(answers))

    profile = load_profile("sunoapi-org").model_copy(update={"envelope": Envelope(statuses={"455": 503})})
    settings = TextMusicSettings(max_attempts=1)
    with TextMusicClient("https://api.sunoapi.example", "k", profile=profile, settings=settings,
                         transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(Unanswered):
            client.submit(TextToMusicRequest(prompt="calm piano"))
        with pytest.raises(ServerError) as mapped:
            client.submit(TextToMusicRequest(prompt="calm piano"))
    assert not isinstance(mapped.value, Unanswered) and len(posts) == 2


@pytest.mark.parametrize("code", ["²", "9" * 5000, " 4２9 "])
def test_an_envelope_code_that_is_no_plain_number_is_left_to_the_reader(code: str) -> None:
    from textmusic.providers import Envelope

    assert Envelope().status_for(code) is None  # no ValueError from int(), no 5,000-digit int()


@pytest.mark.parametrize("header", ["Authorization", "AUTHORIZATION", "xi-api-key", "Cookie", "Idempotency-Key"])
def test_a_profile_header_never_stands_in_for_the_keys_or_the_requests_own(header: str) -> None:
    from pydantic import ValidationError

    base = load_profile("elevenlabs-music").model_dump()
    with pytest.raises(ValidationError, match="cannot be set by a profile"):
        load_profile("elevenlabs-music").model_validate({**base, "headers": {header: "x"}})
