"""Form: how a piece's material is laid out in time for each version of a track.

* ``full`` — the song: intro, A, B, A', outro (or the lyrics' sections), ringing into a short fade.
* ``cut`` — a cut-down to an exact length: intro, the hook, a cadence bar, then the final chord on a
  downbeat at most LAST_DOWNBEAT_SECONDS from the end, released so that it rings out by itself. Bars
  have a fixed length at the piece's tempo, so the final hit is placed on the beat grid (on an eighth
  below 80 BPM): the bar before it is shortened to the beats needed, as a composer writes a 2/4 bar
  before a final chord. The ring-out fills what is left to the exact sample length.
* ``loop`` — N bars of the hook, rendered with a tail that the engine wraps onto the loop's start.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from textmusic.contract import DEFAULT_DURATION_MAX_SECONDS, RENDER_TAIL_MAX_SECONDS, TextToMusicRequest
from textmusic.engine.material import Material

BEATS_PER_BAR = 4
RING_SECONDS = 3.0  # how long the full song's final chord rings past the last bar
FADE_SECONDS = 0.5  # fade-out at the very end of the full song
EDGE_SECONDS = 0.1  # margin kept inside the allowed length window (lossy encoders pad a little)
INSTRUMENTAL_SECONDS = (90.0, 180.0)  # range of an instrumental's seeded length when none is asked
LAST_DOWNBEAT_SECONDS = 1.45  # a cut-down's final hit is at most this far from its end (libraries ask 1.5)
GRID_MAX_SECONDS = 0.75  # the final hit's grid: the beat, halved until no longer than this
RELEASE_SECONDS = 0.4  # a cut-down's final chord is released this long before the end, to decay
LOOP_TAIL_SECONDS = 4.0  # decays rendered past a loop's end, then wrapped onto its start
MIN_CUT_SECONDS = 4.0
HOOK_NAMES = ("chorus", "hook", "refrain")
SECTION_MARKER = re.compile(r"^\s*\[([^\]]+)\]\s*$")

Plan = list[tuple[str, int, tuple[str, ...]]]  # (section name, bars, sung lines)


@dataclass(frozen=True)
class Form:
    """A version's shape: the full song, a cut-down of `seconds`, or a loop of `bars` bars."""

    kind: Literal["full", "cut", "loop"] = "full"
    seconds: float = 0.0
    bars: int = 0


FULL = Form()


@dataclass(frozen=True)
class Arrangement:
    kind: Literal["full", "cut", "loop"]
    plan: tuple[tuple[str, int, tuple[str, ...]], ...]
    end_beat: float  # the final chord's onset, or the loop's end; nothing else sounds from here
    total_frames: int  # audio to render (a loop: its period plus the tail that wraps onto its start)
    ring_beats: float = 0.0  # how long the final chord is held (0: no final chord)
    loop_frames: int = 0  # a loop's exact length
    fill_last: bool = False  # the last bar gets a fill too (into the final hit, or round to the loop's start)


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


def arrange(material: Material, request: TextToMusicRequest, form: Form, sample_rate: int,
            lyrics: list[tuple[str, list[str]]]) -> Arrangement:
    if form.kind == "cut":
        return _cutdown(material, lyrics, form.seconds, sample_rate)
    if form.kind == "loop":
        return _loop(material, lyrics, form.bars, sample_rate)
    return _full(material, request, lyrics, sample_rate)


# ---- the full song -----------------------------------------------------------------------------


def _full(material: Material, request: TextToMusicRequest, lyrics: list[tuple[str, list[str]]],
          sample_rate: int) -> Arrangement:
    bar_seconds = material.bar_seconds
    asked = request.duration_seconds
    n_bars: int | None = None  # None: the lyrics decide
    if asked is not None:
        n_bars = max(1, math.floor(asked / bar_seconds + 1e-9))
    elif request.is_instrumental:
        lo = math.ceil(INSTRUMENTAL_SECONDS[0] / bar_seconds)
        hi = max(lo, math.floor(INSTRUMENTAL_SECONDS[1] / bar_seconds))
        n_bars = lo + min(hi - lo, math.floor(material.length_draw * (hi - lo + 1)))
    if request.is_instrumental:
        assert n_bars is not None
        plan = _instrumental_form(n_bars)
    else:
        plan = _lyric_form(material, lyrics, bar_seconds)
        cap = max(1, math.floor((DEFAULT_DURATION_MAX_SECONDS - RING_SECONDS) / bar_seconds))
        plan = _fit(plan, n_bars if n_bars is not None else min(cap, sum(b for _, b, _ in plan)))
    plan = [item for item in plan if item[1] > 0]
    bars = sum(b for _, b, _ in plan)
    end_seconds = bars * bar_seconds
    if asked is not None:
        total_seconds = min(max(end_seconds + RING_SECONDS, asked + EDGE_SECONDS),
                            asked + RENDER_TAIL_MAX_SECONDS - EDGE_SECONDS)
    else:
        total_seconds = min(end_seconds + RING_SECONDS,
                            DEFAULT_DURATION_MAX_SECONDS + RENDER_TAIL_MAX_SECONDS - EDGE_SECONDS)
    end_beat = float(bars * BEATS_PER_BAR)
    ring_end = (total_seconds - FADE_SECONDS / 2) * material.bpm / 60.0
    return Arrangement("full", tuple(plan), end_beat, math.ceil(total_seconds * sample_rate),
                       ring_beats=max(0.5, ring_end - end_beat))


