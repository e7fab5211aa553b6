"""A run against a hostile provider over real HTTP keeps every promise: the key reaches no output, outside ids
never become paths, a paid track is never paid twice nor forgotten, no hostile number reaches the money, one bad
track never holds up the rest, and every row ends with a record."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tasks.catalog.ledger import LedgerRecord
from tasks.generation.figures import FIGURE_MARGIN, max_audio_bytes
from tests.support.hostile import (
    AUDIO_SECONDS,
    SETTINGS,
    STATUS_PREFIX,
    SUBMIT_PATH,
    EchoKey,
    Hostile,
    NeverReady,
    Play,
    Reply,
    Song,
    assert_money_sane,
    assert_no_key,
    bounded_run,
    client_for,
    every_file_text,
    rows,
)
from textmusic.contract import price_cents

pytestmark = pytest.mark.reliability
















def test_a_provider_echoing_the_key_everywhere_gets_it_into_no_output(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    from tasks.catalog.ledger import load_ledger, write_ledger
    from tasks.catalog.page import write_page

    out = tmp_path / "out"
    out.mkdir()
    planned = rows("calm reject", "calm refuse", "calm unreadable", "calm fail", "calm cdn", "calm fine")
    with Hostile(EchoKey()) as api:
        records, journal = bounded_run(planned, client_for(api), out)
    write_ledger(out, records)
    write_page(out)
    assert {r.track_id: r.status for r in records}["t6"] == "ready"
    assert (out / "support").is_dir() and list((out / "support").iterdir())  # the unreadable answer was kept
    errors = " ".join(r.error for r in records)
    assert "header was" in errors and "[redacted]" in errors  # the provider's words are kept, the key is not
    assert "cdn-secret-token-77" not in errors and "403" in errors  # a foreign body: only its status and size
    assert_no_key(every_file_text(out) + [r.model_dump_json() for r in journal + load_ledger(out)]
                  + [caplog.text])


class PathIds(Play):
    """Track ids that are paths, queries and encoded slashes."""

    IDS = ("../../../admin/x", "q?token=1", "a%2Fb", "..")

    def new_id(self, api: Hostile, body: dict[str, Any], index: int) -> str:
        return self.IDS[int(body.get("seed", 1)) - 1]


def test_outside_track_ids_stay_one_path_segment_and_the_key_goes_nowhere_else(tmp_path: Path) -> None:
    planned = rows(*(f"calm {i}" for i in range(len(PathIds.IDS))))
    with Hostile(PathIds()) as api:
        records, _ = bounded_run(planned, client_for(api), tmp_path)
    assert sorted(r.status for r in records) == ["ready"] * len(PathIds.IDS)
    for _, path, auth in api.requests:
        if path.startswith(STATUS_PREFIX):  # each id one segment, no query
            assert "/" not in path[len(STATUS_PREFIX):] and "?" not in path, path
        elif auth:
            assert path == SUBMIT_PATH or path.startswith("/audio/"), path
    assert {r.generation_id for r in records} == set(PathIds.IDS)
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))




class MissingOnce(Play):
    """Answers 404 for every track's first poll (replica lag), then the truth."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        if track_id not in self.seen:
            self.seen.add(track_id)
            return Reply(404, {"success": False, "error": {"code": "not_found", "message": "no such track"}})
        return super().status(api, track_id, auth)


class MissingAlways(Play):
    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        return Reply(404, {"success": False, "error": {"code": "not_found", "message": "no such track"}})


def _paid_then_waiting(tmp_path: Path, api: Hostile, prompts: tuple[str, ...]) -> list[LedgerRecord]:
    """A first run whose tracks never become ready before its poll deadline: paid, resumable (poll)."""
    planned = rows(*prompts)
    first, _ = bounded_run(planned, client_for(api, poll_deadline_seconds=1.0), tmp_path)
    assert all(r.resume == "poll" and r.generation_id for r in first)
    return first


def test_a_single_404_on_a_paid_track_never_leads_to_a_second_charge(tmp_path: Path) -> None:
    prompts = ("calm a", "calm b", "calm c")
    with Hostile(NeverReady()) as api:
        first = _paid_then_waiting(tmp_path, api, prompts)
        api.play = MissingOnce()
        second, _ = bounded_run(rows(*prompts), client_for(api), tmp_path, first)
    assert all(n == 1 for n in api.posts_per_prompt().values()) and len(api.posts) == 3
    assert sorted(r.status for r in second) == ["ready"] * 3
    assert {r.generation_id for r in second} == {r.generation_id for r in first}


def test_a_paid_track_the_provider_forgot_is_kept_as_lost_with_its_cost_and_never_resubmitted(tmp_path: Path) -> None:
    prompts = ("calm a", "calm b")
    with Hostile(NeverReady()) as api:
        first = _paid_then_waiting(tmp_path, api, prompts)
        first = [r.model_copy(update={"cost_cents": 4}) for r in first]  # as a provider that reported its cost
        api.play = MissingAlways()
        second, _ = bounded_run(rows(*prompts), client_for(api), tmp_path, first)
        assert all(r.resume == "lost" and r.cost_cents == 4 and r.generation_id for r in second), second
        third, _ = bounded_run(rows(*prompts), client_for(api), tmp_path, second)
    assert len(api.posts) == 2  # no run after the first ever paid again
    assert all(r.resume == "lost" for r in third)


