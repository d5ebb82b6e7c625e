"""THE Astro SCIM client: every read and write to an organization's SCIM endpoint goes through `AstroScimClient`.

It sends on one aiohttp session (connector.astro.engine, the only module that opens an HTTP session to Astro SCIM)
and adds what every caller needs: the Organization API token on each request, a bounded number of requests in
flight, connector.support.http's retry policy, one error mapping (connector.astro.errors), and the deviations it
tolerates (JSON served as application/json). Queries and writes go through scim2-client on that session
(connector.astro.scim2_engine, built on first use): scim2-models PatchOp / PatchOperation, validated against the
Group / User models before they are sent. Plain GETs (`get_json`: the drift reader's discovery and pages) are
checked here and never load scim2-client or scim2-models (connector.astro.engine says what that saves).

Users: the drift reader (connector.astro.reader: discovery and concurrent paging, on `get_json`), the conformance
check (connector.astro.conformance), the remedies (connector.audit.remedies), the Okta push verification
(connector.providers.okta.astro_check).

Sync callers use `run_sync`: one `asyncio.run` per operation. A loop owned by the client would have to outlive
calls made from different threads and commands; the callers are few and each does one batch (a remedy run, a
verification), so the cost is one event loop and one connection pool per batch, which is what they paid before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload
from urllib.parse import quote

import orjson

from connector.astro import errors as astro_errors
from connector.config.load import AstroConfig
from connector.errors import RemoteError
from connector.mapping.scim_paths import filter_string as scim_filter_value
from connector.support.http import DEFAULT_POLICY, RetryPolicy, is_retryable, retry_async
from connector.support.paging import redirect_error

if TYPE_CHECKING:
    from scim2_models import PatchOperation

    from connector.astro.engine import Answer, AstroSession
    from connector.astro.scim2_engine import AiohttpSCIMClient

log = logging.getLogger("connector.astro")
T = TypeVar("T")

SERVICE = astro_errors.SCIM
SCIM_JSON = "application/scim+json"
DEFAULT_CONCURRENCY = 8
TIMEOUT_SECONDS = 60.0
# Ids or userNames per `or` filter: ~40 bytes each keeps the query string well under common URL limits (8 KiB).
FILTER_CHUNK = 50

__all__ = ["SCIM_JSON", "SERVICE", "AstroScimClient", "run_sync", "scim_filter_value"]


@functools.cache
def _typed(generic: Any, parameter: Any) -> Any:
    """`generic[parameter]` for a pydantic generic (PatchOp[Group], PatchOperation[Group]), kept for good.

    Pydantic holds the generic models it parametrizes only weakly: once the request built with one is gone, the
    collector may drop the class and the next PATCH builds it again. That costs ~3 ms in the CLI and 30-100 ms in
    a process with many modules loaded (scim2-models has pydantic read each class's attribute docstrings from
    source, and inspect searches sys.modules for it)."""
    return generic[parameter]


class AstroScimClient:
    """`async with AstroScimClient(astro) as scim: await scim.find_group("Data Engineering")`."""

    def __init__(self, astro: AstroConfig, *, concurrency: int = DEFAULT_CONCURRENCY,
                 timeout: float = TIMEOUT_SECONDS, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.astro = astro
        self.base = astro.scim_url.rstrip("/")
        self.policy = policy
        self.deviations: list[str] = []
        self.requests = 0
        self._concurrency, self._timeout = concurrency, timeout
        self._limit = asyncio.Semaphore(concurrency)
        self._session: AstroSession | None = None
        self._engine: AiohttpSCIMClient | None = None
        self._check_content_type = True  # until a server serves its JSON under another media type (see _json_of)
        self._auth_hint = astro_errors.scim_auth_hint(astro.token)
        self._or_filters = True  # until the server refuses one (see _users_where)

    async def __aenter__(self) -> Self:
        from connector.astro.engine import AstroSession

        session = AstroSession(
            self.base, headers={"Authorization": f"Bearer {self.astro.token.reveal()}", "Accept": SCIM_JSON},
            concurrency=self._concurrency, timeout=self._timeout)
        self._session = await session.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._engine = None
        if self._session is not None:
            await self._session.__aexit__(*exc)
            self._session = None

    @property
    def session(self) -> AstroSession:
        if self._session is None:
            raise RuntimeError("AstroScimClient is used outside `async with`")
        return self._session

    @property
    def engine(self) -> AiohttpSCIMClient:
        """scim2-client on this client's session, built (and scim2-client imported) on first use."""
        if self._engine is None:
            from scim2_models import EnterpriseUser, Group, ResourceType, ScimProvider, User

            from connector.astro.scim2_engine import AiohttpSCIMClient

            provider = ScimProvider(models=[User, EnterpriseUser, Group], resource_types=[
                ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)])
            self._engine = AiohttpSCIMClient(self.session, provider=provider,
                                             check_response_content_type=self._check_content_type)
        return self._engine

    def url(self, path: str) -> str:
        return self.base + path

    def deviate(self, text: str) -> None:
        """Note a deviation from SCIM that is tolerated (reported by the drift audit), once."""
        if text not in self.deviations:
            log.info("tolerating a deviation from SCIM: %s", text)
            self.deviations.append(text)

    # -- one request, retried and translated ------------------------------------------------------------------

    @overload
    async def call(self, path: str, send: Callable[[], Awaitable[T]], *, method: str = "GET") -> T: ...
    @overload
    async def call(self, path: str, send: Callable[[], Awaitable[Any]], finish: Callable[[Any], T], *,
                   method: str = "GET") -> T: ...

    async def call(self, path: str, send: Callable[[], Awaitable[Any]], finish: Callable[[Any], Any] | None = None,
                   *, method: str = "GET") -> Any:
        """`send()` (one scim2-client request to `path`) under the concurrency bound and the shared retry policy;
        scim2-client's exceptions become RemoteError / AuthError here.

        `finish` (decoding, checks) runs after the request has left its concurrency slot: the next request is
        already on its way while this answer is decoded.
        """
        from scim2_client import UnexpectedContentTypeException

        where = astro_errors.endpoint(method, self.url(path))

        async def once() -> Any:
            async with self._limit:
                self.requests += 1
                got = await send()
            log.info("astro SCIM %s %s -> %s", method, path, getattr(got, "status_code", "ok"))
            if finish is None:
                return got
            await self.session.all_sent()  # the requests waiting for this slot go out before the decoding
            return finish(got)

        async def attempt() -> Any:
            try:
                return await once()
            except UnexpectedContentTypeException as exc:
                # The body parsed as JSON, only its media type is wrong: relax that one check, ask again.
                ctype = astro_errors.header(exc, "content-type") or "none"
                self._media_type_deviation(ctype)
                try:
                    return await once()
                except Exception as again:
                    raise astro_errors.from_scim2(again, where, auth_hint=self._auth_hint) from again
            except Exception as exc:
                raise astro_errors.from_scim2(exc, where, auth_hint=self._auth_hint) from exc

        return await self._retried(attempt, f"{method} {path}")

    async def _retried(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        tries = 0

        async def counted() -> T:
            nonlocal tries
            tries += 1
            return await attempt()

        try:
            return await retry_async(counted, what=what, policy=self.policy)
        except RemoteError as exc:
            # How many were made, not the policy's most: a Retry-After past the budget ends it after one.
            if tries > 1 and is_retryable(exc, self.policy) and exc.status != 429:  # 429s: by time
                exc.message += f" (after {tries} attempts)"
            raise

    def _media_type_deviation(self, ctype: str) -> None:
        """JSON under another media type: noted once, and no longer checked by either path (plain GETs here,
        scim2-client's engine for the rest)."""
        self.deviate(f"responses are JSON served as {ctype!r}, not application/scim+json")
        self._check_content_type = False
        if self._engine is not None:
            self._engine.check_response_content_type = False

    async def get_json(self, path: str) -> Any:
        """GET one endpoint path (query string included): its JSON, checked as scim2-client's check_response
        checks an answer (a 2xx with JSON under a SCIM or JSON media type; an error status with or without a SCIM
        Error body is an HTTP error), without loading scim2-client (see connector.astro.engine).

        A JSON body under another media type is read and the deviation noted once, as `call` does."""
        from connector.astro.engine import TransportFailure

        where = astro_errors.endpoint("GET", self.url(path))

        async def once() -> Any:
            async with self._limit:
                self.requests += 1
                try:
                    answer = await self.session.request("GET", path)
                except TransportFailure as exc:
                    raise astro_errors.unreachable(SERVICE, where, str(exc), key="astro.scim_url") from exc
            log.info("astro SCIM GET %s -> %s", path, answer.status_code)
            await self.session.all_sent()  # the requests waiting for this slot go out before the decoding
            return self._json_of(answer, where)

        return await self._retried(once, f"GET {path}")

    def _json_of(self, answer: Answer, where: str) -> Any:
        status, body = answer.status_code, answer.content
        if status >= 400:
            raise astro_errors.http_error(SERVICE, where, status, answer.headers, body, auth_hint=self._auth_hint)
        if 300 <= status < 400 and status != 304:  # never followed: the token would go wherever it points
            raise redirect_error(SERVICE, where, status, answer.headers.get("location"))
        if not (200 <= status < 300 or status == 304):  # an informational answer
            raise RemoteError(f"The server answered {status} without a SCIM error", service=SERVICE, endpoint=where,
                              status=status, code="invalid_body")
        if status in (204, 205, 304) or not body:
            payload = None
        else:
            try:
                payload = orjson.loads(body)
            except ValueError as exc:
                raise astro_errors.invalid_body(answer.headers.get("content-type"), answer.text, where,
                                                status) from exc
            ctype = (answer.headers.get("content-type") or "").split(";")[0]
            if self._check_content_type and ctype not in ("application/scim+json", "application/json"):
                self._media_type_deviation(answer.headers.get("content-type") or "none")
        if status != 200:
            raise RemoteError(f"Unexpected response status code: {status}", service=SERVICE, endpoint=where,
                              status=status, code="invalid_body")
        return payload

    # -- reads --------------------------------------------------------------------------------------------------

    async def _search(self, model: Any, path: str, filter_: str, count: int | None = None) -> list[dict[str, Any]]:
        """The Resources of one filtered list query, as JSON (scim2-client builds and checks the request), every
        page of them: a server may answer fewer than `count` a page (RFC 7644 3.4.2.4), and what it did not send
        was taken for users Astro does not have."""
        from scim2_models import ListResponse, ScimFilter, SearchRequest

        _typed(ListResponse, model)  # the class scim2-client parametrizes to read the answer, kept (see _typed)

        async def page(start: int | None) -> tuple[list[dict[str, Any]], Any]:
            request: SearchRequest[Any] = SearchRequest(filter=ScimFilter[model](filter_), count=count,
                                                        start_index=start)
            # Payload checks off (the JSON is what callers read; a vendor resource that does not validate must not
            # fail a verification), so the expected status is given: without it an Error body would come back as
            # data.
            answer = await self.call(path, lambda: self.engine.query(model, query_parameters=request,
                                                                     check_response_payload=False,
                                                                     expected_status_codes=[200]))
            resources = answer.get("Resources") if isinstance(answer, dict) else None
            total = answer.get("totalResults") if isinstance(answer, dict) else None
            if not isinstance(resources, list):
                if total == 0:
                    return [], 0  # an empty ListResponse may leave Resources out (RFC 7644 3.4.2)
                raise RemoteError("answered with something other than a ListResponse", service=SERVICE,
                                  endpoint=self.url(path), code="invalid_body")
            return [r for r in resources if isinstance(r, dict)], total

        found, total = await page(None)
        while isinstance(total, int) and not isinstance(total, bool) and len(found) < total:
            more, _ = await page(len(found) + 1)
            if not more:
                raise RemoteError(f"said {total} resources match and sent {len(found)}", service=SERVICE,
                                  endpoint=self.url(path), code="inconsistent_paging",
                                  hint="the data may have changed while it was read: run the command again")
            found += more
        return found

    async def service_provider_config(self) -> dict[str, Any]:
        data = await self.get_json("/ServiceProviderConfig")
        return data if isinstance(data, dict) else {}

    async def find_users(self, user_names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """userName (case-folded) -> the User, for those Astro has; one `or` filter per FILTER_CHUNK names."""
        wanted = sorted({n.casefold(): n for n in user_names}.values())
        found = await self._users_where("userName", wanted)
        return {str(u.get("userName", "")).casefold(): u for u in found if u.get("id")}

    async def find_user(self, user_name: str) -> dict[str, Any] | None:
        return (await self.find_users([user_name])).get(user_name.casefold())

    async def find_group(self, display_name: str, *, any_case: bool = False) -> dict[str, Any] | None:
        """The Group (Team) with exactly this displayName, members included, or None. `any_case`: else the one
        whose name differs only in case (as reconcile matches Teams), when it is the only one."""
        from scim2_models import Group

        found = await self._search(Group, "/Groups", f"displayName eq {scim_filter_value(display_name)}")
        for group in found:
            if group.get("displayName") == display_name:
                return group
        if any_case:
            alike = [g for g in found if str(g.get("displayName", "")).casefold() == display_name.casefold()]
            if len(alike) == 1:
                return alike[0]
        return None

    async def user_names(self, ids: Iterable[str]) -> dict[str, str]:
        """SCIM id -> userName (lower-cased) of the given users; ids Astro does not know are left out. One `or`
        filter per FILTER_CHUNK ids, not one GET per id."""
        wanted = sorted(set(ids))
        asked = set(wanted)
        return {str(u["id"]): str(u["userName"]).lower() for u in await self._users_where("id", wanted)
                if u.get("id") in asked and isinstance(u.get("userName"), str) and u["userName"]}

    async def _users_where(self, attr: str, values: list[str]) -> list[dict[str, Any]]:
        """The Users whose `attr` (userName or id) is one of `values`, in `or` filters of FILTER_CHUNK values.

        Okta and Entra only ever send `eq` filters, so a SCIM server may refuse `or` (400/501): then the values
        are asked one at a time (`userName eq`, or GET /Users/{id}), concurrently, and the deviation is noted."""
        from scim2_models import EnterpriseUser, User

        model = User[EnterpriseUser]

        async def one(value: str) -> dict[str, Any] | None:
            if attr == "id":  # the one lookup every SCIM server has
                try:
                    got = await self.get_json(f"/Users/{quote(value, safe='')}")
                except RemoteError as exc:
                    if exc.status == 404:
                        return None
                    raise
                return got if isinstance(got, dict) else None
            hits = await self._search(model, "/Users", f"{attr} eq {scim_filter_value(value)}")
            return hits[0] if hits else None

        async def chunk(part: list[str]) -> list[dict[str, Any]]:
            if self._or_filters and len(part) > 1:
                try:
                    return await self._search(model, "/Users",
                                              " or ".join(f"{attr} eq {scim_filter_value(v)}" for v in part),
                                              len(part))
                except RemoteError as exc:
                    if exc.status not in (400, 501):
                        raise
                    if self._or_filters:
                        self._or_filters = False
                        self.deviate(f"/Users refuses 'or' filters (HTTP {exc.status}); users are read one at "
                                     "a time")
            return [u for u in await asyncio.gather(*(one(v) for v in part)) if u is not None]

        pages = await asyncio.gather(*(chunk(values[i:i + FILTER_CHUNK])
                                       for i in range(0, len(values), FILTER_CHUNK)))
        return [u for page in pages for u in page]

    # -- writes (scim2-models PatchOp; each retried, so each must be idempotent) ---------------------------------

    async def patch_group(self, group_id: str, operations: list[PatchOperation[Any]]) -> None:
        from scim2_models import Group, PatchOp

        patch = _typed(PatchOp, Group)(Operations=operations)
        await self.call(f"/Groups/{group_id}", lambda: self.engine.modify(Group, group_id, patch), method="PATCH")

    async def patch_user(self, user_id: str, operations: list[PatchOperation[Any]]) -> None:
        from scim2_models import EnterpriseUser, PatchOp, User

        patch = _typed(PatchOp, User[EnterpriseUser])(Operations=operations)
        await self.call(f"/Users/{user_id}", lambda: self.engine.modify(User[EnterpriseUser], user_id, patch),
                        method="PATCH")

    async def deactivate_user(self, user_id: str) -> None:
        """active=false, the PATCH an IdP sends when it deprovisions (never a delete)."""
        await self.set_active(user_id, False)

    async def set_active(self, user_id: str, active: bool) -> None:
        """PATCH replace `active`: what an IdP sends to deprovision (false) or reactivate (true) a user."""
        from scim2_models import EnterpriseUser, PatchOperation, Path, User

        model = User[EnterpriseUser]
        await self.patch_user(user_id, [_typed(PatchOperation, model)(
            op=PatchOperation.Op.replace_, path=Path[model]("active"), value=active)])

    async def delete_user(self, user_id: str) -> bool:
        """DELETE /Users/{id}; False when it was already gone (404 to the first request), which is the wanted end
        state. A 404 to a retry is this run's delete, whose answer was lost: True."""
        from scim2_models import EnterpriseUser, User

        sent = 0

        def send() -> Any:
            nonlocal sent
            sent += 1
            return self.engine.delete(User[EnterpriseUser], user_id)

        try:
            await self.call(f"/Users/{user_id}", send, method="DELETE")
        except RemoteError as exc:
            if exc.status != 404:
                raise
            return sent > 1
        return True

    async def rename_group(self, group_id: str, display_name: str) -> None:
        """Give a Group (a Team) its name back: PATCH replace displayName, which keeps its id, members and roles."""
        from scim2_models import Group, PatchOperation, Path

        await self.patch_group(group_id, [_typed(PatchOperation, Group)(
            op=PatchOperation.Op.replace_, path=Path[Group]("displayName"), value=display_name)])

    async def set_members(self, group_id: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """Add and remove members of a Group by user id in one PATCH (the shapes Okta and Entra send)."""
        from scim2_models import Group, PatchOperation, Path

        ops: list[PatchOperation[Any]] = []
        added = list(add)
        if added:
            ops.append(_typed(PatchOperation, Group)(op=PatchOperation.Op.add, path=Path[Group]("members"),
                                                     value=[{"value": i} for i in added]))
        ops += [_typed(PatchOperation, Group)(op=PatchOperation.Op.remove,
                                              path=Path[Group](f"members[value eq {scim_filter_value(i)}]"))
                for i in remove]
        if ops:
            await self.patch_group(group_id, ops)


def run_sync(astro: AstroConfig, work: Callable[[AstroScimClient], Awaitable[T]], **options: Any) -> T:
    """`work(client)` from synchronous code: one event loop and one client for the whole operation."""
    async def main() -> T:
        async with AstroScimClient(astro, **options) as client:
            return await work(client)

    return asyncio.run(main())
