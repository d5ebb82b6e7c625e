"""Entra provision on demand: users, and groups with up to 5 members per call, paced at Entra's limit of 5 calls
per 10 seconds (one window per app, shared by every call of this provider).

Each result carries what Astro should hold for its subject (`OnDemandResult.expected`): the Entra user or group
mapped through the YAML by expected.py, as drift maps them, so that the command can read Astro back against
Entra's verdict instead of taking it on trust."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from connector.errors import RemoteError
from connector.providers.entra import schema as azure_schema
from connector.providers.entra.app import EntraApp
from connector.providers.entra.expected import (
    compared_mappings,
    group_select,
    idp_group,
    idp_user,
    user_select,
)
from connector.providers.entra.ondemand import (
    OnDemandResult,
    group_subject,
    member_chunks,
    parse_response,
    user_subject,
)
from connector.support.progress import Count
from connector.views import IdpGroup, IdpUser


class EntraOnDemand(EntraApp):
    """The ProvisionOnDemand capability."""

    def provision_on_demand(self, *, users: list[str] | None = None, groups: list[str] | None = None,
                            progress: Count | None = None) -> list[OnDemandResult]:
        """For the drift fixer: users by userPrincipalName or id, groups by name or id."""
        return self._run(self._provision_on_demand(users or [], groups or [], progress))

    async def _provision_on_demand(self, users: list[str], groups: list[str], progress: Count | None = None
                                   ) -> list[OnDemandResult]:
        sp = await self._require_sp()
        job = await self._require_job(sp)
        sp_id, job_id = str(sp["id"]), str(job["id"])
        rule = azure_schema.rule_id(await self.tenant.get_schema(sp_id, job_id))
        # The users' profiles are read with every attribute the mapping reads, so that each result can say what
        # Astro should now hold (the same records drift expects).
        select = user_select(self.mapping)
        # What drift compares: a create_only attribute Entra's Update keeps as it was is not "Astro disagrees".
        user_maps, group_maps = compared_mappings(self.mapping)
        results: list[OnDemandResult] = []
        calls, known = 0, len(users)  # a group's calls are known once its members are read

        def called() -> None:
            nonlocal calls
            calls += 1
            if progress is not None:
                progress(calls, known)

        async def call(subject: dict[str, Any], label: str, object_type: str, what: str) -> list[OnDemandResult]:
            """One call; a request that fails (after retries) is its subjects' failed result, so that what the
            other calls provisioned is still reported and read back. Nothing done yet: raised as ever."""
            try:
                return await self._on_demand_call(sp_id, job_id, rule, subject, label, object_type)
            except RemoteError as exc:
                if not results:
                    raise
                return [OnDemandResult(label, object_type, "", "failure", "RequestFailed",
                                       f"the call for {what} got no answer from Entra: {exc}", request_error=str(exc))]

        for u in users:
            person = await self.tenant.find_user(u, select)
            uid = str(person["id"])
            upn = str(person.get("userPrincipalName") or u)
            got = await call(user_subject(uid), upn, "User", f"user {upn}")
            expect(got, {uid: idp_user(person, user_maps)}, None)
            results.extend(got)
            called()
        for g in groups:
            grp = await self.tenant.find_group(g, group_select(self.mapping))
            gid = str(grp["id"])
            members = await self.tenant.group_members(gid, select)
            mapped = {str(m["id"]): idp_user(m, user_maps) for m in members}
            chunks = member_chunks([str(m["id"]) for m in members])
            known += len(chunks)
            for chunk in chunks:
                names = [(mu.user_name if (mu := mapped[m]) is not None else m) for m in chunk]
                what = "the group" + (f" and member(s) {', '.join(names)}" if names else "")
                got = await call(group_subject(gid, chunk), str(grp.get("displayName") or g), "Group", what)
                expect(got, {m: mapped[m] for m in chunk}, (gid, partial(idp_group, grp, group_maps)))
                results.extend(got)
                called()
        return results

    async def _on_demand_call(self, sp_id: str, job_id: str, rule: str, subject: dict[str, Any], label: str,
                              object_type: str) -> list[OnDemandResult]:
        from connector.support.http import is_retryable

        def retry_on(exc: BaseException) -> bool:
            if isinstance(exc, RemoteError) and exc.status == 429:
                self.window.penalize()  # the service's window is full whatever ours says
            return is_retryable(exc)

        await self.window.acquire()
        pair = await self.tenant.provision_on_demand(sp_id, job_id, rule, subject, retry_on=retry_on)
        return parse_response(pair.get("key"), pair.get("value"), subject=label,
                              object_type=object_type)


def expect(results: list[OnDemandResult], users: dict[str, IdpUser | None],
           group: tuple[str, Callable[[set[str]], IdpGroup]] | None) -> None:
    """Attach to one call's results what Astro should hold for each (`OnDemandResult.expected`).

    A result is matched to what was sent by its sourceIdentity id; without one, by its type when the call sent
    one object of that type. The Team is expected to hold the call's members that Entra provisioned (its own row
    for the member is not a failure or a skip) and that are active: Entra adds only enabled users to a group,
    and drift expects the same (view.py)."""
    by_id = {r.source_id: r for r in results if r.source_id}
    user_rows = [r for r in results if r.object_type.lower() == "user"]
    for uid, user in users.items():
        row = by_id.get(uid) or (user_rows[0] if len(users) == 1 and len(user_rows) == 1
                                 and not user_rows[0].source_id else None)
        if row is not None:
            # Entra's answer to a user out of scope is a deprovision (action Disable): Astro should then hold the
            # account deactivated, whatever the user's state in Entra; a Disable sends active=false alone, so no
            # other value is checked (the user's details may have changed in Entra since the last export).
            if user is not None and row.action.casefold() == "disable":
                user = replace(user, active=False, expected={})
            row.source_id, row.expected = uid, user
    if group is None:
        return
    gid, build = group
    group_rows = [r for r in results if r.object_type.lower() == "group"]
    row = by_id.get(gid) or (group_rows[0] if len(group_rows) == 1 and not group_rows[0].source_id else None)
    if row is None:
        return
    # A member whose own row is a Disable (out of scope) is one Entra does not add to the Team.
    provisioned = {uid for uid in users
                   if (r := by_id.get(uid)) is None or (r.ok and r.action.casefold() != "disable")}
    names = {u.user_name for uid, u in users.items() if u is not None and u.active and uid in provisioned}
    row.source_id, row.expected = gid, build(names)
