"""The style library, read from data files, and keyword matching that works without the embedding model.

Styles are plain data (``data/styles/<family>.toml``, one table per style, one file per family, read
into the checked `Style` dataclass) so that adding or tuning one never touches the composer. Each recipe fixes
tempo range, key/mode tendencies, a progression vocabulary (0-based scale degrees; the first
progression serves verses and A sections, the second choruses and B sections, the third bridges),
drum and bass patterns, chord texture, GM instruments, swing, melodic density, fill kind and mix.
Patterns use a 16-step grid (sixteenth notes of one 4/4 bar):

- drums: one string per instrument, ``X`` accent, ``x`` normal, ``o`` ghost, ``r`` a roll (two
  thirty-seconds, the trap hi-hat roll), ``.`` silent;
- chords: ``X``/``x`` onset, ``m`` a palm-muted chug (short root and fifth low on the guitar), ``-`` hold
  the previous onset, ``.`` rest;
- bass: ``r`` root, ``f`` fifth, ``o`` octave, ``t`` third, ``a`` approach to the next bar's root
  (upper case accents), ``-`` hold, ``.`` rest; or the word ``walk`` for a walking line.

Chord modes (``chord_mode``): ``block``, ``strum``, ``arp``, ``power`` (root, fifth and octave low on the
neck, strummed: distorted rock), ``chop`` (the hits cycle through slices of the chord, as a producer
chops a sampled loop). ``lead_scale`` colours the instrumental lead: ``blues`` (minor pentatonic with
the flat five over any chord, bends approximated by grace notes into and out of the blue notes) or
``pentatonic`` (major pentatonic with slides into the third). ``continuous`` lets the progression run
on across section boundaries, so a 12-bar blues keeps its cycle (an intro is the turnaround).

``description`` is what the embedding model reads (see `textmusic.engine.intent`); ``keywords``
are exact words that also pull a prompt towards the style.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# General MIDI drum keys (channel 10).
DRUM_KEYS: Mapping[str, int] = {
    "kick": 36, "rim": 37, "snare": 38, "clap": 39, "tom_lo": 45, "chat": 42, "phat": 44, "ohat": 46,
    "kick2": 35, "tom_mid": 47, "crash": 49, "tom_hi": 50, "ride": 51, "tamb": 54, "cowbell": 56, "bongo_hi": 60,
    "bongo_lo": 61, "conga_mute": 62, "conga_hi": 63, "conga_lo": 64, "timbale": 65, "cabasa": 69,
    "shaker": 70, "claves": 75,
}
# Kits whose tom keys are timpani, chromatic from the key given (the orchestra kit, 48: F2 on key 41 up to F3 on
# 53, measured on FluidR3). Timpani are tuned to the piece's key: the composer plays them on the tonic and fifth
# (compose._drum_key), never on the fixed GM tom pitches (the low tom is an A: a minor ninth in G# minor).
TIMPANI_KITS: Mapping[int, int] = {48: 41}
TIMPANI_SPAN = 12  # semitones above the lowest timpano still in the kit
# Drums that ring at a definite pitch, by kit: key -> the pitch they sound (a MIDI note, fractional; measured on
# FluidR3 after the attack): the 808's boom (kit 25) and the orchestra kit's concert bass drums (48). Untuned, their
# boom sits wherever the sample was recorded (the 808 near G#1: the major third of E minor); a producer tunes
# them to the key, as the composer does (compose._drum_tuning: the tonic or the fifth, whichever is nearer).
PITCHED_DRUMS: Mapping[int, Mapping[int, float]] = {25: {36: 31.7, 35: 30.6}, 48: {36: 29.3, 35: 28.3}}

# Scale intervals in semitones above the tonic.
MODES: Mapping[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
}
FILLS = ("toms", "snare", "drop", "none")
CHORD_MODES = ("block", "strum", "arp", "power", "chop")
LEAD_SCALES = ("", "blues", "pentatonic")
DRUM_SYMBOLS = frozenset("Xxor.")
CHORD_SYMBOLS = frozenset("Xxm-.")
CHORD_PARTS = ("chords", "chorus", "verse")  # the chord patterns a style may give, by section

DrumPattern = Mapping[str, str]


@dataclass(frozen=True)
class Mix:
    """A style's mix recipe: bus gains (dB), reverb sends (0-1), room, EQ tilt and compression."""

    gains: Mapping[str, float] = field(default_factory=dict)
    sends: Mapping[str, float] = field(default_factory=dict)
    room: float = 0.45  # reverb room size 0-1
    damping: float = 0.5
    reverb_db: float = -4.0  # reverb return level
    low_db: float = 0.0  # master low shelf at 120 Hz
    high_db: float = 0.0  # master high shelf at 6 kHz
    drum_ratio: float = 3.0  # drum-bus compression
    glue_ratio: float = 1.6  # master-bus compression
    # Sidechain pumping (EDM/house): the buses below duck by up to `duck_db` on each kick (keyed on the
    # drum bus's lows), recovering over `duck_release` seconds; 0 dB is off.
    duck_db: float = 0.0
    duck_release: float = 0.18
    duck_buses: tuple[str, ...] = ("bass", "harmony", "lead")
    # The band leaves room for the voice: while the lead vocal sings, the harmony and lead buses sit this much
    # lower (a vocal-keyed sidechain, as a mixer rides the guitars and keys under a verse); 0 dB is off.
    vocal_duck_db: float = 4.0
    tape_drive: float = 0.0  # tape saturation on every bus (0 off, ~1-3 audible)
    lowpass_hz: float = 0.0  # master low-pass, 12 dB/octave (0 off)
    vinyl_db: float = 0.0  # vinyl crackle: its loudest click in dB below the dry mix's peak (0 off), hiss under it
    # The music bed (harmony and lead buses) as a sampled loop: its own low-pass (12 dB/octave, 0 off) and
    # saturation (like tape_drive), the drums and bass left full-range and clean (hip hop's dusty sample).
    bed_lowpass_hz: float = 0.0
    bed_drive: float = 0.0

    def __post_init__(self) -> None:
        if (min(self.duck_db, self.vocal_duck_db, self.tape_drive, self.lowpass_hz, self.bed_lowpass_hz,
                self.bed_drive) < 0 or self.duck_release <= 0):
            raise ValueError(f"mix: duck_db, vocal_duck_db, tape_drive and the low-passes must be >= 0 and "
                             f"duck_release > 0: {self}")
        if self.vinyl_db > 0:
            raise ValueError(f"mix: vinyl_db is a level below the mix (negative dB, 0 off): {self}")
        object.__setattr__(self, "duck_buses", tuple(self.duck_buses))  # a TOML list is a tuple here

    def gain(self, bus: str) -> float:
        return self.gains.get(bus, 0.0)

    def send(self, bus: str) -> float:
        return self.sends.get(bus, DEFAULT_SENDS.get(bus, 0.1))


