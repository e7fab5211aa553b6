"""Background generation: a process pool of long-lived engines, settling tracks as they finish.

Rendering is CPU-bound and can take minutes, so it runs in worker processes and the POST returns at
once. Each worker builds one engine in its initializer (the soundfont stays loaded between renders).
The pool's completion callbacks write the outcome to the store; tracks left pending by a crash or a
shutdown are queued again at the next start, and the store settles each track at most once.
Workers ignore SIGINT/SIGTERM: a Ctrl-C or a signal to the whole process group reaches the server,
whose graceful shutdown decides what happens to their renders, instead of failing them mid-way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path, PurePath, PurePosixPath
from typing import Protocol, TypeVar

from textmusic.contract import FORMATS, MIDI_EXTENSION, TextToMusicRequest, version_file_tag, version_media
from textmusic.engine import Engine, RenderResult
from textmusic.server.faults import TRACK_FAIL, TRACK_STUCK
from textmusic.server.store import AUDIO_DIR, Store, StoredVersion

log = logging.getLogger(__name__)


class EngineLike(Protocol):
    def render(self, request: TextToMusicRequest, out_path: Path,
               version_path: Callable[[str], Path] | None = None) -> RenderResult: ...


EngineFactory = Callable[[], EngineLike]

_engine: EngineLike | None = None
_engine_error: str | None = None  # why this worker's engine could not start
# Renders yield the CPU to the server process, so status polls stay fast while every core renders.
RENDER_NICENESS = 10


def _watch_parent(parent_pid: int) -> None:
    """Exit when the server dies, so a killed server never leaves renders running on their own."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def _init_worker(engine_factory: EngineFactory, parent_pid: int) -> None:
    """Build the worker's engine and load its models now, so no track pays for the loading.

    An engine that cannot start (a soundfont not installed, say) is kept as its reason: raised here, it
    would break the pool and every track would fail as "worker crashed"; kept, each track fails with it."""
    global _engine, _engine_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(RENDER_NICENESS)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    try:
        _engine = engine_factory()
        warm = getattr(_engine, "warm", None)
        if callable(warm):
            warm()
    except Exception as exc:  # any start-up failure is reported per track, with its text
        _engine, _engine_error = None, _describe(exc)


def _warm() -> None:
    """A no-op task: submitting one per worker makes the pool start (and warm) every worker at once."""


class InjectedFailure(RuntimeError):
    """The `track_failed` fault."""


class EngineUnavailable(RuntimeError):
    """The worker's engine could not be built or warmed (its reason is in the message)."""


