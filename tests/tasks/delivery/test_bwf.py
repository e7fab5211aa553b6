"""Broadcast-WAV chunks (tasks/delivery/bwf.py) on real WAVs, read back by an independent reader (wavinfo) and
by our own; the samples, the LIST-INFO strings and the ID3 tags survive in either writing order."""

import math
import struct
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import wavinfo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.delivery.bwf import (
    AI_SOURCE_TYPE,
    Broadcast,
    ascii_text,
    coding_history,
    coding_history_of,
    originator_reference,
    read_broadcast,
    write_broadcast,
)
from tasks.delivery.riff import RiffError
from tasks.delivery.tagging import read_tags, tag_and_verify
from tests.support.riff_info import read_riff_info

SUBTYPES = ["PCM_16", "PCM_24", "FLOAT"]
TAGS = {"title": "Harbour Lights", "artist": "TrackFoundry", "album": "Night Shift", "genre": "ambient",
        "comment": "a quiet prompt", "date": "2026-12-04", "bpm": "84", "seed": "7"}
METADATA = {"catalog": "TF Ambient Vol. 1", "artist": "TrackFoundry", "composer": "TrackFoundry",
            "publisher": "TF Music", "genre": "ambient", "mood": "calm", "key": "D minor", "bpm": "84",
            "isrc": "XXTF02600001", "version": "main", "keywords": "harbour, night, calm", "seed": "7",
            "generation_id": "gen-123", "provider": "textmusic-local", "request_fingerprint": "ab12cd34"}
STATEMENT = "AI-generated with TrackFoundry (textmusic-local 2026.12.04.2)"


def broadcast(**overrides) -> Broadcast:
    values = dict(
        title="Harbour Lights", description="Calm ambient harbour at night", originator="TF Music",
        originator_reference=originator_reference("gen-123"), origination=datetime(2026, 12, 4, 9, 30, 5, tzinfo=UTC),
        coding_history=coding_history(44100, 24, 2, "TrackFoundry 0.1.0; mastered streaming -14 LUFS -1 dBTP"),
        loudness_lufs=-14.02, loudness_range_lu=6.5, true_peak_dbtp=-1.0, metadata=METADATA,
        digital_source_type=AI_SOURCE_TYPE, ai_statement=STATEMENT,
    )
    values.update(overrides)
    return Broadcast(**values)


def make_wav(path: Path, subtype: str = "PCM_24", channels: int = 2, frames: int = 22051) -> Path:
    rng = np.random.default_rng(11)
    samples = rng.uniform(-1.2 if subtype == "FLOAT" else -1, 1, (frames, channels))
    sf.write(str(path), samples, 44100, format="WAV", subtype=subtype)
    return path


