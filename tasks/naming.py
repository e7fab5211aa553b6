"""File names: a template with a documented default, filled per file with safe, bounded parts.

The default, `{catalog}_{track}_{title}_{version}_{bpm}`, names a file the way libraries ask: e.g.
`example_lofi-001_Rainy_Window_30s_84bpm.wav` (the song itself is version `full`, or the brief's own label).
Each part is made safe on its own (no path separators, quotes, formula or shell characters) and bounded, so a
long title never cuts the version or the BPM off a name; an empty part (no BPM reported) leaves no doubled
separator behind. A template must keep `{track}` and `{version}`: they keep a catalog's files apart.
"""

from __future__ import annotations

import hashlib
import re
import string
from pathlib import Path

from pathvalidate import sanitize_filename

MAX_STEM_CHARS = 90
# The template's fields (TRACKFOUNDRY_FILE_NAME_TEMPLATE) and the most characters each takes in a name.
NAME_FIELDS: dict[str, int] = {"catalog": 32, "track": 48, "title": 48, "version": 24, "bpm": 12}
REQUIRED_NAME_FIELDS = ("track", "version")  # what keeps two files of a catalog apart
DEFAULT_FILE_NAME_TEMPLATE = "{catalog}_{track}_{title}_{version}_{bpm}"
MAX_NAME_CHARS = 200


def check_name_template(template: str) -> str:
    """The template, or a ValueError naming the unknown or missing field."""
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    unknown = fields - set(NAME_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; use {', '.join(NAME_FIELDS)}")
    missing = [f for f in REQUIRED_NAME_FIELDS if f not in fields]
    if missing:
        raise ValueError(f"the template must contain {' and '.join('{' + f + '}' for f in missing)}")
    return template


def fill_name(template: str, ext: str, **values: str) -> str:
    """`template` filled with safe, bounded parts; empty parts leave no doubled separator behind."""
    parts = {k: safe_stem(v)[:NAME_FIELDS[k]] if v else "" for k, v in values.items()}
    stem = re.sub(r"[^\w.-]+", "_", template.format(**parts))  # the template's own text made safe too
    stem = re.sub(r"([_-])[_-]+", r"\1", stem).strip("._- ")
    return f"{stem[:MAX_NAME_CHARS].rstrip('._ ') or 'track'}.{ext}"


def safe_stem(text: str) -> str:
    """A file-name stem with no path separators, no leading dots or formula characters, bounded length."""
    stem = sanitize_filename(text, replacement_text="_", platform="universal")
    stem = re.sub(r"[^\w.-]+", "_", stem)  # spaces, quotes, formula and shell characters
    stem = re.sub(r"\.{2,}", "_", stem)
    stem = re.sub(r"_{2,}", "_", stem).lstrip("._-") or "track"
    return stem[:MAX_STEM_CHARS].rstrip("._ ") or "track"


def hashed_stem(text: str, chars: int = 40) -> str:
    """A safe, bounded stem that stays unique for any text: its safe slug plus a short hash of the text
    itself (two hostile ids that slug alike, `a/b` and `a_b`, still get two names)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{safe_stem(text)[:chars]}-{digest}"


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, proven to resolve inside `root` before anything is written there (a ValueError
    otherwise): no name from outside ever writes beside or above the catalog."""
    base = root.resolve()
    path = (base / relative).resolve()
    if path == base or not path.is_relative_to(base):
        raise ValueError(f"{relative!r} would resolve outside {root}")
    return path
