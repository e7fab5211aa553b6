"""What a run is, as the stages share it: where requests go, what every file of the catalog carries,
what the user decided about money already spent, and where finished records are journaled."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from tasks.catalog.ledger import LedgerRecord
from textmusic.pricing import Price
from textmusic.providers import Profile

Journal = Callable[[list[LedgerRecord]], None]


@cache
def pipeline_version() -> str:
    """The TrackFoundry release, as installed: the provenance of every file names it."""
    try:
        return version("trackfoundry")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def prompt_sha256(prompt: str) -> str:
    """The digest the provenance names a prompt by (the ledger keeps the prompt itself)."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Provider:
    """Where requests go and what they cost there (its profile's `price`); holds no secret, so it may be logged
    and recorded."""

    name: str
    base_url: str
    local_extensions: bool  # honours a request's duration: a song lasts what it asks (and the render's tail)
    price: Price  # its price model: the estimate, the budget, `at_risk` and the ledger's costs follow it
    profile: str = ""  # the name of the profile it is reached through (recorded beside `name`)

    @classmethod
    def of(cls, profile: Profile, name: str | None = None, base_url: str | None = None) -> Provider:
        """The provider a profile describes (`name`, `base_url`: as recorded and reached, when not the
        profile's own)."""
        return cls(name or profile.name, base_url or profile.base_url, profile.local_extensions, profile.price,
                   profile.name)


@dataclass(frozen=True)
class CatalogInfo:
    """What every file of the catalog carries: its name and the default credits."""

    name: str
    artist: str = ""
    composer: str = ""
    publisher: str = ""
    date: str = ""


@dataclass(frozen=True)
class RunOptions:
    """Everything the user decided for one run, built once (by the command line, or from a deployment's
    parameters) and handed down unchanged to the flow and its stages. Frozen and plain: Prefect records it
    as the flow's parameter, and no stage can change what another one was told."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    budget_usd: float | None = None  # hard cap on what this run may spend
    task_runner: str | None = None  # threads or dask (None: the settings'); read before the flow starts
    resubmit_unanswered: bool = False  # send again rows whose earlier submission may have been charged
    regenerate_lost: bool = False  # generate anew paid tracks whose audio could not be had
    regenerate_rejected: bool = False  # replace takes a reviewer rejected (review.csv) by takes with new seeds
    versions: str | None = None  # |-separated library versions for rows whose own `versions` cell is empty
    # The delivery spec, where it differs from the settings' (None: the settings').
    master: str | None = None
    sample_rate: int | None = None
    bit_depth: int | None = None
