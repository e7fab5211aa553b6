"""A run's generation machinery: submitters, one poller for every pending track, and delivery workers.

Hosted generation takes 30–90 s, so throughput comes from many tracks in flight and few polls. Rows are
submitted by a few threads while the adaptive window has room; each accepted track goes to the run's one
poller (poller.py), which polls it first near the learned time to ready and hands ready tracks
to the delivery workers. Nothing holds a thread per pending track. With a provider that calls back (its
profile's `[callback]` table, tasks/provider/callbacks.py) a pending track waits for its callback instead and
is polled only when none came by the fallback time; a track is routed past pending once, whoever told first.

Money: the moment a row is about to be sent it is journaled `submitting` (with its Idempotency-Key when
the provider honours one), and the moment it is accepted its track ids are journaled `submitted`, so a
run killed at any point neither pays twice nor forgets a paid track. While the provider is down (5xx,
refused connections) submissions pause and polls slow down, up to the outage budget; only then do rows
fail, with the reason, and paid tracks stay resumable.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from tasks.catalog.ledger import LOST, POLL, READY, SUBMITTED, SUBMITTING, LedgerRecord, Resume, utc_now
from tasks.delivery.check import intact
from tasks.delivery.finish import Delivery, QcFailed
from tasks.delivery.place import deliver, deliver_file, keep_raw_answer, partial_file
from tasks.generation.figures import Bounds, believable, charged_cents, max_audio_bytes
from tasks.generation.jobs import RowState, TrackJob
from tasks.generation.outcomes import Outcome, outcome_for
from tasks.generation.poller import Poller
from tasks.generation.records import base_record
from tasks.generation.resume import resumption
from tasks.intake.plan import PlannedRow, longest_song_seconds, max_cost_cents
from tasks.interrupt import STOP
from tasks.provider.callbacks import CallbackReceiver, Handled
from tasks.provider.pacing import AdaptiveWindow, JobSlots, ProviderHealth, ReadyTiming
from tasks.run import CatalogInfo, Journal, Provider, RunOptions
from tasks.settings import PipelineSettings
from textmusic.client import AcceptedUnread, RateLimited, SyncRefused, TextMusicClient
from textmusic.contract import FAILED, PENDING, Track
from textmusic.providers import Profile

log = logging.getLogger(__name__)
SHORT_RETENTION_SECONDS = 2 * 3600
MAX_EARLY = 8  # callbacks kept per row before its submission's answer came (a row makes at most 2 songs)


class Generation:
    """Generates rows against one provider; `add` may be called from many threads (one per Prefect task)."""

    def __init__(self, client: TextMusicClient, out_dir: Path, catalog: CatalogInfo, provider: Provider,
                 profile: Profile, settings: PipelineSettings, options: RunOptions, journal: Journal,
                 tolerance: float, on_row_done: Callable[[list[LedgerRecord]], None] | None = None,
                 max_in_flight: int | None = None) -> None:
        self.client, self.out_dir, self.catalog, self.provider = client, out_dir, catalog, provider
        self.profile, self.settings, self.options = profile, settings, options
        self.journal, self.tolerance = journal, tolerance
        self.delivery = Delivery.from_settings(settings)
        self.on_row_done = on_row_done or (lambda records: None)
        limit = settings.max_in_flight or min(profile.max_in_flight, max_in_flight or profile.max_in_flight)
        self.window = AdaptiveWindow(limit, initial=settings.initial_in_flight)
        self.job_slots = JobSlots(profile.max_parallel_jobs)
        self.health = ProviderHealth()
        self.timing = ReadyTiming(profile.expected_ready_seconds)
        client.monitor = self._observe
        self.out_of_funds = threading.Event()
        # Tasks of the same run in other processes (Dask) see a 402 through this file; one per provider profile,
        # as one provider's empty balance stops paying that provider only (per-row providers share the folder).
        profile_tag = hashlib.sha256(profile.name.encode()).hexdigest()[:12]
        self._funds_marker = out_dir / f".out-of-funds-{options.run_id}-{profile_tag}"
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self._queue: deque[RowState] = deque()
        self._cond = threading.Condition()
        self._open_rows: set[RowState] = set()
        self._unknown_words: set[str] = set()
        self._doubted: set[str] = set()
        self._waiting_downloads = 0  # ready tracks handed to delivery whose download has not begun
        # Audio kept less than SHORT_RETENTION_SECONDS (Replicate: 1 hour) is fetched before anything new is asked.
        self.downloads_first = profile.retention_seconds < SHORT_RETENTION_SECONDS
        self.callbacks = self._receiver()
        self.poller = Poller(self)
        self._delivery = ThreadPoolExecutor(settings.delivery_workers, thread_name_prefix="deliver")
        self._submitters = [threading.Thread(target=self._submitter, name=f"submit-{i}", daemon=True)
                            for i in range(self._submit_workers(limit))]
        for thread in self._submitters:
            thread.start()
        threading.Thread(target=self._watch_interrupt, name="interrupt-watch", daemon=True).start()

    def _submit_workers(self, limit: int) -> int:
        """A synchronous provider holds a submission open for the whole generation (30-90 s): one thread and
        one connection per track in flight, up to the connection pool; others need a few submitters."""
        if self.profile.sync is None:
            return self.settings.submit_workers
        return max(self.settings.submit_workers, min(limit, self.client.settings.max_connections))

    @property
    def _paid_resume(self) -> Resume:
        """How a paid track that did not end is resumed: polled, or (a synchronous answer, which cannot be
        asked again) kept as lost."""
        return LOST if self.profile.sync is not None else POLL

    # -- public ---------------------------------------------------------------------------------------------

    def add(self, rows: list[PlannedRow], previous: dict[str, list[LedgerRecord]]) -> list[Future[list[LedgerRecord]]]:
        """The rows' futures. Rows added once the run stopped (or failed) end at once: no thread would take them."""
        states = [RowState(row, previous.get(row.track_id, []), self.client.fork()) for row in rows]
        with self._cond:
            stopped = self.stop.is_set()
            if not stopped:
                self._queue.extend(states)
                self._open_rows.update(states)
                self._cond.notify_all()
        for state in states if stopped else ():
            if self.fatal is not None:
                state.future.set_exception(self.fatal)
            else:
                self._interrupt_row(state)
        return [s.future for s in states]

    def run(self, rows: list[PlannedRow], previous: dict[str, list[LedgerRecord]]) -> list[LedgerRecord]:
        return [record for future in self.add(rows, previous) for record in future.result()]

    def close(self) -> None:
        self.stop.set()
        self._funds_marker.unlink(missing_ok=True)
        with self._cond:
            self._cond.notify_all()
        self.poller.close()
        if self.callbacks is not None:
            self.callbacks.stop()
        self._delivery.shutdown(wait=True, cancel_futures=True)
        for thread in self._submitters:
            thread.join(timeout=5)

    def __enter__(self) -> Generation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- submission -----------------------------------------------------------------------------------------

    def _observe(self, status: int | None) -> None:
        self.health.answered(status)
        if status is None or status == 429 or status >= 500:
            self.window.pushback()

    def _next(self) -> RowState | None:
        with self._cond:
            while not self._queue and not self.stop.is_set():
                self._cond.wait(0.5)
            return self._queue.popleft() if self._queue else None

    def _downloads_begun(self) -> None:
        """With short retention, a submission waits until every ready track's download has begun: audio the
        provider drops within the hour is fetched before anything new is asked."""
        with self._cond:
            while self.downloads_first and self._waiting_downloads > 0 and not self.stop.is_set():
                self._cond.wait(0.5)

    def _submitter(self) -> None:
        while not self.stop.is_set():
            state = self._next()
            if state is None:
                return
            if not state.holds_slot:
                if not self.window.acquire(self.stop):
                    return
                state.holds_slot = True
            self._downloads_begun()
            try:
                self._start(state)
            except Exception as exc:  # a bug in a row's path fails that row, never the run (nor hangs it)
                log.exception("row %s: unexpected error while submitting", state.row.track_id)
                self._row_broke(state, exc)

    def _song(self, state: RowState, index: int, **update: object) -> LedgerRecord:
        return base_record(state.row, self.catalog, self.provider, index).model_copy(update={
            "started_at": state.started, "idempotency_key": state.key, "run_id": state.paid_by, **update})

    def _start(self, state: RowState) -> None:
        decision = resumption(state.row, state.previous, self.options, self.profile.sends_idempotency_key)
        if decision.kind == "hold":
            return self._end_with(state, decision.records)
        if decision.kind == "poll":
            state.key, state.paid_by = decision.records[0].idempotency_key, decision.records[0].run_id
            state.expected = len(decision.records)
            to_poll: list[TrackJob] = []
            for record in decision.records:
                if record.status == READY and intact(self.out_dir, record.audio_path, record.sha256):
                    self._song_done(state, record.song_index, record.model_copy(update={"row": state.row.row}))
                elif self.profile.sync is not None:  # a paid answer whose audio never came whole: nothing to poll
                    job = TrackJob(state, record.song_index, Track(id=record.generation_id, status=PENDING),
                                   time.monotonic(), resumed=True)
                    self._track_done(job, resume=LOST, charged=True, error=(
                        "paid, but its synchronous answer's audio never came whole (it cannot be asked again): "
                        "kept as lost; --regenerate-lost generates it anew"))
                else:
                    to_poll.append(TrackJob(state, record.song_index, Track(id=record.generation_id, status=PENDING),
                                            time.monotonic(), resumed=True))
            for job in to_poll:  # all known first: the songs of one task are polled once for all
                self.poller.schedule(job, time.monotonic())
            return
        if not state.key:
            state.key = decision.key or (_new_key() if self.profile.sends_idempotency_key else "")
        self._submit(state)

    def _submit(self, state: RowState) -> None:
        first = self._song(state, 0)
        if self._out_of_funds():
            return self._song_done(state, 0, self._ended(state, first, status="skipped",
                                                         error="insufficient balance"))
        if not self.health.wait_up(self.stop, self.settings.outage_probe_seconds) and self._outage_over():
            return self._song_done(state, 0, self._ended(state, first, error=self._outage_reason()))
        state.job_slots = self.job_slots.acquire(state.row.request.num_songs, self.stop)
        if self.stop.is_set():
            return self._free_slots(state)  # a stop request ends the row (Generation.interrupt)
        state.sending = True  # from here a stop request holds the row as maybe sent, never as skipped
        self.journal([first.model_copy(update={"status": SUBMITTING})])
        if self.profile.sync is not None:
            return self._generate_sync(state, first)
        try:
            response = state.client.submit(state.row.request, state.key or None, self._callback_url(state))
        except Exception as exc:
            self._free_slots(state)
            return self._not_submitted(state, first, exc)
        finally:
            state.sending = False
        state.paid_by = self.options.run_id
        state.expected = len(response.tracks)  # a provider may make fewer songs than asked
        self.window.accepted()
        now = time.monotonic()
        self.journal([self._song(state, i, status=SUBMITTED, generation_id=t.id)
                      for i, t in enumerate(response.tracks)])
        jobs = [TrackJob(state, index, track, now) for index, track in enumerate(response.tracks)]
        for job in jobs[:state.job_slots]:  # each pending track holds a slot; those of songs not made are freed
            job.job_slot = True
        state.job_slots -= min(state.job_slots, len(jobs))
        self._free_slots(state)
        for job in jobs:
            self._advance(job, job.track, now)

    def _generate_sync(self, state: RowState, first: LedgerRecord) -> None:
        """A synchronous provider: the POST's answer is the audio. The row is journaled as paid the moment the
        answer begins, before its body is read; the audio streams into `.partial/` and is delivered from there
        in this thread. Audio that does not come whole is lost (paid), never sent again."""
        accepted_jobs: list[TrackJob] = []

        def accepted(generation_id: str) -> None:
            state.paid_by, state.expected = self.options.run_id, 1  # one song per request
            self.journal([self._song(state, 0, status=SUBMITTED, generation_id=generation_id)])
            job = TrackJob(state, 0, Track(id=generation_id, status=PENDING), time.monotonic())
            job.stage = "download"
            accepted_jobs.append(job)

        request = state.row.request
        with partial_file(self.out_dir, f".{request.output_format}") as tmp:
            try:
                track = state.client.submit_sync(request, tmp, accepted, idempotency_key=state.key or None,
                                                 max_bytes=max_audio_bytes(request.output_format,
                                                                           self._bounds(state).seconds))
            except SyncRefused as exc:  # the body was the provider's error: not paid after all (if it says so)
                if not exc.unpaid:
                    return self._not_submitted(state, first, exc.error)  # held as maybe paid
                self._unpaid(state, exc)
                if isinstance(exc.error, RateLimited):  # said in the body: no Retry-After, so back off here
                    return self._requeue_later(state, first, exc.error)
                return self._not_submitted(state, first, exc.error)
            except Exception as exc:
                if accepted_jobs:
                    return self._not_synced(accepted_jobs[0], exc)
                return self._not_submitted(state, first, exc)
            finally:
                state.sending = False
                self._free_slots(state)  # the generation ended with its answer
            self.window.accepted()  # the audio came: a provider that answers so may take more
            job = accepted_jobs[0]
            if job.index in state.records:
                return  # ended meanwhile by a stop request: recorded as lost, the file is not placed
            job.track = self._believed(job, track)
            try:
                delivered = deliver_file(tmp, job.track, self._track_record(job), self.out_dir,
                                         functools.partial(state.row.file_name, job.index), self.catalog,
                                         self.tolerance, self.delivery, share=self._share(job))
            except Exception as exc:
                return self._not_synced(job, exc)
        self._song_done(state, job.index, self._ended(state, delivered))

    def _unpaid(self, state: RowState, refusal: SyncRefused) -> None:
        """A synchronous answer journaled as paid when it began, whose body then refused the request: its track
        is no paid track (a stop request must not book it lost), and it is journaled unpaid at once, so a run
        killed before the row's next turn resumes it as never charged."""
        with state.lock:
            state.jobs.pop(0, None)
            state.paid_by, state.expected = "", 0
        self.journal([self._song(state, 0, status=FAILED, error=f"refused in its answer: {refusal}")])

    def _requeue_later(self, state: RowState, first: LedgerRecord, exc: Exception) -> None:
        """A rate limit said in an answer's body: the row waits (doubling each time, at most a minute) before
        its turn comes again, instead of being sent again at once into the same limit."""
        delay = min(60.0, 0.5 * 2 ** state.requeues)
        timer = threading.Timer(delay, lambda: None if self.stop.is_set() or state.future.done()
                                else self._requeue(state, first, exc))
        timer.daemon = True
        timer.start()

    def _not_synced(self, job: TrackJob, exc: Exception) -> None:
        """A paid synchronous answer whose audio was not delivered, as the outcomes table says."""
        outcome = outcome_for("sync", exc)
        if outcome is None:
            raise exc
        if outcome.action == "hold_qc" and isinstance(exc, QcFailed):
            return self._held_qc(job, exc, outcome)
        self._track_done(job, error=outcome.error(exc), resume=outcome.resume, charged=outcome.charged)

    def _not_submitted(self, state: RowState, first: LedgerRecord, exc: Exception) -> None:
        """A submission that brought no tracks, as the outcomes table says (an error it does not know is a bug:
        raised again, for the row's own handler)."""
        outcome = outcome_for("submit", exc)
        if outcome is None:
            raise exc
        if outcome.action == "stop_run":
            return self._fail_run(exc)
        if outcome.action == "requeue":
            return self._requeue(state, first, exc)
        if outcome.out_of_funds:
            self.out_of_funds.set()
            self._funds_marker.touch()
        update: dict[str, object] = {"status": outcome.status, "resume": outcome.resume, "error": outcome.error(exc)}
        if outcome.at_risk:
            update["at_risk_cents"] = self._worst(state)
        if outcome.keeps_answer and isinstance(exc, AcceptedUnread):
            update["support_file"] = keep_raw_answer(self.out_dir, state.row.track_id, exc.raw)
        self._song_done(state, 0, self._ended(state, first, **update))

    def _queue_again(self, state: RowState) -> None:
        """Back at the head of the queue, keeping its slot in the window."""
        with self._cond:
            self._queue.appendleft(state)
            self._cond.notify_all()

    def _requeue(self, state: RowState, first: LedgerRecord, exc: Exception) -> None:
        """Not accepted (429 or the provider down): the row waits its turn again, up to the outage budget."""
        state.requeues += 1
        if self._outage_over() or (self.health.down_since is None and state.requeues > self.settings.max_requeues):
            reason = self._outage_reason() if self._outage_over() else str(exc)
            return self._song_done(state, 0, self._ended(state, first, error=reason, resume=(
                "resend" if state.key else "")))
        self._queue_again(state)

    def submissions_waiting(self) -> bool:
        """Rows queued with room in the window: polls then leave them their share of the rate limit."""
        return bool(self._queue) and self.window.in_flight < int(self.window.limit)

    def _out_of_funds(self) -> bool:
        if not self.out_of_funds.is_set() and self._funds_marker.exists():
            self.out_of_funds.set()
        return self.out_of_funds.is_set()

    def _worst(self, state: RowState) -> int:
        """The row's worst case by the provider's price model: what a maybe-charged submission puts at risk."""
        return max_cost_cents(state.row.request, self.settings, self.provider)

    @staticmethod
    def _songs(job: TrackJob) -> int:
        """The songs the track's submission brought (those asked, until the answer said)."""
        return job.state.expected or job.state.row.request.num_songs

    def _share(self, job: TrackJob) -> Callable[[float], int]:
        """seconds → the cents this song carries of its submission's charge by the price model (per_call: its
        share of the call's, split over the songs the submission brought)."""
        return functools.partial(self.provider.price.share_cents, job.index, self._songs(job))

    def _free_slots(self, state: RowState) -> None:
        """Give back the parallel-job slots a row's submission still holds (not accepted, or fewer songs)."""
        with state.lock:
            slots, state.job_slots = state.job_slots, 0
        self.job_slots.release(slots)

    def _free_slot(self, job: TrackJob) -> None:
        """A track no longer pending at the provider gives its parallel-job slot back (once)."""
        with job.state.lock:
            held, job.job_slot = job.job_slot, False
        self.job_slots.release(int(held))

    def _outage_over(self) -> bool:
        return self.health.down_for() > self.settings.outage_budget_seconds

    def _outage_reason(self) -> str:
        return f"provider unavailable for {self.health.down_for():.0f} s (outage budget " \
               f"{self.settings.outage_budget_seconds:g} s)"

    # -- tracks ---------------------------------------------------------------------------------------------

    def _advance(self, job: TrackJob, track: Track, now: float) -> None:
        """Route a track by its status: pending → the poller, ready → delivery, failed → its record. The
        provider's figures are checked first: a duration or cost that cannot be believed is dropped (logged
        once per field) and the price model's figure is used. A track is routed past pending once only: a
        callback and a poll (or two callbacks) telling the same news deliver it once, and a later word (a
        late "failed" for a track already being delivered) changes nothing."""
        with job.state.lock:
            if job.settled:
                return
            job.settled = track.effective_status != PENDING
            job.track = track = self._believed(job, track)  # a later pending answer cannot undo a settled one
        if track.status_word and self.profile.status_for(track.status_word) is None \
                and track.status_word not in self._unknown_words:
            self._unknown_words.add(track.status_word)
            log.warning("provider status word %r is not in the profile's vocabulary: counted as pending until "
                        "the deadline", track.status_word)
        status = track.effective_status
        if status != PENDING:
            self.poller.forget(job)
            self._free_slot(job)
            self._hand_on(job, now)
        if status == PENDING:
            if now - job.submitted > self.client.settings.poll_deadline_seconds:
                return self._track_done(job, error=f"timeout: still pending after "
                                        f"{self.client.settings.poll_deadline_seconds:g} s", resume="poll")
            return self.poller.schedule(job, now)
        if status == FAILED:
            return self._track_done(job, error=f"generation failed: {track.error or 'no reason given'}")
        job.stage = "download"
        self.to_delivery(job)

    # -- tasks that make several songs (a profile's songs_per_task: sunoapi.org makes 2 per call) -------------

    def song_in_task(self, job: TrackJob) -> int:
        """The job's place among the songs of its task (a row's songs come from its tasks in order)."""
        return job.index % self.profile.songs_per_task

    def _siblings(self, job: TrackJob) -> list[TrackJob]:
        """The other songs of the job's task still waiting at the provider (not settled, not ended), in order."""
        with job.state.lock:
            return [j for j in sorted(job.state.jobs.values(), key=lambda j: j.index)
                    if j is not job and j.track.id == job.track.id and not j.settled and j.stage == "poll"
                    and j.index not in job.state.records]

    def follows(self, job: TrackJob) -> bool:
        """Whether an earlier song of the same task is polled for this one: one poll answer carries every song of
        a task, so only the first song still pending is polled, and the others are read from its answers."""
        return self.profile.songs_per_task > 1 and any(j.index < job.index for j in self._siblings(job))

    def _hand_on(self, job: TrackJob, now: float) -> None:
        """A song that stopped being polled for its task (settled or ended): the next song still pending is polled
        on its own from now on (never forgotten)."""
        if self.profile.songs_per_task == 1:
            return
        later = [j for j in self._siblings(job) if j.index > job.index]
        if later and not self.follows(later[0]):
            self.poller.schedule(later[0], now)

    def advance_songs(self, job: TrackJob, tracks: list[Track], now: float) -> None:
        """A poll answer of a task that makes several songs: every other song of the task still waiting is
        advanced with its own track from the same answer."""
        for sibling in self._siblings(job):
            song = self.song_in_task(sibling)
            if song < len(tracks):
                self._advance(sibling, tracks[song], now)

    def _believed(self, job: TrackJob, track: Track) -> Track:
        """The track with the provider's figures that cannot be believed dropped (logged once per field)."""
        track, doubts = believable(track, self._bounds(job.state))
        for name, why in doubts.items():
            if name not in self._doubted:
                self._doubted.add(name)
                log.warning("the provider's %s for track %s cannot be believed (%s): the price model's figure is "
                            "used instead (said once per run)", name, job.track.id, why)
        return track

    def _bounds(self, state: RowState) -> Bounds:
        """The longest a song of this row may be and what it may cost, from the request and the price model."""
        return Bounds.for_song(longest_song_seconds(state.row.request, self.settings, self.provider),
                               self.provider.price)

    def to_delivery(self, job: TrackJob) -> None:
        """A ready track to the delivery workers (counted while it waits for one); once at a time, and never
        after the track ended: a poll and a callback that both told it ready (or a stale heap entry) deliver it
        once."""
        with job.state.lock:
            if job.delivering or job.index in job.state.records:
                return
            job.delivering = True
        with self._cond:
            self._waiting_downloads += 1
        self._delivery.submit(self._deliver, job)

    def _deliver(self, job: TrackJob) -> None:
        with self._cond:
            self._waiting_downloads -= 1
            self._cond.notify_all()
        try:
            self._deliver_once(job)
        except Exception as exc:  # even a failing handler ends its row: nothing is lost in the pool
            log.exception("track %s: unexpected error while delivering", job.track.id)
            self._track_broke(job, exc, "delivering")
        finally:
            with job.state.lock:
                job.delivering = False  # a retry (poller.add) may hand it on again

    def _deliver_once(self, job: TrackJob) -> None:
        if self.stop.is_set() and STOP.is_set():
            return  # interrupted before its turn: already recorded as resumable
        try:
            record = self._track_record(job)
            delivered = deliver(job.track, record, job.state.client, self.out_dir,
                                functools.partial(job.state.row.file_name, job.index), self.catalog, self.tolerance,
                                self.delivery, max_audio_bytes(job.state.row.request.output_format,
                                                               self._bounds(job.state).seconds),
                                share=self._share(job))
            self._song_done(job.state, job.index, self._ended(job.state, delivered))
        except Exception as exc:
            outcome = outcome_for("deliver", exc)
            if outcome is None:
                raise
            self._not_delivered(job, exc, outcome)

    def _not_delivered(self, job: TrackJob, exc: Exception, outcome: Outcome) -> None:
        """A paid track whose delivery failed, as the outcomes table says: held (QC), tried again, or ended."""
        if outcome.action == "hold_qc" and isinstance(exc, QcFailed):
            return self._held_qc(job, exc, outcome)
        if outcome.action == "retry":
            job.downloads += 1
            if job.downloads < self.settings.max_delivery_attempts or (
                    self.health.down_since is not None and not self._outage_over()):
                return self.poller.add(job, time.monotonic() + self.settings.outage_probe_seconds)
            return self._track_done(job, error=f"delivery failed: {exc}", resume="poll", charged=True)
        if outcome.counts_delivery:
            earlier = self._earlier(job)
            attempts = (earlier.delivery_attempts if earlier else 0) + 1
            lost = attempts >= self.settings.max_delivery_attempts or self._past_retention(earlier)
            return self._track_done(job, error=f"delivery failed ({attempts} of {self.settings.max_delivery_attempts}"
                                    f" attempts): {exc}", resume="lost" if lost else outcome.resume, charged=True,
                                    delivery_attempts=attempts)
        self._track_done(job, error=outcome.error(exc), resume=outcome.resume, charged=outcome.charged)

    def _held_qc(self, job: TrackJob, exc: QcFailed, outcome: Outcome) -> None:
        """Paid, outside the spec: held with its figures, never regenerated."""
        self.poller.forget(job)
        held = self._track_record(job).model_copy(update=exc.fields)
        self._song_done(job.state, job.index, self._ended(job.state, held, error=str(exc), resume=outcome.resume))

    @staticmethod
    def _earlier(job: TrackJob) -> LedgerRecord | None:
        """An earlier run's record of this very track (a paid track being delivered again): the same song of its
        task first (the songs of a task share its id)."""
        same = [r for r in job.state.previous if r.generation_id == job.track.id]
        return next((r for r in same if r.song_index == job.index), same[0] if same else None)

    def _past_retention(self, earlier: LedgerRecord | None) -> bool:
        """Whether the provider has surely dropped the audio by now (submitted longer ago than it keeps it)."""
        if earlier is None or not earlier.started_at:
            return False
        age = datetime.now(UTC) - datetime.fromisoformat(earlier.started_at)
        return age.total_seconds() > self.profile.retention_seconds

    def _track_record(self, job: TrackJob) -> LedgerRecord:
        record = self._song(job.state, job.index, generation_id=job.track.id)
        return record.model_copy(update={"seed": job.track.seed}) if job.track.seed is not None else record

    def _track_done(self, job: TrackJob, *, error: str, resume: str = "", charged: bool = False,
                    **update: object) -> None:
        self.poller.forget(job)
        self._free_slot(job)
        earlier = self._earlier(job)
        told = charged_cents(job.track, self.provider.price, job.index, self._songs(job)) if charged else 0
        cost = (told or (earlier.cost_cents if earlier else 0)) if charged else 0
        if charged and not cost:  # paid, but the provider told neither cost nor duration: its share of the worst case
            longest = longest_song_seconds(job.state.row.request, self.settings, self.provider)
            update["at_risk_cents"] = self._share(job)(longest)
        record = self._ended(job.state, self._track_record(job), error=error, resume=resume, cost_cents=cost,
                             cost_usd=cost / 100, **update)
        self._song_done(job.state, job.index, record)
        self._hand_on(job, time.monotonic())

    # -- callbacks ------------------------------------------------------------------------------------------

    def _receiver(self) -> CallbackReceiver | None:
        """The run's callback receiver, when the provider calls back (its profile's `[callback]` table)."""
        if self.profile.callback is None:
            return None
        settings = self.settings
        host = urlsplit(self.client.base_url).hostname or ""
        if settings.callback_url is None and host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("provider %s calls back, but TRACKFOUNDRY_CALLBACK_URL is not set: it is sent a loopback URL "
                        "it cannot reach, and every track is polled after the callback fallback time", host)
        return CallbackReceiver(self.profile, self.options.run_id, self._on_callback, public_url=settings.callback_url,
                                host=settings.callback_host, port=settings.callback_port).start()

    def _callback_url(self, state: RowState) -> str | None:
        """The URL this row's submission asks the provider to call back (a new token per submission)."""
        if self.callbacks is None:
            return None
        state.token = self.callbacks.register(state)
        return self.callbacks.url_for(state.token)

    def callback_fallback(self) -> float:
        """How long a track waits for its callback before the poller takes over: a few times the slowest time
        to ready seen (or the profile's expected one), within the poll deadline."""
        expected = max(self.profile.expected_ready_seconds, self.timing.slowest)
        return min(self.settings.callback_fallback_factor * expected, self.client.settings.poll_deadline_seconds)

    def await_callback(self, job: TrackJob, now: float) -> None:
        """A pending track waits for its callback, polled only at the fallback time; a callback that came
        before the track was known is acted on now."""
        self.poller.add(job, max(now, job.submitted + self.callback_fallback()))
        with job.state.lock:
            job.armed = True
            early = job.state.early.pop(job.track.id, None)
        if early is not None:
            self._callback_arrived(job, *early)

    def _on_callback(self, state: RowState, track: Track, signed: bool) -> Handled:
        """A callback for one of this run's submissions (the receiver's thread): matched to its track by id."""
        with state.lock:
            # The songs of a task share its id: the callback goes to the first one still waiting.
            ours = sorted((j for j in state.jobs.values() if j.track.id == track.id), key=lambda j: j.index)
            job = next((j for j in ours if not j.settled and j.index not in state.records), ours[0] if ours else None)
            if job is None or not job.armed:
                known = bool(state.jobs) and all(j.armed for j in state.jobs.values())
                if (job is None and known) or len(state.early) >= MAX_EARLY:
                    return "unknown track"  # the row's tracks are all known, and this is none of them
                state.early[track.id] = (track, signed)  # the submission's answer is not in yet
                return "accepted"
        return self._callback_arrived(job, track, signed)

    def _callback_arrived(self, job: TrackJob, track: Track, signed: bool) -> Handled:
        """Signed: the callback's track is believed (ready → delivery, failed → its record). Unsigned: it only
        says "look now": one status poll confirms it. A stage before the end (pending) changes nothing."""
        if job.settled or job.index in job.state.records:
            return "already ended"
        if track.effective_status == PENDING:
            return "intermediate"
        now = time.monotonic()
        if not signed or self.profile.songs_per_task > 1:  # a task of several songs: one poll reads them all
            with job.state.lock:
                nudged, job.nudged = job.nudged, True
            if not nudged:
                self.poller.add(job, now)
            return "accepted"
        if track.effective_status != FAILED:
            self.timing.observe_ready(now - job.submitted)
        self._advance(job, track, now)
        return "accepted"

    # -- rows -----------------------------------------------------------------------------------------------

    def _ended(self, state: RowState, record: LedgerRecord, **update: object) -> LedgerRecord:
        return record.model_copy(update={"finished_at": utc_now(), "attempts": state.client.attempts,
                                         "status": update.pop("status", record.status), **update})

    def _song_done(self, state: RowState, index: int, record: LedgerRecord) -> None:
        """A song's final record; once every song of the row has one, the row is journaled and done. A row
        that ends before it was accepted ends with its first record (no more songs exist)."""
        with state.lock:
            state.records[index] = record
            accepted = any(r.generation_id for r in state.records.values())
            if accepted and len(state.records) < (state.expected or state.row.request.num_songs):
                return
            records = [state.records[i] for i in sorted(state.records)]
        self.journal(records)
        if state.holds_slot:
            state.holds_slot = False
            self.window.release()
        with self._cond:
            self._open_rows.discard(state)
        if not state.future.done():
            state.future.set_result(records)
        self.on_row_done(records)

    def _track_broke(self, job: TrackJob, exc: BaseException, doing: str) -> None:
        """An unexpected error on a paid track: the track fails with the reason and stays resumable (poll)."""
        reason = f"internal error while {doing}: {type(exc).__name__}: {exc}"
        try:
            self._track_done(job, error=reason, resume=self._paid_resume, charged=True)
        except Exception:  # the record could not even be built: end the song with the plainest one
            log.exception("track %s: could not record its failure", job.track.id)
            self._song_done(job.state, job.index, self._song(job.state, job.index, generation_id=job.track.id,
                                                             error=reason, resume=self._paid_resume))

    def _row_broke(self, state: RowState, exc: BaseException) -> None:
        """An unexpected error in a row's submission: if the request may have reached the provider it is held
        as unanswered (never sent again unasked), else the row simply fails."""
        self._free_slots(state)
        reason = f"internal error while submitting: {type(exc).__name__}: {exc}"
        if state.jobs:
            for job in list(state.jobs.values()):
                if job.index not in state.records:
                    self._track_broke(job, exc, "submitting")
            return
        first = self._song(state, 0)
        maybe_sent = state.sending or state.client.attempts > 0
        self._song_done(state, 0, self._ended(state, first, error=reason, **(
            {"status": "unanswered", "resume": "unanswered", "at_risk_cents": self._worst(state)} if maybe_sent
            else {})))

    # -- a stop request (Ctrl-C, SIGTERM) ------------------------------------------------------------------

    def _watch_interrupt(self) -> None:
        while not self.stop.is_set():
            if STOP.wait(0.2):
                self.interrupt()
                return

    def interrupt(self) -> None:
        """Stop submitting and end every open row from what is known, so the run can write its ledger: a row
        not yet sent is skipped; one whose submission is on the wire is held as unanswered (resent only with
        its Idempotency-Key); a paid track still pending is resumable (poll) and never paid again. Downloads
        already running get `interrupt_grace_seconds` to finish first."""
        self.stop.set()
        with self._cond:
            self._queue.clear()
            self._cond.notify_all()
        deadline = time.monotonic() + self.settings.interrupt_grace_seconds
        while time.monotonic() < deadline and any(
                j.stage == "download" and j.index not in s.records for s in self._open() for j in s.jobs.values()):
            time.sleep(0.1)
        for state in self._open():
            self._interrupt_row(state)

    def _open(self) -> list[RowState]:
        with self._cond:
            return list(self._open_rows)

    def _interrupt_row(self, state: RowState) -> None:
        if not state.jobs and not state.sending and self._kept_unstarted(state):
            return
        if not state.jobs:
            resume = "resend" if state.key else "unanswered"
            status = "unanswered" if state.sending else "skipped"
            extra = {"resume": resume, "at_risk_cents": self._worst(state)} if state.sending else {}
            return self._song_done(state, 0, self._ended(state, self._song(state, 0), status=status, error=(
                "interrupted while its submission was on the wire" if state.sending
                else "interrupted before it was sent"), **extra))
        for job in list(state.jobs.values()):
            if job.index in state.records:
                continue
            if self.profile.sync is not None:
                self._track_done(job, resume=LOST, charged=True, error="interrupted while its paid audio was "
                                 "arriving (a synchronous answer cannot be asked again): kept as lost")
            else:
                self._track_done(job, error="interrupted while waiting for the provider: the next run polls it "
                                 "and never pays again", resume="poll")

    def _kept_unstarted(self, state: RowState) -> bool:
        """A row the run never got to whose tracks earlier runs paid for (or left for the user to decide): it ends
        with those records, as the next run will find them (a paid track still to poll stays `poll`), never as
        skipped, which would drop what was paid from the ledger. False: the row has none."""
        decision = resumption(state.row, state.previous, self.options, self.profile.sends_idempotency_key)
        if decision.kind not in ("poll", "hold"):
            return False
        kept = []
        for record in decision.records:
            delivered = record.status == READY and intact(self.out_dir, record.audio_path, record.sha256)
            if decision.kind == "poll" and not delivered:
                record = record.model_copy(update={"status": FAILED, "resume": POLL, "finished_at": utc_now(),
                                                   "error": "interrupted before it was polled: the next run polls "
                                                            "it and never pays again"})
            kept.append(record.model_copy(update={"row": state.row.row}))
        self._end_with(state, kept)
        return True

    def _end_with(self, state: RowState, records: list[LedgerRecord]) -> None:
        """The row ends with these records, one per song (every song journaled: a task may make several)."""
        state.expected = len(records)
        for record in records:
            self._song_done(state, record.song_index, record)

    def _fail_run(self, exc: BaseException) -> None:
        """A refused key (or a bug) ends the run at once; journaled tracks stay resumable by the next run."""
        if self.fatal is None:
            self.fatal = exc
        self.stop.set()
        with self._cond:
            open_rows = list(self._open_rows)
            self._open_rows.clear()
            self._queue.clear()
        for state in open_rows:
            if not state.future.done():
                state.future.set_exception(self.fatal)


def _new_key() -> str:
    return uuid.uuid4().hex
