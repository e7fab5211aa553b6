"""EXTENSION: callbacks. A submission may carry `callback_url`; when each of its tracks is done (ready or
failed, as a poll would show it, hosted timing included) the service POSTs `{"event": "track.<status>",
"track": <the track as the status endpoint answers it>}` there once.

Signed as Standard Webhooks say (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256
of id.timestamp.body>`) with the secret in TEXTMUSIC_CALLBACK_SECRET; unsigned when it is not set. Only
loopback URLs are called back (a local service must not be turned into a request forwarder); another is a 400 at
submission. A callback that fails is not retried: the caller's poller takes over, as with a hosted provider.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from textmusic.contract import PENDING
from textmusic.providers.callback import Signature, sign
from textmusic.server.store import Store
from textmusic.server.views import held_back, track_view

FIELD = "callback_url"
SECRET_ENV = "TEXTMUSIC_CALLBACK_SECRET"
SIGNATURE = Signature(header="webhook-signature", encoding="base64", prefix="v1,",
                      timestamp_header="webhook-timestamp", id_header="webhook-id", secret_env=SECRET_ENV)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CHECK_SECONDS = 0.25  # how often a settled-but-not-yet-shown or rendering track is looked at again
GIVE_UP_SECONDS = 3600.0

log = logging.getLogger(__name__)


def callback_url(body: Any) -> tuple[Any, str | None]:
    """(the body without `callback_url`, the URL) — the URL refused (ValueError) unless it is http on loopback."""
    if not isinstance(body, dict) or FIELD not in body:
        return body, None
    url = body[FIELD]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise ValueError(f"{FIELD} must be an http URL on loopback (127.0.0.1, localhost, ::1)")
    return {k: v for k, v in body.items() if k != FIELD}, url


class CallbackSender:
    """Sends each track's one callback when it is done; one asyncio task per submission, on the app's loop."""

    def __init__(self, store: Store, secret: str | None) -> None:
        self.store, self.key = store, secret.encode() if secret else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def submitted(self, track_ids: list[str], url: str, base_url: str) -> None:
        task = asyncio.get_running_loop().create_task(self._follow(track_ids, url, base_url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()

    async def _follow(self, track_ids: list[str], url: str, base_url: str) -> None:
        for track_id in track_ids:
            row = await self._done(track_id)
            if row is not None:
                await self._post(url, track_view(row, base_url).model_dump(mode="json", exclude_none=True))

    async def _done(self, track_id: str) -> Any:
        """The track's row once a poll would show it done (None: it vanished or never ended in time)."""
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while time.monotonic() < deadline:
            row = self.store.get_track(track_id)
            if row is None:
                return None
            if row["status"] != PENDING and not held_back(row):
                return row
            not_before = row["ready_not_before"] or 0.0
            await asyncio.sleep(max(CHECK_SECONDS, not_before - time.time()))
        return None

    async def _post(self, url: str, track: dict[str, Any]) -> None:
        body = json.dumps({"event": f"track.{track.get('status')}", "track": track}).encode()
        headers = {"Content-Type": "application/json"}
        if self.key is not None:
            headers.update({"webhook-id": f"msg_{uuid.uuid4().hex}", "webhook-timestamp": str(int(time.time()))})
            headers[SIGNATURE.header] = sign(SIGNATURE, self.key, headers, body)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10)
        try:
            await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("callback for track %s not delivered: %s", track.get("id"), type(exc).__name__)
