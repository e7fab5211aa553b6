"""A provider's callbacks (webhooks), as data: the profile's `[callback]` table.

Many hosted music APIs call a URL back when a track is done instead of (or besides) being polled: the URL goes
in a request field the provider names (sunoapi.org `callBackUrl`, Sonauto and MusicGPT `webhook_url`), the
callback's body holds the track somewhere of its own, and some providers sign it (an HMAC-SHA256 of the body,
hex or base64, with a timestamp against replays, as Standard Webhooks' `webhook-id`/`webhook-timestamp`/
`webhook-signature: v1,<base64>`). A signed callback is believed; an unsigned one only says "look now" (anyone
who learns the URL could send it). `verify` is the one check of a signature (the table itself is `CallbackSpec`, in
textmusic.providers beside the answer paths it reuses); the secret never comes from the
profile itself, only from the environment variable it names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SECRET_ENV = "TRACKFOUNDRY_CALLBACK_SECRET"
MAX_CALLBACK_BYTES = 1 << 20  # a callback is a few KB; a body past this is refused unread


class Signature(BaseModel):
    """How a provider signs its callbacks. The signed text is the raw body, prefixed by `<timestamp>.` when
    the provider sends a timestamp header and by `<id>.` when it sends a message id header (Standard
    Webhooks signs `<id>.<timestamp>.<body>`). The header may list several signatures separated by spaces
    (a provider rotating its secret); any one that matches passes."""

    model_config = ConfigDict(extra="forbid")

    scheme: Literal["hmac-sha256"] = "hmac-sha256"
    header: str = "webhook-signature"
    encoding: Literal["hex", "base64"] = "base64"
    prefix: str = ""  # before each signature in the header: "v1," (Standard Webhooks), "sha256=" (GitHub style)
    timestamp_header: str = ""  # "" = the provider sends no timestamp (no replay window is checked)
    id_header: str = ""  # "" = no message id in the signed text
    tolerance_seconds: float = Field(300.0, gt=0)  # a timestamp further than this from now is refused
    secret_env: str = DEFAULT_SECRET_ENV  # the environment variable holding the secret (never the profile)
    secret_prefix: str = ""  # stripped from the secret before use ("whsec_": the secret after it is base64)


def small_number(text: str) -> bool:
    """ASCII digits only, and few: what a provider's number in text must be before int() reads it ("²" is a digit
    to str.isdigit() but not to int(), and int() of thousands of digits is refused, or slow)."""
    return text.isascii() and text.isdigit() and len(text) <= 12


def with_url(body: dict[str, Any], field: str, url: str) -> dict[str, Any]:
    """`body` with `url` at the dotted path `field` (nested objects made as needed); the body is not changed."""
    out = dict(body)
    *parents, last = field.split(".")
    node = out
    for part in parents:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, dict) else {}
        node = node[part]
    node[last] = url
    return out


def secret_bytes(signature: Signature, secret: str) -> bytes:
    """The HMAC key from the secret as configured (`whsec_<base64>` is decoded, as Standard Webhooks says)."""
    if signature.secret_prefix and secret.startswith(signature.secret_prefix):
        return base64.b64decode(secret[len(signature.secret_prefix):])
    return secret.encode()


def signed_text(signature: Signature, headers: Mapping[str, str], body: bytes) -> bytes:
    parts = [headers.get(h, "").encode() for h in (signature.id_header, signature.timestamp_header) if h]
    return b".".join([*parts, body])


def sign(signature: Signature, key: bytes, headers: Mapping[str, str], body: bytes) -> str:
    """The header value a provider following `signature` sends for `body` (its id/timestamp in `headers`)."""
    digest = hmac.new(key, signed_text(signature, headers, body), hashlib.sha256).digest()
    text = digest.hex() if signature.encoding == "hex" else base64.b64encode(digest).decode()
    return signature.prefix + text


def verify(signature: Signature, key: bytes, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """Whether the callback is signed with `key` and, when the provider sends a timestamp, sent within the
    tolerance of `now` (an old callback replayed by whoever recorded it is refused). Constant-time compare."""
    if signature.timestamp_header:
        stamp = headers.get(signature.timestamp_header, "")
        if not small_number(stamp) or abs(now - int(stamp)) > signature.tolerance_seconds:
            return False
    expected = sign(signature, key, headers, body).encode()
    given = headers.get(signature.header, "").split()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in given[:8])
