"""Hosted-timing benchmark (a script, not a test): prints figures measured in one run of the real CLI.

Starts the local service in hosted-like mode (`textmusic serve --latency 15-25 --synthetic-audio
--rate-limit 100/10s --request-log FILE`, own temp data folder and key, free loopback port), then runs the
pipeline as a user would: `python -m flows run BRIEF --catalog bench --out DIR` with TEXTMUSIC_API_URL,
TEXTMUSIC_API_KEY, TRACKFOUNDRY_PROVIDER=textmusic-local and a fresh PREFECT_HOME, and no tuning variable:
the defaults are what is measured. The brief: prompt-only instrumental rows, distinct track_id and seed,
duration_seconds 10, output_format flac.

Printed, from the provider's side (its request log) unless said otherwise:
- tracks/min from the first submission (first POST) to the last track ready (last audio download GET);
- metered requests per track (POST + status GET; audio downloads are not metered, printed apart);
- rows in flight (submitted and accepted, not yet downloaded) sampled every 5 s, and the exact peak;
- 429s, and the most metered requests in any sliding 10 s window against the limit;
- CPU of the pipeline process itself and, apart, of the temporary Prefect server it starts as a child;
- where the time goes: time to first poll against each track's latency (from the service's database),
  polls per track, ready → download delay, submission ramp, metered rate against Prefect's metering.

`--compare-old` (default on) runs the same brief (its first `--old-rows` rows, default 60: the old
pipeline makes ~11 tracks/min) with "today's defaults", i.e. the code before this work (commit b2ce748,
a git worktree under /tmp, run with cwd and PYTHONPATH there, TEXTMUSIC_LOCAL_EXTENSIONS=true) against a
fresh service started from the current code with the same options.

`--scale` runs a 10,000-row brief (same latency and synthetic audio) against a service limited to
2000/10s, with TRACKFOUNDRY_REQUESTS_PER_WINDOW=2000 and TRACKFOUNDRY_METERING_BATCH_MAX=200 (set for this
mode only, and said so in the output); prints wall time, tracks/min, peak RSS of the pipeline and of its
Prefect server, and how many rows ledger.csv holds ready. Catalogs and service data are deleted at the end
unless --keep (the logs stay in the work folder).

`--callback` runs the same brief twice against fresh services, with the same defaults: polled (the profile
textmusic-local) and with callbacks (that profile with a `[callback]` table, written into the work folder: the
service POSTs a signed callback to the run's receiver when a track is ready, TEXTMUSIC_CALLBACK_SECRET /
TRACKFOUNDRY_CALLBACK_SECRET set to one random secret for both), and prints their tracks/min and metered
requests per track side by side. The callbacks themselves are the service's requests to the run: not metered.

Usage: .venv/bin/python benchmarks/hosted.py [--rows 300] [--no-compare-old] [--old-rows 60] [--keep]
       .venv/bin/python benchmarks/hosted.py --callback [--rows 300]
       .venv/bin/python benchmarks/hosted.py --scale [--rows 10000]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import csv
import itertools
import math
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psutil
from profiles import callback_profile  # sibling modules (benchmarks/ is on sys.path when run)
from scale import stop_group

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
OLD_COMMIT = "b2ce748"
OLD_TREE = Path("/tmp/tf-old")
LATENCY = "15-25"
LIMIT, WINDOW = 100, 10.0
SCALE_LIMIT, SCALE_BATCH = 2000, 200
SUBMIT_PATH = "/api/v1/text-to-music"
STATUS_PREFIX = "/api/v1/text-to-music/"
AUDIO_PREFIX = "/api/v1/audio/"
PREFECT_SERVER_MARK = "prefect.server.api.server:create_app"
SAMPLE_SECONDS = 0.25


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The caller's environment without any Prefect/TextMusic/TrackFoundry setting: only what a run sets."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "TEXTMUSIC_", "TRACKFOUNDRY_", "PYTHONPATH"))}


# --- the service ------------------------------------------------------------------------------------------

@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    key: str
    data: Path
    request_log: Path
    rate_limit: str
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> last CPU seconds seen (service + workers)

    def __repr__(self) -> str:  # never the key
        return f"Service({self.url})"

    def sample_cpu(self) -> None:
        with contextlib.suppress(psutil.Error):
            main = psutil.Process(self.process.pid)
            for proc in [main, *main.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    self.cpu[proc.pid] = t.user + t.system

    def stop(self) -> None:
        self.sample_cpu()
        stop_group(self.process)


def start_service(work: Path, rate_limit: str, extra_env: dict[str, str] | None = None) -> Service:
    """The CURRENT code's service (cwd /work/main, no PYTHONPATH), hosted timing, own data folder and key."""
    data = work / "service-data"
    data.mkdir(parents=True)
    env = {**clean_env(), **(extra_env or {})}
    made = subprocess.run([PYTHON, "-m", "textmusic", "keys", "create", "--data", str(data), "--balance-usd",
                           "1000"], env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    key = made.stdout.strip().splitlines()[-1].strip()
    port = free_port()
    log = work / "service-requests.log"
    args = [PYTHON, "-m", "textmusic", "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port),
            "--latency", LATENCY, "--synthetic-audio", "--rate-limit", rate_limit, "--request-log", str(log)]
    with open(work / "service.log", "ab") as fh:
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}; see {work / 'service.log'}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        if time.monotonic() > deadline:
            stop_group(process)
            raise RuntimeError("the service did not answer /healthz within 120 s")
        time.sleep(0.2)
    return Service(process, url, key, data, log, rate_limit)


