"""Endpoint rules shared by every client: https everywhere except loopback."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from connector.errors import ConfigError, Location


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, *, what: str, location: Location | None = None) -> str:
    """Return the URL without a trailing slash, or raise if it is not https (loopback may be http)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} is not an http(s) URL: {url!r}", location=location)
    if parts.scheme != "https" and not is_loopback(url):
        raise ConfigError(
            f"{what} must use https (only loopback addresses may use http): {url}",
            location=location,
            hint="use the https:// URL of the service",
        )
    return url.rstrip("/")
