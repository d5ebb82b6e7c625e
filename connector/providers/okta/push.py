"""Okta Group Push: each group's push mapping and its Team in Astro, compared; create, activate or re-push it, and
verify the result in Astro. Okta has no "Push now" API: a re-push sets the mapping INACTIVE then ACTIVE (the
documented workaround), which pushes the group's full membership again."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from connector.errors import ConfigError, ConnectorError, ManualStepRequired, RemoteError
from connector.providers.base import PushReport, PushState
from connector.providers.okta import plan as P
from connector.providers.okta.astro_check import AstroReader, poll
from connector.providers.okta.client import OktaClient
from connector.providers.okta.org import OktaOrg, integration_token_steps, refused_by_astro
from connector.support.progress import Count

PUSH_NOW_STEPS = (
    "open the Astro app in the Okta Admin Console > Push Groups > click the Push Status value of the group > "
    "Push now"
)
VERIFY_TIMEOUT = 15.0
T = TypeVar("T")


class OktaGroupPush(OktaOrg):
    """The GroupPush capability (push-groups), and the re-push the drift remedies use."""

    def push_groups(self, names: list[str] | None, yes: bool, progress: Count | None = None) -> PushReport:
        """Inspect the groups' push state against Astro; with `yes`, create/activate/re-push and verify."""
        # A name given twice is one group: pushed twice at once, the two re-links raced each other.
        unique = list(dict.fromkeys(names or self.okta.push_groups))
        return self._call(lambda c: self._push_groups(c, unique, yes, from_config=not names, progress=progress))

    def repush_group(self, name: str) -> PushState:
        """The drift fixer's remedy: re-push one group (the INACTIVE/ACTIVE workaround) and verify it in Astro."""
        async def run(c: OktaClient) -> PushState:
            report = await self._push_groups(c, [name], True, force_repush=True, from_config=False)
            return report.groups[0]

        return self._call(run)

    def relink_group(self, name: str, *, group_ids: Sequence[str] | None = None) -> PushState:
        """The drift fixer's remedy for a Team missing in Astro: Push now cannot recreate it (the mapping still
        targets the deleted Team), so delete the group's push mappings, keeping the target (deleteTargetGroup=false),
        then push the group again, which creates the Team, and verify it in Astro. `group_ids`: the Okta group ids
        whose mappings to delete, when the caller knows them (else the group named `name`)."""
        async def run(c: OktaClient) -> PushState:
            app_id = str((await self._find_app(c))["id"])
            ids = list(group_ids or [g.id for g in await self._resolve_groups(c, [name], None)])
            async with AstroReader(self.astro) as astro:
                for group_id in ids:
                    mappings = await self._push_mappings(c, app_id, source_group_id=group_id)
                    if mappings and await self._renamed_back(c, astro, app_id, str(mappings[0]["id"]), name):
                        # The Team was renamed, not deleted: it is back, nothing to unlink. Check it (and act on
                        # its members if they still differ).
                        state = (await self._push_groups(c, [name], True, from_config=False)).groups[0]
                        state.renamed_back = True
                        if state.action is None:
                            state.verified = True
                            state.result = (f"re-pushed: the Team was back under its name, verified in Astro: Team "
                                            f"{name!r} has the {len(state.expected)} expected member(s)")
                        return state
            for group_id in ids:
                for mapping in await self._push_mappings(c, app_id, source_group_id=group_id):
                    await self._delete_push(c, app_id, str(mapping["id"]))
            report = await self._push_groups(c, [name], True, force_repush=True, from_config=False)
            state = report.groups[0]
            if state.failure:  # the mappings are gone and no new one was made: Okta no longer pushes the group
                state.left_state = f"the push mapping for {name!r} was deleted and not re-created"
                state.result = (f"{state.left_state}: push the group again in the Admin Console (Push Groups) or "
                                f"with: astro-scim push-groups {shlex.quote(name)} --yes (after {state.failure})")
            return state

        return self._call(run)

    async def _push_groups(self, c: OktaClient, names: list[str], yes: bool, *, force_repush: bool = False,
                           from_config: bool = True, progress: Count | None = None) -> PushReport:
        if not names:
            raise ConfigError("no groups to push: name them, or list them in okta.push_groups",
                              location=self._loc("push_groups"))
        app = await self._find_app(c)
        app_id = str(app["id"])
        groups = await self._resolve_groups(c, names, "push_groups" if from_config else None)
        app_users = await self._app_user_names(c, app_id)
        count = progress or (lambda done, total: None)
        async with AstroReader(self.astro) as astro:
            inspected = _Tally(count, len(groups))
            states = list(await asyncio.gather(*(inspected(self._push_state(c, astro, app_id, g, app_users))
                                                 for g in groups)))
            for s in states:
                if force_repush and s.action is None and s.mapping_id:
                    s.action, s.reason = "repush", "re-push requested"
            report = PushReport(states, manual_steps=PUSH_NOW_STEPS)
            if not yes or not report.pending:
                return report
            await self._require_pushing(c, app)
            report.acted = True
            pending = report.pending
            pushed = _Tally(count, len(pending))
            # Each group's outcome on its own: one group's error must not cancel the others mid-way (a re-push
            # cancelled between INACTIVE and ACTIVE would leave its mapping INACTIVE, unreported).
            outcomes = await asyncio.gather(*(pushed(self._push_one(c, astro, app_id, s)) for s in pending),
                                            return_exceptions=True)
            for s, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, ConnectorError):
                    s.verified, s.failure = False, str(outcome)
                    s.result = f"failed: {outcome}"
                elif isinstance(outcome, BaseException):
                    raise outcome
            if any(s.refused for s in pending):  # Push now would meet the same 401: the token is the fix
                steps = integration_token_steps(str(app.get("label") or app_id), self.astro.organization_id)
                report.manual_steps = f"{steps}; then re-run 'astro-scim push-groups --yes'"
        return report


    async def _require_pushing(self, c: OktaClient, app: dict[str, Any]) -> None:
        """Refuse to act (nothing changed) when Okta cannot push through the app: its mapping writes would fail
        one by one (400 "Group Push is not enabled"), or be accepted and push nothing, and no re-run fixes that."""
        app_id, label = str(app["id"]), str(app.get("label") or app["id"])
        if app.get("status") != "ACTIVE":
            raise ManualStepRequired(
                f"okta: app {label!r} is {app.get('status') or 'not active'}: Okta pushes nothing through it; "
                "nothing was changed", hint="run 'astro-scim apply --idp okta' (activates it), then push-groups again")
        enabled, _, _ = await self._provisioning(c, app_id)
        if not enabled:
            raise ManualStepRequired(
                f"okta: provisioning is not enabled for app {label!r}: Okta pushes no group until it is; nothing "
                "was changed", hint="do the Admin Console step 'astro-scim plan' lists (Provisioning > Configure API "
                                    "Integration), then 'astro-scim apply --idp okta', then push-groups again")

    async def _push_state(self, c: OktaClient, astro: AstroReader, app_id: str, group: P.OktaGroup,
                          app_users: dict[str, str]) -> PushState:
        mappings, expected, in_astro = await asyncio.gather(
            self._push_mappings(c, app_id, source_group_id=group.id),
            self._expected_members(c, group.id, app_users),
            astro.team_members(group.name),
        )
        m = mappings[0] if mappings else None
        state = PushState(
            name=group.name, group_id=group.id, mapping_id=str(m["id"]) if m else None,
            status=str(m.get("status")) if m else None, error=(m or {}).get("errorSummary") or None,
            expected=expected, in_astro=in_astro,
        )
        decide(state)
        return state

    async def _renamed_back(self, c: OktaClient, astro: AstroReader, app_id: str, mapping_id: str,
                            name: str) -> bool:
        """Whether a re-push brought the group's Team back under its name. Okta's push mapping targets the Team by
        the id Okta recorded (the mapping's targetGroupId stands for it) and sends the group's name with every push
        (Okta SCIM 2.0 reference, "Update specific Group name": the rename op leads each group PATCH), so a Team
        renamed in Astro is renamed back by a push; only a Team deleted in Astro needs the mapping unlinked and
        pushed afresh, which creates a Team (unlinking a renamed one would leave it beside a duplicate)."""
        try:
            await self._set_push_status(c, app_id, mapping_id, "INACTIVE")
            await self._reactivate(c, app_id, mapping_id)
        except RemoteError:
            return False  # the relink that follows deletes the mapping whatever state this left it in

        async def back() -> bool:
            return await astro.team_members(name) is not None

        # Okta pushes asynchronously: a Team looked up at once may not be renamed back yet, and taking it for
        # deleted would unlink the mapping and push afresh, the duplicate this check exists to avoid. So it is
        # awaited as long as a push is verified; a deleted Team costs that wait before the relink.
        return await poll(back, timeout=VERIFY_TIMEOUT, interval=1.0)

    async def _push_one(self, c: OktaClient, astro: AstroReader, app_id: str, s: PushState) -> None:
        s.in_astro_before = s.in_astro
        if s.relink and s.mapping_id and await self._renamed_back(c, astro, app_id, s.mapping_id, s.name):
            s.relink, s.renamed_back = False, True  # re-pushed: the Team is back under its name (verified below)
        elif s.relink and s.mapping_id:
            # The Team is gone from Astro: the mapping still targets it, so re-activating (or Push now) only
            # answers Astro's 404. Unlink it (the drift remedy's relink: deleteTargetGroup=false) and push afresh.
            for mapping in await self._push_mappings(c, app_id, source_group_id=s.group_id):
                await self._delete_push(c, app_id, str(mapping["id"]))
            try:
                await self._ensure_push(c, app_id, s.group_id, s.name)
            except RemoteError as exc:
                s.verified = False
                s.left_state = f"the push mapping for {s.name!r} was deleted and not re-created"
                s.result = (f"{s.left_state}: push the group again in the Admin Console (Push Groups) or with: "
                            f"astro-scim push-groups {shlex.quote(s.name)} --yes (after {exc})")
                return
        elif s.action == "create" or (s.action == "activate" and s.mapping_id is None):
            await self._ensure_push(c, app_id, s.group_id, s.name)
        elif s.action == "activate" and s.mapping_id:
            await self._set_push_status(c, app_id, s.mapping_id, "ACTIVE")
        elif s.action == "repush" and s.mapping_id:
            # The documented workaround for Push now (no API): deactivate, then activate, which pushes the group's
            # full membership again.
            not_deactivated: RemoteError | None = None
            try:
                await self._set_push_status(c, app_id, s.mapping_id, "INACTIVE")
            except RemoteError as exc:
                not_deactivated = exc  # Okta may have acted before the answer was lost: make sure it is ACTIVE
            try:
                await self._reactivate(c, app_id, s.mapping_id)
            except RemoteError as exc:
                s.verified = False
                # What it is left in is read back, not assumed: when the INACTIVE step failed too, the mapping
                # may never have left the state it had (ERROR, ACTIVE): nothing stranded, a failed request.
                now = await self._mapping_status(c, app_id, s.mapping_id)
                if not_deactivated is not None and now is not None and now != "INACTIVE":
                    s.failure = str(exc)
                    s.result = f"failed: {exc} (the push mapping is still {now}: neither write went through)"
                    return
                # Okta no longer pushes the group: say so, and how to undo it, rather than fail the whole run.
                s.left_state = (f"the push mapping for {s.name!r} was left INACTIVE" if now is not None else
                                f"the push mapping for {s.name!r} may have been left INACTIVE (it could not be "
                                "read back)")
                s.result = (f"{s.left_state}: re-activate it in the Admin Console or with: astro-scim push-groups "
                            f"{shlex.quote(s.name)} --yes (after {exc})")
                return
            if not_deactivated is not None:
                raise not_deactivated  # ACTIVE again (or never left it): the re-push itself did not happen

        async def matches() -> bool:
            s.in_astro = await astro.team_members(s.name)
            return s.in_astro is not None and s.in_astro == s.expected

        try:
            s.verified = await poll(matches, timeout=VERIFY_TIMEOUT)
        except ConnectorError as exc:
            # Okta acted; only the evidence is missing. Not verified, never "failed" (nothing says it failed) nor
            # a count of members no one read: the state before acting stands.
            s.verified, s.unread, s.in_astro = None, str(exc), s.in_astro_before
            s.result = f"done in Okta, not verified: Astro could not be read back: {exc}"
            return
        if s.verified:
            s.result = f"verified in Astro: Team {s.name!r} has the {len(s.expected)} expected member(s)"
            return
        s.result = "still out of sync in Astro: " + difference(s.expected, s.in_astro)
        # Why: Okta records Astro's answer on the mapping. A 401 is the token in the app's integration, which no
        # re-push (nor Push now) gets past.
        try:
            mappings = await self._push_mappings(c, app_id, source_group_id=s.group_id)
        except ConnectorError:
            return  # the verdict stands (not in Astro); only the reason is unknown
        error = str((mappings[0] if mappings else {}).get("errorSummary") or "")
        if refused_by_astro(error):
            s.refused = True
            s.result += (f"; Okta's push was refused by Astro ({error}): Astro refuses the token in the app's API "
                         "integration")


    async def _mapping_status(self, c: OktaClient, app_id: str, mapping_id: str) -> str | None:
        """The mapping's status as Okta holds it now; None when it cannot be read."""
        try:
            mapping = await c.get(f"/api/v1/apps/{app_id}/group-push/mappings/{mapping_id}")
        except RemoteError:
            return None
        return str((mapping or {}).get("status") or "") or None

    async def _reactivate(self, c: OktaClient, app_id: str, mapping_id: str) -> None:
        """Set the mapping ACTIVE again (retried by the policy); when that fails, read it back (the answer may have
        been lost after Okta acted) and try once more."""
        try:
            await self._set_push_status(c, app_id, mapping_id, "ACTIVE")
        except RemoteError:
            try:
                mapping = await c.get(f"/api/v1/apps/{app_id}/group-push/mappings/{mapping_id}")
            except RemoteError:
                mapping = {}
            if mapping.get("status") != "ACTIVE":
                await self._set_push_status(c, app_id, mapping_id, "ACTIVE")


