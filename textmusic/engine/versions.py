"""Library versions of one track, rendered natively: cut-downs, loops, stems and alternative mixes.

* ``60``/``30``/``15`` — a cut-down composed to that length from the same material (`arrange`):
  exact to the sample, its final chord on a downbeat at most 1.45 s from the end, released to ring
  out; only the last TAPER_SECONDS (decaying reverb) are tapered, never the music.
* ``loop4``/``loop8``/``loop16`` — N bars of the hook, exactly N bars long; the decays rendered past
  the end are added onto the start, and the mix and master see the loop played round (see
  `Engine.render_parts`), so it repeats without a click.
* ``stems`` — each bus's share of the full mix (drums, bass, harmony, lead, vocals as present), with
  the mix's own glue and master gain: they add up to the full version. ``underscore`` is the full mix
  without lead and vocals (and without the vocal pocket: with no voice, the band does not make room for
  one), ``nodrums`` without drums, both at the full mix's gain (alt mixes cut against the full, not
  re-normalised).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from textmusic.contract import CUT_SECONDS, LOOP_BARS, MIXES, stem_name, version_name
from textmusic.contract import check_version_kinds as check_kinds
from textmusic.engine.arrange import FADE_SECONDS, FULL, Form

if TYPE_CHECKING:
    from textmusic.contract import TextToMusicRequest
    from textmusic.engine import Engine
    from textmusic.engine.compose import Score

LOOP_PASSES = 3  # a loop is mixed and mastered this many times over; the middle pass is kept
TAPER_SECONDS = 0.01  # a cut-down's last reverb decay is tapered over this long
STEM_NAMES = {"vocal": "vocals"}  # bus → stem name where they differ
WITHOUT = {"underscore": ("lead", "vocal"), "nodrums": ("drums",)}


@dataclass(frozen=True)
class Version:
    name: str  # full, 60s, 30s, 15s, loop8, stem:drums …, underscore, nodrums
    audio: np.ndarray  # (frames, 2) float64, mastered
    sample_rate: int

    @property
    def duration_seconds(self) -> float:
        return len(self.audio) / self.sample_rate


def form_of(kind: str) -> Form:
    if kind in CUT_SECONDS:
        return Form("cut", seconds=float(CUT_SECONDS[kind]))
    if kind in LOOP_BARS:
        return Form("loop", bars=LOOP_BARS[kind])
    return FULL


def wrap(audio: np.ndarray, period: int) -> np.ndarray:
    """(frames, 2) audio folded onto its first `period` frames: what sounds past the end (a loop's
    decays) is added onto the start, as it would sound when the loop plays round."""
    laps = -(-len(audio) // period)
    padded = np.pad(audio, ((0, laps * period - len(audio)), (0, 0)))
    return padded.reshape(laps, period, audio.shape[1]).sum(axis=0)


def ending_curve(score: Score, frames: int) -> np.ndarray:
    """Gain over the mix's end: the full song fades over FADE_SECONDS, a cut-down's ring-out is tapered
    over its last TAPER_SECONDS only, a loop is left whole."""
    seconds = {"full": FADE_SECONDS, "cut": TAPER_SECONDS}.get(score.kind, 0.0)
    curve = np.ones(frames)
    fade = min(frames, round(seconds * score.sample_rate))
    if fade > 0:
        curve[-fade:] = np.cos(np.linspace(0.0, np.pi / 2, fade)) ** 2
    return curve


def render_versions(engine: Engine, request: TextToMusicRequest, kinds: Iterable[str],
                    ceiling_dbtp: float | None = None) -> dict[str, Version]:
    """Each asked version by name; the stems and alt mixes come from the full render itself."""
    asked = check_kinds(kinds)
    rate = engine.settings.sample_rate
    full = engine.render_parts(request, ceiling_dbtp, keep_stems=False, separate=any(k in MIXES for k in asked))
    assert full.master is not None
    out = {"full": Version("full", full.master, rate)}
    if "stems" in asked:
        for bus, share in full.parts.items():
            name = stem_name(STEM_NAMES.get(bus, bus))
            out[name] = Version(name, share, rate)
    for mix, left_out in WITHOUT.items():
        if mix in asked:
            kept = [full.open_parts.get(bus, share) if "vocal" in left_out else share
                    for bus, share in full.parts.items() if bus not in left_out]
            out[mix] = Version(mix, np.sum(kept, axis=0), rate)
    del full
    for kind in asked:
        if kind in CUT_SECONDS or kind in LOOP_BARS:
            version = engine.render_parts(request, ceiling_dbtp, keep_stems=False, form=form_of(kind))
            assert version.master is not None
            out[version_name(kind)] = Version(version_name(kind), version.master, rate)
    return out
