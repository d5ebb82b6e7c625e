"""Every emulated Okta operation answers with the status and body shape the Okta Management OpenAPI spec 5.1.0
documents (validated with openapi-core). The spec is Okta's own, kept gzipped in tests/data/specs (see the README
there), so the tests run on any clean clone."""

from __future__ import annotations

import gzip
import hashlib
import inspect
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse
from openapi_core.testing import MockRequest
from werkzeug.test import Client, TestResponse

from connector.sandbox.core import Sandbox
from connector.sandbox.okta.api import OktaEmulator

SPEC = Path(__file__).resolve().parent / "data" / "specs" / "okta-management-openapi-5.1.0.yaml.gz"
# The spec cut down to the emulated paths, with the key of what it was cut from (see _cached_pruned_spec).
PRUNED = SPEC.with_name("okta-management-openapi-5.1.0.pruned.json.gz")
# One xdist worker runs the whole module: the pruned spec is read (or, while stale, built) at most once per run.
pytestmark = pytest.mark.xdist_group("okta-openapi")

BASE = "http://localhost"
EMULATED_PATHS = [
    "/api/v1/users",
    "/api/v1/users/{id}",
    "/api/v1/users/{id}/groups",
    "/api/v1/groups",
    "/api/v1/groups/{groupId}",
    "/api/v1/groups/{groupId}/users",
    "/api/v1/users/{id}/lifecycle/deactivate",
    "/api/v1/groups/{groupId}/users/{userId}",
    "/api/v1/meta/types/user",
    "/api/v1/apps",
    "/api/v1/apps/{appId}",
    "/api/v1/apps/{appId}/users",
    "/api/v1/apps/{appId}/users/{userId}",
    "/api/v1/apps/{appId}/groups",
    "/api/v1/apps/{appId}/groups/{groupId}",
    "/api/v1/apps/{appId}/connections/default",
    "/api/v1/apps/{appId}/features",
    "/api/v1/apps/{appId}/features/{featureName}",
    "/api/v1/mappings",
    "/api/v1/mappings/{mappingId}",
    "/api/v1/apps/{appId}/group-push/mappings",
    "/api/v1/apps/{appId}/group-push/mappings/{mappingId}",
]


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref)
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def _pruned_spec() -> dict[str, Any]:
    """The spec cut down to the emulated paths and the components they reach: builds in a second, not ten."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with gzip.open(SPEC, "rt", encoding="utf-8") as fh:
        spec = yaml.load(fh, Loader=loader)
    out = {k: v for k, v in spec.items() if k not in ("paths", "components")}
    out["servers"] = [{"url": BASE}]
    out["paths"] = {p: spec["paths"][p] for p in EMULATED_PATHS}
    for item in out["paths"].values():
        for op in item.values():
            for response in (op.get("responses") or {}).values() if isinstance(op, dict) else ():
                # `content: {}` on a 204 means "no body"; openapi-core reads it as "a body is required".
                if isinstance(response, dict) and response.get("content") == {}:
                    del response["content"]
    todo: set[str] = set()
    _refs(out["paths"], todo)
    seen: set[str] = set()
    components: dict[str, dict[str, Any]] = {"securitySchemes": spec["components"]["securitySchemes"]}
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        node = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        found: set[str] = set()
        _refs(node, found)
        todo |= found - seen
    out["components"] = components
    return out


class World:
    """A sandbox's Okta emulator, called in-process through werkzeug's test client (no fault middleware)."""

    def __init__(self, sb: Sandbox) -> None:
        assert sb.okta is not None
        self.seed = sb.seed_org
        self.okta: OktaEmulator = sb.okta
        self.token = sb.okta_token
        self.client = Client(self.okta.app)
        self.app_id = str(self.okta.app_by_label("Astro")["id"])
        self.custom_id = str(self.okta.app_by_label("Astro SCIM (custom)")["id"])
        astro = sb.astro_orgs["okta"]
        self.okta.enable_provisioning(self.app_id, astro.scim_url, astro.token)
        self.call(
            "PUT",
            f"/api/v1/apps/{self.app_id}/features/USER_PROVISIONING",
            {
                "create": {"lifecycleCreate": {"status": "ENABLED"}},
                "update": {"profile": {"status": "ENABLED"}, "lifecycleDeactivate": {"status": "ENABLED"}},
            },
        )
        self.call("PUT", f"/api/v1/apps/{self.app_id}/groups/{self.gid('Astro Users')}", {})
        self.people = [p.email for p in self.seed.people]
        self.team = self.seed.teams[1].name
        self.push_id = self.call(
            "POST", f"/api/v1/apps/{self.app_id}/group-push/mappings", {"sourceGroupId": self.gid(self.team), "targetGroupName": self.team}
        ).get_json()["id"]
        self.mapping_id = self.call("GET", f"/api/v1/mappings?targetId={self.app_id}").get_json()[0]["id"]

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> TestResponse:
        headers = {"Authorization": f"SSWS {token or self.token}"}
        return self.client.open(path, method=method, json=body, headers=headers, base_url=BASE)

    def exhaust(self, family: str, case: tuple[str, str, Any, int]) -> tuple[str, str, Any, int]:
        """Spend a family's budget so the case's request is answered 429."""
        self.okta.set_rate_limit(0, family)
        return case

    def uid(self, login: str) -> str:
        return str(self.okta.user_by_login(login)["id"])

    def gid(self, name: str) -> str:
        return str(self.okta.group_by_name(name)["id"])


def _pruned_key() -> str:
    """What the pruned spec is built from: the spec's bytes, the emulated paths and the pruning code."""
    digest = hashlib.sha256(SPEC.read_bytes())
    digest.update(json.dumps(EMULATED_PATHS).encode())
    digest.update((inspect.getsource(_pruned_spec) + inspect.getsource(_refs)).encode())
    return f"okta-openapi/pruned-{digest.hexdigest()[:24]}"


