"""Synchronous providers (ElevenLabs Music, Stable Audio, MiniMax): the submission's answer carries the audio
itself. Over real loopback HTTP against a stand-in that answers so: each row is POSTed once and never polled,
journaled as paid before its body is read, delivered from `.partial/` and charged once; an answer cut off
mid-body (or over its limits, or not decodable) is `lost` with its cost kept, and is not sent again by a second
run unless the user asks with --regenerate-lost."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tasks.catalog.ledger import SUBMITTED, SUBMITTING, LedgerRecord
from tasks.delivery.place import PARTIAL_DIR
from tasks.intake.plan import plan_rows
from tasks.intake.validate import BriefRow
from tasks.run import RunOptions
from tests.support.generation import QUICK, quick_profile, run_rows
from textmusic.client import TextMusicClient, Unauthorized
from textmusic.contract import TextToMusicRequest
from textmusic.providers import Profile, Synchronous
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import Shape, StandIn, song_price_cents

API = TextMusicSettings(max_attempts=3, poll_deadline_seconds=30)


def rows(n: int, fmt: str = "flac") -> list:
    brief = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(
        prompt=f"warm synth pad {i}", seed=100 + i, output_format=fmt), {})  # type: ignore[arg-type]
        for i in range(1, n + 1)]
    return plan_rows(brief, "demo", "hosted", False)


def sync_profile(audio: str = "body") -> Profile:
    return quick_profile(sync=Synchronous(audio=audio, field=["data.audio"]))  # type: ignore[arg-type]


def run(api: StandIn, profile: Profile, planned: list, out: Path, previous: list[LedgerRecord] | tuple = (),
        options: RunOptions | None = None) -> tuple[list[LedgerRecord], list[LedgerRecord]]:
    profile = profile.model_copy(update={"base_url": api.base_url})
    with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
        return run_rows(planned, client, out, previous, settings=QUICK, options=options)


def methods(api: StandIn) -> list[str]:
    return sorted({method for method, *_ in api.requests})


@pytest.mark.parametrize("audio", ["body", "hex", "base64"])
def test_each_row_is_posted_once_never_polled_and_delivered_from_the_answer(tmp_path: Path, audio: str) -> None:
    with StandIn(Shape(sync=audio, seconds_to_ready=0.2, duration_field="duration_seconds")) as api:  # type: ignore[arg-type]
        records, journal = run(api, sync_profile(audio), rows(3), tmp_path)
        assert [r.status for r in records] == ["ready"] * 3, [r.error for r in records]
        assert len(api.posts) == 3 and methods(api) == ["POST"]  # no status request, no download
        assert {r.generation_id for r in records} == {song for song in api._songs}  # the answer's request-id
        assert sum(r.cost_cents for r in records) == api.charged_cents == 3 * song_price_cents(10.0)
        for record in records:
            assert (tmp_path / record.audio_path).stat().st_size > 10_000
            assert 9.5 < record.duration_seconds < 10.5
            # paid before its body was read: SUBMITTING, then SUBMITTED with the generation's id, then ready
            mine = [r.status for r in journal if r.track_id == record.track_id]
            assert mine[:2] == [SUBMITTING, SUBMITTED] and mine[-1] == "ready"
    assert not any((tmp_path / PARTIAL_DIR).iterdir())


def test_an_answer_cut_off_mid_body_is_lost_with_its_cost_and_never_posted_again_unasked(tmp_path: Path) -> None:
    with StandIn(Shape(sync="body", seconds_to_ready=0.1, sync_cut_after=20_000)) as api:
        records, journal = run(api, sync_profile(), rows(2), tmp_path)
        assert [(r.status, r.resume) for r in records] == [("failed", "lost")] * 2
        assert all("did not come whole after" in r.error for r in records)
        assert all(r.at_risk_cents == song_price_cents(QUICK.max_minutes_per_song * 60) for r in records)
        assert [r.status for r in journal if r.track_id == "t1"][:2] == [SUBMITTING, SUBMITTED]
        assert not any((tmp_path / PARTIAL_DIR).iterdir())  # no half file left behind
        assert not list(tmp_path.glob("*.flac"))

        api.shape = Shape(sync="body", seconds_to_ready=0.1)  # the provider answers whole again
        again, _ = run(api, sync_profile(), rows(2), tmp_path, journal)
        assert [r.resume for r in again] == ["lost", "lost"] and len(api.posts) == 2  # held, not paid twice

        regenerated, _ = run(api, sync_profile(), rows(2), tmp_path, journal, RunOptions(regenerate_lost=True))
        assert [r.status for r in regenerated] == ["ready", "ready"] and len(api.posts) == 4


def test_a_run_killed_while_the_audio_arrived_leaves_it_lost_and_the_next_run_pays_nothing(tmp_path: Path) -> None:
    """What a kill leaves in the journal (the row SUBMITTED, paid, no audio): the next run cannot ask for it
    again (a synchronous provider has no status endpoint), so it is reported lost, never polled nor re-sent."""
    with StandIn(Shape(sync="body", seconds_to_ready=0.1)) as api:
        _, journal = run(api, sync_profile(), rows(1), tmp_path)
        killed = [r for r in journal if r.status == SUBMITTED]
        records, _ = run(api, sync_profile(), rows(1), tmp_path / "again", killed)
        assert [(r.status, r.resume, r.generation_id) for r in records] == [("failed", "lost",
                                                                             killed[0].generation_id)]
        assert records[0].at_risk_cents > 0 and len(api.posts) == 1 and methods(api) == ["POST"]


@pytest.mark.parametrize("shape", [
    Shape(sync="hex", seconds_to_ready=0.1, audio_bytes=b"\x00" * (4 << 20)),  # over what 1 s of flac may weigh
    Shape(sync="hex", seconds_to_ready=0.1, sync_id_header=""),  # paired with a profile reading base64: not hex
    # a gzip bomb: 64 MB of zeros in ~64 KB on the wire, the answer itself (the profile reads the raw body)
    Shape(sync="body", seconds_to_ready=0.1, audio_bytes=b"\x00" * (64 << 20), content_encoding="gzip"),
], ids=["over-the-limit", "not-decodable", "gzip-bomb"])
def test_audio_that_cannot_be_taken_whole_is_lost_never_retried(tmp_path: Path, shape: Shape) -> None:
    profile = sync_profile("base64" if shape.audio_bytes is None else shape.sync or "body")
    short = QUICK.model_copy(update={"max_minutes_per_song": 1 / 60})  # the longest song 1 s: ~200 kB of flac
    with StandIn(shape) as api:
        profile = profile.model_copy(update={"base_url": api.base_url})
        with TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API) as client:
            records, _ = run_rows(rows(1), client, tmp_path, settings=short)
        assert [(r.status, r.resume) for r in records] == [("failed", "lost")], records[0].error
        assert "did not come whole" in records[0].error
        assert len(api.posts) == 1 and records[0].at_risk_cents > 0
        assert not any((tmp_path / PARTIAL_DIR).iterdir())
        assert records[0].generation_id.startswith("sync-") or records[0].generation_id in api._songs


def test_a_refused_key_stops_the_run_before_anything_is_paid(tmp_path: Path) -> None:
    with StandIn(Shape(sync="body", seconds_to_ready=0.1)) as api:
        profile = sync_profile().model_copy(update={"base_url": api.base_url})
        journal: list[LedgerRecord] = []
        with TextMusicClient(api.base_url, "not-the-key", profile=profile, settings=API) as client, \
                pytest.raises(Unauthorized):
            run_rows(rows(1), client, tmp_path, settings=QUICK)
        assert api.charges == [] and len(api.posts) == 1  # refused once, never sent again
        assert SUBMITTED not in [r.status for r in journal]


def test_a_key_echoed_in_the_id_header_never_names_the_generation(tmp_path: Path) -> None:
    with StandIn(Shape(sync="body", seconds_to_ready=0.1, sync_echo_key=True)) as api:
        records, journal = run(api, sync_profile(), rows(1), tmp_path)
        assert records[0].status == "ready" and records[0].generation_id.startswith("sync-")
        assert not any(api.api_key in r.model_dump_json() for r in [*records, *journal])


def test_a_sync_table_survives_to_toml() -> None:
    profile = sync_profile("base64").model_copy(update={"sync": Synchronous(
        audio="base64", field=["data.audio", "audio"], id_header=["x-id"], timeout_seconds=120)})
    assert Profile.model_validate(tomllib.loads(profile.to_toml())) == profile
