"""`astro-scim push-groups` against the sandbox: create/link, the INACTIVE/ACTIVE re-push workaround, verification."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from applied import applied

from connector.cli import main
from connector.sandbox.core import Sandbox


def app_id(sb: Sandbox) -> str:
    return str(sb.okta.app_by_label("Astro")["id"])


def configured(sb: Sandbox, config: Path) -> None:
    """The console step and `apply --idp okta --yes` done (tests/applied.py: restored after the first real apply)."""
    applied(sb, config, "okta", console_step=True, only=True)


def team_members(sb: Sandbox, team: str) -> set[str]:
    org_id = sb.astro_orgs["okta"].org_id
    names = {u["id"]: u["userName"] for u in sb.astro.users(org_id)}
    group = sb.astro.find_group(org_id, team)
    assert group is not None
    return {names[m["value"]] for m in group.get("members") or []}


def expected_members(sb: Sandbox, team: str) -> set[str]:
    seed = sb.seed_org
    return {seed.person(k).email for k in seed.team(team).member_keys if seed.person(k).active}


def push(config: Path, *args: str) -> int:
    return main(["push-groups", "-c", str(config), *args])


def configured_with_a_team_deleted_in_astro(sandbox: Sandbox, config: Path) -> str:
    """Okta set up and its groups pushed, then the first Team deleted in Astro (by SCIM): its name."""
    configured(sandbox, config)
    team = sandbox.default_team_names()[0]
    org = sandbox.astro_orgs["okta"]
    group = sandbox.astro.find_group(org.org_id, team)
    with httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"}) as scim:
        scim.delete(f"/Groups/{group['id']}").raise_for_status()
    return team


def in_sync_and_nothing_written(sandbox: Sandbox, config: Path, capsys: pytest.CaptureFixture[str],
                                *args: str) -> None:
    """push-groups finds every group pushed and in sync, and writes nothing to Okta."""
    sandbox.logs["okta"].clear()
    assert push(config, *args) == 0
    assert "every group is pushed and in sync with Astro" in capsys.readouterr().out
    assert sandbox.logs["okta"].writes() == []


def test_in_sync_groups_need_nothing(sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configured(sandbox, sandbox_config)
    capsys.readouterr()
    in_sync_and_nothing_written(sandbox, sandbox_config, capsys)


def test_repush_workaround_fixes_a_dropped_membership_and_verifies(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, sandbox_config)
    team = sandbox.default_team_names()[0]
    victim = sorted(expected_members(sandbox, team))[0]
    sandbox.astro.drop_membership(sandbox.astro_orgs["okta"].org_id, team, victim)
    assert victim not in team_members(sandbox, team)
    capsys.readouterr()

    sandbox.logs["okta"].clear()
    assert push(sandbox_config) == 0  # without --yes (and no TTY): report only
    out = capsys.readouterr().out
    assert f"{team}: push mapping ACTIVE" in out and "1 missing" in out and victim in out
    assert "would: re-push" in out and "nothing changed" in out
    assert sandbox.logs["okta"].writes() == []

    assert push(sandbox_config, "--yes") == 0
    captured = capsys.readouterr()
    assert "workaround" in captured.err and "INACTIVE and then ACTIVE" in captured.err
    assert f"verified in Astro: Team {team!r}" in captured.out
    n = len(expected_members(sandbox, team))  # the state line is the state the reason describes: before acting
    assert f"{team}: push mapping ACTIVE, Team has {n - 1} member(s); Okta expects {n}" in captured.out
    patches = [e for e in sandbox.logs["okta"].writes() if e.method == "PATCH"]
    assert len(patches) == 2  # INACTIVE, then ACTIVE, for the one out-of-sync group only
    assert team_members(sandbox, team) == expected_members(sandbox, team)

    # Run twice: the second run finds every group in sync and writes nothing.
    sandbox.logs["okta"].clear()
    assert push(sandbox_config, "--yes") == 0
    assert sandbox.logs["okta"].writes() == []


def test_missing_mapping_is_created_for_named_group(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configured(sandbox, sandbox_config)
    other = next(t.name for t in sandbox.seed_org.teams if t.name not in (*sandbox.default_team_names(), "Astro Users"))
    assert push(sandbox_config, other, "--yes") == 0
    out = capsys.readouterr().out
    assert f"{other}: create the push mapping" in out and "verified in Astro" in out
    assert team_members(sandbox, other) == expected_members(sandbox, other)
    assert sandbox.okta.push_mapping(app_id(sandbox), other)["status"] == "ACTIVE"


def test_push_error_is_repushed(sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configured(sandbox, sandbox_config)
    team = sandbox.default_team_names()[1]
    sandbox.okta.set_push_error(app_id(sandbox), team, "Error while pushing: 503")
    capsys.readouterr()
    assert push(sandbox_config, team, "--yes") == 0
    out = capsys.readouterr().out
    assert "push mapping in ERROR: Error while pushing: 503" in out and "verified in Astro" in out
    assert sandbox.okta.push_mapping(app_id(sandbox), team)["status"] == "ACTIVE"


def test_unverifiable_push_says_push_now_and_exits_1(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configured(sandbox, sandbox_config)
    team = sandbox.default_team_names()[0]
    victim = sorted(expected_members(sandbox, team))[0]
    sandbox.astro.drop_membership(sandbox.astro_orgs["okta"].org_id, team, victim)
    # The emulated Okta accepts the re-push but sends nothing (what the FAQ's "Push now" exists for).
    monkeypatch.setattr(sandbox.okta.engine, "push", lambda app_id, pm: pm.update(status="ACTIVE") or True)
    monkeypatch.setattr("connector.providers.okta.push.VERIFY_TIMEOUT", 0.3)
    capsys.readouterr()
    assert push(sandbox_config, team, "--yes") == 1
    captured = capsys.readouterr()
    assert f"{team}: re-push" in captured.out and "still out of sync in Astro: 1 missing" in captured.out
    assert "still differ in Astro after the re-push" in captured.err
    assert "Push Groups > click the Push Status value of the group > Push now" in captured.err


@pytest.mark.parametrize("state", ["ACTIVE", "ERROR"])
def test_a_team_deleted_in_astro_is_pushed_again_as_a_new_team_not_re_activated(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str], state: str
) -> None:
    """The mapping still targets the deleted Team: the INACTIVE/ACTIVE re-push (and Push now) only met Astro's 404,
    so push-groups exited 1 telling the admin to click Push now, and the mapping went to ERROR. It unlinks the
    mapping (deleteTargetGroup=false) and pushes the group again, as drift --fix's relink does, then verifies."""
    import json

    team = configured_with_a_team_deleted_in_astro(sandbox, sandbox_config)
    if state == "ERROR":  # what Okta shows once it has tried to push to the deleted Team
        sandbox.okta.set_push_error(app_id(sandbox), team, "404 Not Found: Group not found")
    capsys.readouterr()
    assert push(sandbox_config, "--yes", "--format", "json") == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    (g,) = [g for g in doc["groups"] if g["name"] == team]
    assert g["outcome"] == "verified" and g["action"] == "repush" and "unlink" in g["action_text"]
    assert "does not exist" in g["reason"] and g["astro_members"] is None
    assert g["astro_members_after"] == len(expected_members(sandbox, team))
    assert team_members(sandbox, team) == expected_members(sandbox, team)
    assert sandbox.okta.push_mapping(app_id(sandbox), team)["status"] == "ACTIVE"
    in_sync_and_nothing_written(sandbox, sandbox_config, capsys, "--yes")  # run twice


