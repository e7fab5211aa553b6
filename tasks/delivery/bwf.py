"""Broadcast-WAV chunks: what sound libraries, DAWs and asset managers read from a WAV besides its tags.

Three chunks, written by `write_broadcast` through tasks/delivery/riff.py (so ID3, LIST-INFO, C2PA and every
other chunk stay as they are, and the samples are never touched):

* `bext` (EBU Tech 3285, version 2): the fixed-size ASCII fields broadcast tools show — Description (256),
  Originator (32), OriginatorReference (32), OriginationDate/Time (UTC), the EBU R 128 loudness values
  (×100 as int16, 0x7FFF when unknown) and the EBU R 98 CodingHistory. Non-ASCII text is transliterated
  (Æ → AE, é → e) and what has no ASCII form becomes "?", because the spec says ASCII and readers decode it so.
* `iXML` (iXML 2.10, UTF-8): PROJECT (the catalog), NOTE (the full description), FILE_UID (the originator
  reference), the spec's BEXT object (the bext fields, untruncated and in Unicode), a TRACK_LIST naming the
  channels, USER (free text: one `key=value` line per field, for tools that show only USER) and a
  TRACKFOUNDRY object with one element per field (the full values, the field name in a `name` attribute, for
  tools and our `verify`). The fields: the title, the catalog metadata, and the AI mark (digital_source_type,
  ai_statement).
* `_PMX` (Adobe XMP, part 3: XMP in WAV): an XMP packet with the AI-generation mark
  (Iptc4xmpExt:DigitalSourceType, the IPTC term), dc:title, dc:description (the AI statement) and the
  music fields xmpDM knows.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import soundfile as sf

from tasks.delivery.credentials import TRAINED_ALGORITHMIC_MEDIA as AI_SOURCE_TYPE
from tasks.delivery.riff import RiffError, read_chunks, write_chunks
from textmusic.audio.read import SUBTYPE_BITS

IXML_VERSION = "2.10"
BEXT_VERSION = 2
UNKNOWN_LOUDNESS = 0x7FFF  # EBU Tech 3285 v2: a loudness field that was not measured

# bext: Description, Originator, OriginatorReference, OriginationDate, OriginationTime, TimeReference (64-bit
# sample count), Version, UMID, LoudnessValue, LoudnessRange, MaxTruePeakLevel, MaxMomentaryLoudness,
# MaxShortTermLoudness, Reserved; CodingHistory follows. 602 bytes before CodingHistory.
_BEXT = struct.Struct("<256s32s32s10s8sQH64s5h180s")
_CODING_HISTORY_MAX = 4096  # characters; the spec sets no bound, we do
_FIELD_MAX = 4096  # characters of one iXML/XMP value
_FIELDS_MAX = 256  # catalog fields written to iXML
_NOTE_MAX = 16384  # characters of the iXML NOTE (the untruncated description)

_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpDM": "http://ns.adobe.com/xmp/1.0/DynamicMedia/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xml": "http://www.w3.org/XML/1998/namespace",
}
for _prefix, _uri in _NS.items():
    if _prefix != "xml":
        ET.register_namespace(_prefix, _uri)
# Catalog fields xmpDM has a property for (simple text properties of the Dynamic Media schema).
_XMPDM_FIELDS = {"artist": "artist", "album": "album", "composer": "composer", "genre": "genre", "key": "key",
                 "isrc": "isrcCode"}
_XPACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"  # the fixed id every XMP packet wrapper carries

# Letters NFKD does not decompose into ASCII + marks.
_ASCII_FOLD = str.maketrans({
    "Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o", "Œ": "OE", "œ": "oe", "ß": "ss", "Đ": "D", "đ": "d", "Ł": "L",
    "ł": "l", "Þ": "Th", "þ": "th", "Ð": "D", "ð": "d", "ı": "i", "‘": "'", "’": "'", "‚": "'", "“": '"',
    "”": '"', "„": '"', "–": "-", "—": "-", "…": "...", "•": "*", "€": "EUR", "£": "GBP", "\u00a0": " ",
})
# Characters XML 1.0 cannot carry (ElementTree would write them and make the document ill-formed).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ELEMENT_NAME = re.compile(r"[^A-Z0-9_]")


@dataclass(frozen=True)
class Broadcast:
    """What a WAV's bext, iXML and XMP chunks say."""

    title: str
    description: str  # bext Description: ASCII-folded, cut at 256 characters; iXML NOTE keeps it whole
    originator: str  # the publisher (bext: 32 ASCII characters)
    originator_reference: str  # unique reference (bext: 32 ASCII characters); see `originator_reference`
    origination: datetime  # generation date-time; naive means UTC
    coding_history: str  # EBU R 98 rows, CR/LF-terminated; see `coding_history`
    loudness_lufs: float | None = None
    loudness_range_lu: float | None = None
    true_peak_dbtp: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)  # catalog field → text, for iXML (and xmpDM)
    digital_source_type: str = AI_SOURCE_TYPE
    ai_statement: str = ""