def _committed_pruned() -> dict[str, Any]:
    try:
        with gzip.open(PRUNED, "rt", encoding="utf-8") as fh:
            committed = json.load(fh)
    except FileNotFoundError:
        return {}
    return committed if isinstance(committed, dict) else {}


def write_pruned() -> None:
    """Writes PRUNED from the spec: run `python tests/test_okta_emulator_openapi.py` after changing the spec, the
    emulated paths or the pruning code (test_the_committed_pruned_spec_is_current says when)."""
    spec = _pruned_spec()
    assert json.loads(json.dumps(spec)) == spec, "the pruned spec must survive JSON unchanged"
    with gzip.GzipFile(PRUNED, "wb", mtime=0) as fh:  # mtime 0: the same input writes the same bytes
        fh.write(json.dumps({"key": _pruned_key(), "spec": spec}, sort_keys=True).encode())


def _cached_pruned_spec(config: pytest.Config) -> dict[str, Any]:
    """`_pruned_spec()`, read from PRUNED while its key is current: parsing the 3.3 MB YAML takes ~4 s of CPU, which
    every clean clone (CI) paid; the pruned spec (~0.5 MB of JSON) loads in milliseconds. While it is stale (the
    spec, the paths or the pruning code changed and PRUNED was not written again) it is built, and kept in pytest's
    cache (.pytest_cache) under the same key; test_the_committed_pruned_spec_is_current fails meanwhile."""
    key = _pruned_key()
    committed = _committed_pruned()
    if committed.get("key") == key and isinstance(committed.get("spec"), dict):
        return cast(dict[str, Any], committed["spec"])
    cache = getattr(config, "cache", None)
    if cache is None:
        return _pruned_spec()
    spec = cache.get(key, None)
    if not isinstance(spec, dict):
        spec = _pruned_spec()
        if json.loads(json.dumps(spec)) == spec:  # the cache keeps JSON: only what survives it unchanged
            cache.set(key, spec)
    return spec


def test_the_committed_pruned_spec_is_current() -> None:
    """PRUNED was written from the spec, the emulated paths and the pruning code as they are now."""
    assert _committed_pruned().get("key") == _pruned_key(), (
        f"{PRUNED.name} is stale: run `python tests/test_okta_emulator_openapi.py` and commit it")


@pytest.fixture(scope="module")
def openapi(request: pytest.FixtureRequest) -> OpenAPI:
    return OpenAPI.from_dict(_cached_pruned_spec(request.config))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with Sandbox(users=10, groups=3, seed=5) as sb:
        yield World(sb)


def _errors(openapi: OpenAPI, resp: TestResponse) -> list[str]:
    """Readable schema errors (path in the body + message) for one response."""
    out: list[str] = []
    # The request only locates the operation; its body was consumed by the app, so describe it afresh.
    request = MockRequest(BASE, resp.request.method, resp.request.path, args=dict(resp.request.args))
    for err in openapi.iter_response_errors(request, WerkzeugOpenAPIResponse(resp)):
        cause = err.__cause__ or err
        schema_errors = getattr(cause, "schema_errors", None)
        if not schema_errors:
            out.append(f"{type(cause).__name__}: {cause}")
            continue
        for se in schema_errors:
            out.append(f"{'/'.join(str(p) for p in se.absolute_path)}: {se.message}")
    return out


Case = Callable[[World], tuple[str, str, Any, int]]


def _new_group(w: World, name: str) -> str:
    return str(w.call("POST", "/api/v1/groups", {"profile": {"name": name}}).get_json()["id"])


