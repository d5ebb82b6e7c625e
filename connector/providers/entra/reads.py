"""Graph's raw-JSON requests (every read, and validateCredentials) over aiohttp and a bearer token, without
msgraph-sdk or kiota.

Why not the SDK's client (client.GraphClient) for these: the tenant reads every Graph answer as raw JSON
(tenant.py says why), so the SDK only built their URLs, yet building it imports msgraph's generated request
builders, kiota and azure-identity's aio credentials, ~1 s of start-up before drift's first request, and each
request went through kiota's adapter and its chain of middleware. Here a request is a URL, a bearer token
(client.GraphCredential: none of azure's libraries for a static token) and aiohttp, which the Astro read loads
anyway; an answer is decoded with orjson; and the next page of a chain is on the wire before the current one's
items are checked and handed on, so what the caller does with a page overlaps the next round trip instead of
adding to it. Graph writes @odata.nextLink before "value": the next request leaves as soon as the answer's first
bytes are in (`early_next_link`), while the rest of the page is still arriving and being decoded, and the link
the decoded page holds is checked to be that one (else the early request is dropped and the right one asked).

Everything else is the SDK client's: the same retry layer (connector.support.http.retry_async with the
provider's policy; aiohttp's own resend of a dropped request is off), the same error translation (errors.py:
endpoint, status, OData code, the missing permission named on 403, Retry-After honoured), redirects refused,
next links checked by the same PageGuard and every page by the same answer checks (answers.py). The tenant's
writes (creates, PUTs, start/pause, provisionOnDemand) keep the SDK client, which `plan`-only and audit runs
then never build.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from connector import __version__
from connector.config.load import AzureConfig
from connector.providers.entra.answers import check_collection
from connector.providers.entra.client import GraphCredential
from connector.providers.entra.errors import (
    SERVICE,
    error_body,
    named_credential,
    status_error,
    translate,
    unreachable,
)
from connector.support.answers import invalid, list_of_objects, object_answer
from connector.support.chain import PageWatch, cursor_chain, handed_on
from connector.support.http import (
    DEFAULT_POLICY,
    RetryPolicy,
    is_retryable,
    retrieved,
    retry_after_seconds,
    retry_async,
    sent_trace,
    without_transport_retry,
)
from connector.support.paging import PageGuard, redirect_error
from connector.support.proxy import AiohttpProxy, env_proxy

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("connector.graph")
Json = dict[str, Any]
TIMEOUT_S, CONNECT_TIMEOUT_S = 100, 30  # the SDK client's httpx timeouts


def query_value(value: Any) -> str:
    """One OData query option's value, percent-encoded: a list is comma-joined ($select, $orderby), as kiota's
    URI templates write it."""
    text = ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    return quote(text, safe=",")


def segment(value: str) -> str:
    """An id as one path segment (a user's id may be given by whoever runs the tool)."""
    return quote(value, safe="")


def collection_page(page: Any, endpoint: str) -> tuple[list[Json], object | None]:
    """(items, next link or None) of one page of a Graph collection, its shape checked."""
    body = object_answer(page, service=SERVICE, endpoint=endpoint)
    items = list_of_objects(body.get("value"), service=SERVICE, endpoint=endpoint, what='"value"')
    check_collection(endpoint, items)
    return list(items), body.get("@odata.nextLink")


# How far into an answer its head is looked for: Graph's "value" comes after @odata.context, @odata.count and
# @odata.nextLink, a few hundred bytes in.
HEAD_LIMIT = 16_384


def early_next_link(head: bytes) -> str | None:
    """The @odata.nextLink of a page from its first bytes (`PageWatch.head`), when it comes before "value" as
    Graph writes it; None when it is not there or the bytes before "value" are not a JSON object's members (the
    word inside a string, say). Only a guess: the caller checks it against the decoded page."""
    import orjson

    at = head.find(b'"value"')
    if at < 0:
        return None
    members = head[:at].rstrip()
    if not members.endswith(b","):
        return None
    try:
        start = orjson.loads(members[:-1] + b"}")
    except orjson.JSONDecodeError:
        return None
    link = start.get("@odata.nextLink") if isinstance(start, dict) else None
    return link if isinstance(link, str) else None


async def _read_head_first(resp: aiohttp.ClientResponse, watch: PageWatch[bytes]) -> bytes:
    """The body of `resp`, handing its first bytes to the chain (`watch.head`) as soon as they hold "value" (or
    HEAD_LIMIT), and reading on once the chain has acted on them (asked for the next page)."""
    first = bytearray()
    while not watch.head.done():
        chunk = await resp.content.readany()
        if not chunk:
            return bytes(first)
        first += chunk
        if b'"value"' in first or len(first) >= HEAD_LIMIT:
            await handed_on(watch, bytes(first))
    return bytes(first) + await resp.content.read()


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    reason: str | None
    headers: dict[str, str]  # kept for an error or a redirect only


@dataclass
class _Flight:
    """A GET in flight and how many callers wait for its answer."""

    task: asyncio.Future[_Answer]
    waiters: int = 0
    # The first caller's watch when it is a chain's page: the request's rest is read only once that chain has
    # acted on its head (connector.support.chain.PageWatch), unless another caller joins (`released`).
    watch: PageWatch[bytes] | None = None

    def released(self) -> None:
        """Another caller waits too: the answer is read at once, never held for the first caller's chain (whose
        consumer may be that very caller, reading the same collection: it would wait for itself)."""
        if self.watch is not None:
            self.watch.acted.set()


class GraphReader:
    """Raw JSON requests on azure.graph_url; made outside any loop, used on the provider's."""

    def __init__(self, cfg: AzureConfig, credential: GraphCredential, *, policy: RetryPolicy = DEFAULT_POLICY
                 ) -> None:
        self.cfg = cfg
        self.credential = credential
        self.policy = policy
        self.base = cfg.graph_url.rstrip("/")
        parts = urlsplit(self.base)
        host = parts.hostname or ""
        # The token's scope is the origin's "/.default" without the port, as kiota's Azure provider asks it.
        self.scope = f"{parts.scheme}://{f'[{host}]' if ':' in host else host}/.default"
        self.requests = 0
        self._session: aiohttp.ClientSession | None = None
        self._proxy_headers: dict[str, str] | None = None
        self._inflight: dict[str, _Flight] = {}

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """base + path + the query options that are set (`$select`, `$filter`, `$top`...)."""
        query = "&".join(f"{k}={query_value(v)}" for k, v in (params or {}).items() if v is not None)
        return f"{self.base}{path}?{query}" if query else f"{self.base}{path}"

    def proxy(self) -> AiohttpProxy:
        """The proxy for azure.graph_url (connector.support.proxy), decided once per reader: every request goes
        to this one origin."""
        return env_proxy(self.base)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            proxy = self.proxy()
            self._proxy_headers = proxy.proxy_headers
            self._session = without_transport_retry(aiohttp.ClientSession(
                headers={"Accept": "application/json", "User-Agent": f"astro-scim/{__version__}",
                         **proxy.session_headers},
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                proxy=proxy.url,
                cookie_jar=aiohttp.DummyCookieJar(),  # Graph's answers need none: no jar to update per request
                trace_configs=[sent_trace()],
            ))
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _exchange(self, method: str, url: str, body: Any, sent: asyncio.Event | None = None) -> _Answer:
        """One request and its answer, whatever the status; foreign exceptions (transport, token) pass. `sent` is
        set once the request is written (or has failed: nothing will be written then)."""
        import orjson

        try:
            token = await self.credential.bearer(self.scope)
            headers = {"Authorization": f"Bearer {token}"}
            data = None
            if body is not None:
                data = orjson.dumps(body)
                headers["Content-Type"] = "application/json"
            self.requests += 1
            async with self._client().request(method, url, data=data, headers=headers, allow_redirects=False,
                                              trace_request_ctx=sent, proxy_headers=self._proxy_headers) as resp:
                if isinstance(sent, PageWatch) and resp.status == 200:
                    content = await _read_head_first(resp, sent)
                else:
                    content = await resp.read()
                answer = _Answer(resp.status, content, resp.reason,
                                 dict(resp.headers) if resp.status >= 300 else {})
        finally:
            if sent is not None:
                sent.set()
        log.info("graph %s %s -> %s", method, url, answer.status)  # -v shows it, as httpx logs the SDK's requests
        return answer

    async def _shared_get(self, url: str, sent: asyncio.Event | None) -> _Answer:
        """The answer of the GET of `url` already on its way, else of a new one. drift's setup audit and view
        start together and ask for the same service principal, assignments and jobs: one request serves both.
        Only requests in flight are shared (an answer is never reused later), each caller decodes the bytes
        itself (no two callers hold the same JSON object), and a request whose every caller has gone (a page
        asked ahead that is not wanted) is cancelled."""
        flight = self._inflight.get(url)
        if flight is None or flight.task.done():  # answered: a retry asks again, it never gets the same answer
            flight = self._inflight[url] = _Flight(asyncio.ensure_future(self._exchange("GET", url, None, sent)),
                                                   watch=sent if isinstance(sent, PageWatch) else None)

            def landed(task: asyncio.Future[_Answer], flight: _Flight = flight) -> None:
                # Answered (or failed): no later caller joins it, and its bytes go with its last waiter.
                if self._inflight.get(url) is flight:
                    del self._inflight[url]
                retrieved(task)  # its error is each caller's (awaited below), or nobody's news

            flight.task.add_done_callback(landed)
        else:
            flight.released()
            if sent is not None:
                sent.set()  # joined a request already on its way
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)  # a caller cancelled stops waiting, not the others
        finally:
            flight.waiters -= 1
            if not flight.waiters and not flight.task.done():
                flight.task.cancel()
                if self._inflight.get(url) is flight:  # being cancelled: a new caller must not join it
                    del self._inflight[url]

    async def _once(self, method: str, url: str, endpoint: str, body: Any, permission: str | None,
                    sent: asyncio.Event | None = None) -> Any:
        import aiohttp
        import orjson

        try:
            answer = await (self._shared_get(url, sent) if method == "GET" and body is None
                            else self._exchange(method, url, body, sent))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise unreachable(exc, endpoint=endpoint) from exc
        except Exception as exc:  # the token's (azure-identity), or a ConnectorError (a config error) as it is
            raise named_credential(translate(exc, endpoint=endpoint, permission=permission),
                                   self.cfg.credential) from exc
        status, content = answer.status, answer.body
        if 300 <= status < 400:
            # Never followed: a redirect would take the request (and what it reads back) to another origin.
            raise redirect_error(SERVICE, endpoint, status, answer.headers.get("Location"))
        if status >= 400:
            code, message = error_body(content, status, answer.reason)
            error = status_error(status, code, message, endpoint=endpoint, permission=permission)
            named_credential(error, self.cfg.credential)
            error.retry_after = retry_after_seconds(answer.headers)  # Graph's 429 and 503 say when to come back
            raise error
        if not content:
            return None  # 204
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as cause:
            raise invalid("the answer is not JSON", service=SERVICE, endpoint=endpoint, status=status) from cause

    async def send(
        self,
        method: str,
        endpoint: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        body: Any = None,
        permission: str | None = None,
        retry: bool = True,
        retry_on: Callable[[BaseException], bool] | None = None,
        policy: RetryPolicy | None = None,
        sent: asyncio.Event | None = None,
    ) -> Any:
        """`method` on base + path ("/users"), or on an absolute URL already checked (a next link), with a JSON
        body; the parsed JSON answer, None when it is empty. Retried by the policy unless retry=False."""
        url = self.url(path, params) if path.startswith("/") else path

        async def once() -> Any:
            return await self._once(method, url, endpoint, body, permission, sent)

        if not retry:
            return await once()
        pol = policy or self.policy
        return await retry_async(once, what=endpoint, policy=pol,
                                 retry_on=retry_on or (lambda e: is_retryable(e, pol)))

    async def get(self, endpoint: str, path: str, params: Mapping[str, Any] | None = None, *,
                  permission: str | None = None, retry_on: Callable[[BaseException], bool] | None = None,
                  policy: RetryPolicy | None = None, sent: asyncio.Event | None = None) -> Any:
        return await self.send("GET", endpoint, path, params, permission=permission, retry_on=retry_on,
                               policy=policy, sent=sent)

    async def iter_pages(self, endpoint: str, path: str, params: Mapping[str, Any] | None = None, *,
                         permission: str | None = None) -> AsyncGenerator[list[Json], None]:
        """A collection a page at a time, following @odata.nextLink only on azure.graph_url and only once each
        (connector.support.paging), every page's shape checked (answers.py). Every paged Graph read goes
        through here.

        The next page's request is on the wire before this page's items are checked and handed on, so that work
        and the caller's overlap the round trip. "On the wire" is waited for (aiohttp's request-headers-sent
        trace, bounded): a task only starts at the loop's next turn, which a caller working on a page without
        awaiting gives it only when it asks for the next page."""
        guard = PageGuard(base_url=self.base + "/", service=SERVICE, endpoint=endpoint)
        first = self.url(path, params)
        guard.first(first)

        def next_link(page: Any) -> Any:
            return object_answer(page, service=SERVICE, endpoint=endpoint).get("@odata.nextLink")

        async def fetch(url: str, watch: PageWatch[bytes]) -> Any:
            return await self.get(endpoint, url, permission=permission, sent=watch)

        async with aclosing(cursor_chain(first, fetch, early=early_next_link, link=next_link,
                                         follow=guard.follow, check=guard.check)) as pages:
            async for page in pages:
                yield collection_page(page, endpoint)[0]

    async def get_all(self, endpoint: str, path: str, params: Mapping[str, Any] | None = None, *,
                      permission: str | None = None) -> list[Json]:
        """Every item of a collection (iter_pages, gathered)."""
        return [item async for page in self.iter_pages(endpoint, path, params, permission=permission)
                for item in page]

    async def get_page(self, endpoint: str, path: str, params: Mapping[str, Any] | None = None, *,
                       permission: str | None = None) -> list[Json]:
        """The items of the first page only (a `$top` read, a `$filter` that finds one object)."""
        return collection_page(await self.get(endpoint, path, params, permission=permission), endpoint)[0]
