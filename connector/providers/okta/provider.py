"""The Okta provider: plan/apply the Astro app's provisioning setup (the ConfigProvider hooks), composed with the
other Okta jobs into one class: health.py (test-connection, status), push.py (push-groups), view.py (the
audit's IdP view), remedies.py (drift --fix). The pure planning is plan.py; what they all read is org.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from connector.errors import ManualStepRequired, RemoteError
from connector.mapping.model import MappingFile
from connector.plan.model import Action, Change, Plan
from connector.providers.base import (
    BaseProvider,
    Check,
    Progress,
    direction_check,
    in_astro_checks,
    not_set_up,
    setup_checks,
)
from connector.providers.okta import plan as P
from connector.providers.okta.client import OktaClient
from connector.providers.okta.health import OktaHealth
from connector.providers.okta.org import (
    OUT_OF_SCOPE_APP_USER,
    app_user_name,
    integration_token_steps,
    refused_by_astro,
)
from connector.providers.okta.reads import iter_pages
from connector.providers.okta.remedies import OktaRemedies
from connector.providers.okta.view import OktaView
from connector.views import SetupGap

# signOnMode values that are single sign-on (the seed's first prerequisite); BOOKMARK, AUTO_LOGIN (SWA) and
# BASIC_AUTH are not: the Astro app was then added for provisioning only.
SSO_MODES = frozenset({"SAML_2_0", "SAML_1_1", "OPENID_CONNECT", "WS_FEDERATION"})


@dataclass
class OktaState:
    """What plan reads of the Okta org (populate)."""

    mapping: MappingFile
    app: dict[str, Any]
    enabled: bool  # provisioning (API integration) is on
    feature: dict[str, Any] | None  # the USER_PROVISIONING feature
    connection_status: str | None  # the connections API's answer while provisioning is off
    mapping_id: str | None  # the Okta user -> app user profile mapping
    properties: dict[str, Any]
    assign: list[P.OktaGroup]
    push: list[P.OktaGroup]
    assigned: list[dict[str, Any]]
    mappings: list[dict[str, Any]]  # group push mappings
    other_names: dict[str, str] = field(default_factory=dict)  # names of pushed groups not in the config (--prune)

    @property
    def app_id(self) -> str:
        return str(self.app["id"])


class OktaProvider(OktaHealth, OktaView, OktaRemedies, BaseProvider[OktaClient, OktaState, str]):
    """ConfigProvider, Health, IdPView, Remedies and GroupPush for Okta (the apply context is the app id)."""

    # -- plan --------------------------------------------------------------------------------------------------

    async def _populate(self, c: OktaClient) -> OktaState:
        mapping = self.mapping_file()
        app = await self._find_app(c)
        app_id = str(app["id"])
        (enabled, feature, conn_status), (mapping_id, properties), assign, push, assigned, mappings = (
            await asyncio.gather(
                self._provisioning(c, app_id),
                self._profile_mapping(c, app_id),
                self._resolve_groups(c, self.okta.assign_groups, "assign_groups"),
                self._resolve_groups(c, self.okta.push_groups, "push_groups"),
                c.pages(f"/api/v1/apps/{app_id}/groups", {"limit": 200}),
                self._push_mappings_or_empty(c, app_id),
            )
        )
        state = OktaState(mapping, app, enabled, feature, conn_status, mapping_id, properties, assign, push,
                          assigned, mappings)
        wanted_ids = {g.id for g in push}
        others = [str(m.get("sourceGroupId")) for m in mappings if str(m.get("sourceGroupId")) not in wanted_ids]
        if self.prune and others:
            state.other_names = await self._group_names(c, others)
        return state

    def _notes(self, state: OktaState) -> list[str]:
        notes: list[str] = []
        if (note := P.username_note(state.app)) is not None:
            notes.append(note)
        if (sso := self._sso_gap(state.app)) is not None:
            notes.append(f"SSO: {sso.message}; {sso.remedy}")
        both = {g.name for g in state.assign} & {g.name for g in state.push}
        if both:
            notes.append(
                "Okta does not support using the same group for assignment and Group Push: "
                + ", ".join(sorted(both))
            )
        return notes

    def _changes(self, state: OktaState) -> list[Change]:
        app, app_id = state.app, state.app_id
        changes: list[Change] = []
        if (status_change := P.app_status_change(app)) is not None:
            changes.append(status_change)
        if not state.enabled:
            changes.append(P.provisioning_change(
                integration=self.okta.integration, app_label=str(app.get("label")), app_id=app_id, astro=self.astro,
                config_file=self.cfg.file, connection_status=state.connection_status,
            ))
        elif (org_change := P.organization_change(app=app, astro=self.astro, config_file=self.cfg.file)) is not None:
            changes.append(org_change)
        if (fc := P.feature_change(state.feature, provisioning_enabled=state.enabled)) is not None:
            changes.append(fc)
        desired_props = P.desired_properties(state.mapping, self.attribute_for)
        changes += P.property_changes(desired_props, state.properties, mapping_id=state.mapping_id)
        changes += P.assignment_changes(state.assign, {str(a.get("id")) for a in state.assigned})
        changes += P.push_changes(state.push, state.mappings, state.other_names, prune=self.prune)
        for change in changes:
            change.data.setdefault("app_id", app_id)
        return changes

    # -- setup audit (drift and status) -------------------------------------------------------------------------

    def _rerun(self, what: str) -> str:
        return f"run 'astro-scim apply --idp okta' ({what})"

    def _gap(self, change: Change) -> SetupGap | None:
        label = self.app_label
        where = f"Okta Admin Console > Applications > {label}"
        if change.resource == P.APP_STATUS:
            return SetupGap("provisioning_off", label, f"the app is {change.before}: Okta provisions nothing",
                            self._rerun(f"activates it; by hand: {where} > Activate"))
        if change.resource == P.PROVISIONING:
            steps = str(change.data.get("steps") or "")
            if change.before:  # the API integration points to another Astro organization
                return SetupGap("connection_broken", label, change.detail, steps)
            return SetupGap(
                # The kind says "not set up" wherever the gap is shown (status: "setup: not set up", drift's
                # kind column): the message says what is missing, or it read "not set up: Astro: not set up: ...".
                "not_set_up", label, "provisioning (the API integration) is not switched on",
                f"run 'astro-scim apply --idp okta'; it sets up what Okta's API can and stops at "
                f"the Admin Console step ({where} > Provisioning > Configure API Integration, SCIM URL "
                f"{self.astro.scim_url}, an Astro Organization API token)",
            )
        if change.resource == P.FEATURE:
            off = [k for k, v in (change.before or {}).items() if v != P.DESIRED_CAPABILITIES.get(k)]
            return SetupGap("provisioning_off", "To App features", f"not as the seed sets them: {', '.join(off)}",
                            self._rerun(f"sets Create Users, Update User Attributes, Deactivate Users on; by hand: "
                                        f"{where} > Provisioning > To App > Edit"))
        if change.resource == P.PROFILE_MAPPING:
            return SetupGap("mapping_not_applied", str(change.key), f"the app's attribute mapping differs from the "
                            f"mapping file: {change.detail}", self._rerun("updates the profile mapping"))
        if change.resource == P.GROUP_ASSIGNMENT:
            return SetupGap("group_not_provisioned", change.key, "in okta.assign_groups but not assigned to the "
                            "app: its members are not provisioned",
                            self._rerun(f"assigns it; by hand: {where} > Assignments > Assign to Groups"))
        if change.resource == P.PUSH_MAPPING and change.action is not Action.DELETE:
            why = ("its push mapping is INACTIVE" if change.action is Action.UPDATE
                   else "it has no push mapping (never pushed, or the mapping was deleted)")
            return SetupGap("group_not_provisioned", change.key, f"in okta.push_groups but {why}: no Team in Astro "
                            "follows it", self._rerun(f"pushes it; or 'astro-scim push-groups \"{change.key}\" --yes'"))
        return None

    @staticmethod
    def _sso_gap(app: dict[str, Any]) -> SetupGap | None:
        label = str(app.get("label") or app.get("id"))
        mode = str(app.get("signOnMode") or "")
        if mode in SSO_MODES:
            return None
        return SetupGap(
            "sso_missing", label, f"the app's sign-on mode is {mode or 'not set'}, not SAML or OIDC: users "
            "provisioned to Astro cannot sign in through Okta",
            f"set up SSO (the seed's prerequisite): Okta Admin Console > Applications > {label} > Sign On > SAML "
            "2.0, with the values Astro shows under Settings > Authentication > SSO",
            warning=True)

    async def _runtime_gaps(self, c: OktaClient, state: OktaState) -> list[SetupGap]:
        gaps: list[SetupGap] = []
        label = str(state.app.get("label") or state.app_id)
        if (sso := self._sso_gap(state.app)) is not None:
            gaps.append(sso)
        if not state.enabled:
            return gaps
        refused = [m for m in state.mappings if refused_by_astro(str(m.get("errorSummary") or ""))]
        in_scope: list[dict[str, Any]] = []
        async with aclosing(iter_pages(c, f"/api/v1/apps/{state.app_id}/users", {"limit": 500})) as pages:
            async for page in pages:
                got = [u for u in page if u.get("status") not in OUT_OF_SCOPE_APP_USER]
                in_scope += got
                if not refused and any(u.get("syncState") != "ERROR" or u.get("externalId") for u in got):
                    # One app user that is not failing (or reached Astro) settles it: not every user failed.
                    # The whole list is only needed to name the users a broken connection explains; the
                    # audit's view reads it anyway (reading it twice cost 40 requests of a 20,000-user audit).
                    break
        errors = [u for u in in_scope if u.get("syncState") == "ERROR"]
        every_user_failed = bool(in_scope) and len(errors) == len(in_scope) and not any(
            u.get("externalId") for u in in_scope)
        if refused or every_user_failed:
            names = {str(g.id): g.name for g in state.push}
            seen = (f"{len(errors)} app user(s) in ERROR"
                    + (f", {len(refused)} push mapping(s) in ERROR with Astro's 401" if refused else ""))
            gaps.append(SetupGap(
                "connection_broken", label,
                f"Astro refuses the token Okta holds for it ({seen}; none of them reached Astro)",
                f"{integration_token_steps(label, self.astro.organization_id)}. Then 'astro-scim drift --fix --yes' "
                "re-pushes users and groups.",
                explains=tuple([app_user_name(u) for u in errors]
                               + [names.get(str(m.get("sourceGroupId")), str(m.get("sourceGroupId")))
                                  for m in refused]),
            ))
        return gaps

    def setup_gaps(self) -> list[SetupGap]:
        # Reads only: over the audit's read client (no SDK to import for an API token: okta/reads.py).
        return self._reads(self._setup_gaps)

    def test_connection(self) -> list[Check]:
        """Both directions: ours (the Okta API token, astro.token) and Okta's (the token its API integration
        holds for Astro). Okta has no API to test the latter: Astro's 401s on its pushes and app users show it."""
        checks = super().test_connection()
        if any(c.ok is False for c in checks):
            return checks  # the other direction cannot be judged without reading Okta
        checks.append(direction_check(
            "Okta -> Astro (the token in the app's API integration)", self,
            unknown="no app user or push mapping in ERROR with Astro's 401 (Okta has no API to test it directly)",
            inferred=True))
        return checks

    def status(self) -> list[Check]:
        """Healthy only when the setup audit finds nothing blocking, the IdP's own state is healthy and the users
        in scope are in Astro (Okta records an app user as provisioned whatever Astro holds now)."""
        gaps = self.setup_gaps()
        checks = setup_checks(gaps)
        if not_set_up(gaps):
            return checks
        return [*checks, *super().status(), *in_astro_checks(self, self.astro)]

    def _existing(self, state: OktaState) -> int:
        return len(state.mappings)  # only push mappings are ever deleted (--prune)

    def _fingerprint(self, state: OktaState) -> dict[str, object]:
        # Push mappings keep their identity and status only: Okta stamps lastPush on every push, which no plan
        # reads. The mapping file is the config's (its fingerprint), not the org's.
        return {
            P.PROVISIONING: [state.app, state.enabled, state.connection_status],
            P.FEATURE: state.feature,
            P.PROFILE_MAPPING: [state.mapping_id, state.properties],
            "okta.groups": [[g.name, g.id] for g in (*state.assign, *state.push)],
            P.GROUP_ASSIGNMENT: sorted(str(a.get("id")) for a in state.assigned),
            P.PUSH_MAPPING: sorted(
                [str(m.get(k)) for k in ("id", "sourceGroupId", "status")] for m in state.mappings),
            "okta.other_groups": state.other_names,
        }

    # -- apply -------------------------------------------------------------------------------------------------

    async def _begin_apply(self, c: OktaClient, plan: Plan) -> str:
        return str((await self._find_app(c))["id"])

    async def _recheck_manual(self, c: OktaClient, app_id: str, change: Change) -> None:
        self._app = None  # re-read: settings.app shows what the Admin Console step configured
        app = await self._find_app(c)
        enabled, _, _ = await self._provisioning(c, app_id)
        wrong_org = P.organization_change(app=app, astro=self.astro, config_file=self.cfg.file)
        if not enabled or wrong_org is not None:
            what = "is not enabled" if not enabled else "points to another Astro organization"
            raise ManualStepRequired(
                f"okta: provisioning {what} for app {app.get('label')!r}: do the Admin Console step "
                "listed in the plan above, then re-run apply",
                steps=str(change.data.get("steps", "")),
            )

    async def _apply_batch(self, c: OktaClient, app_id: str, batch: list[Change], progress: Progress) -> int:
        kind = batch[0].resource
        if kind == P.APP_STATUS:
            await c.request("POST", f"/api/v1/apps/{app_id}/lifecycle/activate", body={})
            self._app = None  # its status changed
            progress(batch[0])
            return 1
        if kind == P.FEATURE:
            await self._apply_feature(c, app_id)
            progress(batch[0])
            return 1
        if kind == P.PROFILE_MAPPING:
            await self._apply_properties(c, app_id, batch)  # one POST for the whole batch
            for change in batch:
                progress(change)
            return len(batch)
        if kind == P.GROUP_ASSIGNMENT:
            return await self._each(batch, progress, lambda ch: self._assign_group(c, app_id, ch))
        if kind == P.PUSH_MAPPING:
            return await self._each(batch, progress, lambda ch: self._apply_push(c, app_id, ch))
        return await super()._apply_batch(c, app_id, batch, progress)  # refuses kinds plans never hold

    @staticmethod
    async def _each(batch: list[Change], progress: Progress, op: Callable[[Change], Awaitable[None]]) -> int:
        """Run independent changes concurrently (the client bounds concurrency); report each as it completes."""
        async def one(change: Change) -> None:
            await op(change)
            progress(change)

        results = await asyncio.gather(*(one(ch) for ch in batch), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return len(batch)

    async def _apply_feature(self, c: OktaClient, app_id: str) -> None:
        from okta.models.update_feature_for_application_request import UpdateFeatureForApplicationRequest

        body = UpdateFeatureForApplicationRequest.from_dict(P.capabilities_body())
        path = f"/api/v1/apps/{app_id}/features/{P.USER_PROVISIONING}"
        await c.call("PUT", path, lambda s: s.update_feature_for_application(app_id, P.USER_PROVISIONING, body))

    async def _apply_properties(self, c: OktaClient, app_id: str, batch: list[Change]) -> None:
        mapping_id = next((ch.data.get("mapping_id") for ch in batch if ch.data.get("mapping_id")), None)
        if mapping_id is None:  # planned before provisioning was on: the mapping exists now
            mapping_id, _ = await self._profile_mapping(c, app_id)
        if mapping_id is None:
            raise RemoteError(
                f"Okta has no profile mapping from Okta users to app {app_id}", service="okta",
                endpoint="GET /api/v1/mappings",
                hint="check that provisioning is enabled for the app (Provisioning tab) and re-run apply",
            )
        body = {"properties": {
            str(ch.data["attribute"]): {"expression": ch.data["expression"], "pushStatus": ch.data["pushStatus"]}
            for ch in batch
        }}
        # POST merges the given properties into the mapping (others stay), so it is safe to repeat. Raw request:
        # the SDK drops null values, which would make a later property removal impossible to express.
        await c.request("POST", f"/api/v1/mappings/{mapping_id}", body=body, keep_empty=True)

    async def _assign_group(self, c: OktaClient, app_id: str, change: Change) -> None:
        from okta.models import ApplicationGroupAssignment

        gid = str(change.data["group_id"])
        await c.call("PUT", f"/api/v1/apps/{app_id}/groups/{gid}",
                     lambda s: s.assign_group_to_application(app_id, gid, ApplicationGroupAssignment()))

    async def _apply_push(self, c: OktaClient, app_id: str, change: Change) -> None:
        gid = str(change.data["group_id"])
        if change.action is Action.DELETE:
            await self._delete_push(c, app_id, str(change.data["mapping_id"]))
        else:
            await self._ensure_push(c, app_id, gid, str(change.data.get("group_name") or change.key))