def test_a_relink_whose_mapping_another_run_deleted_first_is_done_not_failed(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The relink reads the mapping, deactivates it, then deletes it; another run (a concurrent push-groups or
    drift --fix) deleting it in between made the DELETE a 404, and the re-push "failed" (exit 3) though the end
    state was right. A 404 there is the mapping gone, as the relink wants. And a group named twice is pushed once."""
    import json

    from hostile import first_comer

    team = configured_with_a_team_deleted_in_astro(sandbox, sandbox_config)
    copies = first_comer(sandbox, "okta", "DELETE", r"/group-push/mappings/[^/]+$")
    capsys.readouterr()
    assert push(sandbox_config, team, team, "--yes", "--format", "json") == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert [g["name"] for g in doc["groups"]] == [team] and doc["groups"][0]["outcome"] == "verified"
    assert copies.statuses and all(s.startswith("204") for s in copies.statuses)  # the other run's delete won
    assert team_members(sandbox, team) == expected_members(sandbox, team)
    assert sandbox.okta.push_mapping(app_id(sandbox), team)["status"] == "ACTIVE"
    in_sync_and_nothing_written(sandbox, sandbox_config, capsys, "--yes")


def test_a_relink_whose_new_mapping_fails_says_what_it_left_and_exits_3(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from connector.sandbox.faults import FaultRule

    team = configured_with_a_team_deleted_in_astro(sandbox, sandbox_config)
    sandbox.fail("okta", FaultRule("POST", r"/group-push/mappings$", status=500, times=None))
    capsys.readouterr()
    assert push(sandbox_config, team, "--yes") == 3
    captured = capsys.readouterr()
    assert f"the push mapping for {team!r} was deleted and not re-created" in captured.err
    assert f"astro-scim push-groups '{team}' --yes" in captured.err and "Traceback" not in captured.err


def test_astro_unreadable_after_the_re_push_is_not_verified_never_failed_or_counted(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Okta re-pushes, then Astro answers 500 to every read. It said outcome "failed" (nothing says the push
    failed), astro_members_after the count read before acting (no one read it after), and the hint re-pushed
    again. Now: not_verified, no count, exit 3 naming Astro's endpoint and status, and the trail says so."""
    import json

    from connector.sandbox.faults import FaultRule

    configured(sandbox, sandbox_config)
    team = sandbox.default_team_names()[1]
    sandbox.okta.set_push_error(app_id(sandbox), team, "Error while pushing: 503")
    engine = sandbox.okta.engine
    pushed = engine.push

    def push_then_astro_fails(app: str, pm: dict[str, object]) -> object:
        done = pushed(app, pm)
        sandbox.fail("astro", FaultRule("GET", "/Groups", status=500, times=None))  # Astro goes down after it
        return done

    monkeypatch.setattr(engine, "push", push_then_astro_fails)
    capsys.readouterr()
    assert push(sandbox_config, team, "--yes", "--format", "json") == 3
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    (g,) = doc["groups"]
    assert g["outcome"] == "not_verified" and g["astro_members_after"] is None
    assert "not verified: Astro could not be read back" in g["result"] and "HTTP 500" in g["result"]
    assert doc["error"]["type"] == "RemoteError" and "pushed but not verified" in doc["error"]["message"]
    assert "without --yes" in doc["error"]["hint"]
    assert sandbox.okta.push_mapping(app_id(sandbox), team)["status"] == "ACTIVE"  # Okta did act


def test_a_re_push_astro_refuses_names_the_integration_token_not_push_now(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The token in the app's API integration was revoked in Astro: the re-push meets Astro's 401 and the Team
    stays wrong. The hint said to click Push now, which meets the same 401; it names the token to fix now."""
    import json

    configured(sandbox, sandbox_config)
    team = sandbox.default_team_names()[0]
    org = sandbox.astro_orgs["okta"]
    sandbox.okta.enable_provisioning(app_id(sandbox), org.scim_url, "a-revoked-astro-token")
    victim = sorted(expected_members(sandbox, team))[0]
    sandbox.astro.drop_membership(org.org_id, team, victim)
    capsys.readouterr()
    assert push(sandbox_config, team, "--yes") == 1
    captured = capsys.readouterr()
    assert "refused by Astro" in captured.out and "401" in captured.out
    (hint,) = [ln for ln in captured.err.splitlines() if ln.startswith("hint:")]
    assert "Provisioning > Integration > Edit: API token" in hint and "Push now" not in hint
    assert "a-revoked-astro-token" not in captured.out + captured.err
    assert push(sandbox_config, team, "--yes", "--format", "json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert "Integration > Edit: API token" in doc["manual_steps"] and doc["groups"][0]["outcome"] == "failed"
    sandbox.okta.enable_provisioning(app_id(sandbox), org.scim_url, org.token)  # the admin pastes a valid token
    assert push(sandbox_config, team, "--yes") == 0
    assert team_members(sandbox, team) == expected_members(sandbox, team)


@pytest.mark.parametrize("broken", ["never_enabled", "app_deactivated"])
def test_push_groups_through_an_app_okta_cannot_push_with_changes_nothing_and_says_why(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str], broken: str
) -> None:
    """Provisioning never enabled (the console step not done): each mapping create failed with Okta's 400 and the
    hint was to re-run push-groups, which fails the same way. A deactivated app: Okta accepts mapping writes and
    pushes nothing. Now: nothing written, exit 1, the step that unblocks it."""
    import json

    if broken == "app_deactivated":
        configured(sandbox, sandbox_config)
        with httpx.Client(base_url=str(sandbox.okta_url),
                          headers={"Authorization": f"SSWS {sandbox.okta_token}"}) as okta:
            okta.post(f"/api/v1/apps/{app_id(sandbox)}/lifecycle/deactivate").raise_for_status()
    other = next(t.name for t in sandbox.seed_org.teams if t.name not in (*sandbox.default_team_names(), "Astro Users"))
    sandbox.logs["okta"].clear()
    capsys.readouterr()
    assert push(sandbox_config, other, "--yes", "--format", "json") == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["error"]["type"] == "ManualStepRequired" and "nothing was changed" in doc["error"]["message"]
    assert "astro-scim apply --idp okta" in doc["error"]["hint"]
    assert ("INACTIVE" if broken == "app_deactivated" else "provisioning is not enabled") in doc["error"]["message"]
    assert sandbox.logs["okta"].writes() == [] and "Traceback" not in captured.err


def test_unknown_group_exits_2(sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert push(sandbox_config, "Data Enginering") == 2
    err = capsys.readouterr().err
    assert "no group named 'Data Enginering'" in err and "'Data Engineering'" in err
    assert "astro-scim.yaml:" not in err  # named on the command line, not in the config


def test_an_unknown_group_with_no_close_name_still_gets_a_hint(sandbox: Sandbox, sandbox_config: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing like 'Nope' exists: the hint names what to give and the groups the org has (read, not guessed);
    a case slip is matched ignoring case."""
    assert push(sandbox_config, "Nope") == 2
    err = capsys.readouterr().err
    assert "no group named 'Nope'" in err
    hint = next(line for line in err.splitlines() if line.startswith("hint: "))
    assert "exactly as in Okta" in hint and all(repr(t) in hint for t in sandbox.default_team_names())
    assert "groups, stopped" not in err  # the progress line: no unit without a count
    assert push(sandbox_config, "data eng") == 2
    assert "hint: did you mean: 'Data Engineering'?" in capsys.readouterr().err