def ascii_text(text: str) -> str:
    """`text` in printable ASCII, as EBU Tech 3285 wants bext strings: accents dropped, a few letters spelled
    out (Æ → AE), anything else (emoji, CJK) as "?", control characters as spaces."""
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    out = []
    for char in folded:
        if unicodedata.combining(char):
            continue
        if char < " " or char == "\x7f":
            out.append(" ")
        elif char.isascii():
            out.append(char)
        else:
            out.append("?")
    return "".join(out)


def _fixed(text: str, size: int) -> bytes:
    """A bext text field: ASCII, cut to `size` bytes; struct pads shorter ones with NULs (the terminator)."""
    return ascii_text(text).encode("ascii")[:size]


def originator_reference(key: str) -> str:
    """A 32-character OriginatorReference derived from `key` (the generation id, or the track id): "TF" and
    the first 30 hex digits of SHA-256(key). The same generation always gets the same reference, different ones
    collide with probability 2^-120; it is ASCII and fits bext exactly."""
    return "TF" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:30].upper()


def coding_history(sample_rate: int, bit_depth: int, channels: int, text: str, *, float_samples: bool = False) -> str:
    """One EBU R 98 CodingHistory row for the delivered file, e.g.
    "A=PCM,F=44100,W=24,M=stereo,T=TrackFoundry 0.1.0; mastered streaming -14 LUFS -1 dBTP\\r\\n".
    M= is mono/stereo (R 98 has no word for more channels: left out then); float samples are said in T=."""
    parts = ["A=PCM", f"F={int(sample_rate)}", f"W={int(bit_depth)}"]
    mode = {1: "mono", 2: "stereo"}.get(int(channels))
    if mode:
        parts.append(f"M={mode}")
    note = ascii_text(text).replace("\r", " ").replace("\n", " ").strip()
    if float_samples:
        note = f"{note}; IEEE float".lstrip("; ")
    if note:
        parts.append(f"T={note}")
    return ",".join(parts) + "\r\n"




def coding_history_of(path: Path, text: str) -> str:
    """`coding_history` for the WAV at `path`, its rate, depth and channels read from the file itself."""
    info = sf.info(str(path))
    depth = SUBTYPE_BITS.get(info.subtype)
    if depth is None:
        raise RiffError(f"{path.name}: no coding history for sample format {info.subtype}")
    return coding_history(info.samplerate, depth, info.channels, text,
                          float_samples=info.subtype in ("FLOAT", "DOUBLE"))


def _loudness(value: float | None) -> int:
    """×100 as int16; unknown (None, NaN, ±inf, or beyond what int16 holds) as 0x7FFF."""
    if value is None or not math.isfinite(value):
        return UNKNOWN_LOUDNESS
    scaled = round(value * 100)
    return scaled if -0x8000 <= scaled < UNKNOWN_LOUDNESS else UNKNOWN_LOUDNESS


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _even(payload: bytes, pad: bytes) -> bytes:
    """Chunk payloads of even size: some readers mishandle the RIFF pad byte after an odd chunk."""
    return payload + pad if len(payload) & 1 else payload


