"""`init`'s look at an Entra tenant: the enterprise app (found as plan finds it), the groups assigned to it, and
the groups whose name mentions Astro."""

from __future__ import annotations

from connector.providers.base import Discovery
from connector.providers.entra.app import EntraApp
from connector.providers.entra.tenant import Tenant


class EntraDiscovery(EntraApp):
    """Discover for Entra: a job of its own (init only), on what every Entra job shares."""

    def discover(self) -> Discovery:
        return self._call(self._discover)

    async def _discover(self, t: Tenant) -> Discovery:
        word = (self.az.app_display_name or "Astro").lower()
        candidates = sorted(name for name in await t._group_names() if word in name.lower())
        sp = await self._find_sp()
        if sp is None:
            return Discovery("azure", None, await self._missing_app_hint(), candidates=candidates)
        assigned = sorted(str(a.get("principalDisplayName") or a.get("principalId"))
                          for a in await t.assignments(str(sp["id"])) if a.get("principalType") != "User")
        return Discovery("azure", f"{sp.get('displayName')} ({sp.get('id')}, service principal)",
                         assigned=assigned, candidates=candidates)
