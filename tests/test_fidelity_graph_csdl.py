"""Every Graph answer the emulator serves, checked against Microsoft Graph's v1.0 CSDL metadata (the subset in
tests/data/fidelity/msgraph-v1.0-csdl-subset.json, from msgraph-metadata `clean_v10_metadata/cleanMetadata.xml`).

One check per served answer: each property is declared on the entity or complex type (or its base types, its
navigation properties, or an open type), its value has the declared type (Edm primitives, enums and flags enums,
complex types, collections, recursively), and no non-nullable property is null. Then the routes themselves: the
bound actions, the alternate key and the entity sets the emulator serves are in the metadata.
Target: all checks pass. (Before this suite, the schema's `scim:Path` metadata key failed: the keys of
`attributeDefinition.metadata` are `attributeDefinitionMetadata` members.)
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.sandbox.core import Sandbox
from connector.sandbox.graph.template import NON_GALLERY_TEMPLATE_ID, RULE_ID
from connector.sandbox.replay import Report

CSDL = json.loads((Path(__file__).parent / "data" / "fidelity" / "msgraph-v1.0-csdl-subset.json")
                  .read_text(encoding="utf-8"))
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_INTEGERS = {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"}


def _props(type_name: str) -> tuple[dict[str, Any], set[str], bool]:
    """(properties, navigation names, open) of a type with everything it inherits."""
    props: dict[str, Any] = {}
    nav: set[str] = set()
    is_open = False
    name: str | None = type_name
    while name:
        t = CSDL["types"][name]
        props = {**t["props"], **props}
        nav |= set(t.get("nav") or {})
        is_open = is_open or bool(t.get("open"))
        name = t.get("base")
    return props, nav, is_open


def check_value(value: Any, type_name: str, where: str, errors: list[str]) -> None:
    if type_name.startswith("Collection("):
        if not isinstance(value, list):
            errors.append(f"{where}: {type_name} expected, got {type(value).__name__}")
            return
        inner = type_name[len("Collection("):-1]
        for i, item in enumerate(value):
            if item is None:
                errors.append(f"{where}[{i}]: null in a collection")
            else:
                check_value(item, inner, f"{where}[{i}]", errors)
        return
    if type_name in _INTEGERS:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif type_name == "Edm.Boolean":
        ok = isinstance(value, bool)
    elif type_name in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif type_name == "Edm.DateTimeOffset":
        ok = isinstance(value, str) and bool(_DATETIME.match(value))
    elif type_name == "Edm.Guid":
        try:
            ok = isinstance(value, str) and bool(uuid.UUID(value))
        except ValueError:
            ok = False
    elif type_name.startswith("Edm."):
        ok = isinstance(value, str) if type_name not in ("Edm.Untyped", "Edm.Stream") else True
    elif type_name in CSDL["enums"]:
        enum = CSDL["enums"][type_name]
        members = [m.strip() for m in value.split(",")] if isinstance(value, str) and enum["flags"] else [value]
        bad = [m for m in members if m not in enum["members"]]
        ok = isinstance(value, str) and not bad
        if not ok:
            errors.append(f"{where}: {value!r} is not a {type_name} member ({', '.join(enum['members'])})")
            return
    elif type_name in CSDL["types"]:
        check_object(value, type_name, where, errors)
        return
    else:
        errors.append(f"{where}: type {type_name} is not in the CSDL subset")
        return
    if not ok:
        errors.append(f"{where}: {value!r} is not {type_name}")


def check_object(value: Any, type_name: str, where: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{where}: object of {type_name} expected, got {type(value).__name__}")
        return
    cast = value.get("@odata.type")
    if isinstance(cast, str) and cast.removeprefix("#microsoft.graph.") in CSDL["types"]:
        type_name = cast.removeprefix("#microsoft.graph.")
    props, nav, is_open = _props(type_name)
    for key, item in value.items():
        if "@" in key:
            continue  # instance annotations (@odata.type, @odata.context, ...)
        if key in props:
            spec = props[key]
            if item is None:
                if not spec["nullable"]:
                    errors.append(f"{where}.{key}: null, but {type_name}.{key} is not nullable")
                continue
            check_value(item, spec["type"], f"{where}.{key}", errors)
        elif key not in nav and not is_open:
            errors.append(f"{where}.{key}: not a property of {type_name}")


@pytest.fixture
def graph() -> Iterator[tuple[Sandbox, httpx.Client]]:
    with Sandbox(users=6, groups=2, seed=9) as sb:
        assert sb.graph_url is not None
        with httpx.Client(base_url=sb.graph_url, headers={"Authorization": f"Bearer {sb.graph_token}"},
                          timeout=10) as client:
            yield sb, client


def _ok(resp: httpx.Response) -> Any:
    assert resp.status_code < 300, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text}"
    return resp.json() if resp.content else None


def test_graph_answers_match_the_v1_csdl(graph: tuple[Sandbox, httpx.Client]) -> None:
    sb, c = graph
    report = Report("Graph v1.0 CSDL")

    def check(label: str, body: Any, type_name: str, *, collection: bool = False) -> None:
        errors: list[str] = []
        if collection:
            check_value(body.get("value"), f"Collection({type_name})", "value", errors)
        else:
            check_object(body, type_name, "$", errors)
        report.add(label, f"answer is {'a collection of ' if collection else ''}{type_name}", not errors,
                   "; ".join(errors[:5]))

    made = _ok(c.post(f"/applicationTemplates/{NON_GALLERY_TEMPLATE_ID}/instantiate", json={"displayName": "Astro"}))
    check("POST applicationTemplates/{id}/instantiate", made, "applicationServicePrincipal")
    sp_id, app_id = made["servicePrincipal"]["id"], made["application"]["id"]
    app_app_id = made["application"]["appId"]
    check("GET applications", _ok(c.get("/applications")), "application", collection=True)
    check("GET applications/{id}", _ok(c.get(f"/applications/{app_id}")), "application")
    check("GET servicePrincipals", _ok(c.get("/servicePrincipals")), "servicePrincipal", collection=True)
    check("GET servicePrincipals/{id}", _ok(c.get(f"/servicePrincipals/{sp_id}")), "servicePrincipal")
    check("GET servicePrincipals(appId='...')", _ok(c.get(f"/servicePrincipals(appId='{app_app_id}')")),
          "servicePrincipal")
    sync = f"/servicePrincipals/{sp_id}/synchronization"
    check("GET .../synchronization", _ok(c.get(sync)), "synchronization")
    check("GET .../synchronization/templates", _ok(c.get(f"{sync}/templates")), "synchronizationTemplate",
          collection=True)
    org = sb.astro_orgs["azure"]
    _ok(c.put(f"{sync}/secrets", json={"value": [{"key": "BaseAddress", "value": org.scim_url},
                                                 {"key": "SecretToken", "value": org.token}]}))
    check("GET .../synchronization/secrets", _ok(c.get(f"{sync}/secrets")), "synchronizationSecretKeyStringValuePair",
          collection=True)
    job = _ok(c.post(f"{sync}/jobs", json={"templateId": "scim"}))
    check("POST .../synchronization/jobs", job, "synchronizationJob")
    job_path = f"{sync}/jobs/{job['id']}"
    check("GET .../synchronization/jobs", _ok(c.get(f"{sync}/jobs")), "synchronizationJob", collection=True)
    schema = _ok(c.get(f"{job_path}/schema"))
    check("GET .../jobs/{id}/schema", schema, "synchronizationSchema")
    _ok(c.put(f"{job_path}/schema", json=schema))
    check("GET .../jobs/{id}/schema after PUT", _ok(c.get(f"{job_path}/schema")), "synchronizationSchema")
    parsed = _ok(c.post(f"{job_path}/schema/parseExpression", json={
        "expression": "[userPrincipalName]", "targetAttributeDefinition": None,
        "testInputObject": None}))
    check("POST .../schema/parseExpression", parsed, "parseExpressionResponse")
    _ok(c.post(f"{job_path}/validateCredentials", json={"credentials": [
        {"key": "BaseAddress", "value": org.scim_url}, {"key": "SecretToken", "value": org.token}]}))
    _ok(c.post(f"{job_path}/start"))
    user = _ok(c.get("/users"))["value"][0]
    check("GET users", _ok(c.get("/users")), "user", collection=True)
    check("GET users/{id}", _ok(c.get(f"/users/{user['id']}")), "user")
    groups = _ok(c.get("/groups"))
    check("GET groups", groups, "group", collection=True)
    gid = groups["value"][0]["id"]
    check("GET groups/{id}", _ok(c.get(f"/groups/{gid}")), "group")
    check("GET groups/{id}/members", _ok(c.get(f"/groups/{gid}/members")), "directoryObject", collection=True)
    check("GET groups/{id}/transitiveMembers", _ok(c.get(f"/groups/{gid}/transitiveMembers")), "directoryObject",
          collection=True)
    roles = made["servicePrincipal"].get("appRoles") or []
    role_id = next((r["id"] for r in roles if r.get("value") == "User"), roles[0]["id"] if roles else None)
    assignment = _ok(c.post(f"/servicePrincipals/{sp_id}/appRoleAssignedTo", json={
        "principalId": user["id"], "resourceId": sp_id, "appRoleId": role_id}))
    check("POST .../appRoleAssignedTo", assignment, "appRoleAssignment")
    check("GET .../appRoleAssignedTo", _ok(c.get(f"/servicePrincipals/{sp_id}/appRoleAssignedTo")),
          "appRoleAssignment", collection=True)
    on_demand = _ok(c.post(f"{job_path}/provisionOnDemand", json={"parameters": [
        {"ruleId": RULE_ID, "subjects": [{"objectId": user["id"], "objectTypeName": "User"}]}]}))
    check("POST .../provisionOnDemand", on_demand, "stringKeyStringValuePair")
    check("GET .../jobs/{id} after a cycle", _ok(c.get(job_path)), "synchronizationJob")
    _ok(c.post(f"{job_path}/pause"))
    _ok(c.post(f"{job_path}/restart", json={"criteria": {"resetScope": "Watermark, Escrows"}}))
    check("GET auditLogs/provisioning", _ok(c.get("/auditLogs/provisioning")), "provisioningObjectSummary",
          collection=True)
    check("GET organization", _ok(c.get("/organization")), "organization", collection=True)

    # The routes: bound actions, the alternate key, the entity sets.
    actions = {(a["bindingType"], a["name"]) for a in CSDL["actions"]}
    for binding, name in [("applicationTemplate", "instantiate"), ("synchronizationJob", "validateCredentials"),
                          ("synchronizationJob", "start"), ("synchronizationJob", "pause"),
                          ("synchronizationJob", "restart"), ("synchronizationJob", "provisionOnDemand"),
                          ("synchronizationSchema", "parseExpression")]:
        report.add(f"action {binding}.{name}", "is a bound action in the metadata", (binding, name) in actions)
    report.add("servicePrincipals(appId='...')", "appId is an alternate key of servicePrincipal",
               ["appId"] in CSDL["alternateKeys"].get("servicePrincipal", []))
    sets = CSDL["container"]["entitySets"]
    for entity_set in ("applicationTemplates", "applications", "servicePrincipals", "users", "groups"):
        report.add(f"entity set {entity_set}", "is in the container", entity_set in sets)
    report.add("singleton auditLogs", "is in the container", "auditLogs" in CSDL["container"]["singletons"])

    assert not report.failures, report.table()
    print(report.table())
