"""The Okta provider: plan/apply the Astro app's provisioning setup, check it, push groups, read it for drift.

Every public method is synchronous (one `asyncio.run`) and async inside, with bounded concurrency (OktaClient's
semaphore) and Okta's rate-limit headers respected. The SDK and its sharp edges live in okta_client.py; the pure
planning in okta_plan.py; Astro-side verification in okta_astro.py.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from connector import output
from connector.config.load import AstroConfig, OktaConfig, ProjectConfig
from connector.errors import (
    ConfigError,
    ConnectorError,
    Location,
    ManualStepRequired,
    NotFound,
    RemoteError,
)
from connector.mapping.model import MappingFile, Severity
from connector.plan.model import Action, Change, Plan
from connector.providers.base import Check, Progress
from connector.providers.okta import plan as P
from connector.providers.okta.astro_check import AstroReader, poll
from connector.providers.okta.client import OktaClient
from connector.support.http import retry_async
from connector.support.packaged import default_mapping
from connector.views import IdpGroup, IdpIssue, IdpUser, IdpView

log = logging.getLogger("connector.okta")
T = TypeVar("T")

# App users in these states hold no Astro account the IdP vouches for (Okta unassigned or deprovisioned them).
OUT_OF_SCOPE_APP_USER = frozenset({"DEPROVISIONED", "UNASSIGNED", "REVOKED"})
# Okta users in these states are not active people: Astro should hold them deactivated (and Okta never pushes them).
INACTIVE_OKTA_USER = frozenset({"DEPROVISIONED", "SUSPENDED"})
MAX_INACTIVE_LOOKUPS = 200  # more unknown Astro accounts than this is a mass orphaning: reported as orphans
CONNECTION_TEST_USER = "astro-scim-connection-test"
PUSH_NOW_STEPS = (
    "open the Astro app in the Okta Admin Console > Push Groups > click the Push Status value of the group > "
    "Push now"
)
VERIFY_TIMEOUT = 15.0


@dataclass
class GroupPush:
    """One group's Group Push state, what push-groups would do about it, and what happened."""

    name: str
    group_id: str
    mapping_id: str | None
    status: str | None  # ACTIVE | INACTIVE | ERROR | None (no mapping)
    error: str | None
    expected: set[str]  # userNames (lower-cased) Okta should have pushed: members who are provisioned app users
    in_astro: set[str] | None  # the Team's members in Astro; None = no such Team
    action: str | None = None  # create | activate | repush | None (in sync)
    reason: str = ""
    verified: bool | None = None  # set once acted upon
    result: str = ""
    in_astro_before: set[str] | None = None  # the Team's members before acting (in_astro is then re-read)

    def describe_action(self) -> str:
        return {
            "create": "create the push mapping (push as a Team)",
            "activate": "activate the push mapping",
            "repush": "re-push: set the mapping INACTIVE then ACTIVE (a workaround: Okta has no Push now API)",
        }.get(self.action or "", "nothing to do")


@dataclass
class PushReport:
    groups: list[GroupPush] = field(default_factory=list)
    acted: bool = False

    @property
    def pending(self) -> list[GroupPush]:
        return [g for g in self.groups if g.action]

    @property
    def failed(self) -> list[GroupPush]:
        return [g for g in self.groups if g.verified is False]


