"""The Entra provider against the sandbox: real msgraph-sdk calls over loopback HTTP to the Graph emulator, whose
engine provisions into the sandbox's Astro SCIM server. User-facing behaviour goes through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from applied import applied as apply_once

from connector.cli import main
from connector.config.load import load_config
from connector.plan.model import Plan
from connector.providers.entra.provider import AzureProvider
from connector.sandbox.core import Sandbox
from connector.sandbox.faults import FaultConfig
from connector.sandbox.seed import ASSIGNED_TEAM


@pytest.fixture
def azure_config(sandbox: Sandbox, tmp_path: Path) -> Path:
    return sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))


@pytest.fixture
def provider(azure_config: Path) -> Iterator[AzureProvider]:
    p = AzureProvider(load_config(azure_config))
    yield p
    p.close()


def cli(*args: str, config: Path) -> int:
    return main([args[0], "--config", str(config), *args[1:]])


def applied(config: Path, *extra: str) -> None:
    assert cli("apply", "--idp", "azure", "--yes", *extra, config=config) == 0


def configured(sb: Sandbox, config: Path) -> None:
    """`apply --idp azure --yes` done, where a test starts from it (tests/applied.py: restored after the first
    real apply). The tests of apply itself run their own."""
    apply_once(sb, config, "azure", only=True)


def sp_of(sb: Sandbox) -> dict[str, Any]:
    assert sb.graph is not None
    sps = [s for s in sb.graph.service_principals() if s["displayName"] == "Astro"]
    assert len(sps) == 1, f"expected exactly one app named Astro, found {len(sps)}"
    return sps[0]


def graph_http(sb: Sandbox) -> httpx.Client:
    """A plain HTTP client on the emulator, for changing the tenant behind the connector's back."""
    return httpx.Client(base_url=str(sb.graph_url), headers={"Authorization": f"Bearer {sb.graph_token}"})


def resources(plan: Plan) -> list[str]:
    return [c.resource for c in plan.changes]


def azure_org(sb: Sandbox) -> str:
    return sb.astro_orgs["azure"].org_id


# --- plan / apply ------------------------------------------------------------------------------------------


def test_plan_on_fresh_tenant_lists_every_change_and_writes_nothing(sandbox: Sandbox, provider: AzureProvider) -> None:
    plan = provider.plan()
    teams = sandbox.default_team_names()
    assert resources(plan) == ["azure.app", "azure.assignment", "azure.assignment", "azure.assignment",
                               "azure.job", "azure.secrets", "azure.schema", "azure.job_state"]
    assert [c.key for c in plan.changes if c.resource == "azure.assignment"] == [ASSIGNED_TEAM, *teams]
    # apply also removes the template's mappings the file does not name: the plan says so before showing the diff
    [schema] = [c for c in plan.changes if c.resource == "azure.schema"]
    assert "remove the template's mappings it does not name" in schema.detail
    assert sandbox.logs["graph"].writes() == []
    assert sandbox.logs["astro"].writes() == []
    assert sandbox.graph is not None and sandbox.graph.service_principals() == []


