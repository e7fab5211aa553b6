"""Library versions through a whole run: rendered by the local service's engine (asked over HTTP, downloaded,
one ledger row and one tagged file each), or edited from a hosted track on its beats; what cannot be made
is reported with its reason, and versions cost nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from tasks.catalog.ledger import load_ledger
from tasks.delivery.tagging import read_tags
from tests.support import ROOT
from tests.support.runs import trackfoundry
from textmusic.testing.standins import Shape, StandIn

BPM = 124


def _ledger(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "ledger.parquet")


def _seconds(path: Path) -> float:
    info = soundfile.info(path)
    return info.frames / info.samplerate


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two rows on the embedded service's engine: one lists its versions, the other takes `--versions`."""
    root = tmp_path_factory.mktemp("versions")
    brief = root / "brief.csv"
    pd.DataFrame([
        {"track_id": "h-1", "name": "Night Drive", "prompt": "deep house groove", "seed": 5, "bpm": BPM,
         "duration_seconds": 24, "output_format": "wav", "versions": "15|loop4|stems|underscore"},
        {"track_id": "l-2", "name": "Rainy", "prompt": "lofi hip hop beat", "seed": 6, "bpm": 84,
         "duration_seconds": 20, "output_format": "flac", "versions": ""},
    ]).to_csv(brief, index=False)
    out = root / "out"
    done = subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "vt", "--out", str(out),
                           "--versions", "15"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_engine_versions_are_files_with_their_own_ledger_rows_and_tags(local_run: Path) -> None:
    ledger = _ledger(local_run)
    versions = ledger[ledger.parent != ""].set_index("version")
    house = versions[versions.track_id == "h-1"]
    assert sorted(house.index) == sorted(["15s", "loop4", "stem:drums", "stem:bass", "stem:harmony", "stem:lead",
                                          "underscore"])
    assert list(versions[versions.track_id == "l-2"].index) == ["15s"]  # from --versions
    assert (versions.status == "ready").all() and (versions.cost_cents == 0).all()
    full = local_run / f"vt_h-1_Night_Drive_full_{BPM}bpm.wav"  # the default name template
    assert set(house.parent) == {full.name}
    assert abs(_seconds(local_run / house.loc["15s", "audio_path"]) - 15.0) <= 0.25
    loop = soundfile.info(local_run / house.loc["loop4", "audio_path"])
    assert abs(loop.frames - round(4 * 4 * 60 / BPM * loop.samplerate)) <= 1
    assert house.loc["15s", "audio_path"] == f"vt_h-1_Night_Drive_15s_{BPM}bpm.wav"  # version and BPM in the name
    assert house.loc["stem:drums", "audio_path"] == f"vt_h-1_Night_Drive_stem-drums_{BPM}bpm.wav"
    tags = read_tags(local_run / house.loc["stem:drums", "audio_path"])
    assert tags["version"] == "stem:drums" and tags["parent"] == full.name and tags["title"] == "Night Drive"
    mix, _ = soundfile.read(full, always_2d=True)
    stems = sum(soundfile.read(local_run / path, always_2d=True)[0] for path in
                house[house.index.str.startswith("stem:")].audio_path)
    residual = 20 * np.log10(np.sqrt(np.mean((stems - mix) ** 2)) / np.sqrt(np.mean(mix ** 2)))
    assert residual <= -40, residual  # 16-bit files: the stems still sum to the song


def test_verify_passes_this_catalog_and_names_a_changed_version(local_run: Path, tmp_path: Path) -> None:
    """Short form of tests/flows/test_verify.py (marked slow: it builds its own catalog), on this module's: a
    catalog as delivered verifies (songs and versions), and one changed byte of a version fails that file."""
    catalog = Path(shutil.copytree(local_run, tmp_path / "catalog"))

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flows", "verify", str(catalog)], capture_output=True,
                              text=True, timeout=120, cwd=ROOT, env={**os.environ, "COLUMNS": "250"})

    clean = verify()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    ledger = _ledger(catalog)
    (cut,) = ledger[(ledger.track_id == "h-1") & (ledger.version == "15s")].audio_path
    data = bytearray((catalog / cut).read_bytes())
    data[len(data) // 2] ^= 0x01
    (catalog / cut).write_bytes(bytes(data))
    spoiled = verify()
    assert spoiled.returncode == 1
    assert f"{cut}: checksum: its SHA-256 differs from the ledger's" in spoiled.stderr


@pytest.mark.slow  # ~19 s, a second whole run (make test-slow); make test: test_flow_e2e's same-brief-again
def test_a_second_run_keeps_the_versions_and_sends_nothing(local_run: Path, tmp_path: Path) -> None:
    """Slow form: make test keeps test_flow_e2e.py::test_same_brief_again_generates_and_charges_nothing (a
    second run of the same brief sends and rewrites nothing) on songs; this adds the versions' files."""
    before = {r.audio_path: r.sha256 for r in load_ledger(local_run)}
    stamps = {p: (local_run / p).stat().st_mtime_ns for p in before}
    brief = next(local_run.parent.glob("brief.csv"))
    again = subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", "vt", "--out",
                            str(local_run), "--versions", "15"], capture_output=True, text=True, timeout=600,
                           cwd=ROOT)
    assert again.returncode == 0, again.stderr[-3000:]
    after = {r.audio_path: r.sha256 for r in load_ledger(local_run)}
    assert after == before and {p: (local_run / p).stat().st_mtime_ns for p in after} == stamps
    assert "0 rows to generate" in again.stderr + again.stdout


