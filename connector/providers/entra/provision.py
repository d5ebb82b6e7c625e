"""Entra provision on demand: users, and groups with up to 5 members per call, paced at Entra's limit of 5 calls
per 10 seconds (one window per app, shared by every call of this provider)."""

from __future__ import annotations

from typing import Any

from connector.errors import RemoteError
from connector.providers.entra import schema as azure_schema
from connector.providers.entra.app import EntraApp
from connector.providers.entra.ondemand import (
    OnDemandResult,
    group_subject,
    member_chunks,
    parse_response,
    user_subject,
)
from connector.support.progress import Count


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
        results: list[OnDemandResult] = []
        calls, known = 0, len(users)  # a group's calls are known once its members are read

        def called() -> None:
            nonlocal calls
            calls += 1
            if progress is not None:
                progress(calls, known)

        for u in users:
            person = await self.tenant.find_user(u, ["id", "userPrincipalName", "displayName"])
            results.extend(await self._on_demand_call(sp_id, job_id, rule, user_subject(str(person["id"])),
                                                      str(person.get("userPrincipalName") or u), "User"))
            called()
        for g in groups:
            grp = await self.tenant.find_group(g)
            members = await self.tenant.group_members(str(grp["id"]), ["id", "userPrincipalName"])
            chunks = member_chunks([str(m["id"]) for m in members])
            known += len(chunks)
            for chunk in chunks:
                results.extend(await self._on_demand_call(sp_id, job_id, rule, group_subject(str(grp["id"]), chunk),
                                                          str(grp.get("displayName") or g), "Group"))
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