DEFAULT_SENDS: Mapping[str, float] = {"drums": 0.08, "bass": 0.0, "harmony": 0.22, "lead": 0.28, "vocal": 0.3}


@dataclass(frozen=True)
class Style:
    """Everything the composer needs to know about a genre; progressions are 0-based scale degrees."""

    name: str
    family: str
    description: str
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
    chord_mode: str = "block"  # see CHORD_MODES
    chorus_pattern: str = ""  # the chords of choruses and B sections (default: chord_pattern)
    verse_pattern: str = ""  # the chords under a sung verse, the band dropping back (default: chord_pattern)
    chord_gate: float = 0.92  # how much of a chord hit's length sounds (short: stabs, skanks, chops)
    humanize: float = 1.0  # velocity jitter scale (0: a sampled loop, every bar alike)
    lead_scale: str = ""  # see LEAD_SCALES ("": the mode's own scale)
    call_response: bool = False  # instrumental answers played by the chord instrument, the comping resting
    continuous: bool = False  # the progression runs on across sections (a 12-bar blues)
    bass_glide: bool = False  # an 808: a long bass note glides (pitch wheel) into the next note's pitch
    sevenths: bool = False
    bars_per_chord: int = 1
    swing: float = 0.0  # fraction of a swing unit the off-beats are delayed by
    swing_unit: int = 16  # 16: swung sixteenths, 8: swung eighths
    density: float = 0.5  # lead notes per available eighth, roughly
    lead_octave: int = 67  # MIDI note the lead's tonic is placed nearest to
    fill: str = "toms"  # what the drums do in the last bar of a section (see FILLS)
    voice: str = "male"  # the singer when the prompt names none: "male" | "female"
    levels: Mapping[str, int] = field(
        default_factory=lambda: {"chords": 88, "bass": 104, "lead": 96, "pad": 64, "drums": 108}
    )
    mix: Mix = field(default_factory=Mix)

    def __post_init__(self) -> None:
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"style {self.name}: unknown mode {mode}")
        if self.voice not in ("male", "female"):
            raise ValueError(f"style {self.name}: unknown voice {self.voice}")
        if self.fill not in FILLS:
            raise ValueError(f"style {self.name}: unknown fill {self.fill}")
        if self.chord_mode not in CHORD_MODES:
            raise ValueError(f"style {self.name}: unknown chord mode {self.chord_mode}")
        if self.lead_scale not in LEAD_SCALES:
            raise ValueError(f"style {self.name}: unknown lead scale {self.lead_scale}")
        if not self.progressions or not all(self.progressions):
            raise ValueError(f"style {self.name}: empty progression")
        if not 0.05 <= self.chord_gate <= 1.0 or not 0.0 <= self.humanize <= 2.0:
            raise ValueError(f"style {self.name}: chord_gate or humanize out of range")
        chords = {"chords": self.chord_pattern, "chorus": self.chorus_pattern, "verse": self.verse_pattern}
        chords = {name: steps for name, steps in chords.items() if steps}
        for pattern in (*self.drum_patterns, chords):
            for inst, steps in pattern.items():
                if len(steps) != 16:
                    raise ValueError(f"style {self.name}: pattern {inst} is not 16 steps")
                if inst not in CHORD_PARTS and inst not in DRUM_KEYS:
                    raise ValueError(f"style {self.name}: unknown drum {inst}")
                symbols = CHORD_SYMBOLS if inst in CHORD_PARTS else DRUM_SYMBOLS
                if not set(steps) <= symbols:
                    raise ValueError(f"style {self.name}: pattern {inst} has symbols outside {sorted(symbols)}")
        if self.bass_pattern != "walk" and len(self.bass_pattern) != 16:
            raise ValueError(f"style {self.name}: bass pattern is not 16 steps")

    @property
    def text(self) -> str:
        """What the embedding model reads for this style."""
        return f"{self.name.replace('-', ' ')} music: {self.description}"


