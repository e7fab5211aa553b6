"""httpx client for the Text-to-Music API (hosted or local): submit, poll, download.

Errors become typed exceptions per status, so callers choose a policy per error class. The API key is
sent only to the configured API origin and never appears in an exception or a repr.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr, ValidationError
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from textmusic.contract import IDEMPOTENCY_HEADER, TextToMusicRequest, TextToMusicResponse, Track
from textmusic.settings import TextMusicSettings


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


_BY_STATUS: dict[int, type[TextMusicError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    402: InsufficientBalance,
    404: NotFound,
    410: Gone,
    422: InvalidRequest,
    429: RateLimited,
}


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


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
        return RateLimited(text, status=status, code=code, retry_after=_retry_after_seconds(response))
    if status >= 500:
        return ServerError(text, status=status, code=code)
    return _BY_STATUS.get(status, TextMusicError)(text, status=status, code=code)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RateLimited | ServerError)


def _wait_for(retry_state: Any) -> float:
    """Wait Retry-After on a 429 when the provider says; otherwise exponential backoff with jitter."""
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return exc.retry_after
    return wait_exponential_jitter(multiplier=0.5, max=20.0)(retry_state)


class TextMusicClient:
    """One provider connection. `throttle` is called before each request that the provider meters."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | str,
        *,
        settings: TextMusicSettings | None = None,
        local_extensions: bool = False,
        throttle: Callable[[], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings or TextMusicSettings()
        self.base_url = base_url.rstrip("/")
        self.local_extensions = local_extensions
        self._throttle = throttle or (lambda: None)
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key.get_secret_value()}"},
            timeout=self.settings.request_timeout_seconds,
            transport=transport,
        )
        # A download URL elsewhere (a CDN) must not receive the key.
        self._anon = httpx.Client(timeout=self.settings.request_timeout_seconds, transport=transport)
        self.attempts = 0

    def __repr__(self) -> str:
        return f"TextMusicClient({self.base_url!r})"

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

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(_is_retryable),
            wait=_wait_for,
            stop=stop_after_attempt(self.settings.max_attempts),
            reraise=True,
        )

    def request_body(self, request: TextToMusicRequest) -> dict[str, Any]:
        """The JSON body, every set field explicit (a provider's defaults may change); the local
        extension only for the local provider."""
        body = request.model_dump(mode="json", exclude_none=True)
        if not self.local_extensions:
            body.pop("duration_seconds", None)
        return body

    def submit(self, request: TextToMusicRequest, idempotency_key: str | None = None) -> TextToMusicResponse:
        """POST a request. Retries 429 and 5xx. A request sent whose answer was lost is retried only with an
        `idempotency_key` (sent as the Idempotency-Key header, which the local service honours): without
        one, a retry could pay twice."""
        body = self.request_body(request)
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        for attempt in self._retrying():
            with attempt:
                self.attempts += 1
                self._throttle()
                try:
                    response = self._http.post(self.settings.submit_path, json=body, headers=headers)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    raise ServerError(f"cannot reach the provider: {type(exc).__name__}") from None
                except httpx.TransportError as exc:
                    if idempotency_key:
                        raise ServerError(f"the answer was lost ({type(exc).__name__}); retried with the "
                                          "same Idempotency-Key") from None
                    raise TextMusicError(
                        f"the request was sent but no answer came ({type(exc).__name__}); "
                        "not retried, to avoid paying twice"
                    ) from None
                if response.status_code != 200:
                    raise error_from_response(response)
                return self._parse(TextToMusicResponse, response)
        raise AssertionError("unreachable")

    def get_track(self, track_id: str) -> Track:
        path = self.settings.status_path.format(id=track_id)
        for attempt in self._retrying():
            with attempt:
                self._throttle()
                try:
                    response = self._http.get(path)
                except httpx.TransportError as exc:
                    raise ServerError(f"status poll failed: {type(exc).__name__}") from None
                if response.status_code != 200:
                    raise error_from_response(response)
                return self._parse(Track, response)
        raise AssertionError("unreachable")

    def wait(self, tracks: Iterable[Track], sleep: Callable[[float], None] = time.sleep) -> list[Track]:
        """Poll pending tracks until each is ready or failed, with growing intervals up to a deadline."""
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

    def download(self, track: Track, dest: Path) -> int:
        """Stream the track's audio into `dest`; returns the byte count, checked against Content-Length."""
        if not track.audio_url:
            raise BadDownload(f"track {track.id} has no audio_url")
        url = httpx.URL(track.audio_url)
        same_origin = url.is_relative_url or (
            (url.scheme, url.host, url.port) == (self._http.base_url.scheme, self._http.base_url.host,
                                                 self._http.base_url.port)
        )
        http = self._http if same_origin else self._anon
        for attempt in self._retrying():
            with attempt:
                written = 0
                try:
                    with http.stream("GET", url) as response:
                        if response.status_code != 200:
                            response.read()
                            raise error_from_response(response)
                        expected = response.headers.get("Content-Length")
                        with open(dest, "wb") as fh:
                            for chunk in response.iter_bytes(1 << 16):
                                fh.write(chunk)
                                written += len(chunk)
                except httpx.TransportError as exc:
                    raise ServerError(f"download of track {track.id} broke off: {type(exc).__name__}") from None
                if expected is not None and int(expected) != written:
                    raise ServerError(f"download of track {track.id} truncated: {written} of {expected} bytes")
                if written == 0:
                    raise BadDownload(f"download of track {track.id} is empty")
                return written
        raise AssertionError("unreachable")

    @staticmethod
    def _parse(model: type[Any], response: httpx.Response) -> Any:
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise ServerError(f"unreadable answer from the provider: {str(exc)[:300]}") from None


def client_from_settings(settings: TextMusicSettings | None = None, **kw: Any) -> TextMusicClient:
    settings = settings or TextMusicSettings()
    if not settings.api_url or settings.api_key is None:
        raise Unauthorized("TEXTMUSIC_API_URL and TEXTMUSIC_API_KEY must both be set to use a remote provider")
    return TextMusicClient(settings.api_url, settings.api_key, settings=settings, **kw)
