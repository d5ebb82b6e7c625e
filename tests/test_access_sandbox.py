"""Team access templates against the sandbox: the Astro Platform API emulator over loopback, the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector.access.provider import AstroAccessProvider
from connector.cli import main
from connector.config.load import load_config
from connector.sandbox.core import Sandbox
from connector.sandbox.faults import FaultConfig
from connector.support.clock import FakeClock

FULL = {
    "organization": "ORGANIZATION_MEMBER",
    "workspaces": {"analytics": "WORKSPACE_AUTHOR"},
    "deployments": {"analytics/prod": "DEPLOYMENT_ADMIN"},
}


def config(
    sb: Sandbox,
    tmp_path: Path,
    access: dict[str, Any],
    *,
    wait: float = 1.0,
    idps: tuple[str, ...] = ("okta",),
) -> Path:
    path = sb.write_config(tmp_path / "astro-scim.yaml", idps=idps)
    data = yaml.safe_load(path.read_text())
    data["access"] = access
    for idp in idps:
        data[idp]["astro"]["team_wait_seconds"] = wait
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def teams(sb: Sandbox) -> list[str]:
    return sb.default_team_names()


def push_teams(sb: Sandbox, idp: str = "okta") -> str:
    """What the IdP's first push leaves in Astro: its users and the pushed groups as Teams (no roles)."""
    org_id = sb.astro_orgs[idp].org_id
    sb.astro.preload(org_id, sb.seed_org, teams=teams(sb))
    return org_id


def team_lookups(sb: Sandbox) -> int:
    """How many times the Astro Platform API was asked for Teams by name."""
    return len([e for e in sb.logs["astro"].entries
                if e.method == "GET" and e.path.endswith("/teams") and "names=" in e.query])


def plan_changes(path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["plan", "--idp", "astro", "-c", str(path), "--format", "json"]) == 0
    (plan,) = json.loads(capsys.readouterr().out)["plans"]
    assert plan["provider"] == "astro team roles"
    return list(plan["changes"])


def enable_okta_provisioning(sb: Sandbox) -> None:
    """The admin's manual step in Okta (no API): the Astro app's provisioning connection."""
    assert sb.okta is not None
    org = sb.astro_orgs["okta"]
    sb.okta.enable_provisioning(sb.okta.app_by_label("Astro")["id"], org.scim_url, org.token)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# -- plan / apply ------------------------------------------------------------------------------------------


