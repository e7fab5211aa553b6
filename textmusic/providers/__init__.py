"""Provider profiles: what differs between Text-to-Music providers, as data.

A profile names a provider's origin, paths, auth header, where the fields of its answers live, its
status vocabulary, retention, timing and rate limit, and (`[request]`, textmusic/providers/request.py) how our
request becomes its body. Profiles ship for the seed's hosted API
(`verbatik.toml`) and for TrackFoundry's local service (`textmusic-local.toml`); a user points
`TRACKFOUNDRY_PROVIDER` at one of those names or at a TOML file of the same shape (see docs/providers.md).
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from textmusic.contract import FAILED, PENDING, READY, TrackStatus
from textmusic.pricing import SEED_PRICE, Price
from textmusic.providers.callback import MAX_CALLBACK_BYTES, Signature, small_number
from textmusic.providers.request import RequestMap
from textmusic.settings import MAX_IN_FLIGHT, RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW_SECONDS

PROFILE_DIR = Path(__file__).resolve().parent
HOSTED_PROFILE = "verbatik"  # the seed's hosted Text-to-Music API
LOCAL_PROFILE = "textmusic-local"  # TrackFoundry's own local service
# Every profile in this folder, the seed's and the local service's first (each provider's file cites its docs).
SHIPPED: tuple[str, ...] = (HOSTED_PROFILE, LOCAL_PROFILE, *sorted(
    p.stem for p in PROFILE_DIR.glob("*.toml") if p.stem not in (HOSTED_PROFILE, LOCAL_PROFILE)))

# The words hosted music APIs use for a track's state; a profile's own `status_words` add to (or override) them.
DEFAULT_STATUS_WORDS: dict[str, TrackStatus] = {
    **dict.fromkeys(("queued", "submitted", "processing", "running", "streaming", "in_progress", "pending",
                     "generating", "started", "created"), PENDING),
    **dict.fromkeys(("complete", "completed", "succeeded", "success", "done", "ready", "finished"), READY),
    **dict.fromkeys(("error", "failed", "failure", "canceled", "cancelled", "expired"), FAILED),
}


def default_profile_name(local_service: bool) -> str:
    """The shipped profile of a provider no profile is named for: the local service's when the provider is
    a TrackFoundry local service, else the hosted API's."""
    return LOCAL_PROFILE if local_service else HOSTED_PROFILE