# --- the brief --------------------------------------------------------------------------------------------

def write_brief(path: Path, rows: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["track_id", "name", "prompt", "seed", "output_format", "duration_seconds"])
        for i in range(rows):
            writer.writerow([f"h{i:05d}", f"Hosted {i}", "calm instrumental lofi piano", str(1000 + i), "flac", "10"])
    return path


# --- running the pipeline and watching its processes -----------------------------------------------------

@dataclass
class ProcessWatch:
    """CPU and RSS of the pipeline process and its children, sampled every SAMPLE_SECONDS until it exits."""

    wall_seconds: float = 0.0
    end_epoch: float = 0.0
    exit_code: int = 0
    self_cpu: float = 0.0  # last sample of the pipeline's own user+system time
    children_cpu: dict[int, float] = field(default_factory=dict)  # pid -> last CPU seconds seen
    children_kind: dict[int, str] = field(default_factory=dict)  # pid -> "prefect server" or its command
    reaped_children_cpu: float = 0.0  # the pipeline's children_user+children_system (children it waited for)
    total_cpu_wait4: float = 0.0  # exact: the pipeline + every descendant it reaped (os.wait4's rusage)
    peak_rss_self: int = 0
    peak_rss_children: dict[int, int] = field(default_factory=dict)
    maxrss_wait4: int = 0  # the largest RSS of the pipeline or a reaped descendant (kernel's figure)
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (epoch, pipeline's own CPU seconds)

    @property
    def server_pids(self) -> list[int]:
        return [p for p, k in self.children_kind.items() if k == "prefect server"]

    @property
    def server_cpu(self) -> float:
        return sum(self.children_cpu[p] for p in self.server_pids)

    @property
    def other_children_cpu(self) -> float:
        return sum(c for p, c in self.children_cpu.items() if p not in self.server_pids)

    @property
    def server_peak_rss(self) -> int:
        return max((self.peak_rss_children.get(p, 0) for p in self.server_pids), default=0)

    def self_cpu_between(self, start: float, end: float) -> float:
        """The pipeline's own CPU seconds between two epochs (nearest samples)."""
        stamps = [t for t, _ in self.timeline]
        if not stamps:
            return float("nan")

        def at(t: float) -> float:
            if t < stamps[0]:
                return 0.0
            i = min(bisect.bisect_left(stamps, t), len(stamps) - 1)
            return self.timeline[i][1]
        return at(end) - at(start)


def run_pipeline(args: list[str], env: dict[str, str], cwd: Path, log: Path, timeout: float,
                 service: Service, progress: Path | None = None, total: int = 0) -> ProcessWatch:
    watch = ProcessWatch()
    started = time.monotonic()
    with open(log, "ab") as fh:
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    proc = psutil.Process(process.pid)
    next_report = started + 60
    service_next = started
    try:
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                watch.exit_code = process.returncode
                watch.total_cpu_wait4 = usage.ru_utime + usage.ru_stime
                watch.maxrss_wait4 = usage.ru_maxrss * 1024
                break
            now = time.monotonic()
            if now - started > timeout:
                print(f"  !! the pipeline ran over {timeout:g} s: stopped (figures below are of what it did)",
                      flush=True)
                stop_group(process, grace=5)
                watch.exit_code = process.returncode if process.returncode is not None else -1
                break
            _sample(proc, watch)
            if now >= service_next:
                service.sample_cpu()
                service_next = now + 2.0
            if progress is not None and now >= next_report:
                next_report = now + 60
                done = sum(1 for line in progress.read_text().splitlines()
                           if f" GET {AUDIO_PREFIX}" in line and line.endswith(" 200"))
                print(f"  progress at {now - started:.0f} s: {done}/{total} tracks downloaded", flush=True)
            time.sleep(SAMPLE_SECONDS)
    finally:
        if process.returncode is None:
            stop_group(process)
    watch.wall_seconds = time.monotonic() - started
    watch.end_epoch = time.time()
    return watch


def _sample(proc: psutil.Process, watch: ProcessWatch) -> None:
    try:
        with proc.oneshot():
            times = proc.cpu_times()
            rss = proc.memory_info().rss
        children = proc.children(recursive=True)
    except psutil.Error:
        return
    watch.self_cpu = times.user + times.system
    watch.reaped_children_cpu = times.children_user + times.children_system
    watch.peak_rss_self = max(watch.peak_rss_self, rss)
    watch.timeline.append((time.time(), watch.self_cpu))
    for child in children:
        try:
            with child.oneshot():
                ct = child.cpu_times()
                crss = child.memory_info().rss
            if child.pid not in watch.children_kind:
                cmd = " ".join(child.cmdline())
                watch.children_kind[child.pid] = "prefect server" if PREFECT_SERVER_MARK in cmd else cmd[:80]
        except psutil.Error:
            continue
        watch.children_cpu[child.pid] = ct.user + ct.system
        watch.peak_rss_children[child.pid] = max(watch.peak_rss_children.get(child.pid, 0), crss)


def pipeline_env(work: Path, service: Service, old: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = clean_env()
    env.update({"PREFECT_HOME": str(work / "prefect-home"), "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "TEXTMUSIC_API_URL": service.url, "TEXTMUSIC_API_KEY": service.key})
    if old:
        env.update({"TEXTMUSIC_LOCAL_EXTENSIONS": "true", "PYTHONPATH": str(OLD_TREE)})
    else:
        env["TRACKFOUNDRY_PROVIDER"] = "textmusic-local"
    env.update(extra or {})
    return env


# --- reading what happened --------------------------------------------------------------------------------

@dataclass
class Request:
    at: float
    method: str
    path: str
    status: int

    @property
    def metered(self) -> bool:
        return self.path == SUBMIT_PATH or self.path.startswith(STATUS_PREFIX)

    @property
    def audio(self) -> bool:
        return self.method == "GET" and self.path.startswith(AUDIO_PREFIX)


def read_log(path: Path) -> list[Request]:
    out = []
    for line in path.read_text().splitlines():
        stamp, method, p, status = line.split()
        out.append(Request(float(stamp), method, p, int(status)))
    out.sort(key=lambda r: r.at)
    return out


def max_window(times: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):  # windows [t, t + window) starting at each request
        while j < len(times) and times[j] < t + window:
            j += 1
        best = max(best, j - i)
    return best


def ledger_counts(out: Path) -> tuple[dict[str, int], float | None, float | None]:
    """(status counts, earliest started_at, latest finished_at as epochs) from ledger.csv."""
    counts: dict[str, int] = {}
    first, last = math.inf, -math.inf
    path = out / "ledger.csv"
    if not path.is_file():
        return counts, None, None
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            counts[row["status"]] = counts.get(row["status"], 0) + 1
            with contextlib.suppress(ValueError, KeyError):
                first = min(first, datetime.fromisoformat(row["started_at"].lstrip("'")).timestamp())
                last = max(last, datetime.fromisoformat(row["finished_at"].lstrip("'")).timestamp())
    return counts, (first if math.isfinite(first) else None), (last if math.isfinite(last) else None)


def service_tracks(data: Path) -> dict[str, tuple[float, float]]:
    """track id -> (submitted epoch, epoch it is shown ready: max(latency's not-before, settlement))."""
    db = data / "textmusic.db"  # textmusic.server.store.DB_NAME
    if not db.is_file():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT t.id, t.created_at, t.ready_not_before, c.at FROM tracks t "
                            "LEFT JOIN charges c ON c.track_id = t.id").fetchall()
    finally:
        conn.close()
    return {tid: (created, max(nb or created, settled or created)) for tid, created, nb, settled in rows}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


# --- one measured run -------------------------------------------------------------------------------------

@dataclass
class Figures:
    label: str
    rows: int
    lines: list[str] = field(default_factory=list)
    analysis: list[str] = field(default_factory=list)
    tracks_per_min: float = 0.0
    core_tracks_per_min: float = 0.0  # downloads per minute between the 10th and 90th percentile of their times
    metered_per_track: float = 0.0
    max_win: int = 0
    cpu_ms_per_track: float = 0.0
    ready: int = 0  # tracks counted per track: ready in ledger.csv, else downloaded (a run that did not finish)
    ledger_ready: int = 0
    wall_seconds: float = 0.0
    rss_pipeline_mb: float = 0.0
    rss_server_mb: float = 0.0


def measure_run(label: str, work: Path, rows: int, old: bool, rate_limit: str, limit: int,
                extra_env: dict[str, str] | None = None, progress: bool = False,
                timeout: float = 4 * 3600, service_env: dict[str, str] | None = None) -> tuple[Figures, Path, Service]:
    work.mkdir(parents=True, exist_ok=True)
    brief = write_brief(work / "brief.csv", rows)
    out = work / "catalog"
    service = start_service(work, rate_limit, service_env)
    try:
        env = pipeline_env(work, service, old, extra_env)
        cwd = OLD_TREE if old else ROOT
        args = [PYTHON, "-m", "flows", "run", str(brief), "--catalog", "bench", "--out", str(out)]
        print(f"[{label}] code measured: {code_version(cwd)}", flush=True)
        print(f"[{label}] {rows} rows; service {service.url} (--latency {LATENCY} --synthetic-audio --rate-limit "
              f"{rate_limit}); pipeline cwd {cwd}; work {work}", flush=True)
        watch = run_pipeline(args, env, cwd, work / "flow.log", timeout=timeout, service=service,
                             progress=service.request_log if progress else None, total=rows)
    finally:
        service.stop()
    figures = analyse(label, rows, work, out, service, watch, limit)
    return figures, out, service


def analyse(label: str, rows: int, work: Path, out: Path, service: Service, watch: ProcessWatch,
            limit: int) -> Figures:
    f = Figures(label, rows, wall_seconds=watch.wall_seconds, rss_pipeline_mb=watch.peak_rss_self / 2**20,
                rss_server_mb=watch.server_peak_rss / 2**20)
    L = f.lines
    reqs = read_log(service.request_log)
    counts, _ledger_first, ledger_last = ledger_counts(out)
    f.ready = f.ledger_ready = counts.get("ready", 0)
    posts = [r for r in reqs if r.method == "POST" and r.path == SUBMIT_PATH]
    polls = [r for r in reqs if r.method == "GET" and r.path.startswith(STATUS_PREFIX)]
    audio = [r for r in reqs if r.audio]
    metered = [r for r in reqs if r.metered]
    if watch.exit_code != 0:
        L.append(f"!! the pipeline exited with {watch.exit_code}; see {work / 'flow.log'}")
    if not posts or not audio:
        L.append("!! no submission or no download reached the service")
        return f
    t0 = posts[0].at
    t_end = max(r.at for r in audio)
    span = t_end - t0
    if not f.ready:  # no ledger (the run did not finish): count the tracks downloaded instead
        f.ready = len({r.path for r in audio if r.status in (200, 206)})
        L.append(f"!! no ready row in ledger.csv: the per-track figures below count the {f.ready} tracks "
                 "downloaded (service request log)")
    f.tracks_per_min = 60 * f.ready / span if span > 0 else float("nan")
    if watch.exit_code != 0 or f.ledger_ready < rows:  # stopped or incomplete: the rate up to the process's end
        span = watch.end_epoch - t0
        f.tracks_per_min = 60 * f.ready / span if span > 0 else float("nan")
        L.append(f"!! incomplete run: {f.ready} tracks in {span:.1f} s from the first POST to the end of the "
                 f"process = {f.tracks_per_min:.1f} tracks/min (the last download was at +{t_end - t0:.1f} s)")
    L.append(f"rows: {rows}; ledger.csv: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}; "
             f"pipeline exit {watch.exit_code}, process wall time {watch.wall_seconds:.1f} s (incl. Prefect start-up)")
    ledger_note = ""
    if ledger_last is not None:
        ledger_note = (f"; to the ledger's last finished_at: {ledger_last - t0:.1f} s, "
                       f"{60 * f.ready / (ledger_last - t0):.1f} tracks/min")
    if f.ledger_ready >= rows and watch.exit_code == 0:
        L.append(f"throughput: {f.ready} tracks ready in {span:.1f} s from the first POST to the last audio download "
                 f"GET (service request log, request receipt times) = {f.tracks_per_min:.1f} tracks/min{ledger_note}")
    # requests
    metered_ok = [r for r in metered if r.status != 429]
    n_auth = sum(1 for r in polls if "/tf-auth-" in r.path)
    f.metered_per_track = len(metered) / f.ready if f.ready else float("nan")
    by_status: dict[int, int] = {}
    for r in reqs:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    L.append(f"metered requests: {len(metered)} = {len(posts)} POST + {len(polls)} status GET"
             f"{f' (incl. {n_auth} key check)' if n_auth else ''} = {f.metered_per_track:.2f} per ready track "
             f"({len(metered_ok) / max(1, f.ready):.2f} excluding 429s); status GETs per track "
             f"{(len(polls) - n_auth) / max(1, f.ready):.2f}")
    done = sorted(r.at for r in audio if r.status in (200, 206))
    lo, hi = len(done) // 10, (9 * len(done)) // 10
    if hi > lo and done[hi] > done[lo]:
        f.core_tracks_per_min = 60 * (hi - lo) / (done[hi] - done[lo])
        L.append(f"sustained pace: {f.core_tracks_per_min:.1f} tracks/min between the 10th and 90th percentile of the "
                 "download times (the ramp-up and the last tracks' time to ready left out)")
    L.append(f"audio downloads (not metered): {len(audio)} GET ({sum(r.status in (200, 206) for r in audio)} ok); "
             f"all answers by status: {dict(sorted(by_status.items()))}")
    n429 = sum(1 for r in reqs if r.status == 429)
    f.max_win = max_window([r.at for r in metered], WINDOW)
    L.append(f"429s: {n429} ({sum(1 for r in posts if r.status == 429)} on POST, "
             f"{sum(1 for r in polls if r.status == 429)} on status GET); most metered requests in any sliding "
             f"{WINDOW:g} s window: {f.max_win} (limit {limit}: {'held' if f.max_win <= limit else 'EXCEEDED'})")
    # in flight: accepted POSTs minus successful downloads
    events = sorted([(r.at, +1) for r in posts if r.status == 200] + [(r.at, -1) for r in audio if r.status == 200])
    level, peak, peak_at = 0, 0, t0
    for at, d in events:
        level += d
        if level > peak:
            peak, peak_at = level, at
    stamps = [e[0] for e in events]
    cumulative = list(itertools.accumulate(d for _, d in events))
    step = 5.0 if span < 600 else 30.0
    samples = []
    t = t0
    while t <= t_end + step:
        i = bisect.bisect_right(stamps, t)
        samples.append(cumulative[i - 1] if i else 0)
        t += step
    L.append(f"rows in flight (accepted, not yet downloaded), every {step:g} s from the first POST: "
             f"{' '.join(map(str, samples))}")
    L.append(f"peak in flight: {peak} at +{peak_at - t0:.1f} s")
    # CPU
    server_cpu = max(watch.server_cpu, watch.reaped_children_cpu if watch.server_pids else 0.0)
    # wait4 counts the server only if the pipeline reaped it; the sampled figure is a lower bound
    self_exact = max(watch.self_cpu, watch.total_cpu_wait4 - server_cpu - watch.other_children_cpu)
    gen_cpu = watch.self_cpu_between(t0, t_end)
    before_cpu = watch.self_cpu_between(0.0, t0)
    f.cpu_ms_per_track = 1000 * self_exact / max(1, f.ready)
    L.append(f"pipeline CPU (user+system): the `python -m flows run` process itself {self_exact:.1f} s = "
             f"{f.cpu_ms_per_track:.0f} ms/track over the whole run (start-up, Prefect client, validation, "
             f"generation, ledger); of it {gen_cpu:.1f} s = {1000 * gen_cpu / max(1, f.ready):.0f} ms/track between "
             f"the first POST and the last download, {before_cpu:.1f} s before the first POST (imports, Prefect client "
             f"and server start, validation), the rest after the last download (ledger, artifacts, shutdown)")
    L.append(f"Prefect temporary server (child `uvicorn prefect.server.api.server:create_app`, "
             f"{len(watch.server_pids)} process): {server_cpu:.1f} s = {1000 * server_cpu / max(1, f.ready):.0f} "
             f"ms/track; other children {watch.other_children_cpu:.1f} s; kernel total of the pipeline and every "
             f"child it reaped (wait4) "
             f"{f'{watch.total_cpu_wait4:.1f} s' if watch.total_cpu_wait4 else 'n/a (the run was stopped)'}")
    svc_cpu = sum(service.cpu.values())
    L.append(f"(context, same 2-CPU machine: the service and its workers used {svc_cpu:.1f} s CPU, sampled)")
    L.append(f"peak RSS: pipeline {watch.peak_rss_self / 2**20:.0f} MB, Prefect server "
             f"{watch.server_peak_rss / 2**20:.0f} MB (sampled every {SAMPLE_SECONDS:g} s); kernel max RSS of the "
             f"pipeline or a reaped child "
             f"{f'{watch.maxrss_wait4 / 2**20:.0f} MB' if watch.maxrss_wait4 else 'n/a (the run was stopped)'}")
    f.analysis = where_time_goes(reqs, posts, polls, audio, service, t0, t_end, limit)
    return f


def where_time_goes(reqs: list[Request], posts: list[Request], polls: list[Request], audio: list[Request],
                    service: Service, t0: float, t_end: float, limit: int) -> list[str]:
    A: list[str] = []
    tracks = service_tracks(service.data)
    first_poll: dict[str, float] = {}
    n_polls: dict[str, int] = {}
    for r in polls:
        tid = r.path[len(STATUS_PREFIX):]
        if tid.startswith("tf-auth-"):
            continue
        n_polls[tid] = n_polls.get(tid, 0) + 1
        first_poll.setdefault(tid, r.at)
    downloaded = {}
    for r in audio:
        tid = r.path[len(AUDIO_PREFIX):].rsplit(".", 1)[0]
        downloaded.setdefault(tid, r.at)
    lat, first_age, first_vs_ready, ready_to_dl, sub_to_dl = [], [], [], [], []
    hits = 0
    for tid, (created, ready) in tracks.items():
        lat.append(ready - created)
        if tid in first_poll:
            first_age.append(first_poll[tid] - created)
            first_vs_ready.append(first_poll[tid] - ready)
            hits += first_poll[tid] >= ready
        if tid in downloaded:
            ready_to_dl.append(downloaded[tid] - ready)
            sub_to_dl.append(downloaded[tid] - created)
    if tracks:
        A.append(f"time to ready (service DB: max(latency not-before, settlement) − submission): median "
                 f"{pct(lat, 50):.1f} s, p10 {pct(lat, 10):.1f}, p90 {pct(lat, 90):.1f}")
        A.append(f"first poll after submission: median {pct(first_age, 50):.1f} s, p10 {pct(first_age, 10):.1f}, "
                 f"p90 {pct(first_age, 90):.1f}; first poll minus ready: median {pct(first_vs_ready, 50):+.1f} s; "
                 f"first poll found the track ready for {hits}/{len(first_age)} tracks")
        hist: dict[int, int] = {}
        for n in n_polls.values():
            hist[n] = hist.get(n, 0) + 1
        A.append(f"status polls per track: mean {sum(n_polls.values()) / len(tracks):.2f} over all tracks "
                 f"({len(n_polls)} polled); distribution of the polled " + ", ".join(
                     f"{k}:{v}" for k, v in sorted(hist.items())))
        A.append(f"ready → download GET: median {pct(ready_to_dl, 50):.1f} s, p90 {pct(ready_to_dl, 90):.1f}, "
                 f"max {max(ready_to_dl, default=float('nan')):.1f}; submission → download: median "
                 f"{pct(sub_to_dl, 50):.1f} s")
    # ramp and rate over time
    ok_posts = [r.at for r in posts if r.status == 200]
    span = t_end - t0
    step = 10.0 if span < 900 else 60.0
    buckets = max(1, math.ceil(span / step))
    sub_hist = [0] * buckets
    met_hist = [0] * buckets
    for at in ok_posts:
        sub_hist[min(buckets - 1, int((at - t0) // step))] += 1
    for r in reqs:
        if r.metered and r.at >= t0:
            met_hist[min(buckets - 1, int((r.at - t0) // step))] += 1
    A.append(f"accepted submissions per {step:g} s: {' '.join(map(str, sub_hist))}")
    A.append(f"metered requests per {step:g} s: {' '.join(map(str, met_hist))} "
             f"(limit {limit * step / WINDOW:g} per {step:g} s)")
    metered_times = [r.at for r in reqs if r.metered and r.at >= t0]
    if len(metered_times) > 10:
        lo, hi = metered_times[len(metered_times) // 10], metered_times[(9 * len(metered_times)) // 10]
        core = ((9 * len(metered_times)) // 10 - len(metered_times) // 10) / (hi - lo) if hi > lo else 0.0
        A.append(f"metered rate: mean {len(metered_times) / span:.2f}/s over the run, {core:.2f}/s between the 10th "
                 f"and 90th percentile of request times; limit {limit / WINDOW:g}/s")
    if ok_posts:
        A.append(f"submissions: first at +0.0 s, last at +{ok_posts[-1] - t0:.1f} s; last download at "
                 f"+{span:.1f} s (tail after the last submission: {t_end - ok_posts[-1]:.1f} s)")
    return A


# --- modes ------------------------------------------------------------------------------------------------

def code_version(tree: Path) -> str:
    """The commit of the code measured, and whether the pipeline's folders differ from it."""
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(tree), *a], capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--", "tasks", "flows", "textmusic").splitlines()
    return (f"{tree} at {git('log', '-1', '--format=%h %ci %s')[:100]}"
            + (f"; uncommitted changes in {', '.join(line[3:] for line in dirty)}" if dirty else "; clean"))


def ensure_old_tree() -> None:
    if not (OLD_TREE / "flows").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", str(OLD_TREE), OLD_COMMIT], check=True,
                       capture_output=True)
    head = subprocess.run(["git", "-C", str(OLD_TREE), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    if not OLD_COMMIT.startswith(head[:7]) and not head.startswith(OLD_COMMIT):
        raise RuntimeError(f"{OLD_TREE} is at {head}, not {OLD_COMMIT}")


def callback_mode(work: Path, rows: int, keep: bool, timeout: float) -> None:
    """Polled, then with callbacks: the same brief, defaults and limit; figures side by side."""
    results: list[Figures] = []
    f, _out, _svc = measure_run(f"polling (defaults), {rows} rows", work / "polling", rows, old=False,
                                rate_limit=f"{LIMIT}/10s", limit=LIMIT, timeout=timeout)
    results.append(f)
    print_figures(f)
    cleanup(work / "polling", keep)
    secret = secrets.token_hex(24)
    (work / "callback").mkdir(parents=True, exist_ok=True)
    profile = callback_profile(work / "callback" / "textmusic-local-callbacks.toml")
    g, _out, _svc = measure_run(f"callbacks (defaults, signed), {rows} rows", work / "callback", rows, old=False,
                                rate_limit=f"{LIMIT}/10s", limit=LIMIT, timeout=timeout,
                                extra_env={"TRACKFOUNDRY_PROVIDER": str(profile),
                                           "TRACKFOUNDRY_CALLBACK_SECRET": secret},
                                service_env={"TEXTMUSIC_CALLBACK_SECRET": secret})
    results.append(g)
    print_figures(g)
    cleanup(work / "callback", keep)
    print("\n== summary: polling vs callbacks ==")
    for r in results:
        print(f"{r.label}: {r.ready}/{r.rows} ready, {r.tracks_per_min:.1f} tracks/min (sustained "
              f"{r.core_tracks_per_min:.1f}), {r.metered_per_track:.2f} metered requests/track, max {r.max_win} per "
              f"{WINDOW:g} s (limit {LIMIT}), pipeline CPU {r.cpu_ms_per_track:.0f} ms/track")
    print(f"targets (callbacks): >= 500 tracks/min: {'met' if g.tracks_per_min >= 500 else 'MISSED'} "
          f"({g.tracks_per_min:.1f}); <= 1.2 metered requests/track: "
          f"{'met' if g.metered_per_track <= 1.2 else 'MISSED'} ({g.metered_per_track:.2f}); no {WINDOW:g} s window "
          f"over {LIMIT}: {'met' if g.max_win <= LIMIT else 'MISSED'} ({g.max_win})")


def cleanup(work: Path, keep: bool) -> None:
    if keep:
        return
    for sub in ("catalog", "service-data", "prefect-home"):
        shutil.rmtree(work / sub, ignore_errors=True)


def print_figures(f: Figures) -> None:
    print(f"\n== {f.label} ==")
    for line in f.lines:
        print(line)
    if f.analysis:
        print("-- where the time goes --")
        for line in f.analysis:
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=None, help="rows of the brief (default 300; 10000 with --scale)")
    parser.add_argument("--compare-old", action=argparse.BooleanOptionalAction, default=True,
                        help=f"also run the code before this work (commit {OLD_COMMIT}) on --old-rows rows")
    parser.add_argument("--old-rows", type=int, default=60, help="rows of the old run (it makes ~11 tracks/min)")
    parser.add_argument("--scale", action="store_true",
                        help=f"10,000 rows, service limit {SCALE_LIMIT}/10s and the pipeline's limit matching")
    parser.add_argument("--callback", action="store_true",
                        help="polled and with signed callbacks, the same brief and defaults, side by side")
    parser.add_argument("--keep", action="store_true", help="keep catalogs, service data and PREFECT_HOME")
    parser.add_argument("--timeout", type=float, default=4 * 3600,
                        help="stop a pipeline run after this many seconds and report what it did")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a new temp folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="tf-hosted-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder (logs): {work}", flush=True)

    if args.scale:
        rows = args.rows or 10000
        extra = {"TRACKFOUNDRY_REQUESTS_PER_WINDOW": str(SCALE_LIMIT),
                 "TRACKFOUNDRY_METERING_BATCH_MAX": str(SCALE_BATCH)}
        print(f"scale mode: set for this mode only: service --rate-limit {SCALE_LIMIT}/10s, "
              + ", ".join(f"{k}={v}" for k, v in extra.items()) + " (every other setting at its default)", flush=True)
        f, _out, _svc = measure_run(f"scale: {rows} rows, current code", work / "scale", rows, old=False,
                                    rate_limit=f"{SCALE_LIMIT}/10s", limit=SCALE_LIMIT, extra_env=extra,
                                    progress=True, timeout=args.timeout)
        print_figures(f)
        print(f"\n== scale summary ==\nscale mode settings: service --rate-limit {SCALE_LIMIT}/10s, "
              + ", ".join(f"{k}={v}" for k, v in extra.items()))
        print(f"wall time of `python -m flows run` {f.wall_seconds:.0f} s (incl. start-up); {f.tracks_per_min:.0f} "
              f"tracks/min from the first POST; peak RSS: pipeline {f.rss_pipeline_mb:.0f} MB, Prefect server "
              f"{f.rss_server_mb:.0f} MB")
        print(f"all rows completed: {'yes' if f.ledger_ready == rows else 'NO'} ({f.ledger_ready}/{rows} ready in "
              f"ledger.csv; {f.ready} tracks downloaded); {f.tracks_per_min:.0f} tracks/min")
        cleanup(work / "scale", args.keep)
        return

    if args.callback:
        return callback_mode(work, args.rows or 300, args.keep, args.timeout)

    rows = args.rows or 300
    results: list[Figures] = []
    f, _out, _svc = measure_run(f"current code (defaults), {rows} rows", work / "current", rows, old=False,
                                rate_limit=f"{LIMIT}/10s", limit=LIMIT)
    results.append(f)
    print_figures(f)
    cleanup(work / "current", args.keep)
    if args.compare_old:
        ensure_old_tree()
        old_rows = min(args.old_rows, rows)
        g, _out, _svc = measure_run(f"today's defaults (commit {OLD_COMMIT}, max in flight 4), {old_rows} rows "
                                    f"(--old-rows; the current run had {rows})", work / "old", old_rows, old=True,
                                    rate_limit=f"{LIMIT}/10s", limit=LIMIT)
        results.append(g)
        print_figures(g)
        cleanup(work / "old", args.keep)

    print("\n== summary ==")
    for r in results:
        print(f"{r.label}: {r.ready}/{r.rows} ready, {r.tracks_per_min:.1f} tracks/min, "
              f"{r.metered_per_track:.2f} metered requests/track, max {r.max_win} per {WINDOW:g} s "
              f"(limit {LIMIT}), pipeline CPU {r.cpu_ms_per_track:.0f} ms/track")
    cur = results[0]
    print(f"targets (current defaults): >= 150 tracks/min: {'met' if cur.tracks_per_min >= 150 else 'MISSED'} "
          f"({cur.tracks_per_min:.1f}); <= 2.5 metered requests/track: "
          f"{'met' if cur.metered_per_track <= 2.5 else 'MISSED'} ({cur.metered_per_track:.2f}); no {WINDOW:g} s "
          f"window over {LIMIT}: {'met' if cur.max_win <= LIMIT else 'MISSED'} ({cur.max_win}); pipeline CPU <= 50 "
          f"ms/track: {'met' if cur.cpu_ms_per_track <= 50 else 'MISSED'} ({cur.cpu_ms_per_track:.0f})")
    if rows < 300:
        print(f"(note: the targets are set for the 300-row brief; this run had {rows} rows)")


if __name__ == "__main__":
    main()
