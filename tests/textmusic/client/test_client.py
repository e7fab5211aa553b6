"""The client against a double of the hosted API (httpx.MockTransport): the hosted service cannot run here."""

import json

import httpx
import pytest

from textmusic.client import (
    InsufficientBalance,
    InvalidRequest,
    PollTimeout,
    RateLimited,
    ServerError,
    TextMusicClient,
    Unanswered,
    Unauthorized,
)
from textmusic.contract import TextToMusicRequest, Track
from textmusic.settings import TextMusicSettings

KEY = "vbt_supersecret_key_123"
FAST = TextMusicSettings(poll_initial_seconds=0.01, poll_max_interval_seconds=0.02, poll_deadline_seconds=2,
                         max_attempts=4)
REQUEST = TextToMusicRequest(prompt="calm piano", seed=5, duration_seconds=30)


def error(status, code, message, headers=None):
    return httpx.Response(status, json={"success": False, "error": {"code": code, "message": message}},
                          headers=headers or {})


def client_for(handler, **kw):
    return TextMusicClient("https://api.example.test", KEY, settings=FAST, transport=httpx.MockTransport(handler), **kw)


@pytest.mark.parametrize(
    ("status", "exc"),
    [(400, InvalidRequest), (401, Unauthorized), (402, InsufficientBalance)],
)
def test_errors_map_to_types_without_retry_and_without_the_key(status, exc):
    calls = []

    def handler(request):
        calls.append(request)
        return error(status, "x", f"refused with status {status}")

    with pytest.raises(exc) as info:
        client_for(handler).submit(REQUEST)
    assert len(calls) == 1
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert f"refused with status {status}" in str(info.value)


def test_429_waits_retry_after_then_succeeds(monkeypatch):
    waits = []
    monkeypatch.setattr("tenacity.nap.time.sleep", waits.append)
    answers = [error(429, "rate_limit_exceeded", "slow down", {"Retry-After": "2"}),
               httpx.Response(200, json={"success": True, "tracks": [{"id": "t1", "audio_url": "https://cdn/x"}]})]
    throttled = []
    client = client_for(lambda r: answers.pop(0), throttle=lambda: throttled.append(1))
    response = client.submit(REQUEST)
    assert waits == [2.0] and len(throttled) == 2 and client.attempts == 2
    assert response.tracks[0].effective_status == "ready"  # hosted shape: no status, an audio_url


def test_5xx_retried_with_backoff_and_bounded(monkeypatch):
    monkeypatch.setattr("tenacity.nap.time.sleep", lambda s: None)
    calls = []

    def handler(request):
        calls.append(1)
        return error(500, "internal_error", "boom")

    with pytest.raises(ServerError, match="boom"):
        client_for(handler).submit(REQUEST)
    assert len(calls) == FAST.max_attempts


def test_429_exhausted_raises_rate_limited(monkeypatch):
    monkeypatch.setattr("tenacity.nap.time.sleep", lambda s: None)
    with pytest.raises(RateLimited):
        client_for(lambda r: error(429, "rate_limit_exceeded", "no", {"Retry-After": "1"})).submit(REQUEST)


def test_read_timeout_after_sending_is_not_retried():
    calls = []

    def handler(request):
        calls.append(1)
        raise httpx.ReadTimeout("late", request=request)

    with pytest.raises(Unanswered, match="not sent again"):
        client_for(handler).submit(REQUEST)
    assert len(calls) == 1


def test_body_sends_bearer_and_extension_only_to_local():
    seen = []

    def handler(request):
        seen.append((request.headers["Authorization"], json.loads(request.content)))
        return httpx.Response(200, json={"success": True, "tracks": [{"id": "t1"}]})

    client_for(handler).submit(REQUEST)
    client_for(handler, local_extensions=True).submit(REQUEST)
    (auth, hosted), (_, local) = seen
    assert auth == f"Bearer {KEY}"
    assert "duration_seconds" not in hosted and local["duration_seconds"] == 30
    assert hosted["seed"] == 5 and hosted["output_format"] == "wav"


def test_poll_until_ready_or_failed():
    states = {"a": ["pending", "pending", "ready"], "b": ["pending", "failed"]}

    def handler(request):
        track_id = request.url.path.rsplit("/", 1)[-1]
        status = states[track_id].pop(0)
        return httpx.Response(200, json={"id": track_id, "status": status, "error": "bad luck" if status == "failed"
                                          else None, "audio_url": "https://cdn.example/a.wav"})

    tracks = [Track(id="a", status="pending"), Track(id="b", status="pending")]
    done = client_for(handler).wait(tracks, sleep=lambda s: None)
    assert [t.status for t in done] == ["ready", "failed"] and done[1].error == "bad luck"


def test_poll_deadline():
    client = client_for(lambda r: httpx.Response(200, json={"id": "a", "status": "pending"}))
    client.settings = client.settings.model_copy(update={"poll_deadline_seconds": 0.05})
    with pytest.raises(PollTimeout):
        client.wait([Track(id="a", status="pending")])


def test_download_to_foreign_host_carries_no_key_and_truncation_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr("tenacity.nap.time.sleep", lambda s: None)
    seen = []

    def handler(request):
        seen.append(request.headers.get("Authorization"))
        if request.url.path.endswith("short.mp3"):
            return httpx.Response(200, headers={"Content-Length": "100"}, content=b"x" * 10)
        return httpx.Response(200, content=b"ID3" + b"x" * 1000)

    client = client_for(handler)
    got = client.download(Track(id="t", audio_url="https://cdn.example.test/a.mp3"), tmp_path / "a.mp3")
    assert got.bytes_written == 1003
    assert seen == [None]
    with pytest.raises(ServerError, match="truncated|broke off"):
        client.download(Track(id="t", audio_url="https://cdn.example.test/short.mp3"), tmp_path / "b.mp3")


def test_retry_after_in_seconds_or_as_an_http_date():
    from datetime import UTC, datetime

    from textmusic.client import retry_after_seconds

    now = datetime(2026, 12, 2, 7, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Wed, 02 Dec 2026 07:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Wed, 02 Dec 2026 06:59:00 GMT", now) == 0.0  # already past
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


def test_reader_tolerates_other_words_strings_and_unknown_fields():
    from textmusic.providers import load_profile
    from textmusic.providers.reader import read_status, read_submission

    profile = load_profile("verbatik")
    track = read_status(profile, {"data": {"task_id": "x1", "state": "Completed", "audioUrl": "https://c/x.mp3",
                                           "duration": "12.5", "seed": "42", "mood": "calm"}})
    assert (track.id, track.status, track.status_word) == ("x1", "ready", "Completed")
    assert track.duration_seconds == 12.5 and track.seed == 42 and track.model_extra["mood"] == "calm"
    waiting = read_status(profile, {"id": "x2", "status": "completed", "audio_url": None, "queue": 3})
    assert waiting.status == "pending" and waiting.model_extra == {"queue": 3}  # ready without audio: pending
    odd = read_status(profile, {"id": "x3", "status": "fermenting"})
    assert odd.status == "pending" and odd.status_word == "fermenting"
    failed = read_status(profile, {"id": "x4", "status": "cancelled", "error": {"message": "moderation"}})
    assert failed.status == "failed" and failed.error == "moderation"
    single = read_submission(profile, {"success": True, "data": {"id": "y", "status": "queued"}})
    assert [t.id for t in single.tracks] == ["y"] and single.tracks[0].status == "pending"
