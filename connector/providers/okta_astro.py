"""What Okta pushed, as Astro's SCIM endpoint shows it: the Okta provider's read-only check of the result.

Okta has no API that says a push arrived; the only proof is Astro itself. A few small httpx calls with the
Organization API token (bearer): ServiceProviderConfig, one filtered Users query, a Team by displayName and the
userNames of its members. Retries follow connector.http like every other client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connector.config import AstroConfig
from connector.errors import AuthError, RemoteError
from connector.http import retry_async
from connector.redact import redact

log = logging.getLogger("connector.okta.astro")
SCIM_JSON = "application/scim+json"


def scim_filter_value(value: str) -> str:
    """A SCIM filter string literal: quotes and backslashes escaped (RFC 7644 3.4.2.2 uses JSON strings)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class AstroTeam:
    id: str
    name: str
    member_ids: set[str]


class AstroReader:
    """Read-only SCIM access to the Astro organization an IdP provisions into. `async with AstroReader(astro)`."""

    def __init__(self, astro: AstroConfig, *, timeout: float = 20.0) -> None:
        self.astro = astro
        self.base = astro.scim_url.rstrip("/")
        self.timeout = timeout
        self._client: Any = None

    async def __aenter__(self) -> AstroReader:
        import httpx

        token = self.astro.token.reveal()
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}", "Accept": SCIM_JSON}, timeout=self.timeout,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _get_once(self, path: str, params: dict[str, Any] | None = None) -> Any:
        import httpx

        url = self.base + path
        endpoint = f"GET {path}"
        try:
            resp = await self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise RemoteError(f"could not reach Astro SCIM at {self.base}: {type(exc).__name__}",
                              service="astro", endpoint=endpoint) from None
        log.info("astro GET %s -> %s", path, resp.status_code)
        if resp.status_code == 401 or resp.status_code == 403:
            raise AuthError(
                f"Astro SCIM at {self.base} refused the Organization API token",
                service="astro", endpoint=endpoint, status=resp.status_code,
                hint=f"check {self.astro.token} (an Organization API token with the Organization Owner role) and "
                     "that SCIM is turned on in Astro (Settings > Authentication > SCIM integration)",
            )
        if resp.status_code >= 400:
            detail = ""
            try:
                body = resp.json()
                detail = str(body.get("detail") or body.get("scimType") or "")
            except ValueError:
                detail = resp.text[:200]
            err = RemoteError(redact(detail or "request failed"), service="astro", endpoint=endpoint,
                              status=resp.status_code)
            err.headers = dict(resp.headers)  # type: ignore[attr-defined]  # Retry-After for retry_async
            raise err
        try:
            return resp.json()
        except ValueError:
            raise RemoteError("Astro SCIM answered with something that is not JSON", service="astro",
                              endpoint=endpoint, status=resp.status_code) from None

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await retry_async(lambda: self._get_once(path, params), what=f"astro GET {path}")

    async def service_provider_config(self) -> dict[str, Any]:
        data = await self.get("/ServiceProviderConfig")
        return data if isinstance(data, dict) else {}

    async def find_user(self, user_name: str) -> dict[str, Any] | None:
        data = await self.get("/Users", {"filter": f"userName eq {scim_filter_value(user_name)}"})
        resources = (data or {}).get("Resources") or []
        return resources[0] if resources else None

    async def find_team(self, name: str) -> AstroTeam | None:
        data = await self.get("/Groups", {"filter": f"displayName eq {scim_filter_value(name)}"})
        for g in (data or {}).get("Resources") or []:
            if str(g.get("displayName", "")) == name:
                members = {str(m.get("value")) for m in g.get("members") or [] if m.get("value")}
                return AstroTeam(id=str(g.get("id")), name=name, member_ids=members)
        return None

    async def user_names(self, ids: set[str], *, concurrency: int = 8) -> dict[str, str]:
        """SCIM id -> userName (lower-cased) for the given users; ids Astro does not know are left out."""
        sem = asyncio.Semaphore(concurrency)
        out: dict[str, str] = {}

        async def one(uid: str) -> None:
            async with sem:
                try:
                    data = await self.get(f"/Users/{uid}")
                except RemoteError as exc:
                    if exc.status == 404:
                        return
                    raise
            if isinstance(data, dict) and data.get("userName"):
                out[uid] = str(data["userName"]).lower()

        await asyncio.gather(*(one(i) for i in sorted(ids)))
        return out

    async def team_members(self, name: str) -> set[str] | None:
        """The userNames (lower-cased) in the Team, or None when Astro has no such Team."""
        team = await self.find_team(name)
        if team is None:
            return None
        names = await self.user_names(team.member_ids)
        return set(names.values())


async def poll(check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.25) -> bool:
    """Call `check` until it returns True or `timeout` seconds pass; Okta pushes asynchronously."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await check():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval)

