"""Settings of the API layer, read from environment variables prefixed `TEXTMUSIC_`."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TextMusicSettings(BaseSettings):
    """`TEXTMUSIC_API_URL` unset means: use the embedded local service."""

    model_config = SettingsConfigDict(env_prefix="TEXTMUSIC_", extra="ignore")

    api_url: str | None = None
    api_key: SecretStr | None = None
    # True when TEXTMUSIC_API_URL is a TrackFoundry local service (its profile is then the default).
    local_extensions: bool = False
    request_timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0
    max_connections: int = 64
    poll_initial_seconds: float = 1.0
    poll_max_interval_seconds: float = 10.0
    poll_deadline_seconds: float = 900.0
    max_attempts: int = 6
    # Offline engine
    soundfont: Path = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    sample_rate: int = 44100
    engine_embeddings: bool = True  # match styles with all-MiniLM-L6-v2 (keywords only when off)
    engine_vocals: bool = True  # sing lyrics with the Piper voice (instrumental backing only when off)


def load_settings() -> TextMusicSettings:
    return TextMusicSettings()
