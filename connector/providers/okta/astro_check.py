"""What Okta pushed, as Astro's SCIM endpoint shows it: the Okta provider's read-only check of the result.

Okta has no API that says a push arrived; the only proof is Astro itself. A few small reads with the Organization
API token (bearer), all through the one Astro SCIM client (connector.astro.client: requests, errors, retries):
ServiceProviderConfig, one filtered Users query, a Team by displayName (members included) and the userNames of
its members, read in `id eq ... or ...` filters of 50 rather than one GET per member.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connector.astro.client import AstroScimClient
from connector.support import clock


@dataclass
class AstroTeam:
    id: str
    name: str
    member_ids: set[str]


class AstroReader(AstroScimClient):
    """Read-only SCIM access to the Astro organization an IdP provisions into. `async with AstroReader(astro)`."""

    async def find_team(self, name: str) -> AstroTeam | None:
        group = await self.find_group(name)
        if group is None:
            return None
        members = {str(m["value"]) for m in group.get("members") or [] if isinstance(m, dict) and m.get("value")}
        return AstroTeam(id=str(group.get("id")), name=name, member_ids=members)

    async def team_members(self, name: str) -> set[str] | None:
        """The userNames (lower-cased) in the Team, or None when Astro has no such Team. Members Astro does not
        know as users (dangling ids) are left out."""
        team = await self.find_team(name)
        if team is None:
            return None
        if not team.member_ids:
            return set()
        names = await self.user_names(team.member_ids)
        return set(names.values())


async def poll(check: Callable[[], Awaitable[bool]], *, timeout: float, interval: float = 0.25) -> bool:
    """Call `check` until it returns True or `timeout` seconds pass; Okta pushes asynchronously."""
    clk = clock.current()
    deadline = clk.monotonic() + timeout
    while True:
        if await check():
            return True
        if clk.monotonic() >= deadline:
            return False
        await clk.asleep(interval)
