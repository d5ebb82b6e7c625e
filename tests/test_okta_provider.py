"""The Okta provider against the sandbox: real HTTP on loopback, the official okta SDK, the real CLI."""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from applied import applied
from okta_people import directly_assigned

from connector.cli import main
from connector.config.load import load_config
from connector.errors import NotFound
from connector.providers.okta.provider import OktaProvider
from connector.sandbox.core import Sandbox
from connector.sandbox.faults import FaultConfig
from connector.sandbox.seed import ASSIGNED_TEAM
from connector.support.clock import FakeClock

APP = "Astro"


# -- helpers --------------------------------------------------------------------------------------------------

def app_id(sb: Sandbox) -> str:
    return str(sb.okta.app_by_label(APP)["id"])


def enable_provisioning(sb: Sandbox) -> None:
    """What the admin does in the Admin Console after reading the runbook."""
    org = sb.astro_orgs["okta"]
    sb.okta.enable_provisioning(app_id(sb), org.scim_url, org.token)


def okta_api(sb: Sandbox, method: str, path: str, body: Any = None, **params: str) -> Any:
    """An Okta admin changing something behind the tool's back (setup for drift tests)."""
    resp = httpx.request(method, f"{sb.okta_url}{path}", json=body, params=params,
                         headers={"Authorization": f"SSWS {sb.okta_token}"})
    assert resp.status_code < 300, resp.text
    return resp.json() if resp.content else None


def plan_json(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["plan", "--idp", "okta", "-c", str(config), "--format", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)["plans"][0]["changes"]


def kinds(changes: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["action"], c["resource"], c["key"]) for c in changes]


def configured(sb: Sandbox, config: Path) -> None:
    """Provisioning enabled and `apply --yes` done: the state every drift test starts from (tests/applied.py:
    restored after the first real apply; test_end_to_end_... runs its own)."""
    applied(sb, config, "okta", console_step=True, only=True)


def provider(config: Path, **kw: Any) -> OktaProvider:
    return OktaProvider(load_config(config), **kw)


# -- plan on a fresh org ---------------------------------------------------------------------------------------

