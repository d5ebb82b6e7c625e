"""A remedy that fails halfway, through the real CLI against the sandbox with one chosen request failed
(connector.sandbox.faults.FaultRule): the output names the state left and how to undo it, the finding is not
counted as fixed, the audit trail records it, and the command exits non-zero."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import httpx
import pytest
from okta_people import directly_assigned

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.faults import FaultRule
from connector.sandbox.seed import ASSIGNED_TEAM


@pytest.fixture(autouse=True)
def actor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_ACTOR", "GITHUB_RUN_ID", "ASTRO_SCIM_AUDIT_LOG"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out + out.err


def trail_of(config: Path) -> list[dict[str, Any]]:
    path = config.parent / ".astro-scim" / "audit.log"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def only_in_assigned_team(sb: Sandbox) -> str:
    others = {k for t in sb.default_team_names() for k in sb.seed_org.team(t).member_keys}
    return next(p.email for p in sb.seed_org.people if p.key not in others and p.active)


def group_id(sb: Sandbox, name: str) -> str:
    assert sb.okta is not None
    return str(sb.okta.state.group_by_name(name)["id"])


def deleted_in_astro(sb: Sandbox) -> tuple[str, str]:
    """A user Okta grants the app only through the assigned group, deleted in Astro: drift --fix re-assigns them by
    leaving and re-joining that group. Returns the login and the group's id."""
    login = only_in_assigned_team(sb)
    sb.astro.delete_user(sb.astro_orgs["okta"].org_id, login)
    return login, group_id(sb, ASSIGNED_TEAM)


