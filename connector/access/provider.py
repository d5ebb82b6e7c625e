"""`AstroAccessProvider`: give the Teams that SCIM brings into Astro the roles of their access templates.

Astro Platform API (reference/astro-api.md), through connector.astro.platform (its client and error mapping):
- Teams are found by name (`GET /organizations/{org}/teams?names=...`); a Team is the group an IdP pushed, in
  the Astro organization of that IdP (`cfg.astro_for(idp)`), so it only exists after the first push;
- Workspaces and Deployments are resolved by name or id (`GET .../workspaces`, `.../deployments`);
- a Team's role set is replaced with `POST /organizations/{org}/teams/{team}/roles`.

`plan` never waits: a Team that is not there yet is planned as "set once pushed". `apply` waits for it (the
IdP was applied just before, and Okta's push or Entra's cycle may still be running), up to
`astro.team_wait_seconds`, then fails with exit 3 naming the group and the IdP that should push it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from connector.access import model as access
from connector.access.model import AccessTemplate, DeploymentGrant, RoleSet, WorkspaceGrant
from connector.astro.platform import SERVICE, AstroPlatform
from connector.errors import (
    Ambiguous,
    AuthError,
    ConfigError,
    NotFound,
    RemoteError,
    VerificationFailed,
)
from connector.plan.model import Action, Change, Plan, digest
from connector.providers.base import Check, Progress
from connector.support import clock
from connector.support.http import DEFAULT_POLICY, RetryPolicy

if TYPE_CHECKING:
    from connector.config.load import AstroConfig, ProjectConfig

T = TypeVar("T")


@dataclass
class _Target:
    """One template applied in one Astro organization (a group both IdPs provision may live in two)."""

    template: AccessTemplate
    idp: str


@dataclass
class _Org:
    key: tuple[str, str]  # (api_url, organization_id)
    astro: AstroConfig
    idps: list[str]
    targets: list[_Target] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"{self.astro.api_url.rstrip('/')}/organizations/{self.astro.organization_id}"


@dataclass
class _Catalogue:
    """An organization's Workspaces and Deployments, indexed for name-or-id resolution."""

    workspaces: dict[str, dict[str, Any]]  # id -> workspace
    deployments: dict[str, dict[str, Any]]  # id -> deployment

    def names(self) -> dict[str, str]:
        """Id -> display name ("ws/dep" for Deployments), for plans."""
        out = {i: str(w.get("name")) for i, w in self.workspaces.items()}
        for i, d in self.deployments.items():
            ws = self.workspaces.get(str(d.get("workspaceId")), {})
            out[i] = f"{ws.get('name', d.get('workspaceName', '?'))}/{d.get('name')}"
        return out

    def workspace(self, ref: str, location: Any) -> str:
        named = [i for i, w in self.workspaces.items() if w.get("name") == ref]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise Ambiguous(
                f"{len(named)} Astro Workspaces are named {ref!r}",
                location=location,
                hint="name the Workspace by its id instead",
            )
        if ref in self.workspaces:
            return ref
        raise NotFound(
            f"no Astro Workspace {ref!r} in this organization",
            location=location,
            candidates=_close(ref, [str(w.get("name")) for w in self.workspaces.values()]),
        )

    def deployment(self, ref: str, location: Any) -> str:
        if "/" not in ref:
            if ref in self.deployments:
                return ref
            raise NotFound(
                f"no Astro Deployment with id {ref!r} in this organization",
                location=location,
                hint="name it as '<workspace>/<deployment>' or give an existing Deployment id",
            )
        ws_ref, name = ref.split("/", 1)
        ws_id = self.workspace(ws_ref, location)
        found = [
            i for i, d in self.deployments.items() if d.get("workspaceId") == ws_id and d.get("name") == name
        ]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise Ambiguous(
                f"{len(found)} Deployments are named {ref!r}",
                location=location,
                hint="name the Deployment by its id instead",
            )
        in_ws = [str(d.get("name")) for d in self.deployments.values() if d.get("workspaceId") == ws_id]
        raise NotFound(
            f"no Deployment {name!r} in Astro Workspace {ws_ref!r}",
            location=location,
            candidates=[f"{ws_ref}/{c}" for c in _close(name, in_ws)],
        )


