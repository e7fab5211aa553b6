"""The style library as data, and the keyword matching that picks a style from a prompt and tags.

Styles are plain data so that adding or tuning one never touches the composer. Patterns use a
16-step grid (sixteenth notes of one 4/4 bar):

- drums: one string per instrument, ``X`` accent, ``x`` normal, ``o`` ghost, ``.`` silent;
- chords: ``X``/``x`` onset, ``-`` hold the previous onset, ``.`` rest;
- bass: ``r`` root, ``f`` fifth, ``o`` octave, ``t`` third, ``a`` approach to the next bar's root
  (upper case accents), ``-`` hold, ``.`` rest; or the word ``walk`` for a walking line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# General MIDI drum keys (channel 10).
DRUM_KEYS: Mapping[str, int] = {
    "kick": 36,
    "rim": 37,
    "snare": 38,
    "clap": 39,
    "tom_lo": 45,
    "chat": 42,
    "phat": 44,
    "ohat": 46,
    "tom_mid": 47,
    "crash": 49,
    "tom_hi": 50,
    "ride": 51,
    "tamb": 54,
    "cowbell": 56,
    "shaker": 70,
}

# Scale intervals in semitones above the tonic.
MODES: Mapping[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
}

DrumPattern = Mapping[str, str]


@dataclass(frozen=True)
class Style:
    """Everything the composer needs to know about a genre; progressions are 0-based scale degrees."""

    name: str
    keywords: tuple[str, ...]
    bpm_range: tuple[int, int]
    modes: tuple[str, ...]
    tonics: tuple[int, ...]  # preferred tonic pitch classes (0 = C)
    progressions: tuple[tuple[int, ...], ...]
    chord_program: int
    bass_program: int
    lead_program: int
    drum_patterns: tuple[DrumPattern, ...]
    chord_pattern: str
    bass_pattern: str
    pad_program: int | None = None
    drum_kit: int = 0  # preset in bank 128
    chord_mode: str = "block"  # block | strum | arp
    sevenths: bool = False
    bars_per_chord: int = 1
    swing: float = 0.0  # fraction of a swing unit the off-beats are delayed by
    swing_unit: int = 16  # 16: swung sixteenths, 8: swung eighths
    density: float = 0.5  # lead notes per available eighth, roughly
    lead_octave: int = 67  # MIDI note the lead's tonic is placed nearest to
    levels: Mapping[str, int] = field(
        default_factory=lambda: {"chords": 88, "bass": 104, "lead": 96, "pad": 64, "drums": 108}
    )

    def __post_init__(self) -> None:
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"style {self.name}: unknown mode {mode}")
        for pattern in (*self.drum_patterns, {"chords": self.chord_pattern}):
            for inst, steps in pattern.items():
                if len(steps) != 16:
                    raise ValueError(f"style {self.name}: pattern {inst} is not 16 steps")
        if self.bass_pattern != "walk" and len(self.bass_pattern) != 16:
            raise ValueError(f"style {self.name}: bass pattern is not 16 steps")


_HATS8 = "x.x.x.x.x.x.x.x."

STYLES: tuple[Style, ...] = (
    Style(
        name="lofi-hip-hop",
        keywords=("lofi", "lo fi", "chillhop", "hip hop", "hiphop", "boom bap", "chill", "study", "beats"),
        bpm_range=(70, 90),
        modes=("dorian", "minor", "major"),
        tonics=(0, 2, 5, 7, 9, 10),
        progressions=((3, 2, 1, 0), (1, 4, 0, 5), (0, 5, 1, 4)),
        chord_program=4,  # Rhodes
        bass_program=33,  # finger bass
        lead_program=11,  # vibraphone
        drum_patterns=(
            {"kick": "X......x.x......", "snare": "....X.......X...", "chat": "x.o.x.o.x.o.x.ox"},
            {"kick": "X.....x...x.....", "snare": "....X..o....X...", "chat": "x.x.x.x.x.x.x.x."},
        ),
        chord_pattern="x-----------x---",
        bass_pattern="r-----.r--r-----",
        sevenths=True,
        swing=0.22,
        density=0.35,
    ),
    Style(
        name="house",
        keywords=("house", "edm", "electronic", "dance", "club", "techno", "trance", "rave", "deep house"),
        bpm_range=(120, 128),
        modes=("minor", "dorian"),
        tonics=(0, 2, 5, 7, 9),
        progressions=((0, 5, 2, 6), (0, 3, 4, 0), (5, 3, 0, 4)),
        chord_program=0,  # piano stabs (the polysynth's long release makes stabs smear and cost 5x)
        bass_program=38,  # synth bass
        lead_program=81,  # saw lead
        pad_program=89,  # warm pad
        drum_kit=24,
        drum_patterns=(
            {"kick": "X...X...X...X...", "clap": "....x.......x...", "ohat": "..x...x...x...x.",
             "chat": "o.o.o.o.o.o.o.o."},
            {"kick": "X...X...X...X...", "clap": "....x.......x..o", "ohat": "..x...x...x...x.",
             "chat": "oooooooooooooooo"},
        ),
        chord_pattern="..x-..x-..x-..x-",
        bass_pattern="..r...r...r...r.",
        sevenths=True,
        density=0.45,
    ),
    Style(
        name="rock",
        keywords=("rock", "heavy", "metal", "punk", "grunge", "riff", "guitar", "hard rock", "alternative"),
        bpm_range=(100, 150),
        modes=("minor", "mixolydian", "major"),
        tonics=(4, 9, 2, 7),
        progressions=((0, 5, 2, 6), (0, 3, 4, 3), (0, 6, 3, 0)),
        chord_program=29,  # overdriven guitar
        bass_program=34,  # pick bass
        lead_program=30,  # distortion guitar
        drum_kit=16,
        drum_patterns=(
            {"kick": "X.....x.X.x.....", "snare": "....X.......X...", "chat": _HATS8},
            {"kick": "X.x...x.X.x...x.", "snare": "....X.......X...", "ride": "x.x.x.x.x.x.x.x."},
        ),
        chord_pattern="x-x-x-x-x-x-x-x-",
        bass_pattern="R-r-r-r-R-r-r-r-",
        chord_mode="strum",
        density=0.5,
        lead_octave=64,
    ),
    Style(
        name="jazz",
        keywords=("jazz", "swing", "bebop", "trio", "lounge", "smooth jazz", "piano bar", "standards"),
        bpm_range=(100, 160),
        modes=("major", "dorian"),
        tonics=(5, 10, 3, 0, 7),
        progressions=((1, 4, 0, 5), (0, 5, 1, 4), (2, 5, 1, 4)),
        chord_program=0,  # piano
        bass_program=32,  # acoustic bass
        lead_program=66,  # tenor sax
        drum_kit=32,
        drum_patterns=(
            {"ride": "X...x.x.X...x.x.", "phat": "....x.......x...", "kick": "o.......o......."},
            {"ride": "X...x.x.X...x.x.", "phat": "....x.......x...", "snare": "..........o...o."},
        ),
        chord_pattern="x-.....x-.x-....",
        bass_pattern="walk",
        sevenths=True,
        swing=0.33,
        swing_unit=8,
        density=0.6,
        lead_octave=60,
    ),
    Style(
        name="ambient",
        keywords=("ambient", "drone", "atmospheric", "meditation", "meditative", "calm", "ethereal", "space",
                  "sleep", "relax", "relaxing", "soundscape"),
        bpm_range=(60, 80),
        modes=("lydian", "major", "minor"),
        tonics=(0, 2, 4, 7, 9),
        progressions=((0, 3), (0, 5, 3, 4), (5, 3)),
        chord_program=89,  # warm pad
        bass_program=88,  # new age pad, low
        lead_program=8,  # celesta
        pad_program=94,  # halo pad
        drum_patterns=(),
        chord_pattern="x---------------",
        bass_pattern="r---------------",
        bars_per_chord=2,
        density=0.18,
        levels={"chords": 92, "bass": 84, "lead": 90, "pad": 72, "drums": 100},
    ),
    Style(
        name="cinematic-orchestral",
        keywords=("cinematic", "orchestral", "orchestra", "epic", "film", "movie", "trailer", "soundtrack",
                  "score", "heroic", "strings", "symphonic"),
        bpm_range=(70, 110),
        modes=("minor", "major"),
        tonics=(2, 7, 0, 5),
        progressions=((0, 5, 2, 6), (0, 3, 5, 4), (5, 3, 0, 4)),
        chord_program=48,  # string ensemble
        bass_program=42,  # cello
        lead_program=60,  # french horn
        pad_program=52,  # choir aahs
        drum_kit=48,
        drum_patterns=(
            {"kick": "X.......X.....x.", "snare": "....x.......x..."},
            {"kick": "X.....x.X.....x.", "snare": "....x.......x.oo", "tom_lo": "X.......X......."},
        ),
        chord_pattern="x-------x-------",
        bass_pattern="r-------r---f---",
        density=0.3,
        lead_octave=60,
    ),
    Style(
        name="pop",
        keywords=("pop", "catchy", "upbeat", "radio", "happy", "summer", "anthem", "feel good"),
        bpm_range=(96, 124),
        modes=("major",),
        tonics=(0, 2, 4, 5, 7, 9),
        progressions=((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4)),
        chord_program=0,  # piano
        bass_program=33,  # finger bass
        lead_program=80,  # square lead
        pad_program=48,  # strings
        drum_patterns=(
            {"kick": "X.......X.x.....", "snare": "....X.......X...", "chat": _HATS8},
            {"kick": "X...x...X...x...", "clap": "....X.......X...", "chat": "x.xxx.x.x.xxx.x."},
        ),
        chord_pattern="x---x---x---x---",
        bass_pattern="r-.r..r-r-.r..f-",
        density=0.5,
    ),
    Style(
        name="acoustic-folk",
        keywords=("folk", "acoustic", "country", "singer songwriter", "campfire", "americana", "bluegrass",
                  "indie folk", "unplugged"),
        bpm_range=(80, 120),
        modes=("major", "mixolydian"),
        tonics=(7, 2, 9, 0, 4),
        progressions=((0, 3, 0, 4), (0, 5, 3, 4), (0, 4, 5, 3)),
        chord_program=25,  # steel guitar
        bass_program=32,  # acoustic bass
        lead_program=40,  # violin (fiddle)
        drum_kit=40,
        drum_patterns=(
            {"kick": "X.......X.......", "snare": "....x.......x...", "shaker": "o.x.o.x.o.x.o.x."},
            {"kick": "X.....x.X.......", "snare": "....x.......x...", "tamb": "....x.......x..."},
        ),
        chord_pattern="x-x-.xx-x-x-.xx-",
        bass_pattern="r---f---r---f---",
        chord_mode="strum",
        swing=0.1,
        density=0.45,
        lead_octave=67,
    ),
    Style(
        name="funk",
        keywords=("funk", "funky", "groove", "disco", "soul", "rnb", "r&b", "motown", "slap"),
        bpm_range=(95, 115),
        modes=("dorian", "mixolydian"),
        tonics=(4, 9, 2, 7),
        progressions=((0, 0, 3, 3), (0, 3, 0, 4), (1, 4, 0, 0)),
        chord_program=28,  # muted guitar
        bass_program=36,  # slap bass
        lead_program=61,  # brass section
        drum_patterns=(
            {"kick": "X..x..x...X..x..", "snare": "....X..o.o..X..o", "chat": "XxoxXxoxXxoxXxox"},
            {"kick": "X.x...x...X.....", "snare": "....X..o....X.o.", "chat": "xxxxxxxxxxxxxxox"},
        ),
        chord_pattern="..x.x..x..x.x..x",
        bass_pattern="R..o..r.r.f..o.a",
        sevenths=True,
        swing=0.08,
        density=0.55,
        lead_octave=67,
    ),
    Style(
        name="synthwave",
        keywords=("synthwave", "retrowave", "outrun", "retro", "80s", "vaporwave", "cyberpunk", "neon", "synth"),
        bpm_range=(84, 118),
        modes=("minor",),
        tonics=(9, 4, 2, 7, 0),
        progressions=((0, 5, 2, 6), (5, 3, 0, 4), (0, 3, 5, 4)),
        chord_program=80,  # square-wave arpeggio
        bass_program=38,  # synth bass
        lead_program=81,  # saw lead
        pad_program=89,  # warm pad
        drum_kit=24,
        drum_patterns=(
            {"kick": "X...X...X...X...", "snare": "....X.......X...", "chat": _HATS8},
            {"kick": "X...X...X...X.x.", "snare": "....X.......X...", "chat": "xxxxxxxxxxxxxxxx"},
        ),
        chord_pattern="xxxxxxxxxxxxxxxx",
        bass_pattern="r-r-r-r-r-r-r-r-",
        chord_mode="arp",
        density=0.4,
    ),
)

STYLES_BY_NAME: Mapping[str, Style] = {style.name: style for style in STYLES}
FALLBACK_STYLE: Style = STYLES_BY_NAME["pop"]


def _normalise(text: str) -> str:
    """Lower case, every run of non-alphanumerics (except '&') a single space, padded for word matching."""
    return " " + re.sub(r"[^a-z0-9&]+", " ", text.lower()).strip() + " "


def style_scores(prompt: str | None, tags: Sequence[str] | None) -> dict[str, int]:
    """Keyword hits per style; a tag hit weighs double because tags are deliberate style choices."""
    prompt_text = _normalise(prompt or "")
    tag_text = _normalise(" | ".join(tags or ()))
    scores: dict[str, int] = {}
    for style in STYLES:
        score = 0
        for keyword in style.keywords:
            needle = _normalise(keyword)
            score += prompt_text.count(needle) + 2 * tag_text.count(needle)
        scores[style.name] = score
    return scores


def pick_style(prompt: str | None, tags: Sequence[str] | None) -> Style:
    """The best-scoring style (library order breaks ties), or the fallback when nothing matches."""
    scores = style_scores(prompt, tags)
    best = max(STYLES, key=lambda style: scores[style.name])  # max keeps the first of equals
    return best if scores[best.name] > 0 else FALLBACK_STYLE
