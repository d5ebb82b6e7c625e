"""Entra's provisioning engine, emulated: cycles push the scope into a real SCIM server over loopback HTTP with
Entra's request shapes, evaluating the job's current schema; deprovisioning, quarantine, and proof that the
shapes need the Entra-tolerant scim2-server policy."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_graph_emulator import MODELS_GROUP, ORG_ID, GraphEnv, configured, graph_env, job_builder, raw, run  # noqa: F401

from connector.sandbox.graph.template import ENTERPRISE
from connector.sandbox.seed import ASSIGNED_TEAM
from connector.sandbox.server import ServedApp

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _post(env: GraphEnv, path: str, body: Any = None) -> httpx.Response:
    r = httpx.post(f"{env.graph_url}{path}", json=body, headers={"Authorization": f"Bearer {env.token}"})
    assert r.status_code < 300, r.text
    return r


def start(env: GraphEnv, sp_id: str, job_id: str) -> dict[str, Any]:
    """POST start (runs a cycle) and return the job's lastExecution."""
    _post(env, f"/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/start")
    return dict(env.graph.job(sp_id, job_id).status["lastExecution"])


def other_team(env: GraphEnv) -> Any:
    return next(t for t in env.seed.teams if t.name != ASSIGNED_TEAM and len(t.member_keys) >= 2)


def writes(env: GraphEnv) -> list[dict[str, Any]]:
    return [r for r in env.scim_requests if r["method"] != "GET"]


@pytest.fixture
def provisioned(graph_env: GraphEnv) -> Iterator[tuple[GraphEnv, str, str]]:  # noqa: F811
    """Astro Users and one team assigned, first cycle run; yields (env, sp id, job id)."""
    sp_id, job_id = configured(graph_env)
    graph = graph_env.graph
    for name in (ASSIGNED_TEAM, other_team(graph_env).name):
        group = graph.group(name)
        assert group is not None
        graph.assign(sp_id, group["id"])
    last = start(graph_env, sp_id, job_id)
    assert last["state"] == "Succeeded", last
    yield graph_env, sp_id, job_id


def _by_user_name(env: GraphEnv) -> dict[str, dict[str, Any]]:
    return {u["userName"]: u for u in env.astro_users()}


def test_cycle_provisions_scope_with_default_mappings(provisioned: tuple[GraphEnv, str, str]) -> None:
    env, _, _ = provisioned
    graph = env.graph
    astro = _by_user_name(env)
    entra = {u["userPrincipalName"]: u for u in graph.users()}
    assert set(astro) == set(graph.group_member_upns(ASSIGNED_TEAM)) == set(entra)
    for upn, user in astro.items():
        src = entra[upn]
        assert user["active"] is True
        assert user["displayName"] == src["displayName"]
        assert user["name"] == {"givenName": src["givenName"], "familyName": src["surname"],
                                "formatted": f"{src['givenName']} {src['surname']}"}
        assert user["emails"] == [{"type": "work", "value": src["mail"], "primary": True}]
        assert user["externalId"] == src["mailNickname"]
        assert user["title"] == src["jobTitle"]
        assert user[ENTERPRISE] == {"department": src["department"], "employeeNumber": src["employeeId"]}
    ids = {u["id"]: name for name, u in astro.items()}
    groups = {g["displayName"]: g for g in env.astro_groups()}
    team = other_team(env)
    assert set(groups) == {ASSIGNED_TEAM, team.name}
    for name, group in groups.items():
        assert group["externalId"] == graph.group(name)["id"]  # type: ignore[index]
        assert sorted(ids[m["value"]] for m in group["members"]) == sorted(graph.group_member_upns(name))