def worker_count() -> int:
    """The CPUs this process may use (a container's or taskset's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _render(request_json: str, out_path: str, fault: str | None = None) -> RenderResult:
    """Runs in a worker: render the song and its versions to private temp files, then move each into
    place atomically (the versions first: the song's file appearing means every file is there)."""
    if _engine is None:
        raise EngineUnavailable(f"the engine could not start: {_engine_error or 'no engine in this worker'}")
    if fault == TRACK_FAIL:
        raise InjectedFailure("generation failed (injected fault)")
    request = TextToMusicRequest.model_validate_json(request_json)
    final = Path(out_path)
    temps: list[Path] = []

    def temp(path: Path) -> Path:
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")
        temps.append(tmp)
        return tmp

    song = temp(final)
    try:
        result = _engine.render(request, song, lambda name: temp(beside(final, name)))
        placed = []
        for version in result.versions:
            os.replace(version.path, beside(final, version.name))
            placed.append(replace(version, path=beside(final, version.name)))
        os.replace(song, final)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return replace(result, versions=tuple(placed))


def audio_relpath(track_id: str, output_format: str) -> str:
    """Where a track's audio lives, relative to the data folder (what the database records)."""
    return f"{AUDIO_DIR}/{track_id}.{FORMATS[output_format].extension}"


P = TypeVar("P", bound=PurePath)


def beside(path: P, version: str) -> P:
    """Where a version of the song at `path` lives: `<id>.<version tag>.<ext>` in the same folder, the
    song's extension for audio, ``.mid`` for the MIDI version (contract.version_media)."""
    suffix = f".{MIDI_EXTENSION}" if version_media(version) == "midi" else path.suffix
    return path.with_name(f"{path.stem}.{version_file_tag(version)}{suffix}")


class GenerationPool:
    """Queues pending tracks on worker processes and records their outcome in the store."""

    def __init__(
        self,
        store: Store,
        workers: int | None = None,
        engine_factory: EngineFactory | None = None,
        shutdown_grace_seconds: float = 30.0,
    ) -> None:
        self.store = store
        self.workers = max(1, workers or worker_count())
        self.engine_factory: EngineFactory = engine_factory or Engine
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self._executor: ProcessPoolExecutor | None = None
        self._futures: dict[str, Future[RenderResult]] = {}
        self._lock = threading.RLock()  # cancel() runs callbacks that take it too
        self._stopping = False

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn: the server process has threads, and forking a threaded process can deadlock.
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.engine_factory, os.getpid()),
        )

    def start(self) -> int:
        """Start the workers and queue every track still pending; returns how many were re-queued."""
        self._stopping = False
        # Temp files of renders a crash interrupted; their songs are queued again below.
        for stale in self.store.audio_dir.glob(".*.part.*"):
            stale.unlink(missing_ok=True)
        self._executor = self._new_executor()
        for _ in range(self.workers):
            self._executor.submit(_warm)
        pending = self.store.pending_tracks()
        for row in pending:
            self.submit(row["id"], row["request_json"], row["output_format"], row["fault"])
        if pending:
            log.info("re-queued %d pending track(s)", len(pending))
        return len(pending)

    def submit(self, track_id: str, request_json: str, output_format: str, fault: str | None = None) -> None:
        """Queue one song; a pool broken by a crashed worker is replaced first. A stuck song is not queued."""
        if self._executor is None or self._stopping:
            raise RuntimeError("the generation pool is not running")
        if fault == TRACK_STUCK:
            return
        rel = audio_relpath(track_id, output_format)
        out_path = str(self.store.data_dir / rel)
        with self._lock:
            try:
                future = self._executor.submit(_render, request_json, out_path, fault)
            except BrokenProcessPool:
                log.warning("generation pool broken; starting a new one")
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
                future = self._executor.submit(_render, request_json, out_path, fault)
            self._futures[track_id] = future
        future.add_done_callback(lambda f: self._finished(track_id, rel, f))

    def _finished(self, track_id: str, rel: str, future: Future[RenderResult]) -> None:
        with self._lock:
            self._futures.pop(track_id, None)
        if future.cancelled():
            return  # shutdown: stays pending, re-queued at the next start
        exc = future.exception()
        try:
            if exc is None:
                result = future.result()
                self.store.mark_ready(
                    track_id,
                    duration_seconds=float(result.duration_seconds),
                    bpm=float(result.bpm),
                    output_bit_rate=result.output_bit_rate,
                    file_path=rel,
                    engine_version=result.engine_version,
                    versions=[StoredVersion(v.name, beside(PurePosixPath(rel), v.name).as_posix(),
                                            float(v.duration_seconds)) for v in result.versions],
                )
            elif isinstance(exc, BrokenProcessPool):
                if self._stopping:
                    return  # workers stopped under it: stays pending
                self.store.mark_failed(track_id, f"generation worker crashed: {exc}")
            else:
                self.store.mark_failed(track_id, _describe(exc))
        except Exception:  # the callback thread must survive a store error
            log.exception("could not record the outcome of track %s", track_id)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._futures)

    def stop(self) -> None:
        """Cancel queued renders, let running ones finish within the grace period, then stop workers.

        Whatever did not finish stays pending in the store and is queued again at the next start.
        """
        executor = self._executor
        if executor is None:
            return
        self._stopping = True
        with self._lock:
            queued = list(self._futures.values())
        for future in queued:
            future.cancel()
        done = threading.Event()

        def _shutdown() -> None:
            executor.shutdown(wait=True, cancel_futures=True)
            done.set()

        threading.Thread(target=_shutdown, daemon=True).start()
        if not done.wait(self.shutdown_grace_seconds):
            log.warning("renders still running after %.0f s; stopping workers", self.shutdown_grace_seconds)
            # No public API to stop busy workers before Python 3.14's kill_workers(); they ignore SIGTERM.
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
            done.wait(10.0)
        self._executor = None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
