"""Drift findings -> a remediation Plan (changes on resources "remedy.*"), and the executor that carries it out.

The remedies are the Astro SCIM FAQ's:
- Okta group out of sync (Team missing, member missing or extra, push error): Push now. Okta has no Push now API,
  so the provider re-pushes with the documented workaround (mapping INACTIVE then ACTIVE) and verifies in Astro.
  A Team missing in Astro is re-pushed first (Okta sends the name with every push: a Team renamed in Astro comes
  back); one still missing cannot come back that way (the mapping still targets the deleted Team's id, and Okta
  reports "not found"): the group is unlinked (deleteTargetGroup=false) and pushed again, which creates it.
- Team renamed in Astro (either IdP): rename it back in Astro (SCIM PATCH replace displayName). The IdPs provision
  into it by its id, so a Team created under the group's name would sit beside it, a duplicate.
- Okta user missing in Astro (or in sync ERROR): remove and re-assign the user (the FAQ's fix).
- Okta user in Astro with stale attributes: update the app user in Okta, which makes Okta push the mapped
  profile (a full PUT) with Update User Attributes on. Never remove and re-assign: that deactivates the account in
  Astro first (Okta's unassignment deprovisions).
- Okta user removed but the Astro account remains: delete the account from Astro (only with --delete-orphans,
  within the safety limit). A user deactivated in the IdP whose account is still active is deactivated in Astro
  (Okta: the PATCH Okta itself sends; Entra: provision on demand, which sends it), never deleted.
- Okta user active whose Astro account is deactivated (re-enabled in Okta, but the update never reached Astro, or
  deactivated in Astro behind Okta's back): reactivate it in Astro with the operation Okta sends to reactivate a
  user (PATCH replace active=true). Updating the app user would not do: Okta's profile PUT carries the `active` it read back.
- Azure user or group out of sync: provision on demand (users, then groups). Entra remembers what it exported
  (its escrow) and skips a group it believes in sync ("RedundantExport"), so a membership changed in Astro only is
  not repaired by on-demand provisioning; the executor then checks the Team in Astro and adds or removes exactly
  the members Entra's group says (SCIM PATCH, the request Entra itself sends), and says so. Groups too big for
  on-demand within its rate limit (5 calls per 10 s, 5 members per call) go straight to that step.
- Entra quarantine: a manual step (fix the cause, restart provisioning).

Order of execution: Astro clean-up first, then users, then groups, so re-pushed Teams find their members.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from connector.astro.client import SERVICE as ASTRO_SCIM
from connector.astro.client import AstroScimClient, run_sync
from connector.audit.reconcile import Finding, Kind, fold
from connector.config.load import AstroConfig, SafetyConfig
from connector.errors import ConnectorError, RemoteError
from connector.plan.model import Action, Change, Plan
from connector.providers.base import AuditTarget, OnDemandOutcome, ProvisionOnDemand, Remedies
from connector.support.http import DEFAULT_POLICY, RetryPolicy

OKTA_REASSIGN = "remedy.okta.reassign_user"
OKTA_UPDATE = "remedy.okta.update_user"
OKTA_REPUSH = "remedy.okta.repush_group"
AZURE_USER = "remedy.azure.provision_user"
AZURE_GROUP = "remedy.azure.provision_group"
ASTRO_DEACTIVATE = "remedy.astro.deactivate_user"
ASTRO_REACTIVATE = "remedy.astro.reactivate_user"
ASTRO_DELETE = "remedy.astro.delete_user"
ASTRO_RENAME = "remedy.astro.rename_team"
MANUAL = "remedy.manual"
# More members than this and on-demand provisioning (5 members per call, 5 calls per 10 s) would take minutes.
MAX_ON_DEMAND_GROUP_MEMBERS = 25

# Execution order: clean-up in Astro, then users, then groups; manual steps are listed last.
_STAGE = {ASTRO_DELETE: 0, ASTRO_DEACTIVATE: 0, ASTRO_REACTIVATE: 0, ASTRO_RENAME: 0, OKTA_REASSIGN: 1, OKTA_UPDATE: 1,
          AZURE_USER: 1, OKTA_REPUSH: 2, AZURE_GROUP: 2, MANUAL: 3}
_ASTRO_CHANGES = (ASTRO_DELETE, ASTRO_DEACTIVATE, ASTRO_REACTIVATE, ASTRO_RENAME)


class _Builder:
    def __init__(self, idp: str) -> None:
        self.plan = Plan(provider=f"{idp} drift remedies")
        self._by_key: dict[tuple[str, str], Change] = {}

    def add(self, action: Action, resource: str, key: str, detail: str, finding: Finding, **data: Any) -> Change:
        """One change per (resource, subject); a second finding for the same subject joins the first (its lists
        merged into the first's data: a detail built from them is the caller's to rebuild). Returns the change."""
        slot = (resource, fold(key))  # two accounts SCIM tells apart are two changes
        existing = self._by_key.get(slot)
        if existing is not None:
            existing.data["findings"].append(finding.id)
            for name, value in data.items():
                if isinstance(value, list):
                    existing.data.setdefault(name, [])
                    existing.data[name] += [v for v in value if v not in existing.data[name]]
            return existing
        change = Change(action, resource, key, detail=detail, data={"findings": [finding.id], **data})
        if action is Action.UPDATE:
            change.before, change.after = data.get("before"), data.get("after")
        self._by_key[slot] = change
        self.plan.changes.append(change)
        return change

    def has(self, resource: str, key: str) -> bool:
        return (resource, fold(key)) in self._by_key

    def done(self) -> Plan:
        self.plan.changes.sort(key=lambda c: (_STAGE[c.resource], c.key.casefold()))
        return self.plan


def plan_remedies(idp: str, findings: list[Finding], *, delete_orphans: bool = False,
                  group_sizes: dict[str, int] | None = None) -> Plan:
    """What `drift --fix` would do about `findings` of one IdP. Pure: decides, never calls anything.

    `group_sizes` (IdP group name -> member count) lets Entra remedies skip on-demand for groups too big for it.
    """
    b = _Builder(idp)
    sizes = {k.casefold(): v for k, v in (group_sizes or {}).items()}
    for f in findings:
        if f.kind is Kind.TEAM_ROLES_MISMATCH:
            continue  # access templates: connector.access re-applies role sets itself
        if f.kind is Kind.TEAM_RENAMED and f.team and f.astro_id:
            # Both IdPs provision into the Team by its id (Okta's push mapping, Entra's escrow): the name is put
            # back in Astro, never a Team created beside it. Before the groups' remedies (stage 0), which find
            # the Team by its name.
            b.add(Action.UPDATE, ASTRO_RENAME, f.team, f"rename the Team {f.actual!r} back to {f.team!r} (SCIM "
                  "PATCH replace displayName; its members and roles stay)", f, astro_id=f.astro_id, name=f.team,
                  before=f.actual, after=f.team)
            continue
        if idp == "okta":
            _okta(b, f, delete_orphans)
        else:
            _azure(b, f, delete_orphans, sizes)
    return b.done()


def _orphan(b: _Builder, f: Finding, delete_orphans: bool) -> None:
    if f.unverified:  # never asked about in the IdP: a deprovision that did not reach Astro looks the same
        b.add(Action.MANUAL, MANUAL, f.subject, f"not verified as an orphan, so not deleted: {f.remedy}", f)
    elif delete_orphans and f.astro_id:
        b.add(Action.DELETE, ASTRO_DELETE, f.subject, "delete the Astro account (SCIM DELETE /Users/{id})", f,
              astro_id=f.astro_id)
    else:
        b.add(Action.MANUAL, MANUAL, f.subject, "delete the account from Astro, or re-run with --delete-orphans", f)


def _deactivate(b: _Builder, f: Finding, delete_orphans: bool) -> None:
    # A disabled user is not an orphan: do what the IdP should have done (active=false), never delete, so that
    # re-enabling the user in the IdP brings the same Astro account back.
    if f.astro_id:
        b.add(Action.UPDATE, ASTRO_DEACTIVATE, f.subject, "deactivate the Astro account (SCIM active=false)", f,
              astro_id=f.astro_id, before=True, after=False)


def _reactivate(b: _Builder, f: Finding) -> None:
    # Okta reactivates a user with a PATCH replacing `active` with true, the operation it deactivates with (Okta
    # SCIM 2.0 reference, "Update a specific User (PATCH)", pathless there; tests/data/fidelity/
    # okta-scim-doc-examples.json, activate-derived). AstroScimClient.set_active sends it with path "active".
    b.add(Action.UPDATE, ASTRO_REACTIVATE, f.subject, "reactivate the Astro account (SCIM active=true)", f,
          astro_id=f.astro_id, before=False, after=True)


def _okta(b: _Builder, f: Finding, delete_orphans: bool) -> None:
    repush = "re-push the group (Push now workaround: mapping INACTIVE then ACTIVE), then verify the Team"
    if f.kind is Kind.ORPHANED:
        _orphan(b, f, delete_orphans)
    elif f.kind is Kind.DEACTIVATION_NOT_PROPAGATED:
        _deactivate(b, f, delete_orphans)
    elif f.kind is Kind.USER_MISSING and f.user:
        b.add(Action.RUN, OKTA_REASSIGN, f.user, "remove and re-assign the user in Okta", f, login=f.user)
        for team in f.teams:
            b.add(Action.RUN, OKTA_REPUSH, team, repush, f, group=team)
    elif f.kind is Kind.ATTRIBUTE_MISMATCH and f.attribute == "active" and f.expected is True and f.astro_id:
        _reactivate(b, f)
        for team in f.teams:  # Teams the deactivated account is out of: re-pushed once it is active again
            b.add(Action.RUN, OKTA_REPUSH, team, repush, f, group=team)
    elif f.kind is Kind.ATTRIBUTE_MISMATCH and f.user and b.has(OKTA_REASSIGN, f.user):
        # the user is re-assigned anyway (findings come sorted, user_missing first), which sends every attribute
        b.add(Action.RUN, OKTA_REASSIGN, f.user, "remove and re-assign the user in Okta", f, login=f.user)
    elif f.kind is Kind.ATTRIBUTE_MISMATCH and f.user:
        b.add(Action.RUN, OKTA_UPDATE, f.user, "update the app user in Okta, which pushes its mapped profile to "
              "Astro (the account stays active)", f, login=f.user)
    elif f.kind is Kind.TEAM_MISSING and f.team:
        relink = ("re-push the group (a Team renamed in Astro comes back under its name); if the Team is gone, "
                  "unlink the pushed group (deleteTargetGroup=false) and push it again, which creates the Team "
                  "(Push now cannot: the mapping still targets the missing Team)")
        b.add(Action.RUN, OKTA_REPUSH, f.team, relink, f, group=f.team,
              relink_group_ids=[f.idp_id] if f.idp_id else [])
    elif f.kind in (Kind.MEMBERSHIP_MISSING, Kind.MEMBERSHIP_EXTRA, Kind.ATTRIBUTE_MISMATCH) and f.team:
        b.add(Action.RUN, OKTA_REPUSH, f.team, repush, f, group=f.team)
    elif f.kind is Kind.IDP_ERROR and f.issue_kind in ("okta.push_error",):
        b.add(Action.RUN, OKTA_REPUSH, f.team or f.subject, repush, f, group=f.team or f.subject)
    elif f.kind is Kind.IDP_ERROR and f.issue_kind in ("okta.user_error",):
        b.add(Action.RUN, OKTA_REASSIGN, f.user or f.subject, "remove and re-assign the user in Okta", f,
              login=f.user or f.subject)
    else:
        b.add(Action.MANUAL, MANUAL, f.subject, f.remedy, f)


def _azure_group(b: _Builder, f: Finding, team: str, sizes: dict[str, int], *, subject: str | None = None,
                 add_users: list[str] | None = None, remove_ids: list[str] | None = None) -> None:
    size = sizes.get(team.casefold())
    on_demand = size is None or size <= MAX_ON_DEMAND_GROUP_MEMBERS
    if on_demand:
        detail = "provision the group on demand, then check the Team in Astro"
    else:
        detail = (f"the group has {size} members, too many for on-demand provisioning: fix the Team's members in "
                  "Astro as Entra's group has them (SCIM PATCH)")
    change = b.add(Action.RUN, AZURE_GROUP, team, detail, f, subject=subject or team, team=team,
                   on_demand=on_demand, add_users=list(add_users or []), remove_ids=list(remove_ids or []))
    # Counted from the change's data, every finding about this Team merged in: what --yes acts on.
    adds, removes = len(change.data["add_users"]), len(change.data["remove_ids"])
    if adds or removes:
        change.detail = f"{detail} (members to add: {adds}, to remove: {removes})"


def _azure(b: _Builder, f: Finding, delete_orphans: bool, sizes: dict[str, int]) -> None:
    user_detail = "provision the user on demand"
    if f.kind is Kind.ORPHANED:
        _orphan(b, f, delete_orphans)
    elif f.kind is Kind.DEACTIVATION_NOT_PROPAGATED:
        # Entra deprovisions a disabled user when asked on demand (PATCH active=false), as the FAQ says.
        b.add(Action.RUN, AZURE_USER, f.subject, user_detail, f, subject=f.idp_id or f.subject)
    elif f.kind in (Kind.USER_MISSING, Kind.ATTRIBUTE_MISMATCH) and f.user:
        b.add(Action.RUN, AZURE_USER, f.user, user_detail, f, subject=f.idp_id or f.user)
        for team, gid in zip(f.teams, f.team_ids or (None,) * len(f.teams), strict=True):
            # the finding's idp_id is the user's: the group by its own id (by name, a same-named group in the
            # tenant made the lookup ambiguous and the remedy failed)
            _azure_group(b, f, team, sizes, subject=gid, add_users=[f.user])
    elif f.kind is Kind.MEMBERSHIP_MISSING and f.team and f.user:
        _azure_group(b, f, f.team, sizes, subject=f.idp_id, add_users=[f.user])
    elif f.kind is Kind.MEMBERSHIP_EXTRA and f.team and f.astro_id:
        _azure_group(b, f, f.team, sizes, subject=f.idp_id, remove_ids=[f.astro_id])
    elif f.kind in (Kind.TEAM_MISSING, Kind.ATTRIBUTE_MISMATCH) and f.team:
        _azure_group(b, f, f.team, sizes, subject=f.idp_id)
    elif f.kind is Kind.IDP_ERROR and f.user:
        b.add(Action.RUN, AZURE_USER, f.user, user_detail, f, subject=f.idp_id or f.user)
    elif f.kind is Kind.IDP_ERROR and f.team and f.issue_kind == "entra.failed_export":
        _azure_group(b, f, f.team, sizes, subject=f.idp_id)
    else:
        steps = f.remedy
        b.add(Action.MANUAL, MANUAL, f.subject, _manual_title(steps), f, steps=steps)


def _manual_title(steps: str) -> str:
    """The remedy's lead-in before its steps ('fix X: step 1, step 2'): the text before the first colon outside
    quotes and parentheses, or all of it ("run 'apply' (starts it; by hand: A > B)" is not cut mid-phrase)."""
    depth, quote = 0, ""
    for i, ch in enumerate(steps):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(depth - 1, 0)
        elif ch == ":" and depth == 0:
            return steps[:i]
    return steps


def check_limits(plan: Plan, *, astro_users: int, safety: SafetyConfig, force: bool) -> None:
    """Refuse to delete more than min(fraction x Astro users, count) accounts without --force (UnsafePlan)."""
    plan.check_safety(existing=astro_users, max_fraction=safety.max_delete_fraction,
                      max_count=safety.max_delete_count, force=force)


@dataclass
class Outcome:
    change: Change
    ok: bool
    message: str


Report = Callable[[Outcome], None]


def execute(plan: Plan, *, provider: AuditTarget | None, astro: AstroConfig, report: Report | None = None,
            policy: RetryPolicy = DEFAULT_POLICY) -> list[Outcome]:
    """Carry out every non-manual change. A failed change is reported and the rest still run.

    `provider` is the IdP the findings came from (None: only Astro-side changes can run); a change needing a
    remedy it does not offer fails with a message saying so.
    """
    remedies = provider.remedies if provider else None
    on_demand = provider.on_demand if provider else None
    outcomes: list[Outcome] = []

    def done(o: Outcome) -> None:
        outcomes.append(o)
        if report:
            report(o)

    astro_changes = [c for c in plan.changes if c.resource in _ASTRO_CHANGES]
    if astro_changes:
        for o in run_sync(astro, lambda scim: _astro_changes(scim, astro_changes), timeout=30.0, policy=policy):
            done(o)
    # Users first, side by side (the plan puts them before groups: a group is re-pushed once its members are back),
    # reported in the plan's order as they end.
    for resource in (OKTA_REASSIGN, OKTA_UPDATE):
        changes = [c for c in plan.changes if c.resource == resource]
        if not changes:
            continue
        if remedies is None:
            for c in changes:
                done(_unsupported(c, provider))
            continue
        batch = remedies.reassign_users if resource == OKTA_REASSIGN else remedies.update_users
        in_order = _InOrder(changes, done)
        try:
            batch([str(c.data["login"]) for c in changes], in_order.ended)
        except ConnectorError as exc:  # the batch could not start (no client, no app): every one of them failed
            in_order.fail_rest(str(exc))
        except BaseException:
            in_order.flush()  # interrupted (Ctrl-C): what ended after one still running is not lost
            raise
    for c in plan.changes:
        if c.resource == OKTA_REPUSH:
            done(_unsupported(c, provider) if remedies is None else _repush(remedies, c))
    azure = [c for c in plan.changes if c.resource in (AZURE_USER, AZURE_GROUP)]
    if azure:
        for o in _on_demand(on_demand, provider, azure, astro, policy):
            done(o)
    return outcomes


def _unsupported(change: Change, provider: AuditTarget | None) -> Outcome:
    idp = provider.idp if provider else "no identity provider given"
    return Outcome(change, False, f"cannot run {change.resource}: {idp} offers no such remedy")


class _InOrder:
    """Outcomes of changes carried out side by side, handed on in the changes' order as soon as every earlier one
    has ended (the report reads the same from run to run, and progress still moves as they end)."""

    def __init__(self, changes: list[Change], done: Callable[[Outcome], None]) -> None:
        self.changes = changes
        self.done = done
        self.ended_at: dict[int, Outcome] = {}
        self.next = 0

    def ended(self, i: int, result: str | ConnectorError) -> None:
        change = self.changes[i]
        ok = not isinstance(result, ConnectorError)
        self.ended_at[i] = Outcome(change, ok, str(result))
        while self.next in self.ended_at:
            self.done(self.ended_at.pop(self.next))
            self.next += 1

    def flush(self) -> None:
        """Hand on the outcomes held for an earlier change that will not end (an interruption), in order."""
        for i in sorted(self.ended_at):
            self.done(self.ended_at.pop(i))

    def fail_rest(self, why: str) -> None:
        for i in range(len(self.changes)):
            if i >= self.next and i not in self.ended_at:
                self.ended(i, ConnectorError(why))


def _repush(remedies: Remedies, change: Change) -> Outcome:
    try:
        group_ids = change.data.get("relink_group_ids") or []
        if group_ids:
            state = remedies.relink_group(change.data["group"], group_ids=group_ids)
        else:
            state = remedies.repush_group(change.data["group"])
        text = state.result if state.failed_halfway else \
            ("unlinked and pushed again: " if group_ids and not state.renamed_back else "") + (state.result or "pushed")
    except ConnectorError as exc:
        return Outcome(change, False, str(exc))
    return Outcome(change, state.verified is not False and not state.unread, text)


def _on_demand(on_demand: ProvisionOnDemand | None, provider: AuditTarget | None, changes: list[Change],
               astro: AstroConfig, policy: RetryPolicy) -> list[Outcome]:
    """Provision on demand (the provider paces Entra's 5-calls-per-10-s limit), then check Teams in Astro."""
    out: list[Outcome] = []
    for c in changes:
        kind = "users" if c.resource == AZURE_USER else "groups"
        texts: list[str] = []
        ok = True
        if kind == "users" or c.data.get("on_demand", True):
            if on_demand is None:
                out.append(_unsupported(c, provider))
                continue
            try:
                subject = [str(c.data["subject"])]
                results = (on_demand.provision_on_demand(users=subject) if kind == "users"
                           else on_demand.provision_on_demand(groups=subject))
            except ConnectorError as exc:
                out.append(Outcome(c, False, str(exc)))
                continue
            failed = [r for r in results if r.failed]
            ok = not failed
            texts.append(_summarise(results) or "provisioned on demand")
        member_work = bool(c.data.get("add_users") or c.data.get("remove_ids"))
        if kind == "groups" and not c.data.get("on_demand", True) and not member_work:
            # Too big for on-demand and no member to patch (the Team missing, or its name): nothing here can do
            # it, and an empty "done" said otherwise.
            out.append(Outcome(c, False, "not done: the group is too big for on-demand provisioning and Astro has "
                                         "no member of it to patch; Entra's next cycle provisions it (or, in the "
                                         "Entra admin center, the app's Provisioning > Restart provisioning)"))
            continue
        if kind == "groups" and ok and member_work:
            try:
                fix = partial(_fix_team_members, team=c.data["team"], add_users=c.data.get("add_users", []),
                              remove_ids=c.data.get("remove_ids", []))
                texts.append(run_sync(astro, fix, timeout=30.0, policy=policy))
            except ConnectorError as exc:
                ok = False
                texts.append(str(exc))
        out.append(Outcome(c, ok, "; ".join(texts)))
    return out


def _summarise(results: Sequence[OnDemandOutcome]) -> str:
    """Entra's verdicts, short: each subject for one or two, else counted per object type and outcome."""
    if len(results) <= 2:
        return "; ".join(r.describe() for r in results)
    counts: dict[str, int] = {}
    for r in results:
        line = f"{r.object_type}: {r.action or 'no action'}, {r.status}" + (f" ({r.reason})" if r.reason else "")
        counts[line] = counts.get(line, 0) + 1
    return "on demand: " + "; ".join(f"{n} x {line}" for line, n in counts.items())


async def _fix_team_members(scim: AstroScimClient, team: str, add_users: list[str], remove_ids: list[str]) -> str:
    """Make the named members right in the Astro Team (after on-demand provisioning, which may skip it)."""
    group = await scim.find_group(team, any_case=True)  # reconcile matched it so ("ANALYTICS" for "Analytics")
    if group is None:
        raise RemoteError(f"no Team named {team!r} in Astro", service=ASTRO_SCIM, endpoint=scim.url("/Groups"))
    members = {m.get("value") for m in group.get("members") or [] if isinstance(m, dict)}
    users = await scim.find_users(add_users)
    missing = [u for u in add_users if u.casefold() not in users]
    if missing:
        raise RemoteError(f"no Astro user {missing[0]!r} to add to {team!r}", service=ASTRO_SCIM,
                          endpoint=scim.url("/Users"))
    to_add = list(dict.fromkeys(str(users[u.casefold()]["id"]) for u in add_users
                                if users[u.casefold()]["id"] not in members))
    to_remove = [i for i in remove_ids if i in members]
    if not to_add and not to_remove:
        return f"Team {team!r} members are right in Astro"
    await scim.set_members(str(group["id"]), add=to_add, remove=to_remove)
    return (f"Entra skipped the Team (it tracks what it exported, not Astro's state): patched {team!r} in Astro "
            f"directly (+{len(to_add)} -{len(to_remove)} member(s))")


async def _astro_changes(scim: AstroScimClient, changes: list[Change]) -> list[Outcome]:
    """SCIM DELETE / PATCH active=false|true on Astro users, PATCH displayName on a renamed Team, a few at a time;
    a 404 on delete means it is already gone."""
    sem = asyncio.Semaphore(4)

    async def one(c: Change) -> Outcome:
        user_id = str(c.data["astro_id"])
        try:
            async with sem:
                if c.resource == ASTRO_RENAME:
                    await scim.rename_group(user_id, str(c.data["name"]))
                    return Outcome(c, True, f"renamed to {c.data['name']!r}")
                if c.resource == ASTRO_DELETE:
                    return Outcome(c, True, "deleted" if await scim.delete_user(user_id) else "already gone")
                if c.resource == ASTRO_REACTIVATE:
                    await scim.set_active(user_id, True)
                    return Outcome(c, True, "reactivated (active=true)")
                await scim.set_active(user_id, False)
                return Outcome(c, True, "deactivated (active=false)")
        except ConnectorError as exc:
            return Outcome(c, False, str(exc))

    return list(await asyncio.gather(*(one(c) for c in changes)))
