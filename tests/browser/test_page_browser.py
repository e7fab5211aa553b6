"""The catalog page in a real browser (Debian's headless Chromium): a catalog made by the real flow against the
local service in synthetic-audio mode (every format), its page served over loopback HTTP and opened from
file://. Players load and last as long as the ledger says; search, filters and sorting show the right cards;
in review mode a decision is posted to the server and a refusal is shown on the card."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tasks.catalog.ledger import LedgerRecord, load_ledger
from tasks.catalog.page import render_page, write_page
from tests.support import ROOT
from tests.support.browser import serving, severe_messages, wait_for
from tests.support.service import create_key, start_server

HOSTILE = 'Morning <script>window.hacked = 1</script><img src=x onerror="window.hacked = 2">'
COLUMNS = ["track_id", "name", "prompt", "tags", "output_format", "output_bit_rate", "bpm", "duration_seconds", "seed"]
ROWS = [
    ("w-1", HOSTILE, "calm piano sunrise", "lofi|chill", "wav", "", "84", "10", "1"),
    ("m-2", "Night Drive", "deep house groove", "house|electronic", "mp3", "192", "122", "12", "2"),
    ("o-3", "Slow Tides", "ambient pads, no drums", "ambient|calm", "ogg", "", "60", "11", "3"),
    ("f-4", "Open Road", "folk guitar on the road", "folk|acoustic", "flac", "", "96", "10", "4"),
    ("a-5", "Blue Corner", "late night jazz trio", "jazz|chill", "m4a", "128", "110", "13", "5"),
    ("bad-6", "Too Fast", "a prompt", "", "wav", "", "fast", "10", "6"),
]
TOKEN = "token-for-the-review-test"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`trackfoundry run` against the local service with synthetic audio, then the page written for it."""
    root = tmp_path_factory.mktemp("page-browser")
    pd.DataFrame(ROWS, columns=COLUMNS).to_csv(root / "brief.csv", index=False)
    server = start_server(root / "service", "--synthetic-audio", "--latency", "0")
    try:
        env = {**os.environ, "TEXTMUSIC_API_URL": server.base, "TEXTMUSIC_API_KEY": create_key(root / "service", 10.0),
               "TRACKFOUNDRY_PROVIDER": "textmusic-local"}
        done = subprocess.run([sys.executable, "-m", "flows", "run", str(root / "brief.csv"), "--catalog", "page",
                               "--out", str(root / "catalog")], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    write_page(root / "catalog")
    yield root / "catalog"


@pytest.fixture(scope="module")
def site(catalog: Path) -> Iterator[str]:
    with serving(catalog) as url:
        yield url


def ledger(catalog: Path) -> dict[str, LedgerRecord]:
    return {r.track_id: r for r in load_ledger(catalog)}


def shown(driver: WebDriver) -> list[str]:
    """Track ids of the cards the browser displays, in page order."""
    return [c.get_attribute("data-track-id") for c in driver.find_elements(By.CSS_SELECTOR, "article.card")
            if c.is_displayed()]


def open_page(driver: WebDriver, url: str) -> None:
    driver.get(url)
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete")


def loaded_durations(driver: WebDriver) -> dict[str, float]:
    """Ask every player to load its file; {file: duration} once each has read its metadata."""
    driver.execute_script("document.querySelectorAll('audio').forEach((a) => a.load())")
    script = """return Array.from(document.querySelectorAll('article.card audio')).map(
                  (a) => [a.closest('article').dataset.file, a.readyState, a.duration, a.error && a.error.message])"""

    def settled(d: WebDriver) -> list[list[object]] | None:
        players = d.execute_script(script)
        return players if all(p[1] >= 1 or p[3] for p in players) else None

    players = wait_for(driver, settled)
    assert not [p for p in players if p[3]], players
    return {file: duration for file, _, duration, _ in players}


def test_the_page_loads_clean_and_shows_every_row(browser: WebDriver, site: str, catalog: Path) -> None:  # noqa: F811
    severe_messages(browser)  # start from an empty console
    open_page(browser, site + "index.html")
    records = ledger(catalog)
    assert shown(browser) == [row[0] for row in ROWS] and records["bad-6"].status == "rejected"
    title = browser.find_element(By.CSS_SELECTOR, 'article[data-track-id="w-1"] .title').text
    assert title == HOSTILE and browser.execute_script("return window.hacked") is None
    error = browser.find_element(By.CSS_SELECTOR, 'article[data-track-id="bad-6"] .error').text
    assert error == records["bad-6"].error and "bpm" in error
    assert browser.find_element(By.ID, "shown-count").text == f"{len(ROWS)} of {len(ROWS)}"
    images = browser.execute_script("""return Array.from(document.querySelectorAll('img.waveform'))
        .map((img) => { img.loading = 'eager'; return img; }).map((img) => img.src)""")
    assert len(images) == 5
    wait_for(browser, lambda d: d.execute_script(
        "return Array.from(document.images).every((img) => img.complete && img.naturalWidth > 0)"))
    assert severe_messages(browser) == []


def test_every_player_loads_and_lasts_as_the_ledger_says(browser: WebDriver, site: str, catalog: Path) -> None:  # noqa: F811
    open_page(browser, site + "index.html")
    durations = loaded_durations(browser)
    ready = {r.audio_path: r.duration_seconds for r in ledger(catalog).values() if r.status == "ready"}
    assert sorted(durations) == sorted(ready) and {Path(f).suffix for f in ready} == {
        ".wav", ".mp3", ".ogg", ".flac", ".m4a"}
    for file, seconds in ready.items():
        assert durations[file] == pytest.approx(seconds, abs=0.5), file
    assert severe_messages(browser) == []


def test_search_and_filters_show_only_the_matching_cards(browser: WebDriver, site: str, catalog: Path) -> None:  # noqa: F811
    open_page(browser, site + "index.html")
    records = ledger(catalog)
    search = browser.find_element(By.ID, "search")
    search.send_keys("chill")
    assert shown(browser) == [t for t, r in records.items() if "chill" in r.tags] == ["w-1", "a-5"]
    search.send_keys(" night")
    assert shown(browser) == ["a-5"]
    search.clear()
    browser.execute_script("arguments[0].dispatchEvent(new Event('input', {bubbles: true}))", search)
    assert len(shown(browser)) == len(ROWS)
    Select(browser.find_element(By.ID, "filter-genre")).select_by_value("folk")
    assert shown(browser) == ["f-4"]
    Select(browser.find_element(By.ID, "filter-genre")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("rejected")
    assert shown(browser) == ["bad-6"] and browser.find_element(By.ID, "shown-count").text == f"1 of {len(ROWS)}"
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("")
    browser.find_element(By.ID, "bpm-min").send_keys("90")
    browser.find_element(By.ID, "bpm-max").send_keys("115")
    assert shown(browser) == [t for t, r in records.items() if r.bpm is not None and 90 <= r.bpm <= 115] == [
        "f-4", "a-5"]


def test_sorting_by_bpm_orders_the_cards(browser: WebDriver, site: str, catalog: Path) -> None:  # noqa: F811
    open_page(browser, site + "index.html")
    delivered = [r for r in ledger(catalog).values() if r.status == "ready"]
    sort = Select(browser.find_element(By.ID, "sort"))
    sort.select_by_value("bpm")
    rising = [r.track_id for r in sorted(delivered, key=lambda r: r.bpm or 0)]
    assert shown(browser) == [*rising, "bad-6"] == ["o-3", "w-1", "f-4", "a-5", "m-2", "bad-6"]
    sort.select_by_value("-bpm")
    assert shown(browser) == [*reversed(rising), "bad-6"]
    sort.select_by_value("title")
    titles = sorted(ledger(catalog).values(), key=lambda r: (r.name or r.track_id).casefold())
    assert shown(browser) == [r.track_id for r in titles]
    sort.select_by_value("row")
    assert shown(browser) == [row[0] for row in ROWS]


def test_the_static_page_works_opened_from_a_file(browser: WebDriver, catalog: Path) -> None:  # noqa: F811
    severe_messages(browser)
    open_page(browser, (catalog / "index.html").as_uri())
    durations = loaded_durations(browser)
    ogg = next(r for r in ledger(catalog).values() if r.output_format == "ogg")
    assert durations[ogg.audio_path] == pytest.approx(ogg.duration_seconds, abs=0.5)
    browser.find_element(By.ID, "search").send_keys("tides")
    assert shown(browser) == ["o-3"]
    assert browser.find_elements(By.CSS_SELECTOR, "button.decide") == []
    assert severe_messages(browser) == []


def test_review_mode_posts_decisions_and_shows_a_refusal(browser: WebDriver, catalog: Path) -> None:  # noqa: F811
    posted: list[tuple[str, dict[str, object]]] = []
    answers = [200, 403]

    async def decisions(request: Request) -> JSONResponse:
        posted.append((request.headers.get("x-review-token", ""), json.loads(await request.body())))
        status = answers.pop(0)
        return JSONResponse({"ok": status == 200} if status == 200 else {"detail": "token refused"}, status)

    (catalog / "review.html").write_text(render_page(catalog, review_token=TOKEN), encoding="utf-8")
    with serving(catalog, [Route("/api/decisions", decisions, methods=["POST"])]) as url:
        open_page(browser, url + "review.html")
        card = browser.find_element(By.CSS_SELECTOR, 'article[data-track-id="m-2"]')
        card.find_element(By.CSS_SELECTOR, "textarea.note").send_keys("keep <this> one")
        card.find_element(By.CSS_SELECTOR, 'button.decide[data-decision="approve"]').click()
        wait_for(browser, lambda _: card.get_attribute("data-decision") == "approve")
        assert card.find_element(By.CSS_SELECTOR, ".decision").text == "approve"
        record = ledger(catalog)["m-2"]
        assert posted == [(TOKEN, {"track_id": "m-2", "song_index": 0, "seed": record.seed,
                                   "file": record.audio_path, "decision": "approve", "note": "keep <this> one"})]
        card.find_element(By.CSS_SELECTOR, 'button.decide[data-decision="reject"]').click()
        error = card.find_element(By.CSS_SELECTOR, ".review-error")
        wait_for(browser, lambda _: error.is_displayed())
        assert "403" in error.text and card.get_attribute("data-decision") == "approve"
        assert browser.find_elements(By.CSS_SELECTOR, 'article[data-status="rejected"] button.decide') == []
