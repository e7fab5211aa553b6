"""Which provider a run talks to: the configured API, or the embedded local service as a process.

The embedded default starts `textmusic serve` on a free loopback port and talks to it over HTTP through
the same client as any provider; the pipeline never imports the server's code. Its state folder (one per
catalog folder, under TRACKFOUNDRY_STATE_DIR) keeps the service's database and the key made for it on
first use, so a run that was killed resumes the tracks it had already paid for; the catalog folder itself
never holds the key. The service dies with the run (Linux
parent-death signal), so a killed run leaves no service behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from pydantic import SecretStr

from tasks.intake.routes import DEFAULT_ROUTE, Routes, key_env
from tasks.interrupt import die_with_parent
from tasks.provider.preflight import PreflightError, check_key, resolve_profile
from tasks.run import Provider
from tasks.settings import PipelineSettings
from textmusic.client import TextMusicClient
from textmusic.contract import CAPACITY_HEADER
from textmusic.providers import LOCAL_PROFILE, Profile, load_profile
from textmusic.settings import TextMusicSettings

KEY_FILE = "embedded.key"


class ProviderError(Exception):
    pass


@dataclass(frozen=True)
class Connection:
    provider: Provider
    api_key: SecretStr
    profile: Profile
    # The most rows the provider should hold at once (the embedded engine's own bound); None: the profile's.
    max_in_flight: int | None = None

    def __repr__(self) -> str:
        return f"Connection({self.provider!r})"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _textmusic(*args: str) -> list[str]:
    return [sys.executable, "-m", "textmusic", *args]


def create_local_key(data_dir: Path, balance_usd: float) -> SecretStr:
    done = subprocess.run(
        _textmusic("keys", "create", "--data", str(data_dir), "--balance-usd", f"{balance_usd:.2f}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ProviderError(f"could not create a key for the local service: {done.stderr.strip()[-500:]}")
    return SecretStr(lines[-1].strip())


def embedded_data_dir(settings: PipelineSettings, out_dir: Path) -> Path:
    """The embedded service's state folder for a catalog folder (stable for the same absolute path)."""
    if settings.embedded_data_dir is not None:
        return settings.embedded_data_dir
    digest = hashlib.sha256(str(out_dir.resolve()).encode()).hexdigest()[:16]
    return settings.state_dir / "embedded" / f"{out_dir.resolve().name}-{digest}"


def embedded_key(data_dir: Path, balance_usd: float) -> SecretStr:
    """The embedded service's key: made once per state folder, kept beside its database (mode 0600)."""
    path = data_dir / KEY_FILE
    if path.exists():
        return SecretStr(path.read_text(encoding="utf-8").strip())
    key = create_local_key(data_dir, balance_usd)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key.get_secret_value())
    return key


