"""The shipped MiniMax Music profile against a stand-in written from MiniMax's docs
(textmusic/testing/providers/minimax_music.py), over real loopback HTTP through the run machinery: each row is
POSTed once (synchronous: the JSON answer carries the mp3 as hex), delivered, and costed per song as the stand-in
charged it; the stand-in refuses what the API refuses (in a 200, as MiniMax does); what the provider cannot take is
said before paying; and an error in a 200 answer (base_resp.status_code != 0) is the HTTP error it stands for
(the profile's [envelope]): a rate limit waits its turn, an empty balance stops paying, a wrong key stops the run,
and none of them is booked as paid."""

from __future__ import annotations

import json
import threading
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tasks import interrupt
from tasks.catalog.ledger import SUBMITTED, SUBMITTING
from tasks.delivery.place import PARTIAL_DIR
from tasks.intake.plan import plan_rows
from tasks.intake.validate import BriefRow
from tasks.run import RunOptions
from tests.support.generation import QUICK, run_rows
from textmusic.client import Answer, SyncRefused, TextMusicClient, Unauthorized
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


def test_a_rate_limit_in_a_200_answer_waits_its_turn_and_is_paid_once(tmp_path: Path) -> None:
    """MiniMax answers errors in a 200 (base_resp.status_code): the profile's [envelope] reads 1002 as the 429 it
    stands for, though the answer began as a paid one. The row is journaled unpaid again at once (a run killed
    now resumes it as never charged), waits its turn and is sent again: one charge, the ledger equal to it."""
    planned = rows()[:1]
    with MiniMaxMusic() as api:
        api.fail_next = [1002]
        records, journal = run(api, planned, tmp_path)
        assert [r.status for r in records] == ["ready"], [r.error for r in records]
        assert api.answers == [(200, 1002), (200, 0)] and api.charges == [PRICE.song_cents(0)]
        assert records[0].cost_cents == api.charged_cents == 18
        said = [(r.status, bool(r.generation_id)) for r in journal]
        assert said[:3] == [(SUBMITTING, False), (SUBMITTED, True), ("failed", False)]  # paid, then unpaid again
        assert "refused in its answer" in journal[2].error and "1002" in journal[2].error
        assert said[3:5] == [(SUBMITTING, False), (SUBMITTED, True)] and said[-1] == ("ready", True)


@pytest.mark.parametrize(("code", "status"), [(1008, "skipped"), (2013, "failed"), (1026, "failed")])
def test_a_refusal_in_a_200_answer_ends_the_row_unpaid(tmp_path: Path, code: int, status: str) -> None:
    """An empty balance (1008: the row is skipped and the run stops paying) or a refused body (2013, 1026: failed)
    in a 200: costed at nothing and not at risk (the provider said it refused), and a later run may send the row
    again (it was never charged)."""
    planned = rows()[:1]
    with MiniMaxMusic() as api:
        api.fail_next = [code]
        records, _ = run(api, planned, tmp_path)
        assert [(r.status, r.resume, r.cost_cents, r.at_risk_cents) for r in records] == [(status, "", 0, 0)]
        assert str(code) in records[0].error and api.answers == [(200, code)] and api.charges == []

        again, _ = run(api, planned, tmp_path, records)  # nothing was charged: the next run sends it
        assert [r.status for r in again] == ["ready"] and api.answers[-1] == (200, 0)


def test_a_refused_key_answered_in_a_200_stops_the_run(tmp_path: Path) -> None:
    """MiniMax's 1004 (a wrong key, answered in a 200) stops the run as a 401 would: nothing is charged, and no row
    is sent after the first refusal (those already on the wire were refused the same way)."""
    with MiniMaxMusic() as api:
        profile = load_profile("minimax-music").model_copy(update={"base_url": api.base_url})
        with TextMusicClient(api.base_url, "not-the-key", profile=profile, settings=API) as client, \
                pytest.raises(Unauthorized):
            run_rows(rows(), client, tmp_path, settings=SETTINGS)
        assert api.answers == [(200, 1004)] * len(api.answers) and api.charges == []


def test_the_profile_survives_to_toml() -> None:
    """What probe --write-profile writes of it reads back the same (the query in submit_path, dotted constants)."""
    profile = load_profile("minimax-music")
    assert Profile.model_validate(tomllib.loads(profile.to_toml())) == profile


def test_a_rate_limit_in_a_200_answer_backs_off_and_a_stop_meanwhile_books_nothing(tmp_path: Path) -> None:
    """Two 1002s in a row: the row waits before each new turn (0.5 s, then 1 s: a limit said in a body has no
    Retry-After), and a stop request while it waits ends it skipped, unpaid: the refused answer's track is no
    paid track to book as lost."""
    planned = rows()[:1]
    with MiniMaxMusic() as api:
        api.fail_next = [1002, 1002]
        started = time.monotonic()
        records, _ = run(api, planned, tmp_path)
        assert [r.status for r in records] == ["ready"] and time.monotonic() - started >= 1.5
        assert [code for _, code in api.answers] == [1002, 1002, 0]

        api.fail_next = [1002] * 10
        stop = threading.Timer(1.0, interrupt.request_stop)
        stop.start()
        try:
            stopped, journal = run(api, rows()[1:2], tmp_path / "again")
        finally:
            stop.cancel()
            interrupt.STOP.clear()
            interrupt.received.clear()
        assert [(r.status, r.cost_cents, r.resume) for r in stopped] == [("skipped", 0, "")]
        assert api.charges == [18] and journal[-1].status == "skipped"


def test_an_answer_with_audio_is_paid_whatever_code_it_also_carries() -> None:
    """Defensive: a body that holds the audio and an error code was charged; it is never read as a refusal (which
    would send the row again)."""
    profile = load_profile("minimax-music")
    with TextMusicClient(profile.base_url, "k", profile=profile, settings=API) as client:
        body = json.dumps({"data": {"audio": "ff" * 100}, "base_resp": {"status_code": 1002}}).encode()
        client._raise_refusal(Answer(200, "OK", httpx.Headers(), body), json.loads(body))  # no SyncRefused
        refused = json.dumps({"data": None, "base_resp": {"status_code": 1002, "status_msg": "rate"}}).encode()
        with pytest.raises(SyncRefused) as caught:
            client._raise_refusal(Answer(200, "OK", httpx.Headers(), refused), json.loads(refused))
        assert caught.value.unpaid and caught.value.status == 429
