"""Re-render: rebuild each track's request from its ledger record (parameters and its own seed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import mido

from tasks.catalog.ledger import READY, LedgerRecord
from tasks.intake.fields import METADATA_COLUMNS
from tasks.intake.plan import (
    Named,
    PlannedRow,
    Pricing,
    expected_cost_cents,
    max_cost_cents,
    priced,
    request_fingerprint,
)
from tasks.intake.routes import DEFAULT_ROUTE, Routes
from tasks.naming import DEFAULT_FILE_NAME_TEMPLATE, NAME_FIELDS, safe_stem
from tasks.settings import PipelineSettings
from textmusic.audio.identity import same_audio
from textmusic.contract import BIT_RATE_FORMATS, CUT_SECONDS, LOSSLESS_FORMATS, MIDI_EXTENSION, TextToMusicRequest

# A MIDI file's texts that name its generation (title, copyright, provenance), not the music: a re-render's differ.
MIDI_TAG_EVENTS = frozenset({"track_name", "copyright", "text"})


def ready_originals(records: list[LedgerRecord], track_ids: list[str] | None = None) -> list[LedgerRecord]:
    """The ready songs (and their versions) a re-render regenerates: all, or those of `track_ids`."""
    wanted = set(track_ids or ())
    return [r for r in records if r.status == READY and (not wanted or r.track_id in wanted)]


def rerender_cost_cents(rows: list[PlannedRow], settings: PipelineSettings, provider: Pricing) -> tuple[int, int]:
    """(expected, at most) cents the rows cost by their providers' price models: said before a re-render pays."""
    return (sum(expected_cost_cents(r.request, settings, priced(r, provider)) for r in rows),
            sum(max_cost_cents(r.request, settings, priced(r, provider)) for r in rows))


def rerender_route(record: LedgerRecord, routes: Routes) -> str:
    """The route of the profile a song was made through (its `provider_profile`), so it is re-rendered there: the
    run's own provider when it is that profile, or when the record names none (made before profiles were
    recorded); else that profile, routed. RouteError: it is no profile this run may use, or its key is not set."""
    name = record.provider_profile
    if not name or name == routes.default.name:
        return DEFAULT_ROUTE
    return routes.route(name)


def routed_rerender_rows(records: list[LedgerRecord], routes: Routes, providers: Mapping[str, Named],
                         output_format: str | None = None, bit_rate: str | None = None,
                         name_template: str = DEFAULT_FILE_NAME_TEMPLATE) -> list[PlannedRow]:
    """`rerender_rows` for each provider the songs were made at (`providers`: by route), each row on its route."""
    rows = []
    for route, provider in providers.items():
        mine = [r for r in records if rerender_route(r, routes) == route]
        rows += [replace(row, provider=route) for row in rerender_rows(
            mine, provider.name, provider.local_extensions, output_format, bit_rate, name_template)]
    return rows


def version_kinds(song: LedgerRecord, records: list[LedgerRecord]) -> list[str] | None:
    """The version kinds a song was delivered with, read back from its version records ("30s" → "30",
    "stem:drums" → "stems"), so a re-render asks for the same versions."""
    names = {r.version for r in records if r.parent == song.audio_path and r.track_id == song.track_id}
    kinds = {"stems" if n.startswith("stem:") else n.removesuffix("s") if n.removesuffix("s") in CUT_SECONDS
             else n for n in names}
    return sorted(kinds) or None


