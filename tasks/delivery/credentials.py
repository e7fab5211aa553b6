"""Content Credentials (C2PA) for delivered audio: a signed, machine-readable mark that a file is AI-generated
and how it was made (EU AI Act Art. 50(2)), written with the C2PA reference library (c2pa-python, c2pa-rs).

Where it lives. WAV, FLAC, MP3 and M4A carry the manifest store inside the file (a RIFF `C2PA` chunk, a FLAC
metadata block, an ID3 GEOB frame, an ISO-BMFF `uuid` box); the hard binding hashes the rest of the file, so
signing is the LAST write of a file (tags written after it break the binding). OGG Vorbis has no C2PA embedding:
its manifest store is a sidecar beside it, `track.ogg` → `track.c2pa` (C2PA's sidecar convention), whose data
hash covers every byte of the OGG file (the file itself is not changed).

What the manifest says (claim v2, as c2pa-rs 0.91 writes it):
- `claim_generator_info`: TrackFoundry and its version (c2pa-rs allows exactly one entry; it adds its own
  version to it).
- `c2pa.actions.v2`: a song's first action is `c2pa.created` with the IPTC `digitalSourceType` (see
  `digital_source_type`), `softwareAgent` = the provider and its model/engine version, `when` = the
  generation's time. A version (cut-down, loop, stem) instead starts with `c2pa.opened` of its parent, the
  song's delivered, already signed file, added as a `parentOf` ingredient: the parent's manifest joins the
  version's manifest store, so the chain back to the generation verifies. Then one action per processing step,
  each with `parameters.description` = the step as the pipeline names it: `c2pa.filtered` for mastering
  (loudness and peak processing, no editorial change), `c2pa.edited.metadata` for tagging, `c2pa.edited` for
  every edit of the content (cut, loop, stem, anything else).
- `com.trackfoundry.generation` (custom, JSON): provider, model, generation_id, request_fingerprint, seed,
  prompt_sha256, created, pipeline_version, processing, digital_source_type and the AI-contribution disclosure
  (composition, lyrics, vocals, instrumentation, post_production) — what the ledger knows of the generation.
No thumbnail (audio), no timestamp unless the studio's identity names a timestamp authority (offline: none, and
signing needs no network). `c2pa.training-mining` is not written: C2PA 2.x moved it to CAWG, and the brief
states no training/mining policy.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import c2pa

from tasks.delivery.signing import Signing, SigningError, development_identity, signing_identity
from textmusic.contract import FORMATS, MIDI_EXTENSION, MIDI_MEDIA_TYPE

__all__ = ["ALGORITHMIC_MEDIA", "COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA", "GENERATION_LABEL",
           "TRAINED_ALGORITHMIC_MEDIA", "CredentialCheck", "Credentials", "Provenance", "Signing", "SigningError",
           "check_credentials", "development_identity", "digital_source_type", "embeds", "sidecar_path",
           "sign_file", "signing_identity"]

_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = _IPTC + "trainedAlgorithmicMedia"
ALGORITHMIC_MEDIA = _IPTC + "algorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = _IPTC + "compositeWithTrainedAlgorithmicMedia"
GENERATION_LABEL = "com.trackfoundry.generation"
SIDECAR_SUFFIX = ".c2pa"
_PARENT_ID = "parent"
# processing step prefix ("mastered:streaming:+1.20dB" → "mastered") → C2PA action; anything else: c2pa.edited
_STEP_ACTIONS = {"mastered": "c2pa.filtered", "tagged": "c2pa.edited.metadata"}
# The library's validation_state → ours ("Invalid", or anything unknown: invalid). c2pa-rs says "Valid" when the
# signature and hard binding verify but the signer chains to no trust anchor, "Trusted" when it does.
_STATES: dict[str, Literal["valid", "untrusted"]] = {"Trusted": "valid", "Valid": "untrusted"}
# No network while signing or reading: no remote manifests, no OCSP; audio has no thumbnail.
_BASE_SETTINGS: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
                                  "builder": {"thumbnail": {"enabled": False}}}


@dataclass(frozen=True)
class Provenance:
    """What a delivered file is and how it was made (all plain strings/ints from the ledger record)."""

    title: str
    provider: str  # e.g. "textmusic-local" or a hosted profile name
    model: str  # engine_version for the local engine, else the provider's model/engine string or ""
    generation_id: str
    request_fingerprint: str
    seed: int | None
    prompt_sha256: str
    created: str  # ISO 8601 date-time of the generation
    pipeline_version: str  # TrackFoundry version
    processing: tuple[str, ...]  # after generation, e.g. ("mastered:streaming:+1.20dB", "cut:30s", "tagged")
    disclosure: Mapping[str, str]  # AI contribution: composition, lyrics, vocals, instrumentation, post_production
    parent: Path | None = None  # a version's song: its delivered (already signed) file, the parent ingredient
    # The IPTC digital source type of the generation: `digital_source_type(...)`. The default claims the most
    # AI (a trained model), so a caller that forgets it never understates the machine's part.
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA


@dataclass(frozen=True)
class Credentials:
    """What signing wrote: an embedded manifest store or a sidecar (its path), by the studio or the development
    identity, and the manifest store's size."""

    kind: Literal["embedded", "sidecar"]
    signer: Literal["studio", "development"]
    sidecar: Path | None
    manifest_bytes: int