def bext_payload(broadcast: Broadcast) -> bytes:
    """The `bext` chunk payload, version 2 (loudness fields; momentary and short-term maxima unknown)."""
    when = _utc(broadcast.origination)
    history = ""
    for row in broadcast.coding_history.replace("\r\n", "\n").split("\n"):  # whole CR/LF rows, up to the bound
        line = ascii_text(row).strip()[: _CODING_HISTORY_MAX - 2] + "\r\n"
        if row.strip() and len(history) + len(line) <= _CODING_HISTORY_MAX:
            history += line
    fixed = _BEXT.pack(
        _fixed(broadcast.description, 256), _fixed(broadcast.originator, 32),
        _fixed(broadcast.originator_reference, 32), when.strftime("%Y-%m-%d").encode("ascii"),
        when.strftime("%H:%M:%S").encode("ascii"), 0, BEXT_VERSION, b"",
        _loudness(broadcast.loudness_lufs), _loudness(broadcast.loudness_range_lu),
        _loudness(broadcast.true_peak_dbtp), UNKNOWN_LOUDNESS, UNKNOWN_LOUDNESS, b"",
    )
    return _even(fixed + history.encode("ascii"), b"\0")


def _xml_text(text: str, limit: int = _FIELD_MAX) -> str:
    """Text XML 1.0 carries as is: line ends as LF (a parser turns a raw CR into LF anyway, so the value
    reads back as written), characters XML cannot hold as U+FFFD, at most `limit` characters."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return _XML_INVALID.sub("\ufffd", text)[:limit]


def _sub(parent: ET.Element, tag: str, text: str, limit: int = _FIELD_MAX) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _xml_text(text, limit)
    return element


def _element_name(key: str) -> str:
    """A catalog field's iXML element name: upper case, [A-Z0-9_], starting with a letter."""
    name = _ELEMENT_NAME.sub("_", ascii_text(key).upper()).strip("_") or "FIELD"
    return name if name[0].isalpha() else "F_" + name


def _channel_count(path: Path) -> int:
    fmt = read_chunks(path, {b"fmt "}).get(b"fmt ", b"")
    return struct.unpack_from("<H", fmt, 2)[0] if len(fmt) >= 4 else 0


def _metadata(broadcast: Broadcast) -> dict[str, str]:
    """The fields written to iXML: the title first, the catalog metadata (non-empty values), then the AI
    mark (digital_source_type, ai_statement); a metadata entry of the same name wins."""
    own = {"title": broadcast.title, "digital_source_type": broadcast.digital_source_type,
           "ai_statement": broadcast.ai_statement}
    fields = {"title": own["title"]} if own["title"] else {}
    fields.update([(str(k), str(v)) for k, v in broadcast.metadata.items() if str(v)][:_FIELDS_MAX])
    fields.update({k: v for k, v in own.items() if v and k not in fields})
    return fields


def ixml_payload(broadcast: Broadcast, channels: int = 0) -> bytes:
    """The `iXML` chunk payload (UTF-8 XML; see the module docstring for what goes where)."""
    root = ET.Element("BWFXML")
    _sub(root, "IXML_VERSION", IXML_VERSION)
    metadata = _metadata(broadcast)
    if metadata.get("catalog"):
        _sub(root, "PROJECT", metadata["catalog"])
    if broadcast.description:
        _sub(root, "NOTE", broadcast.description, _NOTE_MAX)
    if broadcast.originator_reference:
        _sub(root, "FILE_UID", broadcast.originator_reference)
    bext = ET.SubElement(root, "BEXT")
    when = _utc(broadcast.origination)
    _sub(bext, "BWF_DESCRIPTION", broadcast.description, _NOTE_MAX)
    _sub(bext, "BWF_ORIGINATOR", broadcast.originator)
    _sub(bext, "BWF_ORIGINATOR_REFERENCE", broadcast.originator_reference)
    _sub(bext, "BWF_ORIGINATION_DATE", when.strftime("%Y-%m-%d"))
    _sub(bext, "BWF_ORIGINATION_TIME", when.strftime("%H:%M:%S"))
    _sub(bext, "BWF_TIME_REFERENCE_LOW", "0")
    _sub(bext, "BWF_TIME_REFERENCE_HIGH", "0")
    _sub(bext, "BWF_VERSION", str(BEXT_VERSION))
    _sub(bext, "BWF_CODING_HISTORY", broadcast.coding_history)
    for tag, value in (("BWF_LOUDNESS_VALUE", broadcast.loudness_lufs),
                       ("BWF_LOUDNESS_RANGE", broadcast.loudness_range_lu),
                       ("BWF_MAX_TRUE_PEAK_LEVEL", broadcast.true_peak_dbtp)):
        if _loudness(value) != UNKNOWN_LOUDNESS:
            _sub(bext, tag, f"{_loudness(value) / 100:.2f}")
    if channels > 0:
        tracks = ET.SubElement(root, "TRACK_LIST")
        _sub(tracks, "TRACK_COUNT", str(channels))
        names = {1: ["Mono"], 2: ["Left", "Right"]}.get(channels, [f"Channel {i}" for i in range(1, channels + 1)])
        for index, name in enumerate(names, start=1):
            track = ET.SubElement(tracks, "TRACK")
            _sub(track, "CHANNEL_INDEX", str(index))
            _sub(track, "INTERLEAVE_INDEX", str(index))
            _sub(track, "NAME", name)
    if metadata:  # USER: free text; one line per field, its value on one line
        lines = (f"{key}={' '.join(value.split())}"[:_FIELD_MAX] for key, value in metadata.items())
        _sub(root, "USER", "\n".join(lines), _FIELDS_MAX * _FIELD_MAX)
    ours = ET.SubElement(root, "TRACKFOUNDRY")  # our object: one element per field, the value verbatim
    for key, value in metadata.items():
        _sub(ours, _element_name(key), value).set("name", _xml_text(key, 64))
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return _even(body + b"\n", b"\n")


