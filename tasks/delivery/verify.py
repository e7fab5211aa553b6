"""Verifying a catalog against its ledger: every delivered file is still the one recorded, decodes, carries the
tags its record says, discloses how it was made, and holds valid content credentials; nothing else lies in the
catalog as if delivered. `trackfoundry verify DIR` prints the table and fails on any problem; a run ends with it,
so the page shows each file's verdict (tasks/catalog/verification.py).

Credentials signed with the development certificate read as `untrusted` (no one trusts that root): that passes
for a file the ledger records as development-signed, as it says; a studio-signed file must chain to the trust
anchors given (TRACKFOUNDRY_SIGNING_TRUST_ANCHORS) when there are any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from tasks.catalog.ledger import READY, LedgerRecord, load_ledger
from tasks.catalog.verification import FileVerdict, Verification
from tasks.delivery.bwf import read_broadcast
from tasks.delivery.check import AudioCheckError, check_audio
from tasks.delivery.credentials import check_credentials, sidecar_path
from tasks.delivery.midi import MidiCheckError, check_midi
from tasks.delivery.place import tag_values
from tasks.delivery.tagging import read_tags, tag_text
from tasks.intake.fields import DISCLOSURE_FIELDS
from tasks.naming import inside
from tasks.run import CatalogInfo
from tasks.settings import DURATION_TOLERANCE_SECONDS
from textmusic.audio.identity import sha256_file
from textmusic.contract import FORMATS, MIDI_EXTENSION

CHECKS = ("checksum", "decode", "tags", "disclosure", "credentials", "broadcast")
_SKIPPED_TAGS = ("date",)  # the run's date: not in the record (a ledger row may be finished the next day)
_DELIVERED_SUFFIXES = {f".{name}" for name in FORMATS} | {f".{MIDI_EXTENSION}", ".c2pa"}


@dataclass(frozen=True)
class Outcome:
    """One check of one file: `shown` is what the table prints; `problem` is empty when it passed."""

    shown: str
    problem: str = ""


def passed(shown: str = "ok") -> Outcome:
    return Outcome(shown)


def failed(shown: str, problem: str) -> Outcome:
    return Outcome(shown, problem)


def verify_catalog(out_dir: Path, trust_anchors: str | None = None,
                   tolerance: float = DURATION_TOLERANCE_SECONDS) -> Verification:
    """Every ready file of the ledger checked (the latest record of each file; `tolerance`: how far its decoded
    length may be from the recorded one), then every file in the catalog that no record delivered."""
    records = _delivered(load_ledger(out_dir))
    verdicts = [verify_file(out_dir, record, trust_anchors, tolerance) for record in records]
    recorded = {r.audio_path for r in records} | {r.credentials_file for r in records if r.credentials_file}
    verdicts += [FileVerdict(audio_path=name, checks={"checksum": "not in the ledger"}, failed=["checksum"],
                             problems=[f"{name}: a file no ledger record delivered"])
                 for name in _files_in(out_dir) if name not in recorded]
    return Verification(checked_at=datetime.now(UTC).isoformat(timespec="seconds"), files=verdicts)


def _delivered(records: list[LedgerRecord]) -> list[LedgerRecord]:
    """The latest ready record of each delivered file (an older record may name a file rewritten since)."""
    latest: dict[str, LedgerRecord] = {}
    for record in sorted(records, key=lambda r: r.finished_at):
        if record.status == READY and record.audio_path:
            latest[record.audio_path] = record
    return sorted(latest.values(), key=lambda r: r.audio_path)


def _files_in(out_dir: Path) -> list[str]:
    """The catalog's own files as delivered ones are named (top level: names never hold a folder)."""
    return sorted(p.name for p in out_dir.iterdir() if p.is_file() and p.suffix.lower() in _DELIVERED_SUFFIXES)


def verify_file(out_dir: Path, record: LedgerRecord, trust_anchors: str | None,
                tolerance: float = DURATION_TOLERANCE_SECONDS) -> FileVerdict:
    """All checks of one delivered file; the first that cannot go on (missing, changed) leaves the rest out."""
    try:
        path = inside(out_dir, record.audio_path)
    except ValueError:
        return _verdict(record, "", {"checksum": failed("outside", "the ledger names a file outside the catalog")})
    if not path.is_file():
        return _verdict(record, "", {"checksum": failed("missing", "the file is missing")})
    digest = sha256_file(path)
    if digest != record.sha256:
        return _verdict(record, digest, {"checksum": failed("changed", "its SHA-256 differs from the ledger's")})
    delivered = _Delivered(path, record, trust_anchors, tolerance)
    return _verdict(record, digest, {"checksum": passed(),
                                     **{name: check(delivered) for name, check in _checks(record).items()}})


