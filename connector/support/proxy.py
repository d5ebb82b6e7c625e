"""The proxy a client uses for one service, from the environment, decided once per client.

HTTPS_PROXY / HTTP_PROXY (for the service URL's scheme), then ALL_PROXY, unless NO_PROXY names the host: what
httpx honours for the clients built on it (msgraph-sdk's, the Astro platform API's), so every client of the tool
goes through the same proxy. The aiohttp clients (the Okta SDK's session and reads, the Graph reads, the Astro
SCIM session) take it as the session's `proxy=` (env_proxy), not through aiohttp's `trust_env`: that looks the
proxy up again in a worker thread on every request, and also reads ~/.netrc, whose entry for the host (or a
`default` entry) aiohttp then refuses to combine with our bearer token (every request raised ValueError).
Entra's sign-in (azure-identity over `requests`, whose environment settings read ~/.netrc too) and the GitHub OIDC
fetch (httpx) take the proxy URL itself (proxy_url). Only HTTP(S) proxies: a SOCKS one (ALL_PROXY=socks5://... as
curl takes it) is refused with the variable named.
"""

from __future__ import annotations

import base64
from typing import NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from connector.errors import ConfigError
from connector.support import redact


class AiohttpProxy(NamedTuple):
    """How an aiohttp client talking to one origin takes the proxy, without aiohttp's deprecated `proxy_auth`.

    `url` (no credentials) is the session's `proxy=`. The proxy's credentials, as a Proxy-Authorization header, go
    where aiohttp sends them: for an https origin, on the CONNECT that opens the tunnel, which is what a request's
    `proxy_headers=` feeds (`proxy_headers`, passed with every request: ClientSession has no such default); for a
    plain-http origin aiohttp sends the request itself to the proxy and ignores `proxy_headers`, so the header is
    one of the session's own (`session_headers`), never sent inside an https tunnel to the origin.

    The origin's credentials must go with each request, never among a session's default headers: aiohttp sends
    those to the proxy too (on the CONNECT, in the clear), and their Authorization as the Proxy-Authorization,
    in place of the proxy's own (tests/test_proxy_env.py sees what reaches the proxy)."""

    url: str | None = None
    session_headers: dict[str, str] = {}  # noqa: RUF012  # read-only: callers merge it into their own headers
    proxy_headers: dict[str, str] | None = None


def _choose(url: str) -> tuple[str, str] | None:
    """(the variable's name, the proxy URL as set, http:// added when it has no scheme) for requests to `url`, or
    None to go direct. A SOCKS proxy raises ConfigError naming the variable."""
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    proxies = getproxies()
    key = parts.scheme if proxies.get(parts.scheme) else "all"
    proxy = proxies.get(key)
    if not proxy or not parts.hostname or proxy_bypass(parts.hostname):
        return None
    proxy = proxy if "://" in proxy else f"http://{proxy}"
    _guard_credentials(proxy, key)
    scheme = urlsplit(proxy).scheme
    if scheme not in ("http", "https"):
        # The clients would speak HTTP to it (a SOCKS port answers nothing they understand): every request would
        # fail with a transport error that never names the variable.
        raise ConfigError(f"{key.upper()}_PROXY names a {scheme}:// proxy ({_without_credentials(proxy)}): only "
                          f"http:// and https:// proxies are supported",
                          hint=f"point {key.upper()}_PROXY (or HTTPS_PROXY) at an HTTP proxy, or list the host "
                               f"{parts.hostname} in NO_PROXY")
    return key, proxy


def _guard_credentials(proxy: str, key: str) -> None:
    """Register the proxy's credentials for redaction (raw and percent-decoded: either may be printed), and refuse
    a proxy URL whose authority does not parse: a password holding a bare `/` makes the rest read as a path, and
    errors then showed it. Never echoes the URL."""
    rest = proxy.split("://", 1)[1]
    if "@" not in rest:
        return
    userinfo = rest.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    for value in (userinfo, password, unquote(userinfo), unquote(password)):
        redact.register(value)
    try:
        parts = urlsplit(proxy)
        parts.port  # noqa: B018  # a port that is not a number (the password's tail, cut at a '/') raises
        parsed = parts.hostname is not None and "@" in parts.netloc
    except ValueError:
        parsed = False
    if not parsed:
        raise ConfigError(f"{key.upper()}_PROXY is not a valid proxy URL (not shown: it holds credentials)",
                          hint="percent-encode the user and password (a '/' is %2F, '@' %40, ':' %3A): "
                               "http://user:pass@host:port")


def _without_credentials(proxy: str) -> str:
    parts = urlsplit(proxy)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def proxy_url(url: str) -> str | None:
    """The proxy URL for requests to `url`, its `user:password@` included (requests and httpx send it as the
    proxy's Proxy-Authorization themselves); None to go direct."""
    chosen = _choose(url)
    return chosen[1] if chosen else None


def env_proxy(url: str) -> AiohttpProxy:
    """The proxy for an aiohttp client of the origin of `url` (see AiohttpProxy); AiohttpProxy() to go direct."""
    chosen = _choose(url)
    if chosen is None:
        return AiohttpProxy()
    proxy = chosen[1]
    parts = urlsplit(proxy)
    if parts.username is None and parts.password is None:
        return AiohttpProxy(proxy)
    # Basic credentials (RFC 7617), percent-decoded from the URL, in UTF-8 (its charset="UTF-8"; what
    # aiohttp.encode_basic_auth does, which aiohttp < 3.14 lacks).
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    encoded = base64.b64encode(pair.encode()).decode("ascii")
    redact.register(encoded)  # a debug log of the request's headers shows it as it is sent
    header = {"Proxy-Authorization": "Basic " + encoded}
    if urlsplit(url).scheme == "https":
        return AiohttpProxy(_without_credentials(proxy), {}, header)
    return AiohttpProxy(_without_credentials(proxy), header, None)
