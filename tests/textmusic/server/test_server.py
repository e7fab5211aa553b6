"""The local Text-to-Music service over real HTTP on 127.0.0.1, against the real engine: the contract's
rules, money, audio URLs and rate limit. Restarts: test_server_durability.py; faults: test_server_faults.py;
OpenAPI: test_server_openapi.py (they share the helpers here).

The server runs as `python -m textmusic serve` in its own process group (so a crash can be simulated
by killing the group, workers included); keys come from `python -m textmusic keys create`.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import mutagen.mp3
import mutagen.mp4
import numpy as np
import pytest
import soundfile as sf

from tests.support.service import (
    CONTENT_TYPES,
    DURATION,
    PROMPT,
    ROOT,
    Server,
    assert_error,
    auth,
    create_key,
    db,
    db_balance,
    decoded_seconds,
    get_track,
    key_id,
    reserved_per_song,
    start_server,
    submit,
    usage_json,
    wait_ready,
)
from textmusic.contract import (
    DEFAULT_FORMAT,
    FORMATS,
    IDEMPOTENCY_HEADER,
    RENDER_TAIL_MAX_SECONDS,
    SEED_MAX,
    STATUS_PATH,
    SUBMIT_PATH,
    price_cents,
    song_seed,
)
from textmusic.engine import ENGINE_VERSION

# --- helpers -------------------------------------------------------------------------------------
































# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def norender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """For tests about what is accepted, not rendered: every song fails at once (an injected fault)."""
    srv = start_server(tmp_path_factory.mktemp("tm-norender"), "--faults", "track_failed=1")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def wav_pair(server: Server) -> dict[str, Any]:
    """A two-song wav request on a fresh $10 key, submitted and waited for (shared by several tests)."""
    k = create_key(server.data, 10.0)
    resp = submit(
        server,
        k,
        {"prompt": PROMPT, "tags": ["pop"], "num_songs": 2, "seed": 12345, "duration_seconds": DURATION},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    ready = wait_ready(server, k, [t["id"] for t in body["tracks"]])
    return {"key": k, "submitted": body, "ready": ready}


# --- authentication and validation ---------------------------------------------------------------


def test_healthz(server: Server) -> None:
    resp = httpx.get(server.url("/healthz"))
    assert resp.status_code == 200 and resp.json() == {"ok": True}


def test_missing_key_is_401(server: Server) -> None:
    resp = httpx.post(server.url(SUBMIT_PATH), json={"prompt": PROMPT})
    assert_error(resp, 401, "unauthorized")
    resp = httpx.post(server.url(SUBMIT_PATH), json={"prompt": PROMPT}, headers={"Authorization": "Basic x"})
    assert_error(resp, 401, "unauthorized")


def test_unknown_key_is_401(server: Server) -> None:
    resp = submit(server, "tm_not-a-real-key", {"prompt": PROMPT, "duration_seconds": DURATION})
    assert_error(resp, 401, "unauthorized")
    assert_error(get_track(server, "tm_not-a-real-key", uuid.uuid4().hex), 401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"lyrics": "la la la"}, "lyrics must be paired"),
        ({"tags": ["pop"]}, "tags must be paired"),
        ({"prompt": PROMPT, "tags": ["pop"], "lyrics": "la la"}, "never all"),
        ({}, "at least one"),
        ({"prompt": "", "tags": [], "lyrics": ""}, "at least one"),
        ({"prompt": PROMPT, "tempo": 120}, "tempo"),
        ({"prompt": PROMPT, "output_format": "wav", "output_bit_rate": "192"}, "output_bit_rate"),
        ({"prompt": PROMPT, "output_format": "aiff"}, "output_format"),
        ({"prompt": PROMPT, "num_songs": 3}, "num_songs"),
        ({"prompt": PROMPT, "duration_seconds": 5}, "duration_seconds"),
        ({"prompt": PROMPT, "seed": -1}, "seed"),
        ({"prompt": PROMPT, "seed": 2**32}, "seed"),
        ({"prompt": PROMPT, "seed": 1.5}, "seed"),
        ({"prompt": PROMPT, "seed": True}, "seed"),
        ({"prompt": PROMPT, "seed": "7"}, "seed"),
        ({"prompt": PROMPT, "tags": ["pop", ""]}, "tags.1"),
        ({"prompt": PROMPT, "tags": ["   "]}, "tags.0"),
        ({"prompt": PROMPT, "tags": [1]}, "tags.0"),
        ({"prompt": PROMPT, "tags": "pop"}, "tags"),
        ({"prompt": PROMPT, "tags": ["t"] * 33}, "tags"),
        ({"prompt": PROMPT, "tags": ["x" * 65]}, "tags.0"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"prompt": PROMPT, "name": "n" * 201}, "name"),
        ({"prompt": PROMPT, "lyrics": "l" * 5001}, "lyrics"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": PROMPT, "bpm": 300}, "bpm"),
        ({"prompt": PROMPT, "bpm": 39.9}, "bpm"),
        ({"prompt": PROMPT, "bpm": "fast"}, "bpm"),
        ({"prompt": PROMPT, "output_format": "mp3", "output_bit_rate": "160"}, "output_bit_rate"),
        ({"prompt": PROMPT, "output_format": "mp3", "output_bit_rate": 160}, "output_bit_rate"),
        ({"prompt": PROMPT, "output_bit_rate": 192}, "only allowed with mp3 or m4a"),
        ({"prompt": PROMPT, "num_songs": True}, "num_songs"),
        ({"prompt": PROMPT, "num_songs": "2"}, "num_songs"),
        ({"prompt": PROMPT, "num_songs": 0}, "num_songs"),
        ({"prompt": PROMPT, "store_audio": "yes"}, "store_audio"),
        ({"prompt": PROMPT, "prompt_strength": 10.5}, "prompt_strength"),
        ({"prompt": PROMPT, "balance_strength": -0.1}, "balance_strength"),
        ({"prompt": PROMPT, "duration_seconds": 600.5}, "duration_seconds"),
        ([PROMPT], "object"),
        (None, "object"),
    ],
    ids=[
        "lyrics-only",
        "tags-only",
        "all-three",
        "none",
        "all-empty",
        "unknown-field",
        "bit-rate-with-wav",
        "bad-format",
        "num-songs-3",
        "duration-too-short",
        "negative-seed",
        "seed-over-32-bits",
        "seed-float",
        "seed-bool",
        "seed-string",
        "empty-tag",
        "blank-tag",
        "tag-not-string",
        "tags-not-list",
        "too-many-tags",
        "tag-too-long",
        "prompt-too-long",
        "name-too-long",
        "lyrics-too-long",
        "prompt-not-string",
        "bpm-too-high",
        "bpm-too-low",
        "bpm-word",
        "bit-rate-string-unknown",
        "bit-rate-number-unknown",
        "bit-rate-with-default-wav",
        "num-songs-bool",
        "num-songs-string",
        "num-songs-0",
        "store-audio-string",
        "prompt-strength-high",
        "balance-strength-negative",
        "duration-too-long",
        "not-an-object",
        "null-body",
    ],
)
def test_invalid_input_is_400(server: Server, key: str, body: Any, fragment: str) -> None:
    headers = {**auth(key), "Content-Type": "application/json"}
    resp = httpx.post(server.url(SUBMIT_PATH), content=json.dumps(body), headers=headers)
    message = assert_error(resp, 400, "invalid_input")
    assert fragment in message


@pytest.mark.parametrize(
    "raw",
    [b'{"prompt": "x",', b"", b'{"prompt": NaN}', b'{"prompt": "x", "seed": Infinity}', b"\xff\xfe", b"[" * 100_000],
    ids=["truncated", "empty", "nan", "infinity", "not-utf8", "deeply-nested"],
)
def test_malformed_json_is_400(server: Server, key: str, raw: bytes) -> None:
    headers = {**auth(key), "Content-Type": "application/json"}
    resp = httpx.post(server.url(SUBMIT_PATH), content=raw, headers=headers)
    assert "JSON" in assert_error(resp, 400, "invalid_input")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_400(server: Server, key: str, content_type: str | None) -> None:
    headers = auth(key) | ({"Content-Type": content_type} if content_type else {})
    body = json.dumps({"prompt": PROMPT, "duration_seconds": DURATION})
    resp = httpx.post(server.url(SUBMIT_PATH), content=body, headers=headers)
    assert "Content-Type" in assert_error(resp, 400, "invalid_input")


def test_json_with_charset_is_accepted(norender: Server) -> None:
    k = create_key(norender.data, 1.0)
    headers = {**auth(k), "Content-Type": "application/json; charset=utf-8"}
    body = json.dumps({"prompt": PROMPT, "duration_seconds": DURATION, "store_audio": True})
    resp = httpx.post(norender.url(SUBMIT_PATH), content=body, headers=headers)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": PROMPT},
        {"prompt": PROMPT, "tags": ["pop", "electronic"]},
        {"prompt": PROMPT, "lyrics": "la la la"},
        {"tags": ["folk"], "lyrics": "la la la"},
        {"prompt": PROMPT, "tags": ["pop"], "lyrics": ""},  # empty lyrics: an instrumental, not "all three"
        {"prompt": PROMPT, "lyrics": "", "tags": []},
        {"tags": ["lofi", "chill"], "lyrics": ""},  # "lyrics \"\" with prompt or tags is an instrumental"
    ],
    ids=["prompt", "prompt+tags", "prompt+lyrics", "tags+lyrics", "instrumental-all-three", "empty-tags",
         "instrumental-from-tags"],
)
def test_allowed_combinations_are_accepted(norender: Server, body: dict[str, Any]) -> None:
    k = create_key(norender.data, 1.0)
    resp = submit(norender, k, {**body, "duration_seconds": DURATION})
    assert resp.status_code == 200, resp.text
    payload = resp.json()
    assert payload["success"] is True and len(payload["tracks"]) == 1
    assert payload["cost_cents"] == reserved_per_song() and payload["balance_cents"] == 100 - reserved_per_song()


def test_defaults_are_applied(norender: Server) -> None:
    k = create_key(norender.data, 1.0)
    resp = submit(norender, k, {"prompt": PROMPT, "duration_seconds": DURATION})
    assert resp.status_code == 200, resp.text
    (track,) = resp.json()["tracks"]
    assert track["output_format"] == "wav" and track["output_bit_rate"] is None
    assert track["expires_at"] is not None  # store_audio defaults to false
    assert isinstance(track["seed"], int) and 0 <= track["seed"] <= SEED_MAX
    with db(norender.data) as conn:
        stored = json.loads(conn.execute("SELECT request_json FROM tracks WHERE id = ?", (track["id"],)).fetchone()[0])
    assert (stored["prompt_strength"], stored["balance_strength"], stored["num_songs"]) == (2.0, 0.7, 1)
    assert (stored["bpm"], stored["store_audio"], stored["seed"]) == ("auto", False, track["seed"])


def test_invalid_requests_cost_nothing(server: Server) -> None:
    k = create_key(server.data, 1.0)
    httpx.post(server.url(SUBMIT_PATH), json={"tags": ["pop"]}, headers=auth(k))
    assert db_balance(server.data, k) == 100


# --- generation, download, billing ---------------------------------------------------------------


def test_submit_returns_pending_tracks_with_reservation(wav_pair: dict[str, Any]) -> None:
    body = wav_pair["submitted"]
    assert body["success"] is True
    assert len(body["tracks"]) == 2
    reserved = 2 * reserved_per_song()
    assert body["cost_cents"] == reserved
    assert body["balance_cents"] == 1000 - reserved
    for track in body["tracks"]:
        assert track["status"] == "pending"
        assert track["audio_url"] is None
        assert track["tags"] == ["pop"]
        assert track["output_format"] == "wav"
        assert track["expires_at"] is not None and track["created_at"].endswith("Z")
        assert len(track["id"]) == 32 and int(track["id"], 16) >= 0


def test_two_songs_have_derived_seeds(wav_pair: dict[str, Any]) -> None:
    seeds = [t["seed"] for t in wav_pair["ready"]]
    assert seeds == [12345, song_seed(12345, 1)]
    assert seeds[0] != seeds[1]
    assert wav_pair["ready"][0]["id"] != wav_pair["ready"][1]["id"]


def test_cost_settles_to_the_price_of_the_real_duration(server: Server, wav_pair: dict[str, Any]) -> None:
    k = wav_pair["key"]
    costs = []
    for track in wav_pair["ready"]:
        assert DURATION <= track["duration_seconds"] <= DURATION + RENDER_TAIL_MAX_SECONDS
        assert track["cost_cents"] == price_cents(track["duration_seconds"])
        assert track["bpm"] is not None and 40 <= track["bpm"] <= 240
        assert track["engine_version"] == ENGINE_VERSION  # EXTENSION: which engine release rendered it
        costs.append(track["cost_cents"])
    # The next submission's balance shows the first one settled: down by exactly the real price.
    resp = submit(server, k, {"prompt": PROMPT, "duration_seconds": DURATION, "output_format": "flac"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["balance_cents"] == 1000 - sum(costs) - reserved_per_song()
    with db(server.data) as conn:
        rows = conn.execute(
            "SELECT track_id, cents FROM charges WHERE track_id IN (?, ?)",
            [t["id"] for t in wav_pair["ready"]],
        ).fetchall()
    assert sorted(r["cents"] for r in rows) == sorted(costs)
    wait_ready(server, k, [t["id"] for t in resp.json()["tracks"]])


def test_wav_download(wav_pair: dict[str, Any]) -> None:
    for track in wav_pair["ready"]:
        assert track["audio_url"].startswith("http://127.0.0.1:")
        assert track["audio_url"].endswith(f"/api/v1/audio/{track['id']}.wav")
        resp = httpx.get(track["audio_url"])  # no key needed: the id is the secret
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "audio/wav"
        assert int(resp.headers["content-length"]) == len(resp.content) > 0
        assert abs(decoded_seconds(resp.content, "wav") - track["duration_seconds"]) < 0.1


# Every format but the default (test_wav_download covers it), at its lowest bit rate where it takes one.
OTHER_FORMATS = [(name, f.bit_rates[0] if f.bit_rates else None)
                 for name, f in FORMATS.items() if name != DEFAULT_FORMAT]


@pytest.mark.parametrize(("fmt", "bit_rate"), OTHER_FORMATS)
def test_formats_render_and_download(server: Server, key: str, fmt: str, bit_rate: str | None) -> None:
    body: dict[str, Any] = {"prompt": PROMPT, "duration_seconds": DURATION, "output_format": fmt}
    if bit_rate:
        body["output_bit_rate"] = bit_rate
    resp = submit(server, key, body)  # no seed: the service picks one
    assert resp.status_code == 200, resp.text
    (pending,) = resp.json()["tracks"]
    assert pending["status"] == "pending"
    assert isinstance(pending["seed"], int) and 0 <= pending["seed"] <= SEED_MAX
    (track,) = wait_ready(server, key, [pending["id"]])
    assert track["seed"] == pending["seed"]
    assert track["output_format"] == fmt
    if bit_rate:
        assert track["output_bit_rate"] == bit_rate
    audio = httpx.get(track["audio_url"])
    assert audio.status_code == 200
    assert audio.headers["content-type"] == CONTENT_TYPES[fmt]
    assert int(audio.headers["content-length"]) == len(audio.content) > 0
    tolerance = 0.2 if FORMATS[fmt].codec in ("libmp3lame", "aac") else 0.1  # mp3/aac encoder priming
    assert abs(decoded_seconds(audio.content, fmt) - track["duration_seconds"]) < tolerance


def test_insufficient_balance_is_402(server: Server) -> None:
    k = create_key(server.data, 0.01)
    resp = submit(server, k, {"prompt": PROMPT, "duration_seconds": DURATION, "name": "poor"})
    assert "balance" in assert_error(resp, 402, "insufficient_balance")
    assert db_balance(server.data, k) == 1
    with db(server.data) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tracks WHERE name = 'poor'").fetchone()[0] == 0


def test_concurrent_submissions_never_overspend(server: Server) -> None:
    """The reservation is atomic: a balance for two songs admits exactly two of six racing requests."""
    k = create_key(server.data, 2 * reserved_per_song() / 100)
    body = {"prompt": PROMPT, "duration_seconds": DURATION}
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: submit(server, k, body), range(6)))
    assert sorted(r.status_code for r in responses) == [200, 200, 402, 402, 402, 402]
    assert db_balance(server.data, k) == 0


def test_idempotency_key_replays_the_first_submission(server: Server) -> None:
    """EXTENSION: the same Idempotency-Key and body answer the first submission's tracks, charged once;
    racing repeats too; another body under that key is a 400; another API key has its own keys."""
    k = create_key(server.data, 10.0)
    body = {"prompt": PROMPT, "duration_seconds": DURATION, "num_songs": 2}
    headers = {**auth(k), IDEMPOTENCY_HEADER: "row-7-attempt-1"}

    def post(payload: dict[str, Any], hdrs: dict[str, str] = headers) -> httpx.Response:
        return httpx.post(server.url(SUBMIT_PATH), json=payload, headers=hdrs, timeout=30)

    first = post(body)
    assert first.status_code == 200, first.text
    with ThreadPoolExecutor(max_workers=4) as pool:
        repeats = list(pool.map(lambda _: post(body), range(4)))
    ids = [t["id"] for t in first.json()["tracks"]]
    assert all(r.status_code == 200 and [t["id"] for t in r.json()["tracks"]] == ids for r in repeats)
    assert [t["seed"] for t in repeats[0].json()["tracks"]] == [t["seed"] for t in first.json()["tracks"]]
    assert db_balance(server.data, k) == 1000 - 2 * reserved_per_song()
    assert "different request" in assert_error(post({**body, "num_songs": 1}), 400, "invalid_input")
    other = create_key(server.data, 10.0)
    fresh = post(body, {**auth(other), IDEMPOTENCY_HEADER: "row-7-attempt-1"})
    assert fresh.status_code == 200 and not {t["id"] for t in fresh.json()["tracks"]} & set(ids)
    assert "Idempotency-Key" in assert_error(post(body, {**auth(k), IDEMPOTENCY_HEADER: "x" * 256}), 400,
                                             "invalid_input")
    wait_ready(server, k, ids)
    usage = usage_json(server.data)[key_id(k)]
    assert sorted(c["track_id"] for c in usage["charges"]) == sorted(ids)


def test_other_keys_track_is_404(server: Server, wav_pair: dict[str, Any], key: str) -> None:
    track_id = wav_pair["ready"][0]["id"]
    assert get_track(server, wav_pair["key"], track_id).status_code == 200
    assert_error(get_track(server, key, track_id), 404, "not_found")
    assert_error(get_track(server, key, uuid.uuid4().hex), 404, "not_found")
    assert_error(get_track(server, key, "../../etc/passwd"), 404, "not_found")


def test_audio_unknown_or_traversal_is_404(server: Server, wav_pair: dict[str, Any]) -> None:
    track_id = wav_pair["ready"][0]["id"]
    for path in (
        f"/api/v1/audio/{uuid.uuid4().hex}.wav",
        f"/api/v1/audio/{track_id}.mp3",  # wrong extension
        "/api/v1/audio/..%2Ftextmusic.db",
        "/api/v1/audio/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    ):
        assert_error(httpx.get(server.url(path)), 404, "not_found")


def test_stored_audio_never_expires(server: Server, key: str) -> None:
    body = {"prompt": PROMPT, "duration_seconds": DURATION, "store_audio": True, "name": "keeper"}
    resp = submit(server, key, body)
    assert resp.status_code == 200, resp.text
    (track,) = resp.json()["tracks"]
    assert track["expires_at"] is None and track["name"] == "keeper"


def test_expired_audio_is_410(server: Server, wav_pair: dict[str, Any]) -> None:
    track = wav_pair["ready"][1]
    assert httpx.get(track["audio_url"]).status_code == 200
    with db(server.data) as conn:
        conn.execute("UPDATE tracks SET expires_at = ? WHERE id = ?", (time.time() - 1, track["id"]))
    assert_error(httpx.get(track["audio_url"]), 410, "gone")
    assert not (server.data / "audio" / f"{track['id']}.wav").exists()


def test_range_requests(wav_pair: dict[str, Any]) -> None:
    track = wav_pair["ready"][0]
    full = httpx.get(track["audio_url"]).content
    part = httpx.get(track["audio_url"], headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(full)}"
    assert int(part.headers["content-length"]) == 1000 and part.content == full[100:1100]
    assert part.headers["content-type"] == "audio/wav"
    tail = httpx.get(track["audio_url"], headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == full[-500:]
    assert httpx.get(track["audio_url"], headers={"Range": f"bytes={len(full) + 10}-"}).status_code == 416
    assert full[:4] == b"RIFF"


def test_seeded_request_renders_identical_audio(server: Server, key: str) -> None:
    body = {"prompt": PROMPT, "tags": ["jazz"], "seed": 4242, "duration_seconds": DURATION, "bpm": 96}
    ids = [submit(server, key, body).json()["tracks"][0]["id"] for _ in range(2)]
    tracks = wait_ready(server, key, ids)
    assert ids[0] != ids[1] and tracks[0]["seed"] == tracks[1]["seed"] == 4242
    assert tracks[0]["bpm"] == tracks[1]["bpm"] == 96
    first, second = (sf.read(io.BytesIO(httpx.get(t["audio_url"]).content), dtype="int16")[0] for t in tracks)
    assert first.shape == second.shape and np.array_equal(first, second)
    assert np.abs(first).max() > 0
    other = submit(server, key, {**body, "seed": 4243}).json()["tracks"][0]["id"]
    (different,) = wait_ready(server, key, [other])
    third = sf.read(io.BytesIO(httpx.get(different["audio_url"]).content), dtype="int16")[0]
    assert third.shape != first.shape or not np.array_equal(first, third)


@pytest.mark.parametrize(("fmt", "bit_rate"), [("mp3", 320), ("mp3", "128"), ("m4a", 256)])
def test_encoded_at_the_asked_bit_rate(server: Server, key: str, fmt: str, bit_rate: int | str) -> None:
    """The bit rate may be sent as a string or a number; the file is encoded at it."""
    body = {"prompt": PROMPT, "duration_seconds": DURATION, "output_format": fmt, "output_bit_rate": bit_rate}
    resp = submit(server, key, body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["tracks"][0]["output_bit_rate"] == str(bit_rate)
    (track,) = wait_ready(server, key, [resp.json()["tracks"][0]["id"]])
    assert track["output_bit_rate"] == str(bit_rate)
    content = httpx.get(track["audio_url"]).content
    if fmt == "mp3":
        info = mutagen.mp3.MP3(io.BytesIO(content)).info
        assert round(info.bitrate / 1000) == int(bit_rate) and info.bitrate_mode == mutagen.mp3.BitrateMode.CBR
    else:
        kbps = mutagen.mp4.MP4(io.BytesIO(content)).info.bitrate / 1000
        assert abs(kbps - int(bit_rate)) / int(bit_rate) < 0.1, kbps


def test_usage_reconciles_with_the_ledger(server: Server) -> None:
    """A ledger kept from the API's answers alone agrees with `textmusic usage`, charge by charge."""
    k = create_key(server.data, 3.0)
    ledger: dict[str, int] = {}
    ids = []
    for body in (
        {"prompt": PROMPT, "num_songs": 2, "seed": 5, "duration_seconds": DURATION},
        {"prompt": PROMPT, "duration_seconds": 12, "output_format": "ogg"},
    ):
        resp = submit(server, k, body)
        assert resp.status_code == 200, resp.text
        ids += [t["id"] for t in resp.json()["tracks"]]
    for track in wait_ready(server, k, ids):
        ledger[track["id"]] = track["cost_cents"]
    account = usage_json(server.data)[key_id(k)]
    assert {c["track_id"]: c["cents"] for c in account["charges"]} == ledger
    assert all(c["cents"] == price_cents(c["seconds"]) for c in account["charges"])
    assert account["initial_cents"] == 300
    assert account["charged_cents"] == sum(ledger.values())
    assert account["balance_cents"] == 300 - sum(ledger.values()) == db_balance(server.data, k)
    assert (account["reserved_cents"], account["tracks_ready"], account["tracks_pending"]) == (0, 3, 0)
    text = subprocess.run(
        [sys.executable, "-m", "textmusic", "usage", "--data", str(server.data)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert k not in text and k[3:] not in text  # keys are never shown
    assert f"key {key_id(k)}: balance {account['balance_cents']} cents" in text
    for track_id, cents in ledger.items():
        assert any(track_id in line and line.rstrip().endswith(f"{cents} cents") for line in text.splitlines())


def test_audio_ttl_is_configurable_then_410(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "ttl", "--audio-ttl", "3")
    try:
        k = create_key(srv.data, 1.0)
        resp = submit(srv, k, {"prompt": PROMPT, "duration_seconds": DURATION})
        kept = submit(srv, k, {"prompt": PROMPT, "duration_seconds": DURATION, "store_audio": True})
        ids = [resp.json()["tracks"][0]["id"], kept.json()["tracks"][0]["id"]]
        track, stored = wait_ready(srv, k, ids)
        assert httpx.get(track["audio_url"]).status_code == 200  # the clock starts when the audio is ready
        with db(srv.data) as conn:
            row = conn.execute("SELECT updated_at, expires_at FROM tracks WHERE id = ?", (track["id"],)).fetchone()
        assert row["expires_at"] == pytest.approx(row["updated_at"] + 3, abs=0.01)
        time.sleep(max(0.0, row["expires_at"] - time.time()) + 0.2)
        assert_error(httpx.get(track["audio_url"]), 410, "gone")
        assert stored["expires_at"] is None
        assert httpx.get(stored["audio_url"]).status_code == 200
    finally:
        srv.stop()


# --- rate limit, internal errors -----------------------------------------------------------------


def test_rate_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "limited", "--rate-limit", "3/10s")
    try:
        hammered, other = create_key(srv.data, 1.0), create_key(srv.data, 1.0)
        answers = [get_track(srv, hammered, uuid.uuid4().hex) for _ in range(3)]
        assert [r.status_code for r in answers] == [404, 404, 404]
        assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["2", "1", "0"]
        assert all(r.headers["x-ratelimit-limit"] == "3" for r in answers)
        assert all(1 <= int(r.headers["x-ratelimit-reset"]) <= 10 for r in answers)
        assert "retry-after" not in answers[0].headers
        resp = get_track(srv, hammered, uuid.uuid4().hex)
        assert_error(resp, 429, "rate_limit_exceeded")
        assert 1 <= int(resp.headers["retry-after"]) <= 10
        assert resp.headers["x-ratelimit-remaining"] == "0" and resp.headers["x-ratelimit-limit"] == "3"
        assert_error(submit(srv, hammered, {"prompt": PROMPT}), 429, "rate_limit_exceeded")
        # The limit is per key.
        assert get_track(srv, other, uuid.uuid4().hex).status_code == 404
    finally:
        srv.stop()


def test_unexpected_error_is_500_with_error_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process (no way to break a subprocess's store on cue); no lifespan, so no workers."""
    from textmusic.server.app import create_app
    from textmusic.server.store import create_key as store_create_key

    k = store_create_key(tmp_path, 100)
    app = create_app(tmp_path)

    def boom(_: str) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(app.state.store, "get_track", boom)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(STATUS_PATH.format(id=uuid.uuid4().hex), headers=auth(k))

    message = assert_error(asyncio.run(call()), 500, "internal_error")
    assert "fire" not in message