def _lang_alt(parent: ET.Element, tag: str, text: str) -> None:
    alt = ET.SubElement(ET.SubElement(parent, tag), f"{{{_NS['rdf']}}}Alt")
    item = ET.SubElement(alt, f"{{{_NS['rdf']}}}li", {f"{{{_NS['xml']}}}lang": "x-default"})
    item.text = _xml_text(text)


def _array(parent: ET.Element, tag: str, kind: str, items: list[str]) -> None:
    array = ET.SubElement(ET.SubElement(parent, tag), f"{{{_NS['rdf']}}}{kind}")
    for text in items:
        ET.SubElement(array, f"{{{_NS['rdf']}}}li").text = _xml_text(text)


def xmp_payload(broadcast: Broadcast) -> bytes:
    """The `_PMX` chunk payload: an XMP packet (UTF-8, with the xpacket wrapper Adobe's readers look for)."""
    dc, xmp, dm, iptc = (f"{{{_NS[p]}}}" for p in ("dc", "xmp", "xmpDM", "Iptc4xmpExt"))
    meta = ET.Element(f"{{{_NS['x']}}}xmpmeta")
    rdf = ET.SubElement(meta, f"{{{_NS['rdf']}}}RDF")
    attrs = {f"{{{_NS['rdf']}}}about": "", f"{iptc}DigitalSourceType": _xml_text(broadcast.digital_source_type),
             f"{xmp}CreateDate": _utc(broadcast.origination).strftime("%Y-%m-%dT%H:%M:%SZ")}
    metadata = {str(k): str(v) for k, v in broadcast.metadata.items() if str(v)}
    for key, prop in _XMPDM_FIELDS.items():
        if metadata.get(key):
            attrs[f"{dm}{prop}"] = _xml_text(metadata[key])
    try:
        if metadata.get("bpm"):
            bpm = float(metadata["bpm"])
            if math.isfinite(bpm) and bpm > 0:
                attrs[f"{dm}tempo"] = f"{bpm:g}"
    except ValueError:
        pass
    description = ET.SubElement(rdf, f"{{{_NS['rdf']}}}Description", attrs)
    if broadcast.title:
        _lang_alt(description, f"{dc}title", broadcast.title)
    if broadcast.ai_statement:
        _lang_alt(description, f"{dc}description", broadcast.ai_statement)
    creator = metadata.get("artist") or metadata.get("composer")
    if creator:
        _array(description, f"{dc}creator", "Seq", [creator])
    if broadcast.originator:
        _array(description, f"{dc}publisher", "Bag", [broadcast.originator])
    keywords = [k.strip() for k in metadata.get("keywords", "").split(",") if k.strip()][:64]
    if keywords:
        _array(description, f"{dc}subject", "Bag", keywords)
    if broadcast.originator_reference:
        ET.SubElement(description, f"{dc}identifier").text = _xml_text(broadcast.originator_reference)
    body = ET.tostring(meta, encoding="unicode")
    packet = f'<?xpacket begin="\ufeff" id="{_XPACKET_ID}"?>\n{body}\n'
    end = '<?xpacket end="w"?>'
    encoded = packet.encode("utf-8")
    return encoded + (b" " if (len(encoded) + len(end)) & 1 else b"") + end.encode("ascii")


