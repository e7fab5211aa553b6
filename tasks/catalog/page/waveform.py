"""Waveform images for the catalog page: each file's min/max envelope drawn as a small SVG.

An image is made once per file and kept under `DIR/.waveforms/<sha256>.svg`: rewriting the page of a large
catalog decodes only the files it has not seen (a re-rendered file has a new checksum, so a new image).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.catalog.atomic import write_atomically
from textmusic.audio.identity import sha256_file
from textmusic.audio.read import UnreadableAudio, read_chunks

WAVEFORM_DIR = ".waveforms"
COLUMNS = 200
HEIGHT = 48
COLOUR = "#5b6bd6"
_BLOCK = 256  # samples reduced to one min/max pair while streaming: memory stays small for long songs


def waveform_image(out_dir: Path, audio_path: str, sha256: str = "") -> str | None:
    """The image's path relative to `out_dir` (made on first use); None when the file is missing or unreadable."""
    source = out_dir / audio_path
    if not source.is_file():
        return None
    name = f"{WAVEFORM_DIR}/{sha256 or sha256_file(source)}.svg"
    if not (out_dir / name).exists():
        try:
            lows, highs = envelope(source)
        except UnreadableAudio:
            return None
        write_atomically(out_dir / name, svg(lows, highs))
    return name


def envelope(path: Path, columns: int = COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest sample (mono mix, -1..1) in each of `columns` equal slices of the file's time."""
    lows, highs, sizes = [], [], []
    for block in read_chunks(path):  # streamed: never the whole song in memory
        chunk = block.mean(axis=1)
        whole = len(chunk) // _BLOCK * _BLOCK
        for part in (chunk[:whole].reshape(-1, _BLOCK), chunk[whole:].reshape(1, -1)):
            if part.size:
                lows.append(part.min(axis=1))
                highs.append(part.max(axis=1))
                sizes.append(np.full(len(part), part.shape[1]))
    if not sizes:
        return np.zeros(columns), np.zeros(columns)
    size = np.concatenate(sizes)
    centre = np.cumsum(size) - size / 2
    column = np.minimum((centre / size.sum() * columns).astype(int), columns - 1)
    low, high = np.full(columns, np.inf), np.full(columns, -np.inf)
    np.minimum.at(low, column, np.concatenate(lows))
    np.maximum.at(high, column, np.concatenate(highs))
    empty = np.isinf(low)  # a file shorter than the columns: nothing falls in some of them
    low[empty], high[empty] = 0.0, 0.0
    return np.clip(low, -1, 1), np.clip(high, -1, 1)


def svg(lows: np.ndarray, highs: np.ndarray) -> str:
    """A filled outline, top edge left to right then bottom edge back (at least a hairline where silent)."""
    middle = HEIGHT / 2
    top = [f"{x} {min(middle - 0.5, middle - h * middle):.1f}" for x, h in enumerate(highs)]
    bottom = [f"{x} {max(middle + 0.5, middle - low * middle):.1f}" for x, low in reversed(list(enumerate(lows)))]
    outline = "M" + "L".join(top + bottom) + "Z"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {len(highs) - 1} {HEIGHT}" '
            f'preserveAspectRatio="none"><path fill="{COLOUR}" d="{outline}"/></svg>\n')
