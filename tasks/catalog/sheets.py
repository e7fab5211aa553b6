"""Metadata sheets for music libraries, made from the ledger: one row per delivered file.

Each sheet is a table of columns declared as data (header, how the value comes from a take, what it means),
so the export and `docs/sheets.md` come from the same declaration and cannot drift apart. A metadata field
the sheet exports as it is comes from the field table (tasks/intake/fields.py): the layout names it where it
goes, and a field that declares the sheet but is not placed goes last. Regenerate the
docs with `python -m tasks.catalog.sheets > docs/sheets.md`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from tasks.catalog.decisions import ReviewEntry, decision_for, load_decisions
from tasks.catalog.ledger import JOURNAL, LEDGER_PARQUET, READY, LedgerRecord, load_ledger, spreadsheet_safe
from tasks.intake.fields import FIELDS_BY_NAME, METADATA_FIELDS

Cell = str | int | float
# UTF-8 with a BOM: Excel only reads a CSV as UTF-8 when it starts with one; pandas, Python's csv with
# "utf-8-sig" and the library importers skip it.
CSV_ENCODING = "utf-8-sig"
_MAX_WIDTH = 60  # XLSX column width cap (characters): lyrics and prompts would make unusable columns


@dataclass(frozen=True)
class Take:
    """One delivered file as a sheet row sees it: its ledger record, its review and its place in the sheet."""

    record: LedgerRecord
    review: ReviewEntry | None
    number: int  # 1-based position in the sheet (Harvest's track number)
    main_number: int | None  # the number of the parent file's row, for a version whose parent is in the sheet
    release_date: str  # the date of the newest delivered file in the catalog (YYYY-MM-DD)

    @property
    def version(self) -> str:
        return self.record.version or "full"

    @property
    def parent(self) -> str:
        """The parent file of a version; empty for a full version."""
        return self.record.parent


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Take], Cell]
    meaning: str


@dataclass(frozen=True)
class Sheet:
    name: str
    about: str
    columns: tuple[Column, ...]

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]


def _clock(seconds: float | None, pad: bool) -> str:
    """A duration as m:ss (or mm:ss), rounded half up to the second: a 59.6 s cue is listed as 1:00."""
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes:02d}:{secs:02d}" if pad else f"{minutes}:{secs:02d}"


def _bpm(t: Take) -> Cell:
    """Whole beats per minute, as tagged (ID3 TBPM holds an integer)."""
    return round(t.record.bpm) if t.record.bpm else ""


def _genre(t: Take) -> str:
    """The brief's style tags, as tagged into the genre field."""
    return ", ".join(tag for tag in t.record.tags.split("|") if tag)


def _file(t: Take) -> str:
    return PurePosixPath(t.record.audio_path).name


def _parent_file(t: Take) -> str:
    return PurePosixPath(t.parent).name if t.parent else ""


def _description(t: Take) -> str:
    """Libraries require a description: the brief's, else the prompt that made the track."""
    return t.record.description or t.record.prompt


def _writer(t: Take) -> tuple[str, str]:
    """The composer split at the last space into first and last name; a single name is a last name."""
    first, _, last = t.record.composer.strip().rpartition(" ")
    return first, last


def _full_share(text: str) -> Cell:
    return 100 if text.strip() else ""


def _blank(_: Take) -> str:
    return ""


def _field_column(sheet: str, name: str, note: str) -> Column:
    """A metadata field as the sheet exports it: the record's value, under the header the field declares."""
    declared = FIELDS_BY_NAME[name]
    return Column(declared.sheets[sheet], lambda t: getattr(t.record, name), declared.about + note)


def _sheet(name: str, about: str, layout: tuple[Column | str, ...], note: str = "") -> Sheet:
    """A sheet from its layout: its own columns, and metadata fields by name (their meaning followed by
    `note`); the fields that declare the sheet and are not in the layout go last."""
    placed = {item for item in layout if isinstance(item, str)}
    rest = tuple(f.name for f in METADATA_FIELDS if name in f.sheets and f.name not in placed)
    return Sheet(name, about, tuple(item if isinstance(item, Column) else _field_column(name, item, note)
                                    for item in (*layout, *rest)))