def _close(word: str, options: list[str]) -> list[str]:
    import difflib

    return difflib.get_close_matches(word, options, n=3, cutoff=0.5)


class AstroAccessProvider:
    """Provider "astro": plan/apply Team role sets from `cfg.access` (see the module docstring)."""

    name = "astro"

    def __init__(
        self,
        cfg: ProjectConfig,
        *,
        idps: Sequence[str] | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        poll_seconds: float = 0.25,
    ) -> None:
        self.cfg = cfg
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.templates = access.require_templates(cfg)
        self.orgs: dict[tuple[str, str], _Org] = {}
        for tpl in self.templates:
            for idp in tpl.idps:
                if idps is not None and idp not in idps:
                    continue
                astro = cfg.astro_for(idp)
                key = (astro.api_url.rstrip("/"), astro.organization_id)
                org = self.orgs.setdefault(key, _Org(key, astro, []))
                if idp not in org.idps:
                    org.idps.append(idp)
                # One Team per group in an organization, whichever IdPs bring it (both, in a shared one): one
                # target, so plan and apply set its roles once (they were listed, POSTed and counted twice).
                if not any(t.template.group == tpl.group for t in org.targets):
                    org.targets.append(_Target(tpl, idp))

    # -- Provider protocol ----------------------------------------------------------------------------------

    def plan(self) -> Plan:
        return self._run(self._plan)

    def apply(self, plan: Plan, progress: Progress | None = None) -> int:
        if not plan.changes:
            return 0
        return self._run(lambda http: self._apply(http, plan, progress))

    def test_connection(self) -> list[Check]:
        return self._run(self._test_connection)

    def status(self) -> list[Check]:
        return self._run(self._status)

    def close(self) -> None:
        pass  # every call opens and closes its own clients

    # -- plumbing -------------------------------------------------------------------------------------------

    def _run(self, work: Callable[[AstroPlatform], Awaitable[T]]) -> T:
        async def main() -> T:
            async with AstroPlatform(self.orgs.values(), self.policy) as http:
                return await work(http)

        return asyncio.run(main())

    def _label(self, org: _Org) -> str:
        return f"{'/'.join(org.idps)} organization {org.astro.organization_id}"

    # -- plan -----------------------------------------------------------------------------------------------

    async def _catalogue(self, http: AstroPlatform, org: _Org) -> _Catalogue:
        workspaces, deployments = await asyncio.gather(
            http.list_all(org, "/workspaces", "workspaces"), http.list_all(org, "/deployments", "deployments")
        )
        return _Catalogue({str(w["id"]): w for w in workspaces}, {str(d["id"]): d for d in deployments})

    @staticmethod
    def _desired(tpl: AccessTemplate, cat: _Catalogue) -> RoleSet:
        workspaces: dict[str, str] = {}
        for w in tpl.workspaces:
            ws_id = cat.workspace(w.ref, w.location)
            if ws_id in workspaces:
                raise ConfigError(
                    f"the template of {tpl.group!r} names Workspace {w.ref!r} twice (by name and id)",
                    location=w.location,
                )
            workspaces[ws_id] = w.role
        deployments: dict[str, str] = {}
        for d in tpl.deployments:
            dep_id = cat.deployment(d.ref, d.location)
            if dep_id in deployments:
                raise ConfigError(
                    f"the template of {tpl.group!r} names Deployment {d.ref!r} twice", location=d.location
                )
            parent = str(cat.deployments[dep_id].get("workspaceId"))
            if parent not in workspaces:
                ws_name = cat.workspaces.get(parent, {}).get("name", parent)
                raise ConfigError(
                    f"a role on deployment {d.ref!r} needs a role on its workspace {ws_name!r}, and the "
                    f"template of {tpl.group!r} gives none",
                    location=d.location,
                    hint=f"add '{ws_name}: WORKSPACE_ACCESSOR' (or any workspace role) under workspaces",
                )
            deployments[dep_id] = d.role
        return RoleSet(tpl.organization_role, frozenset(workspaces.items()), frozenset(deployments.items()))

    async def _plan(self, http: AstroPlatform) -> Plan:
        plan = Plan(provider="astro team roles")
        several = len(self.orgs) > 1
        for org in self.orgs.values():
            cat = await self._catalogue(http, org)
            names = cat.names()
            groups = sorted({t.template.group for t in org.targets})
            teams = await http.teams_named(org, groups)
            # What `apply FILE` re-reads to see whether Astro moved since the plan (see Plan.state).
            plan.state[f"astro.catalogue {org.astro.organization_id}"] = digest(names)
            for group in groups:
                found_teams = [[t.get("id"), RoleSet.from_api(t).body()] for t in teams.get(group, [])]
                plan.state[f"{access.RESOURCE} {group} ({org.astro.organization_id})"] = digest(found_teams)
            for target in org.targets:
                tpl = target.template
                desired = self._desired(tpl, cat)
                key = f"{tpl.group} [{target.idp}]" if several else tpl.group
                data = {"org": org.key, "group": tpl.group, "idp": target.idp, "body": desired.body()}
                found = teams.get(tpl.group, [])
                if len(found) > 1:
                    raise RemoteError(
                        f"{len(found)} Teams are named {tpl.group!r}; cannot tell which one the "
                        f"template is for",
                        service=SERVICE,
                        endpoint=org.base + "/teams",
                    )
                if not found:
                    wait = org.astro.team_wait_seconds
                    plan.changes.append(
                        Change(
                            Action.UPDATE,
                            access.RESOURCE,
                            key,
                            before=None,
                            after=desired.view(names),
                            detail=f"Team not in Astro yet ({target.idp} pushes it); apply waits up to "
                            f"{wait:g}s for it, then sets " + _summary(desired, names),
                            data={
                                **data,
                                "team_id": None,
                                "diff": describe_diff_from_nothing(desired, names),
                            },
                        )
                    )
                    continue
                team = found[0]
                current = RoleSet.from_api(team)
                if current == desired:
                    continue
                diff = access.describe_diff(current, desired, names)
                plan.changes.append(
                    Change(
                        Action.UPDATE,
                        access.RESOURCE,
                        key,
                        before=current.view(names),
                        after=desired.view(names),
                        detail="; ".join(diff),
                        data={**data, "team_id": str(team["id"]), "diff": diff},
                    )
                )
        return plan

    # -- apply ----------------------------------------------------------------------------------------------

    async def _apply(self, http: AstroPlatform, plan: Plan, progress: Progress | None) -> int:
        """Teams already in Astro first; then each pending Team as soon as its IdP has pushed it (waits run
        side by side, each up to its organization's `team_wait_seconds`)."""
        changes = [c for c in plan.changes if c.resource == access.RESOURCE]
        ready = [c for c in changes if c.data.get("team_id")]
        pending = [c for c in changes if not c.data.get("team_id")]
        done = 0
        for change in ready:
            await self._set(http, change, str(change.data["team_id"]))
            done += 1
            if progress is not None:
                progress(change)

        async def when_pushed(change: Change) -> RemoteError | None:
            org = self._org_of(change)
            try:
                team_id = await self._wait_for_team(
                    http, org, str(change.data["group"]), str(change.data["idp"])
                )
            except RemoteError as exc:
                return exc
            await self._set(http, change, team_id)
            if progress is not None:
                progress(change)
            return None

        failures = [e for e in await asyncio.gather(*(when_pushed(c) for c in pending)) if e is not None]
        done += len(pending) - len(failures)
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise RemoteError("; ".join(f.message for f in failures), service=SERVICE, hint=failures[0].hint)
        return done

    def _org_of(self, change: Change) -> _Org:
        key = change.data["org"]
        return self.orgs[(str(key[0]), str(key[1]))]

    async def _set(self, http: AstroPlatform, change: Change, team_id: str) -> None:
        group = str(change.data["group"])
        body = change.data["body"]
        try:
            answer = await http.post_roles(self._org_of(change), team_id, body)
        except RemoteError as exc:
            if exc.status != 400:
                raise
            # A role Astro does not know (a custom Deployment role name is only checked here): the template's
            # line, not the endpoint alone.
            tpl = next((t for t in self.templates if t.group == group), None)
            grants: list[DeploymentGrant | WorkspaceGrant] = [*tpl.deployments, *tpl.workspaces] if tpl else []
            named = next((g for g in grants if g.role in exc.message), None)  # the role Astro names, if it does
            raise ConfigError(f"Astro refuses the role set of {group!r}: {exc.message}",
                              location=named.location if named else tpl.location if tpl is not None else None,
                              hint=f"check the role names under access: {group}: (the organization's, the "
                                   "Workspaces' and the Deployments', custom roles included)") from exc
        if RoleSet.from_api(answer) != RoleSet.from_api(body):
            raise VerificationFailed(
                f"Astro answered a different role set for Team {group!r} than was sent",
                hint="re-run 'astro-scim plan --idp astro' to see what Astro holds",
            )
        change.data["team_id"] = team_id

    async def _wait_for_team(self, http: AstroPlatform, org: _Org, group: str, idp: str) -> str:
        timeout = org.astro.team_wait_seconds
        clk = clock.current()
        deadline = clk.monotonic() + timeout
        delay = self.poll_seconds
        while True:
            found = (await http.teams_named(org, [group])).get(group, [])
            if len(found) == 1:
                return str(found[0]["id"])
            if len(found) > 1:
                raise RemoteError(
                    f"{len(found)} Teams are named {group!r}", service=SERVICE, endpoint=org.base + "/teams"
                )
            remaining = deadline - clk.monotonic()
            if remaining <= 0:
                break
            await clk.asleep(min(delay, remaining))  # the last look is at the deadline itself
            delay = min(delay * 2, 2.0)
        where = "okta.push_groups" if idp == "okta" else "azure.assign_groups"
        check = (
            "'astro-scim push-groups' re-pushes it; 'astro-scim status --idp okta' shows push errors"
            if idp == "okta"
            else "'astro-scim provision --group NAME' provisions it now; "
            "'astro-scim status --idp azure' shows the job's state"
        )
        raise RemoteError(
            f"Team {group!r} did not appear in Astro organization {org.astro.organization_id} within "
            f"{timeout:g}s: {idp} should push it ({where}) before its access template can be applied",
            service=SERVICE,
            endpoint=org.base + "/teams",
            hint=f"{check}; raise astro.team_wait_seconds if the IdP is slow",
        )

    # -- checks ---------------------------------------------------------------------------------------------

    async def _test_connection(self, http: AstroPlatform) -> list[Check]:
        checks = []
        for org in self.orgs.values():
            name = f"Astro Platform API ({self._label(org)})"
            try:
                page = await http.get(org, "/teams", {"limit": 1})
                checks.append(Check(name, True, f"{page.get('totalCount', '?')} Team(s) readable"))
            except AuthError as exc:
                checks.append(
                    Check(
                        name,
                        False,
                        str(exc),
                        exc.hint
                        or "the Organization API token needs Organization Owner to change Team roles",
                    )
                )
            except RemoteError as exc:
                checks.append(Check(name, False, str(exc), exc.hint))
        return checks

    async def _status(self, http: AstroPlatform) -> list[Check]:
        plan = await self._plan(http)
        # By organization and IdP as well: a group both IdPs provision has a Team in each organization, and one's
        # mismatch was reported for both (the later change overwrote the earlier).
        pending = {(c.data["org"], c.data["idp"], c.data["group"]): c for c in plan.changes}
        several = len(self.orgs) > 1
        checks = []
        for org in self.orgs.values():
            for target in org.targets:
                group = target.template.group
                name = f"Team roles: {group}" + (f" [{target.idp}]" if several else "")
                change = pending.get((org.key, target.idp, group))
                if change is None:
                    checks.append(Check(name, True, "match the access template"))
                elif change.data.get("team_id") is None:
                    checks.append(
                        Check(
                            name,
                            None,
                            f"Team not in Astro yet ({target.idp} pushes it)",
                            "run 'astro-scim apply' to push it and set its roles",
                        )
                    )
                else:
                    checks.append(
                        Check(
                            name,
                            False,
                            change.detail,
                            "run 'astro-scim apply --idp astro' to set them",
                        )
                    )
        return checks


def _summary(roles: RoleSet, names: dict[str, str]) -> str:
    parts = [f"organization {roles.organization}"]
    parts += [f"workspace {names.get(i, i)} {r}" for i, r in sorted(roles.workspaces)]
    parts += [f"deployment {names.get(i, i)} {r}" for i, r in sorted(roles.deployments)]
    return ", ".join(parts)


def describe_diff_from_nothing(roles: RoleSet, names: dict[str, str]) -> list[str]:
    return access.describe_diff(RoleSet(""), roles, names)
