"""What Entra provisions of an object at all: the object mapping's scoping filter (the portal's Source Object
Scope), its Target Object Actions (flowTypes: Add, Update, Delete) and Enabled.

The seed's setup has no scoping filter and every action, so `plan` shows a difference, `apply` puts it back (run
twice: the second has nothing to do) and `drift` reports it as `provisioning_limited` with a remedy. The Graph
emulator's engine honours both the way Entra does, so the sandbox rehearses what they cost: users a filter leaves
out are never provisioned, leavers stay active with Delete unticked. And a user Entra deactivated in Astro because
they left the scope is what the seed expects, not an orphan. Everything runs the CLI against the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM

Found = list[tuple[str, str]]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


def drift(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[dict[str, Any]]]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--idp", "azure", "--format", "json", *extra])
    doc = json.loads(capsys.readouterr().out)
    return rc, [f for idp in doc["idps"] for f in idp["findings"]]


def graph_http(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=str(sb.graph_url), headers={"Authorization": f"Bearer {sb.graph_token}"})


def sp_and_job(sb: Sandbox) -> tuple[str, str]:
    assert sb.graph is not None
    sp = sb.graph.service_principal("Astro")
    assert sp is not None
    return str(sp["id"]), str(sb.graph.jobs(sp["id"])[0]["id"])


def edit_object_mapping(sb: Sandbox, obj: str, edit: Callable[[dict[str, Any]], None]) -> httpx.Response:
    """The job's schema with `edit` made to the `obj` ("User" | "Group") object mapping, saved as the portal
    saves it (Graph's PUT of the whole schema)."""
    assert sb.graph is not None
    sp, job = sp_and_job(sb)
    schema = sb.graph.schema(sp)
    for rule in schema["synchronizationRules"]:
        for om in rule["objectMappings"]:
            if om["sourceObjectName"] == obj:
                edit(om)
    with graph_http(sb) as h:
        return h.put(f"/servicePrincipals/{sp}/synchronization/jobs/{job}/schema", json=schema)


def object_mapping(sb: Sandbox, obj: str) -> dict[str, Any]:
    assert sb.graph is not None
    sp, _ = sp_and_job(sb)
    return next(om for rule in sb.graph.schema(sp)["synchronizationRules"] for om in rule["objectMappings"]
                if om["sourceObjectName"] == obj)


def scope(*clauses: tuple[str, str, list[str]]) -> dict[str, Any]:
    return {"categoryFilterGroups": [], "inputFilterGroups": [], "groups": [{"name": "Group 1", "clauses": [
        {"sourceOperandName": attr, "operatorName": op, "targetOperand": {"values": values}}
        for attr, op, values in clauses]}]}


def astro_user(sb: Sandbox, upn: str) -> dict[str, Any] | None:
    return sb.astro.find_user(sb.astro_orgs["azure"].org_id, upn)


def cycle(sb: Sandbox) -> None:
    assert sb.graph is not None
    sb.graph.run_cycle(sp_and_job(sb)[0])


def newcomer(sb: Sandbox, department: str = "Facilities") -> str:
    """A new Entra user (as an admin creates one), not in any group yet. Returns the userPrincipalName."""
    assert sb.graph is not None
    upn = f"nadia.newcomer.{department.lower()}@acme.example"
    sb.graph.state.add_user({"userPrincipalName": upn, "displayName": "Nadia Newcomer", "givenName": "Nadia",
                             "surname": "Newcomer", "mail": upn, "mailNickname": upn.split("@")[0],
                             "department": department, "jobTitle": "Analyst", "userType": "Member"})
    return upn


def assigned_only(sb: Sandbox) -> list[str]:
    """People in the assigned group and in no other Team (leaving it takes them out of the app's scope)."""
    assert sb.graph is not None
    others = {k for t in sb.default_team_names() for k in sb.seed_org.team(t).member_keys}
    members = set(sb.graph.group_member_upns(ASSIGNED_TEAM))
    return [p.email for p in sb.seed_org.people if p.key not in others and p.email in members and p.active]


# -- the emulator's engine ------------------------------------------------------------------------------------


def test_the_engine_provisions_only_the_users_a_scoping_filter_lets_through(
        sandbox: Sandbox, azure_applied: Path) -> None:
    assert sandbox.graph is not None
    new = newcomer(sandbox, "Facilities")
    sandbox.graph.add_member(ASSIGNED_TEAM, new)
    other = assigned_only(sandbox)[0]
    filtered = scope(("department", "NOT_EQUALS", ["Facilities"]), ("accountEnabled", "IS_TRUE", []))
    assert edit_object_mapping(sandbox, "User", lambda om: om.update(scope=filtered)).status_code == 204
    cycle(sandbox)
    assert astro_user(sandbox, new) is None  # in the assigned group, filtered out: never created
    kept = astro_user(sandbox, other)
    assert kept is not None and kept["active"] is True  # another department: still provisioned
    filtered = scope(("department", "REGEX_MATCH", ["^Facil"]), ("officeLocation", "IS_NULL", []))
    assert edit_object_mapping(sandbox, "User", lambda om: om.update(scope=filtered)).status_code == 204
    cycle(sandbox)
    assert (astro_user(sandbox, new) or {}).get("active") is True
    gone = astro_user(sandbox, other)
    assert gone is not None and gone["active"] is False  # the filter took it out of scope: disabled


def test_graph_accepts_every_operator_microsoft_documents_for_scoping_filters(
        sandbox: Sandbox, azure_applied: Path) -> None:
    """The fourteen of entra-docs' "Scoping users or groups to be provisioned with scoping filters"; a scoping
    filter an admin wrote with any of them is rehearsed, not refused."""
    from connector.sandbox.graph.engine import SCOPE_OPERATORS

    assert len(SCOPE_OPERATORS) == 14
    for operator in sorted(SCOPE_OPERATORS):
        answer = edit_object_mapping(sandbox, "User",
                                     lambda om, op=operator: om.update(scope=scope(("department", op, ["x"]))))
        assert answer.status_code == 204, (operator, answer.text)
        assert object_mapping(sandbox, "User")["scope"]["groups"][0]["clauses"][0]["operatorName"] == operator


def test_graph_accepts_a_dotnet_named_group_in_a_scoping_pattern(sandbox: Sandbox, azure_applied: Path) -> None:
    """Entra evaluates .NET patterns: (?<name>...) is saved (Python's re spells it (?P<name>...))."""
    answer = edit_object_mapping(sandbox, "User",
                                 lambda om: om.update(scope=scope(("department", "REGEX_MATCH", ["(?<d>Fac)"]))))
    assert answer.status_code == 204, answer.text


@pytest.mark.parametrize("pattern", ["([", "\\p{L}+"])
def test_graph_refuses_a_scoping_pattern_that_is_not_a_regular_expression(
        sandbox: Sandbox, azure_applied: Path, pattern: str) -> None:
    """Refused when the schema is saved, 400 naming the pattern and saying it is the sandbox's limit (Entra reads
    .NET patterns, which Python's re may not): the provisioning cycle never meets one (it stopped there with the
    job's status left stale)."""
    answer = edit_object_mapping(sandbox, "User",
                                 lambda om: om.update(scope=scope(("department", "REGEX_MATCH", [pattern]))))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "BadRequest" and pattern in error["message"] and "sandbox" in error["message"]
    assert object_mapping(sandbox, "User")["scope"] is None  # nothing saved


@pytest.mark.parametrize("operator", ["GREATER_THAN", "IS MEMBER OF", "EQUALS_ANY", "NOT EQUALS"])
def test_graph_refuses_a_scoping_clause_with_an_operator_it_does_not_support(
        sandbox: Sandbox, azure_applied: Path, operator: str) -> None:
    answer = edit_object_mapping(sandbox, "User", lambda om: om.update(scope=scope(("department", operator, ["x"]))))
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "BadRequest" and f"'{operator}' is not supported" in error["message"]
    assert object_mapping(sandbox, "User")["scope"] is None  # nothing saved


def test_flow_types_none_is_no_action_not_every_action() -> None:
    """objectFlowTypes "None" (every Target Object Action unticked) leaves the engine nothing to do; it was read
    as the template's every action."""
    from connector.sandbox.graph.engine import compile_rules
    from connector.sandbox.graph.template import build_schema

    schema = build_schema("scim")
    for om in schema["synchronizationRules"][0]["objectMappings"]:
        om["flowTypes"] = "None"
    rules = compile_rules(schema)
    assert rules is not None and rules.user_flows == frozenset() and rules.group_flows == frozenset()


def test_graph_refuses_flow_types_outside_its_enum(sandbox: Sandbox, azure_applied: Path) -> None:
    answer = edit_object_mapping(sandbox, "User", lambda om: om.update(flowTypes="Add, Disable"))
    assert answer.status_code == 400 and "Requested value 'Add, Disable' was not found." in answer.text


def test_with_delete_unticked_the_engine_leaves_leavers_active_and_with_add_unticked_creates_no_one(
        sandbox: Sandbox, azure_applied: Path) -> None:
    assert sandbox.graph is not None
    leaver = assigned_only(sandbox)[0]
    edit_object_mapping(sandbox, "User", lambda om: om.update(flowTypes="Add, Update")).raise_for_status()
    sandbox.graph.remove_member(ASSIGNED_TEAM, leaver)
    cycle(sandbox)
    assert (astro_user(sandbox, leaver) or {}).get("active") is True  # Entra never disables it
    new = newcomer(sandbox)
    edit_object_mapping(sandbox, "User", lambda om: om.update(flowTypes="Update, Delete")).raise_for_status()
    sandbox.graph.add_member(ASSIGNED_TEAM, new)
    cycle(sandbox)
    assert astro_user(sandbox, new) is None
    assert (astro_user(sandbox, leaver) or {}).get("active") is False  # Delete ticked again: disabled
    skipped = [e for e in sandbox.graph.logs() if e["provisioningStatusInfo"]["status"] == "skipped"
               and "Create action is not enabled" in json.dumps(e["provisioningSteps"])]
    assert skipped, "the provisioning log says why the newcomer was not created"


# -- plan, apply, drift -------------------------------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], None]


def _filter_added(om: dict[str, Any]) -> None:
    om["scope"] = scope(("department", "EQUALS", ["Sales"]))


def _delete_unticked(om: dict[str, Any]) -> None:
    om["flowTypes"] = "Add, Update"


def _disabled(om: dict[str, Any]) -> None:
    om["enabled"] = False


CASES = [
    ("User", _filter_added, "User scoping filter", "department EQUALS 'Sales' -> none"),
    ("User", _delete_unticked, "User target object actions", "Create, Update -> Create, Update, Delete"),
    ("Group", _disabled, "Group provisioning", "disabled -> enabled"),
]


@pytest.mark.parametrize(("obj", "edit", "key", "shown"), CASES, ids=["scoping_filter", "delete_unticked",
                                                                      "groups_disabled"])
def test_plan_shows_apply_restores_and_drift_reports_what_limits_provisioning(
        sandbox: Sandbox, azure_applied: Path, capsys: pytest.CaptureFixture[str], obj: str, edit: Edit, key: str,
        shown: str) -> None:
    config = azure_applied
    edit_object_mapping(sandbox, obj, edit).raise_for_status()
    rc, out = run(capsys, "plan", "-c", str(config), "--idp", "azure", "--exit-code")
    assert rc == 1 and f"~ azure.schema {key}: {shown}" in out, out
    rc, findings = drift(config, capsys)
    assert rc == 1, findings
    (limited,) = [f for f in findings if f["kind"] == "provisioning_limited"]
    assert limited["subject"] == key and not [f for f in findings if f["kind"] == "mapping_not_applied"], findings
    assert "astro-scim apply --idp azure" in limited["remedy"]
    assert f"Provision Microsoft Entra ID {obj}s" in limited["remedy"]
    rc, out = run(capsys, "status", "-c", str(config), "--idp", "azure")
    assert rc == 1 and "FAIL setup:" in out and key in out, out
    rc, out = run(capsys, "apply", "-c", str(config), "--idp", "azure", "--yes")
    assert rc == 0, out
    om = object_mapping(sandbox, obj)
    assert (om["enabled"], om["scope"], om["flowTypes"]) == (True, None, "Add, Update, Delete")
    # run twice: the second apply has nothing to do, and drift is clean
    rc, out = run(capsys, "apply", "-c", str(config), "--idp", "azure", "--yes")
    assert rc == 0 and "azure.schema" not in out, out
    assert run(capsys, "plan", "-c", str(config), "--idp", "azure", "--exit-code")[0] == 0
    assert drift(config, capsys) == (0, [])


def test_a_scoping_filter_that_left_users_out_is_repaired_by_apply_and_they_reach_astro(
        sandbox: Sandbox, azure_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole story: a filter added in the portal silently stops a newcomer from being provisioned; drift says
    why (the setup finding, not only a missing user); apply removes it and the newcomer reaches Astro."""
    assert sandbox.graph is not None
    new = newcomer(sandbox)
    edit_object_mapping(sandbox, "User", lambda om: om.update(
        scope=scope(("department", "NOT_EQUALS", ["Facilities"])))).raise_for_status()
    sandbox.graph.add_member(ASSIGNED_TEAM, new)
    cycle(sandbox)
    assert astro_user(sandbox, new) is None
    rc, findings = drift(azure_applied, capsys)
    kinds = {(f["kind"], f["subject"]) for f in findings}
    assert rc == 1 and ("provisioning_limited", "User scoping filter") in kinds, kinds
    rc, out = run(capsys, "apply", "-c", str(azure_applied), "--idp", "azure", "--yes", "--no-wait")
    assert rc == 0, out
    cycle(sandbox)  # Entra's next scheduled cycle evaluates every object against the schema saved
    assert (astro_user(sandbox, new) or {}).get("active") is True, out
    assert drift(azure_applied, capsys) == (0, [])


# -- users Entra deprovisioned because they left the scope ------------------------------------------------------


def test_a_user_entra_deactivated_when_they_left_the_scope_is_no_orphan(
        sandbox: Sandbox, azure_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With the seed's mappings (no externalId), Entra's soft delete of a user who left the app's scope
    (active=false in Astro) is what the seed expects: drift is clean, and --delete-orphans deletes nothing. An
    account left active for a name Entra does not provision is still an orphan, and still deleted."""
    assert sandbox.graph is not None
    leaver = assigned_only(sandbox)[0]
    sandbox.graph.remove_member(ASSIGNED_TEAM, leaver)
    cycle(sandbox)
    assert (astro_user(sandbox, leaver) or {}).get("active") is False  # Entra's soft delete
    assert drift(azure_applied, capsys) == (0, [])
    org = sandbox.astro_orgs["azure"].org_id
    sandbox.astro.add_orphan(org, "eve.orphan@acme.example", "Eve", "Orphan")
    rc, findings = drift(azure_applied, capsys)
    assert rc == 1 and [(f["kind"], f["subject"]) for f in findings] == [("orphaned", "eve.orphan@acme.example")]
    sandbox.logs["astro"].clear()
    rc, out = run(capsys, "drift", "-c", str(azure_applied), "--idp", "azure", "--fix", "--yes", "--delete-orphans")
    assert rc == 0, out
    assert sandbox.logs["astro"].count("DELETE") == 1, out  # the orphan only, never the deactivated leaver
    assert astro_user(sandbox, "eve.orphan@acme.example") is None
    assert (astro_user(sandbox, leaver) or {}).get("active") is False
    assert drift(azure_applied, capsys) == (0, [])


# -- pure: each scoping operator, and the plan's wording -------------------------------------------------------


@pytest.mark.parametrize(("operator", "values", "obj", "expected"), [
    ("EQUALS", ["Sales"], {"department": "Sales"}, True),
    ("EQUALS", ["Sales"], {"department": "Data"}, False),
    ("NOT_EQUALS", ["Sales"], {"department": "Data"}, True),
    ("NOT_EQUALS", ["Sales"], {"department": "Sales"}, False),
    ("IS_TRUE", [], {"accountEnabled": True}, True),
    ("IS_TRUE", [], {"accountEnabled": False}, False),
    ("IS_FALSE", [], {"accountEnabled": False}, True),
    ("IS_FALSE", [], {"accountEnabled": True}, False),
    ("IS_NULL", [], {"department": None}, True),
    ("IS_NULL", [], {"department": "Sales"}, False),
    ("IS_NOT_NULL", [], {"department": "Sales"}, True),
    ("IS_NOT_NULL", [], {}, False),
    ("REGEX_MATCH", ["^Sa"], {"department": "Sales"}, True),
    ("REGEX_MATCH", ["^Sa"], {"department": "Data"}, False),
    ("NOT_REGEX_MATCH", ["^Sa"], {"department": "Data"}, True),
    ("NOT_REGEX_MATCH", ["^Sa"], {"department": "Sales"}, False),
    # "Scoping filters will return false if the value is null / empty" (entra-docs), the negations included
    ("NOT_EQUALS", ["Sales"], {"department": None}, False),
    ("NOT_REGEX_MATCH", ["^Sa"], {}, False),
    ("EQUALS", [""], {"department": ""}, False),
    ("IS_NULL", [], {"department": ""}, True),
    # the other documented operators
    ("EQUALS", ["sales"], {"department": "Sales"}, False),  # case-sensitive
    ("Includes", ["ale"], {"department": "Sales"}, True),
    ("Includes", ["ALE"], {"department": "Sales"}, False),
    ("ENDS_WITH", ["les"], {"department": "Sales"}, True),
    ("ENDS_WITH", ["Sal"], {"department": "Sales"}, False),
    ("&", ["Sales, Data"], {"department": "Sales"}, True),
    ("&", ["Data"], {"department": "Sales"}, False),
    ("!&", ["Data"], {"department": "Sales"}, True),
    ("!&", ["Sales, Data"], {"department": "Sales"}, False),
    ("Greater_Than", ["10"], {"department": "11"}, True),
    ("Greater_Than", ["11"], {"department": "11"}, False),
    ("Greater_Than_OR_EQUALS", ["11"], {"department": "11"}, True),
    ("Greater_Than", ["9"], {"department": "ten"}, False),  # integers only
    ("REGEX_MATCH", ["^(?<first>Sa)les$"], {"department": "Sales"}, True),  # .NET's named group
    ("REGEX_MATCH", ["(?<!Wholes)ales"], {"department": "Wholesales"}, False),  # a lookbehind stays one
    ("Greater_Than", ["9"], {"department": "1_1"}, False),  # digits, as the documentation's [0,1,2,...]
    ("Greater_Than", ["9"], {"department": " 11"}, False),
    # "Filtering is not supported for multi-valued attributes": only whether there is a value
    ("Includes", ["a@x"], {"department": ["a@x.com"]}, False),
    ("NOT_EQUALS", ["Sales"], {"department": []}, False),
    ("IS_NOT_NULL", [], {"department": []}, False),
    ("IS_NULL", [], {"department": []}, True),
    ("IS_NOT_NULL", [], {"department": ["Sales"]}, True),
    ("EQUALS", "Sales", {"department": "Sales"}, True),  # a lone string value is one value, not its characters
    ("EQUALS", "Sales", {"department": "S"}, False),
])
def test_each_scoping_operator(operator: str, values: list[str], obj: dict[str, Any], expected: bool) -> None:
    from connector.sandbox.graph.engine import _in_filter_scope

    attr = "accountEnabled" if operator in ("IS_TRUE", "IS_FALSE") else "department"
    assert _in_filter_scope(scope((attr, operator, values)), obj) is expected
    assert _in_filter_scope(None, obj) is True  # no filter: everyone


def test_the_merge_describes_each_limit_and_leaves_an_unlimited_mapping_alone() -> None:
    from connector.mapping.model import AttributeMapping, MappingFile
    from connector.providers.entra import schema as azure_schema
    from connector.sandbox.graph.template import build_schema

    mapping = MappingFile("azure", "azure.yaml", users=[AttributeMapping("userName", "[userPrincipalName]", matching=1)])
    base = build_schema("scim")
    _, diffs = azure_schema.merge(base, mapping)
    assert not [d for d in diffs if d.limits]
    user = azure_schema.object_mapping(azure_schema.find_rule(base), "User")
    assert user is not None
    user["flowTypes"] = "Update"
    user["scope"] = {"groups": [scope(("department", "EQUALS", ["Sales"]))["groups"][0],
                                {"clauses": [{"sourceOperandName": "jobTitle", "operatorName": "IS_NULL"}]}]}
    merged, diffs = azure_schema.merge(base, mapping)
    limits = {d.key: d.describe() for d in diffs if d.limits}
    assert limits == {
        "User scoping filter": "department EQUALS 'Sales' or jobTitle IS_NULL -> none; Entra provisioned only the "
                               "assigned users the filter let through; the others were never created in Astro, or "
                               "were disabled there",
        "User target object actions": "Update -> Create, Update, Delete; Create, Delete unticked: new users were not "
                                      "created in Astro; users leaving the scope were left active in Astro",
    }
    om = azure_schema.object_mapping(azure_schema.find_rule(merged), "User")
    assert om is not None and (om["scope"], om["flowTypes"]) == (None, "Add, Update, Delete")
    assert not [d for d in azure_schema.merge(merged, mapping)[1] if d.limits]
