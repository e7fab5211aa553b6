"""Pipeline settings, read from environment variables prefixed `TRACKFOUNDRY_`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.naming import DEFAULT_FILE_NAME_TEMPLATE, check_name_template
from textmusic.audio import STREAMING_LUFS
from textmusic.settings import RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW_SECONDS


@dataclass(frozen=True)
class MasterSpec:
    """A delivery target. `lufs` None: the loudness is left alone (and only the file's health is checked);
    `true_peak_dbtp` None: no ceiling. The silence/DC limits are the same for every spec unless given."""

    name: str
    lufs: float | None
    true_peak_dbtp: float | None
    lufs_tolerance: float = 0.5
    max_head_silence_s: float = 1.0
    max_tail_silence_s: float = 4.0
    max_dc_offset: float = 0.001  # -60 dBFS of constant offset per channel


SPECS: dict[str, MasterSpec] = {  # the choices of `master` (and --master): their one declaration
    "streaming": MasterSpec("streaming", lufs=STREAMING_LUFS, true_peak_dbtp=-1.0),
    "broadcast": MasterSpec("broadcast", lufs=-23.0, true_peak_dbtp=-1.0),  # EBU R128
    "none": MasterSpec("none", lufs=None, true_peak_dbtp=None),
}

DURATION_TOLERANCE_SECONDS = 0.25  # a delivered file's decoded length against the reported one

# The choices of the settings below, each declared here once: the command line offers and checks these.
MasterName = Literal[tuple(SPECS)]  # type: ignore[valid-type]
SampleRate = Literal[44100, 48000]
BitDepth = Literal[16, 24]  # of a lossless master
TaskRunner = Literal["threads", "dask"]
SAMPLE_RATES: tuple[int, ...] = get_args(SampleRate)
BIT_DEPTHS: tuple[int, ...] = get_args(BitDepth)
TASK_RUNNERS: tuple[str, ...] = get_args(TaskRunner)


class PipelineSettings(BaseSettings):
    """One settings object for the pipeline; `for_provider` fills in what the provider's profile knows."""
    model_config = SettingsConfigDict(env_prefix="TRACKFOUNDRY_", extra="ignore")

    # Provider metering, through Prefect's global concurrency limits; a run meters at its provider profile's
    # rate limit (`for_provider`) unless these are set.
    rate_limit_name: str = "textmusic-requests"
    requests_per_window: int = RATE_LIMIT_REQUESTS
    window_seconds: float = RATE_LIMIT_WINDOW_SECONDS
    # Rows in flight: adaptive (grow per accepted submission, halve on 429/5xx) from `initial_in_flight`
    # up to this ceiling; unset = the provider's (its profile's, or the local service's own capacity).
    max_in_flight: int | None = None
    initial_in_flight: int = 8
    # The machinery of a run: threads that submit, poll (for the one poller) and deliver.
    submit_workers: int = 8
    poll_workers: int = 8
    delivery_workers: int = 6
    # Polls take at most this share of the provider's rate limit: submissions are never starved.
    poll_share: float = 0.7
    # A provider that is down (5xx, refused connections) is waited for this long before rows fail.
    outage_budget_seconds: float = 900.0
    outage_probe_seconds: float = 10.0
    # A row refused with 429/5xx is queued again at most this often while the provider is otherwise up.
    max_requeues: int = 20
    # A paid track whose download fails is tried again by later runs this many times in all, then `lost`.
    max_delivery_attempts: int = 3
    # A paid track the provider answers 404/410 for (replica lag, a load balancer, or truly gone) becomes
    # `lost` only once this many polls spread over at least this long (or the poll deadline) all say so:
    # one answer never gives up a paid track, and no poll error ever leads to a new submission.
    lost_confirm_polls: int = 4
    lost_confirm_seconds: float = 180.0
    # After a stop request (Ctrl-C, SIGTERM), downloads already running get this long to finish.
    interrupt_grace_seconds: float = 4.0
    # Rows per Prefect task (the rows themselves share the run's machinery; see produce_catalog.py).
    rows_per_task: int = 25
    # A shipped profile name (textmusic.providers.SHIPPED) or a TOML file; unset: the local service's when
    # TEXTMUSIC_API_URL is unset or names a local service, else the hosted API's (tasks/provider/preflight.py).
    provider: str | None = None
    # Profiles (comma-separated names or TOML paths) a brief's `provider` column may name besides the shipped
    # ones; a brief itself never names a profile file (tasks/intake/routes.py).
    providers: str = ""
    # The embedded local service in hosted-like mode (tests, benchmarks): `textmusic serve --latency`.
    embedded_latency: str | None = None
    embedded_synthetic_audio: bool = False
    # Dask (prefect-dask) runs processes when PREFECT_API_URL names a real server.
    task_runner: TaskRunner = "threads"
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
    # Callbacks (a profile with a `[callback]` table, tasks/provider/callbacks.py): the run's receiver listens on
    # callback_host:callback_port (0: a free port) and sends the provider `callback_url` (the public base URL a
    # studio exposes through its own tunnel or ingress, forwarding to that port) or, unset, its own loopback URL.
    # A track with no callback after callback_fallback_factor × its expected time to ready is polled as usual.
    callback_url: str | None = None
    callback_host: str = "127.0.0.1"
    callback_port: int = 0
    callback_fallback_factor: float = 3.0
    # The API key may come from a Prefect Secret block instead of TEXTMUSIC_API_KEY.
    api_key_secret_block: str | None = None
    # Verification of downloaded audio against what the provider reported.
    duration_tolerance_seconds: float = DURATION_TOLERANCE_SECONDS
    # Near-duplicates (tasks/catalog/similar.py): two delivered files whose fingerprints score at least this are
    # flagged. The same audio in any format scores >= 0.998; other seeds of one prompt at most ~0.975.
    similarity_threshold: float = 0.99
    # Delivery masters (tasks/delivery/finish.py): every delivered file is measured after encoding against `master`
    # (one of SPECS) and mastered when outside it; WAV/FLAC files also to `sample_rate` and `bit_depth` when set.
    # A file that still misses its spec is held as `failed` (qc), never delivered silently.
    master: MasterName = "streaming"
    sample_rate: SampleRate | None = None
    bit_depth: BitDepth | None = None
    # File names (tasks/naming.py): fields {catalog} {track} {title} {version} {bpm}; see docs/catalog.md.
    file_name_template: str = DEFAULT_FILE_NAME_TEMPLATE
    # Content Credentials (C2PA; tasks/delivery/credentials.py, signing.py): every delivered file is signed as
    # AI-generated (EU AI Act Art. 50(2)) when `content_credentials`. The studio's identity: a PEM certificate
    # chain (leaf first) and its private key, from a file or a Prefect Secret block (like api_key_secret_block);
    # without a certificate, a development identity made once under state_dir/signing (valid, but untrusted).
    # `signing_timestamp_url`: an RFC 3161 timestamp authority for the studio's signatures (none offline).
    content_credentials: bool = True
    signing_cert_file: Path | None = None
    signing_key_file: Path | None = None
    signing_key_secret_block: str | None = None
    signing_timestamp_url: str | None = None
    # Roots (PEM) the studio's credentials must chain to when a catalog is verified (`trackfoundry verify`, the end
    # of a run); unset: a valid signature by any root passes, and development-signed files read as untrusted.
    signing_trust_anchors: Path | None = None

    @field_validator("file_name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_name_template(value)

    def for_provider(self, requests: int, window_seconds: float) -> PipelineSettings:
        """The provider profile's rate limit, unless TRACKFOUNDRY_REQUESTS_PER_WINDOW/_WINDOW_SECONDS say."""
        update = {k: v for k, v in (("requests_per_window", requests), ("window_seconds", window_seconds))
                  if k not in self.model_fields_set}
        return self.model_copy(update=update)
