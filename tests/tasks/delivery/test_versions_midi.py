"""The `midi` version through whole runs: from a local service it is downloaded, checked and tagged as MIDI and
placed beside the song with its own ledger row (no loudness QC: it is not audio); a hosted provider without the
local extensions reports it `skipped: not offered`; a broken MIDI file fails that version's row only.

Real `trackfoundry run` processes against a real local service (`--synthetic-audio`: its `midi` is a click
track's) and against a hosted stand-in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tasks.catalog.ledger import load_ledger
from tasks.delivery.midi import MidiCheckError, check_midi, read_tags
from tests.support import ROOT
from tests.support.runs import trackfoundry
from tests.support.service import Server, create_key, start_server
from textmusic.audio.identity import sha256_file
from textmusic.client import TextMusicClient
from textmusic.contract import TextToMusicRequest
from textmusic.providers import load_profile
from textmusic.testing.standins import Shape, StandIn

ROW = {"track_id": "m-1", "name": "Neon Rain", "prompt": "synth pop", "seed": 7, "bpm": 110,
       "duration_seconds": 12, "output_format": "wav", "versions": "midi"}
MIDI_FILE = "mc_m-1_Neon_Rain_midi_110bpm.mid"  # the default name template, the version's tag, `.mid`


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    srv = start_server(tmp_path_factory.mktemp("tm-midi"), "--synthetic-audio")
    try:
        yield srv, create_key(srv.data, 5.0)
    finally:
        srv.stop()


def run(service: tuple[Server, str], brief: Path, out: Path) -> subprocess.CompletedProcess[str]:
    server, key = service
    env = {**os.environ, "TEXTMUSIC_API_URL": server.base, "TEXTMUSIC_API_KEY": key,
           "TRACKFOUNDRY_PROVIDER": "textmusic-local", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "mc", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def catalog(service: tuple[Server, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("midi-run")
    pd.DataFrame([ROW]).to_csv(root / "brief.csv", index=False)
    done = run(service, root / "brief.csv", root / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "out"


def test_a_midi_version_is_a_checked_tagged_file_with_its_own_ledger_row(catalog: Path) -> None:
    records = load_ledger(catalog)
    (song,) = [r for r in records if not r.parent]
    (midi,) = [r for r in records if r.parent]
    assert (midi.version, midi.status, midi.parent, midi.audio_path) == ("midi", "ready", song.audio_path, MIDI_FILE)
    assert midi.output_format == "mid" and midi.cost_cents == 0 and midi.generation_id == song.generation_id
    assert midi.qc == "" and midi.loudness_lufs is None and midi.master == ""  # not measured as audio
    path = catalog / MIDI_FILE
    assert sha256_file(path) == midi.sha256
    info = check_midi(path)
    assert info.notes > 0 and abs(info.bpm - 110) < 0.001
    tags = read_tags(path)
    assert tags["track_name"] == "Neon Rain" and "mc" in tags["copyright"]
    provenance = tags["text"]
    assert "AI-generated" in provenance and song.generation_id in provenance and "seed=7" in provenance
    assert f"provider={song.provider}" in provenance
    assert MIDI_FILE not in (catalog / "qc.csv").read_text()  # no loudness QC row for a score
    assert not any((catalog / ".partial").glob("*"))  # nothing left half-made


def test_the_check_refuses_what_the_broken_provider_serves(catalog: Path, tmp_path: Path) -> None:
    """Short form of the broken-MIDI run below (marked slow): the bytes that run serves fail `check_midi`, the
    check the run makes before delivering a version, while the delivered score passes it."""
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00\x00\x06garbage, not a score" * 4)
    with pytest.raises(MidiCheckError):
        check_midi(broken)
    assert check_midi(catalog / MIDI_FILE).notes > 0


@pytest.mark.slow  # ~12 s, a second run (make test-slow)
def test_a_broken_midi_file_fails_that_version_only(service: tuple[Server, str], catalog: Path) -> None:
    """Slow form: make test keeps test_run_versions.py::test_a_version_that_cannot_be_made_is_failed_with_its_reason
    (a version not made fails its row only, exit 3) and the check below (what this provider serves is refused)."""
    server, _ = service
    for stored in (server.data / "audio").glob("*.midi.mid"):
        stored.write_bytes(b"MThd\x00\x00\x00\x06garbage, not a score" * 4)  # what the provider now serves
    (catalog / MIDI_FILE).unlink()  # so the next run fetches it again
    done = run(service, catalog.parent / "brief.csv", catalog)
    assert done.returncode == 3, done.stderr[-3000:]  # an asked version is missing: the run says so, and ends
    records = load_ledger(catalog)
    (song,) = [r for r in records if not r.parent]
    (midi,) = [r for r in records if r.parent]
    assert song.status == "ready" and (catalog / song.audio_path).is_file()
    assert midi.status == "failed" and midi.audio_path == "" and not (catalog / MIDI_FILE).exists()
    assert midi.error.startswith("version not made: ") and "MIDI" in midi.error


@pytest.mark.slow  # ~14 s, a whole hosted run (make test-slow)
def test_a_hosted_provider_without_local_extensions_reports_midi_not_offered(tmp_path: Path) -> None:
    """Slow form: make test keeps the client test below (midi never asked when not offered) and
    test_run_versions.py's hosted run (a version a hosted provider cannot make is `skipped: not offered`)."""
    brief = tmp_path / "brief.csv"
    pd.DataFrame([{**ROW, "duration_seconds": ""}]).to_csv(brief, index=False)
    with StandIn(Shape(audio_seconds=12.0)) as api:
        done = trackfoundry(tmp_path, api, brief)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(api.posts) == 1 and "versions" not in api.posts[0]  # a hosted provider is not asked
    ledger = pd.read_parquet(tmp_path / "out" / "ledger.parquet")
    midi = ledger[ledger.parent != ""].set_index("version").loc["midi"]
    assert midi.status == "skipped" and midi.error.startswith("not offered") and midi.audio_path == ""
    assert not list((tmp_path / "out").glob("*.mid"))  # nothing faked


def test_a_local_profile_that_does_not_offer_midi_never_asks_for_it(tmp_path: Path) -> None:
    profile = load_profile("textmusic-local").model_copy(update={"offers_midi": False})
    request = TextToMusicRequest(prompt="synth pop", seed=7, versions=["30", "midi"])
    with TextMusicClient("http://127.0.0.1:9", "tm_key", profile=profile) as client:
        assert client.request_body(request)["versions"] == ["full", "30"]  # an older service would refuse it all
    with TextMusicClient("http://127.0.0.1:9", "tm_key", local_extensions=True) as client:
        assert client.request_body(request)["versions"] == ["full", "30", "midi"]
