"""Mix the stems by the style's recipe, then master to streaming loudness with a true-peak ceiling.

Mix (pedalboard, deterministic): each bus gets a high-pass, a compressor and a gain, plus a send
to one shared reverb (cheaper than a reverb per bus, and it glues the parts into one room). The sum
gets a tilt EQ and a gentle glue compressor whose gain is computed here, not by a plug-in: stems
(each bus's share of the mix) take exactly the mix's glue gain and master gain, so they add up to it.

Style moves (fields of `Mix`): tape saturation runs per bus (in `bus_chain`, so each stem carries its
own saturated signal); a sidechain duck (pumping) is a gain curve computed from the kick (the drum bus's
lows) and applied to each ducked bus before the sum, and a song's harmony and lead buses duck the same way
under the lead vocal (the band leaving room for the voice); the low-pass is a linear filter on the sum and on
every share alike; vinyl crackle and hiss ride on the harmony bus (the "sample" a hip-hop producer
would have lifted from a record), so the harmony stem carries them. All keep the stems adding up to the mix.

Master: gain to STREAMING_LUFS integrated (ITU-R BS.1770), then a look-ahead brickwall limiter on the
4x-oversampled (true) peak, then the result is measured again and corrected, so the written file meets
both targets by measurement, not by assumption. The meters and the limiter are the audio core's
(`textmusic.audio`), the same the pipeline's delivery masters and QC use.
``pedalboard.Limiter`` is not used: it adds make-up gain and does not hold a ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from textmusic.audio import STREAMING_LUFS
from textmusic.audio.limiter import LIMITER_BLOCK, block_peaks, limiter_gain, to_samples
from textmusic.audio.loudness import gated_loudness, integrated_loudness, k_weighted
from textmusic.audio.peaks import local_true_peak, peak_envelope, true_peak_dbtp
from textmusic.engine.styles import Mix

LOSSLESS_CEILING_DBTP = -1.3  # a margin for int16 rounding
LOSSY_CEILING_DBTP = -2.2  # lossy encoders overshoot the source's peaks by up to ~0.8 dB
LOUDNESS_TOLERANCE_DB = 0.15


# First-order high-passes. Drums and bass get a subsonic one: some FluidR3 bass samples carry a DC offset
# (a 10 s piano ballad's bass stem averaged 7 % of its peak, 0.03 in the master), which no listener hears but
# which wastes headroom and fails delivery QC; 20 Hz costs the lowest kick and bass notes (41 Hz) < 1 dB.
HIGH_PASS_HZ: Mapping[str, float] = {"drums": 20.0, "bass": 20.0, "harmony": 110.0, "lead": 150.0, "vocal": 90.0}
BUS_COMPRESSION: Mapping[str, tuple[float, float, float, float]] = {  # threshold dB, ratio, attack, release ms
    "bass": (-18.0, 3.0, 10.0, 120.0),
    "vocal": (-20.0, 3.0, 5.0, 120.0),
}


BED_BUSES = ("harmony", "lead")  # the "sample" of a hip-hop beat: Mix.bed_lowpass_hz and bed_drive


def bus_chain(bus: str, audio: np.ndarray, mix: Mix, sample_rate: int) -> np.ndarray:
    """One bus through its effects, (2, frames) float32: the style's tape saturation, a high-pass (subsonic
    for drums and bass), compression where it evens out the part, then the recipe's gain (each plugin pass
    costs ~0.1-0.3 s per 3 minutes, so there are no others)."""
    import pedalboard as pb

    chain: list[pb.Plugin] = []
    if bus in HIGH_PASS_HZ:
        chain.append(pb.HighpassFilter(HIGH_PASS_HZ[bus]))
    if bus == "drums":
        chain.append(pb.Compressor(threshold_db=-16.0, ratio=mix.drum_ratio, attack_ms=6.0, release_ms=90.0))
    elif bus in BUS_COMPRESSION:
        threshold, ratio, attack, release = BUS_COMPRESSION[bus]
        chain.append(pb.Compressor(threshold_db=threshold, ratio=ratio, attack_ms=attack, release_ms=release))
    out = np.ascontiguousarray(np.asarray(audio).T, dtype=np.float32)
    if mix.tape_drive > 0:  # before the high-pass: rounding asymmetric peaks adds DC, which the filter removes
        out = tape(out, mix.tape_drive)
    bed = bus in BED_BUSES
    if bed and mix.bed_drive > 0:
        out = tape(out, mix.bed_drive)
    if chain and np.any(out):
        out = pb.Pedalboard(chain)(out, sample_rate)
    if bed and mix.bed_lowpass_hz > 0 and np.any(out):
        out = lowpass(out, mix.bed_lowpass_hz, sample_rate)
    return out * np.float32(10 ** (mix.gain(bus) / 20))


def tape(audio: np.ndarray, drive: float) -> np.ndarray:
    """Tape-style soft saturation relative to the bus's own peak (so it does not depend on the synth's level):
    small signals pass at unity gain, the peaks are rounded off (tanh), adding low-order harmonics."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 0:
        return audio
    scale = np.float32(drive / peak)
    return (np.tanh(audio * scale) / scale).astype(np.float32)


