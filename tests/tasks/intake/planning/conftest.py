"""`embed`: the MiniLM sentence embedder the planner holds prompts apart with, loaded once per session."""

import pytest

from textmusic.embed import MiniLM


@pytest.fixture(scope="session")
def embed():
    return MiniLM().embed
