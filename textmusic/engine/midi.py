"""The composition as a Standard MIDI File: the exact Score the audio is rendered from, written out.

The engine composes symbolically (`compose.Score`: note events in beats), so the MIDI costs nothing to make
and matches the render note for note: same tempo, same bars, same notes. Type 1: a conductor track (tempo,
4/4, key signature, a marker per section), then one track per part on its own channel with its GM program
(drums on channel 10, index 9), and for a sung song the vocal melody with a lyric event on the first note of
each sung word. Pure data in, bytes out: the same Score always gives the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import mido

from textmusic.engine.arrange import BEATS_PER_BAR, count_syllables
from textmusic.engine.compose import VOCAL, NoteEvent, Score, SyllableCounter, VocalNote

TICKS_PER_BEAT = 480
CHARSET = "utf-8"  # of the lyric and name events: lyrics in any script (mido's default is latin-1)
VOCAL_PROGRAM = 53  # GM "Voice Oohs": a sequencer plays the melody back on a voice
VOCAL_VOLUME = 100
VOCAL_PAN = 64  # centre, where the mix puts the voice
# Semitones from a mode's tonic down to the tonic of the major scale with the same notes (its key signature).
MODE_OFFSETS = {"major": 0, "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7, "minor": 9}
MINOR_MODES = frozenset({"minor", "dorian", "phrygian"})  # written with a minor key signature
# mido's key names by pitch class of the tonic, the spelling with the fewer accidentals.
MAJOR_KEYS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_KEYS = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")

Timed = tuple[int, int, mido.Message | mido.MetaMessage]  # (tick, order at that tick, message)


def key_signature(tonic: int, mode: str) -> str:
    """The key signature of a tonic and mode, as mido names it. A mode is written with the signature of its
    own notes (D dorian has no flat or sharp), named as the relative minor for the minor-third modes (D
    dorian → "Am") and as the major otherwise (G mixolydian → "C"): a sequencer then spells its notes right."""
    major = (tonic - MODE_OFFSETS.get(mode, 0)) % 12
    return MINOR_KEYS[(major + 9) % 12] if mode in MINOR_MODES else MAJOR_KEYS[major]


def _tick(beat: float) -> int:
    return round(beat * TICKS_PER_BEAT)


def _track(name: str, timed: list[Timed], end_tick: int) -> mido.MidiTrack:
    """A track from absolute-tick messages: sorted (offs before ons at one tick), made delta-timed, ended."""
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, _, message in sorted(timed, key=lambda t: (t[0], t[1])):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    return track


def _notes(events: Sequence[NoteEvent | VocalNote], channel: int) -> list[Timed]:
    """Note on/off pairs; an off sorts before an on at the same tick, so a repeated note is struck again."""
    timed: list[Timed] = []
    for event in events:
        velocity = event.velocity if isinstance(event, NoteEvent) else 96
        start, end = _tick(event.beat), max(_tick(event.beat + event.duration), _tick(event.beat) + 1)
        timed.append((start, 2, mido.Message("note_on", channel=channel, note=event.key, velocity=velocity)))
        timed.append((end, 0, mido.Message("note_off", channel=channel, note=event.key, velocity=0)))
    return timed


def sung_words(score: Score, syllables: SyllableCounter = count_syllables) -> dict[tuple[int, int], str]:
    """(line, syllable) → the word(s) sung from that syllable on: each lyric line's words spread over the
    syllables it was composed with (`syllables` is the counter the composition used), in proportion to each
    word's spelling syllables; words that get no syllable of their own join the word before them."""
    out: dict[tuple[int, int], str] = {}
    for index, line in enumerate(score.lines):
        words = line.split()
        total = max(1, syllables(line))
        weights = [count_syllables(word) for word in words]
        spelled = max(1, sum(weights))
        before = 0
        for word, weight in zip(words, weights, strict=True):
            start = min(total - 1, math.floor(before * total / spelled))
            out[(index, start)] = f"{out[(index, start)]} {word}" if (index, start) in out else word
            before += weight
    return out


def score_midi(score: Score, syllables: SyllableCounter | None = None) -> bytes:
    """The Score as a type-1 Standard MIDI File (see the module's doc); `syllables` as in `sung_words` (the
    spelling-based count when None, as in `compose`)."""
    end_tick = max([_tick(score.duration_seconds * score.bpm / 60.0)]
                   + [_tick(e.beat + e.duration) for e in score.events]
                   + [_tick(n.beat + n.duration) for n in score.vocal])
    conductor: list[Timed] = [
        (0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(score.bpm))),
        (0, 1, mido.MetaMessage("time_signature", numerator=BEATS_PER_BAR, denominator=4)),
        (0, 2, mido.MetaMessage("key_signature", key=key_signature(score.tonic, score.mode))),
    ]
    conductor += [(_tick(s.start_bar * BEATS_PER_BAR), 3, mido.MetaMessage("marker", text=s.name))
                  for s in score.sections]
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT, charset=CHARSET)
    midi.tracks.append(_track(score.style.name, conductor, end_tick))
    for channel in score.channels:
        setup: list[Timed] = [
            (0, 1, mido.Message("program_change", channel=channel.channel, program=channel.program)),
            (0, 1, mido.Message("control_change", channel=channel.channel, control=7, value=channel.volume)),
            (0, 1, mido.Message("control_change", channel=channel.channel, control=10, value=channel.pan)),
        ]
        events = [e for e in score.events if e.channel == channel.channel]
        midi.tracks.append(_track(channel.role, setup + _notes(events, channel.channel), end_tick))
    if score.vocal:
        words = sung_words(score, syllables or count_syllables)
        vocal: list[Timed] = [
            (0, 1, mido.Message("program_change", channel=VOCAL, program=VOCAL_PROGRAM)),
            (0, 1, mido.Message("control_change", channel=VOCAL, control=7, value=VOCAL_VOLUME)),
            (0, 1, mido.Message("control_change", channel=VOCAL, control=10, value=VOCAL_PAN)),
        ]
        seen: set[tuple[int, int]] = set()
        for note in score.vocal:  # a melisma sings one syllable over two notes: its word on the first
            key = (note.line, note.syllable)
            if key in words and key not in seen:
                vocal.append((_tick(note.beat), 1, mido.MetaMessage("lyrics", text=words[key])))
            seen.add(key)
        midi.tracks.append(_track("vocals", vocal + _notes(score.vocal, VOCAL), end_tick))
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


__all__ = ["TICKS_PER_BEAT", "key_signature", "score_midi", "sung_words"]
