"""FluidSynth rendering of a Score: one loaded soundfont, reused and reset between renders.

Rendering steps through the sorted note events, pulling float samples from the synth up to each
event's exact sample position. FluidSynth applies events at its 64-frame block boundaries, so an
audible onset can trail its exact position by up to 63 frames (1.4 ms at 44.1 kHz); the error never
accumulates because every position comes from the absolute beat. Reverb and chorus are off: their
internal state would otherwise carry from one render into the next.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np

from textmusic.engine.compose import Score

BLOCK = 64  # FluidSynth's internal block size (FLUID_BUFSIZE)
SETTLE_FRAMES = 64 * BLOCK  # silence pulled after a reset, so no voice survives into the next render
SYNTH_GAIN = 0.2


class SynthRenderer:
    """Holds one FluidSynth instance with the soundfont loaded; `render` is safe to call repeatedly."""

    def __init__(self, soundfont: Path, sample_rate: int) -> None:
        import fluidsynth

        if not Path(soundfont).is_file():
            raise FileNotFoundError(f"soundfont not found: {soundfont} (apt package fluid-soundfont-gm)")
        self.sample_rate = sample_rate
        self._synth = fluidsynth.Synth(
            gain=SYNTH_GAIN,
            samplerate=float(sample_rate),
            **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 512},
        )
        self._sfid = self._synth.sfload(str(soundfont))
        if self._sfid < 0:
            raise RuntimeError(f"FluidSynth could not load the soundfont {soundfont}")
        write = fluidsynth._fl.fluid_synth_write_float
        write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                          ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        write.restype = ctypes.c_int
        self._write_float = write
        self._frames_pulled = 0  # since the synth was created; keeps renders block-aligned
        self._lock = threading.Lock()

    def render(self, score: Score) -> np.ndarray:
        """Float32 stereo audio of shape (score.total_frames, 2), unnormalised."""
        if score.sample_rate != self.sample_rate:
            raise ValueError(f"score is at {score.sample_rate} Hz, the synth at {self.sample_rate} Hz")
        with self._lock:
            self._reset()
            self._setup(score)
            out = np.zeros((score.total_frames, 2), dtype=np.float32)
            messages = []
            for event in score.events:
                messages.append((score.onset_sample(event), 1, event.channel, event.key, event.velocity))
                messages.append((score.offset_sample(event), 0, event.channel, event.key, 0))
            messages.sort()  # note-offs before note-ons at the same sample, so repeated notes retrigger
            position = 0
            for sample, is_on, channel, key, velocity in messages:
                if sample >= score.total_frames:
                    break
                if sample > position:
                    self._pull(out, position, sample)
                    position = sample
                if is_on:
                    self._synth.noteon(channel, key, velocity)
                else:
                    self._synth.noteoff(channel, key)
            self._pull(out, position, score.total_frames)
            return out

    def _pull(self, out: np.ndarray, start: int, stop: int) -> None:
        """Fill out[start:stop] (interleaved stereo rows) straight from the synth."""
        frames = stop - start
        if frames <= 0:
            return
        pointer = out.ctypes.data + start * out.strides[0]
        self._write_float(self._synth.synth, frames, pointer, 0, 2, pointer, 1, 2)
        self._frames_pulled += frames

    def _discard(self, frames: int) -> None:
        scratch = np.zeros((frames, 2), dtype=np.float32)
        self._pull(scratch, 0, frames)

    def _reset(self) -> None:
        """Silence every voice, reset controllers and programs, and realign to a block boundary."""
        for channel in range(16):
            self._synth.all_sounds_off(channel)
        self._synth.system_reset()
        self._discard(SETTLE_FRAMES + (-self._frames_pulled - SETTLE_FRAMES) % BLOCK)

    def _setup(self, score: Score) -> None:
        for channel in score.channels:
            self._synth.program_select(channel.channel, self._sfid, channel.bank, channel.program)
            self._synth.cc(channel.channel, 7, channel.volume)
            self._synth.cc(channel.channel, 10, channel.pan)
