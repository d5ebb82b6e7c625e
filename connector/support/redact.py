"""Secret values never leak: every value read through a `Secret` is registered here, and every line the tool
prints, logs or renders passes through `redact()`."""

from __future__ import annotations

import logging
import threading

MASK = "****"
_lock = threading.Lock()
_values: set[str] = set()


def register(value: str) -> None:
    # Very short values would mask ordinary words; real tokens are long.
    if value and len(value) >= 6:
        with _lock:
            _values.add(value)


def redact(text: str) -> str:
    if not _values or not text:
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for v in values:
        if v in text:
            text = text.replace(v, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Attach to every handler: formats the record once, then masks secrets in the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True