@dataclass(frozen=True)
class CredentialCheck:
    """A file's credentials as the C2PA library validates them. `valid`: signature and hard binding valid and the
    signer chains to a given trust anchor; `untrusted`: valid but chaining to no trusted root (the development
    identity, or no anchors given); `invalid`: a hash or signature mismatch (`problems`: the C2PA validation
    status codes, or the library's error); `missing`: no manifest (neither embedded nor a sidecar)."""

    state: Literal["valid", "untrusted", "invalid", "missing"]
    signer: str = ""
    problems: tuple[str, ...] = ()
    generator: str = ""
    digital_source_type: str = ""
    manifest: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the active manifest


def digital_source_type(provider_is_local: bool, has_vocals: bool) -> str:
    """The IPTC digital source type of a generated song. A hosted provider's music comes from a trained model:
    `trainedAlgorithmicMedia`. The local engine is an algorithmic composer rendered through a General MIDI
    soundfont (recorded instrument samples, no model trained on music): `algorithmicMedia`, "created purely by
    an algorithm not based on any sampled training data" — unless it sings: its vocals come from a neural TTS
    voice (Piper, a trained model), mixed into the algorithmic backing, which is what
    `compositeWithTrainedAlgorithmicMedia` names (a composite of trained algorithmic media with other media)."""
    if not provider_is_local:
        return TRAINED_ALGORITHMIC_MEDIA
    return COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA if has_vocals else ALGORITHMIC_MEDIA


def sidecar_path(path: Path) -> Path:
    """Where a file's sidecar manifest store lives: beside it, with the extension `.c2pa`."""
    return Path(path).with_suffix(SIDECAR_SUFFIX)


def embeds(fmt: str) -> bool:
    """Whether the installed C2PA library embeds a manifest in files of this format (else: a sidecar)."""
    return _media_type(fmt) in _embedded_media_types()


@functools.cache
def _embedded_media_types() -> frozenset[str]:
    """What the installed library embeds in: asked once per process (every signed file needs the answer)."""
    return frozenset(c2pa.Builder.get_supported_mime_types())


