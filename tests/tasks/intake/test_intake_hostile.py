"""Hostile briefs at intake: track_ids that would name files outside the catalog, control characters in any
text column, unknown columns, and the validation report that must tell the truth offline and escape what
the brief says. Each rejection names row, column and reason; the other rows still run."""

from __future__ import annotations

import csv
import logging
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from tasks.intake.brief import load_brief, unknown_column_warnings
from tasks.intake.validate import MAX_TRACK_ID_CHARS, Validation, validate_brief

COLUMNS = ["track_id", "name", "prompt", "tags", "lyrics", "mood", "description", "keywords", "artist"]
GOOD = {"name": "Song", "prompt": "calm piano", "tags": "", "lyrics": "", "mood": "", "description": "",
        "keywords": "", "artist": ""}
HOSTILE_NAME = '<script>alert("x")</script><img src=x onerror=alert(1)>'

BAD_TRACK_IDS = {
    "../../../../tmp/x": "path separator",
    "drums/001": "path separator",
    "win\\001": "path separator",
    "a..b": "'..'",
    ".hidden": "starts with '.'",
    "has space": "U+0020",
    "caf\u00e9": "U+00E9",
    "x" * (MAX_TRACK_ID_CHARS + 1): f"at most {MAX_TRACK_ID_CHARS}",
}
GOOD_TRACK_IDS = ["lofi-001", "A_b.c-9", "x" * MAX_TRACK_ID_CHARS, "v1.2"]


