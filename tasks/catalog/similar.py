"""Near-duplicate flags: one fingerprint per delivered file, every pair compared by one cosine.

A catalog should not sell the same music twice: one request under two track ids, the same audio in two
formats or bit rates, a provider that returns one song for two requests. What is compared is the music
over time, so a re-encode (mp3, aac) scores ~1.0 while two takes of one prompt, alike in style, tempo and
sound but not in every note, score lower (see DEFAULT_THRESHOLD).

The fingerprint covers the first `FINGERPRINT_SECONDS` after any leading silence, decoded mono at
`SAMPLE_RATE`, in steps of `STEP_SECONDS`:
  harmony  each step's chroma as shares of its energy, minus the even share 1/12 (what is played, in order)
  texture  each step's log energy in `MEL_BANDS` mel bands, minus the file's own mean per band (how the
           arrangement moves: entries, builds, drops)
Steps quieter than `SILENCE_DB` under the loudest step, and steps past the end, are zero. Each block is
scaled to unit length and weighted (`WEIGHTS`), so a pair's score is the weighted mean of the two blocks'
cosines. Every scaling is the file's own, never the catalog's: a pair scores the same whatever else the
catalog holds. Fingerprints are cached by the file's SHA-256 in `DIR/.fingerprints.npz`; a later run
computes only new files.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import librosa
import numpy as np

from tasks.catalog.ledger import READY, LedgerRecord
from tasks.settings import PipelineSettings
from textmusic.audio.read import UnreadableAudio, read_mono
from textmusic.contract import FORMATS

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050
FINGERPRINT_SECONDS = 60.0
LEAD_IN_SECONDS = 10.0  # leading silence skipped at most (decoded beyond the fingerprint's span)
STEP_SECONDS = 1.0  # coarse enough that codec delays (mp3/aac: ~50 ms) do not matter, fine enough for melody
N_FFT = 2048
HOP = 512
CHROMA_BINS = 12
MEL_BANDS = 16
SILENCE_DB = 50.0
WEIGHTS = {"harmony": 0.5, "texture": 0.5}
# Separates the same audio from other renders (benchmarks/similar.py measures both on the local engine): the
# same audio as wav, flac, ogg, or mp3/m4a at 128 kbps scores >= 0.998; different prompts <= 0.55; other seeds
# of one prompt mostly 0.2-0.8, but up to ~0.975 when the engine gave them the same key, chords, bass and drums
# and only some lead notes differ (seen: 0.88-0.975). Such takes are left to a listener: the margin between
# "the same audio" and "the closest other take" is what fixes the threshold, not a guess about what sounds alike.
DEFAULT_THRESHOLD: float = PipelineSettings.model_fields["similarity_threshold"].default  # one home: settings
CACHE_FILE = ".fingerprints.npz"
FINGERPRINT_VERSION = "1"  # bump when the features change: cached fingerprints are then recomputed
_STEPS = int(FINGERPRINT_SECONDS / STEP_SECONDS)
_BLOCK_ROWS = 1024  # all-pairs scores are computed this many rows at a time (10,000 tracks: 40 MB per block)


def _steps(frames: np.ndarray) -> np.ndarray:
    """(bins, frames) → (bins, _STEPS): frames summed per step; steps past the end stay zero."""
    per = round(STEP_SECONDS * SAMPLE_RATE / HOP)
    count = min(_STEPS, frames.shape[1] // per)
    out = np.zeros((frames.shape[0], _STEPS))
    out[:, :count] = frames[:, : count * per].reshape(frames.shape[0], count, per).sum(axis=2)
    return out


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _harmony(chroma: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Each active step's chroma as shares of its energy, less the even share: loudness and gain drop out."""
    harmony = np.zeros_like(chroma)
    harmony[:, active] = chroma[:, active] / np.maximum(chroma[:, active].sum(axis=0), 1e-12) - 1 / CHROMA_BINS
    return harmony


