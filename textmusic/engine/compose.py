"""Seeded composition: a request becomes a Score of note events in beats, ready for any renderer.

Everything random comes from one ``numpy.random.default_rng(request.seed)`` so a request always
composes the same music. Times are kept in absolute beats; the renderer turns a beat into a sample
position with ``Score.beat_to_sample`` so nothing drifts over a long song.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from textmusic.contract import DEFAULT_DURATION_MAX_SECONDS, RENDER_TAIL_MAX_SECONDS, TextToMusicRequest
from textmusic.engine.intent import Intent, blend, resolve_intent
from textmusic.engine.styles import DRUM_KEYS, MODES, Style

BEATS_PER_BAR = 4
STEPS_PER_BAR = 16
RING_SECONDS = 3.0  # how long the final chord rings past the last bar
FADE_SECONDS = 0.5  # fade-out at the very end of the audio
EDGE_SECONDS = 0.1  # margin kept inside the allowed length window (lossy encoders pad a little)
INSTRUMENTAL_SECONDS = (90.0, 180.0)  # range of an instrumental's seeded length when none is asked

# MIDI channels by role; drums sit on GM channel 10 (index 9).
CHORDS, BASS, LEAD, PAD, VOCAL, DRUMS = 0, 1, 2, 3, 4, 9  # VOCAL notes are sung, never sent to the synth
VOCAL_TONIC = {"male": 52, "female": 64}  # the tonic nearest this MIDI note; the melody spans -2..7 degrees
MELISMA_PROBABILITY = 0.5  # a line's last syllable sung over two notes
PANS = {"chords": 48, "bass": 64, "lead": 74, "pad": 84, "drums": 64}

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
ENERGY = {
    "intro": 0.35, "outro": 0.4, "A": 0.7, "B": 0.9, "A'": 1.0, "verse": 0.65, "pre-chorus": 0.8,
    "chorus": 1.0, "hook": 1.0, "bridge": 0.75, "interlude": 0.6,
}
# Sections of one family share a progression, a drum pattern and a melodic motif.
FAMILY = {"B": 1, "chorus": 1, "hook": 1, "pre-chorus": 2, "bridge": 2}
LOW_ENERGY = 0.5
LOW_ENERGY_DRUMS = frozenset({"kick", "chat", "phat", "ride", "shaker"})
DRUM_VELOCITY = {"X": 112, "x": 90, "o": 52}
SECTION_MARKER = re.compile(r"^\s*\[([^\]]+)\]\s*$")


@dataclass(frozen=True)
class NoteEvent:
    """One note: onset and length in beats from the start of the song."""

    beat: float
    duration: float
    channel: int
    key: int
    velocity: int
    role: str


@dataclass(frozen=True)
class Section:
    name: str
    start_bar: int
    bars: int
    energy: float
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Channel:
    """Instrument setup of one MIDI channel (bank 128 is the GM drum kits)."""

    channel: int
    role: str
    bank: int
    program: int
    volume: int
    pan: int


@dataclass(frozen=True)
class VocalNote:
    """One sung note: syllable `syllable` of lyric line `line` (a syllable spans several notes in a melisma)."""

    beat: float
    duration: float
    key: int
    line: int
    syllable: int


@dataclass(frozen=True)
class Score:
    style: Style
    bpm: float
    sample_rate: int
    tonic: int
    mode: str
    sections: tuple[Section, ...]
    channels: tuple[Channel, ...]
    events: tuple[NoteEvent, ...]
    end_beat: float  # onset of the final chord
    total_frames: int  # length of the rendered audio, final ring included
    bar_chords: tuple[tuple[int, ...], ...] = ()  # pitch classes of each bar's chord
    lines: tuple[str, ...] = ()  # sung lyric lines, in order; VocalNote.line indexes them
    vocal: tuple[VocalNote, ...] = ()
    voice: str = "male"
    weights: tuple[tuple[str, float], ...] = ()  # the style blend the text asked for

    def beat_to_sample(self, beat: float) -> int:
        """Sample position of an absolute beat: computed afresh each time, so no error accumulates."""
        return round(beat * 60.0 / self.bpm * self.sample_rate)

    def onset_sample(self, event: NoteEvent) -> int:
        return self.beat_to_sample(event.beat)

    def offset_sample(self, event: NoteEvent) -> int:
        return self.beat_to_sample(event.beat + event.duration)

    @property
    def duration_seconds(self) -> float:
        return self.total_frames / self.sample_rate

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.tonic % 12]} {self.mode}"

    def events_for(self, role: str) -> list[NoteEvent]:
        return [event for event in self.events if event.role == role]


@dataclass
class _Motif:
    """A melodic idea: onsets and lengths in sixteenth steps, and the scale-step intervals between notes."""

    rhythm: list[tuple[int, int]]
    contour: list[int] = field(default_factory=list)


def count_syllables(line: str) -> int:
    """Rough English syllable count (vowel groups, silent final e); any other word counts as one."""
    total = 0
    for word in re.findall(r"[^\W_]+(?:'[^\W_]+)*", line.lower()):
        groups = len(re.findall(r"[aeiouy]+", word))
        if groups > 1 and word.endswith("e") and not word.endswith(("le", "ee", "ye")):
            groups -= 1
        total += max(1, groups)
    return max(1, total)


def parse_lyrics(lyrics: str) -> list[tuple[str, list[str]]]:
    """Sections in order as (name, lines); ``[Verse 2]`` becomes ``verse``, text before any marker a verse."""
    sections: list[tuple[str, list[str]]] = []
    for raw in lyrics.splitlines():
        line = raw.strip()
        if not line:
            continue
        marker = SECTION_MARKER.match(line)
        if marker:
            name = marker.group(1).split(":")[0].strip().lower()
            name = re.sub(r"[\s\d]+$", "", name)
            sections.append((re.sub(r"\s+", "-", name) or "verse", []))
            continue
        if not sections:
            sections.append(("verse", []))
        sections[-1][1].append(line)
    return sections


def line_bars(syllables: int) -> int:
    """Bars of a lyric phrase: room for one note per syllable on eighths, plus a beat of rest."""
    return 2 if syllables <= 2 * 8 - 2 else 4


SyllableCounter = Callable[[str], int]


def compose(request: TextToMusicRequest, sample_rate: int = 44100, intent: Intent | None = None,
            syllables: SyllableCounter | None = None) -> Score:
    """Compose the song a request describes; the same request (and intent) always gives the same Score.

    `intent` defaults to keyword matching only; `syllables` counts a lyric line's sung syllables (the
    singer's phonemic count; the spelling-based `count_syllables` otherwise).
    """
    if request.seed is None:
        raise ValueError("the engine renders only requests with an explicit seed")
    return _Composer(request, sample_rate, intent or resolve_intent(request), syllables or count_syllables).compose()


class _Composer:
    def __init__(self, request: TextToMusicRequest, sample_rate: int, intent: Intent,
                 syllables: SyllableCounter) -> None:
        self.request = request
        self.sample_rate = sample_rate
        self.intent = intent
        self.count = syllables
        self.rng = np.random.default_rng(request.seed)
        self.style = blend(intent, self.rng)
        lo, hi = self.style.bpm_range
        bpm = float(self.rng.integers(lo, hi + 1))
        if request.bpm != "auto":
            bpm = float(request.bpm)
        elif intent.bpm is not None:
            bpm = intent.bpm
        self.bpm = bpm
        self.tonic = int(self.rng.choice(self.style.tonics))
        self.mode = str(self.rng.choice(self.style.modes))
        self.scale = MODES[self.mode]
        self.events: list[NoteEvent] = []
        self.voicing: list[int] = []
        self.motifs: dict[str, _Motif] = {}
        # The chord of each bar as a scale degree, filled while laying out the sections.
        self.bar_chords: list[int] = []
        self.lines: list[str] = []
        self.vocal: list[VocalNote] = []

    # ---- length and form -------------------------------------------------------------------------

    def compose(self) -> Score:
        bar_seconds = BEATS_PER_BAR * 60.0 / self.bpm
        asked = self.request.duration_seconds
        if asked is not None:
            n_bars = max(1, math.floor(asked / bar_seconds + 1e-9))
        elif self.request.is_instrumental:
            lo = math.ceil(INSTRUMENTAL_SECONDS[0] / bar_seconds)
            hi = max(lo, math.floor(INSTRUMENTAL_SECONDS[1] / bar_seconds))
            n_bars = int(self.rng.integers(lo, hi + 1))
        else:
            n_bars = None  # the lyrics decide
        if self.request.is_instrumental:
            assert n_bars is not None
            plan = self._instrumental_form(n_bars)
        else:
            plan = self._lyric_form(self.request.lyrics or "", bar_seconds)
            cap = max(1, math.floor((DEFAULT_DURATION_MAX_SECONDS - RING_SECONDS) / bar_seconds))
            plan = self._fit(plan, n_bars if n_bars is not None else min(cap, sum(b for _, b, _ in plan)))
        sections = self._place(plan)
        n_bars = sum(section.bars for section in sections)
        end_seconds = n_bars * bar_seconds
        if asked is not None:
            total_seconds = min(max(end_seconds + RING_SECONDS, asked + EDGE_SECONDS),
                                asked + RENDER_TAIL_MAX_SECONDS - EDGE_SECONDS)
        else:
            total_seconds = min(end_seconds + RING_SECONDS,
                                DEFAULT_DURATION_MAX_SECONDS + RENDER_TAIL_MAX_SECONDS - EDGE_SECONDS)
        total_frames = math.ceil(total_seconds * self.sample_rate)

        for index, section in enumerate(sections):
            self._section(section, is_last=index == len(sections) - 1)
        end_beat = float(n_bars * BEATS_PER_BAR)
        ring_end = (total_seconds - FADE_SECONDS / 2) * self.bpm / 60.0
        self._ending(end_beat, max(0.5, ring_end - end_beat))
        self.events.sort(key=lambda e: (e.beat, e.channel, e.key))
        return Score(
            style=self.style, bpm=self.bpm, sample_rate=self.sample_rate, tonic=self.tonic, mode=self.mode,
            sections=tuple(sections), channels=self._channels(), events=tuple(self.events),
            end_beat=end_beat, total_frames=total_frames,
            bar_chords=tuple(self._pitch_classes(root) for root in self.bar_chords),
            lines=tuple(self.lines), vocal=tuple(self.vocal), voice=self.intent.voice, weights=self.intent.weights,
        )

    def _instrumental_form(self, n_bars: int) -> list[tuple[str, int, tuple[str, ...]]]:
        """Intro, A, B, A', outro; the middle in 4-bar phrases when there is room."""
        if n_bars < 5:
            return [("A", n_bars, ())]
        edge = 1 if n_bars < 12 else 2 if n_bars < 32 else 4
        middle = n_bars - 2 * edge
        unit = 4 if middle >= 12 else 2 if middle >= 6 else 1
        units, rest = divmod(middle, unit)
        a = (units + 2) // 3
        b = (units - a + 1) // 2
        a2 = units - a - b
        return [("intro", edge, ()), ("A", a * unit, ()), ("B", b * unit, ()),
                ("A'", a2 * unit + rest, ()), ("outro", edge, ())]

    def _lyric_form(self, lyrics: str, bar_seconds: float) -> list[tuple[str, int, tuple[str, ...]]]:
        """Sections from the lyric markers; a lyric section lasts as long as its phrases need."""
        parsed = parse_lyrics(lyrics)
        edge = 4 if bar_seconds < 2.5 else 2
        plan: list[tuple[str, int, tuple[str, ...]]] = []
        if not parsed or parsed[0][0] != "intro":
            plan.append(("intro", edge, ()))
        for name, lines in parsed:
            if lines:
                bars = sum(line_bars(self.count(line) + 1) for line in lines)
                bars += bars % 2
            else:
                bars = edge
            plan.append((name, bars, tuple(lines)))
        if not parsed or parsed[-1][0] != "outro":
            plan.append(("outro", edge, ()))
        return plan

    @staticmethod
    def _fit(plan: list[tuple[str, int, tuple[str, ...]]], n_bars: int) -> list[tuple[str, int, tuple[str, ...]]]:
        """Cut the plan at n_bars, or lengthen it by repeating the lyric body (chorus repeats) and outro."""
        total = sum(bars for _, bars, _ in plan)
        if total > n_bars:  # short song: a one-bar intro and no outro leave the most room for the lyrics
            intro = 1 if n_bars >= 4 else 0
            plan = [(name, intro if name == "intro" else bars, lines) for name, bars, lines in plan]
            if len(plan) > 1 and plan[-1][0] == "outro":
                plan = plan[:-1]
        if total >= n_bars:
            fitted, used = [], 0
            for name, bars, lines in plan:
                if used >= n_bars:
                    break
                fitted.append((name, min(bars, n_bars - used), lines))
                used += fitted[-1][1]
            return fitted
        body = [item for item in plan if item[2]] or [item for item in plan if item[0] not in ("intro", "outro")]
        tail = [plan.pop()] if plan[-1][0] == "outro" else [("outro", 0, ())]
        extra = n_bars - total + tail[0][1]
        index = 0
        while body and extra - body[index % len(body)][1] >= 2:
            plan.append(body[index % len(body)])
            extra -= body[index % len(body)][1]
            index += 1
        plan.append((tail[0][0], extra, ()))
        return plan

    def _place(self, plan: Sequence[tuple[str, int, tuple[str, ...]]]) -> list[Section]:
        sections, bar = [], 0
        for name, bars, lines in plan:
            if bars <= 0:
                continue
            sections.append(Section(name, bar, bars, ENERGY.get(name, 0.7), lines))
            progression = self._progression(name)
            per = self.style.bars_per_chord
            self.bar_chords += [progression[(i // per) % len(progression)] for i in range(bars)]
            bar += bars
        return sections

    def _progression(self, name: str) -> tuple[int, ...]:
        progressions = self.style.progressions
        return progressions[FAMILY.get(name, 0) % len(progressions)]

    def _channels(self) -> tuple[Channel, ...]:
        style, levels = self.style, self.style.levels
        channels = [
            Channel(CHORDS, "chords", 0, style.chord_program, levels["chords"], PANS["chords"]),
            Channel(BASS, "bass", 0, style.bass_program, levels["bass"], PANS["bass"]),
            Channel(LEAD, "lead", 0, style.lead_program, levels["lead"], PANS["lead"]),
        ]
        if style.pad_program is not None:
            channels.append(Channel(PAD, "pad", 0, style.pad_program, levels["pad"], PANS["pad"]))
        if style.drum_patterns:
            channels.append(Channel(DRUMS, "drums", 128, style.drum_kit, levels["drums"], PANS["drums"]))
        return tuple(channels)

    # ---- helpers ---------------------------------------------------------------------------------

    def _note(self, beat: float, duration: float, channel: int, key: int, velocity: float, role: str) -> None:
        velocity = int(np.clip(round(velocity), 1, 127))
        while key > 108:
            key -= 12
        while key < 24:
            key += 12
        self.events.append(NoteEvent(round(beat, 9), round(max(duration, 0.05), 9), channel, key, velocity, role))

    def _jitter(self, amount: int = 5) -> int:
        return int(self.rng.integers(-amount, amount + 1))

    def _step_beat(self, bar: int, step: int) -> float:
        """Beat of a sixteenth step, with the style's swing delaying the off-beats."""
        beat = bar * BEATS_PER_BAR + step / 4.0
        style = self.style
        if style.swing:
            if style.swing_unit == 16 and step % 2 == 1:
                beat += style.swing * 0.25
            elif style.swing_unit == 8 and step % 4 == 2:
                beat += style.swing * 0.5
        return beat

    def _semitones(self, degree: int) -> int:
        return 12 * (degree // 7) + self.scale[degree % 7]

    def _chord_degrees(self, root: int) -> list[int]:
        degrees = [root, root + 2, root + 4]
        return degrees + [root + 6] if self.style.sevenths else degrees

    def _pitch_classes(self, root: int) -> tuple[int, ...]:
        return tuple(sorted({(self.tonic + self._semitones(d)) % 12 for d in self._chord_degrees(root)}))

    def _voice(self, root: int, center: float) -> list[int]:
        """Close voicing of a chord near `center`, so consecutive chords move little."""
        notes = set()
        for degree in self._chord_degrees(root):
            pitch_class = (self.tonic + self._semitones(degree)) % 12
            octave = round((center - pitch_class) / 12.0)
            notes.add(pitch_class + 12 * octave)
        return sorted(notes)

    def _next_voicing(self, root: int) -> list[int]:
        center = float(np.clip(np.mean(self.voicing) if self.voicing else 62.0, 58.0, 66.0))
        self.voicing = self._voice(root, center)
        return self.voicing

    def _lead_tonic(self) -> int:
        """The tonic nearest the style's lead register, so every key sits in the same range."""
        base = self.style.lead_octave
        return base + (self.tonic - base + 6) % 12 - 6

    def _bass_root(self, root: int) -> int:
        pitch_class = (self.tonic + self._semitones(root)) % 12
        return 33 + (pitch_class - 9) % 12  # A1..G#2

    @staticmethod
    def _hits(pattern: str) -> list[tuple[int, int, str]]:
        """(step, length in steps, symbol) of each onset of a 16-step pattern."""
        hits: list[list] = []
        open_hit = False
        for step, symbol in enumerate(pattern):
            if symbol == "-":
                if open_hit:
                    hits[-1][1] += 1
            elif symbol == ".":
                open_hit = False
            else:
                hits.append([step, 1, symbol])
                open_hit = True
        return [(s, n, c) for s, n, c in hits]

    # ---- sections --------------------------------------------------------------------------------

    def _section(self, section: Section, is_last: bool) -> None:
        for offset in range(section.bars):
            bar = section.start_bar + offset
            self._chords(section, bar, offset)
            self._bass(section, bar)
            if self.style.drum_patterns:
                fill = offset == section.bars - 1 and not is_last and section.bars >= 2
                self._drums(section, bar, first=offset == 0, fill=fill and section.energy >= LOW_ENERGY)
        if section.lines:
            self._lyric_melody(section)
        elif section.energy >= 0.6:
            self._instrumental_melody(section)

    def _chords(self, section: Section, bar: int, offset: int) -> None:
        style, energy = self.style, section.energy
        root = self.bar_chords[bar]
        per = style.bars_per_chord
        span = 1
        while (offset + span < section.bars and self.bar_chords[bar + span] == root
               and (offset + span) % per != 0):
            span += 1
        chord_start = offset == 0 or self.bar_chords[bar - 1] != root or offset % per == 0
        pattern = style.chord_pattern
        if energy < LOW_ENERGY:
            pattern = "x.x.x.x.x.x.x.x." if style.chord_mode == "arp" else "x" + "-" * 15
        held = pattern == "x" + "-" * 15
        voicing = self.voicing if held and not chord_start else self._next_voicing(root)
        scale = 0.75 + 0.25 * energy
        if held:
            if chord_start:
                length = span * BEATS_PER_BAR
                self._block(bar * BEATS_PER_BAR, length * 0.98, voicing, 84 * scale, strum=0.0)
        else:
            arp = voicing + [voicing[0] + 12]
            for index, (step, length, symbol) in enumerate(self._hits(pattern)):
                beat = self._step_beat(bar, step)
                duration = (self._step_beat(bar, step + length) - beat) * 0.92
                velocity = (DRUM_VELOCITY.get(symbol, 90) - 4) * scale
                if style.chord_mode == "arp":
                    self._note(beat, duration, CHORDS, arp[index % len(arp)], velocity + self._jitter(), "chords")
                elif style.chord_mode == "strum":
                    down = step % 4 == 0 or step % 4 == 1
                    self._block(beat, duration, voicing if down else voicing[::-1], velocity, strum=0.018)
                else:
                    self._block(beat, duration, voicing, velocity, strum=0.0)
        if style.pad_program is not None and chord_start and (energy >= LOW_ENERGY or not style.drum_patterns):
            pad = [note + 12 for note in voicing]
            self._block(bar * BEATS_PER_BAR, span * BEATS_PER_BAR * 0.98, pad, 58 + 30 * energy, 0.0, PAD, "pad")

    def _block(self, beat: float, duration: float, notes: Sequence[int], velocity: float, strum: float,
               channel: int = CHORDS, role: str = "chords") -> None:
        for index, key in enumerate(notes):
            offset = index * strum
            self._note(beat + offset, duration - offset, channel, key, velocity + self._jitter(4), role)

    def _bass(self, section: Section, bar: int) -> None:
        root_degree = self.bar_chords[bar]
        next_degree = self.bar_chords[bar + 1] if bar + 1 < len(self.bar_chords) else 0
        root = self._bass_root(root_degree)
        next_root = self._bass_root(next_degree)
        third = root + (self._semitones(root_degree + 2) - self._semitones(root_degree)) % 12
        scale = 0.8 + 0.2 * section.energy
        if self.style.bass_pattern == "walk" and section.energy >= LOW_ENERGY:
            fifth = root + (self._semitones(root_degree + 4) - self._semitones(root_degree)) % 12
            approach = next_root + (1 if self.rng.random() < 0.5 else -1)
            if approach - root > 9:
                approach -= 12
            line = [root, int(self.rng.choice([third, fifth])), int(self.rng.choice([fifth, root + 12])), approach]
            for beat_index, key in enumerate(line):
                beat = self._step_beat(bar, beat_index * 4)
                self._note(beat, 0.92, BASS, key, (96 if beat_index == 0 else 84) * scale + self._jitter(), "bass")
            return
        pattern = self.style.bass_pattern
        if section.energy < LOW_ENERGY or pattern == "walk":
            pattern = "r" + "-" * 15
        for step, length, symbol in self._hits(pattern):
            kind = symbol.lower()
            key = {"r": root, "f": root + 7, "o": root + 12, "t": third, "a": next_root - 1}.get(kind, root)
            beat = self._step_beat(bar, step)
            duration = (self._step_beat(bar, step + length) - beat) * 0.9
            velocity = (104 if symbol.isupper() else 90) * scale + self._jitter()
            self._note(beat, duration, BASS, key, velocity, "bass")

    def _drums(self, section: Section, bar: int, first: bool, fill: bool) -> None:
        patterns = self.style.drum_patterns
        pattern = patterns[FAMILY.get(section.name, 0) % len(patterns)]
        low = section.energy < LOW_ENERGY
        scale = 0.72 + 0.28 * section.energy
        kind = self.style.fill if fill else "none"
        for instrument, steps in pattern.items():
            if low and instrument not in LOW_ENERGY_DRUMS:
                continue
            for step, symbol in enumerate(steps):
                if symbol == "." or (low and instrument == "kick" and symbol != "X"):
                    continue
                if kind in ("toms", "snare") and step >= 12 and instrument not in ("ride", "shaker", "phat"):
                    continue
                if kind == "drop" and step >= 12 and instrument in ("kick", "snare", "clap"):
                    continue  # the drop: kick and snare fall silent for the last beat
                velocity = DRUM_VELOCITY.get(symbol, 90) * scale + self._jitter()
                self._note(self._step_beat(bar, step), 0.25, DRUMS, DRUM_KEYS[instrument], velocity, "drums")
        if first and section.energy >= 0.6:
            self._note(self._step_beat(bar, 0), 1.0, DRUMS, DRUM_KEYS["crash"], 104 * scale, "drums")
        if kind == "toms":
            toms = ["snare", "tom_hi", "tom_mid", "tom_lo"]
            for index, step in enumerate(range(12, 16)):
                choice = toms[index] if self.rng.random() < 0.6 else "snare"
                velocity = (76 + 10 * index) * scale + self._jitter()
                self._note(self._step_beat(bar, step), 0.25, DRUMS, DRUM_KEYS[choice], velocity, "drums")
        elif kind == "snare":  # a crescendo roll of sixteenths (thirty-seconds on the last beat if lucky)
            split = self.rng.random() < 0.4
            for index, step in enumerate(range(8 if split else 12, 16)):
                velocity = (60 + 48 * index / (7 if split else 3)) * scale + self._jitter()
                self._note(self._step_beat(bar, step), 0.25, DRUMS, DRUM_KEYS["snare"], velocity, "drums")
        elif kind == "drop":
            self._note(self._step_beat(bar, 14), 0.5, DRUMS, DRUM_KEYS["ohat"], 84 * scale, "drums")

    # ---- melody ----------------------------------------------------------------------------------

    def _rhythm(self, notes: int, bars: int) -> list[tuple[int, int]]:
        """Onsets for `notes` notes in a phrase of `bars` bars: beats favoured, a rest at the end."""
        total = bars * STEPS_PER_BAR
        grid = 2 if notes <= (total - 4) // 2 else 1
        slots = np.arange(0, total - (4 if grid == 2 else 2), grid)
        notes = min(notes, len(slots))
        weights = np.where(slots % 4 == 0, 3.0, np.where(slots % 2 == 0, 1.3, 0.8))
        chosen = np.sort(self.rng.choice(slots, size=notes, replace=False, p=weights / weights.sum()))
        if notes and chosen[0] > 4:  # start the phrase near its beginning
            chosen[0] = 0
        rhythm = []
        for index, onset in enumerate(chosen):
            end = int(chosen[index + 1]) if index + 1 < len(chosen) else min(total - 4, int(onset) + 8)
            rhythm.append((int(onset), max(1, min(end - int(onset), 8))))
        return rhythm

    def _contour(self, length: int) -> list[int]:
        steps = self.rng.choice([-2, -1, 0, 1, 2, 3, -3, 4], size=length,
                                p=[0.17, 0.22, 0.08, 0.22, 0.17, 0.06, 0.05, 0.03])
        return [int(step) for step in steps]

    def _motif(self, family: str, notes: int, bars: int) -> _Motif:
        if family not in self.motifs:
            self.motifs[family] = _Motif(self._rhythm(notes, bars), self._contour(16))
        return self.motifs[family]

    def _chord_tone(self, degree: int, bar: int) -> int:
        """The chord tone of `bar`'s chord nearest to a scale degree (ties go up)."""
        tones = {d % 7 for d in self._chord_degrees(self.bar_chords[bar])}
        for distance in (0, 1, -1, 2, -2, 3, -3):
            if (degree + distance) % 7 in tones:
                return degree + distance
        return degree

    def _phrase(self, start_bar: int, rhythm: Sequence[tuple[int, int]], contour: Sequence[int], anchor: int,
                energy: float, last_bar: int, sung: int | None = None) -> None:
        """Lay out one phrase: contour from `anchor`, chord tones on strong beats and at the end.

        With `sung` (a lyric line index) the notes go to the vocal part, in the voice's range, one per
        syllable; the last syllable may stretch over two notes (a melisma ending on a chord tone).
        """
        degree = anchor
        top, bottom = (7, -2) if sung is not None else (9, -3)
        tonic = self._vocal_tonic() if sung is not None else self._lead_tonic()
        melisma = (sung is not None and len(rhythm) >= 3 and rhythm[-1][1] >= 4
                   and self.rng.random() < MELISMA_PROBABILITY)
        for index, (onset, length) in enumerate(rhythm):
            bar = start_bar + onset // STEPS_PER_BAR
            if bar > last_bar:
                break
            if index:
                degree += contour[(index - 1) % len(contour)]
            if degree > top:
                degree -= 7
            elif degree < bottom:
                degree += 7
            step = onset % STEPS_PER_BAR
            strong = step % 8 == 0
            if strong or index == len(rhythm) - 1:
                degree = self._chord_tone(degree, bar)
            beat = self._step_beat(start_bar, onset)
            duration = (self._step_beat(start_bar, onset + length) - beat) * 0.9
            if sung is None:
                key = tonic + self._semitones(degree)
                velocity = (84 + 22 * energy + (8 if strong else 0)) + self._jitter()
                self._note(beat, duration, LEAD, key, velocity, "lead")
            elif melisma and index == len(rhythm) - 1:
                half = duration / 2  # a neighbour note, then the chord tone
                neighbour = degree + (1 if degree < top else -1)
                self.vocal.append(VocalNote(round(beat, 9), round(half, 9), tonic + self._semitones(neighbour),
                                            sung, index))
                self.vocal.append(VocalNote(round(beat + half, 9), round(half, 9), tonic + self._semitones(degree),
                                            sung, index))
            else:
                self.vocal.append(VocalNote(round(beat, 9), round(duration, 9), tonic + self._semitones(degree),
                                            sung, index))

    def _vocal_tonic(self) -> int:
        base = VOCAL_TONIC.get(self.intent.voice, VOCAL_TONIC["male"])
        return base + (self.tonic - base + 6) % 12 - 6

    def _instrumental_melody(self, section: Section) -> None:
        family = "A" if FAMILY.get(section.name, 0) == 0 else section.name
        phrase_bars = 2 if section.bars >= 2 else 1
        slots = phrase_bars * 8 - 2
        notes = max(2, round(self.style.density * slots * self.rng.uniform(0.8, 1.2)))
        motif = self._motif(family, notes, phrase_bars)
        last_bar = section.start_bar + section.bars - 1
        lift = 2 if section.energy >= 0.9 else 0
        for phrase in range(section.bars // phrase_bars):
            contour = list(motif.contour)
            if phrase % 2 == 1:  # answer: same rhythm, a different ending
                for i in range(max(0, len(motif.rhythm) - 3), len(motif.rhythm) - 1):
                    contour[i % len(contour)] = int(self.rng.choice([-2, -1, 1, 2]))
            anchor = (4 if phrase % 2 == 0 else 2) + lift + (2 if phrase % 4 == 2 else 0)
            start = section.start_bar + phrase * phrase_bars
            self._phrase(start, motif.rhythm, contour, anchor, section.energy, last_bar)

    def _lyric_melody(self, section: Section) -> None:
        """One sung phrase per lyric line, one note per syllable; a section name keeps its motif's contour."""
        motif = self._motif("lyric:" + section.name, 8, 2)
        lift = 1 if section.energy >= 0.9 else 0
        bar = section.start_bar
        last_bar = section.start_bar + section.bars - 1
        for index, line in enumerate(section.lines):
            syllables = self.count(line)
            bars = line_bars(syllables + 1)
            if bar > last_bar:
                break
            anchor = (2 if index % 2 == 0 else 4) + lift
            self.lines.append(line)
            self._phrase(bar, self._rhythm(syllables, bars), motif.contour, anchor, section.energy, last_bar,
                         sung=len(self.lines) - 1)
            bar += bars

    def _ending(self, beat: float, duration: float) -> None:
        """The final tonic chord that rings into the fade."""
        voicing = self._voice(0, float(np.mean(self.voicing)) if self.voicing else 62.0)
        self._block(beat, duration, voicing, 88, strum=0.02 if self.style.chord_mode == "strum" else 0.0)
        if self.style.pad_program is not None:
            self._block(beat, duration, [n + 12 for n in voicing], 72, 0.0, PAD, "pad")
        self._note(beat, duration, BASS, self._bass_root(0), 96, "bass")
        self._note(beat, duration, LEAD, self._lead_tonic(), 80, "lead")
        if self.style.drum_patterns:
            self._note(beat, 1.0, DRUMS, DRUM_KEYS["kick"], 100, "drums")
            self._note(beat, 2.0, DRUMS, DRUM_KEYS["crash"], 100, "drums")
