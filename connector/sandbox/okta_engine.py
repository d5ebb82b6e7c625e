"""Okta's provisioning engine, emulated: what Okta sends to an app's SCIM server, with Okta's request shapes.

Runs synchronously inside the API request that triggers it (assignment, profile change, push mapping), so a
test sees the result as soon as the call returns. The shapes follow Okta's SCIM 2.0 guide
(reference/scim-libraries-and-quirks.md §3): match by `userName eq` before create, POST with `externalId` = the
Okta user id and `groups: []`, full PUT (GET, modify, PUT) for profile updates, pathless PATCH for
deactivation, never DELETE a user; groups are created by POST, members changed by PATCH add/remove, and a
re-push sends the rename op (value with id and displayName) plus a full `members` replace.

The caller holds the state lock: the engine reads and writes rows directly.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import httpx

from connector.sandbox.okta_state import OktaState, Row

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"

# App user attribute -> SCIM path, the attribute names of Okta's SCIM 2.0 app template. Used only until
# connector.mapping.idp_attributes (the project's one table, shared with the Okta provider) is importable.
_FALLBACK_APP_ATTRIBUTES: dict[str, str] = {
    "givenName": "name.givenName",
    "familyName": "name.familyName",
    "middleName": "name.middleName",
    "honorificPrefix": "name.honorificPrefix",
    "honorificSuffix": "name.honorificSuffix",
    "email": 'emails[type eq "work"].value',
    "secondEmail": 'emails[type eq "home"].value',
    "displayName": "displayName",
    "nickName": "nickName",
    "profileUrl": "profileUrl",
    "title": "title",
    "userType": "userType",
    "preferredLanguage": "preferredLanguage",
    "locale": "locale",
    "timezone": "timezone",
    "primaryPhone": 'phoneNumbers[type eq "work"].value',
    "mobilePhone": 'phoneNumbers[type eq "mobile"].value',
    "streetAddress": 'addresses[type eq "work"].streetAddress',
    "city": 'addresses[type eq "work"].locality',
    "state": 'addresses[type eq "work"].region',
    "zipCode": 'addresses[type eq "work"].postalCode',
    "countryCode": 'addresses[type eq "work"].country',
    "employeeNumber": f"{ENTERPRISE_USER}:employeeNumber",
    "costCenter": f"{ENTERPRISE_USER}:costCenter",
    "organization": f"{ENTERPRISE_USER}:organization",
    "division": f"{ENTERPRISE_USER}:division",
    "department": f"{ENTERPRISE_USER}:department",
}

_FILTERED = re.compile(r'^(\w+)\[(\w+) eq "([^"]*)"\](?:\.(\w+))?$')
_USER_ATTR = re.compile(r"^\s*user\.(\w+)\s*$")
_TEMPLATE = re.compile(r"\$\{source\.(\w+)\}")


# The Okta base user profile (spec schema UserProfile): expressions may only read these user.* attributes.
OKTA_USER_ATTRIBUTES = frozenset({
    "login", "email", "secondEmail", "firstName", "lastName", "middleName", "honorificPrefix", "honorificSuffix",
    "title", "displayName", "nickName", "profileUrl", "primaryPhone", "mobilePhone", "streetAddress", "city",
    "state", "zipCode", "countryCode", "postalAddress", "preferredLanguage", "locale", "timezone", "userType",
    "employeeNumber", "costCenter", "organization", "division", "department", "managerId", "manager",
})


def _optional(module: str) -> Any:
    """A project module another helper may not have landed yet; None until it exists."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def app_attributes() -> dict[str, str]:
    """The app user schema of the emulated SCIM apps: attribute name -> SCIM path."""
    idp_attributes = _optional("connector.mapping.idp_attributes")
    table = getattr(idp_attributes, "OKTA_APP_USER_TO_SCIM", None)
    return dict(table) if isinstance(table, dict) and table else _FALLBACK_APP_ATTRIBUTES


def evaluate_expression(expression: str, profile: Row, groups: list[str] | None = None) -> Any:
    """An Okta expression's value for a user profile (and the user's group names, for isMemberOf*)."""
    okta_expr = _optional("connector.mapping.okta_expr")
    if okta_expr is None:
        m = _USER_ATTR.match(expression)
        return profile.get(m.group(1)) if m else None
    return okta_expr.evaluate(okta_expr.parse(expression), profile, groups=groups or ())


