"""Editing the top-level chunks of a RIFF WAVE file without touching its audio.

Tag writers each own a few chunks: mutagen the `id3 ` chunk, tasks/delivery/tagging.py the LIST-INFO strings,
tasks/delivery/bwf.py the broadcast-WAV `bext`, `iXML` and XMP (`_PMX`) chunks, and a C2PA signer (last) its
`C2PA` chunk. `write_chunks` sets some chunks and leaves every other one as it was, byte for byte, so that the
writers can run in any order without losing each other's work, and the `fmt `/`data` chunks (the sample format
and the samples) are never re-encoded. The file is rewritten into a temporary file in the same folder, flushed
to disk, and then renamed over the original: a crash leaves either the old file or the new one, never half of
one.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

_COPY_BLOCK = 1 << 20
_RIFF_LIMIT = 0xFFFFFFFF  # the RIFF size field is 32-bit; larger files need RF64, which we do not write
# Chunks `write_chunks` will not set as opaque payloads: the container, the audio, and the LIST chunks (the
# INFO list is edited through `info`; other LIST types, e.g. `adtl`, are only ever copied).
_RESERVED = {b"RIFF", b"RF64", b"fmt ", b"data", b"LIST"}


class RiffError(ValueError):
    """The file is not a RIFF WAVE file we can edit, or the edit would make it invalid."""


def riff_chunks(fh: BinaryIO, size: int) -> list[tuple[bytes, int, int]]:
    """The top-level chunks of a RIFF WAVE file of `size` bytes: (id, offset of the payload, payload size)."""
    fh.seek(0)
    riff, _, form = struct.unpack("<4sI4s", fh.read(12).ljust(12, b"\0"))
    if riff != b"RIFF" or form != b"WAVE":
        raise RiffError(f"not a RIFF WAVE file (starts with {riff!r}): cannot edit its chunks")
    chunks, pos = [], 12
    while pos + 8 <= size:
        fh.seek(pos)
        chunk_id, length = struct.unpack("<4sI", fh.read(8))
        length = min(length, size - pos - 8)  # a truncated last chunk ends where the file ends
        chunks.append((chunk_id, pos + 8, length))
        pos += 8 + length + (length & 1)
    return chunks


def info_entries(fh: BinaryIO, offset: int, length: int) -> list[tuple[bytes, bytes]]:
    """The (id, payload) entries of a LIST-INFO chunk whose payload (after "INFO") starts at `offset`."""
    fh.seek(offset)
    body = fh.read(length)
    entries, pos = [], 0
    while pos + 8 <= len(body):
        entry_id, entry_length = struct.unpack_from("<4sI", body, pos)
        entries.append((entry_id, body[pos + 8 : pos + 8 + entry_length]))
        pos += 8 + entry_length + (entry_length & 1)
    return entries


def chunk(chunk_id: bytes, payload: bytes) -> bytes:
    """A chunk as stored: id, little-endian size, payload, and the pad byte RIFF requires after odd payloads."""
    return struct.pack("<4sI", chunk_id, len(payload)) + payload + b"\0" * (len(payload) & 1)


def _copy(src: BinaryIO, dst: BinaryIO, offset: int, length: int) -> None:
    src.seek(offset)
    while length > 0:
        block = src.read(min(length, _COPY_BLOCK))
        if not block:
            raise RiffError("the WAV file changed while its chunks were rewritten")
        dst.write(block)
        length -= len(block)


def _is_info(src: BinaryIO, chunk_id: bytes, offset: int, length: int) -> bool:
    if chunk_id != b"LIST" or length < 4:
        return False
    src.seek(offset)
    return src.read(4) == b"INFO"


def _check_id(chunk_id: bytes) -> None:
    if len(chunk_id) != 4 or not all(0x20 <= c < 0x7F for c in chunk_id):
        raise RiffError(f"{chunk_id!r} is not a RIFF chunk id (four printable ASCII characters)")
    if chunk_id in _RESERVED:
        raise RiffError(f"the {chunk_id!r} chunk cannot be replaced as a whole")


def read_chunks(path: Path, wanted: set[bytes]) -> dict[bytes, bytes]:
    """The payloads of the top-level chunks whose ids are in `wanted` (the first of each id, as most readers
    take it). For readers of our own chunks; the audio is never read."""
    found: dict[bytes, bytes] = {}
    with open(path, "rb") as fh:
        for chunk_id, offset, length in riff_chunks(fh, path.stat().st_size):
            if chunk_id in wanted and chunk_id not in found:
                fh.seek(offset)
                found[chunk_id] = fh.read(length)
    return found


def read_info(path: Path) -> dict[bytes, bytes]:
    """The LIST-INFO entries of a WAV (id → raw payload, NUL terminator included), over all its INFO lists."""
    found: dict[bytes, bytes] = {}
    with open(path, "rb") as fh:
        for chunk_id, offset, length in riff_chunks(fh, path.stat().st_size):
            if _is_info(fh, chunk_id, offset, length):
                found.update(info_entries(fh, offset + 4, length - 4))
    return found


def _replace(path: Path, write: _Writer) -> None:
    """Write the new file next to `path`, fsync it, keep the mode, rename it over `path`, fsync the folder."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".riff.tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as dst:
            write(dst)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
        try:
            folder = os.open(path.parent, os.O_RDONLY)
        except OSError:
            return  # a platform without directory fds: the rename is still atomic
        try:
            os.fsync(folder)
        except OSError:
            pass
        finally:
            os.close(folder)
    finally:
        tmp.unlink(missing_ok=True)


