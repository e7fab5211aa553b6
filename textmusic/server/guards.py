"""What a request passes before an endpoint acts on it: its key (401) and the key's rate limit (429), then,
for a submission, its body's size and form (400). Endpoints take these as dependencies or calls."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from textmusic.server.errors import ApiError
from textmusic.server.store import hash_key

MAX_BODY_BYTES = 1_000_000


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")


async def authorized_key(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Dependency: the caller's key hash, after authentication (401) and its rate limit (429).

    The rate-limit headers go on every answer to a known key, error or not (see errors.py). Runs on
    the event loop: its reads are WAL reads that never wait for a writer (store.py).
    """
    state = request.app.state
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(401, "missing API token: send Authorization: Bearer <key>", {"WWW-Authenticate": "Bearer"})
    key_hash = hash_key(credentials.credentials.strip())
    if not state.store.key_exists(key_hash):
        raise ApiError(401, "invalid API token", {"WWW-Authenticate": "Bearer"})
    decision = state.limiter.hit(key_hash)
    headers = decision.headers()
    request.state.extra_headers = headers
    if not decision.allowed:
        raise ApiError(
            429, f"rate limit exceeded ({state.limiter.item}); retry in {decision.reset_seconds} s", headers
        )
    response.headers.update(headers)
    return key_hash


def _too_large() -> ApiError:
    """The contract has no 413: an oversized body is invalid input, with the documented error body."""
    return ApiError(400, f"request body is larger than {MAX_BODY_BYTES} bytes")


async def _bounded_body(request: Request) -> bytes:
    """The body, never more than MAX_BODY_BYTES of it held: a declared length over the limit is refused
    before a byte is read, and a chunked (or lying) body is refused as soon as it passes the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    return bytes(body)


async def json_body(request: Request) -> bytes:
    """The raw body once it is known to be one well-formed JSON document (strict: no NaN/Infinity)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(400, "Content-Type must be application/json")
    raw = await _bounded_body(request)

    def _no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}") from None
    return raw
