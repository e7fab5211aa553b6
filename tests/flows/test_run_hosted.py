"""`trackfoundry run` against hosted stand-ins, as a user runs it: the first minute (checks before Prefect
boots), exit codes a scheduler can act on, and the budget with tracks already paid by an earlier run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from tasks.catalog.ledger import JOURNAL, SUBMITTED
from tasks.delivery.credentials import TRAINED_ALGORITHMIC_MEDIA, check_credentials
from tasks.delivery.tagging import read_tags
from tasks.generation.records import base_record
from tasks.intake.plan import max_cost_cents, plan_rows
from tasks.intake.validate import BriefRow
from tasks.run import RunOptions
from tasks.settings import PipelineSettings
from tests.support.generation import CATALOG
from tests.support.runs import brief, trackfoundry
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.pricing import SEED_PRICE
from textmusic.testing.standins import Shape, StandIn


def test_the_run_cannot_start_says_so_in_one_line_before_prefect_boots(tmp_path: Path) -> None:
    with StandIn(Shape()) as api:
        path = brief(tmp_path, ["a"])
        started = time.monotonic()
        refused = trackfoundry(tmp_path, api, path, key="vbt_wrong_key_0123456789")
        assert refused.returncode == 1 and "refused the key" in refused.stderr
        assert "vbt_wrong_key_0123456789" not in refused.stderr + refused.stdout
        missing = trackfoundry(tmp_path, api, tmp_path / "nope.csv")
        assert missing.returncode == 1 and "not found" in missing.stderr
        assert "Traceback" not in refused.stderr + missing.stderr
        assert "Starting temporary server" not in refused.stderr + missing.stderr  # Prefect never booted
        assert not api.posts
    down = trackfoundry(tmp_path, api, path)  # the stand-in has stopped: nothing listens there
    assert down.returncode == 1 and "does not answer" in down.stderr
    assert time.monotonic() - started < 60


def test_exit_codes_all_delivered_then_rows_unanswered_with_the_money_at_risk(tmp_path: Path) -> None:
    with StandIn(Shape(submit_status=202, pending_words=("processing",), ready_word="completed",
                       seconds_to_ready=0.5, audio="redirect", content_encoding="gzip")) as api:
        done = trackfoundry(tmp_path, api, brief(tmp_path, ["a", "b"]))
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(api.posts) == 2 and api.cdn_auth_seen == []
        # A hosted provider's songs come from a trained model: so say the ledger, the tags and the credentials.
        delivered = pd.read_csv(tmp_path / "out" / "ledger.csv")
        assert set(delivered.digital_source_type) == {TRAINED_ALGORITHMIC_MEDIA}
        assert set(delivered.credentials) == {"embedded"} and "verified: 2 of 2 files" in done.stderr
        found = check_credentials(tmp_path / "out" / delivered.audio_path[0], "flac")
        assert found.state == "untrusted" and found.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
        assert read_tags(tmp_path / "out" / delivered.audio_path[0])["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    with StandIn(Shape(unreadable_submit="html")) as api:
        out = tmp_path / "second"
        out.mkdir()
        failed = trackfoundry(out, api, brief(out, ["c"]))
        assert failed.returncode == 3, failed.stderr[-3000:]
        assert "may have been charged" in failed.stderr and "--resubmit-unanswered" in failed.stderr
        assert "Finished in state Failed('1 rows not delivered" in failed.stderr  # the flow run's state too
        again = trackfoundry(out, api, brief(out, ["c"]))
        assert again.returncode == 3 and len(api.posts) == 1  # not sent again without the option
        ledger = pd.read_csv(out / "out" / "ledger.csv")
        assert list(ledger.resume) == ["unanswered"] and ledger.at_risk_cents[0] > 0


def test_budget_never_skips_tracks_already_paid_and_the_run_cost_counts_this_run_only(tmp_path: Path) -> None:
    """Before: the paid row's worst case was charged to the budget again, it was skipped without its track
    id, and the next run paid for it again; the run cost also counted the earlier run's tracks."""
    with StandIn(Shape(seconds_to_ready=0.3, cost_field="cost_cents")) as api:
        path = brief(tmp_path, ["new", "paid"])
        planned = plan_rows([BriefRow(2, "paid", "Song paid", TextToMusicRequest(
            prompt="calm piano paid", seed=2, output_format="flac"), {})], "demo", "127.0.0.1", False)[0]
        with TextMusicClient(api.base_url, api.api_key) as client:
            (track,) = client.submit(planned.request).tracks  # an earlier run paid, then was killed
        out = tmp_path / "out"
        out.mkdir()
        from tasks.run import Provider

        provider = Provider("127.0.0.1", api.base_url, False, SEED_PRICE)
        earlier = base_record(planned, CATALOG, provider).model_copy(update={
            "catalog": "demo", "status": SUBMITTED, "generation_id": track.id, "run_id": "earlier"})
        (out / JOURNAL).write_text(earlier.model_dump_json() + "\n")
        worst = max_cost_cents(planned.request, PipelineSettings(), provider)
        run = trackfoundry(tmp_path, api, path, "--budget", f"{worst / 100:.2f}")
        assert run.returncode == 0, run.stderr[-3000:]
        assert [p["name"] for p in api.posts] == ["Song paid", "Song new"]  # the earlier one, then only "new"
        ledger = pd.read_csv(out / "ledger.csv").set_index("track_id")
        assert list(ledger.status) == ["ready", "ready"] and ledger.generation_id["paid"] == track.id
        assert json.dumps(RunOptions().regenerate_lost) == "false"
        assert f"{ledger.cost_usd['new']:.2f}" in run.stderr.split("run_cost_usd")[-1]


def test_a_signing_certificate_without_its_key_stops_the_run_before_anything_is_paid(tmp_path: Path) -> None:
    with StandIn(Shape()) as api:
        cert = tmp_path / "studio.pem"
        cert.write_text("-----BEGIN CERTIFICATE-----\n")
        refused = trackfoundry(tmp_path, api, brief(tmp_path, ["a"]), TRACKFOUNDRY_SIGNING_CERT_FILE=str(cert))
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert "the run cannot start" in refused.stderr and "without its key" in refused.stderr
        assert "Starting temporary server" not in refused.stderr and not api.posts
