"""Fixtures of the local service's tests: a service of the module's own (its own data folder) and a key on it."""

from __future__ import annotations

import pytest

from tests.support.service import Server, create_key
from tests.support.service import server as server  # a module's own service (tests/tasks/generation uses it too)


@pytest.fixture(scope="module")
def key(server: Server) -> str:  # noqa: F811 - the fixture imported above
    """A key with $10 on the module's service."""
    return create_key(server.data, 10.0)
