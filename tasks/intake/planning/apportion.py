"""Rows spread over the grid by quota, not by random draws, in an order that lets a plan grow.

Largest-remainder (Hamilton) apportionment of n rows is not monotone in n (the Alabama paradox: one more
row can take a row away from a cell), so a plan of 250 could not keep the 200 rows a plan of 200 made. The
cells are therefore handed out one row at a time: row i goes to the cell whose quota (i + 1) · share exceeds
the rows it already has by the most — the largest remainder of the next seat — ties to the cell first in
the grid's order. Row i's cell then depends only on the shares and i, and after any n rows every cell holds
its quota n · share rounded up or down (tests/tasks/intake/planning checks it for every prefix).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction


def exact_shares(weights: Sequence[float]) -> list[Fraction]:
    """Weights as exact fractions summing to 1, so no float tie-break makes two machines disagree."""
    exact = [Fraction(w).limit_denominator(10**9) for w in weights]
    total = sum(exact, Fraction(0))
    return [w / total for w in exact]


def sequence(shares: Sequence[Fraction], count: int) -> list[int]:
    """The cell index of each of `count` rows, in order; every prefix is apportioned by quota."""
    held = [0] * len(shares)
    cells = []
    for i in range(count):
        cell = max(range(len(shares)), key=lambda c: ((i + 1) * shares[c] - held[c], -c))
        held[cell] += 1
        cells.append(cell)
    return cells
