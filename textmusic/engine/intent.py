"""Text → musical intent: which styles a prompt and tags mean, and the explicit words that override them.

Style matching. The prompt and the tags are embedded with all-MiniLM-L6-v2 (`embed.MiniLM`); each
style's ``text`` has a stored embedding (``data/style_embeddings.npz``, rebuilt by
`build_style_cache` when a description changes). A style's score is its cosine similarity to the
query plus ``KEYWORD_BONUS`` per exact keyword hit (at most three), so a genre named outright
always wins. Without the model (``embed=None``) only the keyword term counts.

``prompt_strength`` (the contract's CFG-like knob, 0-10, default 2) sets how sharply the nearest
style dominates: weights are ``softmax(beta * score)`` over the best ``NEIGHBOURS`` styles with
``beta = 8 + 12 * prompt_strength``. At 0 a similarity gap of 0.1 is a weight ratio of about 2:
the song borrows instruments and drum patterns from its neighbours; at the default a gap of 0.1
is about 25:1; at 10 the nearest style is all there is. The composer then takes each part
(chords, bass, lead, pad, drums) from the primary style with probability ``w_primary`` and from a
neighbour, drawn by weight, otherwise (see `blend`).

Explicit words win over the embedding: "in D minor" / "key of F#" fix the key, "120 bpm" the
tempo (when the request's bpm is "auto"), named instruments ("cello", "rhodes", "flute", ...)
their part, "no drums" / "drumless" removes the kit, "female vocal" / "male vocal" the voice (when
the text names none, the dominant style's ``voice`` sings).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textmusic.contract import BPM_RANGE, TextToMusicRequest, parse_key
from textmusic.engine.styles import FALLBACK_STYLE, MODES, STYLES, STYLES_BY_NAME, Style, style_scores

Embedder = Callable[[str], np.ndarray]

NEIGHBOURS = 4
KEYWORD_BONUS = 0.12
TAG_WEIGHT = 1.5  # tags are deliberate style choices: they weigh more than free prompt text
STYLE_CACHE = Path(__file__).with_name("data") / "style_embeddings.npz"

NOTE_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
MODE_WORDS = {"major": "major", "maj": "major", "minor": "minor", "min": "minor", "m": "minor",
              "dorian": "dorian", "mixolydian": "mixolydian", "lydian": "lydian"}
_KEY_WITH_MODE = re.compile(r"\b(?:in|key of|key:?)\s+(?:the\s+key\s+of\s+)?([a-g])(#|♯|-sharp| sharp|b|♭|-flat| flat)?"
                            r"\s*(major|minor|maj|min|dorian|mixolydian|lydian|m)\b", re.IGNORECASE)
_KEY_BARE = re.compile(r"\b(?:in|key of)\s+(?:the\s+key\s+of\s+)?([A-G])(#|♯|b|♭)?(?![\w'])")
_BPM = re.compile(r"\b(\d{2,3}(?:\.\d+)?)\s*(?:bpm|beats per minute)\b", re.IGNORECASE)
_NO_DRUMS = re.compile(r"\b(?:no|without|zero)\s+(?:drums?|percussion|beats?)\b|\bdrumless\b|\bbeatless\b",
                       re.IGNORECASE)
_FEMALE = re.compile(r"\b(?:female|woman|women|girl|soprano|alto)\b", re.IGNORECASE)
_MALE = re.compile(r"\b(?:male|man|men|boy|baritone|tenor singer)\b", re.IGNORECASE)

# Named instruments: (pattern, role, GM program, generic). The longest name at a place wins. A generic
# name ("guitar", "piano") changes nothing when the style already has an instrument of that GM family
# (program // 8), so "heavy rock guitar" keeps its distorted guitars; a specific one always applies.
INSTRUMENTS: tuple[tuple[str, str, int, bool], ...] = (
    (r"electric piano|rhodes|wurlitzer|e-piano", "chords", 4, False),
    (r"church organ|pipe organ", "chords", 19, False),
    (r"organ|hammond", "chords", 16, True),
    (r"harpsichord", "chords", 6, False),
    (r"acoustic guitar|steel guitar|steel-string guitar", "chords", 25, False),
    (r"nylon guitar|classical guitar|spanish guitar|ukulele", "chords", 24, False),
    (r"electric guitar|distorted guitar|guitar solo", "lead", 29, False),
    (r"jazz guitar", "chords", 26, False),
    (r"guitars?", "chords", 27, True),
    (r"upright bass|double bass|acoustic bass|contrabass", "bass", 32, False),
    (r"slap bass", "bass", 36, False),
    (r"808s?|sub bass|synth bass", "bass", 38, False),
    (r"fretless bass", "bass", 35, False),
    (r"tenor sax(?:ophone)?|sax(?:ophone)?", "lead", 66, False),
    (r"alto sax(?:ophone)?", "lead", 65, False),
    (r"trumpets?", "lead", 56, False),
    (r"trombones?", "lead", 57, False),
    (r"french horns?", "lead", 60, False),
    (r"horns?|brass", "lead", 61, True),
    (r"flutes?", "lead", 73, False),
    (r"pan ?flutes?", "lead", 75, False),
    (r"clarinets?", "lead", 71, False),
    (r"oboes?", "lead", 68, False),
    (r"violins?|fiddles?", "lead", 40, False),
    (r"cellos?", "lead", 42, False),
    (r"harmonicas?", "lead", 22, False),
    (r"accordions?", "chords", 21, False),
    (r"banjos?", "chords", 105, False),
    (r"sitars?", "lead", 104, False),
    (r"kalimbas?", "lead", 108, False),
    (r"marimbas?", "lead", 12, False),
    (r"vibraphones?|vibes", "lead", 11, False),
    (r"glockenspiel|bells", "lead", 9, True),
    (r"music box", "lead", 10, False),
    (r"celesta", "lead", 8, False),
    (r"steel drums?|steelpan", "lead", 114, False),
    (r"harps?", "lead", 46, False),
    (r"choirs?|voices", "pad", 52, True),
    (r"strings|string section|orchestra", "pad", 48, True),
    (r"synth pads?|pads", "pad", 89, True),
    (r"synth lead|lead synth|saw lead|synths?", "lead", 81, True),
    (r"pianos?", "chords", 0, True),
)
INSTRUMENT_PATTERNS = tuple((re.compile(rf"\b(?:{p})\b", re.IGNORECASE), role, program, generic)
                            for p, role, program, generic in INSTRUMENTS)


@dataclass(frozen=True)
class Intent:
    """What the text asks for: style weights (best first, summing to 1) and explicit overrides."""

    weights: tuple[tuple[str, float], ...]
    tonic: int | None = None
    mode: str | None = None
    bpm: float | None = None
    drums: bool = True
    instruments: tuple[tuple[str, int, bool], ...] = ()  # (role, GM program, generic)
    voice: str = "male"

    @property
    def primary(self) -> Style:
        return STYLES_BY_NAME[self.weights[0][0]]


def query_text(prompt: str | None, tags: Sequence[str] | None) -> str:
    return " ".join(part for part in (prompt or "", ", ".join(tags or ())) if part.strip())


def explicit_key(text: str) -> tuple[int, str] | None:
    """(tonic pitch class, mode) from "in D minor", "key of F#", "in Bb major", "in Am"; else None."""
    match = _KEY_WITH_MODE.search(text)
    mode = None
    if match:
        mode = MODE_WORDS[match.group(3).lower()]
    else:
        match = _KEY_BARE.search(text)
        if not match:
            return None
        mode = "major"
    letter, accidental = match.group(1).lower(), (match.group(2) or "").strip(" -").lower()
    shift = 1 if accidental in ("#", "♯", "sharp") else -1 if accidental in ("b", "♭", "flat") else 0
    return (NOTE_CLASSES[letter] + shift) % 12, mode


def explicit_bpm(text: str) -> float | None:
    match = _BPM.search(text)
    if not match:
        return None
    value = float(match.group(1))
    return value if BPM_RANGE[0] <= value <= BPM_RANGE[1] else None


def explicit_instruments(text: str) -> tuple[tuple[str, int, bool], ...]:
    """(role, program, generic) per named instrument, in order of appearance; the first named for a role wins.

    A second instrument for an already taken chord role moves to the lead if that is free.
    """
    candidates = []
    for pattern, role, program, generic in INSTRUMENT_PATTERNS:
        for match in pattern.finditer(text):
            candidates.append((match.start(), -(match.end() - match.start()), match.end(), role, program, generic))
    roles: dict[str, tuple[int, bool]] = {}
    covered_until = -1
    for start, _, end, role, program, generic in sorted(candidates):
        if start < covered_until:  # part of a longer name already taken
            continue
        covered_until = end
        if role not in roles:
            roles[role] = (program, generic)
        elif role == "chords" and "lead" not in roles:
            roles["lead"] = (program, generic)
    return tuple((role, program, generic) for role, (program, generic) in roles.items())


def explicit_voice(text: str) -> str | None:
    """"female" / "male" when the text names the singer, else None (the style's voice then sings)."""
    return "female" if _FEMALE.search(text) else "male" if _MALE.search(text) else None


def style_weights(scores: np.ndarray, prompt_strength: float) -> tuple[tuple[str, float], ...]:
    """Softmax of the scores with beta = 8 + 12 * prompt_strength over the best NEIGHBOURS styles."""
    order = np.argsort(-scores, kind="stable")[:NEIGHBOURS]
    beta = 8.0 + 12.0 * float(prompt_strength)
    logits = beta * (scores[order] - scores[order[0]])
    weights = np.exp(logits)
    weights /= weights.sum()
    return tuple((STYLES[i].name, float(w)) for i, w in zip(order, weights, strict=True))


def keyword_scores(prompt: str | None, tags: Sequence[str] | None) -> np.ndarray:
    hits = style_scores(prompt, tags)
    return np.array([KEYWORD_BONUS * min(hits[s.name], 3) for s in STYLES])


def resolve_intent(request: TextToMusicRequest, embed: Embedder | None = None,
                   style_matrix: np.ndarray | None = None) -> Intent:
    """The request's intent; `embed` and `style_matrix` (rows = STYLES) enable the embedding match."""
    text = query_text(request.prompt, request.tags)
    scores = keyword_scores(request.prompt, request.tags)
    if embed is not None and style_matrix is not None and text:
        parts = []
        if request.prompt and request.prompt.strip():
            parts.append(embed(request.prompt))
        if request.tags:
            parts.append(TAG_WEIGHT * embed(", ".join(request.tags)))
        query = np.sum(parts, axis=0)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        scores = scores + style_matrix @ query
    elif not scores.any():
        scores = np.array([1.0 if s is FALLBACK_STYLE else 0.0 for s in STYLES])
    # The request's own key (a local-service extension, from a brief's `key` column) wins over the prompt's
    # words: it is what the catalog's tags will claim. Without it the prompt's "in D minor" applies, as before.
    key = parse_key(request.key) if request.key else explicit_key(text)
    weights = style_weights(scores, request.prompt_strength)
    return Intent(
        weights=weights,
        tonic=key[0] if key else None,
        mode=key[1] if key else None,
        bpm=explicit_bpm(text),
        drums=not _NO_DRUMS.search(text),
        instruments=explicit_instruments(text),
        voice=explicit_voice(text) or STYLES_BY_NAME[weights[0][0]].voice,
    )


ROLE_FIELDS = {"chords": "chord_program", "bass": "bass_program", "lead": "lead_program", "pad": "pad_program"}


def blend(intent: Intent, rng: np.random.Generator) -> Style:
    """The primary style with each part borrowed from a neighbour with probability 1 - w_primary.

    Explicit words are applied last, so they always win.
    """
    style = intent.primary
    names = [name for name, _ in intent.weights[1:]]
    others = np.array([weight for _, weight in intent.weights[1:]])
    changes: dict[str, object] = {}
    borrow = 1.0 - intent.weights[0][1]
    for part in ("chords", "bass", "lead", "pad", "drums"):
        draw = rng.random()  # always drawn, so one part's choice never shifts another's
        pick = rng.random()
        if not names or draw >= borrow or others.sum() <= 0:
            continue
        donor = STYLES_BY_NAME[names[int(np.searchsorted(np.cumsum(others / others.sum()), pick))]]
        if part == "drums":
            if donor.drum_patterns and style.drum_patterns:
                changes.update(drum_patterns=donor.drum_patterns, drum_kit=donor.drum_kit, fill=donor.fill)
        elif part == "pad":
            if style.pad_program is not None and donor.pad_program is not None:
                changes["pad_program"] = donor.pad_program
        else:
            changes[ROLE_FIELDS[part]] = getattr(donor, ROLE_FIELDS[part])
    style = dataclasses.replace(style, **changes) if changes else style
    changes = {}
    families = {program // 8 for program in (style.chord_program, style.bass_program, style.lead_program,
                                             style.pad_program) if program is not None}
    for role, program, generic in intent.instruments:
        if not (generic and program // 8 in families):
            changes[ROLE_FIELDS[role]] = program
    if not intent.drums:
        changes["drum_patterns"] = ()
    if intent.mode is not None:
        changes["modes"] = (intent.mode,)
    if intent.tonic is not None:
        changes["tonics"] = (intent.tonic,)
    return dataclasses.replace(style, **changes) if changes else style


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_style_matrix(embed: Embedder, cache: Path = STYLE_CACHE) -> np.ndarray:
    """Unit embeddings of every style's text, from the shipped cache; stale or missing rows are computed."""
    stored: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as data:
            stored = {key: data[key] for key in data.files}
    rows = [stored.get(_digest(style.text)) for style in STYLES]
    return np.stack([row if row is not None else embed(style.text) for row, style in zip(rows, STYLES, strict=True)])


def build_style_cache(embed: Embedder, cache: Path = STYLE_CACHE) -> None:
    """Rewrite the shipped cache (run after editing a style's description)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **{_digest(style.text): embed(style.text) for style in STYLES})


__all__ = ["Intent", "MODES", "blend", "resolve_intent"]
