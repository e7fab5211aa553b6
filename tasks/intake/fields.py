"""The catalog metadata fields, each declared once, as beets' `mediafile` declares each tag once.

A field is a brief column carried, unchanged in name, into the ledger and the tags of every file, and
perhaps into the metadata sheets. Everything about it lives in its `MetadataField` below: how its cell is
validated, how each tag format stores it, which sheets export it under which header, whether the catalog
page shows it. The brief's columns, the validation rules, the ledger's columns, the tags written and read
back, the sheets' columns and the page's cards are derived from `METADATA_FIELDS`, so adding a field is one
entry here (then its line in the README's brief table; CONTRIBUTING.md "Add a metadata field").

The sheet names in `sheets` are the keys of `tasks.catalog.sheets.SHEETS` (a layer above this one, so they
are spelled here; tests/tasks/intake/test_fields.py checks each names a sheet).

Standard library only: the brief reader imports this before any heavy import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

MAX_METADATA_CHARS = 500  # the length a metadata cell may have unless its field says otherwise


@dataclass(frozen=True)
class Tag:
    """How every tag format stores a field: under one of mediafile's own fields (`mediafile`: ID3, Vorbis
    and MP4 storage as mediafile declares it), or, for a field mediafile has no name for, under our name
    `custom` (a Vorbis comment, an MP4 freeform `----:com.apple.iTunes:` atom, an ID3 TXXX description, or
    the standard ID3 frame `id3_frame` when there is one). `riff_info`: the WAV LIST-INFO id as well, for
    the fields Windows tools show from that chunk rather than from ID3."""

    mediafile: str = ""
    custom: str = ""
    id3_frame: str | None = None
    riff_info: str = ""


@dataclass(frozen=True)
class MetadataField:
    """One metadata field: brief column, ledger column and tag name `name`.

    `pattern` (a full-match regex, with `rule` saying it in words) holds a non-empty cell to a format;
    `drop` lists characters taken out of the cell before it is carried (an ISRC's optional dashes);
    `from_catalog`: the catalog settings give the value of rows that leave the cell empty; `about` is what
    the sheets' documentation says of it, and `sheets` maps the sheets that export it to their header;
    `on_card`: the catalog page shows it on each track's card."""

    name: str
    tag: Tag
    about: str
    pattern: str = ""
    rule: str = ""
    max_chars: int = MAX_METADATA_CHARS
    drop: str = ""
    from_catalog: bool = False
    on_card: bool = False
    sheets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def length_rule(self) -> str:
        return f"{self.name} is at most {self.max_chars} characters"

    def carried(self, cell: str) -> str:
        """The cell's value as the ledger and the tags keep it."""
        return cell.translate({ord(c): None for c in self.drop})


def _sheets(generic: str = "", harvest: str = "", sourceaudio: str = "") -> Mapping[str, str]:
    """The header of the field in each sheet that exports it as it is (no header: not exported)."""
    headers = {"generic": generic, "harvest": harvest, "sourceaudio": sourceaudio}
    return MappingProxyType({sheet: header for sheet, header in headers.items() if header})


Contribution = Literal["ai", "human", "none"]  # who made a part of a track
_AI_PARTS: tuple[tuple[str, str, str], ...] = (  # (part, in words, what the sheets' documentation says)
    ("composition", "composition", "`ai` (default), `human` or `none`"),
    ("lyrics", "lyrics", "`human` (default for lyrics in the brief), `ai`, or `none` (default: no lyrics)"),
    ("vocals", "vocals", "`ai` (default when the row has lyrics), `human`, or `none` (default: instrumental)"),
    ("instrumentation", "instrumentation", "`ai` (default), `human` or `none`"),
    ("post_production", "post-production", "`none` (default: automatic mastering and edits are signal "
     "processing, not generative), `ai` or `human`"),
)
DISCLOSURE_FIELDS: tuple[str, ...] = tuple(f"ai_{part}" for part, _, _ in _AI_PARTS)

# Library-music conventions; the order is the brief's and the ledger's column order.
METADATA_FIELDS: tuple[MetadataField, ...] = (
    MetadataField("artist", Tag(mediafile="artist", riff_info="IART"), "artist credit", from_catalog=True,
                  sheets=_sheets("artist", sourceaudio="Artist")),
    MetadataField("composer", Tag(mediafile="composer"), "composer credit", from_catalog=True,
                  sheets=_sheets("composer", "Composers")),
    MetadataField("publisher", Tag(mediafile="label"), "publisher credit", from_catalog=True,
                  sheets=_sheets("publisher", "Publishers")),
    MetadataField("mood", Tag(custom="MOOD", id3_frame="TMOO"), "mood from the brief", on_card=True,
                  sheets=_sheets("mood", "Mood", "Mood")),
    MetadataField("key", Tag(mediafile="initial_key"), "musical key from the brief, e.g. `F#m`", on_card=True,
                  pattern=r"(?:[A-G][#b]?m?)?", rule="key is a musical key of at most 3 characters, e.g. C, F#m, Dbm",
                  sheets=_sheets("key", "Key", "Key")),
    MetadataField("isrc", Tag(mediafile="isrc"), "ISRC from the brief",
                  pattern=r"(?:[A-Z]{2}-?[A-Z0-9]{3}-?\d{2}-?\d{5})?", rule="isrc must be an ISRC like USRC17607839",
                  drop="-", sheets=_sheets("isrc", "ISRC", "ISRC")),
    # The sheets show a version as `full` when the brief gave none: their own column, not this field as is.
    MetadataField("version", Tag(custom="VERSION", id3_frame="TIT3"), "the version's label"),
    # Harvest and SourceAudio describe a track by its prompt when the brief has no description: their own column.
    MetadataField("description", Tag(custom="DESCRIPTION_TEXT"), "description from the brief",
                  sheets=_sheets("description")),
    MetadataField("keywords", Tag(custom="KEYWORDS"), "keywords from the brief",
                  sheets=_sheets("keywords", "Keywords", "Keywords")),
    # AI disclosure (DDEX's AI-contribution credits): what of the track a generative model made, per part of
    # `_AI_PARTS`; `disclosure_defaults` gives each part's value when the brief leaves it empty.
    *(MetadataField(f"ai_{part}", Tag(custom=f"AI_{part.upper()}"), f"AI contribution to the {words}: {about}",
                    pattern=r"(?:ai|human|none)?", rule=f"ai_{part} is ai, human or none",
                    sheets=_sheets(f"ai_{part}", f"AI {words.title()}", f"AI {words.title()}"))
      for part, words, about in _AI_PARTS),
)
METADATA_COLUMNS: tuple[str, ...] = tuple(f.name for f in METADATA_FIELDS)
FIELDS_BY_NAME: Mapping[str, MetadataField] = MappingProxyType({f.name: f for f in METADATA_FIELDS})


def disclosure_defaults(has_lyrics: bool) -> dict[str, Contribution]:
    """What a row discloses when its brief leaves the AI-contribution cells empty. The model composes,
    arranges and plays every track; lyrics a brief carries were written by a person (nothing in the pipeline
    writes lyrics), and the model sings them; an instrumental has neither. Mastering and cut-downs are
    deterministic signal processing, no generative model: `none` unless the brief says otherwise."""
    sung = "ai" if has_lyrics else "none"
    return {"ai_composition": "ai", "ai_lyrics": "human" if has_lyrics else "none", "ai_vocals": sung,
            "ai_instrumentation": "ai", "ai_post_production": "none"}