def test_renamed_source_attributes_are_read_from_their_microsoft_graph_properties(
        provisioned: tuple[GraphEnv, str, str]) -> None:
    """The default mappings read telephoneNumber, mobile, facsimileTelephoneNumber and physicalDeliveryOfficeName:
    Entra's source attributes keep Azure AD Graph's names, which Microsoft Graph calls businessPhones (one number),
    mobilePhone, faxNumber and officeLocation ("Property differences between Azure AD Graph and Microsoft
    Graph"). A user who has them in Entra gets them in Astro; the engine looked for the old names in the Graph
    JSON and found nothing."""
    env, sp_id, _ = provisioned
    upn = env.graph.group_member_upns(ASSIGNED_TEAM)[0]
    env.graph.update_user(upn, businessPhones=["+1 425 555 0100"], mobilePhone="+1 425 555 0101",
                          faxNumber="+1 425 555 0102", officeLocation="Building 7")
    (last,) = env.graph.run_cycle(sp_id)
    assert last["countExported"] == 1, last
    user = _by_user_name(env)[upn]
    assert sorted((p["type"], p["value"]) for p in user["phoneNumbers"]) == [
        ("fax", "+1 425 555 0102"), ("mobile", "+1 425 555 0101"), ("work", "+1 425 555 0100")]
    assert [(a["type"], a.get("formatted")) for a in user["addresses"]] == [("work", "Building 7")]


def test_entra_request_shapes(provisioned: tuple[GraphEnv, str, str]) -> None:
    env, _, _ = provisioned
    reqs = env.scim_requests
    user_posts = [r for r in reqs if r["method"] == "POST" and r["path"].endswith("/Users")]
    assert len(user_posts) == 12
    for r in user_posts:
        body = r["body"]
        assert body["meta"] == {"resourceType": "User"} and body["roles"] == []
        assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]
        assert body["active"] is True  # creates carry a boolean; only PATCH sends "False" strings
    user_gets = [r for r in reqs if r["method"] == "GET" and r["path"].endswith("/Users")]
    assert all(r["query"].startswith("filter=userName+eq+%22") for r in user_gets)
    group_posts = [r["body"] for r in reqs if r["method"] == "POST" and r["path"].endswith("/Groups")]
    assert len(group_posts) == 2
    for body in group_posts:
        assert "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group" in body["schemas"]
        assert "members" not in body and body["meta"] == {"resourceType": "Group"}
    group_gets = [r for r in reqs if r["method"] == "GET" and r["path"].endswith("/Groups")]
    assert all(r["query"].startswith("excludedAttributes=members&filter=displayName+eq+") for r in group_gets)
    member_patches = [r["body"] for r in reqs if r["method"] == "PATCH" and "/Groups/" in r["path"]]
    assert member_patches
    for body in member_patches:
        assert body["schemas"] == [PATCH_OP]
        (op,) = body["Operations"]
        assert op["op"] == "Add" and op["path"] == "members"
        assert all(set(v) == {"$ref", "value"} and v["$ref"] is None for v in op["value"])


def test_incremental_update_sends_one_replace(provisioned: tuple[GraphEnv, str, str]) -> None:
    env, sp_id, _ = provisioned
    upn = env.graph.group_member_upns(ASSIGNED_TEAM)[0]
    env.scim_requests.clear()
    env.graph.run_cycle(sp_id)
    assert writes(env) == []  # nothing changed in Entra: an incremental cycle exports nothing
    env.graph.update_user(upn, jobTitle="Chief Pipeline Officer", surname="Renamed")
    (last,) = env.graph.run_cycle(sp_id)
    assert last["countExported"] == 1
    (patch,) = writes(env)
    target = _by_user_name(env)[upn]
    assert patch["path"].endswith(f"/Users/{target['id']}")
    ops = sorted(patch["body"]["Operations"], key=lambda o: o["path"])
    assert ops == [
        {"op": "Replace", "path": "name.familyName", "value": "Renamed"},
        {"op": "Replace", "path": "name.formatted", "value": f"{target['name']['givenName']} Renamed"},
        {"op": "Replace", "path": "title", "value": "Chief Pipeline Officer"},
    ]
    assert target["title"] == "Chief Pipeline Officer" and target["name"]["familyName"] == "Renamed"


