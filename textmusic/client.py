"""httpx client for the Text-to-Music API (hosted or local): submit, poll, download.

Errors become typed exceptions per status, so callers choose a policy per error class. The API key is
sent only to the configured API origin and never appears in an exception or a repr.
"""

from __future__ import annotations

import copy
import functools
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr, ValidationError
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from textmusic.contract import (
    IDEMPOTENCY_HEADER,
    LOCAL_EXTENSION_FIELDS,
    TextToMusicRequest,
    TextToMusicResponse,
    Track,
)
from textmusic.providers import Profile, load_profile
from textmusic.providers.reader import AnswerRefused, read_status, read_submission
from textmusic.settings import TextMusicSettings

T = TypeVar("T")
MAX_REDIRECTS = 5
MAX_RETRY_AFTER_SECONDS = 120.0
RAW_KEEP_CHARS = 64_000


class TextMusicError(Exception):
    """An error answered by the provider (or the lack of an answer)."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else self.status
        self.code = code


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


class Unreachable(ServerError):
    """The provider could not be reached (the request was not sent): worth retrying, and a sign of an outage."""


class Unanswered(TextMusicError):
    """A submission was sent and its answer lost: the provider may have accepted (and charged) it."""


class AcceptedUnread(TextMusicError):
    """A 2xx answer to a submission that cannot be used: accepted (maybe charged), never sent again."""

    def __init__(self, message: str, *, raw: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.raw = raw


class UnreadableAnswer(AcceptedUnread):
    """The 2xx answer is not JSON, or holds no track the profile can find."""


class Refused(AcceptedUnread):
    """The 2xx answer says `success: false`."""


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


def error_from_response(response: httpx.Response) -> TextMusicError:
    """Map an error response to its exception, keeping the provider's own message."""
    code, message = None, response.reason_phrase or f"HTTP {response.status_code}"
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code, message = error.get("code"), str(error.get("message") or message)
        elif isinstance(error, str):
            message = error
    except ValueError:
        pass
    status = response.status_code
    text = f"HTTP {status}: {message}"
    if status == 429:
        return RateLimited(text, status=status, code=code,
                           retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    if status >= 500:
        return ServerError(text, status=status, code=code)
    return _BY_STATUS.get(status, TextMusicError)(text, status=status, code=code)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RateLimited | ServerError)


