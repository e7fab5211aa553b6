"""`trackfoundry probe` over real HTTP on loopback: against stand-ins of hosted shapes (documented shape,
unknown status words, a wrong key) and against our real local service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from tests.support import ROOT
from tests.support.service import create_key, start_server
from textmusic.providers import load_profile
from textmusic.testing.standins import Shape, StandIn, song_price_cents

CLEAR = {"TEXTMUSIC_API_URL": None, "TEXTMUSIC_API_KEY": None, "TRACKFOUNDRY_PROVIDER": None,
         "TEXTMUSIC_LOCAL_EXTENSIONS": None}


def probe(*args: str, **env: str | None):  # noqa: ANN201 - click's Result
    return CliRunner().invoke(app, ["probe", *args], env={**CLEAR, **env}, catch_exceptions=False)


def standin_profile(path: Path, base_url: str, extra: str = "") -> Path:
    """A profile for a stand-in: the defaults (documented paths and fields) at its origin."""
    path.write_text(f'name = "standin"\nbase_url = "{base_url}"\nexpected_ready_seconds = 30\n{extra}',
                    encoding="utf-8")
    return path


def test_documented_hosted_shape_reads_and_the_observed_profile_loads(tmp_path: Path) -> None:
    shape = Shape(status_field=None, seconds_to_ready=1.0, audio="redirect")  # no status word at all
    with StandIn(shape) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url)
        out = tmp_path / "observed.toml"
        result = probe("--write-profile", str(out), "--timeout", "20",
                       TRACKFOUNDRY_PROVIDER=str(profile), TEXTMUSIC_API_KEY=api.api_key)
        assert result.exit_code == 0, result.output
        assert len(api.posts) == 1 and api.charges == [song_price_cents(shape.audio_seconds)]
        assert api.posts[0]["seed"] == 1 and api.posts[0]["lyrics"] == "" and "duration_seconds" not in api.posts[0]
        assert api.cdn_auth_seen == []
    text = result.output
    assert api.api_key not in text
    assert "expected $0.60, at most $1.00" in result.stderr  # warned before: 3 min expected, 5 min at most
    assert "none: the answers carry no status word" in text
    assert "ok   ready" in text and "ok   audio downloaded and decoded" in text
    assert "mp3 / mp3" in text and "128 kbps" in text
    assert f"another origin than the API (the key is not sent there): {api.base_url} (302) → {api.cdn_url} (200)" \
        in text
    assert "fields (submission) success, tracks, tracks[].id" in text
    written = load_profile(out)
    assert written.name == "standin" and written.base_url == api.base_url
    assert 1.0 <= written.expected_ready_seconds < 10 and written.status_words == {}


def test_unknown_status_words_fail_and_are_named(tmp_path: Path) -> None:
    shape = Shape(pending_words=("brewing",), ready_word="served", seconds_to_ready=1.0, duration_field="duration")
    with StandIn(shape) as api:
        profile = standin_profile(tmp_path / "standin.toml", "https://api.invalid")  # TEXTMUSIC_API_URL wins
        result = probe("--format", "wav", "--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile),
                       TEXTMUSIC_API_URL=api.base_url, TEXTMUSIC_API_KEY=api.api_key)
        assert len(api.posts) == 1
    assert result.exit_code == 1, result.output
    text = result.stdout
    assert "FAIL status words known: not in the profile's vocabulary: brewing, served" in text
    assert "'brewing' (UNKNOWN, counted pending) → 'served' (UNKNOWN, counted pending)" in text
    assert 'add `served = "ready"` under [status_words]' in text
    assert "not in the contract  duration (ignored)" in text  # the default paths read duration_seconds only
    assert "ok   duration read or measured: not reported; measured 10.00 s" in text
    assert api.api_key not in result.output


def test_auth_only_with_a_wrong_key_fails_and_never_shows_it(tmp_path: Path) -> None:
    wrong = "vbt_wrong_key_that_must_not_leak_42"
    with StandIn() as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url)
        refused = probe("--auth-only", TRACKFOUNDRY_PROVIDER=str(profile), TEXTMUSIC_API_KEY=wrong)
        accepted = probe("--auth-only", TRACKFOUNDRY_PROVIDER=str(profile), TEXTMUSIC_API_KEY=api.api_key)
        assert api.posts == [] and api.charges == []  # nothing paid
    assert refused.exit_code == 1 and "refused" in refused.output
    assert wrong not in refused.output
    assert accepted.exit_code == 0 and "the key was accepted" in accepted.output
    assert api.api_key not in accepted.output


def _synthetic_available() -> bool:
    done = subprocess.run([sys.executable, "-m", "textmusic", "serve", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    return "--synthetic-audio" in done.stdout


def test_our_local_service(tmp_path: Path) -> None:
    server = start_server(tmp_path / "tm", *(["--synthetic-audio"] if _synthetic_available() else []))
    try:
        key = create_key(server.data, 1.0)
        out = tmp_path / "local.toml"
        result = probe("--write-profile", str(out), "--timeout", "50", TRACKFOUNDRY_PROVIDER="textmusic-local",
                       TEXTMUSIC_API_URL=server.base, TEXTMUSIC_API_KEY=key)
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert key not in result.output
    assert "expected $0.04, at most $0.05" in result.stderr  # 10 s asked, 14 s at most
    assert "'ready' (ready)" in result.stdout and "ok   duration read or measured: reported" in result.stdout
    written = load_profile(out)
    assert written.local_extensions and written.status_words.get("ready") == "ready"

