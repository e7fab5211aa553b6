"""`trackfoundry run` against a synchronous provider that echoes the key in the header naming its generation, as a
user runs it twice: each row is POSTed once over both runs, every track is delivered from the answer, the key is
in no output (streams, ledger, tags, page, journal) and nothing is written outside the catalog."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.support.runs import brief, trackfoundry, write_profile
from textmusic.testing.standins import Shape, StandIn


def test_a_synchronous_provider_is_paid_once_per_row_over_two_runs_and_the_key_goes_nowhere(tmp_path: Path) -> None:
    with StandIn(Shape(sync="body", seconds_to_ready=0.3, sync_echo_key=True)) as api:
        path = brief(tmp_path, ["a", "b", "c"])
        profile = write_profile(tmp_path, api, "syncstandin",
                                '[sync]\naudio = "body"\nid_header = ["request-id"]\ntimeout_seconds = 30\n')
        before = {p for p in tmp_path.rglob("*")}
        runs = [trackfoundry(tmp_path, api, path, TRACKFOUNDRY_PROVIDER=str(profile)) for _ in range(2)]
        for run in runs:
            assert run.returncode == 0, run.stderr[-3000:]
        assert len(api.posts) == 3  # one charge per row over both runs
        polls = [path for method, path, *_ in api.requests if method == "GET" and "tf-auth-" not in path]
        assert polls == []  # only the free key check of each run: a synchronous answer is never polled
    ledger = pd.read_csv(tmp_path / "out" / "ledger.csv")
    assert list(ledger.status) == ["ready"] * 3 and ledger.cost_cents.sum() == api.charged_cents
    assert ledger.generation_id.str.startswith("sync-").all()  # the echoed key named nothing
    written = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in written if tmp_path / "out" not in p.parents and p not in (tmp_path / "out",
                                                                                      tmp_path / "standin.toml")]
    assert outside == []
    key = api.api_key.encode()
    for run in runs:
        assert api.api_key not in run.stdout + run.stderr
    for file in (tmp_path / "out").rglob("*"):
        if file.is_file():
            assert key not in file.read_bytes(), file