def test_apply_makes_every_change_and_second_plan_is_empty(sandbox: Sandbox, azure_config: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    applied(azure_config)
    out = capsys.readouterr().out
    assert "applied 8 change(s)" in out
    graph = sandbox.graph
    assert graph is not None
    sp = sp_of(sandbox)
    assert {a["principalDisplayName"] for a in graph.assignments(sp["id"])} == {
        ASSIGNED_TEAM, *sandbox.default_team_names()}
    [job] = graph.jobs(sp["id"])
    assert job["templateId"] == "scim" and job["schedule"]["state"] == "Active"
    secrets = graph.secrets(sp["id"])
    assert secrets["BaseAddress"] == sandbox.astro_orgs["azure"].scim_url
    assert secrets["SecretToken"] == sandbox.astro_orgs["azure"].token
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 0
    assert "azure: no changes" in capsys.readouterr().out
    # The plan after apply asked Entra to test the saved token (a read-only POST) and changed nothing.
    sandbox.logs["graph"].clear()
    sandbox.logs["astro"].clear()
    assert cli("plan", "--idp", "azure", config=azure_config) == 0
    writes = sandbox.logs["graph"].writes()
    assert [w.path.rsplit("/", 1)[-1] for w in writes] == ["validateCredentials"]
    assert sandbox.logs["astro"].writes() == []


def _delete_assignment(sb: Sandbox, sp: dict[str, Any]) -> None:
    assert sb.graph is not None
    victim = next(a for a in sb.graph.assignments(sp["id"]) if a["principalDisplayName"] != ASSIGNED_TEAM)
    with graph_http(sb) as h:
        h.delete(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo/{victim['id']}").raise_for_status()


def _move_base_address(sb: Sandbox, sp: dict[str, Any]) -> None:
    assert sb.graph is not None
    sb.graph.set_secrets(sp["id"], {"BaseAddress": "https://old.example/scim/v2/x",
                                    "SecretToken": sb.astro_orgs["azure"].token})


def _wrong_token(sb: Sandbox, sp: dict[str, Any]) -> None:
    assert sb.graph is not None
    sb.graph.set_secrets(sp["id"], {"BaseAddress": sb.astro_orgs["azure"].scim_url, "SecretToken": "stale-token-1"})


def _edit_schema(sb: Sandbox, sp: dict[str, Any]) -> None:
    assert sb.graph is not None
    schema = sb.graph.schema(sp["id"])
    for rule in schema["synchronizationRules"]:
        for om in rule["objectMappings"]:
            for am in om["attributeMappings"]:
                if om["sourceObjectName"] == "User" and am["targetAttributeName"] == "name.givenName":
                    am["source"] = {"expression": "[mail]", "name": "mail", "type": "Attribute", "parameters": []}
    job_id = sb.graph.jobs(sp["id"])[0]["id"]
    with graph_http(sb) as h:
        h.put(f"/servicePrincipals/{sp['id']}/synchronization/jobs/{job_id}/schema", json=schema).raise_for_status()


def _pause_job(sb: Sandbox, sp: dict[str, Any]) -> None:
    assert sb.graph is not None
    job_id = sb.graph.jobs(sp["id"])[0]["id"]
    with graph_http(sb) as h:
        h.post(f"/servicePrincipals/{sp['id']}/synchronization/jobs/{job_id}/pause").raise_for_status()


def _delete_job(sb: Sandbox, sp: dict[str, Any]) -> None:
    assert sb.graph is not None
    job_id = sb.graph.jobs(sp["id"])[0]["id"]
    with graph_http(sb) as h:
        h.delete(f"/servicePrincipals/{sp['id']}/synchronization/jobs/{job_id}").raise_for_status()


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        (_delete_assignment, ["azure.assignment"]),
        (_move_base_address, ["azure.secrets"]),
        (_wrong_token, ["azure.secrets"]),
        (_edit_schema, ["azure.schema"]),
        (_pause_job, ["azure.job_state"]),
        # a new job starts from the template's schema: its mappings the YAML does not name are removed again
        (_delete_job, ["azure.job", "azure.secrets", "azure.schema", "azure.schema", "azure.job_state"]),
    ],
    ids=["assignment", "secrets-url", "secrets-token", "schema", "job-state", "job"],
)
def test_each_resource_kind_is_detected_repaired_and_then_clean(
    sandbox: Sandbox, azure_config: Path, drift: Any, expected: list[str]
) -> None:
    configured(sandbox, azure_config)
    sp = sp_of(sandbox)
    drift(sandbox, sp)
    cfg = load_config(azure_config)
    p = AzureProvider(cfg)
    try:
        plan = p.plan()
        assert resources(plan) == expected
        if expected == ["azure.schema"]:
            [change] = plan.changes
            assert change.key == "User name.givenName"
            assert (change.before, change.after) == ("[mail]", "[givenName]")
        if "azure.job" in expected:
            assert {c.key for c in plan.changes if c.resource == "azure.schema"} == {
                "User mappings not in the mapping file", "Group mappings not in the mapping file"}
        assert p.apply(plan) == len(expected)
        assert not p.plan()
    finally:
        p.close()
    assert sandbox.graph is not None
    assert len(sandbox.graph.jobs(sp["id"])) == 1
    assert sandbox.graph.secrets(sp["id"])["SecretToken"] == sandbox.astro_orgs["azure"].token


