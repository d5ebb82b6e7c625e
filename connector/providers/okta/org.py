"""What every Okta job reads: the app, its provisioning, mappings and groups; and the session each call runs in.

Each job of the Okta provider (plan/apply in provider.py, push.py, health.py, view.py, remedies.py) is a class
on top of `OktaOrg`; `OktaProvider` composes them. Every public method is synchronous (one `asyncio.run`) and
async inside, with bounded concurrency (OktaClient's semaphore) and Okta's rate-limit headers respected. The SDK
and its sharp edges live in client.py; the pure planning in plan.py.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from connector.config.load import AstroConfig, OktaConfig, ProjectConfig
from connector.errors import ConfigError, Location, NotFound, RemoteError
from connector.mapping.model import MappingFile
from connector.providers.base import missing_group_hint
from connector.providers.okta import plan as P
from connector.providers.okta.client import OktaClient
from connector.support.http import retry_async
from connector.support.packaged import default_mapping
from connector.support.suggest import close_names, some_of

log = logging.getLogger("connector.okta")
T = TypeVar("T")

# App users in these states hold no Astro account the IdP vouches for (Okta unassigned or deprovisioned them).
OUT_OF_SCOPE_APP_USER = frozenset({"DEPROVISIONED", "UNASSIGNED", "REVOKED"})
# Okta users in these states are not active people: Astro should hold them deactivated (and Okta never pushes them).
INACTIVE_OKTA_USER = frozenset({"DEPROVISIONED", "SUSPENDED"})


class OktaOrg:
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

    def _call(self, fn: Callable[[OktaClient], Awaitable[T]]) -> T:
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
            from connector.mapping.validate import checked_mapping

            path = self.okta.mapping or default_mapping("okta")
            # Everything `validate` checks, the Okta expressions included: a mapping Okta would refuse (or
            # apply wrongly) stops plan here, with its file:line, before any call to Okta.
            mapping = checked_mapping(path, named_at=self._loc("mapping"))
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
                app: dict[str, Any] = await c.get(f"/api/v1/apps/{self.okta.app_id}")
            except RemoteError as exc:
                if exc.status != 404:
                    raise
                raise NotFound(
                    f"Okta {c.org_url} has no app with id {self.okta.app_id}",
                    candidates=await self._app_candidates(c, self.okta.app_id),
                    location=self._loc("app", "id"),
                ) from exc
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
                close = close_names(name, known)
                # Nothing close: still say what the org has, so the next try is not a guess either.
                known_text = ("did you mean: " + ", ".join(repr(n) for n in close) + "?" if close else
                              f"give the group's name exactly as in Okta (Directory > Groups); its groups: "
                              f"{some_of(known)}")
                raise NotFound(
                    f"Okta {c.org_url} has no group named {name!r}" + (f" (okta.{key})" if key else ""),
                    candidates=close, location=self._loc(key, index) if key else None,
                    # A configured group: it may have been deleted in Okta since apply; both fixes are named.
                    hint=missing_group_hint(name, f"okta.{key}", "Okta Admin Console > Directory > Groups > Add "
                                            "group", known_text) if key else None if close else known_text,
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

    async def _push_mappings_or_empty(self, c: OktaClient, app_id: str) -> list[dict[str, Any]]:
        try:
            return await self._push_mappings(c, app_id)
        except RemoteError as exc:
            # Before provisioning is on, Okta may refuse Group Push reads; there is nothing pushed yet then.
            if exc.status in (400, 403, 404):
                return []
            raise

    async def _app_user_names(self, c: OktaClient, app_id: str) -> dict[str, str]:
        """Okta user id -> app userName (lower-cased) for users the app provisions."""
        users = await c.pages(f"/api/v1/apps/{app_id}/users", {"limit": 500})
        return {
            str(u.get("id")): app_user_name(u).lower()
            for u in users if u.get("status") not in OUT_OF_SCOPE_APP_USER
        }

    async def _expected_members(self, c: OktaClient, group_id: str, app_users: dict[str, str]) -> set[str]:
        members = await c.pages(f"/api/v1/groups/{group_id}/users", {"limit": 1000})
        return {
            app_users[str(u.get("id"))] for u in members
            if str(u.get("id")) in app_users and u.get("status") not in INACTIVE_OKTA_USER
        }

    # -- Group Push writes (apply and push-groups) ----------------------------------------------------------

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
            try:
                created = await c.call_once("POST", path, lambda s: s.create_group_push_mapping(app_id, body))
            except RemoteError as exc:
                # "A group push mapping already exists": a concurrent run was first. Converge on its mapping.
                if exc.status in (400, 409) and (again := await self._push_mappings(c, app_id,
                                                                                    source_group_id=group_id)):
                    return again[0]
                raise
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
            try:
                await c.call_once("DELETE", path, lambda s: s.delete_group_push_mapping(app_id, mapping_id, False))
            except RemoteError as exc:
                if exc.status != 404:
                    raise
                # Deleted since the read above (a concurrent push-groups or drift --fix): what we came to do.

        await retry_async(attempt, what=f"okta delete push mapping {mapping_id}", policy=c.policy)


# HTTP 401 as Okta quotes Astro's answer ("401 Unauthorized", "status code 401"): a number on its own, not a part
# of a name in the message (user4012@..., "Room 401-B") or of another number.
_STATUS_401 = re.compile(r"(?<![\w@.-])401(?![\w@.-])")
_UNAUTHORIZED = re.compile(r"\bunauthori[sz]ed\b", re.IGNORECASE)


def refused_by_astro(error: str) -> bool:
    """Whether an Okta provisioning error is Astro refusing Okta's token (what Okta shows of the SCIM answer)."""
    return _STATUS_401.search(error) is not None or _UNAUTHORIZED.search(error) is not None


def integration_token_steps(label: str, organization_id: str) -> str:
    """Where to fix the token Okta holds for Astro (Okta has no API for it)."""
    return (f"Okta Admin Console > Applications > {label} > Provisioning > Integration > Edit: API token = a valid "
            f"Astro Organization API token (Organization Owner) of organization {organization_id}; Test API "
            "Credentials, Save")


def app_user_name(app_user: dict[str, Any]) -> str:
    return str((app_user.get("credentials") or {}).get("userName") or app_user.get("id") or "")


def app_user_error(app_user: dict[str, Any]) -> str:
    for key in ("errorSummary", "syncError", "error"):
        value = app_user.get(key)
        if isinstance(value, dict):
            value = value.get("errorSummary") or value.get("message")
        if value:
            return str(value)
    return "provisioning task failed (syncState ERROR)"


