"""The catalog page `DIR/index.html`: one self-contained file (styles and script inline, no network) that
plays the catalog's audio by relative path, so it works from a file server, the review server or `file://`.

Everything from the brief (titles, prompts, tags, notes) is escaped by Jinja's autoescaping; the one value
a script reads (the review settings) is JSON with `<`, `>` and `&` escaped, so nothing can close its tag.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from tasks.catalog.atomic import write_atomically
from tasks.catalog.decisions import DECISIONS, MAX_NOTE_CHARS, load_decisions
from tasks.catalog.ledger import READY, REPLACED, STATUSES, LedgerRecord, load_ledger
from tasks.catalog.verification import load_verification
from tasks.intake.fields import METADATA_FIELDS

from .cards import Card, build_cards, summary

PAGE = "index.html"
# The summary counts rows by status (a replaced take is counted in its replacement's); a card shows the metadata
# fields that declare it.
_SUMMARY_STATUSES = tuple(s for s in STATUSES if s != REPLACED)
_CARD_FIELDS = tuple(f.name for f in METADATA_FIELDS if f.on_card)
_HERE = Path(__file__).parent


@cache
def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_HERE), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["minutes"] = _minutes
    return env


@cache
def _inline(name: str) -> Markup:
    """Our own stylesheet or script, inlined as is: nothing from the data goes in them (and a test checks that
    they hold no `</`, which would close their tag)."""
    return Markup((_HERE / name).read_text(encoding="utf-8"))


def render_page(out_dir: Path, review_token: str | None = None, *, budget_usd: float | None = None,
                run_cost_usd: float | None = None) -> str:
    """The page's HTML. With `review_token`, delivered cards get Approve/Reject buttons that post to the
    review server (`api/decisions`, relative); without it the page shows recorded decisions read-only."""
    records = load_ledger(out_dir)
    verification = load_verification(out_dir)
    verdicts = {v.audio_path: v for v in verification.files} if verification else {}
    cards = build_cards(out_dir, records, load_decisions(out_dir), verdicts)
    return _environment().get_template("template.html").render(
        catalog=_catalog_name(records, out_dir), generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        summary=summary(records, budget_usd, run_cost_usd), summary_statuses=_SUMMARY_STATUSES, delivered=READY,
        card_fields=_CARD_FIELDS, cards=cards, choices=_choices(cards), verification=verification,
        development_signed=any(r.signer == "development" for r in records if r.status == READY),
        review=review_token is not None, max_note=MAX_NOTE_CHARS,
        config={"review": review_token is not None, "token": review_token or ""},
        style=_inline("page.css"), script=_inline("page.js"),
    )


def write_page(out_dir: Path, review_token: str | None = None, *, budget_usd: float | None = None,
               run_cost_usd: float | None = None) -> Path:
    """Write `out_dir/index.html` atomically (a browser reloading it never reads half a page)."""
    path = out_dir / PAGE
    write_atomically(path, render_page(out_dir, review_token, budget_usd=budget_usd, run_cost_usd=run_cost_usd))
    return path


def _catalog_name(records: list[LedgerRecord], out_dir: Path) -> str:
    return next((r.catalog for r in records if r.catalog), out_dir.resolve().name)


def _choices(cards: list[Card]) -> dict[str, list[str]]:
    """The values each filter offers: those present in the catalog, in a stable order."""
    statuses = {c.record.status for c in cards}
    return {
        "genre": sorted({t.lower() for c in cards for t in c.tags}),
        "mood": sorted({c.record.mood for c in cards if c.record.mood}, key=str.lower),
        "status": [s for s in STATUSES if s in statuses],
        "version": sorted({v for c in cards for v in c.versions}, key=str.lower),
        "decision": [*DECISIONS, "none"],
    }


def _minutes(seconds: float | None) -> str:
    """m:ss, as a studio reads a track's length."""
    if seconds is None:
        return ""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
