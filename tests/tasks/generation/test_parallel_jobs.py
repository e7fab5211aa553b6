"""A provider's cap on jobs it runs at once (`max_parallel_jobs`, Mureka and MusicGPT: ~10 per account) holds,
apart from the rate limit and our own rows in flight: over real loopback HTTP, the stand-in counts the songs it is
generating at each submission, and never sees more than the cap; without the cap the same run goes past it."""

from __future__ import annotations

from pathlib import Path

from tasks.intake.plan import plan_rows
from tasks.intake.validate import BriefRow
from tests.support.generation import QUICK, quick_profile, run_rows
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import Shape, StandIn

API = TextMusicSettings(max_attempts=3, poll_deadline_seconds=30)


def rows(songs: list[int]) -> list:
    brief = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(
        prompt=f"soft rain {i}", seed=i, num_songs=n, output_format="mp3"), {})  # type: ignore[arg-type]
        for i, n in enumerate(songs, start=1)]
    return plan_rows(brief, "demo", "hosted", False)


def peak(tmp_path: Path, cap: int | None, songs: list[int]) -> tuple[int, list]:
    with StandIn(Shape(seconds_to_ready=0.8, audio_seconds=2.0)) as api:
        profile = quick_profile(max_parallel_jobs=cap, base_url=api.base_url)
        with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
            records, _ = run_rows(rows(songs), client, tmp_path, settings=QUICK)
        return api.peak_running, records


def test_songs_running_at_the_provider_never_exceed_its_parallel_job_cap(tmp_path: Path) -> None:
    songs = [1, 2, 1, 1, 2, 1, 1, 1, 1, 1]  # 12 songs; the run's window starts at 8 rows in flight
    capped, records = peak(tmp_path / "capped", 3, songs)
    assert [r.status for r in records] == ["ready"] * 12, [r.error for r in records]
    assert capped <= 3
    uncapped, _ = peak(tmp_path / "uncapped", None, songs)
    assert uncapped > 3  # the cap, not the run's other bounds, held it