def chunk_ids(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8  # the RIFF size still adds up
    ids, pos = [], 12
    while pos + 8 <= len(data):
        chunk_id, length = struct.unpack_from("<4sI", data, pos)
        assert chunk_id not in (b"bext", b"iXML", b"_PMX") or length % 2 == 0  # ours are even-sized
        ids.append(chunk_id)
        pos += 8 + length + (length & 1)
    return ids


def ixml_tree(path: Path) -> ET.Element:
    """The iXML document as wavinfo found it (its lxml tree, re-read by ElementTree for plain access)."""
    return ET.fromstring(wavinfo.WavInfoReader(str(path)).ixml.xml_str())


@pytest.mark.parametrize("subtype", SUBTYPES)
@pytest.mark.parametrize("tags_first", [True, False])
def test_chunks_read_back_and_audio_and_tags_survive(tmp_path, subtype, tags_first):
    path = make_wav(tmp_path / f"{subtype}.wav", subtype)
    before_info = sf.info(str(path))
    before, _ = sf.read(str(path), dtype="float64", always_2d=True)
    wanted = broadcast(coding_history=coding_history_of(path, "TrackFoundry 0.1.0"))
    if tags_first:
        tag_and_verify(path, TAGS)
        write_broadcast(path, wanted)
    else:
        write_broadcast(path, wanted)
        tag_and_verify(path, TAGS)

    after_info = sf.info(str(path))
    assert (after_info.subtype, after_info.samplerate, after_info.channels, after_info.frames) == (
        before_info.subtype, before_info.samplerate, before_info.channels, before_info.frames)
    after, _ = sf.read(str(path), dtype="float64", always_2d=True)
    assert np.array_equal(after, before)
    assert {k: v for k, v in read_tags(path).items() if k in TAGS} == TAGS  # ID3 kept
    assert read_riff_info(path)["title"] == TAGS["title"]  # LIST-INFO kept
    ids = chunk_ids(path)
    assert ids.count(b"bext") == ids.count(b"iXML") == ids.count(b"_PMX") == 1
    assert ids.index(b"bext") < ids.index(b"data")

    reader = wavinfo.WavInfoReader(str(path))
    bext = reader.bext
    assert bext.version == 2
    assert bext.description == "Calm ambient harbour at night"
    assert bext.originator == "TF Music"
    assert bext.originator_ref == originator_reference("gen-123")
    assert (bext.originator_date, bext.originator_time) == ("2026-12-04", "09:30:05")
    depth = {"PCM_16": 16, "PCM_24": 24, "FLOAT": 32}[subtype]
    assert bext.coding_history.startswith(f"A=PCM,F=44100,W={depth},M=stereo,T=TrackFoundry 0.1.0")
    assert bext.coding_history.endswith("\r\n")
    assert (bext.loudness_value, bext.loudness_range, bext.max_true_peak) == (-14.02, 6.5, -1.0)
    assert reader.ixml.project == "TF Ambient Vol. 1"
    assert [t.name for t in reader.ixml.track_list] == ["Left", "Right"]
    tree = ixml_tree(path)
    assert tree.findtext("IXML_VERSION") == "2.10"
    assert tree.findtext("NOTE") == "Calm ambient harbour at night"
    assert tree.findtext("BEXT/BWF_ORIGINATOR") == "TF Music"
    assert "mood=calm" in tree.findtext("USER").split("\n")
    assert {e.get("name"): e.text for e in tree.find("TRACKFOUNDRY")} == {
        "title": "Harbour Lights", **METADATA, "digital_source_type": AI_SOURCE_TYPE, "ai_statement": STATEMENT}

    ours = read_broadcast(path)
    assert ours["description"] == bext.description and ours["originator_reference"] == bext.originator_ref
    assert ours["coding_history"] == bext.coding_history
    assert (ours["loudness_lufs"], ours["loudness_range_lu"], ours["true_peak_dbtp"]) == ("-14.02", "6.50", "-1.00")
    assert {k[5:]: v for k, v in ours.items() if k.startswith("ixml.")} == {
        "title": "Harbour Lights", **METADATA, "digital_source_type": AI_SOURCE_TYPE, "ai_statement": STATEMENT}
    assert ours["digital_source_type"] == AI_SOURCE_TYPE
    assert (ours["title"], ours["ai_statement"]) == ("Harbour Lights", STATEMENT)


def test_the_xmp_packet_carries_the_ai_mark(tmp_path):
    path = make_wav(tmp_path / "a.wav")
    write_broadcast(path, broadcast())
    data = path.read_bytes()
    start = data.index(b"_PMX")
    length = struct.unpack_from("<I", data, start + 4)[0]
    packet = data[start + 8 : start + 8 + length].decode("utf-8")
    assert packet.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    assert packet.endswith('<?xpacket end="w"?>')
    body = packet[packet.index("<x:xmpmeta") : packet.index("</x:xmpmeta>") + len("</x:xmpmeta>")]
    ns = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "dc": "http://purl.org/dc/elements/1.1/",
          "x": "adobe:ns:meta/"}
    description = ET.fromstring(body).find("rdf:RDF/rdf:Description", ns)
    assert description.get("{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType") == AI_SOURCE_TYPE
    assert description.findtext("dc:description/rdf:Alt/rdf:li", namespaces=ns) == STATEMENT
    assert description.findtext("dc:title/rdf:Alt/rdf:li", namespaces=ns) == "Harbour Lights"
    assert description.get("{http://ns.adobe.com/xmp/1.0/DynamicMedia/}key") == "D minor"
    assert [li.text for li in description.findall("dc:subject/rdf:Bag/rdf:li", ns)] == ["harbour", "night", "calm"]


def test_hostile_values_are_bounded_escaped_and_ascii_in_bext(tmp_path):
    path = make_wav(tmp_path / "a.wav", channels=1)
    long_description = "Ærøskøbing — 🎵 harbour <>&\" " + "x" * 10_000
    hostile = {**METADATA, "mood": 'a <b> & "c" \x00\x1b end', "note": "line one\r\nline two"}
    write_broadcast(path, broadcast(description=long_description, originator="Ærøskøbing Records " * 5,
                                    metadata=hostile, loudness_lufs=math.nan, loudness_range_lu=None,
                                    true_peak_dbtp=math.inf, coding_history="A=PCM,T=Ærø 🎵\r\n"))
    reader = wavinfo.WavInfoReader(str(path))  # wavinfo decodes bext as strict ASCII: it would fail otherwise
    assert reader.bext.description.startswith('AEroskobing - ? harbour <>&" xxx')
    assert len(reader.bext.description) == 256
    assert reader.bext.originator == "AEroskobing Records AEroskobing "  # 32 characters
    assert reader.bext.coding_history == "A=PCM,T=AEro ?\r\n"
    assert reader.bext.loudness_value == reader.bext.loudness_range == reader.bext.max_true_peak == 0x7FFF / 100
    tree = ixml_tree(path)
    note = tree.findtext("NOTE")
    assert note.startswith("Ærøskøbing — 🎵 harbour <>&\" ") and len(note) == len(long_description)
    assert [t.name for t in reader.ixml.track_list] == ["Mono"]
    ours = read_broadcast(path)
    assert ours["ixml.mood"] == 'a <b> & "c" \ufffd\ufffd end'  # XML cannot carry NUL/ESC: replaced, not dropped
    assert ours["ixml.note"] == "line one\nline two"
    assert ours["note"] == long_description
    assert not {"loudness_lufs", "loudness_range_lu", "true_peak_dbtp"} & ours.keys()  # unknown: not claimed


