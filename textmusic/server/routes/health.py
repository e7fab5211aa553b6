"""Liveness, with the capacity hint a client sizes its in-flight window by."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from textmusic.contract import CAPACITY_HEADER

router = APIRouter()


@router.get("/healthz", tags=["service"])
def healthz(request: Request, response: Response) -> dict[str, bool]:
    """Liveness: answers as soon as the service accepts requests. EXTENSION: the `X-TextMusic-Capacity`
    header says how many tracks are worth having in flight (more only queue behind the renders)."""
    response.headers[CAPACITY_HEADER] = str(request.app.state.capacity)
    return {"ok": True}
