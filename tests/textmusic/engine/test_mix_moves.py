"""Per-style mix moves, measured on synthetic stems (fast): sidechain pumping, tape + low-pass, vinyl, room reverb;
and the soundfont routing's data and errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from textmusic.engine.master import mix_stems, vinyl
from textmusic.engine.styles import STYLES_BY_NAME, Mix
from textmusic.engine.synth import FONTS, SynthRenderer

SR = 44100
SECONDS = 4.0
BEAT = 0.5  # kicks every 0.5 s (120 BPM)


def kicks() -> np.ndarray:
    """(frames, 2) a 55 Hz kick with a fast decay on every beat."""
    t = np.arange(int(SECONDS * SR)) / SR
    phase = t % BEAT
    kick = 0.8 * np.sin(2 * np.pi * 55 * phase) * np.exp(-phase / 0.06)
    return np.repeat(kick[:, None], 2, axis=1).astype(np.float32)


def steady(seed: int = 0) -> np.ndarray:
    """(frames, 2) a steady chord with a little noise (bright enough to have energy above 10 kHz)."""
    t = np.arange(int(SECONDS * SR)) / SR
    rng = np.random.default_rng(seed)
    tone = sum(0.1 * np.sign(np.sin(2 * np.pi * f * t)) for f in (220.0, 277.2, 329.6))
    noise = 0.02 * rng.standard_normal(len(t))
    return np.repeat((tone + noise)[:, None], 2, axis=1).astype(np.float32)


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-20))


def pumping_db(mix: Mix) -> float:
    """How far the harmony share dips right after each kick, below its level just before the next (dB)."""
    down = mix_stems({"drums": kicks(), "harmony": steady()}, mix, SR, separate=True)
    harmony = down.parts["harmony"]
    after, before = [], []
    for beat in range(2, int(SECONDS / BEAT) - 1):
        start = int(beat * BEAT * SR)
        after.append(rms_db(harmony[start + int(0.01 * SR): start + int(0.06 * SR)]))
        before.append(rms_db(harmony[start - int(0.06 * SR): start - int(0.01 * SR)]))
    return float(np.mean(before) - np.mean(after))


@pytest.mark.parametrize("style", ["house", "techno", "big-room-edm"])
def test_dance_mixes_pump_on_the_kick(style: str) -> None:
    mix = STYLES_BY_NAME[style].mix
    assert mix.duck_db > 0
    pumped, flat = pumping_db(mix), pumping_db(dataclasses.replace(mix, duck_db=0.0))
    assert pumped > flat + 0.6 * mix.duck_db, (pumped, flat)
    assert abs(flat) < 1.0


def test_ducked_stems_still_add_up_to_the_mix() -> None:
    mix = STYLES_BY_NAME["house"].mix
    stems = {"drums": kicks(), "bass": steady(1), "harmony": steady(2), "lead": steady(3)}
    down = mix_stems(stems, mix, SR, separate=True)
    total = sum(down.parts.values())
    assert np.max(np.abs(total - down.mix)) < 1e-4 * np.max(np.abs(down.mix))
    again = mix_stems(stems, mix, SR, separate=True)
    assert np.array_equal(down.mix, again.mix)


def high_share_db(audio: np.ndarray, above: float = 10000.0) -> float:
    spectrum = np.abs(np.fft.rfft(audio.mean(axis=1))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / SR)
    return float(10 * np.log10(spectrum[freqs > above].sum() / spectrum.sum()))


def test_lofi_mix_is_saturated_and_dark() -> None:
    mix = STYLES_BY_NAME["lofi-hip-hop"].mix
    assert mix.tape_drive > 0 and mix.lowpass_hz > 0
    stems = {"drums": kicks(), "harmony": steady()}
    plain = dataclasses.replace(mix, tape_drive=0.0, lowpass_hz=0.0, vinyl_db=0.0)
    mix = dataclasses.replace(mix, vinyl_db=0.0)
    moved, unmoved = mix_stems(stems, mix, SR).mix, mix_stems(stems, plain, SR).mix
    assert high_share_db(moved) < high_share_db(unmoved) - 10.0
    # Saturation adds odd harmonics: a pure 220 Hz tone gains a third harmonic.
    assert third_harmonic_db(mix) > third_harmonic_db(plain) + 20.0


def third_harmonic_db(mix: Mix) -> float:
    """Level of 660 Hz relative to 220 Hz in the mix of a pure 220 Hz tone on the harmony bus (dB)."""
    t = np.arange(int(SECONDS * SR)) / SR
    tone = np.repeat((0.3 * np.sin(2 * np.pi * 220.0 * t))[:, None], 2, axis=1).astype(np.float32)
    out = mix_stems({"harmony": tone}, mix, SR).mix.mean(axis=1)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    hz = np.fft.rfftfreq(len(out), 1 / SR)
    return float(20 * np.log10(spectrum[np.argmin(np.abs(hz - 660.0))] / spectrum[np.argmin(np.abs(hz - 220.0))]))


def chord() -> np.ndarray:
    """(frames, 2) a clean low chord: nothing in the 2-6 kHz band where the record's clicks are."""
    t = np.arange(int(SECONDS * SR)) / SR
    tone = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    return np.repeat(tone[:, None], 2, axis=1).astype(np.float32)


def click_band_db(audio: np.ndarray) -> float:
    from scipy.signal import butter, sosfilt

    return rms_db(sosfilt(butter(4, (2000.0, 6000.0), btype="bandpass", fs=SR, output="sos"), audio.mean(axis=1)))


