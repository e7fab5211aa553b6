"""The brief's validation report: one self-contained HTML page that tells what the validation found.

It replaces Great Expectations' Data Docs as `validation-report/index.html`: those load their styles and
scripts from CDNs (offline they render as a bare page), say "Succeeded" for a brief whose rows the contract
rejected (the suite is only one of the checks), and put brief values into the page unescaped. This page has
no external reference and no script (its Content-Security-Policy forbids both), escapes every value, and
states its verdict from the counts: rows total, valid, rejected, then every rejection and every rule applied.
"""

from __future__ import annotations

import html
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

PAGE_NAME = "index.html"

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem;
       color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.verdict { padding: .8rem 1rem; border-radius: 6px; font-weight: 600; }
.verdict.rejected { background: #fde8e8; color: #8a1c1c; border: 1px solid #f1b0b0; }
.verdict.valid { background: #e6f4ea; color: #1e5631; border: 1px solid #a8d5b5; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ddd; padding: .35rem .55rem; text-align: left; vertical-align: top; }
th { background: #f5f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.cell { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }
.warn { color: #7a4d00; }
@media (prefers-color-scheme: dark) {
  body { color: #eee; background: #1c1c1e; } th { background: #2c2c2e; } th, td { border-color: #444; }
  .verdict.rejected { background: #4a1c1c; color: #ffd7d7; } .verdict.valid { background: #183d26; color: #d2f5dc; }
  .warn { color: #ffcf70; }
}
"""
# No script, no external resource, no form: even a value that escaped escaping could not load or run anything.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class ValidationReport:
    """What the page shows: plain values, so this module needs nothing of the validator."""

    brief: str  # the brief's file name ("" when unknown)
    total: int  # data rows in the brief
    valid: int  # rows that passed every rule
    rejections: list[tuple[int, str, str, str]]  # (row, track_id, column, reason), in row order
    rules: dict[str, list[str]]  # stage -> the rules applied at that stage
    warnings: list[str]  # e.g. unknown columns

    @property
    def rejected(self) -> int:
        return self.total - self.valid


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _verdict(report: ValidationReport) -> str:
    if report.rejected:
        return (f'<p class="verdict rejected">Rejected: {report.rejected} of {report.total} rows break the rules '
                f"and will not be generated; {report.valid} rows are valid.</p>")
    if not report.total:
        return '<p class="verdict rejected">The brief has no rows: nothing to generate.</p>'
    return f'<p class="verdict valid">Valid: all {report.total} rows pass every rule below.</p>'


def _counts(report: ValidationReport) -> str:
    counts = (("rows", report.total), ("valid rows", report.valid), ("rejected rows", report.rejected),
              ("rejections (rule broken by a row)", len(report.rejections)))
    cells = "".join(f"<tr><th>{label}</th><td class=\"num\">{value}</td></tr>" for label, value in counts)
    brief = f"<tr><th>brief</th><td class=\"cell\">{_e(report.brief or '(unknown)')}</td></tr>"
    return f"<table class=\"counts\">{brief}{cells}</table>"


def _rejections(report: ValidationReport) -> str:
    if not report.rejections:
        return "<h2>Rejections</h2><p>None.</p>"
    head = "<tr><th>row</th><th>track_id</th><th>column</th><th>reason</th></tr>"
    body = "".join(
        f'<tr class="rejection"><td class="num">{row}</td><td class="cell">{_e(track_id)}</td>'
        f"<td>{_e(column)}</td><td>{_e(reason)}</td></tr>"
        for row, track_id, column, reason in report.rejections
    )
    return f"<h2>Rejections</h2><table id=\"rejections\">{head}{body}</table>"


def _warnings(report: ValidationReport) -> str:
    if not report.warnings:
        return ""
    items = "".join(f"<li>{_e(w)}</li>" for w in report.warnings)
    return f'<h2>Warnings</h2><ul class="warn">{items}</ul>'


def _rules(report: ValidationReport) -> str:
    parts = ["<h2>Rules applied</h2>"]
    for stage, rules in report.rules.items():
        items = "".join(f"<li>{_e(rule)}</li>" for rule in rules)
        parts.append(f"<h3>{_e(stage)}</h3><ul>{items}</ul>")
    return "".join(parts)


def render_validation_page(report: ValidationReport) -> str:
    """The page's HTML: every value escaped, styles inline, nothing loaded from anywhere."""
    title = f"Brief validation: {report.brief}" if report.brief else "Brief validation"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>{_verdict(report)}{_counts(report)}{_warnings(report)}{_rejections(report)}"
        f"{_rules(report)}</body></html>\n"
    )


def write_validation_page(docs_dir: Path, report: ValidationReport) -> Path:
    """Write `docs_dir/index.html` whole (a reader never sees half a page); returns its path."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    target = docs_dir / PAGE_NAME
    tmp = docs_dir / f".{PAGE_NAME}.{uuid.uuid4().hex}.tmp"
    try:
        with tmp.open("x", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(render_validation_page(report))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
