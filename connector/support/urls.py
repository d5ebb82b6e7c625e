"""Endpoint rules shared by every client: https everywhere except loopback."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from connector.errors import ConfigError, Location
from connector.support import redact


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def display(url: str) -> str:
    """The URL as it may be shown: a password in it (`https://user:pass@host`) is masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{redact.MASK}@{host}"))


def check_endpoint(url: str, *, what: str, location: Location | None = None) -> str:
    """Return the URL without a trailing slash, or raise if it is not https (loopback may be http)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a bad port raises here, not later inside a client
    except ValueError as exc:
        raise ConfigError(f"{what} is not a valid URL: {display(url)!r} ({exc})", location=location) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} is not an http(s) URL: {display(url)!r}", location=location)
    if parts.username is not None or parts.password is not None:
        if parts.password:
            redact.register(parts.password)
        raise ConfigError(
            f"{what} must not carry credentials: {display(url)}", location=location,
            hint="remove user:password@ from the URL; tokens are configured by reference (env:NAME, file:PATH)",
        )
    if parts.scheme != "https" and not is_loopback(url):
        raise ConfigError(
            f"{what} must use https (only loopback addresses may use http): {display(url)}",
            location=location,
            hint="use the https:// URL of the service",
        )
    return url.rstrip("/")
