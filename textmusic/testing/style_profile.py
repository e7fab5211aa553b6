"""Style profile features measured from rendered audio and its per-bus stems, and a nearest-profile classifier.

Measurement code shared by `tests/textmusic/engine/test_style_profile.py` and `benchmarks/engine.py`: not
engine code (the engine never measures itself), kept in textmusic.testing so neither imports the other.
Every feature is measured from audio; the only score fact used is the tempo (to place onsets on the
beat grid for the swing ratio and to count per beat/bar), so no feature is the tempo itself except
`tempo`, which is one feature among many.

Features (see `FEATURES`):
- kick: drum bus energy below 150 Hz relative to the whole mix (dB) — kick prominence
- snare: drum bus 150 Hz–5 kHz transient (onset) strength relative to the mix's (dB) — snare prominence
- drums: drum bus share of the mix energy (dB)
- distortion: spectral flatness (log) of the harmony bus — distorted guitars are noise-like
- lead_flatness: spectral flatness (log) of the lead bus
- swing8 / swing16: long/short ratio of off-beat eighths / sixteenths from onset phases (1 = straight, 2 = triplet)
- harmonic_rhythm: chroma change of the harmony bus per bar (mean cosine distance of successive beats × 4)
- onsets_per_beat: onset density of the mix relative to the beat
- hats_per_beat: onset density of the drum bus above 5 kHz relative to the beat
- brightness: spectral centroid of the mix (log2 Hz)
- low_share / high_share: mix energy below 120 Hz / above 5 kHz (dB)
- bass_kick_lock: correlation of the bass bus and drum-low onset envelopes
- bass / harmony / lead share: bus shares of the mix energy (dB)
- dynamics: crest of the mix's frame RMS (p95 / p10, dB)
- tempo: log2 BPM
- mfcc1..8: timbre of the mix
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import librosa
import numpy as np

SR = 22050
HOP = 512
EPS = 1e-10
FEATURES: tuple[str, ...] = (
    "kick", "snare", "drums", "distortion", "lead_flatness", "swing8", "swing16", "harmonic_rhythm",
    "onsets_per_beat", "hats_per_beat", "brightness", "low_share", "high_share", "bass_kick_lock",
    "bass_share", "harmony_share", "lead_share", "dynamics", "tempo",
    *(f"mfcc{i}" for i in range(1, 9)),
)


def _mono(audio: np.ndarray | None, sample_rate: int, frames: int | None = None) -> np.ndarray:
    if audio is None or audio.size == 0:
        return np.zeros(frames or 1, np.float32)
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    out = librosa.resample(np.asarray(mono, np.float32), orig_sr=sample_rate, target_sr=SR)
    if frames is not None:
        out = np.pad(out, (0, max(0, frames - len(out))))[:frames]
    return out


def _power(y: np.ndarray) -> np.ndarray:
    return np.abs(librosa.stft(y, n_fft=2048, hop_length=HOP)) ** 2


def _band(power: np.ndarray, low: float, high: float) -> float:
    freqs = librosa.fft_frequencies(sr=SR, n_fft=2048)
    return float(power[(freqs >= low) & (freqs < high)].sum())


def _db(ratio: float) -> float:
    return float(10 * np.log10(max(ratio, EPS)))


def _onset_env(y: np.ndarray, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    narrow = fmax is not None and fmax - fmin < 1000
    spec = librosa.feature.melspectrogram(y=y, sr=SR, hop_length=HOP, n_mels=8 if narrow else 48,
                                          fmin=fmin, fmax=fmax)
    return librosa.onset.onset_strength(S=librosa.power_to_db(spec + EPS), sr=SR, hop_length=HOP)


def _onset_times(y: np.ndarray) -> np.ndarray:
    if float(np.abs(y).max(initial=0.0)) < 1e-6:
        return np.zeros(0)
    frames = librosa.onset.onset_detect(y=y, sr=SR, hop_length=128, backtrack=False, units="time")
    return np.asarray(frames, float)


def swing_ratio(onsets: np.ndarray, unit: float) -> float:
    """Long/short ratio of the off-beat subdivision of `unit` seconds (a beat for eighths, half a beat for
    sixteenths): the median phase p of onsets falling in the off-beat half, as p / (1 - p). The grid's
    offset is found as the phase where onsets cluster (the on-beats)."""
    if len(onsets) < 4:
        return 1.0
    phase = (onsets / unit) % 1.0
    # the grid offset (attack latency): the median phase of onsets near the on-beat
    near = ((phase + 0.5) % 1.0) - 0.5
    near = near[np.abs(near) < 0.15]
    offset = float(np.median(near)) if len(near) else 0.0
    phase = (phase - offset) % 1.0
    off = phase[(phase > 0.42) & (phase < 0.76)]
    if len(off) < 2:
        return 1.0
    p = float(np.median(off))
    return p / (1.0 - p)


def harmonic_rhythm(y: np.ndarray, beat: float) -> float:
    """Chroma change per bar: the mean cosine distance between successive beats' chroma, × 4 beats."""
    if float(np.abs(y).max(initial=0.0)) < 1e-6:
        return 0.0
    chroma = librosa.feature.chroma_stft(y=y, sr=SR, hop_length=HOP)
    per_beat = max(1, int(round(beat * SR / HOP)))
    beats = [chroma[:, i:i + per_beat].mean(axis=1) for i in range(0, chroma.shape[1] - per_beat + 1, per_beat)]
    if len(beats) < 2:
        return 0.0
    matrix = np.array(beats)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + EPS
    return float(4 * np.mean(1.0 - np.sum(matrix[1:] * matrix[:-1], axis=1)))