CASES: dict[str, Case] = {
    "listUsers": lambda w: ("GET", "/api/v1/users?limit=3", None, 200),
    "listUsers search": lambda w: ("GET", "/api/v1/users?search=status%20eq%20%22ACTIVE%22", None, 200),
    "getUser": lambda w: ("GET", f"/api/v1/users/{w.uid(w.people[0])}", None, 200),
    "getUser 404": lambda w: ("GET", "/api/v1/users/00unothere", None, 404),
    "getUser me": lambda w: ("GET", "/api/v1/users/me", None, 200),
    "createUser": lambda w: (
        "POST",
        "/api/v1/users?activate=true",
        {
            "profile": {
                "firstName": "Nia",
                "lastName": "New",
                "email": "nia@acme.example",
                "login": "nia@acme.example",
            }
        },
        200,
    ),
    "deactivateUser": lambda w: (
        "POST",
        f"/api/v1/users/{w.uid(w.people[-1])}/lifecycle/deactivate",
        None,
        200,
    ),
    "updateUser": lambda w: (
        "POST",
        f"/api/v1/users/{w.uid(w.people[1])}",
        {"profile": {"title": "Lead"}},
        200,
    ),
    "listUserGroups": lambda w: ("GET", f"/api/v1/users/{w.uid(w.people[0])}/groups", None, 200),
    "listGroups": lambda w: ("GET", "/api/v1/groups?expand=stats", None, 200),
    "addGroup": lambda w: (
        "POST",
        "/api/v1/groups",
        {"profile": {"name": "Conformance", "description": "x"}},
        200,
    ),
    "getGroup": lambda w: ("GET", f"/api/v1/groups/{w.gid(w.team)}", None, 200),
    "replaceGroup": lambda w: (
        "PUT",
        f"/api/v1/groups/{_new_group(w, 'Before')}",
        {"profile": {"name": "After"}},
        200,
    ),
    "deleteGroup": lambda w: ("DELETE", f"/api/v1/groups/{_new_group(w, 'Doomed')}", None, 204),
    "deleteGroup 404": lambda w: ("DELETE", "/api/v1/groups/00gnosuchgroup0000000", None, 404),
    "deleteGroup 403": lambda w: (  # the APP_GROUP a push mapping targets: "can't remove ... used in a group push"
        "DELETE",
        f"/api/v1/groups/{w.call('GET', f'/api/v1/apps/{w.app_id}/group-push/mappings/{w.push_id}').get_json()['targetGroupId']}",
        None,
        403,
    ),
    "listGroupUsers": lambda w: ("GET", f"/api/v1/groups/{w.gid(w.team)}/users?limit=2", None, 200),
    "assignUserToGroup": lambda w: (
        "PUT",
        f"/api/v1/groups/{w.gid(w.team)}/users/{w.uid(w.people[2])}",
        None,
        204,
    ),
    "unassignUserFromGroup": lambda w: (
        "DELETE",
        f"/api/v1/groups/{w.gid(w.team)}/users/{w.uid(w.people[3])}",
        None,
        204,
    ),
    "listUserTypes": lambda w: ("GET", "/api/v1/meta/types/user", None, 200),
    "listUserTypes 429": lambda w: w.exhaust("meta", ("GET", "/api/v1/meta/types/user", None, 429)),
    "listApplications": lambda w: ("GET", "/api/v1/apps?q=Astro", None, 200),
    "getApplication": lambda w: ("GET", f"/api/v1/apps/{w.app_id}", None, 200),
    "listApplicationUsers": lambda w: (
        "GET",
        f"/api/v1/apps/{w.app_id}/users?expand=user&limit=3",
        None,
        200,
    ),
    "assignUserToApplication": lambda w: (
        "POST",
        f"/api/v1/apps/{w.custom_id}/users",
        {"id": w.uid(w.people[4]), "scope": "USER", "credentials": {"userName": w.people[4]}},
        200,
    ),
    "getApplicationUser": lambda w: ("GET", f"/api/v1/apps/{w.app_id}/users/{w.uid(w.people[0])}", None, 200),
    "updateApplicationUser": lambda w: (
        "POST",
        f"/api/v1/apps/{w.app_id}/users/{w.uid(w.people[0])}",
        {"profile": {"title": "Boss"}},
        200,
    ),
    "unassignUserFromApplication": lambda w: (
        w.call("POST", f"/api/v1/apps/{w.custom_id}/users", {"id": w.uid(w.people[5])}),
        ("DELETE", f"/api/v1/apps/{w.custom_id}/users/{w.uid(w.people[5])}", None, 204),
    )[1],
    "listApplicationGroupAssignments": lambda w: (
        "GET",
        f"/api/v1/apps/{w.app_id}/groups?expand=group",
        None,
        200,
    ),
    "assignGroupToApplication": lambda w: (
        "PUT",
        f"/api/v1/apps/{w.custom_id}/groups/{w.gid(w.team)}",
        {"priority": 0},
        200,
    ),
    "getApplicationGroupAssignment": lambda w: (
        "GET",
        f"/api/v1/apps/{w.app_id}/groups/{w.gid('Astro Users')}",
        None,
        200,
    ),
    "updateGroupAssignmentToApplication": lambda w: (
        "PATCH",
        f"/api/v1/apps/{w.app_id}/groups/{w.gid('Astro Users')}",
        [{"op": "replace", "path": "/profile/role", "value": "viewer"}],
        200,
    ),
    "unassignApplicationFromGroup": lambda w: (
        w.call("PUT", f"/api/v1/apps/{w.custom_id}/groups/{w.gid(w.seed.teams[2].name)}", {}),
        ("DELETE", f"/api/v1/apps/{w.custom_id}/groups/{w.gid(w.seed.teams[2].name)}", None, 204),
    )[1],
    "listFeaturesForApplication": lambda w: ("GET", f"/api/v1/apps/{w.app_id}/features", None, 200),
    "listFeaturesForApplication 400": lambda w: ("GET", f"/api/v1/apps/{w.custom_id}/features", None, 400),
    "getFeatureForApplication": lambda w: (
        "GET",
        f"/api/v1/apps/{w.app_id}/features/USER_PROVISIONING",
        None,
        200,
    ),
    "updateFeatureForApplication": lambda w: (
        "PUT",
        f"/api/v1/apps/{w.app_id}/features/USER_PROVISIONING",
        {"update": {"password": {"status": "DISABLED"}}},
        200,
    ),
    "listProfileMappings": lambda w: ("GET", f"/api/v1/mappings?targetId={w.app_id}", None, 200),
    "getProfileMapping": lambda w: ("GET", f"/api/v1/mappings/{w.mapping_id}", None, 200),
    "updateProfileMapping": lambda w: (
        "POST",
        f"/api/v1/mappings/{w.mapping_id}",
        {"properties": {"displayName": {"expression": "user.displayName", "pushStatus": "PUSH"}}},
        200,
    ),
    "listGroupPushMappings": lambda w: (
        "GET",
        f"/api/v1/apps/{w.app_id}/group-push/mappings?status=ACTIVE",
        None,
        200,
    ),
    "listGroupPushMappings 401": lambda w: ("GET", f"/api/v1/apps/{w.app_id}/group-push/mappings", None, 401),
    "createGroupPushMapping": lambda w: (
        "POST",
        f"/api/v1/apps/{w.app_id}/group-push/mappings",
        {"sourceGroupId": w.gid(w.seed.teams[2].name), "targetGroupName": w.seed.teams[2].name},
        201,
    ),
    "getGroupPushMapping": lambda w: (
        "GET",
        f"/api/v1/apps/{w.app_id}/group-push/mappings/{w.push_id}",
        None,
        200,
    ),
    "updateGroupPushMapping": lambda w: (
        "PATCH",
        f"/api/v1/apps/{w.app_id}/group-push/mappings/{w.push_id}",
        {"status": "ACTIVE"},
        200,
    ),
    "deleteGroupPushMapping": lambda w: (
        w.call("PATCH", f"/api/v1/apps/{w.app_id}/group-push/mappings/{w.push_id}", {"status": "INACTIVE"}),
        (
            "DELETE",
            f"/api/v1/apps/{w.app_id}/group-push/mappings/{w.push_id}?deleteTargetGroup=false",
            None,
            204,
        ),
    )[1],
}


@pytest.mark.parametrize("name", list(CASES))
def test_response_matches_the_spec(openapi: OpenAPI, world: World, name: str) -> None:
    method, path, body, status = CASES[name](world)
    token = "wrong" if status == 401 else None
    resp = world.call(method, path, body, token=token)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert _errors(openapi, resp) == []


def test_the_provisioning_connection_deviates_from_the_spec_only_where_okta_does(
    openapi: OpenAPI, world: World
) -> None:
    """Okta answers top-level authScheme UNKNOWN for unsupported apps; the spec's enum only allows TOKEN (the
    reason the SDK raises, defect #5). Everything else in the body conforms."""
    for method, body in (("GET", None), ("POST", {"profile": {"authScheme": "TOKEN", "token": "t"}})):
        resp = world.call(method, f"/api/v1/apps/{world.app_id}/connections/default", body)
        assert resp.status_code == 200
        errors = _errors(openapi, resp)
        assert errors and all(e.startswith("authScheme: ") for e in errors), errors
        body = resp.get_json()
        assert body["status"] == "UNKNOWN" and body["profile"] == {"authScheme": "UNKNOWN"}


if __name__ == "__main__":
    write_pruned()
    print(f"wrote {PRUNED}")
