"""The plan spec: the example loads, and a bad key is refused by name with the reason."""

from pathlib import Path

import pytest

from tasks.intake.planning.outcome import plan_brief
from tasks.intake.planning.spec import SpecError, load_spec, lyric_sheets, parse_spec

EXAMPLE = Path(__file__).resolve().parents[4] / "catalogs" / "plans" / "corporate.toml"
MINIMAL = {"count": 10, "bpm": [{"min": 90, "max": 128}], "naming": {"prefix": "x"}}


def test_the_example_spec_loads_with_its_lyric_sheets():
    spec = load_spec(EXAMPLE)
    assert spec.count == 120 and spec.style_weights() == {"corporate": 0.5, "tech": 2 / 6, "acoustic": 1 / 6}
    assert spec.mood_weights()["calm"] == pytest.approx(0.2)
    sheets = lyric_sheets(spec, EXAMPLE.parent)
    assert len(sheets) == 5 and all(s.startswith("[verse]") and "---" not in s for s in sheets)


def test_varied_means_every_style_and_mood_equally():
    spec = parse_spec(MINIMAL)
    assert len(set(spec.style_weights().values())) == 1 and len(spec.style_weights()) > 5
    assert sum(spec.mood_weights().values()) == pytest.approx(1)


@pytest.mark.parametrize(("change", "said"), [
    ({"tempo": 120}, "tempo: unknown key"),
    ({"moods": {"happy": 1}}, "moods: unknown mood 'happy'"),
    ({"styles": {"corporate": -1}}, "styles.corporate: Input should be greater than 0"),
    ({"bpm": [{"min": 100, "max": 104}]}, "bpm[0]: max - min must be at least 4 BPM per band"),
    ({"bpm": [{"min": 30, "max": 128}]}, "bpm[0].min: Input should be greater than or equal to 40"),
    ({"vocals": {"share": 0.2}}, "vocals: a vocal share needs `lyrics`"),
    ({"audio": {"format": "wav", "bit_rate": "320"}}, "audio: bit_rate only with mp3 or m4a, not wav"),
    ({"audio": {"versions": ["45"]}}, "audio.versions: unknown version kind"),
    ({"naming": {"prefix": "../x"}}, "naming.prefix: prefix is 1-41 of"),
    ({"metadata": {"artist": "a\nb"}}, "metadata.artist: holds a control character"),
    ({"count": 0}, "count: Input should be greater than or equal to 1"),
])
def test_a_bad_key_is_named_with_why(change, said):
    with pytest.raises(SpecError) as caught:
        parse_spec({**MINIMAL, **change})
    assert said in str(caught.value)


def test_an_unknown_provider_and_a_missing_lyrics_file_are_named(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('count = 3\n[[bpm]]\nmin = 90\nmax = 120\n[naming]\nprefix = "x"\n[provider]\nname = "nope"\n')
    with pytest.raises(SpecError, match="provider.name: no provider profile 'nope'"):
        plan_brief(spec, tmp_path / "b.csv", None)
    assert not (tmp_path / "b.csv").exists()
    with pytest.raises(SpecError, match="vocals.lyrics: .* cannot be read"):
        lyric_sheets(parse_spec({**MINIMAL, "vocals": {"share": 0.5, "lyrics": "none.txt"}}), tmp_path)


def test_not_toml_is_said(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text("count = = 3")
    with pytest.raises(SpecError, match="not TOML"):
        load_spec(spec)