def test_plan_on_fresh_org_lists_every_change_and_writes_nothing(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changes = plan_json(sandbox_config, capsys)
    teams = sandbox.default_team_names()
    assert kinds(changes) == [
        ("manual", "okta.provisioning", APP),
        ("create", "okta.feature", "USER_PROVISIONING"),
        # Okta's defaults already map givenName, familyName and email as the seed page wants.
        ("create", "okta.profile_mapping", "displayName"),
        ("create", "okta.profile_mapping", "profileUrl"),
        ("create", "okta.group_assignment", ASSIGNED_TEAM),
        *[("create", "okta.push_mapping", t) for t in teams],
    ]
    assert sandbox.logs["okta"].writes() == []
    assert sandbox.logs["astro"].writes() == []


def test_plan_text_shows_the_runbook_with_exact_values(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--idp", "okta", "-c", str(sandbox_config), "--exit-code"]) == 1
    out = capsys.readouterr().out
    org = sandbox.astro_orgs["okta"]
    assert "Configure API integration" in out and f"Organization ID: {org.org_id}" in out
    assert "the token in file " in out and org.token not in out
    assert "connections API answers status UNKNOWN" in out


def test_manual_integration_runbook_has_scim_connector_values(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", okta_integration="manual",
                                  okta_app_label="Astro SCIM (custom)")
    changes = plan_json(config, capsys)
    assert changes[0]["resource"] == "okta.provisioning"
    assert main(["plan", "--idp", "okta", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"SCIM connector base URL: {sandbox.astro_orgs['okta'].scim_url}" in out
    assert "Authentication Mode: HTTP Header" in out


# -- apply: the manual step, then everything else ----------------------------------------------------------

def test_apply_stops_at_the_manual_step_then_completes_and_converges(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 1
    captured = capsys.readouterr()
    assert "Configure API integration" in captured.out and "provisioning is not enabled" in captured.err
    # the steps are printed with the plan, before the error: the error must not send the reader "below"
    assert "listed in the plan above" in captured.err
    assert captured.out.index("Configure API integration") < captured.out.index("before a manual step")
    assert sandbox.logs["okta"].writes() == []  # nothing before the manual step, nothing after it

    enable_provisioning(sandbox)
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "done + okta.push_mapping" in out and "applied 6 change(s)" in out

    assert plan_json(sandbox_config, capsys) == []
    sandbox.logs["okta"].clear()
    assert main(["plan", "--idp", "okta", "-c", str(sandbox_config), "--exit-code"]) == 0
    assert sandbox.logs["okta"].writes() == []


def test_end_to_end_astro_holds_users_with_mapped_attributes_and_teams(
    sandbox: Sandbox, sandbox_config: Path
) -> None:
    enable_provisioning(sandbox)
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 0  # this apply, not a snapshot
    org_id = sandbox.astro_orgs["okta"].org_id
    seed = sandbox.seed_org
    people = {p.email: p for p in seed.people if p.active}
    users = {u["userName"]: u for u in sandbox.astro.users(org_id)}
    assert set(users) == set(people)
    for email, person in people.items():
        u = users[email]
        assert u["name"]["givenName"] == person.first_name and u["name"]["familyName"] == person.last_name
        assert u["displayName"] == person.display_name
        assert u["profileUrl"].endswith(f"/people/{person.key}")
        assert [e["value"] for e in u["emails"]] == [email]
        assert u["active"] is True
    by_id = {u["id"]: name for name, u in users.items()}
    for team_name in sandbox.default_team_names():
        team = sandbox.astro.find_group(org_id, team_name)
        assert team is not None, team_name
        members = {by_id[m["value"]] for m in team.get("members") or []}
        expected = {seed.person(k).email for k in seed.team(team_name).member_keys if seed.person(k).active}
        assert members == expected


def test_apply_under_rate_limits_and_server_errors_converges_without_duplicates(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.set_faults(FaultConfig(rate_429=0.2, rate_5xx=0.05))
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 1  # the manual step
    enable_provisioning(sandbox)
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 0
    assert plan_json(sandbox_config, capsys) == []
    statuses = Counter(e.status for e in sandbox.logs["okta"].entries)
    assert statuses[429] > 0 and statuses[503] > 0  # the faults really happened
    sandbox.set_faults(FaultConfig())
    org_id = sandbox.astro_orgs["okta"].org_id
    names = [u["userName"] for u in sandbox.astro.users(org_id)]
    teams = [g["displayName"] for g in sandbox.astro.groups(org_id)]
    assert len(names) == len(set(names)) == sum(1 for p in sandbox.seed_org.people if p.active)
    assert sorted(teams) == sorted(sandbox.default_team_names())
    sources = [m["sourceGroupId"] for m in okta_api(sandbox, "GET", f"/api/v1/apps/{app_id(sandbox)}/group-push/mappings")]
    assert len(sources) == len(set(sources)) == 2


def test_integration_pointing_to_another_astro_org_is_a_manual_change(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = sandbox.astro_orgs["azure"]
    sandbox.okta.enable_provisioning(app_id(sandbox), wrong.scim_url, wrong.token)
    changes = plan_json(sandbox_config, capsys)
    right = sandbox.astro_orgs["okta"].org_id
    assert changes[0]["action"] == "manual" and changes[0]["before"] == {"organizationId": wrong.org_id}
    assert changes[0]["after"] == {"organizationId": right}
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 1
    assert f"Organization ID: {right}" in capsys.readouterr().out
    assert sandbox.logs["okta"].writes() == []
    assert main(["test-connection", "--idp", "okta", "-c", str(sandbox_config)]) == 1
    assert f"FAIL Astro organization: the app's API integration uses {wrong.org_id}" in capsys.readouterr().out
    enable_provisioning(sandbox)  # the admin fixes it in the console
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 0
    assert plan_json(sandbox_config, capsys) == []


# -- one resource kind at a time: drift in Okta -> one change -> apply -> empty plan -------------------------

def _converges(sb: Sandbox, config: Path, capsys: pytest.CaptureFixture[str], expected: list[tuple[str, str, str]],
               *extra: str) -> None:
    assert kinds(plan_json(config, capsys, *extra)) == expected
    assert main(["apply", "--idp", "okta", "-c", str(config), "--yes", *extra]) == 0
    assert plan_json(config, capsys, *extra) == []


def test_feature_drift_is_planned_and_fixed(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, sandbox_config)
    okta_api(sandbox, "PUT", f"/api/v1/apps/{app_id(sandbox)}/features/USER_PROVISIONING",
             {"update": {"profile": {"status": "DISABLED"}}})
    changes = plan_json(sandbox_config, capsys)
    assert changes[0]["before"] == {"update.profile": "DISABLED"}
    _converges(sandbox, sandbox_config, capsys, [("update", "okta.feature", "USER_PROVISIONING")])


def test_the_feature_update_reads_as_the_capabilities_it_turns_on_or_off(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every user sees this line once the manual step is done (the app's To App features still off): it names
    the capabilities as the console does, old -> new, never the raw dicts; the JSON plan keeps its data."""
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 1  # stops at the manual step
    enable_provisioning(sandbox)  # done in the console: the To App features are all still off
    changes = plan_json(sandbox_config, capsys)
    feature = next(c for c in changes if c["resource"] == "okta.feature")
    assert feature["action"] == "update" and feature["after"] == {
        "create.lifecycleCreate": "ENABLED", "update.profile": "ENABLED", "update.lifecycleDeactivate": "ENABLED"}
    capsys.readouterr()
    assert main(["plan", "--idp", "okta", "-c", str(sandbox_config)]) == 0
    (line,) = [ln.strip() for ln in capsys.readouterr().out.splitlines() if "okta.feature" in ln]
    assert line == ("~ okta.feature USER_PROVISIONING: turn on Create Users (was DISABLED), Update User Attributes "
                    "(was DISABLED), Deactivate Users (was DISABLED)")
    okta_api(sandbox, "PUT", f"/api/v1/apps/{app_id(sandbox)}/features/USER_PROVISIONING",
             {"create": {"lifecycleCreate": {"status": "ENABLED"}},
              "update": {"password": {"status": "ENABLED", "seed": "RANDOM", "change": "CHANGE"}}})
    capsys.readouterr()
    main(["plan", "--idp", "okta", "-c", str(sandbox_config)])
    (line,) = [ln.strip() for ln in capsys.readouterr().out.splitlines() if "okta.feature" in ln]
    assert line == ("~ okta.feature USER_PROVISIONING: turn on Update User Attributes (was DISABLED), Deactivate "
                    "Users (was DISABLED); turn off Sync Password (was ENABLED)")


def test_profile_mapping_drift_is_planned_and_fixed(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, sandbox_config)
    mapping = okta_api(sandbox, "GET", "/api/v1/mappings", targetId=app_id(sandbox))
    to_app = next(m for m in mapping if m["source"]["type"] == "user")
    okta_api(sandbox, "POST", f"/api/v1/mappings/{to_app['id']}",
             {"properties": {"displayName": {"expression": "user.login", "pushStatus": "DONT_PUSH"},
                             "title": {"expression": "user.title", "pushStatus": "PUSH"}}})
    _converges(sandbox, sandbox_config, capsys, [("update", "okta.profile_mapping", "displayName")])
    props = okta_api(sandbox, "GET", f"/api/v1/mappings/{to_app['id']}")["properties"]
    assert props["title"]["expression"] == "user.title"  # not ours: left alone


def test_group_assignment_drift_is_planned_and_fixed(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, sandbox_config)
    gid = sandbox.okta.group_by_name(ASSIGNED_TEAM)["id"]
    okta_api(sandbox, "DELETE", f"/api/v1/apps/{app_id(sandbox)}/groups/{gid}")
    _converges(sandbox, sandbox_config, capsys, [("create", "okta.group_assignment", ASSIGNED_TEAM)])


def test_inactive_push_mapping_is_reactivated(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, sandbox_config)
    team = sandbox.default_team_names()[0]
    mapping = sandbox.okta.push_mapping(app_id(sandbox), team)
    okta_api(sandbox, "PATCH", f"/api/v1/apps/{app_id(sandbox)}/group-push/mappings/{mapping['id']}",
             {"status": "INACTIVE"})
    _converges(sandbox, sandbox_config, capsys, [("update", "okta.push_mapping", team)])


def test_push_mapping_outside_config_is_deleted_only_with_prune(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, sandbox_config)
    extra = [t.name for t in sandbox.seed_org.teams if t.name not in (*sandbox.default_team_names(), ASSIGNED_TEAM)]
    gid = sandbox.okta.group_by_name(extra[0])["id"]
    okta_api(sandbox, "POST", f"/api/v1/apps/{app_id(sandbox)}/group-push/mappings",
             {"sourceGroupId": gid, "targetGroupName": extra[0]})
    assert plan_json(sandbox_config, capsys) == []
    # Over safety.max_delete_count (0 here): plan says apply will refuse it, apply refuses it without --force.
    import yaml

    data = yaml.safe_load(sandbox_config.read_text())
    strict = sandbox_config.with_name("strict.yaml")
    strict.write_text(yaml.safe_dump({**data, "safety": {"max_delete_count": 0}}))
    capsys.readouterr()
    assert main(["plan", "--idp", "okta", "-c", str(strict), "--prune"]) == 0
    assert "over the safety limit of 0 (safety.max_delete_count): 'astro-scim apply' refuses it without --force" \
        in capsys.readouterr().err
    from test_json_schemas import run_json

    rc, doc = run_json(capsys, "plan", "plan", "--idp", "okta", "-c", str(strict), "--prune")  # schema-checked
    (okta,) = doc["plans"]
    assert rc == 0 and "over the safety limit of 0" in okta["refused_without_force"]
    assert main(["apply", "--idp", "okta", "-c", str(strict), "--yes", "--prune"]) == 2
    assert sandbox.okta.push_mapping(app_id(sandbox), extra[0]) is not None
    # Within the default limit (25): one removal of three mappings is not refused (a fraction would refuse it).
    _converges(sandbox, sandbox_config, capsys, [("delete", "okta.push_mapping", extra[0])], "--prune")
    assert sandbox.okta.push_mapping(app_id(sandbox), extra[0]) is None
    assert sandbox.astro.find_group(sandbox.astro_orgs["okta"].org_id, extra[0]) is not None  # Team kept


# -- errors the user sees -------------------------------------------------------------------------------------

def test_bad_token_exits_3_naming_the_org_and_okta_code(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sandbox_config.parent / "okta.token").write_text("not-the-right-token-at-all\n")
    assert main(["plan", "--idp", "okta", "-c", str(sandbox_config)]) == 3
    err = capsys.readouterr().err
    assert f"Okta {sandbox.okta_url} refused the API token" in err and "E0000011" in err
    assert "not-the-right-token-at-all" not in err


def test_app_not_found_exits_2_with_candidates(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", okta_app_label="Astor")
    assert main(["plan", "--idp", "okta", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "no app labelled 'Astor'" in err and "'Astro'" in err
    assert f"{config}:" in err  # file:line of okta.app.label


def test_unknown_group_exits_2_with_candidates_and_location(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", okta_assign_groups=["Astro User"])
    assert main(["plan", "--idp", "okta", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "no group named 'Astro User'" in err and f"'{ASSIGNED_TEAM}'" in err


def test_secrets_never_reach_output_or_logs(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [sandbox.okta_token, sandbox.astro_orgs["okta"].token]
    runs = [
        ["-v", "test-connection", "--idp", "okta", "-c", str(sandbox_config)],
        ["-v", "plan", "--idp", "okta", "-c", str(sandbox_config)],
        ["-v", "apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"],
        ["-v", "status", "--idp", "okta", "-c", str(sandbox_config)],
    ]
    for argv in runs:
        main(argv)
        if argv[1] == "apply":
            enable_provisioning(sandbox)
            main(argv)
    (sandbox_config.parent / "okta.token").write_text(secrets[0][::-1] + "\n")  # a wrong token: error paths
    main(["-v", "plan", "--idp", "okta", "-c", str(sandbox_config)])
    captured = capsys.readouterr()
    assert "okta GET /api/v1/apps" in caplog.text  # -v really logged the HTTP calls
    for secret in [*secrets, secrets[0][::-1]]:
        assert secret not in captured.out and secret not in captured.err and secret not in caplog.text


# -- test-connection, status -----------------------------------------------------------------------------------

def test_test_connection_reports_each_check(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["test-connection", "--idp", "okta", "-c", str(sandbox_config)]) == 0
    out = capsys.readouterr().out
    assert "ok   Okta API token" in out and "admin@" in out
    assert f"ok   Okta app: {APP}" in out
    assert "info Okta provisioning: not enabled yet" in out
    assert "ok   Astro SCIM token" in out
    log = sandbox.logs["astro"].entries
    assert any(e.path.endswith("/ServiceProviderConfig") for e in log)
    assert any("astro-scim-connection-test" in e.query for e in log)


def test_test_connection_fails_on_a_bad_astro_token(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sandbox_config.parent / "astro-okta.token").write_text("wrong-astro-token-value\n")
    assert main(["test-connection", "--idp", "okta", "-c", str(sandbox_config)]) == 1
    out = capsys.readouterr().out
    assert "FAIL Astro SCIM token" in out and "refused the Organization API token" in out


def test_status_reports_app_user_and_push_errors(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, sandbox_config)
    capsys.readouterr()
    assert main(["status", "--idp", "okta", "-c", str(sandbox_config)]) == 0
    person = sandbox.seed_org.people[0].email
    team = sandbox.default_team_names()[0]
    sandbox.okta.set_app_user_error(app_id(sandbox), person, "SCIM 409: userName already exists")
    sandbox.okta.set_push_error(app_id(sandbox), team, "Failed on 2024-01-01: unable to push")
    capsys.readouterr()
    assert main(["status", "--idp", "okta", "-c", str(sandbox_config)]) == 1
    out = capsys.readouterr().out
    assert "FAIL app users in ERROR: 1:" in out and person in out
    assert f"FAIL push mappings in ERROR: {team}: Failed on 2024-01-01" in out


# -- drift support ---------------------------------------------------------------------------------------------

def test_read_view_holds_users_expected_values_and_groups(sandbox: Sandbox, sandbox_config: Path) -> None:
    configured(sandbox, sandbox_config)
    silent = next(p for p in sandbox.seed_org.people if p.active).email
    view = provider(sandbox_config).read_view()
    users = {u.user_name: u for u in view.users}
    person = next(p for p in sandbox.seed_org.people if p.email == silent)
    u = users[silent]
    assert u.active and u.scim_id and u.error is None
    assert u.expected["name.givenName"] == person.first_name
    assert u.expected['emails[type eq "work"].value'] == silent
    assert u.expected["userName"] == silent
    team = sandbox.default_team_names()[0]
    group = next(g for g in view.groups if g.name == team)
    seed_team = sandbox.seed_org.team(team)
    assert group.members == {sandbox.seed_org.person(k).email.lower() for k in seed_team.member_keys
                             if sandbox.seed_org.person(k).active}


def test_reassign_users_brings_back_users_deleted_in_astro_side_by_side(sandbox: Sandbox,
                                                                         sandbox_config: Path) -> None:
    """Several users at once on one client: each one's result in its place (an unknown login's error does not stop
    the others), every `done` call made, and what all of them read alike (the app's groups) read once."""
    configured(sandbox, sandbox_config)
    org_id = sandbox.astro_orgs["okta"].org_id
    logins = [p.email for p in sandbox.seed_org.people if p.active][:4]
    for login in logins:
        sandbox.astro.delete_user(org_id, login)
        assert sandbox.astro.find_user(org_id, login) is None
    sandbox.logs["okta"].clear()
    ended: list[int] = []
    asked = [*logins[:2], "nobody@acme.example", *logins[2:]]
    results = provider(sandbox_config).reassign_users(asked, lambda i, _r: ended.append(i))
    assert sorted(ended) == list(range(len(asked)))
    assert isinstance(results[2], NotFound) and "nobody@acme.example" in str(results[2])
    for login, result in zip(asked, results, strict=True):
        if login in logins:
            assert isinstance(result, str) and "re-assigned" in result and login in result
            user = sandbox.astro.find_user(org_id, login)
            assert user is not None and user["active"] is True
            # Back in the groups they left and rejoined, in Okta and as a Team member in Astro.
            assert sandbox.okta.app_user(app_id(sandbox), login)["scope"] == "GROUP"
    assert sandbox.logs["okta"].count("GET", f"/api/v1/apps/{app_id(sandbox)}/groups") == 1


def _group_only_user(sb: Sandbox) -> tuple[str, str, str]:
    """An active user who holds the app only through the assigned group: (login, user id, group id)."""
    others = {k for t in sb.default_team_names() for k in sb.seed_org.team(t).member_keys}
    login = next(p.email for p in sb.seed_org.people if p.key not in others and p.active)
    return login, str(sb.okta.user_by_login(login)["id"]), str(sb.okta.state.group_by_name(ASSIGNED_TEAM)["id"])


@pytest.mark.parametrize("assigned", ["through a group", "directly"])
def test_a_reassign_interrupted_while_putting_the_user_back_puts_the_user_back(
        sandbox: Sandbox, sandbox_config: Path, assigned: str) -> None:
    """Ctrl-C cancels every repair of a batch. One cancelled while its re-join (or re-assign) is on the wire (the
    server holds that request, then answers it 503 without acting) makes it once more before the interruption
    goes on: the user is never left without the app."""
    import asyncio
    import threading

    from connector.providers.okta.client import OktaClient

    configured(sandbox, sandbox_config)
    if assigned == "directly":
        login = "dana.direct@acme.example"
        uid = directly_assigned(sandbox, login)
        method, path = "POST", f"/api/v1/apps/{app_id(sandbox)}/users"
    else:
        login, uid, gid = _group_only_user(sandbox)
        method, path = "PUT", f"/api/v1/groups/{gid}/users/{uid}"
    middleware = sandbox._middleware["okta"]
    inner = middleware.app
    seen, answer_it = threading.Event(), threading.Event()
    held: list[str] = []

    def holding(environ: dict[str, Any], start_response: Any) -> Any:
        if (environ["REQUEST_METHOD"], environ["PATH_INFO"]) == (method, path) and not held:
            held.append("the first")
            seen.set()
            answer_it.wait(10)
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b"{}"]
        return inner(environ, start_response)

    remedies = provider(sandbox_config)

    async def interrupted() -> BaseException | None:
        async with OktaClient(remedies.okta) as client:
            task = asyncio.ensure_future(remedies._reassign_user(client, login, {}))
            assert await asyncio.to_thread(seen.wait, 10)
            task.cancel()
            answer_it.set()
            try:
                await task
            except BaseException as exc:  # noqa: BLE001 - what the interruption became
                return exc
            return None

    middleware.app = holding
    try:
        ended = asyncio.run(interrupted())
    finally:
        middleware.app = inner
    assert isinstance(ended, asyncio.CancelledError)
    assert held == ["the first"]
    app_user = sandbox.okta.app_user(app_id(sandbox), login)
    assert app_user is not None  # assigned again
    if assigned != "directly":
        assert uid in sandbox.okta.state.members[gid]  # joined again


def test_an_unexpected_error_in_one_repair_is_raised_once_every_other_user_has_ended(
        sandbox: Sandbox, sandbox_config: Path) -> None:
    """A failure that is not the IdP's (here the report callback raising, as a closed pipe would) must not close
    the client under the other repairs of the batch: each still ends (re-joined), then the error is raised."""
    configured(sandbox, sandbox_config)
    org_id = sandbox.astro_orgs["okta"].org_id
    logins = [p.email for p in sandbox.seed_org.people if p.active][:4]
    for login in logins:
        sandbox.astro.delete_user(org_id, login)
    calls: list[int] = []

    def done(i: int, _result: object) -> None:
        calls.append(i)
        if len(calls) == 1:
            raise BrokenPipeError("the report's pipe closed")

    with pytest.raises(BrokenPipeError):
        provider(sandbox_config).reassign_users(logins, done)
    assert sorted(calls) == list(range(len(logins)))
    gid = str(sandbox.okta.state.group_by_name(ASSIGNED_TEAM)["id"])
    for login in logins:
        assert str(sandbox.okta.user_by_login(login)["id"]) in sandbox.okta.state.members[gid], login
        assert sandbox.astro.find_user(org_id, login) is not None, login


def test_test_connection_names_candidate_apps(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", okta_app_label="Astor")
    assert main(["test-connection", "--idp", "okta", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert "FAIL Okta app" in out and "did you mean: 'Astro'" in out
    assert "ok   Astro SCIM token" in out  # checked independently of the Okta side


# -- OAuth service app (private key) ---------------------------------------------------------------------------

def _service_app_config(sb: Sandbox, tmp_path: Path, key_pem: str, scopes: list[str] | None = None) -> Path:
    """The sandbox config with the Okta credential swapped for an OAuth service app and its private key file."""
    import yaml

    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    data = yaml.safe_load(config.read_text())
    (tmp_path / "okta-service.pem").write_text(key_pem)
    data["okta"].pop("token")
    data["okta"].update(client_id="0oaService", private_key="file:okta-service.pem")
    if scopes is not None:
        data["okta"]["scopes"] = scopes
    config.write_text(yaml.safe_dump(data))
    return config


@functools.cache
@functools.cache  # the docstring's promise: generated once per `which` in a process
def _key_pair(which: int = 0) -> tuple[str, str]:
    """An RSA key pair, PEM (private, public); the same for the same `which` (generating one is ~0.1 s of CPU)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


ALL_SCOPES = ["okta.apps.read", "okta.apps.manage", "okta.groups.read", "okta.groups.manage", "okta.users.read",
              "okta.profileMappings.read", "okta.profileMappings.manage"]


def test_oauth_service_app_with_a_private_key_plans_and_applies(sandbox: Sandbox, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    private, public = _key_pair()
    sandbox.okta.register_service_app("0oaService", public, ALL_SCOPES)
    config = _service_app_config(sandbox, tmp_path, private)
    assert main(["test-connection", "--idp", "okta", "-c", str(config)]) == 0
    enable_provisioning(sandbox)
    assert main(["apply", "--idp", "okta", "-c", str(config), "--yes"]) == 0
    assert plan_json(config, capsys) == []  # second plan empty, through the OAuth access token
    tokens = [e for e in sandbox.logs["okta"].entries if e.path == "/oauth2/v1/token"]
    assert tokens and all(e.method == "POST" for e in tokens)
    out = capsys.readouterr()
    assert private.splitlines()[1] not in out.out + out.err


def test_an_oauth_command_asks_okta_for_one_access_token(sandbox: Sandbox, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # Each phase of a command opens its own SDK client; they share the command's token (SharedToken), so the
    # service app signs one assertion and spends one request of the token endpoint's rate limit per command.
    private, public = _key_pair()
    sandbox.okta.register_service_app("0oaService", public, ALL_SCOPES)
    config = _service_app_config(sandbox, tmp_path, private)
    enable_provisioning(sandbox)

    def tokens() -> int:
        return sum(1 for e in sandbox.logs["okta"].entries if e.path == "/oauth2/v1/token")

    for argv in (["test-connection"], ["apply", "--yes"], ["status"], ["plan"]):
        before = tokens()
        assert main([*argv, "--idp", "okta", "-c", str(config)]) == 0, capsys.readouterr()
        assert tokens() - before == 1, argv  # before: 2, 4, 3 and 1
    assert private.splitlines()[1] not in "".join(capsys.readouterr())


@pytest.mark.parametrize("key", [
    '{\n  "kty": "RSA",\n  "d": "PRIVATEEXPONENTSECRETVALUE_abcdefghijkl",\n  "n": "truncated',  # JSON cut short
    '{"kty": "RSA", "n": "PUBLICPARTONLYxxxxxxxxxxxx", "e": "AQAB"}',  # a public JWK
    "-----BEGIN PRIVATE KEY-----\nNOTBASE64KEYMATERIALxxxxxxxxxxxxxx\n-----END PRIVATE KEY-----\n",
    '{"kty": "RSA", "ext": true, "d": "PRIVATEEXPONENTSECRETVALUE_abcdefghijkl", "n": "x", "e": "AQAB"}',
    "EC",  # a valid PEM key, but not RSA: the SDK signs RS256
])
def test_a_private_key_the_sdk_cannot_sign_with_is_a_config_error(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        key: str) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a crash log would land here
    if key == "EC":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    config = _service_app_config(sandbox, tmp_path, key)
    capsys.readouterr()
    assert main(["plan", "--idp", "okta", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "okta.private_key" in err and f"{config}:" in err and "Traceback" not in err, err
    assert not any(line.strip() in err for line in key.splitlines() if len(line.strip()) > 12), err
    assert not list(tmp_path.glob("astro-scim-crash-*"))


def test_a_shared_token_is_not_used_past_its_age(fake_clock: FakeClock) -> None:
    from connector.providers.okta.client import SHARED_TOKEN_SECONDS, SharedToken

    shared = SharedToken()
    shared.put(("eyJ-token", "Bearer"))
    fake_clock.advance(SHARED_TOKEN_SECONDS - 1)
    assert shared.get() == ("eyJ-token", "Bearer") and "eyJ" not in repr(shared)
    fake_clock.advance(2)
    assert shared.get() is None  # the SDK then asks for a new one
    # ... or hands back the copy its client kept: an old token is not shared again (only the SDK's own expiry
    # check, on its own copy, decides about it from now on)
    shared.put(("eyJ-token", "Bearer"))
    assert shared.get() is None
    shared.put(("eyJ-new", "Bearer"))
    assert shared.get() == ("eyJ-new", "Bearer")
    fake_clock.advance(SHARED_TOKEN_SECONDS - 1)
    shared.put(("eyJ-new", "Bearer"))  # put again by another client: its age still counts from the first put
    fake_clock.advance(2)
    assert shared.get() is None


def test_a_refused_token_is_not_shared_again(fake_clock: FakeClock) -> None:
    from connector.providers.okta.client import SharedToken

    shared = SharedToken()
    shared.put(("eyJ-revoked", "Bearer"))
    shared.clear()  # OktaClient.translate, on a 401
    shared.put(("eyJ-revoked", "Bearer"))
    assert shared.get() is None


def test_a_401_stops_the_commands_token_being_shared(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from connector.config.load import OktaConfig
    from connector.errors import AuthError
    from connector.providers.okta.client import OktaClient, shared_token_for
    from connector.support.secret import Secret

    okta = OktaConfig(org_url="https://acme.okta.com", client_id="0oaService", private_key=Secret.from_value("a-key"))
    shared = shared_token_for(okta)
    shared.put(("eyJ-token", "Bearer"))
    refused = SimpleNamespace(status=401, error_code="invalid_token", error_summary="token revoked", headers={})
    assert isinstance(OktaClient(okta).translate(refused, "GET", "/api/v1/apps"), AuthError)
    assert shared_token_for(okta).get() is None


@pytest.mark.parametrize(("case", "words"), [
    ("wrong key", "invalid_client"),
    ("scope not granted", "invalid_scope"),
])
def test_oauth_refusals_are_clear_auth_errors(sandbox: Sandbox, tmp_path: Path, case: str, words: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    private, public = _key_pair()
    other_private, _ = _key_pair(1)
    granted = ALL_SCOPES if case == "wrong key" else ["okta.apps.read"]
    sandbox.okta.register_service_app("0oaService", public, granted)
    config = _service_app_config(sandbox, tmp_path, other_private if case == "wrong key" else private)
    capsys.readouterr()
    code = main(["plan", "--idp", "okta", "-c", str(config)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert words in err and "Traceback" not in err
    hint = next(line for line in err.splitlines() if line.startswith("hint:"))
    assert ("okta.private_key" if case == "wrong key" else "okta.scopes") in hint  # names what to fix


@pytest.mark.parametrize(("error", "refused"), [
    ("Error while pushing: 401 Unauthorized", True), ("status code 401", True), ("HTTP 401: bad token", True),
    ("Unauthorised access", True), ("409 Conflict: user4012@acme.example already a member", False),
    ("could not push 'Room 401-B': 500", False), ("4010 items", False)])
def test_astro_refusing_the_token_is_a_401_not_a_401_inside_a_name(error: str, refused: bool) -> None:
    """A push error naming user4012@... was taken for Astro refusing Okta's token: connection_broken, the real
    idp_error hidden, and --fix pointed at the token instead of re-pushing."""
    from connector.providers.okta.org import refused_by_astro

    assert refused_by_astro(error) is refused
