"""Library versions of delivered songs: one file and one ledger record per version (cut-downs, loops, stems).

A provider that renders versions (the local service's `versions` extension) lists each with its own audio:
they are downloaded, checked and tagged like the song. A hosted track arrives as one finished mix, so
cut-downs and loops are edited from it on its own beats (`tasks.delivery.edits`); stems and alternative mixes
cannot be made from a mix and are reported `skipped: not offered`, never faked. The `midi` version (the
composition as a Standard MIDI File) comes only from a provider whose profile offers it (`offers_midi`: the
local service's `versions` list carries it); it is checked and tagged as MIDI (`tasks.delivery.midi`), never
measured or mastered as audio; from a hosted mix it is `skipped: not offered`. Versions cost nothing: the
generation carries the cost. A version file reaches its name only complete and tagged (`.partial/` + rename).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tasks.catalog.ledger import FAILED, READY, SKIPPED, LedgerRecord, record_key, utc_now
from tasks.delivery.check import check_audio, intact
from tasks.delivery.edits import Edit, edit_versions, write_edit
from tasks.delivery.finish import Delivery, QcFailed, follows_parent
from tasks.delivery.midi import check_midi, tag_midi, tag_texts
from tasks.delivery.place import named_bpm, partial_file, place_file, settle
from tasks.delivery.provenance import processing_steps, source_type
from tasks.intake.plan import PlannedRow
from tasks.naming import inside
from tasks.run import CatalogInfo
from textmusic.client import TextMusicClient
from textmusic.contract import (
    MAX_MIDI_BYTES,
    MIDI_EXTENSION,
    MIXES,
    STEM_PARTS,
    SYMBOLIC_VERSIONS,
    Track,
    check_version_kinds,
    stem_name,
    version_file_tag,
    version_media,
    version_name,
)

# What a MIDI version's record does not inherit from its song's: the audio's delivery QC describes the song's
# audio file, not the score. (No version inherits the song's processing or credentials: `_version_record`.)
NOT_AUDIO: dict[str, object] = {
    "output_format": MIDI_EXTENSION, "output_bit_rate": "", "master": "", "master_gain_db": None,
    "loudness_lufs": None, "true_peak_dbtp": None, "lra_lu": None, "head_silence_s": None, "tail_silence_s": None,
    "clipped_samples": None, "dc_offset": None, "sample_rate": None, "bit_depth": None, "qc": "", "held_file": "",
}
NOT_OFFERED_MIDI = "not offered: the provider delivers no MIDI (a finished mix has no score)"


def asked_kinds(row: PlannedRow) -> list[str]:
    """The version kinds a row asks for, full excluded (it is the song itself)."""
    return [k for k in check_version_kinds(row.request.versions or []) if k != "full"]


def version_file(row: PlannedRow, record: LedgerRecord) -> str:
    """A version's file name: the catalog's template with the version's tag and the song's BPM (libraries ask
    for the BPM in the name); a MIDI version's ends in `.mid`."""
    name = row.file_name(record.song_index, named_bpm(record), version_file_tag(record.version))
    if version_media(record.version) == "midi":
        return str(PurePosixPath(name).with_suffix(f".{MIDI_EXTENSION}"))
    return name


def deliver_versions(mains: list[LedgerRecord], rows: dict[str, PlannedRow], previous: list[LedgerRecord],
                     client: TextMusicClient | None, out_dir: Path, catalog: CatalogInfo, tolerance: float,
                     delivery: Delivery, journal: Callable[[list[LedgerRecord]], None]) -> list[LedgerRecord]:
    """Version records for every delivered song whose row asks for versions, each brought to the delivery
    spec like the song; versions already in the catalog (same song, request and intact file) are kept."""
    records: list[LedgerRecord] = []
    for main in mains:
        row = rows.get(main.track_id)
        if main.status != READY or main.parent or row is None or not row.request.versions:
            continue
        kept = _intact(main, previous, out_dir)
        if _covers(asked_kinds(row), kept):
            records += kept.values()
            continue
        place = functools.partial(_place, row=row, main=main, out_dir=out_dir, catalog=catalog, delivery=delivery)
        made = _from_provider(main, asked_kinds(row), client, tolerance, kept, place) \
            if client is not None else _edited(main, asked_kinds(row), _requested_bpm(row), out_dir, kept, place)
        journal(made)
        records += made
    return records


