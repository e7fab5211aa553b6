"""Metadata sheets: every sheet as CSV and XLSX reads back with its documented columns, one row per delivered file."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from tasks.catalog.decisions import ReviewEntry, record_decision
from tasks.catalog.ledger import LedgerRecord, write_ledger
from tasks.catalog.sheets import SHEETS, export_sheet, sheet_rows, sheets_markdown, takes_from
from tests.support import ROOT

FORMULA = '=HYPERLINK("http://x","y")'
UNICODE = "Café Nächte – 夜の海 🌊"
FILE_COLUMN = {"generic": "file", "harvest": "Filename", "sourceaudio": "Filename"}
TITLE_COLUMN = {"generic": "title", "harvest": "Track Title", "sourceaudio": "Title"}


def _record(track_id: str, status: str = "ready", row: int = 1, **fields: object) -> LedgerRecord:
    values: dict[str, object] = {
        "catalog": "Night Library", "track_id": track_id, "status": status, "row": row, "name": track_id.title(),
        "seed": row * 10, "prompt": f"prompt for {track_id}", "tags": "lofi|chill", "bpm": 84.4,
        "duration_seconds": 61.0, "finished_at": "2026-03-01T10:00:00.000+00:00", "provider": "textmusic-local",
    }
    if status == "ready":
        values["audio_path"] = f"{track_id}.wav"
    return LedgerRecord.model_validate({**values, **fields})


def _catalog(tmp_path: Path) -> list[LedgerRecord]:
    records = [
        _record("formula", row=1, name=FORMULA, keywords="-loud, @home", duration_seconds=90.5),
        _record("unicode", row=2, name=UNICODE, composer="Ana María de la Cruz", publisher="Nuit Éditions",
                duration_seconds=59.6, finished_at="2026-03-04T23:59:00.000+00:00"),
        _record("twosongs", row=3, song_index=0, duration_seconds=125.2, lyrics="[verse]\nline one\nline two"),
        _record("twosongs", row=3, song_index=1, seed=31, audio_path="twosongs-2.wav", duration_seconds=3600.4),
        _record("failed", status="failed", row=4, error="boom", finished_at="2027-01-01T00:00:00.000+00:00"),
        _record("rejected", status="rejected", row=5),
        _record("skipped", status="skipped", row=6),
        _record("unanswered", status="unanswered", row=7),
    ]
    write_ledger(tmp_path, records)
    return [r for r in records if r.status == "ready"]


def _read(path: Path) -> pd.DataFrame:
    """A sheet as text cells, read the way a user's tool would: pandas for CSV, openpyxl for XLSX."""
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
    return pd.DataFrame([["" if v is None else str(v) for v in row] for row in rows[1:]], columns=list(rows[0]))


@pytest.mark.parametrize("xlsx", [False, True], ids=["csv", "xlsx"])
@pytest.mark.parametrize("sheet", list(SHEETS))
def test_each_sheet_has_its_columns_and_one_row_per_delivered_file(tmp_path, sheet, xlsx):
    delivered = _catalog(tmp_path)
    path = export_sheet(tmp_path, sheet, xlsx=xlsx)
    assert path == tmp_path / f"metadata-{sheet}.{'xlsx' if xlsx else 'csv'}"
    frame = _read(path)
    assert list(frame.columns) == SHEETS[sheet].headers
    assert sorted(frame[FILE_COLUMN[sheet]]) == sorted(r.audio_path for r in delivered)
    assert UNICODE in set(frame[TITLE_COLUMN[sheet]])


def test_csv_is_utf8_with_a_bom_and_neutralises_formulas(tmp_path):
    _catalog(tmp_path)
    path = export_sheet(tmp_path, "generic", out=tmp_path / "out.csv")
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    frame = _read(path)
    formula = frame[frame.track_id == "formula"].iloc[0]
    assert formula.title == "'" + FORMULA
    assert formula.keywords == "'-loud, @home"
    assert UNICODE in path.read_text(encoding="utf-8-sig")


