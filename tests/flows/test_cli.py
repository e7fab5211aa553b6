"""The `trackfoundry` commands that need no provider: validate and estimate."""

import subprocess
import sys

from tests.support.briefs import BAD_BRIEF


def trackfoundry(*args, cwd):
    return subprocess.run([sys.executable, "-m", "flows", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_validate_lists_rejections_writes_a_report_and_fails(tmp_path):
    brief = tmp_path / "bad.csv"
    brief.write_text(BAD_BRIEF, encoding="utf-8")
    done = trackfoundry("validate", "bad.csv", "--report", "report", cwd=tmp_path)  # relative paths
    assert done.returncode == 2, done.stderr
    for track_id in ("lyrics-only", "tags-only", "all-three", "bad-format", "neg-seed"):
        assert track_id in done.stdout
    assert (tmp_path / "report" / "index.html").is_file()


def test_validate_and_estimate_a_good_brief(tmp_path):
    brief = tmp_path / "good.csv"
    brief.write_text("track_id,name,prompt,num_songs,duration_seconds\na,A,calm,2,60\nb,B,loud,1,30\n")
    assert trackfoundry("validate", str(brief), cwd=tmp_path).returncode == 0
    done = trackfoundry("estimate", str(brief), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # local provider: 2 × 60 s + 30 s = 2.5 minutes = $0.50 expected
    assert "$0.50" in done.stdout


def test_missing_brief_is_a_clear_failure(tmp_path):
    done = trackfoundry("validate", str(tmp_path / "nope.csv"), cwd=tmp_path)
    assert done.returncode == 1 and "brief not found" in done.stderr
