"""Briefs as spreadsheet programs save them: UTF-8 (with or without BOM), Excel's cp1252 "CSV" and
UTF-16 "Unicode text"; what cannot be read is refused in one line that says how to fix it."""

import subprocess
import sys
from pathlib import Path

import pytest

from tasks.intake.brief import BriefError, check_brief, load_brief
from tests.support import ROOT

TEXT = "café – naïve"  # the en dash is 0x96 in cp1252
ROWS = [["track_id", "name", "prompt"], ["t1", TEXT, "a “quoted” prompt, with a comma"], ["t2", "plain", "x"]]


def write(path: Path, delimiter: str, encoding: str) -> Path:
    lines = []
    for row in ROWS:
        lines.append(delimiter.join(f'"{c}"' if delimiter in c or "," in c else c for c in row))
    path.write_bytes("\r\n".join(lines).encode(encoding) + b"\r\n")
    return path


def assert_read(path: Path) -> None:
    check_brief(path)
    table = load_brief(path)
    assert table["track_id"].tolist() == ["t1", "t2"]
    assert table["name"].tolist() == [TEXT, "plain"]
    assert table["prompt"].tolist()[0] == "a “quoted” prompt, with a comma"


def test_cp1252_brief_reads_to_the_right_strings(tmp_path):
    path = write(tmp_path / "excel.csv", ";", "cp1252")
    assert b"caf\xe9 \x96 na\xefve" in path.read_bytes()
    assert_read(path)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_tab_separated_with_bom_reads(tmp_path, encoding):
    path = tmp_path / "unicode.txt"
    write(path, "\t", encoding)
    bom = "\ufeff".encode(encoding)
    path.write_bytes(bom + path.read_bytes())
    assert_read(path)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_with_and_without_bom_reads(tmp_path, encoding):
    assert_read(write(tmp_path / "brief.csv", ",", encoding))


@pytest.mark.parametrize(
    "raw, hint",
    [
        (b"track_id,name\nt1,caf\x81\n", "neither valid UTF-8"),  # 0x81 is undefined in cp1252 too
        ("track_id,name\nt1,café\n".encode() + b"t2,na\xefve\n", "mixes UTF-8"),  # cp1252 would mangle the é
        ("track_id,name\nt1,x\n".encode("utf-16-le"), "UTF-16 without"),
        (b"\xff\xfe" + "track_id,name\n".encode("utf-16-le") + b"\x00\xd8", "not valid UTF-16"),
    ],
    ids=["invalid-everywhere", "mixed", "utf16-no-bom", "broken-utf16"],
)
def test_unreadable_bytes_are_refused_with_the_fix(tmp_path, raw, hint):
    path = tmp_path / "brief.csv"
    path.write_bytes(raw)
    for reader in (check_brief, load_brief):
        with pytest.raises(BriefError, match=hint) as caught:
            reader(path)
        message = str(caught.value)
        assert "\n" not in message and "save it as CSV UTF-8" in message and "brief.csv" in message


@pytest.mark.parametrize(
    "make, hint",
    [
        (lambda p: p, "not found"),
        (lambda p: p.mkdir() or p, "is a directory"),
        (lambda p: p.write_bytes(b"") and p or p, "is empty"),
        (lambda p: p.write_bytes(b"\xef\xbb\xbf \r\n") and p or p, "is empty"),
    ],
    ids=["missing", "directory", "empty", "bom-only"],
)
def test_missing_directory_and_empty_are_refused(tmp_path, make, hint):
    path = make(tmp_path / "brief.csv")
    for reader in (check_brief, load_brief):
        with pytest.raises(BriefError, match=hint) as caught:
            reader(path)
        assert "\n" not in str(caught.value)


def test_check_brief_refuses_what_load_brief_refuses(tmp_path):
    no_id = tmp_path / "noid.csv"
    no_id.write_text("name,prompt\nx,y\n", encoding="utf-8")
    not_parquet = tmp_path / "brief.parquet"
    not_parquet.write_text("track_id\n1\n", encoding="utf-8")
    unknown = tmp_path / "brief.xlsx"
    unknown.write_bytes(b"PK\x03\x04")
    for path, hint in ((no_id, "no track_id column"), (not_parquet, "not a Parquet file"),
                       (unknown, "unknown brief type")):
        for reader in (check_brief, load_brief):
            with pytest.raises(BriefError, match=hint):
                reader(path)


def test_check_brief_imports_nothing_heavy(tmp_path):
    path = write(tmp_path / "excel.csv", ",", "cp1252")
    code = (
        "import sys; from pathlib import Path; from tasks.intake.brief import check_brief; "
        f"check_brief(Path({str(path)!r})); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'great_expectations', 'pandas'));"
        "print(heavy); assert not heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
