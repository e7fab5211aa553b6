"""Per-row providers: what a brief's `provider` cell may name, how rows are planned, priced, metered and re-rendered
by the provider each names (the whole run: tests/flows/test_run_providers.py)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from prefect.futures import PrefectConcurrentFuture

from flows.produce_catalog import carried_over, in_turns, route_chunks
from tasks.catalog.ledger import LedgerRecord
from tasks.catalog.rerender import rerender_route
from tasks.intake.brief import load_brief
from tasks.intake.plan import max_cost_cents, plan_rows, within_budget
from tasks.intake.routes import DEFAULT_ROUTE, RouteError, Routes, key_env, listed_profiles
from tasks.intake.validate import BriefRow, validate_brief
from tasks.provider.connection import Connection, ProviderError, metered_by, open_route
from tasks.run import Provider
from tasks.settings import PipelineSettings
from textmusic.contract import TextToMusicRequest
from textmusic.providers import LOCAL_PROFILE, ProfileError, load_profile
from textmusic.settings import TextMusicSettings
from textmusic.testing.standins import Shape, StandIn


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

    brief = [BriefRow(i, f"t{i}", "", TextToMusicRequest(prompt="calm"), {}, "b" if i >= 5 else "")
             for i in range(1, 8)]
    chunks = route_chunks(plan_rows(brief, "demo", "x", False, routed={"b": Provider.of(load_profile("sonauto"))}), 2)
    assert [(route, [r.row for r in chunk]) for route, chunk in chunks] == \
        [("", [1, 2]), ("b", [5, 6]), ("", [3, 4]), ("b", [7])]


def test_a_song_is_re_rendered_where_it_was_made(routes: Routes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(key_env("mine"), "k1")
    made = lambda profile: LedgerRecord(catalog="c", track_id="t", status="ready",  # noqa: E731
                                        provider="127.0.0.1", provider_profile=profile)
    assert rerender_route(made("verbatik"), routes) == DEFAULT_ROUTE  # the run's own
    assert rerender_route(made(""), routes) == DEFAULT_ROUTE  # made before profiles were recorded
    assert rerender_route(made("mine"), routes) == "mine"
    monkeypatch.delenv(key_env("mine"))
    with pytest.raises(RouteError):  # never silently re-rendered at another provider
        rerender_route(made("mine"), routes)


def test_a_stalled_provider_holds_only_its_share_of_the_task_threads() -> None:
    """Per-row providers: each provider's tasks go in turns, at most its share at once; while one provider's rows
    hang (an outage it waits out), every task of the other runs."""
    pool = ThreadPoolExecutor(8)
    gate, lock = threading.Event(), threading.Lock()
    live, peak, ran_while_stalled = Counter(), Counter(), []

    def work(route: str, chunk: int) -> list[int]:
        with lock:
            live[route] += 1
            peak[route] = max(peak[route], live[route])
            if not gate.is_set():
                ran_while_stalled.append((route, chunk))
        if route == "a":
            gate.wait(10)
        with lock:
            live[route] -= 1
        return [chunk]

    submit = lambda route, chunk: PrefectConcurrentFuture(  # noqa: E731
        task_run_id=uuid.uuid4(), wrapped_future=pool.submit(work, route, chunk))
    threading.Timer(1.0, gate.set).start()
    futures = in_turns([("a", i) for i in range(6)] + [("b", i) for i in range(6)], submit, 2)  # type: ignore[arg-type]
    assert [f.result() for f in futures] == [[i] for i in range(6)] * 2  # in the order given
    assert peak["a"] == 2 and peak["b"] <= 2  # at most its share at once
    assert {("b", i) for i in range(6)} <= set(ran_while_stalled)  # b never waited for a


def test_a_listed_name_that_shares_a_shipped_one_s_key_variable_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mirror.toml").write_text('name = "sunoapi.org"\nbase_url = "https://suno-mirror.example"\n')
    with pytest.raises(ProfileError, match="TEXTMUSIC_API_KEY_SUNOAPI_ORG"):
        listed_profiles(str(tmp_path / "mirror.toml"))


def test_a_maybe_charged_submission_stays_in_the_ledger_when_its_row_moves_away() -> None:
    """A row moved to another provider (a new fingerprint): its earlier unanswered submission (maybe charged)
    stays in the ledger with what it put at risk, so moving the row back finds it and sends nothing unasked."""
    unanswered = LedgerRecord(catalog="c", track_id="t", status="unanswered", resume="unanswered",
                              request_fingerprint="at-a", at_risk_cents=100)
    on_the_wire = unanswered.model_copy(update={"track_id": "u", "status": "submitting", "resume": ""})
    unpaid = unanswered.model_copy(update={"track_id": "v", "status": "failed", "resume": "", "at_risk_cents": 0})
    now = LedgerRecord(catalog="c", track_id="t", status="ready", request_fingerprint="at-b", generation_id="g")
    kept = carried_over([unanswered, on_the_wire, unpaid], [now])
    assert [(r.track_id, r.status, r.at_risk_cents) for r in kept] == [("t", "unanswered", 100),
                                                                     ("u", "unanswered", 100)]


def test_a_listed_profile_with_a_shipped_name_must_be_at_its_host(tmp_path: Path) -> None:
    (tmp_path / "mirror.toml").write_text('name = "sunoapi-org"\nbase_url = "https://suno-mirror.example"\n')
    with pytest.raises(ProfileError, match="at another host"):
        listed_profiles(str(tmp_path / "mirror.toml"))
    (tmp_path / "same.toml").write_text('name = "sunoapi-org"\nbase_url = "https://api.sunoapi.org/"\n')
    assert listed_profiles(str(tmp_path / "same.toml"))["sunoapi-org"].base_url.startswith("https://api.sunoapi.org")


def test_a_routed_provider_is_opened_with_its_own_key_checked_and_named_by_its_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One provider is one provider however a row reaches it: a routed profile is recorded by its host, as the run's
    own provider is, so a row moved between the two keeps its fingerprint and is not paid again (the whole run:
    test_run_providers' moved-row test, make test-slow). Its key is checked first, for free."""
    with StandIn(Shape()) as api:
        (tmp_path / "b.toml").write_text(f'name = "studio-b"\nbase_url = "{api.base_url}"\n')
        routes = Routes(load_profile("verbatik"), listed_profiles(str(tmp_path / "b.toml")))
        monkeypatch.setenv(key_env("studio-b"), api.api_key)
        api_settings = TextMusicSettings()
        with open_route(routes, "studio-b", PipelineSettings(), api_settings, tmp_path) as connection:
            assert connection.provider.name == "127.0.0.1" and connection.provider.profile == "studio-b"
        own = Provider.of(routes.profile("studio-b"), name="127.0.0.1")
        row = BriefRow(1, "t1", "Song", TextToMusicRequest(prompt="calm", seed=1), {}, "studio-b")
        assert plan_rows([row], "demo", "127.0.0.1", False, routed={"studio-b": own})[0].fingerprint == \
            plan_rows([replace(row, provider=DEFAULT_ROUTE)], "demo", "127.0.0.1", False)[0].fingerprint
        assert not [r for r in api.requests if r[0] == "POST"]  # opening it pays nothing
        monkeypatch.setenv(key_env("studio-b"), "not-the-key")
        with pytest.raises(ProviderError, match="refused the key"), \
                open_route(routes, "studio-b", PipelineSettings(), api_settings, tmp_path):
            pass