class OktaProvider:
    name = "okta"

    def __init__(self, cfg: ProjectConfig, *, prune: bool = False) -> None:
        if cfg.okta is None:
            raise ConfigError("the config has no 'okta' section", hint=f"add 'okta:' to {cfg.file}")
        self.cfg = cfg
        self.okta: OktaConfig = cfg.okta
        self.prune = prune
        self._app: dict[str, Any] | None = None
        self._mapping: MappingFile | None = None

    # -- plumbing ----------------------------------------------------------------------------------------------

    def _run(self, fn: Callable[[OktaClient], Awaitable[T]]) -> T:
        async def main() -> T:
            async with OktaClient(self.okta) as client:
                return await fn(client)

        return asyncio.run(main())

    def close(self) -> None:
        # Each public call opens and closes its own SDK session; nothing stays open between calls.
        self._app = None

    def _loc(self, *path: str | int) -> Location | None:
        doc = self.cfg.document
        return doc.loc(("okta", *path)) if doc is not None else self.okta.location

    @property
    def astro(self) -> AstroConfig:
        return self.cfg.astro_for("okta")

    @property
    def app_label(self) -> str:
        if self._app is not None:
            return str(self._app.get("label") or self._app.get("id"))
        return self.okta.app_label or str(self.okta.app_id)

    def mapping_file(self) -> MappingFile:
        if self._mapping is None:
            from connector.mapping.load import load_mapping

            path = self.okta.mapping or default_mapping("okta")
            mapping, findings = load_mapping(path)
            errors = [f for f in findings if f.severity is Severity.ERROR]
            if mapping is None or errors:
                first = errors[0] if errors else None
                raise ConfigError(
                    f"mapping file {path} is not valid" + (f": {first.message}" if first else ""),
                    location=first.location if first else self._loc("mapping"),
                    hint=f"run 'astro-scim validate {path}' for every finding",
                )
            if mapping.idp != "okta":
                raise ConfigError(f"okta.mapping points to a mapping for {mapping.idp!r}, not okta",
                                  location=self._loc("mapping"))
            self._mapping = mapping
        return self._mapping

    @staticmethod
    def attribute_for(target: str) -> str | None:
        """SCIM path -> Okta app user attribute (the project's table in connector.mapping.idp_attributes)."""
        from connector.mapping.idp_attributes import okta_app_user_attribute

        return okta_app_user_attribute(target)

    # -- reading Okta ------------------------------------------------------------------------------------------

    async def _find_app(self, c: OktaClient) -> dict[str, Any]:
        if self._app is not None:
            return self._app
        if self.okta.app_id:
            try:
                app = await c.get(f"/api/v1/apps/{self.okta.app_id}")
            except RemoteError as exc:
                if exc.status != 404:
                    raise
                raise NotFound(
                    f"Okta {c.org_url} has no app with id {self.okta.app_id}",
                    candidates=await self._app_candidates(c, self.okta.app_id),
                    location=self._loc("app", "id"),
                ) from None
            self._app = app
            return app
        label = self.okta.app_label or "Astro"
        # Raw JSON, not the SDK's Application model: it rejects unknown `features` values and drops `settings.app`.
        apps = await c.pages("/api/v1/apps", {"q": label, "limit": 200})
        exact = [a for a in apps if a.get("label") == label]
        if not exact:
            exact = [a for a in apps if str(a.get("label", "")).lower() == label.lower()]
        if len(exact) > 1:
            active = [a for a in exact if a.get("status") == "ACTIVE"]
            exact = active if len(active) == 1 else exact
        if len(exact) > 1:
            ids = ", ".join(str(a.get("id")) for a in exact)
            raise ConfigError(f"several Okta apps are labelled {label!r} ({ids})", location=self._loc("app"),
                              hint="set okta.app.id to the one to configure")
        if not exact:
            raise NotFound(
                f"Okta {c.org_url} has no app labelled {label!r}",
                candidates=await self._app_candidates(c, label),
                location=self._loc("app", "label"),
            )
        self._app = exact[0]
        return exact[0]

    async def _app_candidates(self, c: OktaClient, wanted: str) -> list[str]:
        apps = await c.pages("/api/v1/apps", {"limit": 200})
        labels = sorted({str(a.get("label")) for a in apps if a.get("label")})
        close = difflib.get_close_matches(wanted, labels, n=5, cutoff=0.4)
        return close or [lab for lab in labels if wanted.lower() in lab.lower()][:5]

    async def _provisioning(self, c: OktaClient, app_id: str) -> tuple[bool, dict[str, Any] | None, str | None]:
        """(enabled, USER_PROVISIONING feature JSON, connections API status when not enabled)."""
        import json

        try:
            features = await c.call(
                "GET", f"/api/v1/apps/{app_id}/features", lambda s: s.list_features_for_application(app_id)
            )
        except RemoteError as exc:
            if exc.status != 400:
                raise
            # 400 E0000001 "Provisioning is not enabled for the app instance.": ask the connections API too, which
            # answers UNKNOWN for apps it cannot configure (raw: the SDK's model crashes on UNKNOWN).
            status: str | None = None
            try:
                conn = await c.get(f"/api/v1/apps/{app_id}/connections/default")
                status = str((conn or {}).get("status") or "UNKNOWN")
            except RemoteError as conn_exc:
                if conn_exc.status is None or conn_exc.status >= 500 or conn_exc.status == 401:
                    raise
                status = f"HTTP {conn_exc.status}"
            return False, None, status
        feature = None
        for f in features or []:
            as_dict = json.loads(f.to_json()) if hasattr(f, "to_json") else dict(f)
            if as_dict.get("name") == P.USER_PROVISIONING:
                feature = as_dict
        return True, feature, None

    async def _profile_mapping(self, c: OktaClient, app_id: str) -> tuple[str | None, dict[str, Any]]:
        """The Okta user -> app user mapping: (id, properties)."""
        import json

        mappings = await c.pages("/api/v1/mappings", {"targetId": app_id, "limit": 200})
        chosen = next(
            (m for m in mappings if (m.get("source") or {}).get("type") == "user"
             and (m.get("target") or {}).get("id") == app_id),
            None,
        )
        if chosen is None:
            return None, {}
        mapping_id = str(chosen["id"])
        full = await c.call("GET", f"/api/v1/mappings/{mapping_id}", lambda s: s.get_profile_mapping(mapping_id))
        data = json.loads(full.to_json()) if hasattr(full, "to_json") else dict(full or {})
        return mapping_id, dict(data.get("properties") or {})

    async def _resolve_groups(self, c: OktaClient, names: list[str], key: str | None) -> list[P.OktaGroup]:
        """Group names -> OKTA_GROUP ids. `key` names the config list they came from (None: the command line)."""
        async def one(name: str) -> P.OktaGroup | None:
            if '"' in name or "\\" in name:
                # q= is a prefix search without paging: fine for odd names, which are rare.
                found = await c.get("/api/v1/groups", {"q": name, "limit": 200}) or []
            else:
                # An exact, paged search: a prefix search could hide the group behind 200 longer names.
                found = await c.pages("/api/v1/groups", {"search": f'profile.name eq "{name}"', "limit": 200})
            # APP_GROUPs are the pushed copies of groups in target apps; they share the source group's name.
            exact = [g for g in found if (g.get("profile") or {}).get("name") == name and g.get("type") != "APP_GROUP"]
            return P.OktaGroup(str(exact[0]["id"]), name) if exact else None

        results = await asyncio.gather(*(one(n) for n in names))
        for index, (name, group) in enumerate(zip(names, results, strict=True)):
            if group is None:
                every = await c.pages("/api/v1/groups", {"limit": 200})
                known = sorted({str((g.get("profile") or {}).get("name")) for g in every
                                if g.get("type") != "APP_GROUP"})
                raise NotFound(
                    f"Okta {c.org_url} has no group named {name!r}" + (f" (okta.{key})" if key else ""),
                    candidates=difflib.get_close_matches(name, known, n=5, cutoff=0.5),
                    location=self._loc(key, index) if key else None,
                )
        return [g for g in results if g is not None]

    async def _push_mappings(self, c: OktaClient, app_id: str, *, source_group_id: str | None = None
                             ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 1000}
        if source_group_id:
            params["sourceGroupId"] = source_group_id
        return await c.pages(f"/api/v1/apps/{app_id}/group-push/mappings", params)

    async def _group_names(self, c: OktaClient, ids: Iterable[str]) -> dict[str, str]:
        async def one(gid: str) -> tuple[str, str]:
            try:
                g = await c.get(f"/api/v1/groups/{gid}")
            except RemoteError as exc:
                if exc.status == 404:
                    return gid, gid
                raise
            return gid, str((g.get("profile") or {}).get("name") or gid)

        return dict(await asyncio.gather(*(one(i) for i in set(ids))))

    # -- plan ----------------------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        plan, notes = self._run(self._plan)
        for note in notes:
            output.warn(f"okta: note: {note}")
        return plan

    async def _plan(self, c: OktaClient) -> tuple[Plan, list[str]]:
        mapping = self.mapping_file()
        desired_props = P.desired_properties(mapping, self.attribute_for)
        app = await self._find_app(c)
        app_id = str(app["id"])
        notes: list[str] = []
        if (note := P.username_note(app)) is not None:
            notes.append(note)

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
        both = {g.name for g in assign} & {g.name for g in push}
        if both:
            notes.append(
                "Okta does not support using the same group for assignment and Group Push: "
                + ", ".join(sorted(both))
            )
        changes: list[Change] = []
        if not enabled:
            changes.append(P.provisioning_change(
                integration=self.okta.integration, app_label=str(app.get("label")), app_id=app_id, astro=self.astro,
                config_file=self.cfg.file, connection_status=conn_status,
            ))
        elif (org_change := P.organization_change(app=app, astro=self.astro, config_file=self.cfg.file)) is not None:
            changes.append(org_change)
        if (fc := P.feature_change(feature, provisioning_enabled=enabled)) is not None:
            changes.append(fc)
        changes += P.property_changes(desired_props, properties, mapping_id=mapping_id)
        changes += P.assignment_changes(assign, {str(a.get("id")) for a in assigned})
        wanted_ids = {g.id for g in push}
        others = [str(m.get("sourceGroupId")) for m in mappings if str(m.get("sourceGroupId")) not in wanted_ids]
        names = await self._group_names(c, others) if self.prune and others else {}
        changes += P.push_changes(push, mappings, names, prune=self.prune)
        for change in changes:
            change.data.setdefault("app_id", app_id)
            change.data["existing_count"] = len(mappings)
        return Plan("okta", changes), notes

    async def _push_mappings_or_empty(self, c: OktaClient, app_id: str) -> list[dict[str, Any]]:
        try:
            return await self._push_mappings(c, app_id)
        except RemoteError as exc:
            # Before provisioning is on, Okta may refuse Group Push reads; there is nothing pushed yet then.
            if exc.status in (400, 403, 404):
                return []
            raise

    # -- apply ---------------------------------------------------------------------------------------------------

    def apply(self, plan: Plan, progress: Progress | None = None) -> int:
        return self._run(lambda c: self._apply(c, plan, progress or (lambda change: None)))

    async def _apply(self, c: OktaClient, plan: Plan, progress: Progress) -> int:
        if not plan.changes:
            return 0
        app = await self._find_app(c)
        app_id = str(app["id"])
        done = 0
        batches: list[list[Change]] = []
        for change in plan.changes:
            if batches and batches[-1][0].resource == change.resource and change.resource != P.PROVISIONING:
                batches[-1].append(change)
            else:
                batches.append([change])
        for batch in batches:
            kind = batch[0].resource
            if kind == P.PROVISIONING:
                self._app = None  # re-read: settings.app shows what the Admin Console step configured
                app = await self._find_app(c)
                enabled, _, _ = await self._provisioning(c, app_id)
                wrong_org = P.organization_change(app=app, astro=self.astro, config_file=self.cfg.file)
                if not enabled or wrong_org is not None:
                    what = "is not enabled" if not enabled else "points to another Astro organization"
                    raise ManualStepRequired(
                        f"okta: provisioning {what} for app {app.get('label')!r}: do the Admin Console step "
                        "listed in the plan above, then re-run apply",
                        steps=str(batch[0].data.get("steps", "")),
                    )
                progress(batch[0])  # verified: someone did the manual step since the plan was made
            elif kind == P.FEATURE:
                await self._apply_feature(c, app_id)
                progress(batch[0])
                done += 1
            elif kind == P.PROFILE_MAPPING:
                await self._apply_properties(c, app_id, batch)
                for change in batch:
                    progress(change)
                done += len(batch)
            elif kind == P.GROUP_ASSIGNMENT:
                done += await self._each(batch, progress, lambda ch: self._assign_group(c, app_id, ch))
            elif kind == P.PUSH_MAPPING:
                done += await self._each(batch, progress, lambda ch: self._apply_push(c, app_id, ch))
            else:  # pragma: no cover - plans only ever hold the kinds above
                raise ConnectorError(f"okta: unknown change kind {kind}")
        return done

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

    async def _ensure_push(self, c: OktaClient, app_id: str, group_id: str, name: str) -> dict[str, Any] | None:
        """An ACTIVE push mapping for the group. Every attempt re-reads first, so a retried POST never duplicates."""
        from okta.models import CreateGroupPushMappingRequest

        path = f"/api/v1/apps/{app_id}/group-push/mappings"

        async def attempt() -> dict[str, Any] | None:
            existing = await self._push_mappings(c, app_id, source_group_id=group_id)
            if existing:
                mapping = existing[0]
                if mapping.get("status") == "INACTIVE":
                    await self._set_push_status(c, app_id, str(mapping["id"]), "ACTIVE", retry=False)
                return mapping
            body = CreateGroupPushMappingRequest(source_group_id=group_id, target_group_name=name, status="ACTIVE")
            created = await c.call_once("POST", path, lambda s: s.create_group_push_mapping(app_id, body))
            return created.to_dict() if created is not None and hasattr(created, "to_dict") else None

        return await retry_async(attempt, what=f"okta push mapping for {name!r}", policy=c.policy)

    async def _set_push_status(self, c: OktaClient, app_id: str, mapping_id: str, status: str, *,
                               retry: bool = True) -> None:
        from okta.models import UpdateGroupPushMappingRequest

        body = UpdateGroupPushMappingRequest(status=status)
        path = f"/api/v1/apps/{app_id}/group-push/mappings/{mapping_id}"
        call = c.call if retry else c.call_once
        await call("PATCH", path, lambda s: s.update_group_push_mapping(app_id, mapping_id, body))

    async def _delete_push(self, c: OktaClient, app_id: str, mapping_id: str) -> None:
        path = f"/api/v1/apps/{app_id}/group-push/mappings/{mapping_id}"

        async def attempt() -> None:
            try:
                current = await c.get(path)
            except RemoteError as exc:
                if exc.status == 404:
                    return  # already gone: a previous attempt got through
                raise
            if current.get("status") != "INACTIVE":  # Okta deletes only inactive mappings
                await self._set_push_status(c, app_id, mapping_id, "INACTIVE", retry=False)
            # deleteTargetGroup=false keeps the Team in Astro. The SDK returns a 2-tuple on error here (unpacked).
            await c.call_once("DELETE", path, lambda s: s.delete_group_push_mapping(app_id, mapping_id, False))

        await retry_async(attempt, what=f"okta delete push mapping {mapping_id}", policy=c.policy)

    # -- test-connection and status ------------------------------------------------------------------------------

    def test_connection(self) -> list[Check]:
        return self._run(self._test_connection)

    async def _test_connection(self, c: OktaClient) -> list[Check]:
        checks: list[Check] = []
        try:
            me = await c.call("GET", "/api/v1/users/me", lambda s: s.get_user("me"))
            login = getattr(getattr(me, "profile", None), "login", None) or getattr(me, "id", "?")
            checks.append(Check(f"Okta {c.credential_name}", True, f"{c.org_url} accepts it (acting as {login})"))
        except ConnectorError as exc:
            checks.append(Check(f"Okta {c.credential_name}", False, str(exc), exc.hint))
        if checks[-1].ok:
            try:
                app = await self._find_app(c)
                checks.append(Check("Okta app", True, f"{app.get('label')} ({app.get('id')}, {app.get('status')})"))
                enabled, feature, conn = await self._provisioning(c, str(app["id"]))
                if enabled:
                    caps = P.capability_statuses(feature)
                    text = ", ".join(f"{k} {v}" for k, v in caps.items())
                    checks.append(Check("Okta provisioning", True, f"API integration enabled; To App: {text}"))
                    checks.append(self._organization_check(app))
                else:
                    checks.append(Check(
                        "Okta provisioning", None,
                        f"not enabled yet (connections API: {conn}); 'astro-scim plan' shows the Admin Console steps",
                    ))
                if (note := P.username_note(app)) is not None:
                    checks.append(Check("Okta app username", None, note))
            except ConnectorError as exc:  # NotFound carries the candidate labels in its hint
                checks.append(Check("Okta app", False, str(exc), exc.hint))
        checks.append(await self._astro_check())
        return checks

    def _organization_check(self, app: dict[str, Any]) -> Check:
        have = P.configured_organization(app)
        want = self.astro.organization_id
        if have is None:
            return Check("Astro organization", None, f"the app does not show it; the config says {want}")
        if have != want:
            return Check("Astro organization", False, f"the app's API integration uses {have}, the config says {want}",
                         "run 'astro-scim plan' for the steps to fix it")
        return Check("Astro organization", True, f"the app's API integration uses {want}")

    async def _astro_check(self) -> Check:
        astro = self.astro
        try:
            async with AstroReader(astro) as reader:
                spc = await reader.service_provider_config()
                await reader.find_user(CONNECTION_TEST_USER)
        except ConnectorError as exc:
            return Check("Astro SCIM token", False, str(exc), exc.hint)
        filtering = "filter supported" if (spc.get("filter") or {}).get("supported") else "filter not advertised"
        return Check("Astro SCIM token", True, f"{astro.scim_url} accepts it ({filtering})")

    def status(self) -> list[Check]:
        return self._run(self._status)

    async def _status(self, c: OktaClient) -> list[Check]:
        app = await self._find_app(c)
        app_id = str(app["id"])
        checks: list[Check] = []
        enabled, feature, conn = await self._provisioning(c, app_id)
        if not enabled:
            checks.append(Check("provisioning", False, f"not enabled (connections API: {conn})",
                                "run 'astro-scim plan' for the Admin Console steps"))
            return checks
        checks.append(Check("provisioning", True, f"enabled for {app.get('label')} ({app_id})"))
        checks.append(self._organization_check(app))
        caps = P.capability_statuses(feature)
        wrong = {k: v for k, v in caps.items() if v != P.DESIRED_CAPABILITIES[k]}
        checks.append(Check(
            "To App features", not wrong,
            ", ".join(f"{k} {v}" for k, v in caps.items()),
            "run 'astro-scim apply' to set Create Users, Update User Attributes, Deactivate Users" if wrong else None,
        ))
        app_users, mappings = await asyncio.gather(
            c.pages(f"/api/v1/apps/{app_id}/users", {"limit": 500}), self._push_mappings(c, app_id)
        )
        in_error = [u for u in app_users if u.get("syncState") == "ERROR"]
        provisioned = sum(1 for u in app_users if u.get("externalId"))
        checks.append(Check("app users", None, f"{len(app_users)} assigned, {provisioned} provisioned to Astro"))
        if in_error:
            shown = "; ".join(f"{_app_user_name(u)}: {_app_user_error(u)}" for u in in_error[:5])
            more = f" (+{len(in_error) - 5} more)" if len(in_error) > 5 else ""
            checks.append(Check(
                "app users in ERROR", False, f"{len(in_error)}: {shown}{more}",
                "resolve the task in Okta (Dashboard > Tasks) or remove and re-assign the user "
                "('astro-scim drift --fix' can re-assign)",
            ))
        else:
            checks.append(Check("app users in ERROR", True, "none"))
        push_errors = [m for m in mappings if m.get("status") == "ERROR" or m.get("errorSummary")]
        names = await self._group_names(c, [str(m.get("sourceGroupId")) for m in mappings])
        active = sum(1 for m in mappings if m.get("status") == "ACTIVE")
        checks.append(Check("push mappings", None, f"{len(mappings)} ({active} ACTIVE)"))
        if push_errors:
            shown = "; ".join(
                f"{names.get(str(m.get('sourceGroupId')), m.get('sourceGroupId'))}: {m.get('errorSummary') or 'ERROR'}"
                for m in push_errors[:5]
            )
            checks.append(Check("push mappings in ERROR", False, shown,
                                "run 'astro-scim push-groups' to re-push and verify"))
        else:
            checks.append(Check("push mappings in ERROR", True, "none"))
        return checks

    # -- Group Push ------------------------------------------------------------------------------------------

    def push_groups(self, names: list[str] | None, yes: bool) -> PushReport:
        """Inspect the groups' push state against Astro; with `yes`, create/activate/re-push and verify."""
        return self._run(lambda c: self._push_groups(c, names or list(self.okta.push_groups), yes,
                                                     from_config=not names))

    def repush_group(self, name: str) -> GroupPush:
        """The drift fixer's remedy: re-push one group (the INACTIVE/ACTIVE workaround) and verify it in Astro."""
        async def run(c: OktaClient) -> GroupPush:
            report = await self._push_groups(c, [name], True, force_repush=True, from_config=False)
            return report.groups[0]

        return self._run(run)

    def relink_group(self, name: str, *, group_ids: Sequence[str] | None = None) -> GroupPush:
        """The drift fixer's remedy for a Team missing in Astro: Push now cannot recreate it (the mapping still
        targets the deleted Team), so delete the group's push mappings, keeping the target (deleteTargetGroup=false),
        then push the group again, which creates the Team, and verify it in Astro. `group_ids`: the Okta group ids
        whose mappings to delete, when the caller knows them (else the group named `name`)."""
        async def run(c: OktaClient) -> GroupPush:
            app_id = str((await self._find_app(c))["id"])
            ids = list(group_ids or [g.id for g in await self._resolve_groups(c, [name], None)])
            for group_id in ids:
                for mapping in await self._push_mappings(c, app_id, source_group_id=group_id):
                    await self._delete_push(c, app_id, str(mapping["id"]))
            report = await self._push_groups(c, [name], True, force_repush=True, from_config=False)
            return report.groups[0]

        return self._run(run)

    async def _push_groups(self, c: OktaClient, names: list[str], yes: bool, *, force_repush: bool = False,
                           from_config: bool = True) -> PushReport:
        if not names:
            raise ConfigError("no groups to push: name them, or list them in okta.push_groups",
                              location=self._loc("push_groups"))
        app = await self._find_app(c)
        app_id = str(app["id"])
        groups = await self._resolve_groups(c, names, "push_groups" if from_config else None)
        app_users = await self._app_user_names(c, app_id)
        async with AstroReader(self.astro) as astro:
            states = list(await asyncio.gather(*(self._push_state(c, astro, app_id, g, app_users) for g in groups)))
            for s in states:
                if force_repush and s.action is None and s.mapping_id:
                    s.action, s.reason = "repush", "re-push requested"
            report = PushReport(states)
            if not yes or not report.pending:
                return report
            report.acted = True
            await asyncio.gather(*(self._push_one(c, astro, app_id, s) for s in report.pending))
        return report

    async def _app_user_names(self, c: OktaClient, app_id: str) -> dict[str, str]:
        """Okta user id -> app userName (lower-cased) for users the app provisions."""
        users = await c.pages(f"/api/v1/apps/{app_id}/users", {"limit": 500})
        return {
            str(u.get("id")): _app_user_name(u).lower()
            for u in users if u.get("status") not in OUT_OF_SCOPE_APP_USER
        }

    async def _expected_members(self, c: OktaClient, group_id: str, app_users: dict[str, str]) -> set[str]:
        members = await c.pages(f"/api/v1/groups/{group_id}/users", {"limit": 1000})
        return {
            app_users[str(u.get("id"))] for u in members
            if str(u.get("id")) in app_users and u.get("status") not in INACTIVE_OKTA_USER
        }

    async def _push_state(self, c: OktaClient, astro: AstroReader, app_id: str, group: P.OktaGroup,
                          app_users: dict[str, str]) -> GroupPush:
        mappings, expected, in_astro = await asyncio.gather(
            self._push_mappings(c, app_id, source_group_id=group.id),
            self._expected_members(c, group.id, app_users),
            astro.team_members(group.name),
        )
        m = mappings[0] if mappings else None
        state = GroupPush(
            name=group.name, group_id=group.id, mapping_id=str(m["id"]) if m else None,
            status=str(m.get("status")) if m else None, error=(m or {}).get("errorSummary") or None,
            expected=expected, in_astro=in_astro,
        )
        _decide(state)
        return state

    async def _push_one(self, c: OktaClient, astro: AstroReader, app_id: str, s: GroupPush) -> None:
        s.in_astro_before = s.in_astro
        if s.action == "create" or (s.action == "activate" and s.mapping_id is None):
            await self._ensure_push(c, app_id, s.group_id, s.name)
        elif s.action == "activate" and s.mapping_id:
            await self._set_push_status(c, app_id, s.mapping_id, "ACTIVE")
        elif s.action == "repush" and s.mapping_id:
            # The documented workaround for Push now (no API): deactivate, then activate, which pushes the group's
            # full membership again.
            await self._set_push_status(c, app_id, s.mapping_id, "INACTIVE")
            await self._set_push_status(c, app_id, s.mapping_id, "ACTIVE")

        async def matches() -> bool:
            s.in_astro = await astro.team_members(s.name)
            return s.in_astro is not None and s.in_astro == s.expected

        s.verified = await poll(matches, timeout=VERIFY_TIMEOUT)
        if s.verified:
            s.result = f"verified in Astro: Team {s.name!r} has the {len(s.expected)} expected member(s)"
        else:
            s.result = "still out of sync in Astro: " + _difference(s.expected, s.in_astro)

    # -- drift support -------------------------------------------------------------------------------------------

    def read_view(self) -> IdpView:
        return self._run(self._read_view)

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
            user_name = _app_user_name(au)
            names[uid] = user_name.lower()
            expected: dict[str, Any] = {"userName": user_name}
            for target, expr in parsed:
                try:
                    expected[target] = okta_expr.evaluate(expr, profile, dict(au.get("profile") or {}))
                except ConnectorError as exc:
                    log.info("okta: cannot evaluate %s for %s: %s", target, user_name, exc)
            error = _app_user_error(au) if au.get("syncState") == "ERROR" else None
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
        return self._run(lambda c: self._inactive_users(c, list(user_names)[:MAX_INACTIVE_LOOKUPS]))

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

    def reassign_user(self, login: str) -> str:
        """The FAQ's fix for a user missing in Astro: remove and re-assign the user in Okta. Returns what it did."""
        return self._run(lambda c: self._reassign_user(c, login))

    async def _reassign_user(self, c: OktaClient, login: str) -> str:
        app = await self._find_app(c)
        app_id = str(app["id"])
        try:
            user = await c.get(f"/api/v1/users/{login}")
        except RemoteError as exc:
            if exc.status == 404:
                raise NotFound(f"Okta {c.org_url} has no user {login!r}") from None
            raise
        uid = str(user["id"])
        try:
            au = await c.get(f"/api/v1/apps/{app_id}/users/{uid}")
        except RemoteError as exc:
            if exc.status == 404:
                raise NotFound(f"{login} is not assigned to the Okta app {app.get('label')!r}",
                               hint="assign the user (or one of their groups) to the app first") from None
            raise
        if au.get("scope") == "GROUP":
            return await self._reassign_through_groups(c, app, uid, login)
        body = {"id": uid, "scope": "USER", "credentials": {"userName": _app_user_name(au) or login}}
        await self._unassign(c, app_id, uid)
        await c.request("POST", f"/api/v1/apps/{app_id}/users", body=body)
        return f"removed and re-assigned {login}"

    async def _reassign_through_groups(self, c: OktaClient, app: dict[str, Any], uid: str, login: str) -> str:
        """A user who holds the app through groups is re-assigned by leaving and re-joining those groups.

        Okta refuses to unassign such a user directly, and an individual assignment on top changes nothing. Leaving
        a group also takes away every other app that group grants, so this runs only when the groups grant no
        other app; otherwise it is a manual step.
        """
        app_id = str(app["id"])
        user_groups, assigned = await asyncio.gather(
            c.pages(f"/api/v1/users/{uid}/groups", {"limit": 200}),
            c.pages(f"/api/v1/apps/{app_id}/groups", {"limit": 200}),
        )
        assigned_ids = {str(a.get("id")) for a in assigned}
        granting = [g for g in user_groups if str(g.get("id")) in assigned_ids]
        names = [str((g.get("profile") or {}).get("name") or g.get("id")) for g in granting]
        apps_per_group = await asyncio.gather(
            *(c.pages(f"/api/v1/groups/{g['id']}/apps", {"limit": 200}) for g in granting)
        )
        shared = sorted({
            name for name, apps in zip(names, apps_per_group, strict=True)
            if any(str(a.get("id")) != app_id for a in apps)
        })
        if not granting or shared:
            raise ManualStepRequired(
                f"okta: {login} holds the app through group(s) {', '.join(shared or names) or '(none found)'}"
                + (" that also grant other apps" if shared else ""),
                steps=(f"In the Okta Admin Console open Applications > {app.get('label')} > Assignments, convert "
                       f"{login}'s assignment to an individual one, then remove and re-assign the user."),
            )
        def leave(gid: str) -> Callable[[Any], Awaitable[Any]]:
            return lambda sdk: sdk.unassign_user_from_group(gid, uid)

        def join(gid: str) -> Callable[[Any], Awaitable[Any]]:
            return lambda sdk: sdk.assign_user_to_group(gid, uid)

        left: list[str] = []
        try:
            for g in granting:
                gid = str(g["id"])
                await c.call("DELETE", f"/api/v1/groups/{gid}/users/{uid}", leave(gid))
                left.append(gid)
        finally:  # re-join whatever was left, even after a failure: a membership must never stay lost
            for gid in left:
                await c.call("PUT", f"/api/v1/groups/{gid}/users/{uid}", join(gid))
        return f"re-assigned {login} (left and re-joined {', '.join(names)}, which grant only this app)"

    async def _unassign(self, c: OktaClient, app_id: str, uid: str) -> None:
        path = f"/api/v1/apps/{app_id}/users/{uid}"
        try:
            await c.call("DELETE", path, lambda s: s.unassign_user_from_application(app_id, uid, send_email=False))
        except RemoteError as exc:
            if exc.status != 404:
                raise


