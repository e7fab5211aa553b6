"""Catalog page benchmark (a script, not a test): prints figures measured in one run.

Builds a catalog of --rows tracks (default 1,000) through the real flow against the local service in
synthetic-audio mode (10 s tracks, the five formats in turn, own temp data folder and key, a rate limit
high enough not to be what is measured), then measures:

1. page size: bytes of index.html, and in total with the waveform images;
2. render time, cold (every waveform decoded and drawn) and warm (all from the cache);
3. load time in headless Chromium over loopback HTTP (navigation start to DOMContentLoaded and to load);
4. time for a search and for a filter to apply, and for a sort (in the page, through to layout).

Usage: .venv/bin/python benchmarks/page.py [--rows 1000] [--catalog DIR]   (--catalog: reuse a folder
already built by an earlier run of this script; its waveform cache is cleared first so cold means cold)
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.catalog.page import write_page  # noqa: E402 - after sys.path is set
from tasks.catalog.page.waveform import WAVEFORM_DIR  # noqa: E402
from textmusic.testing.browser import chromium, serving  # noqa: E402

FORMATS = ("mp3", "flac", "ogg", "m4a", "wav")
GENRES = ("lofi|chill", "house|electronic", "ambient|calm", "folk|acoustic", "jazz|trio", "rock|anthem")


def write_brief(path: Path, rows: int) -> None:
    pd.DataFrame({
        "track_id": [f"p{i:05d}" for i in range(rows)],
        "name": [f"Track {i}" for i in range(rows)],
        "prompt": [f"{GENRES[i % 6].split('|')[0]} piece number {i} with a gentle lead" for i in range(rows)],
        "tags": [GENRES[i % 6] for i in range(rows)],
        "seed": list(range(rows)),
        "output_format": [FORMATS[i % 5] for i in range(rows)],
        "bpm": [str(60 + i % 120) for i in range(rows)],
        "duration_seconds": ["10"] * rows,
    }).to_csv(path, index=False)


def start_service(work: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    data = work / "service"
    made = subprocess.run([sys.executable, "-m", "textmusic", "keys", "create", "--data", str(data),
                           "--balance-usd", "1000"], cwd=ROOT, capture_output=True, text=True, check=True)
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    log = open(work / "service.log", "wb")  # noqa: SIM115 - the service writes to it until it stops
    process = subprocess.Popen([sys.executable, "-m", "textmusic", "serve", "--data", str(data), "--port", str(port),
                                "--synthetic-audio", "--latency", "0", "--rate-limit", "100000/10s"],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url, key
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the service did not start; see {work / 'service.log'}")
        time.sleep(0.2)


def free_port() -> int:
    """A free loopback port (closed again before the service binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_catalog(work: Path, rows: int) -> Path:
    """The real flow, `trackfoundry run`, against the synthetic-audio service."""
    write_brief(work / "brief.csv", rows)
    process, url, key = start_service(work)
    env = {**os.environ, "TEXTMUSIC_API_URL": url, "TEXTMUSIC_API_KEY": key,
           "TRACKFOUNDRY_PROVIDER": "textmusic-local", "TRACKFOUNDRY_REQUESTS_PER_WINDOW": "100000"}
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "flows", "run", str(work / "brief.csv"), "--catalog", "bench",
                               "--out", str(work / "catalog")], cwd=ROOT, env=env, capture_output=True, text=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    print(f"catalog: {rows} tracks through the real flow (synthetic audio) in {time.monotonic() - started:.0f} s")
    return work / "catalog"


def timed(action) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure_render(catalog: Path) -> None:
    shutil.rmtree(catalog / WAVEFORM_DIR, ignore_errors=True)
    cold = timed(lambda: write_page(catalog))
    warm = min(timed(lambda: write_page(catalog)) for _ in range(3))
    page = (catalog / "index.html").stat().st_size
    images = list((catalog / WAVEFORM_DIR).glob("*.svg"))
    pictures = sum(p.stat().st_size for p in images)
    print(f"render: cold {cold:.2f} s ({len(images)} waveforms decoded and drawn), warm {warm:.3f} s (best of 3)")
    print(f"size: index.html {page / 1e6:.2f} MB; waveforms {len(images)} files, {pictures / 1e6:.2f} MB; "
          f"total {(page + pictures) / 1e6:.2f} MB")


# In-page timings: the change, then a forced layout (what the user waits for before seeing the cards).
SEARCH = """const box = document.getElementById('search'); const t = performance.now();
box.value = arguments[0]; box.dispatchEvent(new Event('input', {bubbles: true})); document.body.offsetHeight;
return [performance.now() - t, document.querySelectorAll('article.card:not([hidden])').length];"""
FILTER = """const select = document.getElementById('filter-genre'); const t = performance.now();
select.value = arguments[0]; select.dispatchEvent(new Event('change', {bubbles: true})); document.body.offsetHeight;
return [performance.now() - t, document.querySelectorAll('article.card:not([hidden])').length];"""
SORT = """const select = document.getElementById('sort'); const t = performance.now();
select.value = arguments[0]; select.dispatchEvent(new Event('change', {bubbles: true})); document.body.offsetHeight;
return [performance.now() - t, document.querySelector('article.card').dataset.trackId];"""


def measure_browser(catalog: Path) -> None:
    with chromium() as driver, serving(catalog) as url:
        loads = []
        for _ in range(3):
            driver.get(url + "index.html")
            loads.append(driver.execute_script(
                "const t = performance.timing; return [t.domContentLoadedEventEnd - t.navigationStart, "
                "t.loadEventEnd - t.navigationStart, document.querySelectorAll('article.card').length]"))
        dom, load, cards = min(loads)
        print(f"browser: {cards} cards; DOMContentLoaded {dom} ms, load {load} ms (best of 3, loopback HTTP)")
        search = driver.execute_script(SEARCH, "jazz")
        driver.execute_script(SEARCH, "")
        genre = driver.execute_script(FILTER, "house")
        driver.execute_script(FILTER, "")
        sort = driver.execute_script(SORT, "-bpm")
        print(f"search 'jazz': {search[0]:.1f} ms ({search[1]} cards shown); genre filter 'house': "
              f"{genre[0]:.1f} ms ({genre[1]} shown); sort by BPM: {sort[0]:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--catalog", type=Path, help="reuse this catalog folder instead of building one")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="page-bench-"))
    catalog = args.catalog or build_catalog(work, args.rows)
    measure_render(catalog)
    measure_browser(catalog)
    if not args.catalog:
        print(f"(catalog kept in {catalog}: pass --catalog {catalog} to measure again without building it)")


if __name__ == "__main__":
    main()