def write_broadcast(path: Path, broadcast: Broadcast) -> None:
    """Write the `bext` (v2), `iXML` and `_PMX` (XMP) chunks into the WAV at `path`, in place, replacing any
    earlier ones. The chunks go right before `data`; every other chunk (fmt, data, LIST-INFO, ID3, C2PA…) is
    copied byte for byte, so the audio and the other tags stay as they were. Run it after the ID3 and
    LIST-INFO tags and before C2PA signing (a signature covers the bytes: any later edit breaks it)."""
    chunks = {
        b"bext": bext_payload(broadcast),
        b"iXML": ixml_payload(broadcast, _channel_count(path)),
        b"_PMX": xmp_payload(broadcast),
    }
    write_chunks(path, chunks)


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def _read_bext(payload: bytes) -> dict[str, str]:
    if len(payload) < _BEXT.size:
        return {}
    fields = _BEXT.unpack_from(payload)
    found = {
        "description": _cstr(fields[0]), "originator": _cstr(fields[1]), "originator_reference": _cstr(fields[2]),
        "origination_date": _cstr(fields[3]), "origination_time": _cstr(fields[4]), "bext_version": str(fields[6]),
        "coding_history": _cstr(payload[_BEXT.size :]),
    }
    if fields[6] >= 2:
        for key, value in zip(("loudness_lufs", "loudness_range_lu", "true_peak_dbtp"), fields[8:11], strict=True):
            if value != UNKNOWN_LOUDNESS:
                found[key] = f"{value / 100:.2f}"
    return found


def _read_ixml(payload: bytes) -> dict[str, str]:
    try:
        root = ET.fromstring(payload.rstrip(b"\0 \r\n\t"))
    except ET.ParseError:
        return {}
    found: dict[str, str] = {}
    for tag, key in (("IXML_VERSION", "ixml_version"), ("PROJECT", "project"), ("NOTE", "note"),
                     ("FILE_UID", "file_uid"), ("USER", "user")):
        element = root.find(tag)
        if element is not None and element.text:
            found[key] = element.text
    ours = root.find("TRACKFOUNDRY")
    if ours is not None:
        for element in ours:
            found["ixml." + (element.get("name") or element.tag.lower())] = element.text or ""
    return found


def _read_xmp(payload: bytes) -> dict[str, str]:
    text = payload.decode("utf-8", "replace")
    start, end = text.find("<x:xmpmeta"), text.rfind("</x:xmpmeta>")
    if start < 0 or end < 0:
        return {}
    try:
        meta = ET.fromstring(text[start : end + len("</x:xmpmeta>")])
    except ET.ParseError:
        return {}
    found: dict[str, str] = {}
    rdf, dc, iptc = (f"{{{_NS[p]}}}" for p in ("rdf", "dc", "Iptc4xmpExt"))
    for description in meta.iter(f"{rdf}Description"):
        source = description.get(f"{iptc}DigitalSourceType")
        if source is None:  # the element form of the same property
            element = description.find(f"{iptc}DigitalSourceType")
            source = element.text if element is not None else None
        if source:
            found["digital_source_type"] = source
        for tag, key in (("title", "title"), ("description", "ai_statement")):
            item = description.find(f"{dc}{tag}/{rdf}Alt/{rdf}li")
            if item is not None and item.text:
                found[key] = item.text
    return found


def read_broadcast(path: Path) -> dict[str, str]:
    """What the WAV's bext, iXML and XMP chunks say, for `verify`: bext `description`, `originator`,
    `originator_reference`, `origination_date`, `origination_time`, `coding_history`, `bext_version` and the
    known loudness values (`loudness_lufs`, `loudness_range_lu`, `true_peak_dbtp`); iXML `ixml_version`,
    `project`, `note`, `file_uid`, `user` and each catalog field as `ixml.<field>`; XMP
    `digital_source_type`, `title`, `ai_statement`. A chunk that is missing or unreadable adds no keys."""
    chunks = read_chunks(path, {b"bext", b"iXML", b"_PMX"})
    found: dict[str, str] = {}
    if b"bext" in chunks:
        found.update(_read_bext(chunks[b"bext"]))
    if b"iXML" in chunks:
        found.update(_read_ixml(chunks[b"iXML"]))
    if b"_PMX" in chunks:
        found.update(_read_xmp(chunks[b"_PMX"]))
    return found