class _Tally:
    """Counts the pieces of concurrent work that finished, for `progress` (one event loop: no lock needed)."""

    def __init__(self, count: Count, total: int) -> None:
        self.count, self.total, self.done = count, total, 0
        count(0, total)

    async def __call__(self, work: Awaitable[T]) -> T:
        result = await work
        self.done += 1
        self.count(self.done, self.total)
        return result


def difference(expected: set[str], actual: set[str] | None) -> str:
    if actual is None:
        return "the Team does not exist"
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")
    if extra:
        parts.append(f"{len(extra)} extra ({', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''})")
    return "; ".join(parts) or "in sync"


def decide(s: PushState) -> None:
    """What push-groups should do for a group, from its mapping and what Astro holds."""
    if s.mapping_id is None:
        s.action, s.reason = "create", "no push mapping"
    elif s.status == "INACTIVE":
        s.action, s.reason = "activate", "the push mapping is INACTIVE"
    elif s.status == "ERROR" or s.error:
        s.action, s.reason = "repush", f"push mapping in ERROR: {s.error or 'no summary'}"
    elif s.in_astro is None or s.in_astro != s.expected:
        s.action, s.reason = "repush", "out of sync with Astro: " + difference(s.expected, s.in_astro)
    else:
        s.action, s.reason = None, f"in sync ({len(s.expected)} member(s))"
    # A mapping whose Team is gone from Astro: activating or re-pushing it targets the deleted Team.
    s.relink = s.action is not None and s.mapping_id is not None and s.in_astro is None
    if s.relink and "does not exist" not in s.reason:
        s.reason += "; its Team does not exist in Astro"
