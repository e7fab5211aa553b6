"""Which provider a run talks to: the configured API, or the embedded local service as a process.

The embedded default starts `textmusic serve` on a free loopback port with a fresh key and talks to it
over HTTP through the same client as any provider; the pipeline never imports the server's code.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from textmusic.settings import TextMusicSettings

from .generate import Provider
from .settings import PipelineSettings

LOCAL_PROVIDER = "textmusic-local"


class ProviderError(Exception):
    pass


@dataclass(frozen=True)
class Connection:
    provider: Provider
    api_key: SecretStr

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


@contextlib.contextmanager
def local_service(settings: PipelineSettings, log_path: Path | None = None) -> Iterator[Connection]:
    """Run the local service for the duration of the block; it is stopped (SIGTERM, then kill) after."""
    with contextlib.ExitStack() as stack:
        if settings.embedded_data_dir is not None:
            data_dir = settings.embedded_data_dir
            data_dir.mkdir(parents=True, exist_ok=True)
        else:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="textmusic-")))
        key = create_local_key(data_dir, settings.embedded_balance_usd)
        port = _free_port()
        args = ["serve", "--data", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
        if settings.embedded_workers:
            args += ["--workers", str(settings.embedded_workers)]
        log = stack.enter_context(open(log_path or data_dir / "service.log", "ab"))
        process = subprocess.Popen(_textmusic(*args), stdout=log, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_healthy(process, base_url, settings.embedded_startup_seconds)
            yield Connection(Provider(LOCAL_PROVIDER, base_url, local_extensions=True), key)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def open_provider(settings: PipelineSettings, api: TextMusicSettings) -> Iterator[Connection]:
    """The configured provider (TEXTMUSIC_API_URL and TEXTMUSIC_API_KEY), else the embedded service."""
    if api.api_url:
        if api.api_key is None:
            raise ProviderError("TEXTMUSIC_API_URL is set but TEXTMUSIC_API_KEY is not")
        host = httpx.URL(api.api_url).host or api.api_url
        yield Connection(Provider(host, api.api_url, local_extensions=False), api.api_key)
        return
    with local_service(settings) as connection:
        yield connection
