"""Figures measured by the reliability tests, printed at the end of the run (see conftest.py)."""

FIGURES: list[str] = []
