"""`trackfoundry plan` through typer's CliRunner: the brief and its preview are written, the figures printed,
the brief is valid; a bad spec fails naming its key; the preview escapes what it shows."""

import dataclasses
import shutil
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from tasks.intake.planning.planner import plan_tracks
from tasks.intake.planning.preview import Estimate, preview_html
from tasks.intake.planning.spec import parse_spec

EXAMPLE = Path(__file__).resolve().parents[4] / "catalogs" / "plans" / "corporate.toml"


def test_plan_writes_a_valid_brief_and_its_preview(tmp_path):
    out = tmp_path / "briefs" / "corporate.csv"
    done = CliRunner().invoke(app, ["plan", str(EXAMPLE), "--out", str(out), "--count", "24", "--seed", "5"])
    assert done.exit_code == 0, done.output
    assert "all 24 rows are valid" in done.output
    assert "prompt distances (MiniLM cosine): minimum" in done.output and "estimate (textmusic-local)" in done.output
    for dimension in ("style", "mood", "BPM band", "key", "vocals"):
        assert dimension in done.output
    assert out.read_text().count("\ncorp-") == 24
    page = (tmp_path / "briefs" / "corporate.preview.html").read_text()
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    assert "corp-0024" in page and "expected $" in page


def test_the_same_command_twice_writes_the_same_bytes(tmp_path):
    for name in ("a.csv", "b.csv"):
        assert CliRunner().invoke(app, ["plan", str(EXAMPLE), "--out", str(tmp_path / name), "--count", "12"]
                                  ).exit_code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_bad_spec_fails_naming_the_key(tmp_path):
    spec = tmp_path / "spec.toml"
    shutil.copy(EXAMPLE, spec)
    shutil.copytree(EXAMPLE.parent / "lyrics", tmp_path / "lyrics")
    spec.write_text(spec.read_text().replace("[moods]", "[moods]\ncheerful = 1"))
    done = CliRunner().invoke(app, ["plan", str(spec), "--out", str(tmp_path / "b.csv")])
    assert done.exit_code == 1 and "moods: unknown mood 'cheerful'" in done.output
    assert not (tmp_path / "b.csv").exists()


def test_the_preview_escapes_what_it_shows():
    spec = parse_spec({"count": 2, "bpm": [{"min": 90, "max": 120}], "naming": {"prefix": "x"}})
    first, second = plan_tracks(spec)
    hostile = dataclasses.replace(first, title='<script>alert("t")</script>')
    page = preview_html("<b>spec</b>", [hostile, second], {"style": Counter({"<i>": 1})}, None,
                        Estimate("local", 1.0, 2.0, 1.5))
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;" in page
    assert "<b>spec" not in page and "<i>" not in page
    assert "the worst case exceeds the budget" in page
