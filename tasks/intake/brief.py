"""Reading a brief (CSV or Parquet) into one canonical text table.

Every cell becomes a string ("" for missing) so that the validator judges what the user wrote, not what
a reader guessed: a seed of 7.5 stays "7.5" and is rejected, rather than silently cast.

A CSV brief is decoded by what its bytes are, never by a guess: a byte-order mark (UTF-8, UTF-16 LE/BE,
UTF-32) says its encoding; else it is UTF-8 if it decodes as UTF-8, else Windows-1252 (Excel's "CSV" on
Windows) if it decodes as that and holds no UTF-8 sequence that cp1252 would mangle. Anything else is
refused with a one-line `BriefError` that says how to save the file instead.

`check_brief` does all the checks that need no table (file, type, encoding, header) with the standard
library only, so a command line can refuse a bad brief before it imports pandas, Prefect or Great
Expectations.

A column the brief has that the pipeline does not know is ignored, with a warning naming the nearest known
column (`unknown_column_warnings`): `tempo` is not silently dropped when `bpm` was meant.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.intake.fields import METADATA_COLUMNS

if TYPE_CHECKING:
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
# `provider`: the provider profile a row goes to (tasks/intake/routes.py); empty: the run's own.
OPTIONAL_COLUMNS: tuple[str, ...] = ("duration_seconds", "versions", "provider", *METADATA_COLUMNS)
TAG_SEPARATOR = "|"
KNOWN_COLUMNS: tuple[str, ...] = BRIEF_COLUMNS + OPTIONAL_COLUMNS
# Words a brief uses for a known column that are not close to it in spelling (difflib finds the typos).
COLUMN_SYNONYMS: dict[str, str] = {
    "tempo": "bpm", "genre": "tags", "style": "tags", "title": "name", "format": "output_format",
    "id": "track_id", "length": "duration_seconds", "label": "publisher", "writer": "composer", "singer": "artist",
}
# `table.attrs` keys load_brief fills: the brief's file name and its unknown-column warnings (for the report).
BRIEF_ATTR = "brief"
WARNINGS_ATTR = "warnings"
_SHOWN_NAME_CHARS = 60

logger = logging.getLogger(__name__)


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


CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
_SAVE_AS = "save it as CSV UTF-8 (Excel: File > Save As > CSV UTF-8) and try again"
# Byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
# Well-formed UTF-8 sequences that cp1252 text hardly ever holds (Ã©, Â°, â€“ ...): a file that has them
# next to invalid bytes is UTF-8 with damage (or two encodings at once), and reading it as cp1252 would
# silently turn every "é" into "Ã©".
_UTF8_SIGNS = re.compile(
    rb"\xc2[\xa0-\xbf]|\xc3[\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def _suffix(path: Path) -> str:
    """The brief's type from its name, once the path is known to be a readable, non-empty file."""
    if not path.exists():
        raise BriefError(f"brief not found: {path}")
    if path.is_dir():
        raise BriefError(f"the brief {path} is a directory, not a file: give the path of the CSV or Parquet file")
    if not path.is_file():
        raise BriefError(f"the brief {path} is not a regular file: give the path of the CSV or Parquet file")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise BriefError(f"unknown brief type {suffix!r} for {path.name}: use .csv (or .tsv/.txt) or .parquet")
    return suffix


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BriefError(f"cannot read the brief {path.name}: {exc.strerror or exc}") from None


