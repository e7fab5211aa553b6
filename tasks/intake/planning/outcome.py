"""A plan from spec to files: the brief, its validation by the project's own validator, the estimate, the
figures and the preview — what `trackfoundry plan` runs and prints.

The brief is validated as `trackfoundry validate` would read it (from the written file), so "all rows
valid" is a statement about the file a person will hand to `run`, not about the planner's intentions.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tasks.intake.brief import load_brief
from tasks.intake.plan import brief_cost_cents
from tasks.intake.planning.diversity import Distances, coverage, prompt_distances, tempo_clashes
from tasks.intake.planning.planner import Embed, PlannedTrack, plan_tracks, write_brief
from tasks.intake.planning.preview import Estimate, write_preview
from tasks.intake.planning.spec import SpecError, load_spec, lyric_sheets
from tasks.intake.validate import Rejection, grouped_warnings, validate_brief
from tasks.settings import PipelineSettings
from textmusic.providers import Profile, ProfileError, load_profile

PREVIEW_SUFFIX = ".preview.html"
SPEC_SUFFIX = ".toml"  # what `run` takes for a plan spec rather than a brief
PLANNED_BRIEF = "brief.csv"  # where a run that is given a plan spec writes its brief, in the catalog folder


@dataclass(frozen=True)
class PlanOutcome:
    brief: Path
    preview: Path
    tracks: list[PlannedTrack]
    seconds: float  # time to plan the rows (embeddings included), not to validate them
    coverage: dict[str, Counter[str]]
    distances: Distances | None
    tempo_clashes: list[tuple[str, str]]
    rejections: list[Rejection]
    estimate: Estimate
    warnings: list[str] = field(default_factory=list)  # what the rows lose at the spec's provider (no seed …)


def is_plan_spec(path: Path) -> bool:
    """Whether `run` was given a plan spec (planned into the catalog folder first) rather than a brief."""
    return Path(path).suffix.lower() == SPEC_SUFFIX


def preview_path(brief: Path) -> Path:
    """The preview beside the brief: `brief.csv` → `brief.preview.html`."""
    return brief.with_name(brief.stem + PREVIEW_SUFFIX)


def _profile(provider: str) -> Profile:
    try:
        return load_profile(provider)
    except ProfileError as exc:
        raise SpecError(f"provider.name: {exc}") from None


def plan_brief(spec_path: Path, out: Path, embed: Embed | None, seed: int | None = None,
               count: int | None = None) -> PlanOutcome:
    """Plan the spec into `out` (CSV) and its preview; raises SpecError or PlanError before writing anything."""
    spec = load_spec(spec_path)
    profile = _profile(spec.provider.name)
    sheets = lyric_sheets(spec, spec_path.parent)
    started = time.perf_counter()
    tracks = plan_tracks(spec, sheets, embed, count=count, seed=seed)
    seconds = time.perf_counter() - started
    write_brief(out, spec, tracks)
    validation = validate_brief(load_brief(out), profile=profile)
    expected, worst = brief_cost_cents(validation.rows, PipelineSettings(), profile)
    estimate = Estimate(spec.provider.name, expected / 100, worst / 100, spec.provider.budget_usd)
    cover = coverage(tracks)
    distances = prompt_distances(tracks, embed) if embed else None
    preview = write_preview(preview_path(out), spec_path.stem, tracks, cover, distances, estimate)
    return PlanOutcome(brief=out, preview=preview, tracks=tracks, seconds=seconds, coverage=cover,
                       distances=distances, tempo_clashes=tempo_clashes(tracks, spec.diversity.bpm_apart),
                       rejections=validation.rejections, estimate=estimate,
                       warnings=grouped_warnings(validation.warnings))