def expression_error(expression: str) -> str | None:
    """Why Okta would refuse an expression in a user-to-app profile mapping, or None."""
    okta_expr = _optional("connector.mapping.okta_expr")
    if okta_expr is None:
        m = _USER_ATTR.match(expression)
        if m and m.group(1) not in OKTA_USER_ATTRIBUTES:
            return f"Invalid property {m.group(1)} in expression {expression}"
        return None
    try:
        parsed = okta_expr.parse(expression)
    except Exception as exc:  # the parser's own error type: any failure is a 400 for the client
        return f"Invalid expression {expression}: {exc}"
    for path in okta_expr.attributes(parsed):
        if path.root == "user" and path.name not in OKTA_USER_ATTRIBUTES:
            return f"Invalid property {path.name} in expression {expression}"
    return None


def set_path(resource: Row, path: str, value: Any) -> None:
    """Set a SCIM attribute by path: `a`, `a.b`, `a[type eq "x"].b`, or an extension URN's `urn:...:attr`."""
    if path.startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        resource.setdefault(urn, {})[attr] = value
        schemas = resource.setdefault("schemas", [])
        if urn not in schemas:
            schemas.append(urn)
        return
    m = _FILTERED.match(path)
    if m:
        attr, key, wanted, sub = m.groups()
        items = resource.setdefault(attr, [])
        for item in items:
            if item.get(key) == wanted:
                item[sub or "value"] = value
                return
        item = {sub or "value": value, key: wanted}
        if not items:
            item["primary"] = True  # Okta marks the first (primary) email/phone/address so
        items.append(item)
        return
    head, _, tail = path.partition(".")
    if tail:
        resource.setdefault(head, {})[tail] = value
    else:
        resource[head] = value


def remove_path(resource: Row, path: str) -> None:
    if path.startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        resource.get(urn, {}).pop(attr, None)
        return
    m = _FILTERED.match(path)
    if m:
        attr, key, wanted, _sub = m.groups()
        items = resource.get(attr) or []
        resource[attr] = [i for i in items if i.get(key) != wanted]
        if not resource[attr]:
            resource.pop(attr)
        return
    head, _, tail = path.partition(".")
    if tail:
        sub = resource.get(head)
        if isinstance(sub, dict):
            sub.pop(tail, None)
    else:
        resource.pop(head, None)