def _intact(main: LedgerRecord, previous: list[LedgerRecord], out_dir: Path) -> dict[str, LedgerRecord]:
    """This song's version records of an earlier run whose files are still what was recorded."""
    found = {}
    for record in previous:
        if (record.parent == main.audio_path and record.track_id == main.track_id
                and record.request_fingerprint == main.request_fingerprint and record.status == READY
                and intact(out_dir, record.audio_path, record.sha256)):
            found[record.version] = record
    return found


def _covers(kinds: list[str], kept: dict[str, LedgerRecord]) -> bool:
    """Whether the versions already in the catalog are all the row asks for (stems: as the song had them)."""
    names = set(kept)
    return all(any(n.startswith("stem:") for n in names) if k == "stems" else version_name(k) in names
               for k in kinds)


def _version_record(main: LedgerRecord, name: str, **update: object) -> LedgerRecord:
    """A version's record from its song's: free, not yet made; a MIDI version's without the audio's fields."""
    now = utc_now()
    symbolic = NOT_AUDIO if version_media(name) == "midi" else {}
    return main.model_copy(update={
        "version": name, "parent": main.audio_path, "cost_cents": 0, "cost_usd": 0.0, "at_risk_cents": 0,
        "similar_to": "", "similarity": None, "started_at": now, "finished_at": now, "error": "",
        "processing": "", "credentials": "", "signer": "", "credentials_file": "",
        "key_measured": "", "key_confidence": None, "key_warning": "", **symbolic,  # measured on its own file
        **update})


Place = Callable[[LedgerRecord, Callable[[Path], object]], LedgerRecord]


def _from_provider(main: LedgerRecord, kinds: list[str], client: TextMusicClient, tolerance: float,
                   kept: dict[str, LedgerRecord], place: Place) -> list[LedgerRecord]:
    """Download every version the provider lists for the song's track; an asked one it does not list is
    reported failed (stems are listed as the song has them: no vocals stem in an instrumental); `midi` from a
    provider whose profile does not offer it is reported not offered (the request did not ask it there)."""
    skipped = [] if client.profile.offers_midi else _midi_not_offered(main, kinds)
    kinds = [k for k in kinds if client.profile.offers_midi or k not in SYMBOLIC_VERSIONS]
    try:
        track = client.get_track(main.generation_id)
    except Exception as exc:
        return skipped + [_version_record(main, version_name(k), status=FAILED, audio_path="", duration_seconds=None,
                                          error=f"versions not fetched: {client.redact(str(exc))}") for k in kinds]
    records = skipped
    for listed in track.versions:
        if listed.name == "full" or (listed.name in SYMBOLIC_VERSIONS and listed.name not in kinds):
            continue
        if listed.name in kept:
            records.append(kept[listed.name])
            continue
        record = _version_record(main, listed.name, duration_seconds=round(listed.duration_seconds, 3))
        records.append(place(record, functools.partial(_download, track, record, client, tolerance)))
    listed_names = {v.name for v in track.versions}
    records += [_version_record(main, version_name(k), status=FAILED, audio_path="", duration_seconds=None,
                                error="the provider did not deliver this version")
                for k in kinds if k != "stems" and version_name(k) not in listed_names]
    return records


def _download(track: Track, record: LedgerRecord, client: TextMusicClient, tolerance: float, tmp: Path) -> None:
    """The listed version's file into `tmp`, checked as what it is: audio of its length, or a MIDI file
    (bounded to MAX_MIDI_BYTES on the wire: a score is small)."""
    if version_media(record.version) == "midi":
        client.download(track, tmp, version=record.version, max_bytes=MAX_MIDI_BYTES)
        check_midi(tmp)
        return
    client.download(track, tmp, version=record.version)
    check_audio(tmp, record.output_format, record.duration_seconds, tolerance)


def _edited(main: LedgerRecord, kinds: list[str], bpm_asked: float | None, out_dir: Path,
            kept: dict[str, LedgerRecord], place: Place) -> list[LedgerRecord]:
    """Cut-downs and loops edited from the delivered mix; stems, mixes and MIDI reported as not offered."""
    records = [_version_record(main, name, status=SKIPPED, audio_path="", duration_seconds=None,
                               error="not offered: a finished mix has no stems (the provider delivers none)")
               for name in _mix_names(kinds)]
    records += _midi_not_offered(main, kinds)
    editable = [k for k in kinds if k not in MIXES and k not in SYMBOLIC_VERSIONS]
    edits = [k for k in editable if version_name(k) not in kept]
    records += [kept[version_name(k)] for k in editable if version_name(k) in kept]
    if not edits:
        return records
    parent = out_dir / main.audio_path
    for kind, result in edit_versions(parent, tuple(edits), main.bpm or bpm_asked).items():
        record = _version_record(main, version_name(kind))
        if not isinstance(result, Edit):
            records.append(record.model_copy(update={"status": FAILED, "audio_path": "", "duration_seconds": None,
                                                     "error": f"version not made: {result.reason}"}))
            continue
        record = record.model_copy(update={"duration_seconds": round(result.seconds, 3),
                                           "processing": f"edited:{record.version}"})  # cut from the song's mix
        records.append(place(record, lambda tmp, edit=result: write_edit(edit, parent, tmp)))
    return records


