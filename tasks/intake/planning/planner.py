"""Plan a catalog: the spec's grid (style × mood × tempo band), rows handed out by quota, each row's words
and numbers drawn from its own generator.

Deterministic and growable: row i's cell comes from the quota sequence (apportion.py), its generator is
`numpy.random.default_rng([seed, i])`, and what it must avoid (a title, a prompt too near, a key and BPM
another row of its style and mood holds) is decided by rows 0 … i-1 alone. So the same spec and seed give
the same brief byte for byte, and a larger `count` keeps every row a smaller one planned.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from tasks.intake.brief import TAG_SEPARATOR
from tasks.intake.planning.apportion import exact_shares, sequence
from tasks.intake.planning.compose import Words, compose, title_candidates
from tasks.intake.planning.spec import PlanSpec
from tasks.intake.planning.vocabulary import MOODS, STYLES
from textmusic.contract import SEED_MAX

Embed = Callable[[str], np.ndarray]  # a text → its unit-length embedding
DRAWS_PER_ROW = 40  # wordings a row may try before its prompt is declared too near the others
PLAN_COLUMNS = ("track_id", "name", "prompt", "tags", "lyrics", "seed", "output_format", "output_bit_rate", "bpm",
                "duration_seconds", "versions", "artist", "composer", "publisher", "mood", "key", "description",
                "keywords")


class PlanError(ValueError):
    """The spec asks for more than its vocabulary and ranges can hold apart (says which row and why)."""


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: a style, a mood and a tempo band (inclusive BPM bounds)."""

    style: str
    mood: str
    band: tuple[int, int]
    share: float

    @property
    def band_label(self) -> str:
        return f"{self.band[0]}-{self.band[1]}"


@dataclass(frozen=True)
class PlannedTrack:
    """One row of the brief, with the grid cell it was planned for."""

    cell: Cell
    track_id: str
    title: str
    seed: int
    bpm: int
    key: str
    voice: str | None
    lyrics: str
    duration: int
    words: Words


def _bands(spec: PlanSpec) -> list[tuple[tuple[int, int], float]]:
    """Each BPM range cut into its bands (integer edges, none overlapping), with the band's share."""
    total = sum(r.share for r in spec.bpm)
    bands = []
    for r in spec.bpm:
        edges = [r.min + round(j * (r.max - r.min + 1) / r.bands) for j in range(r.bands + 1)]
        bands += [((edges[j], edges[j + 1] - 1), r.share / total / r.bands) for j in range(r.bands)]
    return bands


def grid(spec: PlanSpec) -> list[Cell]:
    """Every cell in the fixed order rows are handed out in: styles, then moods, then bands, as the spec lists them."""
    styles, moods = spec.style_weights(), spec.mood_weights()
    return [Cell(style, mood, band, styles[style] * moods[mood] * band_share)
            for (style, mood, (band, band_share)) in product(styles, moods, _bands(spec))]


class _Planner:
    """What rows 0 … i-1 hold that row i must keep clear of."""

    def __init__(self, spec: PlanSpec, embed: Embed | None) -> None:
        self.spec, self.embed = spec, embed
        self.titles: set[str] = set()
        self.title_words: Counter[str] = Counter()
        self.used: Counter[str] = Counter()  # vocabulary words the kept prompts chose (compose's `picks`)
        self.prompts: set[str] = set()
        self.tempos: dict[tuple[str, str, str], list[int]] = {}
        self.vectors = np.zeros((0, 0), np.float32)  # the kept prompts' embeddings, rows [:kept] (grown by doubling)
        self.kept = 0

    def _keep(self, vector: np.ndarray) -> None:
        """Remember a kept prompt's embedding; the matrix doubles when full, so each draw compares against one
        array instead of stacking every earlier vector again."""
        if self.kept == len(self.vectors):
            grown = np.zeros((max(64, 2 * self.kept), len(vector)), np.float32)
            if self.kept:
                grown[:self.kept] = self.vectors[:self.kept]
            self.vectors = grown
        self.vectors[self.kept] = vector
        self.kept += 1

    def key_and_bpm(self, index: int, cell: Cell, rng: np.random.Generator) -> tuple[str, int]:
        """A key and a BPM in the band, more than `bpm_apart` from every row of the same style, mood and key:
        within the style's natural tempo when the band reaches it, else (or when that part is full) anywhere
        in the band, since the spec's band is what was ordered."""
        style, mood = STYLES[cell.style], MOODS[cell.mood]
        natural = (max(cell.band[0], style.tempo[0]), min(cell.band[1], style.tempo[1]))
        apart = self.spec.diversity.bpm_apart
        for low, high in (natural, cell.band):
            choices = [(key, bpm) for key in mood.keys for bpm in range(low, high + 1)]
            for pick in rng.permutation(len(choices)):
                key, bpm = choices[int(pick)]
                held = self.tempos.setdefault((cell.style, cell.mood, key), [])
                if all(abs(bpm - other) > apart for other in held):
                    held.append(bpm)
                    return key, bpm
        raise PlanError(f"row {index + 1}: every key and BPM of {cell.style}, {cell.mood}, {cell.band_label} BPM "
                        f"is within {apart} BPM of another row's: widen the BPM range or add styles or moods")

    def title(self, index: int, cell: Cell, rng: np.random.Generator) -> str:
        """A title no row has, of the words the plan has used least (ties in the row's random order)."""
        free = [t for t in title_candidates(MOODS[cell.mood], STYLES[cell.style], rng) if t.lower() not in self.titles]
        if free:
            title = min(free, key=lambda t: sum(self.title_words[word] for word in t.split()))
            self.titles.add(title.lower())
            self.title_words.update(title.split())
            return title
        raise PlanError(f"row {index + 1}: every {cell.mood} {cell.style} title is taken: add styles or moods")

    def words(self, index: int, cell: Cell, bpm: int, key: str, voice: str | None,
              rng: np.random.Generator) -> Words:
        """A wording no earlier prompt equals or lies nearer to than the spec's minimum distance."""
        nearest = 0.0
        for attempt in range(DRAWS_PER_ROW):
            words = compose(STYLES[cell.style], MOODS[cell.mood], bpm, key, voice, rng, self.used, attempt)
            if words.prompt in self.prompts:
                continue
            vector = self.embed(words.prompt) if self.embed else None
            if vector is not None and self.kept:
                nearest = 1.0 - float(np.max(self.vectors[:self.kept] @ vector))
                if nearest < self.spec.diversity.min_prompt_distance:
                    continue
            if vector is not None:
                self._keep(vector)
            self.prompts.add(words.prompt)
            self.used.update(words.picks)
            return words
        raise PlanError(f"row {index + 1}: no wording of {cell.style}, {cell.mood} in {DRAWS_PER_ROW} draws is "
                        f"{self.spec.diversity.min_prompt_distance} from every earlier prompt (last: {nearest:.3f}): "
                        "lower diversity.min_prompt_distance or add styles")


