"""What an error means for a row, as one table: for each stage (submitting, polling, delivering), the error
classes in the order they are tried and the outcome each one leads to.

The generation machinery used to decide this in three ladders of `except` clauses; a table says it once and
can be read, tested and changed in one place (as httpx maps foreign exceptions through one table). The first
entry whose class the error is an instance of wins, so subclasses come before their parents. An error that
matches no entry is a bug: the row fails with it (see Generation._track_broke / _row_broke).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tasks.catalog.ledger import FAILED, SKIPPED, UNANSWERED, Resume, Status
from tasks.delivery.check import AudioCheckError
from tasks.delivery.finish import QcFailed
from tasks.delivery.provenance import MarkingError
from tasks.delivery.tagging import TagMismatch
from textmusic.client import (
    AcceptedUnread,
    Gone,
    InsufficientBalance,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    TextMusicError,
    Unanswered,
    Unauthorized,
    UnreadableStatus,
)

# sync: a synchronous provider's answer after it began (paid): its audio taken and delivered, or lost.
Stage = Literal["submit", "poll", "deliver", "sync"]
# stop_run: the run ends at once (a refused key); end: the row (or track) ends with the outcome's record;
# requeue: the row waits its turn again (not accepted); retry: the track is tried again later (outage aware);
# confirm_missing: a paid track said to be gone is polled again until that is confirmed; back_off: an
# unreadable status is polled again with back-off until the deadline; hold_qc: a paid file held out of spec.
Action = Literal["stop_run", "end", "requeue", "retry", "confirm_missing", "back_off", "hold_qc"]


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: Status = FAILED
    resume: Resume = ""
    reason: str = "{message}"  # the record's error, from the exception's message
    charged: bool = False  # the track was paid for: its cost (or worst case) is kept
    at_risk: bool = False  # maybe charged, cost unknown: the row's worst case is money at risk
    out_of_funds: bool = False  # no new row is submitted after it
    keeps_answer: bool = False  # the provider's raw answer is kept in support/ for the user
    counts_delivery: bool = False  # a failed delivery attempt: after max_delivery_attempts the track is lost

    def error(self, exc: BaseException) -> str:
        message = exc.message if isinstance(exc, TextMusicError) else str(exc)
        return self.reason.format(message=message)


STOP = Outcome("stop_run")
RETRY = Outcome("retry")

OUTCOMES: dict[Stage, tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Outcome], ...]] = {
    "submit": (
        (Unauthorized, STOP),
        (InsufficientBalance, Outcome("end", status=SKIPPED, reason="insufficient balance: {message}",
                                      out_of_funds=True)),
        (InvalidRequest, Outcome("end", reason="rejected by the provider: {message}")),
        (Unanswered, Outcome("end", status=UNANSWERED, resume="unanswered", at_risk=True)),
        (AcceptedUnread, Outcome("end", resume="unanswered", at_risk=True, keeps_answer=True)),
        ((RateLimited, ServerError), Outcome("requeue")),
        (TextMusicError, Outcome("end")),
    ),
    "poll": (
        (Unauthorized, STOP),
        ((NotFound, Gone), Outcome("confirm_missing")),
        (UnreadableStatus, Outcome("back_off")),
        ((RateLimited, ServerError), RETRY),
        (TextMusicError, Outcome("end", resume="poll", reason="lost the provider while waiting: {message}")),
    ),
    "deliver": (
        (QcFailed, Outcome("hold_qc", resume="qc")),
        (Gone, Outcome("end", resume="lost", reason="audio gone: {message}", charged=True)),
        ((RateLimited, ServerError), RETRY),
        ((TextMusicError, AudioCheckError, TagMismatch, MarkingError, OSError),
         Outcome("end", resume="poll", charged=True, counts_delivery=True)),
    ),
    # No status to poll and no URL to fetch again: a paid answer whose audio is not delivered is lost (never
    # paid again without --regenerate-lost).
    "sync": (
        (QcFailed, Outcome("hold_qc", resume="qc")),
        ((TextMusicError, AudioCheckError, TagMismatch, MarkingError, OSError),
         Outcome("end", resume="lost", charged=True, reason="paid, not delivered: {message}")),
    ),
}


def outcome_for(stage: Stage, exc: BaseException) -> Outcome | None:
    """The outcome of `exc` at `stage`; None for an error the table does not know (a bug)."""
    return next((outcome for classes, outcome in OUTCOMES[stage] if isinstance(exc, classes)), None)