def _where(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"byte 0x{data[offset]:02x} at offset {offset}, line {line}"


def _looks_utf16(data: bytes) -> bool:
    """NUL bytes in every other position: UTF-16 text (of mostly ASCII) that lost its byte-order mark."""
    sample = data[:4096]
    halves = sample[0::2], sample[1::2]
    return len(sample) >= 4 and any(h.count(0) >= 0.4 * len(h) for h in halves)


def _decode(path: Path, data: bytes) -> str:
    """The text of a CSV brief, decoded by what its bytes are (see the module's docstring)."""
    name = path.name
    for bom, encoding, label in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                raise BriefError(f"the brief {name} starts with a {label} byte-order mark but is not valid {label} "
                                 f"({exc.reason} at offset {exc.start + len(bom)}): {_SAVE_AS}") from None
    if b"\0" in data and _looks_utf16(data):
        raise BriefError(f"the brief {name} looks like UTF-16 without a byte-order mark: {_SAVE_AS}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
    if _UTF8_SIGNS.search(data):
        raise BriefError(f"the brief {name} mixes UTF-8 with other bytes ({_where(data, bad)} is not UTF-8): "
                         f"{_SAVE_AS}")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise BriefError(f"the brief {name} is neither valid UTF-8 nor Windows-1252 text ({_where(data, exc.start)}): "
                         f"{_SAVE_AS}") from None


def _csv_text(path: Path) -> str:
    data = _read_bytes(path)
    text = _decode(path, data)
    if not text.strip():
        raise BriefError(f"the brief {path.name} is empty: it needs a header row with track_id and one row per track")
    return text


def _dialect(text: str) -> tuple[str, str]:
    """(delimiter, quote character), sniffed from the start of the text."""
    sample = text[: 64 * 1024]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        if dialect.delimiter == TAG_SEPARATOR:  # a pipe-only sample is more likely a tags column
            dialect = csv.excel
    except csv.Error:
        dialect = csv.excel
    return dialect.delimiter, dialect.quotechar or '"'


def _no_track_id(path: Path, columns: list[str]) -> BriefError:
    return BriefError(f"the brief {path.name} has no track_id column (columns: {columns})")


def check_brief(path: Path | str) -> None:
    """Refuse, with a one-line `BriefError`, a brief that cannot be read: missing, a directory, of an
    unknown type, empty, in an encoding that is not UTF-8/UTF-16 (with BOM)/cp1252, without a track_id
    column, or a .parquet file that is not Parquet. Standard library only: cheap to call before any
    heavy import. Rows are not judged here (that is the validator's work), and `load_brief` may still
    refuse a CSV whose body does not parse."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix in PARQUET_SUFFIXES:
        try:
            with open(path, "rb") as fh:
                head = fh.read(4)
        except OSError as exc:
            raise BriefError(f"cannot read the brief {path.name}: {exc.strerror or exc}") from None
        if not head:
            raise BriefError(f"the brief {path.name} is empty: write the brief as Parquet (or CSV) again")
        if head not in (b"PAR1", b"PARE"):
            raise BriefError(f"the brief {path.name} is not a Parquet file: save it as Parquet, or as CSV UTF-8 "
                             "with a .csv name")
        return
    text = _csv_text(path)
    delimiter, quotechar = _dialect(text)
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar), [])
    except csv.Error:
        return  # left to the full reader, which says where the CSV breaks
    columns = [c.strip().lower() for c in header]
    if "track_id" not in columns:
        raise _no_track_id(path, columns)


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    text = _csv_text(path)
    delimiter, quotechar = _dialect(text)
    return pd.read_csv(
        io.StringIO(text, newline=""),
        dtype=str,
        keep_default_na=False,
        sep=delimiter,
        quotechar=quotechar,
        skipinitialspace=False,
    )


def _shown_name(name: str) -> str:
    """A column name fit for a terminal or a log line: control characters escaped, bounded length."""
    shown = name if name.isprintable() else repr(name)[1:-1]
    return shown if len(shown) <= _SHOWN_NAME_CHARS else shown[: _SHOWN_NAME_CHARS - 3] + "..."


def unknown_column_warnings(columns: list[str] | tuple[str, ...]) -> list[str]:
    """One warning per column the pipeline ignores, naming the known column it most likely meant.

    `columns` as the header has them; they are compared as load_brief reads them (trimmed, lower case).
    Standard library only, so a command line can print them before heavy imports."""
    warnings = []
    for column in columns:
        name = str(column).strip().lower()
        if name in KNOWN_COLUMNS:
            continue
        meant = COLUMN_SYNONYMS.get(name) or next(iter(difflib.get_close_matches(name, KNOWN_COLUMNS, n=1)), None)
        hint = f", did you mean `{meant}`?" if meant else ", ignored"
        warnings.append(f"`{_shown_name(name)}`: unknown column{hint}")
    return warnings


def load_brief(path: Path | str) -> pd.DataFrame:
    """The brief as text, with every known column present and a 1-based `row` (1 = first data row).

    Unknown columns are left out and logged as warnings; `table.attrs` keeps the brief's file name and
    those warnings (BRIEF_ATTR, WARNINGS_ATTR) for the validation report."""
    import pandas as pd

    path = Path(path)
    check_brief(path)
    try:
        raw = _read_csv(path) if path.suffix.lower() in CSV_SUFFIXES else pd.read_parquet(path)
    except (UnicodeDecodeError, pd.errors.ParserError, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())  # one line, whatever the reader said
        raise BriefError(f"cannot read the brief {path.name}: {detail}") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    if "track_id" not in raw.columns:
        raise _no_track_id(path, list(raw.columns))
    table = pd.DataFrame({"row": range(1, len(raw) + 1)})
    for column in KNOWN_COLUMNS:
        values = raw[column].tolist() if column in raw.columns else [""] * len(raw)
        table[column] = [_cell_text(v).strip() if column != "lyrics" else _cell_text(v) for v in values]
    warnings = unknown_column_warnings(list(raw.columns))
    for warning in warnings:
        logger.warning("brief %s: %s", path.name, warning)
    table.attrs[BRIEF_ATTR] = path.name
    table.attrs[WARNINGS_ATTR] = warnings
    return table


def with_default_versions(table: pd.DataFrame, versions: str | None) -> pd.DataFrame:
    """`run --versions`: the versions of every row whose own `versions` cell is empty."""
    if not versions:
        return table
    table = table.copy()
    table["versions"] = [cell or versions for cell in table["versions"]]
    return table