def test_writing_twice_replaces(tmp_path):
    path = make_wav(tmp_path / "a.wav")
    write_broadcast(path, broadcast())
    write_broadcast(path, broadcast(description="second", metadata={"catalog": "Other"}))
    ids = chunk_ids(path)
    assert ids.count(b"bext") == ids.count(b"iXML") == ids.count(b"_PMX") == 1
    assert wavinfo.WavInfoReader(str(path)).bext.description == "second"
    ours = read_broadcast(path)
    assert ours["project"] == "Other" and "ixml.mood" not in ours


def test_a_c2pa_chunk_after_the_data_is_kept_byte_for_byte(tmp_path):
    path = make_wav(tmp_path / "a.wav")
    manifest = bytes(range(256)) * 3 + b"\x07"  # odd size: a pad byte follows
    data = bytearray(path.read_bytes())
    data += b"C2PA" + struct.pack("<I", len(manifest)) + manifest + b"\0"
    struct.pack_into("<I", data, 4, len(data) - 8)
    path.write_bytes(bytes(data))
    write_broadcast(path, broadcast())
    out = path.read_bytes()
    assert out.endswith(b"C2PA" + struct.pack("<I", len(manifest)) + manifest + b"\0")
    assert chunk_ids(path)[-2:] == [b"data", b"C2PA"]


def test_origination_is_utc():
    from tasks.delivery.bwf import bext_payload

    local = datetime(2026, 12, 4, 23, 30, 0, tzinfo=timezone(timedelta(hours=-5)))
    payload = bext_payload(broadcast(origination=local))
    assert payload[320:338] == b"2026-12-0504:30:00"


def test_helpers():
    assert coding_history(48000, 16, 1, "x,y\nz") == "A=PCM,F=48000,W=16,M=mono,T=x,y z\r\n"
    assert coding_history(44100, 32, 6, "TF", float_samples=True) == "A=PCM,F=44100,W=32,T=TF; IEEE float\r\n"
    reference = originator_reference("gen-123")
    assert len(reference) == 32 and reference.isascii() and reference == originator_reference("gen-123")
    assert reference != originator_reference("gen-124")
    assert ascii_text("Crème brûlée – Œuvre ß 🎵\t") == "Creme brulee - OEuvre ss ? "


def test_not_a_wav_fails(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(b"fLaC" + b"\0" * 64)
    with pytest.raises(RiffError):
        write_broadcast(path, broadcast())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(description=st.text(max_size=400), value=st.text(max_size=200), key=st.text(min_size=1, max_size=20))
def test_any_text_reads_back(tmp_path_factory, description, value, key):
    path = make_wav(tmp_path_factory.mktemp("p") / "a.wav", frames=64)
    write_broadcast(path, broadcast(description=description, metadata={key: value}))
    reader = wavinfo.WavInfoReader(str(path))
    assert reader.bext.description == ascii_text(description)[:256].split("\0")[0]
    ours = read_broadcast(path)

    def xml(text: str) -> str:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return "".join("\ufffd" if (c < " " and c not in "\t\n") or 0xD800 <= ord(c) <= 0xDFFF
                       or c in "\ufffe\uffff" else c for c in text)

    if description:
        assert ours["note"] == xml(description)
    if value:
        assert ours["ixml." + xml(key)[:64]] == xml(value)


def test_c2pa_signing_after_the_chunks_keeps_them_and_validates(tmp_path):
    """The delivery order: ID3 + LIST-INFO, then these chunks, then the C2PA signature over all of it."""
    from tasks.delivery.credentials import Provenance, check_credentials, sign_file, signing_identity
    from tasks.settings import PipelineSettings

    path = make_wav(tmp_path / "a.wav", frames=4410)
    tag_and_verify(path, TAGS)
    write_broadcast(path, broadcast())
    dev = signing_identity(PipelineSettings(state_dir=tmp_path / "state"))
    sign_file(path, "wav", Provenance(
        title="Harbour Lights", provider="textmusic-local", model="engine-7", generation_id="gen-123",
        request_fingerprint="ab12cd34", seed=7, prompt_sha256="ab" * 32, created="2026-12-04T09:30:05+00:00",
        pipeline_version="0.1.0", processing=("tagged",), disclosure={}, digital_source_type=AI_SOURCE_TYPE), dev)
    assert check_credentials(path, "wav", trust_anchors=dev.root_pem).state == "valid"
    assert b"C2PA" in chunk_ids(path)
    assert wavinfo.WavInfoReader(str(path)).bext.originator_ref == originator_reference("gen-123")
    assert read_broadcast(path)["digital_source_type"] == AI_SOURCE_TYPE
    assert {k: v for k, v in read_tags(path).items() if k in TAGS} == TAGS