class _Writer:
    """Copies the kept chunks of `src` into a new file, inserting `inserted` right before `data`."""

    def __init__(self, src: BinaryIO, kept: list[tuple[bytes, int, int]], inserted: bytes, total: int) -> None:
        self.src, self.kept, self.inserted, self.total = src, kept, inserted, total

    def __call__(self, dst: BinaryIO) -> None:
        dst.write(struct.pack("<4sI4s", b"RIFF", self.total, b"WAVE"))
        placed = False
        for chunk_id, offset, length in self.kept:
            if chunk_id == b"data" and not placed:
                dst.write(self.inserted)
                placed = True
            dst.write(struct.pack("<4sI", chunk_id, length))
            _copy(self.src, dst, offset, length)
            if length & 1:
                self.src.seek(offset + length)
                dst.write(self.src.read(1) or b"\0")


def write_chunks(path: Path, chunks: Mapping[bytes, bytes] | None = None,
                 info: Mapping[bytes, bytes] | None = None) -> None:
    """Set top-level chunks and LIST-INFO entries of the WAV at `path`, in place.

    `chunks`: chunk id → payload. Every existing chunk with that id is dropped and one new chunk is written,
    right before `data` (where readers that stop at the audio still find it), in the mapping's order.
    `info`: INFO id → payload (a NUL-terminated string); an empty payload removes the entry. With `info`,
    all LIST-INFO chunks are merged into one, placed after the new chunks and right before `data`, keeping the
    entries of other ids; without it (None) the LIST-INFO chunks are copied like any other.

    Every other chunk — `fmt `, `data`, `id3 `/`ID3 `, `C2PA`, unknown ones — is copied byte for byte in its
    order, so the sample format and the samples never change. Raises RiffError for a file that is not RIFF
    WAVE, has no `data` chunk, or would outgrow the 4 GiB RIFF size limit.
    """
    new_chunks = dict(chunks or {})
    for chunk_id in new_chunks:
        _check_id(chunk_id)
    if info is not None:
        for info_id in info:
            if len(info_id) != 4:
                raise RiffError(f"{info_id!r} is not a RIFF INFO id")
    size = path.stat().st_size
    with open(path, "rb") as src:
        found = riff_chunks(src, size)
        if not any(chunk_id == b"data" for chunk_id, _, _ in found):
            raise RiffError("the WAV file has no data chunk")
        kept: list[tuple[bytes, int, int]] = []
        entries: list[tuple[bytes, bytes]] = []
        for chunk_id, offset, length in found:
            if chunk_id in new_chunks:
                continue
            if info is not None and _is_info(src, chunk_id, offset, length):
                entries += info_entries(src, offset + 4, length - 4)
            else:
                kept.append((chunk_id, offset, length))
        if not new_chunks and (info is None or (not entries and not any(info.values()))):
            return  # nothing to write and nothing to move: the file stays as it is
        inserted = b"".join(chunk(chunk_id, payload) for chunk_id, payload in new_chunks.items())
        if info is not None:
            merged = [(i, payload) for i, payload in entries if i not in info]
            merged += [(i, payload) for i, payload in info.items() if payload]
            if merged:
                inserted += chunk(b"LIST", b"INFO" + b"".join(chunk(i, payload) for i, payload in merged))
        total = 4 + len(inserted) + sum(8 + length + (length & 1) for _, _, length in kept)
        if total > _RIFF_LIMIT:
            raise RiffError("the WAV file would be too large for RIFF (4 GiB) with these chunks")
        _replace(path, _Writer(src, kept, inserted, total))
