"""Verifying a catalog and recording what was found, for `trackfoundry verify` and the end of every run."""

from __future__ import annotations

from pathlib import Path

from tasks.catalog.verification import Verification, save_verification
from tasks.delivery.verify import verify_catalog
from tasks.settings import PipelineSettings


def verify_and_record(out_dir: Path, settings: PipelineSettings,
                      trust_anchors: Path | None = None) -> Verification:
    """Verify every file of the catalog at `out_dir` (credentials against the PEM roots at `trust_anchors`, else
    the settings') and keep the outcome beside the ledger, where the page reads it."""
    anchors_file = trust_anchors or settings.signing_trust_anchors
    anchors = anchors_file.read_text(encoding="utf-8") if anchors_file is not None else None
    verification = verify_catalog(out_dir, anchors, settings.duration_tolerance_seconds)
    save_verification(out_dir, verification)
    return verification