def sign_file(path: Path, fmt: str, provenance: Provenance, signing: Signing) -> Credentials:
    """Sign `path` (of `fmt`, a key of textmusic.contract.FORMATS) in place: embed the manifest where the format
    allows, else write the sidecar beside it. The file is replaced atomically (a reader never sees half a
    file); it must not be written again afterwards, since its hash is in the signature. A file signed before is
    signed anew (its old manifest replaced). Raises c2pa.C2paError when the library refuses (e.g. a certificate
    it will not sign with)."""
    path = Path(path)
    media_type = _media_type(fmt)
    builder = c2pa.Builder(_manifest(provenance, media_type), context=_context())
    try:
        if provenance.parent is not None:
            _add_parent(builder, Path(provenance.parent))
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(signing.alg, signing.chain_pem.encode(),
                                                           signing.key_pem.encode(), signing.timestamp_url))
        try:
            if embeds(fmt):
                manifest = _sign_embedded(builder, signer, path, media_type)
                sidecar = None
            else:
                builder.set_no_embed()
                with path.open("rb") as src:
                    manifest = builder.sign(signer, media_type, src, io.BytesIO())
                sidecar = sidecar_path(path)
                _write_atomically(sidecar, manifest, like=path)
        finally:
            signer.close()
    finally:
        builder.close()
    return Credentials("embedded" if sidecar is None else "sidecar",
                       "development" if signing.development else "studio", sidecar, len(manifest))


def check_credentials(path: Path, fmt: str, trust_anchors: str | None = None) -> CredentialCheck:
    """Read and validate `path`'s manifest store (embedded, else its sidecar) with the C2PA library; a signer is
    trusted only when it chains to one of `trust_anchors` (PEM roots), so without them the best is `untrusted`."""
    path = Path(path)
    settings = {**_BASE_SETTINGS, "trust": {"trust_anchors": trust_anchors}} if trust_anchors else _BASE_SETTINGS
    with c2pa.Context.from_dict(settings) as context:
        try:
            store = _read_store(path, _media_type(fmt), context)
        except c2pa.C2paError as exc:  # a manifest is there, but broken beyond validation
            return CredentialCheck("invalid", problems=(str(exc).splitlines()[0],))
    if store is None:
        return CredentialCheck("missing")
    return _check(store)


# --- manifests ---------------------------------------------------------------------------------------------


def _media_type(fmt: str) -> str:
    """The media type of a delivered file's format: an audio format, or a MIDI version (signed in a sidecar)."""
    if fmt == MIDI_EXTENSION:
        return MIDI_MEDIA_TYPE
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)} or {MIDI_EXTENSION}")
    return FORMATS[fmt].media_type


def _context() -> c2pa.Context:
    return c2pa.Context.from_dict(_BASE_SETTINGS)


def _agent(name: str, version: str) -> dict[str, str]:
    return {"name": name, "version": version} if version else {"name": name}


def _manifest(p: Provenance, media_type: str) -> dict[str, Any]:
    """The manifest definition (see the module docstring)."""
    us = _agent("TrackFoundry", p.pipeline_version)
    if p.parent is None:
        first = {"action": "c2pa.created", "digitalSourceType": p.digital_source_type,
                 "softwareAgent": _agent(p.provider, p.model), "when": p.created}
    else:
        first = {"action": "c2pa.opened", "softwareAgent": us, "parameters": {"ingredientIds": [_PARENT_ID]}}
    steps = [{"action": _STEP_ACTIONS.get(step.split(":", 1)[0], "c2pa.edited"), "softwareAgent": us,
              "parameters": {"description": step}} for step in p.processing]
    generation = {"provider": p.provider, "model": p.model, "generation_id": p.generation_id,
                  "request_fingerprint": p.request_fingerprint, "seed": p.seed, "prompt_sha256": p.prompt_sha256,
                  "created": p.created, "pipeline_version": p.pipeline_version, "processing": list(p.processing),
                  "digital_source_type": p.digital_source_type, "disclosure": dict(p.disclosure)}
    return {"claim_generator_info": [us], "title": p.title, "format": media_type,
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [first, *steps]}},
                           {"label": GENERATION_LABEL, "data": generation}]}


def _format_of(path: Path) -> str:
    extension = path.suffix.lstrip(".").lower()
    for name, spec in FORMATS.items():
        if spec.extension == extension:
            return name
    raise ValueError(f"{path}: not a file of a delivery format ({', '.join(FORMATS)})")


