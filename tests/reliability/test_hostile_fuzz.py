"""Property-based fuzz of a provider's answers over real HTTP (Hypothesis): any JSON shape and value, any
status code, odd headers, for submissions, polls and downloads. Whatever comes back, the run's invariants hold:
it ends within its deadlines, every row ends with a record, the key is in no record or file, nothing is written
outside the catalog folder, no row is paid twice, and no money figure is negative or unbounded.

`make test` runs a short form; the long form (`slow`) tries many more answers."""

from __future__ import annotations

import math
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.settings import PipelineSettings
from tests.support.generation import run_rows
from tests.support.hostile import API_KEY, KEY_SPELLINGS, Hostile, Play, Reply, Song, client_for, rows
from textmusic.client import Unauthorized
from textmusic.contract import price_cents

pytestmark = pytest.mark.reliability
AUDIO = "AUDIO"  # replaced by the stand-in's own audio URL for the track
FUZZ_SETTINGS = PipelineSettings(outage_probe_seconds=0.1, outage_budget_seconds=1.0, initial_in_flight=4,
                                 max_requeues=2, lost_confirm_polls=2, lost_confirm_seconds=0.3)
RUN_BOUND_SECONDS = 90
MAX_ATTEMPTS = 2  # client_for's
# Answers that say the submission was not accepted (the provider's own refusal): sending it again is safe.
REFUSALS = frozenset({400, 401, 402, 403, 404, 410, 422, 429, 500, 503})
WORST_CENTS = math.ceil(price_cents(PipelineSettings().max_minutes_per_song * 60) * 1.5)

hostile_text = st.sampled_from([API_KEY, f"Bearer {API_KEY}", "../../../etc/x", "a\nb", "q?token=1", "\x00", "NaN",
                                "<html>", "ready", "failed", "pending", ""])
numbers = st.one_of(st.none(), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["10", "NaN", "1e400", "-1"]))
leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20), hostile_text)
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
track_like = st.fixed_dictionaries({
    "id": st.one_of(st.just("keep"), hostile_text, json_values),
    "status": st.one_of(st.sampled_from(["pending", "ready", "failed", "completed", "weird"]), json_values),
    "audio_url": st.one_of(st.just(AUDIO), st.none(), hostile_text, st.just("http://127.0.0.1:9/x.wav")),
    "duration_seconds": numbers,
    "cost_cents": numbers,
    "error": st.one_of(st.none(), hostile_text, json_values),
})
answers = st.one_of(json_values, track_like, st.fixed_dictionaries({
    "success": st.one_of(st.just(True), st.just(False), json_values),
    "tracks": st.one_of(st.lists(track_like, max_size=2), json_values)}))
statuses = st.sampled_from([200, 200, 200, 201, 202, 204, 302, 400, 402, 404, 410, 422, 429, 500, 502, 503, 504])
headers = st.dictionaries(st.sampled_from(["Retry-After", "Content-Type", "X-Echo", "Content-Encoding"]),
                          st.one_of(hostile_text, st.sampled_from(["0", "1", "-5", "soon", "gzip",
                                                                   "Wed, 21 Oct 2015 07:28:00 GMT"])), max_size=2)
replies = st.builds(lambda status, body, head: Reply(status, body, headers=head), statuses, answers, headers)


class Fuzzed(Play):
    """Submission, status (cycled) and audio answers drawn by Hypothesis; "keep" ids and AUDIO URLs are made
    real so that fuzzed answers can also reach the paths after them."""

    def __init__(self, submit: Reply, polls: list[Reply], audio: Reply | None) -> None:
        self.submit_reply, self.polls, self.audio_reply, self.n = submit, polls, audio, 0

    def _real(self, api: Hostile, value: Any, song: Song | None) -> Any:
        if isinstance(value, dict):
            return {k: self._real(api, v, song) for k, v in value.items()}
        if isinstance(value, list):
            return [self._real(api, v, song) for v in value]
        if song is not None and value == "keep":
            return song.id
        if song is not None and value == AUDIO:
            return f"{api.base_url}/audio/{song.id}.{song.fmt}"
        return value

    def submit(self, api: Hostile, body: Any, auth: str) -> Reply:
        songs = api.accept(body, self) if 200 <= self.submit_reply.status < 300 else []
        return Reply(self.submit_reply.status, self._real(api, self.submit_reply.body, songs[0] if songs else None),
                     headers=self.submit_reply.headers)

    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        reply = self.polls[self.n % len(self.polls)]
        self.n += 1
        return Reply(reply.status, self._real(api, reply.body, api.song(track_id)), headers=reply.headers)

    def audio(self, api: Hostile, song: Song) -> Reply:
        return self.audio_reply or super().audio(api, song)


def check_invariants(submit: Reply, polls: list[Reply], audio: Reply | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, Hostile(Fuzzed(submit, polls, audio)) as api:
        out = Path(tmp) / "out"
        out.mkdir()
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append(run_rows(rows("calm a", "calm b"), client_for(api, poll_deadline_seconds=1.5), out,
                                        settings=FUZZ_SETTINGS))
            except Unauthorized:  # a key refused mid-run stops the run at once; the journal keeps what was paid
                outcome.append(None)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(RUN_BOUND_SECONDS)
        assert outcome, f"the run hung past {RUN_BOUND_SECONDS} s"
        posts = api.posts_per_prompt()
        if submit.status not in REFUSALS:  # an answer that may mean "accepted": never sent again
            assert all(n <= 1 for n in posts.values()), posts
        assert all(n <= (FUZZ_SETTINGS.max_requeues + 1) * MAX_ATTEMPTS for n in posts.values()), posts
        assert [p.name for p in Path(tmp).iterdir()] == ["out"]  # nothing beside the catalog folder
        texts = [p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()]
        if outcome[0] is not None:
            records, journal = outcome[0]
            assert {r.prompt for r in records} == {"calm a", "calm b"}  # every row ended with a record
            for record in records + journal:
                assert 0 <= record.cost_cents <= WORST_CENTS and 0 <= record.at_risk_cents <= 2 * WORST_CENTS
                assert record.duration_seconds is None or 0 <= record.duration_seconds < 86400
                texts.append(record.model_dump_json())
        for text in texts:
            assert not any(spelling in text for spelling in KEY_SPELLINGS), text[:300]


FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=25, **FUZZ)
@given(submit=replies, polls=st.lists(replies, min_size=1, max_size=3), audio=st.none() | replies)
def test_any_answer_keeps_the_run_invariants(submit: Reply, polls: list[Reply], audio: Reply | None) -> None:
    check_invariants(submit, polls, audio)


@pytest.mark.slow
@settings(max_examples=150, **FUZZ)
@given(submit=replies, polls=st.lists(replies, min_size=1, max_size=4), audio=st.none() | replies)
def test_any_answer_keeps_the_run_invariants_long(submit: Reply, polls: list[Reply], audio: Reply | None) -> None:
    check_invariants(submit, polls, audio)
