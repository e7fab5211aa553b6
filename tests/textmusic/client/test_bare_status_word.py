"""A status answer that is a bare JSON string (Sonauto's official example reads `"SUCCESS"`, its newer docs an
object): for a profile whose status answers name no id (status_has_id = false) it is the status word of the track
polled; a profile whose answers name their track still refuses it as unreadable. And the request map's `copy`
with a `default` (sent when the row gives none) and `integer` (a numeric text as a number)."""

from __future__ import annotations

import httpx
import pytest

from textmusic.client import TextMusicClient, UnreadableStatus
from textmusic.contract import FAILED, PENDING, READY, TextToMusicRequest
from textmusic.providers import Profile
from textmusic.providers.reader import AnswerUnreadable, read_status
from textmusic.providers.request import RequestMap


def profile(status_has_id: bool = False, **update: object) -> Profile:
    return Profile(name="bare", base_url="https://api.example.test", status_path="/status/{id}",
                   status_has_id=status_has_id, status_words={"FAILURE": "failed"}, **update)  # type: ignore[arg-type]


@pytest.mark.parametrize(("word", "status"), [
    ("GENERATING", PENDING), ("SOMETHING_NEW", PENDING), ("FAILURE", FAILED),
    ("SUCCESS", PENDING),  # ready by its word, but no audio yet: pending (the result path holds the audio)
])
def test_a_bare_string_is_the_word_of_the_track_polled(word: str, status: str) -> None:
    track = read_status(profile(), word, "task-1")
    assert (track.id, track.status, track.status_word) == ("task-1", status, word)
    assert (track.error is not None) == (status == FAILED)


def test_a_profile_whose_answers_name_their_track_refuses_a_bare_string() -> None:
    with pytest.raises(AnswerUnreadable):
        read_status(profile(status_has_id=True), "SUCCESS")


def test_the_poll_reads_the_bare_word_then_fetches_the_result() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.startswith("/status/"):
            return httpx.Response(200, json="SUCCESS")
        return httpx.Response(200, json={"song_paths": ["https://cdn.example/x.ogg"], "seed": 5})

    bare = profile(result_path="/result/{id}", answer={"id": ["task_id"], "audio_url": ["song_paths.0"]})
    with TextMusicClient(bare.base_url, "k", profile=bare, transport=httpx.MockTransport(answer)) as client:
        track = client.get_track("task-1")
    assert seen == ["/status/task-1", "/result/task-1"]
    assert (track.id, track.effective_status, track.audio_url, track.seed) == (
        "task-1", READY, "https://cdn.example/x.ogg", 5)


def test_the_client_still_refuses_a_bare_string_where_answers_name_their_track() -> None:
    named = profile(status_has_id=True)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json="SUCCESS"))
    with TextMusicClient(named.base_url, "k", profile=named, transport=transport) as client, \
            pytest.raises(UnreadableStatus):
        client.get_track("task-1")


def test_copy_sends_its_default_when_the_row_gives_none_and_integers_as_numbers() -> None:
    mapping = RequestMap.model_validate({"fields": {
        "prompt": {"source": "prompt", "default": ""}, "tags": {"source": "tags"},
        "output_bit_rate": {"source": "output_bit_rate", "integer": True}}})
    assert mapping.body(TextToMusicRequest(tags=["rock"], lyrics="", output_format="mp3", output_bit_rate="320")) == {
        "prompt": "", "output_bit_rate": 320, "tags": ["rock"]}
    assert mapping.body(TextToMusicRequest(prompt="calm", output_format="ogg")) == {"prompt": "calm"}
