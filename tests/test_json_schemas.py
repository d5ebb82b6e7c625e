"""`--format json` on every command that has it: the real CLI against the sandbox, its stdout parsed whole (one
document and nothing else) and validated against the command's published, versioned JSON Schema
(docs/schemas/<name>.v1.json, a link to the packaged connector/data/output-schemas/), in good and failing runs.

Also: every command with --format json names a schema file that exists, ships in the package and is listed in
the README; the commands without it are the ones the README says why.
"""

from __future__ import annotations

import argparse
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from connector.cli import build_parser, main
from connector.sandbox.core import Sandbox

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "schemas"
PACKAGED = resources.files("connector") / "data" / "output-schemas"
# command -> its schema's name; the commands without --format json are NO_JSON (the README says why)
SCHEMAS = {"validate": "validate", "plan": "plan", "apply": "apply", "test-connection": "checks", "status": "checks",
           "push-groups": "push-groups", "provision": "provision", "drift": "drift", "render": "render",
           "init": "init"}
NO_JSON = {"sandbox", "demo", "completion"}


def schema(name: str) -> dict[str, Any]:
    return dict(json.loads((DOCS / f"{name}.v1.json").read_text(encoding="utf-8")))


def run_json(capsys: pytest.CaptureFixture[str], name: str, *argv: str) -> tuple[int, dict[str, Any]]:
    """Run the CLI with --format json; the exit code and stdout's one document, checked against `name`'s schema."""
    capsys.readouterr()
    rc = main([*argv, "--format", "json"])
    out = capsys.readouterr().out
    doc = json.loads(out)  # stdout holds the document and nothing else: narration went to stderr
    assert isinstance(doc, dict)
    jsonschema.Draft202012Validator(schema(name), format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["schema"] == f"astro-scim/{name}/v1"
    if "exit_code" in doc:
        assert doc["exit_code"] == rc
    return rc, doc


def okta_console_step(sb: Sandbox, token: str | None = None) -> None:
    """The Okta admin's manual step (Configure API Integration), done through the emulator's admin side."""
    assert sb.okta is not None
    org = sb.astro_orgs["okta"]
    sb.okta.enable_provisioning(str(sb.okta.app_by_label("Astro")["id"]), org.scim_url, token or org.token)


# -- the schemas themselves --------------------------------------------------------------------------------


def _json_commands() -> dict[str, str]:
    """Each command whose --format offers json -> the schema file its --help names."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found: dict[str, str] = {}
    for name, p in sub.choices.items():
        fmt = p._option_string_actions.get("--format")
        if fmt is not None and fmt.choices is not None and "json" in fmt.choices:
            match = re.search(r"connector/data/output-schemas/([\w-]+)\.v1\.json", fmt.help or "")
            assert match, f"{name} --format names no schema in its help"
            found[name] = match.group(1)
    return found


def test_every_json_command_has_its_schema_and_the_rest_are_the_documented_exceptions() -> None:
    found = _json_commands()
    assert found == SCHEMAS
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) - set(found) == NO_JSON


@pytest.mark.parametrize("name", sorted(set(SCHEMAS.values())))
def test_each_schema_is_valid_versioned_packaged_and_in_the_readme(name: str) -> None:
    doc = schema(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$id"] == f"astro-scim/{name}/v1" and doc["properties"]["schema"] == {"const": doc["$id"]}
    assert doc["additionalProperties"] is False and {"schema", "tool_version"} <= set(doc["required"])
    # One source of truth: docs/schemas is a link to the folder the wheel ships (package-data data/**/*).
    assert DOCS.is_symlink() and DOCS.resolve() == (ROOT / "connector" / "data" / "output-schemas").resolve()
    assert json.loads((PACKAGED / f"{name}.v1.json").read_text(encoding="utf-8")) == doc
    assert '"data/**/*"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # package-data: in the wheel
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"docs/schemas/{name}.v1.json" in readme


def test_the_readme_lists_every_json_command_and_says_why_the_others_have_none() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### JSON output", 1)[1].split("\n## ", 1)[0]
    for command, name in SCHEMAS.items():
        assert re.search(rf"`{re.escape(command)}`.*docs/schemas/{re.escape(name)}\.v1\.json", section), command
    for command in NO_JSON:
        assert f"`{command}`" in section, command


def test_a_schema_catches_a_regression() -> None:
    """Strict enough to fail a document that lost a field, gained an unknown one or says an unknown status."""
    validator = jsonschema.Draft202012Validator(schema("apply"))
    good = {"schema": "astro-scim/apply/v1", "command": "apply", "tool_version": "1", "generated_at":
            "2026-01-01T00:00:00+00:00", "ok": True, "exit_code": 0, "error": None, "plan_file": None, "applied": 0,
            "left_to_do": [], "providers": [{"provider": "okta", "status": "no_changes", "applied": 0, "changes": [],
                                             "verification": None, "manual_steps": [], "error": None}]}
    validator.validate(good)
    entry = good["providers"][0]  # type: ignore[index]
    for broken in ({**good, "extra": 1}, {k: v for k, v in good.items() if k != "applied"},
                   {**good, "providers": [{**entry, "status": "done"}]},
                   {**good, "providers": [{**entry, "status": "manual_step"}]}):  # a manual step needs its steps
        assert not validator.is_valid(broken), broken


# -- validate (offline) ------------------------------------------------------------------------------------


def test_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = run_json(capsys, "validate", "validate", str(ROOT / "mappings"))
    assert rc == 0 and doc["ok"] is True and doc["summary"]["files"] == 2 and doc["findings"] == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("idp: okta\nattributes: [1, 2\n")
    rc, doc = run_json(capsys, "validate", "validate", str(bad))
    assert rc == 1 and doc["ok"] is False and doc["findings"][0]["file"] == str(bad)
    rc, doc = run_json(capsys, "validate", "validate", str(tmp_path / "missing.yaml"))
    assert rc == 2 and doc["ok"] is False and doc["summary"]["exit_code"] == 2
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text((ROOT / "mappings" / "okta.yaml").read_text().replace("userName", "userNmae", 1))
    rc, doc = run_json(capsys, "validate", "validate", str(wrong))
    assert rc == 1 and doc["summary"]["errors"] >= 1


# -- plan ----------------------------------------------------------------------------------------------------


def test_plan_json_both_idps_with_the_manual_step_and_a_saved_plan(sandbox: Sandbox, sandbox_config: Path,
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "reviewed.plan"
    rc, doc = run_json(capsys, "plan", "plan", "-c", str(sandbox_config), "-out", str(saved), "--exit-code")
    assert rc == 1 and doc["ok"] is True and saved.is_file() and doc["saved_to"] == str(saved)
    assert {p["provider"] for p in doc["plans"]} == {"okta", "azure"}
    assert doc["changes"] == sum(len(p["changes"]) for p in doc["plans"]) > 0
    (manual,) = [c for p in doc["plans"] for c in p["changes"] if c["action"] == "manual"]
    assert "Configure API integration" in manual["steps"]  # the manual step in JSON, with its instructions
    capsys.readouterr()
    assert main(["plan", "-c", str(sandbox_config), "--idp", "okta"]) == 0
    assert "Configure API integration" in capsys.readouterr().out  # ... and in the text


def test_plan_json_on_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = run_json(capsys, "plan", "plan", "-c", str(tmp_path / "missing.yaml"))
    assert rc == 2 and doc["ok"] is False and doc["plans"] == []
    assert "not found" in doc["error"]["message"] and doc["error"]["hint"]


# -- apply ---------------------------------------------------------------------------------------------------


def test_apply_json_okta_manual_step_then_applied_and_verified_then_nothing(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",)))
    rc, doc = run_json(capsys, "apply", "apply", "-c", config, "--yes")
    assert rc == 1 and doc["ok"] is False and doc["error"]["type"] == "ManualStepRequired"
    (okta,) = doc["providers"]
    assert okta["status"] == "manual_step" and okta["verification"] is None
    (step,) = [c for c in okta["changes"] if c["outcome"] == "manual_step"]
    assert "Configure API integration" in step["steps"] and okta["manual_steps"] == [step["steps"]]
    # Okta's API integration comes first: nothing else was applied, and each change says so
    assert okta["applied"] == doc["applied"] == 0
    assert {c["outcome"] for c in okta["changes"] if c is not step} == {"not_applied"}

    okta_console_step(sandbox)
    rc, doc = run_json(capsys, "apply", "apply", "-c", config, "--yes")
    assert rc == 0 and doc["ok"] is True and doc["error"] is None
    (okta,) = doc["providers"]
    assert okta["verification"]["status"] == "verified" and okta["verification"]["counts"]["astro_users"] > 0
    assert {c["outcome"] for c in okta["changes"]} == {"applied"} and okta["applied"] == doc["applied"] > 0

    rc, doc = run_json(capsys, "apply", "apply", "-c", config, "--yes")  # run twice: nothing left to change
    assert rc == 0 and doc["applied"] == 0 and doc["providers"][0]["status"] == "no_changes"
    assert doc["providers"][0]["verification"]["status"] == "verified"


def test_apply_json_okta_provisioning_failed_exit_4(sandbox: Sandbox, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = str(sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",)))
    okta_console_step(sandbox, token="a-wrong-astro-token")
    rc, doc = run_json(capsys, "apply", "apply", "-c", config, "--yes")
    assert rc == 4 and doc["ok"] is False and doc["error"]["type"] == "ProvisioningFailed"
    verification = doc["providers"][0]["verification"]
    assert verification["status"] == "failed" and verification["hint"]
    assert verification["blocking"][0]["kind"] == "connection_broken"
    assert "a-wrong-astro-token" not in json.dumps(doc)


def test_apply_json_azure_failed_then_not_verified(sandbox: Sandbox, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox.graph is not None
    config = str(sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",)))
    sandbox.graph.hold_cycles = True  # Entra's cycle never begins: nothing reaches Astro within --wait
    rc, doc = run_json(capsys, "apply", "apply", "-c", config, "--yes", "--wait", "0")
    assert rc == 4 and doc["providers"][0]["status"] == "applied"
    assert doc["providers"][0]["verification"]["status"] == "failed"
    rc, doc = run_json(capsys, "apply", "apply", "-c", config, "--yes", "--no-wait")
    assert rc == 0 and doc["providers"][0]["verification"]["status"] == "not_verified"


def test_apply_json_names_each_subject_still_pending(sandbox: Sandbox, azure_applied: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from connector.sandbox.seed import ASSIGNED_TEAM

    assert sandbox.graph is not None
    seed = sandbox.seed_org
    team = sandbox.default_team_names()[0]
    newcomer = next(p for p in seed.people if p.active and p.key in seed.team(ASSIGNED_TEAM).member_keys
                    and p.key not in seed.team(team).member_keys)
    sandbox.graph.add_member(team, newcomer.email)
    sandbox.graph.hold_cycles = True  # Entra has not provisioned the new membership yet
    rc, doc = run_json(capsys, "apply", "apply", "-c", str(azure_applied), "--yes", "--wait", "0")
    verification = doc["providers"][0]["verification"]
    assert rc == 0 and verification["status"] == "partly_verified", verification
    (pending,) = verification["pending_subjects"]
    assert verification["pending"] == 1 and pending["kind"] == "membership_missing"
    assert (pending["subject"], pending["team"], pending["user"].casefold()) == (team, team, newcomer.email), pending


def test_apply_json_several_idps_one_waiting_for_a_manual_step(sandbox: Sandbox, sandbox_config: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = run_json(capsys, "apply", "apply", "-c", str(sandbox_config), "--yes")
    assert rc == 1 and doc["error"] is None and doc["ok"] is False
    by = {p["provider"]: p for p in doc["providers"]}
    assert by["okta"]["status"] == "manual_step" and by["okta"]["manual_steps"]
    assert by["azure"]["status"] == "applied" and by["azure"]["verification"]["status"] == "verified"
    assert by["azure"]["applied"] > 0 and by["azure"]["error"] is None
    assert doc["left_to_do"] and doc["left_to_do"][0].startswith("okta: provisioning is not enabled")


def test_apply_json_needs_yes_and_says_so_in_the_document(sandbox_config: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = run_json(capsys, "apply", "apply", "-c", str(sandbox_config))
    assert rc == 2 and doc["error"]["type"] == "UsageError" and "--yes" in doc["error"]["message"]
    assert doc["providers"] == []


def test_apply_json_of_a_saved_plan_narrates_on_stderr_only(sandbox: Sandbox, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = str(sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",)))
    okta_console_step(sandbox)
    saved = tmp_path / "reviewed.plan"
    assert main(["plan", "-c", config, "-out", str(saved)]) == 0
    capsys.readouterr()
    assert main(["apply", "-c", config, str(saved), "--format", "json"]) == 0  # a saved plan needs no --yes
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    jsonschema.Draft202012Validator(schema("apply")).validate(doc)
    assert doc["plan_file"] == str(saved) and doc["ok"] is True and doc["applied"] > 0
    assert "okta.push_mapping" in captured.err and "applying it" in captured.err  # the narration: stderr
    assert "okta.push_mapping" not in captured.out.replace('"resource": "okta.push_mapping"', "")


# -- drift ---------------------------------------------------------------------------------------------------


def test_drift_json_findings_fix_and_error(sandbox: Sandbox, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = str(sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",)))
    rc, doc = run_json(capsys, "drift", "drift", "-c", config)  # never applied: not set up
    assert rc == 1 and doc["clean"] is False and doc["totals"]["not_set_up"] >= 1 and doc["error"] is None
    okta_console_step(sandbox)
    assert main(["apply", "-c", config, "--yes"]) == 0
    rc, doc = run_json(capsys, "drift", "drift", "-c", config)
    assert rc == 0 and doc["clean"] is True
    org = sandbox.astro_orgs["okta"].org_id
    victim = sandbox.astro.users(org)[0]
    sandbox.astro.delete_user(org, victim["userName"])
    for _ in range(2):
        sandbox.astro.add_orphan(org, f"orphan{_}@acme.example", "O", "Rphan")
    # --fix without --yes: the plan is in the document (it was only narrated on stderr), and why --yes would
    # refuse it (2 deletions of 12 users: over 10%)
    rc, doc = run_json(capsys, "drift", "drift", "-c", config, "--fix", "--delete-orphans")
    (okta,) = doc["idps"]
    assert rc == 1 and "remedies" not in okta and "fixed" not in okta
    assert {("remedy.okta.reassign_user", victim["userName"]), ("remedy.astro.delete_user", "orphan0@acme.example"),
            ("remedy.astro.delete_user", "orphan1@acme.example")} <= {(c["resource"], c["key"]) for c in okta["planned"]}
    assert "safety" in okta["refused_with_yes"] or "limit" in okta["refused_with_yes"], okta["refused_with_yes"]
    for i in range(2):
        sandbox.astro.delete_user(org, f"orphan{i}@acme.example")
    rc, doc = run_json(capsys, "drift", "drift", "-c", config, "--fix", "--yes")
    (okta,) = doc["idps"]
    assert okta["remedies"] and okta["fixed"] and all(r["ok"] for r in okta["remedies"]), okta
    assert rc == 0 and doc["clean"] is True
    rc, doc = run_json(capsys, "drift", "drift", "-c", str(tmp_path / "missing.yaml"))
    assert rc == 2 and doc["clean"] is False and doc["idps"] == [] and doc["error"]["exit_code"] == 2


# -- push-groups ---------------------------------------------------------------------------------------------


def test_push_groups_json(sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = str(sandbox_config)
    okta_console_step(sandbox)
    assert main(["apply", "--idp", "okta", "-c", config, "--yes"]) == 0
    rc, doc = run_json(capsys, "push-groups", "push-groups", "-c", config)
    assert rc == 0 and doc["ok"] is True and {g["outcome"] for g in doc["groups"]} == {"in_sync"}
    team = sandbox.default_team_names()[0]
    org = sandbox.astro_orgs["okta"].org_id
    members = sorted(m["value"] for m in (sandbox.astro.find_group(org, team) or {}).get("members") or [])
    names = {u["id"]: u["userName"] for u in sandbox.astro.users(org)}
    sandbox.astro.drop_membership(org, team, names[members[0]])

    rc, doc = run_json(capsys, "push-groups", "push-groups", "-c", config)  # no --yes: what it would do
    (group,) = [g for g in doc["groups"] if g["name"] == team]
    assert rc == 0 and doc["ok"] is False and doc["acted"] is False
    assert group["outcome"] == "pending" and group["action"] == "repush"
    assert group["astro_members"] == group["expected_members"] - 1

    rc, doc = run_json(capsys, "push-groups", "push-groups", "-c", config, "--yes")
    (group,) = [g for g in doc["groups"] if g["name"] == team]
    assert rc == 0 and doc["ok"] is True and group["outcome"] == "verified"
    assert group["astro_members_after"] == group["expected_members"]

    rc, doc = run_json(capsys, "push-groups", "push-groups", "-c", config, "Data Enginering")
    assert rc == 2 and doc["error"]["type"] == "NotFound" and doc["groups"] == []

    sandbox.astro.drop_membership(org, team, names[members[0]])
    # The emulated Okta accepts the re-push but sends nothing: the read-back fails.
    monkeypatch.setattr(sandbox.okta.engine, "push", lambda app_id, pm: pm.update(status="ACTIVE") or True)
    monkeypatch.setattr("connector.providers.okta.push.VERIFY_TIMEOUT", 0.3)
    rc, doc = run_json(capsys, "push-groups", "push-groups", "-c", config, team, "--yes")
    (group,) = doc["groups"]
    assert rc == 1 and group["outcome"] == "failed" and doc["error"]["type"] == "VerificationFailed"
    assert doc["manual_steps"] and "Push now" in doc["manual_steps"]


# -- provision -----------------------------------------------------------------------------------------------


def test_provision_json(sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    team = sandbox.default_team_names()[0]
    config = str(sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",), azure_assign_groups=[team]))
    assert main(["apply", "-c", config, "--yes", "--pause"]) == 0
    members = next(t for t in sandbox.seed_org.teams if t.name == team).member_keys
    insider = next(p for p in sandbox.seed_org.people if p.key in members and p.active)
    outsider = next(p for p in sandbox.seed_org.people if p.key not in members)
    rc, doc = run_json(capsys, "provision", "provision", "-c", config, "--user", insider.email)
    assert rc == 0 and doc["ok"] is True and doc["subject"] == {"type": "user", "name": insider.email}
    assert [r["outcome"] for r in doc["results"]] == ["provisioned"] and doc["summary"]["provisioned"] == 1
    assert doc["results"][0]["verification"]["status"] == "verified"  # read back in Astro, not Entra's word
    rc, doc = run_json(capsys, "provision", "provision", "-c", config, "--user", outsider.email)
    assert rc == 1 and doc["ok"] is False and doc["results"][0]["outcome"] == "not_provisioned"
    assert doc["results"][0]["error_code"] == "NotEffectivelyEntitled"
    assert doc["results"][0]["verification"]["status"] == "not_checked"
    rc, doc = run_json(capsys, "provision", "provision", "-c", config, "--group", team)
    assert rc == 0 and doc["summary"]["results"] >= 2 and doc["subject"]["type"] == "group"
    assert {r["verification"]["status"] for r in doc["results"]} == {"verified"}
    rc, doc = run_json(capsys, "provision", "provision", "-c", config, "--user", "nobody@acme.example")
    assert rc == 2 and doc["error"]["type"] == "NotFound" and doc["results"] == []
    # Entra provisions, but the tool's Astro token is refused: not verified (exit 3), never provisioned.
    Path(config).parent.joinpath("astro-azure.token").write_text("not-the-astro-token\n")
    rc, doc = run_json(capsys, "provision", "provision", "-c", config, "--user", insider.email)
    assert rc == 3 and doc["error"]["type"] == "RemoteError" and doc["summary"]["not_verified"] == 1
    assert [r["outcome"] for r in doc["results"]] == ["not_verified"]


# -- test-connection / status: the checks document, now also when the checks cannot start ----------------------


def test_checks_json_on_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("test-connection", "status"):
        rc, doc = run_json(capsys, "checks", command, "-c", str(tmp_path / "missing.yaml"))
        assert rc == 2 and doc["ok"] is False and doc["idps"] == [] and doc["error"]["exit_code"] == 2


# -- render (offline) / init ------------------------------------------------------------------------------------


def test_render_json_lists_each_file_written_and_a_config_error(sandbox_config: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "build"
    rc, doc = run_json(capsys, "render", "render", "--idp", "azure", "--config", str(sandbox_config),
                       "--out", str(out))
    assert rc == 0 and doc["ok"] is True and doc["error"] is None and doc["idp"] == "azure"
    kinds = {f["kind"]: f for f in doc["files"]}
    assert {"entra-schema", "secrets-template", "runbook", "terraform"} <= set(kinds)
    for f in doc["files"]:
        assert (out / f["path"]).stat().st_size == f["bytes"] > 0 and f["idp"] == "azure"
    assert kinds["runbook"]["path"] == "runbook-azure.md"
    rc, doc = run_json(capsys, "render", "render", "--idp", "okta", "--out", str(tmp_path / "okta"))
    assert rc == 0 and {"okta-mapping", "runbook", "terraform"} <= {f["kind"] for f in doc["files"]}
    assert "other" not in {f["kind"] for f in doc["files"]}

    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "mappings" / "okta.yaml").read_text().replace("userName", "userNmae", 1))
    rc, doc = run_json(capsys, "render", "render", "--idp", "okta", "--mapping", str(bad), "--out",
                       str(tmp_path / "none"))
    assert rc == 1 and doc["ok"] is False and doc["files"] == [] and not (tmp_path / "none").exists()
    assert any(f["severity"] == "error" for f in doc["findings"])
    rc, doc = run_json(capsys, "render", "render", "--idp", "okta", "--config", str(tmp_path / "missing.yaml"),
                       "--out", str(out))
    assert rc == 2 and doc["ok"] is False and doc["files"] == [] and doc["error"]["type"] == "ConfigError"


def test_init_json_non_interactive_against_the_sandbox_and_without_non_interactive(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.sandbox.seed import ASSIGNED_TEAM

    monkeypatch.setenv("OKTA_API_TOKEN", sandbox.okta_token)
    monkeypatch.setenv("ASTRO_API_TOKEN", sandbox.astro_orgs["okta"].token)
    config = tmp_path / "astro-scim.yaml"
    flags = ["--okta-org-url", sandbox.okta_url, "--okta-token-ref", "env:OKTA_API_TOKEN",
             "--astro-scim-url", sandbox.astro_orgs["okta"].scim_url, "--astro-token-ref", "env:ASTRO_API_TOKEN"]
    rc, doc = run_json(capsys, "init", "init", "-c", str(config), *flags)  # no --non-interactive: refused
    assert rc == 2 and doc["error"]["type"] == "UsageError" and "--non-interactive" in doc["error"]["message"]
    assert doc["written"] is False and not config.exists()

    rc, doc = run_json(capsys, "init", "init", "--non-interactive", "-c", str(config), *flags)
    assert rc == 0 and doc["ok"] is True and doc["written"] is True and config.is_file()
    assert doc["config"] == str(config) and doc["idps"] == ["okta"]
    (okta,) = doc["discovery"]
    assert okta["app_found"] is True and okta["app"].startswith("Astro (") and okta["error"] is None
    assign = next(g for g in okta["groups"] if g["key"] == "assign_groups")
    assert assign == {"key": "assign_groups", "groups": [ASSIGNED_TEAM], "why": "named_like_app"}
    assert doc["mappings"] == [{"idp": "okta", "path": str(tmp_path / "mappings" / "okta.yaml"), "written": True}]
    assert doc["validate"]["ok"] is True and doc["validate"]["summary"]["errors"] == 0
    checks = {c["name"] for i in doc["test_connection"]["idps"] for c in i["checks"]}
    assert any("Okta API token" in name for name in checks)
    text = json.dumps(doc)
    assert sandbox.okta_token not in text and sandbox.astro_orgs["okta"].token not in text  # references only


def test_an_interrupted_status_still_prints_its_document(sandbox: Sandbox, okta_applied: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C during `status --format json` left stdout empty (only a config or remote error printed the document),
    and checks.v1.json had no exit code 130 to give it."""
    from hostile import ctrl_c_at

    with ctrl_c_at(sandbox, "okta", "/users"):
        rc = main(["status", "-c", str(okta_applied), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(schema("checks")).validate(doc)
    assert rc == 130 and doc["ok"] is False and doc["exit_code"] == 130 and doc["error"]["type"] == "Interrupted"


def test_a_missing_extras_error_document_says_the_exit_code_the_process_gives() -> None:
    """A module of an extra found missing mid-run: the process exits 2 with its pip line; the JSON document said
    exit_code 70, InternalError."""
    from connector import output

    fields = output.error_fields(ModuleNotFoundError("No module named 'okta'", name="okta"))
    assert fields["exit_code"] == 2 and fields["type"] == "UsageError" and "pip" in (fields["hint"] or "")
