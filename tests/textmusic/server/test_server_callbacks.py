"""EXTENSION: the local service calls a submission's `callback_url` back once per track when it is done, signed
as Standard Webhooks say with TEXTMUSIC_CALLBACK_SECRET (checked here by hand, not with the pipeline's own
verifier), over real HTTP on 127.0.0.1; only loopback URLs are taken."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.service import create_key, get_track, start_server, submit
from textmusic.testing.standins import Loopback

SECRET = "svc-callback-secret-0123456789"


class Catcher:
    """A loopback receiver that keeps every callback (headers and raw body)."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        self.server = Loopback(Starlette(routes=[Route("/cb/{rest:path}", self._catch, methods=["POST"])]))

    async def _catch(self, request: Request) -> JSONResponse:
        body = await request.body()
        with self.lock:
            self.seen.append((dict(request.headers), body))
        return JSONResponse({"ok": True})

    def url(self, tail: str) -> str:
        return f"http://127.0.0.1:{self.server.port}/cb/{tail}"


def test_the_service_calls_back_once_per_track_signed_when_it_is_ready(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTMUSIC_CALLBACK_SECRET", SECRET)
    data = tmp_path / "svc"
    catcher = Catcher()
    catcher.server.start()
    server = start_server(data, "--synthetic-audio", "--latency", "1")
    try:
        key = create_key(data, 5)
        refused = submit(server, key, {"prompt": "calm", "callback_url": "http://example.com/cb"})
        assert refused.status_code == 400 and "loopback" in refused.text
        answer = submit(server, key, {"prompt": "calm piano", "num_songs": 2, "duration_seconds": 10,
                                      "callback_url": catcher.url("run/tok")})
        assert answer.status_code == 200, answer.text
        ids = [t["id"] for t in answer.json()["tracks"]]
        deadline = time.monotonic() + 30
        while len(catcher.seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # any extra callback would come now
        seen = list(catcher.seen)
        statuses = {i: get_track(server, key, i).json()["status"] for i in ids}
    finally:
        server.stop()
        catcher.server.stop()
    assert len(seen) == 2 and statuses == dict.fromkeys(ids, "ready")
    for headers, body in seen:
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest()).decode()
        assert headers["webhook-signature"] == f"v1,{expected}"
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    tracks = [json.loads(body)["track"] for _, body in seen]
    assert sorted(t["id"] for t in tracks) == sorted(ids)
    assert all(t["status"] == "ready" and t["audio_url"] for t in tracks)
    assert {json.loads(body)["event"] for _, body in seen} == {"track.ready"}
