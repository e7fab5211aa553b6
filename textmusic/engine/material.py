"""A piece's material, drawn from its seed before any form: style, tempo, key, motifs and sung rhythms.

Every version of a track (the full song, its 60/30/15 s cut-downs, its loops) is arranged from the
same `Material`, so a 30 s version has the full's key, tempo, instruments and tunes. Nothing here
depends on the length asked for: the seeded random length of an instrumental is drawn whether or not
it is used, and the lyric rhythms are drawn per lyric line in the lyrics' order, whatever the form
then sings. Progressions and drum grooves are the blended style's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from textmusic.contract import TextToMusicRequest
from textmusic.engine.intent import Intent, blend
from textmusic.engine.styles import MODES, Style

STEPS_PER_BAR = 16
MOTIF_BARS = 2  # an instrumental motif is a two-bar phrase
MOTIF_FAMILIES = ("A", "B", "C")  # the motif of each section family (see compose.FAMILY)
MELISMA_PROBABILITY = 0.5  # a line's last syllable sung over two notes

SyllableCounter = Callable[[str], int]


@dataclass(frozen=True)
class Motif:
    """A melodic idea: onsets and lengths in sixteenth steps, the scale steps between its notes, and the
    answer's contour (same rhythm, a different ending)."""

    rhythm: tuple[tuple[int, int], ...]
    contour: tuple[int, ...]
    answer: tuple[int, ...] = ()


@dataclass(frozen=True)
class SungLine:
    """How one lyric line is sung wherever it recurs: its rhythm over `bars` bars and whether its last
    syllable stretches over two notes."""

    rhythm: tuple[tuple[int, int], ...]
    bars: int
    melisma: bool


@dataclass(frozen=True)
class Material:
    style: Style
    bpm: float
    tonic: int
    mode: str
    length_draw: float  # in [0, 1): where in the style's range an unasked instrumental length falls
    motifs: dict[str, Motif] = field(default_factory=dict)
    lyric_contours: dict[str, tuple[int, ...]] = field(default_factory=dict)  # by lyric section name
    sung: dict[tuple[str, str], SungLine] = field(default_factory=dict)  # by (section name, line)

    @property
    def scale(self) -> tuple[int, ...]:
        return MODES[self.mode]

    @property
    def bar_seconds(self) -> float:
        return 4 * 60.0 / self.bpm


def line_bars(syllables: int) -> int:
    """Bars of a lyric phrase: room for one note per syllable on eighths, plus a beat of rest."""
    return 2 if syllables <= 2 * 8 - 2 else 4


def rhythm(rng: np.random.Generator, notes: int, bars: int) -> tuple[tuple[int, int], ...]:
    """Onsets for `notes` notes in a phrase of `bars` bars: beats favoured, a rest at the end."""
    total = bars * STEPS_PER_BAR
    grid = 2 if notes <= (total - 4) // 2 else 1
    slots = np.arange(0, total - (4 if grid == 2 else 2), grid)
    notes = min(notes, len(slots))
    weights = np.where(slots % 4 == 0, 3.0, np.where(slots % 2 == 0, 1.3, 0.8))
    chosen = np.sort(rng.choice(slots, size=notes, replace=False, p=weights / weights.sum()))
    if notes and chosen[0] > 4:  # start the phrase near its beginning
        chosen[0] = 0
    out = []
    for index, onset in enumerate(chosen):
        end = int(chosen[index + 1]) if index + 1 < len(chosen) else min(total - 4, int(onset) + 8)
        out.append((int(onset), max(1, min(end - int(onset), 8))))
    return tuple(out)


def contour(rng: np.random.Generator, length: int = 16) -> tuple[int, ...]:
    steps = rng.choice([-2, -1, 0, 1, 2, 3, -3, 4], size=length, p=[0.17, 0.22, 0.08, 0.22, 0.17, 0.06, 0.05, 0.03])
    return tuple(int(step) for step in steps)


def _motif(rng: np.random.Generator, density: float) -> Motif:
    slots = MOTIF_BARS * 8 - 2
    notes = max(2, round(density * slots * rng.uniform(0.8, 1.2)))
    beats = rhythm(rng, notes, MOTIF_BARS)
    shape = contour(rng)
    answer = list(shape)
    for i in range(max(0, len(beats) - 3), len(beats) - 1):
        answer[i % len(answer)] = int(rng.choice([-2, -1, 1, 2]))
    return Motif(beats, shape, tuple(answer))


def draw_material(request: TextToMusicRequest, intent: Intent, count: SyllableCounter,
                  sections: list[tuple[str, list[str]]]) -> Material:
    """Everything random about the piece except its form and performance, in a fixed order of draws.

    `sections` are the parsed lyrics (empty for an instrumental); `count` counts a line's syllables.
    """
    if request.seed is None:
        raise ValueError("the engine renders only requests with an explicit seed")
    rng = np.random.default_rng(request.seed)
    style = blend(intent, rng)
    lo, hi = style.bpm_range
    bpm = float(rng.integers(lo, hi + 1))
    if request.bpm != "auto":
        bpm = float(request.bpm)
    elif intent.bpm is not None:
        bpm = intent.bpm
    tonic = int(rng.choice(style.tonics))
    mode = str(rng.choice(style.modes))
    length_draw = float(rng.random())
    motifs = {family: _motif(rng, style.density) for family in MOTIF_FAMILIES}
    contours: dict[str, tuple[int, ...]] = {}
    sung: dict[tuple[str, str], SungLine] = {}
    for name, lines in sections:
        if name not in contours:
            contours[name] = contour(rng)
        for line in lines:
            if (name, line) not in sung:
                syllables = count(line)
                bars = line_bars(syllables + 1)
                melisma = bool(rng.random() < MELISMA_PROBABILITY)
                sung[(name, line)] = SungLine(rhythm(rng, syllables, bars), bars, melisma)
    return Material(style, bpm, tonic, mode, length_draw, motifs, contours, sung)
