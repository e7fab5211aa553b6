"""Library versions from the offline engine: cut-downs, loops, stems and alt mixes of one track."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from tests.support.scores import events_for
from tests.support.tempo import onset_tempo
from textmusic.contract import TextToMusicRequest
from textmusic.engine import Engine
from textmusic.engine.compose import Form, compose
from textmusic.engine.versions import Version, check_kinds

SR = 44100
REQUEST = TextToMusicRequest(prompt="upbeat pop", seed=4, duration_seconds=64)
KINDS = ["60", "30", "15", "loop8", "stems", "underscore", "nodrums"]
LYRICS = """[verse]
walking down the empty road
counting every light
[chorus]
oh we sing tonight
till the morning light
"""


@pytest.fixture(scope="module")
def versions(engine: Engine) -> dict[str, Version]:
    return engine.render_versions(REQUEST, KINDS)


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio))))


def db(ratio: float) -> float:
    return 20 * np.log10(max(ratio, 1e-12))


def onsets(audio: np.ndarray) -> np.ndarray:
    """Onset times (s) librosa finds in the mono mix."""
    mono = librosa.resample(audio.mean(axis=1).astype(np.float32), orig_sr=SR, target_sr=22050)
    return librosa.onset.onset_detect(y=mono, sr=22050, units="time")


def chroma(audio: np.ndarray) -> np.ndarray:
    mono = librosa.resample(audio.mean(axis=1).astype(np.float32), orig_sr=SR, target_sr=22050)
    return librosa.feature.chroma_stft(y=mono, sr=22050).mean(axis=1)


def test_every_asked_version_is_there(versions: dict[str, Version]) -> None:
    assert set(versions) == {"full", "60s", "30s", "15s", "loop8", "stem:drums", "stem:bass", "stem:harmony",
                             "stem:lead", "underscore", "nodrums"}
    with pytest.raises(ValueError, match="unknown version"):
        check_kinds(["full", "90"])


@pytest.mark.parametrize("seconds", [60, 30, 15])
def test_cutdown_is_exact_and_ends_on_a_late_downbeat_that_rings_out(versions: dict[str, Version],
                                                                      seconds: int) -> None:
    audio = versions[f"{seconds}s"].audio
    assert len(audio) == seconds * SR  # within ±0.25 s: exact to the sample, ring-out included
    last = float(onsets(audio)[-1])
    assert seconds - 1.5 <= last < seconds - 0.5  # the final hit; no onset in the ring-out
    score = compose(REQUEST, SR, form=Form("cut", seconds=seconds))
    assert abs(last - score.end_beat * 60 / score.bpm) < 0.08  # it is the composed final chord
    hit = rms(audio[round(last * SR): round((last + 0.3) * SR)])
    assert db(rms(audio[-round(0.05 * SR):]) / hit) < -15  # it decays by itself to the end
    before = audio[round((last - 2.0) * SR): round(last * SR)]
    assert db(rms(before) / rms(audio)) > -6  # the music plays at full level up to the hit: no fade


def test_cutdown_has_the_full_songs_key_and_tempo(versions: dict[str, Version]) -> None:
    full, cut = chroma(versions["full"].audio), chroma(versions["30s"].audio)
    same = np.corrcoef(full, cut)[0, 1]
    assert same > 0.9
    assert all(same > np.corrcoef(np.roll(full, shift), cut)[0, 1] for shift in range(1, 12))
    bpm = compose(REQUEST, SR).bpm
    for name in ("full", "30s"):
        assert abs(onset_tempo(versions[name].audio, SR, lo=70.0) - bpm) / bpm < 0.02, name


def test_material_is_drawn_before_the_form() -> None:
    """The hook's tune is the same in the full song and in a 15 s cut-down."""
    full, cut = compose(REQUEST, SR), compose(REQUEST, SR, form=Form("cut", seconds=15))
    assert (full.bpm, full.tonic, full.mode, full.style) == (cut.bpm, cut.tonic, cut.mode, cut.style)

    def hook_tune(score: object) -> list[tuple[float, int]]:
        hook = next(section for section in score.sections if section.name == "B")
        start = hook.start_bar * 4
        return [(round(e.beat - start, 6), e.key) for e in events_for(score, "lead") if start <= e.beat < start + 8]

    assert hook_tune(full) and hook_tune(full) == hook_tune(cut)


