"""Read an Astro organization's SCIM endpoint into an `AstroView`: discovery, then every User and Group, paged.

Over scim2-client's httpx2 engine (scim2-client speaks httpx2, not httpx). Paging: the first page of each
resource type, then the remaining pages concurrently once totalResults is known (bounded), count capped by the
server's filter.maxResults. The critical path is discovery -> first page -> the rest, whatever the user count.

Strict first, relaxed one flag at a time: a JSON body under the wrong media type, or a first page that does not
validate against the RFC 7643 models, is tolerated and reported in `AstroView.deviations`. Anything that would
make the audit lie is an error naming the endpoint: HTTP errors after retries, HTML, truncated JSON, resources
without ids, and totals that do not add up (fewer resources than totalResults, duplicates, a total that moves).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from connector.config import AstroConfig
from connector.errors import UNREACHABLE_HINT, AuthError, RemoteError
from connector.http import DEFAULT_POLICY, RetryPolicy, is_retryable, retry_async
from connector.views import AstroTeam, AstroUser, AstroView

if TYPE_CHECKING:
    from scim2_client.engines.httpx2 import AsyncSCIMClient

log = logging.getLogger("connector.astro")
T = TypeVar("T")

SERVICE = "Astro SCIM"
DEFAULT_PAGE_SIZE = 100  # when the server announces no filter.maxResults (Okta's import page size)
MAX_PAGE_SIZE = 1000  # bounds memory per response whatever the server announces
DEFAULT_CONCURRENCY = 8
TIMEOUT_SECONDS = 60.0
VALIDATION_SAMPLE = 25  # resources of the first page checked against the RFC 7643 models

Progress = Callable[[int, int], None]  # (pages done, pages known so far)


@dataclass
class _Page:
    start: int
    total: int
    resources: list[dict[str, Any]]
    echoed: int = 0  # the startIndex the server says the page starts at


class _Reader:
    def __init__(self, client: AsyncSCIMClient, scim_url: str, *, concurrency: int, policy: RetryPolicy,
                 page_size: int | None, progress: Progress | None) -> None:
        self.client = client
        self.scim_url = scim_url
        self.policy = policy
        self.page_size = page_size
        self.progress = progress
        self.deviations: list[str] = []
        self.requests = 0
        self._limit = asyncio.Semaphore(concurrency)
        self._pages_done = 0
        self._pages_known = 0
        self._validated: set[str] = set()
        # Drift never reads `meta` (~40% of a user's JSON): ask the server to leave it out, unless it refuses.
        self._exclude_meta = True

    # -- one request, translated ------------------------------------------------------------------------

    def _deviate(self, text: str) -> None:
        if text not in self.deviations:
            log.info("tolerating a deviation from SCIM: %s", text)
            self.deviations.append(text)

    def url(self, path: str) -> str:
        return self.scim_url.rstrip("/") + path

    async def _call(self, path: str, send: Callable[[], Awaitable[T]]) -> T:
        """One request with the shared retry policy; scim2-client's exceptions become RemoteError here."""
        from scim2_client import UnexpectedContentTypeException

        endpoint = self.url(path)

        async def attempt() -> T:
            async with self._limit:
                self.requests += 1
                try:
                    return await send()
                except UnexpectedContentTypeException as exc:
                    # The body parsed as JSON, only its media type is wrong: relax that one check, re-ask.
                    ctype = _header(exc, "content-type") or "none"
                    self._deviate(f"responses are JSON served as {ctype!r}, not application/scim+json")
                    self.client.check_response_content_type = False
                    self.requests += 1
                    try:
                        return await send()
                    except Exception as again:
                        raise _translate(again, endpoint) from None
                except Exception as exc:
                    raise _translate(exc, endpoint) from None

        try:
            return await retry_async(attempt, what=f"GET {path}", policy=self.policy)
        except RemoteError as exc:
            if self.policy.attempts > 1 and is_retryable(exc, self.policy):
                exc.message += f" (after {self.policy.attempts} attempts)"
            raise

    # -- discovery ----------------------------------------------------------------------------------------

    async def discover(self) -> tuple[int, dict[str, str]]:
        """Page size from ServiceProviderConfig; endpoints from ResourceTypes (best effort); Schemas checked."""
        from scim2_models import ResourceType, Schema, ServiceProviderConfig

        spc_q = self._call("/ServiceProviderConfig", lambda: self.client.query(
            ServiceProviderConfig, expected_status_codes=[200]))
        rt_q = self._call("/ResourceTypes", lambda: self.client.query(ResourceType, expected_status_codes=[200]))
        schema_q = self._call("/Schemas", lambda: self.client.query(Schema, expected_status_codes=[200]))
        spc, rts, schemas = await asyncio.gather(spc_q, rt_q, schema_q, return_exceptions=True)

        page = DEFAULT_PAGE_SIZE
        if isinstance(spc, BaseException):
            if not isinstance(spc, RemoteError) or spc.status not in (404, 501):
                raise spc
            self._deviate(f"no /ServiceProviderConfig (HTTP {spc.status}); pages of {page} assumed")
        else:
            max_results = getattr(getattr(spc, "filter", None), "max_results", None)
            if isinstance(max_results, int) and max_results > 0:
                page = max_results
            else:
                self._deviate(f"/ServiceProviderConfig announces no filter.maxResults; pages of {page} assumed")
        page = min(page, MAX_PAGE_SIZE, self.page_size or MAX_PAGE_SIZE)

        endpoints = {"User": "/Users", "Group": "/Groups"}
        for what, result in (("/ResourceTypes", rts), ("/Schemas", schemas)):
            if isinstance(result, AuthError):
                raise result
            if isinstance(result, BaseException):
                self._deviate(f"{what} unavailable ({result}); standard endpoints assumed")
        if not isinstance(rts, BaseException):
            for rt in getattr(rts, "resources", None) or []:
                if rt.name in endpoints and rt.endpoint:
                    endpoints[rt.name] = rt.endpoint
        return page, endpoints

    # -- paging -------------------------------------------------------------------------------------------

    async def _page(self, model: Any, endpoint: str, start: int, count: int) -> _Page:
        from scim2_models import SearchRequest

        def ask(exclude: bool) -> tuple[str, Callable[[], Awaitable[Any]]]:
            where = f"{endpoint}?startIndex={start}&count={count}" + ("&excludedAttributes=meta" if exclude else "")
            excluded: Any = ["meta"] if exclude else None  # scim2-models parses the strings into attribute paths
            request: Any = SearchRequest(start_index=start, count=count, excluded_attributes=excluded)
            return where, lambda: self.client.query(
                model, query_parameters=request, check_response_payload=False, expected_status_codes=[200])

        exclude = self._exclude_meta
        where, send = ask(exclude)
        try:
            payload = await self._call(where, send)
        except RemoteError as exc:
            if not (exclude and exc.status in (400, 501)):
                raise
            self._exclude_meta = False
            self._deviate(f"{endpoint} refuses excludedAttributes=meta (HTTP {exc.status}); full resources read")
            where, send = ask(False)
            payload = await self._call(where, send)
        page = _check_list(payload, self.url(where), start)
        if page.echoed != start:
            self._deviate(f"{endpoint} answers startIndex={page.echoed} when asked for startIndex={start}")
        if endpoint not in self._validated:
            # Model validation costs ~1 ms per resource and more per Team member (5 s for 1,000 Teams of 100):
            # validate a sample of the first page to detect deviations, check everything structurally.
            self._validated.add(endpoint)
            sample = {**payload, "Resources": page.resources[:VALIDATION_SAMPLE]}
            self._validate(model, sample, endpoint)
        self._pages_done += 1
        if self.progress:
            self.progress(self._pages_done, max(self._pages_known, self._pages_done))
        return page

    def _validate(self, model: Any, payload: dict[str, Any], endpoint: str) -> None:
        from pydantic import ValidationError
        from scim2_models import Context, ListResponse

        try:
            ListResponse[model].model_validate(payload, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)  # type: ignore[valid-type]
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
            loc = ".".join(str(p) for p in first.get("loc", ()))
            self._deviate(f"{endpoint} resources do not validate against RFC 7643 ({loc}: {first.get('msg')}); "
                          "read as plain JSON")

    async def list_all(self, model: Any, endpoint: str, page_size: int, key: str) -> list[dict[str, Any]]:
        """Every resource of one type. Raises RemoteError when the pages do not add up to totalResults."""
        self._pages_known += 1
        first = await self._page(model, endpoint, 1, page_size)
        total = first.total
        pages = [first]
        step = len(first.resources)
        if total > step:
            if step == 0:
                raise _totals_error(self.url(endpoint), f"totalResults is {total} but the first page is empty")
            # A server may cap count below its announced maxResults: step by what it actually returned.
            starts = list(range(1 + step, total + 1, step))
            self._pages_known += len(starts)
            pages += await asyncio.gather(*(self._page(model, endpoint, s, step) for s in starts))
            pages += await self._fill_gaps(model, endpoint, pages, total, step)
        return _assemble(pages, self.url(endpoint), total, key)

    async def complete_members(self, endpoint: str, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Some servers leave `members` out of list responses; then read each group by id (concurrently)."""
        from scim2_models import Group

        if not groups or any("members" in g for g in groups):
            return groups

        async def one(group: dict[str, Any]) -> dict[str, Any]:
            path = f"{endpoint}/{group['id']}"
            full = await self._call(path, lambda: self.client.query(
                Group, group["id"], check_response_payload=False, expected_status_codes=[200]))
            if not isinstance(full, dict) or full.get("id") != group["id"]:
                raise RemoteError("answered with another resource than the one asked for", service=SERVICE,
                                  endpoint=self.url(path), code="invalid_body")
            return full

        probe = await one(groups[0])
        if not probe.get("members"):
            return groups  # the first Team is empty: nothing says members are being left out
        self._deviate(f"{endpoint} lists Teams without their members; each Team was read by id")
        return [probe, *await asyncio.gather(*(one(g) for g in groups[1:]))]

    async def _fill_gaps(self, model: Any, endpoint: str, pages: list[_Page], total: int, step: int
                         ) -> list[_Page]:
        """Pages shorter than asked (without being the last) leave gaps; ask for them until none is left."""
        extra: list[_Page] = []
        while True:
            covered = sorted((p.start, p.start + len(p.resources)) for p in (*pages, *extra))
            gaps, pos = [], 1
            for lo, hi in covered:
                if lo > pos:
                    gaps.append(pos)
                pos = max(pos, hi)
            if pos <= total:
                gaps.append(pos)
            if not gaps:
                return extra
            got = await asyncio.gather(*(self._page(model, endpoint, g, step) for g in gaps))
            for g, page in zip(gaps, got, strict=True):
                if not page.resources:
                    raise _totals_error(
                        self.url(endpoint), f"totalResults is {total} but startIndex={g} returned no resources"
                    )
            extra += got


def _header(exc: BaseException, name: str) -> str | None:
    source = getattr(exc, "source", None)
    headers = getattr(source, "headers", None)
    return headers.get(name) if headers is not None else None


def _translate(exc: BaseException, endpoint: str) -> RemoteError:
    """scim2-client / httpx2 / scim2-models exceptions -> our RemoteError (status None means transport)."""
    from scim2_client import (
        RequestNetworkException,
        UnexpectedContentFormatException,
        UnexpectedStatusCodeException,
    )

    if isinstance(exc, RemoteError):
        return exc
    source = getattr(exc, "source", None)
    status = getattr(source, "status_code", None)
    if isinstance(exc, RequestNetworkException):
        notes = "; ".join(getattr(exc, "__notes__", []) or []) or "connection failed"
        return RemoteError(f"could not reach the endpoint: {notes}", service=SERVICE, endpoint=endpoint,
                           hint=UNREACHABLE_HINT.format(key="astro.scim_url"))
    if isinstance(exc, UnexpectedContentFormatException):
        ctype = (_header(exc, "content-type") or "").split(";")[0].strip() or "no content type"
        text = getattr(source, "text", "") or ""
        if "html" in ctype or text.lstrip()[:1] == "<":
            what = f"an HTML page ({ctype}), not SCIM JSON: is the URL the SCIM base URL?"
        elif "json" in ctype:
            what = f"a body that is not valid JSON ({len(text)} bytes of {ctype}; truncated?)"
        else:
            what = f"a body that is not JSON ({ctype})"
        return RemoteError(f"answered with {what}", service=SERVICE, endpoint=endpoint, status=status,
                           code="invalid_body")
    if isinstance(exc, UnexpectedStatusCodeException) or status is not None:
        detail, code = _scim_error(source)
        cls = AuthError if status in (401, 403) else RemoteError
        hint = ("check the Organization API token (Organization Owner) and that SCIM is enabled for the "
                "organization") if cls is AuthError else None
        err = cls(detail or "request failed", service=SERVICE, endpoint=endpoint, status=status, code=code,
                  hint=hint)
        headers = getattr(source, "headers", None)
        if headers is not None:
            # connector.http.retry_async honours Retry-After through this attribute.
            err.headers = dict(headers)  # type: ignore[attr-defined]
        return err
    return RemoteError(f"{type(exc).__name__}: {exc}", service=SERVICE, endpoint=endpoint, code="invalid_body")


def _scim_error(source: Any) -> tuple[str, str | None]:
    try:
        body = source.json()
    except Exception:
        return "", None
    if isinstance(body, dict):
        detail = body.get("detail")
        return (str(detail) if detail else ""), (str(body["scimType"]) if body.get("scimType") else None)
    return "", None


def _totals_error(endpoint: str, message: str) -> RemoteError:
    return RemoteError(f"the list does not add up: {message}", service=SERVICE, endpoint=endpoint,
                       code="inconsistent_paging",
                       hint="the server's paging is broken or the data changed while reading; re-run, and if "
                            "it persists report it to Astro support")


def _check_list(payload: Any, where: str, start: int) -> _Page:
    """The page as asked for (`start` is what we requested: coverage is computed from our requests, so a server
    that ignores startIndex shows up as duplicates, not as an endless hunt for gaps)."""
    if not isinstance(payload, dict):
        raise RemoteError("answered with something other than a ListResponse", service=SERVICE,
                          endpoint=where, code="invalid_body")
    total = payload.get("totalResults")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise RemoteError(f"ListResponse without a valid totalResults ({total!r})", service=SERVICE,
                          endpoint=where, code="invalid_body")
    resources = payload.get("Resources") or []
    echoed = payload.get("startIndex", start)
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        raise RemoteError("Resources is not a list of objects", service=SERVICE, endpoint=where,
                          code="invalid_body")
    return _Page(start=start, total=total, resources=resources, echoed=echoed if isinstance(echoed, int) else start)


def _assemble(pages: list[_Page], endpoint: str, total: int, key: str) -> list[dict[str, Any]]:
    totals = {p.total for p in pages}
    if len(totals) > 1:
        raise _totals_error(endpoint, f"totalResults changed while paging ({', '.join(map(str, sorted(totals)))})")
    seen: dict[str, dict[str, Any]] = {}
    for page in sorted(pages, key=lambda p: p.start):
        for resource in page.resources:
            rid = resource.get("id")
            if not isinstance(rid, str) or not rid:
                raise RemoteError(f"a resource has no id (startIndex={page.start})", service=SERVICE,
                                  endpoint=endpoint, code="invalid_body")
            if not isinstance(resource.get(key), str):
                raise RemoteError(f"resource {rid} has no {key}", service=SERVICE, endpoint=endpoint,
                                  code="invalid_body")
            if rid in seen:
                raise _totals_error(endpoint, f"resource {rid} was returned twice (unstable paging order)")
            seen[rid] = resource
    if len(seen) != total:
        raise _totals_error(endpoint, f"totalResults is {total} but {len(seen)} distinct resources came back")
    return list(seen.values())


def _active(value: Any) -> bool:
    # Absent means active (Astro lists live accounts); Entra-era servers may store "False" strings.
    if isinstance(value, str):
        return value.strip().casefold() != "false"
    return value is not False


def _to_view(scim_url: str, users: list[dict[str, Any]], groups: list[dict[str, Any]],
             deviations: list[str]) -> AstroView:
    view = AstroView(scim_url=scim_url, deviations=deviations)
    for u in users:
        ext = u.get("externalId")
        view.users.append(AstroUser(id=u["id"], user_name=u["userName"], active=_active(u.get("active", True)),
                                    external_id=ext if isinstance(ext, str) else None, data=u))
    for g in groups:
        members = {m["value"] for m in g.get("members") or [] if isinstance(m, dict) and isinstance(m.get("value"), str)}
        ext = g.get("externalId")
        view.teams.append(AstroTeam(id=g["id"], name=g["displayName"], members=members,
                                    external_id=ext if isinstance(ext, str) else None))
    return view


@dataclass
class ReadStats:
    """What a read cost, for the benchmark and `--verbose`."""

    requests: int = 0
    page_size: int = 0


async def read_astro_async(
    astro: AstroConfig,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    policy: RetryPolicy = DEFAULT_POLICY,
    page_size: int | None = None,
    progress: Progress | None = None,
    stats: ReadStats | None = None,
) -> AstroView:
    import httpx2
    from scim2_client.engines.httpx2 import AsyncSCIMClient
    from scim2_models import EnterpriseUser, Group, ResourceType, ScimProvider, User

    token = astro.token.reveal()
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(
        base_url=astro.scim_url.rstrip("/"), headers={"Authorization": f"Bearer {token}",
                                                       "Accept": "application/scim+json"},
        timeout=TIMEOUT_SECONDS, limits=limits, follow_redirects=False,
    ) as http:
        user_model = User[EnterpriseUser]
        provider = ScimProvider(models=[User, EnterpriseUser, Group], resource_types=[
            ResourceType.from_resource(user_model), ResourceType.from_resource(Group)])
        client = AsyncSCIMClient(http, provider=provider)
        reader = _Reader(client, astro.scim_url, concurrency=concurrency, policy=policy, page_size=page_size,
                         progress=progress)
        size, endpoints = await reader.discover()
        if endpoints != {"User": "/Users", "Group": "/Groups"}:
            client.provider = ScimProvider(models=[User, EnterpriseUser, Group], resource_types=[
                ResourceType.from_resource(user_model).model_copy(update={"endpoint": endpoints["User"]}),
                ResourceType.from_resource(Group).model_copy(update={"endpoint": endpoints["Group"]})])
        users, groups = await asyncio.gather(
            reader.list_all(user_model, endpoints["User"], size, "userName"),
            reader.list_all(Group, endpoints["Group"], size, "displayName"),
        )
        groups = await reader.complete_members(endpoints["Group"], groups)
        if stats is not None:
            stats.requests, stats.page_size = reader.requests, size
        return _to_view(astro.scim_url, users, groups, reader.deviations)


def read_astro(astro: AstroConfig, **options: Any) -> AstroView:
    """Every User and Team of the organization behind `astro.scim_url` (see the module docstring)."""
    holder: list[AstroView] = []

    async def main() -> None:
        # The view leaves through `holder`, not as the task's result: anyio formats the running task into cancel
        # reasons (f"... by {task}"), and a task repr includes its result: 20,000 users cost ~0.8 s to format.
        holder.append(await read_astro_async(astro, **options))

    asyncio.run(main())
    return holder[0]
