"""The audit trail against the sandbox, through the real CLI: apply, push-groups, provision and drift --fix each
append exactly one JSON line (who, what, from which config, each change and its outcome), and no secret."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector import __version__
from connector.cli import main
from connector.config.fingerprint import config_fingerprint
from connector.config.load import load_config
from connector.sandbox.core import Sandbox


@pytest.fixture(autouse=True)
def actor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A known person, outside GitHub Actions, and no audit log path from the environment running the tests."""
    monkeypatch.setenv("USER", "ada")
    for name in ("GITHUB_ACTIONS", "GITHUB_ACTOR", "GITHUB_RUN_ID", "ASTRO_SCIM_AUDIT_LOG"):
        monkeypatch.delenv(name, raising=False)


def enable_okta_provisioning(sb: Sandbox) -> None:
    app_id = str(sb.okta.app_by_label("Astro")["id"])
    org = sb.astro_orgs["okta"]
    sb.okta.enable_provisioning(app_id, org.scim_url, org.token)


def log_of(config: Path) -> Path:
    return config.parent / ".astro-scim" / "audit.log"


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def no_secret_in(sb: Sandbox, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    canaries = [sb.okta_token, sb.graph_token, *(org.token for org in sb.astro_orgs.values())]
    assert [c for c in canaries if c in text] == []


def test_apply_appends_one_line_with_who_what_and_each_outcome(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enable_okta_provisioning(sandbox)
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 0
    (entry,) = lines(log_of(sandbox_config))
    assert entry["command"] == "apply" and entry["tool_version"] == __version__ and entry["exit_code"] == 0
    assert entry["time"].endswith("Z") and entry["error"] is None
    assert entry["actor"] == {"user": "ada"}
    assert entry["config"] == {"file": str(sandbox_config.resolve()),
                               "fingerprint": config_fingerprint(load_config(sandbox_config))}
    assert entry["options"]["idp"] == "okta" and entry["options"]["yes"] is True
    changes = entry["changes"]
    assert changes and {c["outcome"] for c in changes} == {"applied"}
    assert {c["provider"] for c in changes} == {"okta"}
    assert ("create", "okta.push_mapping", "Analytics") in {(c["action"], c["resource"], c["key"]) for c in changes}
    no_secret_in(sandbox, log_of(sandbox_config))
    # a second, empty apply is a second line, with nothing changed
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 0
    assert [e["changes"] for e in lines(log_of(sandbox_config))][1:] == [[]]


def test_an_apply_stopped_by_a_manual_step_says_what_was_not_applied(
    sandbox: Sandbox, sandbox_config: Path
) -> None:
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 1
    (entry,) = lines(log_of(sandbox_config))
    assert entry["exit_code"] == 1 and "provisioning is not enabled" in entry["error"]
    assert {c["outcome"] for c in entry["changes"]} == {"not applied"}


def test_an_apply_of_every_idp_that_stops_at_a_manual_step_says_why(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Okta waits for its console step while Entra is applied: exit 1 with no exception; the line's error is what
    the CLI printed as left to do (it was null)."""
    capsys.readouterr()
    assert main(["apply", "-c", str(sandbox_config), "--yes"]) == 1
    printed = capsys.readouterr().out.split("left to do:")[1].splitlines()
    left = [line.removeprefix("  - ") for line in printed if line.startswith("  - ")]
    (entry,) = lines(log_of(sandbox_config))
    assert entry["exit_code"] == 1 and left
    assert entry["error"] == "left to do: " + "; ".join(left)
    assert entry["error"].startswith("left to do: okta: provisioning is not enabled for app 'Astro'")
    assert {c["outcome"] for c in entry["changes"] if c["provider"] == "azure"} == {"applied"}


def test_in_github_actions_the_actor_and_run_are_recorded(
    sandbox: Sandbox, sandbox_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "grace")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    enable_okta_provisioning(sandbox)
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 0
    (entry,) = lines(log_of(sandbox_config))
    assert entry["actor"] == {"user": "ada", "github_actor": "grace", "github_run_id": "4242"}


def test_push_groups_appends_one_line_with_the_verified_outcome(
    sandbox: Sandbox, sandbox_config: Path
) -> None:
    enable_okta_provisioning(sandbox)
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 0
    team = sandbox.default_team_names()[0]
    org = sandbox.astro_orgs["okta"].org_id
    seed = sandbox.seed_org
    victim = sorted(seed.person(k).email for k in seed.team(team).member_keys if seed.person(k).active)[0]
    sandbox.astro.drop_membership(org, team, victim)
    assert main(["push-groups", "-c", str(sandbox_config), "--yes"]) == 0
    entries = lines(log_of(sandbox_config))
    assert [e["command"] for e in entries] == ["apply", "push-groups"]
    (change,) = entries[1]["changes"]
    assert (change["action"], change["key"], change["outcome"]) == ("repush", team, "verified")
    no_secret_in(sandbox, log_of(sandbox_config))


def test_provision_appends_one_line_per_run(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    assert main(["apply", "--idp", "azure", "-c", str(config), "--yes", "--pause"]) == 0
    person = sandbox.seed_org.people[3]
    assert main(["provision", "-c", str(config), "--user", person.email]) == 0
    entries = lines(log_of(config))
    assert [e["command"] for e in entries] == ["apply", "provision"]
    assert entries[1]["options"]["user"] == person.email
    (change,) = entries[1]["changes"]
    assert (change["provider"], change["resource"]) == ("azure", "User") and person.email in json.dumps(entries[1])
    assert change["outcome"] == "verified"  # Entra's success, read back in Astro
    no_secret_in(sandbox, log_of(config))


def test_drift_fix_appends_one_line_and_a_plain_audit_none(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enable_okta_provisioning(sandbox)
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 0
    login = sandbox.seed_org.people[3].email
    sandbox.astro.edit_user(sandbox.astro_orgs["okta"].org_id, login, "name.givenName", "Mallory")
    assert main(["drift", "--idp", "okta", "-c", str(sandbox_config)]) == 1  # reads only: no line
    assert main(["drift", "--idp", "okta", "-c", str(sandbox_config), "--fix", "--yes"]) == 0
    entries = lines(log_of(sandbox_config))
    assert [e["command"] for e in entries] == ["apply", "drift --fix"]
    (change,) = entries[1]["changes"]
    assert change["provider"] == "okta" and change["key"] == login and change["outcome"] == "done"
    no_secret_in(sandbox, log_of(sandbox_config))


def test_the_log_path_comes_from_the_environment_or_the_config(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load(sandbox_config.read_text())
    data["audit_log"] = "logs/trail.jsonl"
    sandbox_config.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 1  # the manual step
    assert len(lines(tmp_path / "logs" / "trail.jsonl")) == 1 and not log_of(sandbox_config).exists()
    monkeypatch.setenv("ASTRO_SCIM_AUDIT_LOG", str(tmp_path / "ci.log"))
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 1
    assert len(lines(tmp_path / "ci.log")) == 1 and len(lines(tmp_path / "logs" / "trail.jsonl")) == 1
    assert os.stat(tmp_path / "ci.log").st_mode & 0o077 == 0  # the trail is the operator's, not everyone's


def test_an_unwritable_log_refuses_before_any_change(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    enable_okta_provisioning(sandbox)
    (tmp_path / "a-folder").mkdir()
    monkeypatch.setenv("ASTRO_SCIM_AUDIT_LOG", str(tmp_path / "a-folder"))
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "cannot append to the audit log" in err and "ASTRO_SCIM_AUDIT_LOG" in err
    assert sandbox.logs["okta"].writes() == []


def test_a_refused_canary_token_leaves_a_line_without_it(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = "canary-okta-token-5f2d9e"
    (sandbox_config.parent / "okta.token").write_text(canary + "\n")
    assert main(["apply", "--idp", "okta", "-c", str(sandbox_config), "--yes"]) == 3  # Okta refuses it
    (entry,) = lines(log_of(sandbox_config))
    assert entry["exit_code"] == 3 and entry["error"]
    assert canary not in log_of(sandbox_config).read_text()