@pytest.mark.parametrize("style", ["lofi-hip-hop", "boom-bap", "lofi-jazz"])
def test_hip_hop_mixes_carry_vinyl_on_the_harmony_stem(style: str) -> None:
    # tape's (and the bed's, boom bap since 2026.12.06.1) harmonics would fill the band
    mix = dataclasses.replace(STYLES_BY_NAME[style].mix, tape_drive=0.0, bed_drive=0.0)
    assert mix.vinyl_db < 0
    stems = {"drums": kicks(), "harmony": chord()}
    worn = mix_stems(stems, mix, SR, separate=True)
    clean = mix_stems(stems, dataclasses.replace(mix, vinyl_db=0.0), SR, separate=True)
    assert click_band_db(worn.parts["harmony"]) > click_band_db(clean.parts["harmony"]) + 8.0
    drums, plain = worn.parts["drums"], clean.parts["drums"]
    gain = float(np.sum(drums * plain) / np.sum(plain * plain))  # the mix's scale and glue may move a little
    assert rms_db(drums - gain * plain) < rms_db(drums) - 30.0  # not on the drums
    assert np.max(np.abs(sum(worn.parts.values()) - worn.mix)) < 1e-4  # the stems still add up
    assert np.array_equal(worn.mix, mix_stems(stems, mix, SR).mix)  # deterministic, with or without shares


def test_vinyl_noise_has_its_level_and_is_deterministic() -> None:
    surface = vinyl(SR * 2, SR, 0.1)
    assert surface.shape == (2, SR * 2)
    assert abs(float(np.max(np.abs(surface))) - 0.1) < 0.01  # the loudest click sets the level
    assert np.array_equal(surface, vinyl(SR * 2, SR, 0.1))
    # Sparse dust over a hiss far below it; stereo, partly shared between the channels.
    assert rms_db(surface) < 20 * np.log10(0.1) - 20.0
    assert 0.05 < np.corrcoef(surface)[0, 1] < 0.95


def tail_db(mix: Mix) -> float:
    """Energy 0.3-1.5 s after a short chord burst ends, relative to the burst (dB)."""
    audio = steady()
    audio[int(0.3 * SR):] = 0.0
    down = mix_stems({"harmony": audio, "lead": audio * 0.5}, mix, SR).mix
    return rms_db(down[int(0.6 * SR): int(1.8 * SR)]) - rms_db(down[: int(0.3 * SR)])


@pytest.mark.parametrize("style", ["jazz", "acoustic-folk"])
def test_jazz_and_folk_have_a_longer_room(style: str) -> None:
    assert tail_db(STYLES_BY_NAME[style].mix) > tail_db(Mix()) + 2.0


def test_mix_fields_are_checked() -> None:
    with pytest.raises(ValueError):
        Mix(duck_db=-3.0)
    with pytest.raises(ValueError):
        Mix(vinyl_db=6.0)
    assert Mix(duck_buses=["bass"]).duck_buses == ("bass",)  # type: ignore[arg-type]


def test_a_missing_soundfont_names_its_package(tmp_path: Path) -> None:
    fonts = {name: font.path for name, font in FONTS.items()} | {"fluidr3": tmp_path / "missing.sf2"}
    with pytest.raises(FileNotFoundError, match="fluid-soundfont-gm"):
        SynthRenderer(None, SR, fonts)


def sung_line() -> np.ndarray:
    """(frames, 2) a voice-like tone singing from 1.0 s to 2.5 s only (silence before and after)."""
    t = np.arange(int(SECONDS * SR)) / SR
    voice = 0.3 * np.sin(2 * np.pi * 196.0 * t) * ((t >= 1.0) & (t < 2.5))
    return np.repeat(voice[:, None], 2, axis=1).astype(np.float32)


def test_the_band_makes_room_for_the_voice() -> None:
    """While the vocal sings, the harmony and lead sit lower (by most of `vocal_duck_db`: the glue compressor gives
    a little back) and the drums lose only their mid band (the kick's 55 Hz stays); between lines everything is
    back; the shares still add up."""
    mix = Mix()
    assert mix.vocal_duck_db > 0
    stems = {"drums": kicks(), "harmony": steady(2), "lead": steady(3), "vocal": sung_line()}
    down = mix_stems(stems, mix, SR, separate=True)
    flat = mix_stems(stems, dataclasses.replace(mix, vocal_duck_db=0.0), SR, separate=True)
    sung, apart = slice(int(1.6 * SR), int(2.4 * SR)), slice(int(3.2 * SR), int(3.9 * SR))
    for bus in ("harmony", "lead"):
        dip = rms_db(flat.parts[bus][sung]) - rms_db(down.parts[bus][sung])
        assert 0.5 * mix.vocal_duck_db < dip <= mix.vocal_duck_db + 0.3, (bus, dip)
        assert abs(rms_db(flat.parts[bus][apart]) - rms_db(down.parts[bus][apart])) < 0.3
    kick_dip = rms_db(flat.parts["drums"][sung]) - rms_db(down.parts["drums"][sung])
    assert kick_dip < 1.0, kick_dip  # a 55 Hz kick is below the voice's band
    total = sum(down.parts.values())
    assert np.max(np.abs(total - down.mix)) < 1e-4 * np.max(np.abs(down.mix))
    # The underscore leaves the voice out, so its band plays as if there were none to make room for: the open
    # shares are the ducked ones without the pocket, under the same glue.
    assert set(down.open_parts) == {"drums", "harmony", "lead"}
    for bus in ("harmony", "lead"):
        opened, ducked = down.open_parts[bus], down.parts[bus]
        assert abs(rms_db(opened[sung]) - rms_db(ducked[sung]) - mix.vocal_duck_db) < 0.3
        assert abs(rms_db(opened[apart]) - rms_db(ducked[apart])) < 0.5  # the pocket releasing over 0.4 s
