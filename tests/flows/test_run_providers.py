"""Per-row providers (issue 19, item 6), as a user runs them: one brief whose `provider` column sends some rows to
the run's own provider and others to a second one the operator lists, each a stand-in on loopback HTTP with its
own key and price list. Each provider gets only its rows and only its own key; the ledger says which served each
row and costs each as that provider charged it; the budget is one cap across both; a brief cannot name a
provider the run may not use (an unknown name, a profile path of its own, a provider whose key is not set); a
second run sends nothing again."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.support.runs import trackfoundry, write_profile
from textmusic.testing.standins import Billing, Shape, StandIn

ROUTED = "studio-b"  # the second provider, by its profile's name
B_KEY = "sb_standin_fedcba9876543210"


def routed_profile(tmp_path: Path, api: StandIn) -> Path:
    """The operator's profile of the second provider: per-song price, its own rate limit."""
    return write_profile(tmp_path, api, ROUTED, '[rate_limit]\nrequests = 40\nwindow_seconds = 10\n\n'
                         '[price]\nmodel = "per_song"\ncents = 50\n')


def write_brief(tmp_path: Path) -> Path:
    rows = [("a1", ""), ("b1", ROUTED), ("b2", ROUTED), ("b3", ROUTED), ("a2", ""),
            ("x1", "no-such-provider"), ("x2", str(tmp_path / "evil.toml")), ("x3", "elevenlabs-music")]
    path = tmp_path / "brief.csv"
    pd.DataFrame([{"track_id": t, "name": f"Song {t}", "prompt": f"calm piano {t}", "seed": i + 1,
                   "output_format": "flac", "provider": p} for i, (t, p) in enumerate(rows)]).to_csv(path, index=False)
    (tmp_path / "evil.toml").write_text('name = "evil"\nbase_url = "http://127.0.0.1:9"\n')
    return path


def test_rows_go_to_the_provider_they_name_each_with_its_own_key_price_and_one_budget(tmp_path: Path) -> None:
    with StandIn(Shape(seconds_to_ready=0.3)) as a, \
            StandIn(Shape(seconds_to_ready=0.3, api_key=B_KEY, billing=Billing(per="song", millicents=50_000),
                          rate_limit=(40, 10))) as b:
        brief = write_brief(tmp_path)
        before = set(tmp_path.rglob("*"))
        env = {"TRACKFOUNDRY_PROVIDERS": str(routed_profile(tmp_path, b)), "TEXTMUSIC_API_KEY_STUDIO_B": B_KEY,
               "TEXTMUSIC_API_KEY_ELEVENLABS_MUSIC": ""}
        # Worst cases: $1.00 a row at the run's provider (5 min at $0.20), $0.50 at studio-b. $2.60 holds a1, b1,
        # b2 and b3 ($2.50 in all): a2 would make it $3.50, so it is skipped.
        first = trackfoundry(tmp_path, a, brief, "--budget", "2.60", **env)
        assert first.returncode == 0, first.stderr[-3000:]  # rejected and skipped rows are not failures
        assert len(a.posts) == 1 and len(b.posts) == 3  # each provider only its own rows
        assert [s for *_, s, _ in a.requests + b.requests if s == 401] == []  # each got only its own key
        ledger = pd.read_csv(tmp_path / "out" / "ledger.csv", keep_default_na=False).set_index("track_id")
        assert ledger.loc[["a1", "b1", "b2", "b3"], "status"].tolist() == ["ready"] * 4
        assert ledger.loc["a2", "status"] == "skipped" and "budget" in ledger.loc["a2", "error"]
        assert ledger.loc[["b1", "b2", "b3"], "provider_profile"].tolist() == [ROUTED] * 3  # which served each row
        assert ledger.loc["a1", "provider_profile"] == "standin"
        assert set(ledger.loc[["a1", "b1", "b2", "b3"], "provider"]) == {"127.0.0.1"}  # by host, however reached
        assert ledger.loc[["b1", "b2", "b3"], "cost_cents"].sum() == b.charged_cents == 150  # per song, to the cent
        assert ledger.loc["a1", "cost_cents"] == a.charged_cents
        assert ledger.cost_cents.sum() <= 260
        # The next run (its own budget) sends the skipped row and nothing else: no provider is paid twice.
        second = trackfoundry(tmp_path, a, brief, "--budget", "2.60", **env)
        assert second.returncode == 0, second.stderr[-3000:]
        assert len(a.posts) == 2 and len(b.posts) == 3
        assert a.posts[-1]["prompt"] == "calm piano a2"
    ledger = pd.read_csv(tmp_path / "out" / "ledger.csv", keep_default_na=False).set_index("track_id")
    assert ledger.loc[["a1", "b1", "b2", "b3", "a2"], "status"].tolist() == ["ready"] * 5
    assert ledger.cost_cents.sum() == a.charged_cents + b.charged_cents
    rejected = pd.read_csv(tmp_path / "out" / "rejects.csv").set_index("track_id")
    assert set(rejected.column) == {"provider"}
    assert "no provider 'no-such-provider'" in rejected.loc["x1", "reason"]
    assert "never named by path in a brief" in rejected.loc["x2", "reason"]  # the brief's own profile is not read
    assert "set TEXTMUSIC_API_KEY_ELEVENLABS_MUSIC" in rejected.loc["x3", "reason"]
    written = set(tmp_path.rglob("*")) - before  # nothing outside the catalog but the profiles the test wrote
    assert [p for p in written if tmp_path / "out" not in p.parents and p.suffix != ".toml"] == [tmp_path / "out"]
    for run in (first, second):
        assert a.api_key not in run.stdout + run.stderr and B_KEY not in run.stdout + run.stderr
    for file in (tmp_path / "out").rglob("*"):
        if file.is_file():
            assert B_KEY.encode() not in file.read_bytes() and a.api_key.encode() not in file.read_bytes(), file


