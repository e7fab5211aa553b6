"""Brief validation: text rules for every cell, a Great Expectations suite for the table, then the API
contract for each row.

Every rejection names the row, the column and the rule, and a bad row never stops the good ones. Brief
text is hostile: a track_id becomes file and folder names, so it is held to a small character set, and no
text cell may carry control characters (only lyrics keep their line breaks and tabs). With a report folder,
`validate_brief` writes a self-contained HTML report of it all there (tasks/intake/report.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import ValidationError

from tasks.intake.brief import BRIEF_ATTR, TAG_SEPARATOR, WARNINGS_ATTR
from tasks.intake.fields import METADATA_FIELDS
from tasks.intake.report import ValidationReport, write_validation_page
from tasks.intake.routes import DEFAULT_ROUTE, RouteError, Routes
from textmusic.contract import (
    BALANCE_STRENGTH_RANGE,
    BIT_RATE_FORMATS,
    BIT_RATES,
    BPM_RANGE,
    DEFAULT_BALANCE_STRENGTH,
    DEFAULT_PROMPT_STRENGTH,
    DURATION_RANGE,
    MAX_LYRICS_CHARS,
    MAX_NAME_CHARS,
    MAX_PROMPT_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    NUM_SONGS,
    OUTPUT_FORMATS,
    PROMPT_STRENGTH_RANGE,
    SEED_MAX,
    VERSION_KINDS,
    TextToMusicRequest,
)
from textmusic.providers import Profile

MAX_TRACK_ID_CHARS = 100
_NUMBER = r"(?:\d+(?:\.\d+)?)"
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")

_TRACK_ID_CHAR = r"[A-Za-z0-9._-]"
TRACK_ID_CHARS = re.compile(_TRACK_ID_CHAR)
_TRACK_ID = re.compile(rf"(?!\.)(?!.*\.\.){_TRACK_ID_CHAR}*")  # with the length rule (table suite)
TRACK_ID_RULE = (f"track_id is 1 to {MAX_TRACK_ID_CHARS} of the characters A-Z a-z 0-9 - _ . "
                 "(no path separator / or \\, no '..', not starting with '.')")
# C0 and C1 controls (NUL included), DEL, the Unicode line and paragraph separators, and lone surrogates (a
# brief's decoders and pandas' Arrow strings never yield them; a table built otherwise might).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# In lyrics: the same, except a tab, a newline and a CR that ends a line (CRLF), and the Unicode separators.
_LYRICS_CONTROL = re.compile(r"\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_RULE = ("text cells hold no control characters (C0/C1 controls, NUL, DEL, U+2028/U+2029 separators); "
                "lyrics may hold line breaks (\\n or \\r\\n) and tabs")


@dataclass(frozen=True)
class Rejection:
    row: int
    track_id: str
    column: str
    reason: str


@dataclass(frozen=True)
class RowWarning:
    """What a valid row loses at the active provider (e.g. no seed): said before paying, the row still runs."""

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
    provider: str = DEFAULT_ROUTE  # the route its `provider` cell names (tasks/intake/routes.py)


@dataclass(frozen=True)
class Validation:
    rows: list[BriefRow]
    rejections: list[Rejection]
    warnings: list[RowWarning] = field(default_factory=list)

    @property
    def rejected_rows(self) -> set[int]:
        return {r.row for r in self.rejections}


@dataclass(frozen=True)
class TableRule:
    """One rule of the Great Expectations suite, as data: the report lists it without importing GE."""

    column: str
    kind: Literal["length", "in_set", "regex"]
    rule: str
    values: tuple[str, ...] = ()  # in_set: the allowed words ("" always allowed)
    regex: str = ""
    low: int = 0  # length: inclusive bounds
    high: int = 0


def _length(column: str, low: int, high: int, rule: str) -> TableRule:
    return TableRule(column, "length", rule, low=low, high=high)


def _in_set(column: str, values: tuple[str, ...], rule: str) -> TableRule:
    return TableRule(column, "in_set", rule, values=values)


def _regex(column: str, regex: str, rule: str) -> TableRule:
    return TableRule(column, "regex", rule, regex=regex)


TABLE_RULES: tuple[TableRule, ...] = (
    _length("track_id", 1, MAX_TRACK_ID_CHARS, f"track_id is required, at most {MAX_TRACK_ID_CHARS} characters"),
    _length("name", 1, MAX_NAME_CHARS, f"name is required, at most {MAX_NAME_CHARS} characters"),
    _length("prompt", 0, MAX_PROMPT_CHARS, f"prompt is at most {MAX_PROMPT_CHARS} characters"),
    _length("lyrics", 0, MAX_LYRICS_CHARS, f"lyrics are at most {MAX_LYRICS_CHARS} characters"),
    _in_set("output_format", OUTPUT_FORMATS, f"output_format must be one of {', '.join(OUTPUT_FORMATS)}"),
    _in_set("output_bit_rate", BIT_RATES, f"output_bit_rate must be one of {', '.join(BIT_RATES)} (kbps)"),
    _in_set("num_songs", tuple(str(n) for n in NUM_SONGS), "num_songs must be 1 or 2"),
    _in_set("store_audio", TRUE_WORDS + FALSE_WORDS, "store_audio must be true or false"),
    _regex("seed", r"^\d*$", "seed must be a non-negative integer"),
    _regex("bpm", rf"^(?:auto|{_NUMBER})?$", "bpm must be a number or 'auto'"),
    _regex("prompt_strength", rf"^{_NUMBER}?$", "prompt_strength must be a non-negative number"),
    _regex("balance_strength", rf"^{_NUMBER}?$", "balance_strength must be a non-negative number"),
    _regex("duration_seconds", rf"^{_NUMBER}?$", "duration_seconds must be a number of seconds"),
    *(_regex(f.name, f"^{f.pattern}$", f.rule) for f in METADATA_FIELDS if f.pattern),
    *(_length(f.name, 0, f.max_chars, f.length_rule) for f in METADATA_FIELDS),
)

# What the contract (textmusic.contract) checks for each row after the table rules, in its own numbers.
CONTRACT_RULES: tuple[str, ...] = (
    "input combination: at least one of prompt, tags, lyrics; lyrics must be paired with prompt or tags; "
    'tags must be paired with prompt or lyrics (lyrics "" for an instrumental); never all three',
    f"seed is at most {SEED_MAX}",
    f"prompt_strength from {PROMPT_STRENGTH_RANGE[0]:g} to {PROMPT_STRENGTH_RANGE[1]:g} "
    f"(default {DEFAULT_PROMPT_STRENGTH:g})",
    f"balance_strength from {BALANCE_STRENGTH_RANGE[0]:g} to {BALANCE_STRENGTH_RANGE[1]:g} "
    f"(default {DEFAULT_BALANCE_STRENGTH:g})",
    f"bpm from {BPM_RANGE[0]:g} to {BPM_RANGE[1]:g}, or 'auto'",
    f"at most {MAX_TAGS} tags, each at most {MAX_TAG_CHARS} characters",
    f"output_bit_rate only with {' or '.join(BIT_RATE_FORMATS)}",
    f"duration_seconds from {DURATION_RANGE[0]:g} to {DURATION_RANGE[1]:g} (local-service extension)",
    f"versions are among {', '.join(VERSION_KINDS)}",
)


def brief_rules(profile: Profile | None = None) -> dict[str, list[str]]:
    """Every rule a brief is held to, by stage, as the report lists them (the provider's, when its profile maps
    the request)."""
    rules = {
        "text (every cell)": [TRACK_ID_RULE, CONTROL_RULE],
        "table (Great Expectations)": [r.rule for r in TABLE_RULES],
        "contract (each row)": list(CONTRACT_RULES),
    }
    if profile is not None and profile.request is not None:
        rules[f"provider {profile.name} (its request mapping)"] = profile.request.rules()
    return rules


def shown(text: str) -> str:
    """A cell as it may be shown in a report or a terminal: control characters escaped, the rest as is."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _controls(column: str) -> re.Pattern[str]:
    return _LYRICS_CONTROL if column == "lyrics" else _CONTROL


