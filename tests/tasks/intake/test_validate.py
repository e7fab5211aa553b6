import pandas as pd
import pytest

from tasks.intake.brief import BriefError, load_brief
from tasks.intake.validate import validate_brief
from tests.support.briefs import BAD_BRIEF

EXPECTED = {
    2: "prompt|tags|lyrics",
    3: "prompt|tags|lyrics",
    4: "prompt|tags|lyrics",
    5: "output_format",
    6: "output_bit_rate",
    7: "num_songs",
    8: "bpm",
    9: "track_id",
    10: "seed",
    11: "seed",
}


@pytest.fixture(scope="module")
def validation(tmp_path_factory):
    path = tmp_path_factory.mktemp("brief") / "bad.csv"
    path.write_text(BAD_BRIEF, encoding="utf-8")
    return validate_brief(load_brief(path))


def test_good_rows_go_on(validation):
    assert [r.track_id for r in validation.rows] == ["good-1", "good-2"]
    two = validation.rows[1].request
    assert two.tags == ["rock", "indie"] and two.num_songs == 2 and two.output_bit_rate == "256"
    assert two.seed is None and two.store_audio is True and two.lyrics.startswith("[verse]")


def test_each_bad_row_is_rejected_with_row_column_and_reason(validation):
    by_row = {}
    for r in validation.rejections:
        by_row.setdefault(r.row, []).append(r)
    assert set(by_row) == set(EXPECTED)
    for row, column in EXPECTED.items():
        assert column in {r.column for r in by_row[row]}, (row, by_row[row])
        assert all(r.reason for r in by_row[row])
    assert "duplicate track_id (first at row 1)" in by_row[9][0].reason
    assert "never all be given" in " ".join(r.reason for r in by_row[4])
    assert "'fast'" in by_row[8][0].reason


def test_semicolon_csv_with_bom_is_sniffed(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_bytes("\ufefftrack_id;name;prompt;output_format\nx1;Name;a prompt;flac\n".encode())
    validation = validate_brief(load_brief(path))
    assert [r.request.output_format for r in validation.rows] == ["flac"]


def test_parquet_brief_with_list_tags(tmp_path):
    path = tmp_path / "brief.parquet"
    pd.DataFrame(
        {"track_id": ["p1", "p2"], "name": ["One", "Two"], "prompt": [None, "x"],
         "tags": [["jazz", "trio"], []], "lyrics": ["sing", None], "seed": [11, 12],
         "num_songs": [1, 2], "output_format": ["mp3", "ogg"], "bpm": [100.0, None]}
    ).to_parquet(path)
    validation = validate_brief(load_brief(path))
    assert not validation.rejections
    first = validation.rows[0].request
    assert first.tags == ["jazz", "trio"] and first.seed == 11 and first.bpm == 100.0


def test_unreadable_brief_is_a_clear_error(tmp_path):
    with pytest.raises(BriefError, match="not found"):
        load_brief(tmp_path / "missing.csv")
    (tmp_path / "noid.csv").write_text("name,prompt\na,b\n")
    with pytest.raises(BriefError, match="no track_id column"):
        load_brief(tmp_path / "noid.csv")
