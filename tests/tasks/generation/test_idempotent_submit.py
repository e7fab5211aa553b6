"""An answer lost after the local service accepted a submission costs nothing extra: the Idempotency-Key
extension, over real HTTP, from the client's retry and from a run killed before the answer was journaled."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tasks.catalog.ledger import SUBMITTED, SUBMITTING, LedgerRecord
from tasks.intake.plan import plan_rows
from tasks.intake.validate import BriefRow
from tasks.run import Provider
from tests.support.generation import CATALOG, run_rows
from tests.support.service import Server, create_key, key_id, usage_json, wait_ready
from textmusic.client import TextMusicClient, TextMusicError
from textmusic.contract import SUBMIT_PATH, TextToMusicRequest
from textmusic.pricing import SEED_PRICE
from textmusic.settings import TextMusicSettings

FAST = TextMusicSettings(poll_initial_seconds=0.05, poll_max_interval_seconds=0.2, poll_deadline_seconds=120)
REQUEST = TextToMusicRequest(prompt="calm piano", seed=3, duration_seconds=10, output_format="mp3")


class LoseFirstAnswer(httpx.HTTPTransport):
    """Delivers the first POST to the service, then drops its answer as a broken connection would."""

    def __init__(self) -> None:
        super().__init__()
        self.posts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path == SUBMIT_PATH:
            self.posts += 1
            if self.posts == 1:
                response.read()
                response.close()
                raise httpx.ReadError("connection reset after the request was sent", request=request)
        return response


def charged_tracks(server: Server, key: str) -> list[str]:
    return sorted(c["track_id"] for c in usage_json(server.data)[key_id(key)]["charges"])


def test_client_retries_a_lost_answer_only_with_an_idempotency_key(server: Server) -> None:
    key = create_key(server.data, 5.0)
    lossy = LoseFirstAnswer()
    with TextMusicClient(server.base, key, settings=FAST, local_extensions=True, transport=lossy) as client:
        response = client.submit(REQUEST, idempotency_key="lost-answer-1")
        assert lossy.posts == 2 and client.attempts == 2
        tracks = client.wait(response.tracks)
    assert [t.status for t in tracks] == ["ready"]
    assert charged_tracks(server, key) == [tracks[0].id]  # the retry got the first submission's track

    without = LoseFirstAnswer()
    with (TextMusicClient(server.base, key, settings=FAST, local_extensions=True, transport=without) as client,
          pytest.raises(TextMusicError, match="not sent again")):
        client.submit(REQUEST)
    assert without.posts == 1


def test_run_killed_before_the_answer_was_journaled_resumes_without_paying_again(server: Server,
                                                                                  tmp_path: Path) -> None:
    key = create_key(server.data, 5.0)
    provider = Provider("local", server.base, local_extensions=True, price=SEED_PRICE)
    (row,) = plan_rows([BriefRow(1, "t1", "Calm", REQUEST, {})], "demo", provider.name, True)
    with TextMusicClient(server.base, key, settings=FAST, local_extensions=True) as client:
        # The killed run: the key was journaled, the service accepted the request, the answer never landed.
        killed = LedgerRecord(catalog="demo", track_id="t1", status=SUBMITTING, idempotency_key="run1-t1",
                              request_fingerprint=row.fingerprint)
        accepted = client.submit(row.request, idempotency_key="run1-t1").tracks
        records, journal = run_rows([row], client, tmp_path, [killed], provider=provider, catalog=CATALOG)
    assert [(j.status, j.idempotency_key) for j in journal][:2] == [(SUBMITTING, "run1-t1"), (SUBMITTED, "run1-t1")]
    assert [r.status for r in records] == ["ready"], records[0].error
    assert records[0].generation_id == accepted[0].id and records[0].idempotency_key == "run1-t1"
    assert charged_tracks(server, key) == [accepted[0].id]
    assert records[0].cost_cents == usage_json(server.data)[key_id(key)]["charged_cents"]

    # A row whose known tracks failed gets a new key: a later run generates it anew, not replays.
    failed = [r.model_copy(update={"status": "failed", "resume": "", "error": "generation failed: x"})
              for r in records]
    with TextMusicClient(server.base, key, settings=FAST, local_extensions=True) as client:
        _, again = run_rows([row], client, tmp_path / "again", failed, provider=provider, catalog=CATALOG)
    assert again[0].idempotency_key not in ("", "run1-t1")
    wait_ready(server, key, [again[-1].generation_id])
    assert len(charged_tracks(server, key)) == 2
