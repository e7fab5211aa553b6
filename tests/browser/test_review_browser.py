"""The review page in a real browser (Debian's headless Chromium) against the review server: open the URL it
prints, listen to a take, reject another with a note, and find the decision in review.csv and on the page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from flows.review import ReviewServer
from tasks.catalog.decisions import ReviewEntry, decision_for, load_decisions
from tasks.catalog.ledger import LedgerRecord
from tests.support.browser import severe_messages, wait_for
from tests.support.catalogs import takes

NOTE = "drums too loud <b>at 0:05</b>"


def card(driver: WebDriver, record: LedgerRecord) -> WebElement:
    selector = f'article.card[data-track-id="{record.track_id}"][data-song-index="{record.song_index}"]'
    return driver.find_element(By.CSS_SELECTOR, selector)


def poll_decision(catalog: Path, record: LedgerRecord, seconds: float = 5.0) -> ReviewEntry | None:
    """The take's decision once review.csv holds one (the page saves in the background)."""
    deadline = time.monotonic() + seconds
    while (entry := decision_for(record, load_decisions(catalog))) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return entry


def test_the_page_shows_the_disclosure_and_verified_credentials(browser: WebDriver, server: ReviewServer,
                                                              catalog: Path) -> None:
    """Short form of test_provenance_browser.py (marked slow: it builds its own catalog), on this module's: the
    development-signed notice, a card's AI disclosure and its take's verified-credentials summary."""
    browser.get(server.url)
    notice = browser.find_element(By.ID, "development-signed")
    assert notice.is_displayed() and "development certificate" in notice.text
    record = next(r for r in takes(catalog) if r.output_format == "wav")
    spans = card(browser, record).find_elements(By.CSS_SELECTOR, ".disclosure span")
    assert {s.get_attribute("data-part"): s.text for s in spans}["composition"] == "composition: ai"
    summary = card(browser, record).find_element(
        By.CSS_SELECTOR, f'.player:has(a.file[title="{record.audio_path}"]) details.provenance summary')
    assert summary.text == "credentials verified · development certificate, not trusted by others"


def test_the_page_plays_a_take_with_the_token_cookie_alone(browser: WebDriver, server: ReviewServer,  # noqa: F811
                                                            catalog: Path) -> None:
    browser.get(server.url)
    record = next(r for r in takes(catalog) if r.output_format == "wav")
    audio = card(browser, record).find_element(By.TAG_NAME, "audio")
    duration = browser.execute_async_script(
        "const [audio, done] = arguments; audio.preload = 'metadata';"
        "audio.addEventListener('loadedmetadata', () => done(audio.duration));"
        "audio.addEventListener('error', () => done(-1)); audio.load();", audio)
    assert duration == pytest.approx(record.duration_seconds, abs=0.1)
    waveform = card(browser, record).find_element(By.CSS_SELECTOR, "img.waveform")
    browser.execute_script("arguments[0].scrollIntoView()", waveform)
    wait_for(browser, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", waveform))
    assert not [m for m in severe_messages(browser) if "favicon" not in m["message"]]


def test_rejecting_a_take_writes_review_csv_and_shows_on_the_card(browser: WebDriver,  # noqa: F811
                                                                  server: ReviewServer, catalog: Path) -> None:
    pair = [r for r in takes(catalog) if r.track_id == "pair-2"]
    browser.get(server.url)
    target = card(browser, pair[1])
    target.find_element(By.CSS_SELECTOR, "textarea.note").send_keys(NOTE)
    target.find_element(By.CSS_SELECTOR, 'button.decide[data-decision="reject"]').click()
    wait_for(browser, lambda d: card(d, pair[1]).get_attribute("data-decision") == "reject")
    assert card(browser, pair[1]).find_element(By.CSS_SELECTOR, ".decision").text == "reject"
    stored = poll_decision(catalog, pair[1])
    assert stored is not None and (stored.decision, stored.note, stored.file) == ("reject", NOTE, pair[1].audio_path)
    assert decision_for(pair[0], load_decisions(catalog)) is None  # the row's other song is untouched
    assert card(browser, pair[0]).get_attribute("data-decision") is None

    browser.get(server.url)  # the server's page, drawn again, knows the decision
    assert card(browser, pair[1]).get_attribute("data-decision") == "reject"
    assert card(browser, pair[1]).find_element(By.CSS_SELECTOR, "textarea.note").get_attribute("value") == NOTE
    browser.get((catalog / "index.html").as_uri())  # and so does the static page, without buttons
    assert card(browser, pair[1]).get_attribute("data-decision") == "reject"
    assert not browser.find_elements(By.CSS_SELECTOR, "button.decide")