DUCK_KEY_HZ = 120.0  # the kick is found in the drum bus below this
DUCK_ATTACK_SECONDS = 0.004
DUCK_KEY_PERCENTILE = 99.0  # the key level that gives the full depth
VOCAL_DUCK_BUSES = ("harmony", "lead")  # what makes room for the voice, whole ...
VOCAL_DUCK_BAND_BUSES = ("drums",)  # ... and in the voice's band only (the kick's low end and the cymbals' air stay)
VOCAL_BAND_HZ = (200.0, 5000.0)
VOCAL_DUCK_ATTACK_SECONDS = 0.05  # the band eases back as a line starts ...
VOCAL_DUCK_RELEASE_SECONDS = 0.4  # ... and comes up again between lines
VOCAL_DUCK_FULL_DB = -12.0  # a sung frame this far under the vocal's loud frames already gets the full depth


def duck_gain(drums: np.ndarray, sample_rate: int, depth_db: float, release: float) -> np.ndarray:
    """Per-sample sidechain gain (frames,) from the drum bus (2, frames): the kick's low-passed envelope,
    fast attack and `release` seconds of recovery, scaled so the loudest kicks duck by `depth_db`."""
    from scipy.signal import butter, sosfilt

    if depth_db <= 0 or not np.any(drums):
        return np.ones(drums.shape[1], dtype=np.float32)
    sos = butter(2, DUCK_KEY_HZ, btype="low", fs=sample_rate, output="sos")
    low = np.abs(sosfilt(sos, drums.astype(np.float64).mean(axis=0)))
    return _sidechain(low, depth_db, DUCK_ATTACK_SECONDS, release, sample_rate)


def vocal_duck_gain(vocal: np.ndarray, sample_rate: int, depth_db: float) -> np.ndarray:
    """Per-sample gain (frames,) that lowers the band by `depth_db` while the lead vocal (2, frames) sings:
    keyed on the voice's level, full depth for any sung frame within VOCAL_DUCK_FULL_DB of its loud frames,
    so the pocket holds through a line rather than pumping with each syllable."""
    if depth_db <= 0 or not np.any(vocal):
        return np.ones(vocal.shape[1], dtype=np.float32)
    key = np.abs(vocal.astype(np.float64)).max(axis=0)
    return _sidechain(key, depth_db, VOCAL_DUCK_ATTACK_SECONDS, VOCAL_DUCK_RELEASE_SECONDS, sample_rate,
                      full=10 ** (VOCAL_DUCK_FULL_DB / 20))


def make_room(bus: str, audio: np.ndarray, pocket: np.ndarray, sample_rate: int) -> np.ndarray:
    """A bus (2, frames) under the vocal's pocket gain: the harmony and lead whole, the drums in the voice's
    band (a dynamic EQ keyed on the voice: the band's share scaled by the gain, the rest untouched)."""
    if bus in VOCAL_DUCK_BUSES:
        return audio * pocket
    if bus in VOCAL_DUCK_BAND_BUSES:
        from scipy.signal import butter, sosfilt

        sos = butter(2, VOCAL_BAND_HZ, btype="bandpass", fs=sample_rate, output="sos")
        return audio + sosfilt(sos, audio, axis=1).astype(np.float32) * (pocket - 1)
    return audio


