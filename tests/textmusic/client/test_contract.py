import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile
from pydantic import ValidationError

from tasks.delivery.check import AudioCheckError, check_audio
from textmusic.contract import (
    FORMATS,
    OUTPUT_FORMATS,
    TextToMusicRequest,
    combination_error,
    price_cents,
    song_seed,
)

# The seven-row combination table of the contract page.
COMBINATIONS = [
    ({"prompt": "p"}, True),
    ({"prompt": "p", "tags": ["a"]}, True),
    ({"prompt": "p", "lyrics": "l"}, True),
    ({"tags": ["a"], "lyrics": "l"}, True),
    ({"lyrics": "l"}, False),
    ({"tags": ["a"]}, False),
    ({"prompt": "p", "tags": ["a"], "lyrics": "l"}, False),
]


@pytest.mark.parametrize(("fields", "allowed"), COMBINATIONS)
def test_combination_table(fields, allowed):
    assert (combination_error(fields.get("prompt"), fields.get("tags"), fields.get("lyrics")) is None) == allowed
    if allowed:
        TextToMusicRequest(**fields)
    else:
        with pytest.raises(ValidationError, match="invalid input combination"):
            TextToMusicRequest(**fields)


def test_empty_lyrics_with_prompt_and_tags_is_an_instrumental():
    request = TextToMusicRequest(prompt="p", tags=["a"], lyrics="")
    assert request.is_instrumental


def test_empty_lyrics_with_tags_alone_is_an_instrumental_not_tags_only():
    assert TextToMusicRequest(tags=["lofi"], lyrics="").is_instrumental
    with pytest.raises(ValidationError, match="tags must be paired"):
        TextToMusicRequest(tags=["lofi"])


def test_nothing_given_is_refused():
    with pytest.raises(ValidationError, match="at least one"):
        TextToMusicRequest(prompt="  ", tags=[])


def test_defaults():
    r = TextToMusicRequest(prompt="p")
    assert (r.prompt_strength, r.balance_strength, r.num_songs, r.output_format, r.bpm, r.store_audio) == (
        2.0, 0.7, 1, "wav", "auto", False)


@pytest.mark.parametrize("fmt", [name for name, f in FORMATS.items() if not f.bit_rates])
def test_bit_rate_only_with_mp3_and_m4a(fmt):
    with pytest.raises(ValidationError, match="only allowed with mp3 or m4a"):
        TextToMusicRequest(prompt="p", output_format=fmt, output_bit_rate="192")
    assert TextToMusicRequest(prompt="p", output_format="m4a", output_bit_rate=256).output_bit_rate == "256"


@pytest.mark.parametrize(
    "bad",
    [{"seed": -1}, {"seed": 2**32}, {"seed": 1.5}, {"seed": True}, {"num_songs": 3}, {"bpm": "fast"},
     {"bpm": 500}, {"output_format": "aiff"}, {"output_bit_rate": "100"}, {"unknown": 1}, {"tags": [""]}],
)
def test_out_of_range_fields_are_refused(bad):
    with pytest.raises(ValidationError):
        TextToMusicRequest(prompt="p", **({"output_format": "mp3"} if "output_bit_rate" in bad else {}), **bad)


def test_pricing_is_twenty_cents_a_minute_rounded_up():
    assert price_cents(60) == 20
    assert price_cents(180) == 60
    assert price_cents(30) == 10
    assert price_cents(31) == 11  # 10.33 cents → 11
    two = TextToMusicRequest(prompt="p", num_songs=2, duration_seconds=60)
    assert two.max_cost_cents() == 2 * price_cents(64)


def test_song_seeds_are_derived_and_stable():
    assert song_seed(42, 0) == 42
    assert song_seed(42, 1) == song_seed(42, 1) != 42
    request = TextToMusicRequest(prompt="p", seed=42, num_songs=2)
    assert request.for_song(1).seed == song_seed(42, 1) and request.for_song(1).num_songs == 1


