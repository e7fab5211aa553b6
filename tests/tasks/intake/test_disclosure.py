"""AI disclosure per part of a track: defaults from what the row is, the brief's own cells win, a bad cell
is refused with its row, column and reason while the good rows go on."""

from __future__ import annotations

from tasks.generation.records import base_record
from tasks.intake.brief import load_brief
from tasks.intake.fields import DISCLOSURE_FIELDS
from tasks.intake.plan import plan_rows
from tasks.intake.validate import validate_brief
from tasks.run import CatalogInfo, Provider
from textmusic.pricing import SEED_PRICE

BRIEF = """track_id,name,prompt,tags,lyrics,seed,output_format,ai_lyrics,ai_post_production
inst,Instrumental,calm piano,,,1,wav,,
sung,Sung,,pop,"[verse]
hello world",2,wav,,
ghost,Ghost-written,,pop,"[verse]
hello again",3,wav,ai,human
bad,Bad,calm piano,,,4,wav,robot,
"""


def _records(tmp_path):
    path = tmp_path / "brief.csv"
    path.write_text(BRIEF, encoding="utf-8")
    validation = validate_brief(load_brief(path))
    rows = plan_rows(validation.rows, "c", "textmusic-local", True)
    provider = Provider(name="textmusic-local", base_url="http://127.0.0.1:1", local_extensions=True, price=SEED_PRICE)
    return validation, {r.track_id: base_record(r, CatalogInfo(name="c"), provider) for r in rows}


def test_defaults_follow_the_row_and_the_brief_wins(tmp_path) -> None:
    _, records = _records(tmp_path)
    disclosed = {track: {f: getattr(r, f) for f in DISCLOSURE_FIELDS} for track, r in records.items()}
    assert disclosed["inst"] == {"ai_composition": "ai", "ai_lyrics": "none", "ai_vocals": "none",
                                 "ai_instrumentation": "ai", "ai_post_production": "none"}
    assert disclosed["sung"]["ai_lyrics"] == "human" and disclosed["sung"]["ai_vocals"] == "ai"
    assert disclosed["ghost"]["ai_lyrics"] == "ai" and disclosed["ghost"]["ai_post_production"] == "human"


def test_a_bad_disclosure_cell_is_refused_with_its_reason(tmp_path) -> None:
    validation, records = _records(tmp_path)
    assert set(records) == {"inst", "sung", "ghost"}
    [rejection] = validation.rejections
    assert (rejection.row, rejection.column) == (4, "ai_lyrics")  # the fourth row of data
    assert "ai, human or none" in rejection.reason
