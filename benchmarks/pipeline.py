"""Pipeline benchmarks (a script, not a test): prints figures measured in one run.

1. validation time for 100,000 brief rows (CSV load + Great Expectations suite + contract rules);
2. pipeline overhead per track, generation excluded: a 500-row brief of 10-second tracks through the real
   flow against an instant provider (a loopback double of the hosted API that answers every track ready at
   once with a pre-rendered 10 s MP3), so what is timed is validation, planning, metering, submit, poll,
   download, verification, tagging, journaling and the ledger;
3. peak memory (max RSS) of the process.

Usage: .venv/bin/python benchmarks/pipeline.py [--rows 500] [--validate-rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_brief(path: Path, rows: int) -> None:
    import pandas as pd

    formats = ["mp3", "wav", "flac", "ogg", "m4a"]
    pd.DataFrame({
        "track_id": [f"t{i:06d}" for i in range(rows)],
        "name": [f"Track {i}" for i in range(rows)],
        "prompt": ["calm lofi piano"] * rows,
        "tags": ["lofi|chill"] * rows,
        "seed": [str(i) for i in range(rows)],
        "output_format": [formats[i % 5] if rows > 1000 else "mp3" for i in range(rows)],
        "bpm": ["90"] * rows,
        "duration_seconds": ["10"] * rows,
    }).to_csv(path, index=False)


def instant_provider(audio: bytes, seconds: float) -> tuple[ThreadingHTTPServer, str]:
    counter = {"n": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _json(self, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _track(self, track_id: str) -> dict[str, object]:
            host = self.headers["Host"]
            return {"id": track_id, "status": "ready", "duration_seconds": seconds, "bpm": 90,
                    "audio_url": f"http://{host}/files/{track_id}.mp3"}

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                counter["n"] += 1
                track_id = f"g{counter['n']}"
            self._json({"success": True, "tracks": [self._track(track_id)]})

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/files/"):
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Content-Length", str(len(audio)))
                self.end_headers()
                self.wfile.write(audio)
            else:
                self._json(self._track(self.path.rsplit("/", 1)[-1]))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--validate-rows", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tf-bench-"))
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))

    from tasks.intake.brief import load_brief
    from tasks.intake.validate import validate_brief

    big = work / "big.csv"
    write_brief(big, args.validate_rows)
    validate_brief(load_brief(big).head(10))  # warm the imports
    start = time.perf_counter()
    validation = validate_brief(load_brief(big))
    validate_seconds = time.perf_counter() - start
    assert len(validation.rows) == args.validate_rows

    # The audio every instant track returns: a real 10-second MP3 from the offline engine.
    from textmusic.contract import TextToMusicRequest
    from textmusic.engine import Engine

    audio_path = work / "ten.mp3"
    rendered = Engine().render(TextToMusicRequest(prompt="calm lofi piano", seed=1, bpm=90, duration_seconds=10,
                                                  output_format="mp3"), audio_path)
    server, url = instant_provider(audio_path.read_bytes(), rendered.duration_seconds)
    os.environ.update({"TEXTMUSIC_API_URL": url, "TEXTMUSIC_API_KEY": "bench-key",
                       "TEXTMUSIC_POLL_INITIAL_SECONDS": "0.01",
                       "TRACKFOUNDRY_REQUESTS_PER_WINDOW": "100000"})
    from flows.produce_catalog import run_catalog

    brief = work / "brief.csv"
    write_brief(brief, args.rows)
    start = time.perf_counter()
    summary = run_catalog(brief, "bench", work / "catalog")
    run_seconds = time.perf_counter() - start
    server.shutdown()
    assert summary["ready"] == args.rows, summary
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"validation: {args.validate_rows:,} rows in {validate_seconds:.2f} s "
          f"({args.validate_rows / validate_seconds:,.0f} rows/s)")
    print(f"pipeline: {args.rows} rows of 10 s tracks in {run_seconds:.1f} s wall (incl. Prefect start-up) "
          f"= {1000 * run_seconds / args.rows:.0f} ms overhead per track, generation excluded")
    print(f"peak memory (max RSS of this process): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
