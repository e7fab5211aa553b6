"""Request mapping: how one contract request becomes a provider's own body, as data in its profile.

Providers want other bodies than the seed API's (`prompt`/`style`/`customMode` at sunoapi.org,
`music_length_ms` at ElevenLabs, `cfg_scale` at Stable Audio). A profile's `[request]` table names each body
field, the contract field it comes from and one transform of a small closed set, plus constant fields and the
limits the provider documents. A profile without it sends the seed API's body, unchanged.

What the provider cannot take follows from the map (a contract field no body field carries) and is said before
paying: `consequences` gives validation the warnings and rejections of one row, read from `UNSENT`, a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from textmusic.contract import (
    BALANCE_STRENGTH_RANGE,
    FORMATS,
    OUTPUT_FORMATS,
    PROMPT_STRENGTH_RANGE,
    TextToMusicRequest,
    is_given,
)

ContractField = Literal[tuple(TextToMusicRequest.model_fields)]  # type: ignore[valid-type]
Constant = str | int | float | bool
Severity = Literal["warning", "rejection"]

# The contract's numeric ranges a `scale` transform maps from (the contract's own numbers, not the profile's).
SCALE_SOURCES: dict[str, tuple[float, float]] = {
    "prompt_strength": PROMPT_STRENGTH_RANGE,
    "balance_strength": BALANCE_STRENGTH_RANGE,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Copy(_Strict):
    """The contract value as it is (JSON); `default` is sent when the row gives none (Sonauto's required
    `prompt`: ""), `integer` sends a number or numeric text as a whole number (the bit rate "192" → 192)."""

    transform: Literal["copy"] = "copy"
    source: ContractField
    # Sent when the source is not given (a provider's word for "none": ACE-Step's lyrics "[inst]"); None: left out.
    default: Constant | None = None
    integer: bool = False  # whole numbers: Stable Audio's form takes duration in whole seconds, Sonauto bit rates


class Milliseconds(_Strict):
    """Seconds → whole milliseconds (`duration_seconds` → ElevenLabs' `music_length_ms`)."""

    transform: Literal["ms"]
    source: Literal["duration_seconds"] = "duration_seconds"


class FormatEnum(_Strict):
    """Our format and bit rate → the provider's word, by the profile's table. A key is `format:kbps` (the bit
    rate the file is encoded at, the format's default when the row names none) or `format` for any bit rate;
    a format the table lacks is a rejection at validation."""

    transform: Literal["format"]
    source: Literal["output_format"] = "output_format"
    table: Annotated[dict[str, str], Field(min_length=1)]

    @model_validator(mode="after")
    def _known_keys(self) -> FormatEnum:
        for key in self.table:
            fmt, _, kbps = key.partition(":")
            if fmt not in FORMATS:
                raise ValueError(f"format table key {key!r}: {fmt!r} is not one of {', '.join(OUTPUT_FORMATS)}")
            if kbps and kbps not in FORMATS[fmt].bit_rates:
                raise ValueError(f"format table key {key!r}: {fmt} has no bit rate {kbps!r}")
        return self

    @property
    def carries(self) -> frozenset[str]:
        """The format, and the bit rate when the table tells bit rates apart."""
        return frozenset({"output_format", *(["output_bit_rate"] if any(":" in k for k in self.table) else [])})

    def word(self, request: TextToMusicRequest) -> str | None:
        kbps = FORMATS[request.output_format].bit_rate_for(request.output_bit_rate)
        return self.table.get(f"{request.output_format}:{kbps}") or self.table.get(request.output_format)


class Scale(_Strict):
    """A number in the contract's range (SCALE_SOURCES) → the same place in the provider's range `to`."""

    transform: Literal["scale"]
    source: Literal[tuple(SCALE_SOURCES)]  # type: ignore[valid-type]
    to: tuple[float, float]
    integer: bool = False  # rounded to a whole number

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.to[0] >= self.to[1]:
            raise ValueError(f"scale `to` must be [low, high] with low < high (got {list(self.to)})")
        return self


JoinSource = Literal["prompt", "tags", "lyrics", "name", "versions"]


class Join(_Strict):
    """Text and lists → one string: the tags ("lofi, chill"), or several fields in order (sunoapi.org's custom
    `style` from the prompt and the tags). Unset sources are skipped; nothing set leaves the field out."""

    transform: Literal["join"]
    source: JoinSource | list[JoinSource] = "tags"
    separator: str = ", "

    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)

    def joined(self, request: TextToMusicRequest) -> str | None:
        parts: list[str] = []
        for name in self.sources:
            value = getattr(request, name)
            parts += value if isinstance(value, list) else [value] if is_given(value) else []
        return self.separator.join(parts) if parts else None


class Instrumental(_Strict):
    """A boolean from the absence of lyrics; the lyrics themselves are not carried by this field."""

    transform: Literal["instrumental"]
    source: Literal["lyrics"] = "lyrics"