def _sidechain(key: np.ndarray, depth_db: float, attack: float, release: float, sample_rate: int,
               full: float = 1.0) -> np.ndarray:
    """The gain curve of a sidechain keyed on `key` (frames,): block peaks against the key's loud level
    (DUCK_KEY_PERCENTILE), reaching the full `depth_db` at `full` of it, through attack/release ballistics."""
    levels = block_peaks(key)
    reference = float(np.percentile(levels, DUCK_KEY_PERCENTILE)) * full
    if reference <= 0:
        return np.ones(len(key), dtype=np.float32)
    envelope = follow(np.minimum(levels / reference, 1.0).tolist(), *ballistics(attack, release, sample_rate))
    gain = 10 ** (-depth_db * envelope / 20)
    return to_samples(gain, len(key)).astype(np.float32)


def lowpass(audio: np.ndarray, cutoff: float, sample_rate: int) -> np.ndarray:
    """A 12 dB/octave Butterworth low-pass on (2, frames) audio (linear: the shares take it too)."""
    from scipy.signal import butter, sosfilt

    sos = butter(2, cutoff, btype="low", fs=sample_rate, output="sos")
    return sosfilt(sos, audio, axis=1).astype(np.float32)


VINYL_BUS = "harmony"
VINYL_SEED = 33  # the noise is the same for the same length: renders stay deterministic
VINYL_TICKS_PER_SECOND = 9.0  # dust: short band-passed clicks, a few of them loud (Pareto sizes)
VINYL_TICK_MAX = 2.0  # ten times the smallest click
VINYL_TICK_BAND_HZ = (1500.0, 9000.0)
VINYL_HISS_BAND_HZ = (2500.0, 12000.0)
VINYL_HISS_DB = -35.0  # surface hiss (RMS) relative to the loudest click's peak


