"""FluidSynth rendering of a Score: the soundfonts are loaded once and shared by a fresh synth per render.

Two General-MIDI soundfonts (both Debian packages, MIT): FluidR3 and MuseScore General. Each GM program
(and drum kit) plays from the font chosen for it in PROGRAM_FONTS (data, measured and argued in
docs/soundfonts.md); the rest play from FluidR3. MuseScore General ships as .sf3 (Ogg Vorbis samples):
loading all of it costs ~9 s, so it is opened with FluidSynth's dynamic sample loading (~0.02 s) and a
preset's samples are decoded when a render first selects it; the loader synth then keeps that preset
selected on a channel of its own, so the samples stay decoded for the life of the renderer. FluidSynth
decodes those samples with libsndfile, and which libsndfile that is depends on import order (see
`_check_sndfile`): this module imports soundfile before pyfluidsynth so that it is always the same one.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile  # before pyfluidsynth: its libsndfile is then the one FluidSynth decodes .sf3 with

from textmusic.engine.compose import Channel, Score

SYNTH_GAIN = 0.2
SYNTH_SETTINGS = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 512}
FLUID_WARN = 2
RESET_PROGRAM = 80  # a GM preset with few, short samples (see `render`)
BEND_RANGE = 12  # pitch-wheel range of every melodic channel, semitones (RPN 0), so an 808 can glide an octave
GEN_ATTENUATION = 48  # SoundFont generator: attenuation in centibels, offset per channel


@dataclass(frozen=True)
class Font:
    path: Path
    package: str  # the Debian package that installs it


FONTS: Mapping[str, Font] = {
    "fluidr3": Font(Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), "fluid-soundfont-gm"),
    "musescore": Font(Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3"), "musescore-general-soundfont"),
}
FONT_PATHS: Mapping[str, Path] = {name: font.path for name, font in FONTS.items()}
DEFAULT_FONT = "fluidr3"
# (bank, program) -> (font, level offset dB). Bank 0 is the GM melodic set, bank 128 the drum kits.
# Everything not listed plays from DEFAULT_FONT at 0 dB. The offsets bring a routed preset to the level
# the FluidR3 preset had (measured by benchmarks/soundfonts.py), so the styles' balances keep holding.
PROGRAM_FONTS: Mapping[tuple[int, int], tuple[str, float]] = {
    (0, 40): ("musescore", 3.0),  # violin
    (0, 42): ("musescore", 0.0),  # cello
    (0, 71): ("musescore", 6.0),  # clarinet
    (128, 8): ("musescore", -3.0),  # room kit
    (128, 32): ("musescore", -3.0),  # jazz kit
}
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "fluid_synth_write_float": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                               ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]),
    "fluid_synth_get_sfont_by_id": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
    "fluid_synth_add_sfont": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
    "fluid_synth_remove_sfont": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
    "fluid_set_log_function": (ctypes.c_void_p, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]),
    "fluid_sfont_get_id": (ctypes.c_int, [ctypes.c_void_p]),
    "fluid_synth_set_gen": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_float]),
    "fluid_synth_activate_key_tuning": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                                       ctypes.POINTER(ctypes.c_double), ctypes.c_int]),
    "fluid_synth_activate_tuning": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                                   ctypes.c_int]),
}
SNDFILE_SONAME = "libsndfile.so.1"


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


def _check_sndfile() -> None:
    """Fail unless FluidSynth decodes with the same libsndfile as soundfile (call once libfluidsynth is loaded).

    The soundfile wheel bundles its own libsndfile (1.2.2 here; Debian's is 1.2.0) under the same soname, and a
    process holds only the first one loaded, which libfluidsynth then uses to decode a .sf3's Ogg Vorbis samples.
    Their decodes differ a little (a jazz-kit render: 0.4 % of its samples, by up to 2e-6), so a render depended on
    whether soundfile was imported before FluidSynth (in pytest or the server it was, in `textmusic render` not).
    Importing soundfile at the top of this module settles it; this catches a process that loaded FluidSynth first.
    """
    version = ctypes.CDLL(SNDFILE_SONAME).sf_version_string
    version.restype = ctypes.c_char_p
    fluid = version().decode().removeprefix("libsndfile-")
    if fluid != soundfile.__libsndfile_version__:
        raise RuntimeError(f"FluidSynth decodes with libsndfile {fluid}, soundfile with "
                           f"{soundfile.__libsndfile_version__}: libfluidsynth was loaded before soundfile, so .sf3 "
                           "renders would not be sample-identical to other processes' (import "
                           "textmusic.engine.synth before pyfluidsynth)")


def route(bank: int, program: int) -> tuple[str, float]:
    """The font a GM preset plays from and its level offset (dB)."""
    return PROGRAM_FONTS.get((bank, program), (DEFAULT_FONT, 0.0))


class _Loaded:
    """One soundfont held by its own loader synth; with dynamic loading the loader also pins every preset
    a render has used (selected on a channel of its own), so its decoded samples are kept."""

    PIN_CHANNELS = 256

    def __init__(self, fluidsynth: Any, lib: Any, name: str, path: Path, sample_rate: int) -> None:
        dynamic = path.suffix == ".sf3"  # compressed samples: decode a preset's on first use
        settings = dict(SYNTH_SETTINGS)
        if dynamic:
            _check_sndfile()
            settings["synth.dynamic-sample-loading"] = 1
        self.loader = fluidsynth.Synth(samplerate=float(sample_rate), channels=self.PIN_CHANNELS if dynamic else 16,
                                       **settings)
        sfid = self.loader.sfload(str(path))
        if sfid < 0:
            raise RuntimeError(f"FluidSynth could not load the soundfont {path} ({name})")
        self.lib = lib
        self.sfont = lib.fluid_synth_get_sfont_by_id(self.loader.synth, sfid)
        self.dynamic = dynamic
        self.pinned: dict[tuple[int, int], int] = {}

    def pin(self, bank: int, program: int) -> None:
        """Keep a preset's samples decoded (call under the renderer's lock, before a render selects it).

        Every synth the font is added to gives it a new id, so the loader asks for its current one."""
        if self.dynamic and (bank, program) not in self.pinned and len(self.pinned) < self.PIN_CHANNELS:
            channel = len(self.pinned)
            self.loader.program_select(channel, self.lib.fluid_sfont_get_id(self.sfont), bank, program)
            self.pinned[(bank, program)] = channel


class SynthRenderer:
    """Holds the loaded soundfonts; `render` is deterministic and safe to call repeatedly.

    `soundfont` replaces the default font's file (the `TEXTMUSIC_SOUNDFONT` setting); `fonts` (name -> path)
    replaces the whole set. A font file that is missing is an error naming the package that installs it.
    """

    def __init__(self, soundfont: Path | None, sample_rate: int, fonts: Mapping[str, Path] | None = None) -> None:
        fluidsynth = _import_fluidsynth()
        paths = dict(FONT_PATHS if fonts is None else fonts)
        if soundfont is not None:
            paths[DEFAULT_FONT] = Path(soundfont)
        needed = {DEFAULT_FONT} | {font for font, _ in PROGRAM_FONTS.values()}
        for name in sorted(needed):
            if name not in paths:
                raise ValueError(f"no file given for the soundfont {name!r} (PROGRAM_FONTS routes presets to it)")
            if not Path(paths[name]).is_file():
                package = FONTS[name].package if name in FONTS else "?"
                raise FileNotFoundError(f"soundfont {name!r} not found: {paths[name]} "
                                        f"(install the Debian package {package}: apt-get install {package})")
        self.sample_rate = sample_rate
        self._fluidsynth = fluidsynth
        self._lib = _libfluidsynth()
        # The loader synths only own the soundfonts; renders happen on fresh synths that borrow them.
        self._fonts = {name: _Loaded(fluidsynth, self._lib, name, Path(paths[name]), sample_rate)
                       for name in sorted(needed)}
        self._lock = threading.Lock()

    def render(self, score: Score, channels: Collection[int] | None = None) -> np.ndarray:
        """Float32 stereo audio of shape (score.total_frames, 2), unnormalised; only `channels` if given."""
        if score.sample_rate != self.sample_rate:
            raise ValueError(f"score is at {score.sample_rate} Hz, the synth at {self.sample_rate} Hz")
        messages = _messages(score, channels)
        out = np.zeros((score.total_frames, 2), dtype=np.float32)
        setup = [channel for channel in score.channels if channels is None or channel.channel in channels]
        with self._lock:  # creating, configuring and releasing synths touches shared state: one at a time
            synth, fonts = self._synth_for(setup)
        try:  # rendering only reads the loaded soundfont, so synths may run on several threads
            position = 0
            for sample, kind, channel, key, velocity in messages:
                if sample >= score.total_frames:
                    break
                if sample > position:
                    self._pull(synth, out, position, sample)
                    position = sample
                if kind == NOTE_ON:
                    synth.noteon(channel, key, velocity)
                elif kind == NOTE_OFF:
                    synth.noteoff(channel, key)
                else:
                    synth.pitch_bend(channel, key)
            self._pull(synth, out, position, score.total_frames)
        finally:
            with self._lock:
                self._release(synth, fonts)
        return out

    def _synth_for(self, setup: list[Channel]) -> tuple[Any, set[str]]:
        """A fresh synth with the render's channels set up (preset, font, level, pan), and the fonts it
        borrowed (to release). Called under the lock."""
        synth = self._fluidsynth.Synth(
            gain=SYNTH_GAIN, samplerate=float(self.sample_rate), channels=16, **SYNTH_SETTINGS
        )
        # Only the fonts this render plays from, the default first. Adding a font re-selects every channel's
        # program from the newest font; the channels are first moved to RESET_PROGRAM, a preset that is
        # cheap to decode and kept pinned, so no render decodes (say) a 2 s piano it does not play.
        fonts = {DEFAULT_FONT} | {route(channel.bank, channel.program)[0] for channel in setup}
        ids = {DEFAULT_FONT: self._lib.fluid_synth_add_sfont(synth.synth, self._fonts[DEFAULT_FONT].sfont)}
        for name in sorted(fonts - {DEFAULT_FONT}):
            for index in range(16):
                if index != 9:
                    synth.program_change(index, RESET_PROGRAM)
            self._fonts[name].pin(0, RESET_PROGRAM)
            self._fonts[name].pin(128, 0)
            ids[name] = self._lib.fluid_synth_add_sfont(synth.synth, self._fonts[name].sfont)
        for channel in setup:  # only this render's channels: selecting another preset would decode it
            font, offset_db = route(channel.bank, channel.program)
            self._fonts[font].pin(channel.bank, channel.program)  # first use: decoded here, once
            synth.program_select(channel.channel, ids[font], channel.bank, channel.program)
            if offset_db:
                self._lib.fluid_synth_set_gen(synth.synth, channel.channel, GEN_ATTENUATION,
                                              ctypes.c_float(-10.0 * offset_db))
            synth.cc(channel.channel, 7, channel.volume)
            synth.cc(channel.channel, 10, channel.pan)
            if channel.tuning:  # retuned keys (a kit's pitched drums): a key tuning of the channel's own
                cents = dict(channel.tuning)
                pitch = (ctypes.c_double * 128)(*(100.0 * key + cents.get(key, 0) for key in range(128)))
                self._lib.fluid_synth_activate_key_tuning(synth.synth, 0, channel.channel, b"tuned", pitch, 0)
                self._lib.fluid_synth_activate_tuning(synth.synth, channel.channel, 0, channel.channel, 0)
            if channel.bank == 0:  # RPN 0 (pitch-bend sensitivity) to BEND_RANGE semitones, then RPN null
                for number, value in ((101, 0), (100, 0), (6, BEND_RANGE), (38, 0), (101, 127), (100, 127)):
                    synth.cc(channel.channel, number, value)
        return synth, fonts

    def _pull(self, synth: Any, out: np.ndarray, start: int, stop: int) -> None:
        """Fill out[start:stop] (interleaved stereo rows) straight from the synth."""
        if stop > start:
            pointer = out.ctypes.data + start * out.strides[0]
            self._lib.fluid_synth_write_float(synth.synth, stop - start, pointer, 0, 2, pointer, 1, 2)

    def _release(self, synth: Any, fonts: Collection[str]) -> None:
        """Hand the borrowed soundfonts back before deleting the synth (deleting would free them).

        Removing a font re-selects every channel's program from the fonts left, so the default font goes last:
        removed first, it would make each of its channels select (and decode) that program from MuseScore
        (the grand piano: 1.5-2 s under the lock, for nothing). Removing the last font makes FluidSynth warn once
        per channel that no preset is left; those warnings are muted for just this call.
        """
        previous = self._lib.fluid_set_log_function(FLUID_WARN, None, None)
        try:
            for name in sorted(fonts, key=lambda name: (name == DEFAULT_FONT, name)):
                self._lib.fluid_synth_remove_sfont(synth.synth, self._fonts[name].sfont)
        finally:
            self._lib.fluid_set_log_function(FLUID_WARN, previous, None)
        synth.delete()


NOTE_OFF, BEND, NOTE_ON = 0, 1, 2  # message kinds, in their order at one sample


def _messages(score: Score, channels: Collection[int] | None) -> list[tuple[int, int, int, int, int]]:
    """The score's notes and bends as (sample, kind, channel, key or wheel value, velocity), in time order:
    note-offs first at the same sample, so repeated notes retrigger, then bends, so a note bent into starts
    at the bent pitch. Bends of one channel at one sample keep the score's order, never their values': an
    808 glide's last step and the wheel's return to rest share the sample, and sorted by value the return
    to 0 came before an upward glide's end, leaving the wheel up (the next note sounded a major third or a
    fourth too high)."""
    messages = []
    for event in score.events:
        if channels is not None and event.channel not in channels:
            continue
        messages.append((score.onset_sample(event), NOTE_ON, event.channel, event.key, event.velocity))
        messages.append((score.offset_sample(event), NOTE_OFF, event.channel, event.key, 0))
    for bend in score.bends:
        if channels is not None and bend.channel not in channels:
            continue
        value = max(-8192, min(8191, round(bend.semitones / BEND_RANGE * 8192)))
        messages.append((score.beat_to_sample(bend.beat), BEND, bend.channel, value, 0))
    messages.sort(key=lambda m: m[:3] if m[1] == BEND else m)  # stable: same-sample bends in score order
    return messages
