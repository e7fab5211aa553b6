"""The style library as data (26 recipes), and keyword matching that works without the embedding model.

Styles are plain data so that adding or tuning one never touches the composer. Each recipe fixes
tempo range, key/mode tendencies, a progression vocabulary (0-based scale degrees; the first
progression serves verses and A sections, the second choruses and B sections, the third bridges),
drum and bass patterns, chord texture, GM instruments, swing, melodic density, fill kind and mix.
Patterns use a 16-step grid (sixteenth notes of one 4/4 bar):

- drums: one string per instrument, ``X`` accent, ``x`` normal, ``o`` ghost, ``.`` silent;
- chords: ``X``/``x`` onset, ``-`` hold the previous onset, ``.`` rest;
- bass: ``r`` root, ``f`` fifth, ``o`` octave, ``t`` third, ``a`` approach to the next bar's root
  (upper case accents), ``-`` hold, ``.`` rest; or the word ``walk`` for a walking line.

``description`` is what the embedding model reads (see `textmusic.engine.intent`); ``keywords``
are exact words that also pull a prompt towards the style.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# General MIDI drum keys (channel 10).
DRUM_KEYS: Mapping[str, int] = {
    "kick": 36, "rim": 37, "snare": 38, "clap": 39, "tom_lo": 45, "chat": 42, "phat": 44, "ohat": 46,
    "tom_mid": 47, "crash": 49, "tom_hi": 50, "ride": 51, "tamb": 54, "cowbell": 56, "bongo_hi": 60,
    "bongo_lo": 61, "conga_mute": 62, "conga_hi": 63, "conga_lo": 64, "timbale": 65, "cabasa": 69,
    "shaker": 70, "claves": 75,
}

# Scale intervals in semitones above the tonic.
MODES: Mapping[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
}
FILLS = ("toms", "snare", "drop", "none")

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
    chord_mode: str = "block"  # block | strum | arp
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
        for pattern in (*self.drum_patterns, {"chords": self.chord_pattern}):
            for inst, steps in pattern.items():
                if len(steps) != 16:
                    raise ValueError(f"style {self.name}: pattern {inst} is not 16 steps")
                if inst != "chords" and inst not in DRUM_KEYS:
                    raise ValueError(f"style {self.name}: unknown drum {inst}")
        if self.bass_pattern != "walk" and len(self.bass_pattern) != 16:
            raise ValueError(f"style {self.name}: bass pattern is not 16 steps")

    @property
    def text(self) -> str:
        """What the embedding model reads for this style."""
        return f"{self.name.replace('-', ' ')} music: {self.description}"


_HATS8 = "x.x.x.x.x.x.x.x."
_HATS16 = "xoxoxoxoxoxoxoxo"
_FOUR = "X...X...X...X..."
_BACKBEAT = "....X.......X..."

STYLES: tuple[Style, ...] = (
    Style(
        name="lofi-hip-hop", family="beats",
        description="chill mellow lo-fi hip hop beats to study and relax to, dusty jazzy Rhodes chords, "
                    "lazy swung drums, warm vinyl feel, calm night",
        keywords=("lofi", "lo fi", "chillhop", "chill", "study", "beats", "chill beats"),
        bpm_range=(70, 90), modes=("dorian", "minor", "major"), tonics=(0, 2, 5, 7, 9, 10),
        progressions=((3, 2, 1, 0), (1, 4, 0, 5), (0, 5, 1, 4)),
        chord_program=4, bass_program=33, lead_program=11,
        drum_patterns=(
            {"kick": "X......x.x......", "snare": _BACKBEAT, "chat": "x.o.x.o.x.o.x.ox"},
            {"kick": "X.....x...x.....", "snare": "....X..o....X...", "chat": _HATS8},
        ),
        chord_pattern="x-----------x---", bass_pattern="r-----.r--r-----",
        sevenths=True, swing=0.22, density=0.35, fill="none",
        mix=Mix(gains={"drums": 1.0}, room=0.35, reverb_db=-7.0, high_db=-4.0, low_db=1.5, drum_ratio=2.5),
    ),
    Style(
        name="boom-bap", family="beats",
        description="classic 90s boom bap hip hop, hard punchy kick and snare, sampled piano and jazz loops, "
                    "head-nodding rap instrumental",
        keywords=("boom bap", "hip hop", "hiphop", "rap", "90s hip hop", "old school"),
        bpm_range=(86, 96), modes=("minor", "dorian"), tonics=(0, 2, 5, 7, 9),
        progressions=((0, 0, 5, 4), (0, 3, 5, 4), (5, 5, 0, 0)),
        chord_program=0, bass_program=33, lead_program=26, drum_kit=8,
        drum_patterns=(
            {"kick": "X.......X.X.....", "snare": _BACKBEAT, "chat": _HATS8},
            {"kick": "X......xX.X...x.", "snare": "....X......oX...", "chat": "x.xxx.x.x.xxx.x."},
        ),
        chord_pattern="x---...x-.......", bass_pattern="r-.....rr.r.....",
        sevenths=True, swing=0.14, density=0.3, fill="drop",
        mix=Mix(gains={"drums": 2.5, "bass": 1.0}, room=0.3, reverb_db=-9.0, low_db=2.0, drum_ratio=4.0),
    ),
    Style(
        name="trap", family="beats",
        description="dark modern trap beat, booming 808 bass, rapid hi-hat rolls, claps, eerie bells and pads",
        keywords=("trap", "808", "drill", "dark trap", "hi hat rolls"),
        bpm_range=(130, 150), modes=("minor",), tonics=(0, 1, 3, 5, 8),
        progressions=((0, 5, 0, 4), (0, 3, 5, 4), (5, 3, 0, 0)),
        chord_program=89, bass_program=38, lead_program=10, pad_program=91, drum_kit=25,
        drum_patterns=(
            {"kick": "X.........X.....", "clap": "........X.......", "chat": "x.x.x.xxx.x.x.x."},
            {"kick": "X......X..X.....", "clap": "........X.......", "chat": "x.xxx.x.xxxxx.x.",
             "ohat": "......x........."},
        ),
        chord_pattern="x---------------", bass_pattern="R-------..r-----",
        density=0.25, lead_octave=72, fill="drop",
        mix=Mix(gains={"bass": 2.0, "drums": 1.0}, room=0.5, reverb_db=-6.0, low_db=3.0, drum_ratio=3.5),
    ),
    Style(
        name="house", family="electronic",
        description="four on the floor deep house groove for the club, offbeat open hats, warm chord stabs, "
                    "rolling synth bass, dance music",
        keywords=("house", "deep house", "club", "dance", "edm", "disco house"),
        bpm_range=(120, 128), modes=("minor", "dorian"), tonics=(0, 2, 5, 7, 9),
        progressions=((0, 5, 2, 6), (0, 3, 4, 0), (5, 3, 0, 4)),
        chord_program=0, bass_program=38, lead_program=81, pad_program=89, drum_kit=24,
        drum_patterns=(
            {"kick": _FOUR, "clap": "....x.......x...", "ohat": "..x...x...x...x.", "chat": "o.o.o.o.o.o.o.o."},
            {"kick": _FOUR, "clap": "....x.......x..o", "ohat": "..x...x...x...x.", "chat": "oooooooooooooooo"},
        ),
        chord_pattern="..x-..x-..x-..x-", bass_pattern="..r...r...r...r.",
        sevenths=True, density=0.45, fill="snare",
        mix=Mix(gains={"drums": 1.5}, room=0.4, reverb_db=-6.0, low_db=1.5, high_db=1.0),
    ),
    Style(
        name="techno", family="electronic",
        description="hypnotic driving techno, relentless kick drum, rumbling bass, metallic percussion, "
                    "minimal repetitive synth stabs, warehouse rave",
        keywords=("techno", "rave", "warehouse", "minimal techno", "industrial", "berlin"),
        bpm_range=(126, 136), modes=("minor",), tonics=(0, 2, 5, 7, 9),
        progressions=((0, 0, 0, 0), (0, 0, 5, 5), (3, 3, 0, 0)),
        chord_program=90, bass_program=39, lead_program=81, drum_kit=24,
        drum_patterns=(
            {"kick": _FOUR, "ohat": "..x...x...x...x.", "rim": "......x......x..", "chat": _HATS16},
            {"kick": _FOUR, "clap": _BACKBEAT, "ohat": "..x...x...x...x.", "chat": _HATS16},
        ),
        chord_pattern="...x.....x....x.", bass_pattern="..r.r.r...r.r.r.",
        density=0.2, lead_octave=72, fill="drop",
        mix=Mix(gains={"drums": 2.5}, room=0.6, reverb_db=-8.0, low_db=2.0, drum_ratio=4.0),
    ),
    Style(
        name="drum-and-bass", family="electronic",
        description="fast liquid drum and bass, rolling breakbeats at 174 bpm, deep sub bass, lush pads, "
                    "jungle energy",
        keywords=("drum and bass", "drum n bass", "dnb", "d&b", "jungle", "liquid", "breakbeat"),
        bpm_range=(170, 176), modes=("minor", "dorian"), tonics=(0, 2, 5, 7, 9),
        progressions=((0, 5, 3, 4), (5, 3, 0, 4), (3, 4, 0, 0)),
        chord_program=4, bass_program=38, lead_program=81, pad_program=89, drum_kit=24,
        drum_patterns=(
            {"kick": "X.........X.....", "snare": _BACKBEAT, "chat": _HATS8},
            {"kick": "X.........XX....", "snare": "....X..o.o..X...", "chat": "x.xxx.x.x.xxx.xx"},
        ),
        chord_pattern="x-------x-------", bass_pattern="r-----r---r-----",
        sevenths=True, bars_per_chord=2, density=0.35, fill="snare",
        mix=Mix(gains={"drums": 1.5, "bass": 1.0}, room=0.55, reverb_db=-5.0, high_db=1.0),
    ),
    Style(
        name="synthwave", family="electronic",
        description="nostalgic 80s synthwave retrowave, neon night drive, arpeggiated analog synths, "
                    "gated snare, outrun",
        keywords=("synthwave", "retrowave", "outrun", "retro", "80s", "vaporwave", "cyberpunk", "neon", "synth"),
        bpm_range=(84, 118), modes=("minor",), tonics=(9, 4, 2, 7, 0),
        progressions=((0, 5, 2, 6), (5, 3, 0, 4), (0, 3, 5, 4)),
        chord_program=80, bass_program=38, lead_program=81, pad_program=89, drum_kit=24,
        drum_patterns=(
            {"kick": _FOUR, "snare": _BACKBEAT, "chat": _HATS8},
            {"kick": "X...X...X...X.x.", "snare": _BACKBEAT, "chat": "xxxxxxxxxxxxxxxx"},
        ),
        chord_pattern="xxxxxxxxxxxxxxxx", bass_pattern="r-r-r-r-r-r-r-r-",
        chord_mode="arp", density=0.4, fill="snare",
        mix=Mix(sends={"drums": 0.2}, room=0.7, reverb_db=-4.0, high_db=1.0),
    ),
    Style(
        name="chiptune", family="electronic",
        description="8-bit chiptune video game music, square wave melodies, fast arpeggios, retro console "
                    "soundtrack, playful",
        keywords=("chiptune", "8 bit", "8bit", "16 bit", "video game", "game", "arcade", "nintendo", "pixel"),
        bpm_range=(130, 160), modes=("major", "minor"), tonics=(0, 2, 4, 7, 9),
        progressions=((0, 5, 3, 4), (0, 4, 5, 3), (3, 4, 0, 0)),
        chord_program=80, bass_program=87, lead_program=80, drum_kit=24,
        drum_patterns=(
            {"kick": "X.......X.......", "snare": _BACKBEAT, "chat": _HATS8},
            {"kick": "X.....X.X.......", "snare": "....X.......X.X.", "chat": _HATS16},
        ),
        chord_pattern="xxxxxxxxxxxxxxxx", bass_pattern="r.o.r.o.r.o.r.o.",
        chord_mode="arp", density=0.65, lead_octave=72, fill="snare",
        levels={"chords": 70, "bass": 96, "lead": 96, "pad": 60, "drums": 100},
        mix=Mix(sends={"drums": 0.0, "harmony": 0.05, "lead": 0.08}, room=0.2, reverb_db=-14.0, glue_ratio=1.3),
    ),
    Style(
        name="ambient", family="atmospheric",
        description="ambient drone soundscape, slowly evolving ethereal pads, spacious and atmospheric, "
                    "floating in space, no beat",
        keywords=("ambient", "drone", "atmospheric", "ethereal", "space", "soundscape", "dreamy"),
        bpm_range=(60, 80), modes=("lydian", "major", "minor"), tonics=(0, 2, 4, 7, 9),
        progressions=((0, 3), (0, 5, 3, 4), (5, 3)),
        chord_program=11, bass_program=88, lead_program=8, pad_program=89,
        drum_patterns=(), chord_pattern="x...x...x...x...", bass_pattern="r---------------",
        chord_mode="arp", bars_per_chord=2, density=0.18, fill="none",
        levels={"chords": 78, "bass": 84, "lead": 90, "pad": 84, "drums": 100},
        mix=Mix(sends={"harmony": 0.5, "lead": 0.6, "bass": 0.2}, room=0.92, damping=0.3, reverb_db=0.0,
                high_db=-1.0, glue_ratio=1.2),
    ),
    Style(
        name="meditation", family="atmospheric",
        description="peaceful meditation and yoga music, gentle sustained pads, soft harp and kalimba, "
                    "healing, sleep, mindfulness, slow breathing",
        keywords=("meditation", "meditative", "yoga", "sleep", "relax", "relaxing", "healing", "spa", "calm",
                  "mindfulness", "zen"),
        bpm_range=(56, 70), modes=("major", "lydian"), tonics=(0, 2, 5, 7),
        progressions=((0, 3, 0, 4), (3, 0), (5, 3, 0, 0)),
        chord_program=46, bass_program=89, lead_program=108, pad_program=88,
        drum_patterns=(), chord_pattern="x...x...x...x...", bass_pattern="r---------------",
        chord_mode="arp", bars_per_chord=4, density=0.15, lead_octave=72, fill="none",
        levels={"chords": 80, "bass": 72, "lead": 92, "pad": 80, "drums": 90},
        mix=Mix(sends={"harmony": 0.45, "lead": 0.55, "bass": 0.2}, room=0.85, damping=0.6, reverb_db=-1.0,
                high_db=-2.5, glue_ratio=1.2),
    ),
    Style(
        name="cinematic-orchestral", family="orchestral",
        description="cinematic orchestral film score, sweeping strings, noble french horns, choir, "
                    "emotional movie soundtrack",
        keywords=("cinematic", "orchestral", "orchestra", "film", "movie", "soundtrack", "score", "symphonic"),
        bpm_range=(70, 110), modes=("minor", "major"), tonics=(2, 7, 0, 5),
        progressions=((0, 5, 2, 6), (0, 3, 5, 4), (5, 3, 0, 4)),
        chord_program=48, bass_program=42, lead_program=60, pad_program=52, drum_kit=48,
        drum_patterns=(
            {"kick": "X.......X.....x.", "snare": "....x.......x..."},
            {"kick": "X.....x.X.....x.", "snare": "....x.......x.oo", "tom_lo": "X.......X......."},
        ),
        chord_pattern="x-------x-------", bass_pattern="r-------r---f---",
        density=0.3, lead_octave=60, fill="toms",
        mix=Mix(sends={"harmony": 0.4, "lead": 0.4, "drums": 0.3, "bass": 0.15}, room=0.8, reverb_db=-2.0,
                drum_ratio=2.0, glue_ratio=1.3),
    ),
    Style(
        name="epic-trailer", family="orchestral",
        description="epic trailer music, massive taiko drums, pounding string ostinato, huge brass hits, "
                    "heroic battle choir, powerful build",
        keywords=("epic", "trailer", "heroic", "battle", "war", "powerful", "taiko", "hybrid orchestral"),
        bpm_range=(90, 120), modes=("minor",), tonics=(2, 4, 7, 9),
        progressions=((0, 5, 3, 4), (0, 5, 6, 4), (5, 6, 0, 0)),
        chord_program=48, bass_program=43, lead_program=61, pad_program=52, drum_kit=48,
        drum_patterns=(
            {"tom_lo": "X.....x.X...x...", "kick": "X.......X.......", "snare": "....X.......X..."},
            {"tom_lo": "X..x..x.X..x..x.", "tom_mid": "....x.......x.xx", "kick": "X...X...X...X...",
             "snare": "....X.......X..."},
        ),
        chord_pattern="xxxxxxxxxxxxxxxx", bass_pattern="R-r-r-r-R-r-r-r-",
        chord_mode="arp", density=0.25, lead_octave=60, fill="toms",
        levels={"chords": 80, "bass": 104, "lead": 104, "pad": 72, "drums": 118},
        mix=Mix(gains={"drums": 2.0}, sends={"harmony": 0.35, "lead": 0.35, "drums": 0.35}, room=0.85,
                reverb_db=-2.0, low_db=2.0, drum_ratio=3.0, glue_ratio=2.0),
    ),
    Style(
        name="classical-strings", family="orchestral",
        description="elegant classical string quartet, violin melody over viola and cello, baroque and "
                    "romantic chamber music, refined",
        keywords=("classical", "string quartet", "strings", "chamber", "baroque", "violin", "elegant"),
        bpm_range=(70, 110), modes=("major", "minor"), tonics=(2, 7, 0, 9, 4),
        progressions=((0, 3, 4, 0), (0, 5, 1, 4), (5, 1, 4, 0)),
        chord_program=41, bass_program=42, lead_program=40,
        drum_patterns=(), chord_pattern="x.x.x.x.x.x.x.x.", bass_pattern="r---r---r---r---",
        chord_mode="arp", density=0.55, lead_octave=72, fill="none",
        levels={"chords": 76, "bass": 92, "lead": 100, "pad": 60, "drums": 100},
        mix=Mix(sends={"harmony": 0.35, "lead": 0.35, "bass": 0.25}, room=0.7, reverb_db=-3.0, glue_ratio=1.2),
    ),
    Style(
        name="piano-ballad", family="acoustic",
        description="emotional solo piano ballad, tender and heartfelt, gentle broken chords, soft strings, "
                    "sad and romantic",
        keywords=("piano", "ballad", "piano ballad", "emotional", "sad", "romantic", "tender", "heartfelt"),
        bpm_range=(60, 80), modes=("major", "minor"), tonics=(0, 3, 5, 8, 10),
        progressions=((0, 4, 5, 3), (3, 4, 2, 5), (5, 3, 0, 4)),
        chord_program=0, bass_program=0, lead_program=0, pad_program=48, drum_kit=40,
        drum_patterns=({"kick": "X.......X.......", "rim": _BACKBEAT},),
        chord_pattern="x.x.x.x.x.x.x.x.", bass_pattern="r-------f-------",
        chord_mode="arp", density=0.35, lead_octave=72, fill="none",
        levels={"chords": 84, "bass": 88, "lead": 100, "pad": 52, "drums": 72},
        mix=Mix(sends={"harmony": 0.35, "lead": 0.35, "bass": 0.2}, room=0.65, reverb_db=-3.0, glue_ratio=1.3),
    ),
    Style(
        name="acoustic-folk", family="acoustic",
        description="warm acoustic folk, strummed steel-string guitar, fiddle, stomps and claps, campfire "
                    "singer songwriter, americana",
        keywords=("folk", "acoustic", "country", "singer songwriter", "campfire", "americana", "bluegrass",
                  "indie folk", "unplugged"),
        bpm_range=(80, 120), modes=("major", "mixolydian"), tonics=(7, 2, 9, 0, 4),
        progressions=((0, 3, 0, 4), (0, 5, 3, 4), (0, 4, 5, 3)),
        chord_program=25, bass_program=32, lead_program=40, drum_kit=40,
        drum_patterns=(
            {"kick": "X.......X.......", "snare": "....x.......x...", "shaker": "o.x.o.x.o.x.o.x."},
            {"kick": "X.....x.X.......", "snare": "....x.......x...", "tamb": "....x.......x..."},
        ),
        chord_pattern="x-x-.xx-x-x-.xx-", bass_pattern="r---f---r---f---",
        chord_mode="strum", swing=0.1, density=0.45, fill="snare",
        mix=Mix(room=0.45, reverb_db=-6.0, drum_ratio=2.0),
    ),
    Style(
        name="indie-rock", family="rock",
        description="jangly indie rock band, clean chiming electric guitars, driving bass and drums, "
                    "alternative college radio, youthful",
        keywords=("indie", "indie rock", "alternative", "alt rock", "garage", "jangle", "band"),
        bpm_range=(110, 140), modes=("major", "mixolydian", "minor"), tonics=(4, 9, 2, 7, 0),
        progressions=((0, 4, 5, 3), (3, 0, 4, 5), (5, 3, 0, 4)),
        chord_program=27, bass_program=34, lead_program=29, drum_kit=8,
        drum_patterns=(
            {"kick": "X.....x.X.......", "snare": _BACKBEAT, "chat": _HATS8},
            {"kick": "X.x...x.X.x.....", "snare": _BACKBEAT, "ride": _HATS8},
        ),
        chord_pattern="x-x-x-x-x-x-x-x-", bass_pattern="r-r-r-r-r-r-f-f-",
        chord_mode="strum", density=0.45, lead_octave=64, fill="toms",
        mix=Mix(gains={"drums": 1.0}, room=0.5, reverb_db=-6.0, high_db=1.0),
    ),
    Style(
        name="rock", family="rock",
        description="heavy hard rock and metal, distorted power chord riffs, pounding drums, guitar solo, "
                    "loud and aggressive",
        keywords=("rock", "heavy", "metal", "grunge", "riff", "guitar", "hard rock", "distorted"),
        bpm_range=(100, 150), modes=("minor", "mixolydian", "major"), tonics=(4, 9, 2, 7),
        progressions=((0, 5, 2, 6), (0, 3, 4, 3), (0, 6, 3, 0)),
        chord_program=29, bass_program=34, lead_program=30, drum_kit=16,
        drum_patterns=(
            {"kick": "X.....x.X.x.....", "snare": _BACKBEAT, "chat": _HATS8},
            {"kick": "X.x...x.X.x...x.", "snare": _BACKBEAT, "ride": _HATS8},
        ),
        chord_pattern="x-x-x-x-x-x-x-x-", bass_pattern="R-r-r-r-R-r-r-r-",
        chord_mode="strum", density=0.5, lead_octave=64, fill="toms",
        mix=Mix(gains={"drums": 1.5}, room=0.4, reverb_db=-8.0, low_db=1.0, drum_ratio=4.0, glue_ratio=2.0),
    ),
    Style(
        name="punk", family="rock",
        description="fast loud punk rock, buzzing distorted guitars, frantic drums, raw rebellious energy",
        keywords=("punk", "pop punk", "hardcore", "skate punk", "fast", "rebellious"),
        bpm_range=(160, 200), modes=("major",), tonics=(4, 9, 2, 7, 0),
        progressions=((0, 4, 5, 3), (0, 3, 4, 4), (5, 3, 0, 4)),
        chord_program=30, bass_program=34, lead_program=30, drum_kit=16,
        drum_patterns=(
            {"kick": "X.x.X.x.X.x.X.x.", "snare": "....X.......X...", "chat": _HATS8},
            {"kick": "X...X...X...X...", "snare": "..X...X...X...X.", "crash": "X..............."},
        ),
        chord_pattern="x.x.x.x.x.x.x.x.", bass_pattern="r.r.r.r.r.r.r.r.",
        chord_mode="strum", density=0.4, lead_octave=64, fill="snare",
        mix=Mix(gains={"drums": 1.0}, room=0.3, reverb_db=-10.0, low_db=1.0, drum_ratio=4.0, glue_ratio=2.2),
    ),
    Style(
        name="pop", family="pop",
        description="catchy upbeat modern pop song, bright piano and synths, punchy drums, radio hit, "
                    "happy summer anthem",
        keywords=("pop", "catchy", "upbeat", "radio", "happy", "summer", "anthem", "feel good"),
        bpm_range=(96, 124), modes=("major",), tonics=(0, 2, 4, 5, 7, 9),
        progressions=((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4)),
        chord_program=0, bass_program=33, lead_program=80, pad_program=48,
        drum_patterns=(
            {"kick": "X.......X.x.....", "snare": _BACKBEAT, "chat": _HATS8},
            {"kick": "X...x...X...x...", "clap": _BACKBEAT, "chat": "x.xxx.x.x.xxx.x."},
        ),
        chord_pattern="x---x---x---x---", bass_pattern="r-.r..r-r-.r..f-",
        density=0.5, fill="snare",
        mix=Mix(room=0.45, reverb_db=-6.0, high_db=1.5, low_db=1.0),
    ),
    Style(
        name="corporate-upbeat", family="pop",
        description="positive corporate background music, uplifting and motivational, bright plucked guitar "
                    "and piano, claps, business presentation, inspiring advert",
        keywords=("corporate", "uplifting", "motivational", "inspiring", "business", "advert", "commercial",
                  "presentation", "positive", "background"),
        bpm_range=(108, 124), modes=("major",), tonics=(0, 2, 7, 9),
        progressions=((0, 4, 5, 3), (3, 4, 0, 5), (5, 3, 4, 4)),
        chord_program=25, bass_program=33, lead_program=9, pad_program=48,
        drum_patterns=(
            {"kick": "X.......X.......", "clap": _BACKBEAT, "shaker": _HATS16},
            {"kick": "X...X...X...X...", "clap": _BACKBEAT, "chat": _HATS8, "tamb": "..x...x...x...x."},
        ),
        chord_pattern="x.x.x.x.x.x.x.x.", bass_pattern="r.r.r.r.r.r.r.r.",
        chord_mode="arp", density=0.4, lead_octave=79, fill="snare",
        mix=Mix(room=0.4, reverb_db=-7.0, high_db=2.0),
    ),
    Style(
        name="funk", family="groove",
        description="tight funky groove, slap bass, muted guitar scratches, brass stabs, syncopated drums, "
                    "disco and soul",
        keywords=("funk", "funky", "groove", "disco", "slap", "groovy"),
        bpm_range=(95, 115), modes=("dorian", "mixolydian"), tonics=(4, 9, 2, 7),
        progressions=((0, 0, 3, 3), (0, 3, 0, 4), (1, 4, 0, 0)),
        chord_program=28, bass_program=36, lead_program=61,
        drum_patterns=(
            {"kick": "X..x..x...X..x..", "snare": "....X..o.o..X..o", "chat": "XxoxXxoxXxoxXxox"},
            {"kick": "X.x...x...X.....", "snare": "....X..o....X.o.", "chat": "xxxxxxxxxxxxxxox"},
        ),
        chord_pattern="..x.x..x..x.x..x", bass_pattern="R..o..r.r.f..o.a",
        sevenths=True, swing=0.08, density=0.55, fill="snare",
        mix=Mix(gains={"bass": 1.0}, room=0.35, reverb_db=-9.0, drum_ratio=3.5),
    ),
    Style(
        name="rnb-soul", family="groove",
        description="smooth neo soul and r&b, silky electric piano with rich seventh chords, laid back "
                    "swung groove, sensual late night",
        keywords=("rnb", "r&b", "soul", "neo soul", "motown", "smooth", "sensual", "slow jam"),
        bpm_range=(68, 90), modes=("dorian", "major"), tonics=(3, 5, 8, 10, 1),
        progressions=((1, 4, 0, 5), (3, 2, 1, 4), (5, 4, 3, 2)),
        chord_program=4, bass_program=33, lead_program=65, pad_program=89,
        drum_patterns=(
            {"kick": "X......x..X.....", "snare": _BACKBEAT, "chat": "x.x.x.xxx.x.x.x."},
            {"kick": "X..x......X..x..", "clap": _BACKBEAT, "chat": _HATS16},
        ),
        chord_pattern="x-----x---x-----", bass_pattern="r---..r-r---.a--",
        sevenths=True, swing=0.18, density=0.4, lead_octave=67, fill="none",
        mix=Mix(room=0.5, reverb_db=-6.0, high_db=-1.0, low_db=1.5),
    ),
    Style(
        name="jazz", family="jazz",
        description="swinging acoustic jazz trio, walking upright bass, ride cymbal, piano comping, "
                    "tenor sax, smoky lounge bar standards",
        keywords=("jazz", "swing", "bebop", "trio", "jazz trio", "lounge", "smooth jazz", "piano bar", "standards",
                  "saxophone"),
        bpm_range=(100, 160), modes=("major", "dorian"), tonics=(5, 10, 3, 0, 7),
        progressions=((1, 4, 0, 5), (0, 5, 1, 4), (2, 5, 1, 4)),
        chord_program=0, bass_program=32, lead_program=66, drum_kit=32,
        drum_patterns=(
            {"ride": "X...x.x.X...x.x.", "phat": "....x.......x...", "kick": "o.......o......."},
            {"ride": "X...x.x.X...x.x.", "phat": "....x.......x...", "snare": "..........o...o."},
        ),
        chord_pattern="x-.....x-.x-....", bass_pattern="walk",
        sevenths=True, swing=0.33, swing_unit=8, density=0.6, lead_octave=60, fill="snare",
        mix=Mix(sends={"drums": 0.15}, room=0.5, reverb_db=-6.0, drum_ratio=1.5, glue_ratio=1.3),
    ),
    Style(
        name="blues", family="jazz",
        description="twelve bar shuffle blues, soulful harmonica and guitar, organ, slow gritty groove, "
                    "delta and chicago blues",
        keywords=("blues", "shuffle", "twelve bar", "12 bar", "delta", "chicago blues", "harmonica"),
        bpm_range=(70, 100), modes=("mixolydian",), tonics=(4, 9, 7, 2, 0),
        progressions=((0, 0, 0, 0, 3, 3, 0, 0, 4, 3, 0, 4), (3, 3, 0, 0, 4, 3, 0, 4), (4, 3, 0, 0)),
        chord_program=16, bass_program=33, lead_program=22, drum_kit=8,
        drum_patterns=(
            {"kick": "X.......X.......", "snare": _BACKBEAT, "ride": "x...x.x.x...x.x."},
            {"kick": "X.....x.X.......", "snare": _BACKBEAT, "chat": "x...x.x.x...x.x."},
        ),
        chord_pattern="x-.x..x-x-.x..x-", bass_pattern="r-.t..f-o-.f..t-",
        sevenths=True, swing=0.33, swing_unit=8, density=0.45, lead_octave=67, fill="snare",
        mix=Mix(room=0.45, reverb_db=-7.0, high_db=-1.0),
    ),
    Style(
        name="reggae", family="groove",
        description="laid back roots reggae, one drop drums, offbeat guitar skank, deep dub bass, island "
                    "sunshine, jamaica",
        keywords=("reggae", "dub", "ska", "dancehall", "one drop", "jamaica", "island", "rasta"),
        bpm_range=(68, 84), modes=("major", "minor"), tonics=(0, 2, 7, 9),
        progressions=((0, 3, 0, 4), (0, 5, 3, 4), (3, 4, 0, 0)),
        chord_program=27, bass_program=33, lead_program=56, pad_program=16, drum_kit=8,
        drum_patterns=(
            {"kick": "........X.......", "rim": "........X.......", "chat": "x.x.x.x.x.x.x.x."},
            {"kick": "X.......X.......", "snare": "........X.......", "chat": "x.xxx.x.x.xxx.x."},
        ),
        chord_pattern="....x-......x-..", bass_pattern="r--.......r.f.o.",
        swing=0.12, density=0.35, fill="none",
        levels={"chords": 88, "bass": 110, "lead": 92, "pad": 56, "drums": 104},
        mix=Mix(gains={"bass": 2.0}, sends={"drums": 0.25}, room=0.5, reverb_db=-5.0, low_db=2.0),
    ),
    Style(
        name="latin", family="world",
        description="latin bossa nova and salsa, nylon guitar, congas and claves, flute melody, sunny "
                    "brazilian and cuban rhythm",
        keywords=("latin", "bossa", "bossa nova", "salsa", "samba", "brazilian", "cuban", "tango", "mambo",
                  "cumbia"),
        bpm_range=(96, 120), modes=("minor", "major", "dorian"), tonics=(0, 2, 5, 7, 9),
        progressions=((1, 4, 0, 0), (0, 3, 1, 4), (5, 1, 4, 0)),
        chord_program=24, bass_program=32, lead_program=73,
        drum_patterns=(
            {"claves": "X..X...X..X.X...", "conga_mute": "..x...x...x...x.", "conga_hi": "...x..x....x..xx",
             "kick": "X..x....X..x....", "shaker": _HATS16},
            {"claves": "..X.X...X..X..X.", "conga_lo": "x.....x.x.....x.", "conga_hi": "..xx..x...xx..x.",
             "timbale": "x.xx.x.xx.x.x.x.", "kick": "X..x....X..x...."},
        ),
        chord_pattern="x..x..x...x..x..", bass_pattern="r..f....r..f....",
        sevenths=True, density=0.5, fill="none",
        mix=Mix(room=0.45, reverb_db=-7.0, high_db=1.0, drum_ratio=2.0),
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
