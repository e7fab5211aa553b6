"""The re-render flow: ledger → requests with the recorded seeds → files in `rerenders/<UTC time>/` → comparison."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.produce_catalog import generate_all, over_budget_records, routed_settings
from tasks.catalog.ledger import load_ledger, summarize, write_ledger
from tasks.catalog.rerender import (
    compare_to_originals,
    delivery_settings,
    engine_changed,
    ready_originals,
    rerender_route,
    routed_rerender_rows,
)
from tasks.delivery.place import clear_partials
from tasks.intake.plan import within_budget
from tasks.intake.routes import DEFAULT_ROUTE
from tasks.prefect_tasks import deliver_versions_task
from tasks.provider.connection import metered_by, open_route
from tasks.provider.preflight import provider_routes
from tasks.run import CatalogInfo, RunOptions
from tasks.settings import PipelineSettings
from textmusic.settings import TextMusicSettings

RERENDERS_DIR = "rerenders"


@flow(name="rerender-catalog", task_runner=ThreadPoolTaskRunner(max_workers=4))
def rerender_catalog(
    catalog_dir: str, track_ids: list[str] | None = None, output_format: str | None = None,
    bit_rate: str | None = None, budget_usd: float | None = None,
) -> dict[str, object]:
    """Regenerate ready tracks of a catalog from its ledger; record whether each is identical to the original.
    With `budget_usd`, songs whose worst case would exceed it are skipped (with the reason), as in a run."""
    logger = get_run_logger()
    settings, api = PipelineSettings(), TextMusicSettings()
    catalog_path = Path(catalog_dir)
    originals = ready_originals(load_ledger(catalog_path), track_ids)
    if not any(not r.parent for r in originals):
        raise ValueError(f"no ready tracks to re-render in {catalog_path}")
    out_dir = catalog_path / RERENDERS_DIR / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=False)
    info = CatalogInfo(name=originals[0].catalog, artist=settings.artist, composer=settings.composer,
                       publisher=settings.publisher, date=datetime.now(UTC).date().isoformat())
    routes = provider_routes(settings, api)
    used = {rerender_route(r, routes) for r in originals}  # each song where it was made
    with contextlib.ExitStack() as stack:
        connections = {route: stack.enter_context(open_route(routes, route, settings, api, catalog_path))
                       for route in sorted(used)}
        providers = {route: connection.provider for route, connection in connections.items()}
        if DEFAULT_ROUTE in connections:
            settings = metered_by(settings, connections[DEFAULT_ROUTE])
        settings = delivery_settings(settings, [r for r in originals if not r.parent])
        rows = routed_rerender_rows(originals, routes, providers, output_format, bit_rate,
                                    settings.file_name_template)
        budget_cents = round(budget_usd * 100) if budget_usd is not None else None
        fits, over = within_budget(rows, budget_cents, settings, providers)
        records = generate_all(fits, [], connections, out_dir, info, settings, RunOptions()) if fits else []
        metered = routed_settings(settings, connections)
        for route, connection in connections.items():
            mine = [row for row in fits if row.provider == route]
            records += deliver_versions_task(records, mine, [], connection, out_dir, info, metered[route])
        records += over_budget_records(over, info, providers, budget_usd or 0.0, settings, [])
    clear_partials(out_dir)
    records = compare_to_originals(records, originals, catalog_path, out_dir)
    write_ledger(out_dir, records)
    identical = sum(1 for r in records if r.identical_to_original)
    changed = engine_changed(records, originals)
    if changed:
        logger.warning("%d tracks were first rendered by another engine version (%s); samples may differ",
                       len(changed), ", ".join(sorted({f"{a} → {b}" for a, b in changed.values()})))
    summary = {**summarize(records), "identical": identical, "engine_changed": len(changed), "out": str(out_dir)}
    summary["budget_left_usd"] = None if budget_usd is None else round(budget_usd - float(summary["cost_usd"]), 2)
    logger.info("re-render: %s", summary)
    return summary
