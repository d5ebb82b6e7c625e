"""Saved plans against the sandbox, through the real CLI: `plan -out FILE` then `apply FILE` applies exactly the
reviewed plan, and refuses (exit 2, naming what moved) when the org or the config changed since."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector.cli import main
from connector.plan.saved import _checksum
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM


def enable_okta_provisioning(sb: Sandbox) -> None:
    """The Admin Console step the plan's runbook asks for (no API can do it)."""
    app_id = str(sb.okta.app_by_label("Astro")["id"])
    org = sb.astro_orgs["okta"]
    sb.okta.enable_provisioning(app_id, org.scim_url, org.token)


def okta_api(sb: Sandbox, method: str, path: str, **params: str) -> Any:
    """An Okta admin changing the org behind the tool's back."""
    resp = httpx.request(method, f"{sb.okta_url}{path}", params=params, json={},
                         headers={"Authorization": f"SSWS {sb.okta_token}"})
    assert resp.status_code < 300, resp.text
    return resp.json() if resp.content else None


def secrets_of(sb: Sandbox) -> list[str]:
    return [sb.okta_token, sb.graph_token, *(org.token for org in sb.astro_orgs.values())]


def plan_out(config: Path, plan: Path, *extra: str) -> None:
    assert main(["plan", "-c", str(config), "-out", str(plan), *extra]) == 0