def _control_problem(column: str, value: str) -> str | None:
    hit = _controls(column).search(value)
    if hit is None:
        return None
    char = hit.group()[0]
    return f"control character U+{ord(char):04X} at character {hit.start() + 1}; {CONTROL_RULE}"


def _track_id_problem(value: str) -> str | None:
    """Why a (non-empty, control-free) track_id cannot name files, or None."""
    if "/" in value or "\\" in value:
        return f"holds a path separator; {TRACK_ID_RULE}"
    if ".." in value:
        return f"holds '..'; {TRACK_ID_RULE}"
    if value.startswith("."):
        return f"starts with '.'; {TRACK_ID_RULE}"
    for i, char in enumerate(value):
        if not TRACK_ID_CHARS.fullmatch(char):
            return f"character U+{ord(char):04X} at character {i + 1} is not allowed; {TRACK_ID_RULE}"
    return None


def text_rejections(table: pd.DataFrame) -> list[Rejection]:
    """At most one rejection per cell: control characters in any text column, a track_id unfit for a file name.

    Only cells a pattern flags are looked at one by one, so a 10,000-row brief costs a few vectorised scans."""
    rejections: list[Rejection] = []
    if table.empty:  # a header-only brief: its columns hold no strings for `.str` to scan
        return rejections
    for column in table.columns.drop("row"):
        cells = table[column]
        flagged = cells.str.contains(_controls(column), regex=True)
        if column == "track_id":
            flagged |= ~cells.str.fullmatch(_TRACK_ID)
        for row, track_id, value in zip(table["row"][flagged], table["track_id"][flagged], cells[flagged],
                                        strict=True):
            reason = _control_problem(column, value) or _track_id_problem(value)
            if reason:
                rejections.append(Rejection(int(row), track_id, column, reason))
    return rejections


