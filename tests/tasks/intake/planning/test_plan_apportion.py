"""Rows handed out by quota: after every number of rows, each cell holds its quota rounded up or down."""

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.intake.planning.apportion import exact_shares, sequence


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0.001, max_value=50), min_size=1, max_size=40), st.integers(1, 250))
def test_every_prefix_is_within_one_row_of_its_quota(weights, count):
    shares = exact_shares(weights)
    assert sum(shares) == 1
    held = [0] * len(shares)
    for n, cell in enumerate(sequence(shares, count), 1):
        held[cell] += 1
        assert all(abs(h - n * s) < 1 for h, s in zip(held, shares, strict=True)), (n, held)


def test_the_sequence_is_a_prefix_of_a_longer_one():
    shares = exact_shares([3, 1, 1, 0.5])
    assert sequence(shares, 50) == sequence(shares, 80)[:50]


def test_equal_shares_take_turns_in_grid_order():
    assert sequence(exact_shares([1, 1, 1]), 6) == [0, 1, 2, 0, 1, 2]
