"""The Astro Platform API client (Team roles; not SCIM): what connector.access plans and applies with.

`async with AstroPlatform(orgs) as api:` opens one httpx.AsyncClient per organization (its base URL and token),
retries every request with connector.support.http's policy and maps errors with connector.astro.errors, the same
mapping as the SCIM client's. Endpoints (reference/astro-api.md): Teams by name, Workspaces and Deployments
(paged with offset/limit), and the POST that replaces a Team's role set.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from connector.astro import errors as astro_errors
from connector.errors import RemoteError
from connector.support.http import DEFAULT_POLICY, RetryPolicy, retry_async

if TYPE_CHECKING:
    import httpx

    from connector.config.load import AstroConfig

SERVICE = astro_errors.PLATFORM
PAGE = 100
AUTH_HINT = "check astro.token: an Organization API token with Organization Owner can change Team roles"


class PlatformOrg(Protocol):
    """An Astro organization as the caller knows it: `key` identifies it, `base` is its API URL."""

    @property
    def key(self) -> tuple[str, str]: ...  # (api_url, organization_id)

    @property
    def base(self) -> str: ...  # {api_url}/organizations/{organization_id}

    @property
    def astro(self) -> AstroConfig: ...


class AstroPlatform:
    """One httpx.AsyncClient per Astro organization; every request retried by connector.support.http's policy."""

    def __init__(self, orgs: Iterable[PlatformOrg], policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self._orgs = list(orgs)
        self.policy = policy
        self._clients: dict[tuple[str, str], httpx.AsyncClient] = {}

    async def __aenter__(self) -> AstroPlatform:
        import httpx

        for org in self._orgs:
            token = org.astro.token.reveal()
            self._clients[org.key] = httpx.AsyncClient(
                base_url=org.base,
                timeout=30.0,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def _request(
        self, org: PlatformOrg, method: str, path: str, *, params: Any = None, body: Any = None
    ) -> dict[str, Any]:
        import httpx

        client = self._clients[org.key]
        where = astro_errors.endpoint(method, org.base + path)

        async def once() -> dict[str, Any]:
            try:
                resp = await client.request(method, path, params=params, json=body)
            except httpx.TransportError as exc:
                raise astro_errors.unreachable(SERVICE, where, type(exc).__name__, key="astro.api_url") from exc
            if resp.status_code >= 400:
                raise astro_errors.http_error(SERVICE, where, resp.status_code, resp.headers, resp.content,
                                              auth_hint=AUTH_HINT)
            try:
                data = resp.json()
            except ValueError as cause:
                raise RemoteError(
                    "the answer is not JSON", service=SERVICE, endpoint=where, status=resp.status_code
                ) from cause
            if not isinstance(data, dict):  # a status and a code: an answer of the wrong shape is not retried
                raise RemoteError("the answer is not a JSON object", service=SERVICE, endpoint=where,
                                  status=resp.status_code, code="invalid_body")
            return data

        return await retry_async(once, what=where, policy=self.policy)

    async def get(self, org: PlatformOrg, path: str, params: Any = None) -> dict[str, Any]:
        return await self._request(org, "GET", path, params=params)

    async def post_roles(self, org: PlatformOrg, team_id: str, body: dict[str, Any]) -> dict[str, Any]:
        # Idempotent (it replaces the whole role set), so retrying it is safe.
        return await self._request(org, "POST", f"/teams/{team_id}/roles", body=body)

    async def list_all(
        self, org: PlatformOrg, path: str, key: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = await self.get(org, path, {**(params or {}), "offset": offset, "limit": PAGE})
            items = page.get(key) or []
            if not isinstance(items, list):
                raise RemoteError(f"'{key}' is not a list", service=SERVICE, endpoint=org.base + path)
            out.extend(i for i in items if isinstance(i, dict) and i.get("id"))
            offset += len(items)
            total = page.get("totalCount")
            # totalCount decides when it is given: a server may send fewer than `limit` a page (it read 50 of
            # 150 Teams when a short page meant the last).
            if not items or (offset >= total if isinstance(total, int) and not isinstance(total, bool)
                             else len(items) < PAGE):
                return out

    async def teams_named(self, org: PlatformOrg, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Teams by exact name (the names filter narrows; the exact comparison is ours)."""
        if not names:
            return {}
        teams = await self.list_all(org, "/teams", "teams", {"names": names})
        out: dict[str, list[dict[str, Any]]] = {}
        wanted = set(names)
        for team in teams:
            name = team.get("name")
            if name in wanted:
                out.setdefault(str(name), []).append(team)
        return out
