"""The plan: every valid row gets an explicit seed, a request fingerprint and a safe file name."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tasks.intake.routes import DEFAULT_ROUTE
from tasks.intake.validate import BriefRow
from tasks.naming import DEFAULT_FILE_NAME_TEMPLATE, NAME_FIELDS, fill_name, safe_stem
from tasks.settings import PipelineSettings
from textmusic.contract import LOCAL_EXTENSION_FIELDS, SEED_MAX, TextToMusicRequest, duration_upper_bound
from textmusic.pricing import Price


@dataclass(frozen=True)
class PlannedRow:
    row: int
    track_id: str
    name: str
    request: TextToMusicRequest
    seed_source: str  # "brief", "derived" or "retake" (a new seed after a reviewer rejected the take)
    fingerprint: str
    file_track: str  # the track part of the row's file names: its track_id made safe, unique in the catalog
    metadata: dict[str, str] = field(default_factory=dict)
    # Re-renders keep the original file names.
    file_names: tuple[str, ...] = ()
    catalog: str = ""
    name_template: str = DEFAULT_FILE_NAME_TEMPLATE
    provider: str = DEFAULT_ROUTE  # its route: the provider its brief row names (tasks/intake/routes.py)

    def file_name(self, song_index: int, bpm: float | None = None, version: str = "") -> str:
        """A song's file (`version` empty: its own label from the brief, else "full"), or one of its library
        versions (`version` the version's file tag: 30s, loop8, stem-drums …); the BPM the track has."""
        if self.file_names and not version and song_index < len(self.file_names):
            return self.file_names[song_index]
        # A provider may make more songs than asked (sunoapi.org: 2 a call): a later song is numbered too.
        track = self.file_track + (f"-{song_index + 1}" if self.request.num_songs > 1 or song_index > 0 else "")
        return fill_name(self.name_template, self.request.output_format, catalog=self.catalog, track=track,
                         title=self.name, version=version or self.metadata.get("version") or "full",
                         bpm=f"{round(bpm)}bpm" if bpm else "")


def derive_seed(catalog: str, track_id: str) -> int:
    """A seed for a row that has none: stable for the same catalog and track_id, now or in a year."""
    digest = hashlib.sha256(f"trackfoundry:{catalog}:{track_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (SEED_MAX + 1)


def retake_seed(seed: int) -> int:
    """The seed of the next take after a reviewer rejected the take made with `seed`: derived from it, so
    every later run (and a re-render) arrives at the same seed without being told."""
    digest = hashlib.sha256(f"trackfoundry:retake:{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (SEED_MAX + 1)


def request_fingerprint(request: TextToMusicRequest, provider: str, local_extensions: bool) -> str:
    """Hash of everything that shapes the audio (and its name), so a changed row is generated anew. What a
    provider is not sent (local extensions to a hosted one: duration, versions, key) is left out, so asking a
    hosted catalog for versions later edits them from the delivered songs instead of paying for new ones."""
    fields = request.model_dump(mode="json", exclude={"store_audio"})
    if not fields.get("versions"):
        fields.pop("versions", None)  # a request without versions keeps the fingerprint it had before they existed
    if fields.get("key") is None:
        fields.pop("key", None)  # likewise a request without a key
    if not local_extensions:
        for name in LOCAL_EXTENSION_FIELDS:
            fields.pop(name, None)
    canonical = json.dumps({"provider": provider, "request": fields}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Named(Protocol):
    """What a row's plan needs of its provider: the name it is recorded by, and whether it honours a duration."""

    @property
    def name(self) -> str: ...

    @property
    def local_extensions(self) -> bool: ...


def plan_rows(rows: list[BriefRow], catalog: str, provider: str, local_extensions: bool,
              replaced: frozenset[tuple[str, str]] = frozenset(),
              name_template: str = DEFAULT_FILE_NAME_TEMPLATE,
              routed: Mapping[str, Named] | None = None) -> list[PlannedRow]:
    """`replaced`: (track_id, request fingerprint) of takes a reviewer rejected; such a row moves on to the
    next seed of its chain (`retake_seed`) until it reaches a take that was not replaced. `routed`: the
    providers of rows whose brief names one (by route); the others are `provider`'s. All rows are planned
    together, whatever their provider: their file names are unique in the one catalog."""
    planned: list[PlannedRow] = []
    taken: set[str] = set()
    for row in rows:
        at = routed[row.provider] if routed is not None and row.provider != DEFAULT_ROUTE else None
        name, extensions = (at.name, at.local_extensions) if at is not None else (provider, local_extensions)
        seed_source = "brief" if row.request.seed is not None else "derived"
        seed = row.request.seed if row.request.seed is not None else derive_seed(catalog, row.track_id)
        request = row.request.model_copy(update={"seed": seed, "name": row.request.name or row.name})
        fingerprint = request_fingerprint(request, name, extensions)
        while (row.track_id, fingerprint) in replaced:
            seed_source = "retake"
            request = request.model_copy(update={"seed": retake_seed(request.seed or 0)})
            fingerprint = request_fingerprint(request, name, extensions)
        # Room is left for the suffixes that keep files apart, so bounding the name never cuts them off:
        # "-row{n}" for a track_id seen before, and the song number `file_name` appends when two are asked.
        room = NAME_FIELDS["track"] - (len(f"-{row.request.num_songs}") if row.request.num_songs > 1 else 0)
        stem = safe_stem(row.track_id)[:room]
        if stem.lower() in taken:
            suffix = f"-row{row.row}"
            stem = safe_stem(row.track_id)[:room - len(suffix)] + suffix
        taken.add(stem.lower())
        planned.append(
            PlannedRow(
                row=row.row,
                track_id=row.track_id,
                name=row.name,
                request=request,
                seed_source=seed_source,
                fingerprint=fingerprint,
                file_track=stem,
                metadata=row.metadata,
                catalog=catalog,
                name_template=name_template,
                provider=row.provider,
            )
        )
    return planned


class Priced(Protocol):
    """What pricing a row needs of its provider: a provider profile, or a run's `Provider` made from one."""

    @property
    def local_extensions(self) -> bool: ...  # honours a request's duration

    @property
    def price(self) -> Price: ...  # its price model (textmusic/pricing.py)


def expected_song_seconds(request: TextToMusicRequest, settings: PipelineSettings, provider: Priced) -> float:
    """How long a song of the row should last: its duration when the provider honours one, else the expected
    song length."""
    if provider.local_extensions and request.duration_seconds:
        return float(request.duration_seconds)
    return settings.expected_minutes_per_song * 60


def longest_song_seconds(request: TextToMusicRequest, settings: PipelineSettings, provider: Priced) -> float:
    """The longest a song of the row may last: what the budget, `at_risk` and the check of a provider's figures
    hold it to."""
    if provider.local_extensions:
        return duration_upper_bound(request.duration_seconds)
    return settings.max_minutes_per_song * 60


def expected_cost_cents(request: TextToMusicRequest, settings: PipelineSettings, provider: Priced) -> int:
    """What a row should cost, by the provider's price model."""
    return provider.price.request_cents(request.num_songs, expected_song_seconds(request, settings, provider))


def max_cost_cents(request: TextToMusicRequest, settings: PipelineSettings, provider: Priced) -> int:
    """The most a row can cost, by the provider's price model: what the budget holds back for it before it is
    sent."""
    return provider.price.request_cents(request.num_songs, longest_song_seconds(request, settings, provider))


Pricing = Priced | Mapping[str, Priced]  # one provider for every row, or each row's by its route


def priced(row: BriefRow | PlannedRow, provider: Pricing) -> Priced:
    """The provider that prices a row: the one, or the one its route names."""
    return provider[row.provider] if isinstance(provider, Mapping) else provider


def brief_cost_cents(rows: list[BriefRow], settings: PipelineSettings, provider: Pricing) -> tuple[int, int]:
    """(expected, worst case) of valid rows: what `trackfoundry estimate` and `trackfoundry plan` report."""
    return (sum(expected_cost_cents(r.request, settings, priced(r, provider)) for r in rows),
            sum(max_cost_cents(r.request, settings, priced(r, provider)) for r in rows))


def within_budget(
    planned: list[PlannedRow], budget_cents: int | None, settings: PipelineSettings, provider: Pricing
) -> tuple[list[PlannedRow], list[PlannedRow]]:
    """(rows that fit, rows that would exceed the budget), in brief order, by each row's worst-case cost at its
    own provider's price model: one cap across every provider the brief routes rows to.

    Holding back the worst case makes the budget a hard cap on what the run can spend."""
    if budget_cents is None:
        return planned, []
    fits, over, held = [], [], 0
    for row in planned:
        cost = max_cost_cents(row.request, settings, priced(row, provider))
        if held + cost <= budget_cents:
            fits.append(row)
            held += cost
        else:
            over.append(row)
    return fits, over
