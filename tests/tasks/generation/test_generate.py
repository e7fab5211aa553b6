"""generate_row against a double of the hosted API: submit, resume, budget, error classes."""

import json
import threading

import httpx
import pytest

from tasks.catalog.ledger import SUBMITTED, SUBMITTING, LedgerRecord
from tasks.delivery.tagging import read_tags
from tasks.intake.plan import plan_rows, within_budget
from tasks.intake.validate import BriefRow
from tasks.run import Provider
from tasks.settings import PipelineSettings
from tests.support.audio_files import make_audio
from tests.support.generation import QUICK, quick_profile, run_rows
from textmusic.client import TextMusicClient, Unauthorized
from textmusic.contract import TextToMusicRequest, price_cents
from textmusic.pricing import SEED_PRICE
from textmusic.settings import TextMusicSettings

FAST = TextMusicSettings(poll_initial_seconds=0.01, poll_max_interval_seconds=0.02, poll_deadline_seconds=5)
PROVIDER = Provider("api.example.test", "https://api.example.test", local_extensions=False, price=SEED_PRICE)


class FakeHostedApi:
    """Just enough of the hosted API: POST gives pending tracks, GET turns them ready, audio is a real mp3."""

    def __init__(self, audio: bytes, submit_status: int = 200):
        self.audio, self.submit_status = audio, submit_status
        self.posts, self.gets = 0, 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            if request.method == "POST":
                self.posts += 1
                if self.submit_status != 200:
                    return httpx.Response(self.submit_status, json={"success": False, "error": {
                        "code": "x", "message": f"status {self.submit_status}"}})
                body = json.loads(request.content)
                tracks = [{"id": f"gen{self.posts}-{i}", "status": "pending"} for i in range(body.get("num_songs", 1))]
                return httpx.Response(200, json={"success": True, "tracks": tracks})
            if request.url.path.startswith("/files/"):
                return httpx.Response(200, content=self.audio)
            self.gets += 1
            track_id = request.url.path.rsplit("/", 1)[-1]
            return httpx.Response(200, json={"id": track_id, "status": "ready", "duration_seconds": 2.0,
                                             "bpm": 90, "audio_url": f"https://api.example.test/files/{track_id}.mp3"})


@pytest.fixture
def api(tmp_path):
    return FakeHostedApi(make_audio(tmp_path / "src.mp3", "mp3").read_bytes())


def planned(**fields):
    request = TextToMusicRequest(prompt="calm piano", output_format="mp3", **fields)
    return plan_rows([BriefRow(1, "t1", "Calm", request, {"mood": "calm"})], "demo", PROVIDER.name, False)[0]


def run(rows, api, out, previous=(), settings=QUICK):
    client = TextMusicClient(PROVIDER.base_url, "vbt_secret", profile=quick_profile(), settings=FAST,
                             transport=httpx.MockTransport(api))
    rows = rows if isinstance(rows, list) else [rows]
    return run_rows(rows, client, out, previous, provider=PROVIDER, settings=settings)


def test_row_is_submitted_journaled_delivered_and_tagged(tmp_path, api):
    row = planned(num_songs=2)
    records, journal = run(row, api, tmp_path)
    assert [j.status for j in journal][:3] == [SUBMITTING, SUBMITTED, SUBMITTED]
    assert [r.status for r in records] == ["ready", "ready"] and api.posts == 1
    for record in records:
        tags = read_tags(tmp_path / record.audio_path)
        assert tags["mood"] == "calm" and tags["artist"] == "TF" and tags["generation_id"] == record.generation_id
        assert record.cost_cents == price_cents(2.0)
    assert records[0].seed != records[1].seed


def test_killed_run_resumes_submitted_tracks_without_paying_again(tmp_path, api):
    row = planned()
    submitted = LedgerRecord(catalog="demo", track_id="t1", status=SUBMITTED, generation_id="earlier-0",
                             request_fingerprint=row.fingerprint)
    records, journal = run(row, api, tmp_path, previous=[submitted])
    assert api.posts == 0 and [j.status for j in journal] == ["ready"]
    assert records[0].status == "ready" and records[0].generation_id == "earlier-0"


def test_out_of_funds_stops_new_submissions(tmp_path, tmp_path_factory):
    api = FakeHostedApi(b"", submit_status=402)
    rows = plan_rows([BriefRow(i, f"t{i}", "Calm", TextToMusicRequest(prompt="calm piano", seed=i), {})
                      for i in (1, 2)], "demo", PROVIDER.name, False)
    first, second = run(rows, api, tmp_path, settings=QUICK.model_copy(update={"submit_workers": 1}))[0]
    assert first.status == second.status == "skipped" and api.posts == 1
    assert "insufficient balance" in second.error