def _expectations() -> list[Any]:
    import great_expectations.expectations as gxe

    def expectation(rule: TableRule) -> Any:
        if rule.kind == "length":
            return gxe.ExpectColumnValueLengthsToBeBetween(
                column=rule.column, min_value=rule.low, max_value=rule.high, description=rule.rule
            )
        if rule.kind == "in_set":
            return gxe.ExpectColumnValuesToBeInSet(column=rule.column, value_set=["", *rule.values],
                                                   description=rule.rule)
        return gxe.ExpectColumnValuesToMatchRegex(column=rule.column, regex=rule.regex, description=rule.rule)

    return [expectation(rule) for rule in TABLE_RULES]


def table_rejections(table: pd.DataFrame) -> list[Rejection]:
    """Run the Great Expectations suite over the whole brief at once; one rejection per failing cell.

    GE's own Data Docs are not written: they load their styles and scripts from CDNs (a bare page offline),
    say "Succeeded" for a brief the contract rejects rows of, and put brief values into the HTML unescaped.
    The report is tasks/intake/report.py's."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("brief")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all rows")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="brief", expectations=_expectations()))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="brief", data=batch, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name="brief", validation_definitions=[definition], actions=[],
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
            value = str(hit.get(column, ""))
            if len(value) > 40:
                value = value[:37] + "..."
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
    if cells.get("key"):
        # The brief's key asks the local service to compose in it (a local extension: a hosted provider is not
        # sent it, and the pipeline only measures what it delivers).
        fields["key"] = cells["key"]
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


def provider_problems(row: int, track_id: str, request: TextToMusicRequest, profile: Profile | None,
                      named: bool = False) -> tuple[list[Rejection], list[RowWarning]]:
    """What the row's provider's request mapping says of a valid row: the rejections (a limit it documents, a
    field it cannot take that the row needs) and the warnings (what the row loses there, e.g. its seed). `named`:
    the row's own `provider` cell chose it, so each reason says which provider it is about."""
    if profile is None or profile.request is None:
        return [], []
    found = profile.request.consequences(request)
    at = f"at {profile.name}: " if named else ""
    return ([Rejection(row, track_id, c.column, at + c.reason) for c in found if c.severity == "rejection"],
            [RowWarning(row, track_id, c.column, at + c.reason) for c in found if c.severity == "warning"])


