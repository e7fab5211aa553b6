"""Routed presets (synth.PROGRAM_FONTS, played from MuseScore General's .sf3) render the same samples in a
long-lived renderer, on repeat, and in fresh processes whichever of soundfile or the engine they import first.

The import order is what broke this once: soundfile's wheel bundles its own libsndfile under the soname
FluidSynth links to, and FluidSynth decodes the .sf3's Ogg Vorbis samples with whichever was loaded first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from textmusic.contract import TextToMusicRequest
from textmusic.engine.compose import FULL, Score, compose
from textmusic.engine.intent import resolve_intent
from textmusic.engine.synth import FONTS, PROGRAM_FONTS, SynthRenderer

SR = 44100
ROOT = Path(__file__).resolve().parents[1]
DRUMS, LEAD = 9, 2  # compose's channels: a kit plays on the drum channel, a melodic route takes the lead line


def score_with(bank: int, program: int, prompt: str = "jazz trio", seed: int = 11) -> Score:
    """A 10 s song with one part switched to (bank, program); the other parts keep their FluidR3 presets."""
    request = TextToMusicRequest(prompt=prompt, seed=seed, duration_seconds=10)
    score = compose(request, SR, resolve_intent(request), None, FULL)
    part = DRUMS if bank == 128 else LEAD
    channels = tuple(dataclasses.replace(c, bank=bank, program=program) if c.channel == part else c
                     for c in score.channels)
    assert part in {c.channel for c in channels}
    return dataclasses.replace(score, channels=channels)


def fingerprints(renderer: SynthRenderer) -> dict[str, str]:
    """A hash of the full mix of one song per routed preset (both fonts play in each render)."""
    return {f"{bank}:{program}": hashlib.sha1(renderer.render(score_with(bank, program)).tobytes()).hexdigest()
            for bank, program in sorted(PROGRAM_FONTS)}


def fresh_process(preamble: str) -> dict[str, str]:
    script = textwrap.dedent(f"""
        {preamble}
        import json
        from tests.test_soundfont_routing import SR, fingerprints
        from textmusic.engine.synth import SynthRenderer
        print(json.dumps(fingerprints(SynthRenderer(None, SR))))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_musescore_font_is_installed() -> None:
    font = FONTS["musescore"]
    assert font.path.is_file(), f"{font.path} is missing: apt-get install {font.package} (make installs it)"


def test_routed_renders_are_identical_in_a_long_lived_renderer_and_fresh_processes() -> None:
    renderer = SynthRenderer(None, SR)
    renderer.render(score_with(0, 0, "catchy summer pop hit", 3))  # FluidR3 only, first
    for bank, program in sorted(PROGRAM_FONTS, reverse=True):  # every route decoded, in another order
        renderer.render(score_with(bank, program, "catchy summer pop hit", 4))
    first = fingerprints(renderer)
    assert fingerprints(renderer) == first
    assert fresh_process("") == first  # as `textmusic render`: only the engine imports soundfile
    assert fresh_process("import soundfile") == first  # as pytest or the server: soundfile imported earlier


def test_fluidsynth_loaded_before_soundfile_is_an_error() -> None:
    script = "import fluidsynth\nfrom textmusic.engine.synth import SynthRenderer\nSynthRenderer(None, 44100)"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "libfluidsynth was loaded before soundfile" in done.stderr

