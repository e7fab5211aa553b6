"""The latest verification of a catalog's files (`verification.json`): what `trackfoundry verify` and the end of a
run found for each file, kept as data so that the page shows it whoever renders the page later (the review
server too), and a file changed since shows as no longer verified (its checksum differs from the one checked).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from tasks.catalog.atomic import write_atomically

VERIFICATION = "verification.json"


class FileVerdict(BaseModel):
    """One file's verification: each check's outcome as the table shows it (`ok`, `ok (dev cert)`, `changed` …),
    the checks that failed and why, and the SHA-256 the file had when checked."""

    audio_path: str
    sha256: str = ""
    checks: dict[str, str] = Field(default_factory=dict)
    failed: list[str] = Field(default_factory=list)  # the checks that failed, by name
    problems: list[str] = Field(default_factory=list)  # what each failed check found, in words

    @property
    def ok(self) -> bool:
        return not self.problems


class Verification(BaseModel):
    checked_at: str
    files: list[FileVerdict]


def save_verification(out_dir: Path, verification: Verification) -> Path:
    path = out_dir / VERIFICATION
    write_atomically(path, verification.model_dump_json(indent=1))
    return path


def load_verification(out_dir: Path) -> Verification | None:
    """The latest verification, or None (never verified, or a file that is not one: it is only a report)."""
    try:
        return Verification.model_validate(json.loads((out_dir / VERIFICATION).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
