"""The pipeline's generation against hosted providers we did not write: stand-ins on loopback answering in
the shapes the hosted docs allow (textmusic/testing/standins.py). For every shape each row is POSTed (accepted) once
and every song is delivered; the shapes that cannot be read are POSTed once and reported, never paid twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from tasks.delivery.tagging import read_tags
from tasks.intake.plan import plan_rows
from tasks.intake.validate import BriefRow
from tasks.run import RunOptions
from tests.support.generation import QUICK, quick_profile, run_rows
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.providers import Profile, load_profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import Shape, StandIn

API = TextMusicSettings(max_attempts=4, poll_deadline_seconds=60)


def brief_rows(n: int = 3) -> list:
    """n rows, the last asking for two songs."""
    rows = [BriefRow(i, f"t{i}", f"Row {i}", TextToMusicRequest(
        prompt=f"calm piano {i}", seed=10 * i, num_songs=2 if i == n else 1, output_format="flac"), {})
        for i in range(1, n + 1)]
    return plan_rows(rows, "demo", "hosted", False)


def accepted_per_row(api: StandIn) -> Counter[str]:
    return Counter(body["name"] for body in api.accepted)


def generate(api: StandIn, out: Path, profile: Profile | None = None, previous=(), options=None,
             n: int = 3, settings=QUICK):
    profile = (profile or quick_profile()).model_copy(update={"base_url": api.base_url})
    client = TextMusicClient(api.base_url, api.api_key, profile=profile, settings=API)
    with client:
        return run_rows(brief_rows(n), client, out, previous, options=options, settings=settings)


SHAPES = {
    "documented (no status, audio when ready)": Shape(status_field=None, seconds_to_ready=0.4),
    "other status words": Shape(pending_words=("queued", "processing"), ready_word="completed",
                                seconds_to_ready=0.6),
    "202 Accepted": Shape(submit_status=202, seconds_to_ready=0.3),
    "201 Created, ready at once": Shape(submit_status=201, seconds_to_ready=0.0),
    "audio behind a signed redirect": Shape(audio="redirect", seconds_to_ready=0.3),
    "audio on a CDN": Shape(audio="cdn", seconds_to_ready=0.3),
    "gzip on the wire": Shape(content_encoding="gzip", seconds_to_ready=0.3, audio="redirect"),
    "brotli on the wire": Shape(content_encoding="br", seconds_to_ready=0.3),
    "chunked, gzip, no Content-Length": Shape(chunked=True, content_encoding="gzip", seconds_to_ready=0.3),
    "numbers as strings": Shape(numbers_as_strings=True, duration_field="duration", cost_field="cost_cents",
                                seconds_to_ready=0.3, pending_words=("in_progress",), ready_word="succeeded"),
    "key in X-API-Key": Shape(auth_header="X-API-Key", seconds_to_ready=0.3),
    "Retry-After as an HTTP date": Shape(rate_limit=(6, 1.0), retry_after_date=True, seconds_to_ready=0.3),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_shape_delivers_every_song_and_posts_each_row_once(name: str, tmp_path: Path) -> None:
    shape = SHAPES[name]
    profile = quick_profile()
    if shape.auth_header != "Authorization":
        profile = profile.model_copy(update={"auth_header": shape.auth_header, "auth_scheme": ""})
    with StandIn(shape) as api:
        records, _ = generate(api, tmp_path, profile)
        assert [r.status for r in records] == ["ready"] * 4, [r.error for r in records]
        assert accepted_per_row(api) == {"Row 1": 1, "Row 2": 1, "Row 3": 1}
        assert api.cdn_auth_seen == []  # the key never left the API's origin
        assert sum(r.cost_cents for r in records) == api.charged_cents
    for record in records:
        assert read_tags(tmp_path / record.audio_path)["generation_id"] == record.generation_id
        assert abs(record.duration_seconds - shape.audio_seconds) < 0.25
    assert not list(tmp_path.glob(".partial/*"))


def test_a_profile_file_reads_a_provider_with_other_paths_and_names(tmp_path: Path) -> None:
    shape = Shape(status_path="/v2/jobs/{id}", tracks_key="jobs", id_field="job_id", audio_field="file",
                  status_field="state", pending_words=("brewing",), ready_word="served", seconds_to_ready=0.3)
    toml = tmp_path / "brewery.toml"
    toml.write_text('name = "brewery"\nbase_url = "http://127.0.0.1:1"\nstatus_path = "/v2/jobs/{id}"\n'
                    'expected_ready_seconds = 0.4\n[answer]\ntracks = "jobs"\nid = "job_id"\nstatus = "state"\n'
                    'audio_url = "file"\n[status_words]\nbrewing = "pending"\nserved = "ready"\n')
    with StandIn(shape) as api:
        records, _ = generate(api, tmp_path / "out", load_profile(toml))
        assert [r.status for r in records] == ["ready"] * 4
        assert accepted_per_row(api) == {"Row 1": 1, "Row 2": 1, "Row 3": 1}


@pytest.mark.parametrize("unreadable", ["html", "truncated", "success_false"])
def test_an_unreadable_2xx_is_posted_once_reported_and_kept_for_support(unreadable: str, tmp_path: Path) -> None:
    shape = Shape(success_false_in_2xx=True) if unreadable == "success_false" else Shape(unreadable_submit=unreadable)  # type: ignore[arg-type]
    with StandIn(replace(shape, seconds_to_ready=0.2)) as api:
        records, _ = generate(api, tmp_path)
        assert len(api.posts) == 3 and accepted_per_row(api).total() <= 3
        assert all(r.status == "failed" and r.resume == "unanswered" and r.at_risk_cents > 0 for r in records)
        assert all(("unreadable" in r.error) or ("success: false" in r.error) for r in records)
        for record in records:
            kept = (tmp_path / record.support_file).read_text()
            assert api.api_key not in kept and kept
        again, _ = generate(api, tmp_path, previous=records)  # a later run: not sent again
        assert len(api.posts) == 3 and [r.resume for r in again] == ["unanswered"] * 3
        api.shape = replace(api.shape, unreadable_submit=None, success_false_in_2xx=False)
        asked, _ = generate(api, tmp_path, previous=again, options=RunOptions(resubmit_unanswered=True))
        assert len(api.posts) == 6 and [r.status for r in asked] == ["ready"] * 4


def test_audio_gone_is_reported_lost_with_its_cost_and_regenerated_only_when_asked(tmp_path: Path) -> None:
    with StandIn(Shape(gone_audio=True, seconds_to_ready=0.2)) as api:
        records, _ = generate(api, tmp_path, n=1)
        assert [(r.status, r.resume) for r in records] == [("failed", "lost")] * 2 and "gone" in records[0].error
        # The stand-in reports neither cost nor duration: the ledger holds the worst case as money at risk.
        assert sum(r.cost_cents + r.at_risk_cents for r in records) >= api.charged_cents > 0
        again, _ = generate(api, tmp_path, previous=records, n=1)
        assert len(api.posts) == 1 and [r.resume for r in again] == ["lost"] * 2
        api.shape = replace(api.shape, gone_audio=False)
        fresh, _ = generate(api, tmp_path, previous=again, n=1, options=RunOptions(regenerate_lost=True))
        assert len(api.posts) == 2 and [r.status for r in fresh] == ["ready"] * 2


def test_unknown_status_words_count_as_pending_until_the_deadline(tmp_path: Path) -> None:
    with StandIn(Shape(pending_words=("brewing",), ready_word="served", seconds_to_ready=0.2)) as api:
        client = TextMusicClient(api.base_url, api.api_key, profile=quick_profile(),
                                 settings=API.model_copy(update={"poll_deadline_seconds": 1.5}))
        with client:
            records, _ = run_rows(brief_rows(1), client, tmp_path)
        assert len(api.posts) == 1
        assert records[0].status == "failed" and records[0].resume == "poll" and "timeout" in records[0].error


@pytest.mark.parametrize("mode", ["503", "refuse"])
def test_an_outage_mid_run_is_ridden_out_and_each_row_charged_once(mode: str, tmp_path: Path) -> None:
    settings = QUICK.model_copy(update={"outage_budget_seconds": 30.0, "outage_probe_seconds": 0.5,
                                        "initial_in_flight": 2})
    with StandIn(Shape(seconds_to_ready=0.8)) as api:
        import threading

        threading.Timer(0.5, api.outage, args=(3.0, mode)).start()
        records, _ = generate(api, tmp_path, n=8, settings=settings)
        assert [r.status for r in records] == ["ready"] * 9, [r.error for r in records]
        assert set(accepted_per_row(api).values()) == {1} and len(accepted_per_row(api)) == 8
        assert sum(r.cost_cents for r in records) == api.charged_cents


def test_a_deleted_file_of_a_paid_track_is_downloaded_again_not_paid_again(tmp_path: Path) -> None:
    with StandIn(Shape(seconds_to_ready=0.2)) as api:
        records, _ = generate(api, tmp_path, n=1)
        (tmp_path / records[1].audio_path).unlink()
        again, _ = generate(api, tmp_path, previous=records, n=1)
        assert len(api.posts) == 1 and [r.status for r in again] == ["ready"] * 2
        assert [r.generation_id for r in again] == [r.generation_id for r in records]
        assert (tmp_path / records[1].audio_path).is_file()
