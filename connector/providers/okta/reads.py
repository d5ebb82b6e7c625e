"""A read-only connection to Okta for the audit: aiohttp and the API token, without the okta SDK.

Why not the SDK client (connector.providers.okta.client): the audit only GETs raw JSON (cursor-paged lists and a
few objects), yet building the SDK client imports its API classes, pydantic models and request executor, ~1 s of
start-up before the first request (benchmarks/audit_scale.py), and its executor re-parses every answer as text.
Here a page is bytes decoded with orjson, and the next page of a cursor chain is asked for as soon as the current
one's headers are in (the cursor is in the Link header: connector.support.chain), before its body is read and
decoded, so reading and decoding overlap the round trip instead of adding to it. "On the
wire" is waited for (aiohttp's request-headers-sent trace): a request task only starts at the loop's next turn, and
without the wait it started after the page's decoding and the view's work on it, ~60 ms a link at 20,000 users,
which the whole chain of 41 pages paid one after the other.

Everything else is OktaClient's: the same retry layer (connector.support.http.retry_async), rate budget, error
translation and hints, concurrency limit and URL handling. An OAuth service app (okta.private_key) keeps the SDK
client, which signs the client assertion and caches the access token: `read_client` chooses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from connector import __version__
from connector.config.load import OktaConfig
from connector.errors import RemoteError
from connector.providers.okta import answers
from connector.providers.okta.client import OktaClient, RawResponse, next_link
from connector.support.answers import list_of_objects
from connector.support.chain import PageWatch, cursor_chain
from connector.support.http import retry_async, sent_trace
from connector.support.paging import PageGuard
from connector.support.proxy import env_proxy

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("connector.okta")


@dataclass
class _HttpError:
    """An Okta error answer, shaped like the SDK's OktaAPIError for OktaClient.translate."""

    status: int
    error_code: str | None
    error_summary: str | None
    error_causes: list[Any]
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.error_summary or f"HTTP {self.status}"


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    links: list[str]
    body: bytes


def _decode(body: bytes, endpoint: str, status: int) -> Any:
    import orjson

    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as cause:
        raise RemoteError("Okta answered with something that is not JSON", service="okta", endpoint=endpoint,
                          status=status) from cause


