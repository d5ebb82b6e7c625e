"""The HTTP session to Astro SCIM, on aiohttp: the one module that opens one (tests/test_astro_client.py checks it).

`AstroSession` sends a request to a path under the SCIM base URL and hands back the status, headers and body. The
drift audit's bulk read uses it directly (connector.astro.reader, through AstroScimClient.get_json); everything
that builds or checks SCIM messages through the models goes through scim2-client, whose engine
(connector.astro.scim2_engine) sends on this same session. Keeping scim2-client out of this module is what keeps it
out of `drift`'s process: importing scim2-client and scim2-models costs 0.7-1.1 s of CPU (pydantic reads every
model's source for its attribute docstrings), a quarter to a third of a whole 20,000-user audit's CPU
(benchmarks/audit_scale.py), and the bulk read needs neither.

Why aiohttp: measured over 211 list pages, httpx spends 1.3-1.8 ms of CPU per request, aiohttp 0.3-0.5 ms (its
HTTP parser is C). A 20,000-user organization is ~200 list pages: that difference is about a quarter of the
reader's CPU time, and the reader is CPU-bound. aiohttp is already installed with the okta SDK, whose HTTP client
it is.

It also knows when its requests are on the wire (`all_sent`). A request started by a coroutine only reaches
the socket after a few turns of the event loop; a reader that decodes a page in between (milliseconds of CPU)
holds every started request back by that long, and with 8 requests in flight the waits add up instead of
overlapping the decoding.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Self

import orjson

from connector.support.http import without_transport_retry
from connector.support.proxy import env_proxy

if TYPE_CHECKING:
    import aiohttp
    from multidict import CIMultiDictProxy

SCIM_JSON = "application/scim+json"
SEND_WAIT_SECONDS = 0.25  # all_sent() never waits longer than this, whatever a request is stuck on


class TransportFailure(Exception):
    """No HTTP answer (refused, DNS, TLS, timeout); its text says why."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole response (scim2-client's RawResponse protocol, plus the raw bytes and json())."""

    status_code: int
    headers: CIMultiDictProxy[str]  # case-insensitive .get(), as scim2-client expects
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return orjson.loads(self.content)


class AstroSession:
    """`async with AstroSession(base_url, headers=..., concurrency=8, timeout=60) as session:`.

    Requests go to `base_url` + an endpoint path (never elsewhere), at most `concurrency` connections, `headers` on
    each (the credentials); proxies from the environment, as the other HTTP clients honour them.
    """

    def __init__(self, base_url: str, *, headers: dict[str, str], concurrency: int, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers, self._concurrency, self._timeout = headers, concurrency, timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxy_headers: dict[str, str] | None = None
        self._unsent = 0
        self._sent = asyncio.Event()
        self._sent.set()

    async def __aenter__(self) -> Self:
        import aiohttp

        proxy = env_proxy(self.base_url)  # not trust_env: see connector.support.proxy
        self._proxy_headers = proxy.proxy_headers
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(self._on_headers_sent)
        self._session = without_transport_retry(aiohttp.ClientSession(
            # The credentials go with each request (request()), not among the session's headers: aiohttp sends
            # those to the proxy too, and its Authorization as the Proxy-Authorization (connector.support.proxy).
            headers=proxy.session_headers, connector=aiohttp.TCPConnector(limit=self._concurrency),
            timeout=aiohttp.ClientTimeout(total=self._timeout), trace_configs=[trace], proxy=proxy.url,
        ))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, url: str, *, params: Any = None, json: Any = None, **kwargs: Any
                      ) -> Answer:
        """Send one request to the endpoint path `url`; transport failures raise TransportFailure."""
        import aiohttp

        if self._session is None:
            raise RuntimeError("AstroSession is used outside `async with`")
        if json is not None:
            kwargs["data"] = orjson.dumps(json)
            kwargs["headers"] = {"Content-Type": SCIM_JSON, **kwargs.get("headers", {})}
        kwargs["headers"] = {**self._headers, **kwargs.get("headers", {})}
        if "://" in url.split("?", 1)[0]:  # the credentials go with every request: paths under base_url only
            raise ValueError(f"not an endpoint path under the SCIM base URL: {url!r}")
        target = self.base_url + url
        mark = SimpleNamespace(sent=False)
        self._unsent += 1
        self._sent.clear()
        try:
            async with self._session.request(method, target, params=params, allow_redirects=False,
                                             trace_request_ctx=mark, proxy_headers=self._proxy_headers,
                                             **kwargs) as response:
                return Answer(response.status, response.headers, await response.read())
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransportFailure(str(exc) or type(exc).__name__) from exc
        finally:
            self._mark_sent(mark)

    async def all_sent(self) -> None:
        """Return once every request started so far has been written (or has failed).

        Yields once first: a request whose slot was just freed starts in the next turn of the loop.
        """
        await asyncio.sleep(0)
        if self._unsent:
            try:
                await asyncio.wait_for(self._sent.wait(), SEND_WAIT_SECONDS)
            except TimeoutError:
                pass

    async def _on_headers_sent(self, session: Any, context: SimpleNamespace, params: Any) -> None:
        self._mark_sent(context.trace_request_ctx)

    def _mark_sent(self, mark: Any) -> None:
        if isinstance(mark, SimpleNamespace) and not mark.sent:
            mark.sent = True
            self._unsent -= 1
            if not self._unsent:
                self._sent.set()
