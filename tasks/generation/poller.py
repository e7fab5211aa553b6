"""The run's one poller: every pending track in one heap by due time, polled by a small pool at a paced rate.

A track is polled first near the learned time to ready (tasks/provider/pacing.py `ReadyTiming`); before any
track was seen ready only the oldest (the scout) polls; a track that waits for its callback is polled only at the
fallback time; the songs of one task are read from one poll. A poll without an answer to read goes by the
outcomes table: a 404/410 for a paid track is confirmed over several polls before it is called lost, an
unreadable answer is polled again with back-off up to the deadline.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from tasks.generation.jobs import TrackJob
from tasks.generation.outcomes import Outcome, outcome_for
from textmusic.contract import PENDING, Track

if TYPE_CHECKING:
    from tasks.generation.machinery import Generation

log = logging.getLogger(__name__)
IDLE_QUANTILE, BUSY_QUANTILE = 0.8, 0.95  # share of tracks ready at their first poll


class Poller:
    """The run's one poller: a heap of tracks by due time, polled by a small pool at a paced rate that
    leaves the rest of the provider's limit to submissions."""

    def __init__(self, generation: Generation) -> None:
        self.gen = generation
        settings = generation.settings
        self.min_gap = 1.0 / max(0.1, settings.poll_share * settings.requests_per_window / settings.window_seconds)
        self._heap: list[tuple[float, int, TrackJob]] = []
        self._parked: list[TrackJob] = []  # before any track was seen ready, only the oldest (scout) polls
        self._scout: TrackJob | None = None
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._pool = ThreadPoolExecutor(settings.poll_workers, thread_name_prefix="poll")
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)
        self._thread.start()

    def add(self, job: TrackJob, due: float) -> None:
        """(Re)schedules the job: an earlier entry of it in the heap is dropped when it comes up."""
        with self._cond:
            job.heap_seq = next(self._seq)
            heapq.heappush(self._heap, (due, job.heap_seq, job))
            self._cond.notify()

    def schedule(self, job: TrackJob, now: float) -> None:
        """When to poll a pending track next (see ReadyTiming); a track waiting for its callback, at the
        fallback time only."""
        if self.gen.follows(job):  # an earlier song of its task is polled for it
            with job.state.lock:
                job.armed = job.armed or job.awaits_callback
            return
        if job.awaits_callback:
            return self.gen.await_callback(job, now)
        timing = self.gen.timing
        if job.resumed:
            return self.add(job, now + (timing.retry_interval() if job.polls else 0.0))
        if not timing.calibrated and job.scouting:
            with self._cond:
                if self._scout is not None and self._scout is not job:
                    self._parked.append(job)
                    return
                self._scout = job
            return self.add(job, now + timing.scout_interval(job.polls))
        if not timing.calibrated:
            return self.add(job, now + timing.scout_interval(job.polls))
        if job.polls == 0:
            deadline = self.gen.client.settings.poll_deadline_seconds
            return self.add(job, job.submitted + min(timing.first_poll or 0.0, deadline))
        self.add(job, now + timing.retry_interval())

    def forget(self, job: TrackJob) -> None:
        """A track that stopped being pending: its entry in the heap (a callback's fallback) is dropped, and if
        it was the scout, the oldest parked track takes over."""
        with self._cond:
            job.heap_seq = -1
            if job in self._parked:  # a parked track told ready (a callback) is never rescheduled by calibration
                self._parked.remove(job)
            if self._scout is not job:
                return
            self._scout = None
            successor = self._parked.pop(0) if self._parked else None
        if successor is not None:
            self.schedule(successor, time.monotonic())

    def give_way(self, job: TrackJob) -> None:
        """A track whose status does not read (or is not found) stops scouting, so it never holds up the rest
        of the run's tracks: the oldest parked one scouts instead."""
        job.scouting = False
        self.forget(job)

    def _calibrated(self) -> None:
        with self._cond:
            parked, self._parked, self._scout = self._parked, [], None
        for job in parked:
            self.schedule(job, time.monotonic())

    def close(self) -> None:
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        last = 0.0
        while not self.gen.stop.is_set():
            with self._cond:
                now = time.monotonic()
                if not self._heap or self._heap[0][0] > now:
                    wait = self._heap[0][0] - now if self._heap else 0.5
                    self._cond.wait(min(0.5, max(0.001, wait)))
                    continue
                _, seq, job = heapq.heappop(self._heap)
                if seq != job.heap_seq:
                    continue  # rescheduled since (a callback's poll, or its fallback)
            if job.stage == "poll" and job.awaits_callback and not job.nudged:
                job.awaits_callback = False  # no callback by the fallback time: polled from now on, as without
                log.debug("track %s: no callback in %.0f s, polled instead", job.track.id, self.gen.callback_fallback())
            if job.stage == "download":
                self.gen.to_delivery(job)
                continue
            gap = last + self.min_gap - time.monotonic()
            if gap > 0 and self.gen.submissions_waiting() and not self.gen.downloads_first:
                time.sleep(gap)
            last = time.monotonic()
            self._pool.submit(self._poll, job)

    def _poll(self, job: TrackJob) -> None:
        try:
            self._poll_once(job)
        except Exception as exc:  # a row's failure is the row's: its paid track stays resumable
            log.exception("track %s: unexpected error while polling", job.track.id)
            self.gen._track_broke(job, exc, "polling")
        finally:
            job.nudged = False  # a later callback may ask for another look

    def _poll_once(self, job: TrackJob) -> None:
        gen = self.gen
        tracks: list[Track] = []
        try:
            if gen.profile.songs_per_task > 1:  # one answer carries every song of the task
                tracks = job.state.client.get_songs(job.track.id)
                track = tracks[min(gen.song_in_task(job), len(tracks) - 1)]
            else:
                track = job.state.client.get_track(job.track.id)
        except Exception as exc:
            outcome = outcome_for("poll", exc)
            if outcome is None:
                raise
            return self._not_polled(job, exc, outcome)
        now = time.monotonic()
        job.missing_polls, job.missing_since, job.unreadable_polls = 0, None, 0
        first, job.polls = job.polls == 0, job.polls + 1
        ready = track.effective_status != PENDING
        if first and not job.resumed and gen.timing.calibrated:
            # While rows wait for the rate limit, a poll costs a submission: aim later (fewer polls per
            # track); otherwise aim for latency.
            gen.timing.quantile = BUSY_QUANTILE if gen.submissions_waiting() else IDLE_QUANTILE
            gen.timing.observe_first(ready, now - job.submitted)
        if ready and not job.resumed:
            calibrated = gen.timing.calibrated
            gen.timing.observe_ready(now - job.submitted, job.pending_at)
            if not calibrated:
                self._calibrated()
        elif not ready:
            job.pending_at = now - job.submitted
        if tracks:  # the other songs first: the polled one, once settled, hands the task on to those still pending
            gen.advance_songs(job, tracks, now)
        gen._advance(job, track, now)

    def _not_polled(self, job: TrackJob, exc: Exception, outcome: Outcome) -> None:
        """A poll without an answer to read, as the outcomes table says."""
        gen = self.gen
        if outcome.action == "stop_run":
            return gen._fail_run(exc)
        if outcome.action == "confirm_missing":
            return self._missing(job, exc)
        if outcome.action == "back_off":
            return self._unreadable(job, exc)
        if outcome.action == "retry":
            if gen._outage_over():
                return gen._track_done(job, error=gen._outage_reason(), resume="poll")
            delay = gen.settings.outage_probe_seconds if gen.health.down_since else gen.timing.retry_interval()
            log.debug("poll of %s deferred: %s", job.track.id, exc)
            return self.add(job, time.monotonic() + delay)
        gen._track_done(job, error=outcome.error(exc), resume=outcome.resume, charged=outcome.charged)

    def _past_deadline(self, job: TrackJob, now: float) -> bool:
        return now - job.submitted > self.gen.client.settings.poll_deadline_seconds

    def _missing(self, job: TrackJob, exc: Exception) -> None:
        """404/410 for a paid track: replica lag or a load balancer can say so once; only answers that keep
        saying so over `lost_confirm_polls` polls and `lost_confirm_seconds` (or the poll deadline) make it
        `lost`, with its cost kept, never submitted again without --regenerate-lost."""
        gen, now = self.gen, time.monotonic()
        job.missing_polls += 1
        job.missing_since = job.missing_since or now
        settings = gen.settings
        confirmed = job.missing_polls >= settings.lost_confirm_polls and \
            now - job.missing_since >= settings.lost_confirm_seconds
        if confirmed or self._past_deadline(job, now):
            return gen._track_done(job, resume="lost", charged=True, error=(
                f"the provider no longer knows this paid track ({exc}, {job.missing_polls} polls over "
                f"{now - job.missing_since:.0f} s): kept as lost; --regenerate-lost generates it anew"))
        self.give_way(job)
        self.add(job, now + settings.lost_confirm_seconds / max(1, settings.lost_confirm_polls - 1))

    def _unreadable(self, job: TrackJob, exc: Exception) -> None:
        """A status answer that cannot be read counts towards the poll deadline, polled again with back-off."""
        gen, now = self.gen, time.monotonic()
        job.unreadable_polls += 1
        if self._past_deadline(job, now):
            return gen._track_done(job, resume="poll", error=(
                f"timeout: the status never read in {gen.client.settings.poll_deadline_seconds:g} s "
                f"({job.unreadable_polls} unreadable answers; last: {exc})"))
        self.give_way(job)
        backoff = gen.timing.retry_interval() * 2 ** min(job.unreadable_polls, 6)
        self.add(job, now + min(backoff, gen.client.settings.poll_max_interval_seconds * 6))
