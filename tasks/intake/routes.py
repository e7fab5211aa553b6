"""Per-row providers: which provider profile a brief row's `provider` cell may name, and the key each needs.

A cell names a profile by its name: an empty cell (or the run's own provider's name) is the run's provider; any
other name must be a shipped profile (textmusic/providers/) or one the operator lists in TRACKFOUNDRY_PROVIDERS
(names or TOML paths). A brief never points at a profile file of its own choosing: a profile says where requests
and their key go, and a brief may come from outside the studio. Each routed provider's key is read from its own
variable, `TEXTMUSIC_API_KEY_<NAME>` (the name upper-cased, every other character `_`), so a key goes only to
the host of the profile it belongs to; the run's own provider keeps TEXTMUSIC_API_KEY (or its Secret block).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from textmusic.providers import LOCAL_PROFILE, SHIPPED, Profile, ProfileError, load_profile

DEFAULT_ROUTE = ""
MAX_NAME_CHARS = 100  # the run's own provider (TRACKFOUNDRY_PROVIDER, else the default)


class RouteError(ValueError):
    """A row's provider cell names no provider this run may use; the message is the reason its row is rejected."""


def key_env(name: str) -> str:
    """The environment variable that holds the key of the routed provider `name`."""
    return "TEXTMUSIC_API_KEY_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def listed_profiles(listed: str) -> dict[str, Profile]:
    """The profiles TRACKFOUNDRY_PROVIDERS lists (comma-separated names or TOML paths), by name. A bad entry is the
    operator's setting, not a brief row: it stops the run (ProfileError) before anything is sent. So does a name
    whose key variable is another's (`sunoapi.org` and the shipped `sunoapi-org`): one key would reach two hosts."""
    try:
        profiles = {p.name: p for p in (load_profile(entry.strip()) for entry in listed.split(",") if entry.strip())}
    except ProfileError as exc:  # say which setting: the message alone names a file, not where it came from
        raise ProfileError(f"TRACKFOUNDRY_PROVIDERS: {exc}") from None
    by_variable: dict[str, set[str]] = {}
    for name in {*profiles, *SHIPPED}:
        by_variable.setdefault(key_env(name), set()).add(name)
    clash = next((names for names in by_variable.values() if len(names) > 1), None)
    if clash:
        raise ProfileError(f"TRACKFOUNDRY_PROVIDERS: the profiles {', '.join(sorted(clash))} would share the key "
                           f"variable {key_env(next(iter(clash)))}: rename one")
    for name in sorted(set(profiles) & set(SHIPPED)):  # the same name: the same key, so the same host
        if _host(profiles[name].base_url) != _host(_shipped(name).base_url):
            raise ProfileError(f"TRACKFOUNDRY_PROVIDERS: {name} is a shipped profile's name, at another host: the "
                               f"key in {key_env(name)} would reach both; rename it")
    return profiles


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


@cache
def _shipped(name: str) -> Profile:
    """A shipped profile, read once per process (validation asks for it per row)."""
    return load_profile(name)


@dataclass(frozen=True)
class Routes:
    """The providers a run may route rows to: its own (`default`, route "") and the others by name."""

    default: Profile
    listed: Mapping[str, Profile]  # the operator's own profiles (TRACKFOUNDRY_PROVIDERS), by name
    aliases: frozenset[str] = frozenset()  # other cells meaning the run's own provider (TRACKFOUNDRY_PROVIDER as set)

    def route(self, cell: str) -> str:
        """The route a row's `provider` cell names (DEFAULT_ROUTE: the run's own); RouteError says why not."""
        name = cell.strip()
        if len(name) > MAX_NAME_CHARS:
            raise RouteError(f"names no provider: a profile name is at most {MAX_NAME_CHARS} characters")
        if not name or name == self.default.name or name in self.aliases:
            return DEFAULT_ROUTE
        if name not in self.listed and name not in SHIPPED:
            choices = ", ".join(sorted({self.default.name, *self.listed, *SHIPPED}))
            raise RouteError(f"no provider {name!r} this run may use: name one of {choices} (other profiles are "
                             "listed by the operator in TRACKFOUNDRY_PROVIDERS, never named by path in a brief)")
        profile = self.profile(name)
        if profile.name != LOCAL_PROFILE and not os.environ.get(key_env(name)):
            raise RouteError(f"provider {name} needs its own key: set {key_env(name)}")
        return name

    def profile(self, route: str) -> Profile:
        """The profile of a route (one `route` returned)."""
        if route == DEFAULT_ROUTE:
            return self.default
        return self.listed[route] if route in self.listed else _shipped(route)

    def profiles(self, routes: set[str]) -> dict[str, Profile]:
        """The profiles of the routes rows use, by route."""
        return {route: self.profile(route) for route in sorted(routes)}
