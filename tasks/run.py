"""What a run is, as the stages share it: where requests go, what every file of the catalog carries,
what the user decided about money already spent, and where finished records are journaled."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from tasks.catalog.ledger import LedgerRecord

Journal = Callable[[list[LedgerRecord]], None]


@dataclass(frozen=True)
class Provider:
    """Where requests go; holds no secret, so it may be logged and recorded."""

    name: str
    base_url: str
    local_extensions: bool


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
    """What a user decided for this run about money that may already be spent."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    resubmit_unanswered: bool = False  # send again rows whose earlier submission may have been charged
    regenerate_lost: bool = False  # generate anew paid tracks whose audio could not be had
    regenerate_rejected: bool = False  # replace takes a reviewer rejected (review.csv) by takes with new seeds