def _flatness(y: np.ndarray) -> float:
    """Spectral flatness (log) over 100 Hz–6 kHz in the frames where the part sounds."""
    if float(np.abs(y).max(initial=0.0)) < 1e-6:
        return -12.0
    power = _power(y)
    freqs = librosa.fft_frequencies(sr=SR, n_fft=2048)
    band = power[(freqs >= 100) & (freqs < 6000)] + EPS
    flat = np.exp(np.log(band).mean(axis=0)) / band.mean(axis=0)
    energy = band.sum(axis=0)
    loud = energy > 0.05 * energy.max()
    return float(np.log(np.median(flat[loud]) + EPS))


def measure(stems: Mapping[str, np.ndarray], sample_rate: int, bpm: float,
            mix: np.ndarray | None = None) -> dict[str, float]:
    """The profile features of one render: `stems` by bus (drums, bass, harmony, lead[, vocal]), the mix
    (default: the stems' sum), `bpm` the score's tempo (used for the beat grid only)."""
    length = max(len(a) for a in stems.values())
    mixed = mix if mix is not None else sum(np.pad(a, ((0, length - len(a)), (0, 0))) for a in stems.values())
    y = _mono(np.asarray(mixed), sample_rate)
    frames = len(y)
    bus = {name: _mono(stems.get(name), sample_rate, frames) for name in ("drums", "bass", "harmony", "lead")}
    beat = 60.0 / bpm
    seconds = frames / SR
    p_mix, p_drums = _power(y), _power(bus["drums"])
    total = float(p_mix.sum()) + EPS
    shares = {name: float(np.sum(b.astype(np.float64) ** 2)) for name, b in bus.items()}
    share_total = sum(shares.values()) + EPS

    drum_env_mid = _onset_env(bus["drums"], 150, 5000)
    mix_env_mid = _onset_env(y, 150, 5000)
    kick_env = _onset_env(bus["drums"], 0, 150)
    bass_env = _onset_env(bus["bass"], 0, 400)
    n = min(len(kick_env), len(bass_env))
    lock = 0.0
    if n > 2 and kick_env[:n].std() > 0 and bass_env[:n].std() > 0:
        lock = float(np.corrcoef(kick_env[:n], bass_env[:n])[0, 1])

    onsets = _onset_times(y)
    highs = librosa.effects.preemphasis(bus["drums"], coef=0.97)
    hat_onsets = librosa.onset.onset_detect(
        onset_envelope=_onset_env(highs, 5000, SR / 2), sr=SR, hop_length=HOP, units="time")
    rhythm = onsets if len(onsets) >= 8 else _onset_times(bus["drums"] + bus["bass"])
    rms = librosa.feature.rms(y=y, hop_length=HOP)[0]
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=9, hop_length=HOP).mean(axis=1)
    centroid = librosa.feature.spectral_centroid(S=np.sqrt(p_mix), sr=SR).mean()
    features = {
        "kick": _db(_band(p_drums, 0, 150) / total),
        "snare": _db((float(drum_env_mid.mean()) + EPS) / (float(mix_env_mid.mean()) + EPS)),
        "drums": _db(shares["drums"] / share_total),
        "distortion": _flatness(bus["harmony"]),
        "lead_flatness": _flatness(bus["lead"]),
        "swing8": swing_ratio(rhythm, beat),
        "swing16": swing_ratio(rhythm, beat / 2),
        "harmonic_rhythm": harmonic_rhythm(bus["harmony"] + bus["bass"], beat),
        "onsets_per_beat": len(onsets) / (seconds / beat),
        "hats_per_beat": len(hat_onsets) / (seconds / beat),
        "brightness": float(np.log2(centroid + 1.0)),
        "low_share": _db(_band(p_mix, 0, 120) / total),
        "high_share": _db(_band(p_mix, 5000, SR / 2) / total),
        "bass_kick_lock": lock,
        "bass_share": _db(shares["bass"] / share_total),
        "harmony_share": _db(shares["harmony"] / share_total),
        "lead_share": _db(shares["lead"] / share_total),
        "dynamics": _db(float(np.percentile(rms, 95) ** 2 + EPS) / float(np.percentile(rms, 10) ** 2 + EPS)),
        "tempo": float(np.log2(bpm)),
    }
    features.update({f"mfcc{i}": float(mfcc[i]) for i in range(1, 9)})
    return features