def _engine_wav(folder: Path) -> tuple[bytes, float]:
    """Real engine music, to be served by a hosted stand-in as if a provider had made it."""
    out = folder / "house.wav"
    subprocess.run([sys.executable, "-m", "textmusic", "render", "--prompt", "deep house groove", "--seed", "5",
                    "--bpm", str(BPM), "--duration", "40", "--format", "wav", "--out", str(out)],
                   check=True, capture_output=True, timeout=300, cwd=ROOT)
    return out.read_bytes(), _seconds(out)


def test_hosted_track_versions_are_edited_on_its_beats_and_stems_reported_not_offered(tmp_path: Path) -> None:
    audio, seconds = _engine_wav(tmp_path)
    brief = tmp_path / "brief.csv"
    pd.DataFrame([{"track_id": "h", "name": "Hosted House", "prompt": "deep house", "seed": 3, "bpm": BPM,
                   "output_format": "wav", "versions": "30|loop4|stems"}]).to_csv(brief, index=False)
    with StandIn(Shape(audio_bytes=audio, audio_seconds=seconds)) as api:
        done = trackfoundry(tmp_path, api, brief)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(api.posts) == 1 and "versions" not in api.posts[0]  # a hosted provider is not asked
        charged = api.charged_cents
    ledger = _ledger(tmp_path / "out")
    versions = ledger[ledger.parent != ""].set_index("version")
    assert versions.loc["30s", "status"] == "ready"
    assert abs(_seconds(tmp_path / "out" / versions.loc["30s", "audio_path"]) - 30) <= 0.5
    assert versions.loc["loop4", "status"] == "ready"
    stems = versions[versions.index.str.startswith("stem:")]
    assert (stems.status == "skipped").all() and stems.error.str.contains("not offered").all()
    assert not stems.audio_path.any()  # nothing faked
    assert ledger.cost_cents.sum() == charged  # versions cost nothing


def test_a_version_that_cannot_be_made_is_failed_with_its_reason(tmp_path: Path) -> None:
    brief = tmp_path / "brief.csv"
    pd.DataFrame([{"track_id": "t", "name": "Tone", "prompt": "calm", "seed": 3, "output_format": "flac",
                   "versions": "30|loop4"}]).to_csv(brief, index=False)
    with StandIn(Shape(audio_seconds=12.0)) as api:  # a 12 s steady tone: too short, and no beat at all
        done = trackfoundry(tmp_path, api, brief)
    assert done.returncode == 3  # asked versions missing: the run says so
    ledger = _ledger(tmp_path / "out")
    versions = ledger[ledger.parent != ""].set_index("version")
    assert (versions.status == "failed").all() and (versions.audio_path == "").all()
    assert versions.error.str.startswith("version not made: ").all() and versions.error.str.len().min() > 30
    song = ledger[ledger.parent == ""].iloc[0]
    assert song.status == "ready" and (tmp_path / "out" / song.audio_path).is_file()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.flac")) == [song.audio_path]


@pytest.mark.slow  # ~37 s: a 40 s render and two runs (make test-slow)
def test_asking_a_hosted_catalog_for_versions_later_pays_nothing_again(tmp_path: Path) -> None:
    """Slow form: make test keeps the hosted-versions test above (versions are edited from the delivered
    track, one POST, cost nothing) and test_flow_e2e's same-brief-again (a rerun pays nothing)."""
    audio, seconds = _engine_wav(tmp_path)
    brief = tmp_path / "brief.csv"
    row = {"track_id": "h", "name": "Hosted House", "prompt": "deep house", "seed": 3, "bpm": BPM,
           "output_format": "wav"}
    pd.DataFrame([row]).to_csv(brief, index=False)
    with StandIn(Shape(audio_bytes=audio, audio_seconds=seconds)) as api:
        assert trackfoundry(tmp_path, api, brief).returncode == 0
        later = trackfoundry(tmp_path, api, brief, "--versions", "15")
        assert later.returncode == 0, later.stderr[-3000:]
        assert len(api.posts) == 1  # the song is not generated again: its 15 s cut is edited from it
    versions = _ledger(tmp_path / "out").query("parent != ''")
    assert list(versions.version) == ["15s"] and (versions.status == "ready").all()


@pytest.mark.slow  # ~19 s, a whole rerender (make test-slow); make test: test_flow_e2e's rerender
def test_a_rerender_reproduces_every_version_sample_for_sample(local_run: Path) -> None:
    """Slow form: make test keeps test_flow_e2e.py::test_rerender_is_sample_identical (songs); this adds
    cut-downs, loops, stems and underscores."""
    from flows.rerender import rerender_catalog

    summary = rerender_catalog(str(local_run))
    rerendered = pd.read_parquet(Path(str(summary["out"])) / "ledger.parquet")
    versions = rerendered[rerendered.parent != ""]
    originals = _ledger(local_run)
    assert sorted(versions.audio_path) == sorted(originals[originals.parent != ""].audio_path)
    assert rerendered.identical_to_original.all(), rerendered[["audio_path", "identical_to_original"]]
