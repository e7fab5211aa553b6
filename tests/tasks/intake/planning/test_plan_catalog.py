"""Plans checked by the project's own validator and by measures taken from the rows themselves: every plan
validates 100 %; a 200-row plan has unique titles and prompts, prompts apart in MiniLM space, no tempo
clashes, and each grid cell within one row of its share; the same seed gives the same bytes; growing a
plan keeps the rows it had."""

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.intake.brief import load_brief
from tasks.intake.planning.diversity import prompt_distances, tempo_clashes
from tasks.intake.planning.planner import PlanError, brief_csv, grid, plan_tracks, write_brief
from tasks.intake.planning.spec import load_spec, lyric_sheets, parse_spec
from tasks.intake.planning.vocabulary import MOODS, STYLES
from tasks.intake.validate import validate_brief

EXAMPLE = Path(__file__).resolve().parents[4] / "catalogs" / "plans" / "corporate.toml"
SHEETS = ("[verse]\nOne line here\n[chorus]\nAnd one more", "[verse]\nAnother sheet\n[chorus]\nSings along")


def _validated(tmp_path, spec, tracks):
    path = tmp_path / "brief.csv"
    write_brief(path, spec, tracks)
    return validate_brief(load_brief(path))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Always plannable: each row keeps at most 9 BPM of its style, mood and key from the rows after it, so a band of
# L BPM holds at least ceil(L / 9) rows per key; every mood has 12 keys or more; 12 × ceil(31 / 9) > 40 rows.
@given(count=st.integers(1, 40), low=st.integers(40, 200), width=st.integers(30, 40), bands=st.integers(1, 3),
       moods=st.lists(st.sampled_from(sorted(MOODS)), min_size=1, max_size=4, unique=True),
       shares=st.lists(st.floats(0.05, 5), min_size=4, max_size=4),
       styles=st.one_of(st.just("varied"), st.lists(st.sampled_from(sorted(STYLES)), min_size=1, max_size=3,
                                                    unique=True)),
       vocal_share=st.sampled_from([0.0, 0.2, 0.5]), seed=st.integers(0, 2**32))
def test_every_plan_validates(tmp_path, count, low, width, bands, moods, shares, styles, vocal_share, seed):
    spec = parse_spec({
        "count": count, "seed": seed, "bpm": [{"min": low, "max": min(low + width, 240), "bands": bands}],
        "moods": dict(zip(moods, shares, strict=False)),
        "styles": styles if styles == "varied" else dict.fromkeys(styles, 1.0),
        "vocals": {"share": vocal_share, "lyrics": "l.txt" if vocal_share else ""},
        "audio": {"format": "wav", "durations": [30, 60], "versions": ["30", "stems"]},
        "naming": {"prefix": "p"}, "metadata": {"artist": "Artist, \"quoted\"", "publisher": "Pub; Ltd"},
    })
    tracks = plan_tracks(spec, SHEETS if vocal_share else ())
    validation = _validated(tmp_path, spec, tracks)
    assert validation.rejections == [] and len(validation.rows) == count
    assert len({r.name.lower() for r in validation.rows}) == count
    assert tempo_clashes(tracks, spec.diversity.bpm_apart) == []
    assert all(re.fullmatch(r"p-\d{4}", r.track_id) for r in validation.rows)
    for row, track in zip(validation.rows, tracks, strict=True):
        assert track.cell.band[0] <= row.request.bpm <= track.cell.band[1]
        assert (row.request.lyrics is not None) == (track.voice is not None)
        assert row.metadata["mood"] == track.cell.mood and row.metadata["key"] == track.key


@pytest.fixture(scope="module")
def plan200(embed):
    spec = load_spec(EXAMPLE)
    return spec, plan_tracks(spec, lyric_sheets(spec, EXAMPLE.parent), embed, count=200)


def test_a_200_row_plan_is_valid_unique_and_spread(tmp_path, plan200):
    spec, tracks = plan200
    validation = _validated(tmp_path, spec, tracks)
    assert validation.rejections == [] and len(validation.rows) == 200
    titles = [t.title for t in tracks]
    assert len({t.lower() for t in titles}) == 200
    assert not any(re.search(r"\d|track", t, re.IGNORECASE) for t in titles)
    assert len({t.words.prompt for t in tracks}) == 200
    assert tempo_clashes(tracks, spec.diversity.bpm_apart) == []
    held = Counter((t.cell.style, t.cell.mood, t.cell.band) for t in tracks)
    for cell in grid(spec):
        assert abs(held[(cell.style, cell.mood, cell.band)] - 200 * cell.share) < 1, cell
    sung = [t for t in tracks if t.voice]
    assert abs(len(sung) - 200 * spec.vocals.share) < 1 and all(t.voice == "female" for t in sung)
    assert all("female lead vocal" in t.words.prompt and t.lyrics for t in sung)


def test_a_200_row_plan_keeps_prompts_apart(plan200, embed):
    spec, tracks = plan200
    distances = prompt_distances(tracks, embed)  # measured anew from the written prompts
    assert distances.minimum >= spec.diversity.min_prompt_distance
    assert distances.percentiles[50] > 4 * spec.diversity.min_prompt_distance


def test_a_prompt_says_style_mood_tempo_key_and_use(plan200):
    _, tracks = plan200
    for t in tracks[:40]:
        prompt = t.words.prompt
        assert STYLES[t.cell.style].genre in prompt and f"{t.bpm} BPM" in prompt
        assert any(use in prompt for use in STYLES[t.cell.style].uses)
        assert any(word in prompt.lower() for word in MOODS[t.cell.mood].adjectives)


def test_same_seed_same_bytes_and_growing_keeps_the_rows(embed):
    spec = load_spec(EXAMPLE)
    sheets = lyric_sheets(spec, EXAMPLE.parent)
    first = brief_csv(spec, plan_tracks(spec, sheets, embed, count=40))
    assert brief_csv(spec, plan_tracks(spec, sheets, embed, count=40)) == first
    grown = brief_csv(spec, plan_tracks(spec, sheets, embed, count=70))
    assert grown.startswith(first) and grown.count("\ncorp-") == 70
    other = brief_csv(spec, plan_tracks(spec, sheets, embed, count=40, seed=spec.seed + 1))
    assert other != first and other.splitlines()[0] == first.splitlines()[0]


def test_more_rows_than_the_grid_can_hold_apart_is_refused():
    spec = parse_spec({"count": 300, "styles": {"lofi": 1}, "moods": {"dramatic": 1},
                       "bpm": [{"min": 80, "max": 92, "bands": 1}], "naming": {"prefix": "x"}})
    with pytest.raises(PlanError, match="within 4 BPM of another row's"):
        plan_tracks(spec)


def test_the_vocabulary_is_curated_lists_without_repeats():
    from tasks.intake.fields import FIELDS_BY_NAME

    for style in STYLES.values():
        for words in (style.instruments, style.uses, style.textures, style.title_nouns):
            assert len(set(words)) == len(words) >= 4, style.name
        assert style.tempo[0] < style.tempo[1]
    for mood in MOODS.values():
        assert len(set(mood.title_words)) == len(mood.title_words) >= 10, mood.name
        assert all(re.fullmatch(FIELDS_BY_NAME["key"].pattern, key) for key in mood.keys)