def test_bad_request_fails_the_row_and_bad_key_stops_the_run(tmp_path):
    records, _ = run(planned(), FakeHostedApi(b"", submit_status=400), tmp_path)
    assert records[0].status == "failed" and "rejected by the provider" in records[0].error
    with pytest.raises(Unauthorized) as info:
        run(planned(), FakeHostedApi(b"", submit_status=401), tmp_path)
    assert "vbt_secret" not in str(info.value)


def test_budget_is_a_hard_cap_by_worst_case_cost():
    settings = PipelineSettings(max_minutes_per_song=5)  # hosted: 5 min = $1.00 per song at most
    rows = plan_rows([BriefRow(i, f"t{i}", "n", TextToMusicRequest(prompt="p", num_songs=1 + (i == 2)))
                      for i in range(1, 5)], "demo", "h", False)
    fits, over = within_budget(rows, 300, settings, PROVIDER)
    assert [r.track_id for r in fits] == ["t1", "t2"] and [r.track_id for r in over] == ["t3", "t4"]
    assert within_budget(rows, None, settings, PROVIDER) == (rows, [])


def test_metering_takes_slots_in_batches_and_covers_every_request():
    from tasks.provider.metering import BatchedThrottle, batch_size

    taken = []
    throttle = BatchedThrottle(taken.append, batch=10)
    threads = [threading.Thread(target=lambda: [throttle() for _ in range(5)]) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken == [10, 10, 10] and throttle.acquired >= 25
    assert batch_size(PipelineSettings(requests_per_window=100)) == 10
    assert batch_size(PipelineSettings(requests_per_window=5)) == 1  # a tiny limit is metered one by one


def test_lost_provider_while_waiting_is_picked_up_next_run_not_paid_again(tmp_path, api, monkeypatch):
    monkeypatch.setattr("tenacity.nap.time.sleep", lambda s: None)
    row = planned()
    first_api = FakeHostedApi(api.audio)

    def unreachable_polls(request):
        if request.method == "GET":
            raise httpx.ConnectError("down", request=request)
        return first_api(request)

    records, journal = run(row, unreachable_polls, tmp_path)
    assert records[0].status == "failed" and records[0].resume == "poll", records[0].error
    assert "provider unavailable" in records[0].error
    assert records[0].generation_id == journal[1].generation_id == "gen1-0"
    again, _ = run(row, api, tmp_path, previous=[records[0]])
    assert api.posts == 0 and again[0].status == "ready" and again[0].generation_id == "gen1-0"


def test_rerender_names_songs_made_by_another_engine_version():
    from tasks.catalog.rerender import engine_changed

    def rec(path, version):
        return LedgerRecord(catalog="demo", track_id=path, status="ready", audio_path=f"{path}.wav",
                            engine_version=version)

    originals = [rec("a", "2026.01.01"), rec("b", "2026.11.24"), rec("c", "")]  # c: a provider without versions
    new = [rec("a", "2026.11.24"), rec("b", "2026.11.24"), rec("c", "2026.11.24")]
    assert engine_changed(new, originals) == {"a": ("2026.01.01", "2026.11.24")}


def test_a_key_refused_while_polling_stops_the_run_and_keeps_the_paid_track_resumable(tmp_path, api):
    """Before: a 401 on a poll was caught as a wait failure and the run went on with the key refused."""

    def refused_polls(request):
        if request.method == "GET" and not request.url.path.startswith("/files/"):
            return httpx.Response(401, json={"success": False, "error": {"code": "unauthorized",
                                                                          "message": "key revoked"}})
        return api(request)

    journal = []
    client = TextMusicClient(PROVIDER.base_url, "vbt_secret", profile=quick_profile(), settings=FAST,
                             transport=httpx.MockTransport(refused_polls))
    from tasks.generation.machinery import Generation
    from tasks.run import RunOptions
    from tests.support.generation import CATALOG, group

    with pytest.raises(Unauthorized), Generation(client, tmp_path, CATALOG, PROVIDER, client.profile, QUICK,
                                                 RunOptions(), journal.extend, 0.25) as generation:
        generation.run([planned()], group([]))
    assert [j.status for j in journal] == [SUBMITTING, SUBMITTED] and journal[1].generation_id == "gen1-0"