def _instrumental_form(n_bars: int) -> Plan:
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
    return [("intro", edge, ()), ("A", a * unit, ()), ("B", b * unit, ()), ("A'", a2 * unit + rest, ()),
            ("outro", edge, ())]


def _lyric_form(material: Material, lyrics: list[tuple[str, list[str]]], bar_seconds: float) -> Plan:
    """Sections from the lyric markers; a lyric section lasts as long as its phrases need."""
    edge = 4 if bar_seconds < 2.5 else 2
    plan: Plan = []
    if not lyrics or lyrics[0][0] != "intro":
        plan.append(("intro", edge, ()))
    for name, lines in lyrics:
        if lines:
            bars = sum(material.sung[(name, line)].bars for line in lines)
            bars += bars % 2
        else:
            bars = edge
        plan.append((name, bars, tuple(lines)))
    if not lyrics or lyrics[-1][0] != "outro":
        plan.append(("outro", edge, ()))
    return plan


def _fit(plan: Plan, n_bars: int) -> Plan:
    """Cut the plan at n_bars, or lengthen it by repeating the lyric body (chorus repeats) and outro."""
    total = sum(bars for _, bars, _ in plan)
    if total > n_bars:  # short song: a one-bar intro and no outro leave the most room for the lyrics
        intro = 1 if n_bars >= 4 else 0
        plan = [(name, intro if name == "intro" else bars, lines) for name, bars, lines in plan]
        if len(plan) > 1 and plan[-1][0] == "outro":
            plan = plan[:-1]
    if total >= n_bars:
        fitted: Plan = []
        used = 0
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


# ---- cut-downs and loops -----------------------------------------------------------------------


def _hook(lyrics: list[tuple[str, list[str]]]) -> tuple[str, list[str]]:
    """The lyric section a cut-down is built on: the chorus (or hook, refrain), else the first sung one."""
    sung = [(name, lines) for name, lines in lyrics if lines]
    for name, lines in sung:
        if name in HOOK_NAMES:
            return name, lines
    return sung[0] if sung else ("B", [])


def _lines_within(material: Material, name: str, lines: list[str], bars: int) -> tuple[str, ...]:
    """The first lines of a section whose phrases fit in `bars` bars."""
    kept, used = [], 0
    for line in lines:
        need = material.sung[(name, line)].bars
        if used + need > bars:
            break
        kept.append(line)
        used += need
    return tuple(kept)


def _cut_plan(material: Material, lyrics: list[tuple[str, list[str]]], bars: int) -> Plan:
    """Intro, an opening section when there is room, the hook, and one cadence bar before the final hit."""
    ending = 1 if bars >= 2 else 0
    rest = bars - ending
    intro = 0 if rest < 3 else 1 if rest < 10 else 2 if rest < 24 else 4
    body = rest - intro
    hook_bars = body if body < 12 else 4 * math.ceil(body / 8)
    opening = body - hook_bars
    hook_name, hook_lines = _hook(lyrics)
    verse = next(((n, ls) for n, ls in lyrics if ls and n != hook_name), ("A", []))
    plan: Plan = [("intro", intro, ())]
    plan.append((verse[0], opening, _lines_within(material, verse[0], verse[1], opening)))
    plan.append((hook_name, hook_bars, _lines_within(material, hook_name, hook_lines, hook_bars)))
    plan.append(("ending", ending, ()))
    return [item for item in plan if item[1] > 0]


def _cutdown(material: Material, lyrics: list[tuple[str, list[str]]], seconds: float,
             sample_rate: int) -> Arrangement:
    if seconds < MIN_CUT_SECONDS:
        raise ValueError(f"a cut-down needs at least {MIN_CUT_SECONDS:g} s")
    beat = 60.0 / material.bpm
    grid = beat
    while grid > GRID_MAX_SECONDS:
        grid /= 2
    end_seconds = math.ceil((seconds - LAST_DOWNBEAT_SECONDS) / grid - 1e-9) * grid
    end_beat = round(end_seconds / beat, 9)
    bars = math.ceil(end_beat / BEATS_PER_BAR - 1e-9)
    ring = seconds - end_seconds
    return Arrangement("cut", tuple(_cut_plan(material, lyrics, bars)), end_beat, round(seconds * sample_rate),
                       ring_beats=max(grid, ring - RELEASE_SECONDS) / beat, fill_last=True)


def _loop(material: Material, lyrics: list[tuple[str, list[str]]], bars: int, sample_rate: int) -> Arrangement:
    """The hook's backing and tune (no voice: a sung line cut at a loop's seam does not repeat well)."""
    if bars < 1:
        raise ValueError("a loop needs at least one bar")
    name = _hook(lyrics)[0] if lyrics else "B"
    period = round(bars * material.bar_seconds * sample_rate)
    return Arrangement("loop", ((name, bars, ()),), float(bars * BEATS_PER_BAR),
                       period + math.ceil(LOOP_TAIL_SECONDS * sample_rate), loop_frames=period, fill_last=True)
