"""Okta's provisioning engine, emulated: which app users an assignment, membership, profile or mapping change
creates, updates or removes, and what Okta then sends to the app's SCIM server, with Okta's request shapes.

Runs synchronously inside the API request that triggers it (assignment, profile change, push mapping), so a
test sees the result as soon as the call returns. The shapes follow Okta's SCIM 2.0 guide
(reference/scim-libraries-and-quirks.md §3): match by `userName eq` before create, POST with `externalId` =
the Okta user id, `groups: []` and a `password`, full PUT (GET, modify, PUT the whole resource back, `meta` and
`groups` included) for profile updates, pathless PATCH for deactivation, never DELETE a user; groups are created
by POST with `members: []` and filled by PATCH; every group PATCH starts with the rename op (value with id and
displayName), then members add/remove, or on a re-push a full `members` replace.

The caller holds the state lock: the engine reads and writes rows directly.
"""

from __future__ import annotations

import functools
import re
import secrets
import string
import threading
from typing import Any

from connector.mapping import scim_paths
from connector.mapping.expr import okta as okta_expr
from connector.mapping.idp_attributes import OKTA_APP_USER_TO_SCIM, OKTA_USER_ATTRIBUTES
from connector.sandbox.okta.state import OktaState, Row
from connector.sandbox.scim_http import ERRORS as HTTP_ERRORS
from connector.sandbox.scim_http import Reply, ScimHttp, encode_json
from connector.support import clock

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"
RETRIES = 2
RETRY_PAUSE = 0.1
MAX_RETRY_PAUSE = 1.0

_PASSWORD_ALPHABET = string.ascii_lowercase + string.digits
_TEMPLATE = re.compile(r"\$\{source\.(\w+)\}")


def app_attributes() -> dict[str, str]:
    """The app user schema of the emulated SCIM apps (Okta's SCIM 2.0 template): attribute -> SCIM path."""
    return OKTA_APP_USER_TO_SCIM


@functools.lru_cache(maxsize=1024)
def _parsed_expression(expression: str) -> okta_expr.Expr:
    # An app's profile mapping evaluates the same few expressions for every user it provisions: one parse per
    # text (evaluation only reads the tree). A text that does not parse raises each time (nothing is cached).
    return okta_expr.parse(expression)


@functools.lru_cache(maxsize=1024)
def _scim_path(path: str) -> scim_paths.ScimPath:
    return scim_paths.parse_path(path)  # the same few attribute paths for every user; ScimPath is frozen


def evaluate_expression(expression: str, profile: Row, groups: list[str] | None = None) -> Any:
    """An Okta expression's value for a user profile (and the user's group names, for isMemberOf*)."""
    tree = _parsed_expression(expression) if isinstance(expression, str) else okta_expr.parse(expression)
    return okta_expr.evaluate(tree, profile, groups=groups or ())


def expression_error(expression: str) -> str | None:
    """Why Okta would refuse an expression in a user-to-app profile mapping, or None."""
    try:
        parsed = okta_expr.parse(expression)
    except okta_expr.ExpressionError as exc:
        return f"Invalid expression {expression}: {exc}"
    for path in okta_expr.attributes(parsed):
        if path.root == "user" and path.name not in OKTA_USER_ATTRIBUTES:
            return f"Invalid property {path.name} in expression {expression}"
    return None


def set_attribute(resource: Row, path: str, value: Any) -> None:
    """Set (or, for None/"", remove) a SCIM attribute; the first entry of a multi-valued one is primary, as
    Okta sends `emails: [{"primary": true, "value": ..., "type": "work"}]`."""
    parsed = _scim_path(path)
    fresh = bool(parsed.filter) and not resource.get(parsed.attr)
    scim_paths.set_value(resource, parsed, None if value in (None, "") else value)
    items = resource.get(parsed.attr)
    if fresh and isinstance(items, list) and items and isinstance(items[0], dict):
        items[0]["primary"] = True