GENERIC = _sheet("generic", "Everything the ledger knows about each delivered file, plus its review decision.", (
    Column("file", lambda t: t.record.audio_path, "the audio file, relative to the catalog folder"),
    Column("parent", lambda t: t.parent, "the file this version was made from; empty for a full version"),
    Column("version", lambda t: t.version, "full, 60s, 30s, 15s, loop, stem…; `full` when the brief gave none"),
    Column("track_id", lambda t: t.record.track_id, "the brief row's id"),
    Column("song_index", lambda t: t.record.song_index, "which of the row's songs (0 or 1)"),
    Column("title", lambda t: t.record.name, "the track title (the brief's `name`)"),
    Column("duration_seconds", lambda t: round(t.record.duration_seconds, 2) if t.record.duration_seconds else "",
           "the length the provider reported, in seconds"),
    Column("duration", lambda t: _clock(t.record.duration_seconds, pad=False), "the length as m:ss"),
    Column("bpm", _bpm, "whole beats per minute the provider reported (as tagged)"),
    "key",
    Column("genre", _genre, "the brief's style tags, comma-separated (the genre tag)"),
    "mood",
    "keywords",
    "description",
    "composer",
    "publisher",
    "artist",
    "isrc",
    Column("lyrics", lambda t: t.record.lyrics, "the lyrics sung; empty for an instrumental"),
    Column("seed", lambda t: t.record.seed if t.record.seed is not None else "", "the song's own seed"),
    Column("prompt", lambda t: t.record.prompt, "the prompt sent to the provider"),
    Column("provider", lambda t: t.record.provider, "which provider made the track"),
    Column("generation_id", lambda t: t.record.generation_id, "the provider's id for the track"),
    Column("sha256", lambda t: t.record.sha256, "checksum of the delivered file"),
    Column("cost_usd", lambda t: t.record.cost_usd, "what the provider charged for the song, in USD"),
    Column("review", lambda t: t.review.decision if t.review else "",
           "the review decision on this take: approve, reject, note, or empty when not reviewed"),
    Column("review_note", lambda t: t.review.note if t.review else "", "the reviewer's note"),
))

HARVEST = _sheet("harvest", (
    "Harvest Media's standard metadata sheet, one row per file; versions point at their main track. "
    "Harvest's ingestion guide (template V3) spells the headers `LIBRARY: Name`, `ALBUM: Code`, `TRACK: Title`… "
    "in a fixed order and takes a tab-delimited TXT: map the headers to the template your account uses. "
    "Columns we have no data for stay empty."), (
    Column("Library", lambda t: t.record.catalog, "the catalog name (ledger `catalog`)"),
    Column("Album Code", lambda t: t.record.catalog, "the catalog name"),
    Column("Album Title", lambda t: t.record.catalog, "the catalog name"),
    Column("Album Description", _blank, "empty: the brief has no album text"),
    Column("Album Release Date", lambda t: t.release_date,
           "YYYY-MM-DD: the day the newest file of the catalog was delivered (newest `finished_at`)"),
    Column("Track Title", lambda t: t.record.name, "the track title, without the version"),
    Column("Track Number", lambda t: t.number, "the row's position in this sheet, from 1"),
    Column("Is Main", lambda t: "Y" if t.version == "full" else "N", "Y for the full version, N for the others"),
    Column("Main Track Number", lambda t: t.main_number if t.main_number is not None else "",
           "for a version: the Track Number of its parent file's row; empty for a main track"),
    Column("Version", lambda t: t.version, "full, 60s, 30s, 15s, loop, stem…"),
    Column("Duration", lambda t: _clock(t.record.duration_seconds, pad=True), "the length as mm:ss"),
    Column("BPM", _bpm, "whole beats per minute"),
    Column("Genre", _genre, "the brief's style tags, comma-separated (Harvest asks for a single word)"),
    Column("Mixout", _blank, "empty: not known"),
    Column("Instrumentation", _blank, "empty: not known"),
    "keywords",
    Column("Lyrics", lambda t: t.record.lyrics, "the lyrics; empty for an instrumental"),
    "composer",
    "publisher",
    Column("Filename", _file, "the audio file's name"),
    Column("Description", _description, "the brief's description, else the prompt"),
    "isrc",
    "key",
    "mood",
))

