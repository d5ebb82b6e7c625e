"""The Astro Platform API's Team-role endpoints, emulated over the SCIM store of `AstroScim`.

A SCIM Group pushed by an IdP *is* an Astro Team: the Team id is the Group id and the name its displayName, so
a Team appears here the moment an IdP creates its Group. Roles live in a side table keyed by Team id (SCIM
knows nothing of them). Each organization gets seeded Workspaces and Deployments on first use.

Served under `/v1` on the Astro server (`mount`):

    GET  /v1/organizations/{org}/teams[?names=..&offset=..&limit=..]     {"teams": [...], "totalCount", ...}
    GET  /v1/organizations/{org}/teams/{teamId}
    POST /v1/organizations/{org}/teams/{teamId}/roles                    replaces the Team's whole role set
    GET  /v1/organizations/{org}/workspaces[/{id}]   GET /v1/organizations/{org}/deployments[/{id}]

Shapes follow Astronomer's API reference (reference/astro-api.md); errors are `{"message", "statusCode",
"requestId"}`. Where the reference is silent the emulator is strict on purpose (a deployment role without a
role on its Workspace is a 400), so that a client bug shows up here rather than in production.
"""

from __future__ import annotations

import copy
import functools
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connector.sandbox.astro.scim import AstroScim

PLATFORM_PREFIX = "/v1"
ORGANIZATION_ROLES = ("ORGANIZATION_MEMBER", "ORGANIZATION_BILLING_ADMIN", "ORGANIZATION_OWNER")
WORKSPACE_ROLES = (
    "WORKSPACE_ACCESSOR",
    "WORKSPACE_MEMBER",
    "WORKSPACE_AUTHOR",
    "WORKSPACE_OPERATOR",
    "WORKSPACE_OWNER",
)
DEPLOYMENT_ROLES = ("DEPLOYMENT_ADMIN",)
# A Team created by SCIM starts as an Organization Member with no Workspace or Deployment role.
DEFAULT_ORGANIZATION_ROLE = "ORGANIZATION_MEMBER"
DEFAULT_WORKSPACES = ("analytics", "platform")
DEFAULT_DEPLOYMENTS = (("analytics", "prod"), ("analytics", "dev"), ("platform", "prod"))
MAX_LIMIT = 1000

WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_CUID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _cuid() -> str:
    return "cl" + "".join(secrets.choice(_CUID_ALPHABET) for _ in range(23))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _now() -> str:
    return _stamp(datetime.now(UTC))


def astro_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"message": message, "statusCode": status, "requestId": str(uuid.uuid4())}
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Roles:
    organization: str = DEFAULT_ORGANIZATION_ROLE
    workspaces: dict[str, str] = field(default_factory=dict)  # workspace id -> role
    deployments: dict[str, str] = field(default_factory=dict)  # deployment id -> role


@dataclass
class _OrgState:
    workspaces: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> workspace JSON
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> deployment JSON
    roles: dict[str, Roles] = field(default_factory=dict)  # team (SCIM group) id -> roles
    updated: dict[str, str] = field(default_factory=dict)  # team id -> updatedAt of its roles


@functools.cache
def _routes() -> Map:
    # Built once per process and shared (a Map is only read once built): compiling the rules costs ~25 ms, on
    # every sandbox start.
    o = f"{PLATFORM_PREFIX}/organizations/<org_id>"
    return Map(
        [
            Rule(f"{o}/teams", endpoint="teams", methods=["GET"]),
            Rule(f"{o}/teams/<team_id>", endpoint="team", methods=["GET"]),
            Rule(f"{o}/teams/<team_id>/roles", endpoint="team_roles", methods=["POST"]),
            Rule(f"{o}/workspaces", endpoint="workspaces", methods=["GET"]),
            Rule(f"{o}/workspaces/<item_id>", endpoint="workspace", methods=["GET"]),
            Rule(f"{o}/deployments", endpoint="deployments", methods=["GET"]),
            Rule(f"{o}/deployments/<item_id>", endpoint="deployment", methods=["GET"]),
        ],
        strict_slashes=False,
        merge_slashes=False,
    )