def service_capacity(base_url: str) -> int | None:
    """How many tracks a TrackFoundry local service wants in flight (renders queue behind its workers, so
    more would only wait, and may time out); None when it does not say."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        value = httpx.get(f"{base_url.rstrip('/')}/healthz", timeout=5).headers.get(CAPACITY_HEADER)
        return int(value) if value else None
    return None


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ProviderError(f"the local service exited at start-up with code {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise ProviderError(f"the local service did not answer within {deadline_seconds:g} s")


class _Supervised:
    """The embedded service, started again on the same port and data folder if it dies mid-run (it resumes
    its pending tracks from its database); the run meanwhile waits it out as it would a hosted outage."""

    MAX_RESTARTS = 5

    def __init__(self, command: list[str], log: IO[bytes]) -> None:
        self._command, self._log = command, log
        self._stopping = threading.Event()
        self.restarts = 0
        self.process = self._start()
        self._watch = threading.Thread(target=self._watch_loop, name="embedded-service-watch", daemon=True)
        self._watch.start()

    def _start(self) -> subprocess.Popen[bytes]:
        # Its own session: the terminal's Ctrl-C (sent to the run's group) must not end it before the run
        # wrote its ledger; it still dies with the run (parent-death signal), even on kill -9.
        return subprocess.Popen(self._command, stdout=self._log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent())

    def _watch_loop(self) -> None:
        while not self._stopping.wait(1.0):
            if self.process.poll() is not None and self.restarts < self.MAX_RESTARTS:
                self.restarts += 1
                self._log.write(f"trackfoundry: the service exited with {self.process.returncode}; "
                                f"restart {self.restarts}\n".encode())
                self._log.flush()
                self.process = self._start()

    def stop(self) -> None:
        self._stopping.set()
        self._watch.join(timeout=5)
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def local_service(settings: PipelineSettings, data_dir: Path) -> Iterator[Connection]:
    """Run the local service for the duration of the block (restarted if it dies); stopped (SIGTERM, then
    kill) after."""
    with contextlib.ExitStack() as stack:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = embedded_key(data_dir, settings.embedded_balance_usd)
        port = _free_port()
        args = ["serve", "--data", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
        if settings.embedded_workers:
            args += ["--workers", str(settings.embedded_workers)]
        if settings.embedded_latency:
            args += ["--latency", settings.embedded_latency]
        if settings.embedded_synthetic_audio:
            args += ["--synthetic-audio"]
        log = stack.enter_context(open(data_dir / "service.log", "ab"))
        service = _Supervised(_textmusic(*args), log)
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_healthy(service.process, base_url, settings.embedded_startup_seconds)
            profile = load_profile(LOCAL_PROFILE).model_copy(update={"base_url": base_url})
            yield Connection(Provider.of(profile), key, profile, service_capacity(base_url))
        finally:
            service.stop()


@contextlib.contextmanager
def open_provider(settings: PipelineSettings, api: TextMusicSettings, out_dir: Path) -> Iterator[Connection]:
    """The configured provider (its profile, TEXTMUSIC_API_URL, and TEXTMUSIC_API_KEY or a Prefect Secret
    block), else the embedded service with its state under TRACKFOUNDRY_STATE_DIR."""
    profile, embedded = resolve_profile(settings, api)
    if embedded:
        with local_service(settings, embedded_data_dir(settings, out_dir)) as connection:
            yield connection
        return
    key = api.api_key
    if key is None and settings.api_key_secret_block:
        from prefect.blocks.system import Secret

        key = SecretStr(str(Secret.load(settings.api_key_secret_block).get()))
    if key is None:
        raise ProviderError(f"provider {profile.name} ({profile.base_url}) needs a key: set TEXTMUSIC_API_KEY "
                            "or TRACKFOUNDRY_API_KEY_SECRET_BLOCK")
    host = httpx.URL(profile.base_url).host or profile.base_url
    capacity = service_capacity(profile.base_url) if profile.name == LOCAL_PROFILE else None
    yield Connection(Provider.of(profile, name=host), key, profile, capacity)


@contextlib.contextmanager
def open_route(routes: Routes, route: str, settings: PipelineSettings, api: TextMusicSettings,
               out_dir: Path) -> Iterator[Connection]:
    """The provider of a route: the run's own (`open_provider`), else the profile the rows name, reached at its
    own base URL with its own key (`TEXTMUSIC_API_KEY_<NAME>`, checked first), or the embedded service for the
    local profile."""
    if route == DEFAULT_ROUTE:
        with open_provider(settings, api, out_dir) as connection:
            yield connection
        return
    profile = routes.profile(route)
    if profile.name == LOCAL_PROFILE:
        with local_service(settings, embedded_data_dir(settings, out_dir)) as connection:
            yield connection
        return
    key = SecretStr(os.environ.get(key_env(route), ""))
    try:  # a routed key refused would stop the run mid-way: checked before anything is paid, for free
        check_key(profile, key, api)
    except PreflightError as exc:
        raise ProviderError(str(exc)) from None
    # Recorded by its host, as the run's own provider is: one provider is one provider, however it is reached
    # (a row moved from the run's own to a routed profile of the same host is not paid again).
    yield Connection(Provider.of(profile, name=httpx.URL(profile.base_url).host or profile.base_url), key, profile)


def metered_by(settings: PipelineSettings, connection: Connection, route: str = DEFAULT_ROUTE) -> PipelineSettings:
    """The settings with the provider profile's rate limit (for the run's own provider: unless the user set one):
    every flow that sends requests meters them by it, a run and a re-render alike. A routed provider has a limit
    of its own, shared by every row that goes to it, and its profile's rows in flight."""
    limit = connection.profile.rate_limit
    if route == DEFAULT_ROUTE:
        return settings.for_provider(limit.requests, limit.window_seconds)
    return settings.model_copy(update={
        "rate_limit_name": f"{settings.rate_limit_name}-{re.sub(r'[^A-Za-z0-9_-]', '-', route)}",
        "requests_per_window": limit.requests, "window_seconds": limit.window_seconds, "max_in_flight": None})


def connect(connection: Connection, api: TextMusicSettings, throttle: Callable[[], None]) -> TextMusicClient:
    """One client for a run: its connections are shared by all generation tasks."""
    return TextMusicClient(connection.provider.base_url, connection.api_key, profile=connection.profile,
                           settings=api, throttle=throttle)
