"""A run's stop request (Ctrl-C, SIGTERM): set by the command line's signal handler, read by the generation
machinery, which then stops submitting and ends its open rows from what is known, so the run can still
write its ledger and page before it exits."""

from __future__ import annotations

import signal
import threading

STOP = threading.Event()
# The signal that asked the run to stop (SIGINT or SIGTERM), for the exit code 128 + signal.
received: list[int] = []


class Interrupted(Exception):
    """The run was asked to stop; what was paid stays in the journal for the next run to resume."""


def request_stop(signum: int = signal.SIGINT) -> None:
    received.append(signum)
    STOP.set()


def stop_requested() -> bool:
    return STOP.is_set()
