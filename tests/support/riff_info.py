"""Reading a WAV's RIFF LIST-INFO strings back the way a Windows tool would, through libsndfile: an
independent reader of what tasks/delivery/tagging.py writes."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from tasks.delivery.tagging import RIFF_INFO

# libsndfile's names (soundfile's attributes) for the INFO ids the pipeline writes.
_SOUNDFILE_NAMES = {b"INAM": "title", b"IART": "artist", b"IPRD": "album", b"IGNR": "genre", b"ICMT": "comment",
                    b"ICRD": "date"}


def read_riff_info(path: Path) -> dict[str, str]:
    """Our field name → the INFO string libsndfile reads, for each field written to the INFO chunk."""
    with sf.SoundFile(path) as wav:
        found = {name: getattr(wav, _SOUNDFILE_NAMES[info_id]) for name, info_id in RIFF_INFO.items()}
    return {name: value for name, value in found.items() if value}
