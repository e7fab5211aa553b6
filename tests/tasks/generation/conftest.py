"""Fixtures of the generation tests: `server`, a local service of the module's own (its own data folder)."""

from __future__ import annotations

from tests.support.service import server as server  # shared with tests/textmusic/server
