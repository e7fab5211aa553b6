"""Delivery QC: what a decoded file measures (loudness, true peak, range, silence, clipping, DC), the targets a
master must meet, the reasons a file misses them, and `qc.csv`.

Everything is measured on the decoded file, after encoding, because that is what a library ingests: a lossy
encoder moves peaks (and, a little, loudness) after the master was levelled. The reader and the meters are the
audio core's (`textmusic.audio`): a delivery master is measured as the engine measures its own.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.catalog.ledger import LedgerRecord, spreadsheet_safe
from tasks.settings import MasterSpec
from textmusic.audio.loudness import integrated_loudness, loudness_range
from textmusic.audio.peaks import true_peak_dbtp
from textmusic.audio.read import bit_depth, read_audio

QC_CSV = "qc.csv"
SILENCE_DBFS = -60.0  # head/tail silence: samples below this level
# A full-scale sample is a legitimate peak; a run of at least this many in a row is a flat top: clipping.
CLIP_RUN = 2
CLIP_LEVEL = 32766 / 32768  # within one 16-bit step of full scale (decoded lossy audio may exceed 1.0)
LOUDNESS_MIN_SECONDS = 0.4  # one BS.1770 gating block: shorter files have no integrated loudness


@dataclass(frozen=True)
class QcFigures:
    """Measurements of one decoded file. Loudness figures are None where BS.1770 gives none (silence, or
    shorter than its window); `dc_offset` is the mean per channel."""

    loudness_lufs: float | None
    true_peak_dbtp: float | None
    lra_lu: float | None
    head_silence_s: float
    tail_silence_s: float
    clipped_samples: int
    clipped_runs: int
    dc_offset: tuple[float, ...]
    sample_rate: int
    bit_depth: int | None
    channels: int
    duration_s: float


def _silence(data: np.ndarray, rate: int) -> tuple[float, float]:
    """Seconds before the first and after the last sample above -60 dBFS (all of it if none is)."""
    loud = np.flatnonzero(np.abs(data).max(axis=1) > 10 ** (SILENCE_DBFS / 20))
    if len(loud) == 0:
        return len(data) / rate, len(data) / rate
    return loud[0] / rate, (len(data) - 1 - loud[-1]) / rate


def _clipping(data: np.ndarray) -> tuple[int, int]:
    """Samples in runs of >= CLIP_RUN consecutive full-scale samples (per channel), and how many runs."""
    samples = runs = 0
    for channel in (np.abs(data) >= CLIP_LEVEL).T:
        edges = np.diff(np.concatenate(([0], channel.astype(np.int8), [0])))
        lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        flat = lengths[lengths >= CLIP_RUN]
        samples += int(flat.sum())
        runs += len(flat)
    return samples, runs


def integrated_lufs(data: np.ndarray, rate: int) -> float | None:
    """BS.1770-4 gated integrated loudness; None for silence or shorter than one gating block."""
    if len(data) < LOUDNESS_MIN_SECONDS * rate:
        return None
    value = integrated_loudness(data, rate)
    return value if np.isfinite(value) else None


def _true_peak(data: np.ndarray) -> float | None:
    """The true peak in dBTP; None for a file with no samples or only zeros."""
    return true_peak_dbtp(data) if len(data) and np.any(data) else None


def measure(path: Path) -> QcFigures:
    """Decode `path` and measure it as delivered."""
    data, rate = read_audio(path)
    head, tail = _silence(data, rate)
    clipped, runs = _clipping(data)
    return QcFigures(
        loudness_lufs=integrated_lufs(data, rate),
        true_peak_dbtp=_true_peak(data),
        lra_lu=loudness_range(data, rate),
        head_silence_s=head,
        tail_silence_s=tail,
        clipped_samples=clipped,
        clipped_runs=runs,
        dc_offset=tuple(float(v) for v in data.mean(axis=0)) if len(data) else (),
        sample_rate=rate,
        bit_depth=bit_depth(path),
        channels=data.shape[1],
        duration_s=len(data) / rate,
    )


def check(figures: QcFigures, spec: MasterSpec) -> list[str]:
    """Why the file is outside `spec` (one reason per problem, with the figure); empty when it is fine."""
    reasons = []
    if spec.lufs is not None:
        loud = figures.loudness_lufs
        if loud is None or abs(loud - spec.lufs) > spec.lufs_tolerance:
            shown = "unmeasurable" if loud is None else f"{loud:.1f} LUFS"
            reasons.append(f"loudness {shown}, target {spec.lufs:g} ± {spec.lufs_tolerance:g} LUFS")
    peak = figures.true_peak_dbtp
    if spec.true_peak_dbtp is not None and peak is not None and peak > spec.true_peak_dbtp:
        reasons.append(f"true peak {peak:.2f} dBTP, max {spec.true_peak_dbtp:g} dBTP")
    if figures.clipped_runs:
        reasons.append(f"clipping: {figures.clipped_samples} samples in {figures.clipped_runs} runs at full scale")
    worst_dc = max((abs(v) for v in figures.dc_offset), default=0.0)
    if worst_dc > spec.max_dc_offset:
        reasons.append(f"DC offset {worst_dc:.4f}, max {spec.max_dc_offset:g}")
    if figures.head_silence_s > spec.max_head_silence_s:
        reasons.append(f"head silence {figures.head_silence_s:.2f} s, max {spec.max_head_silence_s:g} s")
    if figures.tail_silence_s > spec.max_tail_silence_s:
        reasons.append(f"tail silence {figures.tail_silence_s:.2f} s, max {spec.max_tail_silence_s:g} s")
    return reasons


QC_COLUMNS = ("file", "version", "parent", "master", "loudness_lufs", "true_peak_dbtp", "lra_lu", "head_silence_s",
              "tail_silence_s", "clipped_samples", "dc_offset", "sample_rate", "bit_depth", "duration_s",
              "master_gain_db", "qc", "reasons", "key", "key_measured", "key_confidence", "key_warning")


def qc_record(record: LedgerRecord) -> dict[str, object]:
    """One qc.csv row from a ledger record: its QC figures (tasks/delivery/finish.py), the reasons when it failed."""
    fields = record.model_dump()
    return {**{c: fields[c] for c in QC_COLUMNS if c in fields},
            "file": record.audio_path or record.held_file,
            "version": record.version if record.parent else "full", "duration_s": record.duration_seconds,
            "reasons": record.error if record.qc == "fail" else ""}


def write_qc_csv(out_dir: Path, records: Iterable[LedgerRecord]) -> Path:
    """Replace OUT/qc.csv atomically with one row per measured file of the ledger (a temp file beside it,
    then os.replace); text is made formula-safe."""
    path = Path(out_dir) / QC_CSV
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=QC_COLUMNS)
            writer.writeheader()
            for record in records:
                if record.qc:
                    writer.writerow({k: spreadsheet_safe("" if v is None else v)
                                     for k, v in qc_record(record).items()})
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