def test_deprovisioning_disables_and_removes_members(provisioned: tuple[GraphEnv, str, str]) -> None:
    env, sp_id, _ = provisioned
    graph = env.graph
    team = other_team(env)
    team_upns = set(graph.group_member_upns(team.name))
    leaver = next(u for u in graph.group_member_upns(ASSIGNED_TEAM) if u not in team_upns)
    disabled = next(u for u in graph.group_member_upns(ASSIGNED_TEAM) if u not in team_upns and u != leaver)
    deleted = next(iter(sorted(team_upns)))
    before = _by_user_name(env)
    env.scim_requests.clear()
    graph.remove_member(ASSIGNED_TEAM, leaver)
    graph.update_user(disabled, accountEnabled=False)
    graph.remove_user_silently(deleted)
    assert _by_user_name(env)[deleted]["active"] is True  # silent: nothing happens until the next cycle
    graph.run_cycle(sp_id)
    after = _by_user_name(env)
    assert {u for u, v in after.items() if v["active"] is False} == {leaver, disabled, deleted}
    disables = [r for r in writes(env) if "/Users/" in r["path"]]
    assert len(disables) == 3
    for r in disables:
        assert r["body"]["Operations"] == [{"op": "Replace", "path": "active", "value": "False"}]
    removals = [op for r in writes(env) if "/Groups/" in r["path"] for op in r["body"]["Operations"]]
    assert removals and all(op["op"] == "Remove" and op["path"] == "members" for op in removals)
    removed_ids = {v["value"] for op in removals for v in op["value"]}
    assert removed_ids == {before[leaver]["id"], before[disabled]["id"], before[deleted]["id"]}
    groups = {g["displayName"]: g for g in env.astro_groups()}
    astro_members = {m["value"] for m in groups[ASSIGNED_TEAM]["members"]}
    assert astro_members.isdisjoint(removed_ids)
    logs = graph.logs()
    assert sum(1 for e in logs if e["provisioningAction"] == "disable") == 3
    # Back in scope: the next cycle enables the user again.
    graph.add_member(ASSIGNED_TEAM, leaver)
    graph.run_cycle(sp_id)
    assert _by_user_name(env)[leaver]["active"] is True


def test_unassigned_group_is_deleted(provisioned: tuple[GraphEnv, str, str]) -> None:
    env, sp_id, _ = provisioned
    team = other_team(env)
    group_id = env.graph.group(team.name)["id"]  # type: ignore[index]
    (assignment,) = [a for a in env.graph.assignments(sp_id) if a["principalId"] == group_id]
    r = httpx.delete(f"{env.graph_url}/servicePrincipals/{sp_id}/appRoleAssignedTo/{assignment['id']}",
                     headers={"Authorization": f"Bearer {env.token}"})
    assert r.status_code == 204
    env.scim_requests.clear()
    env.graph.run_cycle(sp_id)
    assert [r["method"] for r in writes(env)] == ["DELETE"]
    assert {g["displayName"] for g in env.astro_groups()} == {ASSIGNED_TEAM}
    assert any(e["provisioningAction"] == "delete" for e in env.graph.logs())


def test_schema_put_changes_what_flows(graph_env: GraphEnv) -> None:  # noqa: F811
    sp_id, job_id = configured(graph_env)
    schema = graph_env.graph.schema(sp_id, job_id)
    users = schema["synchronizationRules"][0]["objectMappings"][0]
    keep = {"userName", "active", "name.givenName", "name.familyName"}
    users["attributeMappings"] = [m for m in users["attributeMappings"] if m["targetAttributeName"] in keep]
    upper = copy.deepcopy(users["attributeMappings"][0])
    upper.update(targetAttributeName="displayName", matchingPriority=0,
                 source={"expression": "ToUpper([displayName])", "name": "ToUpper", "type": "Function",
                         "parameters": [{"key": "source", "value": {"expression": "[displayName]",
                                                                     "name": "displayName", "type": "Attribute"}}]})
    users["attributeMappings"].append(upper)

    async def put(c: Any) -> None:
        await raw(c, "PUT", job_builder(c, sp_id, job_id).schema, schema)

    run(graph_env, put)
    graph_env.graph.assign(sp_id, graph_env.graph.group(ASSIGNED_TEAM)["id"])  # type: ignore[index]
    start(graph_env, sp_id, job_id)
    entra = {u["userPrincipalName"]: u for u in graph_env.graph.users()}
    for user in graph_env.astro_users():
        src = entra[user["userName"]]
        assert user["displayName"] == src["displayName"].upper()
        assert user["name"] == {"givenName": src["givenName"], "familyName": src["surname"]}
        assert "emails" not in user and "title" not in user and "externalId" not in user