def test_plan_lists_role_changes_apply_makes_them_second_plan_is_empty(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de, an = teams(sandbox)
    path = config(sandbox, tmp_path, {de: FULL, an: {"workspaces": {"platform": "WORKSPACE_MEMBER"}}})
    org_id = push_teams(sandbox)
    sandbox.logs["astro"].clear()

    changes = plan_changes(path, capsys)
    assert [(c["action"], c["resource"], c["key"]) for c in changes] == [
        ("update", "astro.team_roles", de),
        ("update", "astro.team_roles", an),
    ]
    assert changes[0]["before"] == {
        "organization": "ORGANIZATION_MEMBER",
        "workspaces": {},
        "deployments": {},
    }
    assert changes[0]["after"] == FULL
    assert (
        changes[0]["detail"]
        == "+ workspace analytics WORKSPACE_AUTHOR; + deployment analytics/prod DEPLOYMENT_ADMIN"
    )
    assert sandbox.logs["astro"].writes() == []  # plan never writes

    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
    assert "applied 2 change(s)" in capsys.readouterr().out
    assert sandbox.astro_platform.team_roles(org_id, de) == FULL
    assert sandbox.astro_platform.team_roles(org_id, an) == {
        "organization": "ORGANIZATION_MEMBER",
        "workspaces": {"platform": "WORKSPACE_MEMBER"},
        "deployments": {},
    }
    posts = [e for e in sandbox.logs["astro"].writes() if e.path.startswith("/v1/")]
    assert [e.method for e in posts] == ["POST", "POST"] and all(e.path.endswith("/roles") for e in posts)

    sandbox.logs["astro"].clear()
    assert plan_changes(path, capsys) == []
    assert main(["plan", "--idp", "astro", "-c", str(path), "--exit-code"]) == 0
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0  # idempotent
    assert sandbox.logs["astro"].writes() == []


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            {"organization": "ORGANIZATION_OWNER"},
            {"organization": "ORGANIZATION_OWNER", "workspaces": {}, "deployments": {}},
        ),
        (
            {"workspaces": {"analytics": "WORKSPACE_OPERATOR", "platform": "WORKSPACE_ACCESSOR"}},
            {
                "organization": "ORGANIZATION_MEMBER",
                "workspaces": {"analytics": "WORKSPACE_OPERATOR", "platform": "WORKSPACE_ACCESSOR"},
                "deployments": {},
            },
        ),
        (
            {
                "workspaces": {"analytics": "WORKSPACE_ACCESSOR"},
                "deployments": {"analytics/prod": "DEPLOYMENT_ADMIN", "analytics/dev": "DEPLOYMENT_ADMIN"},
            },
            {
                "organization": "ORGANIZATION_MEMBER",
                "workspaces": {"analytics": "WORKSPACE_ACCESSOR"},
                "deployments": {"analytics/prod": "DEPLOYMENT_ADMIN", "analytics/dev": "DEPLOYMENT_ADMIN"},
            },
        ),
    ],
    ids=["organization", "workspace", "deployment"],
)
def test_each_scope_is_set(
    sandbox: Sandbox, tmp_path: Path, template: dict[str, Any], expected: dict[str, Any]
) -> None:
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: template})
    org_id = push_teams(sandbox)
    provider = AstroAccessProvider(load_config(path))
    plan = provider.plan()
    assert [c.key for c in plan.changes] == [de]
    assert provider.apply(plan) == 1
    assert sandbox.astro_platform.team_roles(org_id, de) == expected
    assert not provider.plan()


