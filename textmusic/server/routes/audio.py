"""A ready track's audio, and its versions' (no key: the track id is the secret)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from textmusic.contract import FORMATS, READY, version_extension, version_file_tag, version_media_type
from textmusic.server.errors import ApiError
from textmusic.server.faults import TruncatedFileResponse
from textmusic.server.openapi import AUDIO_CONTENT, errors
from textmusic.server.store import stored_versions
from textmusic.server.views import AUDIO_PATH, expired, held_back

router = APIRouter()
# <track id>[.<version tag>].<extension>: the song, or one of its versions (`stem-drums`, `30s` …).
_AUDIO_NAME = re.compile(r"^([0-9a-f]{32})(?:\.([a-z0-9-]{1,32}))?\.([a-z0-9]{1,5})$")


@router.get(
    AUDIO_PATH,
    response_class=FileResponse,
    tags=["text-to-music"],
    summary="A ready track's audio (no key: the track id is the secret)",
    description=(
        "Supports `Range` requests (206). Unstored audio answers 410 once expired. EXTENSION: a version "
        "of the track is served as `<id>.<version>.<ext>` (`stem:drums` as `stem-drums`), the URL its "
        "track lists under `versions`."
    ),
    responses={
        200: {"content": AUDIO_CONTENT, "description": "The audio file."},
        206: {"content": AUDIO_CONTENT, "description": "The requested byte range."},
        **errors(404, 410, rate_headers=False),
    },
)
def audio(filename: str, request: Request) -> Response:
    store, injector = request.app.state.store, request.app.state.faults
    match = _AUDIO_NAME.match(filename)
    row = store.get_track(match.group(1)) if match else None
    if row is None or match is None:
        raise ApiError(404, "no such audio")
    versions = {version_file_tag(v.name): v for v in stored_versions(row)}
    listed = versions.get(match.group(2)) if match.group(2) is not None else None
    fmt = row["output_format"]
    extension = version_extension(listed.name, fmt) if listed else FORMATS[fmt].extension
    if match.group(3) != extension:
        raise ApiError(404, "no such audio")
    if held_back(row):
        raise ApiError(404, "the track is pending; no audio")
    if row["status"] != READY or not row["file_path"]:
        raise ApiError(404, f"the track is {row['status']}; no audio")
    if match.group(2) is not None and listed is None:
        raise ApiError(404, "no such version of the track")
    file_path = listed.file_path if listed else row["file_path"]
    path = (store.data_dir / file_path).resolve()
    if expired(row):
        path.unlink(missing_ok=True)
        raise ApiError(410, "the audio has expired (store_audio was false)")
    if not path.is_relative_to(store.audio_dir.resolve()) or not path.is_file():
        raise ApiError(404, "the audio file is missing")
    media_type = version_media_type(listed.name, fmt) if listed else FORMATS[fmt].media_type
    if injector.fires("truncated_download"):
        return TruncatedFileResponse(path, media_type)
    return FileResponse(path, media_type=media_type)