@pytest.mark.parametrize("sheet", list(SHEETS))
def test_xlsx_stores_formula_text_as_text(tmp_path, sheet):
    _catalog(tmp_path)
    path = export_sheet(tmp_path, sheet, xlsx=True)
    ws = openpyxl.load_workbook(path).active
    column = SHEETS[sheet].headers.index(TITLE_COLUMN[sheet]) + 1
    cells = [ws.cell(row=i, column=column) for i in range(2, ws.max_row + 1)]
    formula = next(c for c in cells if c.value == FORMULA)  # verbatim: no quote needed in a text cell
    assert formula.data_type == "s"
    with zipfile.ZipFile(path) as archive:
        assert "<f>" not in archive.read("xl/worksheets/sheet1.xml").decode()
    assert ws.freeze_panes == "A2"
    assert ws.cell(row=1, column=1).font.bold


def test_approved_only_keeps_approved_takes_of_the_current_seed(tmp_path):
    delivered = _catalog(tmp_path)
    formula, unicode_, song0, song1 = delivered
    record_decision(tmp_path, ReviewEntry(track_id=formula.track_id, seed=formula.seed, decision="approve"))
    record_decision(tmp_path, ReviewEntry(track_id=song0.track_id, seed=song0.seed, decision="reject"))
    record_decision(tmp_path, ReviewEntry(track_id=song1.track_id, song_index=1, seed=song1.seed, decision="note",
                                          note="=check the ending"))
    # approved, but an earlier take (another seed): it does not approve the file delivered now
    record_decision(tmp_path, ReviewEntry(track_id=unicode_.track_id, seed=999, decision="approve"))
    approved = _read(export_sheet(tmp_path, "generic", approved_only=True))
    assert list(approved.file) == [formula.audio_path]
    everything = _read(export_sheet(tmp_path, "generic"))
    assert len(everything) == len(delivered)
    by_file = everything.set_index("file")
    assert by_file.loc[song0.audio_path, "review"] == "reject"
    assert by_file.loc[song1.audio_path, "review_note"] == "'=check the ending"
    assert by_file.loc[unicode_.audio_path, "review"] == ""


def test_durations_are_rounded_to_the_second(tmp_path):
    _catalog(tmp_path)
    generic = _read(export_sheet(tmp_path, "generic")).set_index("file")
    harvest = _read(export_sheet(tmp_path, "harvest")).set_index("Filename")
    expected = {"formula.wav": ("1:31", "01:31"),  # half a second rounds up, not to even
                "unicode.wav": ("1:00", "01:00"),
                "twosongs.wav": ("2:05", "02:05"), "twosongs-2.wav": ("60:00", "60:00")}
    for file, (short, padded) in expected.items():
        assert generic.loc[file, "duration"] == short
        assert harvest.loc[file, "Duration"] == padded
    assert generic.loc["unicode.wav", "duration_seconds"] == "59.6"


def test_harvest_album_facts_come_from_the_catalog(tmp_path):
    _catalog(tmp_path)
    harvest = _read(export_sheet(tmp_path, "harvest"))
    assert set(harvest.Library) == set(harvest["Album Title"]) == {"Night Library"}
    # the newest delivered file; the later `failed` row delivered nothing
    assert set(harvest["Album Release Date"]) == {"2026-03-04"}
    assert list(harvest["Track Number"]) == ["1", "2", "3", "4"]
    assert set(harvest["Is Main"]) == {"Y"} and set(harvest["Main Track Number"]) == {""}
    assert set(harvest.BPM) == {"84"}
    assert set(harvest.Genre) == {"lofi, chill"}
    assert set(harvest.Mixout) == set(harvest.Instrumentation) == {""}