def grouped_warnings(warnings: list[RowWarning]) -> list[str]:
    """Row warnings as lines a person reads: one per column and reason, with the rows it concerns (a brief of
    10,000 rows without a seed at its provider is one line, not 10,000)."""
    rows: dict[tuple[str, str], list[int]] = defaultdict(list)
    for w in warnings:
        rows[(w.column, w.reason)].append(w.row)
    lines = []
    for (column, reason), numbers in rows.items():
        shown_rows = ", ".join(map(str, numbers[:10])) + (f" … ({len(numbers)} rows)" if len(numbers) > 10 else "")
        lines.append(f"{column}: {reason} (row{'s' if len(numbers) > 1 else ''} {shown_rows})")
    return lines


def _rule_rejections(table: pd.DataFrame) -> list[Rejection]:
    """The text rules, then the table suite for the cells the text rules did not already reject."""
    text = text_rejections(table)
    cells = {(r.row, r.column) for r in text}
    return text + [r for r in table_rejections(table) if (r.row, r.column) not in cells]


def routed(cell: str, profile: Profile | Routes | None) -> tuple[str, Profile | None]:
    """(the row's route, its provider's profile): with `Routes`, as its `provider` cell names it (RouteError: it
    names none this run may use); with one profile, every row is that provider's and the cell must name it."""
    if isinstance(profile, Routes):
        route = profile.route(cell)
        return route, profile.profile(route)
    if cell.strip() and (profile is None or cell.strip() != profile.name):
        raise RouteError(f"this command validates for one provider ({profile.name if profile else 'none named'})")
    return DEFAULT_ROUTE, profile


def validate_brief(table: pd.DataFrame, docs_dir: Path | None = None,
                   profile: Profile | Routes | None = None) -> Validation:
    """Rows that pass the text rules, the table suite, the contract and their provider's profile (its request
    mapping's limits and what it cannot take: the one `profile`, or with `Routes` the one the row's `provider`
    cell names), and a rejection for every rule a row breaks; the provider's warnings for the valid rows. With
    `docs_dir`, the report (index.html) is written there."""
    rejections = _rule_rejections(table)
    bad = {r.row for r in rejections}
    first_seen: dict[str, int] = {}
    rows: list[BriefRow] = []
    warnings: list[RowWarning] = []
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
        try:
            route, at = routed(cells.get("provider", ""), profile)
        except RouteError as exc:
            rejections.append(Rejection(row, track_id, "provider", str(exc)))
            continue
        refused, warned = provider_problems(row, track_id, request, at, named=route != DEFAULT_ROUTE)
        if refused:
            rejections.extend(refused)
            continue
        warnings.extend(warned)
        metadata = {f.name: f.carried(cells[f.name]) for f in METADATA_FIELDS if cells[f.name]}
        rows.append(BriefRow(row=row, track_id=track_id, name=cells["name"], request=request, metadata=metadata,
                             provider=route))
    rejections = sorted((replace(r, track_id=shown(r.track_id)) for r in rejections), key=lambda r: (r.row, r.column))
    warnings = [replace(w, track_id=shown(w.track_id)) for w in warnings]
    validation = Validation(rows=rows, rejections=rejections, warnings=warnings)
    if docs_dir is not None:
        write_validation_page(docs_dir, ValidationReport(
            brief=str(table.attrs.get(BRIEF_ATTR, "")), total=len(table), valid=len(rows),
            rejections=[(r.row, r.track_id, r.column, r.reason) for r in rejections],
            rules=brief_rules(profile.default if isinstance(profile, Routes) else profile),
            warnings=[*table.attrs.get(WARNINGS_ATTR, []), *grouped_warnings(warnings)],
        ))
    return validation
