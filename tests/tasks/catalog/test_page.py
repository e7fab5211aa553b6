"""The catalog page's HTML, read back with the standard library's HTML parser: what it shows for each
ledger row, that text from a brief cannot become markup or script, and that waveforms are decoded once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tasks.catalog.decisions import ReviewEntry, record_decision
from tasks.catalog.ledger import LedgerRecord, load_ledger, write_ledger
from tasks.catalog.page import render_page, write_page
from tasks.catalog.page import waveform as waveform_module
from tasks.catalog.page.cards import build_cards
from textmusic.audio.identity import sha256_file

HOSTILE = '<script>alert("t")</script><img src=x onerror=alert(1)>'


@dataclass
class Article:
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)
    audio: list[dict[str, str]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)


class Page(HTMLParser):
    """Cards (their attributes, text, players), scripts and every attribute name, as a browser parses them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.cards: list[Article] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self.attribute_names: set[str] = set()
        self._open: Article | None = None
        self._script: dict[str, str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.attribute_names |= set(values)
        if tag == "article":
            self._open = Article(values)
            self.cards.append(self._open)
        elif tag == "script":
            self._script = values
        elif self._open is not None and tag == "audio":
            self._open.audio.append(values)
        elif self._open is not None and tag == "img":
            self._open.images.append(values["src"])
        elif self._open is not None and tag == "button":
            self._open.buttons.append(values.get("data-decision", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts.append((self._script, data))
            self._script = None
        elif self._open is not None and data.strip():
            self._open.text.append(data.strip())

    def card(self, track_id: str, song_index: int = 0) -> Article:
        found = [c for c in self.cards if c.attrs["data-track-id"] == track_id
                 and c.attrs["data-song-index"] == str(song_index)]
        assert len(found) == 1, [c.attrs for c in self.cards]
        return found[0]


def tone(path: Path, seconds: float, frequency: float = 220.0, amplitude: float = 0.5) -> Path:
    rate = 22050
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, amplitude * np.sin(2 * np.pi * frequency * t), rate)
    return path


def ready(out: Path, track_id: str, name: str, row: int, *, seconds: float = 2.0, song_index: int = 0,
          file: str | None = None, **fields: object) -> LedgerRecord:
    """A delivered song whose file really exists (a short tone), recorded as a run records it."""
    audio = file or f"{track_id}-{song_index}.wav"
    tone(out / audio, seconds, frequency=200 + 40 * row + 10 * song_index)
    values: dict[str, object] = {
        "catalog": "demo", "track_id": track_id, "song_index": song_index, "name": name, "status": "ready",
        "row": row, "seed": 1000 + row * 10 + song_index, "prompt": f"calm piano {track_id}", "tags": "lofi|chill",
        "output_format": "wav", "bpm": 80.0 + row, "duration_seconds": seconds, "audio_path": audio,
        "sha256": sha256_file(out / audio), "request_fingerprint": f"fp-{track_id}-{song_index}",
        "finished_at": f"2026-01-01T00:00:{row:02d}", **fields,
    }
    return LedgerRecord.model_validate(values)


def not_delivered(track_id: str, row: int, status: str, error: str) -> LedgerRecord:
    return LedgerRecord(catalog="demo", track_id=track_id, name=f"Song {track_id}", status=status, row=row,  # type: ignore[arg-type]
                        error=error, output_format="mp3")


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    records = [
        ready(tmp_path, "a-1", "Rainy Window", 1, mood="calm", key="Am"),
        ready(tmp_path, "b-2", HOSTILE, 2, prompt=f"prompt {HOSTILE}", tags='rock|"quoted" & <b>'),
        ready(tmp_path, "c-3", "Twin", 3, num_songs=2),
        ready(tmp_path, "c-3", "Twin", 3, num_songs=2, song_index=1),
        not_delivered("d-4", 4, "failed", "timeout: the provider never finished the track"),
        not_delivered("e-5", 5, "rejected", "bpm: 'fast' is not a number or auto"),
        not_delivered("f-6", 6, "skipped", "over budget: up to $0.40 would exceed the $1.00 budget"),
        not_delivered("g-7", 7, "unanswered", "the answer was lost: may have been charged"),
    ]
    write_ledger(tmp_path, records)
    return tmp_path


def test_one_card_per_song_with_what_the_ledger_says(catalog: Path) -> None:
    page = Page(render_page(catalog))
    assert [(c.attrs["data-track-id"], c.attrs["data-song-index"]) for c in page.cards] == [
        ("a-1", "0"), ("b-2", "0"), ("c-3", "0"), ("c-3", "1"), ("d-4", "0"), ("e-5", "0"), ("f-6", "0"),
        ("g-7", "0")]
    first = page.card("a-1")
    assert first.attrs["data-status"] == "ready" and first.attrs["data-seed"] == "1010"
    assert first.attrs["data-file"] == "a-1-0.wav" and first.attrs["data-bpm"] == "81.0"
    assert [a["src"] for a in first.audio] == ["a-1-0.wav"]
    assert all(a["preload"] == "none" and "controls" in a for a in first.audio)
    for text in ("Rainy Window", "calm", "Am", "81", "0:02", "1010", "calm piano a-1", "lofi", "chill"):
        assert text in first.text, text
    assert page.card("c-3", 1).attrs["data-seed"] == "1031" and "song 2" in " ".join(page.card("c-3", 1).text)


def test_rows_not_delivered_show_their_status_and_reason_without_a_player(catalog: Path) -> None:
    page = Page(render_page(catalog))
    for track_id, status, reason in (("d-4", "failed", "timeout"), ("e-5", "rejected", "'fast' is not a number"),
                                     ("f-6", "skipped", "over budget"), ("g-7", "unanswered", "may have been")):
        card = page.card(track_id)
        assert card.attrs["data-status"] == status and status in card.text
        assert any(reason in text for text in card.text), card.text
        assert card.audio == [] and card.images == [] and card.attrs["data-file"] == ""


def test_text_from_the_brief_is_escaped_never_markup(catalog: Path) -> None:
    record_decision(catalog, ReviewEntry(track_id="b-2", seed=1020, decision="reject", note=f"note {HOSTILE}"))
    html = render_page(catalog, review_token="tok</script><b>")
    page = Page(html)
    assert HOSTILE not in html and "<img src=x" not in html
    assert [attrs.get("type", "") for attrs, _ in page.scripts] == ["application/json", ""]  # only ours
    assert not [name for name in page.attribute_names if name.startswith("on")]  # no inline event handlers
    card = page.card("b-2")
    assert HOSTILE in card.text and f"prompt {HOSTILE}" in card.text and f"note {HOSTILE}" in card.text
    assert card.attrs["data-tags"] == 'rock|"quoted" & <b>'  # an attribute value, intact
    config = json.loads(page.scripts[0][1])
    assert config == {"review": True, "token": "tok</script><b>"}
    assert "</script><b>" not in page.scripts[0][1]


def test_the_static_page_carries_no_token_and_shows_decisions_read_only(catalog: Path) -> None:
    record_decision(catalog, ReviewEntry(track_id="a-1", seed=1010, file="a-1-0.wav", decision="approve",
                                         note="great intro"))
    record_decision(catalog, ReviewEntry(track_id="c-3", seed=999, decision="reject"))  # an older take of c-3
    token = "review-token-3f9a0c"
    static, review = Page(render_page(catalog)), Page(render_page(catalog, review_token=token))
    assert json.loads(static.scripts[0][1]) == {"review": False, "token": ""}
    assert token not in render_page(catalog)
    approved = static.card("a-1")
    assert approved.attrs["data-decision"] == "approve"
    assert "approve" in approved.text and "great intro" in approved.text
    assert approved.buttons == [] and all(c.buttons == [] for c in static.cards)
    assert "data-decision" not in static.card("c-3").attrs  # the decision was made on another seed
    assert json.loads(review.scripts[0][1])["token"] == token
    assert review.card("a-1").buttons == ["approve", "reject"] and review.card("d-4").buttons == []


def test_audio_paths_are_url_encoded(tmp_path: Path) -> None:
    name = "x-1-Café #1? 100% <a>.wav"
    write_ledger(tmp_path, [ready(tmp_path, "x-1", "Café", 1, file=name)])
    card = Page(render_page(tmp_path)).card("x-1")
    assert card.audio[0]["src"] == "x-1-Caf%C3%A9%20%231%3F%20100%25%20%3Ca%3E.wav"
    assert card.attrs["data-file"] == name  # the ledger's name, for the review server to match


def test_versions_of_a_song_share_one_card(tmp_path: Path) -> None:
    records = [ready(tmp_path, "v-1", "Anthem", 1, version="60s", file="v-1-60s.wav", request_fingerprint="a"),
               ready(tmp_path, "v-1", "Anthem", 1, version="full", file="v-1-full.wav", request_fingerprint="b"),
               ready(tmp_path, "v-1", "Anthem", 1, version="loop", file="v-1-loop.wav", request_fingerprint="c")]
    write_ledger(tmp_path, records)
    page = Page(render_page(tmp_path))
    assert len(page.cards) == 1
    card = page.card("v-1")
    assert [a["src"] for a in card.audio] == ["v-1-full.wav", "v-1-60s.wav", "v-1-loop.wav"]
    assert card.attrs["data-versions"] == "full|60s|loop" and card.attrs["data-file"] == "v-1-full.wav"


def test_waveforms_are_decoded_once_and_cached_by_checksum(catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[Path] = []
    real = waveform_module.envelope
    monkeypatch.setattr(waveform_module, "envelope", lambda path: decoded.append(path) or real(path))
    first = Page(render_page(catalog))
    assert sorted(p.name for p in decoded) == ["a-1-0.wav", "b-2-0.wav", "c-3-0.wav", "c-3-1.wav"]
    image = first.card("a-1").images[0]
    assert image == f".waveforms/{sha256_file(catalog / 'a-1-0.wav')}.svg"
    svg = (catalog / image).read_text()
    assert svg.startswith("<svg") and 1000 < len(svg) < 6000
    decoded.clear()
    write_page(catalog)
    assert decoded == []  # warm: every image came from the cache
    tone(catalog / "a-1-0.wav", 3.0, frequency=500)  # a re-render: new bytes, new checksum
    records = [r.model_copy(update={"sha256": sha256_file(catalog / r.audio_path)}) if r.track_id == "a-1" else r
               for r in load_ledger(catalog)]
    write_ledger(catalog, records)
    assert Page(render_page(catalog)).card("a-1").images[0] != image and [p.name for p in decoded] == ["a-1-0.wav"]


def test_envelope_follows_the_signal(tmp_path: Path) -> None:
    quiet_then_loud = np.concatenate([np.full(25600, 0.1), np.full(25600, -0.8)])  # column edges on blocks
    sf.write(tmp_path / "steps.flac", quiet_then_loud, 22050, subtype="PCM_24")
    lows, highs = waveform_module.envelope(tmp_path / "steps.flac", columns=10)
    assert np.allclose(highs[:5], 0.1, atol=0.01) and np.allclose(lows[5:], -0.8, atol=0.01)
    assert np.allclose(lows[:5], 0.1, atol=0.01) and np.allclose(highs[5:], -0.8, atol=0.01)
    sf.write(tmp_path / "sine.mp3", 0.5 * np.sin(np.arange(44100) / 5), 22050)
    lows, highs = waveform_module.envelope(tmp_path / "sine.mp3", columns=10)  # decoded by PyAV
    assert np.all(highs > 0.4) and np.all(lows < -0.4) and np.all(highs < 0.6)


def test_summary_counts_cost_and_budget_left(catalog: Path) -> None:
    html = render_page(catalog, budget_usd=5.0, run_cost_usd=1.25)
    assert "$3.75" in html and "of $5.00" in html
    page = Page(html)
    assert "budget left" not in render_page(catalog)
    assert len(page.cards) == 8


def test_the_inline_style_and_script_cannot_close_their_tags() -> None:
    for name in ("page.css", "page.js"):
        assert "</" not in (Path(waveform_module.__file__).parent / name).read_text(encoding="utf-8"), name


def test_a_near_duplicate_is_named_on_its_card(tmp_path: Path) -> None:
    """The similarity step's fields, read when the ledger has them (cards work with or without them)."""
    plain = ready(tmp_path, "s-1", "Echo", 1)
    twin = ready(tmp_path, "s-2", "Echo Again", 2).model_copy(update={"similar_to": "s-1", "similarity": 0.9712})
    cards = build_cards(tmp_path, [plain, twin], [])
    assert [c.similar for c in cards] == ["", "similar to s-1 (0.97)"]


def test_write_page_replaces_the_file_whole(catalog: Path) -> None:
    path = write_page(catalog)
    assert path == catalog / "index.html" and path.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert not [p for p in catalog.iterdir() if p.name.endswith(".tmp")]
    assert "http://" not in path.read_text() and "https://" not in path.read_text()  # nothing from the network
