"""Library versions through the local service's HTTP API (the `versions` extension): each version listed with
its own URL, downloaded through the client and decoded at its length, the full one the very file a request
without versions gets, charged nothing extra; unknown kinds refused; replays; the synthetic stand-in too.

Real `python -m textmusic serve` processes on loopback: one rendering with the engine, one with synthetic audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.support.service import Server, assert_error, auth, create_key, start_server, submit, wait_ready
from textmusic.client import BadDownload, TextMusicClient
from textmusic.contract import (
    IDEMPOTENCY_HEADER,
    SUBMIT_PATH,
    TextToMusicRequest,
    Track,
    check_version_kinds,
    price_cents,
)
from textmusic.providers import load_profile
from textmusic.providers.reader import read_track
from textmusic.server.store import NewTrack, Store, StoredVersion, hash_key
from textmusic.server.views import track_view

KINDS = ["15", "loop4", "stems", "underscore"]
NAMES = {"full", "15s", "loop4", "stem:drums", "stem:bass", "stem:harmony", "stem:lead", "underscore"}
BEATS_PER_BAR = 4


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    srv = start_server(tmp_path_factory.mktemp("tm-versions"))
    try:
        yield srv, create_key(srv.data, 5.0)
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def synthetic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    srv = start_server(tmp_path_factory.mktemp("tm-versions-synth"), "--synthetic-audio")
    try:
        yield srv, create_key(srv.data, 5.0)
    finally:
        srv.stop()


def client_for(server: Server, key: str) -> TextMusicClient:
    return TextMusicClient(server.base, key, local_extensions=True)


def ready(server: Server, key: str, body: dict[str, Any], **headers: str) -> list[Track]:
    """Submit through HTTP, wait, and read the ready tracks back through the client (the pipeline's path)."""
    resp = httpx.post(server.url(SUBMIT_PATH), json=body, headers={**auth(key), **headers}, timeout=30)
    assert resp.status_code == 200, resp.text
    ids = [t["id"] for t in resp.json()["tracks"]]
    wait_ready(server, key, ids)
    with client_for(server, key) as client:
        return [client.get_track(i) for i in ids]


def downloaded(server: Server, key: str, track: Track, tmp: Path) -> dict[str, tuple[np.ndarray, int]]:
    """Every listed version, fetched with `TextMusicClient.download(track, dest, version=…)` and decoded."""
    out = {}
    with client_for(server, key) as client:
        for version in track.versions:
            dest = tmp / f"{version.name.replace(':', '-')}.{track.output_format}"
            got = client.download(track, dest, version=version.name)
            assert got.bytes_written == dest.stat().st_size > 0
            out[version.name] = sf.read(dest, dtype="float64")
    return out


def loop_frames(bars: int, bpm: float, rate: int) -> float:
    return bars * BEATS_PER_BAR * 60.0 / bpm * rate


def check_lengths(track: Track, audio: dict[str, tuple[np.ndarray, int]]) -> None:
    """The decoded lengths: the cut-down to ±0.25 s, the loop to the frame, stems and mixes as the full;
    each as the answer says."""
    assert set(audio) == NAMES
    full, rate = audio["full"]
    assert track.bpm is not None
    assert abs(len(audio["15s"][0]) / rate - 15.0) <= 0.25
    assert abs(len(audio["loop4"][0]) - loop_frames(4, track.bpm, rate)) <= 1
    for name in NAMES - {"full", "15s", "loop4"}:
        assert len(audio[name][0]) == len(full), name
    for version in track.versions:
        samples, rate = audio[version.name]
        assert version.duration_seconds == pytest.approx(len(samples) / rate, abs=1e-6)
        assert np.abs(samples).max() > 1e-3, f"{version.name} is silent"


# --- the engine --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_tracks(engine_server: tuple[Server, str]) -> tuple[Track, Track]:
    """One song with versions and the same song without (queued together on the one worker)."""
    server, key = engine_server
    body = {"prompt": "calm lo-fi hip hop with piano", "seed": 31, "duration_seconds": 20, "bpm": 84}
    with_versions = httpx.post(server.url(SUBMIT_PATH), json={**body, "versions": KINDS}, headers=auth(key))
    plain = httpx.post(server.url(SUBMIT_PATH), json=body, headers=auth(key))
    assert with_versions.status_code == plain.status_code == 200, with_versions.text
    ids = [with_versions.json()["tracks"][0]["id"], plain.json()["tracks"][0]["id"]]
    wait_ready(server, key, ids, timeout=180)
    with client_for(server, key) as client:
        first, second = (client.get_track(i) for i in ids)
    return first, second


def test_engine_versions_are_listed_and_download_at_their_lengths(
        engine_server: tuple[Server, str], engine_tracks: tuple[Track, Track], tmp_path: Path) -> None:
    server, key = engine_server
    track, plain = engine_tracks
    assert [v.name for v in track.versions][0] == "full" and {v.name for v in track.versions} == NAMES
    assert track.version("full").audio_url == track.audio_url  # type: ignore[union-attr]
    assert len({v.audio_url for v in track.versions}) == len(NAMES)
    assert plain.versions == []
    audio = downloaded(server, key, track, tmp_path)
    check_lengths(track, audio)
    stems = sum(audio[f"stem:{part}"][0] for part in ("drums", "bass", "harmony", "lead"))
    residual = np.sqrt(np.mean((stems - audio["full"][0]) ** 2)) / np.sqrt(np.mean(audio["full"][0] ** 2))
    assert 20 * np.log10(residual) < -40  # the stems files add up to the full file


def test_engine_full_version_is_the_file_without_versions_and_costs_the_same(
        engine_server: tuple[Server, str], engine_tracks: tuple[Track, Track], tmp_path: Path) -> None:
    server, key = engine_server
    track, plain = engine_tracks
    with client_for(server, key) as client:
        client.download(track, tmp_path / "with.wav", version="full")
        client.download(plain, tmp_path / "plain.wav")
    assert (tmp_path / "with.wav").read_bytes() == (tmp_path / "plain.wav").read_bytes()
    assert track.cost_cents == plain.cost_cents == price_cents(track.duration_seconds or 0)


# --- synthetic audio, refusals, replays --------------------------------------------------------------


def test_synthetic_versions_have_the_engines_lengths(synthetic_server: tuple[Server, str], tmp_path: Path) -> None:
    server, key = synthetic_server
    body = {"prompt": "a test", "seed": 9, "duration_seconds": 25, "bpm": 100, "output_format": "flac",
            "versions": KINDS}
    (track,) = ready(server, key, body)
    assert track.bpm == 100 and {v.name for v in track.versions} == NAMES
    check_lengths(track, downloaded(server, key, track, tmp_path))
    assert len(downloaded(server, key, track, tmp_path)["loop4"][0]) == round(loop_frames(4, 100, 44100))


def test_unknown_kind_is_400_naming_it(synthetic_server: tuple[Server, str]) -> None:
    server, key = synthetic_server
    message = assert_error(submit(server, key, {"prompt": "x", "versions": ["30", "90"]}), 400, "invalid_input")
    assert "versions" in message and "'90'" in message and "'30'" not in message
    assert_error(submit(server, key, {"prompt": "x", "versions": "30"}), 400, "invalid_input")


def test_idempotent_replay_with_versions_is_the_same_track(synthetic_server: tuple[Server, str]) -> None:
    server, key = synthetic_server
    body = {"prompt": "a replay", "duration_seconds": 12, "versions": ["loop8", "stems"]}
    first = ready(server, key, body, **{IDEMPOTENCY_HEADER: "versions-replay-1"})
    again = ready(server, key, body, **{IDEMPOTENCY_HEADER: "versions-replay-1"})
    assert [t.id for t in again] == [t.id for t in first]
    assert again[0].versions == first[0].versions and len(first[0].versions) == 6  # full, loop8, 4 stems
    other = httpx.post(server.url(SUBMIT_PATH), json={**body, "versions": ["loop8"]},
                       headers={**auth(key), IDEMPOTENCY_HEADER: "versions-replay-1"})
    assert "different request" in assert_error(other, 400, "invalid_input")  # the versions are part of the ask


def test_a_version_not_listed_is_not_served(synthetic_server: tuple[Server, str], tmp_path: Path) -> None:
    server, key = synthetic_server
    (track,) = ready(server, key, {"prompt": "no loops", "duration_seconds": 10, "versions": ["15"]})
    assert {v.name for v in track.versions} == {"full", "15s"}
    assert httpx.get(track.version("15s").audio_url).status_code == 200  # type: ignore[union-attr]
    for tag in ("loop4", "stem-drums", "nosuch"):
        missing = track.audio_url.replace(f"{track.id}.", f"{track.id}.{tag}.")  # type: ignore[union-attr]
        assert httpx.get(missing).status_code == 404
    with client_for(server, key) as client, pytest.raises(BadDownload, match="loop4"):
        client.download(track, tmp_path / "x.wav", version="loop4")


def test_versions_are_a_local_extension_of_the_client_and_reader() -> None:
    """A hosted provider is never sent `versions`, and a hosted answer's `versions` are not read as ours."""
    request = TextToMusicRequest(prompt="x", duration_seconds=30, versions=["30"])
    hosted = TextMusicClient("https://api.example.test", "k", local_extensions=False)
    local = TextMusicClient("http://127.0.0.1:1", "k", local_extensions=True)
    assert "versions" not in hosted.request_body(request)
    assert local.request_body(request)["versions"] == ["full", "30"]
    answer = {"id": "t", "audio_url": "https://x/t.wav",
              "versions": [{"name": "30s", "audio_url": "https://x/t.30s.wav", "duration_seconds": 30.0}]}
    assert read_track(load_profile("verbatik"), answer).versions == []
    assert read_track(load_profile("textmusic-local"), answer).version("30s").duration_seconds == 30.0  # type: ignore[union-attr]
    hosted.close()
    local.close()



def test_kinds_are_canonical_and_full_always_comes_first() -> None:
    asked = TextToMusicRequest(prompt="x", versions=["stems", "15", "loop4", "15"])
    assert asked.versions == ["full", "15", "loop4", "stems"] == list(check_version_kinds(["loop4", "stems", "15"]))
    assert TextToMusicRequest(prompt="x", versions=[]).versions is None  # nothing asked beyond the song
    assert TextToMusicRequest(prompt="x", versions=["full"]).versions == ["full"]


def test_versions_are_hidden_while_held_and_expire_with_their_track(tmp_path: Path) -> None:
    """Hosted timing shows no version before the track's time; an unstored track's versions expire with it."""
    store = Store(tmp_path, audio_ttl_seconds=60)
    key = hash_key(store.add_key(1000))
    request = TextToMusicRequest(prompt="x", seed=1, duration_seconds=12, versions=["15"])
    new = NewTrack(id="a" * 32, request_json=request.model_dump_json(), song_index=0, seed=1, name=None,
                   tags_json=None, output_format="wav", output_bit_rate=None, store_audio=False,
                   reserved_cents=request.max_cost_cents(), latency_seconds=30.0)
    store.submit(key, [new], now=1000.0)
    version = StoredVersion("15s", f"audio/{new.id}.15s.wav", 15.0)
    assert store.mark_ready(new.id, duration_seconds=12.0, bpm=90.0, output_bit_rate=None,
                            file_path=f"audio/{new.id}.wav", versions=[version])
    row = store.get_track(new.id)
    assert row is not None
    assert track_view(row, "http://h/", now=1010.0).versions == []  # held back: pending, no audio
    shown = track_view(row, "http://h/", now=row["ready_not_before"] + 1)
    assert [(v.name, v.audio_url) for v in shown.versions] == [
        ("full", f"http://h/api/v1/audio/{new.id}.wav"), ("15s", f"http://h/api/v1/audio/{new.id}.15s.wav")]
    assert store.expired_files(now=row["expires_at"] + 1) == [f"audio/{new.id}.wav", version.file_path]
