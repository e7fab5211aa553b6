"""The key finder on real audio (chord progressions synthesised from sine partials, written and read back as a
delivered file is), its spellings and warnings, and the brief's key as a local extension of the request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tasks.delivery.key import CONFIDENT, KEY_NAMES, key_warning, measure_key, same_key, tagged_key
from tasks.intake.plan import request_fingerprint
from tasks.intake.validate import validate_brief
from textmusic.client import TextMusicClient
from textmusic.contract import LOCAL_EXTENSION_FIELDS, TextToMusicRequest, parse_key

RATE = 44100
CHORD_SECONDS = 1.5
# Scale degrees (semitones above the tonic) of each chord's root and triad: I IV V I; minor i iv V i (the
# dominant with the leading tone, as common practice writes it).
MAJOR_CADENCE = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7))
MINOR_CADENCE = ((0, 3, 7), (5, 8, 12), (7, 11, 14), (0, 3, 7))


def _note(midi: float, seconds: float) -> np.ndarray:
    """A plucked tone: four sine partials, a short attack and an exponential decay."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k**1.5 for k in range(1, 5) if f0 * k < RATE / 2)
    return tone * np.minimum(t / 0.01, 1.0) * np.exp(-t * 1.2)


def progression(key: str, repeats: int = 3) -> np.ndarray:
    """I–IV–V–I (or i–iv–V–i) in `key`: a bass root in octave 2 and the triad around middle C, stereo."""
    tonic, mode = parse_key(key)
    chords = MAJOR_CADENCE if mode == "major" else MINOR_CADENCE
    base = 60 + (tonic + 6) % 12 - 6  # the tonic nearest middle C
    bars = []
    for _ in range(repeats):
        for chord in chords:
            voices = [_note(base - 24 + chord[0], CHORD_SECONDS)] + [_note(base + d, CHORD_SECONDS) for d in chord]
            bars.append(sum(voices))
    mono = np.concatenate(bars)
    mono = 0.5 * mono / np.abs(mono).max()
    return np.stack([mono, mono], axis=1)


@pytest.mark.parametrize("key", ["C", "G", "Eb", "Am", "F#m", "Bbm"])
def test_a_synthesised_cadence_is_measured_in_its_key(tmp_path: Path, key: str) -> None:
    path = tmp_path / "cadence.wav"
    sf.write(path, progression(key), RATE, subtype="PCM_16")
    found = measure_key(path)
    assert found["key_measured"] == key
    assert isinstance(found["key_confidence"], float) and found["key_confidence"] >= CONFIDENT


def test_silence_has_no_key(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros((RATE * 3, 2)), RATE, subtype="PCM_16")
    assert measure_key(path) == {"key_measured": "", "key_confidence": None}


def test_one_spelling_table_within_the_brief_column_rule() -> None:
    names = [name for mode in ("major", "minor") for name in KEY_NAMES[mode]]
    assert len(set(names)) == 24 and all(len(n) <= 3 for n in names)
    assert [parse_key(n) for n in KEY_NAMES["minor"]] == [(pc, "minor") for pc in range(12)]
    assert same_key("C#m", "Dbm") and same_key("Gb", "F#") and not same_key("Dm", "F") and not same_key("", "")


def test_a_key_other_than_the_briefs_is_a_warning_naming_both() -> None:
    assert key_warning("Dm", "Dm", 0.9) == ""
    assert key_warning("", "F", 0.9) == ""  # the brief asks no key
    assert key_warning("Dm", "F", 0.9) == "brief asks Dm, the audio is in F (the relative major)"
    assert key_warning("G", "D", 0.9) == "brief asks G, the audio is in D (a fifth away)"
    assert key_warning("Dm", "D", 0.9) == "brief asks Dm, the audio is in D (the parallel major)"
    assert key_warning("C", "F#m", 0.3) == "brief asks C, the audio is in F#m (low confidence 0.30)"


def test_the_key_tag_is_the_key_heard_when_sure_else_the_briefs() -> None:
    assert tagged_key("Dm", "D", 0.9) == "D"
    assert tagged_key("Dm", "D", 0.4) == "Dm"
    assert tagged_key("", "Eb", 0.8) == "Eb"
    assert tagged_key("Ab", "", None) == "Ab"


def _brief(key: str) -> pd.DataFrame:
    from tasks.intake.brief import KNOWN_COLUMNS

    cells = dict.fromkeys(KNOWN_COLUMNS, "")
    cells.update(track_id="t1", name="T", prompt="calm piano in C major", key=key)
    return pd.DataFrame([{"row": 1, **cells}])


def test_the_briefs_key_reaches_the_request_for_the_local_service_only() -> None:
    rows = validate_brief(_brief("F#m")).rows
    request = rows[0].request.model_copy(update={"seed": 1})
    assert request.key == "F#m" and rows[0].metadata["key"] == "F#m"
    assert "key" in LOCAL_EXTENSION_FIELDS
    hosted = TextMusicClient("https://api.example.test", "k", local_extensions=False)
    local = TextMusicClient("http://127.0.0.1:1", "k", local_extensions=True)
    assert "key" not in hosted.request_body(request)
    assert local.request_body(request)["key"] == "F#m"
    keyless = request.model_copy(update={"key": None})
    assert "key" not in local.request_body(keyless)
    # The key shapes the local audio, so it is part of the fingerprint there; a hosted provider is not sent it.
    assert request_fingerprint(request, "local", True) != request_fingerprint(keyless, "local", True)
    assert request_fingerprint(request, "hosted", False) == request_fingerprint(keyless, "hosted", False)
    # A request without a key keeps the fingerprint it had before the field existed (no "key": null in it).
    assert '"key"' not in keyless.model_dump_json(exclude_none=True)


@pytest.mark.parametrize("bad", ["H", "c", "Dmaj", "C##", "Em7"])
def test_a_key_the_brief_rule_refuses_the_contract_refuses(bad: str) -> None:
    with pytest.raises(ValueError, match="key"):
        TextToMusicRequest(prompt="x", key=bad)


def test_a_rerender_asks_for_the_key_the_song_was_composed_in_and_no_other() -> None:
    from tasks.catalog.ledger import LedgerRecord
    from tasks.catalog.rerender import rerender_rows

    def song(track_id: str, key_requested: str) -> LedgerRecord:
        return LedgerRecord(catalog="c", track_id=track_id, status="ready", name="T", prompt="calm piano", seed=1,
                            prompt_strength=2.0, balance_strength=0.7,
                            output_format="wav", bpm_requested="auto", audio_path=f"{track_id}.wav", key="Dm",
                            key_requested=key_requested)

    # Rendered in the key asked; rendered before the key was sent (or by a hosted provider): not asked now either.
    rows = rerender_rows([song("keyed", "Dm"), song("older", "")], "textmusic-local", True)
    assert [row.request.key for row in rows] == ["Dm", None]
