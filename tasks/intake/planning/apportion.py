"""Rows spread over the grid by quota, not by random draws, in an order that lets a plan grow.

Largest-remainder (Hamilton) apportionment of n rows is not monotone in n (the Alabama paradox: one more
row can take a row away from a cell), so a plan of 250 could not keep the 200 rows a plan of 200 made. The
cells are therefore handed out one row at a time by Balinski and Young's quota method ("A new method for
congressional apportionment", PNAS 1974): row n goes, among the cells that would not pass their upper quota
n · share, to the one with the highest share / (rows held + 1), ties to the cell first in the grid's order.
It is house-monotone (row i's cell depends only on the shares and i) and stays within quota: after any n rows
every cell holds n · share rounded up or down (tests/tasks/intake/planning checks it for every prefix; a
greedy "largest deficit" rule does not: Hypothesis found weights where it drifts a whole row off).
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
    for n in range(1, count + 1):
        eligible = [c for c in range(len(shares)) if held[c] < n * shares[c]]  # never empty (Balinski-Young)
        cell = max(eligible, key=lambda c: (shares[c] / (held[c] + 1), -c))
        held[cell] += 1
        cells.append(cell)
    return cells
