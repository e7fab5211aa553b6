"""Content Credentials on real files of every delivery format, signed and read back by the real C2PA library."""

from __future__ import annotations

import io
import json
import stat
import threading
from pathlib import Path

import c2pa
import numpy as np
import pytest

from tasks.delivery.credentials import (
    ALGORITHMIC_MEDIA,
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    GENERATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    Provenance,
    Signing,
    SigningError,
    check_credentials,
    digital_source_type,
    sidecar_path,
    sign_file,
    signing_identity,
)
from tasks.delivery.signing import _new_development_files, development_identity
from tasks.delivery.tagging import read_tags, write_tags
from tasks.settings import PipelineSettings
from textmusic.audio.read import read_audio
from textmusic.audio.write import write_audio
from textmusic.contract import FORMATS

FMTS = tuple(FORMATS)  # flac mp3 wav ogg m4a
EMBEDDED = ("wav", "flac", "mp3", "m4a")
RATE = 44100
DISCLOSURE = {"composition": "ai", "lyrics": "none", "vocals": "none", "instrumentation": "ai",
              "post_production": "ai"}


def provenance(**changes: object) -> Provenance:
    fields: dict[str, object] = dict(
        title="Night Drive", provider="textmusic-local", model="engine-7", generation_id="gen-123",
        request_fingerprint="fp-abc", seed=42, prompt_sha256="ab" * 32, created="2026-12-06T07:00:00+00:00",
        pipeline_version="0.1.0", processing=("mastered:streaming:+1.20dB", "tagged"), disclosure=DISCLOSURE,
        digital_source_type=digital_source_type(provider_is_local=True, has_vocals=False))
    fields.update(changes)
    return Provenance(**fields)  # type: ignore[arg-type]


def tone(seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    mono = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono, 0.8 * mono], axis=1)


def audio_file(folder: Path, fmt: str, name: str = "song", seconds: float = 1.0) -> Path:
    path = folder / f"{name}.{FORMATS[fmt].extension}"
    write_audio(tone(seconds), RATE, path, fmt)
    return path


def flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Signing:
    return signing_identity(PipelineSettings(state_dir=tmp_path_factory.mktemp("state")))


@pytest.mark.parametrize("fmt", FMTS)
def test_signed_file_reads_back_untrusted_then_valid_with_the_dev_root(tmp_path: Path, fmt: str,
                                                                       dev: Signing) -> None:
    path = audio_file(tmp_path, fmt)
    write_tags(path, {"title": "x"})
    before, _ = read_audio(path)

    creds = sign_file(path, fmt, provenance(), dev)

    assert creds.signer == "development" and creds.manifest_bytes > 1000
    if fmt in EMBEDDED:
        assert creds.kind == "embedded" and creds.sidecar is None and not sidecar_path(path).exists()
        with c2pa.Reader(FORMATS[fmt].media_type, io.BytesIO(path.read_bytes())) as reader:  # embedded
            assert reader.get_active_manifest()["title"] == "Night Drive"
    else:
        assert creds.kind == "sidecar" and creds.sidecar == sidecar_path(path) == path.with_suffix(".c2pa")
        assert creds.sidecar.stat().st_size == creds.manifest_bytes
        with pytest.raises(c2pa.C2paError):  # nothing inside the OGG itself
            c2pa.Reader(FORMATS[fmt].media_type, io.BytesIO(path.read_bytes()))
        with c2pa.Reader(FORMATS[fmt].media_type, io.BytesIO(path.read_bytes()),
                         creds.sidecar.read_bytes()) as reader:
            assert reader.get_active_manifest()["title"] == "Night Drive"

    check = check_credentials(path, fmt)
    assert check.state == "untrusted"
    assert check.problems == ("signingCredential.untrusted",)
    assert check.signer == "TrackFoundry development signer"
    assert check.generator == "TrackFoundry 0.1.0"
    assert check.digital_source_type == ALGORITHMIC_MEDIA
    trusted = check_credentials(path, fmt, trust_anchors=dev.root_pem)
    assert (trusted.state, trusted.problems) == ("valid", ())

    manifest = trusted.manifest
    actions = next(a["data"]["actions"] for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    assert [a["action"] for a in actions] == ["c2pa.created", "c2pa.filtered", "c2pa.edited.metadata"]
    assert actions[0]["softwareAgent"]["name"] == "textmusic-local"
    assert actions[1]["parameters"]["description"] == "mastered:streaming:+1.20dB"
    generation = next(a["data"] for a in manifest["assertions"] if a["label"] == GENERATION_LABEL)
    assert generation["generation_id"] == "gen-123" and generation["seed"] == 42
    assert generation["disclosure"] == DISCLOSURE

    assert read_tags(path)["title"] == "x"  # tags written before signing survive it
    after, _ = read_audio(path)
    np.testing.assert_array_equal(after, before)  # the audio is untouched (every format: same stream decoded)


@pytest.mark.parametrize("fmt", FMTS)
def test_one_changed_byte_of_audio_is_invalid(tmp_path: Path, fmt: str, dev: Signing) -> None:
    path = audio_file(tmp_path, fmt)
    sign_file(path, fmt, provenance(), dev)
    flip_middle_byte(path)
    check = check_credentials(path, fmt, trust_anchors=dev.root_pem)
    assert check.state == "invalid"
    assert any(code.endswith("Hash.mismatch") for code in check.problems), check.problems


@pytest.mark.parametrize("fmt", FMTS)
def test_unsigned_file_has_no_credentials(tmp_path: Path, fmt: str) -> None:
    assert check_credentials(audio_file(tmp_path, fmt), fmt).state == "missing"


@pytest.mark.parametrize("fmt", FMTS)
def test_version_lists_its_signed_parent_as_ingredient(tmp_path: Path, fmt: str, dev: Signing) -> None:
    song = audio_file(tmp_path, fmt, "song", seconds=2.0)
    sign_file(song, fmt, provenance(), dev)
    cut = audio_file(tmp_path, fmt, "song-30s")
    sign_file(cut, fmt, provenance(title="Night Drive (30s)", processing=("cut:30s", "tagged"), parent=song), dev)

    check = check_credentials(cut, fmt, trust_anchors=dev.root_pem)
    assert (check.state, check.problems) == ("valid", ())
    [parent] = check.manifest["ingredients"]
    assert parent["title"] == song.name and parent["relationship"] == "parentOf"
    # the song's own manifest is in the version's store: the chain leads back to the generation
    song_label = check_credentials(song, fmt).manifest["label"]
    assert parent["active_manifest"] == song_label
    actions = next(a["data"]["actions"] for a in check.manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited", "c2pa.edited.metadata"]
    assert check.digital_source_type == ALGORITHMIC_MEDIA  # from the song's c2pa.created


def test_development_identity_is_made_once_per_state_dir(tmp_path: Path) -> None:
    settings = PipelineSettings(state_dir=tmp_path / "state")
    first = signing_identity(settings)
    again = signing_identity(settings)
    assert first == again and first.key_pem == again.key_pem and first.development
    folder = tmp_path / "state" / "signing" / "development"
    assert sorted(p.name for p in folder.iterdir()) == ["chain.pem", "key.pem", "root.pem"]
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "state" / "signing").iterdir()] == ["development"]  # no staging left
    assert first.chain_pem.endswith(first.root_pem or "-")  # leaf, then the root
    assert signing_identity(PipelineSettings(state_dir=tmp_path / "other")).key_pem != first.key_pem


