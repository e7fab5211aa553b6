"""A downloaded file brought to the catalog's delivery spec, before it is tagged and named.

Every file is measured as delivered (`qc.measure`: decoded, after encoding). A file already within its spec,
at the asked sample rate and bit depth, keeps the provider's bytes: the local engine masters to the streaming
spec itself, so its files stay as rendered and a re-render still compares sample for sample. Any other file is
mastered (`tasks.delivery.mastering`) and measured again. A song, its cut-downs and loops are levelled to the spec's
loudness; stems and alternative mixes (underscore, nodrums) take their full mix's gain instead, so they still
add up to it, and are checked for health only (a part has its own loudness, and its rests are silence). A file
still outside its spec is held in `qc-failed/` and its record says why: never delivered silently.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

from tasks.delivery.key import measure_key
from tasks.delivery.mastering import master_file
from tasks.delivery.qc import QcFigures, check, measure
from tasks.delivery.signing import Signing, signing_identity
from tasks.settings import SPECS, MasterSpec, PipelineSettings
from textmusic.contract import FORMATS, LOSSLESS_FORMATS, MIXES

QC_FAILED_DIR = "qc-failed"


class QcFailed(Exception):
    """A delivered file outside its spec after mastering; `fields` are its ledger figures, `held` where it is."""

    def __init__(self, reasons: list[str], fields: dict[str, object], held: str) -> None:
        super().__init__(f"qc: {'; '.join(reasons)} (the file is held in {held})")
        self.fields = fields


@dataclass(frozen=True)
class Delivery:
    """The catalog's delivery spec: a master spec, for WAV/FLAC a sample rate and bit depth (None: as is), and
    who signs every file's content credentials (None: no credentials)."""

    spec: MasterSpec
    sample_rate: int | None = None
    bit_depth: int | None = None
    signing: Signing | None = None

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> Delivery:
        """Loads the signing identity at once: a studio certificate that cannot be used stops the run before any
        row is paid for (SigningError), not at its first delivery."""
        signing = signing_identity(settings) if settings.content_credentials else None
        return cls(SPECS[settings.master], settings.sample_rate, settings.bit_depth, signing)


def follows_parent(version: str) -> bool:
    """Whether a version takes its full mix's gain (a stem or an alternative mix) instead of its own level."""
    return version.startswith("stem:") or version in MIXES


def health_only(spec: MasterSpec) -> MasterSpec:
    """`spec` without a loudness target or silence limits: what a stem or an alternative mix is held to."""
    return dataclasses.replace(spec, lufs=None, max_head_silence_s=math.inf, max_tail_silence_s=math.inf)


def finish(path: Path, fmt: str, bit_rate: str, delivery: Delivery, out_dir: Path, file_name: str,
           parent_gain_db: float | None = None) -> dict[str, object]:
    """Bring the file at `path` to the delivery spec in place; its QC ledger fields and the processing steps it
    took (`processing`), or QcFailed (the file then moved to `qc-failed/<file_name>`). `parent_gain_db`:
    the gain of a stem's or alternative mix's full mix."""
    target = delivery.spec if parent_gain_db is None else health_only(delivery.spec)
    rate, depth = (delivery.sample_rate, delivery.bit_depth) if fmt in LOSSLESS_FORMATS else (None, None)
    figures, gain, steps = measure(path), 0.0, ""
    conforms = (rate in (None, figures.sample_rate)) and (depth in (None, figures.bit_depth))
    if not conforms or parent_gain_db or (check(figures, target) and _can_master(target)):
        result = master_file(path, path, delivery.spec, sample_rate=rate, bit_depth=depth, fmt=fmt,
                             bit_rate=FORMATS[fmt].bit_rate_for(bit_rate),
                             gain_db=parent_gain_db)
        figures, gain = result.figures, result.gain_db
        steps = f"mastered:{delivery.spec.name}:{gain:+.2f}dB"
    reasons = check(figures, target)
    fields = {**qc_fields(figures, delivery.spec.name, gain, "fail" if reasons else "pass"), "processing": steps}
    if parent_gain_db is None:  # a song, a cut-down or a loop: its key as heard (a stem or a mix is a part)
        fields.update(measure_key(path))
    if reasons:
        held = Path(QC_FAILED_DIR) / file_name
        (out_dir / held).parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, out_dir / held)
        raise QcFailed(reasons, {**fields, "held_file": str(held)}, str(held))
    return fields


def _can_master(spec: MasterSpec) -> bool:
    """Whether mastering can move a file towards `spec` (a spec of none only checks the file's health)."""
    return spec.lufs is not None or spec.true_peak_dbtp is not None


def qc_fields(figures: QcFigures, spec: str, gain_db: float, verdict: str) -> dict[str, object]:
    """The ledger's QC fields from a file's figures (DC: the channel mean of largest magnitude, signed)."""
    def rounded(value: float | None, digits: int = 2) -> float | None:
        return None if value is None else round(value, digits)

    return {"master": spec, "master_gain_db": round(gain_db, 2), "loudness_lufs": rounded(figures.loudness_lufs),
            "true_peak_dbtp": rounded(figures.true_peak_dbtp), "lra_lu": rounded(figures.lra_lu),
            "head_silence_s": round(figures.head_silence_s, 3), "tail_silence_s": round(figures.tail_silence_s, 3),
            "clipped_samples": figures.clipped_samples,
            "dc_offset": round(max(figures.dc_offset, key=abs, default=0.0), 6),
            "sample_rate": figures.sample_rate, "bit_depth": figures.bit_depth, "qc": verdict}
