"""What Astro should hold according to Okta (the audit's IdP view): in-scope app users with the values the mapping
gives them, the pushed groups with their expected members, and Okta's own provisioning errors."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from connector.errors import ConnectorError, RemoteError
from connector.providers.okta.client import OktaClient
from connector.providers.okta.org import (
    INACTIVE_OKTA_USER,
    OUT_OF_SCOPE_APP_USER,
    OktaOrg,
    app_user_error,
    app_user_name,
    log,
)
from connector.views import IdpGroup, IdpIssue, IdpUser, IdpView

MAX_INACTIVE_LOOKUPS = 200  # more unknown Astro accounts than this is a mass orphaning: reported as orphans


class OktaView(OktaOrg):
    """The IdPView capability."""

    def read_view(self) -> IdpView:
        return self._call(self._read_view)

    async def _read_view(self, c: OktaClient) -> IdpView:
        from connector.mapping.expr import okta as okta_expr

        mapping = self.mapping_file()
        parsed = [
            (m.target, okta_expr.parse(m.source))
            for m in mapping.users if not m.from_sign_on and m.source is not None
        ]
        app = await self._find_app(c)
        app_id = str(app["id"])
        app_users, mappings = await asyncio.gather(
            c.pages(f"/api/v1/apps/{app_id}/users", {"limit": 500, "expand": "user"}),
            self._push_mappings_or_empty(c, app_id),
        )
        in_scope = [u for u in app_users if u.get("status") not in OUT_OF_SCOPE_APP_USER]
        okta_users = await self._okta_users(c, in_scope)
        view = IdpView("okta")
        names: dict[str, str] = {}
        for au in in_scope:
            uid = str(au.get("id"))
            user = okta_users.get(uid) or {}
            profile = dict(user.get("profile") or {})
            user_name = app_user_name(au)
            names[uid] = user_name.lower()
            expected: dict[str, Any] = {"userName": user_name}
            for target, expr in parsed:
                try:
                    expected[target] = okta_expr.evaluate(expr, profile, dict(au.get("profile") or {}))
                except ConnectorError as exc:
                    log.info("okta: cannot evaluate %s for %s: %s", target, user_name, exc)
            error = app_user_error(au) if au.get("syncState") == "ERROR" else None
            view.users.append(IdpUser(
                id=uid, user_name=user_name, active=user.get("status") not in INACTIVE_OKTA_USER,
                expected=expected, scim_id=au.get("externalId") or None, error=error,
            ))
            if error:
                view.issues.append(IdpIssue("okta.user_error", user_name, error))
        active_names = {uid: n for uid, n in names.items()
                        if (okta_users.get(uid) or {}).get("status") not in INACTIVE_OKTA_USER}
        group_ids = [str(m.get("sourceGroupId")) for m in mappings]
        group_names = await self._group_names(c, group_ids)

        async def group_view(m: dict[str, Any]) -> IdpGroup:
            gid = str(m.get("sourceGroupId"))
            members = await self._expected_members(c, gid, active_names)
            error = m.get("errorSummary") or ("push mapping status ERROR" if m.get("status") == "ERROR" else None)
            return IdpGroup(id=gid, name=group_names.get(gid, gid), members=members, error=error or None)

        view.groups = list(await asyncio.gather(*(group_view(m) for m in mappings if m.get("status") != "INACTIVE")))
        for g in view.groups:
            if g.error:
                view.issues.append(IdpIssue("okta.push_error", g.name, g.error))
        return view

    def inactive_users(self, user_names: Sequence[str]) -> list[IdpUser]:
        """The users among `user_names` (Astro accounts no app user accounts for) that Okta has deactivated or
        suspended, as inactive IdP users.

        Okta unassigns a user it deactivates from every app, so read_view does not see them; without this, an
        Astro account still active for one would look like an account Okta never knew (an orphan, deleted by
        --delete-orphans) instead of a deactivation that did not reach Astro (deactivated by --fix). Looked up
        by login (the Astro app's default username format), concurrently, at most MAX_INACTIVE_LOOKUPS.
        """
        return self._call(lambda c: self._inactive_users(c, list(user_names)[:MAX_INACTIVE_LOOKUPS]))

    async def _inactive_users(self, c: OktaClient, user_names: list[str]) -> list[IdpUser]:
        async def one(login: str) -> IdpUser | None:
            try:
                user = await c.get(f"/api/v1/users/{quote(login, safe='@')}")
            except RemoteError as exc:
                if exc.status == 404:
                    return None  # not an Okta user at all: a real orphan
                raise
            if not isinstance(user, dict) or user.get("status") not in INACTIVE_OKTA_USER:
                return None
            return IdpUser(id=str(user.get("id")), user_name=login, active=False)

        return [u for u in await asyncio.gather(*(one(n) for n in user_names)) if u is not None]

    async def _okta_users(self, c: OktaClient, app_users: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Okta user JSON per app user: from `_embedded.user` (expand=user), else one GET per user."""
        out: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for au in app_users:
            embedded = (au.get("_embedded") or {}).get("user")
            if isinstance(embedded, dict):
                out[str(au.get("id"))] = embedded
            else:
                missing.append(str(au.get("id")))

        async def one(uid: str) -> None:
            try:
                out[uid] = await c.get(f"/api/v1/users/{uid}")
            except RemoteError as exc:
                if exc.status != 404:
                    raise

        await asyncio.gather(*(one(u) for u in missing))
        return out

