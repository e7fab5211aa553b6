"""What every provider stand-in in this package shares: its loopback origins and its bookkeeping.

Each stand-in (ElevenLabs, MiniMax, Stable Audio, fal, Sonauto, sunoapi.org) is written from its provider's docs,
so what it answers differs; what a test checks afterwards does not. Kept here once rather than copied into each:

- the API origin on a `Loopback` (`base_url`) and, for providers that serve audio from elsewhere, a CDN origin
  (`cdn_url`), started and stopped by `with`;
- a lock and the lists a test reads: `posts`, `charges` (cents) with `accepted` (the charged bodies, same
  order), `requests` ((method, path, status) of every API request), `cdn_requests` and `cdn_auth_seen`; each
  property a copy taken under the lock, safe to read while the servers run;
- the endpoints that await the subclass's `_answer` (and `_cdn_answer`) and record the request.

A subclass sets `api_key`, writes `_answer` (and `_cdn_answer` when it has a CDN) with `_posted` and `_key_ok`,
calls `_record_charge` (or `_record_post` for a body it reads itself),
and overrides `_recorded` to note more of each API answer (MiniMax's `answers`).
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Sequence
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from textmusic.testing.standins import Loopback, posted_body


def _origin(endpoint: Any, methods: Sequence[str]) -> Loopback:
    return Loopback(Starlette(routes=[Route("/{path:path}", endpoint, methods=list(methods))]))


class ProviderStandIn:
    """A provider's API origin (and optional CDN origin) on 127.0.0.1, with the bookkeeping tests read.

    `methods`: the HTTP methods the API origin routes (others get Starlette's 405, unrecorded); `cdn`: whether
    there is a CDN origin (GET only)."""

    api_key: str  # the key it accepts (set by the subclass)

    def __init__(self, methods: Sequence[str] = ("GET", "POST"), cdn: bool = False) -> None:
        self._lock = threading.Lock()
        self._posts: list[Any] = []
        self._charges: list[int] = []
        self._accepted: list[Any] = []
        self._requests: list[tuple[str, str, int]] = []
        self._cdn_requests: list[tuple[str, str, int]] = []
        self._cdn_auth_seen: list[str] = []
        self._api = _origin(self._api_endpoint, methods)
        self._cdn = _origin(self._cdn_endpoint, ["GET"]) if cdn else None

    # --- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._cdn is not None:
            self._cdn.start()
        self._api.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cdn is not None:
            self._api.stop(wait=False)  # both at once: each takes uvicorn a few ticks
            self._cdn.stop()
        self._api.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._api.port}"

    @property
    def cdn_url(self) -> str:
        if self._cdn is None:
            raise AttributeError(f"{type(self).__name__} has no CDN origin")
        return f"http://127.0.0.1:{self._cdn.port}"

    # --- recording (subclasses call these) -----------------------------------------------------------

    def _record_post(self, body: Any) -> None:
        with self._lock:
            self._posts.append(body)

    async def _posted(self, request: Request, path: str | None = None) -> Any:
        """The body of a POST (to `path`, when given), recorded; None for any other request."""
        if request.method != "POST" or (path is not None and request.url.path != path):
            return None
        body = await posted_body(request)
        self._record_post(body)
        return body

    def _key_ok(self, request: Request, scheme: str = "Bearer", header: str = "authorization") -> bool:
        """Whether the request carries this stand-in's `api_key` in `header`, after `scheme` (constant time)."""
        sent = request.headers.get(header, "").encode()
        expected = f"{scheme} {self.api_key}" if scheme else self.api_key
        return hmac.compare_digest(sent, expected.encode())

    def _record_charge(self, cents: int, body: Any) -> int:
        """Charge `cents` for `body`; returns how many charges came before (a number for the song)."""
        with self._lock:
            return self._charge_locked(cents, body)

    def _charge_locked(self, cents: int, body: Any) -> int:
        """`_record_charge` for a caller already holding the lock."""
        number = len(self._charges)
        self._charges.append(cents)
        self._accepted.append(body)
        return number

    def _recorded(self, request: Request, response: Response) -> None:
        """Called under the lock after each API answer is recorded: a hook for stand-ins that record more."""

    # --- what a test reads (copies) ------------------------------------------------------------------

    def _copy(self, items: list[Any]) -> list[Any]:
        """A copy of one of the lists, taken under the lock (safe while the servers run)."""
        with self._lock:
            return list(items)

    @property
    def posts(self) -> list[Any]:
        """Every body POSTed to the submit path, whatever the answer."""
        return self._copy(self._posts)

    @property
    def charges(self) -> list[int]:
        """Cents charged, one entry per charged request, in order."""
        return self._copy(self._charges)

    @property
    def accepted(self) -> list[Any]:
        """The bodies of the charged requests, in the order of `charges`."""
        return self._copy(self._accepted)

    @property
    def charged_cents(self) -> int:
        with self._lock:
            return sum(self._charges)

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request to the API origin."""
        return self._copy(self._requests)

    @property
    def cdn_requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request to the CDN origin."""
        return self._copy(self._cdn_requests)

    @property
    def cdn_auth_seen(self) -> list[str]:
        """Every Authorization header the CDN received (a correct client sends none: its URLs are public)."""
        return self._copy(self._cdn_auth_seen)

    # --- the endpoints ---------------------------------------------------------------------------------

    async def _answer(self, request: Request) -> Response:
        raise NotImplementedError

    async def _cdn_answer(self, request: Request) -> Response:
        raise NotImplementedError

    def _status_of(self, response: Response) -> int:
        """The status a request is recorded with (a provider answering every error as HTTP 200 with a code in
        its body records that code)."""
        return response.status_code

    async def _api_endpoint(self, request: Request) -> Response:
        response = await self._answer(request)
        with self._lock:
            self._requests.append((request.method, request.url.path, self._status_of(response)))
            self._recorded(request, response)
        return response

    async def _cdn_endpoint(self, request: Request) -> Response:
        response = await self._cdn_answer(request)
        with self._lock:
            self._cdn_auth_seen.extend(request.headers.getlist("authorization"))
            self._cdn_requests.append((request.method, request.url.path, response.status_code))
        return response
