"""httpx client for the Text-to-Music API (hosted or local): submit, poll, download.

Errors become typed exceptions per status, so callers choose a policy per error class. The API key is
sent only to the configured API origin and never appears in an exception or a repr.

Providers are not trusted: answers are read as a stream up to a cap and refused past it, decoded in bounded
steps (a gzip bomb stops after a few MB), registered keys are redacted from every message and answer, a
track id is sent as one percent-encoded path segment, another origin's error body is never copied, and a
download stops at its byte, ratio, stall and time limits with its partial file removed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import brotli
import httpx
from pydantic import SecretStr, ValidationError
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from textmusic import redaction
from textmusic.contract import (
    FAILED,
    IDEMPOTENCY_HEADER,
    LOCAL_EXTENSION_FIELDS,
    MIDI_VERSION,
    PENDING,
    READY,
    TextToMusicRequest,
    TextToMusicResponse,
    Track,
)
from textmusic.providers import Profile, default_profile_name, load_profile
from textmusic.providers.callback import with_url
from textmusic.providers.reader import (
    AnswerRefused,
    first,
    parse_answer,
    read_songs,
    read_status,
    read_submission,
    read_sync_answer,
    track_id,
)
from textmusic.settings import TextMusicSettings

T = TypeVar("T")
MAX_REDIRECTS = 5
MAX_RETRY_AFTER_SECONDS = 120.0
RAW_KEEP_CHARS = 64_000
# The encodings _Decoder decodes in bounded steps; httpx would also advertise zstd when it is installed.
ACCEPT_ENCODING = "gzip, deflate, br"
DECODE_STEP_BYTES = 1 << 16  # the most a decoder yields per step, whatever the compression ratio
RATIO_FLOOR_BYTES = 1 << 16  # the decompression ratio is judged on at least this many wire bytes
FOREIGN_PEEK_BYTES = 1 << 16  # how much of another origin's error body is counted (never kept)
DownloadLimitKind = Literal["bytes", "ratio", "deadline"]


class TextMusicError(Exception):
    """An error answered by the provider (or the lack of an answer)."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        # Redacted here, so no path that builds an error (a provider echoing the key) can leak it.
        message = redaction.redact(message)
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else self.status
        self.code = redaction.redact(code) if code is not None else None


class InvalidRequest(TextMusicError):
    status = 400


class Unauthorized(TextMusicError):
    status = 401


class InsufficientBalance(TextMusicError):
    status = 402


class NotFound(TextMusicError):
    status = 404


class Gone(TextMusicError):
    status = 410


class RateLimited(TextMusicError):
    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(TextMusicError):
    """5xx, or the provider could not be reached: worth retrying."""


class PollTimeout(TextMusicError):
    """A track stayed pending past the deadline."""


class BadDownload(TextMusicError):
    """The audio download was cut short or could not be fetched."""