@pytest.mark.slow  # ~30 s, two whole runs (make test-slow); short form: test_routes' open_route test
def test_a_row_moved_from_the_run_s_provider_to_the_same_provider_by_name_is_not_paid_again(tmp_path: Path) -> None:
    """One provider is one provider however a row reaches it: rows made through the run's own provider, then named
    in the brief while the run's own provider is another one, are found in the catalog and not sent again; the
    next run sends a new row there with that provider's own key, the other provider untouched."""
    with StandIn(Shape(seconds_to_ready=0.3)) as a, StandIn(Shape(seconds_to_ready=0.3, api_key=B_KEY)) as c:
        path = tmp_path / "brief.csv"
        rows = [{"track_id": t, "name": f"Song {t}", "prompt": f"calm piano {t}", "seed": i + 1,
                 "output_format": "flac"} for i, t in enumerate(["a1", "a2"])]
        pd.DataFrame(rows).to_csv(path, index=False)
        first = trackfoundry(tmp_path, a, path)  # the run's own provider: the stand-in's profile, `standin`
        assert first.returncode == 0, first.stderr[-3000:]
        routed = tmp_path / "routed" / "standin.toml"
        routed.parent.mkdir()
        routed.write_text((tmp_path / "standin.toml").read_text())
        pd.DataFrame([{**r, "provider": "standin"} for r in rows]
                     + [{**rows[0], "track_id": "a3", "seed": 3, "provider": "standin"}]).to_csv(path, index=False)
        other = write_profile(tmp_path, c, "other")
        second = trackfoundry(tmp_path, c, path, key=B_KEY, TRACKFOUNDRY_PROVIDER=str(other),
                              TRACKFOUNDRY_PROVIDERS=str(routed), TEXTMUSIC_API_KEY_STANDIN=a.api_key)
        assert second.returncode == 0, second.stderr[-3000:]
        assert sorted(p["seed"] for p in a.posts) == [1, 2, 3]  # a1 and a2 once each, then the new row
        assert c.posts == []  # the run's own provider now: no row names it
    ledger = pd.read_csv(tmp_path / "out" / "ledger.csv", keep_default_na=False)
    assert list(ledger.status) == ["ready"] * 3 and ledger.cost_cents.sum() == a.charged_cents
