"""Brief validation: a Great Expectations suite for the table, then the API contract for each row.

Every rejection names the row, the column and the rule, and a bad row never stops the good ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from textmusic.contract import (
    BIT_RATES,
    MAX_LYRICS_CHARS,
    MAX_NAME_CHARS,
    MAX_PROMPT_CHARS,
    NUM_SONGS,
    OUTPUT_FORMATS,
    TextToMusicRequest,
)

from .brief import METADATA_COLUMNS, TAG_SEPARATOR

MAX_TRACK_ID_CHARS = 100
MAX_METADATA_CHARS = 500
_NUMBER = r"(?:\d+(?:\.\d+)?)"
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")


@dataclass(frozen=True)
class Rejection:
    row: int
    track_id: str
    column: str
    reason: str


@dataclass(frozen=True)
class BriefRow:
    """A valid row: its request follows the contract; the seed may still be missing (the plan derives it)."""

    row: int
    track_id: str
    name: str
    request: TextToMusicRequest
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Validation:
    rows: list[BriefRow]
    rejections: list[Rejection]

    @property
    def rejected_rows(self) -> set[int]:
        return {r.row for r in self.rejections}


def _expectations() -> list[Any]:
    import great_expectations.expectations as gxe

    def in_set(column: str, values: tuple[str, ...], rule: str) -> Any:
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=["", *values], description=rule)

    def matches(column: str, regex: str, rule: str) -> Any:
        return gxe.ExpectColumnValuesToMatchRegex(column=column, regex=regex, description=rule)

    def length(column: str, low: int, high: int, rule: str) -> Any:
        return gxe.ExpectColumnValueLengthsToBeBetween(
            column=column, min_value=low, max_value=high, description=rule
        )

    return [
        length("track_id", 1, MAX_TRACK_ID_CHARS, f"track_id is required, at most {MAX_TRACK_ID_CHARS} characters"),
        length("name", 1, MAX_NAME_CHARS, f"name is required, at most {MAX_NAME_CHARS} characters"),
        length("prompt", 0, MAX_PROMPT_CHARS, f"prompt is at most {MAX_PROMPT_CHARS} characters"),
        length("lyrics", 0, MAX_LYRICS_CHARS, f"lyrics are at most {MAX_LYRICS_CHARS} characters"),
        in_set("output_format", OUTPUT_FORMATS, f"output_format must be one of {', '.join(OUTPUT_FORMATS)}"),
        in_set("output_bit_rate", BIT_RATES, f"output_bit_rate must be one of {', '.join(BIT_RATES)} (kbps)"),
        in_set("num_songs", tuple(str(n) for n in NUM_SONGS), "num_songs must be 1 or 2"),
        in_set("store_audio", TRUE_WORDS + FALSE_WORDS, "store_audio must be true or false"),
        matches("seed", r"^\d*$", "seed must be a non-negative integer"),
        matches("bpm", rf"^(?:auto|{_NUMBER})?$", "bpm must be a number or 'auto'"),
        matches("prompt_strength", rf"^{_NUMBER}?$", "prompt_strength must be a non-negative number"),
        matches("balance_strength", rf"^{_NUMBER}?$", "balance_strength must be a non-negative number"),
        matches("duration_seconds", rf"^{_NUMBER}?$", "duration_seconds must be a number of seconds"),
        matches("key", r"^(?:[A-G][#b]?m?)?$", "key is a musical key of at most 3 characters, e.g. C, F#m, Dbm"),
        matches("isrc", r"^(?:[A-Z]{2}-?[A-Z0-9]{3}-?\d{2}-?\d{5})?$", "isrc must be an ISRC like USRC17607839"),
        *(length(c, 0, MAX_METADATA_CHARS, f"{c} is at most {MAX_METADATA_CHARS} characters")
          for c in METADATA_COLUMNS),
    ]


def table_rejections(table: pd.DataFrame, docs_dir: Path | None = None) -> list[Rejection]:
    """Run the Great Expectations suite over the whole brief at once; one rejection per failing cell.

    With `docs_dir`, GE's Data Docs (an HTML report of the validation) are written there."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    actions = []
    if docs_dir is not None:
        context.add_data_docs_site("brief_report", {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        actions.append(UpdateDataDocsAction(name="report", site_names=["brief_report"]))
    batch = (
        context.data_sources.add_pandas("brief")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all rows")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="brief", expectations=_expectations()))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="brief", data=batch, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name="brief", validation_definitions=[definition], actions=actions,
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row"]},
    ))
    run = checkpoint.run(batch_parameters={"dataframe": table})
    results = [item for result in run.run_results.values() for item in result.results]
    track_ids = dict(zip(table["row"], table["track_id"], strict=True))
    rejections = []
    for item in results:
        if item.success:
            continue
        config = item.expectation_config
        column = config.kwargs["column"]
        for hit in item.result.get("unexpected_index_list") or []:
            row = int(hit["row"])
            shown = str(hit.get(column, ""))
            value = shown if len(shown) <= 40 else shown[:37] + "..."
            rejections.append(Rejection(row, track_ids[row], column, f"{config.description} (got {value!r})"))
    return rejections


def _request_fields(cells: dict[str, str]) -> dict[str, Any]:
    """The row's cells as contract fields; empty cells are left out so the contract's defaults apply."""
    fields: dict[str, Any] = {}
    for key in ("prompt", "name", "output_format", "output_bit_rate"):
        if cells[key]:
            fields[key] = cells[key]
    if cells["lyrics"].strip():
        fields["lyrics"] = cells["lyrics"]
    tags = [t.strip() for t in cells["tags"].split(TAG_SEPARATOR) if t.strip()]
    if tags:
        fields["tags"] = tags
    if cells["seed"]:
        fields["seed"] = int(cells["seed"])
    if cells["num_songs"]:
        fields["num_songs"] = int(cells["num_songs"])
    for key in ("prompt_strength", "balance_strength", "duration_seconds"):
        if cells[key]:
            fields[key] = float(cells[key])
    if cells["bpm"]:
        fields["bpm"] = "auto" if cells["bpm"] == "auto" else float(cells["bpm"])
    versions = [v.strip().lower() for v in cells["versions"].split(TAG_SEPARATOR) if v.strip()]
    if versions:
        fields["versions"] = versions
    if cells["store_audio"]:
        fields["store_audio"] = cells["store_audio"].lower() in TRUE_WORDS
    return fields


def _contract_rejections(row: int, track_id: str, error: ValidationError) -> list[Rejection]:
    found = []
    for issue in error.errors():
        message = str(issue["msg"]).removeprefix("Value error, ")
        column = str(issue["loc"][0]) if issue["loc"] else ""
        if not column:
            column = "output_bit_rate" if "output_bit_rate" in message else "prompt|tags|lyrics"
        found.append(Rejection(row, track_id, column, message))
    return found


def validate_brief(table: pd.DataFrame, docs_dir: Path | None = None) -> Validation:
    """Rows that pass both the table suite and the contract, and a rejection for every rule a row breaks."""
    rejections = table_rejections(table, docs_dir)
    bad = {r.row for r in rejections}
    first_seen: dict[str, int] = {}
    rows: list[BriefRow] = []
    for cells in table.to_dict(orient="records"):
        row, track_id = int(cells["row"]), cells["track_id"]
        if track_id in first_seen:
            rejections.append(
                Rejection(row, track_id, "track_id", f"duplicate track_id (first at row {first_seen[track_id]})")
            )
            continue
        if track_id:
            first_seen[track_id] = row
        if row in bad:
            continue
        try:
            request = TextToMusicRequest.model_validate(_request_fields(cells))
        except ValidationError as exc:
            rejections.extend(_contract_rejections(row, track_id, exc))
            continue
        metadata = {c: cells[c].replace("-", "") if c == "isrc" else cells[c] for c in METADATA_COLUMNS if cells[c]}
        rows.append(BriefRow(row=row, track_id=track_id, name=cells["name"], request=request, metadata=metadata))
    rejections.sort(key=lambda r: (r.row, r.column))
    return Validation(rows=rows, rejections=rejections)
