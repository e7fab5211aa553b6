"""The review server over a small delivered catalog, as module fixtures: the review tests in tests/tasks/catalog
(its HTTP answers) and tests/browser (the page in Chromium) import them, so both review the same catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.review import ReviewServer, serve
from tests.support.catalogs import build_catalog


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-row catalog built once per module (a real run: about ten seconds)."""
    return build_catalog(tmp_path_factory.mktemp("review"))


@pytest.fixture(scope="module")
def server(catalog: Path) -> Iterator[ReviewServer]:
    with serve(catalog) as running:
        yield running
