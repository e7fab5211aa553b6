"""What can be checked before any row and before Prefect boots: the provider's profile, that the provider
answers and that the key is accepted (a request that costs nothing). Light imports only."""

from __future__ import annotations

import os

from pydantic import SecretStr

from tasks.intake.routes import Routes, listed_profiles
from tasks.settings import PipelineSettings
from textmusic.client import TextMusicClient, TextMusicError, Unauthorized
from textmusic.providers import LOCAL_PROFILE, Profile, default_profile_name, load_profile
from textmusic.settings import TextMusicSettings


class PreflightError(Exception):
    """The run cannot start; the message is one line and never holds the key."""


def resolve_profile(settings: PipelineSettings, api: TextMusicSettings) -> tuple[Profile, bool]:
    """(the provider's profile, whether the embedded local service is meant). TEXTMUSIC_API_URL, when set,
    overrides the profile's base URL."""
    if settings.provider:
        profile = load_profile(settings.provider)
    else:
        profile = load_profile(default_profile_name(api.local_extensions or not api.api_url))
    embedded = not api.api_url and profile.name == LOCAL_PROFILE
    if api.api_url:
        profile = profile.model_copy(update={"base_url": api.api_url})
    return profile, embedded


def provider_routes(settings: PipelineSettings, api: TextMusicSettings) -> Routes:
    """The providers a brief's rows may name: the run's own, the operator's TRACKFOUNDRY_PROVIDERS and the shipped
    ones (a profile that cannot be read raises ValueError: the operator's setting, not a row)."""
    aliases = frozenset({settings.provider}) if settings.provider else frozenset()
    return Routes(resolve_profile(settings, api)[0], listed_profiles(settings.providers), aliases)


def check_provider(settings: PipelineSettings | None = None, api: TextMusicSettings | None = None) -> str:
    """Raise PreflightError when the configured provider cannot be used; returns what was checked."""
    settings, api = settings or PipelineSettings(), api or TextMusicSettings()
    try:
        profile, embedded = resolve_profile(settings, api)
        provider_routes(settings, api)
    except ValueError as exc:
        raise PreflightError(str(exc)) from None
    signature = profile.callback.signature if profile.callback is not None else None
    if signature is not None and not os.environ.get(signature.secret_env):
        raise PreflightError(f"provider {profile.name} signs its callbacks: set {signature.secret_env} to the "
                             "secret it signs them with")
    if embedded:
        return "embedded local service"
    if api.api_key is None:
        if settings.api_key_secret_block:
            return f"{profile.name} at {profile.base_url} (key in a Prefect Secret block, checked at start)"
        raise PreflightError(f"provider {profile.name} ({profile.base_url}) needs a key: set TEXTMUSIC_API_KEY "
                             "or TRACKFOUNDRY_API_KEY_SECRET_BLOCK")
    return check_key(profile, api.api_key, api)


def check_key(profile: Profile, key: SecretStr, api: TextMusicSettings) -> str:
    """That the provider answers and accepts `key`, by a request that costs nothing (PreflightError: why not)."""
    quick = api.model_copy(update={"max_attempts": 2, "request_timeout_seconds": 15.0,
                                   "connect_timeout_seconds": 5.0})
    with TextMusicClient(profile.base_url, key, profile=profile, settings=quick) as client:
        try:
            client.check_auth()
        except Unauthorized as exc:
            raise PreflightError(f"provider {profile.name} ({profile.base_url}) refused the key: "
                                 f"{client.redact(exc.message)}") from None
        except TextMusicError as exc:
            raise PreflightError(f"provider {profile.name} ({profile.base_url}) does not answer: "
                                 f"{client.redact(exc.message)}") from None
    return f"{profile.name} at {profile.base_url}: key accepted"