def test_plan_out_then_apply_file_applies_exactly_it_and_converges(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enable_okta_provisioning(sandbox)
    plan = tmp_path / "plan.json"
    plan_out(sandbox_config, plan)
    assert "apply exactly it with: astro-scim apply" in capsys.readouterr().out
    doc = json.loads(plan.read_text())
    assert doc["format"] == "astro-scim-plan" and doc["version"] == 1 and doc["idps"] == ["okta", "azure"]
    assert doc["config"]["fingerprint"].startswith("sha256:") and doc["created_at"].endswith("Z")
    assert {"okta.group_assignment", "okta.push_mapping"} <= set(doc["plans"][0]["state"])
    text = plan.read_text()
    assert not [s for s in secrets_of(sandbox) if s in text]  # references and ids only, never a token

    okta_writes, graph_writes = len(sandbox.logs["okta"].writes()), len(sandbox.logs["graph"].writes())
    assert okta_writes == 0 and graph_writes == 0  # plan -out wrote the file, nothing else
    assert main(["apply", "-c", str(sandbox_config), str(plan)]) == 0  # no --yes: the saved plan was the review
    out = capsys.readouterr().out
    assert "the org and the config are as the plan found them" in out
    planned = sum(len(p["changes"]) for p in doc["plans"])
    assert out.count("  done ") == planned and f"applied {planned} change(s)" in out
    assert main(["plan", "-c", str(sandbox_config), "--exit-code"]) == 0  # the second plan is empty
    # a saved plan applies once: the org has moved (by its own changes) since it was made
    assert main(["apply", "-c", str(sandbox_config), str(plan)]) == 2


def test_a_group_assigned_in_okta_behind_the_plan_is_refused_by_name(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enable_okta_provisioning(sandbox)
    plan = tmp_path / "plan.json"
    plan_out(sandbox_config, plan, "--idp", "okta")
    app_id = str(sandbox.okta.app_by_label("Astro")["id"])
    (group,) = okta_api(sandbox, "GET", "/api/v1/groups", q=ASSIGNED_TEAM)
    okta_api(sandbox, "PUT", f"/api/v1/apps/{app_id}/groups/{group['id']}")
    writes = len(sandbox.logs["okta"].writes())
    capsys.readouterr()
    assert main(["apply", "-c", str(sandbox_config), str(plan)]) == 2
    err = capsys.readouterr().err
    assert "the org changed since the plan was made" in err and "okta: okta.group_assignment" in err
    assert "okta.push_mapping" not in err  # only what moved is named
    assert "plan -out FILE" in err  # the hint
    assert len(sandbox.logs["okta"].writes()) == writes  # refused before any write


def test_an_entra_secret_changed_behind_the_plan_is_refused_by_name(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    assert main(["apply", "-c", str(config), "--yes"]) == 0
    plan = tmp_path / "plan.json"
    plan_out(config, plan)
    assert sandbox.graph is not None
    (sp,) = [s for s in sandbox.graph.service_principals() if s["displayName"] == "Astro"]
    sandbox.graph.set_secrets(sp["id"], {"BaseAddress": sandbox.astro_orgs["azure"].scim_url,
                                         "SecretToken": "someone-else's-token"})
    capsys.readouterr()
    assert main(["apply", "-c", str(config), str(plan)]) == 2
    err = capsys.readouterr().err
    assert "azure: azure.secrets" in err and "azure.assignment" not in err


def test_a_config_edited_after_the_plan_is_refused(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    plan_out(sandbox_config, plan, "--idp", "okta")
    data = yaml.safe_load(sandbox_config.read_text())
    data["okta"]["push_groups"] = data["okta"]["push_groups"][:1]  # one Team fewer than the plan reviewed
    sandbox_config.write_text(yaml.safe_dump(data), encoding="utf-8")
    capsys.readouterr()
    assert main(["apply", "-c", str(sandbox_config), str(plan)]) == 2
    err = capsys.readouterr().err
    assert "the config changed since the plan was made" in err and "astro-scim.yaml" in err
    assert sandbox.logs["okta"].writes() == []


def _rewrite(path: Path, edit: Any, *, checksum: bool) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    if checksum:
        doc["checksum"] = _checksum(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")


def _retarget(doc: dict[str, Any]) -> None:
    doc["plans"][0]["changes"][-1]["data"]["group_id"] = "00g-not-the-reviewed-group"


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: p.write_text(p.read_text()[:200]), "invalid JSON at line"),
    (lambda p: p.write_text('{"plans": []}'), "not an astro-scim plan file"),
    (lambda p: p.write_bytes(b"\xff\xfe"), "not UTF-8"),
    (lambda p: _rewrite(p, lambda d: d.update(version=99), checksum=True), "format version 99"),
    (lambda p: _rewrite(p, _retarget, checksum=False), "checksum mismatch"),
    (lambda p: _rewrite(p, _retarget, checksum=True), "the changes in the file are not the ones"),
    (lambda p: _rewrite(p, lambda d: d.pop("plans"), checksum=True), "malformed plan file"),
    (lambda p: p.unlink(), "not found"),
], ids=["truncated", "not-a-plan", "binary", "newer-format", "edited", "edited-and-rechecksummed", "malformed",
        "missing"])
def test_a_damaged_or_tampered_plan_file_is_refused_clearly(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    damage: Any, message: str,
) -> None:
    enable_okta_provisioning(sandbox)
    plan = tmp_path / "plan.json"
    plan_out(sandbox_config, plan, "--idp", "okta")
    damage(plan)
    capsys.readouterr()
    assert main(["apply", "-c", str(sandbox_config), str(plan)]) == 2
    err = capsys.readouterr().err
    assert message in err and "hint:" in err
    assert sandbox.logs["okta"].writes() == []


def test_apply_file_takes_its_options_from_the_plan(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    plan_out(sandbox_config, plan, "--idp", "okta")
    capsys.readouterr()
    assert main(["apply", "-c", str(sandbox_config), "--idp", "azure", str(plan)]) == 2
    assert "--idp azure differs from the saved plan's (okta)" in capsys.readouterr().err
    assert main(["apply", "-c", str(sandbox_config), "--prune", str(plan)]) == 2
    assert "the saved plan was made without --prune" in capsys.readouterr().err


def test_plan_out_into_a_missing_folder_is_a_usage_error(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "-c", str(sandbox_config), "--idp", "okta", "--out", str(tmp_path / "no" / "p.json")]) == 2
    assert "its folder does not exist" in capsys.readouterr().err
    assert sandbox.logs["okta"].entries == []  # said before reading the org


def test_plan_out_to_a_folder_is_a_usage_error_before_reading_the_org(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "-c", str(sandbox_config), "--idp", "okta", "--out", str(tmp_path)]) == 2
    assert f"cannot write the plan to {tmp_path}: it is a folder" in capsys.readouterr().err
    assert sandbox.logs["okta"].entries == []  # it used to read the whole org first


def test_apply_file_takes_the_same_config_from_another_folder_and_names_a_different_one(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enable_okta_provisioning(sandbox)
    plan = tmp_path / "plan.json"
    plan_out(sandbox_config, plan, "--idp", "okta")
    other = sandbox.write_config(tmp_path / "other" / "astro-scim.yaml", okta_push_groups=[])
    capsys.readouterr()
    assert main(["apply", "-c", str(other), str(plan)]) == 2
    err = capsys.readouterr().err
    assert f"the plan was made from the config {sandbox_config}" in err and f"--config {sandbox_config}" in err
    # The same config in another checkout (CI plans in one job and applies in another) is the same config.
    sandbox.write_config(other)
    assert main(["apply", "-c", str(other), str(plan)]) == 0


def test_json_plan_carries_the_manual_steps(
    sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "-c", str(sandbox_config), "--idp", "okta", "--format", "json"]) == 0
    (manual,) = [c for c in json.loads(capsys.readouterr().out)["plans"][0]["changes"] if c["action"] == "manual"]
    assert "Configure API integration" in manual["steps"]
    assert sandbox.astro_orgs["okta"].org_id in manual["steps"]
    assert "data" not in manual  # ids stay out of the review format; the saved plan carries them


def test_a_saved_plan_with_team_roles_applies_after_the_push_and_refuses_roles_changed_meanwhile(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    de, an = sandbox.default_team_names()
    full = {"organization": "ORGANIZATION_MEMBER", "workspaces": {"analytics": "WORKSPACE_AUTHOR"}}
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    data = yaml.safe_load(config.read_text())
    data["access"] = {de: full}
    data["okta"]["astro"]["team_wait_seconds"] = 10
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    enable_okta_provisioning(sandbox)
    plan = tmp_path / "plan.json"
    plan_out(config, plan)  # the Team does not exist yet: its roles wait for Okta's push
    doc = json.loads(plan.read_text())
    assert [p["name"] for p in doc["plans"]] == ["okta", "astro"]
    assert any(k.startswith(f"astro.team_roles {de} (") for k in doc["plans"][1]["state"])
    assert main(["apply", "-c", str(config), str(plan)]) == 0
    org_id = sandbox.astro_orgs["okta"].org_id
    assert sandbox.astro_platform.team_roles(org_id, de)["workspaces"] == {"analytics": "WORKSPACE_AUTHOR"}

    # A new reviewed plan (another organization role); an Owner edits the Team's roles before it is applied.
    data["access"][de] = {"organization": "ORGANIZATION_BILLING_ADMIN"}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    plan_out(config, plan, "--idp", "astro")
    sandbox.astro_platform.set_team_roles(org_id, de, organization="ORGANIZATION_OWNER")
    capsys.readouterr()
    assert main(["apply", "-c", str(config), str(plan)]) == 2
    assert f"astro: astro.team_roles {de} ({org_id})" in capsys.readouterr().err


def test_the_shipped_mapping_is_fingerprinted_by_a_name_not_by_where_it_is_installed(
    sandbox: Sandbox, sandbox_config: Path, tmp_path: Path
) -> None:
    data = yaml.safe_load(sandbox_config.read_text())
    del data["okta"]["mapping"], data["azure"]["mapping"]  # the default: the mappings shipped in the package
    sandbox_config.write_text(yaml.safe_dump(data), encoding="utf-8")
    plan = tmp_path / "plan.json"
    plan_out(sandbox_config, plan, "--idp", "okta")
    inputs = json.loads(plan.read_text())["config"]["inputs"]
    assert {"(shipped) mappings/okta.yaml", "(shipped) mappings/azure.yaml", "astro-scim.yaml"} == set(inputs)
    assert not [k for k in inputs if k.startswith("/")]  # nothing that differs between two CI runners


def test_a_plan_holding_a_secret_value_is_never_written(sandbox_config: Path, tmp_path: Path) -> None:
    from connector.config.load import load_config
    from connector.errors import ConnectorError
    from connector.plan import saved
    from connector.plan.model import Action, Change, Plan
    from connector.support.secret import Secret

    canary = Secret.from_value("canary-7c1e-not-for-files").reveal()
    plan = Plan("okta", [Change(Action.UPDATE, "okta.feature", "X", data={"token": canary})])
    with pytest.raises(ConnectorError, match="would contain a secret value") as caught:
        saved.write(tmp_path / "plan.json", load_config(sandbox_config), {"idp": "okta"}, [("okta", plan)])
    assert canary not in str(caught.value) and not (tmp_path / "plan.json").exists()


def test_a_plan_whose_mapping_sits_beside_the_configs_folder_applies_from_another_checkout(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`mapping: ../mappings/azure.yaml`: the input was named by its absolute path (unresolved), so the same tree
    planned in one checkout and applied from another was refused ("the plan was made from another config"), and
    the plan file held the runner's paths."""
    import shutil

    def checkout(root: Path) -> Path:
        config = sandbox.write_config(root / "deploy" / "astro-scim.yaml", idps=("azure",))
        (root / "mappings").mkdir(parents=True)
        shutil.copy(Path(__file__).resolve().parents[1] / "mappings" / "azure.yaml", root / "mappings" / "azure.yaml")
        data = yaml.safe_load(config.read_text())
        data["azure"]["mapping"] = "../mappings/azure.yaml"
        config.write_text(yaml.safe_dump(data))
        return config

    first, second = checkout(tmp_path / "job1"), checkout(tmp_path / "job2")
    plan = tmp_path / "plan.json"
    assert main(["plan", "-c", str(first), "--idp", "azure", "-out", str(plan)]) == 0
    inputs = json.loads(plan.read_text())["config"]["inputs"]
    assert "../mappings/azure.yaml" in inputs and not any(str(tmp_path) in k for k in inputs)
    capsys.readouterr()
    assert main(["apply", "-c", str(second), "--no-wait", str(plan)]) == 0, capsys.readouterr().err


def test_a_secret_token_graph_echoes_is_not_digested_into_the_plan_file(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Graph masks the saved SecretToken, but the provider handles one echoed in clear: its unsalted digest went
    into the plan file's state, so a guessed token could be checked offline against it. The digest holds only
    whether it is astro.token."""
    from connector.plan.model import digest
    from connector.sandbox.graph import api as graph_api

    assert sandbox.graph is not None
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    assert main(["apply", "-c", str(config), "--idp", "azure", "--yes", "--no-wait"]) == 0
    monkeypatch.setattr(graph_api.GraphEmulator, "_masked_secrets", lambda self, sp_id: [
        {"key": k, "value": v} for k, v in self.state.sp_sync(sp_id).secrets.items()])
    plan = tmp_path / "plan.json"
    assert main(["plan", "-c", str(config), "--idp", "azure", "-out", str(plan)]) == 0
    recorded = json.loads(plan.read_text())["plans"][0]["state"]["azure.secrets"]
    (sp,) = [s for s in sandbox.graph.service_principals() if s["displayName"] == "Astro"]
    saved = sandbox.graph.secrets(sp["id"])
    token = sandbox.astro_orgs["azure"].token
    assert recorded != digest([{**saved, "SecretToken": token}, None])
    assert recorded == digest([{**saved, "SecretToken": "astro.token"}, None])