def _transform_of(value: Any) -> str:
    return value.get("transform", "copy") if isinstance(value, dict) else getattr(value, "transform", "copy")


BodyField = Annotated[
    Annotated[Copy, Tag("copy")] | Annotated[Milliseconds, Tag("ms")] | Annotated[FormatEnum, Tag("format")]
    | Annotated[Scale, Tag("scale")] | Annotated[Join, Tag("join")] | Annotated[Instrumental, Tag("instrumental")],
    Discriminator(_transform_of),
]


class Limits(_Strict):
    """What the provider's docs allow, checked per row at validation (a row outside is rejected)."""

    min_duration_seconds: Annotated[float, Field(gt=0)] | None = None
    max_duration_seconds: Annotated[float, Field(gt=0)] | None = None
    formats: list[Literal[OUTPUT_FORMATS]] | None = None  # type: ignore[valid-type]
    max_prompt_chars: Annotated[int, Field(gt=0)] | None = None
    max_lyrics_chars: Annotated[int, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        low, high = self.min_duration_seconds, self.max_duration_seconds
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_duration_seconds {low:g} is above max_duration_seconds {high:g}")
        return self


@dataclass(frozen=True)
class Unsent:
    """What it means for a row when the provider takes no such field: `when` the row is concerned
    ("always", or "set": given and not the contract's default), and how much it matters."""

    severity: Severity
    when: Literal["always", "set"]
    reason: str


# A contract field no body field carries, as the user hears of it. Fields not listed (name, store_audio,
# versions …) are left out silently: the provider's defaults apply and nothing the user asked for is lost.
UNSENT: dict[str, Unsent] = {
    "seed": Unsent("warning", "always", "this provider takes no seed: re-renders will not be reproducible"),
    "prompt": Unsent("rejection", "set", "this provider takes no prompt: the row's prompt would not be sent"),
    "tags": Unsent("rejection", "set", "this provider takes no tags: the row's tags would not be sent"),
    "lyrics": Unsent("rejection", "set", "this provider takes no lyrics: the song would be instrumental"),
    "num_songs": Unsent("rejection", "set", "this provider takes no num_songs: ask one song per row"),
    "bpm": Unsent("warning", "set", "this provider takes no bpm: the tempo is the provider's choice"),
    "duration_seconds": Unsent("warning", "set",
                               "this provider takes no duration: the length is the provider's choice"),
    "output_bit_rate": Unsent("warning", "set", "this provider takes no bit rate: the file's is the provider's"),
    "key": Unsent("warning", "set", "this provider takes no key: the key is the provider's choice"),
}


@dataclass(frozen=True)
class Consequence:
    """One thing validation says about one row: the column it concerns and why."""

    severity: Severity
    column: str
    reason: str


class RequestMap(_Strict):
    """A profile's `[request]` table: `fields` (body field → source and transform), `constants` (sent as
    they are), `limits`, and how the body is sent (`encoding`). A dotted field name nests (`input.prompt` is
    Replicate's `{"input": {"prompt": ...}}`)."""

    fields: Annotated[dict[str, BodyField], Field(min_length=1)]
    constants: dict[str, Constant] = {}
    limits: Limits = Limits()
    # json: a JSON body; multipart: multipart/form-data fields, every value as text (Stable Audio's form).
    encoding: Literal["json", "multipart"] = "json"

    @model_validator(mode="after")
    def _no_clash(self) -> RequestMap:
        clash = sorted(set(self.fields) & set(self.constants))
        if clash:
            raise ValueError(f"{', '.join(clash)}: both a mapped field and a constant")
        return self

    @property
    def carried(self) -> frozenset[str]:
        """The contract fields whose values reach the provider (an `instrumental` flag reads lyrics, carries none)."""
        return frozenset().union(*(_carries(f) for f in self.fields.values()))

    def body(self, request: TextToMusicRequest) -> dict[str, Any]:
        """The provider's body: the constants, then each mapped field whose source is set (unset ones are left
        out, so the provider's default applies). A value the map cannot make is a ValueError (validation
        rejects such rows first)."""
        body: dict[str, Any] = {}
        for name, value in [*self.constants.items(), *((n, _value(f, request)) for n, f in self.fields.items())]:
            if value is not None:
                _put(body, name, value)
        return body

    def rules(self) -> list[str]:
        """What validation holds a row to at this provider, in words (the validation report lists them)."""
        said = [f"{u.reason} ({u.severity}{' when a row sets it' if u.when == 'set' else ''})"
                for name, u in UNSENT.items() if name not in self.carried]
        limits = self.limits
        said += [f"{what} (rejection)" for what, given in (
            (f"duration_seconds at least {limits.min_duration_seconds or 0:g} s", limits.min_duration_seconds),
            (f"duration_seconds at most {limits.max_duration_seconds or 0:g} s", limits.max_duration_seconds),
            (f"output_format one of {', '.join(limits.formats or [])}", limits.formats),
            (f"prompt at most {limits.max_prompt_chars} characters", limits.max_prompt_chars),
            (f"lyrics at most {limits.max_lyrics_chars} characters", limits.max_lyrics_chars),
        ) if given is not None]
        said += [f"output_format (and bit rate) one of {', '.join(f.table)} (rejection)"
                 for f in self.fields.values() if isinstance(f, FormatEnum)]
        return said

    def consequences(self, request: TextToMusicRequest) -> list[Consequence]:
        """What the row loses or breaks at this provider: warnings (sent anyway) and rejections (not sent)."""
        found = [Consequence(u.severity, name, u.reason) for name, u in UNSENT.items()
                 if name not in self.carried and _concerned(request, name, u)]
        return found + self._limit_rejections(request) + self._format_rejections(request)

    def _limit_rejections(self, request: TextToMusicRequest) -> list[Consequence]:
        limits, found = self.limits, []
        seconds = request.duration_seconds
        if seconds is not None and limits.min_duration_seconds is not None and seconds < limits.min_duration_seconds:
            found.append(("duration_seconds", f"this provider makes songs of {limits.min_duration_seconds:g} s "
                                              f"or more (got {seconds:g})"))
        if seconds is not None and limits.max_duration_seconds is not None and seconds > limits.max_duration_seconds:
            found.append(("duration_seconds", f"this provider makes songs of at most {limits.max_duration_seconds:g}"
                                              f" s (got {seconds:g})"))
        if limits.formats is not None and request.output_format not in limits.formats:
            found.append(("output_format", f"this provider delivers only {', '.join(limits.formats)} "
                                           f"(got {request.output_format})"))
        for column, limit in (("prompt", limits.max_prompt_chars), ("lyrics", limits.max_lyrics_chars)):
            text = getattr(request, column) or ""
            if limit is not None and len(text) > limit:
                found.append((column, f"this provider takes at most {limit} characters of {column} "
                                      f"(got {len(text)})"))
        return [Consequence("rejection", column, reason) for column, reason in found]

    def _format_rejections(self, request: TextToMusicRequest) -> list[Consequence]:
        tables = [f for f in self.fields.values() if isinstance(f, FormatEnum)]
        if not tables or tables[0].word(request) is not None:
            return []
        kbps = FORMATS[request.output_format].bit_rate_for(request.output_bit_rate)
        asked = f"{request.output_format} at {kbps} kbps" if kbps else request.output_format
        return [Consequence("rejection", "output_bit_rate" if request.output_bit_rate else "output_format",
                            f"this provider takes no {asked} (it takes {', '.join(tables[0].table)})")]


def _put(body: dict[str, Any], dotted: str, value: Any) -> None:
    """`value` at the dotted place in `body`, making the objects on the way."""
    *parents, last = dotted.split(".")
    for part in parents:
        body = body.setdefault(part, {})
        if not isinstance(body, dict):
            raise ValueError(f"request field {dotted!r}: {part!r} is already a value, not an object")
    body[last] = value


def _carries(spec: BodyField) -> frozenset[str]:
    if isinstance(spec, FormatEnum):
        return spec.carries
    if isinstance(spec, Join):
        return frozenset(spec.sources)
    return frozenset() if isinstance(spec, Instrumental) else frozenset({spec.source})


def _concerned(request: TextToMusicRequest, name: str, unsent: Unsent) -> bool:
    if unsent.when == "always":
        return True
    value = getattr(request, name)
    return is_given(value) and value != TextToMusicRequest.model_fields[name].default


def _value(spec: BodyField, request: TextToMusicRequest) -> Any:
    """One body field's value, None when its source is not given."""
    if isinstance(spec, Instrumental):
        return request.is_instrumental
    if isinstance(spec, Join):
        return spec.joined(request)
    raw = getattr(request, spec.source)
    if not is_given(raw):  # None, "" (the contract's instrumental lyrics) or []: the provider's default applies
        return spec.default if isinstance(spec, Copy) else None
    if isinstance(spec, Copy):
        value = request.model_dump(mode="json", include={spec.source})[spec.source]
        return round(float(value)) if spec.integer else value
    if isinstance(spec, Milliseconds):
        return round(raw * 1000)
    if isinstance(spec, FormatEnum):
        word = spec.word(request)
        if word is None:
            raise ValueError(f"the provider takes no {request.output_format} (it takes {', '.join(spec.table)})")
        return word
    if isinstance(spec, Scale):
        low, high = SCALE_SOURCES[spec.source]
        scaled = spec.to[0] + (raw - low) / (high - low) * (spec.to[1] - spec.to[0])
        return round(scaled) if spec.integer else round(scaled, 4)
    raise AssertionError(f"no transform {spec.transform!r}")