def test_concurrent_first_runs_agree_on_one_identity(tmp_path: Path) -> None:
    made: list[Signing] = []
    threads = [threading.Thread(target=lambda: made.append(development_identity(tmp_path))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 4 and all(m == made[0] for m in made)


def test_studio_identity_from_files_is_used_instead(tmp_path: Path, dev: Signing) -> None:
    files = {name: text for name, text, _ in _new_development_files()}  # a chain the studio could have bought
    (tmp_path / "studio-chain.pem").write_text(files["chain.pem"])
    (tmp_path / "studio-key.pem").write_text(files["key.pem"])
    settings = PipelineSettings(state_dir=tmp_path / "state", signing_cert_file=tmp_path / "studio-chain.pem",
                                signing_key_file=tmp_path / "studio-key.pem")
    studio = signing_identity(settings)
    assert not studio.development and studio.alg == "es256" and studio.chain_pem == files["chain.pem"]
    assert not (tmp_path / "state" / "signing").exists()  # no development identity made

    path = audio_file(tmp_path, "wav")
    assert sign_file(path, "wav", provenance(), studio).signer == "studio"
    assert check_credentials(path, "wav", trust_anchors=files["root.pem"]).state == "valid"
    assert check_credentials(path, "wav", trust_anchors=dev.root_pem).state == "untrusted"  # another root


def test_half_a_studio_identity_is_refused(tmp_path: Path) -> None:
    (tmp_path / "chain.pem").write_text("x")
    with pytest.raises(SigningError, match="without its key"):
        signing_identity(PipelineSettings(state_dir=tmp_path, signing_cert_file=tmp_path / "chain.pem"))
    with pytest.raises(SigningError, match="without its certificate"):
        signing_identity(PipelineSettings(state_dir=tmp_path, signing_key_file=tmp_path / "chain.pem"))


def test_digital_source_type() -> None:
    assert digital_source_type(provider_is_local=False, has_vocals=False) == TRAINED_ALGORITHMIC_MEDIA
    assert digital_source_type(provider_is_local=False, has_vocals=True) == TRAINED_ALGORITHMIC_MEDIA
    assert digital_source_type(provider_is_local=True, has_vocals=False) == ALGORITHMIC_MEDIA
    assert digital_source_type(provider_is_local=True, has_vocals=True) == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA


def test_hosted_song_is_marked_trained(tmp_path: Path, dev: Signing) -> None:
    path = audio_file(tmp_path, "mp3")
    sign_file(path, "mp3", provenance(provider="acme-hosted", model="", digital_source_type=TRAINED_ALGORITHMIC_MEDIA),
              dev)
    check = check_credentials(path, "mp3")
    assert check.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    created = json.dumps(check.manifest["assertions"])
    assert '"softwareAgent": {"name": "acme-hosted"}' in created