def plan_tracks(spec: PlanSpec, sheets: tuple[str, ...] = (), embed: Embed | None = None,
                count: int | None = None, seed: int | None = None) -> list[PlannedTrack]:
    """The plan's rows, in order. `sheets`: the lyric sheets vocal rows sing (spec.lyric_sheets); `embed`:
    the sentence embedder that holds prompts apart (None: prompts are only kept unequal); `count` and `seed`
    override the spec's."""
    count = spec.count if count is None else count
    seed = spec.seed if seed is None else seed
    cells = grid(spec)
    cell_of = sequence(exact_shares([c.share for c in cells]), count)
    vocal = sequence(exact_shares([spec.vocals.share, 1 - spec.vocals.share]), count) if sheets else [1] * count
    durations = spec.audio.durations
    duration_of = sequence(exact_shares([1.0] * len(durations)), count)
    planner = _Planner(spec, embed)
    tracks, sung = [], 0
    for i in range(count):
        cell = cells[cell_of[i]]
        rng = np.random.default_rng([seed, i])
        row_seed = int(rng.integers(0, SEED_MAX + 1))
        key, bpm = planner.key_and_bpm(i, cell, rng)
        voice = spec.vocals.voice if vocal[i] == 0 else None
        lyrics = sheets[sung % len(sheets)] if voice else ""
        sung += bool(voice)
        title = planner.title(i, cell, rng)
        words = planner.words(i, cell, bpm, key, voice, rng)
        tracks.append(PlannedTrack(cell=cell, track_id=f"{spec.naming.prefix}-{i + 1:0{spec.naming.digits}d}",
                                   title=title, seed=row_seed, bpm=bpm, key=key, voice=voice, lyrics=lyrics,
                                   duration=durations[duration_of[i]], words=words))
    return tracks


def brief_cells(spec: PlanSpec, track: PlannedTrack) -> dict[str, str]:
    """A planned row as the brief's cells. A sung row has prompt and lyrics and no tags (the contract never
    takes all three); its tags are still in `keywords`."""
    return {
        "track_id": track.track_id, "name": track.title, "prompt": track.words.prompt,
        "tags": "" if track.voice else TAG_SEPARATOR.join(track.words.tags), "lyrics": track.lyrics,
        "seed": str(track.seed), "output_format": spec.audio.format, "output_bit_rate": spec.audio.bit_rate or "",
        "bpm": str(track.bpm), "duration_seconds": str(track.duration),
        "versions": TAG_SEPARATOR.join(spec.audio.versions), "artist": spec.metadata.artist,
        "composer": spec.metadata.composer, "publisher": spec.metadata.publisher, "mood": track.cell.mood,
        "key": track.key, "description": track.words.description, "keywords": track.words.keywords,
    }


def brief_csv(spec: PlanSpec, tracks: list[PlannedTrack]) -> str:
    """The brief as CSV text (LF line ends, every field as written), the same for the same rows."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PLAN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(brief_cells(spec, track) for track in tracks)
    return out.getvalue()


def write_brief(path: Path, spec: PlanSpec, tracks: list[PlannedTrack]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(brief_csv(spec, tracks), encoding="utf-8", newline="")
