"""One redactor for every text that leaves the process: ledger, journal, page, support files, artifacts, log
lines and error messages.

A provider may echo the key anywhere (an error message, a failed track's reason, a header it copies into a
body), plain, as `Bearer KEY`, percent-encoded in a URL or escaped inside JSON. Rather than redacting on the
paths we thought of, the sinks call `redact` and the process registers each key once, when a client is made
with it. Log records are redacted where they are made (a log-record factory), so every handler, Prefect's
API handler included, sees only redacted text.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "[redacted]"
MIN_SECRET_CHARS = 6  # shorter strings would redact ordinary words; no real key is that short

_lock = threading.Lock()
_forms: tuple[str, ...] = ()


def _spellings(secret: str) -> set[str]:
    """The ways a key can appear in text: as is, percent-encoded (either case of hex), JSON-escaped."""
    encoded = {quote(secret, safe=""), quote_plus(secret, safe=""), json.dumps(secret)[1:-1]}
    encoded |= {form.lower() for form in encoded if "%" in form} | {form.upper() for form in encoded if "%" in form}
    return {secret, *encoded}


def register(secret: str) -> None:
    """Redact `secret` (and its encoded spellings) from everything this process writes from now on."""
    global _forms
    if len(secret) < MIN_SECRET_CHARS:
        return
    with _lock:
        # Longest first: a spelling that contains another is replaced whole.
        _forms = tuple(sorted(set(_forms) | _spellings(secret), key=len, reverse=True))
    _install_log_redaction()


def redact(text: str) -> str:
    """`text` with every registered key replaced by [redacted]."""
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def redact_value(value: Any) -> Any:
    """Strings redacted inside any JSON-like value (dicts, lists, tuples); other values as they are."""
    if not _forms:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


_installed = False


def _install_log_redaction() -> None:
    """Every log record's message redacted where the record is made, whatever handler formats it later."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _forms:
            record.msg = redact(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
