"""Reading a brief (CSV or Parquet) into one canonical text table.

Every cell becomes a string ("" for missing) so that the validator judges what the user wrote, not what
a reader guessed: a seed of 7.5 stays "7.5" and is rejected, rather than silently cast.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pandas as pd

BRIEF_COLUMNS: tuple[str, ...] = (
    "track_id",
    "name",
    "prompt",
    "tags",
    "lyrics",
    "seed",
    "prompt_strength",
    "balance_strength",
    "num_songs",
    "output_format",
    "output_bit_rate",
    "bpm",
    "store_audio",
)
# Catalog metadata carried into the tags (library-music conventions).
METADATA_COLUMNS: tuple[str, ...] = (
    "artist", "composer", "publisher", "mood", "key", "isrc", "version", "description", "keywords",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("duration_seconds", *METADATA_COLUMNS)
TAG_SEPARATOR = "|"


class BriefError(Exception):
    """The brief as a whole cannot be read (missing file, unknown type, no track_id column)."""


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        return TAG_SEPARATOR.join(_cell_text(v) for v in items)
    return str(value)


def _read_csv(path: Path) -> pd.DataFrame:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        sample = fh.read(64 * 1024)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        if dialect.delimiter == TAG_SEPARATOR:  # a pipe-only sample is more likely a tags column
            dialect = csv.excel
    except csv.Error:
        dialect = csv.excel
    return pd.read_csv(
        path,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
        sep=dialect.delimiter,
        quotechar=dialect.quotechar or '"',
        skipinitialspace=False,
    )


def load_brief(path: Path) -> pd.DataFrame:
    """The brief as text, with every known column present and a 1-based `row` (1 = first data row)."""
    path = Path(path)
    if not path.is_file():
        raise BriefError(f"brief not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            raw = _read_csv(path)
        elif suffix in (".parquet", ".pq"):
            raw = pd.read_parquet(path)
        else:
            raise BriefError(f"unknown brief type {suffix!r}: use .csv or .parquet")
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise BriefError(f"cannot read the brief {path.name}: {exc}") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    if "track_id" not in raw.columns:
        raise BriefError(f"the brief {path.name} has no track_id column (columns: {list(raw.columns)})")
    table = pd.DataFrame({"row": range(1, len(raw) + 1)})
    for column in BRIEF_COLUMNS + OPTIONAL_COLUMNS:
        values = raw[column].tolist() if column in raw.columns else [""] * len(raw)
        table[column] = [_cell_text(v).strip() if column != "lyrics" else _cell_text(v) for v in values]
    return table
