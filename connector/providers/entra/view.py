"""What Astro should hold according to Entra (the audit's IdP view): the app's assigned users and the members of
its assigned groups, mapped through the YAML (expected.py), and the job's own troubles (quarantine, failures)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from connector.errors import NotFound, RemoteError
from connector.providers.entra.app import EntraApp, current_failures, log_error, log_subject
from connector.providers.entra.expected import (
    compared_mappings,
    group_select,
    idp_group,
    idp_user,
    user_select,
)
from connector.support.progress import Count
from connector.views import IdpIssue, IdpUser, IdpView


class EntraView(EntraApp):
    """The IdPView capability."""

    def read_view(self, progress: Count | None = None) -> IdpView:
        return self._run(self._read_view(progress))

    def compared_paths(self) -> list[str]:
        """Every SCIM path an IdpUser's `expected` may hold (its keys are these targets): what the Astro read keeps."""
        return [m.target for m in self.mapping.users]

    def _compiled(self) -> tuple[list[str], list[str], list[Any], list[Any]]:
        """The users' and the groups' $select, and the mappings compared (create_only ones are not)."""
        mapping = self.mapping
        return (user_select(mapping), group_select(mapping), *compared_mappings(mapping))

    async def _read_view(self, progress: Count | None = None) -> IdpView:
        # The mapping's expressions are parsed in a worker thread while the first requests travel (the parser's
        # import stood between start-up and the first request).
        compiled = asyncio.get_running_loop().run_in_executor(None, self._compiled)
        sp = await self._require_sp()
        sp_id = str(sp["id"])
        view = IdpView("azure")
        # The job's state and the provisioning log are a chain of their own beside the members' pages.
        issues = asyncio.ensure_future(self._issues(sp))
        direct: asyncio.Future[list[dict[str, Any] | None]] | None = None
        group_objects: asyncio.Future[list[dict[str, Any]]] | None = None
        sem = asyncio.Semaphore(8)
        mapped: dict[str, Any] = {}  # user id -> IdpUser | None, each profile evaluated once, in first-seen order

        def user_of(profile: dict[str, Any]) -> Any:
            uid = str(profile.get("id"))
            if uid not in mapped:
                mapped[uid] = idp_user(profile, user_maps)
            return mapped[uid]

        async def members_of(a: Any) -> set[str]:
            # Page by page: each member becomes its view row as it arrives, and the page's JSON goes.
            names: set[str] = set()
            async with sem:
                async for page in self.tenant.iter_group_members(str(a.get("principalId")), select):
                    names.update(u.user_name for u in map(user_of, page) if u is not None and u.active)
                    if progress is not None:  # distinct users so far; no total before every group is read
                        progress(len(mapped), None)
            return names

        group_gate = asyncio.Semaphore(8)

        async def group_of(a: Any) -> dict[str, Any]:
            # The group itself, with what its mappings read: the assignment holds only a copy of its name.
            gid = str(a.get("principalId"))
            async with group_gate:
                try:
                    return await self.tenant.get_group(gid, group_fields)
                except NotFound:  # deleted since it was assigned: the assignment's copy of its name is all there is
                    return {"id": gid, "displayName": a.get("principalDisplayName")}

        async def direct_user(a: Any) -> dict[str, Any] | None:
            async with sem:
                try:
                    return await self.tenant.get_user(str(a.get("principalId")), select)
                except NotFound:
                    return None

        try:
            assignments = await self.tenant.assignments(sp_id)
            select, group_fields, user_maps, group_maps = await compiled
            group_assignments = [a for a in assignments if str(a.get("principalType") or "").lower() == "group"]
            user_assignments = [a for a in assignments if str(a.get("principalType") or "").lower() == "user"]
            # Each assigned group is a chain of its own; a group assigned twice (two roles) is read once.
            first = {str(a.get("principalId")): a for a in reversed(group_assignments)}
            groups = [a for a in group_assignments if first[str(a.get("principalId"))] is a]
            direct = asyncio.ensure_future(asyncio.gather(*(direct_user(a) for a in user_assignments)))
            group_objects = asyncio.ensure_future(asyncio.gather(*(group_of(a) for a in groups)))
            group_names = await asyncio.gather(*(members_of(a) for a in groups))
            for profile in await direct:
                if profile:
                    user_of(profile)
            for group, names in zip(await group_objects, group_names, strict=True):
                view.groups.append(idp_group(group, group_maps, names))
            view.users.extend(u for u in mapped.values() if u is not None)
            if progress is not None:
                progress(len(view.users), len(view.users))
            view.issues.extend(await issues)
        finally:
            for task in (issues, direct, group_objects):
                if task is not None and not task.done():
                    task.cancel()
        return view

    async def _issues(self, sp: Any) -> list[IdpIssue]:
        issues: list[IdpIssue] = []
        job = await self.tenant.find_job(str(sp["id"]))
        if job is not None:
            job = await self.tenant.get_job(str(sp["id"]), str(job["id"]))
            st = job.get("status") or {}
            if st.get("code") == "Quarantine":
                reason = (st.get("quarantine") or {}).get("reason") or "Unknown"
                issues.append(IdpIssue("entra.quarantine", self.app_label,
                                       f"provisioning job {job['id']} is in quarantine ({reason})"))
        for e in current_failures(await self.tenant.provisioning_log(str(sp["id"]), top=50)):
            issues.append(IdpIssue("entra.failed_export", log_subject(e), log_error(e)))
        return issues


    def inactive_users(self, user_names: Sequence[str],
                       external_ids: Mapping[str, str | None] | None = None) -> list[IdpUser]:
        """The users among `user_names` (Astro accounts the view does not hold) that Entra deprovisioned, as
        inactive IdP users: disabled ones no longer assigned, and ones out of the app's scope (unassigned, out of
        its groups) whose Astro account Entra created (its externalId is the user's mailNickname or object id,
        Entra's default mappings: `external_ids`). Entra deprovisions by deactivating the account in Astro; without
        this, an account still active for such a user would look like one Entra never knew (an orphan, deleted by
        --delete-orphans) instead of a deprovision that did not reach Astro (deactivated by --fix). A name Entra
        knows for an account it did not create stays an orphan. Looked up by userPrincipalName (the default
        userName mapping), 8 at a time; the audit asks about at most MAX_INACTIVE_LOOKUPS (connector.views)."""
        ids = dict(external_ids or {})
        return self._run(self._inactive_users(list(user_names), ids))

    async def _inactive_users(self, user_names: list[str], external_ids: dict[str, str | None]) -> list[IdpUser]:
        gate = asyncio.Semaphore(8)

        async def one(upn: str) -> IdpUser | None:
            async with gate:
                try:
                    user = await self.tenant.get_user(upn, ["id", "userPrincipalName", "mailNickname",
                                                            "accountEnabled"])
                except NotFound:
                    return None  # not an Entra user at all: a real orphan
                except RemoteError as exc:
                    if exc.status == 400:  # a name Graph cannot take as a key (e.g. one starting with '$')
                        return None
                    raise
            if str(user.get("userPrincipalName") or "").casefold() != upn.casefold():
                return None
            ext = external_ids.get(upn)
            if user.get("accountEnabled") is False or (ext and ext in (user.get("id"), user.get("mailNickname"))):
                return IdpUser(id=str(user["id"]), user_name=upn, active=False)
            return None

        return [u for u in await asyncio.gather(*(one(n) for n in user_names)) if u is not None]
