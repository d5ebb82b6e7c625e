"""Truthful verdicts (issue 13): drift, status, apply and test-connection never call a broken setup clean.

Each case breaks a freshly applied sandbox setup the way an admin or an outage would, through the same admin APIs
a real org offers (Okta's and Graph's), then checks: drift exits 1 with exactly the setup finding that names the
cause, status says unhealthy, and the finding's named remedy repairs it (drift clean, status healthy).
Everything runs the real CLI against the loopback emulators.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from applied import applied

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM

Found = list[tuple[str, str]]


@pytest.fixture
def sb() -> Any:
    with Sandbox(users=6, groups=3, seed=3) as sandbox:
        yield sandbox


def drift(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Found, dict[str, Any]]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--format", "json", *extra])
    doc = json.loads(capsys.readouterr().out)
    findings = [f for idp in doc["idps"] for f in idp["findings"]]
    return rc, [(f["kind"], f["subject"]) for f in findings], {f["kind"]: f for f in findings}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


def okta_http(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=str(sb.okta_url), headers={"Authorization": f"SSWS {sb.okta_token}"})


def graph_http(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=str(sb.graph_url), headers={"Authorization": f"Bearer {sb.graph_token}"})


def okta_app_id(sb: Sandbox) -> str:
    assert sb.okta is not None
    return str(sb.okta.app_by_label("Astro")["id"])


def okta_group_id(sb: Sandbox, name: str) -> str:
    assert sb.okta is not None
    return str(sb.okta.group_by_name(name)["id"])


def console_step(sb: Sandbox, token: str | None = None) -> None:
    """The Okta admin's manual step: Configure API Integration with the Astro SCIM URL and a token."""
    org = sb.astro_orgs["okta"]
    assert sb.okta is not None
    sb.okta.enable_provisioning(okta_app_id(sb), org.scim_url, token or org.token)


def okta_configured(sb: Sandbox, tmp: Path) -> Path:
    """The console step and `apply --yes` done (tests/applied.py: restored after the first real apply)."""
    config = sb.write_config(tmp / "astro-scim.yaml", idps=("okta",))
    applied(sb, config, "okta", console_step=True)
    return config


def azure_sp(sb: Sandbox) -> str:
    assert sb.graph is not None
    return str(next(s for s in sb.graph.service_principals() if s["displayName"] == "Astro")["id"])


def azure_configured(sb: Sandbox, tmp: Path) -> Path:
    config = sb.write_config(tmp / "astro-scim.yaml", idps=("azure",))
    applied(sb, config, "azure")
    return config


