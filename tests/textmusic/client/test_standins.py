"""The stand-ins of hosted providers do what their knobs say, checked with plain httpx (not our client), so a
client test that fails against a stand-in points at the client, not at the stand-in."""

from __future__ import annotations

import gzip
import io
import time
from email.utils import parsedate_to_datetime
from typing import Any

import av
import httpx
import numpy as np
import pytest
import soundfile as sf

from textmusic.testing.standins import Shape, StandIn

BODY = {"prompt": "an upbeat synth-pop instrumental", "seed": 12, "name": "row-1", "output_format": "wav"}
SUBMIT = "/api/v1/text-to-music"


def submit(api: StandIn, body: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    return httpx.post(api.base_url + api.shape.submit_path, json=body or BODY, headers=api.auth_headers(), **kw)


def poll(api: StandIn, track_id: str) -> dict[str, Any]:
    resp = httpx.get(api.base_url + api.shape.status_path.format(id=track_id), headers=api.auth_headers())
    assert resp.status_code == 200, resp.text
    return resp.json()


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    if fmt in ("mp3", "m4a"):
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.audio[0]
            frames = [f.to_ndarray().reshape(len(f.layout.channels), -1) for f in container.decode(stream)]
            return np.concatenate(frames, axis=1).T, stream.codec_context.sample_rate
    audio, rate = sf.read(io.BytesIO(data), always_2d=True)
    return audio, rate


def test_default_shape_is_the_documented_one_and_audio_decodes() -> None:
    with StandIn() as api:
        resp = submit(api)
        assert resp.status_code == 200
        body = resp.json()
        assert body["success"] is True and len(body["tracks"]) == 1
        track = body["tracks"][0]
        assert {"id", "name", "audio_url", "seed", "tags", "status"} == set(track)
        assert track["status"] == "ready" and track["name"] == "row-1" and track["seed"] == 12
        audio = httpx.get(track["audio_url"])
        assert audio.headers["content-type"] == "audio/wav"
        pcm, rate = decode(audio.content, "wav")
        assert rate == 44100 and pcm.shape == (441000, 2)
        peak_hz = np.argmax(np.abs(np.fft.rfft(pcm[:44100, 0])))  # 1 s of audio: bins are 1 Hz apart
        assert peak_hz == 440  # seed 12: an octave above 220 Hz
        assert api.charges == [4]  # 10 s at $0.20/min = 3.33 cents, rounded up
        assert api.posts == [BODY] and api.posts_where("name", "row-1") == 1
        assert [(m, p, s) for m, p, s, _ in api.requests] == [
            ("POST", SUBMIT, 200), ("GET", f"/audio/{track['id']}.wav", 200)]


def test_a_wrong_or_missing_key_gets_the_documented_401() -> None:
    with StandIn(Shape(auth_header="X-API-Key")) as api:
        for headers in ({}, {"Authorization": f"Bearer {api.api_key}"}, {"X-API-Key": "vbt_wrong"}):
            resp = httpx.post(api.base_url + SUBMIT, json=BODY, headers=headers)
            assert resp.status_code == 401
            assert resp.json() == {"success": False,
                                   "error": {"code": "unauthorized", "message": "invalid or missing API token"}}
        assert submit(api).status_code == 200  # the bare key in X-API-Key
        assert api.charges == [4] and len(api.posts) == 4


@pytest.mark.parametrize("status", [201, 202])
def test_status_words_progress_from_pending_to_ready(status: int) -> None:
    shape = Shape(submit_status=status, pending_words=("queued", "processing"), ready_word="completed",
                  seconds_to_ready=0.6, status_path="/v2/jobs/{id}", tracks_key="data", id_field="job_id",
                  duration_field="duration", cost_field="cost", numbers_as_strings=True)
    with StandIn(shape) as api:
        resp = submit(api, {**BODY, "num_songs": 2})
        assert resp.status_code == status
        answer = resp.json()
        assert answer["cost"] == "8" and [t["seed"] for t in answer["data"]] == ["12", "13"]
        first = answer["data"][0]
        assert first["status"] == "queued" and first["audio_url"] is None and "duration" not in first
        words = [first["status"]]
        while words[-1] != "completed":
            time.sleep(0.1)
            words.append(poll(api, first["job_id"])["status"])
        assert words[0] == "queued" and "processing" in words and words.index("processing") > 0
        done = poll(api, first["job_id"])
        assert done["duration"] == "10.0" and done["cost"] == "4" and done["audio_url"].startswith(api.base_url)
        assert api.polls[first["job_id"]] == len(words) and api.poll_count == len(words)


def test_without_a_status_field_a_track_is_ready_when_it_has_audio() -> None:
    with StandIn(Shape(status_field=None, seconds_to_ready=0.3)) as api:
        track = submit(api).json()["tracks"][0]
        assert "status" not in track and track["audio_url"] is None
        time.sleep(0.35)
        track = poll(api, track["id"])
        assert "status" not in track and track["audio_url"]


def test_failing_seeds_end_with_the_failed_word() -> None:
    with StandIn(Shape(failed_word="error", fail_seeds=frozenset({13}))) as api:
        ok, bad = submit(api, {**BODY, "num_songs": 2}).json()["tracks"]
        assert ok["status"] == "ready" and bad["status"] == "error" and bad["audio_url"] is None and bad["error"]


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3", "m4a"])
def test_every_format_is_real_audio(fmt: str) -> None:
    with StandIn(Shape(audio_seconds=2)) as api:
        track = submit(api, {**BODY, "output_format": fmt}).json()["tracks"][0]
        resp = httpx.get(track["audio_url"])
        pcm, rate = decode(resp.content, fmt)
        assert rate == 44100 and pcm.shape[1] == 2
        assert abs(len(pcm) / rate - 2.0) < 0.1  # lossy encoders may pad a little
        assert api.charges == [1]


@pytest.mark.parametrize("status", [302, 307])
def test_redirect_sends_audio_to_the_signed_cdn_on_another_port(status: int) -> None:
    with StandIn(Shape(audio="redirect", redirect_status=status, auth_header="X-API-Key")) as api:
        url = submit(api).json()["tracks"][0]["audio_url"]
        assert url.startswith(api.base_url + "/audio/")
        hop = httpx.get(url)
        assert hop.status_code == status
        location = httpx.URL(hop.headers["location"])
        assert location.port == httpx.URL(api.cdn_url).port != httpx.URL(api.base_url).port
        assert {"expires", "sig"} <= set(location.params)
        assert httpx.get(location.copy_with(query=None)).status_code == 403  # unsigned
        assert httpx.get(url, follow_redirects=True).status_code == 200
        assert api.cdn_auth_seen == []
        # A client that carries its key header across origins is caught.
        leaky = httpx.get(url, follow_redirects=True, headers=api.auth_headers())
        assert leaky.status_code == 200 and api.cdn_auth_seen == [api.api_key]


def test_cdn_audio_url_points_straight_at_the_cdn() -> None:
    with StandIn(Shape(audio="cdn")) as api:
        url = submit(api).json()["tracks"][0]["audio_url"]
        assert url.startswith(api.cdn_url + "/files/")
        assert httpx.get(url).status_code == 200
        assert [p for _, p, _, _ in api.cdn_requests] == [httpx.URL(url).path]


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compressed_audio_has_content_length_of_the_wire_bytes(encoding: str) -> None:
    if encoding == "br":
        brotli = pytest.importorskip("brotli", reason="brotli is not installed: br shapes cannot be served")
    with StandIn(Shape(content_encoding=encoding, audio_seconds=2)) as api:
        url = submit(api).json()["tracks"][0]["audio_url"]
        with httpx.stream("GET", url) as resp:
            wire = b"".join(resp.iter_raw())
        assert resp.headers["content-encoding"] == encoding
        assert int(resp.headers["content-length"]) == len(wire)
        data = gzip.decompress(wire) if encoding == "gzip" else brotli.decompress(wire)
        assert len(data) > len(wire)
        assert decode(data, "wav")[0].shape == (88200, 2)


def test_gone_audio_answers_410_at_the_origin_and_the_cdn() -> None:
    with StandIn(Shape(gone_audio=True)) as api:
        assert httpx.get(submit(api).json()["tracks"][0]["audio_url"]).status_code == 410
        api.shape = Shape(gone_audio=True, audio="cdn")
        assert httpx.get(submit(api).json()["tracks"][0]["audio_url"]).status_code == 410


@pytest.mark.parametrize("kind", ["html", "truncated"])
def test_unreadable_submission_is_accepted_and_charged(kind: str) -> None:
    with StandIn(Shape(unreadable_submit=kind, submit_faults_first=1)) as api:
        resp = submit(api)
        assert resp.status_code == 200
        with pytest.raises(ValueError):
            resp.json()
        assert api.charges == [4]
        assert submit(api).json()["success"] is True  # only the first was hit
        assert api.charges == [4, 4] and api.posts_where("name", "row-1") == 2


def test_success_false_in_a_200_is_not_charged() -> None:
    with StandIn(Shape(success_false_in_2xx=True)) as api:
        resp = submit(api)
        assert resp.status_code == 200
        assert resp.json() == {"success": False, "error": {"message": "generation could not be started"}}
        assert api.charges == [] and len(api.posts) == 1


@pytest.mark.parametrize("as_date", [False, True])
def test_rate_limit_answers_429_with_retry_after(as_date: bool) -> None:
    with StandIn(Shape(rate_limit=(2, 1.0), retry_after_date=as_date)) as api:
        assert [submit(api).status_code for _ in range(3)] == [200, 200, 429]
        limited = submit(api)
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        retry_after = limited.headers["retry-after"]
        if as_date:
            wait = parsedate_to_datetime(retry_after).timestamp() - time.time()
            assert -1 < wait <= 2
        else:
            assert retry_after == "1"
        time.sleep(1.05)
        assert submit(api).status_code == 200
        assert len(api.charges) == 3 and len(api.posts) == 5


def test_outage_answers_html_503_for_its_duration_then_recovers() -> None:
    with StandIn() as api:
        api.outage(0.5)
        resp = submit(api)
        assert resp.status_code == 503 and resp.headers["content-type"].startswith("text/html")
        assert api.charges == [] and len(api.posts) == 1
        time.sleep(0.55)
        assert submit(api).status_code == 200


def test_refusing_outage_closes_the_port_and_reopens_it() -> None:
    with StandIn() as api:
        url = submit(api).json()["tracks"][0]["audio_url"]
        api.outage(0.5, mode="refuse")
        with pytest.raises(httpx.ConnectError):
            submit(api)
        assert httpx.get(api.cdn_url + "/files/x.wav").status_code == 403  # the CDN stays up
        deadline = time.monotonic() + 5
        while True:
            try:
                assert httpx.get(url).status_code == 200  # same port, tracks kept
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the API did not come back"
                time.sleep(0.05)


def test_chunked_audio_has_no_content_length() -> None:
    with StandIn(Shape(chunked=True, seconds_to_ready=0.0)) as api:
        url = submit(api).json()["tracks"][0]["audio_url"]
        with httpx.stream("GET", url) as response:
            body = response.read()
        assert response.headers.get("transfer-encoding") == "chunked" and "content-length" not in response.headers
        assert body[:4] == b"RIFF"
