"""Routed presets (synth.PROGRAM_FONTS, played from MuseScore General's .sf3) render the same samples in a
long-lived renderer, on repeat, and in fresh processes whichever of soundfile or the engine they import first.

The import order is what broke this once: soundfile's wheel bundles its own libsndfile under the soname
FluidSynth links to, and FluidSynth decodes the .sf3's Ogg Vorbis samples with whichever was loaded first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.support import ROOT
from tests.support.audio_files import SR, fingerprints, score_with
from textmusic.engine.synth import FONTS, PROGRAM_FONTS, SynthRenderer


def fresh_process(preamble: str) -> dict[str, str]:
    script = textwrap.dedent(f"""
        {preamble}
        import json
        from tests.support.audio_files import SR, fingerprints
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