def assert_clean(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, found, _ = drift(config, capsys)
    assert (rc, found) == (0, [])
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 0, out


# -- breaks, through the IdPs' own admin APIs -------------------------------------------------------------------


def okta_feature_off(sb: Sandbox) -> None:
    body = {"create": {"lifecycleCreate": {"status": "ENABLED"}},
            "update": {"profile": {"status": "DISABLED"}, "lifecycleDeactivate": {"status": "ENABLED"},
                       "password": {"status": "DISABLED", "seed": "RANDOM", "change": "KEEP_EXISTING"}}}
    with okta_http(sb) as c:
        c.put(f"/api/v1/apps/{okta_app_id(sb)}/features/USER_PROVISIONING", json=body).raise_for_status()


def okta_app_deactivated(sb: Sandbox) -> None:
    with okta_http(sb) as c:
        c.post(f"/api/v1/apps/{okta_app_id(sb)}/lifecycle/deactivate").raise_for_status()


def okta_group_unassigned(sb: Sandbox) -> None:
    with okta_http(sb) as c:
        c.delete(f"/api/v1/apps/{okta_app_id(sb)}/groups/{okta_group_id(sb, ASSIGNED_TEAM)}").raise_for_status()


def _push_mapping(sb: Sandbox, name: str) -> str:
    assert sb.okta is not None
    mapping = sb.okta.push_mapping(okta_app_id(sb), name)
    assert mapping is not None
    return str(mapping["id"])


def okta_push_inactive(sb: Sandbox) -> None:
    team = sb.default_team_names()[0]
    with okta_http(sb) as c:
        c.patch(f"/api/v1/apps/{okta_app_id(sb)}/group-push/mappings/{_push_mapping(sb, team)}",
                json={"status": "INACTIVE"}).raise_for_status()


def okta_push_deleted(sb: Sandbox) -> None:
    team = sb.default_team_names()[0]
    path = f"/api/v1/apps/{okta_app_id(sb)}/group-push/mappings/{_push_mapping(sb, team)}"
    with okta_http(sb) as c:
        c.patch(path, json={"status": "INACTIVE"}).raise_for_status()
        c.delete(path, params={"deleteTargetGroup": "false"}).raise_for_status()


def okta_mapping_changed(sb: Sandbox) -> None:
    with okta_http(sb) as c:
        mappings = c.get("/api/v1/mappings", params={"targetId": okta_app_id(sb)}).json()
        mid = next(m["id"] for m in mappings if m["source"]["type"] == "user")
        c.post(f"/api/v1/mappings/{mid}", json={"properties": {
            "displayName": {"expression": "user.firstName", "pushStatus": "PUSH"}}}).raise_for_status()


def azure_job_paused(sb: Sandbox) -> None:
    sp = azure_sp(sb)
    assert sb.graph is not None
    job = sb.graph.jobs(sp)[0]["id"]
    with graph_http(sb) as c:
        c.post(f"/servicePrincipals/{sp}/synchronization/jobs/{job}/pause").raise_for_status()


def azure_group_unassigned(sb: Sandbox) -> None:
    sp = azure_sp(sb)
    with graph_http(sb) as c:
        rows = c.get(f"/servicePrincipals/{sp}/appRoleAssignedTo").json()["value"]
        row = next(r for r in rows if r["principalDisplayName"] == sb.default_team_names()[0])
        c.delete(f"/servicePrincipals/{sp}/appRoleAssignedTo/{row['id']}").raise_for_status()


def azure_token_wrong(sb: Sandbox) -> None:
    """The Secret Token Entra holds for Astro no longer works (revoked in Astro, or mistyped in the portal)."""
    sp = azure_sp(sb)
    with graph_http(sb) as c:
        c.put(f"/servicePrincipals/{sp}/synchronization/secrets",
              json={"value": [{"key": "SecretToken", "value": "revoked-astro-token"}]}).raise_for_status()


@dataclass
class Case:
    name: str
    idp: str
    inject: Callable[[Sandbox], None]
    kind: str
    subject: Callable[[Sandbox], str]
    remedy_says: str  # the finding's remedy names this
    repair: Callable[[Sandbox, Path, pytest.CaptureFixture[str]], None]

    def __str__(self) -> str:
        return self.name


def by_apply(sb: Sandbox, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(capsys, "apply", "-c", str(config), "--yes")
    assert rc == 0, out


def app_label(sb: Sandbox) -> str:
    return "Astro"


def first_team(sb: Sandbox) -> str:
    return sb.default_team_names()[0]


CASES = [
    Case("okta_feature_off", "okta", okta_feature_off, "provisioning_off", lambda sb: "To App features",
         "To App", by_apply),
    Case("okta_app_deactivated", "okta", okta_app_deactivated, "provisioning_off", app_label, "Activate", by_apply),
    Case("okta_group_unassigned", "okta", okta_group_unassigned, "group_not_provisioned", lambda sb: ASSIGNED_TEAM,
         "Assign to Groups", by_apply),
    Case("okta_push_inactive", "okta", okta_push_inactive, "group_not_provisioned", first_team, "push-groups",
         by_apply),
    Case("okta_push_mapping_deleted", "okta", okta_push_deleted, "group_not_provisioned", first_team,
         "push-groups", by_apply),
    Case("okta_mapping_changed", "okta", okta_mapping_changed, "mapping_not_applied", lambda sb: "displayName",
         "profile mapping", by_apply),
    Case("azure_job_paused", "azure", azure_job_paused, "provisioning_off", app_label, "Start provisioning",
         by_apply),
    Case("azure_group_unassigned", "azure", azure_group_unassigned, "group_not_provisioned", first_team,
         "Users and groups", by_apply),
    Case("azure_token_wrong", "azure", azure_token_wrong, "connection_broken", app_label, "Admin Credentials",
         by_apply),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_broken_setup_is_found_named_and_repaired(sb: Sandbox, tmp_path: Path, case: Case,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = okta_configured(sb, tmp_path) if case.idp == "okta" else azure_configured(sb, tmp_path)
    assert_clean(config, capsys)
    case.inject(sb)
    rc, found, by_kind = drift(config, capsys)
    assert rc == 1 and (case.kind, case.subject(sb)) in found, found
    assert [k for k, _ in found if k.endswith(("_off", "_broken", "_provisioned", "_applied", "not_set_up"))] \
        == [case.kind], found
    assert case.remedy_says in by_kind[case.kind]["remedy"]
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 1 and "FAIL setup:" in out, out
    case.repair(sb, config, capsys)
    assert_clean(config, capsys)


def test_okta_never_applied_is_not_set_up_not_clean(sb: Sandbox, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    rc, found, by_kind = drift(config, capsys)
    assert (rc, found) == (1, [("not_set_up", "Astro")])
    assert by_kind["not_set_up"]["remedy"].startswith("run 'astro-scim apply --idp okta'")  # once: the kind says it
    assert "not set up" not in by_kind["not_set_up"]["remedy"]
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 1 and "not set up" in out
    (line,) = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("FAIL setup")]
    # said once: it read "FAIL setup: not set up: Astro: not set up: provisioning ..."
    assert line == "FAIL setup: not set up: Astro: provisioning (the API integration) is not switched on"
    for fmt in ("text", "markdown", "junit", "github", "html"):
        capsys.readouterr()
        assert main(["drift", "-c", str(config), "--format", fmt]) == 1, fmt
    console_step(sb)
    assert main(["apply", "-c", str(config), "--yes"]) == 0
    assert_clean(config, capsys)


def test_azure_never_applied_is_not_set_up_exit_1_not_2(sb: Sandbox, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    rc, found, by_kind = drift(config, capsys)
    assert (rc, found) == (1, [("not_set_up", "Astro")])
    assert by_kind["not_set_up"]["remedy"].startswith("run 'astro-scim apply --idp azure'")
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 1 and "not set up: Astro: no enterprise app" in out and "hint: run 'astro-scim apply --idp azure'" in out
    (line,) = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("FAIL setup")]
    assert line == "FAIL setup: not set up: Astro: no enterprise app 'Astro'"
    assert main(["apply", "-c", str(config), "--yes"]) == 0
    assert_clean(config, capsys)


def test_okta_wrong_astro_token_in_the_integration_is_the_connection(sb: Sandbox, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    console_step(sb, token="a-wrong-astro-token")
    run(capsys, "apply", "-c", str(config), "--yes")
    rc, found, by_kind = drift(config, capsys)
    assert rc == 1 and ("connection_broken", "Astro") in found
    assert not [k for k, _ in found if k == "idp_error"], found  # the 401s are the one cause, reported once
    assert "API token" in by_kind["connection_broken"]["remedy"]
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 1 and "connection broken" in out
    console_step(sb)  # the admin pastes the right token
    rc, out = run(capsys, "drift", "-c", str(config), "--fix", "--yes")
    assert_clean(config, capsys)


def test_okta_status_lines_for_errors_astro_refused_name_the_token_not_a_re_push(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every app user and push mapping in ERROR with Astro's 401: their lines' hints said to re-assign the users
    and to run push-groups, which meet the same 401 (only the setup line named the token). Now they name it."""
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    console_step(sb, token="a-wrong-astro-token")
    run(capsys, "apply", "-c", str(config), "--yes")
    capsys.readouterr()
    assert main(["status", "-c", str(config), "--format", "json"]) == 1
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["idps"][0]["checks"]}
    for name in ("app users in ERROR", "push mappings in ERROR"):
        assert checks[name]["ok"] is False, checks[name]
        assert "Provisioning > Integration > Edit: API token" in checks[name]["hint"], checks[name]
        assert "push-groups" not in checks[name]["hint"] and "re-assign" not in checks[name]["hint"]


def test_okta_status_is_not_healthy_with_users_in_scope_and_none_provisioned(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    console_step(sb, token="a-wrong-astro-token")
    run(capsys, "apply", "-c", str(config), "--yes")
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 1
    assert "FAIL app users: 6 assigned, 0 provisioned to Astro; 6 in scope but not in Astro" in out


def test_a_revoked_token_on_our_side_is_a_remote_error_never_clean(sb: Sandbox, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = okta_configured(sb, tmp_path)
    (tmp_path / "astro-okta.token").write_text("revoked\n", encoding="utf-8")
    rc, _ = run(capsys, "drift", "-c", str(config))
    assert rc == 3
    okta_configured(sb, tmp_path)  # token files rewritten
    (tmp_path / "okta.token").write_text("revoked\n", encoding="utf-8")
    rc, _ = run(capsys, "drift", "-c", str(config))
    assert rc == 3


# -- apply verifies its outcome ------------------------------------------------------------------------------


def test_apply_with_a_wrong_astro_token_in_okta_fails_naming_the_401_and_the_fix(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    console_step(sb, token="a-wrong-astro-token")
    rc, out = run(capsys, "apply", "-c", str(config), "--yes")
    assert rc == 4, out
    assert "provisioning FAILED: connection_broken" in out and "401" in out
    assert "Provisioning > Integration > Edit: API token" in out
    assert "applied 6 change(s)" not in out and "a-wrong-astro-token" not in out
    rc, out = run(capsys, "apply", "-c", str(config), "--yes")  # nothing left to change: still not "applied"
    assert rc == 4, out
    rc, out = run(capsys, "apply", "-c", str(config), "--yes", "--no-wait")
    assert rc == 0 and "not verified" in out
    rc, out = run(capsys, "test-connection", "-c", str(config))
    assert rc == 1 and "FAIL Okta -> Astro" in out, out


def test_apply_waits_bounded_and_fails_when_nothing_reached_astro(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Entra's cycles never begin here: the wait is bounded by --wait, and the verdict is that nothing reached
    Astro."""
    assert sb.graph is not None
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    sb.graph.hold_cycles = True
    rc, out = run(capsys, "apply", "-c", str(config), "--yes", "--wait", "0")
    assert rc == 4 and "none of" in out and "reached Astro" in out, out


def test_an_account_that_is_not_the_idps_is_no_sign_that_provisioning_works(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every real Astro organization holds its owner's account before SCIM is set up (or another IdP's users):
    apply counted the organization's accounts, so with Entra's cycles never beginning it said "partly verified"
    and exited 0. It counts the IdP's users in scope that reached Astro: none, exit 4."""
    assert sb.graph is not None
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    org = sb.astro_orgs["azure"]
    owner = httpx.post(f"{org.scim_url}/Users", headers={"Authorization": f"Bearer {org.token}"},
                       json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                             "userName": "owner@acme.example", "active": True})
    assert owner.status_code == 201
    sb.graph.hold_cycles = True
    rc, out = run(capsys, "apply", "-c", str(config), "--yes", "--wait", "0")
    assert rc == 4 and "provisioning not verified: none of 6 user(s) in scope reached Astro" in out, out
    assert "partly verified" not in out


@pytest.mark.parametrize("what", ["push_error", "user_error"])
def test_okta_errors_the_idp_reports_fail_apply_until_repaired(sb: Sandbox, tmp_path: Path, what: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = okta_configured(sb, tmp_path)
    assert sb.okta is not None
    if what == "push_error":
        subject = first_team(sb)
        sb.okta.set_push_error(okta_app_id(sb), subject, "Error while pushing: 500 from the remote server")
    else:
        subject = sb.seed_org.people[0].email
        sb.okta.set_app_user_error(okta_app_id(sb), subject, "Astro refused the attribute profileUrl")
    rc, found, _ = drift(config, capsys)
    assert rc == 1 and ("idp_error", subject) in found, found
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 1
    rc, out = run(capsys, "apply", "-c", str(config), "--yes")
    assert rc == 4 and "idp_error" in out, out
    rc, out = run(capsys, "drift", "-c", str(config), "--fix", "--yes")
    assert_clean(config, capsys)
    rc, out = run(capsys, "apply", "-c", str(config), "--yes")
    assert rc == 0 and "verified:" in out, out


def test_azure_quarantine_is_unhealthy_and_apply_restarts_the_job(sb: Sandbox, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = azure_configured(sb, tmp_path)
    assert sb.graph is not None
    sb.graph.quarantine(azure_sp(sb), reason="EncounteredQuarantineException")
    rc, found, by_kind = drift(config, capsys)
    assert (rc, found) == (1, [("idp_error", "Astro")]) and "Restart provisioning" in by_kind["idp_error"]["remedy"]
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 1 and "FAIL quarantine" in out
    by_apply(sb, config, capsys)
    assert_clean(config, capsys)


# -- several IdPs --------------------------------------------------------------------------------------------


def test_apply_all_continues_past_the_okta_manual_step_and_ends_with_what_is_left(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = sb.write_config(tmp_path / "astro-scim.yaml")
    rc, out = run(capsys, "apply", "-c", str(config), "--yes")
    assert rc == 1, out
    assert "azure: verified" in out  # Entra was planned, applied and verified after Okta stopped
    assert "left to do:" in out and out.index("left to do:") > out.index("azure: verified")
    left = out.split("left to do:")[1]
    assert "  - okta: provisioning is not enabled for app 'Astro'" in left  # the provider named once
    assert "okta: okta:" not in out
    rc, found, _ = drift(config, capsys)
    assert (rc, found) == (1, [("not_set_up", "Astro")])  # okta's; azure is clean
    console_step(sb)
    rc, out = run(capsys, "apply", "-c", str(config), "--yes")
    assert rc == 0, out
    assert_clean(config, capsys)


def test_test_connection_says_which_direction_failed(sb: Sandbox, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = azure_configured(sb, tmp_path)
    rc, out = run(capsys, "test-connection", "-c", str(config))
    assert rc == 0 and "ok   Entra -> Astro" in out, out
    azure_token_wrong(sb)
    rc, out = run(capsys, "test-connection", "-c", str(config))
    assert rc == 1 and "FAIL Entra -> Astro" in out and "ok   Astro SCIM (validateCredentials)" in out, out
    assert "revoked-astro-token" not in out


@pytest.mark.parametrize("inject", [okta_app_deactivated, okta_feature_off], ids=lambda f: f.__name__)
def test_okta_test_connection_does_not_call_the_direction_ok_while_provisioning_is_off(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], inject: Callable[[Sandbox], None]) -> None:
    """Okta cannot test the token its integration holds; the verdict is read from Astro's 401s on its pushes and
    app users. With the app deactivated (or To App off) nothing is sent, so no 401 can show: it said "ok" for a
    setup that provisions nothing. Now "not verified" with the fix, as information (the connections it can test
    do work, and provisioning off is also the state before apply: test-connection keeps exit 0 for it)."""
    config = okta_configured(sb, tmp_path)
    inject(sb)
    capsys.readouterr()
    rc = main(["test-connection", "-c", str(config), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    (check,) = [c for c in doc["idps"][0]["checks"] if c["name"].startswith("Okta -> Astro")]
    assert check["ok"] is None and check["detail"].startswith("not verified: provisioning is off")
    assert "astro-scim apply --idp okta" in check["hint"]
    assert rc == doc["exit_code"] == 0
    rc, out = run(capsys, "test-connection", "-c", str(config))
    assert "ok   Okta -> Astro" not in out and "info Okta -> Astro" in out and "not verified" in out, out
    shown = out.splitlines()
    at = next(i for i, line in enumerate(shown) if "info Okta -> Astro" in line)
    assert "hint:" in shown[at + 1] and "astro-scim apply --idp okta" in out, out  # its fix, shown with it
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 1, out  # status, the health verdict, fails it
    by_apply(sb, config, capsys)
    rc, out = run(capsys, "test-connection", "-c", str(config))
    assert rc == 0 and "ok   Okta -> Astro" in out, out


@pytest.mark.parametrize(("idp", "service", "status"), [
    ("okta", "okta", 500), ("azure", "graph", 503), ("okta", "astro", 500), ("azure", "astro", 429)])
def test_an_outage_that_outlasts_the_retries_is_named_with_a_hint(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], idp: str, service: str,
        status: int) -> None:
    """Every read answers 5xx (or 429) on every retry. The error named the endpoint and status but had no hint:
    the admin could not tell an outage on the service's side from a mistake in the setup."""
    from connector.sandbox.faults import FaultRule

    config = okta_configured(sb, tmp_path) if idp == "okta" else azure_configured(sb, tmp_path)
    sb.fail(service, FaultRule("GET", ".", status=status, times=None))
    capsys.readouterr()
    rc = main(["status", "-c", str(config), "--format", "json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    if service == "astro":  # the read-back line fails: no verdict of health
        (check,) = [c for c in doc["idps"][0]["checks"] if c["name"] == "users in scope"]
        assert rc == 1 and check["ok"] is False and f"HTTP {status}" in check["detail"]
        hint = check["hint"]
    else:  # the IdP cannot be read: a remote error
        assert rc == 3 and doc["exit_code"] == 3 and f"HTTP {status}" in doc["error"]["message"]
        hint = doc["error"]["hint"]
        assert "hint: the service kept" in captured.err and "Traceback" not in captured.err
    assert hint and hint.startswith("the service kept") and "try again later" in hint


def test_status_of_two_idps_with_one_unreadable_reports_the_other_and_exits_3(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Okta answers 500 to every read. status stopped at Okta with exit 3 and nothing about Entra (JSON idps []):
    an admin could not tell Entra's health, nor that it was not checked. Now Okta's place says it could not be
    read, Entra is checked as ever, and the run still ends as the remote error."""
    from connector.sandbox.faults import FaultRule

    config = sb.write_config(tmp_path / "astro-scim.yaml")
    console_step(sb)
    applied(sb, config, "all")
    sb.fail("okta", FaultRule("GET", ".", status=500, times=None))
    capsys.readouterr()
    rc = main(["status", "-c", str(config), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 3 and doc["exit_code"] == 3 and doc["ok"] is False and "HTTP 500" in doc["error"]["message"]
    okta, azure = doc["idps"]
    assert okta["idp"] == "okta" and okta["ok"] is False
    (check,) = okta["checks"]
    assert check["ok"] is False and check["detail"].startswith("not checked: okta GET") and check["hint"]
    assert azure["idp"] == "azure" and azure["ok"] is True and len(azure["checks"]) > 3
    rc, out = run(capsys, "status", "-c", str(config))
    assert rc == 3 and "FAIL read the IdP: not checked" in out and "azure\n" in out and "Traceback" not in out


def test_okta_attribute_mismatch_is_repaired_by_a_profile_push_never_by_deactivating(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = okta_configured(sb, tmp_path)
    login = sb.seed_org.people[3].email
    sb.astro.edit_user(sb.astro_orgs["okta"].org_id, login, "name.givenName", "Mallory")
    rc, found, _ = drift(config, capsys)
    assert (rc, found) == (1, [("attribute_mismatch", login)])
    sb.logs["astro"].clear()
    rc, out = run(capsys, "drift", "-c", str(config), "--fix", "--yes")
    assert "remedy.okta.update_user" in out and "reassign" not in out, out
    methods = {(e.method, e.path.rsplit("/", 2)[-2]) for e in sb.logs["astro"].entries if "/Users" in e.path}
    assert ("PUT", "Users") in methods and ("PATCH", "Users") not in methods  # a full PUT, no active=false
    assert_clean(config, capsys)


# -- the SSO prerequisite ------------------------------------------------------------------------------------


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_sso_left_out_is_a_warning_in_plan_drift_and_status_until_set_up(
        idp: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Sandbox(users=4, groups=3, seed=3, sso=False) as sandbox:
        config = okta_configured(sandbox, tmp_path) if idp == "okta" else azure_configured(sandbox, tmp_path)
        rc, found, by_kind = drift(config, capsys)
        assert (rc, found) == (1, [("sso_missing", "Astro")])
        assert by_kind["sso_missing"]["severity"] == "warning" and "Single sign-on" in by_kind["sso_missing"]["remedy"] \
            or "Sign On > SAML 2.0" in by_kind["sso_missing"]["remedy"]
        rc, out = run(capsys, "status", "-c", str(config))
        assert "info setup: sso missing" in out, out
        rc, out = run(capsys, "plan", "-c", str(config))
        assert "note: SSO:" in out
        if idp == "okta":  # the admin sets SAML up in the Admin Console (Sign On tab)
            assert sandbox.okta is not None
            sandbox.okta.set_sign_on_mode(okta_app_id(sandbox), "SAML_2_0")
        else:  # Single sign-on > SAML, which sets the service principal's mode
            with graph_http(sandbox) as c:
                c.patch(f"/servicePrincipals/{azure_sp(sandbox)}",
                        json={"preferredSingleSignOnMode": "saml"}).raise_for_status()
        assert_clean(config, capsys)


def test_the_wait_for_the_outcome_is_bounded_with_an_injected_clock(sb: Sandbox, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from connector.audit.verify import verify_applied
    from connector.config.arg import load_config_arg

    assert sb.graph is not None
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    sb.graph.hold_cycles = True  # the job starts, its first cycle does not begin
    rc, out = run(capsys, "apply", "-c", str(config), "--yes", "--no-wait")
    assert rc == 0 and "not verified" in out
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # time passes without waiting for it
        slept.append(seconds)
        now[0] += seconds

    said: list[str] = []
    verdict = verify_applied(load_config_arg(str(config)), "azure", timeout=12.0, say=said.append,
                             clock=lambda: now[0], sleep=sleep)
    assert not verdict.ok and verdict.nothing_reached and "none of" in verdict.summary()
    assert slept == [0.5, 1.0, 2.0, 4.0] and sum(slept) <= 12.0  # backs off, never past the bound
    assert len(said) == 4 and "waiting for azure to provision" in said[0]
    sb.graph.hold_cycles = False
    sb.graph.run_cycle(azure_sp(sb))  # the cycle runs: the next verdict is verified
    verdict = verify_applied(load_config_arg(str(config)), "azure", timeout=12.0, say=said.append,
                             clock=lambda: now[0], sleep=sleep)
    assert verdict.ok and not verdict.pending and verdict.summary().startswith("azure: verified")


def test_test_connection_with_a_group_okta_does_not_have_fails_a_check_not_the_command(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    console_step(sb)
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",), okta_push_groups=["Data Engineerin"])
    rc, out = run(capsys, "test-connection", "-c", str(config))
    assert rc == 1 and "FAIL Okta -> Astro" in out and "no group named 'Data Engineerin'" in out, out


@pytest.mark.parametrize("wait", ["10", "0"])
def test_apply_fails_on_users_and_teams_okta_reports_provisioned_that_astro_lacks(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], wait: str) -> None:
    """Deleted in Astro after Okta provisioned them: Okta's app user keeps its externalId, the push mapping its
    lastPush, and nothing is in flight. That is a failed verification naming them and `drift --fix --yes`, never
    "partly verified, pending"; users and Teams are counted apart. With --wait 0 the first audit is at the bound:
    a second one at once confirms them (seen once, they could be a create Astro had not answered yet)."""
    config = okta_configured(sb, tmp_path)
    org = sb.astro_orgs["okta"]
    team = sb.default_team_names()[0]
    with httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"}) as scim:
        users = scim.get("/Users", params={"count": 200}).raise_for_status().json()["Resources"]
        user = users[0]["userName"]
        scim.delete(f"/Users/{users[0]['id']}").raise_for_status()
        (group,) = scim.get("/Groups", params={"filter": f'displayName eq "{team}"'}).raise_for_status().json()[
            "Resources"]
        scim.delete(f"/Groups/{group['id']}").raise_for_status()
    capsys.readouterr()
    rc = main(["apply", "-c", str(config), "--idp", "okta", "--yes", "--wait", wait, "--format", "json"])
    captured = capsys.readouterr()
    verification = json.loads(captured.out)["providers"][0]["verification"]
    assert rc == 4, captured.err
    assert verification["status"] == "failed"
    summary = verification["summary"]
    assert "1 user(s), 1 Team(s) that okta reports provisioned are not in Astro" in summary
    assert f"user {user}" in summary and f"Team {team}" in summary and "pending" not in summary
    assert verification["hint"] == "run 'astro-scim drift --fix --yes' (provisions them again through okta)"
    assert {(b["kind"], b["subject"]) for b in verification["blocking"]} >= {("user_missing", user),
                                                                             ("team_missing", team)}
    rc, out = run(capsys, "drift", "-c", str(config), "--fix", "--yes")
    rc, out = run(capsys, "apply", "-c", str(config), "--idp", "okta", "--yes", "--wait", "10")
    assert rc == 0 and "okta: verified" in out, out