SOURCEAUDIO = _sheet("sourceaudio", (
    "A SourceAudio metadata CSV. SourceAudio documents only the numbered rights-holder columns "
    "(`Writer {X} First Name`…, `Publisher {X} Collection Share Percentage {Y}`); the other headers are our "
    "best reading of its CSV format (we have no official spec file): compare them with an export from your "
    "site (Admin → Manage Metadata → Export Data). SourceAudio also reads the tags embedded in the files."), (
    Column("Filename", _file, "the audio file's name (best reading)"),
    Column("Title", lambda t: t.record.name, "the track title (best reading)"),
    Column("Album", lambda t: t.record.catalog, "the catalog name (best reading)"),
    "artist",
    Column("Description", _description, "the brief's description, else the prompt (best reading)"),
    "keywords",
    Column("Genre", _genre, "the brief's style tags, comma-separated (best reading)"),
    "mood",
    Column("BPM", _bpm, "whole beats per minute (best reading)"),
    "key",
    Column("Duration", lambda t: _clock(t.record.duration_seconds, pad=False), "the length as m:ss (best reading)"),
    Column("Version", lambda t: t.version, "full, 60s, 30s, 15s, loop, stem… (best reading)"),
    Column("Parent Filename", _parent_file,
           "for a version: its main file's name; empty for a full version (best reading)"),
    "isrc",
    Column("Lyrics", lambda t: t.record.lyrics, "the lyrics; empty for an instrumental (best reading)"),
    Column("Writer 1 First Name", lambda t: _writer(t)[0],
           "the composer up to the last space (documented pattern)"),
    Column("Writer 1 Last Name", lambda t: _writer(t)[1],
           "the composer after the last space; a single name goes here (documented pattern)"),
    Column("Writer 1 Share", lambda t: _full_share(t.record.composer),
           "100 when there is a composer: the brief names one writer (best reading of the share header)"),
    Column("Publisher 1 Name", lambda t: t.record.publisher, "publisher credit (documented pattern)"),
    Column("Publisher 1 Collection Share Percentage 1", lambda t: _full_share(t.record.publisher),
           "100 when there is a publisher (documented pattern)"),
), note=" (best reading)")

SHEETS: dict[str, Sheet] = {s.name: s for s in (GENERIC, HARVEST, SOURCEAUDIO)}


def _release_date(records: Iterable[LedgerRecord]) -> str:
    """The day of the newest delivery: a catalog is released when its last file is in."""
    stamps = [datetime.fromisoformat(r.finished_at) for r in records if r.status == READY and r.finished_at]
    return max(stamps).date().isoformat() if stamps else ""


def _order(record: LedgerRecord) -> tuple[object, ...]:
    """Brief order, each main track before its versions."""
    version = record.version or "full"
    return (record.row is None, record.row or 0, record.track_id, record.song_index, version != "full", version,
            record.audio_path)


def takes_from(records: list[LedgerRecord], entries: list[ReviewEntry], approved_only: bool = False) -> list[Take]:
    """The delivered files (status ready) in sheet order, numbered, each with its review decision."""
    delivered = sorted((r for r in records if r.status == READY), key=_order)
    reviewed = [(r, decision_for(r, entries)) for r in delivered]
    if approved_only:
        reviewed = [(r, e) for r, e in reviewed if e is not None and e.decision == "approve"]
    numbers = {r.audio_path: n for n, (r, _) in enumerate(reviewed, start=1)}
    date = _release_date(records)
    return [Take(r, e, n, numbers.get(r.parent), date)
            for n, (r, e) in enumerate(reviewed, start=1)]


def delivered_takes(out_dir: Path, approved_only: bool = False) -> list[Take]:
    """The takes of the catalog in `out_dir`; a folder without a ledger is an error, not an empty sheet."""
    if not (out_dir / LEDGER_PARQUET).exists() and not (out_dir / JOURNAL).exists():
        raise FileNotFoundError(f"no ledger in {out_dir}: export a folder written by `trackfoundry run`")
    return takes_from(load_ledger(out_dir), load_decisions(out_dir), approved_only)


def sheet_for(name: str) -> Sheet:
    if name not in SHEETS:
        raise ValueError(f"unknown sheet {name!r}: use one of {', '.join(SHEETS)}")
    return SHEETS[name]