class AstroPlatform:
    """The Platform API for every organization of `scim` (same tokens, same Teams)."""

    def __init__(
        self,
        scim: AstroScim,
        *,
        workspaces: Iterable[str] = DEFAULT_WORKSPACES,
        deployments: Iterable[tuple[str, str]] = DEFAULT_DEPLOYMENTS,
    ) -> None:
        self.scim = scim
        self._seed_workspaces = tuple(workspaces)
        self._seed_deployments = tuple(deployments)
        self._orgs: dict[str, _OrgState] = {}
        self._lock = threading.RLock()
        self.custom_deployment_roles: set[str] = set()
        self._routes = _routes()

    # -- snapshots (Sandbox.snapshot / restore) --------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Each organization's workspaces, deployments and Team roles, copied (ids and names only: no URL or
        token to translate)."""
        with self._lock:
            return {"orgs": copy.deepcopy(self._orgs), "custom": set(self.custom_deployment_roles)}

    def restore(self, snap: dict[str, Any]) -> None:
        with self._lock:
            self._orgs = copy.deepcopy(snap["orgs"])
            self.custom_deployment_roles = set(snap["custom"])

    # -- state ----------------------------------------------------------------------------------------------

    def _state(self, org_id: str) -> _OrgState:
        if org_id not in self.scim.org_ids():
            raise _ApiError(404, f"organization {org_id} not found")
        with self._lock:
            state = self._orgs.get(org_id)
            if state is None:
                state = self._orgs[org_id] = _OrgState()
                for name in self._seed_workspaces:
                    self._new_workspace(org_id, state, name)
                for ws_name, dep_name in self._seed_deployments:
                    self._new_deployment(org_id, state, ws_name, dep_name)
            return state

    @staticmethod
    def _new_workspace(org_id: str, state: _OrgState, name: str) -> str:
        ws_id = _cuid()
        state.workspaces[ws_id] = {
            "id": ws_id,
            "name": name,
            "organizationId": org_id,
            "description": "",
            "createdAt": _now(),
            "updatedAt": _now(),
        }
        return ws_id

    @staticmethod
    def _new_deployment(org_id: str, state: _OrgState, ws_name: str, name: str) -> str:
        ws = next((w for w in state.workspaces.values() if w["name"] == ws_name), None)
        if ws is None:
            raise KeyError(f"no workspace {ws_name!r}")
        dep_id = _cuid()
        state.deployments[dep_id] = {
            "id": dep_id,
            "name": name,
            "organizationId": org_id,
            "workspaceId": ws["id"],
            "workspaceName": ws["name"],
            "status": "HEALTHY",
            "createdAt": _now(),
            "updatedAt": _now(),
        }
        return dep_id

    def _groups(self, org_id: str) -> list[tuple[str, str, str]]:
        """(id, displayName, created) of every SCIM Group of the organization: the Teams."""
        org = self.scim._org(org_id)
        type_name = cast(str, self.scim.group_type.name)
        with org.storage.lock:
            out = []
            for group in org.storage._resources.get(type_name, {}).values():
                created = _stamp(group.meta.created) if group.meta and group.meta.created else _now()
                out.append(
                    (cast(str, group.id), cast(str, getattr(group, "display_name", "") or ""), created)
                )
        return out

    def _team_json(
        self, org_id: str, state: _OrgState, team_id: str, name: str, created: str
    ) -> dict[str, Any]:
        roles = state.roles.get(team_id, Roles())
        body = {
            "id": team_id,
            "name": name,
            "description": "",
            "isIdpManaged": True,
            "organizationId": org_id,
            "organizationRole": roles.organization,
            "workspaceRoles": [{"workspaceId": w, "role": r} for w, r in sorted(roles.workspaces.items())],
            "deploymentRoles": [{"deploymentId": d, "role": r} for d, r in sorted(roles.deployments.items())],
            "createdAt": created,
            "updatedAt": state.updated.get(team_id, created),
        }
        body["rolesCount"] = 1 + len(roles.workspaces) + len(roles.deployments)
        return body

    # -- inspection and out-of-band changes (tests, demo) --------------------------------------------------

    def workspaces(self, org_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(w) for w in self._state(org_id).workspaces.values()]

    def deployments(self, org_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._state(org_id).deployments.values()]

    def workspace_id(self, org_id: str, name: str) -> str:
        return str(next(w["id"] for w in self.workspaces(org_id) if w["name"] == name))

    def deployment_id(self, org_id: str, workspace: str, name: str) -> str:
        return str(next(
            d["id"] for d in self.deployments(org_id) if d["name"] == name and d["workspaceName"] == workspace
        ))

    def add_workspace(self, org_id: str, name: str) -> str:
        with self._lock:
            return self._new_workspace(org_id, self._state(org_id), name)

    def add_deployment(self, org_id: str, workspace: str, name: str) -> str:
        with self._lock:
            return self._new_deployment(org_id, self._state(org_id), workspace, name)

    def _team_id(self, org_id: str, team_name: str) -> str:
        for team_id, name, _ in self._groups(org_id):
            if name == team_name:
                return team_id
        raise KeyError(f"no team {team_name!r} in Astro organization {org_id!r}")

    def team(self, org_id: str, team_name: str) -> dict[str, Any]:
        """The Team as GET /teams/{id} shows it (roles by id)."""
        for team_id, name, created in self._groups(org_id):
            if name == team_name:
                with self._lock:
                    return self._team_json(org_id, self._state(org_id), team_id, name, created)
        raise KeyError(f"no team {team_name!r} in Astro organization {org_id!r}")

    def team_roles(self, org_id: str, team_name: str) -> dict[str, Any]:
        """A Team's roles by name: organization, workspaces {name: role}, deployments {"ws/dep": role}."""
        team_id = self._team_id(org_id, team_name)
        with self._lock:
            state = self._state(org_id)
            roles = state.roles.get(team_id, Roles())
            return {
                "organization": roles.organization,
                "workspaces": {state.workspaces[w]["name"]: r for w, r in roles.workspaces.items()},
                "deployments": {
                    f"{state.deployments[d]['workspaceName']}/{state.deployments[d]['name']}": r
                    for d, r in roles.deployments.items()
                },
            }

    def set_team_roles(
        self,
        org_id: str,
        team_name: str,
        *,
        organization: str | None = None,
        workspaces: dict[str, str] | None = None,
        deployments: dict[str, str] | None = None,
    ) -> None:
        """Change a Team's roles behind the tool's back (drift), by names ("ws/dep" for deployments).

        Only the scopes given change; no validation, like an admin clicking in the UI.
        """
        team_id = self._team_id(org_id, team_name)
        with self._lock:
            state = self._state(org_id)
            roles = state.roles.setdefault(team_id, Roles())
            if organization is not None:
                roles.organization = organization
            if workspaces is not None:
                roles.workspaces = {self.workspace_id(org_id, n): r for n, r in workspaces.items()}
            if deployments is not None:
                roles.deployments = {
                    self.deployment_id(org_id, *n.split("/", 1)): r for n, r in deployments.items()
                }
            state.updated[team_id] = _now()

    # -- HTTP -----------------------------------------------------------------------------------------------

    def mount(self, scim_app: WSGI) -> WSGI:
        """One WSGI app: `/v1/...` here, everything else to `scim_app` (the SCIM server, its admin paths)."""

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == PLATFORM_PREFIX or path.startswith(PLATFORM_PREFIX + "/"):
                return self.app(environ, start_response)
            return scim_app(environ, start_response)

        return app

    @staticmethod
    def _is_platform(request: Request) -> bool:
        return request.path.startswith(PLATFORM_PREFIX + "/")

    def throttle_response(self, request: Request) -> Response:
        if not self._is_platform(request):
            return self.scim.throttle_response(request)
        return astro_error(429, "Too many requests; retry later", headers={"Retry-After": "1"})

    def server_error_response(self, request: Request) -> Response:
        if not self._is_platform(request):
            return self.scim.server_error_response(request)
        return astro_error(500, "Internal server error")

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        adapter = self._routes.bind_to_environ(environ)
        try:
            endpoint, values = adapter.match()
        except HTTPException as exc:
            return astro_error(exc.code or 404, exc.description or "not found")(environ, start_response)
        try:
            self._check_auth(request, values["org_id"])
            body = getattr(self, f"_{endpoint}")(request, **values)
        except _ApiError as exc:
            return astro_error(exc.status, exc.message)(environ, start_response)
        return Response(json.dumps(body), content_type="application/json")(environ, start_response)

    def _check_auth(self, request: Request, org_id: str) -> None:
        try:
            org = self.scim._org(org_id)
        except KeyError as cause:
            raise _ApiError(404, f"organization {org_id} not found") from cause
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode(), org.token.encode()
        ):
            raise _ApiError(401, "Unauthorized: invalid or missing bearer token")

    @staticmethod
    def _page(request: Request, items: list[dict[str, Any]], key: str) -> dict[str, Any]:
        try:
            offset = int(request.args.get("offset", 0))
            limit = int(request.args.get("limit", 20))
        except ValueError as cause:
            raise _ApiError(400, "offset and limit must be integers") from cause
        if offset < 0 or not 0 <= limit <= MAX_LIMIT:
            raise _ApiError(400, f"offset must be >= 0 and limit between 0 and {MAX_LIMIT}")
        return {
            key: items[offset : offset + limit],
            "totalCount": len(items),
            "offset": offset,
            "limit": limit,
        }

    @staticmethod
    def _multi(request: Request, name: str) -> set[str] | None:
        # Arrays arrive as repeated parameters (names=a&names=b), each value whole: a Team named "R&D, Europe" is
        # one name (split on the comma, it was never found, and apply waited for a Team that was there).
        values = [v for v in request.args.getlist(name) if v]
        return set(values) if values else None

    def _teams(self, request: Request, org_id: str) -> dict[str, Any]:
        names = self._multi(request, "names")
        groups = sorted(self._groups(org_id), key=lambda g: (g[1].casefold(), g[0]))
        with self._lock:
            state = self._state(org_id)
            teams = [
                self._team_json(org_id, state, i, n, c) for i, n, c in groups if names is None or n in names
            ]
        return self._page(request, teams, "teams")

    def _team(self, request: Request, org_id: str, team_id: str) -> dict[str, Any]:
        for i, name, created in self._groups(org_id):
            if i == team_id:
                with self._lock:
                    return self._team_json(org_id, self._state(org_id), i, name, created)
        raise _ApiError(404, f"team {team_id} not found")

    def _team_roles(self, request: Request, org_id: str, team_id: str) -> dict[str, Any]:
        if not any(i == team_id for i, _, _ in self._groups(org_id)):
            raise _ApiError(404, f"team {team_id} not found")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _ApiError(400, "request body must be a JSON object")
        org_role = body.get("organizationRole")
        if org_role not in ORGANIZATION_ROLES:
            raise _ApiError(400, f"organizationRole must be one of {', '.join(ORGANIZATION_ROLES)}")
        with self._lock:
            state = self._state(org_id)
            workspaces = self._grants(
                body.get("workspaceRoles"), "workspaceId", state.workspaces, WORKSPACE_ROLES, "workspace"
            )
            deployments = self._grants(
                body.get("deploymentRoles"),
                "deploymentId",
                state.deployments,
                (*DEPLOYMENT_ROLES, *sorted(self.custom_deployment_roles)),
                "deployment",
            )
            for dep_id in deployments:
                ws_id = state.deployments[dep_id]["workspaceId"]
                if ws_id not in workspaces:
                    raise _ApiError(
                        400,
                        f"deployment {dep_id} belongs to workspace {ws_id}, on which the team "
                        "has no role: add a workspace role for it",
                    )
            state.roles[team_id] = Roles(org_role, workspaces, deployments)
            state.updated[team_id] = _now()
        return {
            "organizationRole": org_role,
            "workspaceRoles": [{"workspaceId": w, "role": r} for w, r in sorted(workspaces.items())],
            "deploymentRoles": [{"deploymentId": d, "role": r} for d, r in sorted(deployments.items())],
        }

    @staticmethod
    def _grants(
        raw: Any, id_key: str, known: dict[str, dict[str, Any]], roles: tuple[str, ...], what: str
    ) -> dict[str, str]:
        if raw is None:
            return {}
        if not isinstance(raw, list):
            raise _ApiError(400, f"{what}Roles must be a list")
        out: dict[str, str] = {}
        for entry in raw:
            if not isinstance(entry, dict):
                raise _ApiError(400, f"{what}Roles entries must be objects")
            item_id, role = entry.get(id_key), entry.get("role")
            if item_id not in known:
                raise _ApiError(404, f"{what} {item_id} not found")
            if role not in roles:
                raise _ApiError(400, f"invalid {what} role {role!r}; one of {', '.join(roles)}")
            if item_id in out:
                raise _ApiError(400, f"{what} {item_id} is listed twice")
            out[cast(str, item_id)] = cast(str, role)
        return out

    def _listing(
        self, request: Request, items: Iterable[dict[str, Any]], key: str, ids_param: str
    ) -> dict[str, Any]:
        names, ids = self._multi(request, "names"), self._multi(request, ids_param)
        ws_ids = self._multi(request, "workspaceIds") if key == "deployments" else None
        chosen = [
            dict(i)
            for i in sorted(items, key=lambda i: (i["name"], i["id"]))
            if (names is None or i["name"] in names)
            and (ids is None or i["id"] in ids)
            and (ws_ids is None or i.get("workspaceId") in ws_ids)
        ]
        return self._page(request, chosen, key)

    def _workspaces(self, request: Request, org_id: str) -> dict[str, Any]:
        with self._lock:
            return self._listing(
                request, self._state(org_id).workspaces.values(), "workspaces", "workspaceIds"
            )

    def _deployments(self, request: Request, org_id: str) -> dict[str, Any]:
        with self._lock:
            return self._listing(
                request, self._state(org_id).deployments.values(), "deployments", "deploymentIds"
            )

    def _workspace(self, request: Request, org_id: str, item_id: str) -> dict[str, Any]:
        with self._lock:
            ws = self._state(org_id).workspaces.get(item_id)
        if ws is None:
            raise _ApiError(404, f"workspace {item_id} not found")
        return dict(ws)

    def _deployment(self, request: Request, org_id: str, item_id: str) -> dict[str, Any]:
        with self._lock:
            dep = self._state(org_id).deployments.get(item_id)
        if dep is None:
            raise _ApiError(404, f"deployment {item_id} not found")
        return dict(dep)
