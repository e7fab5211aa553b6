"""The catalog page `DIR/index.html`: the run's summary and one card per song, with players, waveforms,
search, filters, sorting and (with a review token) decisions."""

from .render import render_page, write_page

__all__ = ["render_page", "write_page"]