def test_on_demand_for_an_unassigned_user_is_skipped(graph_env: GraphEnv) -> None:  # noqa: F811
    sp_id, job_id = configured(graph_env)
    user = graph_env.graph.users()[0]
    body = {"parameters": [{"ruleId": graph_env.graph.schema(sp_id)["synchronizationRules"][0]["id"],
                            "subjects": [{"objectId": user["id"], "objectTypeName": "User"}]}]}
    r = _post(graph_env, f"/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/provisionOnDemand", body)
    import json

    assert json.loads(r.json()["key"])["result"] == "Skipped"
    assert json.loads(r.json()["value"])["statusInfo"]["reason"] == "NotEffectivelyEntitled"
    assert writes(graph_env) == [] and graph_env.astro_users() == []


@MODELS_GROUP  # reads the job's status as the SDK's model
def test_credential_failures_quarantine_the_job(graph_env: GraphEnv) -> None:  # noqa: F811
    sp_id, job_id = configured(graph_env)
    graph = graph_env.graph
    graph.assign(sp_id, graph.group(ASSIGNED_TEAM)["id"])  # type: ignore[index]
    graph.set_secrets(sp_id, {"SecretToken": "revoked-token"})
    last = start(graph_env, sp_id, job_id)
    assert last["state"] == "Failed"
    assert last["error"]["code"] == "SystemForCrossDomainIdentityManagementCredentialValidationUnauthorized"
    graph.run_cycle(sp_id)
    graph.run_cycle(sp_id)

    async def status(c: Any) -> Any:
        return (await job_builder(c, sp_id, job_id).get()).status

    from msgraph.generated.models.quarantine_reason import QuarantineReason
    from msgraph.generated.models.synchronization_status_code import SynchronizationStatusCode

    st = run(graph_env, status)
    assert st.code == SynchronizationStatusCode.Quarantine
    assert st.quarantine.reason == QuarantineReason.EncounteredQuarantineException
    assert st.count_successive_complete_failures == 3
    assert graph.run_cycle(sp_id) == []  # quarantined jobs do not run on the schedule
    graph.set_secrets(sp_id, {"SecretToken": graph_env.scim_token})
    last = start(graph_env, sp_id, job_id)  # start clears quarantine
    st = run(graph_env, status)
    assert last["state"] == "Succeeded" and st.code == SynchronizationStatusCode.Active and st.quarantine is None
    assert len(graph_env.astro_users()) == 12


# ------------------------------------------------------------------- the strict scim2-server policy


@pytest.fixture
def strict_scim() -> Iterator[tuple[str, Any]]:
    """A stock scim2-server (RFC-strict default policy) on loopback: (base URL, its storage)."""
    from scim2_server.applications.wsgi import WSGIApplication
    from scim2_server.memory import InMemoryStorage
    from scim2_server.utils import load_default_provider

    storage = InMemoryStorage()
    served = ServedApp("strict-scim", WSGIApplication(storage, load_default_provider())).start()
    try:
        yield served.url + "/v2", storage
    finally:
        served.stop()