class ScimFailure(Exception):
    """A SCIM call failed; `summary` is what Okta would show (never the token)."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


class OktaEngine:
    def __init__(self, state: OktaState, *, timeout: float = 10.0) -> None:
        self.state = state
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    # -- profiles ----------------------------------------------------------------------------------------------

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

    # -- HTTP --------------------------------------------------------------------------------------------------

    def _call(self, app_id: str, method: str, path: str, *, action: str, body: Any = None,
              params: dict[str, Any] | None = None, ok: tuple[int, ...] = (200, 201, 204)) -> httpx.Response:
        conn = self.state.connections.get(app_id)
        if conn is None:
            raise ScimFailure(f"Error while {action}: provisioning is not configured for the app.")
        url = str(conn["baseUrl"]).rstrip("/") + path
        headers = {"Authorization": f"Bearer {conn['token']}", "Accept": SCIM_JSON,
                   "User-Agent": "Okta SCIM Client 1.0.0"}
        content = None
        if body is not None:
            headers["Content-Type"] = f"{SCIM_JSON}; charset=utf-8"
            content = json.dumps(body)
        try:
            resp = self._http.request(method, url, headers=headers, content=content, params=params)
        except httpx.HTTPError as exc:
            raise ScimFailure(f"Error while {action}: could not connect to {conn['baseUrl']}: "
                              f"{type(exc).__name__}.") from None
        if resp.status_code not in ok:
            detail = ""
            try:
                data = resp.json()
                if isinstance(data, dict):
                    detail = str(data.get("detail") or data.get("scimType") or "")
            except ValueError:
                detail = resp.text[:200]
            reason = resp.reason_phrase or ""
            raise ScimFailure(f"Error while {action}: {resp.status_code} {reason}. "
                              f"Errors reported by remote server: {detail or 'none'}")
        return resp

    def _json(self, resp: httpx.Response, action: str) -> Row:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            # Okta treats an empty or unparsable body on create as a failure.
            raise ScimFailure(f"Error while {action}: the response is not a SCIM resource.")
        return data

    # -- users -------------------------------------------------------------------------------------------------

    def _scim_user(self, app_id: str, au: Row, user: Row) -> Row:
        body: Row = {"schemas": [CORE_USER], "userName": au["credentials"]["userName"]}
        table = app_attributes()
        for attr, value in au["profile"].items():
            path = table.get(attr)
            if path and value not in (None, ""):
                set_path(body, path, value)
        body["active"] = True
        body["externalId"] = user["id"]
        body["groups"] = []
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
            resp = self._call(app_id, "GET", "/Users", action=f"searching for user {name}",
                              params={"filter": f'userName eq "{name}"', "startIndex": 1, "count": 100},
                              ok=(200, 404))
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
                created = self._json(self._call(app_id, "POST", "/Users", action=action,
                                                body=self._scim_user(app_id, au, user)), action)
                if not created.get("id"):
                    raise ScimFailure(f"Error while {action}: the response has no id.")
                au["externalId"] = str(created["id"])
        except ScimFailure as exc:
            au.update(syncState="ERROR", lastUpdated=now, _error=exc.summary)
            return False
        au.update(status="PROVISIONED", syncState="SYNCHRONIZED", lastSync=now, statusChanged=now,
                  lastUpdated=now, _error=None)
        self._join_pushed_groups(app_id, au)
        return True

    def _put_user(self, app_id: str, au: Row, user: Row, *, activate: bool = False) -> None:
        scim_id = au["externalId"]
        name = au["credentials"]["userName"]
        action = f"updating user {name}"
        current = self._json(self._call(app_id, "GET", f"/Users/{scim_id}", action=action), action)
        body = {k: v for k, v in current.items() if k != "meta"}
        body["userName"] = name
        pushes = self._push_statuses(app_id)
        table = app_attributes()
        for attr, value in au["profile"].items():
            path = table.get(attr)
            if not path or pushes.get(attr, "PUSH") != "PUSH":
                continue  # DONT_PUSH: Okta sends the attribute on create only
            if value in (None, ""):
                remove_path(body, path)
            else:
                set_path(body, path, value)
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

    # -- group push --------------------------------------------------------------------------------------------

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
                resp = self._call(app_id, "GET", "/Groups", action=action, ok=(200, 404),
                                  params={"filter": f'displayName eq "{name}"', "startIndex": 1, "count": 100})
                found = (self._json(resp, action).get("Resources") or [None])[0] if resp.status_code == 200 else None
                if found is not None:
                    pm["_scimId"] = str(found["id"])
                    self._full_update(app_id, pm["_scimId"], name, members)
                else:
                    action = f"creating group {name}"
                    body = {"schemas": [CORE_GROUP], "displayName": name, "members": members}
                    created = self._json(self._call(app_id, "POST", "/Groups", action=action, body=body), action)
                    if not created.get("id"):
                        raise ScimFailure(f"Error while {action}: the response has no id.")
                    pm["_scimId"] = str(created["id"])
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
            if row["type"] == "APP_GROUP" and row.get("_sourceApp") == app_id and row.get("_scimId") == scim_id:
                return row
        row = self.state.add_group(name, "", group_type="APP_GROUP", source_app=app_id)
        row["_scimId"] = scim_id
        return row

    def _full_update(self, app_id: str, scim_id: str, name: str, members: list[Row]) -> None:
        body = {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "value": {"id": scim_id, "displayName": name}},
            {"op": "replace", "path": "members", "value": members},
        ]}
        self._call(app_id, "PATCH", f"/Groups/{scim_id}", action=f"updating group {name}", body=body)

    def push_membership(self, app_id: str, pm: Row, user_id: str, added: bool) -> bool:
        """One member joined or left a pushed group: PATCH add `members` / remove `members[value eq ...]`."""
        au = self.state.app_users.get(app_id, None)
        row = au.get(user_id) if au is not None else None
        if not pm.get("_scimId") or row is None or not row.get("externalId"):
            return False
        scim_id, member = pm["_scimId"], row["externalId"]
        if added:
            op: Row = {"op": "add", "path": "members",
                       "value": [{"value": member, "display": row["credentials"]["userName"]}]}
        else:
            op = {"op": "remove", "path": f'members[value eq "{member}"]'}
        name = self._target_name(pm)
        try:
            self._call(app_id, "PATCH", f"/Groups/{scim_id}", action=f"updating group {name}",
                       body={"schemas": [PATCH_OP], "Operations": [op]})
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
        body = {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "value": {"id": pm["_scimId"], "displayName": name}}]}
        try:
            self._call(app_id, "PATCH", f"/Groups/{pm['_scimId']}", action=f"updating group {name}", body=body)
        except ScimFailure as exc:
            self._fail_push(pm, exc.summary)
            return False
        return True

    def delete_target(self, app_id: str, pm: Row) -> bool:
        """Unlink with "delete the group in the app": DELETE /Groups/{id} (404 counts as already gone)."""
        if not pm.get("_scimId"):
            return True
        try:
            self._call(app_id, "DELETE", f"/Groups/{pm['_scimId']}", ok=(200, 204, 404),
                       action=f"deleting group {self._target_name(pm)}")
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
