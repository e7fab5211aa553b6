"""Per-row providers: what a brief's `provider` cell may name, how rows are planned, priced, metered and re-rendered
by the provider each names (the whole run: tests/flows/test_run_providers.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flows.produce_catalog import route_chunks
from tasks.catalog.ledger import LedgerRecord
from tasks.catalog.rerender import rerender_route
from tasks.intake.brief import load_brief
from tasks.intake.plan import max_cost_cents, plan_rows, within_budget
from tasks.intake.routes import DEFAULT_ROUTE, RouteError, Routes, key_env, listed_profiles
from tasks.intake.validate import validate_brief
from tasks.provider.connection import Connection, metered_by
from tasks.run import Provider
from tasks.settings import PipelineSettings
from textmusic.providers import LOCAL_PROFILE, load_profile


@pytest.fixture
def routes(tmp_path: Path) -> Routes:
    (tmp_path / "mine.toml").write_text('name = "mine"\nbase_url = "http://127.0.0.1:1"\n\n'
                                        '[price]\nmodel = "per_song"\ncents = 40\n')
    return Routes(load_profile("verbatik"), listed_profiles(f" {tmp_path / 'mine.toml'} ,"),
                  frozenset({"verbatik"}))


def test_a_cell_names_the_run_s_provider_a_listed_or_a_shipped_one(routes: Routes,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(key_env("mine"), "k1")
    monkeypatch.setenv(key_env("sunoapi-org"), "k2")
    assert [routes.route(c) for c in ("", "  ", "verbatik", "mine", "sunoapi-org")] == \
        [DEFAULT_ROUTE, DEFAULT_ROUTE, DEFAULT_ROUTE, "mine", "sunoapi-org"]
    assert routes.profile("mine").price.model == "per_song"
    assert key_env("sunoapi-org") == "TEXTMUSIC_API_KEY_SUNOAPI_ORG"
    monkeypatch.delenv(key_env("mine"))
    assert routes.route(LOCAL_PROFILE) == LOCAL_PROFILE  # the embedded service needs no key


@pytest.mark.parametrize(("cell", "said"), [
    ("nope", "no provider 'nope'"),
    ("/etc/evil.toml", "never named by path"),
    ("x" * 500, "at most 100 characters"),
    ("mine", "set TEXTMUSIC_API_KEY_MINE"),
    ("elevenlabs-music", "set TEXTMUSIC_API_KEY_ELEVENLABS_MUSIC"),
])
def test_a_cell_that_names_no_usable_provider_says_why(routes: Routes, cell: str, said: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(key_env("mine"), raising=False)
    monkeypatch.delenv(key_env("elevenlabs-music"), raising=False)
    with pytest.raises(RouteError, match=said):
        routes.route(cell)


def test_each_row_is_validated_planned_and_priced_by_its_own_provider(tmp_path: Path, routes: Routes,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(key_env("mine"), "k1")
    monkeypatch.setenv(key_env("elevenlabs-music"), "k2")
    brief = tmp_path / "brief.csv"
    pd.DataFrame([{"name": f"Song {i}", "seed": i, **row} for i, row in enumerate([
        {"track_id": "same", "prompt": "calm", "output_format": "wav", "provider": ""},
        {"track_id": "same.", "prompt": "calm", "output_format": "wav", "provider": "mine"},
        {"track_id": "e1", "prompt": "calm", "output_format": "wav", "provider": "elevenlabs-music"},  # no wav there
        {"track_id": "e2", "prompt": "calm", "output_format": "mp3", "provider": "elevenlabs-music"},
    ])]).to_csv(brief, index=False)
    validation = validate_brief(load_brief(brief), profile=routes)
    assert [(r.row, r.column) for r in validation.rejections] == [(3, "output_format")]
    assert validation.rejections[0].reason.startswith("at elevenlabs-music: ")
    assert [(w.row, w.column) for w in validation.warnings] == [(4, "seed")]  # said before paying, for its row
    assert [r.provider for r in validation.rows] == [DEFAULT_ROUTE, "mine", "elevenlabs-music"]
    providers = {route: Provider.of(routes.profile(route)) for route in ("mine", "elevenlabs-music")}
    planned = plan_rows(validation.rows, "demo", "api.example", False, routed=providers)
    assert [r.provider for r in planned] == [DEFAULT_ROUTE, "mine", "elevenlabs-music"]
    assert len({r.file_track.lower() for r in planned}) == 3  # one catalog: names unique across providers
    alone = plan_rows(validation.rows[1:2], "demo", "api.example", False)[0]
    assert alone.fingerprint != planned[1].fingerprint  # the provider is part of what shapes the audio
    everyone = {DEFAULT_ROUTE: Provider.of(routes.default), **providers}
    settings = PipelineSettings()
    worst = [max_cost_cents(r.request, settings, everyone[r.provider]) for r in planned]
    assert worst == [100, 40, 150]  # 5 minutes at $0.20, 40 cents a song at `mine`, 5 minutes at $0.30
    fits, over = within_budget(planned, sum(worst) - 1, settings, everyone)
    assert fits == planned[:2] and over == planned[2:]  # one cap, each row at its own price


def test_a_routed_provider_is_metered_by_its_own_limit(routes: Routes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKFOUNDRY_REQUESTS_PER_WINDOW", "7")  # the run's own provider's, not every provider's
    settings = PipelineSettings()
    profile = load_profile("sunoapi-org")
    connection = Connection(Provider.of(profile), None, profile)  # type: ignore[arg-type]
    own = metered_by(settings, connection)
    routed = metered_by(settings, connection, "sunoapi-org")
    assert own.requests_per_window == 7 and own.rate_limit_name == settings.rate_limit_name
    assert routed.rate_limit_name == f"{settings.rate_limit_name}-sunoapi-org"
    assert (routed.requests_per_window, routed.window_seconds) == (profile.rate_limit.requests,
                                                                  profile.rate_limit.window_seconds)


def test_every_provider_s_rows_are_served_from_the_start() -> None:
    rows = plan_rows([], "demo", "x", False)
    assert route_chunks(rows, 2) == []
    from tasks.intake.validate import BriefRow
    from textmusic.contract import TextToMusicRequest

    brief = [BriefRow(i, f"t{i}", "", TextToMusicRequest(prompt="calm"), {}, "b" if i >= 5 else "")
             for i in range(1, 8)]
    chunks = route_chunks(plan_rows(brief, "demo", "x", False, routed={"b": Provider.of(load_profile("sonauto"))}), 2)
    assert [(route, [r.row for r in chunk]) for route, chunk in chunks] == \
        [("", [1, 2]), ("b", [5, 6]), ("", [3, 4]), ("b", [7])]


def test_a_song_is_re_rendered_where_it_was_made(routes: Routes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(key_env("mine"), "k1")
    made = lambda provider: LedgerRecord(catalog="c", track_id="t", status="ready", provider=provider)  # noqa: E731
    assert rerender_route(made("api.verbatik.com"), routes) == DEFAULT_ROUTE  # the run's own, by its host
    assert rerender_route(made("mine"), routes) == "mine"
    monkeypatch.delenv(key_env("mine"))
    with pytest.raises(RouteError):  # never silently re-rendered at another provider
        rerender_route(made("mine"), routes)
