"""Load figures for the local Text-to-Music service on loopback (a script, not a test).

Starts `python -m textmusic serve` on a fresh data folder, then N concurrent httpx clients each loop:
submit one 10 s track, poll its status K times. Prints requests per second (submits + polls), status-poll
latency percentiles, and the service's peak RSS (the server process alone, and with its render workers).
The render workers run during the measurement, as they would in use, and compete for the same CPUs.

    .venv/bin/python benchmarks/service.py [--clients 50] [--seconds 15] [--polls 10] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
SUBMIT = "/api/v1/text-to-music"
STATUS = "/api/v1/text-to-music/{id}"


@dataclass
class Tally:
    submits: int = 0
    polls: int = 0
    errors: dict[int | str, int] = field(default_factory=dict)
    poll_latencies: list[float] = field(default_factory=list)


class RssSampler(threading.Thread):
    """Peak resident memory of the server process, and of the server plus its worker processes."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak_server = 0
        self.peak_total = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                server = self.proc.memory_info().rss
                total = server
                for child in self.proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        total += child.memory_info().rss
            except psutil.Error:
                return
            self.peak_server = max(self.peak_server, server)
            self.peak_total = max(self.peak_total, total)
            self.stop_event.wait(self.interval)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _textmusic(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "textmusic", *args], cwd=ROOT, check=True, text=True,
                          capture_output=True, **kwargs)  # type: ignore[call-overload]


async def _client(http: httpx.AsyncClient, key: str, until: float, polls: int, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"prompt": "a calm piano piece", "duration_seconds": 10}
    while time.perf_counter() < until:
        resp = await http.post(SUBMIT, json=body, headers=headers)
        tally.submits += 1
        if resp.status_code != 200:
            tally.errors[resp.status_code] = tally.errors.get(resp.status_code, 0) + 1
            continue
        track_id = resp.json()["tracks"][0]["id"]
        for _ in range(polls):
            if time.perf_counter() >= until:
                return
            started = time.perf_counter()
            resp = await http.get(STATUS.format(id=track_id), headers=headers)
            tally.poll_latencies.append(time.perf_counter() - started)
            tally.polls += 1
            if resp.status_code != 200:
                tally.errors[resp.status_code] = tally.errors.get(resp.status_code, 0) + 1


async def _load(base: str, key: str, clients: int, seconds: float, polls: int) -> tuple[Tally, float]:
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(_client(http, key, until, polls, tally) for _ in range(clients)))
        return tally, time.perf_counter() - started


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--polls", type=int, default=10, help="status polls per submission")
    parser.add_argument("--workers", type=int, default=None, help="render processes (default: the service's)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tm-bench-") as tmp:
        data = Path(tmp)
        key = _textmusic("keys", "create", "--data", str(data), "--balance-usd", "1000000", timeout=60)
        key = key.stdout.strip().splitlines()[-1]
        port = _free_port()
        cmd = [sys.executable, "-m", "textmusic", "serve", "--data", str(data), "--port", str(port),
               "--rate-limit", "10000000/1s"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        log = (data / "server.log").open("wb")
        server = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit(f"the service did not start:\n{(data / 'server.log').read_text()}")
                time.sleep(0.1)
            time.sleep(2.0)  # let the workers load their soundfont before measuring
            sampler = RssSampler(server.pid)
            sampler.start()
            me, srv = psutil.Process(), psutil.Process(server.pid)
            cpu_client, cpu_server = sum(me.cpu_times()[:2]), sum(srv.cpu_times()[:2])
            tally, elapsed = asyncio.run(_load(base, key, args.clients, args.seconds, args.polls))
            cpu_client, cpu_server = sum(me.cpu_times()[:2]) - cpu_client, sum(srv.cpu_times()[:2]) - cpu_server
            sampler.stop_event.set()
            sampler.join()
        finally:
            os.killpg(server.pid, signal.SIGKILL)  # the render queue is long; nothing here is worth keeping
            server.wait(10)
            log.close()

    total = tally.submits + tally.polls
    lat_ms = [x * 1000 for x in tally.poll_latencies]
    print(f"clients {args.clients}, {elapsed:.1f} s, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"requests/s (submit + poll): {total / elapsed:8.1f}   ({tally.submits} submits, {tally.polls} polls)")
    print(f"submits/s:                  {tally.submits / elapsed:8.1f}")
    print(f"polls/s:                    {tally.polls / elapsed:8.1f}")
    print(f"status poll latency ms:     p50 {_pct(lat_ms, 50):.1f}   p95 {_pct(lat_ms, 95):.1f}   "
          f"p99 {_pct(lat_ms, 99):.1f}   max {max(lat_ms, default=float('nan')):.1f}")
    print(f"peak RSS: server {sampler.peak_server / 2**20:.0f} MiB, "
          f"server + render workers {sampler.peak_total / 2**20:.0f} MiB")
    print(f"CPU seconds: server process {cpu_server:.1f} ({1000 * cpu_server / max(total, 1):.2f} ms per request), "
          f"load generator {cpu_client:.1f}; load average {os.getloadavg()[0]:.2f}")
    print(f"non-200 answers: {tally.errors or 'none'}")


if __name__ == "__main__":
    main()