class ScimFailure(Exception):
    """A SCIM call failed; `summary` is what Okta would show (never the token)."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


class OktaEngine:
    def __init__(self, state: OktaState, *, timeout: float = 10.0) -> None:
        self.state = state
        self.timeout = timeout
        # One kept-alive connection per SCIM base URL (scim_http): Okta sends one request at a time per app.
        self._http: dict[str, ScimHttp] = {}
        self._http_lock = threading.Lock()

    def close(self) -> None:
        with self._http_lock:
            clients, self._http = list(self._http.values()), {}
        for client in clients:
            client.close()

    # -- profiles --------------------------------------------------------------------------------------------

    def app_user_name(self, app: Row, user: Row) -> str:
        """The app username from the app's sign-on template (Okta's default: ${source.login})."""
        template = app.get("credentials", {}).get("userNameTemplate", {}).get("template") or "${source.login}"
        profile = user["profile"]
        return _TEMPLATE.sub(lambda m: str(profile.get(m.group(1)) or ""), template)

    def app_profile(self, app_id: str, user: Row, explicit: Row | None = None) -> Row:
        """The app user profile: the app's profile mapping evaluated for `user`, over explicit values."""
        profile: Row = dict(explicit or {})
        mapping = self.state.mapping_to_app(app_id)
        props = (mapping or {}).get("properties", {})
        groups: list[str] = []
        if props:
            for gid in self.state.user_groups.get(user["id"], {}):
                group = self.state.groups.get(gid)
                if group is not None:
                    groups.append(str(group["profile"]["name"]))
        for attr, prop in props.items():
            try:
                profile[attr] = evaluate_expression(prop["expression"], user["profile"], groups)
            except Exception:  # an expression failing for one user leaves the attribute unset, as in Okta
                profile[attr] = None
        return profile

    def _push_statuses(self, app_id: str) -> dict[str, str]:
        mapping = self.state.mapping_to_app(app_id)
        return {a: p.get("pushStatus") or "PUSH" for a, p in (mapping or {}).get("properties", {}).items()}

    # -- HTTP ------------------------------------------------------------------------------------------------

    def _call(
        self,
        app_id: str,
        method: str,
        path: str,
        *,
        action: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> Reply:
        conn = self.state.connections.get(app_id)
        if conn is None:
            raise ScimFailure(f"Error while {action}: provisioning is not configured for the app.")
        headers = {
            "Authorization": f"Bearer {conn['token']}",
            "Accept": SCIM_JSON,
            "User-Agent": "Okta SCIM Client 1.0.0",
        }
        content = None
        if body is not None:
            headers["Content-Type"] = f"{SCIM_JSON}; charset=utf-8"
            content = encode_json(body)
        resp = self._send(method, path, headers, content, params, action=action, base=str(conn["baseUrl"]))
        if resp.status_code not in ok:
            detail = ""
            try:
                data = resp.json()
                if isinstance(data, dict):
                    detail = str(data.get("detail") or data.get("scimType") or "")
            except ValueError:
                detail = resp.text[:200]
            reason = resp.reason_phrase or ""
            raise ScimFailure(
                f"Error while {action}: {resp.status_code} {reason}. "
                f"Errors reported by remote server: {detail or 'none'}"
            )
        return resp

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        content: bytes | None,
        params: dict[str, Any] | None,
        *,
        action: str,
        base: str,
    ) -> Reply:
        """One SCIM request, retried a couple of times like Okta does on 429/503 (honouring a short
        Retry-After) and, for idempotent methods, on a dropped connection; other failures are the caller's."""
        with self._http_lock:
            client = self._http.get(base)
            if client is None:
                client = self._http[base] = ScimHttp(base, {}, self.timeout)
        for attempt in range(RETRIES + 1):
            try:
                with client.lock:
                    resp = client.request(method, path, params=params, body=content, headers=headers)
            except HTTP_ERRORS as exc:
                if attempt < RETRIES and method in ("GET", "PUT", "DELETE"):
                    clock.current().sleep(RETRY_PAUSE)
                    continue
                raise ScimFailure(
                    f"Error while {action}: could not connect to {base}: {type(exc).__name__}."
                ) from exc
            if resp.status_code in (429, 503) and attempt < RETRIES:
                try:
                    pause = float(resp.headers.get("Retry-After", RETRY_PAUSE))
                except ValueError:
                    pause = RETRY_PAUSE
                # On the process's clock (connector.support.clock), like the fault middleware's latency: real in
                # `astro-scim sandbox`, virtual under a test's FakeClock, which never waits for real.
                clock.current().sleep(min(max(pause, 0.0), MAX_RETRY_PAUSE))
                continue
            return resp
        raise AssertionError("unreachable")

    def _json(self, resp: Reply, action: str) -> Row:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            # Okta treats an empty or unparsable body on create as a failure.
            raise ScimFailure(f"Error while {action}: the response is not a SCIM resource.")
        return data

    # -- users -----------------------------------------------------------------------------------------------

    def _scim_user(self, app_id: str, au: Row, user: Row) -> Row:
        body: Row = {"schemas": [CORE_USER], "userName": au["credentials"]["userName"]}
        table = app_attributes()
        for attr, value in au["profile"].items():
            path = table.get(attr)
            if path and value not in (None, ""):
                set_attribute(body, path, value)
        body["active"] = True
        body["externalId"] = user["id"]
        body["groups"] = []
        # Okta always sends a password on create: the user's own when "Sync Password" is on, else a random one
        # (Okta SCIM 2.0 reference, "Create the User": "password": "1mz050nq"; the feature's password
        # capability defaults to seed RANDOM). Okta keeps no copy the emulator could show, so a fresh one.
        body["password"] = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(8))
        return body

    def provision(self, app_id: str, au: Row) -> bool:
        """Create (or match and link) the app user's account in the app. Records the outcome on the row."""
        user = self.state.users.get(au["id"])
        if user is None or user["status"] != "ACTIVE":
            return False
        name = au["credentials"]["userName"]
        action = f"creating user {name}"
        now = self.state.now()
        try:
            resp = self._call(
                app_id,
                "GET",
                "/Users",
                action=f"searching for user {name}",
                params={"filter": f'userName eq "{name}"', "startIndex": 1, "count": 100},
                ok=(200, 404),
            )
            found = None
            if resp.status_code == 200:
                listed = self._json(resp, f"searching for user {name}")
                resources = listed.get("Resources") or []
                found = resources[0] if resources else None
            if found is not None:
                scim_id = str(found["id"])
                au["externalId"] = scim_id
                if self.state.capability(app_id, "update", "profile"):
                    self._put_user(app_id, au, user, activate=True)
                elif found.get("active") is False:
                    self._set_active(app_id, scim_id, True, name)
            else:
                created = self._json(
                    self._call(
                        app_id, "POST", "/Users", action=action, body=self._scim_user(app_id, au, user)
                    ),
                    action,
                )
                if not created.get("id"):
                    raise ScimFailure(f"Error while {action}: the response has no id.")
                au["externalId"] = str(created["id"])
        except ScimFailure as exc:
            au.update(syncState="ERROR", lastUpdated=now, _error=exc.summary)
            return False
        au.update(
            status="PROVISIONED",
            syncState="SYNCHRONIZED",
            lastSync=now,
            statusChanged=now,
            lastUpdated=now,
            _error=None,
        )
        self._join_pushed_groups(app_id, au)
        return True

    def _put_user(self, app_id: str, au: Row, user: Row, *, activate: bool = False) -> None:
        scim_id = au["externalId"]
        name = au["credentials"]["userName"]
        action = f"updating user {name}"
        current = self._json(self._call(app_id, "GET", f"/Users/{scim_id}", action=action), action)
        # Okta PUTs back the whole resource it read, `id`, `groups` and `meta` included (Okta SCIM 2.0
        # reference, "Update a specific User (PUT)"); the server ignores the read-only parts.
        body = dict(current)
        body.setdefault("groups", [])
        body["userName"] = name
        pushes = self._push_statuses(app_id)
        table = app_attributes()
        for attr, value in au["profile"].items():
            path = table.get(attr)
            if not path or pushes.get(attr, "PUSH") != "PUSH":
                continue  # DONT_PUSH: Okta sends the attribute on create only
            set_attribute(body, path, value)
        if activate:
            body["active"] = True
        self._call(app_id, "PUT", f"/Users/{scim_id}", action=action, body=body)

    def _set_active(self, app_id: str, scim_id: str, active: bool, name: str) -> None:
        verb = "activating" if active else "deactivating"
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": active}}]}
        self._call(app_id, "PATCH", f"/Users/{scim_id}", action=f"{verb} user {name}", body=body)

    def update(self, app_id: str, au: Row) -> bool:
        """Push a profile change of a provisioned app user (GET, then full PUT)."""
        user = self.state.users.get(au["id"])
        if user is None or not au.get("externalId"):
            return False
        now = self.state.now()
        try:
            self._put_user(app_id, au, user)
        except ScimFailure as exc:
            au.update(syncState="ERROR", lastUpdated=now, _error=exc.summary)
            return False
        au.update(syncState="SYNCHRONIZED", lastSync=now, lastUpdated=now, _error=None)
        return True

    def deactivate(self, app_id: str, au: Row) -> bool:
        """Deprovision: pathless PATCH active=false. Okta never DELETEs users."""
        if not au.get("externalId"):
            return False
        try:
            self._set_active(app_id, au["externalId"], False, au["credentials"]["userName"])
        except ScimFailure as exc:
            au.update(syncState="ERROR", _error=exc.summary)
            return False
        return True

    # -- group push ------------------------------------------------------------------------------------------

    def _member_refs(self, app_id: str, group_id: str) -> list[Row]:
        """The source group's members that this app has provisioned (Okta pushes only those), as SCIM refs."""
        app_users = self.state.app_users.get(app_id)
        out: list[Row] = []
        table = self.state.members.get(group_id)
        if table is None or app_users is None:
            return out
        for row in table.values():
            au = app_users.get(row["id"])
            user = self.state.users.get(row["id"])
            if au and au.get("externalId") and user and user["status"] == "ACTIVE":
                out.append({"value": au["externalId"], "display": au["credentials"]["userName"]})
        return out

    def _fail_push(self, pm: Row, summary: str) -> None:
        pm.update(status="ERROR", errorSummary=summary, lastUpdated=self.state.now())

    def _target_name(self, pm: Row) -> str:
        if pm.get("_targetName"):
            return str(pm["_targetName"])
        source = self.state.groups.get(pm["sourceGroupId"])
        return str(source["profile"]["name"]) if source else ""

    def push(self, app_id: str, pm: Row) -> bool:
        """Push a group: create it (or link the existing one of that name) and send the full membership."""
        name = self._target_name(pm)
        members = self._member_refs(app_id, pm["sourceGroupId"])
        try:
            if pm.get("_scimId"):
                self._full_update(app_id, pm["_scimId"], name, members)
            else:
                action = f"searching for group {name}"
                resp = self._call(
                    app_id,
                    "GET",
                    "/Groups",
                    action=action,
                    ok=(200, 404),
                    params={"filter": f'displayName eq "{name}"', "startIndex": 1, "count": 100},
                )
                found = (
                    (self._json(resp, action).get("Resources") or [None])[0]
                    if resp.status_code == 200
                    else None
                )
                if found is not None:
                    pm["_scimId"] = str(found["id"])
                    self._full_update(app_id, pm["_scimId"], name, members)
                else:
                    # Okta creates the group empty, `{displayName, members: []}`, and sends the members in a
                    # PATCH of their own (Okta SCIM 2.0 reference, "Create Groups" / "Update specific Group
                    # membership"), which can fail alone: the push is then in ERROR with an empty group there.
                    action = f"creating group {name}"
                    body = {"schemas": [CORE_GROUP], "displayName": name, "members": []}
                    created = self._json(
                        self._call(app_id, "POST", "/Groups", action=action, body=body), action
                    )
                    if not created.get("id"):
                        raise ScimFailure(f"Error while {action}: the response has no id.")
                    pm["_scimId"] = str(created["id"])
                    if not pm.get("targetGroupId"):
                        pm["targetGroupId"] = self._app_group(app_id, name, pm["_scimId"])["id"]
                    if members:
                        self._patch_group(app_id, pm["_scimId"], name,
                                          [{"op": "add", "path": "members", "value": members}])
        except ScimFailure as exc:
            self._fail_push(pm, exc.summary)
            return False
        if not pm.get("targetGroupId"):
            pm["targetGroupId"] = self._app_group(app_id, name, pm["_scimId"])["id"]
        now = self.state.now()
        pm.update(status="ACTIVE", errorSummary="", lastPush=now, lastUpdated=now)
        return True

    def _app_group(self, app_id: str, name: str, scim_id: str) -> Row:
        """The APP_GROUP that stands for the pushed group in Okta (what `targetGroupId` names)."""
        for row in self.state.groups.values():
            if (
                row["type"] == "APP_GROUP"
                and row.get("_sourceApp") == app_id
                and row.get("_scimId") == scim_id
            ):
                return row
        row = self.state.add_group(name, "", group_type="APP_GROUP", source_app=app_id)
        row["_scimId"] = scim_id
        return row

    def _patch_group(self, app_id: str, scim_id: str, name: str, ops: list[Row]) -> None:
        """A group PATCH as Okta sends it: the rename op (value with `id` and `displayName`) goes first on every
        membership update too (Okta SCIM 2.0 reference, "Update specific Group name"; reference/
        scim-libraries-and-quirks.md §3, Okta: "re-sent on every membership update")."""
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"id": scim_id, "displayName": name}}, *ops],
        }
        self._call(app_id, "PATCH", f"/Groups/{scim_id}", action=f"updating group {name}", body=body)

    def _full_update(self, app_id: str, scim_id: str, name: str, members: list[Row]) -> None:
        self._patch_group(app_id, scim_id, name, [{"op": "replace", "path": "members", "value": members}])

    def push_membership(self, app_id: str, pm: Row, user_id: str, added: bool) -> bool:
        """One member joined or left a pushed group: PATCH add `members` / remove `members[value eq ...]`."""
        au = self.state.app_users.get(app_id, None)
        row = au.get(user_id) if au is not None else None
        if not pm.get("_scimId") or row is None or not row.get("externalId"):
            return False
        scim_id, member = pm["_scimId"], row["externalId"]
        if added:
            op: Row = {
                "op": "add",
                "path": "members",
                "value": [{"value": member, "display": row["credentials"]["userName"]}],
            }
        else:
            op = {"op": "remove", "path": f'members[value eq "{member}"]'}
        name = self._target_name(pm)
        try:
            self._patch_group(app_id, scim_id, name, [op])
        except ScimFailure as exc:
            self._fail_push(pm, exc.summary)
            return False
        now = self.state.now()
        pm.update(lastPush=now, lastUpdated=now)
        return True

    def rename(self, app_id: str, pm: Row) -> bool:
        if not pm.get("_scimId"):
            return False
        name = self._target_name(pm)
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"id": pm["_scimId"], "displayName": name}}],
        }
        try:
            self._call(
                app_id, "PATCH", f"/Groups/{pm['_scimId']}", action=f"updating group {name}", body=body
            )
        except ScimFailure as exc:
            self._fail_push(pm, exc.summary)
            return False
        return True

    def delete_target(self, app_id: str, pm: Row) -> bool:
        """Unlink with "delete the group in the app": DELETE /Groups/{id} (404 counts as already gone)."""
        if not pm.get("_scimId"):
            return True
        try:
            self._call(
                app_id,
                "DELETE",
                f"/Groups/{pm['_scimId']}",
                ok=(200, 204, 404),
                action=f"deleting group {self._target_name(pm)}",
            )
        except ScimFailure as exc:
            self._fail_push(pm, exc.summary)
            return False
        return True

    def _join_pushed_groups(self, app_id: str, au: Row) -> None:
        """A newly provisioned user who is in a pushed group joins the app's copy of it."""
        table = self.state.push.get(app_id)
        if table is None:
            return
        for pm in table.values():
            if pm["status"] == "ACTIVE" and self.state.is_member(pm["sourceGroupId"], au["id"]):
                self.push_membership(app_id, pm, au["id"], True)

    # -- what Okta does when assignments, memberships, profiles and mappings change --------------------------

    def refresh_app_features(self, aid: str) -> None:
        """`Application.features` lists what is switched on, as Okta's app object does."""
        st = self.state
        feats: list[str] = []
        if st.provisioning_on(aid):
            if st.capability(aid, "create", "lifecycleCreate"):
                feats.append("PUSH_NEW_USERS")
            if st.capability(aid, "update", "profile"):
                feats.append("PUSH_PROFILE_UPDATES")
            if st.capability(aid, "update", "lifecycleDeactivate"):
                feats.append("PUSH_USER_DEACTIVATION")
            feats.append("GROUP_PUSH")
        st.apps.get(aid)["features"] = feats  # type: ignore[index]

    def assign(
        self,
        aid: str,
        uid: str,
        *,
        group_id: str | None = None,
        explicit: Row | None = None,
        user_name: str | None = None,
    ) -> tuple[Row, bool]:
        """Give `uid` the app (directly, or through group `group_id`); provision if Okta would.

        Returns the app user and whether it was provisioned by this call.
        """
        st = self.state
        app = st.apps.get(aid)
        user = st.users.get(uid)
        assert app is not None and user is not None
        table = st.app_users[aid]
        au = table.get(uid)
        now = st.now()
        new = au is None
        if au is None:
            provisioning = st.provisioning_on(aid)
            au = table.add(
                uid,
                {
                    "id": uid,
                    "externalId": None,
                    "created": now,
                    "lastUpdated": now,
                    "scope": "GROUP" if group_id else "USER",
                    "status": "STAGED" if provisioning else "ACTIVE",
                    "statusChanged": now,
                    "passwordChanged": None,
                    "syncState": "DISABLED",
                    "lastSync": None,
                    "credentials": {"userName": user_name or self.app_user_name(app, user)},
                    "profile": {},
                    "_direct": False,
                    "_groups": {},
                    "_explicit": dict(explicit or {}),
                    "_error": None,
                },
            )
        if group_id:
            au["_groups"][group_id] = None
        else:
            au["_direct"] = True
            if explicit:
                au["_explicit"].update(explicit)
            if user_name:
                au["credentials"]["userName"] = user_name
        au["scope"] = "USER" if au["_direct"] else "GROUP"
        au["profile"] = self.app_profile(aid, user, au["_explicit"])
        provisioned = False
        if (new or not au.get("externalId")) and st.capability(aid, "create", "lifecycleCreate"):
            provisioned = self.provision(aid, au)
        return au, provisioned

    def unassign(self, aid: str, uid: str, *, group_id: str | None = None) -> None:
        """Take back one source of the assignment; when none is left, deprovision and drop the app user."""
        st = self.state
        table = st.app_users[aid]
        au = table.get(uid)
        if au is None:
            return
        if group_id:
            au["_groups"].pop(group_id, None)
        else:
            au["_direct"] = False
        if au["_direct"] or au["_groups"]:
            au["scope"] = "USER" if au["_direct"] else "GROUP"
            return
        if st.capability(aid, "update", "lifecycleDeactivate"):
            self.deactivate(aid, au)
        table.remove(uid)

    def member_added(self, gid: str, uid: str) -> None:
        st = self.state
        just_provisioned: set[str] = set()
        user = st.users.get(uid)
        if user is not None and user["status"] == "ACTIVE":
            for aid, groups in st.app_groups.items():
                if gid in groups:
                    _au, provisioned = self.assign(aid, uid, group_id=gid)
                    if provisioned:
                        just_provisioned.add(aid)
        for aid, mappings in st.push.items():
            if aid in just_provisioned:
                continue  # provisioning already joined the user to the app's pushed groups
            for pm in mappings.values():
                if pm["sourceGroupId"] == gid and pm["status"] == "ACTIVE":
                    self.push_membership(aid, pm, uid, True)

    def member_removed(self, gid: str, uid: str) -> None:
        st = self.state
        for aid, mappings in st.push.items():
            for pm in mappings.values():
                if pm["sourceGroupId"] == gid and pm["status"] == "ACTIVE":
                    self.push_membership(aid, pm, uid, False)
        for aid, groups in st.app_groups.items():
            if gid in groups:
                self.unassign(aid, uid, group_id=gid)

    def user_changed(self, user: Row) -> None:
        """Recompute the user's app profiles; push the change where "Update User Attributes" is on."""
        st = self.state
        for aid, table in st.app_users.items():
            au = table.get(user["id"])
            if au is None:
                continue
            app = st.apps.get(aid)
            assert app is not None
            profile = self.app_profile(aid, user, au["_explicit"])
            name = self.app_user_name(app, user)
            if profile == au["profile"] and name == au["credentials"]["userName"]:
                continue
            au["profile"] = profile
            au["credentials"]["userName"] = name
            au["lastUpdated"] = st.now()
            if au.get("externalId") and st.capability(aid, "update", "profile"):
                self.update(aid, au)

    def remap_app(self, aid: str) -> None:
        """A profile mapping changed: every app user's profile is re-evaluated (and pushed if enabled)."""
        st = self.state
        for au in list(st.app_users[aid].values()):
            user = st.users.get(au["id"])
            if user is None:
                continue
            profile = self.app_profile(aid, user, au["_explicit"])
            if profile == au["profile"]:
                continue
            au["profile"] = profile
            au["lastUpdated"] = st.now()
            if au.get("externalId") and st.capability(aid, "update", "profile"):
                self.update(aid, au)
