"""The plan spec: a library order as TOML, checked by pydantic before anything is planned.

A person writes "120 corporate and tech cues, 90–128 BPM, mostly uplifting, a fifth calm, 20 % with a
female vocal"; the spec says the same in keys (catalogs/plans/corporate.toml is the documented example).
Every key is declared here with `extra="forbid"`, so a misspelt key is refused by name instead of ignored,
and `SpecError` names the bad key and why ("moods.happy: unknown mood; known: …").
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tasks.intake.fields import MAX_METADATA_CHARS
from tasks.intake.planning.vocabulary import MOODS, STYLES
from textmusic.contract import (
    BIT_RATE_FORMATS,
    BIT_RATES,
    BPM_RANGE,
    DURATION_RANGE,
    MAX_LYRICS_CHARS,
    OUTPUT_FORMATS,
    check_version_kinds,
)

VARIED = "varied"
LYRIC_SHEET_SEPARATOR = "---"  # a line of its own between two lyric sheets in a lyrics file
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,40}")
Weight = Annotated[float, Field(gt=0)]


class SpecError(ValueError):
    """The spec cannot be planned; the message names the key and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BpmRange(_Strict):
    """A tempo range (inclusive) and its share of the rows, cut into `bands` equal tempo bands."""

    min: Annotated[int, Field(ge=int(BPM_RANGE[0]), le=int(BPM_RANGE[1]))]
    max: Annotated[int, Field(ge=int(BPM_RANGE[0]), le=int(BPM_RANGE[1]))]
    share: Weight = 1.0
    bands: Annotated[int, Field(ge=1, le=6)] = 3

    @model_validator(mode="after")
    def _ordered(self) -> BpmRange:
        if self.max - self.min < 4 * self.bands:
            raise ValueError(f"max - min must be at least 4 BPM per band ({self.bands} bands): "
                             f"{self.min}-{self.max} is too narrow")
        return self


class Vocals(_Strict):
    """`share` of the rows sing, with `voice`, a lyric sheet from `lyrics` (a file relative to the spec,
    sheets separated by a `---` line). No lyrics are ever generated: without a file, every row is instrumental."""

    share: Annotated[float, Field(ge=0, le=1)] = 0.0
    voice: Literal["female", "male", "duet", "choir"] = "female"
    lyrics: str = ""

    @model_validator(mode="after")
    def _lyrics_when_singing(self) -> Vocals:
        if self.share > 0 and not self.lyrics:
            raise ValueError("a vocal share needs `lyrics`, a file of lyric sheets: lyrics are never generated")
        return self


class Audio(_Strict):
    """What each row asks the provider for: durations (rows rotate through them), format, bit rate, versions."""

    durations: Annotated[list[Annotated[int, Field(ge=int(DURATION_RANGE[0]), le=int(DURATION_RANGE[1]))]],
                         Field(min_length=1)] = [120]
    format: Literal[OUTPUT_FORMATS] = "mp3"  # type: ignore[valid-type]
    bit_rate: Literal[BIT_RATES] | None = None  # type: ignore[valid-type]
    versions: list[str] = []

    @field_validator("versions")
    @classmethod
    def _known_versions(cls, value: list[str]) -> list[str]:
        check_version_kinds(v.lower() for v in value)
        return [v.lower() for v in value]

    @model_validator(mode="after")
    def _bit_rate_format(self) -> Audio:
        if self.bit_rate and self.format not in BIT_RATE_FORMATS:
            raise ValueError(f"bit_rate only with {' or '.join(BIT_RATE_FORMATS)}, not {self.format}")
        return self


class Naming(_Strict):
    """Track ids are `prefix-0001`: a fixed width, so growing a plan never renames the rows it had."""

    prefix: str
    digits: Annotated[int, Field(ge=3, le=6)] = 4

    @field_validator("prefix")
    @classmethod
    def _prefix_chars(cls, value: str) -> str:
        if not _PREFIX.fullmatch(value):
            raise ValueError("prefix is 1-41 of A-Z a-z 0-9 - _, starting with a letter or digit")
        return value


class Metadata(_Strict):
    """Credits every row carries (the brief's `artist`, `publisher`, `composer` columns)."""

    artist: Annotated[str, Field(max_length=MAX_METADATA_CHARS)] = ""
    publisher: Annotated[str, Field(max_length=MAX_METADATA_CHARS)] = ""
    composer: Annotated[str, Field(max_length=MAX_METADATA_CHARS)] = ""

    @field_validator("artist", "publisher", "composer")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
            raise ValueError("holds a control character or line break")
        return value