def test_ids_work_where_names_do_and_roles_outside_the_template_are_removed(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de = teams(sandbox)[0]
    org_id = push_teams(sandbox)
    platform = sandbox.astro_platform
    ws_id = platform.workspace_id(org_id, "platform")
    dep_id = platform.deployment_id(org_id, "platform", "prod")
    platform.set_team_roles(org_id, de, workspaces={"analytics": "WORKSPACE_OWNER"})
    path = config(
        sandbox,
        tmp_path,
        {de: {"workspaces": {ws_id: "WORKSPACE_MEMBER"}, "deployments": {dep_id: "DEPLOYMENT_ADMIN"}}},
    )
    (change,) = plan_changes(path, capsys)
    assert change["detail"] == (
        "- workspace analytics WORKSPACE_OWNER; + workspace platform WORKSPACE_MEMBER; "
        "+ deployment platform/prod DEPLOYMENT_ADMIN"
    )
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
    assert platform.team_roles(org_id, de) == {
        "organization": "ORGANIZATION_MEMBER",
        "workspaces": {"platform": "WORKSPACE_MEMBER"},
        "deployments": {"platform/prod": "DEPLOYMENT_ADMIN"},
    }


def test_teams_pushed_by_okta_apply_get_their_roles_in_one_apply(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de, an = teams(sandbox)
    path = config(sandbox, tmp_path, {de: FULL, an: {"organization": "ORGANIZATION_BILLING_ADMIN"}}, wait=10)
    org = sandbox.astro_orgs["okta"]
    enable_okta_provisioning(sandbox)

    # Before the push, plan says the roles wait for the Teams (and does not wait itself).
    capsys.readouterr()
    assert main(["plan", "-c", str(path), "--format", "json"]) == 0
    astro_plan = json.loads(capsys.readouterr().out)["plans"][-1]
    before = team_lookups(sandbox)
    AstroAccessProvider(load_config(path)).plan()
    assert team_lookups(sandbox) == before + 1  # one look for both Teams, no polling (apply is what waits)
    assert [c["before"] for c in astro_plan["changes"]] == [None, None]
    assert astro_plan["changes"][0]["detail"].startswith("Team not in Astro yet (okta pushes it)")

    assert main(["apply", "-c", str(path), "--yes"]) == 0
    assert sandbox.astro_platform.team_roles(org.org_id, de) == FULL
    assert sandbox.astro_platform.team_roles(org.org_id, an)["organization"] == "ORGANIZATION_BILLING_ADMIN"
    assert plan_changes(path, capsys) == []


def test_a_group_both_idps_provision_gets_roles_in_both_organizations(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: FULL}, idps=("okta", "azure"))
    okta_org, azure_org = push_teams(sandbox, "okta"), push_teams(sandbox, "azure")
    changes = plan_changes(path, capsys)
    assert [c["key"] for c in changes] == [f"{de} [okta]", f"{de} [azure]"]
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
    assert sandbox.astro_platform.team_roles(okta_org, de) == FULL
    assert sandbox.astro_platform.team_roles(azure_org, de) == FULL


def test_status_judges_each_organizations_team_on_its_own(sandbox: Sandbox, tmp_path: Path) -> None:
    """One group, a Team in each IdP's organization: a role changed by hand in one was reported for both (status
    keyed the plan's changes by group name only, under two identical check names)."""
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: FULL}, idps=("okta", "azure"))
    okta_org, azure_org = push_teams(sandbox, "okta"), push_teams(sandbox, "azure")
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
    for changed, idp in ((azure_org, "azure"), (okta_org, "okta")):
        assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
        sandbox.astro_platform.set_team_roles(changed, de, organization="ORGANIZATION_OWNER")
        checks = {c.name: c.ok for c in AstroAccessProvider(load_config(path)).status()}
        other = "okta" if idp == "azure" else "azure"
        assert checks == {f"Team roles: {de} [{idp}]": False, f"Team roles: {de} [{other}]": True}, checks