class OktaReadClient(OktaClient):
    """OktaClient's GETs (`get`, `pages`, `request` with GET) plus `iter_pages`, on aiohttp with the API token."""

    def __init__(self, okta: OktaConfig, **options: Any) -> None:
        super().__init__(okta, **options)
        self._session: aiohttp.ClientSession | None = None
        self._proxy_headers: dict[str, str] | None = None
        self._auth: dict[str, str] = {}

    async def __aenter__(self) -> OktaReadClient:
        import aiohttp

        if self.config.token is None:
            raise RuntimeError("OktaReadClient needs an API token (read_client picks the SDK client otherwise)")
        proxy = env_proxy(self.config.org_url)
        self._proxy_headers = proxy.proxy_headers
        # The token goes with each request, not among the session's headers: aiohttp sends those to the proxy too,
        # and its Authorization as the Proxy-Authorization (connector.support.proxy).
        self._auth = {"Authorization": f"SSWS {self.config.token.reveal()}"}
        self._session = aiohttp.ClientSession(
            headers={"Accept": "application/json", "User-Agent": f"astro-scim/{__version__}",
                     **proxy.session_headers},
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            timeout=aiohttp.ClientTimeout(total=300), trace_configs=[sent_trace()],
            proxy=proxy.url,
        )
        self._sem = asyncio.Semaphore(self.concurrency)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def sdk(self) -> Any:
        raise RuntimeError("the audit's read-only Okta client has no SDK; use OktaClient for typed calls")

    async def _fetch_once(self, url: str, sent: asyncio.Event | None = None) -> _Answer:
        """One GET; `sent` is set once the request is written (or has failed: nothing will be written then)."""
        import aiohttp

        path = url[len(self.org_url):] if url.startswith(self.org_url) else url
        endpoint = f"GET {path.split('?', 1)[0]}"
        if self._session is None:
            raise RuntimeError("OktaReadClient used outside 'async with'")
        try:
            sem = await self._slot()
            async with sem:
                self.requests += 1
                try:
                    async with self._session.get(url, allow_redirects=False, trace_request_ctx=sent,
                                                 headers=self._auth, proxy_headers=self._proxy_headers) as resp:
                        links = list(resp.headers.getall("Link", []))
                        headers = {k: v for k, v in resp.headers.items() if k.lower() != "link"}
                        status = resp.status
                        # The rate budget sees the headers first: the next page's request, which may be asked
                        # before this body is in, reads it.
                        self.budget.observe(headers)
                        # The next page's link, for the chain to ask before this body is in. Not held for the
                        # chain (chain.handed_on, Graph's way): this fetch decodes nothing (iter_pages does, after
                        # the chain asks), and it holds one of the client's concurrency slots while it waits.
                        if isinstance(sent, PageWatch) and status == 200 and not sent.head.done():
                            sent.head.set_result(links)
                        body = await resp.read()
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    raise self.translate(ConnectionError(str(exc) or type(exc).__name__), "GET", path) from exc
        finally:
            if sent is not None:
                sent.set()
        log.info("okta GET %s -> %s", path, status)
        if status >= 400:
            data: Any = None
            try:
                data = _decode(body, endpoint, status)
            except RemoteError:
                pass
            data = data if isinstance(data, dict) else {}
            causes = data.get("errorCauses")
            raise self.translate(_HttpError(status, data.get("errorCode"), data.get("errorSummary"),
                                            causes if isinstance(causes, list) else [], headers), "GET", path)
        return _Answer(status, headers, links, body)

    async def _fetch(self, url: str, sent: asyncio.Event | None = None) -> _Answer:
        return await retry_async(lambda: self._fetch_once(url, sent), what=f"okta GET {url[len(self.org_url):]}",
                                 policy=self.policy)

    async def request_once(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                           body: Any = None, keep_empty: bool = False) -> RawResponse:
        if method != "GET" or body is not None:
            raise RuntimeError(f"the audit's Okta client only reads (asked for {method} {path})")
        answer = await self._fetch_once(self._url(path, params))
        data = _decode(answer.body, f"GET {path.split('?', 1)[0]}", answer.status)
        return RawResponse(status=answer.status, data=data, headers=answer.headers, links=answer.links)

    async def call(self, method: str, path: str, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        """A typed SDK GET answered as the raw JSON (its callers on the audit's path, org._provisioning and
        org._profile_mapping, read the models back as JSON anyway), so the setup audit needs no SDK either."""
        if method != "GET":
            raise RuntimeError(f"the audit's Okta client only reads (asked for {method} {path})")
        return await self.get(path)

    async def iter_pages(self, path: str, params: Mapping[str, Any] | None = None
                         ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The pages of a cursor-paged list, each decoded while the next one is on its way. Next links are checked
        by the same guard as OktaClient.pages (only on okta.org_url, once each, bounded), and every page's items by
        the same answer checks."""
        first = self._url(path, params)
        endpoint = f"GET {path}"
        guard = PageGuard(base_url=self.org_url, service="okta", endpoint=endpoint)
        guard.first(first)
        chain = cursor_chain(first, self._fetch, early=next_link, link=lambda answer: next_link(answer.links),
                             follow=lambda link: self._url(guard.follow(link), None),
                             check=lambda link: self._url(guard.check(link), None))
        async with aclosing(chain) as answers_:
            async for answer in answers_:
                data = _decode(answer.body, endpoint, answer.status)
                items = list_of_objects(data, service="okta", endpoint=endpoint, status=answer.status)
                answers.check_list(urlsplit(path).path, items, endpoint)
                yield items

    async def pages(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return [item async for page in self.iter_pages(path, params) for item in page]


def read_client(okta: OktaConfig) -> OktaClient:
    """The client for reads: without the SDK for an API token; the SDK's for an OAuth service app."""
    return OktaReadClient(okta) if okta.private_key is None and okta.token is not None else OktaClient(okta)


async def iter_pages(client: OktaClient, path: str, params: Mapping[str, Any] | None = None
                     ) -> AsyncGenerator[list[dict[str, Any]], None]:
    """Pages one at a time from the read client; the SDK client reads the whole list, then yields it."""
    if isinstance(client, OktaReadClient):
        # Closed with this generator (a caller that stops early): its page already asked for is cancelled then,
        # not when the event loop finalises it after the session has closed.
        async with aclosing(client.iter_pages(path, params)) as pages:
            async for page in pages:
                yield page
    else:
        yield await client.pages(path, params)