class Provider(_Strict):
    """The provider profile the estimate prices for (textmusic/providers/<name>.toml) and the budget it must fit."""

    name: str = "textmusic-local"
    budget_usd: Annotated[float, Field(gt=0)] | None = None


class Diversity(_Strict):
    """`min_prompt_distance`: no two prompts nearer (cosine distance of their MiniLM embeddings); rows of one
    style, mood and key are more than `bpm_apart` BPM apart."""

    min_prompt_distance: Annotated[float, Field(ge=0, lt=1)] = 0.05
    bpm_apart: Annotated[int, Field(ge=1, le=20)] = 4


class PlanSpec(_Strict):
    """A whole library order. `styles` and `moods` map names of the vocabulary to weights (normalised), or
    say "varied" (every one, equal weights)."""

    count: Annotated[int, Field(ge=1, le=5000)]
    seed: Annotated[int, Field(ge=0)] = 0
    styles: dict[str, Weight] | Literal["varied"] = VARIED
    moods: dict[str, Weight] | Literal["varied"] = VARIED
    bpm: Annotated[list[BpmRange], Field(min_length=1)]
    vocals: Vocals = Vocals()
    audio: Audio = Audio()
    naming: Naming
    metadata: Metadata = Metadata()
    provider: Provider = Provider()
    diversity: Diversity = Diversity()

    @field_validator("styles")
    @classmethod
    def _known_styles(cls, value: dict[str, float] | str) -> dict[str, float] | str:
        return _known(value, STYLES, "style")

    @field_validator("moods")
    @classmethod
    def _known_moods(cls, value: dict[str, float] | str) -> dict[str, float] | str:
        return _known(value, MOODS, "mood")

    def style_weights(self) -> dict[str, float]:
        return _weights(self.styles, STYLES)

    def mood_weights(self) -> dict[str, float]:
        return _weights(self.moods, MOODS)


def _known(value: dict[str, float] | str, known: object, what: str) -> dict[str, float] | str:
    if isinstance(value, dict):
        if not value:
            raise ValueError(f"name at least one {what}, or say \"varied\"")
        unknown = [name for name in value if name not in known]  # type: ignore[operator]
        if unknown:
            raise ValueError(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")  # type: ignore[call-overload]
    return value


def _weights(value: dict[str, float] | str, known: object) -> dict[str, float]:
    """Weights summing to 1, in the spec's order ("varied": the vocabulary's, equal)."""
    named = value if isinstance(value, dict) else dict.fromkeys(known, 1.0)  # type: ignore[call-overload]
    total = sum(named.values())
    return {name: weight / total for name, weight in named.items()}


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the TOML key a person wrote (`bpm[0].max`, `moods.happy`)."""
    said = ""
    for part in loc:
        if isinstance(part, int):
            said += f"[{part}]"
        elif "[" not in part and "(" not in part:  # not one of pydantic's union or validator labels
            said += f".{part}" if said else part
    return said or "(spec)"


def parse_spec(data: dict[str, object], source: str = "spec") -> PlanSpec:
    """The spec, or a SpecError with one line per bad key: the key, then why."""
    try:
        return PlanSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for issue in exc.errors():
            message = str(issue["msg"]).removeprefix("Value error, ")
            if issue["type"] == "extra_forbidden":
                message = "unknown key"
            lines.append(f"{_where(tuple(issue['loc']))}: {message}")
        raise SpecError(f"{source}: " + "; ".join(dict.fromkeys(lines))) from None


def load_spec(path: Path) -> PlanSpec:
    """Read and check a plan spec (TOML)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not TOML: {exc}") from None
    return parse_spec(data, str(path))


def lyric_sheets(spec: PlanSpec, spec_dir: Path) -> tuple[str, ...]:
    """The lyric sheets the vocal rows draw from (none when the spec has no vocals)."""
    if spec.vocals.share == 0:
        return ()
    path = spec_dir / spec.vocals.lyrics
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"vocals.lyrics: {path} cannot be read: {exc.strerror or exc}") from None
    sheets, current = [], []
    for line in [*text.replace("\r\n", "\n").split("\n"), LYRIC_SHEET_SEPARATOR]:
        if line.strip() == LYRIC_SHEET_SEPARATOR:
            sheet = "\n".join(current).strip()
            if sheet:
                sheets.append(sheet)
            current = []
        else:
            current.append(line.rstrip())
    if not sheets:
        raise SpecError(f"vocals.lyrics: {path} holds no lyric sheet")
    for number, sheet in enumerate(sheets, 1):
        if len(sheet) > MAX_LYRICS_CHARS:
            raise SpecError(f"vocals.lyrics: sheet {number} of {path} is over {MAX_LYRICS_CHARS} characters")
    return tuple(sheets)
