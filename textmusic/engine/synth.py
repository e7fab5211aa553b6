"""FluidSynth rendering of a Score: the soundfont is loaded once and shared by a fresh synth per render.

A FluidSynth instance keeps small amounts of state from one render to the next even after all
voices are killed and the synth is reset (renders on a reused synth differ by ~1e-3), so every
render gets a new synth (a few milliseconds) that borrows the already-loaded soundfont. Rendering
steps through the sorted note events, pulling float samples up to each event's exact sample
position. FluidSynth applies events at its 64-frame block boundaries, so an audible onset can trail
its exact position by up to 63 frames (1.4 ms at 44.1 kHz); the error never accumulates because
every position comes from the absolute beat. FluidSynth's reverb and chorus are off (the mix adds
a deterministic pedalboard reverb). FluidSynth's multi-core rendering (synth.cpu-cores > 1) is ~40%
faster but not deterministic (about half of repeated renders differed), so it stays off. Stems (one
bus of channels per pass) let the mix treat drums, bass, harmony and lead apart.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from textmusic.engine.compose import Score

SYNTH_GAIN = 0.2
SYNTH_SETTINGS = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 512}
FLUID_WARN = 2
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "fluid_synth_write_float": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                               ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]),
    "fluid_synth_get_sfont_by_id": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
    "fluid_synth_add_sfont": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
    "fluid_synth_remove_sfont": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
    "fluid_set_log_function": (ctypes.c_void_p, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]),
}


def _import_fluidsynth() -> Any:
    """pyfluidsynth prints where it found the library to stdout when CI is set; keep stdout for our output."""
    with contextlib.redirect_stdout(sys.stderr):
        import fluidsynth
    return fluidsynth


def _libfluidsynth() -> Any:
    """The libfluidsynth handle pyfluidsynth opened, with the few C functions it does not wrap declared."""
    lib = _import_fluidsynth()._fl
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


class SynthRenderer:
    """Holds the loaded soundfont; `render` is deterministic and safe to call repeatedly."""

    def __init__(self, soundfont: Path, sample_rate: int) -> None:
        fluidsynth = _import_fluidsynth()
        if not Path(soundfont).is_file():
            raise FileNotFoundError(f"soundfont not found: {soundfont} (apt package fluid-soundfont-gm)")
        self.sample_rate = sample_rate
        self._fluidsynth = fluidsynth
        self._lib = _libfluidsynth()
        # The loader synth only owns the soundfont; renders happen on fresh synths that borrow it.
        self._loader = fluidsynth.Synth(samplerate=float(sample_rate), channels=16, **SYNTH_SETTINGS)
        sfid = self._loader.sfload(str(soundfont))
        if sfid < 0:
            raise RuntimeError(f"FluidSynth could not load the soundfont {soundfont}")
        self._sfont = self._lib.fluid_synth_get_sfont_by_id(self._loader.synth, sfid)
        self._lock = threading.Lock()

    def render_stems(self, score: Score, buses: Mapping[str, Collection[int]]) -> dict[str, np.ndarray]:
        """One stereo stem per bus (a set of MIDI channels), each from its own fresh synth.

        Separate passes cost little more than one: FluidSynth's work is per sounding voice.
        """
        return {bus: self.render(score, channels) for bus, channels in buses.items()}

    def render(self, score: Score, channels: Collection[int] | None = None) -> np.ndarray:
        """Float32 stereo audio of shape (score.total_frames, 2), unnormalised; only `channels` if given."""
        if score.sample_rate != self.sample_rate:
            raise ValueError(f"score is at {score.sample_rate} Hz, the synth at {self.sample_rate} Hz")
        messages = []
        for event in score.events:
            if channels is not None and event.channel not in channels:
                continue
            messages.append((score.onset_sample(event), 1, event.channel, event.key, event.velocity))
            messages.append((score.offset_sample(event), 0, event.channel, event.key, 0))
        messages.sort()  # note-offs before note-ons at the same sample, so repeated notes retrigger
        out = np.zeros((score.total_frames, 2), dtype=np.float32)
        with self._lock:  # creating, configuring and releasing synths touches shared state: one at a time
            synth = self._fluidsynth.Synth(
                gain=SYNTH_GAIN, samplerate=float(self.sample_rate), channels=16, **SYNTH_SETTINGS
            )
            sfid = self._lib.fluid_synth_add_sfont(synth.synth, self._sfont)
            for channel in score.channels:
                synth.program_select(channel.channel, sfid, channel.bank, channel.program)
                synth.cc(channel.channel, 7, channel.volume)
                synth.cc(channel.channel, 10, channel.pan)
        try:  # rendering only reads the loaded soundfont, so synths may run on several threads
            position = 0
            for sample, is_on, channel, key, velocity in messages:
                if sample >= score.total_frames:
                    break
                if sample > position:
                    self._pull(synth, out, position, sample)
                    position = sample
                if is_on:
                    synth.noteon(channel, key, velocity)
                else:
                    synth.noteoff(channel, key)
            self._pull(synth, out, position, score.total_frames)
        finally:
            with self._lock:
                self._release(synth)
        return out

    def _pull(self, synth: Any, out: np.ndarray, start: int, stop: int) -> None:
        """Fill out[start:stop] (interleaved stereo rows) straight from the synth."""
        if stop > start:
            pointer = out.ctypes.data + start * out.strides[0]
            self._lib.fluid_synth_write_float(synth.synth, stop - start, pointer, 0, 2, pointer, 1, 2)

    def _release(self, synth: Any) -> None:
        """Hand the borrowed soundfont back before deleting the synth (deleting would free it).

        Removing it makes FluidSynth warn once per channel that no preset is left; those warnings are
        muted for just this call.
        """
        previous = self._lib.fluid_set_log_function(FLUID_WARN, None, None)
        try:
            self._lib.fluid_synth_remove_sfont(synth.synth, self._sfont)
        finally:
            self._lib.fluid_set_log_function(FLUID_WARN, previous, None)
        synth.delete()
