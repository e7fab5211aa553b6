"""Validation knows the active provider's profile: its request mapping's limits reject a row (row, column,
reason) while the good rows go on, and what a row loses there (no seed) is a warning the user sees before
paying, in the result, the report and the command line."""

from __future__ import annotations

import pytest

from tasks.intake.brief import load_brief
from tasks.intake.validate import grouped_warnings, validate_brief
from tests.support.request_maps import STYLED_PROFILE, styled_profile
from textmusic.providers import load_profile

BRIEF = """track_id,name,prompt,tags,lyrics,seed,output_format,output_bit_rate,duration_seconds
ok-1,One,calm piano,lofi,,1,mp3,128,30
long-2,Two,calm piano,,,2,mp3,,400
flac-3,Three,calm piano,,,3,flac,,30
sung-4,Four,calm piano,,la la,4,mp3,,30
ok-5,Five,warm pads,,,,wav,,60
"""
NO_SEED = "this provider takes no seed: re-renders will not be reproducible"


@pytest.fixture(scope="module")
def brief(tmp_path_factory):
    path = tmp_path_factory.mktemp("brief") / "brief.csv"
    path.write_text(BRIEF, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def validation(brief, report):
    return validate_brief(load_brief(brief), report, styled_profile())


def test_rows_outside_the_providers_limits_are_rejected_with_row_column_and_reason(validation):
    assert [(r.row, r.track_id, r.column, r.reason) for r in validation.rejections] == [
        (2, "long-2", "duration_seconds", "this provider makes songs of at most 300 s (got 400)"),
        (3, "flac-3", "output_format", "this provider takes no flac (it takes mp3:128, mp3:192, wav)"),
        (4, "sung-4", "lyrics", "this provider takes no lyrics: the song would be instrumental"),
    ]


def test_the_good_rows_still_run(validation):
    assert [r.track_id for r in validation.rows] == ["ok-1", "ok-5"]


def test_no_seed_mapping_warns_per_row_without_rejecting(validation):
    assert [(w.row, w.track_id, w.column, w.reason) for w in validation.warnings] == [
        (1, "ok-1", "seed", NO_SEED), (5, "ok-5", "seed", NO_SEED)]
    assert grouped_warnings(validation.warnings) == [f"seed: {NO_SEED} (rows 1, 5)"]


def test_the_report_shows_the_warning_and_the_providers_rules(validation, report):
    page = (report / "index.html").read_text(encoding="utf-8")
    assert f"seed: {NO_SEED} (rows 1, 5)" in page
    assert "provider styled (its request mapping)" in page and "duration_seconds at most 300 s" in page


def test_without_a_profile_or_a_request_table_nothing_changes(brief):
    table = load_brief(brief)
    plain = validate_brief(table)
    assert not plain.rejections and not plain.warnings and len(plain.rows) == 5
    shipped = validate_brief(table, profile=load_profile("verbatik"))
    assert shipped.rows == plain.rows and not shipped.rejections and not shipped.warnings


def test_the_command_line_validates_against_the_configured_provider(brief, tmp_path, monkeypatch):
    """`trackfoundry validate` with TRACKFOUNDRY_PROVIDER at a profile: its rejections, and its warning once."""
    from typer.testing import CliRunner

    from flows.cli import app

    profile = tmp_path / "styled.toml"
    profile.write_text(STYLED_PROFILE, encoding="utf-8")
    monkeypatch.setenv("TRACKFOUNDRY_PROVIDER", str(profile))
    result = CliRunner().invoke(app, ["validate", str(brief)])
    assert result.exit_code == 2
    warning, _, table = " ".join(result.output.split()).partition("(rows 1, 5)")
    assert "takes no seed" in warning and "takes no seed" not in table
    assert all(t in table for t in ("long-2", "flac-3", "sung-4")) and "ok-1" not in table