class DownloadLimit(BadDownload):
    """A download passed one of its limits (`limit`): never retried, since the same file would pass it again
    (a 5 GiB Content-Length is refused once, not fetched six times)."""

    def __init__(self, message: str, *, limit: DownloadLimitKind, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.limit: DownloadLimitKind = limit


class SyncAudioLost(BadDownload):
    """A synchronous answer was accepted (paid) but its audio could not be taken whole: cut off, over a limit,
    or not where the profile says. Never retried: the request would be paid again."""


class SyncRefused(TextMusicError):
    """A synchronous answer that began 2xx, but whose body is the provider's error (its profile's `[envelope]`:
    MiniMax's `base_resp.status_code`): the provider refused the request and charged nothing, so it is handled
    as `error`, the HTTP error it stands for (a 429 waits its turn, a 401 stops the run). `unpaid`: the code was
    one the profile maps (a refusal); else the provider's application took the request and it stays at risk."""

    def __init__(self, error: TextMusicError, *, unpaid: bool) -> None:
        super().__init__(str(error), status=error.status)
        self.error, self.unpaid = error, unpaid


class UnreadableStatus(TextMusicError):
    """A status answer that cannot be read (not JSON, an HTML page, too large, too deep, no usable id). Not
    retried here: the poller counts it against its deadline and polls again later."""


class Unreachable(ServerError):
    """The provider could not be reached (the request was not sent): worth retrying, and a sign of an outage."""


class Unanswered(TextMusicError):
    """A submission was sent and its answer lost: the provider may have accepted (and charged) it."""


class AcceptedUnread(TextMusicError):
    """A 2xx answer to a submission that cannot be used: accepted (maybe charged), never sent again."""

    def __init__(self, message: str, *, raw: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.raw = redaction.redact(raw)


class UnreadableAnswer(AcceptedUnread):
    """The 2xx answer is not JSON, or holds no track the profile can find."""


class Refused(AcceptedUnread):
    """The 2xx answer says `success: false`."""


@dataclass(frozen=True)
class Answer:
    """An answer of the API origin, its body read up to the cap. `unread` says why the body was not read
    (larger than the cap, or not decodable); the body is then empty."""

    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    body: bytes
    unread: str | None = None


@dataclass(frozen=True)
class Download:
    """What a download saw: bytes kept, bytes over the wire, encoding, where the audio really lived (the
    probe reports it)."""

    bytes_written: int
    wire_bytes: int
    content_encoding: str
    host: str
    redirects: list[str]
    content_type: str


_BY_STATUS: dict[int, type[TextMusicError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    402: InsufficientBalance,
    404: NotFound,
    410: Gone,
    422: InvalidRequest,
    429: RateLimited,
}


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After in seconds or as an HTTP date (RFC 9110), as seconds from now."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_from_response(answer: Answer) -> TextMusicError:
    """Map an error answer of the API origin to its exception, keeping the provider's own message (bounded;
    the key redacted when the exception is made)."""
    code, message = None, answer.reason_phrase or f"HTTP {answer.status_code}"
    try:
        body = parse_answer(answer.body) if answer.unread is None else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        found = error.get("code")
        code, message = str(found)[:100] if found is not None else None, str(error.get("message") or message)
    elif isinstance(error, str):
        message = error
    return _error_for(answer.status_code, f"HTTP {answer.status_code}: {message[:1000]}", code, answer.headers)


def _error_for(status: int, text: str, code: str | None, headers: httpx.Headers) -> TextMusicError:
    """The exception for an error status."""
    if status == 429:
        return RateLimited(text, status=status, code=code,
                           retry_after=retry_after_seconds(headers.get("Retry-After")))
    if status >= 500:
        return ServerError(text, status=status, code=code)
    return _BY_STATUS.get(status, TextMusicError)(text, status=status, code=code)


def _foreign_error(response: httpx.Response, what: str) -> TextMusicError:
    """An error from another origin (a CDN, a redirect's target): its status and body size only. Its body
    is not ours to copy: it may hold signed URLs, tokens, or anything the other host chose to put there."""
    size = 0
    for raw in _wire(response)[0]:
        size += len(raw)
        if size > FOREIGN_PEEK_BYTES:
            break
    told = f"more than {FOREIGN_PEEK_BYTES}" if size > FOREIGN_PEEK_BYTES else str(size)
    return _error_for(response.status_code, f"HTTP {response.status_code} from {response.url.host} for {what} "
                      f"({told} bytes of answer, not shown)", None, response.headers)


def path_segment(text: str) -> str:
    """`text` as ONE path segment: every reserved character percent-encoded ("/", "?", "#", "%"), and "."
    or ".." spelled %2E, so a track id cannot climb out of the status path or add a query."""
    segment = quote(text, safe="")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


class _Undecodable(ValueError):
    """A body that does not decode as its Content-Encoding says."""


class _Decoder:
    """Content-Encoding decoded in bounded steps: at most DECODE_STEP_BYTES per step, however much the
    input expands, so a limit is checked every 64 KiB (httpx decodes a whole wire chunk at once: 64 KiB of
    a gzip bomb is 64 MB). An encoding it does not know passes through as is, as httpx does."""

    def __init__(self, encoding: str) -> None:
        kind = encoding.strip().lower()
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32) if kind in ("gzip", "x-gzip", "deflate") else None
        self._brotli = brotli.Decompressor() if kind == "br" else None

    def decode(self, data: bytes) -> Iterator[bytes]:
        try:
            if self._zlib is not None:
                yield from self._inflate(self._zlib, data)
            elif self._brotli is not None:
                yield from self._unbrotli(self._brotli, data)
            elif data:
                yield data
        except (zlib.error, brotli.error) as exc:
            raise _Undecodable(str(exc)) from None

    @staticmethod
    def _inflate(inflater: Any, data: bytes) -> Iterator[bytes]:
        while True:
            out = inflater.decompress(data, DECODE_STEP_BYTES)
            if out:
                yield out
            data = inflater.unconsumed_tail
            if not data and len(out) < DECODE_STEP_BYTES:
                return

    @staticmethod
    def _unbrotli(decompressor: Any, data: bytes) -> Iterator[bytes]:
        """A full step may leave output pending (even when it says it can accept more): ask until a step
        comes back short."""
        while True:
            out = decompressor.process(data, output_buffer_limit=DECODE_STEP_BYTES)
            if out:
                yield out
            data = b""
            if len(out) < DECODE_STEP_BYTES and decompressor.can_accept_more_data():
                return


def _wire(response: httpx.Response) -> tuple[Iterator[bytes], str]:
    """The body as it comes off the connection, and its Content-Encoding. An answer built in memory (a
    test's transport) never had a wire: its content is already decoded."""
    if response.is_stream_consumed:
        return iter([response.content]), ""
    return response.iter_raw(), response.headers.get("Content-Encoding", "")


@dataclass
class _Meter:
    """One download attempt's bytes against its limits (wire and decoded bytes, decoded/wire ratio, the
    download's deadline): a breach raises DownloadLimit at once."""

    what: str
    max_bytes: int
    max_ratio: float
    deadline: float  # time.monotonic() by which the whole download (all attempts) must be done
    wire: int = 0
    written: int = 0

    def check_length(self, content_length: str | None) -> None:
        """A Content-Length past the limit is refused before a byte of the body is read."""
        if content_length is not None and content_length.isdigit() and int(content_length) > self.max_bytes:
            raise DownloadLimit(f"download of {self.what}: Content-Length {content_length} is over the limit of "
                                f"{self.max_bytes} bytes", limit="bytes")

    def add_wire(self, size: int) -> None:
        self.wire += size
        if self.wire > self.max_bytes:
            raise DownloadLimit(f"download of {self.what}: more than {self.max_bytes} bytes on the wire",
                                limit="bytes")
        self.check_time()

    def add_decoded(self, size: int) -> None:
        self.written += size
        if self.written > self.max_bytes:
            raise DownloadLimit(f"download of {self.what}: decodes to more than {self.max_bytes} bytes",
                                limit="bytes")
        if self.written > self.max_ratio * max(self.wire, RATIO_FLOOR_BYTES):
            raise DownloadLimit(f"download of {self.what}: {self.wire} bytes decode to more than "
                                f"{self.max_ratio:g} times as many (a compression bomb?)", limit="ratio")

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise DownloadLimit(f"download of {self.what}: not done by its deadline", limit="deadline")


def _decoded(response: httpx.Response, meter: _Meter) -> Iterator[bytes]:
    """The body decoded in bounded steps, every wire chunk and decoded step counted against the meter's limits."""
    chunks, encoding = _wire(response)
    decoder = _Decoder(encoding)
    for raw in chunks:
        meter.add_wire(len(raw))
        for piece in decoder.decode(raw):
            meter.add_decoded(len(piece))
            yield piece


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RateLimited | ServerError)


def _wait_for(retry_state: Any) -> float:
    """Wait Retry-After on a 429 when the provider says; otherwise exponential backoff with jitter."""
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return min(exc.retry_after, MAX_RETRY_AFTER_SECONDS)
    return wait_exponential_jitter(multiplier=0.5, max=20.0)(retry_state)


def _form_text(value: Any) -> str:
    """A body value as a form field's text: booleans as JSON spells them, objects as JSON."""
    if isinstance(value, bool | dict | list):
        return json.dumps(value)
    return str(value)


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


class TextMusicClient:
    """One provider connection, read through its profile. `throttle` is called before each request that
    the provider meters (submissions and polls; audio downloads are not metered)."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | str,
        *,
        profile: Profile | None = None,
        settings: TextMusicSettings | None = None,
        local_extensions: bool = False,
        throttle: Callable[[], None] | None = None,
        monitor: Callable[[int | None], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings or TextMusicSettings()
        if profile is None:
            profile = load_profile(default_profile_name(local_extensions))
        self.base_url = base_url.rstrip("/")
        self.profile = profile.model_copy(update={"base_url": self.base_url})
        self.local_extensions = self.profile.local_extensions
        self._throttle = throttle or (lambda: None)
        # Told the status of every answer of the API origin (None: no answer): adaptive concurrency and
        # outage detection listen here.
        self.monitor = monitor or (lambda status: None)
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self._secret = key.get_secret_value()
        redaction.register(self._secret)
        settings = self.settings
        timeout = httpx.Timeout(settings.request_timeout_seconds, connect=settings.connect_timeout_seconds)
        # A download that receives no byte for download_stall_seconds has stalled.
        self._download_timeout = httpx.Timeout(settings.request_timeout_seconds,
                                               connect=settings.connect_timeout_seconds,
                                               read=settings.download_stall_seconds)
        limits = httpx.Limits(max_connections=settings.max_connections,
                              max_keepalive_connections=settings.max_connections)
        accept = {"Accept-Encoding": ACCEPT_ENCODING}
        headers = {**accept, **self.profile.headers, **self.profile.auth_headers(self._secret)}  # the key's header wins
        self._http = httpx.Client(base_url=self.base_url, headers=headers,
                                  timeout=timeout, transport=transport, limits=limits)
        # Audio elsewhere (a CDN, a signed redirect) never receives the key.
        self._anon = httpx.Client(headers=accept, timeout=timeout, transport=transport, limits=limits)
        self.attempts = 0

    def __repr__(self) -> str:
        return f"TextMusicClient({self.base_url!r}, profile={self.profile.name!r})"

    def fork(self) -> TextMusicClient:
        """A view sharing this client's connections (thread-safe) with its own attempt count, e.g. per row."""
        view = copy.copy(self)
        view.attempts = 0
        return view

    def close(self) -> None:
        self._http.close()
        self._anon.close()

    def __enter__(self) -> TextMusicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def redact(self, text: str) -> str:
        """Text with the keys taken out (every spelling; see textmusic.redaction), for anything kept or shown."""
        return redaction.redact(text)

    # -- the request layer: everything below says only what it needs ------------------------------------

    def _send(self, method: str, path: str, *, replayable: bool, parse: Callable[[Answer], T],
              body: Any = None, headers: dict[str, str] | None = None) -> T:
        """One request with retries: throttling, attempt counting, transport errors mapped by whether the
        request may have reached the provider, status → exception, and `parse` of the 2xx answer (a parse
        that raises ServerError is retried like the request itself).

        Not `replayable` (a POST without an Idempotency-Key): a request whose answer was lost after it was
        sent, or a gateway's 502/504 (the provider behind it may have accepted it), is never sent again
        (`Unanswered`); a 500/503 is the provider's own refusal and is retried, as are connections refused."""
        for attempt in self._retrying():
            with attempt:
                return parse(self._once(method, path, replayable=replayable, body=body, headers=headers))
        raise AssertionError("unreachable")

    def _once(self, method: str, path: str, *, replayable: bool, body: Any,
              headers: dict[str, str] | None) -> Answer:
        self.attempts += 1
        self._throttle()
        with self._transport(replayable):
            response = self._http.send(self._http.build_request(method, path, headers=headers,
                                                                **self._content(body)), stream=True)
            try:
                answer = self._answer(response)
            finally:
                response.close()  # past the cap: the rest is never read (the connection is dropped)
        answer, guessed = self._enveloped(answer)
        self.monitor(answer.status_code)
        if 200 <= answer.status_code < 300:
            return answer
        if guessed and not replayable and answer.status_code >= 500:
            raise Unanswered(f"the provider answered with its own error {answer.reason_phrase} inside a 2xx: it may "
                             "have made the task anyway, so the request is not sent again", status=answer.status_code)
        raise self._not_accepted(answer, replayable)

    def _enveloped(self, answer: Answer, body: Any = None) -> tuple[Answer, bool]:
        """A 2xx answer whose body says an error (the profile's `[envelope]`: sunoapi.org's `{"code": 429, ...}`)
        as the HTTP answer it stands for: the error's status, its message as `{"error": ...}`. The provider said
        it refused the request, so it is an error like any other (a 402 stops paying, a mapped 5xx is retried).
        Also whether the status was only guessed from the code's number (not mapped by the profile): a guessed 5xx
        to a submission is held as unanswered, since the provider's application did take the request. `body`: the
        answer already parsed, if it was."""
        spec = self.profile.envelope
        if spec is None or not 200 <= answer.status_code < 300 or answer.unread is not None:
            return answer, False
        try:
            body = parse_answer(answer.body) if body is None else body
        except ValueError:
            return answer, False
        if not isinstance(body, dict):
            return answer, False
        code = first(body, spec.code)
        status = spec.status_for(code)
        if status is None:
            return answer, False
        said = first(body, spec.message)
        message = f"{said if isinstance(said, str | int | float) else 'no message'} (code {str(code)[:20]})"
        return Answer(status, f"code {str(code)[:20]}", answer.headers,
                      json.dumps({"error": message[:1000]}).encode()), not spec.mapped(code)

    @contextlib.contextmanager
    def _transport(self, replayable: bool) -> Iterator[None]:
        """Transport errors mapped by whether the request may have reached the provider: not connected is
        retried; sent and unanswered is retried only when `replayable`, else held as `Unanswered`."""
        try:
            yield
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self.monitor(None)
            raise Unreachable(f"cannot reach the provider: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            self.monitor(None)
            if replayable:
                raise ServerError(f"the answer was lost ({type(exc).__name__}); sent again") from None
            raise Unanswered(f"the request was sent but no answer came ({type(exc).__name__}); it may have "
                             "been charged, so it is not sent again") from None

    @staticmethod
    def _not_accepted(answer: Answer, replayable: bool) -> TextMusicError:
        """The error for a non-2xx answer; a gateway's 502/504 to a request that cannot be replayed is held as
        unanswered (the provider behind it may have accepted it)."""
        if not replayable and answer.status_code in (502, 504):
            return Unanswered(f"HTTP {answer.status_code} from a gateway: the provider behind it may have "
                              "accepted the request, so it is not sent again", status=answer.status_code)
        return error_from_response(answer)

    def _answer(self, response: httpx.Response) -> Answer:
        """The answer with its body read as a stream up to max_answer_bytes (decoded), not a byte further."""
        cap, pieces, size = self.settings.max_answer_bytes, [], 0
        answer = functools.partial(Answer, response.status_code, response.reason_phrase, response.headers)
        chunks, encoding = _wire(response)
        decoder = _Decoder(encoding)
        try:
            for raw in chunks:
                for piece in decoder.decode(raw):
                    size += len(piece)
                    if size > cap:
                        return answer(b"", f"the answer is larger than {cap} bytes")
                    pieces.append(piece)
        except _Undecodable:
            return answer(b"", f"the answer does not decode as {encoding}")
        return answer(b"".join(pieces))

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=_wait_for,
            stop=stop_after_attempt(self.settings.max_attempts),
            reraise=True,
        )

    def _content(self, body: Any) -> dict[str, Any]:
        """How a body goes on the wire: JSON, or the multipart form the profile's request map asks for."""
        if body is None:
            return {}
        if self.profile.request is not None and self.profile.request.encoding == "multipart":
            return {"files": {name: (None, _form_text(value)) for name, value in body.items()}}
        return {"json": body}

    @staticmethod
    def _raw(answer: Answer) -> str:
        """The answer as kept for support: bounded (the key is redacted by the exception that keeps it)."""
        return answer.body[:RAW_KEEP_CHARS].decode("utf-8", errors="replace")

    @staticmethod
    def _body(answer: Answer) -> Any:
        """The parsed answer with every registered key redacted from its strings, before anything reads it."""
        if answer.unread is not None:
            raise ValueError(answer.unread)
        return redaction.redact_value(parse_answer(answer.body))

    def _read_submission(self, answer: Answer) -> TextToMusicResponse:
        """A 2xx answer to a submission; whatever is wrong with it (not JSON, too large or deep, no track the
        profile finds, bad fields), it was accepted: never retried."""
        try:
            return read_submission(self.profile, self._body(answer))
        except AnswerRefused as exc:
            raise Refused(f"accepted with success: false: {exc}", raw=self._raw(answer),
                          status=answer.status_code) from None
        except (ValueError, ValidationError) as exc:
            raise UnreadableAnswer(f"accepted by the provider, answer unreadable: {str(exc)[:200]}",
                                   raw=self._raw(answer), status=answer.status_code) from None

    def _read_songs(self, track_id: str, songs: int, answer: Answer) -> list[Track]:
        """A status answer's first `songs` songs (one, unless a task makes several); an unreadable answer raises
        UnreadableStatus (the poller's back-off decides when to ask again, not this client's retries)."""
        try:
            asked = None if self.profile.status_has_id else track_id
            body = self._body(answer)
            if songs == 1:
                return [read_status(self.profile, body, asked)]
            return read_songs(self.profile, body, asked)[:songs]
        except AnswerRefused as exc:
            return [Track(id=track_id, status=FAILED, error=str(exc))] * songs
        except (ValueError, ValidationError) as exc:
            raise UnreadableStatus(f"unreadable status answer for {track_id}: {str(exc)[:200]}",
                                   status=answer.status_code) from None

    # -- what callers need ---------------------------------------------------------------------------------

    def request_body(self, request: TextToMusicRequest) -> dict[str, Any]:
        """The JSON body, every set field explicit (a provider's defaults may change); the local
        extensions (duration_seconds, versions) only for the local provider. A profile with a `[request]`
        table gets its own body instead (textmusic/providers/request.py)."""
        if self.profile.request is not None:
            return self.profile.request.body(request)
        body = request.model_dump(mode="json", exclude_none=True)
        if not self.local_extensions:
            for name in LOCAL_EXTENSION_FIELDS:
                body.pop(name, None)
        elif not self.profile.offers_midi and MIDI_VERSION in body.get("versions", ()):
            body["versions"].remove(MIDI_VERSION)  # a service that renders no MIDI would refuse the whole request
        return body

    def submit(self, request: TextToMusicRequest, idempotency_key: str | None = None,
               callback_url: str | None = None) -> TextToMusicResponse:
        """POST a request. Any 2xx is an acceptance (200, 201, 202) and is never sent again, whatever its
        body: an unreadable one raises `UnreadableAnswer` and `success: false` raises `Refused`, both
        carrying the raw answer (key redacted). Lost answers are retried only with an `idempotency_key`.
        `callback_url` goes in the field the profile's `[callback]` table names."""
        key = idempotency_key if self.profile.sends_idempotency_key else None
        body = self.request_body(request)
        if callback_url is not None and self.profile.callback is not None:
            body = with_url(body, self.profile.callback.url_field, callback_url)
        return self._send("POST", self.profile.submit_path, replayable=key is not None,
                          parse=self._read_submission, body=body,
                          headers={IDEMPOTENCY_HEADER: key} if key else None)

    def submit_sync(self, request: TextToMusicRequest, dest: Path, accepted: Callable[[str], None], *,
                    idempotency_key: str | None = None, max_bytes: int | None = None) -> Track:
        """POST a request whose answer carries the audio (a profile's `[sync]`), written into `dest` as it
        arrives, with a download's limits (`max_bytes` tightens the byte limit). Until an answer begins, errors
        are `submit`'s. `accepted` is told the generation's id the moment a 2xx answer begins, before a byte of
        its body is read (the caller journals the row as paid); from then on the request is never sent again,
        and audio that does not come whole raises SyncAudioLost with `dest` removed."""
        key = idempotency_key if self.profile.sends_idempotency_key else None
        limit = self.settings.max_download_bytes if max_bytes is None else min(max_bytes,
                                                                                 self.settings.max_download_bytes)
        for attempt in self._retrying():
            with attempt:
                return self._sync_once(request, dest, accepted, key, limit)
        raise AssertionError("unreachable")

    def _sync_once(self, request: TextToMusicRequest, dest: Path, accepted: Callable[[str], None],
                   key: str | None, limit: int) -> Track:
        sync = self.profile.sync
        if sync is None:
            raise ValueError(f"profile {self.profile.name!r} has no [sync] table: its answers carry no audio")
        self.attempts += 1
        self._throttle()
        # The answer begins only when the audio is made: the read timeout is the profile's, not a poll's.
        timeout = httpx.Timeout(sync.timeout_seconds, connect=self.settings.connect_timeout_seconds)
        built = self._http.build_request("POST", self.profile.submit_path, **self._content(self.request_body(request)),
                                         headers={IDEMPOTENCY_HEADER: key} if key else None, timeout=timeout)
        with self._transport(key is not None):
            response = self._http.send(built, stream=True)
        try:
            self.monitor(response.status_code)
            if not response.is_success:
                with self._transport(key is not None):
                    answer = self._answer(response)
                raise self._not_accepted(answer, key is not None)
            generation_id = self._generation_id(response.headers)
            accepted(generation_id)
            return self._take_audio(response, dest, generation_id, limit)
        finally:
            response.close()

    def _generation_id(self, headers: httpx.Headers) -> str:
        """The provider's name for a synchronous generation (for its support), else one of ours."""
        for name in self.profile.sync.id_header if self.profile.sync else ():
            value = headers.get(name)
            if value is None or redaction.redact(value) != value:  # a provider echoing the key names nothing
                continue
            try:
                return track_id(value)
            except ValueError:
                continue
        return f"sync-{uuid.uuid4().hex}"

    def _take_audio(self, response: httpx.Response, dest: Path, generation_id: str, limit: int) -> Track:
        """A paid synchronous answer's audio into `dest`: the body itself, or decoded from its JSON."""
        sync = self.profile.sync
        assert sync is not None
        hexed = sync.audio != "body"
        # hex doubles the audio's size, base64 adds a third: the JSON may be that much larger than the audio.
        meter = _Meter(f"the answer of {generation_id}", 2 * limit + RATIO_FLOOR_BYTES if hexed else limit,
                       self.settings.max_decompression_ratio,
                       time.monotonic() + self.settings.download_deadline_seconds)
        with self._lost_unless_whole(response, dest, generation_id, meter):
            meter.check_length(response.headers.get("Content-Length"))
            if not hexed:
                self._save(response, dest, meter)
                return Track(id=generation_id, status=READY)
            answer = Answer(response.status_code, response.reason_phrase, response.headers,
                            self._metered(response, meter))
            body = self._body(answer)  # parsed once: the audio may be megabytes of hex
        self._raise_refusal(answer, body)
        with self._lost_unless_whole(response, dest, generation_id, meter):
            audio, track = read_sync_answer(self.profile, body, generation_id)
            if len(audio) > limit:
                raise DownloadLimit(f"the audio of {generation_id} is over the limit of {limit} bytes", limit="bytes")
            dest.write_bytes(audio)
        return track

    @staticmethod
    @contextlib.contextmanager
    def _lost_unless_whole(response: httpx.Response, dest: Path, generation_id: str, meter: _Meter) -> Iterator[None]:
        """A paid synchronous answer's audio that does not come whole: `dest` removed, SyncAudioLost raised."""
        try:
            yield
        except (httpx.TransportError, _Undecodable, TextMusicError, ValueError) as exc:
            dest.unlink(missing_ok=True)
            told = exc.message if isinstance(exc, TextMusicError) else type(exc).__name__
            raise SyncAudioLost(f"paid, but the audio of {generation_id} did not come whole after {meter.wire} "
                                f"bytes ({told[:300]}): never sent again", status=response.status_code) from None

    def _raise_refusal(self, answer: Answer, body: Any) -> None:
        """A synchronous JSON answer (`body`, parsed) that is the provider's error in a 2xx (its profile's
        `[envelope]`): SyncRefused, with the HTTP error it stands for (a gateway's or an unmapped 5xx: held as
        unanswered, it may be paid). An answer that holds audio where `[sync]` says was paid, whatever else."""
        mapped, guessed = self._enveloped(answer, body)
        audio = first(body, self.profile.sync.field if self.profile.sync else [])
        if 200 <= mapped.status_code < 300 or (isinstance(audio, str) and audio):
            return
        self.monitor(mapped.status_code)
        if guessed and mapped.status_code >= 500:
            raise SyncRefused(Unanswered(f"the provider answered with its own error {mapped.reason_phrase} inside a "
                                         "2xx: it may have made the song anyway, so the request is not sent again",
                                         status=mapped.status_code), unpaid=False)
        error = self._not_accepted(mapped, replayable=False)
        raise SyncRefused(error, unpaid=not isinstance(error, Unanswered))

    @staticmethod
    def _metered(response: httpx.Response, meter: _Meter) -> bytes:
        """A body read whole in memory, every step against the meter's limits."""
        return b"".join(_decoded(response, meter))

    def get_track(self, track_id: str) -> Track:
        """One status poll, the id sent as one percent-encoded path segment. An unreadable answer raises
        UnreadableStatus; `success: false` is a failed track with the provider's message."""
        return self._poll(track_id, 1)[0]

    def get_songs(self, task_id: str) -> list[Track]:
        """One status poll of a task that makes several songs (the profile's `songs_per_task`): every song's track
        from the one answer, in order (each with the task's id)."""
        return self._poll(task_id, self.profile.songs_per_task)

    def _poll(self, task_id: str, songs: int) -> list[Track]:
        """The status of a task's first `songs` songs; when it says done without the audio, its result path's."""
        read = functools.partial(self._read_songs, task_id, songs)
        tracks = self._send("GET", self.profile.status_path.format(id=path_segment(task_id)), replayable=True,
                            parse=read)
        if self.profile.result_path and any(t.audio_url is None and t.status_word is not None
                                            and self.profile.status_for(t.status_word) == READY for t in tracks):
            tracks = self._send("GET", self.profile.result_path.format(id=path_segment(task_id)), replayable=True,
                                parse=read)
        return tracks

    def check_auth(self) -> None:
        """A request that costs nothing: raises Unauthorized when the key is refused, Unreachable/ServerError
        when the provider does not answer. Any other answer (a 404 for a track that cannot exist) passes."""
        path = self.profile.auth_check_path or self.profile.status_path.format(id=f"tf-auth-{uuid.uuid4().hex}")
        try:
            self._send("GET", path, replayable=True, parse=lambda response: None)
        except (NotFound, InvalidRequest, Gone):
            return
        except TextMusicError as exc:
            if exc.status == 403:
                raise Unauthorized(exc.message, status=403) from None
            raise

    def wait(self, tracks: Iterable[Track], sleep: Callable[[float], None] = time.sleep) -> list[Track]:
        """Poll pending tracks until each is ready or failed, with growing intervals up to a deadline (for
        one-off use such as the probe; a run's tracks are polled together by its poller)."""
        current = list(tracks)
        deadline = time.monotonic() + self.settings.poll_deadline_seconds
        interval = self.settings.poll_initial_seconds
        while any(t.effective_status == PENDING for t in current):
            if time.monotonic() >= deadline:
                pending = [t.id for t in current if t.effective_status == PENDING]
                raise PollTimeout(f"tracks still pending after {self.settings.poll_deadline_seconds:g} s: {pending}")
            sleep(interval)
            interval = min(interval * 1.5, self.settings.poll_max_interval_seconds)
            current = [self.get_track(t.id) if t.effective_status == PENDING else t for t in current]
        return current

    def download(self, track: Track, dest: Path, version: str | None = None,
                 max_bytes: int | None = None) -> Download:
        """Stream the track's audio (or, with `version`, that listed version's: "30s", "stem:drums" …) into
        `dest`, following redirects as CDNs serve them: the key goes only to the API's own origin.
        Content-Encoding (gzip, br) is decoded; the length is checked on the bytes that came over the wire,
        which is what Content-Length counts.

        Limits (settings, `max_bytes` to tighten the byte limit for this file): bytes on the wire and after
        decoding, the decoded/wire ratio, no byte for download_stall_seconds, download_deadline_seconds in
        all. A limit passed raises DownloadLimit (not retried); on any failure `dest` is removed at once."""
        what = f"track {track.id}" if version is None else f"version {version} of track {track.id}"
        listed = track.version(version) if version is not None else None
        audio_url = track.audio_url if version is None else listed.audio_url if listed else None
        if not audio_url:
            raise BadDownload(f"{what} has no audio_url")
        limit = self.settings.max_download_bytes if max_bytes is None else min(max_bytes,
                                                                                 self.settings.max_download_bytes)
        deadline = time.monotonic() + self.settings.download_deadline_seconds
        for attempt in self._retrying():
            with attempt:
                meter = _Meter(what, limit, self.settings.max_decompression_ratio, deadline)
                return self._download_once(audio_url, dest, meter)
        raise AssertionError("unreachable")

    def _download_once(self, audio_url: str, dest: Path, meter: _Meter) -> Download:
        what, url = meter.what, self._http.base_url.join(audio_url)
        hops: list[str] = []
        for _ in range(MAX_REDIRECTS + 1):
            ours = _same_origin(url, self._http.base_url)
            self.attempts += 1
            meter.check_time()
            try:
                with (self._http if ours else self._anon).stream("GET", url, timeout=self._download_timeout) \
                        as response:
                    if response.is_redirect and "location" in response.headers:
                        hops.append(url.host or "")
                        url = url.join(response.headers["location"])
                        continue
                    if not response.is_success:
                        raise error_from_response(self._answer(response)) if ours else _foreign_error(response, what)
                    meter.check_length(response.headers.get("Content-Length"))
                    self._save(response, dest, meter)
            except _Undecodable as exc:
                raise ServerError(f"download of {what} does not decode ({exc})") from None
            except httpx.TransportError as exc:
                raise ServerError(f"download of {what} broke off: {type(exc).__name__}") from None
            return Download(bytes_written=meter.written, wire_bytes=meter.wire,
                            content_encoding=response.headers.get("Content-Encoding", ""), host=url.host or "",
                            redirects=hops, content_type=response.headers.get("Content-Type", ""))
        raise BadDownload(f"download of {what}: more than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _save(response: httpx.Response, dest: Path, meter: _Meter) -> None:
        """The body decoded into `dest`, every step metered; whatever goes wrong, `dest` is removed at once
        (no half file for a later step to mistake for audio)."""
        try:
            with open(dest, "wb") as fh:
                for piece in _decoded(response, meter):
                    fh.write(piece)
            expected = response.headers.get("Content-Length")
            if expected is not None and expected.isdigit() and int(expected) != meter.wire:
                raise ServerError(f"download of {meter.what} truncated: {meter.wire} of {expected} bytes")
            if meter.written == 0:
                raise BadDownload(f"download of {meter.what} is empty")
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
