"""`trackfoundry probe` over real HTTP on loopback: against stand-ins of hosted shapes (documented shape,
unknown status words, a wrong key) and against our real local service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import flows.probe
from flows.cli import app
from flows.probe import Recorded, _audio_seen
from tests.support import ROOT
from tests.support.service import create_key, start_server
from textmusic.providers import load_profile
from textmusic.testing.providers.elevenlabs_music import ElevenLabsMusic
from textmusic.testing.standins import Billing, Shape, StandIn, song_price_cents

CLEAR = {"TEXTMUSIC_API_URL": None, "TEXTMUSIC_API_KEY": None, "TRACKFOUNDRY_PROVIDER": None,
         "TEXTMUSIC_LOCAL_EXTENSIONS": None, "TRACKFOUNDRY_CALLBACK_URL": None, "TRACKFOUNDRY_CALLBACK_HOST": None,
         "TRACKFOUNDRY_CALLBACK_PORT": None, "TRACKFOUNDRY_CALLBACK_SECRET": None}
SECRET = "cb-secret-0123456789abcdef"
# The stand-in's callbacks: {"event": word, "track": {...}}, Standard Webhooks headers when signed.
CALLBACK = """
[callback]
url_field = "callBackUrl"

[callback.answer]
track = ["track"]
"""
SIGNED = """
[callback.signature]
header = "webhook-signature"
encoding = "base64"
prefix = "v1,"
id_header = "webhook-id"
timestamp_header = "webhook-timestamp"
"""


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



# --- synchronous providers, callbacks, the reported cost (issue 19) ------------------------------------------


def test_a_synchronous_provider_answers_with_the_audio_and_the_profile_keeps_sync(tmp_path: Path) -> None:
    shape = Shape(sync="body", seconds_to_ready=0.3)
    with StandIn(shape) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url, '\n[sync]\naudio = "body"\n')
        out = tmp_path / "observed.toml"
        result = probe("--write-profile", str(out), "--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile),
                       TEXTMUSIC_API_KEY=api.api_key)
        assert len(api.posts) == 1 and len(api.charges) == 1
        assert [r[0] for r in api.requests] == ["POST"]  # no status request, no download
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "answered synchronously: the audio came in the POST's answer after" in text
    assert "bytes (audio/mpeg)" in text
    assert "ok   answered with audio: synchronously" in text and "ok   audio downloaded and decoded" in text
    assert "ok   duration read or measured: not reported; measured 10.0" in text  # an mp3's padding: ≈ 10.03 s
    assert "price check  no cost reported; the profile's price gives 4 cents for 10.0" in text
    written = load_profile(out)
    assert written.sync is not None and written.sync.audio == "body"
    assert 0.1 <= written.expected_ready_seconds < 10


def test_the_elevenlabs_stand_in_with_its_shipped_profile(tmp_path: Path) -> None:
    with ElevenLabsMusic() as api:
        result = probe("--timeout", "20", TRACKFOUNDRY_PROVIDER="elevenlabs-music", TEXTMUSIC_API_URL=api.base_url,
                       TEXTMUSIC_API_KEY=api.api_key)
        assert len(api.charges) == 1
    assert result.exit_code == 0, result.output
    assert "answered synchronously: the audio came in the POST's answer" in result.stdout
    assert "fields (submission)" not in result.stdout and api.api_key not in result.output


def test_an_audio_answer_to_a_profile_without_sync_looks_synchronous(tmp_path: Path) -> None:
    with StandIn(Shape(sync="body")) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url)
        out = tmp_path / "observed.toml"
        result = probe("--write-profile", str(out), "--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile),
                       TEXTMUSIC_API_KEY=api.api_key)
        assert len(api.posts) == 1 and len(api.charges) == 1  # paid once, never twice
    assert result.exit_code == 1, result.output
    text = result.stdout
    assert "looks synchronous: the accepted answer was audio (Content-Type audio/mpeg" in text
    assert 'suggested: [sync] audio = "body"' in text and "the provider looks SYNCHRONOUS" in text
    assert 'with [sync] audio = "body": probe again with it' in text
    written = load_profile(out)
    assert written.sync is not None and written.sync.audio == "body"


def test_an_html_answer_does_not_look_synchronous(tmp_path: Path) -> None:
    with StandIn(Shape(unreadable_submit="html")) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url)
        result = probe("--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile), TEXTMUSIC_API_KEY=api.api_key)
    assert result.exit_code == 1 and "FAIL track id found" in result.stdout
    assert "looks synchronous" not in result.stdout and "SYNCHRONOUS" not in result.stdout


def test_signed_callbacks_are_verified_and_counted_with_their_duplicates(tmp_path: Path) -> None:
    shape = Shape(callbacks="signed", callback_secret=SECRET, callback_stages=("generating",), callback_copies=3,
                  seconds_to_ready=1.0)
    with StandIn(shape) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url, CALLBACK + SIGNED)
        out = tmp_path / "observed.toml"
        result = probe("--write-profile", str(out), "--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile),
                       TEXTMUSIC_API_KEY=api.api_key, TRACKFOUNDRY_CALLBACK_SECRET=SECRET)
        assert len(api.posts) == 1 and api.posts[0]["callBackUrl"].startswith("http://127.0.0.1:")
        assert [status for _, _, status in api.callbacks_sent] == [200] * 4
    assert result.exit_code == 0, result.output
    text = result.stdout
    line = next(x for x in text.splitlines() if x.startswith("  callbacks    "))
    assert line.startswith("  callbacks    4 for the track (2 repeated), signed and verified: ")
    assert line.count("generating→pending") == 1 and line.count("ready→ready") == 3
    assert "ok   callbacks read: 4 for the track" in text
    assert SECRET not in result.output
    written = load_profile(out)
    assert written.callback is not None and written.callback.signature is not None
    assert written.callback.answer is not None and written.callback.answer.track == ["track"]


def test_a_wrong_secret_has_every_callback_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flows.probe, "CALLBACK_GRACE_SECONDS", 1.0)  # none will be read: listen 1 s, not 5
    shape = Shape(callbacks="signed", callback_secret=SECRET, seconds_to_ready=0.5)
    with StandIn(shape) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url, CALLBACK + SIGNED)
        result = probe("--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile), TEXTMUSIC_API_KEY=api.api_key,
                       TRACKFOUNDRY_CALLBACK_SECRET="not-the-secret")
    assert result.exit_code == 1, result.output
    assert "FAIL callbacks read: every callback was refused: 1 bad or missing signature" in result.stdout
    assert "[callback.signature] or the secret" in result.stdout


def test_unsigned_callbacks_and_callbacks_that_never_come(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flows.probe, "CALLBACK_GRACE_SECONDS", 1.0)
    with StandIn(Shape(callbacks="unsigned", callback_copies=2, seconds_to_ready=0.5)) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url, CALLBACK)
        unsigned = probe("--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile), TEXTMUSIC_API_KEY=api.api_key)
    assert unsigned.exit_code == 0, unsigned.output
    assert "callbacks    2 for the track (1 repeated), unsigned (a run confirms each with one status request)" \
        in unsigned.stdout
    with StandIn(Shape(callbacks="lost", seconds_to_ready=0.5)) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url, CALLBACK)
        lost = probe("--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile), TEXTMUSIC_API_KEY=api.api_key)
        assert len(api.posts) == 1
    assert lost.exit_code == 0, lost.output  # polled to the end as without callbacks
    assert "callbacks    no callback arrived in" in lost.stdout and "ok   ready" in lost.stdout
    assert "note: no callback arrived in" in lost.stdout


def test_a_reported_cost_other_than_the_price_model_is_reported_and_the_price_kept(tmp_path: Path) -> None:
    shape = Shape(cost_field="cost_cents", billing=Billing(per="song", millicents=7000), seconds_to_ready=0.5,
                  duration_field="duration_seconds")
    with StandIn(shape) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url)
        out = tmp_path / "observed.toml"
        result = probe("--write-profile", str(out), "--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile),
                       TEXTMUSIC_API_KEY=api.api_key)
        assert api.charges == [7]
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert ("price check  the provider reported 7 cents, the profile's price gives 4 cents for 10.00 s: they DIFFER "
            "(the profile's [price] is kept unchanged)") in text
    assert "its [price] is the profile's, unchanged: the provider reported 7 cents where it gives 4" in text
    written = load_profile(out)
    assert written.price == load_profile(profile).price


def test_a_reported_cost_matching_the_price_model(tmp_path: Path) -> None:
    with StandIn(Shape(cost_field="cost_cents", duration_field="duration_seconds")) as api:
        profile = standin_profile(tmp_path / "standin.toml", api.base_url)
        result = probe("--timeout", "20", TRACKFOUNDRY_PROVIDER=str(profile), TEXTMUSIC_API_KEY=api.api_key)
    assert result.exit_code == 0, result.output
    assert "price check  the provider reported 4 cents, as the profile's price gives for 10.00 s" in result.stdout


def test_what_an_accepted_answer_must_show_to_look_like_audio() -> None:
    def seen(content_type: str, head: bytes) -> str | None:
        return _audio_seen(Recorded(0.0, "POST", "http://x/", 200, None, content_type, bytearray(head)))

    assert seen("audio/mpeg", b"") == "Content-Type audio/mpeg"
    assert seen("application/octet-stream; charset=binary", b"") == "Content-Type application/octet-stream"
    assert seen("", b"ID3\x04\x00") == "its first bytes are MP3's"
    assert seen("text/plain", b"\xff\xfb\x90\x00") == "its first bytes are an MP3 frame's"
    assert seen("", b"RIFF\x00\x00\x00\x00WAVE") == "its first bytes are WAV's"
    assert seen("", b"\x00\x00\x00\x20ftypM4A ") == "its first bytes are MP4's"
    assert seen("text/html", b"<!DOCTYPE html>") is None and seen("", b"") is None
