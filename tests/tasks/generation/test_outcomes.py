"""The error → outcome table: every entry reachable (no class shadowed by an earlier parent), and what the
money rules need from it — an answer that may mean "accepted" is never requeued (sent again)."""

from __future__ import annotations

import pytest

from tasks.delivery.finish import QcFailed
from tasks.generation.outcomes import OUTCOMES, outcome_for
from textmusic.client import (
    AcceptedUnread,
    Gone,
    InsufficientBalance,
    NotFound,
    RateLimited,
    ServerError,
    TextMusicError,
    Unanswered,
    UnreadableAnswer,
    UnreadableStatus,
)


def _classes(entry: type | tuple[type, ...]) -> tuple[type, ...]:
    return entry if isinstance(entry, tuple) else (entry,)


@pytest.mark.parametrize("stage", sorted(OUTCOMES))
def test_no_entry_is_shadowed_by_an_earlier_one(stage: str) -> None:
    seen: list[type] = []
    for classes, _ in OUTCOMES[stage]:  # type: ignore[literal-required]
        for cls in _classes(classes):
            assert not any(issubclass(cls, earlier) for earlier in seen), f"{stage}: {cls} never reached"
        seen += _classes(classes)


def test_answers_that_may_mean_accepted_are_never_sent_again() -> None:
    for exc in (Unanswered("lost"), UnreadableAnswer("html"), AcceptedUnread("odd")):
        outcome = outcome_for("submit", exc)
        assert outcome is not None and outcome.action == "end" and outcome.at_risk and outcome.resume == "unanswered"
    assert outcome_for("submit", RateLimited("slow")).action == "requeue"  # type: ignore[union-attr]
    assert outcome_for("submit", InsufficientBalance("402")).out_of_funds  # type: ignore[union-attr]


def test_a_paid_track_is_never_given_up_on_a_poll_error_alone() -> None:
    for exc in (NotFound("404"), Gone("410")):
        assert outcome_for("poll", exc).action == "confirm_missing"  # type: ignore[union-attr]
    assert outcome_for("poll", UnreadableStatus("html")).action == "back_off"  # type: ignore[union-attr]
    assert outcome_for("poll", ServerError("503")).action == "retry"  # type: ignore[union-attr]
    assert outcome_for("poll", TextMusicError("odd")).resume == "poll"  # type: ignore[union-attr]


def test_delivery_outcomes_keep_the_money() -> None:
    assert outcome_for("deliver", Gone("410")).resume == "lost"  # type: ignore[union-attr]
    assert outcome_for("deliver", QcFailed(["too loud"], {}, "qc-failed/x.wav")).action == "hold_qc"  # type: ignore[union-attr]
    assert all(o.charged for c, o in OUTCOMES["deliver"] if o.action == "end")
    assert outcome_for("deliver", ValueError("a bug")) is None  # unknown: the row fails as a bug, logged
