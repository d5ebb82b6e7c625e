"""What Okta pushed, as Astro's SCIM endpoint shows it: the Okta provider's read-only check of the result.

Okta has no API that says a push arrived; the only proof is Astro itself. A few small httpx calls with the
Organization API token (bearer): ServiceProviderConfig, one filtered Users query, a Team by displayName and the
userNames of its members. Requests, errors and retries are connector.astro_http's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connector.astro.client import AstroScimHttp, scim_filter_value
from connector.errors import RemoteError


@dataclass
class AstroTeam:
    id: str
    name: str
    member_ids: set[str]


class AstroReader(AstroScimHttp):
    """Read-only SCIM access to the Astro organization an IdP provisions into. `async with AstroReader(astro)`."""

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