def _add_parent(builder: c2pa.Builder, parent: Path) -> None:
    """The parent file as the `parentOf` ingredient: the library reads its embedded manifest store itself; a
    sidecar's store is handed over as the ingredient's manifest data, with the validation results it read."""
    media_type = _media_type(_format_of(parent))
    ingredient: dict[str, Any] = {"title": parent.name, "relationship": "parentOf", "label": _PARENT_ID}
    sidecar = sidecar_path(parent)
    if sidecar.exists() and not embeds(_format_of(parent)):
        manifest = sidecar.read_bytes()
        with _context() as context, parent.open("rb") as fh, \
                c2pa.Reader(media_type, fh, manifest, context=context) as reader:
            store = json.loads(reader.json())
        builder.add_resource("parent.c2pa", io.BytesIO(manifest))
        ingredient |= {"active_manifest": store["active_manifest"],
                       "validation_results": store.get("validation_results", {}),
                       "manifest_data": {"format": "application/c2pa", "identifier": "parent.c2pa"}}
    with parent.open("rb") as fh:
        builder.add_ingredient(ingredient, media_type, fh)


def _sign_embedded(builder: c2pa.Builder, signer: c2pa.Signer, path: Path, media_type: str) -> bytes:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".signing")
    tmp = Path(tmp_name)
    try:
        with path.open("rb") as src, os.fdopen(fd, "w+b") as dest:
            manifest = builder.sign(signer, media_type, src, dest)
            dest.flush()
            os.fsync(dest.fileno())
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def _write_atomically(target: Path, data: bytes, like: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        shutil.copymode(like, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# --- reading -----------------------------------------------------------------------------------------------


def _read_store(path: Path, media_type: str, context: c2pa.Context) -> dict[str, Any] | None:
    """The manifest store of `path` as the library reports it (with its validation), or None when there is none:
    the embedded store first, then a sidecar (a file signed by a library that could not embed its format)."""
    with path.open("rb") as fh:
        reader = _try_reader(media_type, fh, None, context)
        if reader is None:
            sidecar = sidecar_path(path)
            if not sidecar.exists():
                return None
            fh.seek(0)
            reader = _try_reader(media_type, fh, sidecar.read_bytes(), context)
            if reader is None:
                return None
        with reader:
            return dict(json.loads(reader.json()))


def _try_reader(media_type: str, fh: BinaryIO, manifest: bytes | None,
                context: c2pa.Context) -> c2pa.Reader | None:
    try:
        return c2pa.Reader(media_type, fh, manifest, context=context)
    except c2pa.C2paError.ManifestNotFound:
        return None
    except c2pa.C2paError.NotSupported:  # a format the library cannot look inside: only a sidecar can say
        return None


def _check(store: Mapping[str, Any]) -> CredentialCheck:
    manifests = store.get("manifests", {})
    active = manifests.get(store.get("active_manifest", ""), {})
    results = store.get("validation_results") or {}
    problems = [status["code"] for status in results.get("activeManifest", {}).get("failure", [])]
    for delta in results.get("ingredientDeltas", []):
        problems += [status["code"] for status in delta.get("validationDeltas", {}).get("failure", [])]
    state = _STATES.get(str(store.get("validation_state")), "invalid")
    info = active.get("signature_info", {})
    generator = " ".join(filter(None, ((active.get("claim_generator_info") or [{}])[0].get(k, "")
                                       for k in ("name", "version"))))
    return CredentialCheck(state, str(info.get("common_name") or info.get("issuer") or ""),
                           tuple(dict.fromkeys(problems)), generator, _source_type(manifests, active),
                           manifest=active)


def _source_type(manifests: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    """The digitalSourceType of the `c2pa.created` action, following a version's parent back to its song."""
    for _ in range(len(manifests) + 1):
        for assertion in manifest.get("assertions", []):
            if assertion.get("label", "").startswith("c2pa.actions"):
                for action in assertion.get("data", {}).get("actions", []):
                    if action.get("action") == "c2pa.created" and action.get("digitalSourceType"):
                        return str(action["digitalSourceType"])
        parents = [i for i in manifest.get("ingredients", []) if i.get("relationship") == "parentOf"]
        if not parents or parents[0].get("active_manifest") not in manifests:
            return ""
        manifest = manifests[parents[0]["active_manifest"]]
    return ""
