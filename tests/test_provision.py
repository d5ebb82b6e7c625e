"""`astro-scim provision` and AzureProvider.provision_on_demand against the sandbox: Graph's limits (one group
with at most 5 members per call, 5 calls per 10 s), the per-subject results parsed from its JSON-in-a-string
answer, and the read-back in Astro that stands between Entra's word and the verdict."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from applied import applied as apply_once

from connector.cli import main
from connector.config.load import load_config
from connector.providers.entra.provider import AzureProvider
from connector.sandbox.core import Sandbox
from connector.sandbox.graph.engine import _Outcome
from connector.sandbox.seed import ASSIGNED_TEAM
from connector.support.clock import FakeClock

SCHEMA = json.loads((files("connector") / "data/output-schemas/provision.v1.json").read_text(encoding="utf-8"))


@pytest.fixture
def azure_config(sandbox: Sandbox, tmp_path: Path) -> Path:
    return sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))


def cli(*args: str, config: Path) -> int:
    return main([args[0], "--config", str(config), *args[1:]])


def configured(sb: Sandbox, config: Path, *extra: str) -> None:
    """`apply --idp azure --yes EXTRA` done (tests/applied.py: restored after the first real apply)."""
    apply_once(sb, config, "azure", only=True, extra=extra)


def azure_org(sb: Sandbox) -> str:
    return sb.astro_orgs["azure"].org_id


def provision_json(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """`provision ... --format json`: the exit code, the document (checked against its schema) and stderr."""
    capsys.readouterr()
    rc = main(["provision", "--config", str(config), *args, "--format", "json"])
    out = capsys.readouterr()
    doc = json.loads(out.out)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["exit_code"] == rc
    return rc, doc, out.err


def test_provision_user_makes_exactly_that_user_appear(sandbox: Sandbox, azure_config: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    configured(sandbox, azure_config, "--pause")  # configured, but no cycle has run
    org = azure_org(sandbox)
    assert sandbox.astro.users(org) == []
    person = sandbox.seed_org.people[3]
    capsys.readouterr()
    assert cli("provision", "--user", person.email, config=azure_config) == 0
    out = capsys.readouterr().out
    assert "User" in out and "success" in out.lower()
    assert f"verified: in Astro as {person.email}, active" in out and "1 verified" in out
    assert [u["userName"] for u in sandbox.astro.users(org)] == [person.email]


def test_group_of_twelve_is_provisioned_in_three_calls_within_the_rate_limit(
    sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, azure_config, "--pause")
    sandbox.logs["graph"].clear()
    assert cli("provision", "--group", ASSIGNED_TEAM, config=azure_config) == 0
    calls = [e for e in sandbox.logs["graph"].entries if e.path.endswith("/provisionOnDemand")]
    assert len(calls) == 3 and all(e.status == 200 for e in calls)
    org = azure_org(sandbox)
    assert len(sandbox.astro.users(org)) == 12
    [team] = [g for g in sandbox.astro.groups(org) if g["displayName"] == ASSIGNED_TEAM]
    assert len(team["members"]) == 12


def test_more_calls_than_the_limit_are_paced_not_throttled(sandbox: Sandbox, azure_config: Path,
                                                           fake_clock: FakeClock) -> None:
    assert sandbox.graph is not None
    configured(sandbox, azure_config, "--pause")
    before = fake_clock.slept  # apply's own waits (the settle after creating the app)
    # The service counts its 5-calls-per-10-s window on the test's virtual clock too (the sandbox fixture sets it):
    # the real limits, no waiting.
    p = AzureProvider(load_config(azure_config))
    try:
        sandbox.logs["graph"].clear()
        results = p.provision_on_demand(users=[person.email for person in sandbox.seed_org.people[:7]])
    finally:
        p.close()
    assert len(results) == 7 and all(r.ok for r in results)
    calls = [e for e in sandbox.logs["graph"].entries if e.path.endswith("/provisionOnDemand")]
    assert [e.status for e in calls] == [200] * 7  # paced: the service never had to say 429
    assert 10.0 <= fake_clock.slept - before < 11.0  # the 6th call waited for the window, and no longer than needed


def test_unassigned_user_is_reported_not_provisioned(sandbox: Sandbox, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    team = sandbox.default_team_names()[0]
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",), azure_assign_groups=[team])
    configured(sandbox, config, "--pause")
    members = next(t for t in sandbox.seed_org.teams if t.name == team).member_keys
    outsider = next(p for p in sandbox.seed_org.people if p.key not in members)
    capsys.readouterr()
    assert cli("provision", "--user", outsider.email, config=config) == 1
    out = capsys.readouterr().out
    assert "Skipped (NotEffectivelyEntitled)" in out and "assign the user" in out
    assert sandbox.astro.users(azure_org(sandbox)) == []


def test_a_user_taken_out_of_scope_is_verified_deprovisioned(sandbox: Sandbox, azure_config: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # Provisioned, then out of every assigned group: Entra's answer is a Disable and Astro holds the account
    # inactive, which is right (it was reported "FAILED: Astro disagrees: active expected True").
    from connector.sandbox.seed import ASSIGNED_TEAM

    configured(sandbox, azure_config)
    assert sandbox.graph is not None
    others = {k for t in sandbox.default_team_names() for k in sandbox.seed_org.team(t).member_keys}
    who = next(p.email for p in sandbox.seed_org.people if p.key not in others and p.active)
    sandbox.graph.remove_member(ASSIGNED_TEAM, who)
    rc, doc, err = provision_json(capsys, azure_config, "--user", who)
    (result,) = doc["results"]
    assert rc == 0 and result["outcome"] == "provisioned", (result, err)
    assert result["verification"]["status"] == "verified"
    user = sandbox.astro.find_user(azure_org(sandbox), who)
    assert user is None or user["active"] is False


def test_unknown_user_is_a_usage_error(sandbox: Sandbox, azure_config: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    configured(sandbox, azure_config, "--pause")
    assert cli("provision", "--user", "nobody@acme.example", config=azure_config) == 2
    assert "no Entra user with userPrincipalName 'nobody@acme.example'" in capsys.readouterr().err


def test_an_unknown_group_gets_a_hint_like_an_unknown_user(sandbox: Sandbox, azure_config: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    configured(sandbox, azure_config, "--pause")
    capsys.readouterr()
    assert cli("provision", "--group", "Nope", config=azure_config) == 2
    err = capsys.readouterr().err
    assert "no Entra group named 'Nope'" in err
    hint = next(line for line in err.splitlines() if line.startswith("hint: "))
    assert "object id" in hint and all(repr(t) in hint for t in sandbox.default_team_names())
    assert "calls, stopped" not in err  # the progress line: no unit without a count
    assert cli("provision", "--group", "Data Enginering", config=azure_config) == 2
    assert "hint: did you mean: 'Data Engineering'?" in capsys.readouterr().err


# -- the read-back: no verdict on Entra's word alone ---------------------------------------------------------------


def test_provisioning_a_user_twice_is_verified_both_times_with_one_account(
    sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, azure_config, "--pause")
    person = sandbox.seed_org.people[3]
    org = azure_org(sandbox)
    seen = []
    for entra_says in ("Success", "Skipped"):  # the second time Entra finds Astro in sync (RedundantExport)
        rc, doc, _ = provision_json(capsys, azure_config, "--user", person.email)
        (r,) = doc["results"]
        assert rc == 0 and doc["ok"] is True and r["status"] == entra_says, r
        assert r["outcome"] == "provisioned" and r["verification"]["status"] == "verified"
        # Every mapped attribute was compared, and activity against Entra's accountEnabled.
        assert r["verification"]["checked"] == ["userName", "active", "displayName", "name.familyName",
                                                "name.givenName"]
        assert r["verification"]["differences"] == []
        seen.append(r["verification"]["astro_id"])
    assert seen[0] == seen[1]
    assert [u["id"] for u in sandbox.astro.users(org) if u["userName"] == person.email] == [seen[0]]
    assert doc["results"][0]["reason"] == "RedundantExport" and doc["summary"] == {
        "results": 1, "provisioned": 1, "not_provisioned": 0, "failed": 0, "not_verified": 0}


def _entra_claims_export(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, action: str, target_id: str) -> None:
    """The emulated Entra reports the user exported (`action`, Success) and sends nothing to Astro."""
    assert sandbox.graph is not None
    monkeypatch.setattr(sandbox.graph.engine, "_export_user",
                        lambda *a, **k: _Outcome(action, "success", target_id=target_id, exports=1))


def test_a_user_astro_disagrees_on_is_failed_naming_the_difference(
    sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    fake_clock: FakeClock,
) -> None:
    configured(sandbox, azure_config, "--pause")
    person = sandbox.seed_org.people[3]
    org = azure_org(sandbox)
    assert cli("provision", "--user", person.email, config=azure_config) == 0
    before = sandbox.astro.find_user(org, person.email)
    assert before is not None
    sandbox.astro.edit_user(org, person.email, "name.givenName", "Mallory")
    _entra_claims_export(sandbox, monkeypatch, "update", before["id"])
    slept = fake_clock.slept
    rc, doc, err = provision_json(capsys, azure_config, "--user", person.email)
    (r,) = doc["results"]
    assert rc == 1 and doc["ok"] is False and doc["error"] is None
    assert (r["status"], r["action"], r["outcome"]) == ("Success", "Update", "failed")
    v = r["verification"]
    assert v["status"] == "failed" and v["astro_id"] == before["id"]
    assert v["differences"] == [{"attribute": "name.givenName", "expected": before["name"]["givenName"],
                                 "actual": "Mallory"}]
    assert "drift --fix" in (v["hint"] or "")
    assert doc["summary"]["failed"] == 1 and doc["summary"]["provisioned"] == 0
    # Astro was read again, on the (virtual) clock, within the bound, before the difference became the verdict.
    assert "reading again" in err and 0 < fake_clock.slept - slept <= 10.0
    capsys.readouterr()
    assert cli("provision", "--user", person.email, config=azure_config) == 1
    out = capsys.readouterr().out
    assert f"FAILED: Astro disagrees: name.givenName: expected {before['name']['givenName']!r}, Astro has " \
           "'Mallory'" in out
    assert "hint:" in out and "1 failed" in out and "; verified:" not in out


def test_a_user_that_never_reaches_astro_is_failed(sandbox: Sandbox, azure_config: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    configured(sandbox, azure_config, "--pause")
    person = sandbox.seed_org.people[3]
    _entra_claims_export(sandbox, monkeypatch, "create", "no-such-id")
    rc, doc, _ = provision_json(capsys, azure_config, "--user", person.email)
    (r,) = doc["results"]
    assert rc == 1 and (r["status"], r["action"], r["outcome"]) == ("Success", "Create", "failed")
    assert r["verification"]["differences"] == [{"attribute": "userName", "expected": person.email, "actual": None}]
    assert f"Astro has no user with userName {person.email!r}" in r["verification"]["detail"]
    assert sandbox.astro.users(azure_org(sandbox)) == []


@pytest.mark.parametrize("broken", ["token", "unreachable"])
def test_astro_unreadable_after_provisioning_is_not_verified_never_provisioned(
    sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str], broken: str
) -> None:
    configured(sandbox, azure_config, "--pause")
    person = sandbox.seed_org.people[3]
    # Only the tool's own access to Astro breaks: Entra keeps the token and URL apply gave it.
    if broken == "token":
        (azure_config.parent / "astro-azure.token").write_text("not-the-astro-token\n")
    else:
        data = yaml.safe_load(azure_config.read_text())
        data["azure"]["astro"]["scim_url"] = "http://127.0.0.1:9/scim/v2"  # discard port: nothing listens
        azure_config.write_text(yaml.safe_dump(data))
    rc, doc, err = provision_json(capsys, azure_config, "--user", person.email)
    (r,) = doc["results"]
    assert rc == 3 and doc["ok"] is False and doc["error"]["type"] == "RemoteError"
    assert r["status"] == "Success" and r["outcome"] == "not_verified"
    v = r["verification"]
    assert v["status"] == "not_verified" and v["differences"] == [] and v["hint"]
    assert "Astro could not be read" in v["detail"]
    if broken == "token":
        assert "HTTP 401" in v["detail"] and "not-the-astro-token" not in err + json.dumps(doc)
    assert doc["summary"]["not_verified"] == 1 and doc["summary"]["provisioned"] == 0
    assert "; not verified: Astro could not be read" in err and "; verified:" not in err
    # Entra did export it: only the evidence is missing.
    assert sandbox.astro.find_user(azure_org(sandbox), person.email) is not None


def test_group_is_verified_with_the_members_of_each_call(sandbox: Sandbox, azure_config: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    configured(sandbox, azure_config, "--pause")
    rc, doc, _ = provision_json(capsys, azure_config, "--group", ASSIGNED_TEAM)
    assert rc == 0 and doc["ok"] is True
    groups = [r for r in doc["results"] if r["object_type"] == "Group"]
    users = [r for r in doc["results"] if r["object_type"] == "User"]
    assert len(groups) == 3 and len(users) == 12  # 12 members: 5 + 5 + 2 per call
    assert {r["outcome"] for r in doc["results"]} == {"provisioned"}
    assert [g["verification"]["checked"] for g in groups] == [["displayName", f"members ({n})"] for n in (5, 5, 2)]
    [team] = [g for g in sandbox.astro.groups(azure_org(sandbox)) if g["displayName"] == ASSIGNED_TEAM]
    assert {g["verification"]["astro_id"] for g in groups} == {team["id"]}


def test_a_call_failing_mid_group_reports_what_the_other_calls_did_and_exits_3(
    sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """12 members, 3 calls; the second fails on every retry (Graph 500). It stopped the run with results [] and
    summary 0: the 5 + group the first call had provisioned went unreported, unverified and out of the audit
    trail. Now each call stands alone: the others are shown and read back, the failed one is a failed result
    naming its members, and the run ends as a remote error (exit 3) with the command to run again."""
    import httpx

    from connector.sandbox.faults import FaultRule

    configured(sandbox, azure_config, "--pause")
    with httpx.Client(base_url=str(sandbox.graph_url),
                      headers={"Authorization": f"Bearer {sandbox.graph_token}"}) as graph:
        (group,) = graph.get("/groups", params={"$filter": f"displayName eq '{ASSIGNED_TEAM}'"}).json()["value"]
        members = graph.get(f"/groups/{group['id']}/members").json()["value"]
    assert len(members) == 12
    rule = sandbox.fail("graph", FaultRule("POST", "provisionOnDemand$", body=members[5]["id"], status=500,
                                           times=None))
    rc, doc, err = provision_json(capsys, azure_config, "--group", ASSIGNED_TEAM)
    assert rc == 3 and doc["ok"] is False and doc["error"]["type"] == "RemoteError", err
    assert "1 provisionOnDemand call(s) failed" in doc["error"]["message"] and "HTTP 500" in doc["error"]["message"]
    assert f"astro-scim provision --group '{ASSIGNED_TEAM}'" in doc["error"]["hint"]
    failed = [r for r in doc["results"] if r["outcome"] == "failed"]
    done = [r for r in doc["results"] if r["outcome"] == "provisioned"]
    (f,) = failed
    assert f["error_code"] == "RequestFailed" and f["subject"] == ASSIGNED_TEAM
    assert f["verification"]["status"] == "not_checked" and "request failed" in f["verification"]["detail"]
    assert len(done) == 2 + 5 + 2  # the first and third calls: their group and members, read back in Astro
    assert doc["summary"] == {"results": 10, "provisioned": 9, "not_provisioned": 1, "failed": 1,
                              "not_verified": 0}
    assert "Traceback" not in err and "error: azure: 1 provisionOnDemand call(s) failed" in err
    assert len(sandbox.astro.users(azure_org(sandbox))) == 7
    rule.times = 0  # Graph recovers: the hint's command does the rest
    rc, doc, _ = provision_json(capsys, azure_config, "--group", ASSIGNED_TEAM)
    assert rc == 0 and doc["summary"]["provisioned"] == doc["summary"]["results"] == 15
    assert len(sandbox.astro.users(azure_org(sandbox))) == 12


def test_a_secret_token_astro_refuses_is_failed_with_the_fix(sandbox: Sandbox, azure_config: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Entra's saved Secret Token revoked in Astro: Entra's answer is a failure with Astro's 401. It was printed
    bare (no hint in the text nor the JSON message); it now says what to run."""
    import httpx

    configured(sandbox, azure_config)
    assert sandbox.graph is not None
    sp = next(s for s in sandbox.graph.service_principals() if s["displayName"] == "Astro")["id"]
    with httpx.Client(base_url=str(sandbox.graph_url),
                      headers={"Authorization": f"Bearer {sandbox.graph_token}"}) as graph:
        graph.put(f"/servicePrincipals/{sp}/synchronization/secrets",
                  json={"value": [{"key": "SecretToken", "value": "revoked-astro-token"}]}).raise_for_status()
    rc, doc, err = provision_json(capsys, azure_config, "--user", sandbox.seed_org.people[0].email)
    (r,) = doc["results"]
    assert rc == 1 and r["outcome"] == "failed" and "401" in r["reason"]
    assert "run 'astro-scim apply --idp azure'" in r["message"] and "revoked-astro-token" not in err


