"""`astro-scim drift` against the states the corrected emulators make possible (issue 17), end to end:

- Okta creates a pushed group empty and sends its members in a PATCH of their own, which can fail alone: the push
  is in ERROR and the Team exists in Astro, empty.
- A user re-enabled in the IdP (Okta: lifecycle activate and re-assigned; Entra: accountEnabled true again) whose
  update never reached Astro: the Astro account stays `active: false`.

Each test makes the state with the IdP's own API and the sandbox's fault injection (an Astro account deleted
behind Okta's back, Astro answering 500 while the IdP sends), then: drift reports exactly it, `drift --fix --yes`
repairs it, a second drift is clean and Astro is read back; a second `--fix` changes nothing (run-twice).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM

Found = list[tuple[str, str]]


def drift(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    return rc, [f for idp in doc["idps"] for f in idp["findings"]]


def kinds(findings: list[dict[str, Any]]) -> Found:
    return sorted((f["kind"], f["subject"]) for f in findings)


def fix(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--fix", "--yes"])
    out = capsys.readouterr()
    return rc, out.out + out.err


def fixed_then_clean_twice(sb: Sandbox, config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """--fix repairs everything, the next drift is clean, and a second --fix writes nothing anywhere."""
    rc, out = fix(config, capsys)
    assert rc == 0 and "0 finding(s) left" in out, out
    assert drift(config, capsys) == (0, [])
    for log in sb.logs.values():
        log.clear()
    rc, again = fix(config, capsys)
    assert rc == 0, again
    assert [w for log in sb.logs.values() for w in log.writes() if not w.path.endswith("/validateCredentials")] == []
    return out


@pytest.fixture
def okta_api(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(sandbox.okta_url), headers={"Authorization": f"SSWS {sandbox.okta_token}"}) as c:
        yield c


def app_id(sb: Sandbox) -> str:
    assert sb.okta is not None
    return str(sb.okta.app_by_label("Astro")["id"])


# -- Okta: a Team created empty, its members PATCH failed --------------------------------------------------------


def push_again_with_a_stale_member(sb: Sandbox, c: httpx.Client, team: str) -> str:
    """Unlink `team` (deleting its Team), delete one member's account in Astro only, and push the group again:
    Okta creates the Team empty, then its members PATCH names the deleted account and Astro refuses it (400
    invalidValue), so the push is in ERROR and the Team stays empty. Returns the member whose account is gone."""
    assert sb.okta is not None
    app, org = app_id(sb), sb.astro_orgs["okta"]
    gid = sb.okta.group_by_name(team)["id"]
    (mapping,) = [m for m in c.get(f"/api/v1/apps/{app}/group-push/mappings").json() if m["sourceGroupId"] == gid]
    path = f"/api/v1/apps/{app}/group-push/mappings/{mapping['id']}"
    assert c.patch(path, json={"status": "INACTIVE"}).status_code == 200
    assert c.delete(path, params={"deleteTargetGroup": "true"}).status_code == 204
    gone = sb.seed_org.person(sb.seed_org.team(team).member_keys[0]).email
    sb.astro.delete_user(org.org_id, gone)
    made = c.post(f"/api/v1/apps/{app}/group-push/mappings", json={"sourceGroupId": gid, "status": "ACTIVE",
                                                                      "targetGroupName": team})
    assert made.status_code == 201 and made.json()["status"] == "ERROR", made.text
    pushed = sb.astro.find_group(org.org_id, team)
    assert pushed is not None and pushed["members"] == []
    return gone


def okta_members(sb: Sandbox, c: httpx.Client, team: str) -> set[str]:
    assert sb.okta is not None
    gid = sb.okta.group_by_name(team)["id"]
    return {u["profile"]["login"].casefold() for u in c.get(f"/api/v1/groups/{gid}/users").json()
            if u["status"] == "ACTIVE"}


def team_members(sb: Sandbox, idp: str, team: str) -> set[str]:
    org = sb.astro_orgs[idp].org_id
    found = sb.astro.find_group(org, team)
    assert found is not None
    by_id = {u["id"]: u["userName"].casefold() for u in sb.astro.users(org)}
    return {by_id[m["value"]] for m in found["members"]}


def test_okta_team_left_empty_by_a_failed_members_patch_is_seen_and_repushed(
        sandbox: Sandbox, okta_applied: Path, okta_api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    team = sandbox.default_team_names()[0]
    gone = push_again_with_a_stale_member(sandbox, okta_api, team)
    # The member whose account went leaves the company: Okta deactivates them (its PATCH to Astro fails, the
    # account is gone) and takes them out of the group's expected members. What is left is exactly the new state.
    assert sandbox.okta is not None
    uid = sandbox.okta.user_by_login(gone)["id"]
    assert okta_api.post(f"/api/v1/users/{uid}/lifecycle/deactivate").status_code == 200
    expected = okta_members(sandbox, okta_api, team)
    assert expected and gone.casefold() not in expected

    rc, findings = drift(okta_applied, capsys)
    assert rc == 1
    assert kinds(findings) == sorted([("idp_error", team)] + [("membership_missing", team)] * len(expected))
    (error,) = [f for f in findings if f["kind"] == "idp_error"]
    assert error["issue_kind"] == "okta.push_error" and "400" in error["detail"] and "updating group" in error["detail"]
    missing = {f["user"].casefold() for f in findings if f["kind"] == "membership_missing"}
    assert missing == expected

    out = fixed_then_clean_twice(sandbox, okta_applied, capsys)
    assert "remedy.okta.repush_group" in out and "verified in Astro" in out
    assert team_members(sandbox, "okta", team) == expected  # read back: the Team has its members
    mapping = next(m for m in okta_api.get(f"/api/v1/apps/{app_id(sandbox)}/group-push/mappings").json()
                   if m["sourceGroupId"] == sandbox.okta.group_by_name(team)["id"])
    assert mapping["status"] == "ACTIVE" and not mapping.get("errorSummary")


def test_okta_empty_team_whose_cause_is_still_there_is_repaired_with_it(
        sandbox: Sandbox, okta_applied: Path, okta_api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    # The deleted account's owner is still in Okta: one root cause (the account missing) and its consequences.
    team = sandbox.default_team_names()[0]
    gone = push_again_with_a_stale_member(sandbox, okta_api, team)
    expected = okta_members(sandbox, okta_api, team)
    rc, findings = drift(okta_applied, capsys)
    assert rc == 1
    others = len(expected) - 1  # the missing user is reported once, as user_missing (with its Teams)
    assert kinds(findings) == sorted([("user_missing", gone), ("idp_error", team)]
                                     + [("membership_missing", team)] * others)
    (user,) = [f for f in findings if f["kind"] == "user_missing"]
    assert team in user["teams"]

    out = fixed_then_clean_twice(sandbox, okta_applied, capsys)
    assert "remedy.okta.reassign_user" in out and "remedy.okta.repush_group" in out
    assert team_members(sandbox, "okta", team) == expected


# -- a user re-enabled in the IdP, still inactive in Astro ------------------------------------------------------

RITA = "rita.returns@acme.example"


def okta_user_with_a_password(c: httpx.Client, sb: Sandbox) -> str:
    """A new hire in the assigned group (with a password, so Okta's activate makes them ACTIVE at once)."""
    assert sb.okta is not None
    gid = sb.okta.group_by_name(ASSIGNED_TEAM)["id"]
    made = c.post("/api/v1/users", params={"activate": "true"}, json={
        "profile": {"firstName": "Rita", "lastName": "Returns", "email": RITA, "login": RITA},
        "credentials": {"password": {"value": "correct-horse-battery-9"}}, "groupIds": [gid]})
    assert made.status_code == 200 and made.json()["status"] == "ACTIVE", made.text
    account = sb.astro.find_user(sb.astro_orgs["okta"].org_id, RITA)
    assert account is not None and account["active"] is True
    return str(made.json()["id"])


def astro_active(sb: Sandbox, idp: str, login: str) -> bool:
    account = sb.astro.find_user(sb.astro_orgs[idp].org_id, login)
    assert account is not None
    return bool(account["active"])


def test_okta_user_reactivated_while_astro_failed_is_reactivated_by_fix(
        sandbox: Sandbox, okta_applied: Path, okta_api: httpx.Client, capsys: pytest.CaptureFixture[str]) -> None:
    uid = okta_user_with_a_password(okta_api, sandbox)
    assert drift(okta_applied, capsys) == (0, [])
    assert okta_api.post(f"/api/v1/users/{uid}/lifecycle/deactivate").status_code == 200
    assert astro_active(sandbox, "okta", RITA) is False  # Okta deprovisioned the account (and the assignment)
    reactivated = okta_api.post(f"/api/v1/users/{uid}/lifecycle/activate", params={"sendEmail": "false"})
    assert reactivated.status_code == 200 and reactivated.json()["activationToken"]
    # The admin assigns the app again while Astro answers 500: Okta's update fails, the account stays inactive.
    org = sandbox.astro_orgs["okta"].org_id
    sandbox.astro.set_misbehaviour(org, "error_500")
    try:
        assigned = okta_api.post(f"/api/v1/apps/{app_id(sandbox)}/users",
                                 json={"id": uid, "scope": "USER", "credentials": {"userName": RITA}})
    finally:
        sandbox.astro.set_misbehaviour(org, None)
    assert assigned.status_code == 200 and assigned.json()["syncState"] == "ERROR"

    rc, findings = drift(okta_applied, capsys)
    assert rc == 1 and kinds(findings) == [("attribute_mismatch", RITA), ("idp_error", RITA)]
    active = next(f for f in findings if f["kind"] == "attribute_mismatch")
    assert (active["attribute"], active["expected"], active["actual"]) == ("active", True, False)
    assert "reactivates the account in Astro" in active["remedy"]

    out = fixed_then_clean_twice(sandbox, okta_applied, capsys)
    assert "remedy.astro.reactivate_user" in out and "remedy.okta.reassign_user" in out
    assert astro_active(sandbox, "okta", RITA) is True
    assert sandbox.okta.app_user(app_id(sandbox), RITA)["syncState"] == "SYNCHRONIZED"  # type: ignore[union-attr]


def test_okta_active_user_whose_astro_account_is_inactive_is_reactivated_in_astro(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Okta holds the user active and in sync (no error to re-assign for) but Astro has the account inactive: the
    # end state of a reactivation PATCH that never reached Astro. Updating the app user would not repair it
    # (Okta's profile PUT carries back the `active` it read); the remedy is the PATCH Okta sends to reactivate.
    login = sandbox.seed_org.people[5].email
    org = sandbox.astro_orgs["okta"].org_id
    sandbox.astro.edit_user(org, login, "active", False)
    rc, findings = drift(okta_applied, capsys)
    assert rc == 1 and kinds(findings) == [("attribute_mismatch", login)]
    sandbox.logs["astro"].clear()
    out = fixed_then_clean_twice(sandbox, okta_applied, capsys)
    assert "remedy.astro.reactivate_user" in out and "reactivated (active=true)" in out
    assert astro_active(sandbox, "okta", login) is True


def test_entra_user_enabled_again_whose_cycle_failed_is_reactivated_by_fix(
        sandbox: Sandbox, azure_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox.graph is not None
    # Someone in the assigned group only: the repair's on-demand calls stay within Entra's 5 per 10 s.
    others = {k for t in sandbox.default_team_names() for k in sandbox.seed_org.team(t).member_keys}
    login = next(p.email for p in sandbox.seed_org.people if p.key not in others)
    sp = next(s for s in sandbox.graph.service_principals() if s["displayName"] == "Astro")
    org = sandbox.astro_orgs["azure"].org_id
    sandbox.graph.update_user(login, accountEnabled=False)
    sandbox.graph.run_cycle(str(sp["id"]))  # Entra's own cycle deprovisions: PATCH active=false
    assert astro_active(sandbox, "azure", login) is False
    assert drift(azure_applied, capsys) == (0, [])
    sandbox.graph.update_user(login, accountEnabled=True)
    sandbox.astro.set_misbehaviour(org, "error_500")
    try:
        sandbox.graph.run_cycle(str(sp["id"]))  # the re-enable's update fails: Astro answers 500
    finally:
        sandbox.astro.set_misbehaviour(org, None)
    assert astro_active(sandbox, "azure", login) is False

    rc, findings = drift(azure_applied, capsys)
    # The account is inactive and out of the Team Entra took it out of; Entra's log has the failed update.
    assert rc == 1 and kinds(findings) == [("attribute_mismatch", login), ("idp_error", login)]
    active, failed = findings if findings[0]["kind"] == "attribute_mismatch" else findings[::-1]
    assert (active["attribute"], active["expected"], active["actual"]) == ("active", True, False)
    assert active["teams"] == [ASSIGNED_TEAM] and login not in team_members(sandbox, "azure", ASSIGNED_TEAM)
    assert failed["issue_kind"] == "entra.failed_export" and failed["user"] == login and "HTTP 500" in failed["detail"]

    out = fixed_then_clean_twice(sandbox, azure_applied, capsys)
    assert "remedy.azure.provision_user" in out and "remedy.manual" not in out
    assert astro_active(sandbox, "azure", login) is True
    assert login in team_members(sandbox, "azure", ASSIGNED_TEAM)
