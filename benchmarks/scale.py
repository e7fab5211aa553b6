"""Scale-out demo and benchmarks (a script, not a test): real PostgreSQL, a real Prefect server, real workers.

`demo` (what `make scale-demo` runs): starts its own PostgreSQL cluster (initdb + pg_ctl on a free loopback
port), a Prefect server on 127.0.0.1 using it, the `trackfoundry` process work pool with two workers, and the
local Text-to-Music service (its key goes into a Prefect Secret block, never into job variables or logs);
deploys `catalog` from prefect.yaml; runs two catalogs at once on the two workers; then measures, from the
provider's side (the service's request log), the rate both workers produced together against the shared
limit. Everything it started is stopped by pid, also on failure.

`bench` prints: achieved request rate vs the limit (ephemeral, server single flow, server two workers),
pipeline overhead per track (instant provider, as in benchmarks/pipeline.py), peak memory of a 1,000-row run
and how wall time grows from 100 to 1,000 rows. Flags select parts: --rate --overhead --growth.

`demo --callback` is the same demo with callbacks (benchmarks/profiles.py: the local-service profile with a
`[callback]` table, written into the work folder and named by TRACKFOUNDRY_PROVIDER in the job variables): the
service POSTs a signed callback to each run's receiver when a track is ready. One random signing secret: the
service gets it as TEXTMUSIC_CALLBACK_SECRET, each worker as TRACKFOUNDRY_CALLBACK_SECRET in its own process
environment, which Prefect's process worker passes on to the flow runs it starts (as a studio sets a secret on
its worker machines); it is in no job variable, no argv and no log (checked at the end). It checks that the limit
held and that a track cost at most 1.2 metered requests; callbacks (the service's requests to the runs) are not
metered and never reach the service's request log.

Usage: .venv/bin/python benchmarks/scale.py demo [--rows 400] [--callback]
       .venv/bin/python benchmarks/scale.py bench [--rate] [--overhead] [--growth]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
POOL = "trackfoundry"
DEPLOYMENT = "produce-catalog/catalog"
SECRET_BLOCK = "textmusic-scale-key"
LIMIT, WINDOW = 100, 10.0  # requests per window: the hosted service's 100 per 10 s, i.e. 10/s
METERED = ("/api/v1/text-to-music",)  # submit and status: what the provider meters (downloads are not)
STATUS, AUDIO = "/api/v1/text-to-music/", "/api/v1/audio/"
MAX_PER_TRACK = 1.2  # callback mode: metered requests per track at most (the POST; polls only as a fallback)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TEXTMUSIC_", "TRACKFOUNDRY_"))}
    env.update({"PREFECT_HOME": str(work / "prefect-home"), "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
                "TRACKFOUNDRY_STATE_DIR": str(work / "state"), "TRACKFOUNDRY_ROOT": str(ROOT),
                "PATH": f"{BIN}:{os.environ.get('PATH', '')}"})
    return env


@dataclass
class Started:
    """What this script started, stopped in reverse order by pid (a process group per child), even on failure."""

    stops: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], env: dict[str, str], log: Path,
              **kw: object) -> subprocess.Popen[bytes]:
        with open(log, "ab") as fh:
            process = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                       **kw)  # type: ignore[call-overload]
        self.stops.append((name, lambda: stop_group(process)))
        return process

    def stop_all(self) -> None:
        while self.stops:
            name, stop = self.stops.pop()
            try:
                stop()
            except Exception as exc:  # keep stopping the others
                print(f"could not stop {name}: {exc}", file=sys.stderr)


def stop_group(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM to the child's own process group (its pid), then SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_http(url: str, seconds: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode} before answering {url}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=3).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {seconds:g} s")


# --- PostgreSQL -----------------------------------------------------------------------------------------

def pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"{name} not found: install Debian's postgresql (make scale-demo does)")
    return found


def start_postgres(started: Started, work: Path) -> str:
    """Own cluster in a temp folder, on a free loopback port; initdb refuses root, so it runs as `postgres`."""
    data = Path(tempfile.mkdtemp(prefix="tf-pg-"))  # outside `work`: its owner must be the cluster's user
    user: dict[str, object] = {}
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(data, pw.pw_uid, pw.pw_gid)
        user = {"user": pw.pw_uid, "group": pw.pw_gid}
    port = free_port()
    run = dict(check=True, capture_output=True, **user)
    subprocess.run([pg_bin("initdb"), "-D", str(data), "-U", "prefect", "-A", "trust", "-E", "UTF8"], **run)
    subprocess.run([pg_bin("pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "60", "-o",
                    f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c max_connections=200", "start"], **run)
    pid = int((data / "postmaster.pid").read_text().split()[0])

    def stop() -> None:
        subprocess.run([pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True,
                       timeout=60, **user)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)

    started.stops.append(("postgresql", stop))
    print(f"postgresql: pid {pid}, 127.0.0.1:{port}")
    return f"postgresql+asyncpg://prefect@127.0.0.1:{port}/postgres"


def start_prefect_server(started: Started, work: Path, env: dict[str, str], db_url: str) -> str:
    port = free_port()
    server_env = {**env, "PREFECT_API_DATABASE_CONNECTION_URL": db_url, "PREFECT_UI_ENABLED": "false"}
    process = started.spawn("prefect server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                               "--port", str(port)], server_env, work / "prefect-server.log")
    url = f"http://127.0.0.1:{port}/api"
    wait_http(f"{url}/health", 180, process)
    print(f"prefect server: pid {process.pid}, {url} on PostgreSQL")
    return url


# --- the local Text-to-Music service ---------------------------------------------------------------------

@dataclass
class Service:
    url: str
    key: str
    data: Path
    requests_log: Path

    def __repr__(self) -> str:  # never the key
        return f"Service({self.url})"


HOSTED_LATENCY = "15-25"  # the demo's service at hosted timing: each track pending 15-25 s, as hosted APIs answer
DEMO_IN_FLIGHT = 150  # per run: two runs keep up to 300 tracks pending, ~2 requests each per ~20-30 s, past the limit


def start_service(started: Started, work: Path, env: dict[str, str], hosted: bool = False,
                  extra_env: dict[str, str] | None = None) -> Service:
    """The local service, with a request log; `hosted`: at hosted timing with synthetic audio (a click track),
    so that the limit, not the engine's CPU, bounds the rate on a small machine. `extra_env`: the service's
    own settings (TEXTMUSIC_CALLBACK_SECRET)."""
    data = work / "service"
    data.mkdir(parents=True, exist_ok=True)
    made = subprocess.run([str(BIN / "textmusic"), "keys", "create", "--data", str(data), "--balance-usd", "1000"],
                          env=env, capture_output=True, text=True, check=True)
    key = made.stdout.strip().splitlines()[-1].strip()
    port = free_port()
    log = work / "service-requests.log"
    # The service's own per-key limit is set far above the Prefect limit: what is measured is Prefect's.
    timing = ["--latency", HOSTED_LATENCY, "--synthetic-audio"] if hosted else []
    process = started.spawn("textmusic serve", [str(BIN / "textmusic"), "serve", "--data", str(data), "--port",
                                                str(port), "--rate-limit", "100000/10s", "--request-log", str(log),
                                                *timing], {**env, **(extra_env or {})}, work / "service.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", 180, process)
    print(f"local Text-to-Music service: pid {process.pid}, {url}")
    return Service(url, key, data, log)


# --- measuring the rate from the provider's side ---------------------------------------------------------

@dataclass
class Rate:
    requests: int
    busy_seconds: float
    mean: float  # requests/s over the busy period
    core_mean: float  # requests/s between the 10th and 90th percentile of request times (demand saturated)
    max_window: int  # most requests in any WINDOW seconds
    refused: int  # 429s from the provider

    def line(self, label: str) -> str:
        limit = LIMIT / WINDOW
        return (f"{label}: {self.requests} metered requests in {self.busy_seconds:.1f} s; mean {self.mean:.2f}/s "
                f"({100 * self.mean / limit:.0f}% of {limit:g}/s), saturated core {self.core_mean:.2f}/s "
                f"({100 * self.core_mean / limit:.0f}%); max in any {WINDOW:g} s window {self.max_window} "
                f"(limit {LIMIT}: {'held' if self.max_window <= LIMIT else 'EXCEEDED'}); provider 429s {self.refused}")


def measure(log: Path, since: float = 0.0) -> Rate:
    times, refused = [], 0
    for line in log.read_text().splitlines():
        stamp, _method, path, status = line.split()
        if float(stamp) >= since and path.startswith(METERED):
            times.append(float(stamp))
            refused += status == "429"
    times.sort()
    if len(times) < 2:
        raise RuntimeError(f"only {len(times)} metered requests reached the provider")
    busy = times[-1] - times[0]
    lo, hi = times[len(times) // 10], times[(9 * len(times)) // 10]
    core = ((9 * len(times)) // 10 - len(times) // 10) / (hi - lo) if hi > lo else 0.0
    best, j = 0, 0
    for i, t in enumerate(times):  # windows [t, t + WINDOW) starting at each request
        while j < len(times) and times[j] < t + WINDOW:
            j += 1
        best = max(best, j - i)
    return Rate(len(times), busy, (len(times) - 1) / busy, core, best, refused)


@dataclass
class Delivery:
    """What the request log says of the tracks themselves: the first POST, the last audio download, and how many
    tracks were asked their status at least once (the rest were confirmed by their callback alone)."""

    first_post: float
    last_download: float
    polled_tracks: int


def delivery(log: Path, since: float = 0.0) -> Delivery:
    posts, downloads, polled = [], [], set()
    for line in log.read_text().splitlines():
        stamp, method, path, status = line.split()
        at = float(stamp)
        if at < since:
            continue
        if method == "POST" and path == METERED[0]:
            posts.append(at)
        elif method == "GET" and path.startswith(AUDIO) and status in ("200", "206"):
            downloads.append(at)
        elif method == "GET" and path.startswith(STATUS) and not path[len(STATUS):].startswith("tf-auth-"):
            polled.add(path[len(STATUS):])  # a key check (tf-auth-...) is no track
    return Delivery(min(posts), max(downloads), len(polled))


# --- briefs and runs -------------------------------------------------------------------------------------

def write_brief(path: Path, rows: int, prefix: str) -> Path:
    import pandas as pd

    from tasks.intake.brief import BRIEF_COLUMNS

    frame = pd.DataFrame({"track_id": [f"{prefix}{i:05d}" for i in range(rows)],
                          "name": [f"{prefix} {i}" for i in range(rows)],
                          "prompt": ["calm lofi piano"] * rows, "seed": [str(i) for i in range(rows)],
                          "output_format": ["wav"] * rows, "bpm": ["90"] * rows, "duration_seconds": ["10"] * rows})
    for column in BRIEF_COLUMNS:
        if column not in frame:
            frame[column] = ""
    frame.to_csv(path, index=False)
    return path


def provider_env(service: Service, hosted: bool = False) -> dict[str, str]:
    """Job/run environment: provider URL, the Secret block's name, the limit, enough demand to exceed it: at
    hosted timing many tracks in flight and the default polling (which learns the time to ready: ~2 requests a
    track); else a few tracks polled fast."""
    env = {"TEXTMUSIC_API_URL": service.url, "TEXTMUSIC_LOCAL_EXTENSIONS": "true",
           "TRACKFOUNDRY_API_KEY_SECRET_BLOCK": SECRET_BLOCK, "TRACKFOUNDRY_REQUESTS_PER_WINDOW": str(LIMIT),
           "TRACKFOUNDRY_WINDOW_SECONDS": str(WINDOW)}
    if hosted:
        return {**env, "TRACKFOUNDRY_MAX_IN_FLIGHT": str(DEMO_IN_FLIGHT)}
    return {**env, "TRACKFOUNDRY_MAX_IN_FLIGHT": "12", "TEXTMUSIC_POLL_INITIAL_SECONDS": "0.2",
            "TEXTMUSIC_POLL_MAX_INTERVAL_SECONDS": "0.3"}


def save_secret(env: dict[str, str], service: Service) -> None:
    """The key goes to Prefect as a Secret block, through stdin (never argv, never a log)."""
    code = ("import sys; from prefect.blocks.system import Secret; "
            f"Secret(value=sys.stdin.read()).save({SECRET_BLOCK!r}, overwrite=True)")
    subprocess.run([sys.executable, "-c", code], input=service.key, env=env, text=True, check=True,
                   capture_output=True, timeout=300)


def run_flow(env: dict[str, str], brief: Path, out: Path, log: Path) -> None:
    with open(log, "ab") as fh:
        done = subprocess.run([sys.executable, "-m", "flows", "run", str(brief), "--catalog", brief.stem, "--out",
                               str(out)], env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=3600, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the flow run failed (exit {done.returncode}); see {log}")


def check_ledger(out: Path, rows: int) -> str:
    import pandas as pd

    ledger = pd.read_parquet(out / "ledger.parquet")
    ready = int((ledger.status == "ready").sum())
    if ready != rows:
        raise RuntimeError(f"{out}: {ready} of {rows} rows ready: {ledger.status.value_counts().to_dict()}")
    return f"{out.name}: {ready}/{rows} ready"


# --- the demo: two workers on a Prefect server with PostgreSQL -------------------------------------------

def server_stack(started: Started, work: Path, hosted: bool = False,
                 service_env: dict[str, str] | None = None) -> tuple[dict[str, str], Service]:
    env = base_env(work)
    db_url = start_postgres(started, work)
    env["PREFECT_API_URL"] = start_prefect_server(started, work, env, db_url)
    service = start_service(started, work, env, hosted, service_env)
    save_secret(env, service)
    return env, service


def demo(work: Path, rows: int, hosted: bool = True, callback: bool = False) -> Rate:
    """Polled (the default), or with signed callbacks: the secret reaches the service and the workers through
    their process environments only."""
    work.mkdir(parents=True, exist_ok=True)
    started = Started()
    secret = secrets.token_hex(24) if callback else ""
    try:
        env, service = server_stack(started, work, hosted,
                                    {"TEXTMUSIC_CALLBACK_SECRET": secret} if callback else None)
        prefect = [str(BIN / "prefect"), "--no-prompt"]
        subprocess.run([*prefect, "work-pool", "create", POOL, "--type", "process", "--overwrite"], env=env,
                       check=True, capture_output=True, cwd=ROOT)
        job_env = {**provider_env(service, hosted), "TRACKFOUNDRY_STATE_DIR": env["TRACKFOUNDRY_STATE_DIR"],
                   "TRACKFOUNDRY_ROOT": str(ROOT)}
        if callback:  # a path, not a secret: the profile names the variable that holds the secret, not its value
            from benchmarks.profiles import callback_profile

            profile = callback_profile(work / "textmusic-local-callbacks.toml")
            job_env["TRACKFOUNDRY_PROVIDER"] = str(profile)
            print(f"callbacks: provider profile {profile} (signed; the secret only in the service's and the "
                  "workers' process environments)")
        deployed = subprocess.run([*prefect, "deploy", "--prefect-file", "prefect.yaml", "--name", "catalog",
                                   "--job-variable", json.dumps({"env": job_env})],
                                  env=env, capture_output=True, text=True, cwd=ROOT)
        if deployed.returncode != 0:
            raise RuntimeError(f"prefect deploy failed: {deployed.stdout[-1500:]}{deployed.stderr[-1500:]}")
        worker_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
        if callback:  # as a studio sets a secret on its worker machines: the flow runs inherit the worker's env
            worker_env["TRACKFOUNDRY_CALLBACK_SECRET"] = secret
        for n in (1, 2):
            worker = started.spawn(f"worker {n}", [*prefect, "worker", "start", "--pool", POOL, "--name",
                                                   f"worker-{n}", "--limit", "1"], worker_env,
                                   work / f"worker-{n}.log")
            print(f"worker-{n}: pid {worker.pid}")
        briefs = [write_brief(work / f"scale-{c}.csv", rows, f"s{c}") for c in "ab"]
        outs = [work / "catalogs" / b.stem for b in briefs]
        since = time.time()
        ids = []
        for brief, out in zip(briefs, outs, strict=True):
            made = subprocess.run([*prefect, "deployment", "run", DEPLOYMENT, "--param", f"brief={brief}",
                                   "--param", f"catalog={brief.stem}", "--param", f"out={out}"],
                                  env=env, capture_output=True, text=True, check=True, cwd=ROOT)
            ids.append(next(w for w in made.stdout.split() if len(w) == 36 and w.count("-") == 4))
        print(f"two flow runs of {rows} rows each started: {', '.join(ids)}")
        states = wait_flow_runs(env, ids, timeout=3600)
        print(f"flow runs finished: {states}; ran on: {workers_of(work, ids)}")
        if set(states.values()) != {"COMPLETED"}:
            raise RuntimeError(f"flow runs did not complete: {states}; logs in {work}")
        print("; ".join(check_ledger(out, rows) for out in outs))
        rate = measure(service.requests_log, since)
        print(rate.line("shared rate (2 workers, measured by the provider)"))
        tracks = 2 * rows
        if callback:
            seen = delivery(service.requests_log, since)
            span = seen.last_download - seen.first_post
            print(f"throughput: {tracks} tracks in {span:.0f} s (first POST to last audio download) = "
                  f"{60 * tracks / span:.0f} tracks/min, {rate.requests / tracks:.2f} metered requests per track "
                  f"(the limit allows {60 * LIMIT / WINDOW / (rate.requests / tracks):.0f} tracks/min at that)")
            print(f"confirmed by callback alone: {tracks - seen.polled_tracks} tracks; asked their status (the "
                  f"fallback poll): {seen.polled_tracks} (service request log)")
            print(secret_check(env, work, ids, secret))
        else:
            print(f"throughput: {tracks} tracks in {rate.busy_seconds:.0f} s = "
                  f"{60 * tracks / rate.busy_seconds:.0f} tracks/min, {rate.requests / tracks:.2f} metered requests "
                  f"per track (the limit allows {60 * LIMIT / WINDOW / (rate.requests / tracks):.0f} tracks/min at "
                  "that)")
        return rate
    finally:
        started.stop_all()
        print("stopped everything this script started")


def _client_call(env: dict[str, str], code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-1500:])
    return done.stdout.strip()


def secret_check(env: dict[str, str], work: Path, ids: list[str], secret: str) -> str:
    """Where the callback secret must not be: the deployment's job variables, the flow runs' parameters and
    logs (Prefect's API), and every log and file under the work folder (the catalogs' audio left out). The
    secret goes to the checking process through stdin."""
    code = ("import json, sys, uuid; from prefect.client.orchestration import get_client\n"
            "from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId\n"
            "secret = sys.stdin.read(); found = []\n"
            "with get_client(sync_client=True) as c:\n"
            f"    d = c.read_deployment_by_name({DEPLOYMENT!r})\n"
            "    found += ['job variables'] if secret in json.dumps(d.job_variables, default=str) else []\n"
            f"    ids = [uuid.UUID(i) for i in {ids!r}]\n"
            "    found += ['flow run'] if any(secret in c.read_flow_run(i).model_dump_json() for i in ids) else []\n"
            "    offset, logs = 0, 0\n"
            "    while True:\n"
            "        f = LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids))\n"
            "        page = c.read_logs(f, limit=200, offset=offset)\n"
            "        if not page: break\n"
            "        found += ['run logs'] if any(secret in r.message for r in page) else []\n"
            "        offset += len(page); logs += len(page)\n"
            "print(json.dumps({'found': sorted(set(found)), 'logs': logs}))")
    done = subprocess.run([sys.executable, "-c", code], input=secret, env=env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the secret check could not read the Prefect API: {done.stderr[-800:]}")
    api = json.loads(done.stdout.strip().splitlines()[-1])
    files, leaked = 0, []
    for path in work.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 8 << 20:
            files += 1
            if secret.encode() in path.read_bytes():
                leaked.append(str(path.relative_to(work)))
    found = api["found"] + leaked
    if found:
        raise RuntimeError(f"the callback secret was found in: {', '.join(found)}")
    return (f"callback secret: in neither the deployment's job variables, the flow runs nor their {api['logs']} "
            f"log lines (Prefect API), nor any of {files} files under the work folder (logs, state, catalogs)")


def wait_flow_runs(env: dict[str, str], ids: list[str], timeout: float) -> dict[str, str]:
    code = ("import json, sys, uuid; from prefect.client.orchestration import get_client\n"
            "with get_client(sync_client=True) as c:\n"
            "    print(json.dumps({i: c.read_flow_run(uuid.UUID(i)).state.type.value for i in sys.argv[1:]}))")
    deadline = time.monotonic() + timeout
    while True:
        states = json.loads(_client_call(env, code.replace("sys.argv[1:]", repr(ids))))
        if all(s in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for s in states.values()):
            return states
        if time.monotonic() > deadline:
            raise RuntimeError(f"flow runs not finished after {timeout:g} s: {states}")
        time.sleep(5)


def workers_of(work: Path, ids: list[str]) -> str:
    """Which worker ran each flow run, from the workers' own logs (a worker that tried too and was told the run
    was taken logs "Aborted submission of flow run '<id>'": not it)."""
    logs = {n: (work / f"worker-{n}.log").read_text(errors="replace") for n in (1, 2)}
    found = {i: [n for n, text in logs.items() if i in text and f"Aborted submission of flow run '{i}'" not in text]
             for i in ids}
    return ", ".join(f"{i[:8]} on worker-{'/'.join(map(str, ns)) or '?'}" for i, ns in found.items())


# --- benchmarks ------------------------------------------------------------------------------------------

def rate_single(work: Path, rows: int, with_server: bool) -> Rate:
    """One flow (one process) against the local service: ephemeral Prefect, or the PostgreSQL-backed server."""
    work.mkdir(parents=True, exist_ok=True)
    started = Started()
    try:
        if with_server:
            env, service = server_stack(started, work)
        else:
            env = base_env(work)
            service = start_service(started, work, env)
        run_env = {**env, **provider_env(service), "TRACKFOUNDRY_API_KEY_SECRET_BLOCK": "",
                   "TEXTMUSIC_API_KEY": service.key, "TRACKFOUNDRY_MAX_IN_FLIGHT": "24"}
        run_env.pop("TRACKFOUNDRY_API_KEY_SECRET_BLOCK")
        brief = write_brief(work / "single.csv", rows, "r")
        since = time.time()
        run_flow(run_env, brief, work / "single", work / "flow.log")
        check_ledger(work / "single", rows)
        return measure(service.requests_log, since)
    finally:
        started.stop_all()


def instant_run(rows: int) -> None:
    """In a fresh process: one run against the instant provider; prints JSON {seconds, peak_mb}."""
    from benchmarks.pipeline import instant_provider
    from benchmarks.pipeline import write_brief as instant_brief
    from textmusic.contract import TextToMusicRequest
    from textmusic.engine import Engine

    work = Path(tempfile.mkdtemp(prefix="tf-instant-"))
    try:
        audio = work / "ten.mp3"
        rendered = Engine().render(TextToMusicRequest(prompt="calm lofi piano", seed=1, bpm=90, duration_seconds=10,
                                                      output_format="mp3"), audio)
        server, url = instant_provider(audio.read_bytes(), rendered.duration_seconds)
        os.environ.update({"TEXTMUSIC_API_URL": url, "TEXTMUSIC_API_KEY": "bench-key",
                           "TEXTMUSIC_POLL_INITIAL_SECONDS": "0.01", "TRACKFOUNDRY_REQUESTS_PER_WINDOW": "100000"})
        from flows.produce_catalog import run_catalog

        brief = work / "brief.csv"
        instant_brief(brief, rows)
        start = time.perf_counter()
        summary = run_catalog(brief, "bench", work / "catalog")
        seconds = time.perf_counter() - start
        server.shutdown()
        assert summary["ready"] == rows, summary
        print(json.dumps({"rows": rows, "seconds": seconds,
                          "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def instant(work: Path, rows: int) -> dict[str, float]:
    (work / f"instant-{rows}").mkdir(parents=True, exist_ok=True)
    env = {**base_env(work / f"instant-{rows}"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, __file__, "_instant", "--rows", str(rows)], env=env, capture_output=True,
                          text=True, timeout=7200, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"instant run of {rows} rows failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(work: Path, args: argparse.Namespace) -> None:
    every = not (args.rate or args.overhead or args.growth)
    figures: list[str] = []
    if every or args.rate:
        figures.append(rate_single(work / "ephemeral", args.rows, with_server=False).line("ephemeral, 1 flow"))
        print(figures[-1], flush=True)
        figures.append(rate_single(work / "server", args.rows, with_server=True).line("server, 1 flow"))
        print(figures[-1], flush=True)
        figures.append(demo(work / "demo", args.rows // 2, hosted=False).line("server, 2 workers"))
    if every or args.overhead or args.growth:
        runs = {n: instant(work, n) for n in args.growth_rows}
        biggest = max(runs)
        if every or args.overhead:
            r = runs[biggest]
            figures.append(f"pipeline overhead: {1000 * r['seconds'] / biggest:.0f} ms per track over {biggest} rows "
                           f"(instant provider, generation excluded, incl. Prefect start-up)")
            figures.append(f"peak memory (max RSS) of the {biggest}-row run: {r['peak_mb']:.0f} MB")
        if every or args.growth:
            xs, ys = sorted(runs), [runs[n]["seconds"] for n in sorted(runs)]
            slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
            intercept = ys[0] - slope * xs[0]
            worst = max(abs(y - (intercept + slope * x)) / y for x, y in zip(xs, ys, strict=True))
            figures.append("wall time: " + ", ".join(f"{x} rows {y:.1f} s" for x, y in zip(xs, ys, strict=True))
                           + f"; linear fit {intercept:.1f} s + {1000 * slope:.0f} ms/row "
                           f"(largest deviation {100 * worst:.0f}%)")
    print("\n== TrackFoundry scale benchmarks ==")
    print("\n".join(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo")
    d.add_argument("--rows", type=int, default=400, help="rows per catalog (two catalogs)")
    d.add_argument("--callback", action="store_true",
                   help="the provider calls back (signed) instead of being polled; the secret via the workers' env")
    b = sub.add_parser("bench")
    b.add_argument("--rate", action="store_true")
    b.add_argument("--overhead", action="store_true")
    b.add_argument("--growth", action="store_true")
    b.add_argument("--rows", type=int, default=120, help="rows of the rate runs (the two-worker run: half each)")
    b.add_argument("--growth-rows", type=lambda s: [int(x) for x in s.split(",")], default=[100, 300, 1000])
    i = sub.add_parser("_instant")
    i.add_argument("--rows", type=int, required=True)
    args = parser.parse_args()
    if args.command == "_instant":
        instant_run(args.rows)
        return
    work = Path(tempfile.mkdtemp(prefix="tf-scale-"))
    print(f"work folder (logs): {work}")
    if args.command == "demo" and args.callback:
        rate = demo(work, args.rows, callback=True)
        per_track = rate.requests / (2 * args.rows)
        ok = rate.max_window <= LIMIT and per_track <= MAX_PER_TRACK
        print(f"scale-demo --callback: {'PASS' if ok else 'FAIL'} — the shared limit "
              f"{'held' if rate.max_window <= LIMIT else 'broke'} (max {rate.max_window} in any {WINDOW:g} s window, "
              f"limit {LIMIT}) and a track cost {per_track:.2f} metered requests (at most {MAX_PER_TRACK:g})")
        share = 100 * rate.core_mean / (LIMIT / WINDOW)
        print(f"not checked with callbacks: the saturated rate at >= 90% of the limit ({share:.0f}% here)."
              f" At ~1 request a track the limit carries {60 * LIMIT / WINDOW:.0f} tracks/min; the pipeline's "
              "delivery (download, checks, mastering, tags, content credentials) takes ~0.5 s of CPU a track, so a "
              "2-core machine delivers far fewer: delivery, not the limit, bounds the rate")
        sys.exit(0 if ok else 1)
    if args.command == "demo":
        rate = demo(work, args.rows)
        ok = rate.max_window <= LIMIT and rate.core_mean >= 0.9 * LIMIT / WINDOW
        held = "held" if rate.max_window <= LIMIT else "broke"
        print(f"scale-demo: {'PASS' if ok else 'FAIL'} — the shared limit {held}"
              f" and the saturated rate reached {100 * rate.core_mean / (LIMIT / WINDOW):.0f}% of it")
        sys.exit(0 if ok else 1)
    bench(work, args)


if __name__ == "__main__":
    main()