def test_loop_is_exact_and_wraps_without_a_click(versions: dict[str, Version]) -> None:
    loop = versions["loop8"].audio
    bpm = compose(REQUEST, SR).bpm
    assert len(loop) == round(8 * 4 * 60 / bpm * SR)
    steps = np.abs(np.diff(loop, axis=0))
    jump = np.abs(loop[0] - loop[-1])
    assert np.all(jump <= np.percentile(steps, 99, axis=0)), (jump, np.percentile(steps, 99, axis=0))
    # Sharper: no rougher than the music on either side of the seam (10 ms each way). A loop whose
    # synth decays are not wrapped onto its start measured 2.2-3.6 here, this one 1.1.
    seam = np.abs(np.diff(np.concatenate([loop[-441:], loop[:441]]), axis=0))
    assert np.all(jump <= 1.5 * np.median(np.delete(seam, 440, axis=0), axis=0))
    # The decays of the loop's end sound under its first notes: no restart from silence (a synth voice
    # starts from zero, so without the wrapped tail the first 2 ms would be all but silent).
    assert db(rms(loop[: round(0.002 * SR)]) / rms(loop)) > -30


def test_stems_sum_to_the_full_mix(versions: dict[str, Version]) -> None:
    full = versions["full"].audio
    stems = {name: v.audio for name, v in versions.items() if name.startswith("stem:")}
    assert all(rms(audio) > 1e-3 for audio in stems.values())
    assert db(rms(sum(stems.values()) - full) / rms(full)) <= -40


def test_underscore_and_nodrums_leave_their_parts_out(versions: dict[str, Version]) -> None:
    full, lead, drums = (versions[name].audio for name in ("full", "stem:lead", "stem:drums"))
    under, nodrums = versions["underscore"].audio, versions["nodrums"].audio
    assert db(rms(under - (full - lead)) / rms(full)) <= -40
    assert db(rms(nodrums - (full - drums)) / rms(full)) <= -40

    def share(mix: np.ndarray, part: np.ndarray) -> float:
        """How much of `part` is in `mix` (least-squares coefficient)."""
        return float(np.sum(mix * part) / np.sum(part * part))

    assert share(full, lead) > 0.8 and abs(share(under, lead)) < 0.2
    assert share(full, drums) > 0.8 and abs(share(nodrums, drums)) < 0.2


def test_versions_are_deterministic_and_leave_the_full_render_alone(engine: Engine,
                                                                     versions: dict[str, Version]) -> None:
    again = engine.render_versions(REQUEST, ["15"])
    assert np.array_equal(again["15s"].audio, versions["15s"].audio)
    assert np.array_equal(again["full"].audio, versions["full"].audio)  # with or without stems asked


def test_a_song_cut_down_sings_its_chorus(engine: Engine) -> None:
    request = TextToMusicRequest(prompt="upbeat pop", lyrics=LYRICS, seed=2)
    score = engine.compose(request, Form("cut", seconds=15))
    assert score.lines and set(score.lines) <= {"oh we sing tonight", "till the morning light"}
    assert score.vocal and max(n.beat + n.duration for n in score.vocal) <= score.end_beat
    sung = engine.render_versions(request, ["15", "stems"])
    assert len(sung["15s"].audio) == 15 * SR
    stems = [v.audio for name, v in sung.items() if name.startswith("stem:")]
    assert "stem:vocals" in sung and rms(sung["stem:vocals"].audio) > 1e-3
    assert db(rms(sum(stems) - sung["full"].audio) / rms(sung["full"].audio)) <= -40
