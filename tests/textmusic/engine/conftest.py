"""Fixtures of the engine's tests: one Engine per module (its soundfont, text model and singer load once)."""

from __future__ import annotations

import pytest

from textmusic.engine import Engine


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()
