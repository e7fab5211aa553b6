"""`trackfoundry` command line: produce a catalog from a brief."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def _root() -> None:
    """TrackFoundry: briefs in, tagged and ledgered music catalogs out."""


@app.command()
def run(
    brief: Annotated[Path, typer.Argument(help="CSV or Parquet brief.")],
    catalog: Annotated[str, typer.Option(help="Catalog name (album tag, seed derivation).")],
    out: Annotated[Path, typer.Option(help="Catalog folder.")],
) -> None:
    """Produce the catalog. Exit 0 when the run completed, even if some rows were rejected or failed."""
    from rich.console import Console
    from rich.table import Table

    from flows.produce_catalog import run_catalog

    console = Console(stderr=True)
    try:
        summary = run_catalog(brief, catalog, out)
    except Exception as exc:  # the run could not complete: say why, in one line, and fail
        console.print(f"[red]trackfoundry: the run did not complete: {type(exc).__name__}: {exc}[/red]")
        raise typer.Exit(1) from None
    table = Table(title=f"catalog {catalog} → {out}")
    for key in ("rows", "ready", "failed", "rejected", "skipped", "minutes", "cost_usd"):
        table.add_column(key)
    table.add_row(*(str(summary[k]) for k in ("rows", "ready", "failed", "rejected", "skipped", "minutes")),
                  f"${summary['cost_usd']:.2f}")
    console.print(table)
    if summary["rejected"]:
        console.print(f"rejected rows are listed with their reasons in {out / 'rejects.csv'}")


def main() -> None:
    app()