def test_scope_sync_all_is_planned_found_by_drift_and_set_back(sandbox: Sandbox, azure_config: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The portal's Scope "Sync all users and groups" (secret SyncAll=true) sends every user of the tenant to Astro,
    not the assigned groups: plan shows it, drift reports it, apply sets it back (plan and drift were silent)."""
    configured(sandbox, azure_config)
    assert sandbox.graph is not None
    sp = sp_of(sandbox)
    sandbox.graph.set_secrets(sp["id"], {"SyncAll": "True"})
    capsys.readouterr()
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 1
    out = capsys.readouterr().out
    assert "azure.secrets SyncAll: Scope 'Sync all users and groups'" in out
    assert sandbox.astro_orgs["azure"].token not in out
    assert cli("drift", "--idp", "azure", config=azure_config) == 1
    out = capsys.readouterr().out  # the finding's text wraps in the table: its remedy line is whole
    assert "mapping_not_applied" in out and "Scope: Sync only assigned users and groups" in out
    applied(azure_config)
    assert sandbox.graph.secrets(sp["id"])["SyncAll"] == "false"
    assert sandbox.graph.secrets(sp["id"])["SecretToken"] == sandbox.astro_orgs["azure"].token
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 0


def edited_in_the_portal(sandbox: Sandbox, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The job's schema with `edit` made to each object mapping, saved as the portal saves it (Graph's PUT).
    Returns the service principal."""
    assert sandbox.graph is not None
    sp = sp_of(sandbox)
    schema = sandbox.graph.schema(sp["id"])
    for rule in schema["synchronizationRules"]:
        for om in rule["objectMappings"]:
            edit(om)
    job_id = sandbox.graph.jobs(sp["id"])[0]["id"]
    with graph_http(sandbox) as h:
        h.put(f"/servicePrincipals/{sp['id']}/synchronization/jobs/{job_id}/schema", json=schema).raise_for_status()
    return sp


def test_a_removed_active_mapping_is_planned_back_and_restored(sandbox: Sandbox, azure_config: Path) -> None:
    """The admin deleted the `active` mapping in the portal (Entra's deprovisioning): plan and apply put it back."""
    configured(sandbox, azure_config)
    assert sandbox.graph is not None
    def without_active(om: dict[str, Any]) -> None:
        om["attributeMappings"] = [a for a in om["attributeMappings"] if a["targetAttributeName"] != "active"]

    sp = edited_in_the_portal(sandbox, without_active)
    p = AzureProvider(load_config(azure_config))
    try:
        plan = p.plan()
        assert [(c.resource, c.key) for c in plan.changes] == [("azure.schema", "User active")]
        assert p.apply(plan) == 1
        assert not p.plan()
    finally:
        p.close()
    users = next(om for rule in sandbox.graph.schema(sp["id"])["synchronizationRules"]
                 for om in rule["objectMappings"] if om["sourceObjectName"] == "User")
    assert "active" in {a["targetAttributeName"] for a in users["attributeMappings"]}


def test_apply_pause_leaves_the_job_paused(sandbox: Sandbox, azure_config: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    applied(azure_config)
    capsys.readouterr()
    assert main(["plan", "--idp", "azure", "-c", str(azure_config), "--pause"]) == 0  # plan shows what apply does
    assert "pause provisioning" in capsys.readouterr().out
    applied(azure_config, "--pause")
    assert sandbox.graph is not None
    assert sandbox.graph.jobs(sp_of(sandbox)["id"])[0]["schedule"]["state"] == "Paused"
    # No provisioning to check while paused: the text says so, as the JSON's verification does ("not_verified").
    out = capsys.readouterr().out
    assert "azure: not verified: the job is left paused (--pause)" in out
    assert "applied 1 change(s) (not verified)" in out


def _flatten(node: Any, path: str = "") -> dict[str, Any]:
    """JSON -> {path: leaf}; list items keyed by their natural name so a reorder is not a change."""
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            out.update(_flatten(v, f"{path}/{k}"))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            key = str(i)
            if isinstance(v, dict):
                key = str(v.get("targetAttributeName") or v.get("name") or v.get("id") or v.get("key") or i)
            out.update(_flatten(v, f"{path}[{key}]"))
    else:
        out[path] = node
    return out


def test_schema_round_trip_keeps_every_field_the_yaml_does_not_change(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    applied(config, "--pause")  # the shipped mapping equals the template's: the job keeps its own schema
    assert sandbox.graph is not None
    sp = sp_of(sandbox)
    before = sandbox.graph.schema(sp["id"])

    mapping = yaml.safe_load((Path(__file__).parents[1] / "mappings" / "azure.yaml").read_text())
    for m in mapping["users"]:
        if m["target"] == "name.givenName":
            m["source"] = 'Coalesce([givenName], "Unknown")'
    cost = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"
    mapping["users"].append({"target": cost, "source": "[department]"})
    (tmp_path / "azure.yaml").write_text(yaml.safe_dump(mapping))
    data = yaml.safe_load(config.read_text())
    data["azure"]["mapping"] = "azure.yaml"
    config.write_text(yaml.safe_dump(data))
    p = AzureProvider(load_config(config), pause=True)
    try:
        plan = p.plan()
        assert [(c.resource, c.key, c.before, c.after) for c in plan.changes] == [
            ("azure.schema", "User name.givenName", "[givenName]", 'Coalesce([givenName], "Unknown")'),
            ("azure.schema", f"User {cost}", None, "[department]"),
        ]
        p.apply(plan)
    finally:
        p.close()
    after = sandbox.graph.schema(sp["id"])

    flat_before, flat_after = _flatten(before), _flatten(after)
    changed = {k for k in flat_before if flat_before[k] != flat_after.get(k, object())}
    added = set(flat_after) - set(flat_before)
    # Only the givenName source changed; every other field of the job's schema is still there, unchanged.
    assert changed and all("[name.givenName]/source" in k for k in changed), sorted(changed)
    assert added and all(f"[{cost}]" in k or "[name.givenName]/source" in k for k in added), sorted(added)
    flows = [om["flowTypes"] for r in after["synchronizationRules"] for om in r["objectMappings"]]
    assert flows and all(f == "Add, Update, Delete" for f in flows)


# --- end to end ---------------------------------------------------------------------------------------------


def test_apply_and_a_job_cycle_provision_users_and_teams_into_astro(sandbox: Sandbox, azure_config: Path) -> None:
    applied(azure_config)
    org = azure_org(sandbox)
    people = {p.email.lower(): p for p in sandbox.seed_org.people}
    users = {u["userName"].lower(): u for u in sandbox.astro.users(org)}
    assert set(users) == set(people)  # every person is in "Astro Users", the assigned group
    for upn, user in users.items():
        person = people[upn]
        assert user["displayName"] == person.display_name
        assert user["name"]["givenName"] == person.first_name
        assert user["name"]["familyName"] == person.last_name
        assert user["active"] is True
    id_to_upn = {u["id"]: upn for upn, u in users.items()}
    teams = {g["displayName"]: g for g in sandbox.astro.groups(org)}
    expected_teams = [ASSIGNED_TEAM, *sandbox.default_team_names()]
    assert set(teams) == set(expected_teams)
    by_name = {t.name: t for t in sandbox.seed_org.teams}
    key_to_upn = {p.key: p.email.lower() for p in sandbox.seed_org.people}
    for name in expected_teams:
        members = {id_to_upn[m["value"]] for m in teams[name].get("members") or []}
        assert members == {key_to_upn[k] for k in by_name[name].member_keys}, name


# --- robustness --------------------------------------------------------------------------------------------


def test_apply_converges_under_throttling_and_server_errors_without_duplicates(
    sandbox: Sandbox, azure_config: Path
) -> None:
    assert sandbox.graph is not None
    sandbox.graph.propagation_failures = 2  # the new app is briefly invisible to the sync API, as in Entra
    sandbox.set_faults(FaultConfig(rate_429=0.2, rate_5xx=0.05, rate_reset=0.03), service="graph")
    assert cli("plan", "--idp", "azure", config=azure_config) == 0
    applied(azure_config)
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 0
    assert cli("status", "--idp", "azure", config=azure_config) == 0
    statuses = [e.status for e in sandbox.logs["graph"].entries]
    # The faults really happened (the fault RNG is seeded and our requests are sequential: this is stable).
    assert statuses.count(429) >= 2 and any(s >= 500 for s in statuses) and 0 in statuses, statuses
    sp = sp_of(sandbox)  # exactly one app
    assert len(sandbox.graph.jobs(sp["id"])) == 1
    principals = [a["principalId"] for a in sandbox.graph.assignments(sp["id"])]
    assert len(principals) == len(set(principals)) == 3
    sandbox.set_faults(FaultConfig(), service="graph")
    assert len(sandbox.astro.users(azure_org(sandbox))) == 12


def test_create_answered_with_a_gateway_timeout_is_not_repeated(
    sandbox: Sandbox, azure_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entra can create the app and still answer 504. A blind retry of the POST would make a second app."""
    from connector.sandbox.graph.api import GraphError

    assert sandbox.graph is not None
    real = sandbox.graph.instantiate
    calls: list[str] = []

    def created_then_timed_out(display_name: str) -> Any:
        calls.append(display_name)
        result = real(display_name)
        if len(calls) == 1:
            raise GraphError(504, "GatewayTimeout", "The operation timed out.")
        return result

    monkeypatch.setattr(sandbox.graph, "instantiate", created_then_timed_out)
    applied(azure_config)
    assert calls == ["Astro"]  # the retry found the app instead of posting again
    sp_of(sandbox)


def test_missing_permission_is_named(sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox.graph is not None
    configured(sandbox, azure_config)
    sandbox.graph.deny_permission("appRoleAssignments")
    capsys.readouterr()
    assert cli("test-connection", "--idp", "azure", config=azure_config) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "FAIL" in ln)
    assert "AppRoleAssignment.ReadWrite.All" in line and "Authorization_RequestDenied" in line
    assert cli("plan", "--idp", "azure", config=azure_config) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: graph GET /servicePrincipals/")
    assert "missing permission: AppRoleAssignment.ReadWrite.All" in err and "Traceback" not in err


def test_odata_error_is_one_readable_line(sandbox: Sandbox, azure_config: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(azure_config.read_text())
    (azure_config.parent / "graph.token").write_text("not-the-token\n")
    azure_config.write_text(yaml.safe_dump(data))
    assert cli("plan", "--idp", "azure", config=azure_config) == 3
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert "InvalidAuthenticationToken" in first and "HTTP 401" in first
    assert "Traceback" not in err


def test_unknown_group_is_not_found_with_candidates(sandbox: Sandbox, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",),
                                  azure_assign_groups=["Astro User"])
    assert cli("plan", "--idp", "azure", config=config) == 2
    err = capsys.readouterr().err
    assert "no Entra group named 'Astro User'" in err and "did you mean: 'Astro Users'" in err


def test_a_group_name_several_entra_groups_have_stops_at_its_config_line_with_their_ids(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two Entra groups named alike (Entra allows it): plan stops at the name's line in azure.assign_groups with
    both ids to give instead; never "did you mean" or "re-create it", which are for a group that is missing."""
    assert sandbox.graph is not None
    twin = sandbox.graph.state.add_group({"displayName": "Astro Users", "securityEnabled": True})
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    assert cli("plan", "--idp", "azure", config=config) == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    line = next(i for i, text in enumerate(config.read_text().splitlines(), 1) if "Astro Users" in text)
    assert f"{config}:{line}" in first and "2 Entra groups are named 'Astro Users' (azure.assign_groups)" in first
    assert twin["id"] in err and "use the group's object id instead" in err
    assert "did you mean" not in err and "re-create" not in err and "Traceback" not in err


def test_status_reports_quarantine_and_failed_entries(sandbox: Sandbox, azure_config: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox.graph is not None
    configured(sandbox, azure_config)
    assert cli("status", "--idp", "azure", config=azure_config) == 0
    out = capsys.readouterr().out
    assert "job state: Active" in out and "not quarantined" in out and "Succeeded" in out
    sandbox.graph.quarantine(sp_of(sandbox)["id"], reason="EncounteredQuarantineException")
    assert cli("status", "--idp", "azure", config=azure_config) == 1
    out = capsys.readouterr().out
    assert "FAIL quarantine: EncounteredQuarantineException" in out


def test_status_and_drift_agree_on_a_failure_entra_has_since_exported(sandbox: Sandbox, azure_config: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A user's export failed, then a later cycle exported it: drift calls the failure history (no finding) but
    status failed on it (exit 1), against the README's "healthy only when the last cycle succeeded"."""
    import copy

    assert sandbox.graph is not None
    configured(sandbox, azure_config)
    st = sandbox.graph.state
    done = next(e for e in st.provisioning_logs if (e.get("sourceIdentity") or {}).get("identityType") == "User")
    old = copy.deepcopy(done)
    old["id"], old["activityDateTime"] = "old-failure", "2020-01-01T00:00:00Z"
    old["provisioningStatusInfo"] = {"status": "failure", "errorInformation": {
        "errorCode": "SystemForCrossDomainIdentityManagementServiceFailure", "reason": "Astro answered 500"}}
    st.add_log(old)
    capsys.readouterr()
    assert cli("status", "--idp", "azure", config=azure_config) == 0
    out = capsys.readouterr().out
    assert "ok   provisioning log: no failure left in the last" in out and "(1 failure(s) since exported)" in out
    assert cli("drift", "--idp", "azure", config=azure_config) == 0
    # The same failure as the user's newest entry is current: both say so.
    old["activityDateTime"] = "2999-01-01T00:00:00Z"
    capsys.readouterr()
    assert cli("status", "--idp", "azure", config=azure_config) == 1
    assert "FAIL provisioning log: 1 recent failure(s)" in capsys.readouterr().out


def test_failed_credentials_stop_apply_before_the_job_starts(sandbox: Sandbox, azure_config: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (azure_config.parent / "astro-azure.token").write_text("wrong-astro-token-123\n")
    assert cli("apply", "--idp", "azure", "--yes", config=azure_config) == 3
    err = capsys.readouterr().err
    assert "Test connection failed" in err and "wrong-astro-token-123" not in err
    assert sandbox.graph is not None
    assert sandbox.graph.jobs(sp_of(sandbox)["id"])[0]["schedule"]["state"] != "Active"


def test_secrets_never_appear_in_output_or_logs(sandbox: Sandbox, azure_config: Path,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    canaries = [sandbox.graph_token, sandbox.astro_orgs["azure"].token]
    for args in (["apply", "--idp", "azure", "--yes"], ["plan", "--idp", "azure", "--format", "json"],
                 ["test-connection", "--idp", "azure"], ["status", "--idp", "azure"]):
        assert main(["-v", args[0], "--config", str(azure_config), *args[1:]]) in (0, 1)
    assert cli("provision", "--user", sandbox.seed_org.people[0].email, config=azure_config) == 0
    out, err = capfd.readouterr()
    assert "azure" in out and "HTTP Request: POST" in err  # the runs really produced output and -v logs
    for canary in canaries:
        assert canary not in out and canary not in err


# --- the drift view --------------------------------------------------------------------------------------


def test_read_view_maps_in_scope_users_and_groups(sandbox: Sandbox, azure_config: Path) -> None:
    assert sandbox.graph is not None
    configured(sandbox, azure_config)
    person = sandbox.seed_org.people[0]
    sandbox.graph.update_user(person.email, accountEnabled=False)
    p = AzureProvider(load_config(azure_config))
    try:
        view = p.read_view()
    finally:
        p.close()
    users = {u.user_name.lower(): u for u in view.users}
    assert set(users) == {q.email.lower() for q in sandbox.seed_org.people}
    me = users[person.email.lower()]
    assert not me.active
    assert me.expected == {"userName": person.email, "displayName": person.display_name,
                           "name.givenName": person.first_name, "name.familyName": person.last_name}
    groups = {g.name: g for g in view.groups}
    assert set(groups) == {ASSIGNED_TEAM, *sandbox.default_team_names()}
    assert person.email.lower() not in groups[ASSIGNED_TEAM].members  # disabled: not a provisioned member
    assert len(groups[ASSIGNED_TEAM].members) == 11
    assert view.issues == []
    json.dumps([u.expected for u in view.users])  # plain values only


def test_provider_works_from_worker_threads_and_inside_a_running_loop(sandbox: Sandbox, azure_config: Path) -> None:
    """drift reads the IdP in a worker thread while other code may run an event loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    configured(sandbox, azure_config)
    p = AzureProvider(load_config(azure_config))
    try:
        assert not p.plan()  # main thread
        with ThreadPoolExecutor(max_workers=2) as pool:
            views = list(pool.map(lambda _: p.read_view(), range(2)))  # two threads at once: serialized
        assert [len(v.users) for v in views] == [12, 12]

        async def inside() -> int:
            return len(p.read_view().users)

        assert asyncio.run(inside()) == 12
    finally:
        p.close()


def test_calls_from_two_threads_run_side_by_side_on_the_providers_loop(sandbox: Sandbox, azure_config: Path) -> None:
    """drift's setup audit and view read come from two threads: neither waits for the other to finish (one
    coroutine here waits for what the other does; taking turns, the first would never see it)."""
    import asyncio
    import threading

    p = AzureProvider(load_config(azure_config))
    started = threading.Event()
    try:
        seen: list[str] = []
        events: list[asyncio.Event] = []

        async def waiter() -> str:
            event = asyncio.Event()
            events.append(event)
            started.set()
            await asyncio.wait_for(event.wait(), timeout=30)  # only a failure would wait this long
            return "released"

        async def releaser() -> str:
            events[0].set()
            return "set"

        first = threading.Thread(target=lambda: seen.append(p._run(waiter())))
        first.start()
        assert started.wait(timeout=30)
        seen.append(p._run(releaser()))
        first.join(timeout=30)
        # Both finished (under a lock taken in turns the waiter times out and only "set" is seen); the two
        # threads append in either order once both coroutines are done.
        assert sorted(seen) == ["released", "set"]
    finally:
        p.close()


def test_a_misspelled_app_name_gets_the_closest_name_in_the_tenant(sandbox: Sandbox, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    configured(sandbox, sandbox.write_config(tmp_path / "good.yaml", idps=("azure",)))  # creates the app "Astro"
    typo = sandbox.write_config(tmp_path / "typo.yaml", idps=("azure",), azure_app_name="Astr0")
    capsys.readouterr()
    assert cli("test-connection", "--idp", "azure", config=typo) == 1
    out = capsys.readouterr().out
    assert "FAIL app 'Astr0': not found in the tenant" in out
    assert "did you mean 'Astro' (azure.app.display_name)?" in out
    assert cli("status", "--idp", "azure", config=typo) == 1  # not set up (as far as this config can tell)
    assert "did you mean 'Astro'" in capsys.readouterr().out
    # Nothing close: an app not created yet (information, as before any apply), the hint is to create it.
    other = sandbox.write_config(tmp_path / "other.yaml", idps=("azure",), azure_app_name="Snowflake")
    assert cli("test-connection", "--idp", "azure", config=other) == 0
    out = capsys.readouterr().out
    assert "did you mean" not in out and "astro-scim apply --idp azure" in out
    assert "info app 'Snowflake': not set up yet" in out


def test_close_cancels_a_call_another_thread_still_waits_for(sandbox: Sandbox, azure_config: Path) -> None:
    """close() while a call is still running on the provider's loop (drift's second Ctrl-C during its thread
    join): the waiting thread gets CancelledError at once instead of waiting for ever on a stopped loop."""
    import asyncio
    import concurrent.futures
    import threading

    p = AzureProvider(load_config(azure_config))
    started = threading.Event()
    outcome: list[str] = []

    async def never() -> str:
        started.set()
        await asyncio.Event().wait()  # nothing sets it
        return "finished"

    def call() -> None:
        try:
            outcome.append(p._run(never()))
        except concurrent.futures.CancelledError:
            outcome.append("cancelled")

    waiting = threading.Thread(target=call)
    waiting.start()
    assert started.wait(timeout=30)
    p.close()
    waiting.join(timeout=30)
    assert not waiting.is_alive() and outcome == ["cancelled"]


def test_test_connection_checks_our_astro_token_before_any_apply(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Our side's astro.token is tested straight against Astro, not only through Entra's validateCredentials
    (which needs the job `apply` creates)."""
    capsys.readouterr()
    assert cli("test-connection", "--idp", "azure", config=azure_config) == 0  # no app yet: information
    out = capsys.readouterr().out
    assert f"ok   Astro SCIM token: {sandbox.astro_orgs['azure'].scim_url} accepts it" in out
    (azure_config.parent / "astro-azure.token").write_text("revoked\n", encoding="utf-8")
    assert cli("test-connection", "--idp", "azure", config=azure_config) == 1
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "Astro SCIM token" in ln)
    assert line.lstrip().startswith("FAIL") and "401" in line


def test_apply_with_a_dead_tenant_url_saves_nothing_and_keeps_the_working_job(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The new credentials are tested (validateCredentials with them in the body) before they are saved: a URL
    Astro does not answer on must not replace the saved one that works."""
    configured(sandbox, azure_config)
    assert sandbox.graph is not None
    sp = sp_of(sandbox)
    before = sandbox.graph.secrets(sp["id"])
    good = azure_config.read_text()
    dead = "http://127.0.0.1:9/scim/v2/dead"
    azure_config.write_text(good.replace(sandbox.astro_orgs["azure"].scim_url, dead))
    capsys.readouterr()
    assert cli("apply", "--idp", "azure", "--yes", config=azure_config) == 3
    err = capsys.readouterr().err
    assert "stopped after 0 of 1 change(s)" in err and "nothing was saved" in err
    assert sandbox.graph.secrets(sp["id"]) == before
    log = [json.loads(line) for line in (azure_config.parent / ".astro-scim" / "audit.log").read_text().splitlines()]
    assert [c["outcome"] for c in log[-1]["changes"]] == ["not applied"]
    azure_config.write_text(good)
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 0
    assert cli("status", "--idp", "azure", config=azure_config) == 0


def test_credentials_saved_then_failing_their_read_back_are_reported_written(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Saved, then Entra's test of the saved credentials fails (Astro revoked the token in between): apply says
    the change was written and fails (exit 4, audit outcome "applied, check failed"), never "not applied"."""
    configured(sandbox, azure_config)
    assert sandbox.graph is not None
    sp = sp_of(sandbox)
    sandbox.graph.set_secrets(sp["id"], {"BaseAddress": "https://old.example/scim/v2/x", "SecretToken": "x"})
    org = sandbox.astro_orgs["azure"]
    calls = {"n": 0}
    real = sandbox.graph.engine.validate_credentials

    def second_call_refused(base: str, token: str) -> None:
        calls["n"] += 1
        real(base, token if calls["n"] == 1 else "revoked-token-123")

    sandbox.graph.engine.validate_credentials = second_call_refused  # type: ignore[method-assign]
    capsys.readouterr()
    assert cli("apply", "--idp", "azure", "--yes", "--format", "json", config=azure_config) == 4
    doc = json.loads(capsys.readouterr().out)
    (entry,) = doc["providers"]
    assert [c["outcome"] for c in entry["changes"]] == ["applied"] and entry["error"]["type"] == "WrittenButFailing"
    assert sandbox.graph.secrets(sp["id"])["BaseAddress"] == org.scim_url
    log = [json.loads(line) for line in (azure_config.parent / ".astro-scim" / "audit.log").read_text().splitlines()]
    assert [c["outcome"] for c in log[-1]["changes"]] == ["applied, check failed"]


def test_a_graph_failure_of_the_credential_test_is_not_blamed_on_astro(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """validateCredentials refused by Graph itself (403 here: a permission) is Graph's error with its own hint, not
    "Entra could not use the Astro SCIM endpoint": apply now decides by that test whether to save the secrets."""
    from connector.sandbox.faults import FaultRule

    configured(sandbox, azure_config)
    sandbox.fail("graph", FaultRule("POST", r"/validateCredentials$", status=403, times=None))
    capsys.readouterr()
    assert cli("test-connection", "--idp", "azure", config=azure_config) == 1
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "validateCredentials" in ln)
    assert "FAIL" in line and "403" in line and "could not use the Astro SCIM endpoint" not in line


def test_secrets_saved_whose_answer_is_lost_are_read_back_not_reported_unsaved(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Entra saves the Tenant URL and token, then the connection drops before its answer (every retry alike): the
    saved Tenant URL read back shows they were written, so apply goes on, tests them and verifies (it stopped with
    'not applied' while Entra held them)."""
    from connector.sandbox.faults import FaultRule

    rule = sandbox.fail("graph", FaultRule("PUT", r"/synchronization/secrets$", status=0, after=True, times=None))
    capsys.readouterr()
    assert cli("apply", "--idp", "azure", "--yes", config=azure_config) == 0, capsys.readouterr()
    assert rule.hits >= 1
    saved = sandbox.graph.state.sp_sync(sp_of(sandbox)["id"]).secrets  # type: ignore[union-attr]
    assert saved.get("BaseAddress") == sandbox.astro_orgs["azure"].scim_url
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 0  # second plan empty


@pytest.mark.parametrize("pause", [False, True], ids=["start", "pause"])
def test_a_lost_start_or_pause_answer_is_read_back_not_resent_or_reported_failed(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str], pause: bool) -> None:
    """Entra starts (or pauses) the job, then the connection drops before its answer, on every try: apply reads
    the job back, finds it in the wanted state and reports the change done (it resent start six times, against
    Graph's advice, then said 'stopped after 7 of 8 change(s)', exit 3, with the job running)."""
    from connector.sandbox.faults import FaultRule

    action = "pause" if pause else "start"
    if pause:
        configured(sandbox, azure_config)
    rule = sandbox.fail("graph", FaultRule("POST", rf"/jobs/[^/]+/{action}$", status=0, after=True, times=None))
    capsys.readouterr()
    assert cli("apply", "--idp", "azure", "--yes", *(["--pause"] if pause else []), config=azure_config) == 0, \
        capsys.readouterr()
    assert rule.hits == 1
    assert sandbox.graph is not None
    [job] = sandbox.graph.jobs(sp_of(sandbox)["id"])
    assert job["schedule"]["state"] == ("Paused" if pause else "Active")
    assert cli("plan", "--idp", "azure", "--exit-code", *(["--pause"] if pause else []), config=azure_config) == 0


def test_a_job_quarantined_for_too_many_deletes_is_a_manual_step_not_started(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Entra's accidental-deletions prevention quarantined the job (reason TooManyDeletes): apply --yes used to
    start it, which clears the quarantine and lets the held-back deletions through unreviewed. It is a manual step
    now (exit 1, nothing started) until someone decides; then the plan is empty again."""
    configured(sandbox, azure_config)
    assert sandbox.graph is not None
    sp = sp_of(sandbox)
    sandbox.graph.quarantine(sp["id"], reason="TooManyDeletes", message="Too many deletes.")
    capsys.readouterr()
    sandbox.logs["graph"].clear()
    assert cli("apply", "--idp", "azure", "--yes", config=azure_config) == 1
    out = capsys.readouterr()
    assert "! azure.job_state" in out.out and "TooManyDeletes" in out.out and "ForceDeletes" in out.err + out.out
    assert not [w for w in sandbox.logs["graph"].writes() if w.path.endswith(("/start", "/restart"))]
    assert sandbox.graph.jobs(sp["id"])[0]["status"]["code"] == "Quarantine"
    assert cli("status", "--idp", "azure", config=azure_config) == 1
    assert "'astro-scim apply' restarts the job" not in capsys.readouterr().out
    with graph_http(sandbox) as h:  # the admin allows the deletions
        job_id = sandbox.graph.jobs(sp["id"])[0]["id"]
        h.post(f"/servicePrincipals/{sp['id']}/synchronization/jobs/{job_id}/restart",
               json={"criteria": {"resetScope": "ForceDeletes, QuarantineState"}}).raise_for_status()
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 0


def test_a_group_assigned_in_the_portal_but_not_configured_is_noted_by_plan(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A group someone assigned to the app in the portal, not in azure.assign_groups: Entra provisions its members
    to Astro, apply never removes it, and plan said nothing. It says so now (a note: no change, exit 0)."""
    configured(sandbox, azure_config)
    assert sandbox.graph is not None
    sp = sp_of(sandbox)
    assigned = {a["principalDisplayName"] for a in sandbox.graph.assignments(sp["id"])}
    extra = next(g for g in sandbox.graph.groups() if g["displayName"] not in assigned)
    capsys.readouterr()
    assert cli("plan", "--idp", "azure", config=azure_config) == 0
    assert "not in azure.assign_groups" not in capsys.readouterr().err
    sandbox.graph.assign(sp["id"], extra["id"])
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 0
    err = capsys.readouterr().err
    assert f"also assigned to the app, not in azure.assign_groups: {extra['displayName']} (group)" in err


def test_group_provisioning_disabled_in_the_portal_is_planned_back_on(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Mappings > "Provision Microsoft Entra ID Groups" > Enabled: No makes Entra send no group to Astro: plan and
    drift said nothing (only attribute mappings were compared). plan shows it, apply enables it, plan is empty."""
    configured(sandbox, azure_config)
    assert sandbox.graph is not None
    def groups_off(om: dict[str, Any]) -> None:
        if om["sourceObjectName"] == "Group":
            om["enabled"] = False

    sp = edited_in_the_portal(sandbox, groups_off)
    capsys.readouterr()
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 1
    assert "~ azure.schema Group provisioning: disabled -> enabled" in capsys.readouterr().out
    assert cli("drift", "--idp", "azure", config=azure_config) == 1
    applied(azure_config)
    groups = next(om for rule in sandbox.graph.schema(sp["id"])["synchronizationRules"]
                  for om in rule["objectMappings"] if om["sourceObjectName"] == "Group")
    assert groups["enabled"] is True
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 0


def test_a_long_replication_after_create_does_not_report_the_app_unmade_nor_fail_plan(
        sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Entra replicates a new app for longer than apply's first wait: apply said 'stopped after 0 of 8' though it
    had made the app, and every plan after it failed (exit 3, 404 on the app's synchronization jobs) until the
    replication ended. Now the app counts as made, the job read waits for the replication like the creates do,
    and a plan made while an app (made in the portal) still replicates works."""
    assert sandbox.graph is not None
    sandbox.graph.propagation_failures = 14  # more than wait_until_visible's 10 attempts
    capsys.readouterr()
    assert cli("apply", "--idp", "azure", "--yes", config=azure_config) == 0, capsys.readouterr()
    assert "applied 8 change(s)" in capsys.readouterr().out
    assert cli("plan", "--idp", "azure", "--exit-code", config=azure_config) == 0
    # an app someone just made in the portal, still replicating: plan reads it (and plans the rest)
    sandbox.graph.propagation_failures = 5
    with graph_http(sandbox) as h:
        h.post("/applicationTemplates/8adf8e6e-67b2-4cf2-a259-e3dc5476c621/instantiate",
               json={"displayName": "Astro Staging"}).raise_for_status()
    staging = azure_config.with_name("staging.yaml")
    staging.write_text(azure_config.read_text().replace("display_name: Astro", "display_name: Astro Staging"))
    assert "display_name: Astro Staging" in staging.read_text()
    capsys.readouterr()
    assert cli("plan", "--idp", "azure", config=staging) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "+ azure.job scim" in out and "+ azure.app" not in out