def test_sourceaudio_splits_the_composer_at_the_last_space(tmp_path):
    _catalog(tmp_path)
    sheet = _read(export_sheet(tmp_path, "sourceaudio", xlsx=True)).set_index("Filename")
    credited = sheet.loc["unicode.wav"]
    assert (credited["Writer 1 First Name"], credited["Writer 1 Last Name"]) == ("Ana María de la", "Cruz")
    assert credited["Writer 1 Share"] == "100"
    assert (credited["Publisher 1 Name"], credited["Publisher 1 Collection Share Percentage 1"]) == (
        "Nuit Éditions", "100")
    uncredited = sheet.loc["formula.wav"]
    assert uncredited[["Writer 1 Last Name", "Writer 1 Share", "Publisher 1 Name"]].tolist() == ["", "", ""]


class _VersionedRecord(LedgerRecord):
    """A ledger record as issue 10 will have it: a version names its parent file."""

    parent: str = ""


def test_versions_point_at_their_main_track():
    main = _record("cue", row=1, audio_path="cue.wav")
    cut = _VersionedRecord.model_validate({**_record("cue", row=1, version="30s").model_dump(),
                                           "audio_path": "versions/cue-30s.wav", "parent": "cue.wav"})
    takes = takes_from([cut, main], [])
    harvest = pd.DataFrame(sheet_rows(SHEETS["harvest"], takes), columns=SHEETS["harvest"].headers)
    assert harvest[["Filename", "Track Number", "Is Main", "Main Track Number", "Version"]].values.tolist() == [
        ["cue.wav", 1, "Y", "", "full"], ["cue-30s.wav", 2, "N", 1, "30s"]]
    sourceaudio = pd.DataFrame(sheet_rows(SHEETS["sourceaudio"], takes), columns=SHEETS["sourceaudio"].headers)
    assert sourceaudio["Parent Filename"].tolist() == ["", "cue.wav"]


def test_xlsx_drops_characters_excel_cannot_hold(tmp_path):
    write_ledger(tmp_path, [_record("bell", name="Bell\x07Song")])
    ws = openpyxl.load_workbook(export_sheet(tmp_path, "sourceaudio", xlsx=True)).active
    assert ws.cell(row=2, column=SHEETS["sourceaudio"].headers.index("Title") + 1).value == "BellSong"


def test_unknown_sheet_and_missing_ledger_are_errors(tmp_path):
    with pytest.raises(ValueError, match="generic, harvest, sourceaudio"):
        export_sheet(tmp_path, "apm")
    with pytest.raises(FileNotFoundError, match="no ledger"):
        export_sheet(tmp_path, "generic")


def test_docs_list_every_column_and_are_in_sync():
    doc = (ROOT / "docs" / "sheets.md").read_text(encoding="utf-8")
    assert doc == sheets_markdown(), "regenerate: python -m tasks.catalog.sheets > docs/sheets.md"
    for sheet in SHEETS.values():
        for header in sheet.headers:
            assert f"| {header} |" in doc


@pytest.mark.parametrize("sheet", list(SHEETS))
def test_every_sheet_discloses_each_part_as_the_ledger_does(tmp_path, sheet):
    sung = {"ai_composition": "ai", "ai_lyrics": "human", "ai_vocals": "ai", "ai_instrumentation": "ai",
            "ai_post_production": "none"}
    records = [_record("sung", row=1, lyrics="[verse]\nla", **sung),
               _record("human", row=2, **{**sung, "ai_composition": "human", "ai_lyrics": "none"})]
    write_ledger(tmp_path, records)
    frame = _read(export_sheet(tmp_path, sheet))
    headers = {f"ai_{p}": h for p, h in (("composition", "AI Composition"), ("lyrics", "AI Lyrics"),
                                          ("vocals", "AI Vocals"), ("instrumentation", "AI Instrumentation"),
                                          ("post_production", "AI Post-Production"))}
    by_file = frame.set_index(FILE_COLUMN[sheet])
    for record in records:
        for field, header in headers.items():
            column = field if sheet == "generic" else header
            assert by_file.loc[record.audio_path, column] == getattr(record, field)