def vinyl(frames: int, sample_rate: int, peak: float) -> np.ndarray:
    """(2, frames) float32 record-surface noise whose loudest click peaks at `peak`: sparse clicks of random
    size (60 % in both channels, like dust in the groove) over band-limited hiss; nothing repeats within a track.

    Set by the clicks' peak, not by RMS: the clicks are sparse, so their peak sits ~40 dB above their RMS."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng([VINYL_SEED, frames])
    count = int(rng.poisson(VINYL_TICKS_PER_SECOND * frames / sample_rate))
    at = rng.integers(0, frames, count)
    size = np.minimum(rng.pareto(2.5, count) + 0.2, VINYL_TICK_MAX) * rng.choice([-1.0, 1.0], count)
    side = rng.integers(0, 2, count)
    both = rng.random(count) < 0.6
    impulses = np.zeros((2, frames))
    np.add.at(impulses, (side, at), size)
    np.add.at(impulses, (1 - side[both], at[both]), 0.8 * size[both])
    ticks = sosfilt(butter(2, VINYL_TICK_BAND_HZ, btype="bandpass", fs=sample_rate, output="sos"), impulses, axis=1)
    ticks *= peak / max(float(np.max(np.abs(ticks))), 1e-12)
    hiss = sosfilt(butter(2, VINYL_HISS_BAND_HZ, btype="bandpass", fs=sample_rate, output="sos"),
                   rng.standard_normal((2, frames)), axis=1)
    hiss *= peak * 10 ** (VINYL_HISS_DB / 20) / max(_rms(hiss), 1e-12)
    return (ticks + hiss).astype(np.float32)


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


GLUE_THRESHOLD_DB = -20.0  # relative to the mix normalised to a -6 dBFS peak
GLUE_ATTACK_SECONDS = 0.02
GLUE_RELEASE_SECONDS = 0.25


@dataclass(frozen=True)
class Mixdown:
    """The mix, (frames, 2) float64, and with `separate` each bus's share of it: its dry signal and its
    own reverb through the same EQ and the same glue gain, so the shares add up to the mix."""

    mix: np.ndarray
    parts: dict[str, np.ndarray]
    # With `separate` and a vocal pocket: the ducked buses' shares as they would be with no voice to make room
    # for (the underscore mix leaves the vocal out, so its band does not duck for it).
    open_parts: dict[str, np.ndarray] = field(default_factory=dict)


def mix_stems(stems: Mapping[str, np.ndarray], mix: Mix, sample_rate: int,
              processed: Mapping[str, np.ndarray] | None = None, separate: bool = False) -> Mixdown:
    """Sum the (frames, 2) stems through their bus chains and the shared reverb; `processed` may hold
    buses already run through `bus_chain` (the engine does that while the next stem renders).

    Everything after the bus chains is linear except the glue compression, whose gain is computed on
    the mix and applied to every share (the reverb and the shelves are time-invariant filters, so a
    bus's share is its own signal through them). The mix itself is computed the same way whether or
    not the shares are asked for, so it never changes with them.
    """
    import pedalboard as pb

    frames = len(next(iter(stems.values())))
    outs = {bus: processed[bus] if processed and bus in processed else bus_chain(bus, audio, mix, sample_rate)
            for bus, audio in stems.items()}
    if mix.duck_db > 0 and "drums" in outs:
        duck = duck_gain(outs["drums"], sample_rate, mix.duck_db, mix.duck_release)
        outs = {bus: out * duck if bus in mix.duck_buses else out for bus, out in outs.items()}
    opened: dict[str, np.ndarray] = {}  # the buses the pocket ducks, as they play with no voice to make room for
    if mix.vocal_duck_db > 0 and "vocal" in outs:
        pocket = vocal_duck_gain(outs["vocal"], sample_rate, mix.vocal_duck_db)
        if separate:
            opened = {bus: outs[bus] for bus in (*VOCAL_DUCK_BUSES, *VOCAL_DUCK_BAND_BUSES) if bus in outs}
        outs = {bus: make_room(bus, out, pocket, sample_rate) for bus, out in outs.items()}
    dry = np.zeros((2, frames), dtype=np.float32)
    send = np.zeros((2, frames), dtype=np.float32)
    for bus, out in outs.items():
        dry += out
        if mix.send(bus) > 0:
            send += np.float32(mix.send(bus)) * out
    reverb = pb.Pedalboard([pb.HighpassFilter(200.0), pb.Reverb(room_size=mix.room, damping=mix.damping,
                                                                wet_level=1.0, dry_level=0.0, width=1.0)])
    wet = np.float32(10 ** (mix.reverb_db / 20))
    surface = None
    if mix.vinyl_db < 0:  # its level is relative to the dry mix's peak
        surface = vinyl(frames, sample_rate, float(np.max(np.abs(dry))) * 10 ** (mix.vinyl_db / 20))
    if np.any(send):
        dry += wet * reverb(send, sample_rate)
    if surface is not None:
        dry += surface
    def own_share(bus: str, out: np.ndarray) -> np.ndarray:
        """A bus's dry signal and its own reverb (and the record surface on the bus that carries it)."""
        part = out.copy()
        if mix.send(bus) > 0 and np.any(out):
            part += wet * reverb(np.float32(mix.send(bus)) * out, sample_rate)
        if surface is not None and bus == (VINYL_BUS if VINYL_BUS in outs else next(iter(outs))):
            part += surface
        return part

    parts = {bus: own_share(bus, out) for bus, out in outs.items()} if separate else {}
    opened = {bus: own_share(bus, out) for bus, out in opened.items()}
    peak = float(np.max(np.abs(dry)))
    scale = np.float32(0.5 / peak if peak > 0 else 1.0)  # the glue's threshold is relative to a -6 dBFS peak
    shelves: list[pb.Plugin] = []
    if mix.low_db:
        shelves.append(pb.LowShelfFilter(120.0, mix.low_db))
    if mix.high_db:
        shelves.append(pb.HighShelfFilter(6000.0, mix.high_db))
    pedal_eq = pb.Pedalboard(shelves)

    def eq(audio: np.ndarray, rate: int) -> np.ndarray:
        out = pedal_eq(audio, rate)
        return lowpass(out, mix.lowpass_hz, rate) if mix.lowpass_hz > 0 else out

    mixed = eq(dry * scale, sample_rate)
    glue = glue_gain(mixed, sample_rate, mix.glue_ratio)
    shares = {bus: (eq(part * scale, sample_rate) * glue).T for bus, part in parts.items()}
    open_shares = {bus: (eq(part * scale, sample_rate) * glue).T for bus, part in opened.items()}
    return Mixdown(np.asarray(mixed * glue, dtype=np.float64).T, shares, open_shares)


def ballistics(attack: float, release: float, sample_rate: int) -> tuple[float, float]:
    """`follow`'s coefficients for attack and release times (seconds) on LIMITER_BLOCK blocks."""
    block_rate = sample_rate / LIMITER_BLOCK
    return float(np.exp(-1 / (attack * block_rate))), float(np.exp(-1 / (release * block_rate)))


def follow(levels: list[float], up: float, down: float) -> np.ndarray:
    """A one-pole envelope follower over block levels: coefficient `up` while rising, `down` while falling."""
    envelope = np.empty(len(levels))
    state = 0.0
    for index, value in enumerate(levels):
        coefficient = up if value > state else down
        state = coefficient * state + (1 - coefficient) * value
        envelope[index] = state
    return envelope


def glue_gain(audio: np.ndarray, sample_rate: int, ratio: float, threshold_db: float = GLUE_THRESHOLD_DB,
              attack: float = GLUE_ATTACK_SECONDS, release: float = GLUE_RELEASE_SECONDS) -> np.ndarray:
    """Per-sample gain of a gentle stereo-linked glue compressor on (2, frames) audio, as a curve.

    A peak envelope with attack and release ballistics, on blocks of LIMITER_BLOCK samples (a Python
    loop over 0.7 ms blocks costs ~0.1 s per 3 minutes), then the ratio above the threshold. Computing
    the gain explicitly (rather than with a plug-in) lets the stems take exactly the mix's compression.
    """
    levels = block_peaks(np.abs(audio).max(axis=0)).astype(np.float64).tolist()
    envelope = follow(levels, *ballistics(attack, release, sample_rate))
    over = 20 * np.log10(np.maximum(envelope, 1e-9)) - threshold_db
    gain = 10 ** (np.minimum(0.0, (1 / ratio - 1) * over) / 20)
    return to_samples(gain, audio.shape[1]).astype(np.float32)


@dataclass(frozen=True)
class Mastered:
    audio: np.ndarray  # (frames, 2) float64
    loudness_lufs: float
    true_peak_dbtp: float
    gain: np.ndarray  # (frames,) the gain applied to the input, so stems can take exactly the same


def master(audio: np.ndarray, sample_rate: int, ceiling_dbtp: float = LOSSLESS_CEILING_DBTP,
           target_lufs: float = STREAMING_LUFS) -> Mastered:
    """Loudness to `target_lufs` and true peak under `ceiling_dbtp`, both checked by measurement.

    The true-peak envelope is computed once: scaling the input scales it, and the limiter's gain
    moves slowly enough that K-weighting commutes with it, so each loudness iteration only
    recomputes the gain. The result is then measured for real (loudness of the output, true peak
    around every sample within 6 dB of the ceiling) and corrected if needed.
    """
    audio = np.asarray(audio, dtype=np.float64)
    weighted = k_weighted(audio, sample_rate)
    loudness = gated_loudness(weighted, sample_rate)
    if not np.isfinite(loudness):
        return Mastered(audio, loudness, true_peak_dbtp(audio), np.ones(len(audio)))
    envelope = peak_envelope(audio)
    gain_db = target_lufs - loudness
    gain = np.ones(len(audio))
    for _ in range(6):  # limiting lowers loudness a little: push the input harder and limit again
        scale = 10 ** (gain_db / 20)
        gain = scale * limiter_gain(envelope * scale, sample_rate, ceiling_dbtp)
        error = target_lufs - gated_loudness(weighted * gain.astype(np.float32), sample_rate)
        if abs(error) <= LOUDNESS_TOLERANCE_DB / 2:
            break
        gain_db += error
    out = audio * gain[:, None]
    peak = local_true_peak(out, 10 ** ((ceiling_dbtp - 6.0) / 20))
    excess = 20 * np.log10(max(peak, 1e-12)) - ceiling_dbtp
    if excess > 0:  # the oversampled estimate between samples can still poke through by a hair
        out = out * 10 ** (-(excess + 0.01) / 20)
        gain = gain * 10 ** (-(excess + 0.01) / 20)
        peak *= 10 ** (-(excess + 0.01) / 20)
    return Mastered(out, integrated_loudness(out, sample_rate), 20 * np.log10(max(peak, 1e-12)), gain)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(audio) * 32767.0), -32768, 32767).astype(np.int16)