def _wait_for(retry_state: Any) -> float:
    """Wait Retry-After on a 429 when the provider says; otherwise exponential backoff with jitter."""
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return min(exc.retry_after, MAX_RETRY_AFTER_SECONDS)
    return wait_exponential_jitter(multiplier=0.5, max=20.0)(retry_state)


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
            profile = load_profile("textmusic-local" if local_extensions else "verbatik")
        self.base_url = base_url.rstrip("/")
        self.profile = profile.model_copy(update={"base_url": self.base_url})
        self.local_extensions = self.profile.local_extensions
        self._throttle = throttle or (lambda: None)
        # Told the status of every answer of the API origin (None: no answer): adaptive concurrency and
        # outage detection listen here.
        self.monitor = monitor or (lambda status: None)
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self._secret = key.get_secret_value()
        timeout = httpx.Timeout(self.settings.request_timeout_seconds, connect=self.settings.connect_timeout_seconds)
        limits = httpx.Limits(max_connections=self.settings.max_connections,
                              max_keepalive_connections=self.settings.max_connections)
        self._http = httpx.Client(base_url=self.base_url, headers=self.profile.auth_headers(self._secret),
                                  timeout=timeout, transport=transport, limits=limits)
        # Audio elsewhere (a CDN, a signed redirect) never receives the key.
        self._anon = httpx.Client(timeout=timeout, transport=transport, limits=limits)
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
        """Text with the key taken out, for anything kept or shown (errors, raw answers)."""
        return text.replace(self._secret, "[redacted]") if self._secret else text

    # -- the request layer: everything below says only what it needs ------------------------------------

    def _send(self, method: str, path: str, *, replayable: bool, parse: Callable[[httpx.Response], T],
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
              headers: dict[str, str] | None) -> httpx.Response:
        self.attempts += 1
        self._throttle()
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            self.monitor(None)
            raise Unreachable(f"cannot reach the provider: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            self.monitor(None)
            if replayable:
                raise ServerError(f"the answer was lost ({type(exc).__name__}); sent again") from None
            raise Unanswered(f"the request was sent but no answer came ({type(exc).__name__}); it may have "
                             "been charged, so it is not sent again") from None
        self.monitor(response.status_code)
        if response.is_success:
            return response
        if not replayable and response.status_code in (502, 504):
            raise Unanswered(f"HTTP {response.status_code} from a gateway: the provider behind it may have "
                             "accepted the request, so it is not sent again", status=response.status_code)
        raise error_from_response(response)

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=_wait_for,
            stop=stop_after_attempt(self.settings.max_attempts),
            reraise=True,
        )

    def _raw(self, response: httpx.Response) -> str:
        """The answer as kept for support: bounded, key redacted."""
        return self.redact(response.text[:RAW_KEEP_CHARS])

    def _read_submission(self, response: httpx.Response) -> TextToMusicResponse:
        """A 2xx answer to a submission; whatever is wrong with it, it was accepted (never retried)."""
        try:
            return read_submission(self.profile, response.json())
        except AnswerRefused as exc:
            raise Refused(f"accepted with success: false: {exc}", raw=self._raw(response),
                          status=response.status_code) from None
        except (ValueError, ValidationError) as exc:  # not JSON, no track the profile finds, bad fields
            reason = "not JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)[:200]
            raise UnreadableAnswer(f"accepted by the provider, answer unreadable: {reason}",
                                   raw=self._raw(response), status=response.status_code) from None

    def _read_status(self, track_id: str, response: httpx.Response) -> Track:
        """A status answer; an unreadable one is retried (a poll costs nothing)."""
        try:
            return read_status(self.profile, response.json())
        except AnswerRefused as exc:
            return Track(id=track_id, status="failed", error=str(exc))
        except (ValueError, ValidationError) as exc:
            raise ServerError(f"unreadable status answer: {self.redact(str(exc))[:200]}") from None

    # -- what callers need ---------------------------------------------------------------------------------

    def request_body(self, request: TextToMusicRequest) -> dict[str, Any]:
        """The JSON body, every set field explicit (a provider's defaults may change); the local
        extensions (duration_seconds, versions) only for the local provider."""
        body = request.model_dump(mode="json", exclude_none=True)
        if not self.local_extensions:
            for name in LOCAL_EXTENSION_FIELDS:
                body.pop(name, None)
        return body

    def submit(self, request: TextToMusicRequest, idempotency_key: str | None = None) -> TextToMusicResponse:
        """POST a request. Any 2xx is an acceptance (200, 201, 202) and is never sent again, whatever its
        body: an unreadable one raises `UnreadableAnswer` and `success: false` raises `Refused`, both
        carrying the raw answer (key redacted). Lost answers are retried only with an `idempotency_key`."""
        key = idempotency_key if self.profile.sends_idempotency_key else None
        return self._send("POST", self.profile.submit_path, replayable=key is not None,
                          parse=self._read_submission, body=self.request_body(request),
                          headers={IDEMPOTENCY_HEADER: key} if key else None)

    def get_track(self, track_id: str) -> Track:
        """One status poll. An unreadable answer is retried (a poll costs nothing); `success: false` is a
        failed track with the provider's message."""
        return self._send("GET", self.profile.status_path.format(id=track_id), replayable=True,
                          parse=functools.partial(self._read_status, track_id))

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
        while any(t.effective_status == "pending" for t in current):
            if time.monotonic() >= deadline:
                pending = [t.id for t in current if t.effective_status == "pending"]
                raise PollTimeout(f"tracks still pending after {self.settings.poll_deadline_seconds:g} s: {pending}")
            sleep(interval)
            interval = min(interval * 1.5, self.settings.poll_max_interval_seconds)
            current = [self.get_track(t.id) if t.effective_status == "pending" else t for t in current]
        return current

    def download(self, track: Track, dest: Path, version: str | None = None) -> Download:
        """Stream the track's audio (or, with `version`, that listed version's: "30s", "stem:drums" …) into
        `dest`, following redirects as CDNs serve them: the key goes only to the API's own origin.
        Content-Encoding (gzip, br) is decoded; the length is checked on the bytes that came over the wire,
        which is what Content-Length counts."""
        what = f"track {track.id}" if version is None else f"version {version} of track {track.id}"
        listed = track.version(version) if version is not None else None
        audio_url = track.audio_url if version is None else listed.audio_url if listed else None
        if not audio_url:
            raise BadDownload(f"{what} has no audio_url")
        for attempt in self._retrying():
            with attempt:
                return self._download_once(audio_url, what, dest)
        raise AssertionError("unreachable")

    def _download_once(self, audio_url: str, what: str, dest: Path) -> Download:
        url = self._http.base_url.join(audio_url)
        hops: list[str] = []
        for _ in range(MAX_REDIRECTS + 1):
            http = self._http if _same_origin(url, self._http.base_url) else self._anon
            self.attempts += 1
            try:
                with http.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        hops.append(url.host or "")
                        url = url.join(response.headers["location"])
                        continue
                    if not response.is_success:
                        response.read()
                        raise error_from_response(response)
                    written = 0
                    with open(dest, "wb") as fh:
                        for chunk in response.iter_bytes(1 << 16):
                            fh.write(chunk)
                            written += len(chunk)
                    # Bytes read off the connection (encoded); an answer built in memory never had a wire.
                    wire = response.num_bytes_downloaded or written
                    expected = response.headers.get("Content-Length")
                    encoding = response.headers.get("Content-Encoding", "")
            except httpx.DecodingError as exc:
                raise ServerError(f"download of {what} does not decode ({exc})") from None
            except httpx.TransportError as exc:
                raise ServerError(f"download of {what} broke off: {type(exc).__name__}") from None
            if expected is not None and expected.isdigit() and int(expected) != wire:
                raise ServerError(f"download of {what} truncated: {wire} of {expected} bytes")
            if written == 0:
                raise BadDownload(f"download of {what} is empty")
            return Download(bytes_written=written, wire_bytes=wire, content_encoding=encoding,
                            host=url.host or "", redirects=hops,
                            content_type=response.headers.get("Content-Type", ""))
        raise BadDownload(f"download of {what}: more than {MAX_REDIRECTS} redirects")