def sheet_rows(sheet: Sheet, takes: list[Take]) -> list[list[Cell]]:
    return [[column.value(take) for column in sheet.columns] for take in takes]


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write beside `path` and rename, so an interrupted export never leaves half a sheet."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_csv(path: Path, headers: list[str], rows: list[list[Cell]]) -> None:
    with path.open("w", encoding=CSV_ENCODING, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows([spreadsheet_safe(v) for v in row] for row in rows)


def _width(values: Iterable[Cell]) -> int:
    """A column as wide as its longest line, within reason."""
    longest = max((len(line) for v in values for line in str(v).splitlines() or [""]), default=0)
    return min(longest + 2, _MAX_WIDTH)


def _put(ws, row: int, column: int, value: Cell) -> None:  # type: ignore[no-untyped-def]
    """One cell; text is stored as text even when it starts with `=`, so no formula is ever written."""
    if value == "":
        return
    cell = ws.cell(row=row, column=column, value=ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str)
                   else value)
    if isinstance(value, str):
        cell.data_type = "s"


def _write_xlsx(path: Path, sheet: Sheet, rows: list[list[Cell]]) -> None:
    book = Workbook()
    ws = book.active
    ws.title = sheet.name
    for j, header in enumerate(sheet.headers, start=1):
        _put(ws, 1, j, header)
        ws.cell(row=1, column=j).font = Font(bold=True)
        ws.column_dimensions[get_column_letter(j)].width = _width([header, *(row[j - 1] for row in rows)])
    for i, row in enumerate(rows, start=2):
        for j, value in enumerate(row, start=1):
            _put(ws, i, j, value)
    ws.freeze_panes = "A2"
    book.save(path)


def export_sheet(out_dir: Path, sheet: str, out: Path | None = None, xlsx: bool = False,
                 approved_only: bool = False) -> Path:
    """Write the sheet for the catalog in `out_dir` (default `DIR/metadata-<sheet>.csv|xlsx`); return its path."""
    table = sheet_for(sheet)
    rows = sheet_rows(table, delivered_takes(out_dir, approved_only))
    path = out or out_dir / f"metadata-{sheet}.{'xlsx' if xlsx else 'csv'}"
    if xlsx:
        _replace_atomically(path, lambda tmp: _write_xlsx(tmp, table, rows))
    else:
        _replace_atomically(path, lambda tmp: _write_csv(tmp, table.headers, rows))
    return path


_DOC_INTRO = """# Metadata sheets

`trackfoundry export DIR --sheet generic|harvest|sourceaudio [--xlsx] [--out FILE] [--approved-only]` writes
one row per delivered file of the catalog in DIR (ledger status `ready`; failed, rejected, skipped and
unanswered rows are left out; each version of a track is its own row). The default output is
`DIR/metadata-<sheet>.csv`, or `.xlsx` with `--xlsx`. `--approved-only` keeps only the takes whose review
decision (`DIR/review.csv`) is `approve`.

- CSV: UTF-8 with a byte-order mark (Excel reads a CSV as UTF-8 only with one), comma-separated, quoted
  where needed; text that a spreadsheet would run as a formula (starting with `= + - @`, tab or CR) is
  prefixed with `'`.
- XLSX: one worksheet, bold frozen header row, columns sized to their content (at most 60 characters);
  text is stored as text, never as a formula, so no `'` is added.
- Numbers (BPM, seconds, shares, cost) are numbers; a value we do not have is an empty cell.

This page is generated from the column tables in `tasks/catalog/sheets.py`
(`python -m tasks.catalog.sheets > docs/sheets.md`); a test checks that it is in sync.
"""


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|")


def sheets_markdown() -> str:
    """The documentation of every column of every sheet, from the same tables the export uses."""
    parts = [_DOC_INTRO]
    for sheet in SHEETS.values():
        lines = [f"\n## `{sheet.name}`\n", sheet.about + "\n", "| column | meaning |", "|---|---|"]
        lines += [f"| {_cell_text(c.header)} | {_cell_text(c.meaning)} |" for c in sheet.columns]
        parts.append("\n".join(lines) + "\n")
    return "".join(parts)


if __name__ == "__main__":
    print(sheets_markdown(), end="")
