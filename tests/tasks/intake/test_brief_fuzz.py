"""Property-based briefs (hypothesis): wrong types, huge or binary fields, odd encodings, CSV quoting tricks,
path-like and formula-like names. Never a crash; every row is either valid or rejected with a reason; every
planned file name stays inside the catalog folder."""

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.intake.brief import BRIEF_COLUMNS, BriefError, load_brief
from tasks.intake.plan import plan_rows
from tasks.intake.validate import validate_brief

pytestmark = pytest.mark.reliability

NASTY = st.sampled_from([
    "../../etc/passwd", "..\\..\\win.ini", "/abs/path", "=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)",
    "a,b", 'quote"inside', "new\nline", "tab\tsep", "semi;colon", "pipe|pipe", "  ", "", "CON", ".hidden",
    "🎵🎶", "ünïcödé", "\x00nul", "x" * 5000, "auto", "1e9", "-0", "NaN", "true",
])
CELL = st.one_of(NASTY, st.text(max_size=60), st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
                 st.integers(-2**40, 2**40).map(str), st.floats(allow_nan=True).map(str))
ROW = st.fixed_dictionaries({c: CELL for c in BRIEF_COLUMNS})
BRIEF = st.lists(ROW, min_size=1, max_size=8)


def check(path: Path, out: Path) -> None:
    try:
        table = load_brief(path)
    except BriefError as exc:
        assert str(exc)
        return
    validation = validate_brief(table)
    rejected = validation.rejected_rows
    assert all(r.reason for r in validation.rejections)
    assert {r.row for r in validation.rows}.isdisjoint(rejected)
    assert len(validation.rows) + len(rejected) == len(table)
    for row in plan_rows(validation.rows, "fuzz", "local", True):
        for song in range(row.request.num_songs):
            name = row.file_name(song)
            assert "/" not in name and "\\" not in name and not name.startswith((".", "=", "+", "-", "@"))
            assert (out / name).resolve().parent == out.resolve()


FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@FUZZ
@given(rows=BRIEF, delimiter=st.sampled_from([",", ";", "\t"]), bom=st.booleans())
def test_csv_briefs_never_crash(tmp_path, rows, delimiter, bom):
    path = tmp_path / "brief.csv"
    pd.DataFrame(rows).to_csv(path, index=False, sep=delimiter, encoding="utf-8-sig" if bom else "utf-8")
    check(path, tmp_path / "catalog")


@FUZZ
@given(rows=BRIEF, raw=st.binary(max_size=200))
def test_binary_and_mis_encoded_files_are_refused_or_rejected(tmp_path, rows, raw):
    path = tmp_path / "brief.csv"
    pd.DataFrame(rows).to_csv(path, index=False, encoding="utf-16")
    check(path, tmp_path / "catalog")
    path.write_bytes(b"track_id,name,prompt\n" + raw)
    check(path, tmp_path / "catalog")


@FUZZ
@given(seeds=st.lists(st.one_of(st.none(), st.integers(-5, 2**33), st.floats(allow_nan=True)), min_size=1,
                      max_size=6),
       tags=st.one_of(st.none(), st.lists(st.text(max_size=8), max_size=3), st.text(max_size=10)))
def test_parquet_briefs_with_odd_types(tmp_path, seeds, tags):
    path = tmp_path / "brief.parquet"
    frame = pd.DataFrame({"track_id": [f"t{i}" for i in range(len(seeds))], "name": ["n"] * len(seeds),
                          "prompt": ["p"] * len(seeds), "seed": seeds})
    frame["tags"] = [tags] * len(seeds)
    frame.to_parquet(path)
    check(path, tmp_path / "catalog")
