"""`init`'s look at an Okta org: the app (found as plan finds it), the groups assigned to it and pushed from it,
and the groups whose name starts like the app's (Okta's `q` is a name-prefix search)."""

from __future__ import annotations

from connector.errors import NotFound
from connector.providers.base import Discovery
from connector.providers.okta.client import OktaClient
from connector.providers.okta.org import OktaOrg


class OktaDiscovery(OktaOrg):
    """Discover for Okta: a job of its own (init only), on the reads every Okta job shares."""

    def discover(self) -> Discovery:
        return self._call(self._discover)

    async def _discover(self, c: OktaClient) -> Discovery:
        label = self.okta.app_label or "Astro"
        candidates = sorted({str((g.get("profile") or {}).get("name"))
                             for g in await c.pages("/api/v1/groups", {"q": label, "limit": 200})})
        try:
            app = await self._find_app(c)
        except NotFound as exc:
            hint = (f"did you mean {', '.join(repr(x) for x in exc.candidates)}? " if exc.candidates else "")
            hint += "add the Astro app from Okta's catalogue (Applications > Browse App Catalog), then re-run init"
            return Discovery("okta", None, hint, candidates=candidates)
        app_id = str(app["id"])
        assigned = [str(a.get("id")) for a in await c.pages(f"/api/v1/apps/{app_id}/groups", {"limit": 200})]
        pushed = [str(m.get("sourceGroupId")) for m in await self._push_mappings_or_empty(c, app_id)]
        names = await self._group_names(c, [*assigned, *pushed])
        return Discovery("okta", f"{app.get('label')} ({app_id}, {app.get('status')})",
                         assigned=sorted(names[g] for g in assigned), pushed=sorted(names[g] for g in pushed),
                         candidates=candidates)