class BadNumbers(Play):
    """Per prompt, one hostile value in an otherwise ready track."""

    VALUES: dict[str, dict[str, Any]] = {
        "nan-duration": {"duration_seconds": float("nan")},
        "inf-duration": {"duration_seconds": float("inf"), "cost_cents": None},
        "inf-cost": {"cost_cents": float("inf")},
        "huge-cost": {"cost_cents": 1e25},
        "negative-cost": {"cost_cents": -4945},
        "negative-duration": {"duration_seconds": -10.0, "cost_cents": None},
    }

    def track(self, api: Hostile, song: Song) -> dict[str, Any]:
        answer = super().track(api, song)
        if answer["status"] == "ready":
            answer.update(self.VALUES.get(song.prompt, {}))
        return {k: v for k, v in answer.items() if v is not None}

    def submit(self, api: Hostile, body: Any, auth: str) -> Reply:
        if isinstance(body, dict) and body.get("prompt") == "newline-id":
            api.accept(body, self)
            return Reply(200, {"success": True, "tracks": [{"id": "abc\ndef", "status": "pending"}]})
        return super().submit(api, body, auth)

    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        song = api.song(track_id)
        if song is not None and song.prompt == "nested":
            return Reply(200, raw=b"[" * 100_000 + b"]" * 100_000)
        return super().status(api, track_id, auth)


def test_hostile_numbers_and_shapes_fail_their_row_never_the_run_nor_the_money(tmp_path: Path) -> None:
    prompts = (*BadNumbers.VALUES, "nested", "newline-id", "fine")
    with Hostile(BadNumbers()) as api:
        records, journal = bounded_run(rows(*prompts), client_for(api, poll_deadline_seconds=3.0), tmp_path)
    by_prompt = {r.prompt: r for r in records}
    assert set(by_prompt) == set(prompts)  # every row ended with a record
    assert_money_sane(records + journal, len(prompts))
    for prompt in BadNumbers.VALUES:  # the figure is dropped; the file's measured length and the price table rule
        record = by_prompt[prompt]
        assert record.status == "ready", record
        assert abs(record.duration_seconds - AUDIO_SECONDS) < 0.5 and record.cost_cents == price_cents(AUDIO_SECONDS)
    assert by_prompt["nested"].status == "failed" and by_prompt["nested"].resume == "poll"
    assert by_prompt["newline-id"].resume == "unanswered"  # accepted, unreadable: never sent again unasked
    assert by_prompt["fine"].status == "ready"


class UnreadableFirst(Play):
    """The first row's status is an HTML page, forever; the others are honest."""

    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        song = api.song(track_id)
        if song is not None and song.prompt == "calm html":
            return Reply(200, raw=b"<html><body>Service</body></html>", media_type="text/html")
        return super().status(api, track_id, auth)


def test_a_track_whose_status_never_reads_holds_up_no_other_row(tmp_path: Path) -> None:
    prompts = ("calm html", "calm b", "calm c", "calm d")
    with Hostile(UnreadableFirst()) as api:
        records, _ = bounded_run(rows(*prompts), client_for(api, poll_deadline_seconds=8.0), tmp_path)
    by_prompt = {r.prompt: r for r in records}
    bad = by_prompt["calm html"]
    assert bad.status == "failed" and bad.resume == "poll" and "status never read" in bad.error
    # The others were polled and delivered while the unreadable one was still being tried, not after it gave up.
    assert all(by_prompt[p].status == "ready" and by_prompt[p].finished_at < bad.finished_at for p in prompts[1:])
    polls = sum(1 for m, p, _ in api.requests if m == "GET" and p.startswith(STATUS_PREFIX))
    assert polls < 60  # back-off: not a poll per retry interval over the whole deadline


class EndlessAudio(Play):
    """Audio that never ends (a stream of silence-looking bytes), sampled for the .partial folder's peak size."""

    def audio(self, api: Hostile, song: Song) -> Reply:
        def forever() -> Iterator[bytes]:
            while True:
                yield b"\xff" * 65536

        return Reply(200, chunks=forever, media_type="audio/mpeg")


def test_a_download_that_never_ends_stops_at_what_the_longest_song_may_weigh(tmp_path: Path) -> None:
    planned = [replace(r, request=r.request.model_copy(update={"output_format": "mp3"})) for r in rows("calm endless")]
    limit = max_audio_bytes("mp3", SETTINGS.max_minutes_per_song * 60 * FIGURE_MARGIN)
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            peak[0] = max([peak[0], *(p.stat().st_size for p in (tmp_path / ".partial").glob("*") if p.is_file())])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with Hostile(EndlessAudio()) as api:
        records, _ = bounded_run(planned, client_for(api), tmp_path)
    done.set()
    watcher.join()
    (record,) = records
    assert record.status == "failed" and record.resume in ("poll", "lost") and str(limit) in record.error
    assert peak[0] <= limit + (1 << 20)  # the .partial file never grew past the bound (one chunk of slack)
    assert not [p for p in (tmp_path / ".partial").glob("*")]  # removed at once
