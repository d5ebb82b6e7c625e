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
    """The URL as it may be shown: credentials in it (`https://user:pass@host`, `https://token@host`) are masked."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:{redact.MASK}" if parts.password is not None else redact.MASK
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def _userinfo(url: str) -> str | None:
    """What stands before the last `@` after the scheme, however the rest parses (a password holding `/`, `?` or
    `#` makes urlsplit end the authority early and take the rest for a path, which then showed the password). None
    of the endpoints configured here has an `@` anywhere else."""
    rest = url.split("://", 1)[1] if "://" in url else url
    return rest.rpartition("@")[0] if "@" in rest else None


def check_endpoint(url: str, *, what: str, location: Location | None = None) -> str:
    """Return the URL without a trailing slash, or raise if it is not https (loopback may be http).

    No message repeats a URL that may hold a secret: one with credentials, a query or a fragment is refused without
    being shown (those parts registered for redaction too), and one that does not parse is not echoed either."""
    userinfo = _userinfo(url)
    if userinfo is not None:  # `https://@host` too: an empty user is no endpoint either
        redact.register(userinfo)
        redact.register(userinfo.partition(":")[2])
        raise ConfigError(
            f"{what} must not carry credentials (a user or token before an '@'; not shown)", location=location,
            hint="remove user:password@ from the URL; tokens are configured by reference (env:NAME, file:PATH)",
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a bad port raises here, not later inside a client
    except ValueError as exc:
        raise ConfigError(f"{what} is not a valid URL (its host or port cannot be read)", location=location,
                          hint="write it as https://host[:port]/path") from exc
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        redact.register(parts.query)
        redact.register(parts.fragment)
        raise ConfigError(
            f"{what} must not carry a query or a fragment ('?...' or '#...'; not shown)", location=location,
            hint="give the base URL alone; tokens are configured by reference (env:NAME, file:PATH), never in a URL",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} is not an http(s) URL: {url!r}", location=location,
                          hint="write it as https://host[:port]/path")
    if parts.scheme != "https" and not is_loopback(url):
        raise ConfigError(
            f"{what} must use https (only loopback addresses may use http): {url}",
            location=location,
            hint="use the https:// URL of the service",
        )
    return url.rstrip("/")