def _app_user_name(app_user: dict[str, Any]) -> str:
    return str((app_user.get("credentials") or {}).get("userName") or app_user.get("id") or "")


def _app_user_error(app_user: dict[str, Any]) -> str:
    for key in ("errorSummary", "syncError", "error"):
        value = app_user.get(key)
        if isinstance(value, dict):
            value = value.get("errorSummary") or value.get("message")
        if value:
            return str(value)
    return "provisioning task failed (syncState ERROR)"


def _difference(expected: set[str], actual: set[str] | None) -> str:
    if actual is None:
        return "the Team does not exist"
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")
    if extra:
        parts.append(f"{len(extra)} extra ({', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''})")
    return "; ".join(parts) or "in sync"


def _decide(s: GroupPush) -> None:
    """What push-groups should do for a group, from its mapping and what Astro holds."""
    if s.mapping_id is None:
        s.action, s.reason = "create", "no push mapping"
    elif s.status == "INACTIVE":
        s.action, s.reason = "activate", "the push mapping is INACTIVE"
    elif s.status == "ERROR" or s.error:
        s.action, s.reason = "repush", f"push mapping in ERROR: {s.error or 'no summary'}"
    elif s.in_astro is None or s.in_astro != s.expected:
        s.action, s.reason = "repush", "out of sync with Astro: " + _difference(s.expected, s.in_astro)
    else:
        s.action, s.reason = None, f"in sync ({len(s.expected)} member(s))"
