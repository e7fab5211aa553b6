"""Test-wide setup: Prefect gets a throwaway home before anything imports it; tests find `tests.*` helpers."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("TRACKFOUNDRY_STATE_DIR", tempfile.mkdtemp(prefix="trackfoundry-state-"))
for name in ("TEXTMUSIC_API_URL", "TEXTMUSIC_API_KEY", "TEXTMUSIC_FAULTS"):
    os.environ.pop(name, None)

from tests.support.figures import FIGURES  # noqa: E402 - after sys.path is set


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's reporter
    """Figures the reliability tests measured (rows, faults, kills, charges, cents), printed at the very end."""
    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ANN001 - pytest's hook arguments
    """Stop Prefect's ephemeral server while output is still open (its atexit stop logs to a closed stream)."""
    server_module = sys.modules.get("prefect.server.api.server")
    if server_module is not None:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)  # send what is queued before the server goes
        EventsWorker.drain_all(timeout=10)
        for server in list(server_module.SubprocessASGIServer._instances.values()):
            server.stop()
for name in ("TEXTMUSIC_LATENCY", "TEXTMUSIC_LATENCY_SEED", "TEXTMUSIC_SYNTHETIC_AUDIO", "TRACKFOUNDRY_PROVIDER"):
    os.environ.pop(name, None)
