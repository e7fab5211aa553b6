"""How diverse a plan is, measured: rows per style, mood, tempo band, key and voice; how near the nearest two
prompts are in the MiniLM embedding space, and how pairwise distances spread; rows that clash in tempo.

The figures are computed from the planned rows themselves, not from what the planner meant to do, so the
command line and the tests check the planner rather than repeat it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from tasks.intake.planning.planner import Embed, PlannedTrack

COVERAGE_DIMENSIONS = ("style", "mood", "BPM band", "key", "vocals")
PERCENTILES = (5, 25, 50, 75, 95)


@dataclass(frozen=True)
class Distances:
    """Cosine distances (1 - cosine similarity) between every two prompts."""

    minimum: float
    percentiles: dict[int, float]
    nearest_pair: tuple[str, str]  # the track ids of the nearest two prompts


def coverage(tracks: list[PlannedTrack]) -> dict[str, Counter[str]]:
    """Rows per value of each dimension, in the order the values first appear."""
    said = {
        "style": [t.cell.style for t in tracks],
        "mood": [t.cell.mood for t in tracks],
        "BPM band": [t.cell.band_label for t in tracks],
        "key": [t.key for t in tracks],
        "vocals": [t.voice or "instrumental" for t in tracks],
    }
    return {dimension: Counter(values) for dimension, values in said.items()}


def prompt_distances(tracks: list[PlannedTrack], embed: Embed) -> Distances | None:
    """The nearest two prompts and the spread of all pairs (None for fewer than two rows)."""
    if len(tracks) < 2:
        return None
    vectors = np.stack([embed(t.words.prompt) for t in tracks])
    distances = 1.0 - vectors @ vectors.T
    upper = np.triu_indices(len(tracks), k=1)
    pairs = distances[upper]
    nearest = int(np.argmin(pairs))
    return Distances(minimum=float(pairs[nearest]),
                     percentiles={p: float(np.percentile(pairs, p)) for p in PERCENTILES},
                     nearest_pair=(tracks[upper[0][nearest]].track_id, tracks[upper[1][nearest]].track_id))


def tempo_clashes(tracks: list[PlannedTrack], apart: int) -> list[tuple[str, str]]:
    """Pairs of rows sharing style, mood and key with BPMs `apart` or less from each other."""
    return [(a.track_id, b.track_id) for a, b in combinations(tracks, 2)
            if (a.cell.style, a.cell.mood, a.key) == (b.cell.style, b.cell.mood, b.key) and abs(a.bpm - b.bpm) <= apart]
