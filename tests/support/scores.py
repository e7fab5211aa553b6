"""Reading a composed Score in tests: its notes by role (the engine renders by channel and never asks this)."""

from __future__ import annotations

from textmusic.engine.compose import NoteEvent, Score


def events_for(score: Score, role: str) -> list[NoteEvent]:
    """The score's notes in `role` ("drums", "chords", "lead", ...), in score order."""
    return [event for event in score.events if event.role == role]