def _midi_not_offered(main: LedgerRecord, kinds: list[str]) -> list[LedgerRecord]:
    """The asked MIDI versions of a song whose provider delivers no score: skipped, with the reason."""
    return [_version_record(main, version_name(k), status=SKIPPED, audio_path="", duration_seconds=None,
                            error=NOT_OFFERED_MIDI) for k in kinds if k in SYMBOLIC_VERSIONS]


def _mix_names(kinds: list[str]) -> list[str]:
    names = [stem_name(part) for part in STEM_PARTS] if "stems" in kinds else []
    return names + [k for k in kinds if k in MIXES and k != "stems"]


def _requested_bpm(row: PlannedRow) -> float | None:
    bpm = row.request.bpm
    return float(bpm) if isinstance(bpm, int | float) else None


def _place(record: LedgerRecord, make: Callable[[Path], object], *, row: PlannedRow, main: LedgerRecord,
           out_dir: Path, catalog: CatalogInfo, delivery: Delivery) -> LedgerRecord:
    """Make the file in `.partial/`, bring it to the delivery spec (a stem or alternative mix at its song's
    gain), tag it, and rename it into the catalog; a MIDI version is placed as MIDI (`_place_midi`)."""
    song = inside(out_dir, main.audio_path)  # the parent of the version's credentials
    if version_media(record.version) == "midi":
        return _place_midi(record, make, row=row, out_dir=out_dir, catalog=catalog, delivery=delivery, song=song)
    name = version_file(row, record)
    gain = (main.master_gain_db or 0.0) if follows_parent(record.version) else None
    try:
        with partial_file(out_dir, Path(name).suffix) as tmp:
            make(tmp)
            return place_file(tmp, record, out_dir, name, catalog, delivery, parent_gain_db=gain, parent=song)
    except QcFailed as exc:
        return record.model_copy(update={**exc.fields, "status": FAILED, "audio_path": "", "error": str(exc)})
    except Exception as exc:
        return record.model_copy(update={"status": FAILED, "audio_path": "", "error": f"version not made: {exc}"})


def _place_midi(record: LedgerRecord, make: Callable[[Path], object], *, row: PlannedRow, out_dir: Path,
                catalog: CatalogInfo, delivery: Delivery, song: Path) -> LedgerRecord:
    """Make the MIDI file in `.partial/` (downloaded and checked), tag it with MIDI meta events (title, copyright,
    provenance), then settle it like audio (its credentials in a sidecar: C2PA cannot embed in MIDI): no
    loudness QC or mastering, it is not audio. Any failure fails this version's record only."""
    name = version_file(row, record)
    record = record.model_copy(update={"digital_source_type": source_type(record),
                                       "processing": processing_steps(record, ())})
    try:
        with partial_file(out_dir, f".{MIDI_EXTENSION}") as tmp:
            make(tmp)
            tag_midi(tmp, midi_tags(record, catalog))
            return settle(tmp, record, out_dir, name, catalog, {}, delivery.signing, song)
    except Exception as exc:
        return record.model_copy(update={"status": FAILED, "audio_path": "", "error": f"version not made: {exc}"})


def midi_tags(record: LedgerRecord, catalog: CatalogInfo) -> dict[str, str]:
    """A MIDI version's tags, from its ledger record as the audio files' are: the title, the copyright of the
    publisher (else the catalog), and the provenance a reader needs to trace or re-render it."""
    owner = record.publisher or catalog.publisher or catalog.name
    year = (catalog.date or record.finished_at)[:4]
    provenance = (f"AI-generated. catalog={catalog.name}; provider={record.provider}; "
                  f"generation_id={record.generation_id}; seed={record.seed}; parent={record.parent}")
    return tag_texts(record.name, " ".join(part for part in ("(C)", year, owner) if part), provenance)


def superseded_not(earlier: list[LedgerRecord], records: list[LedgerRecord]) -> list[LedgerRecord]:
    """Version records of earlier runs that this run's records do not replace: kept in the ledger."""
    covered = {record_key(r) for r in records}
    return [r for r in earlier if record_key(r) not in covered]
