"""The state a run's generation machinery keeps per row and per paid track: plain data, shared by the submitters,
the poller, the callback receiver's handler and the delivery workers (each row's `lock` guards what they change)."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal

from tasks.catalog.ledger import LedgerRecord, utc_now
from tasks.intake.plan import PlannedRow
from textmusic.client import TextMusicClient
from textmusic.contract import Track


@dataclass(eq=False)
class RowState:
    row: PlannedRow
    previous: list[LedgerRecord]
    client: TextMusicClient  # this row's view: its `attempts` counts the row's requests
    future: Future[list[LedgerRecord]] = field(default_factory=Future)
    key: str = ""
    paid_by: str = ""
    requeues: int = 0
    expected: int = 0  # songs the provider accepted (0: not yet known)
    holds_slot: bool = False
    job_slots: int = 0  # slots of the provider's parallel-job cap taken for its submission (not yet handed on)
    sending: bool = False  # a submission is on the wire: its answer may still bring paid tracks
    started: str = field(default_factory=utc_now)
    jobs: dict[int, TrackJob] = field(default_factory=dict)  # its accepted tracks, by song index
    records: dict[int, LedgerRecord] = field(default_factory=dict)
    token: str = ""  # its callback token (a provider with callbacks), sent in its submission's callback URL
    early: dict[str, tuple[Track, bool]] = field(default_factory=dict)  # callbacks before its tracks were known
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(eq=False)
class TrackJob:
    state: RowState
    index: int
    track: Track
    submitted: float
    resumed: bool = False
    polls: int = 0
    pending_at: float = 0.0  # age (s) at which the last poll still found it pending
    downloads: int = 0
    stage: Literal["poll", "download"] = "poll"
    missing_polls: int = 0  # polls in a row answered 404/410 (a paid track is given up only when confirmed)
    missing_since: float | None = None
    unreadable_polls: int = 0  # polls whose answer could not be read (back-off, towards the deadline)
    scouting: bool = True  # may be the calibration scout; a scout whose status does not read gives way
    job_slot: bool = False  # holds a slot of the provider's parallel-job cap while pending there
    # Callbacks: the track waits for its callback (not polled on the learned schedule) until the fallback time;
    # `armed` once it waits (a callback before that is kept in `state.early`); `nudged` while a poll a callback
    # asked for is due or running; `settled` once a status other than pending was acted on (never twice).
    awaits_callback: bool = False
    armed: bool = False
    nudged: bool = False
    settled: bool = False
    heap_seq: int = -1  # its latest entry in the poller's heap (an earlier one is stale)
    delivering: bool = False  # handed to a delivery worker (a stale poll entry never delivers it twice)

    def __post_init__(self) -> None:
        self.state.jobs[self.index] = self
        self.awaits_callback = bool(self.state.token) and not self.resumed