# What each media type's bytes start with (RFC 2361 / 9639 / 3534 / 3003, ISO 14496-12): a spec of its own,
# so that a wrong media type in FORMATS fails here rather than in a listener's browser.
SIGNATURES = {
    "audio/wav": lambda head: head[:4] == b"RIFF" and head[8:12] == b"WAVE",
    "audio/flac": lambda head: head[:4] == b"fLaC",
    "audio/ogg": lambda head: head[:4] == b"OggS",
    "audio/mpeg": lambda head: head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0),
    "audio/mp4": lambda head: head[4:8] == b"ftyp",
}
SECONDS = 2.0
RATE = 44100


@pytest.fixture(scope="module")
def pcm() -> np.ndarray:
    """Two seconds of a chord under noise: enough content for lossy encoders to use their bit rate."""
    t = np.arange(int(SECONDS * RATE)) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    noise = np.random.default_rng(7).standard_normal((len(t), 2)) * 0.05
    return (np.clip(0.4 * chord[:, None] + noise, -1, 1) * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def encoded(pcm: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every format of the table written by the audio core's encoder at its default bit rate."""
    from textmusic.audio.write import write_audio

    folder = tmp_path_factory.mktemp("formats")
    files = {}
    for name, spec in FORMATS.items():
        files[name] = folder / f"song.{spec.extension}"
        write_audio(pcm, RATE, files[name], name, int(spec.default_bit_rate) if spec.default_bit_rate else None)
    return files


@pytest.mark.parametrize("name", OUTPUT_FORMATS)
def test_every_format_round_trips_through_the_encoder_and_the_audio_check(
    name: str, pcm: np.ndarray, encoded: dict[str, Path]
) -> None:
    """The table is the one source: what it says of a format is what the encoder writes and the check accepts."""
    from textmusic.audio.read import read_audio

    spec, path = FORMATS[name], encoded[name]
    info = check_audio(path, name, SECONDS, 0.1)
    assert (info.sample_rate, info.channels) == (RATE, 2)
    assert SIGNATURES[spec.media_type](path.read_bytes()[:12]), f"{name} is not {spec.media_type}"
    decoded, _ = read_audio(path)
    exact = decoded.shape == pcm.shape and np.array_equal(decoded, pcm / 32768.0)
    assert exact == spec.lossless
    if spec.lossless:
        assert soundfile.info(str(path)).subtype == f"PCM_{spec.bit_depth}"
    if spec.bit_rates:
        assert spec.default_bit_rate in spec.bit_rates
        kbps = path.stat().st_size * 8 / SECONDS / 1000
        assert abs(kbps / int(spec.default_bit_rate) - 1) < 0.15, kbps
    else:
        assert spec.default_bit_rate is None and spec.bit_rate_for(None) is None


@pytest.mark.parametrize("name", OUTPUT_FORMATS)
def test_a_file_checked_as_another_format_is_refused(name: str, encoded: dict[str, Path]) -> None:
    for other in OUTPUT_FORMATS:
        if other != name:
            with pytest.raises(AudioCheckError, match=f"not {other}"):
                check_audio(encoded[name], other, SECONDS, 0.1)


def test_requests_take_the_bit_rates_of_their_format_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A format that allows fewer bit rates refuses the others, while its neighbours keep theirs."""
    mp3 = FORMATS["mp3"]
    monkeypatch.setitem(FORMATS, "mp3", dataclasses.replace(mp3, bit_rates=("128",), default_bit_rate="128"))
    with pytest.raises(ValidationError, match="for mp3 must be one of 128"):
        TextToMusicRequest(prompt="p", output_format="mp3", output_bit_rate="320")
    assert TextToMusicRequest(prompt="p", output_format="mp3", output_bit_rate="128").output_bit_rate == "128"
    assert TextToMusicRequest(prompt="p", output_format="m4a", output_bit_rate="320").output_bit_rate == "320"
    assert FORMATS["mp3"].bit_rate_for(None) == "128" and FORMATS["m4a"].bit_rate_for(None) == "192"
