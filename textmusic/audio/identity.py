"""Whether two catalog files are the same: by their bytes (a file's SHA-256, what the ledger records) or by
their decoded samples (a re-render of a lossless file in another container, or a lossy file re-encoded alike).

Here rather than in delivery: the catalog page (a waveform image is kept under the file's checksum) and
re-render sit below delivery in the pipeline's layers and need the same answers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from textmusic.audio.read import read_audio


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def same_audio(a: Path, b: Path) -> bool:
    """Sample for sample the same decoded audio (float32 holds 16- and 24-bit samples exactly)."""
    first, second = read_audio(a, "float32")[0], read_audio(b, "float32")[0]
    return first.shape == second.shape and bool(np.array_equal(first, second))
