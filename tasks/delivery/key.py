"""The key a delivered file is heard in: chroma correlated with key profiles, compared with the brief's key.

A brief's `key` is what the catalog claims; a library files a cue by it. The local service composes in it (the
request's `key` extension), a hosted provider is never told it, and either may miss it: so every delivered song,
cut-down and loop is measured. Stems and alternative mixes are parts of their song (a bass stem alone is no
key) and MIDI is no audio: they are not measured.

The finder is the classic Krumhansl–Schmuckler one, with the Albrecht–Shanahan (2013) corpus profiles: the
first `MEASURE_SECONDS` of a mono downmix, its harmonic part (librosa's median-filter separation: drums and
other transients carry pitches of their own, a tuned tom or a kick's thump, that are no part of the key), a
constant-Q chromagram summed over time into one 12-bin profile, Pearson-correlated with the major and minor
profiles rotated to every tonic; the best of the 24 is the key, its correlation the confidence. The
Albrecht–Shanahan profiles weigh the tones outside the scale far below Krumhansl–Kessler's, which tolerate a
flat seventh and so mistake a key for the one a fifth below (measured on the engine's renders: 23/24 against
18/24 with Krumhansl–Kessler and no separation; benchmarks/keys.py). The audio is read at `SAMPLE_RATE`
11025 Hz: the notes' chroma lies below 4 kHz, and half the rate halves the separation's cost.

Relative major/minor and keys a fifth apart are the usual confusions of such a finder, and of a listener: only
the exact key counts as "as asked"; anything else is a warning, never a failure (the file is fine, the claim
about it is not).

Keys are spelled as the brief's `key` column allows (KEY_PATTERN, at most 3 characters), one table:
`KEY_NAMES`, flats for Db Eb Ab Bb major and Eb Bb minor, sharps for F# major and C# F# G# minor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textmusic.audio.read import read_mono
from textmusic.contract import parse_key

SAMPLE_RATE = 11025
MEASURE_SECONDS = 60.0  # the first minute, as the similarity fingerprint reads: enough for a key, bounded
N_FFT, SEPARATION_HOP, SEPARATION_KERNEL = 2048, 512, 31  # the harmonic/percussive separation's STFT
CHROMA_HOP = 1024
# Below this correlation the measurement is a guess: the tag keeps the brief's key and the warning says so.
CONFIDENT = 0.6
# Albrecht & Shanahan (2013), "The use of large corpora to train a new type of key-finding algorithm", Music
# Perception 31(1): how often each pitch class sounds in a key, from the tonic up.
MAJOR_PROFILE = np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081])
MINOR_PROFILE = np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052])
# The one spelling table, by tonic pitch class (0 = C): what the ledger and the tags write.
KEY_NAMES: dict[str, tuple[str, ...]] = {
    "major": ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"),
    "minor": ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm"),
}


def key_name(tonic: int, mode: str) -> str:
    """The key's spelling in KEY_NAMES: (1, "minor") → "C#m"."""
    return KEY_NAMES[mode][tonic % 12]


def key_scores(chroma: np.ndarray) -> np.ndarray:
    """The correlation of a 12-bin pitch-class profile with each of the 24 keys: row 0 major, row 1 minor,
    column the tonic. A flat or silent profile correlates with nothing (all zeros)."""
    centred = chroma - chroma.mean()
    norm = float(np.linalg.norm(centred))
    scores = np.zeros((2, 12))
    if norm < 1e-12:
        return scores
    for row, profile in enumerate((MAJOR_PROFILE, MINOR_PROFILE)):
        for tonic in range(12):
            rotated = np.roll(profile, tonic)
            rotated = rotated - rotated.mean()
            scores[row, tonic] = float(centred @ rotated) / (norm * float(np.linalg.norm(rotated)))
    return scores


def find_key(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[str, float]:
    """(key, confidence) of mono audio: the best-correlated of the 24 keys and its correlation (−1…1);
    ("", 0.0) for audio with no pitch to speak of (silence, noise too short for a chromagram)."""
    import librosa

    if samples.size < N_FFT * 4 or not np.any(samples):
        return "", 0.0
    harmonic = librosa.effects.harmonic(np.asarray(samples, dtype=np.float32), n_fft=N_FFT,
                                        hop_length=SEPARATION_HOP, kernel_size=SEPARATION_KERNEL)
    chroma = librosa.feature.chroma_cqt(y=harmonic, sr=sample_rate, hop_length=CHROMA_HOP).sum(axis=1)
    scores = key_scores(chroma)
    if not scores.any():
        return "", 0.0
    row, tonic = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return key_name(int(tonic), ("major", "minor")[int(row)]), round(float(scores[row, tonic]), 3)


def measure_key(path: Path) -> dict[str, object]:
    """The ledger's measured-key fields of an audio file (`key_measured`, `key_confidence`), read through the
    audio core as every other measurement is."""
    key, confidence = find_key(read_mono(path, SAMPLE_RATE, MEASURE_SECONDS))
    return {"key_measured": key, "key_confidence": confidence if key else None}


def same_key(a: str, b: str) -> bool:
    """Whether two spellings name one key (enharmonics alike: "C#m" is "Dbm")."""
    return bool(a and b) and parse_key(a) == parse_key(b)


def _relation(asked: str, heard: str) -> str:
    """How a measured key relates to the asked one, for the warning: the usual confusions named."""
    (a_tonic, a_mode), (h_tonic, h_mode) = parse_key(asked), parse_key(heard)
    if a_tonic == h_tonic:
        return "the parallel " + h_mode
    relative = (a_tonic + 3) % 12 if a_mode == "minor" else (a_tonic - 3) % 12
    if a_mode != h_mode and h_tonic == relative:
        return "the relative " + h_mode
    if a_mode == h_mode and (h_tonic - a_tonic) % 12 in (5, 7):
        return "a fifth away"
    return ""


def key_warning(asked: str, measured: str, confidence: float | None) -> str:
    """The ledger's and qc.csv's `key_warning`: empty when the brief asks no key, nothing was measured, or the
    audio is in the asked key; else what was asked and what is heard (a warning, never a QC failure)."""
    if not asked or not measured or same_key(asked, measured):
        return ""
    relation = _relation(asked, measured)
    sure = "" if (confidence or 0.0) >= CONFIDENT else f", low confidence {confidence or 0.0:.2f}"
    return f"brief asks {asked}, the audio is in {measured}" + (f" ({relation}{sure})" if relation else
                                                               f" ({sure[2:]})" if sure else "")


def tagged_key(asked: str, measured: str, confidence: float | None) -> str:
    """The key a file's `key` tag carries: the key the audio is heard in when the measurement is confident
    (a library files the cue by what it sounds like), else the brief's (a guess is no better than the claim)."""
    if measured and (confidence or 0.0) >= CONFIDENT:
        return measured
    return asked
