"""A run's stop request (Ctrl-C, SIGTERM): set by the command line's signal handler, read by the generation
machinery, which then stops submitting and ends its open rows from what is known, so the run can still
write its ledger and page before it exits.

The terminal sends Ctrl-C to the whole process group: the run's helpers (Prefect's temporary server, the
embedded service) are started in sessions of their own so they outlive that signal long enough for the run
to write its ledger, and with a parent-death signal so they never outlive the run (even `kill -9`).

If the run has not ended `DEADLINE_SECONDS` after the signal (a task that does not return), the deadline
writes the ledger itself with the run's registered writer and ends the process; a second signal ends it at
once (the journal still guarantees that the next run resumes without paying twice).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

STOP = threading.Event()
# The signal that asked the run to stop (SIGINT or SIGTERM), for the exit code 128 + signal.
received: list[int] = []
MESSAGE = "interrupted: run the same command again to resume"
DEADLINE_SECONDS = 10.0
# The deadline starts its own writing this long before it, so the process is gone within it.
WRITE_MARGIN_SECONDS = 3.0
EXIT_NO_LEDGER = 1
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: a child between fork and exec must not load it

_writers: list[Callable[[], None]] = []  # the run's ledger writer, for the deadline
_write_lock = threading.Lock()  # the flow's writing and the deadline's never overlap
WRITTEN = threading.Event()  # the run's ledger is written: the deadline only has to exit
_announced = threading.Lock()
_installed = threading.Event()  # the command line's handlers are in place
_finished = threading.Event()  # the command line is ending the process itself


def request_stop(signum: int = signal.SIGINT) -> None:
    received.append(signum)
    STOP.set()


def stop_requested() -> bool:
    return STOP.is_set()


def exit_code() -> int:
    """128 + the signal that stopped the run: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (received[0] if received else signal.SIGINT)


def install() -> None:
    """SIGINT and SIGTERM ask the run to stop (main thread only, as Python requires)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    _installed.set()


def reclaim() -> None:
    """Put the run's handlers back where Prefect's flow engine put its own SIGTERM bridge (which raises in
    the middle of whatever the flow does): a SIGTERM then stops the run as Ctrl-C does."""
    if _installed.is_set() and threading.current_thread() is threading.main_thread():
        install()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if STOP.is_set():  # the second signal: leave now, the journal has what the ledger would
        announce()
        _leave(128 + signum)
    request_stop(signum)
    threading.Thread(target=_deadline, name="interrupt-deadline", daemon=True).start()


def _deadline() -> None:
    """Write the ledger with the run's writer if the run has not, then end the process, within the deadline."""
    if _finished.wait(DEADLINE_SECONDS - WRITE_MARGIN_SECONDS):
        return
    code = exit_code()
    if not WRITTEN.is_set() and _writers and _write_lock.acquire(timeout=WRITE_MARGIN_SECONDS - 1.0):
        try:
            if not WRITTEN.is_set():
                _writers[-1]()
                WRITTEN.set()
        except Exception as exc:  # say why, in one line: the journal still holds every paid track
            from textmusic.redaction import redact

            sys.stderr.write(redact(f"trackfoundry: the ledger could not be written: {type(exc).__name__}: {exc}\n"))
            code = EXIT_NO_LEDGER
        finally:
            _write_lock.release()
    announce()
    _leave(code)


def announce() -> None:
    """The one line an interrupted run prints, however many paths end it."""
    if _announced.acquire(blocking=False):
        sys.stderr.write(MESSAGE + "\n")
        sys.stderr.flush()


def leave(code: int) -> None:
    """End the process now: a stopped run's worker threads may still wait on the provider, and the
    interpreter's exit would wait for them."""
    _finished.set()
    _leave(code)


def _leave(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


@contextlib.contextmanager
def ledger_writer(write: Callable[[], None]) -> Iterator[None]:
    """While the block runs, `write` is what the deadline calls to write the run's ledger."""
    _writers.append(write)
    try:
        yield
    finally:
        _writers.remove(write)


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """The run's own writing of its ledger: never at the same time as the deadline's."""
    with _write_lock:
        yield
        WRITTEN.set()


def die_with_parent() -> Callable[[], None]:
    """A `preexec_fn`: the child gets SIGTERM when this process dies, even by kill -9 (Linux), and ends at
    once if it already has (the parent died between fork and exec)."""
    parent = os.getpid()

    def setup() -> None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return setup


class _ApartPopen(subprocess.Popen):  # type: ignore[type-arg]
    """A child in its own session (the terminal's Ctrl-C does not reach it) that dies with this process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, start_new_session=True, preexec_fn=die_with_parent(), **kwargs)


class _ApartSubprocess(types.ModuleType):
    """`subprocess` as Prefect's server module sees it: the same, but children start apart."""

    Popen = _ApartPopen

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)


def keep_prefect_server_apart() -> None:
    """Prefect's temporary server (`SubprocessASGIServer`) started apart: it survives the group's Ctrl-C
    while the flow still reports to it, and dies with the run, which today leaves it orphaned on kill -9."""
    import prefect.server.api.server as server

    if not isinstance(server.subprocess, _ApartSubprocess):
        server.subprocess = _ApartSubprocess("subprocess")  # type: ignore[assignment]
