"""The words of a planned row: title, prompt, tags, description and keywords, from the curated vocabulary.

A prompt is written for a hosted model: what it is (mood, genre), what plays (three of the style's
instruments), how it is arranged, the tempo as a feel and a number, the key, the voice or "instrumental",
and what it is for ("for a product explainer"). Every choice is drawn from the row's own generator, so the
words are as reproducible as the seed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tasks.intake.planning.vocabulary import Mood, Style

VOICES = {"female": "a warm female lead vocal", "male": "a warm male lead vocal",
          "duet": "a male and female vocal duet", "choir": "a small choir singing the hook"}
# (below this BPM, the feel a prompt says, the tag)
_TEMPO_FEELS = ((80, "slow and spacious", "slow"), (100, "relaxed mid-tempo", "mid-tempo"),
                (115, "steady mid-tempo", "mid-tempo"), (130, "driving up-tempo", "up-tempo"),
                (999, "fast, high-energy", "fast"))


@dataclass(frozen=True)
class Words:
    """What a row says about itself, beside its numbers."""

    prompt: str
    description: str
    tags: tuple[str, ...]
    keywords: str
    picks: tuple[str, ...] = ()  # the vocabulary words chosen, as `owner:word` (what `used` counts)


def tempo_feel(bpm: int) -> tuple[str, str]:
    """(how a prompt says the tempo, its tag)."""
    return next((feel, tag) for below, feel, tag in _TEMPO_FEELS if bpm < below)


def key_prose(key: str) -> str:
    """`F#m` as a prompt says it: "F# minor"."""
    return f"{key[:-1]} minor" if key.endswith("m") else f"{key} major"


def title_candidates(mood: Mood, style: Style, rng: np.random.Generator) -> Iterator[str]:
    """Every title of the mood's opening words and the style's nouns, in the row's own random order."""
    pairs = [(word, noun) for word in mood.title_words for noun in style.title_nouns if word != noun]
    for index in rng.permutation(len(pairs)):
        word, noun = pairs[int(index)]
        yield f"{word} {noun}"


class _Chooser:
    """Picks the words the plan has used least so far (`used`, by `owner:word`), ties broken at random. A
    later `attempt` (the earlier wording was too near another prompt) weighs chance more than use, so
    every draw can differ; `picks` records what was chosen, for the plan to count once the wording is kept."""

    def __init__(self, rng: np.random.Generator, used: Counter[str], attempt: int) -> None:
        self.rng, self.used, self.attempt = rng, used, attempt
        self.picks: list[str] = []

    def __call__(self, owner: str, options: tuple[str, ...], k: int = 1) -> list[str]:
        noise = self.rng.random(len(options)) * (1 + self.attempt)
        order = sorted(range(len(options)), key=lambda i: (self.used[f"{owner}:{options[i]}"] + noise[i], i))
        chosen = [options[i] for i in order[:k]]
        self.picks += [f"{owner}:{word}" for word in chosen]
        return chosen


def compose(style: Style, mood: Mood, bpm: int, key: str, voice: str | None, rng: np.random.Generator,
            used: Counter[str], attempt: int = 0) -> Words:
    """One draw of a row's words, favouring what the plan has used least (`used`); drawing again from the
    same generator with a later `attempt` gives another wording."""
    choose = _Chooser(rng, used, attempt)
    first, second, third = choose(mood.name, mood.adjectives, 3)
    instruments = choose(style.name, style.instruments, 3)
    texture, use = choose(style.name, style.textures)[0], choose(style.name, style.uses)[0]
    feel, tempo_tag = tempo_feel(bpm)
    played = f"{instruments[0]}, {instruments[1]} and {instruments[2]}"
    sung = f"sung by {VOICES[voice]}" if voice else "instrumental, no vocals"
    prompt = (f"{first.capitalize()} {style.genre} cue with {played}, {texture}; {feel} at {bpm} BPM in "
              f"{key_prose(key)}; {second} and {third} in feel, {sung}; for {use}.")
    description = f"{first.capitalize()} {style.genre} with {instruments[0]} and {instruments[1]}, for {use}."
    tags = (*style.tags, mood.name, tempo_tag)
    keywords = ", ".join(dict.fromkeys((*style.tags, *mood.keywords, *instruments, use.split(" ", 1)[1])))
    return Words(prompt=prompt, description=description, tags=tags, keywords=keywords, picks=tuple(choose.picks))