def vector(features: Mapping[str, float]) -> np.ndarray:
    return np.array([features[name] for name in FEATURES], float)


@dataclass(frozen=True)
class Profiles:
    """Per-style mean standardized feature vectors; classify by the nearest one (Euclidean)."""

    names: tuple[str, ...]
    centres: np.ndarray  # styles × features, standardized
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, samples: Mapping[str, Sequence[Mapping[str, float]]]) -> Profiles:
        rows = np.array([vector(f) for group in samples.values() for f in group])
        mean, scale = rows.mean(axis=0), rows.std(axis=0) + 1e-9
        centres = np.array([((np.array([vector(f) for f in group]) - mean) / scale).mean(axis=0)
                            for group in samples.values()])
        return cls(tuple(samples), centres, mean, scale)

    def distances(self, features: Mapping[str, float]) -> np.ndarray:
        z = (vector(features) - self.mean) / self.scale
        return np.linalg.norm(self.centres - z, axis=1)

    def classify(self, features: Mapping[str, float]) -> str:
        return self.names[int(np.argmin(self.distances(features)))]

    def closest_features(self, a: str, b: str, count: int = 4) -> list[str]:
        """The features on which styles `a` and `b`'s profiles are closest (the ones that fail to separate)."""
        gap = np.abs(self.centres[self.names.index(a)] - self.centres[self.names.index(b)])
        return [FEATURES[i] for i in np.argsort(gap)[:count]]


def confusion_table(names: Sequence[str], truth: Sequence[str], predicted: Sequence[str]) -> str:
    """Rows = true style: the style it was classified as (one held-out render per row, or counts)."""
    lines = [f"{'true style':24s} classified as"]
    for name in names:
        got = [p for t, p in zip(truth, predicted, strict=True) if t == name]
        counts = {p: got.count(p) for p in dict.fromkeys(got)}
        cell = ", ".join(f"{p}" + (f" ×{c}" if c > 1 else "") for p, c in counts.items())
        mark = "ok" if got and all(p == name for p in got) else "MISS"
        lines.append(f"{name:24s} {cell:40s} {mark}")
    return "\n".join(lines)


def style_request(style_name: str, seed: int, prompt: str | None = None, duration: float = 16.0,
                  bpm: int | None = None) -> object:
    """A request forcing `style_name`: its own keywords as tags at full prompt strength, with `prompt`
    (default: the style's description)."""
    from textmusic.contract import PROMPT_STRENGTH_RANGE, TextToMusicRequest
    from textmusic.engine.styles import STYLES_BY_NAME

    style = STYLES_BY_NAME[style_name]
    return TextToMusicRequest(prompt=(prompt or style.description)[:200], tags=list(style.keywords[:3]),
                              seed=seed, duration_seconds=duration, bpm=bpm or "auto",
                              prompt_strength=PROMPT_STRENGTH_RANGE[1])


def render_features(engine: object, request: object) -> tuple[str, dict[str, float]]:
    """Render `request` in `engine` (a textmusic.engine.Engine) and measure it: (style chosen, features)."""
    rendered = engine.render_parts(request)  # type: ignore[attr-defined]
    stems = {name: audio for name, audio in rendered.stems.items() if audio.size}
    features = measure(stems, engine.settings.sample_rate, float(rendered.score.bpm),  # type: ignore[attr-defined]
                       rendered.master)
    return rendered.score.style.name, features
