"""The proxy a client uses for one service, from the environment, decided once per client.

HTTPS_PROXY / HTTP_PROXY (for the service URL's scheme), then ALL_PROXY, unless NO_PROXY names the host: what
httpx honours for the clients built on it (msgraph-sdk's, the Astro platform API's), so every client of the tool
goes through the same proxy. The aiohttp clients (the Okta SDK's session and reads, the Graph reads, the Astro
SCIM session) take it as the session's `proxy=`, not through aiohttp's `trust_env`: that looks the proxy up again
in a worker thread on every request, and also reads ~/.netrc, whose entry for the host (or a `default` entry)
aiohttp then refuses to combine with our bearer token (every request raised ValueError). The proxy URL's
credentials travel apart, as its Proxy-Authorization, so the URL itself carries none. Only HTTP(S) proxies: a
SOCKS one (ALL_PROXY=socks5://... as curl takes it) is refused with the variable named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from connector.errors import ConfigError

if TYPE_CHECKING:
    import aiohttp


def env_proxy(url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """(proxy URL without credentials, its credentials) for requests to `url`; (None, None) to go direct."""
    from urllib.request import getproxies, proxy_bypass

    import aiohttp
    from yarl import URL

    parts = urlsplit(url)
    proxies = getproxies()
    key = parts.scheme if proxies.get(parts.scheme) else "all"
    proxy = proxies.get(key)
    if not proxy or not parts.hostname or proxy_bypass(parts.hostname):
        return None, None
    parsed = URL(proxy if "://" in proxy else f"http://{proxy}")
    if parsed.scheme not in ("http", "https"):
        # aiohttp would speak HTTP to it (a SOCKS port answers nothing it understands): every request would fail
        # with a transport error that never names the variable.
        raise ConfigError(f"{key.upper()}_PROXY names a {parsed.scheme}:// proxy "
                          f"({parsed.with_user(None)}): only http:// and https:// proxies are supported",
                          hint=f"point {key.upper()}_PROXY (or HTTPS_PROXY) at an HTTP proxy, or list the host "
                               f"{parts.hostname} in NO_PROXY")
    return str(parsed.with_user(None)), aiohttp.BasicAuth.from_url(parsed)
