"""Pipeline settings, read from environment variables prefixed `TRACKFOUNDRY_`."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKFOUNDRY_", extra="ignore")

    # Provider metering, through Prefect's global concurrency limits (the hosted API allows ~100 per 10 s).
    rate_limit_name: str = "textmusic-requests"
    requests_per_window: int = 100
    window_seconds: float = 10.0
    max_in_flight: int = 4
    # "threads" or "dask" (prefect-dask: processes when PREFECT_API_URL names a real server).
    task_runner: str = "threads"
    # Slots are taken from Prefect in batches of up to this many (at most a tenth of the window's allowance).
    metering_batch_max: int = 10
    # A batch's slots lapse this long after they were taken; the limit's decay is derated by it (metering.py).
    metering_lapse_seconds: float = 0.5
    # Embedded local service (used when TEXTMUSIC_API_URL is unset). Its state (SQLite, its key, its audio)
    # lives under state_dir, one folder per catalog folder, unless embedded_data_dir is set: a resumed run
    # finds the tracks it already paid for, and the catalog folder never holds the key.
    state_dir: Path = Path.home() / ".local" / "state" / "trackfoundry"
    embedded_balance_usd: float = 1000.0
    embedded_workers: int | None = None
    embedded_startup_seconds: float = 60.0
    embedded_data_dir: Path | None = None
    # Cost planning: what a song is expected to last, and the longest a provider may make it, when the
    # request names no duration (the hosted API has none).
    expected_minutes_per_song: float = 3.0
    max_minutes_per_song: float = 5.0
    # Catalog metadata for the tags (a brief's own artist/composer/publisher columns win).
    artist: str = "TrackFoundry"
    composer: str = ""
    publisher: str = ""
    # The API key may come from a Prefect Secret block instead of TEXTMUSIC_API_KEY.
    api_key_secret_block: str | None = None
    # Verification of downloaded audio against what the provider reported.
    duration_tolerance_seconds: float = 0.25
