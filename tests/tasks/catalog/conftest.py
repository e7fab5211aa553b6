"""Fixtures of the catalog tests: `catalog`, a small delivered catalog built by a real run, and `server`, the
review server over it (tests/browser reviews the same catalog; a module defining its own `catalog` wins)."""

from __future__ import annotations

from tests.support.review import catalog as catalog
from tests.support.review import server as server
