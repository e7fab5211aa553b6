"""Settings of the API layer, read from environment variables prefixed `TEXTMUSIC_`."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The hosted Text-to-Music API's rate limit (about 100 requests per 10 s, docs/api/text-to-music.md), which the
# local service mirrors: the rate limit of a provider profile that states none, and the pipeline's default.
RATE_LIMIT_REQUESTS = 100
RATE_LIMIT_WINDOW_SECONDS = 10.0
RATE_LIMIT = f"{RATE_LIMIT_REQUESTS}/{RATE_LIMIT_WINDOW_SECONDS:g}s"  # the local service's short form: 100/10s
# The ceiling of rows in flight of a profile that states none (the local service reports a smaller capacity
# at /healthz when it renders for real).
MAX_IN_FLIGHT = 256


class TextMusicSettings(BaseSettings):
    """`TEXTMUSIC_API_URL` unset means: use the embedded local service."""

    model_config = SettingsConfigDict(env_prefix="TEXTMUSIC_", extra="ignore")

    api_url: str | None = None
    api_key: SecretStr | None = None
    # True when TEXTMUSIC_API_URL is a TrackFoundry local service (its profile is then the default:
    # textmusic.providers.default_profile_name).
    local_extensions: bool = False
    request_timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0
    max_connections: int = 64
    poll_initial_seconds: float = 1.0
    poll_max_interval_seconds: float = 10.0
    poll_deadline_seconds: float = 900.0
    max_attempts: int = 6
    # Answers of the API (submission, status, error) are read up to this many bytes, decoded; a larger one is
    # refused unread. A status answer is a few KB; 4 MiB leaves room for a long track list.
    max_answer_bytes: int = 4 * 1024 * 1024
    # Downloads. 1 GiB holds an hour of 16-bit 44.1 kHz stereo WAV (635 MB) with room to spare; a track of
    # a few minutes is tens of MB. Checked on the wire and after decoding; a caller may pass a tighter
    # figure per file (TextMusicClient.download's max_bytes).
    max_download_bytes: int = 1 << 30
    # Decoded bytes per wire byte: audio barely compresses (gzip on a WAV ~1.1-2x, on MP3/FLAC ~1x) and
    # even a mostly silent WAV stays far below 100; a gzip bomb reaches ~1000.
    max_decompression_ratio: float = 100.0
    # Total time for one download, retries included: 1 GiB at a slow 2 MB/s takes ~9 minutes.
    download_deadline_seconds: float = 600.0
    # No byte for this long and the download has stalled (httpx's read timeout); it is retried.
    download_stall_seconds: float = 30.0
    # Offline engine
    soundfont: Path = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    sample_rate: int = 44100
    engine_embeddings: bool = True  # match styles with all-MiniLM-L6-v2 (keywords only when off)
    engine_vocals: bool = True  # sing lyrics with the Piper voice (instrumental backing only when off)


def load_settings() -> TextMusicSettings:
    return TextMusicSettings()
