"""The plan's preview: one self-contained HTML page beside the brief, to read before anything is paid.

It shows what a person checks before ordering: the cost estimate against the budget, how the rows cover
the grid, how far apart the prompts are, and every row (title, style, mood, tempo, key, voice, prompt).
No script and no external resource (its Content-Security-Policy forbids both), every value escaped, as the
validation report (tasks/intake/report.py).
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tasks.intake.planning.diversity import Distances
from tasks.intake.planning.planner import PlannedTrack

_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 80rem; padding: 0 1rem; }
table { border-collapse: collapse; margin-bottom: 1.5rem; } th, td { border: 1px solid #ddd; padding: .3rem .5rem;
text-align: left; vertical-align: top; } th { background: #f5f5f7; } td.num { text-align: right; }
.over { color: #8a1c1c; font-weight: 600; } .coverage { display: flex; flex-wrap: wrap; gap: 1.5rem; }
"""


@dataclass(frozen=True)
class Estimate:
    """The pipeline's estimate of the brief (`trackfoundry estimate`'s figures) and the spec's budget."""

    provider: str
    expected_usd: float
    at_most_usd: float
    budget_usd: float | None


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: object) -> str:
    return f'<td class="num">{_e(value)}</td>' if isinstance(value, int | float) else f"<td>{_e(value)}</td>"


def _table(headers: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _estimate(estimate: Estimate) -> str:
    budget = "no budget set" if estimate.budget_usd is None else f"budget ${estimate.budget_usd:.2f}"
    over = estimate.budget_usd is not None and estimate.at_most_usd > estimate.budget_usd
    warning = ' <span class="over">the worst case exceeds the budget: a run would skip rows</span>' if over else ""
    return (f"<p>Provider {_e(estimate.provider)}: expected ${estimate.expected_usd:.2f}, at most "
            f"${estimate.at_most_usd:.2f}; {_e(budget)}.{warning}</p>")


def _distances(distances: Distances | None) -> str:
    if distances is None:
        return "<p>Fewer than two prompts: no distances.</p>"
    spread = ", ".join(f"p{p} {v:.3f}" for p, v in distances.percentiles.items())
    return (f"<p>Minimum pairwise prompt distance {distances.minimum:.3f} ({_e(distances.nearest_pair[0])} and "
            f"{_e(distances.nearest_pair[1])}); {_e(spread)}.</p>")


def preview_html(title: str, tracks: list[PlannedTrack], cover: dict[str, Counter[str]],
                 distances: Distances | None, estimate: Estimate) -> str:
    """The page: the estimate, the distances, the coverage tables, then every row; every value escaped."""
    coverage = "".join(_table((dimension, "rows"), sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
                       for dimension, counts in cover.items())
    rows = [(t.track_id, t.title, t.cell.style, t.cell.mood, t.bpm, t.key, t.voice or "instrumental", t.duration,
             t.words.prompt) for t in tracks]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>Plan: {_e(title)}</title><style>{_STYLE}</style></head><body>
<h1>Plan: {_e(title)} — {len(tracks)} rows</h1>
<h2>Cost</h2>{_estimate(estimate)}
<h2>Prompt distances (MiniLM, cosine)</h2>{_distances(distances)}
<h2>Coverage</h2><div class="coverage">{coverage}</div>
<h2>Rows</h2>{_table(("track_id", "title", "style", "mood", "bpm", "key", "vocals", "seconds", "prompt"), rows)}
</body></html>
"""


def write_preview(path: Path, title: str, tracks: list[PlannedTrack], cover: dict[str, Counter[str]],
                  distances: Distances | None, estimate: Estimate) -> Path:
    path.write_text(preview_html(title, tracks, cover, distances, estimate), encoding="utf-8")
    return path
