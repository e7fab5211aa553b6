"""The `midi` version through the local service's HTTP API: listed with its own `.mid` URL and `format: "mid"`,
served as audio/midi, a MIDI file of the track's tempo; the song itself still served in its format.

A real `python -m textmusic serve` process on loopback (the module's own, rendering with the engine).
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import mido
import pytest

from tests.support.service import Server, submit, wait_ready
from textmusic.client import TextMusicClient
from textmusic.contract import MAX_MIDI_BYTES, MIDI_MEDIA_TYPE, Track

BODY = {"prompt": "upbeat synth pop", "lyrics": "[verse]\nneon rain is falling down\n", "seed": 7, "bpm": 110,
        "duration_seconds": 12, "output_format": "flac", "versions": ["midi"]}


@pytest.fixture(scope="module")
def track(server: Server, key: str) -> Track:
    resp = submit(server, key, BODY)
    assert resp.status_code == 200, resp.text
    (answer,) = wait_ready(server, key, [resp.json()["tracks"][0]["id"]])
    return Track.model_validate(answer)


def test_the_midi_version_is_listed_with_its_own_url_and_format(track: Track) -> None:
    assert [v.name for v in track.versions] == ["full", "midi"]
    midi = track.version("midi")
    assert midi is not None and midi.format == "mid" and midi.audio_url.endswith(f"/{track.id}.midi.mid")
    full = track.version("full")
    assert full is not None and full.format is None and full.audio_url == track.audio_url
    assert abs(midi.duration_seconds - (track.duration_seconds or 0)) < 0.05  # the render's length


def test_it_is_served_as_a_midi_file_of_the_tracks_tempo(track: Track) -> None:
    midi = track.version("midi")
    assert midi is not None
    resp = httpx.get(midi.audio_url, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == MIDI_MEDIA_TYPE
    assert 0 < len(resp.content) <= MAX_MIDI_BYTES
    parsed = mido.MidiFile(file=io.BytesIO(resp.content))
    (tempo,) = [m.tempo for t in parsed.tracks for m in t if m.type == "set_tempo"]
    assert abs(mido.tempo2bpm(tempo) - (track.bpm or 0)) < 0.001
    assert any(m.type == "lyrics" for t in parsed.tracks for m in t)
    song = httpx.get(track.audio_url or "", timeout=30)
    assert song.status_code == 200 and song.headers["content-type"] == "audio/flac"


def test_the_midi_tag_with_the_songs_extension_is_no_file(track: Track) -> None:
    base = (track.audio_url or "").rsplit("/", 1)[0]
    assert httpx.get(f"{base}/{track.id}.midi.flac", timeout=30).status_code == 404
    assert httpx.get(f"{base}/{track.id}.mid", timeout=30).status_code == 404  # the song is no MIDI file


def test_the_client_downloads_it_within_the_midi_bound(server: Server, key: str, track: Track,
                                                       tmp_path: Path) -> None:
    with TextMusicClient(server.base, key, local_extensions=True) as client:
        fresh = client.get_track(track.id)
        got = client.download(fresh, tmp_path / "song.mid", version="midi", max_bytes=MAX_MIDI_BYTES)
    assert got.content_type == MIDI_MEDIA_TYPE
    assert mido.MidiFile(tmp_path / "song.mid").type == 1
