"""Checking and tagging a delivered MIDI file (the `midi` version: the composition, not audio).

A MIDI file is never decoded, measured or mastered as audio. It is checked for what makes it usable in a
sequencer: a Standard MIDI File of type 0 or 1, within MAX_MIDI_BYTES, with a tempo and at least one note.
It is "tagged" with MIDI's own meta events at the start of its first (conductor) track: the title as the
sequence name, the copyright notice, and a text event with the provenance (generation id, seed, provider,
AI-generated), then read back, as the audio files' tags are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mido

from textmusic.contract import MAX_MIDI_BYTES

CHARSET = "utf-8"  # of the meta events' text: titles and lyrics in any script (mido's default is latin-1)
TAG_EVENTS = ("track_name", "copyright", "text")  # the meta events `tag_midi` writes, in this order


class MidiCheckError(Exception):
    """The file is not a usable MIDI file; the message says why."""


@dataclass(frozen=True)
class MidiInfo:
    type: int
    tracks: int
    notes: int
    bpm: float  # of the first tempo event
    seconds: float  # to the last event


def _load(path: Path) -> mido.MidiFile:
    size = path.stat().st_size
    if size > MAX_MIDI_BYTES:
        raise MidiCheckError(f"{path.name} is {size} bytes, more than a MIDI file may be ({MAX_MIDI_BYTES})")
    try:
        return mido.MidiFile(path, charset=CHARSET)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:  # what mido raises on junk
        raise MidiCheckError(f"{path.name} is not a Standard MIDI File ({type(exc).__name__}: {exc})") from None


def check_midi(path: Path) -> MidiInfo:
    """What a sequencer needs of the file, or MidiCheckError: type 0 or 1, a tempo, at least one note."""
    midi = _load(path)
    if midi.type not in (0, 1):
        raise MidiCheckError(f"{path.name} is a type {midi.type} MIDI file, not type 0 or 1")
    messages = [m for track in midi.tracks for m in track]
    tempos = [m.tempo for m in messages if m.type == "set_tempo"]
    if not tempos:
        raise MidiCheckError(f"{path.name} sets no tempo")
    notes = sum(1 for m in messages if m.type == "note_on" and m.velocity > 0)
    if notes == 0:
        raise MidiCheckError(f"{path.name} holds no note")
    return MidiInfo(midi.type, len(midi.tracks), notes, round(mido.tempo2bpm(tempos[0]), 3), midi.length)


def tag_texts(title: str, copyright: str, provenance: str) -> dict[str, str]:
    """The text of each meta event `tag_midi` writes, by event type (empty texts are left out)."""
    return {kind: text for kind, text in zip(TAG_EVENTS, (title, copyright, provenance), strict=True) if text}


def read_tags(path: Path) -> dict[str, str]:
    """The tag meta events at the start of the file's first track, by type (the first of each type)."""
    found: dict[str, str] = {}
    for message in _load(path).tracks[0]:
        if message.time:
            break
        if message.type in TAG_EVENTS and message.type not in found:
            found[message.type] = message.name if message.type == "track_name" else message.text
    return found


def tag_midi(path: Path, texts: dict[str, str]) -> None:
    """Write `texts` (see `tag_texts`) as meta events at the start of the first track, in place of any such
    events there (the sequence name the engine gave it), and read them back: a file whose tags did not stick
    is a MidiCheckError."""
    midi = _load(path)
    first = midi.tracks[0]
    head = 0
    while head < len(first) and first[head].time == 0 and first[head].is_meta:
        head += 1
    kept = [m for m in first[:head] if m.type not in texts]
    tags = [mido.MetaMessage(kind, **{"name" if kind == "track_name" else "text": text})
            for kind, text in texts.items()]
    midi.tracks[0] = mido.MidiTrack([*tags, *kept, *first[head:]])
    midi.charset = CHARSET
    midi.save(path)
    found = read_tags(path)
    if any(found.get(kind) != text for kind, text in texts.items()):
        raise MidiCheckError(f"{path.name}: the tags did not read back")
