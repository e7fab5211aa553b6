"""Fixtures of the browser tests: `browser`, one headless Chromium per module; `catalog` and `server`, the
review server over a small delivered catalog (shared with tests/tasks/catalog; a module defining its own
`catalog` wins, as the page's tests do)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.support.browser import chromium
from tests.support.review import catalog as catalog
from tests.support.review import server as server


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One Chromium per test module (starting one takes about a second)."""
    with chromium() as driver:
        yield driver