def test_astro_failing_entra_s_request_is_failed_with_a_hint(sandbox: Sandbox, azure_config: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from connector.sandbox.faults import FaultRule

    configured(sandbox, azure_config)
    sandbox.fail("astro", FaultRule("GET", "/Users", status=500, times=None))  # Entra's lookup before its write
    rc, doc, _ = provision_json(capsys, azure_config, "--user", sandbox.seed_org.people[0].email)
    (r,) = doc["results"]
    assert rc == 1 and r["outcome"] == "failed" and "HTTP 500" in r["reason"]
    assert "provision again later" in r["message"]


def test_group_whose_members_do_not_land_is_failed_naming_them(
    sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configured(sandbox, azure_config, "--pause")
    assert sandbox.graph is not None
    monkeypatch.setattr(sandbox.graph.engine, "_sync_members", lambda *a, **k: 0)  # Entra sends no membership
    team = sandbox.default_team_names()[0]
    rc, doc, _ = provision_json(capsys, azure_config, "--group", team)
    groups = [r for r in doc["results"] if r["object_type"] == "Group"]
    users = [r for r in doc["results"] if r["object_type"] == "User"]
    assert rc == 1 and all(r["outcome"] == "provisioned" for r in users)
    members = {r["subject"] for r in users}
    assert groups and all(g["outcome"] == "failed" for g in groups)
    missing = [name for g in groups for d in g["verification"]["differences"] for name in d["expected"]]
    assert all(d["attribute"] == "members" for g in groups for d in g["verification"]["differences"])
    emails = {sandbox.seed_org.person(k).email.lower() for k in sandbox.seed_org.team(team).member_keys
              if sandbox.seed_org.person(k).active}
    assert sorted(missing) == sorted(emails) and len(members) >= len(emails)


# -- the comparison and the matching, pure ------------------------------------------------------------------------


def test_compare_user_judges_activity_by_entra_and_values_as_drift_does() -> None:
    from connector.audit.readback import compare_user
    from connector.views import IdpUser

    want = IdpUser(id="u1", user_name="Ada@Acme.example", active=False,
                   expected={"userName": "Ada@Acme.example", "name.givenName": "Ada", "emails[type eq \"work\"].value":
                             "ada@acme.example"})
    have = {"id": "a1", "userName": "ada@acme.example", "active": "False", "name": {"givenName": "ADA "},
            "emails": [{"type": "work", "value": "ada@acme.example"}]}
    v = compare_user(want, have)  # "False" string, case and spaces: equal as drift sees them
    assert (v.verdict, v.astro_id, v.differences) == ("verified", "a1", []) and "deactivated" in v.detail
    v = compare_user(want, {**have, "active": True})
    assert v.verdict == "failed" and [(d.attribute, d.expected, d.actual) for d in v.differences] == [
        ("active", False, True)]
    v = compare_user(want, None)
    assert v.verdict == "failed" and v.differences[0].attribute == "userName" and v.astro_id is None


def test_compare_team_wants_the_members_provisioned_and_ignores_others() -> None:
    from connector.audit.readback import compare_team
    from connector.views import IdpGroup

    want = IdpGroup(id="g1", name="Data", members={"a@x", "b@x"})
    assert compare_team(want, {"id": "t1"}, {"a@x", "b@x", "c@x"}).verdict == "verified"
    v = compare_team(want, {"id": "t1"}, {"a@x"})
    assert v.verdict == "failed" and v.differences[0].expected == {"b@x"} and "b@x" in v.detail
    assert compare_team(want, None, set()).differences[0].attribute == "displayName"


def test_results_are_matched_to_what_was_sent_by_source_id_else_by_type() -> None:
    from connector.providers.entra.ondemand import OnDemandResult
    from connector.providers.entra.provision import expect
    from connector.views import IdpGroup, IdpUser

    ada = IdpUser(id="u1", user_name="ada@x", active=True)
    bob = IdpUser(id="u2", user_name="bob@x", active=False)  # disabled: Entra adds no membership for him
    eve = IdpUser(id="u3", user_name="eve@x", active=True)
    rows = [OnDemandResult("G", "Group", "Create", "Success", source_id="g1"),
            OnDemandResult("Ada", "User", "Create", "Success", source_id="u1"),
            OnDemandResult("Bob", "User", "Update", "Success", source_id="u2"),
            OnDemandResult("Eve", "User", "Other", "Failure", error_code="SystemForCrossDomainIdentity",
                           source_id="u3")]
    expect(rows, {"u1": ada, "u2": bob, "u3": eve}, ("g1", lambda names: IdpGroup(id="g1", name="G", members=names)))
    assert [r.expected for r in rows[1:]] == [ada, bob, eve]
    assert isinstance(rows[0].expected, IdpGroup) and rows[0].expected.members == {"ada@x"}
    # An answer without ids: the one user sent is the one User row.
    row = OnDemandResult("Ada", "User", "Create", "Success")
    expect([row], {"u1": ada}, None)
    assert row.expected is ada and row.source_id == "u1"


def test_an_astro_token_that_cannot_be_read_stops_before_entra_acts(
    sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The read-back's token is resolved before provisionOnDemand: a missing token file is a config error (exit 2)
    # with nothing sent to Entra, not a run whose results are lost after Entra acted.
    configured(sandbox, azure_config, "--pause")
    person = sandbox.seed_org.people[3]
    (azure_config.parent / "astro-azure.token").unlink()
    rc, doc, err = provision_json(capsys, azure_config, "--user", person.email)
    assert rc == 2 and doc["error"]["type"] == "ConfigError" and doc["results"] == []
    assert "astro-azure.token" in doc["error"]["message"] + err
    assert sandbox.astro.find_user(azure_org(sandbox), person.email) is None  # Entra was never asked


def test_provision_for_okta_says_what_to_run_instead(sandbox_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["provision", "--idp", "okta", "--user", "ada@acme.example", "-c", str(sandbox_config)]) == 2
    err = capsys.readouterr().err
    assert "provision is for Entra ID" in err and "push-groups" in err and "drift --fix" in err, err
    rc, doc, _ = provision_json(capsys, sandbox_config, "--idp", "okta", "--user", "ada@acme.example")  # its schema
    assert rc == 2 and doc["idp"] == "okta" and "push-groups" in doc["error"]["hint"]


_MAPPING_HEAD = """idp: azure
users:
  - target: userName
    source: "[userPrincipalName]"
    matching: 1
  - target: displayName
    source: "[displayName]"
"""
_GROUPS = """groups:
  - target: displayName
    source: "{name}"
    matching: 1
  - target: members
    source: "[members]"
"""


def _own_mapping(sb: Sandbox, tmp_path: Path, text: str) -> Path:
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    (tmp_path / "azure.yaml").write_text(text)
    data = yaml.safe_load(config.read_text())
    data["azure"]["mapping"] = str(tmp_path / "azure.yaml")
    config.write_text(yaml.safe_dump(data))
    return config


def test_a_team_named_from_another_group_attribute_is_expected_by_that_attribute(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Group mappings were evaluated on the assignment's {id, displayName} only: with displayName from
    Append("Entra-", [mailNickname]) drift reported every Team renamed to "Entra-", --fix renamed them so, and
    provision found no Team "Entra-". The group is read with what its mappings read."""
    config = _own_mapping(sandbox, tmp_path, _MAPPING_HEAD + _GROUPS.format(
        name='Append(\\"Entra-\\", [mailNickname])'))
    assert main(["validate", str(tmp_path / "azure.yaml")]) == 0
    apply_once(sandbox, config, "azure")
    teams = sorted(g["displayName"] for g in sandbox.astro.groups(azure_org(sandbox)))
    assert teams == ["Entra-analytics", "Entra-astrousers", "Entra-dataengineering"]
    capsys.readouterr()
    assert main(["drift", "-c", str(config), "--format", "json"]) == 0, capsys.readouterr().out[-2000:]
    capsys.readouterr()
    assert main(["drift", "-c", str(config), "--fix", "--yes"]) == 0
    assert sorted(g["displayName"] for g in sandbox.astro.groups(azure_org(sandbox))) == teams
    capsys.readouterr()
    assert main(["provision", "-c", str(config), "--group", "Analytics"]) == 0
    assert "verified: Team 'Entra-analytics' in Astro holds" in capsys.readouterr().out


def test_provision_does_not_expect_a_create_only_attribute_entra_leaves_as_it_was(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """apply_on: create_only (ObjectAddOnly) is sent at creation only: a later change in Entra is not sent, and
    drift does not compare it. provision compared it and failed ("Astro disagrees") with a hint to drift --fix,
    which had nothing to fix."""
    assert sandbox.graph is not None
    config = _own_mapping(sandbox, tmp_path, _MAPPING_HEAD + "    apply_on: create_only\n"
                          + "  - target: name.givenName\n    source: \"[givenName]\"\n"
                          + _GROUPS.format(name="[displayName]"))
    assert main(["apply", "-c", str(config), "--yes", "--pause"]) == 0
    person = sandbox.seed_org.people[3]
    assert main(["provision", "-c", str(config), "--user", person.email]) == 0
    st = sandbox.graph.state
    st.change_user(st.user_by_upn(person.email), {"displayName": "Renamed Person", "givenName": "Renamed"})
    capsys.readouterr()
    assert main(["provision", "-c", str(config), "--user", person.email]) == 0, capsys.readouterr().out
    account = sandbox.astro.find_user(azure_org(sandbox), person.email)
    assert account["name"]["givenName"] == "Renamed" and account["displayName"] != "Renamed Person"
