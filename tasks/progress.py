"""Progress of a run for whoever watches it in-process (the CLI's progress bar); Prefect's logs carry it too."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Listener = Callable[[int, int], None]
_listeners: list[Listener] = []


def report_progress(done: int, total: int) -> None:
    for listener in list(_listeners):
        listener(done, total)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
