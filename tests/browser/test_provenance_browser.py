"""The catalog page in Chromium says how each file was made: its AI disclosure, its provenance, whether its
content credentials verify (and that the development certificate signed them), and a file changed since is
shown as failing its verification once the catalog is verified again."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from flows.review import ReviewServer
from flows.verify import verify_and_record
from tasks.catalog.ledger import LedgerRecord
from tasks.settings import PipelineSettings
from tests.support.browser import wait_for
from tests.support.catalogs import takes

# ~19 s, most of it building this module's own catalog (make test-slow). make test keeps a short form in
# test_review_browser.py, on that module's catalog: the disclosure and the verified-credentials summary on the page.
pytestmark = pytest.mark.slow


def player(driver: WebDriver, record: LedgerRecord) -> WebElement:
    card = driver.find_element(By.CSS_SELECTOR, f'article.card[data-track-id="{record.track_id}"]'
                                                f'[data-song-index="{record.song_index}"]')
    return card.find_element(By.CSS_SELECTOR, f'.player:has(a.file[title="{record.audio_path}"])')


def test_the_page_shows_disclosure_provenance_and_verified_credentials(browser: WebDriver, server: ReviewServer,
                                                                       catalog: Path) -> None:
    browser.get(server.url)
    notice = browser.find_element(By.ID, "development-signed")
    assert notice.is_displayed() and "development certificate" in notice.text
    assert "4 of 4 pass" in browser.find_element(By.ID, "verification").text
    record = next(r for r in takes(catalog) if r.output_format == "wav")
    card = browser.find_element(By.CSS_SELECTOR, f'article.card[data-track-id="{record.track_id}"]')
    parts = {s.get_attribute("data-part"): s.text for s in card.find_elements(By.CSS_SELECTOR, ".disclosure span")}
    assert parts == {"composition": "composition: ai", "lyrics": "lyrics: none", "vocals": "vocals: none",
                     "instrumentation": "instrumentation: ai", "post-production": "post-production: none"}
    details = player(browser, record).find_element(By.CSS_SELECTOR, "details.provenance")
    summary = details.find_element(By.TAG_NAME, "summary")
    assert summary.text == "credentials verified · development certificate, not trusted by others"
    facts = details.find_element(By.TAG_NAME, "dl")
    assert not facts.is_displayed()
    summary.click()
    wait_for(browser, lambda _: facts.is_displayed())
    shown = {dt.text.lower(): dd.text for dt, dd in zip(facts.find_elements(By.TAG_NAME, "dt"),
                                                facts.find_elements(By.TAG_NAME, "dd"), strict=True)}
    assert shown["generation"] == record.generation_id and shown["seed"] == str(record.seed)
    assert shown["prompt sha-256"] == record.prompt_sha256 and shown["trackfoundry"] == record.pipeline_version
    assert shown["source type"] == "algorithmicMedia" and shown["signed by"] == "development certificate (embedded)"


def test_a_file_changed_since_shows_its_failed_verification(browser: WebDriver, server: ReviewServer,
                                                            catalog: Path) -> None:
    record = next(r for r in takes(catalog) if r.output_format == "mp3")
    path = catalog / record.audio_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    verify_and_record(catalog, PipelineSettings())
    browser.get(server.url)
    summary = player(browser, record).find_element(By.CSS_SELECTOR, "details.provenance summary")
    assert summary.text == "verification failed: checksum"
    assert "3 of 4 pass" in browser.find_element(By.ID, "verification").text
