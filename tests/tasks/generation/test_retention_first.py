"""Short retention (Replicate keeps outputs an hour): audio that will soon be gone is fetched before anything new is
asked. Over real loopback HTTP with a slow CDN and one delivery worker, the stand-in counts, at each submission, the
songs it had told ready whose download had not begun: with a profile keeping audio an hour that count stays at zero
(give or take a poll answered while a submission was on its way); with a week's retention the same run submits
while ready audio waits."""

from __future__ import annotations

from pathlib import Path

from tasks.intake.plan import plan_rows
from tasks.intake.validate import BriefRow
from tests.support.generation import QUICK, quick_profile, run_rows
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import Shape, StandIn

API = TextMusicSettings(max_attempts=3, poll_deadline_seconds=60)
SETTINGS = QUICK.model_copy(update={"delivery_workers": 1, "initial_in_flight": 6,
                                    "master": "none"})  # mastering is not what is measured


def waiting_at_posts(tmp_path: Path, retention_seconds: float) -> list[int]:
    brief = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(prompt=f"night drive {i}", seed=i,
                                                                 output_format="mp3"), {})  # type: ignore[arg-type]
             for i in range(1, 11)]
    with StandIn(Shape(seconds_to_ready=0.5, audio_seconds=2.0, audio_delay_seconds=0.4)) as api:
        profile = quick_profile(retention_seconds=retention_seconds, max_in_flight=6, base_url=api.base_url)
        with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
            records, _ = run_rows(plan_rows(brief, "demo", "hosted", False), client, tmp_path, settings=SETTINGS)
        assert [r.status for r in records] == ["ready"] * 10, [r.error for r in records]
        return api.ready_unfetched_at_posts()


def test_short_lived_audio_is_fetched_before_new_rows_are_submitted(tmp_path: Path) -> None:
    hour = waiting_at_posts(tmp_path / "hour", 3600)
    week = waiting_at_posts(tmp_path / "week", 7 * 86400)
    assert max(hour) <= 1, hour
    assert max(week) >= 3, week  # the same run with long retention lets ready audio wait