def _paths(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class AnswerPaths(BaseModel):
    """Where each fact lives in an answer: dotted paths, tried in order ("" is the answer itself). A path may
    hold `{song}`, the song's place in its task (0, 1 …), where a task makes several songs (`songs_per_task`)."""

    model_config = ConfigDict(extra="forbid")

    tracks: list[str] = ["tracks"]  # the track list of a submission's answer
    track: list[str] = [""]  # the track of a status answer
    id: list[str] = ["id"]
    status: list[str] = ["status"]
    audio_url: list[str] = ["audio_url"]
    duration_seconds: list[str] = ["duration_seconds"]
    cost_cents: list[str] = ["cost_cents"]
    error: list[str] = ["error"]
    seed: list[str] = ["seed"]
    bpm: list[str] = ["bpm"]

    @field_validator("*", mode="before")
    @classmethod
    def _as_lists(cls, value: Any) -> list[str]:
        return _paths(value)


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: int = Field(RATE_LIMIT_REQUESTS, gt=0)
    window_seconds: float = Field(RATE_LIMIT_WINDOW_SECONDS, gt=0)


class Synchronous(BaseModel):
    """A provider whose submission's answer carries the audio itself after the whole generation (30-90 s):
    the raw body (`body`: ElevenLabs Music, Stable Audio with Accept: audio/*), or a JSON answer with the audio
    as hex or base64 in a field (`hex`/`base64`: MiniMax, Stable Audio with Accept: application/json). No status
    endpoint is asked; the POST stays open until the audio comes, up to `timeout_seconds` between bytes."""

    model_config = ConfigDict(extra="forbid")

    audio: Literal["body", "hex", "base64"] = "body"
    field: list[str] = ["audio"]  # hex/base64: dotted paths in the JSON answer, tried in order
    # Headers that name the generation (kept as its generation_id, for the provider's support); none: our own id.
    id_header: list[str] = ["request-id", "x-request-id"]
    timeout_seconds: float = Field(300.0, gt=0)

    @field_validator("field", "id_header", mode="before")
    @classmethod
    def _as_lists(cls, value: Any) -> list[str]:
        return _paths(value)


class CallbackSpec(BaseModel):
    """The profile's `[callback]` table (textmusic/providers/callback.py): the request field that carries the
    callback URL (a dotted path), where the track lives in a callback's body (`answer`, default the profile's
    own answer paths; `status_words` add to the profile's, e.g. a provider's stage names), and the signature
    (None: unsigned, so a callback only says "look now" and one status request confirms it)."""

    model_config = ConfigDict(extra="forbid")

    url_field: str = Field("callBackUrl", min_length=1)
    answer: AnswerPaths | None = None
    status_words: dict[str, TrackStatus] = {}
    signature: Signature | None = None
    max_body_bytes: int = Field(MAX_CALLBACK_BYTES, gt=0)


class Envelope(BaseModel):
    """A provider that answers HTTP 200 with its own status code in the body (sunoapi.org: `{"code": 429, "msg":
    "insufficient credits"}`): a code at `code` other than `ok` is that error, as the HTTP status `statuses` maps it
    to (by default the code itself when it is an HTTP error status, 400-599), with the message at `message`. A code
    that maps to no status is left to the answer's reader."""

    model_config = ConfigDict(extra="forbid")

    code: list[str] = ["code"]
    message: list[str] = ["msg", "message"]
    ok: list[int] = [200]
    statuses: dict[str, int] = {}

    @field_validator("code", "message", mode="before")
    @classmethod
    def _as_lists(cls, value: Any) -> list[str]:
        return _paths(value)

    @field_validator("statuses")
    @classmethod
    def _http_errors(cls, value: dict[str, int]) -> dict[str, int]:
        wrong = {k: v for k, v in value.items() if not 400 <= v <= 599}
        if wrong:
            raise ValueError(f"envelope statuses must map to HTTP error statuses 400-599 (got {wrong})")
        return value

    def status_for(self, code: Any) -> int | None:
        """The HTTP status an envelope's code stands for; None when it is a success or maps to none."""
        if isinstance(code, bool) or code is None:
            return None
        text = str(code).strip()
        if text in (str(ok) for ok in self.ok):
            return None
        if text in self.statuses:
            return self.statuses[text]
        return int(text) if small_number(text) and 400 <= int(text) <= 599 else None

    def mapped(self, code: Any) -> bool:
        """Whether the profile maps this code itself (`statuses`), rather than reading it as the HTTP status of
        the same number."""
        return str(code).strip() in self.statuses


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    base_url: str
    submit_path: str = "/api/v1/text-to-music"
    status_path: str = "/api/v1/text-to-music/{id}"
    # A path whose answer tells whether the key is accepted without costing anything ("" = the status path
    # of a track id that cannot exist: 404 means the key was accepted, 401/403 that it was refused).
    auth_check_path: str = ""
    # A path whose answer holds a finished track's audio when its status answer does not (fal's queue:
    # `.../requests/{id}` after `.../requests/{id}/status` said COMPLETED); "" = the status answer holds it.
    result_path: str = ""
    # Whether status answers name their track; False (fal's queue): an answer without an id is the track polled.
    status_has_id: bool = True
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"  # "" sends the bare key
    # Headers sent with every request to the API's origin (Stable Audio's `Accept: audio/*`); never the key's.
    headers: dict[str, str] = {}
    # A TrackFoundry local service: send `duration_seconds` and the Idempotency-Key header.
    local_extensions: bool = False
    idempotency: bool = False  # the provider honours Idempotency-Key (implied by local_extensions)
    # The provider renders the `midi` version (the composition as a MIDI file). It is delivered through the
    # track's `versions` list, which only a local service answers (`local_extensions`): no hosted answer maps a
    # MIDI URL yet, so a hosted profile that sets it still has its `midi` asks reported not offered.
    offers_midi: bool = False
    retention_seconds: float = Field(7 * 86400, gt=0)  # how long unstored audio stays downloadable
    expected_ready_seconds: float = Field(60.0, gt=0)  # prior for the time to ready, before any is observed
    max_in_flight: int = Field(MAX_IN_FLIGHT, gt=0)
    # The provider's cap on jobs it runs at once per account (Mureka, MusicGPT: ~10), apart from its rate limit:
    # tracks pending at the provider never exceed it. None: no cap.
    max_parallel_jobs: int | None = Field(None, gt=0)
    rate_limit: RateLimit = RateLimit()
    answer: AnswerPaths = AnswerPaths()
    status_words: dict[str, TrackStatus] = {}
    # How the provider charges (textmusic/pricing.py): everything the pipeline prices reads it. No `[price]`
    # table: the seed's $0.20 per minute.
    price: Price = SEED_PRICE
    # The submission's answer carries the audio (see Synchronous); None: submit, then poll for the track.
    sync: Synchronous | None = None
    # How a request becomes the provider's body (textmusic/providers/request.py); None: the seed API's body.
    request: RequestMap | None = None
    # Callbacks (webhooks) instead of polls (textmusic/providers/callback.py); None: the provider is polled.
    callback: CallbackSpec | None = None
    # The songs one task makes under one id (sunoapi.org: 2 per call): a submission's answer naming one task
    # brings that many songs, each read from the task's answers by answer paths holding `{song}`, all of them
    # delivered (a paid song is never forgotten).
    songs_per_task: int = Field(1, ge=1, le=10)
    # Errors said inside a 2xx answer's body (see Envelope); None: a 2xx is a success.
    envelope: Envelope | None = None

    @model_validator(mode="after")
    def _headers_leave_the_key_alone(self) -> Profile:
        """Extra headers never stand in for the key's header, nor for the host, cookies or Idempotency-Key (httpx
        would send both spellings)."""
        reserved = {self.auth_header.lower(), "authorization", "host", "cookie", "idempotency-key"}
        clash = sorted(name for name in self.headers if name.strip().lower() in reserved)
        if clash:
            raise ValueError(f"headers: {', '.join(clash)} cannot be set by a profile (the key's header and the "
                             "request's own headers are the client's)")
        return self

    @property
    def vocabulary(self) -> dict[str, TrackStatus]:
        return {**DEFAULT_STATUS_WORDS, **{k.lower(): v for k, v in self.status_words.items()}}

    def status_for(self, word: str) -> TrackStatus | None:
        """Our status for the provider's word, None when the vocabulary does not know it."""
        return self.vocabulary.get(word.strip().lower())

    def for_callbacks(self) -> Profile:
        """This profile reading a callback's body: the callback's answer paths, its status words added."""
        if self.callback is None:
            raise ValueError(f"provider {self.name} has no [callback] table")
        return self.model_copy(update={"answer": self.callback.answer or self.answer,
                                       "status_words": {**self.status_words, **self.callback.status_words}})

    @property
    def sends_idempotency_key(self) -> bool:
        return self.idempotency or self.local_extensions

    def auth_headers(self, key: str) -> dict[str, str]:
        return {self.auth_header: f"{self.auth_scheme} {key}" if self.auth_scheme else key}

    def to_toml(self) -> str:
        """The profile as a TOML file `load_profile` reads back (probe --write-profile)."""
        lines = []
        data = self.model_dump(exclude={"request", "sync", "callback", "envelope"})
        tables = {k: data.pop(k) for k in ("rate_limit", "answer", "status_words", "price", "headers")}
        if self.sync is not None:
            tables["sync"] = self.sync.model_dump()
        if self.envelope is not None:
            tables["envelope"] = self.envelope.model_dump()
        if self.request is not None:
            mapped = self.request.model_dump(mode="json", exclude_none=True)
            tables["request"] = {k: mapped.pop(k) for k in list(mapped) if not isinstance(mapped[k], dict)}
            tables.update({f"request.{k}": v for k, v in mapped.items()})
        if self.callback is not None:
            callback = self.callback.model_dump(mode="json", exclude_none=True)
            subtables = [k for k in ("answer", "status_words", "signature") if k in callback]
            nested = {f"callback.{k}": callback.pop(k) for k in subtables}
            tables.update({"callback": callback, **nested})
        lines += [f"{k} = {_toml(v)}" for k, v in data.items() if v is not None]  # None: the default
        for table, values in tables.items():
            # keys of ours are bare; a provider's own words are quoted
            bare = table in ("rate_limit", "answer", "price", "sync", "request", "callback", "callback.answer",
                             "callback.signature", "envelope")
            lines += ["", f"[{table}]"] + [f"{k if bare else _toml(k)} = {_toml(v)}" for k, v in values.items()]
        return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table (a request field's mapping)
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


class ProfileError(ValueError):
    pass


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name, or a TOML file."""
    path = PROFILE_DIR / f"{name_or_path}.toml" if str(name_or_path) in SHIPPED else Path(name_or_path)
    if not path.is_file():
        raise ProfileError(f"no provider profile {str(name_or_path)!r}: use one of {', '.join(SHIPPED)} "
                           "or a TOML file")
    try:
        return Profile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ProfileError(f"provider profile {path}: {exc}") from None
