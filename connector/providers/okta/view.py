"""What Astro should hold according to Okta (the audit's IdP view): in-scope app users with the values the mapping
gives them, the pushed groups with their expected members, and Okta's own provisioning errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
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
from connector.providers.okta.reads import iter_pages, read_client
from connector.support.progress import Count
from connector.views import IdpGroup, IdpIssue, IdpUser, IdpView

T = TypeVar("T")



class OktaView(OktaOrg):
    """The IdPView capability."""

    def read_view(self, progress: Count | None = None) -> IdpView:
        return self._reads(lambda c: self._read_view(c, progress))

    def _reads(self, fn: Callable[[OktaClient], Awaitable[T]]) -> T:
        """Like OktaOrg._call, over the read client (no SDK for an API token: see okta/reads.py)."""
        holder: list[T] = []

        async def main() -> None:
            # The result leaves through `holder`, not as the task's result: a task's repr includes its result,
            # and formatting a 20,000-user view (when asyncio.run reprs the main task) cost 0.5 s.
            async with read_client(self.okta) as client:
                holder.append(await fn(client))

        asyncio.run(main())
        return holder[0]

    def compared_paths(self) -> list[str]:
        """Every SCIM path an IdpUser's `expected` may hold (its keys are these targets): what the Astro read keeps."""
        return [m.target for m in self.mapping_file().users]

    def _parsed_mappings(self) -> list[tuple[str, Any]]:
        from connector.mapping.expr import okta as okta_expr
        from connector.mapping.model import ApplyOn

        mapping = self.mapping_file()
        # A create_only (DONT_PUSH) attribute keeps the value Okta sent at creation: Okta's value today is no
        # measure of it, so it is not compared.
        return [(m.target, okta_expr.parse(m.source))
                for m in mapping.users if not m.from_sign_on and m.source is not None
                and m.apply_on is ApplyOn.CREATE_AND_UPDATE]

    async def _read_view(self, c: OktaClient, progress: Count | None = None) -> IdpView:
        # The mapping's parser (lark, its grammar) loads in a worker thread while the first requests travel: on
        # the critical path it stood between start-up and the first request.
        parsed_q = asyncio.get_running_loop().run_in_executor(None, self._parsed_mappings)
        app = await self._find_app(c)
        parsed = self._readers(await parsed_q)
        app_id = str(app["id"])
        # Group push mappings, names and members are a chain of their own beside the app users' cursor pages.
        pushed = asyncio.ensure_future(self._pushed_groups(c, app_id))
        view = IdpView("okta")
        names: dict[str, str] = {}  # app user id -> userName (lower-cased), in scope
        active_names: dict[str, str] = {}  # the same for active Okta users: who may be a pushed group's member
        unembedded: list[dict[str, Any]] = []
        try:
            # Page by page: only what reconcile needs is kept of each app user (not its JSON).
            async for page in iter_pages(c, f"/api/v1/apps/{app_id}/users", {"limit": 500, "expand": "user"}):
                for au in page:
                    if au.get("status") in OUT_OF_SCOPE_APP_USER:
                        continue
                    embedded = (au.get("_embedded") or {}).get("user")
                    if isinstance(embedded, dict):
                        self._add_user(view, names, active_names, parsed, au, embedded)
                    else:
                        unembedded.append(au)
                if progress is not None:  # Okta's cursor pages say no total
                    progress(len(view.users) + len(unembedded), None)
            okta_users = await self._okta_users(c, unembedded)
            for au in unembedded:
                self._add_user(view, names, active_names, parsed, au, okta_users.get(str(au.get("id"))) or {})
            mappings, group_names, members = await pushed
        except BaseException:
            pushed.cancel()
            raise
        for m, member_ids in zip(mappings, members, strict=True):
            gid = str(m.get("sourceGroupId"))
            error = m.get("errorSummary") or ("push mapping status ERROR" if m.get("status") == "ERROR" else None)
            expected = {active_names[uid] for uid in member_ids if uid in active_names}
            view.groups.append(IdpGroup(id=gid, name=group_names.get(gid, gid), members=expected,
                                        error=error or None,
                                        pushed=m.get("status") == "ACTIVE" and bool(m.get("lastPush"))))
        for g in view.groups:
            if g.error:
                view.issues.append(IdpIssue("okta.push_error", g.name, g.error))
        if progress is not None:
            progress(len(view.users), len(view.users))
        return view

    @staticmethod
    def _readers(parsed: list[tuple[str, Any]]) -> list[tuple[str, int, Any]]:
        """Each mapping as (target, how, what): 1/2 read `what` from the Okta user's / app user's profile (the
        common `user.firstName`: what evaluate gives, a null-safe lookup, without its set-up per call: 100,000
        calls for 20,000 users); 0 evaluates the expression `what`."""
        from connector.mapping.expr import okta as okta_expr

        out: list[tuple[str, int, Any]] = []
        for target, expr in parsed:
            if isinstance(expr, okta_expr.Path) and expr.root in ("user", "appuser"):
                out.append((target, 1 if expr.root == "user" else 2, expr.name))
            elif okta_expr.profiles_suffice(expr):
                out.append((target, 0, expr))
            else:  # e.g. isMemberOfGroupName(...): evaluated without the user's groups it is a guess, not a verdict
                log.info("okta: %s is not compared: its expression reads more than the user's profiles", target)
        return out

    @staticmethod
    def _add_user(view: IdpView, names: dict[str, str], active_names: dict[str, str],
                  readers: list[tuple[str, int, Any]], au: dict[str, Any], user: dict[str, Any]) -> None:
        uid = str(au.get("id"))
        profile = user.get("profile") or {}
        app_profile = au.get("profile") or {}
        user_name = app_user_name(au)
        names[uid] = low = user_name.lower()
        active = user.get("status") not in INACTIVE_OKTA_USER
        if active:
            active_names[uid] = low
        expected: dict[str, Any] = {"userName": user_name}
        for target, how, what in readers:
            if how == 1:
                expected[target] = profile.get(what)
            elif how == 2:
                expected[target] = app_profile.get(what)
            else:
                from connector.mapping.expr import okta as okta_expr

                try:
                    expected[target] = okta_expr.evaluate(what, profile, app_profile)
                except ConnectorError as exc:
                    log.info("okta: cannot evaluate %s for %s: %s", target, user_name, exc)
        error = app_user_error(au) if au.get("syncState") == "ERROR" else None
        view.users.append(IdpUser(id=uid, user_name=user_name, active=active, expected=expected,
                                  scim_id=au.get("externalId") or None, error=error))
        if error:
            view.issues.append(IdpIssue("okta.user_error", user_name, error))

    async def _pushed_groups(self, c: OktaClient, app_id: str
                             ) -> tuple[list[dict[str, Any]], dict[str, str], list[list[str]]]:
        """The live push mappings, the source groups' names, and each one's member ids (active members only)."""
        mappings = [m for m in await self._push_mappings_or_empty(c, app_id) if m.get("status") != "INACTIVE"]

        async def member_ids(gid: str) -> list[str]:
            return [str(u.get("id"))
                    async for page in iter_pages(c, f"/api/v1/groups/{gid}/users", {"limit": 1000})
                    for u in page if u.get("status") not in INACTIVE_OKTA_USER]

        gids = [str(m.get("sourceGroupId")) for m in mappings]
        names_task = asyncio.ensure_future(self._group_names(c, gids))
        members = list(await asyncio.gather(*(member_ids(g) for g in gids)))
        return mappings, await names_task, members

    def inactive_users(self, user_names: Sequence[str],
                       external_ids: Mapping[str, str | None] | None = None) -> list[IdpUser]:
        """The users among `user_names` (Astro accounts no app user accounts for) that Okta deprovisioned, as
        inactive IdP users: deactivated or suspended ones, and active ones out of the app's scope whose Astro
        account Okta created (its externalId is the Okta user's id: `external_ids`).

        Okta unassigns a user it deactivates from every app, and deprovisions (deactivates in Astro) one taken out
        of the app's scope, so read_view sees neither; without this, an Astro account still active for one would
        look like an account Okta never knew (an orphan, deleted by --delete-orphans) instead of a deactivation
        that did not reach Astro (deactivated by --fix). An active Okta user whose name matches an account Okta
        did not create (an admin's own, an invite) stays an orphan: --fix alone never deactivates it. Looked up
        by the account's externalId first (Okta's own account, whatever app username it was given), then by login
        (the Astro app's default username format; Okta also matches a login's short name, so the answer must be that
        very login), concurrently; the audit asks about at most MAX_INACTIVE_LOOKUPS (connector.views).
        """
        ids = dict(external_ids or {})
        return self._reads(lambda c: self._inactive_users(c, list(user_names), ids))

    async def _inactive_users(self, c: OktaClient, user_names: list[str], external_ids: dict[str, str | None]
                              ) -> list[IdpUser]:
        async def get(key: str) -> dict[str, Any] | None:
            try:
                user = await c.get(f"/api/v1/users/{quote(key, safe='@')}")
            except RemoteError as exc:
                if exc.status == 404:
                    return None
                raise
            return user if isinstance(user, dict) else None

        async def one(login: str) -> IdpUser | None:
            ext = external_ids.get(login)
            if ext and ext.casefold() != login.casefold():
                # The account's externalId names the Okta user who owns it: Okta's own account (an app username
                # that is not the login: a per-assignment name, an email prefix), whatever its userName says.
                owner = await get(ext)
                if owner is not None and str(owner.get("id")) == ext:
                    return IdpUser(id=ext, user_name=login, active=False)
            user = await get(login)
            if user is None:
                return None  # not an Okta user at all: a real orphan
            found = str((user.get("profile") or {}).get("login") or "")
            if found.casefold() != login.casefold():
                return None  # another person, found by the short name
            uid = str(user.get("id"))
            if user.get("status") in INACTIVE_OKTA_USER or external_ids.get(login) == uid:
                return IdpUser(id=uid, user_name=login, active=False)
            return None

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