def test_entra_shapes_fail_the_strict_policy(graph_env: GraphEnv, strict_scim: tuple[str, Any]) -> None:  # noqa: F811
    base, _ = strict_scim
    sp_id, job_id = configured(graph_env)
    graph = graph_env.graph
    graph.set_secrets(sp_id, {"BaseAddress": base, "SecretToken": "unused-" + uuid.uuid4().hex})
    team = other_team(graph_env)
    graph.assign(sp_id, graph.group(team.name)["id"])  # type: ignore[index]

    last = start(graph_env, sp_id, job_id)
    # Users pass; the group POST with Entra's extra ADSCIM schema is refused (unknown schema -> 400).
    assert last["state"] == "EntryLevelErrors"
    failures = [e for e in graph.logs() if e["provisioningStatusInfo"]["status"] == "failure"]
    (group_failure,) = failures
    assert group_failure["sourceIdentity"]["identityType"] == "Group"
    assert "HTTP 400" in group_failure["provisioningStatusInfo"]["errorInformation"]["reason"]
    assert len(httpx.get(f"{base}/Users").json()["Resources"]) == len(team.member_keys)

    # With the group created the RFC way, membership Adds pass, but Entra's Remove shape does not.
    made = httpx.post(f"{base}/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                              "displayName": team.name})
    assert made.status_code == 201
    _post(graph_env, f"/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/restart",
          {"criteria": {"resetScope": "Full"}})
    assert graph.job(sp_id, job_id).status["lastExecution"]["state"] == "Succeeded"
    members = httpx.get(f"{base}/Groups/{made.json()['id']}").json()["members"]
    assert len(members) == len(team.member_keys)
    graph.remove_member(team.name, graph.group_member_upns(team.name)[0])
    (last,) = graph.run_cycle(sp_id)
    assert last["state"] == "EntryLevelErrors"
    reason = graph.logs()[-1]["provisioningStatusInfo"]["errorInformation"]["reason"]
    assert "PATCH" in reason and "HTTP 400" in reason
    assert len(httpx.get(f"{base}/Groups/{made.json()['id']}").json()["members"]) == len(team.member_keys)


def test_astro_drift_survives_incremental_cycles_until_restart(provisioned: tuple[GraphEnv, str, str]) -> None:
    env, sp_id, job_id = provisioned
    upn = env.graph.group_member_upns(ASSIGNED_TEAM)[0]
    wanted = _by_user_name(env)[upn]["displayName"]
    env.astro.edit_user(ORG_ID, upn, "displayName", "Edited In Astro")
    env.graph.run_cycle(sp_id)
    # Entra only exports what changed in Entra: a change made in Astro alone stays (drift).
    assert _by_user_name(env)[upn]["displayName"] == "Edited In Astro"
    env.scim_requests.clear()
    _post(env, f"/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/restart",
          {"criteria": {"resetScope": "Full"}})
    assert _by_user_name(env)[upn]["displayName"] == wanted
    (fix,) = [r for r in writes(env) if "/Users/" in r["path"]]
    assert fix["body"]["Operations"] == [{"op": "Replace", "path": "displayName", "value": wanted}]


def test_sync_all_provisions_every_user_and_group(graph_env: GraphEnv) -> None:  # noqa: F811
    sp_id, job_id = configured(graph_env)
    graph_env.graph.set_secrets(sp_id, {"SyncAll": "true"})
    graph_env.graph.update_user(graph_env.graph.users()[0]["userPrincipalName"], accountEnabled=False)
    last = start(graph_env, sp_id, job_id)
    assert last["countEntitled"] == 12 + 4
    assert len(graph_env.astro_users()) == 11  # the disabled user is not created
    assert len(graph_env.astro_groups()) == 4


def test_background_cycles(graph_env: GraphEnv) -> None:  # noqa: F811
    sp_id, job_id = configured(graph_env)
    graph_env.graph.assign(sp_id, graph_env.graph.group(ASSIGNED_TEAM)["id"])  # type: ignore[index]
    graph_env.graph.background_cycles = True
    _post(graph_env, f"/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/start")
    assert graph_env.graph.wait_for_cycles(30)
    assert graph_env.graph.job(sp_id, job_id).status["lastExecution"]["state"] == "Succeeded"
    assert len(graph_env.astro_users()) == 12


def test_sandbox_admin_endpoints(provisioned: tuple[GraphEnv, str, str]) -> None:
    env, sp_id, _ = provisioned
    base = env.graph_url.removesuffix("/v1.0")
    auth = {"Authorization": f"Bearer {env.token}"}
    upn = env.graph.group_member_upns(ASSIGNED_TEAM)[0]
    assert httpx.post(f"{base}/_sandbox/users/{upn}/removeSilently", headers=auth).status_code == 204
    ran = httpx.post(f"{base}/_sandbox/servicePrincipals/{sp_id}/runCycle", headers=auth)
    assert ran.status_code == 200 and ran.json()["jobs"][0]["state"] == "Succeeded"
    assert _by_user_name(env)[upn]["active"] is False
    assert httpx.delete(f"{base}/_sandbox/permissions/users", headers=auth).status_code == 204
    assert httpx.get(f"{env.graph_url}/users", headers=auth).json()["error"]["code"] == "Authorization_RequestDenied"
    assert httpx.put(f"{base}/_sandbox/permissions/users", headers=auth).status_code == 204
    assert httpx.get(f"{env.graph_url}/users", headers=auth).status_code == 200
    quarantined = httpx.post(f"{base}/_sandbox/servicePrincipals/{sp_id}/quarantine", headers=auth,
                             json={"reason": "TooManyDeletes"})
    assert quarantined.status_code == 204
    status = env.graph.job(sp_id).status
    assert status["code"] == "Quarantine" and status["quarantine"]["reason"] == "TooManyDeletes"
    assert httpx.get(f"{base}/_sandbox/state").status_code == 401


def test_schema_without_user_mapping_fails_cycles_and_on_demand(graph_env: GraphEnv) -> None:  # noqa: F811
    sp_id, job_id = configured(graph_env)
    schema = graph_env.graph.schema(sp_id, job_id)
    rule = schema["synchronizationRules"][0]
    rule["objectMappings"] = [m for m in rule["objectMappings"] if m["sourceObjectName"] != "User"]

    async def put(c: Any) -> None:
        await raw(c, "PUT", job_builder(c, sp_id, job_id).schema, schema)

    run(graph_env, put)
    last = start(graph_env, sp_id, job_id)
    assert last["state"] == "Failed" and last["error"]["code"] == "SchemaInvalid"
    user = graph_env.graph.users()[0]
    r = httpx.post(f"{graph_env.graph_url}/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/provisionOnDemand",
                   json={"parameters": [{"ruleId": rule["id"], "subjects": [{"objectId": user["id"],
                                                                             "objectTypeName": "User"}]}]},
                   headers={"Authorization": f"Bearer {graph_env.token}"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "SchemaInvalid"


def test_unreachable_astro_is_a_complete_failure(graph_env: GraphEnv) -> None:  # noqa: F811
    sp_id, job_id = configured(graph_env)
    graph_env.graph.assign(sp_id, graph_env.graph.users()[0]["id"])
    graph_env.graph.set_secrets(sp_id, {"BaseAddress": "http://127.0.0.1:9/scim/v2/nowhere"})
    last = start(graph_env, sp_id, job_id)
    assert last["state"] == "Failed" and last["countExported"] == 0
    assert last["error"]["code"] == "SystemForCrossDomainIdentityManagementServiceFailure"
    (entry,) = graph_env.graph.logs()
    assert entry["provisioningStatusInfo"]["status"] == "failure"


def test_cycles_leave_nothing_frozen_and_spare_what_others_froze(provisioned: tuple[GraphEnv, str, str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine keeps the collector off long-lived objects during a cycle (gc.freeze); after it nothing stays
    frozen, overlapping cycles unfreeze with the last one, and objects a process froze itself stay frozen."""
    import gc

    from connector.sandbox.graph import engine as entra_engine

    # This tenant's cycles freeze as a big one's do (small tenants skip it, FREEZE_FROM_USERS).
    monkeypatch.setattr(entra_engine, "FREEZE_FROM_USERS", 0)
    env, sp_id, _ = provisioned
    gc.unfreeze()  # from a process that froze nothing (the Astro reader freezes what it read, in this process too)
    env.graph.run_cycle(sp_id)
    assert gc.get_freeze_count() == 0
    with entra_engine._gc_spares_long_lived():
        assert gc.get_freeze_count() > 0
        with entra_engine._gc_spares_long_lived():  # another job's cycle, overlapping
            entra_engine._freeze_again()
        assert gc.get_freeze_count() > 0  # still inside the first one
    assert gc.get_freeze_count() == 0
    gc.freeze()  # as a host process may do after its imports
    try:
        frozen = gc.get_freeze_count()
        with entra_engine._gc_spares_long_lived():
            entra_engine._freeze_again()
        env.graph.run_cycle(sp_id)
        assert 0 < gc.get_freeze_count() <= frozen  # neither frozen more nor handed back (some were freed)
    finally:
        gc.unfreeze()
