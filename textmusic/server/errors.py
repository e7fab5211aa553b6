"""Errors of the local service, all rendered as the contract's documented error body."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from textmusic.contract import ERROR_CODES, ErrorDetail, ErrorResponse


class ApiError(Exception):
    """An error the client should see as-is: status, the contract's code for it, a readable message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The documented body `{"success": false, "error": {"code", "message"}}` for any status."""
    code = ERROR_CODES.get(status, f"http_{status}")
    body = ErrorResponse(error=ErrorDetail(code=code, message=message))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def validation_message(exc: ValidationError) -> str:
    """One readable sentence per problem, `field: reason`, so a client can show it unchanged."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid input"


def _headers(request: Request, own: dict[str, str] | None) -> dict[str, str] | None:
    """The error's own headers over those the request earned before failing (its rate-limit state)."""
    earned = getattr(request.state, "extra_headers", None)
    if not earned:
        return own
    return {**earned, **(own or {})}


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure, expected or not, through the documented error body."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, _headers(request, exc.headers))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return error_response(400, "; ".join(parts) or "invalid input", _headers(request, None))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, message, _headers(request, dict(exc.headers) if exc.headers else None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's ServerErrorMiddleware logs the traceback; the client gets no internals.
        return error_response(500, "internal server error; try again", _headers(request, None))