def test_a_group_name_with_a_comma_is_one_team(sandbox: Sandbox, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The platform emulator split `names=` on commas: "R&D, Europe" was looked for as "R&D" and " Europe", so
    plan said "not in Astro yet" and apply waited for a Team that was there (exit 3)."""
    name = "R&D, Europe"
    org = sandbox.astro_orgs["okta"]
    made = httpx.post(f"{org.scim_url}/Groups", headers={"Authorization": f"Bearer {org.token}"},
                      json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})
    assert made.status_code == 201
    path = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",), okta_push_groups=[name])
    data = yaml.safe_load(path.read_text())
    data["access"] = {name: {"organization": "ORGANIZATION_OWNER"}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
    assert sandbox.astro_platform.team_roles(org.org_id, name)["organization"] == "ORGANIZATION_OWNER"
    assert plan_changes(path, capsys) == []


def test_a_deployment_named_by_its_workspaces_id_needs_no_second_grant(sandbox: Sandbox, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`deployments: {<workspace id>/prod: ...}` under `workspaces: {analytics: ...}`, the same Workspace by name:
    validate said the Deployment's Workspace had no role (the hint's fix then failed plan: the Workspace twice)."""
    de = teams(sandbox)[0]
    org_id = push_teams(sandbox)
    ws_id = sandbox.astro_platform.workspace_id(org_id, "analytics")
    path = config(sandbox, tmp_path, {de: {"workspaces": {"analytics": "WORKSPACE_MEMBER"},
                                           "deployments": {f"{ws_id}/prod": "DEPLOYMENT_ADMIN"}}})
    assert main(["validate", str(path)]) == 0, capsys.readouterr().out
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
    assert plan_changes(path, capsys) == []


def test_drift_fix_without_yes_lists_the_team_role_sets_it_would_apply(sandbox: Sandbox, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`drift --fix --format json` lists under `planned` what --yes would do; a Team role set was only narrated."""
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: FULL})
    org_id = push_teams(sandbox)
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
    sandbox.astro_platform.set_team_roles(org_id, de, organization="ORGANIZATION_OWNER")
    capsys.readouterr()
    assert main(["drift", "--idp", "okta", "-c", str(path), "--fix", "--format", "json"]) == 1
    (idp,) = json.loads(capsys.readouterr().out)["idps"]
    assert [f["kind"] for f in idp["findings"] if f["kind"] == "team_roles_mismatch"] == ["team_roles_mismatch"]
    assert [c["key"] for c in idp["planned"] if c["resource"].startswith("astro.team_roles")] == [de]


def test_a_role_astro_refuses_at_apply_is_named_at_its_config_line(sandbox: Sandbox, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Any Deployment role name may be a custom role, so only Astro can refuse one: apply exited 3 with the
    endpoint's HTTP 400 and no file:line. It names the grant's line (exit 2, a configuration error)."""
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: {"workspaces": {"analytics": "WORKSPACE_MEMBER"},
                                           "deployments": {"analytics/prod": "DEPLOYMENT_OPS"}}})
    push_teams(sandbox)
    capsys.readouterr()
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 2
    err = capsys.readouterr().err
    line = line_of(path, "DEPLOYMENT_OPS")
    assert f"{path}:{line}:" in err and f"Astro refuses the role set of {de!r}" in err, err
    assert "DEPLOYMENT_OPS" in err and "Traceback" not in err
    # drift --fix --yes: a remedy that failed, with why, in the JSON (it aborted the whole run)
    data = yaml.safe_load(path.read_text())
    data["access"][de]["deployments"] = {"analytics/prod": "DEPLOYMENT_ADMIN"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
    data["access"][de]["deployments"] = {"analytics/prod": "DEPLOYMENT_OPS"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    capsys.readouterr()
    assert main(["drift", "--idp", "okta", "-c", str(path), "--fix", "--yes", "--format", "json"]) == 1
    (idp,) = json.loads(capsys.readouterr().out)["idps"]
    (remedy,) = [r for r in idp["remedies"] if r["resource"].startswith("astro.team_roles")]
    assert remedy["ok"] is False and "Astro refuses the role set" in remedy["message"]


def test_a_group_both_idps_bring_into_one_shared_organization_is_one_team_to_set(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One top-level `astro:` for both IdPs, the group pushed by Okta and assigned in Entra: plan listed two
    identical changes, apply POSTed the roles twice and counted two."""
    de = teams(sandbox)[0]
    path = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta", "azure"))
    data = yaml.safe_load(path.read_text())
    astro = data["okta"].pop("astro")
    data["azure"].pop("astro")
    path.write_text(yaml.safe_dump({"astro": astro, **data, "access": {de: FULL}}, sort_keys=False))
    org_id = push_teams(sandbox, "okta")
    assert [c["key"] for c in plan_changes(path, capsys)] == [de]
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 0
    assert sandbox.astro_platform.team_roles(org_id, de) == FULL
    assert plan_changes(path, capsys) == []


# -- failures ----------------------------------------------------------------------------------------------


def test_unknown_workspace_fails_with_file_line_and_candidates(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: {"workspaces": {"analytic": "WORKSPACE_MEMBER"}}})
    push_teams(sandbox)
    capsys.readouterr()
    assert main(["plan", "--idp", "astro", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line_of(path, 'analytic:')}:" in err
    assert "no Astro Workspace 'analytic' in this organization" in err and "did you mean: 'analytics'?" in err


def test_unknown_deployment_fails_with_file_line(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de = teams(sandbox)[0]
    path = config(
        sandbox,
        tmp_path,
        {
            de: {
                "workspaces": {"platform": "WORKSPACE_MEMBER"},
                "deployments": {"platform/dev": "DEPLOYMENT_ADMIN"},
            }
        },
    )
    push_teams(sandbox)
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 2
    err = capsys.readouterr().err
    assert (
        f"{path}:{line_of(path, 'platform/dev')}:" in err and "no Deployment 'dev' in Astro Workspace" in err
    )
    assert sandbox.logs["astro"].writes() == []


def test_hierarchy_violation_fails_validation_with_file_line(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de = teams(sandbox)[0]
    org_id = push_teams(sandbox)
    # By name: caught offline, by `validate` and by every command that reads the config.
    path = config(
        sandbox,
        tmp_path,
        {
            de: {
                "workspaces": {"platform": "WORKSPACE_MEMBER"},
                "deployments": {"analytics/prod": "DEPLOYMENT_ADMIN"},
            }
        },
    )
    where = f"{path}:{line_of(path, 'analytics/prod')}:"
    assert main(["validate", str(path)]) == 1
    assert where in capsys.readouterr().out
    assert main(["plan", "--idp", "astro", "-c", str(path)]) == 2
    assert where in capsys.readouterr().err
    # By id: only Astro knows the Deployment's Workspace, so plan checks it.
    dep_id = sandbox.astro_platform.deployment_id(org_id, "analytics", "prod")
    path = config(
        sandbox,
        tmp_path,
        {de: {"workspaces": {"platform": "WORKSPACE_MEMBER"}, "deployments": {dep_id: "DEPLOYMENT_ADMIN"}}},
    )
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()
    assert main(["plan", "--idp", "astro", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line_of(path, dep_id)}:" in err and "needs a role on its workspace 'analytics'" in err
    assert sandbox.logs["astro"].writes() == []


def test_a_team_that_never_appears_exits_3_naming_group_and_idp(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_clock: FakeClock
) -> None:
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: FULL}, wait=1.0)
    before = team_lookups(sandbox)
    assert main(["apply", "--idp", "astro", "-c", str(path), "--yes"]) == 3
    err = capsys.readouterr().err
    assert 1.0 <= fake_clock.monotonic() < 6  # it waited its whole budget (virtual seconds), then gave up
    assert team_lookups(sandbox) - before >= 3  # plan's look, then apply's: it looked again while it waited
    assert (
        f"Team '{de}' did not appear in Astro organization {sandbox.astro_orgs['okta'].org_id} within 1s"
        in err
    )
    assert "okta should push it (okta.push_groups)" in err and "astro.team_wait_seconds" in err
    assert sandbox.logs["astro"].writes() == []


def test_a_team_pushed_while_apply_waits_gets_its_roles(sandbox: Sandbox, tmp_path: Path,
                                                        fake_clock: FakeClock) -> None:
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: FULL}, wait=10.0)
    provider = AstroAccessProvider(load_config(path), poll_seconds=0.05)
    plan = provider.plan()
    assert plan.changes[0].data["team_id"] is None
    org_id = sandbox.astro_orgs["okta"].org_id
    after_plan = team_lookups(sandbox)
    pushed: list[float] = []

    def push_meanwhile(now: float) -> None:  # the IdP pushes the Team 0.3 s (virtual) into apply's wait
        if now >= 0.3 and not pushed:
            pushed.append(now)
            push_teams(sandbox)

    fake_clock.on_sleep = push_meanwhile
    assert provider.apply(plan) == 1
    assert pushed and fake_clock.monotonic() < 10  # found after the push, long before the wait's budget
    assert team_lookups(sandbox) - after_plan >= 2  # not there at the first look, found at a later one
    assert sandbox.astro_platform.team_roles(org_id, de) == FULL


def test_wrong_token_is_an_auth_error_naming_the_api(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: FULL})
    push_teams(sandbox)
    (tmp_path / "astro-okta.token").write_text("not-the-token\n")
    assert main(["plan", "--idp", "astro", "-c", str(path)]) == 3
    err = capsys.readouterr().err
    assert "Astro Platform API" in err and "HTTP 401" in err and "Organization Owner" in err
    checks = AstroAccessProvider(load_config(path)).test_connection()
    assert [c.ok for c in checks] == [False]


def test_server_errors_are_retried(sandbox: Sandbox, tmp_path: Path) -> None:
    de, an = teams(sandbox)
    path = config(sandbox, tmp_path, {de: FULL, an: {"organization": "ORGANIZATION_OWNER"}})
    org_id = push_teams(sandbox)
    sandbox.set_faults(FaultConfig(rate_5xx=0.3, seed=3), service="astro")
    provider = AstroAccessProvider(load_config(path))
    assert provider.apply(provider.plan()) == 2
    sandbox.set_faults(FaultConfig(), service="astro")
    failures = [e for e in sandbox.logs["astro"].entries if e.status >= 500]
    assert failures, "the fault rate should have failed some requests"
    assert sandbox.astro_platform.team_roles(org_id, de) == FULL
    assert not provider.plan()


def test_status_and_test_connection(sandbox: Sandbox, tmp_path: Path) -> None:
    de, an = teams(sandbox)
    path = config(sandbox, tmp_path, {de: FULL, an: {}})
    provider = AstroAccessProvider(load_config(path))
    (check,) = provider.test_connection()
    assert check.ok is True and check.detail == "0 Team(s) readable"
    assert [c.ok for c in provider.status()] == [None, None]  # not pushed yet
    push_teams(sandbox)
    assert [(c.name, c.ok) for c in provider.status()] == [
        (f"Team roles: {de}", False),
        (f"Team roles: {an}", True),
    ]


# -- drift -------------------------------------------------------------------------------------------------


def test_drift_catches_an_out_of_band_role_change_and_fix_repairs_it(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from connector.audit.reconcile import AuditResult, Kind
    from connector.audit.team_roles import audit_team_roles

    de, an = teams(sandbox)
    path = config(sandbox, tmp_path, {de: FULL, an: {"workspaces": {"platform": "WORKSPACE_MEMBER"}}})
    org_id = push_teams(sandbox)
    cfg = load_config(path)
    provider = AstroAccessProvider(cfg)
    provider.apply(provider.plan())

    # An admin makes the Team an Organization Owner and drops its Deployment role in the Astro UI.
    sandbox.astro_platform.set_team_roles(org_id, de, organization="ORGANIZATION_OWNER", deployments={})
    result = AuditResult(idp="okta", scim_url=sandbox.astro_orgs["okta"].scim_url, findings=[])
    audit_team_roles(cfg, [result])
    (finding,) = result.findings
    assert finding.kind is Kind.TEAM_ROLES_MISMATCH and finding.subject == de and finding.team == de
    assert finding.expected == FULL
    assert finding.actual == {
        "organization": "ORGANIZATION_OWNER",
        "workspaces": {"analytics": "WORKSPACE_AUTHOR"},
        "deployments": {},
    }
    assert "~ organization ORGANIZATION_OWNER -> ORGANIZATION_MEMBER" in finding.detail
    assert finding.to_json()["expected"] == FULL

    # --fix without --yes: shows, changes nothing.
    said: list[str] = []
    preview = AuditResult(idp="okta", scim_url="", findings=[])
    audit_team_roles(cfg, [preview], fix=True, yes=False, say=said.append)
    assert len(preview.findings) == 1 and any("nothing done" in s for s in said)
    assert sandbox.astro_platform.team_roles(org_id, de)["organization"] == "ORGANIZATION_OWNER"

    fixed = AuditResult(idp="okta", scim_url="", findings=[])
    audit_team_roles(cfg, [fixed], fix=True, yes=True, say=said.append)
    assert fixed.findings == [] and [f.id for f in fixed.fixed] == [finding.id]
    assert fixed.remedies[0]["ok"] is True and fixed.remedies[0]["resource"] == "astro.team_roles"
    assert sandbox.astro_platform.team_roles(org_id, de) == FULL


def test_drift_command_reports_team_roles_mismatch(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de = teams(sandbox)[0]
    path = config(sandbox, tmp_path, {de: FULL})
    org_id = sandbox.astro_orgs["okta"].org_id
    enable_okta_provisioning(sandbox)
    assert main(["apply", "-c", str(path), "--yes"]) == 0
    sandbox.astro_platform.set_team_roles(org_id, de, workspaces={"analytics": "WORKSPACE_OWNER"})
    capsys.readouterr()
    assert main(["drift", "--idp", "okta", "-c", str(path), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    kinds = [f["kind"] for r in report["idps"] for f in r["findings"]]
    assert kinds == ["team_roles_mismatch"]
    assert main(["drift", "--idp", "okta", "-c", str(path), "--fix", "--yes"]) == 0
    assert sandbox.astro_platform.team_roles(org_id, de) == FULL


# -- the emulator itself -----------------------------------------------------------------------------------


def test_platform_emulator_shapes_paging_filters_and_errors(sandbox: Sandbox) -> None:
    org = sandbox.astro_orgs["okta"]
    push_teams(sandbox)
    base = f"{sandbox.astro_url}/v1/organizations/{org.org_id}"
    auth = {"Authorization": f"Bearer {org.token}"}
    page = httpx.get(f"{base}/teams", headers=auth, params={"limit": 1}).json()
    assert page["totalCount"] == 2 and page["limit"] == 1 and len(page["teams"]) == 1
    team = page["teams"][0]
    assert {"id", "name", "isIdpManaged", "organizationRole", "workspaceRoles", "deploymentRoles"} <= set(
        team
    )
    group = sandbox.astro.find_group(org.org_id, team["name"])
    assert group is not None and team["id"] == group["id"]  # a Team is a SCIM Group
    named = httpx.get(f"{base}/teams", headers=auth, params={"names": [teams(sandbox)[1]]}).json()
    assert [t["name"] for t in named["teams"]] == [teams(sandbox)[1]]
    deps = httpx.get(f"{base}/deployments", headers=auth, params={"names": "prod"}).json()["deployments"]
    assert sorted(d["workspaceName"] for d in deps) == ["analytics", "platform"]

    denied = httpx.get(f"{base}/teams", headers={"Authorization": "Bearer nope"})
    assert denied.status_code == 401 and set(denied.json()) == {"message", "statusCode", "requestId"}
    other = sandbox.astro_orgs["azure"]  # one organization's token does not open another's
    assert httpx.get(f"{base}/teams", headers={"Authorization": f"Bearer {other.token}"}).status_code == 401
    missing = httpx.post(
        f"{base}/teams/clnope/roles", headers=auth, json={"organizationRole": "ORGANIZATION_MEMBER"}
    )
    assert missing.status_code == 404 and missing.json()["statusCode"] == 404
    dep_id = sandbox.astro_platform.deployment_id(org.org_id, "analytics", "prod")
    orphan = httpx.post(
        f"{base}/teams/{team['id']}/roles",
        headers=auth,
        json={
            "organizationRole": "ORGANIZATION_MEMBER",
            "deploymentRoles": [{"deploymentId": dep_id, "role": "DEPLOYMENT_ADMIN"}],
        },
    )
    assert orphan.status_code == 400 and "no role" in orphan.json()["message"]
    bad_role = httpx.post(
        f"{base}/teams/{team['id']}/roles", headers=auth, json={"organizationRole": "OWNER"}
    )
    assert bad_role.status_code == 400
    # SCIM is still served next to the Platform API.
    assert httpx.get(f"{org.scim_url}/Groups", headers=auth).status_code == 200
