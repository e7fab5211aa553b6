"""Fixtures of the local service's tests: a service of the module's own (its own data folder) and a key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.service import Server, create_key, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("tm-service"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    """A key with $10 on the module's service."""
    return create_key(server.data, 10.0)