def test_reassign_through_groups_whose_rejoin_fails_says_what_is_left(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    login, gid = deleted_in_astro(sandbox)
    rule = sandbox.fail("okta", FaultRule("PUT", rf"^/api/v1/groups/{gid}/users/", times=None))
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rule.hits > 1  # the re-join, retried, and the restore
    assert rc == 1, out
    left = f"{login} was removed from group '{ASSIGNED_TEAM}' in Okta, not re-added"
    assert f"FAILED > remedy.okta.reassign_user {login}" in out and left in out
    assert f"re-add {login} to '{ASSIGNED_TEAM}' in the Okta Admin Console" in out
    assert "(0 of 1 fixed)" in out and "1 finding(s) left" in out
    assert f"not fixed: user_missing {login}: its remedy failed; it left the IdP's scope during the fix" in out
    (entry,) = [e for e in trail_of(okta_applied) if e["command"] == "drift --fix"]
    (change,) = entry["changes"]
    assert (change["key"], change["outcome"]) == (login, "failed") and left in change["message"]
    assert entry["exit_code"] == 1


def directly_assigned_and_deleted_in_astro(sb: Sandbox) -> tuple[str, str]:
    """A user Okta grants the app by a direct assignment only (no group), provisioned, then deleted in Astro:
    drift --fix re-assigns them by unassigning and assigning again. Returns the login and the app's id."""
    assert sb.okta is not None
    app_id = str(sb.okta.app_by_label("Astro")["id"])
    login = "dana.direct@acme.example"
    directly_assigned(sb, login)
    org = sb.astro_orgs["okta"].org_id
    assert login in {u["userName"] for u in sb.astro.users(org)}  # Okta provisioned the assignment
    sb.astro.delete_user(org, login)
    return login, app_id


def test_reassign_of_a_direct_assignment_puts_the_user_back(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    login, _ = directly_assigned_and_deleted_in_astro(sandbox)
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rc == 0 and f"removed and re-assigned {login}" in out, out
    assert login in {u["userName"] for u in sandbox.astro.users(sandbox.astro_orgs["okta"].org_id)}
    rc, out = run(capsys, "drift", "-c", str(okta_applied))
    assert rc == 0 and "no drift" in out, out


def test_reassign_of_a_user_assigned_directly_and_through_a_group_goes_through_the_group_too(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Assigned directly and through "Astro Users": Okta turns the DELETE into the group's assignment (scope GROUP)
    and provisions nothing anew, yet the remedy said "removed and re-assigned" (ok); the user stayed missing and
    the Team's re-push went to ERROR. The user leaves and re-joins the group, then is assigned directly again."""
    assert sandbox.okta is not None
    app = str(sandbox.okta.app_by_label("Astro")["id"])
    login = sandbox.seed_org.people[6].email
    uid = sandbox.okta.state.user(login)["id"]
    with httpx.Client(base_url=str(sandbox.okta_url), headers={"Authorization": f"SSWS {sandbox.okta_token}"}) as c:
        assert c.post(f"/api/v1/apps/{app}/users", json={"id": uid, "scope": "USER"}).status_code == 200
    org = sandbox.astro_orgs["okta"].org_id
    sandbox.astro.delete_user(org, login)
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rc == 0 and f"re-assigned {login} (left and re-joined {ASSIGNED_TEAM}" in out, out
    assert "assigned directly again" in out
    assert sandbox.astro.find_user(org, login) is not None
    assert sandbox.okta.app_user(app, login)["scope"] == "USER"
    rc, out = run(capsys, "drift", "-c", str(okta_applied))
    assert rc == 0 and "no drift" in out, out


def test_reassign_of_a_direct_assignment_whose_assign_fails_says_the_user_was_left_unassigned(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    login, app_id = directly_assigned_and_deleted_in_astro(sandbox)
    rule = sandbox.fail("okta", FaultRule("POST", rf"^/api/v1/apps/{app_id}/users$", times=None))
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rule.hits > 1 and rc == 1, out  # the assign, retried, then once more after a look
    left = f"{login} was removed from the Okta app 'Astro' and not re-assigned"
    assert left in out and f"assign {login} to 'Astro' again in the Okta Admin Console" in out, out
    assert "(0 of 1 fixed)" in out and f"not fixed: user_missing {login}: its remedy failed" in out, out
    (entry,) = [e for e in trail_of(okta_applied) if e["command"] == "drift --fix"]
    (change,) = entry["changes"]
    assert (change["key"], change["outcome"]) == (login, "failed") and left in change["message"]


def test_a_finding_the_fix_did_not_fix_is_in_the_json_with_why(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_json_schemas import run_json

    login, gid = deleted_in_astro(sandbox)
    sandbox.fail("okta", FaultRule("PUT", rf"^/api/v1/groups/{gid}/users/", times=None))
    rc, doc = run_json(capsys, "drift", "drift", "-c", str(okta_applied), "--fix", "--yes")
    (okta,) = doc["idps"]
    (entry,) = okta["not_fixed"]
    assert rc == 1 and okta["fixed"] == [] and not okta["remedies"][0]["ok"]
    assert (entry["finding"]["kind"], entry["finding"]["subject"]) == ("user_missing", login)
    assert "its remedy failed" in entry["why"] and "left the IdP's scope" in entry["why"]


def drop_a_member(sb: Sandbox) -> str:
    """A member of a pushed Team dropped in Astro: the group needs a re-push. Returns the Team."""
    team = sb.default_team_names()[0]
    seed = sb.seed_org
    victim = sorted(seed.person(k).email for k in seed.team(team).member_keys if seed.person(k).active)[0]
    sb.astro.drop_membership(sb.astro_orgs["okta"].org_id, team, victim)
    return team


def fail_reactivation(sb: Sandbox) -> FaultRule:
    return sb.fail("okta", FaultRule("PATCH", r"/group-push/mappings/", body=r'"status":\s*"ACTIVE"', times=None))


def mapping_status(sb: Sandbox, team: str) -> str:
    assert sb.okta is not None
    app_id = str(sb.okta.app_by_label("Astro")["id"])
    group = sb.okta.state.group_by_name(team)
    (mapping,) = [m for m in sb.okta.state.push[app_id].values() if m["sourceGroupId"] == group["id"]]
    return str(mapping["status"])


def test_push_groups_whose_reactivation_fails_says_the_mapping_was_left_inactive(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team = drop_a_member(sandbox)
    rule = fail_reactivation(sandbox)
    rc, out = run(capsys, "push-groups", "-c", str(okta_applied), team, "--yes")
    assert rule.hits > 1 and mapping_status(sandbox, team) == "INACTIVE"
    left = f"the push mapping for '{team}' was left INACTIVE"
    assert rc == 3, out
    # The command as a shell takes it: the group's name quoted ("Data Engineering" has a space).
    command = f"astro-scim push-groups {shlex.quote(team)} --yes"
    assert " " in team and f"{left}: re-activate it in the Admin Console or with: {command}" in out
    assert f"hint: run: {command}" in out
    entry = [e for e in trail_of(okta_applied) if e["command"] == "push-groups"][-1]
    (change,) = entry["changes"]
    assert (change["action"], change["key"], change["outcome"]) == ("repush", team, "failed")
    assert left in change["message"] and entry["exit_code"] == 3
    # What the hint says undoes it.
    rule.times = rule.hits
    rc, out = run(capsys, "push-groups", "-c", str(okta_applied), team, "--yes")
    assert rc == 0, out
    assert mapping_status(sandbox, team) == "ACTIVE"


def test_a_re_push_whose_writes_all_fail_does_not_claim_the_mapping_was_left_inactive(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every PATCH of the mapping answers 500 before Okta acts: the mapping never left ERROR. It said "was left
    INACTIVE: re-activate it", a state it had assumed, not read back. Now it reads it: a failed request, the
    mapping still ERROR, exit 3; and a mapping that did go INACTIVE is still reported as such (test above)."""
    team = sandbox.default_team_names()[0]
    assert sandbox.okta is not None
    app_id = str(sandbox.okta.app_by_label("Astro")["id"])
    sandbox.okta.set_push_error(app_id, team, "Error while pushing: 503")
    rule = sandbox.fail("okta", FaultRule("PATCH", r"/group-push/mappings/", status=500, times=None))
    rc, out = run(capsys, "push-groups", "-c", str(okta_applied), team, "--yes")
    assert rule.hits > 1 and mapping_status(sandbox, team) == "ERROR"
    assert rc == 3, out
    assert "left INACTIVE" not in out and "the push mapping is still ERROR" in out
    entry = [e for e in trail_of(okta_applied) if e["command"] == "push-groups"][-1]
    (change,) = entry["changes"]
    assert change["outcome"] == "failed" and "still ERROR" in change["message"]


def test_drift_fix_whose_repush_leaves_the_mapping_inactive_does_not_count_it_fixed(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team = drop_a_member(sandbox)
    rule = fail_reactivation(sandbox)
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rule.hits > 1 and mapping_status(sandbox, team) == "INACTIVE"
    assert rc == 1, out
    left = f"the push mapping for '{team}' was left INACTIVE"
    assert f"FAILED > remedy.okta.repush_group {team}" in out and left in out
    assert "(0 of 1 fixed)" in out
    assert f"not fixed: membership_missing {team}: its remedy failed; it is now group_not_provisioned" in out
    (entry,) = [e for e in trail_of(okta_applied) if e["command"] == "drift --fix"]
    (change,) = entry["changes"]
    assert (change["key"], change["outcome"]) == (team, "failed") and left in change["message"]
    assert entry["exit_code"] == 1


def test_reassign_whose_leave_answer_is_lost_still_rejoins_the_group(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    login, gid = deleted_in_astro(sandbox)
    # Okta removes the member, then the connection drops before its answer: the tool must not assume either way.
    rule = sandbox.fail("okta", FaultRule("DELETE", rf"^/api/v1/groups/{gid}/users/", status=0, after=True))
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rule.hits == 1
    assert rc == 0, out
    assert "(1 of 1 fixed)" in out and "0 finding(s) left" in out
    assert sandbox.okta is not None and gid in sandbox.okta.state.user_groups[
        str(sandbox.okta.state.user(login)["id"])]


def test_one_groups_failed_repush_neither_cancels_the_others_nor_strands_its_mapping(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two groups out of sync; the first's INACTIVE PATCH keeps failing (its answer lost after Okta acted). The
    other group is still re-pushed and verified; the failing one is made ACTIVE again, reported failed (exit 3),
    and both are in the audit trail (one group's error cancelled the rest: a mapping could stay INACTIVE)."""
    first, second = sandbox.default_team_names()[:2]
    seed, org = sandbox.seed_org, sandbox.astro_orgs["okta"]
    for team in (first, second):
        victim = sorted(seed.person(k).email for k in seed.team(team).member_keys if seed.person(k).active)[0]
        sandbox.astro.drop_membership(org.org_id, team, victim)
    assert sandbox.okta is not None
    app_id = str(sandbox.okta.app_by_label("Astro")["id"])
    gid = group_id(sandbox, first)
    (mapping,) = [m for m in sandbox.okta.state.push[app_id].values() if m["sourceGroupId"] == gid]
    rule = sandbox.fail("okta", FaultRule("PATCH", rf"/group-push/mappings/{mapping['id']}$",
                                          body=r'"status":\s*"INACTIVE"', times=None, after=True))
    rc, out = run(capsys, "push-groups", "-c", str(okta_applied), first, second, "--yes")
    assert rule.hits >= 1 and rc == 3, out
    assert mapping_status(sandbox, first) == "ACTIVE" and mapping_status(sandbox, second) == "ACTIVE"
    assert f"{second}: re-push" in out and "verified in Astro" in out
    assert f"{first}: re-push" in out and "failed: okta PATCH" in out and "left INACTIVE" not in out
    entry = [e for e in trail_of(okta_applied) if e["command"] == "push-groups"][-1]
    outcomes = {c["key"]: c["outcome"] for c in entry["changes"]}
    assert outcomes[first] == "failed" and outcomes[second] != "failed", entry


def test_a_relink_whose_new_mapping_cannot_be_made_says_the_mapping_is_gone(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Team deleted in Astro is re-made by deleting the group's push mapping and pushing the group again; when
    the new mapping cannot be created, the remedy fails saying the mapping is gone and how to push the group."""
    team = sandbox.default_team_names()[0]
    org = sandbox.astro_orgs["okta"]
    group = sandbox.astro.find_group(org.org_id, team)
    assert group is not None
    httpx.delete(f"{org.scim_url}/Groups/{group['id']}", headers={"Authorization": f"Bearer {org.token}"}
                 ).raise_for_status()
    rule = sandbox.fail("okta", FaultRule("POST", r"/group-push/mappings$", times=None))
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rule.hits >= 1 and rc == 1, out
    assert f"the push mapping for '{team}' was deleted and not re-created" in out
    assert f"astro-scim push-groups {shlex.quote(team)} --yes" in out and "(0 of 1 fixed)" in out


def test_a_change_left_halfway_is_printed_with_its_undo_once(capsys: pytest.CaptureFixture[str]) -> None:
    from connector import output
    from connector.errors import LeftHalfway, RemoteError

    cause = RemoteError("server error", service="okta", endpoint="PUT /api/v1/groups/g1/users/u1", status=500)
    exc = LeftHalfway("ada was removed from group 'Astro Users' in Okta, not re-added",
                      "re-add ada to 'Astro Users' in the Okta Admin Console", cause)
    output.error(str(exc), exc.hint)
    err = capsys.readouterr().err
    assert err.count("re-add ada to 'Astro Users'") == 1 and "PUT /api/v1/groups/g1/users/u1" in err, err


def test_users_repaired_side_by_side_are_reported_in_the_plans_order_and_one_failure_stops_no_other(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """drift --fix re-assigns the users missing in Astro side by side (one client, a few at a time): each outcome
    is printed in the plan's order whatever order they end in, and a user whose leave Okta refuses fails alone."""
    others = {k for t in sandbox.default_team_names() for k in sandbox.seed_org.team(t).member_keys}
    through_group = [p.email for p in sandbox.seed_org.people if p.key not in others and p.active]
    direct, _ = directly_assigned_and_deleted_in_astro(sandbox)
    logins = sorted([direct, *through_group])
    assert len(logins) == 3 and logins[1] != direct  # the one refused leaves a group
    org_id = sandbox.astro_orgs["okta"].org_id
    for login in through_group:
        sandbox.astro.delete_user(org_id, login)
    assert sandbox.okta is not None
    refused = str(sandbox.okta.user_by_login(logins[1])["id"])
    sandbox.fail("okta", FaultRule("DELETE", rf"^/api/v1/groups/[^/]+/users/{refused}$", status=403, times=None))
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rc == 1, out
    lines = [line for line in out.splitlines() if "remedy.okta.reassign_user" in line and ">" in line]
    done = [line for line in lines if line.lstrip().startswith(("done", "FAILED"))]
    assert [next(login for login in logins if login in line) for line in done] == logins, out
    assert done[1].lstrip().startswith("FAILED") and all(d.lstrip().startswith("done") for d in done[::2]), out
    assert "(2 of 3 fixed)" in out and "no error body (HTTP 403)" in done[1], out
    users = {u["userName"] for u in sandbox.astro.users(org_id)}
    assert logins[0] in users and logins[2] in users and logins[1] not in users
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--format", "json")
    findings = [f for r in json.loads(out[:out.rindex("}") + 1])["idps"] for f in r["findings"]]
    assert rc == 1 and [(f["kind"], f["subject"]) for f in findings] == [("user_missing", logins[1])], out


@pytest.mark.parametrize("write", ["typed SDK call", "raw request"])
def test_an_okta_error_answer_without_a_body_is_an_error_not_a_success(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str], write: str
) -> None:
    """The okta SDK builds a typed call's error from the answer's body: an error status with an empty body (a
    proxy's 403) came back as no error, and a refused group leave passed for done (connector/providers/okta/
    client.py, call_once). Both ways the tool writes to Okta are held to it: a typed SDK call (leaving a group,
    for a re-assign) and a raw request (updating an app user, for an attribute; the SDK's executor reports that
    one by its status itself)."""
    assert sandbox.okta is not None
    if write == "typed SDK call":
        login, gid = deleted_in_astro(sandbox)
        uid = str(sandbox.okta.user_by_login(login)["id"])
        rule = FaultRule("DELETE", rf"^/api/v1/groups/{gid}/users/{uid}$", status=403, times=None)
        remedy = "reassign_user"
    else:
        login = only_in_assigned_team(sandbox)
        sandbox.astro.edit_user(sandbox.astro_orgs["okta"].org_id, login, "name.givenName", "Drifted")
        uid = str(sandbox.okta.user_by_login(login)["id"])
        rule = FaultRule("POST", rf"^/api/v1/apps/[^/]+/users/{uid}$", status=403, times=None)
        remedy = "update_user"
    sandbox.fail("okta", rule)
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rule.hits >= 1 and rc == 1, out
    assert f"FAILED > remedy.okta.{remedy} {login}" in out and "(HTTP 403" in out, out
    assert "(0 of 1 fixed)" in out, out


def test_outcomes_of_users_repaired_side_by_side_are_handed_on_in_order_and_none_is_lost_on_an_interruption(
) -> None:
    """connector.audit.remedies._InOrder: an outcome that ends before an earlier change's waits for it; on an
    interruption (the batch raising) what has ended is still handed on; a batch that could not start fails each
    change not yet ended."""
    from connector.audit.remedies import _InOrder
    from connector.errors import ConnectorError
    from connector.plan.model import Action, Change

    changes = [Change(Action.RUN, "remedy.okta.reassign_user", f"u{i}") for i in range(4)]
    got: list[tuple[str, bool, str]] = []
    in_order = _InOrder(changes, lambda o: got.append((o.change.key, o.ok, o.message)))
    in_order.ended(2, "done 2")
    in_order.ended(1, ConnectorError("refused"))
    assert got == []  # u0 has not ended
    in_order.ended(0, "done 0")
    assert got == [("u0", True, "done 0"), ("u1", False, "refused"), ("u2", True, "done 2")]
    got.clear()
    interrupted = _InOrder(changes, lambda o: got.append((o.change.key, o.ok, o.message)))
    interrupted.ended(3, "done 3")
    interrupted.ended(1, "done 1")
    interrupted.flush()
    assert got == [("u1", True, "done 1"), ("u3", True, "done 3")]
    got.clear()
    failed = _InOrder(changes, lambda o: got.append((o.change.key, o.ok, o.message)))
    failed.ended(0, "done 0")
    failed.fail_rest("no client")
    assert got == [("u0", True, "done 0"), *((f"u{i}", False, "no client") for i in (1, 2, 3))]
