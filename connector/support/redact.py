"""Secret values never leak: every value read through a `Secret` is registered here, and every line the tool
prints, logs or renders passes through `redact()`."""

from __future__ import annotations

import logging
import re
import threading

MASK = "****"
_lock = threading.Lock()
_values: set[str] = set()
_ordered: list[str] = []  # _values, longest first (a token containing another is masked whole): kept, not re-sorted


# A line of a multi-line secret (a PEM or JWK private key) is masked on its own too: a traceback or a parser's
# error quotes one line, never the whole value. Short lines ("-----END ...", "}") are no secret.
_LINE_MIN = 16


def register(value: str) -> None:
    # Very short values would mask ordinary words; real tokens are long.
    if value and len(value) >= 6:
        new = {value}
        if "\n" in value:
            new.update(line.strip() for line in value.splitlines()
                       if len(line.strip()) >= _LINE_MIN and not line.strip().startswith("-----"))  # PEM armour
        global _ordered
        with _lock:
            if new <= _values:
                return
            _values.update(new)
            _ordered = sorted(_values, key=len, reverse=True)


# `scheme://user:password@host`: a password in a URL is masked even when it was never read through a Secret.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]+):[^\s/@]+@")
# Its part after the scheme: a search led by the literal "://" skips a long text's words at once, where the pattern
# above tries a scheme at every word boundary (1.7 s for a 13 MB drift report of 20,000 findings). Every match of
# _URL_PASSWORD holds one of this, so a text without one has no URL password.
_URL_USERINFO = re.compile(r"://[^\s/:@]+:[^\s/@]+@")


def redact(text: str) -> str:
    if not text:
        return text
    if "@" in text and "://" in text and _URL_USERINFO.search(text):
        text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    values = _ordered  # replaced whole on register, never changed in place: safe to read without the lock
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


# What printed text must not carry as is: C0 and C1 control characters but tab and newline (an ESC in a userName
# from Astro or the IdP rewrites the reader's terminal; XML 1.0 cannot hold most of them, so a JUnit report with
# one is not well-formed), lone surrogates (not encodable: writing them fails) and the XML non-characters U+FFFE
# and U+FFFF, and the invisible controls that reorder or hide text (bidi embeddings, overrides and isolates, the
# marks, a zero-width space: "\u202emoc.elpmaxe@nimda" shows as another user's address). JSON keeps values exact
# (json escapes them); reports and narration show them as Python escapes.
_UNPRINTABLE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with each character printed text must not carry (see _UNPRINTABLE) as its escape, e.g. \\x01."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