def _texture(mel: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Each active step's log band energies less the file's own band means: a gain changes nothing."""
    texture = np.zeros_like(mel)
    if active.any():
        log_mel = 10 * np.log10(mel[:, active] + 1e-10)
        texture[:, active] = log_mel - log_mel.mean(axis=1, keepdims=True)
    return texture


def fingerprint(path: Path) -> np.ndarray:
    """The file's unit-length fingerprint (float32): harmony and texture over time (see the module doc). A
    file silent or shorter than one step gets zeros, which score 0 against anything."""
    audio = read_mono(path, SAMPLE_RATE, FINGERPRINT_SECONDS + LEAD_IN_SECONDS)
    start = librosa.effects.trim(audio, top_db=SILENCE_DB)[1][0] if audio.any() else audio.size
    audio = audio[start: start + int(FINGERPRINT_SECONDS * SAMPLE_RATE)]
    if audio.size < STEP_SECONDS * SAMPLE_RATE:
        return np.zeros(_STEPS * (CHROMA_BINS + MEL_BANDS), np.float32)
    power = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP)) ** 2
    chroma = _steps(librosa.feature.chroma_stft(S=power, sr=SAMPLE_RATE, n_fft=N_FFT, n_chroma=CHROMA_BINS,
                                                norm=None, tuning=0.0))
    mel = _steps(librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=MEL_BANDS))
    loudness = mel.sum(axis=0)
    active = loudness > loudness.max() * 10 ** (-SILENCE_DB / 10)
    blocks = {"harmony": _harmony(chroma, active), "texture": _texture(mel, active)}
    return np.concatenate([np.sqrt(WEIGHTS[k]) * _unit(blocks[k].ravel()) for k in WEIGHTS]).astype(np.float32)


def _load_cache(out_dir: Path) -> dict[str, np.ndarray]:
    """sha256 → fingerprint from an earlier run; empty when absent, unreadable or of another version."""
    path = out_dir / CACHE_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["version"]) != FINGERPRINT_VERSION:
                return {}
            return dict(zip(data["sha256"].tolist(), data["vectors"], strict=True))
    except (OSError, KeyError, ValueError):
        return {}


def _save_cache(out_dir: Path, vectors: dict[str, np.ndarray]) -> None:
    """Replace the cache atomically (a crash mid-write leaves the old one)."""
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f"{CACHE_FILE}.", suffix=".tmp.npz")
    os.close(fd)
    try:
        shas = sorted(vectors)
        matrix = np.stack([vectors[s] for s in shas]) if shas else np.zeros((0, 0), np.float32)
        np.savez(tmp, version=np.array(FINGERPRINT_VERSION), sha256=np.array(shas, dtype=str), vectors=matrix)
        os.replace(tmp, out_dir / CACHE_FILE)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached_fingerprints(out_dir: Path, records: list[LedgerRecord]) -> dict[str, np.ndarray]:
    """sha256 → fingerprint for the records' files, computing only those not cached. The cache keeps only
    these records' files; a file that is missing or does not decode is left out (and logged)."""
    cached = _load_cache(out_dir)
    vectors: dict[str, np.ndarray] = {}
    for record in records:
        if record.sha256 in vectors:
            continue
        if record.sha256 in cached:
            vectors[record.sha256] = cached[record.sha256]
            continue
        try:
            vectors[record.sha256] = fingerprint(out_dir / record.audio_path)
        except (UnreadableAudio, ValueError) as exc:
            log.warning("no fingerprint for %s: %s", record.audio_path, exc)
    if vectors.keys() != cached.keys():
        _save_cache(out_dir, vectors)
    return vectors


def _comparable(a: LedgerRecord, b: LedgerRecord) -> bool:
    """Two different songs in two different files (a song is its track_id and song_index)."""
    return (a.track_id, a.song_index) != (b.track_id, b.song_index) and a.audio_path != b.audio_path


def pairs_above(matrix: np.ndarray, threshold: float) -> Iterator[tuple[int, int, float]]:
    """(i, j, score) for i < j scoring ≥ threshold: the all-pairs product, a block of rows at a time."""
    for first in range(0, len(matrix), _BLOCK_ROWS):
        block = matrix[first: first + _BLOCK_ROWS] @ matrix.T
        for i, j in zip(*np.nonzero(block >= threshold), strict=True):
            if first + i < j:
                yield first + int(i), int(j), float(block[i, j])


def similar_pairs(out_dir: Path, records: list[LedgerRecord], threshold: float = DEFAULT_THRESHOLD
                  ) -> list[tuple[LedgerRecord, LedgerRecord, float]]:
    """Pairs of ready songs whose fingerprints score ≥ threshold, most similar first. Only audio files are
    fingerprinted: a MIDI version (output_format "mid", no audio format of the contract) is a score, not sound."""
    ready = [r for r in records if r.status == READY and r.sha256 and r.audio_path and r.output_format in FORMATS]
    vectors = cached_fingerprints(out_dir, ready)
    ready = [r for r in ready if r.sha256 in vectors]
    if not ready:
        return []
    matrix = np.stack([vectors[r.sha256] for r in ready])
    pairs = [(ready[i], ready[j], score) for i, j, score in pairs_above(matrix, threshold)
             if _comparable(ready[i], ready[j])]
    return sorted(pairs, key=lambda pair: -pair[2])


def flag_similar(out_dir: Path, records: list[LedgerRecord], threshold: float = DEFAULT_THRESHOLD
                 ) -> list[LedgerRecord]:
    """The records with `similar_to` / `similarity` set on each ready song from its matches (all scoring
    ≥ threshold, most similar first), and cleared on ready songs without one: a flag from an earlier run
    never outlives the file it named. Records that are not ready are returned untouched."""
    matches: dict[int, list[tuple[str, float]]] = {}
    for a, b, score in similar_pairs(out_dir, records, threshold):
        matches.setdefault(id(a), []).append((b.audio_path, score))
        matches.setdefault(id(b), []).append((a.audio_path, score))
    flagged = []
    for record in records:
        if record.status != READY:
            flagged.append(record)
            continue
        found = matches.get(id(record), [])
        flagged.append(record.model_copy(update={
            "similar_to": "|".join(path for path, _ in found),
            "similarity": round(found[0][1], 4) if found else None,
        }))
    return flagged