def _brief(tmp_path: Path, rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> Path:
    path = tmp_path / "brief.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _by_row(validation: Validation) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {}
    for r in validation.rejections:
        found.setdefault(r.row, []).append((r.column, r.reason))
    return found


def test_track_ids_that_cannot_name_a_file_are_rejected_and_the_others_run(tmp_path: Path) -> None:
    ids = [*GOOD_TRACK_IDS, *BAD_TRACK_IDS]
    validation = validate_brief(load_brief(_brief(tmp_path, [{**GOOD, "track_id": t} for t in ids])))
    assert [r.track_id for r in validation.rows] == GOOD_TRACK_IDS
    by_row = _by_row(validation)
    for row, (track_id, why) in enumerate(BAD_TRACK_IDS.items(), start=len(GOOD_TRACK_IDS) + 1):
        assert [column for column, _ in by_row[row]] == ["track_id"], (track_id, by_row[row])
        assert why in by_row[row][0][1], (track_id, by_row[row])
    assert set(by_row) == set(range(len(GOOD_TRACK_IDS) + 1, len(ids) + 1))


CONTROL_CELLS = [  # (column, value, allowed?)
    ("name", "a\x00b", False),
    ("prompt", "calm\x1b[2Jpiano", False),
    ("prompt", "calm\u2028piano", False),
    ("tags", "lofi\x7f|chill", False),
    ("mood", "sa\x85d", False),  # C1: NEXT LINE (inside the cell: load_brief strips it at the ends)
    ("description", "one\ttwo", False),
    ("keywords", "a\u2029b", False),
    ("artist", "x\x07", False),
    ("lyrics", "line one\x00", False),
    ("lyrics", "old mac\rline", False),
    ("lyrics", "bell\x07", False),
    ("lyrics", "line one\nline two\r\n\tindented\u2028sep", True),
]


@pytest.fixture(scope="module")
def control_validation(tmp_path_factory: pytest.TempPathFactory) -> Validation:
    rows = []
    for i, (column, value, _) in enumerate(CONTROL_CELLS):
        row = {**GOOD, "track_id": f"t{i}", column: value}
        if column == "lyrics":
            row["prompt"] = ""  # lyrics pair with tags here (prompt, tags and lyrics never all three)
            row["tags"] = "pop"
        rows.append(row)
    return validate_brief(load_brief(_brief(tmp_path_factory.mktemp("control"), rows)))


def test_control_characters_are_rejected_in_every_text_column(control_validation: Validation) -> None:
    by_row = _by_row(control_validation)
    for i, (column, value, allowed) in enumerate(CONTROL_CELLS):
        if allowed:
            assert i + 1 not in by_row, (column, value, by_row[i + 1])
            continue
        assert (i + 1) in by_row, (column, value)
        (found_column, reason), = by_row[i + 1]
        assert found_column == column and reason.startswith("control character U+"), (column, value, reason)


def test_lyrics_keep_their_line_breaks_and_tabs(control_validation: Validation) -> None:
    allowed = [value for _, value, ok in CONTROL_CELLS if ok]
    assert [r.request.lyrics for r in control_validation.rows] == allowed


def test_control_characters_are_not_echoed_into_a_rejection(tmp_path: Path) -> None:
    validation = validate_brief(load_brief(_brief(tmp_path, [{**GOOD, "track_id": "a\x1b[31mb"}])))
    (rejection,) = validation.rejections
    assert rejection.column == "track_id" and "\x1b" not in rejection.track_id + rejection.reason


def test_unknown_columns_are_warned_with_the_nearest_known_column(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    assert unknown_column_warnings(["tempo", "Genre", "style", "title", "format", "traack_id", "colour", "bpm"]) == [
        "`tempo`: unknown column, did you mean `bpm`?",
        "`genre`: unknown column, did you mean `tags`?",
        "`style`: unknown column, did you mean `tags`?",
        "`title`: unknown column, did you mean `name`?",
        "`format`: unknown column, did you mean `output_format`?",
        "`traack_id`: unknown column, did you mean `track_id`?",
        "`colour`: unknown column, ignored",
    ]
    path = _brief(tmp_path, [{"track_id": "t1", "name": "n", "prompt": "p", "tempo": "90"}],
                  ["track_id", "name", "prompt", "tempo"])
    with caplog.at_level(logging.WARNING, logger="tasks.intake.brief"):
        load_brief(path)
    assert "`tempo`: unknown column, did you mean `bpm`?" in caplog.text


class _Page(HTMLParser):
    """What a browser would load or run from the page, and its visible text (not the style sheet)."""

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[str] = []
        self.scripts = 0
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self._row: list[str] | None = None
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self._in_style = tag == "style"
        self.resources += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "tr" and ("class", "rejection") in attrs:
            self._row = []

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._in_style:
            return
        self.text.append(data)
        if self._row is not None and data.strip():
            self._row.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Validation, str]:
    """A brief with good rows, rows the text rules reject, and rows only the contract rejects (the rows
    Great Expectations' own report counted as a success)."""
    tmp = tmp_path_factory.mktemp("report")
    rows = [
        {**GOOD, "track_id": "good-1"},
        {**GOOD, "track_id": "../../../../tmp/x"},
        {**GOOD, "track_id": "only-lyrics", "prompt": "", "lyrics": "la la"},  # the contract's combination rule
        {**GOOD, "track_id": "<script>alert(1)</script>"},
        {**GOOD, "track_id": "long-name", "name": HOSTILE_NAME + "x" * 200},  # shown, cut, in the reason
        {**GOOD, "track_id": "good-2", "name": HOSTILE_NAME},
    ]
    docs = tmp / "validation-report"
    validation = validate_brief(load_brief(_brief(tmp, rows, [*COLUMNS, "tempo"])), docs)
    return validation, (docs / "index.html").read_text(encoding="utf-8")


def test_report_is_self_contained(report: tuple[Validation, str]) -> None:
    _, page = report
    parsed = _Page()
    parsed.feed(page)
    assert parsed.scripts == 0 and parsed.resources == []
    assert not re.search(r"https?://", page, re.IGNORECASE)
    assert "<style>" in page


def test_report_shows_every_rejection_and_does_not_claim_success(report: tuple[Validation, str]) -> None:
    validation, page = report
    assert len(validation.rows) == 2 and validation.rejected_rows == {2, 3, 4, 5}
    parsed = _Page()
    parsed.feed(page)
    text = " ".join(parsed.text)
    assert parsed.rows == [[str(r.row), r.track_id, r.column, r.reason] for r in validation.rejections]
    assert [r.column for r in validation.rejections] == ["track_id", "prompt|tags|lyrics", "track_id", "name"]
    assert "Rejected: 4 of 6 rows" in text and "brief.csv" in text
    assert not re.search(r"succe(ss|eded)|100\s*%|all \d+ rows", text, re.IGNORECASE)
    assert "`tempo`: unknown column, did you mean `bpm`?" in text


def test_report_escapes_the_brief_and_lists_the_rules(report: tuple[Validation, str]) -> None:
    _, page = report
    assert not re.search(r"<script|<img", page, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the hostile track_id, shown escaped
    assert "&lt;script&gt;alert(&quot;x&quot;)" in page  # the hostile name, quoted in its reason
    for rule in ("prompt_strength from 0 to 10", "bpm from 40 to 240", "never all three",
                 "output_format must be one of flac, mp3, wav, ogg, m4a", "A-Z a-z 0-9 - _ .", "control characters"):
        assert rule in page, rule


def test_a_clean_brief_reads_valid(tmp_path: Path) -> None:
    docs = tmp_path / "validation-report"
    validate_brief(load_brief(_brief(tmp_path, [{**GOOD, "track_id": "a"}, {**GOOD, "track_id": "b"}])), docs)
    assert "Valid: all 2 rows pass every rule" in (docs / "index.html").read_text(encoding="utf-8")


def test_a_table_without_attrs_still_reports(tmp_path: Path) -> None:
    table = load_brief(_brief(tmp_path, [{**GOOD, "track_id": "a"}]))
    bare = pd.DataFrame(table.to_dict(orient="list"))
    validate_brief(bare, tmp_path / "docs")
    assert "Valid: all 1 rows" in (tmp_path / "docs" / "index.html").read_text(encoding="utf-8")


def test_a_header_only_brief_reports_no_rows_not_success(tmp_path: Path) -> None:
    docs = tmp_path / "validation-report"
    validation = validate_brief(load_brief(_brief(tmp_path, [])), docs)
    assert validation.rows == [] and validation.rejections == []
    page = (docs / "index.html").read_text(encoding="utf-8")
    assert "The brief has no rows" in page and "Valid:" not in page
