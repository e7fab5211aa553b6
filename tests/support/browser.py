"""Browser helpers for tests: the console's errors and waiting for a condition. The browser and the folder server
are `textmusic.testing.browser`'s (the page benchmark uses them too); the `browser` fixture (one Chromium per
module) is tests/browser/conftest.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from textmusic.testing.browser import chromium, serving

__all__ = ["chromium", "serving", "severe_messages", "wait_for"]


def severe_messages(driver: WebDriver) -> list[dict[str, Any]]:
    """Console errors (and failed loads) since the last call: the log is drained on reading."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 10.0) -> Any:
    """Wait until `condition(driver)` is truthy and return it (fails the test with a timeout otherwise)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
