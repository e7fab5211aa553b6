"""Seeded composition: a request becomes a Score of note events in beats, ready for any renderer.

Three steps, each with its own randomness: `material.draw_material` draws the piece (style, tempo,
key, motifs, sung rhythms) from ``default_rng(request.seed)``; `arrange.arrange` lays it out for one
version (the full song, a cut-down, a loop); `_Composer` performs the arrangement part by part
(harmony, bass, drums, melody, fills) with a second stream seeded from the same seed, for the
humanising jitter and the small choices a player makes. So every version of a track shares its
material, and a request always composes the same music. Times are kept in absolute beats; the
renderer turns a beat into a sample position with ``Score.beat_to_sample`` so nothing drifts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from textmusic.contract import TextToMusicRequest
from textmusic.engine.arrange import (
    BEATS_PER_BAR,
    FADE_SECONDS,
    FULL,
    RING_SECONDS,
    Arrangement,
    Form,
    arrange,
    count_syllables,
    parse_lyrics,
)
from textmusic.engine.intent import Intent, resolve_intent
from textmusic.engine.material import MOTIF_BARS, MOTIF_FAMILIES, STEPS_PER_BAR, Material, draw_material, line_bars
from textmusic.engine.styles import DRUM_KEYS, PITCHED_DRUMS, TIMPANI_KITS, TIMPANI_SPAN, Style

# MIDI channels by role; drums sit on GM channel 10 (index 9).
CHORDS, BASS, LEAD, PAD, VOCAL, DRUMS = 0, 1, 2, 3, 4, 9  # VOCAL notes are sung, never sent to the synth
VOCAL_TONIC = {"male": 52, "female": 64}  # the tonic nearest this MIDI note; the melody spans -2..7 degrees
PANS = {"chords": 48, "bass": 64, "lead": 74, "pad": 84, "drums": 64}
PERFORMANCE_STREAM = 1  # spawn key of the performance's random stream (the material uses the seed itself)

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
ENERGY = {
    "intro": 0.35, "outro": 0.4, "A": 0.7, "B": 0.9, "A'": 1.0, "verse": 0.65, "pre-chorus": 0.8,
    "chorus": 1.0, "hook": 1.0, "bridge": 0.75, "interlude": 0.6, "ending": 0.9,
}
# Sections of one family share a progression, a drum pattern and a melodic motif.
FAMILY = {"B": 1, "chorus": 1, "hook": 1, "refrain": 1, "pre-chorus": 2, "bridge": 2, "ending": 1}
CADENCE = (4,)  # a cut-down's last bar: the dominant, before the final tonic chord
LOW_ENERGY = 0.5
LOW_ENERGY_DRUMS = frozenset({"kick", "chat", "phat", "ride", "shaker"})
DRUM_VELOCITY = {"X": 112, "x": 90, "o": 52, "r": 84}
BLUES_SCALE = {0: 0, 1: 0, 2: 3, 3: 3, 4: 3, 5: 5, 6: 6, 7: 7, 8: 7, 9: 10, 10: 10, 11: 10}  # onto 1 b3 4 b5 5 b7
PENTATONIC = {0: 0, 1: 0, 2: 2, 3: 2, 4: 4, 5: 4, 6: 7, 7: 7, 8: 7, 9: 9, 10: 9, 11: 0}  # onto 1 2 3 5 6
FILL_STEP = 12  # a fill takes a bar's last beat


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
class Bend:
    """A pitch-wheel position of one channel from `beat` on, in semitones (within synth.BEND_RANGE): the
    slides, bends, vibrato and 808 glides GM presets cannot play by themselves."""

    beat: float
    channel: int
    semitones: float


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
    tuning: tuple[tuple[int, int], ...] = ()  # (key, cents): keys retuned on this channel (a kit's pitched drums)


@dataclass(frozen=True)
class VocalNote:
    """One sung note: syllable `syllable` of lyric line `line` (a syllable spans several notes in a melisma)."""

    beat: float
    duration: float
    key: int
    line: int
    syllable: int
    section: str = ""  # the section's name (backing vocals sing on the choruses: arrange.HOOK_NAMES)


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
    end_beat: float  # onset of the final chord (a loop: its end)
    total_frames: int  # length of the rendered audio, final ring (a loop: the tail to wrap) included
    bar_chords: tuple[tuple[int, ...], ...] = ()  # pitch classes of each bar's chord
    lines: tuple[str, ...] = ()  # sung lyric lines, in order; VocalNote.line indexes them
    vocal: tuple[VocalNote, ...] = ()
    voice: str = "male"
    weights: tuple[tuple[str, float], ...] = ()  # the style blend the text asked for
    kind: str = "full"  # the arrangement: full, cut (a cut-down) or loop
    loop_frames: int = 0  # a loop's exact length: audio past it wraps onto the start
    bends: tuple[Bend, ...] = ()  # pitch-wheel moves, in time order

    def beat_to_sample(self, beat: float) -> int:
        """Sample position of an absolute beat: computed afresh each time, so no error accumulates."""
        return round(beat * 60.0 / self.bpm * self.sample_rate)

    def onset_sample(self, event: NoteEvent) -> int:
        return self.beat_to_sample(event.beat)

    def offset_sample(self, event: NoteEvent) -> int:
        return self.beat_to_sample(event.beat + event.duration)

    @property
    def duration_seconds(self) -> float:
        return (self.loop_frames or self.total_frames) / self.sample_rate

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.tonic % 12]} {self.mode}"


SyllableCounter = Callable[[str], int]


def compose(request: TextToMusicRequest, sample_rate: int = 44100, intent: Intent | None = None,
            syllables: SyllableCounter | None = None, form: Form = FULL) -> Score:
    """Compose one version (`form`, the full song by default) of the song a request describes; the same
    request, intent and form always give the same Score, and every form the same material.

    `intent` defaults to keyword matching only; `syllables` counts a lyric line's sung syllables (the
    singer's phonemic count; the spelling-based `count_syllables` otherwise).
    """
    if request.seed is None:
        raise ValueError("the engine renders only requests with an explicit seed")
    intent = intent or resolve_intent(request)
    lyrics = [] if request.is_instrumental else parse_lyrics(request.lyrics or "")
    material = draw_material(request, intent, syllables or count_syllables, lyrics)
    arrangement = arrange(material, request, form, sample_rate, lyrics)
    rng = np.random.default_rng(np.random.SeedSequence(request.seed, spawn_key=(PERFORMANCE_STREAM,)))
    return _Composer(material, arrangement, rng, intent).compose(sample_rate)


class _Composer:
    """Performs an arrangement of the material: every part, bar by bar, into note events."""

    def __init__(self, material: Material, arrangement: Arrangement, rng: np.random.Generator,
                 intent: Intent) -> None:
        self.material = material
        self.arrangement = arrangement
        self.rng = rng
        self.voice = intent.voice
        self.weights = intent.weights
        self.style = material.style
        self.bpm = material.bpm
        self.tonic = material.tonic
        self.mode = material.mode
        self.scale = material.scale
        self.events: list[NoteEvent] = []
        self.voicing: list[int] = []
        # The chord of each bar as a scale degree, filled while laying out the sections.
        self.bar_chords: list[int] = []
        self.lines: list[str] = []
        self.vocal: list[VocalNote] = []
        self.bends: list[Bend] = []

    def compose(self, sample_rate: int) -> Score:
        arrangement = self.arrangement
        sections = self._place(arrangement.plan)
        for index, section in enumerate(sections):
            last = index == len(sections) - 1
            self._section(section, fill_last=arrangement.fill_last or not last)
        end_beat = arrangement.end_beat
        if arrangement.kind == "cut":  # the shortened last bar: nothing sounds past the final hit
            self.events = [dataclasses.replace(e, duration=min(e.duration, end_beat - e.beat))
                           for e in self.events if e.beat < end_beat - 1e-9]
            self.vocal = [note for note in self.vocal if note.beat + note.duration <= end_beat + 1e-9]
            self.bends = [bend for bend in self.bends if bend.beat < end_beat - 1e-9]
        if arrangement.ring_beats > 0:
            self._ending(end_beat, arrangement.ring_beats, crash=arrangement.kind == "full")
        self.events.sort(key=lambda e: (e.beat, e.channel, e.key))
        self.bends.sort(key=lambda b: (b.beat, b.channel))
        return Score(
            style=self.style, bpm=self.bpm, sample_rate=sample_rate, tonic=self.tonic, mode=self.mode,
            sections=tuple(sections), channels=self._channels(), events=tuple(self.events),
            end_beat=end_beat, total_frames=arrangement.total_frames,
            bar_chords=tuple(self._pitch_classes(root) for root in self.bar_chords),
            lines=tuple(self.lines), vocal=tuple(self.vocal), voice=self.voice, weights=self.weights,
            kind=arrangement.kind,
            loop_frames=arrangement.loop_frames, bends=tuple(self.bends),
        )

    def _place(self, plan: Sequence[tuple[str, int, tuple[str, ...]]]) -> list[Section]:
        sections, bar = [], 0
        live = [(name, bars) for name, bars, _ in plan if bars > 0]
        origin = live[0][1] if len(live) > 1 and live[0][0] == "intro" else 0  # an intro is the turnaround
        for name, bars, lines in plan:
            if bars <= 0:
                continue
            sections.append(Section(name, bar, bars, ENERGY.get(name, 0.7), lines))
            progression = self._progression(name)
            per = self.style.bars_per_chord
            start = bar - origin if self.style.continuous and name != "ending" else 0
            self.bar_chords += [progression[((start + i) // per) % len(progression)] for i in range(bars)]
            bar += bars
        return sections

    def _progression(self, name: str) -> tuple[int, ...]:
        if name == "ending":
            return CADENCE
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
            channels.append(Channel(DRUMS, "drums", 128, style.drum_kit, levels["drums"], PANS["drums"],
                                    self._drum_tuning()))
        return tuple(channels)

    def _drum_tuning(self) -> tuple[tuple[int, int], ...]:
        """The kit's pitched drums (styles.PITCHED_DRUMS) tuned to the key, as a producer tunes an 808 or a
        trailer's bass drum: each onto the tonic or the fifth, whichever is nearer its own pitch (the least
        retuning, at most a tritone's half), in cents."""
        tuning = []
        for key, pitch in sorted(PITCHED_DRUMS.get(self.style.drum_kit, {}).items()):
            shifts = [(target - pitch + 6.0) % 12.0 - 6.0 for target in (self.tonic, self.tonic + 7)]
            tuning.append((key, round(100 * min(shifts, key=abs))))
        return tuple(tuning)

    # ---- helpers ---------------------------------------------------------------------------------

    def _note(self, beat: float, duration: float, channel: int, key: int, velocity: float, role: str) -> None:
        velocity = int(np.clip(round(velocity), 1, 127))
        while key > 108:
            key -= 12
        while key < 24:
            key += 12
        self.events.append(NoteEvent(round(beat, 9), round(max(duration, 0.05), 9), channel, key, velocity, role))

    def _glide(self, beat: float, duration: float, channel: int, start: float, end: float, steps: int = 6) -> None:
        """The pitch wheel from `start` to `end` semitones over `duration` beats, in `steps` moves (a slide)."""
        for index in range(steps + 1):
            fraction = index / steps
            self.bends.append(Bend(round(beat + duration * fraction, 9), channel,
                                   round(start + (end - start) * fraction, 4)))

    def _vibrato(self, beat: float, duration: float, channel: int, depth: float, delay: float = 0.3) -> None:
        """A singer's or player's vibrato (~5.5 Hz, +-`depth` semitones) after `delay` of the note, back to 0."""
        period = self.bpm / 60.0 / 5.5  # beats per cycle
        start = beat + min(delay, duration / 2)
        steps = int((beat + duration - start) / (period / 8))
        for index in range(1, steps):
            value = depth * math.sin(2 * math.pi * index / 8) * min(1.0, index / 8)
            self.bends.append(Bend(round(start + index * period / 8, 9), channel, round(value, 4)))
        self.bends.append(Bend(round(beat + duration, 9), channel, 0.0))

    def _jitter(self, amount: int = 5) -> int:
        amount = round(amount * self.style.humanize)
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

    def _section(self, section: Section, fill_last: bool) -> None:
        """Every part of one section; its last bar ends in a fill when `fill_last` (a cadence bar always)."""
        for offset in range(section.bars):
            bar = section.start_bar + offset
            self._chords(section, bar, offset)
            self._bass(section, bar)
            if self.style.drum_patterns:
                fill = offset == section.bars - 1 and fill_last and (section.bars >= 2 or section.name == "ending")
                self._drums(section, bar, first=offset == 0 and section.name != "ending",
                            fill=fill and section.energy >= LOW_ENERGY, fill_at=self._fill_step(bar))
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
        if style.chorus_pattern and FAMILY.get(section.name, 0) == 1:
            pattern = style.chorus_pattern
        elif style.verse_pattern and section.lines:  # a sung verse: the band drops back for the voice
            pattern = style.verse_pattern
        if self._answering(section, offset):
            pattern = "." * 16  # the chord instrument answers the lead instead of comping
        if energy < LOW_ENERGY:
            pattern = "x.x.x.x.x.x.x.x." if style.chord_mode == "arp" else "x" + "-" * 15
        held = pattern == "x" + "-" * 15
        voicing = self.voicing if held and not chord_start else self._next_voicing(root)
        if style.chord_mode == "power":
            held = False
            pattern = pattern if energy >= LOW_ENERGY else "x-------x-------"
            low = 40 + (self.tonic + self._semitones(root) - 40) % 12  # E2..Eb3, low on the neck
            power = [low, low + 7, low + 12]
        scale = 0.75 + 0.25 * energy
        if held:
            if chord_start:
                length = span * BEATS_PER_BAR
                self._block(bar * BEATS_PER_BAR, length * 0.98, voicing, 84 * scale, strum=0.0)
        else:
            arp = voicing + [voicing[0] + 12]
            for index, (step, length, symbol) in enumerate(self._hits(pattern)):
                beat = self._step_beat(bar, step)
                duration = (self._step_beat(bar, step + length) - beat) * style.chord_gate
                velocity = (DRUM_VELOCITY.get(symbol, 90) - 4) * scale
                if symbol == "m":  # a palm-muted chug: root and fifth, short and damped
                    root_note = power[0] if style.chord_mode == "power" else voicing[0] - 12
                    self._block(beat, min(duration, 0.16), [root_note, root_note + 7], 0.8 * velocity, strum=0.0)
                elif style.chord_mode == "power":
                    self._block(beat, duration, power, velocity, strum=0.006)
                elif style.chord_mode == "chop":  # slices of a sampled chord: full, upper notes, the top up high
                    chops = (voicing, voicing[1:] + [voicing[0] + 12], [n + 12 for n in voicing[-2:]])
                    self._block(beat, duration, chops[index % 3], velocity, strum=0.0)
                elif style.chord_mode == "arp":
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
        if self.arrangement.kind == "loop":  # the last bar leads round to the first
            next_degree = self.bar_chords[(bar + 1) % len(self.bar_chords)]
        else:
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
        hits = self._hits(pattern)
        keys = [{"r": root, "f": root + 7, "o": root + 12, "t": third, "a": next_root - 1}.get(symbol.lower(), root)
                for _, _, symbol in hits]
        for index, (step, length, symbol) in enumerate(hits):
            key = keys[index]
            beat = self._step_beat(bar, step)
            duration = (self._step_beat(bar, step + length) - beat) * 0.9
            velocity = (104 if symbol.isupper() else 90) * scale + self._jitter()
            self._note(beat, duration, BASS, key, velocity, "bass")
            target = keys[index + 1] if index + 1 < len(hits) else next_root
            if self.style.bass_glide and duration >= 1.0 and target != key and abs(target - key) <= 12:
                # the 808 slide: the held note bends into the next one over its last quarter beat
                glide = min(0.25, duration / 4)
                self._glide(beat + duration - glide, glide, BASS, 0.0, float(target - key), steps=8)
                self.bends.append(Bend(round(beat + duration, 9), BASS, 0.0))

    def _fill_step(self, bar: int) -> int:
        """Where a fill starts: the bar's last beat, or the last whole beat before a cut-down's final hit."""
        beats_left = self.arrangement.end_beat - bar * BEATS_PER_BAR
        if beats_left >= BEATS_PER_BAR:
            return FILL_STEP
        return max(0, math.floor(beats_left - 1 + 1e-9) * 4)

    def _drum_key(self, instrument: str) -> int:
        """The key an instrument of the kit plays: the GM key, except a timpani kit's toms, tuned to the key
        as a timpanist tunes them: the low tom on the tonic, the mid on the fifth, the high on the upper tonic
        (the fifth again when the octave is out of the kit's range)."""
        lowest = TIMPANI_KITS.get(self.style.drum_kit)
        if lowest is None or instrument not in ("tom_lo", "tom_mid", "tom_hi"):
            return DRUM_KEYS[instrument]
        tonic = lowest + (self.tonic - lowest) % 12
        fifth = tonic + 7 if tonic + 7 <= lowest + TIMPANI_SPAN else tonic - 5
        if instrument == "tom_lo":
            return tonic
        if instrument == "tom_hi" and tonic + 12 <= lowest + TIMPANI_SPAN:
            return tonic + 12
        return fifth

    def _drums(self, section: Section, bar: int, first: bool, fill: bool, fill_at: int = FILL_STEP) -> None:
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
                if kind in ("toms", "snare") and step >= fill_at and instrument not in ("ride", "shaker", "phat"):
                    continue
                if kind == "drop" and step >= fill_at and instrument in ("kick", "snare", "clap"):
                    continue  # the drop: kick and snare fall silent for the last beat
                velocity = DRUM_VELOCITY.get(symbol, 90) * scale + self._jitter()
                self._note(self._step_beat(bar, step), 0.25, DRUMS, self._drum_key(instrument), velocity, "drums")
                if symbol == "r":  # a roll: a second thirty-second, softer
                    self._note(self._step_beat(bar, step) + 0.125, 0.125, DRUMS, self._drum_key(instrument),
                               0.8 * velocity, "drums")
        if first and section.energy >= 0.6:
            self._note(self._step_beat(bar, 0), 1.0, DRUMS, DRUM_KEYS["crash"], 104 * scale, "drums")
        if kind == "toms":
            toms = ["snare", "tom_hi", "tom_mid", "tom_lo"]
            for index, step in enumerate(range(fill_at, fill_at + 4)):
                choice = toms[index] if self.rng.random() < 0.6 else "snare"
                velocity = (76 + 10 * index) * scale + self._jitter()
                self._note(self._step_beat(bar, step), 0.25, DRUMS, self._drum_key(choice), velocity, "drums")
        elif kind == "snare":  # a crescendo roll of sixteenths (thirty-seconds on the last beat if lucky)
            split = self.rng.random() < 0.4
            steps = range(max(0, fill_at - 4) if split else fill_at, fill_at + 4)
            for index, step in enumerate(steps):
                velocity = (60 + 48 * index / max(1, len(steps) - 1)) * scale + self._jitter()
                self._note(self._step_beat(bar, step), 0.25, DRUMS, DRUM_KEYS["snare"], velocity, "drums")
        elif kind == "drop":
            self._note(self._step_beat(bar, fill_at + 2), 0.5, DRUMS, DRUM_KEYS["ohat"], 84 * scale, "drums")

    # ---- melody ----------------------------------------------------------------------------------

    def _chord_tone(self, degree: int, bar: int) -> int:
        """The chord tone of `bar`'s chord nearest to a scale degree (ties go up)."""
        tones = {d % 7 for d in self._chord_degrees(self.bar_chords[bar])}
        for distance in (0, 1, -1, 2, -2, 3, -3):
            if (degree + distance) % 7 in tones:
                return degree + distance
        return degree

    def _phrase(self, start_bar: int, rhythm: Sequence[tuple[int, int]], contour: Sequence[int], anchor: int,
                energy: float, last_bar: int, sung: int | None = None, melisma: bool = False,
                channel: int = LEAD, shift: int = 0) -> None:
        """Lay out one phrase: contour from `anchor`, chord tones on strong beats and at the end.

        With `sung` (a lyric line index) the notes go to the vocal part, in the voice's range, one per
        syllable; with `melisma` the last syllable stretches over two notes (ending on a chord tone).
        """
        degree = anchor
        top, bottom = (7, -2) if sung is not None else (9, -3)
        tonic = self._vocal_tonic() if sung is not None else self._lead_tonic()
        melisma = melisma and sung is not None and len(rhythm) >= 3 and rhythm[-1][1] >= 4
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
                self._lead_note(beat, duration, key, velocity, channel, shift)
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

    def _lead_note(self, beat: float, duration: float, key: int, velocity: float, channel: int, shift: int) -> None:
        """One instrumental lead note, coloured by the style's lead scale: blue notes bent into by a grace note."""
        role = "lead" if channel == LEAD else "chords"
        scale = self.style.lead_scale
        if scale:
            base = self._lead_tonic()
            table = BLUES_SCALE if scale == "blues" else PENTATONIC
            rel = (key - base) % 12
            key += table[rel] - rel
            rel = table[rel]
            bend = rel in ((3, 6, 10) if scale == "blues" else (4,))
            if bend and duration >= 0.45 and self.rng.random() < 0.7:  # up into the note from below
                if channel != LEAD:  # the chord instrument (a piano answering) cannot bend: a crushed grace note
                    grace = min(0.14, duration / 3)
                    self._note(beat, grace, channel, key + shift - (1 if rel != 10 else 2), velocity - 10, role)
                    beat, duration = beat + grace, duration - grace
                else:  # the pitch wheel, as a player bends a string or a harmonica reed: a semitone (a whole
                    # tone into the flat seventh, a slide from a whole tone below into the country third)
                    depth = 2.0 if rel == 10 or scale == "pentatonic" else 1.0
                    self._glide(beat, min(0.2, duration / 3), channel, -depth, 0.0)
            if duration >= 0.9 and channel == LEAD:  # a long note sings: vibrato (a harp's hand, a finger)
                self._vibrato(beat, duration, channel, 0.18 if scale == "blues" else 0.12)
        self._note(beat, duration, channel, key + shift, velocity, role)

    def _answering(self, section: Section, offset: int) -> bool:
        """Whether a bar lies in an answer phrase that the chord instrument plays (call and response)."""
        return (self.style.call_response and not section.lines and section.energy >= 0.6
                and (offset // MOTIF_BARS) % 2 == 1)

    def _vocal_tonic(self) -> int:
        base = VOCAL_TONIC.get(self.voice, VOCAL_TONIC["male"])
        return base + (self.tonic - base + 6) % 12 - 6

    def _instrumental_melody(self, section: Section) -> None:
        """The family's motif in call-and-answer phrases (the answer keeps the rhythm, changes the end)."""
        motif = self.material.motifs[MOTIF_FAMILIES[FAMILY.get(section.name, 0) % len(MOTIF_FAMILIES)]]
        last_bar = section.start_bar + section.bars - 1
        lift = 2 if section.energy >= 0.9 else 0
        for phrase in range(-(-section.bars // MOTIF_BARS)):
            contour = motif.answer if phrase % 2 == 1 else motif.contour
            anchor = (4 if phrase % 2 == 0 else 2) + lift + (2 if phrase % 4 == 2 else 0)
            start = section.start_bar + phrase * MOTIF_BARS
            if self.style.call_response and phrase % 2 == 1:  # the answer: the chord instrument, an octave down
                self._phrase(start, motif.rhythm, contour, anchor, section.energy, last_bar, channel=CHORDS, shift=-12)
            else:
                self._phrase(start, motif.rhythm, contour, anchor, section.energy, last_bar)

    def _lyric_melody(self, section: Section) -> None:
        """One sung phrase per lyric line, one note per syllable; a section name keeps its motif's contour."""
        contour = self.material.lyric_contours[section.name]
        lift = 1 if section.energy >= 0.9 else 0
        bar = section.start_bar
        last_bar = section.start_bar + section.bars - 1
        for index, line in enumerate(section.lines):
            sung = self.material.sung[(section.name, line)]
            if bar > last_bar:
                break
            anchor = (2 if index % 2 == 0 else 4) + lift
            self.lines.append(line)
            first = len(self.vocal)
            self._phrase(bar, sung.rhythm, contour, anchor, section.energy, last_bar, len(self.lines) - 1,
                         sung.melisma)
            self.vocal[first:] = [dataclasses.replace(note, section=section.name) for note in self.vocal[first:]]
            bar += sung.bars

    def _ending(self, beat: float, duration: float, crash: bool) -> None:
        """The final tonic chord: it rings into the fade (the full song) or rings out by itself (a cut-down)."""
        voicing = self._voice(0, float(np.mean(self.voicing)) if self.voicing else 62.0)
        self._block(beat, duration, voicing, 88, strum=0.02 if self.style.chord_mode == "strum" else 0.0)
        if self.style.pad_program is not None:
            self._block(beat, duration, [n + 12 for n in voicing], 72, 0.0, PAD, "pad")
        self._note(beat, duration, BASS, self._bass_root(0), 96, "bass")
        self._note(beat, duration, LEAD, self._lead_tonic(), 80, "lead")
        if self.style.drum_patterns:
            self._note(beat, 1.0, DRUMS, DRUM_KEYS["kick"], 100, "drums")
            self._note(beat, 2.0 if crash else duration, DRUMS, DRUM_KEYS["crash"], 100, "drums")


__all__ = ["BEATS_PER_BAR", "FADE_SECONDS", "RING_SECONDS", "Form", "NoteEvent", "Score", "compose",
           "count_syllables", "line_bars", "parse_lyrics"]
