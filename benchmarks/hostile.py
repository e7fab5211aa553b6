"""What hostile answers cost a run (a script, not a test): prints figures measured in one run.

Each case runs two rows through the run's generation machinery (tasks/generation/machinery.py) against the hostile
stand-in (textmusic/testing/hostile.py) on loopback, with the default limits, and prints how the rows ended, the run's
time, the peak size of the catalog's `.partial/` folder and the process's RSS growth (sampled every 20 ms):
1. a gzip bomb: a 2 MB body that decodes to 2 GiB of zeros (Content-Encoding: gzip), as a WAV;
2. a declared Content-Length of 5 GiB (counts the GETs: a limit breach is not retried);
3. an endless MP3 stream;
4. a 200 MB status answer;
5. a status answer nested 100,000 deep.

Usage: .venv/bin/python benchmarks/hostile.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.catalog.ledger import LedgerRecord  # noqa: E402 - after sys.path is set
from tasks.generation.machinery import Generation  # noqa: E402
from tasks.intake.plan import PlannedRow, plan_rows  # noqa: E402
from tasks.intake.validate import BriefRow  # noqa: E402
from tasks.run import CatalogInfo, Provider, RunOptions  # noqa: E402
from tasks.settings import PipelineSettings  # noqa: E402
from textmusic.client import TextMusicClient  # noqa: E402
from textmusic.contract import TextToMusicRequest  # noqa: E402
from textmusic.testing.hostile import Hostile, Play, Reply, Song, client_for  # noqa: E402

CATALOG = CatalogInfo(name="demo", artist="TF", date="2026-11-23")
# Quick outage probes and loss confirmation (the reliability tests' own), so every case ends in seconds.
SETTINGS = PipelineSettings(outage_probe_seconds=0.2, outage_budget_seconds=2.0, initial_in_flight=8,
                            lost_confirm_polls=3, lost_confirm_seconds=0.6)


def planned(fmt: str, *prompts: str) -> list[PlannedRow]:
    """The rows a brief of these prompts plans to (seeds 1, 2, ...), asking for `fmt`."""
    briefs = [BriefRow(i + 1, f"t{i + 1}", f"Song {i + 1}", TextToMusicRequest(prompt=p, seed=i + 1, output_format=fmt))
              for i, p in enumerate(prompts)]
    return plan_rows(briefs, CATALOG.name, "hostile", False)


def run(rows: list[PlannedRow], client: TextMusicClient, out: Path) -> list[LedgerRecord]:
    """The rows through the run's generation machinery, as `trackfoundry run` drives it; its own few lines
    rather than the tests' helper, so that a benchmark imports no test code."""
    provider = Provider.of(client.profile, base_url=client.base_url)
    with Generation(client, out, CATALOG, provider, client.profile, SETTINGS, RunOptions(), lambda records: None,
                    SETTINGS.duration_tolerance_seconds) as generation:
        return generation.run(rows, {})


def _bomb() -> bytes:
    """2 GiB of zeros, gzipped in 64 MiB steps (about 2 MB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (64 << 20)
    return b"".join(packer.compress(block) for _ in range(32)) + packer.flush()


class GzipBomb(Play):
    ready_after = 0.0

    def __init__(self) -> None:
        self.body = _bomb()

    def audio(self, api: Hostile, song: Song) -> Reply:
        return Reply(200, raw=self.body, headers={"Content-Encoding": "gzip"}, media_type="audio/wav")


class HugeLength(Play):
    ready_after = 0.0

    def audio(self, api: Hostile, song: Song) -> Reply:
        def little() -> Iterator[bytes]:
            yield b"RIFF"
            time.sleep(2)

        return Reply(200, chunks=little, headers={"Content-Length": str(5 << 30)}, media_type="audio/wav")


class Endless(Play):
    ready_after = 0.0

    def audio(self, api: Hostile, song: Song) -> Reply:
        def forever() -> Iterator[bytes]:
            while True:
                yield b"\xff" * 65536

        return Reply(200, chunks=forever, media_type="audio/mpeg")


class HugeStatus(Play):
    """200 MB streamed in 1 MB pieces (the stand-in shares this process: it must not hold them all)."""

    ready_after = 1e9

    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        def pieces() -> Iterator[bytes]:
            yield b'{"id": "x", "pad": "'
            for _ in range(200):
                yield b"a" * (1 << 20)
            yield b'"}'

        return Reply(200, chunks=pieces)


class DeepStatus(Play):
    ready_after = 1e9

    def status(self, api: Hostile, track_id: str, auth: str) -> Reply:
        return Reply(200, raw=b"[" * 100_000 + b"]" * 100_000)


def measure(name: str, play: Play, fmt: str = "wav", deadline: float = 6.0) -> None:
    process = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp, Hostile(play) as api:
        out, rows = Path(tmp), planned(fmt, "calm a", "calm b")
        base, peak_rss, peak_partial, done = process.memory_info().rss, [0], [0], threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak_rss[0] = max(peak_rss[0], process.memory_info().rss)
                sizes = [p.stat().st_size for p in (out / ".partial").glob("*") if p.is_file()]
                peak_partial[0] = max(peak_partial[0], sum(sizes))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        records = run(rows, client_for(api, poll_deadline_seconds=deadline), out)
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()
        audio_gets = sum(1 for m, p, _ in api.requests if m == "GET" and p.startswith("/audio/"))
        left = sum(p.stat().st_size for p in (out / ".partial").glob("*") if p.is_file())
    print(f"{name}: {elapsed:.1f} s; rows {', '.join(sorted(r.status + '/' + r.resume for r in records))}; "
          f"audio GETs {audio_gets}; peak .partial {peak_partial[0] / 1e6:.1f} MB (left after: {left} B); "
          f"RSS +{max(0, peak_rss[0] - base) / 1e6:.0f} MB (peak {peak_rss[0] / 1e6:.0f} MB)")
    print(f"   first error: {records[0].error[:160]}")


def main() -> None:
    measure("gzip bomb 2 MB -> 2 GiB (wav)", GzipBomb())
    measure("Content-Length 5 GiB (wav)", HugeLength())
    measure("endless stream (mp3)", Endless(), "mp3")
    measure("200 MB status answer", HugeStatus(), deadline=3.0)
    measure("status nested 100,000 deep", DeepStatus(), deadline=3.0)


if __name__ == "__main__":
    main()