def rerender_rows(
    records: list[LedgerRecord],
    provider: str,
    local_extensions: bool,
    output_format: str | None = None,
    bit_rate: str | None = None,
    name_template: str = DEFAULT_FILE_NAME_TEMPLATE,
) -> list[PlannedRow]:
    """One single-song row per ready song (its versions asked again, named by `name_template` as they were):
    a song's own seed renders it alone, as in its pair."""
    rows = []
    for rec in (r for r in records if not r.parent):
        fmt = output_format or rec.output_format
        rate = (bit_rate or rec.output_bit_rate or None) if fmt in BIT_RATE_FORMATS else None
        request = TextToMusicRequest(
            prompt=rec.prompt or None,
            tags=[t for t in rec.tags.split("|") if t] or None,
            lyrics=rec.lyrics or None,
            seed=rec.seed,
            prompt_strength=rec.prompt_strength,
            balance_strength=rec.balance_strength,
            num_songs=1,
            output_format=fmt,
            output_bit_rate=rate,
            bpm="auto" if rec.bpm_requested in ("", "auto") else float(rec.bpm_requested),
            store_audio=bool(rec.store_audio),
            name=rec.name,
            duration_seconds=rec.duration_requested,
            versions=version_kinds(rec, records),
            key=rec.key_requested or None,  # the key it was composed in, if one was sent: the same audio again
        )
        rows.append(PlannedRow(
            row=rec.row or 0,
            track_id=rec.track_id,
            name=rec.name,
            request=request,
            seed_source="ledger",
            fingerprint=request_fingerprint(request, provider, local_extensions),
            file_track=safe_stem(rec.track_id)[:NAME_FIELDS["track"]],
            metadata={f: getattr(rec, f) for f in METADATA_COLUMNS if getattr(rec, f)},
            file_names=(str(Path(rec.audio_path).with_suffix(f".{fmt}")),),
            catalog=rec.catalog,
            name_template=name_template,
        ))
    return rows


def delivery_settings(settings: PipelineSettings, songs: list[LedgerRecord]) -> PipelineSettings:
    """The delivery spec the songs were delivered to (their master; 48 kHz or 24-bit WAV/FLAC), so re-rendered
    files are mastered as the originals were."""
    first = next((s for s in songs if s.master), None)
    if first is None:
        return settings
    settable = first.output_format in LOSSLESS_FORMATS
    return settings.model_copy(update={
        "master": first.master,
        "sample_rate": first.sample_rate if settable and first.sample_rate == 48000 else None,
        "bit_depth": first.bit_depth if settable and first.bit_depth == 24 else None})


def _with_originals(
    new: list[LedgerRecord], originals: list[LedgerRecord]
) -> list[tuple[LedgerRecord, LedgerRecord | None]]:
    """Each re-rendered record with its original (same file name, any format), if there is one."""
    by_name = {Path(o.audio_path).stem: o for o in originals}
    return [(rec, by_name.get(Path(rec.audio_path).stem)) for rec in new]


def engine_changed(new: list[LedgerRecord], originals: list[LedgerRecord]) -> dict[str, tuple[str, str]]:
    """Re-rendered songs whose provider reported another engine version than their original's:
    {file stem: (original version, new version)}. Sample identity is promised only within one version."""
    return {
        Path(rec.audio_path).stem: (original.engine_version, rec.engine_version)
        for rec, original in _with_originals(new, originals)
        if original is not None and original.engine_version and rec.engine_version
        and original.engine_version != rec.engine_version
    }


def compare_to_originals(
    new: list[LedgerRecord], originals: list[LedgerRecord], catalog_dir: Path, rerender_dir: Path
) -> list[LedgerRecord]:
    """Mark each re-rendered song identical or not to its original, by decoded samples (a MIDI version: by its
    score, see `same_score`).

    Across formats only lossless pairs can be equal sample for sample; other pairs are left unknown."""
    compared = []
    for rec, original in _with_originals(new, originals):
        identical = None
        if rec.status == READY and original is not None and MIDI_EXTENSION in (rec.output_format,
                                                                               original.output_format):
            identical = rec.output_format == original.output_format and \
                same_score(catalog_dir / original.audio_path, rerender_dir / rec.audio_path)
        elif rec.status == READY and original is not None and (
            original.output_format == rec.output_format
            or (original.output_format in LOSSLESS_FORMATS and rec.output_format in LOSSLESS_FORMATS)
        ):
            identical = same_audio(catalog_dir / original.audio_path, rerender_dir / rec.audio_path)
        compared.append(rec.model_copy(update={"identical_to_original": identical}))
    return compared


def same_score(a: Path, b: Path) -> bool:
    """Whether two MIDI files hold the same music: every track's events at the same ticks, the texts that name
    the generation (MIDI_TAG_EVENTS) aside. An unreadable file is not the same as anything."""
    def events(path: Path) -> list[list[tuple[int, object]]]:
        midi = mido.MidiFile(path, charset="utf-8")
        tracks = []
        for track in midi.tracks:
            tick, kept = 0, []
            for message in track:
                tick += message.time
                if message.type not in MIDI_TAG_EVENTS:
                    kept.append((tick, message.copy(time=0)))
            tracks.append(kept)
        return [[(midi.type, midi.ticks_per_beat)], *tracks]

    try:
        return events(a) == events(b)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError):
        return False
