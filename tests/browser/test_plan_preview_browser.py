"""A plan's preview in Chromium: it renders every planned row and the coverage, loads nothing, logs no error,
and shows a hostile spec name as text (the page's own Content-Security-Policy would also stop a script)."""

from __future__ import annotations

import shutil
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from typer.testing import CliRunner

from flows.cli import app
from tests.support import ROOT
from tests.support.browser import serving, severe_messages

EXAMPLE = ROOT / "catalogs" / "plans"
HOSTILE = "plan<img src=x onerror=document.title=1>"


def test_the_preview_shows_every_row_loads_nothing_and_keeps_a_hostile_name_text(tmp_path: Path,
                                                                                browser: WebDriver) -> None:
    shutil.copytree(EXAMPLE, tmp_path / "plans")
    spec = (tmp_path / "plans" / "corporate.toml").rename(tmp_path / "plans" / f"{HOSTILE}.toml")
    out = tmp_path / "site" / "brief.csv"
    done = CliRunner().invoke(app, ["plan", str(spec), "--out", str(out), "--count", "15"])
    assert done.exit_code == 0, done.output
    with serving(out.parent) as url:
        browser.get(url + "brief.preview.html")
        heading = browser.find_element(By.TAG_NAME, "h1").text
        rows = browser.find_elements(By.XPATH, "//h2[.='Rows']/following-sibling::table[1]//tr")
        resources = browser.execute_script("return performance.getEntriesByType('resource').length")
        assert HOSTILE in heading and not browser.find_elements(By.TAG_NAME, "img")
        assert browser.title == f"Plan: {HOSTILE}"
        assert len(rows) == 1 + 15  # the header and one row per planned track
        assert "Coverage" in browser.page_source and "expected $" in browser.page_source
        assert resources == 0 and severe_messages(browser) == []
