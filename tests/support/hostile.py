"""What the tests run through the hostile stand-in provider (textmusic/testing/hostile.py, re-exported here):
rows planned for it, a run bounded in time, the key's spellings to look for, and plays a test picks by prompt."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tasks.catalog.ledger import LedgerRecord
from tasks.intake.plan import PlannedRow, plan_rows
from tasks.intake.validate import BriefRow
from tasks.settings import PipelineSettings
from tests.support.generation import CATALOG, run_rows
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest, price_cents
from textmusic.testing.hostile import API_KEY as API_KEY
from textmusic.testing.hostile import AUDIO_SECONDS as AUDIO_SECONDS
from textmusic.testing.hostile import STATUS_PREFIX as STATUS_PREFIX
from textmusic.testing.hostile import SUBMIT_PATH as SUBMIT_PATH
from textmusic.testing.hostile import Hostile as Hostile
from textmusic.testing.hostile import Play as Play
from textmusic.testing.hostile import Reply as Reply
from textmusic.testing.hostile import Song as Song
from textmusic.testing.hostile import client_for as client_for
from textmusic.testing.hostile import profile_toml as profile_toml

SETTINGS = PipelineSettings(outage_probe_seconds=0.2, outage_budget_seconds=2.0, initial_in_flight=8,
                            lost_confirm_polls=3, lost_confirm_seconds=0.6)


KEY_SPELLINGS = (API_KEY, f"Bearer {API_KEY}", quote(API_KEY, safe=""))


RUN_BOUND_SECONDS = 120  # no run below may take longer: past it, the run hangs


def rows(*prompts: str) -> list[PlannedRow]:
    briefs = [BriefRow(i + 1, f"t{i + 1}", f"Song {i + 1}",
                       TextToMusicRequest(prompt=p, seed=i + 1, output_format="wav")) for i, p in enumerate(prompts)]
    return plan_rows(briefs, CATALOG.name, "hostile", False)


def bounded_run(planned: list[PlannedRow], client: TextMusicClient, out: Path, previous: Any = (),
                settings: PipelineSettings = SETTINGS) -> tuple[list[LedgerRecord], list[LedgerRecord]]:
    """run_rows in a thread that must end within RUN_BOUND_SECONDS: a hang fails the test instead of the suite."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(run_rows(planned, client, out, previous,
                                                                     settings=settings)), daemon=True)
    worker.start()
    worker.join(RUN_BOUND_SECONDS)
    assert result, f"the run did not end within {RUN_BOUND_SECONDS} s"
    return result[0]


def assert_no_key(texts: list[str]) -> None:
    for text in texts:
        for spelling in KEY_SPELLINGS:
            assert spelling not in text, f"the key reached an output: {text[:300]!r}"


def every_file_text(root: Path) -> list[str]:
    return [p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file()]


def assert_money_sane(records: list[LedgerRecord], songs: int) -> None:
    worst = math.ceil(price_cents(PipelineSettings().max_minutes_per_song * 60) * 1.5)
    for record in records:
        assert 0 <= record.cost_cents <= worst, record
        assert record.duration_seconds is None or 0 <= record.duration_seconds <= 3600, record
        assert math.isfinite(record.cost_usd) and record.cost_usd >= 0
    assert sum(r.cost_cents for r in records) <= songs * worst


class EchoKey(Play):
    """Every error it can make carries the request's Authorization header, the bare key and its URL form."""

    def _echo(self, auth: str) -> str:
        return f"header was {auth!r}; key {auth.removeprefix('Bearer ')}; url ?key={quote(API_KEY, safe='')}"

    def submit(self, api: Hostile, body: Any, auth: str) -> Reply:
        prompt = str(body.get("prompt")) if isinstance(body, dict) else ""
        if "reject" in prompt:
            return Reply(400, {"success": False, "error": {"code": "invalid_input", "message": self._echo(auth)}})
        if "refuse" in prompt:
            return Reply(200, {"success": False, "error": {"message": self._echo(auth)}})
        if "unreadable" in prompt:
            api.accept(body, self)
            return Reply(200, raw=f"<html>accepted for {self._echo(auth)}</html>".encode(), media_type="text/html")
        return super().submit(api, body, auth)

    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        song = api.song(track_id)
        if song is not None and "fail" in song.prompt:
            return Reply(200, {"id": track_id, "status": "failed", "error": self._echo(auth)},
                         headers={"X-Echo": auth})
        return super().status(api, track_id, auth)

    def audio(self, api: Hostile, song: Song) -> Reply:
        if "cdn" in song.prompt:
            return Reply(403, raw=b"<Error>AccessDenied for token cdn-secret-token-77</Error>", media_type="text/xml")
        return super().audio(api, song)


class NeverReady(Play):
    ready_after = 1e9
