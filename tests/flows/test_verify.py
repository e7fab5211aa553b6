"""`trackfoundry verify DIR`: a catalog made by a real run verifies (checksums, decoding, tags, AI disclosure,
content credentials, broadcast-WAV chunks); one changed byte, a stray file, a lost sidecar or a ledger doctored
to match a changed file each make it exit 1, naming the file and the check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tasks.catalog.ledger import LEDGER_CSV, LEDGER_PARQUET, load_ledger, write_ledger
from tasks.catalog.verification import VERIFICATION
from tests.support import ROOT
from tests.support.catalogs import ROWS, build_catalog_of, takes
from textmusic.audio.identity import sha256_file

# ~28 s, most of it building this module's own catalog (make test-slow). make test keeps a short form in
# test_run_versions.py, on that module's catalog: it verifies as delivered and a changed byte fails that file.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The review catalog's rows (WAV, MP3, FLAC) and an OGG, whose credentials are a sidecar."""
    return build_catalog_of(tmp_path_factory.mktemp("verify"), [*ROWS, ("ogg-4", "Ogg", "calm pads", 44, 1, "ogg")])


@pytest.fixture
def catalog(built: Path, tmp_path: Path) -> Path:
    """A copy of the built catalog for each test to spoil."""
    return Path(shutil.copytree(built, tmp_path / "catalog"))


def verify(catalog: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows", "verify", str(catalog)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "COLUMNS": "250"})


def flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_catalog_as_delivered_verifies_and_the_run_recorded_it(catalog: Path) -> None:
    recorded = json.loads((catalog / VERIFICATION).read_text())
    files = {f["audio_path"] for f in recorded["files"]}
    assert files == {r.audio_path for r in takes(catalog)}
    assert all(not f["problems"] for f in recorded["files"])
    result = verify(catalog)
    assert result.returncode == 0, result.stdout + result.stderr
    for record in takes(catalog):
        assert record.audio_path in result.stdout
        assert record.signer == "development"
        assert record.credentials == ("sidecar" if record.output_format == "ogg" else "embedded")
    wav = next(r for r in takes(catalog) if r.output_format == "wav")
    assert "ok (dev cert)" in result.stdout and wav.audio_path in result.stdout


def test_one_changed_byte_fails_that_file(catalog: Path) -> None:
    spoiled = next(r for r in takes(catalog) if r.output_format == "flac")
    flip_middle_byte(catalog / spoiled.audio_path)
    result = verify(catalog)
    assert result.returncode == 1
    assert f"{spoiled.audio_path}: checksum: its SHA-256 differs from the ledger's" in result.stderr
    assert "4 of 5 files verified" in result.stderr


def test_credentials_catch_a_change_the_ledger_was_doctored_to_hide(catalog: Path) -> None:
    """Someone changes the audio and writes the new checksum into the ledger: the signature still tells."""
    records = load_ledger(catalog)
    spoiled = next(r for r in records if r.output_format == "wav" and r.status == "ready")
    flip_middle_byte(catalog / spoiled.audio_path)
    doctored = [r.model_copy(update={"sha256": sha256_file(catalog / r.audio_path)}) if r is spoiled else r
                for r in records]
    (catalog / ".ledger.jsonl").unlink(missing_ok=True)
    write_ledger(catalog, doctored)
    result = verify(catalog)
    assert result.returncode == 1
    assert f"{spoiled.audio_path}: credentials:" in result.stderr
    assert "mismatch" in result.stderr  # the C2PA hard binding's status code


def test_a_stray_file_and_a_missing_file_are_problems(catalog: Path) -> None:
    records = takes(catalog)
    mp3 = next(r for r in records if r.output_format == "mp3")
    shutil.copy(catalog / mp3.audio_path, catalog / "smuggled.mp3")
    (catalog / records[0].audio_path).unlink()
    result = verify(catalog)
    assert result.returncode == 1
    assert "smuggled.mp3: a file no ledger record delivered" in result.stderr
    assert f"{records[0].audio_path}: checksum: the file is missing" in result.stderr


def test_a_ledger_path_outside_the_catalog_is_refused_not_followed(catalog: Path) -> None:
    ledger = pd.read_parquet(catalog / LEDGER_PARQUET)
    ledger.loc[ledger["status"] == "ready", "audio_path"] = "../../etc/passwd"
    ledger.to_parquet(catalog / LEDGER_PARQUET)
    (catalog / LEDGER_CSV).unlink()
    (catalog / ".ledger.jsonl").unlink(missing_ok=True)
    result = verify(catalog)
    assert result.returncode == 1
    assert "the ledger names a file outside the catalog" in result.stderr


def test_a_lost_sidecar_fails_an_ogg(catalog: Path) -> None:
    """OGG cannot embed a manifest: its credentials are the `.c2pa` beside it, and without it the file is bare."""
    record = next(r for r in takes(catalog) if r.output_format == "ogg")
    assert (catalog / record.credentials_file).is_file()
    (catalog / record.credentials_file).unlink()
    result = verify(catalog)
    assert result.returncode == 1
    assert f"{record.audio_path}: credentials:" in result.stderr


def test_trust_anchors_that_cannot_be_read_are_said_in_one_line(catalog: Path) -> None:
    env = {**os.environ, "TRACKFOUNDRY_SIGNING_TRUST_ANCHORS": "/nope.pem"}
    result = subprocess.run([sys.executable, "-m", "flows", "verify", str(catalog)], capture_output=True, text=True,
                            timeout=120, cwd=ROOT, env=env)
    assert result.returncode == 1 and "cannot read the trust anchors" in result.stderr
    assert "Traceback" not in result.stderr
