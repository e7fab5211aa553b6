"""What the catalog page shows, built from the ledger and the review decisions: one card per song.

A card is one brief row's song (`track_id`, `song_index`, `row`): delivered songs carry one player per
version of the song (records of the same song with another `version`), the others their status and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tasks.catalog.decisions import ReviewEntry, decision_for
from tasks.catalog.ledger import READY, LedgerRecord, summarize
from tasks.catalog.verification import FileVerdict
from tasks.intake.fields import DISCLOSURE_FIELDS
from textmusic.contract import FORMATS, MIDI_EXTENSION

from .waveform import waveform_image

# What `<audio>` is told a file is (so a browser that cannot play a format says so before fetching it):
# the format's media type from the contract's FORMATS table.
MEDIA_TYPES = {name: f.media_type for name, f in FORMATS.items()}
_FULL = ("", "full", "main")  # the song as generated, listed before its cut-downs and loops


@dataclass(frozen=True)
class Player:
    """One playable file of a song."""

    version: str
    file: str  # relative to the catalog folder, as in the ledger
    url: str  # the same, URL-encoded (names come from a brief: spaces, '#', '?', any script)
    media_type: str
    duration_seconds: float | None
    format: str  # what the download link says: "MP3 192k"
    credentials: str = ""  # whether its content credentials verify, in words (`credential_status`)
    credentials_ok: bool = False
    sidecar: str = ""  # the URL of its sidecar manifest, if its credentials are not embedded
    provenance: tuple[tuple[str, str], ...] = ()  # (what, value): how the file was made

    @property
    def label(self) -> str:
        return self.version or "full"

    @property
    def playable(self) -> bool:
        """Whether a browser's `<audio>` can play it (a MIDI version is only downloaded)."""
        return bool(self.media_type)


@dataclass(frozen=True)
class Card:
    record: LedgerRecord  # the song's main take: what its facts, review and status are about
    players: tuple[Player, ...] = ()
    waveform: str | None = None
    decision: ReviewEntry | None = None
    similar: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def anchor(self) -> str:
        return f"row-{self.record.row or 0}-{self.record.track_id}-{self.record.song_index}"

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(p.label for p in self.players)

    @property
    def disclosure(self) -> tuple[tuple[str, str], ...]:
        """(part, who made it) for each AI-contribution field the record carries."""
        return tuple((name.removeprefix("ai_").replace("_", "-"), getattr(self.record, name))
                     for name in DISCLOSURE_FIELDS if getattr(self.record, name))


def build_cards(out_dir: Path, records: Iterable[LedgerRecord], decisions: list[ReviewEntry],
                verdicts: dict[str, FileVerdict] | None = None) -> list[Card]:
    """Cards in brief order (rows without a row number, if any, last); `verdicts`: the latest verification of
    each file, by its path."""
    songs: dict[tuple[int, str, int], list[LedgerRecord]] = {}
    for record in records:
        songs.setdefault((record.row or 0, record.track_id, record.song_index), []).append(record)
    cards = [_card(out_dir, takes, decisions, verdicts or {}) for takes in songs.values()]
    return sorted(cards, key=lambda c: (c.record.row is None, c.record.row or 0, c.record.track_id,
                                        c.record.song_index))


def _card(out_dir: Path, takes: list[LedgerRecord], decisions: list[ReviewEntry],
          verdicts: dict[str, FileVerdict]) -> Card:
    """A delivered song shows its ready files; a song never delivered shows its latest outcome."""
    ready = [r for r in takes if r.status == READY and r.audio_path]
    if not ready:
        latest = max(takes, key=lambda r: r.finished_at or r.started_at)
        return Card(record=latest, tags=_tags(latest.tags), similar=_similar(latest))
    players = _players(ready, verdicts)
    main = next(r for r in ready if r.audio_path == players[0].file)
    return Card(record=main, players=players, waveform=waveform_image(out_dir, main.audio_path, main.sha256),
                decision=decision_for(main, decisions), similar=_similar(main), tags=_tags(main.tags))