STYLE_DIR = Path(__file__).with_name("data") / "styles"
# One TOML file per family, read in this order (the library order, which breaks keyword ties).
FAMILIES = ("beats", "electronic", "atmospheric", "orchestral", "acoustic", "rock", "pop", "groove", "jazz",
            "world")
_TUPLES = ("keywords", "bpm_range", "modes", "tonics")


def _style(name: str, family: str, table: Mapping[str, Any]) -> Style:
    """One TOML table as a checked `Style` (lists become tuples; the `mix` table a `Mix`)."""
    fields = dict(table)
    try:
        mix = Mix(**fields.pop("mix", {}))
        for key in _TUPLES:
            if key in fields:
                fields[key] = tuple(fields[key])
        if "progressions" in fields:
            fields["progressions"] = tuple(tuple(p) for p in fields["progressions"])
        if "drum_patterns" in fields:
            fields["drum_patterns"] = tuple(dict(p) for p in fields["drum_patterns"])
        return Style(name=name, family=family, mix=mix, **fields)
    except TypeError as error:  # an unknown or missing field
        raise ValueError(f"style {name} ({family}.toml): {error}") from None


def load_styles(directory: Path = STYLE_DIR) -> tuple[Style, ...]:
    """Every style of every family file, in FAMILIES order then file order; a stray file is an error."""
    stray = {path.stem for path in directory.glob("*.toml")} - set(FAMILIES)
    if stray:
        raise ValueError(f"style files of unknown families: {sorted(stray)} (add them to FAMILIES)")
    styles: list[Style] = []
    for family in FAMILIES:
        with (directory / f"{family}.toml").open("rb") as handle:
            tables = tomllib.load(handle)
        styles += [_style(name, family, table) for name, table in tables.items()]
    names = [style.name for style in styles]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate style names: {sorted({n for n in names if names.count(n) > 1})}")
    return tuple(styles)


STYLES: tuple[Style, ...] = load_styles()

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