def _verdict(record: LedgerRecord, digest: str, outcomes: dict[str, Outcome]) -> FileVerdict:
    return FileVerdict(audio_path=record.audio_path, sha256=digest,
                       checks={name: o.shown for name, o in outcomes.items()},
                       failed=[name for name, o in outcomes.items() if o.problem],
                       problems=[f"{record.audio_path}: {name}: {o.problem}" for name, o in outcomes.items()
                                 if o.problem])


@dataclass(frozen=True)
class _Delivered:
    """One delivered file as its checks see it: its tags are read, and its record's tags worked out, once."""

    path: Path
    record: LedgerRecord
    trust_anchors: str | None
    tolerance: float

    @cached_property
    def tags(self) -> dict[str, str]:
        return read_tags(self.path)

    @cached_property
    def expected(self) -> dict[str, str]:
        """The tags its record gives (the run's date aside: it is not in the record)."""
        values = tag_values(self.record, CatalogInfo(name=self.record.catalog))
        return {k: v for k, v in values.items() if v and k not in _SKIPPED_TAGS}


Check = Callable[[_Delivered], Outcome]
_DISCLOSED = (*DISCLOSURE_FIELDS, "digital_source_type")


def _checks(record: LedgerRecord) -> dict[str, Check]:
    """The checks a file's kind takes: MIDI has no audio or audio tags (its credentials are a sidecar); only WAV
    has bext/iXML."""
    if record.output_format == MIDI_EXTENSION:
        return {"decode": _decodes_midi, "credentials": _credentials}
    checks: dict[str, Check] = {"decode": _decodes, "tags": _tags, "disclosure": _disclosure,
                                "credentials": _credentials}
    if record.output_format == "wav":
        checks["broadcast"] = _broadcast
    return checks


def _decodes(file: _Delivered) -> Outcome:
    try:
        check_audio(file.path, file.record.output_format, file.record.duration_seconds, file.tolerance)
    except AudioCheckError as exc:
        return failed("fails", str(exc))
    return passed()


def _decodes_midi(file: _Delivered) -> Outcome:
    try:
        check_midi(file.path)
    except MidiCheckError as exc:
        return failed("fails", str(exc))
    return passed()


def _tags(file: _Delivered) -> Outcome:
    wrong = sorted(k for k, v in file.expected.items()
                   if k not in DISCLOSURE_FIELDS and file.tags.get(k) != tag_text(k, v))
    return failed("differ", f"tags {', '.join(wrong)} differ from the ledger") if wrong else passed()


def _disclosure(file: _Delivered) -> Outcome:
    missing = sorted(k for k in _DISCLOSED if not file.expected.get(k))
    wrong = sorted(k for k in _DISCLOSED if k in file.expected and file.tags.get(k) != file.expected[k])
    if missing or wrong:
        return failed("differs", f"disclosure {', '.join(missing + wrong)} missing or different from the ledger")
    return passed()


def _credentials(file: _Delivered) -> Outcome:
    record = file.record
    if not record.credentials:
        return failed("unsigned", "the ledger records no content credentials")
    if record.credentials == "sidecar" and not sidecar_path(file.path).is_file():
        return failed("missing", f"its sidecar manifest {sidecar_path(file.path).name} is missing")
    result = check_credentials(file.path, record.output_format, file.trust_anchors)
    if result.state == "valid" or (result.state == "untrusted" and _may_be_untrusted(record, file.trust_anchors)):
        return passed("ok (dev cert)" if record.signer == "development" else "ok" if result.state == "valid"
                      else "ok (untrusted)")
    return failed(result.state, "; ".join(result.problems) or f"credentials {result.state}")


def _may_be_untrusted(record: LedgerRecord, trust_anchors: str | None) -> bool:
    """A development signature is untrusted by design; a studio's is trusted once its roots are given."""
    return record.signer == "development" or trust_anchors is None


def _broadcast(file: _Delivered) -> Outcome:
    """bext (its version), iXML (its version) and the XMP mark, as the record says."""
    found = read_broadcast(file.path)
    missing = [chunk for chunk, key in (("bext", "bext_version"), ("iXML", "ixml_version")) if not found.get(key)]
    if found.get("digital_source_type") != file.record.digital_source_type:
        missing.append("XMP source type")
    return failed("missing", f"no {', '.join(missing)}") if missing else passed()