def _players(ready: list[LedgerRecord], verdicts: dict[str, FileVerdict]) -> tuple[Player, ...]:
    """One player per file (the latest record of each: an older ledger row may name a file rewritten since)."""
    latest: dict[str, LedgerRecord] = {}
    for record in sorted(ready, key=lambda r: r.finished_at):
        latest[record.audio_path] = record
    ordered = sorted(latest.values(), key=lambda r: (bool(r.parent), r.version.lower() not in _FULL, r.version.lower()))
    return tuple(_player(r, verdicts.get(r.audio_path)) for r in ordered)


def _player(record: LedgerRecord, verdict: FileVerdict | None) -> Player:
    bit_rate = f"{record.output_bit_rate}k" if record.output_bit_rate else ""
    status, ok = credential_status(record, verdict)
    return Player(version=record.version, file=record.audio_path, url=quote(record.audio_path),
                  media_type=MEDIA_TYPES.get(record.output_format, ""), duration_seconds=record.duration_seconds,
                  format=f"{record.output_format.upper()} {bit_rate}".strip(), credentials=status,
                  credentials_ok=ok, sidecar=quote(record.credentials_file), provenance=provenance(record))


def credential_status(record: LedgerRecord, verdict: FileVerdict | None) -> tuple[str, bool]:
    """What the page says of a file's content credentials, and whether that is good news: what the latest
    verification found wrong, else verified if it checked this very file (the SHA-256 delivered), else why not."""
    if not record.credentials:
        return "no content credentials", False
    if verdict is not None and verdict.problems:
        return f"verification failed: {', '.join(verdict.failed)}", False
    if verdict is None or verdict.sha256 != record.sha256:  # a file delivered again after the verification
        return f"signed ({record.credentials}), not verified since delivered", False
    score = "MIDI score · " if record.output_format == MIDI_EXTENSION else ""
    if record.signer == "development":
        return f"{score}credentials verified · development certificate, not trusted by others", True
    return f"{score}credentials verified", True


def provenance(record: LedgerRecord) -> tuple[tuple[str, str], ...]:
    """How a file was made, as its provenance record (and C2PA manifest) says it."""
    facts = (("provider", record.provider), ("engine", record.engine_version), ("generation", record.generation_id),
             ("seed", "" if record.seed is None else str(record.seed)), ("prompt SHA-256", record.prompt_sha256),
             ("request", record.request_fingerprint), ("source type", record.digital_source_type.rsplit("/", 1)[-1]),
             ("after generation", record.processing.replace("|", ", ") or "nothing"),
             ("made", record.finished_at), ("TrackFoundry", record.pipeline_version),
             ("signed by", record.signer and f"{record.signer} certificate ({record.credentials})"))
    return tuple((what, value) for what, value in facts if value)


def _tags(text: str) -> tuple[str, ...]:
    return tuple(tag.strip() for tag in text.replace(",", "|").split("|") if tag.strip())


def _similar(record: LedgerRecord) -> str:
    """"similar to X (0.97)" when the ledger names a near-duplicate (fields added by the similarity step)."""
    other = record.similar_to
    score = record.similarity
    if not other:
        return ""
    return f"similar to {other}" + (f" ({score:.2f})" if isinstance(score, int | float) else "")


def summary(records: list[LedgerRecord], budget_usd: float | None, run_cost_usd: float | None) -> dict[str, object]:
    """The ledger's summary plus what is left of the budget (this run's cost when known, else the catalog's)."""
    totals = summarize(records)
    spent = run_cost_usd if run_cost_usd is not None else float(totals["cost_usd"])  # type: ignore[arg-type]
    return {**totals, "budget_usd": budget_usd,
            "budget_left_usd": None if budget_usd is None else round(budget_usd - spent, 2)}
