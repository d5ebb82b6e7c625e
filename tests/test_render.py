"""`astro-scim render`: every generated file parses with the tool that will consume it (json, msgraph-sdk models
through kiota, the okta SDK's pydantic models, python-hcl2), carries the mapping file's values and never a secret."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from connector.cli import main

REPO = Path(__file__).resolve().parents[1]
SEED_ENTRA_USERS = [
    ("userPrincipalName", "userName"),
    ("displayName", "displayName"),
    ("givenName", "name.givenName"),
    ("surname", "name.familyName"),
]
# The seed's "Okta - Manual" table: (attribute, value, apply on).
SEED_OKTA_TABLE = [
    ("userName", "Configured in sign-on settings", ""),
    ("givenName", "user.firstName", "Create and update"),
    ("familyName", "user.lastName", "Create and update"),
    ("email", "user.email", "Create and update"),
    ("displayName", "user.displayName", "Create and update"),
    ("profileUrl", "user.profileUrl", "Create and update"),
]
CANARY = "canary-9f8e7d6c5b4a-DO-NOT-LEAK"
HCL_OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def render(tmp: Path, idp: str, *extra: str) -> tuple[int, Path]:
    out = tmp / f"out-{idp}"
    code = main(["render", "--idp", idp, "--mapping", str(REPO / "mappings" / f"{idp}.yaml"), "--out", str(out),
                 *extra])
    return code, out


def write_config(tmp: Path, token: str = "env:ASTRO_API_TOKEN", **okta: Any) -> Path:
    path = tmp / "astro-scim.yaml"
    path.write_text(
        "astro:\n"
        "  scim_url: https://api.astronomer.io/scim/v2/clorg0123456789\n"
        f"  token: {token}\n"
        "okta:\n"
        "  org_url: https://acme.okta.com\n"
        "  token: env:OKTA_API_TOKEN\n"
        f"  app: {{label: {okta.get('label', 'Astro Prod')}}}\n"
        f"  integration: {okta.get('integration', 'oin')}\n"
        f"  assign_groups: {json.dumps(okta.get('assign', ['Astro Users']))}\n"
        f"  push_groups: {json.dumps(okta.get('push', ['Astro Admins', 'Data Engineering']))}\n"
        "azure:\n"
        "  tenant_id: 11111111-2222-3333-4444-555555555555\n"
        "  credential: {client_id: app-client-id, client_secret: env:AZURE_CLIENT_SECRET}\n"
        "  app: {display_name: Astro SCIM}\n"
        "  assign_groups: [Astro Users, Data Engineering]\n",
        encoding="utf-8",
    )
    return path


def hcl(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=HCL_OPTIONS)


def blocks(doc: dict[str, Any], kind: str, type_: str) -> dict[str, Any]:
    """`resource "type" "name" {...}` blocks of one type, by name."""
    out: dict[str, Any] = {}
    for entry in doc.get(kind, []):
        out.update(entry.get(type_, {}))
    return out


def variables(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in doc.get("variable", []):
        out.update(entry)
    return out


def table_rows(markdown: str, header_start: str) -> list[list[str]]:
    """The rows of the Markdown table whose header row starts with `header_start`, cells stripped of backticks."""
    lines = [ln.strip() for ln in markdown.splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header_start))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip().strip("`").strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]])
    return rows


def numbered_steps(markdown: str, section: str) -> list[int]:
    """Step numbers at the start of lines in one `## ` section."""
    text = markdown.split(section, 1)[1].split("\n## ", 1)[0]
    return [int(m) for m in re.findall(r"^(\d+)\. ", text, flags=re.M)]


def kiota(model: Any, data: Any) -> Any:
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

    node = JsonParseNodeFactory().get_root_parse_node("application/json", json.dumps(data).encode())
    return node.get_object_value(model)


# ---------------------------------------------------------------------------------------------- azure


def test_azure_writes_every_file_and_lists_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = render(tmp_path, "azure")
    assert code == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["entra-schema-mappings.json", "entra-secrets.json", "runbook-azure.md", "terraform/azure.tf"]
    printed = capsys.readouterr().out
    for f in files:
        assert str(out / f) in printed


def test_entra_object_mappings_parse_into_msgraph_models(tmp_path: Path) -> None:
    from msgraph.generated.models.attribute_flow_behavior import AttributeFlowBehavior
    from msgraph.generated.models.attribute_flow_type import AttributeFlowType
    from msgraph.generated.models.attribute_mapping_source_type import AttributeMappingSourceType
    from msgraph.generated.models.object_mapping import ObjectMapping

    _, out = render(tmp_path, "azure")
    doc = json.loads((out / "entra-schema-mappings.json").read_text())
    users, groups = (kiota(ObjectMapping, om) for om in doc["objectMappings"])
    for om in (users, groups):
        assert om.additional_data == {}, "a key msgraph does not know is a typo"
        assert om.enabled is True
        assert {f.value for f in om.flow_types} == {"Add", "Update", "Delete"}
        for am in om.attribute_mappings:
            assert am.additional_data == {} and am.source.additional_data == {}
            assert am.flow_type == AttributeFlowType.Always
            assert am.flow_behavior == AttributeFlowBehavior.FlowWhenChanged
            assert am.source.type == AttributeMappingSourceType.Attribute
    assert (users.source_object_name, users.target_object_name) == (
        "User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    assert (groups.source_object_name, groups.target_object_name) == (
        "Group", "urn:ietf:params:scim:schemas:core:2.0:Group")
    # Exactly the seed's four, in order, matched on userName only.
    assert [(a.source.name, a.target_attribute_name) for a in users.attribute_mappings] == SEED_ENTRA_USERS
    assert [a.matching_priority for a in users.attribute_mappings] == [1, 0, 0, 0]
    assert [a.source.expression for a in users.attribute_mappings][0] == "[userPrincipalName]"
    assert [(a.source.name, a.target_attribute_name) for a in groups.attribute_mappings] == [
        ("displayName", "displayName"), ("members", "members")]


def test_entra_secrets_body_holds_references_only(tmp_path: Path) -> None:
    from msgraph.generated.models.synchronization_secret import SynchronizationSecret
    from msgraph.generated.service_principals.item.synchronization.secrets.secrets_put_request_body import (
        SecretsPutRequestBody,
    )

    _, out = render(tmp_path, "azure")
    body = kiota(SecretsPutRequestBody, json.loads((out / "entra-secrets.json").read_text()))
    pairs = {p.key: p.value for p in body.value}
    assert pairs == {
        SynchronizationSecret.BaseAddress: "${ASTRO_SCIM_URL}",
        SynchronizationSecret.SecretToken: "${ASTRO_API_TOKEN}",
    }


def test_azure_runbook_follows_the_seed(tmp_path: Path) -> None:
    _, out = render(tmp_path, "azure")
    md = (out / "runbook-azure.md").read_text()
    assert md.startswith("# Astro SCIM provisioning from Microsoft Entra ID") and "\n\n\n" not in md
    for heading in ("## Values", "## Steps", "## Frequently asked questions"):
        assert f"\n{heading}\n" in md
    assert numbered_steps(md, "## Steps") == list(range(1, 11))
    # What apply leaves in the job's schema: the listed mappings and active (members for groups), no other
    assert "Delete the template's other mappings except `active`" in " ".join(md.split())
    rows = table_rows(md, "| Azure Active Directory Attribute")
    assert [(r[0], r[1]) for r in rows] == SEED_ENTRA_USERS
    assert rows[0][2:] == ["Direct", "1", "Always"]
    for phrase in ("**Automatic**", "**Tenant URL**: `${ASTRO_SCIM_URL}`", "`ASTRO_API_TOKEN`", "**Test connection**",
                   "Provision on\ndemand", "5 requests per 10 seconds"):
        assert phrase in md, phrase


def test_azure_terraform_parses_and_wires_the_job(tmp_path: Path) -> None:
    _, out = render(tmp_path, "azure")
    tf_text = (out / "terraform" / "azure.tf").read_text()
    doc = hcl(out / "terraform" / "azure.tf")
    app = blocks(doc, "resource", "azuread_application_from_template")["astro"]
    assert app["template_id"] == "${local.non_gallery_template_id}"
    assert doc["locals"][0]["non_gallery_template_id"] == "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
    job = blocks(doc, "resource", "azuread_synchronization_job")["astro"]
    assert job["template_id"] == "scim"
    secret = blocks(doc, "resource", "azuread_synchronization_secret")["astro"]
    assert [(c["key"], c["value"]) for c in secret["credential"]] == [
        ("BaseAddress", "${var.astro_scim_url}"), ("SecretToken", "${var.astro_api_token}")]
    token = variables(doc)["astro_api_token"]
    assert token["sensitive"] is True and "default" not in token
    assert "default" not in variables(doc)["astro_scim_url"]  # unknown without --config: Terraform asks
    assert "azuread_app_role_assignment" in json.dumps(doc)
    # The provider cannot set mappings; the file says so and names the command that can.
    assert "astro-scim apply --idp azure" in tf_text and "#1332" in tf_text


def test_entra_expressions_defaults_and_create_only(tmp_path: Path) -> None:
    from msgraph.generated.models.attribute_flow_type import AttributeFlowType
    from msgraph.generated.models.attribute_mapping_source_type import AttributeMappingSourceType
    from msgraph.generated.models.object_mapping import ObjectMapping

    mapping = tmp_path / "azure-custom.yaml"
    mapping.write_text(
        "idp: azure\n"
        "users:\n"
        "  - target: userName\n"
        "    source: \"[userPrincipalName]\"\n"
        "    matching: 1\n"
        "  - target: displayName\n"
        "    source: 'Join(\" \", [givenName], [surname])'\n"
        "  - target: externalId\n"
        "    source: \"[mailNickname]\"\n"
        "    apply_on: create_only\n"
        "  - target: title\n"
        "    source: \"[jobTitle]\"\n"
        "    default: \"Engineer | \\\"Data\\\"\"\n"
    )
    out = tmp_path / "out"
    assert main(["render", "--idp", "azure", "--mapping", str(mapping), "--out", str(out)]) == 0
    doc = json.loads((out / "entra-schema-mappings.json").read_text())
    assert len(doc["objectMappings"]) == 1  # no groups in the file, no group object mapping
    users = kiota(ObjectMapping, doc["objectMappings"][0])
    by_target = {a.target_attribute_name: a for a in users.attribute_mappings}
    join = by_target["displayName"].source
    assert join.type == AttributeMappingSourceType.Function and join.name == "Join"
    assert [p.value.name for p in join.parameters] == [" ", "givenName", "surname"]
    assert by_target["externalId"].flow_type == AttributeFlowType.ObjectAddOnly
    assert by_target["title"].default_value == 'Engineer | "Data"'
    rows = {r[1]: r for r in table_rows((out / "runbook-azure.md").read_text(), "| Azure Active Directory Attribute")}
    assert rows["displayName"][0] == 'Join(" ", [givenName], [surname])' and rows["displayName"][2] == "Expression"
    assert rows["externalId"][4] == "Only during object creation"


# ---------------------------------------------------------------------------------------------- okta


def test_okta_writes_every_file(tmp_path: Path) -> None:
    code, out = render(tmp_path, "okta")
    assert code == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["okta-features.json", "okta-group-push.json", "okta-profile-mapping.json", "runbook-okta.md",
                     "terraform/okta.tf"]


def test_okta_bodies_parse_into_sdk_models(tmp_path: Path) -> None:
    from okta.models import CapabilitiesObject, CreateGroupPushMappingRequest, ProfileMappingRequest

    _, out = render(tmp_path, "okta", "--config", str(write_config(tmp_path)))
    raw = json.loads((out / "okta-profile-mapping.json").read_text())
    body = ProfileMappingRequest.from_dict(raw)
    assert body.to_dict() == raw  # nothing the SDK does not know
    # userName comes from sign-on settings and is no profile mapping; the rest are the seed's table.
    assert {k: (p.expression, p.push_status.value) for k, p in body.properties.items()} == {
        attr: (value, "PUSH") for attr, value, _ in SEED_OKTA_TABLE[1:]}

    raw = json.loads((out / "okta-features.json").read_text())
    caps = CapabilitiesObject.from_dict(raw)
    assert caps.to_dict() == raw
    assert caps.create.lifecycle_create.status.value == "ENABLED"
    assert caps.update.profile.status.value == "ENABLED"
    assert caps.update.lifecycle_deactivate.status.value == "ENABLED"
    assert caps.update.password.status.value == "DISABLED"

    pushes = [CreateGroupPushMappingRequest.from_dict(b) for b in json.loads((out / "okta-group-push.json").read_text())]
    assert [(p.source_group_id, p.target_group_name, p.status.value) for p in pushes] == [
        ("${OKTA_GROUP_ID_ASTRO_ADMINS}", "Astro Admins", "ACTIVE"),
        ("${OKTA_GROUP_ID_DATA_ENGINEERING}", "Data Engineering", "ACTIVE"),
    ]


def test_okta_create_only_is_dont_push(tmp_path: Path) -> None:
    mapping = tmp_path / "okta-custom.yaml"
    mapping.write_text(
        "idp: okta\n"
        "users:\n"
        "  - target: userName\n"
        "    from_sign_on: true\n"
        "  - target: name.givenName\n"
        "    source: user.firstName\n"
        "    apply_on: create_only\n"
        "  - target: emails[type eq \"work\"].value\n"
        "    source: user.email\n"
    )
    out = tmp_path / "out"
    assert main(["render", "--idp", "okta", "--mapping", str(mapping), "--out", str(out)]) == 0
    props = json.loads((out / "okta-profile-mapping.json").read_text())["properties"]
    assert props == {"givenName": {"expression": "user.firstName", "pushStatus": "DONT_PUSH"},
                     "email": {"expression": "user.email", "pushStatus": "PUSH"}}
    rows = table_rows((out / "runbook-okta.md").read_text(), "| Attribute |")
    assert rows[1][2:] == ["user.firstName", "Create"]


def test_okta_runbook_follows_the_seed(tmp_path: Path) -> None:
    _, out = render(tmp_path, "okta")
    md = (out / "runbook-okta.md").read_text()
    assert md.startswith("# Astro SCIM provisioning from Okta") and "\n\n\n" not in md
    a = "## A. Okta - Astro integration (recommended)"
    b = "## B. Okta - Manual (custom SCIM app)"
    for heading in ("## Values", a, b, "## Frequently asked questions"):
        assert f"\n{heading}" in md, heading
    assert numbered_steps(md, a) == list(range(1, 10))
    assert numbered_steps(md, b) == list(range(1, 9))
    rows = table_rows(md, "| Attribute |")
    got = [(re.search(r"\(`?(\w+)`?\)", r[0]).group(1), r[2], r[3]) for r in rows]  # type: ignore[union-attr]
    assert got == SEED_OKTA_TABLE
    assert all(r[1] == "Personal" for r in rows)
    for phrase in ("**Configure API integration**", "**Organization short name**", "**HTTP Header**", "**Bearer**",
                   "**Push New Users**, **Push Profile Updates** and **Push Groups**",
                   "**Create Users**, **Update User\n   Attributes** and **Deactivate Users**",
                   "is not a profile mapping", "**Push now**", "remove and re-assign the user in Okta"):
        assert phrase in md, phrase


def test_okta_terraform_parses(tmp_path: Path) -> None:
    _, out = render(tmp_path, "okta", "--config", str(write_config(tmp_path)))
    doc = hcl(out / "terraform" / "okta.tf")
    mapping = blocks(doc, "resource", "okta_profile_mapping")["astro"]
    assert mapping["target_id"] == "${data.okta_app.astro.id}"
    assert [(m["id"], m["expression"], m["push_status"]) for m in mapping["mappings"]] == [
        (attr, value, "PUSH") for attr, value, _ in SEED_OKTA_TABLE[1:]]
    push = blocks(doc, "resource", "okta_push_group")["astro"]
    assert push["delete_target_group_on_destroy"] is False and push["status"] == "ACTIVE"
    assert "okta_app_group_assignments" in json.dumps(doc)
    v = variables(doc)
    assert (v["okta_org_name"]["default"], v["okta_base_url"]["default"]) == ("acme", "okta.com")
    assert v["app_label"]["default"] == "Astro Prod"
    assert v["assign_groups"]["default"] == ["Astro Users"]
    assert v["push_groups"]["default"] == ["Astro Admins", "Data Engineering"]
    assert blocks(doc, "data", "okta_app")["astro"]["label"] == "${var.app_label}"


# ---------------------------------------------------------------------------------------------- config


def test_config_fills_in_the_values(tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, integration="manual"))
    _, az = render(tmp_path, "azure", "--config", cfg)
    secrets = json.loads((az / "entra-secrets.json").read_text())["value"]
    assert secrets[0] == {"key": "BaseAddress", "value": "https://api.astronomer.io/scim/v2/clorg0123456789"}
    assert secrets[1] == {"key": "SecretToken", "value": "${ASTRO_API_TOKEN}"}
    md = (az / "runbook-azure.md").read_text()
    assert "**Tenant URL**: `https://api.astronomer.io/scim/v2/clorg0123456789`" in md
    assert "Enterprise applications** > `Astro SCIM`" in md
    assert "    - `Astro Users`\n    - `Data Engineering`\n" in md
    v = variables(hcl(az / "terraform" / "azure.tf"))
    assert v["tenant_id"]["default"] == "11111111-2222-3333-4444-555555555555"
    assert v["astro_scim_url"]["default"] == "https://api.astronomer.io/scim/v2/clorg0123456789"
    assert v["app_display_name"]["default"] == "Astro SCIM"
    assert v["assign_groups"]["default"] == ["Astro Users", "Data Engineering"]

    _, ok = render(tmp_path, "okta", "--config", cfg)
    md = (ok / "runbook-okta.md").read_text()
    assert "## B. Okta - Manual (custom SCIM app): your config uses this" in md
    assert "**Organization ID** instead: `clorg0123456789`" in md
    assert "**SCIM connector base URL**: `https://api.astronomer.io/scim/v2/clorg0123456789`" in md
    assert "the `Astro Prod` app integration" in md
    assert "OKTA=https://acme.okta.com" in md and 'SSWS ${OKTA_API_TOKEN}' in md


def test_without_config_placeholders_are_references(tmp_path: Path) -> None:
    _, ok = render(tmp_path, "okta")
    md = (ok / "runbook-okta.md").read_text()
    assert "| `${ASTRO_SCIM_URL}` | export `ASTRO_SCIM_URL`" in md
    assert "Astro values are ${...} placeholders" in md
    assert json.loads((ok / "okta-group-push.json").read_text()) == [
        {"sourceGroupId": "${OKTA_GROUP_ID}", "status": "ACTIVE", "targetGroupName": "${ASTRO_TEAM_NAME}"}]
    v = variables(hcl(ok / "terraform" / "okta.tf"))
    assert "default" not in v["okta_org_name"] and v["push_groups"]["default"] == []


def test_group_used_for_assignment_and_push_is_flagged(tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, assign=["Astro Users"], push=["Astro Users"]))
    _, ok = render(tmp_path, "okta", "--config", cfg)
    assert "same group for assignment and for group push: `Astro Users`" in (ok / "runbook-okta.md").read_text()


def test_hostile_names_stay_inside_their_strings(tmp_path: Path) -> None:
    """Quotes, `${` and pipes in names from the config cannot break JSON, HCL or Markdown; a newline is no group's
    name, refused by the config (it was rendered as "two lines" in the runbook, "two\nlines" in JSON)."""
    nasty = ['Ops "A" ${var.x} %{ if }', "Pipe | Team"]
    code, _ = render(tmp_path, "okta", "--config", str(write_config(tmp_path, push=[*nasty, "two\nlines"])))
    assert code == 2
    cfg = str(write_config(tmp_path, label="'Astro ${x}'", assign=["Astro Users"], push=nasty))
    _, ok = render(tmp_path, "okta", "--config", cfg)
    pushes = json.loads((ok / "okta-group-push.json").read_text())
    assert [p["targetGroupName"] for p in pushes] == nasty
    assert len({p["sourceGroupId"] for p in pushes}) == 2
    v = variables(hcl(ok / "terraform" / "okta.tf"))  # parses: nothing escaped its string
    assert v["push_groups"]["default"][0] == 'Ops "A" $${var.x} %%{ if }'  # Terraform reads $${ as a literal ${
    assert v["app_label"]["default"] == "Astro $${x}"
    md = (ok / "runbook-okta.md").read_text()
    assert "    - `Pipe | Team`\n" in md  # a list item: no table cell to escape a pipe for


# ---------------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("how", ["env", "literal", "file"])
def test_a_secret_value_never_reaches_a_file_or_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    for name in ("ASTRO_API_TOKEN", "OKTA_API_TOKEN", "AZURE_CLIENT_SECRET"):
        monkeypatch.setenv(name, CANARY)
    (tmp_path / "token.txt").write_text(CANARY)
    token = {"env": "env:ASTRO_API_TOKEN", "literal": CANARY, "file": "file:token.txt"}[how]
    cfg = str(write_config(tmp_path, token=token))
    for idp in ("okta", "azure"):
        code, out = render(tmp_path, idp, "--config", cfg)
        if how == "literal":  # the config is refused before anything is rendered: secrets are references only
            assert code == 2 and not out.exists()
            continue
        assert code == 0
        for f in out.rglob("*"):
            if f.is_file():
                assert CANARY not in f.read_text(), f
        md = (out / f"runbook-{idp}.md").read_text()
        if how == "file":
            assert f"reads the Astro Organization API token from {tmp_path / 'token.txt'}" in md
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err


# ---------------------------------------------------------------------------------------------- exit codes


def test_mapping_with_errors_exits_1_and_renders_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("idp: azure\nusers:\n  - target: displayName\n    source: \"[displayName]\"\n")  # no userName
    out = tmp_path / "out"
    assert main(["render", "--idp", "azure", "--mapping", str(bad), "--out", str(out)]) == 1
    assert not out.exists()
    assert f"{bad}:" in capsys.readouterr().err


def test_unreadable_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out")
    assert main(["render", "--idp", "azure", "--mapping", str(tmp_path / "missing.yaml"), "--out", out]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["render", "--idp", "azure", "--mapping", str(REPO / "mappings" / "okta.yaml"), "--out", out]) == 2
    assert "mapping for okta, not azure" in capsys.readouterr().err
    assert main(["render", "--idp", "okta", "--config", str(tmp_path / "nope.yaml"), "--out", out]) == 2
    (tmp_path / "file").write_text("x")
    code, _ = render(tmp_path, "okta", "--out", str(tmp_path / "file"))
    assert code == 2
    assert "is a file" in capsys.readouterr().err


def test_render_imports_no_idp_sdk(tmp_path: Path) -> None:
    code = (
        "import sys; from connector.cli import main; "
        f"rc = main(['render', '--idp', 'azure', '--out', {str(tmp_path / 'a')!r}]) + "
        f"main(['render', '--idp', 'okta', '--out', {str(tmp_path / 'o')!r}]); "
        "print(rc, sorted({m.split('.')[0] for m in sys.modules} & "
        "{'okta', 'msgraph', 'azure', 'kiota_abstractions', 'kiota_http', 'msgraph_core'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (["a", 'b"'], '["a", "b\\""]'),
        ("C:\\dir\n", '"C:\\\\dir\\n"'),
        ("${var.x} %{if}", '"$${var.x} %%{if}"'),
        ("bell\x07", '"bell\\u0007"'),
    ],
)
def test_hcl_literals(value: Any, expected: str) -> None:
    from connector.render.generate import hcl as hcl_literal

    assert hcl_literal(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("user.email", "`user.email`"), ("a|b", "`a|b`"), ("x `y` z", "``x `y` z``"), ("`q`", "`` `q` ``"),
     ("one\ntwo", "`one two`")],
)
def test_markdown_code_spans(value: str, expected: str) -> None:
    """A pipe is escaped in a table cell only (cell_code): in a list item GitHub showed the backslash."""
    from connector.render.generate import cell_code, code

    assert code(value) == expected
    assert cell_code(value) == expected.replace("|", "\\|")


def test_env_names_and_outputs() -> None:
    from connector.render.generate import env_name, outputs_for

    assert env_name("Astro Admins") == "ASTRO_ADMINS"
    assert env_name("3rd-line support!") == "G_3RD_LINE_SUPPORT"
    assert outputs_for("okta") == [
        "okta/okta-features.json.j2", "okta/okta-group-push.json.j2", "okta/okta-profile-mapping.json.j2",
        "okta/runbook-okta.md.j2", "okta/terraform/okta.tf.j2"]
    assert (REPO / "templates" / "okta" / "runbook-okta.md.j2").is_file()  # the documented location in a checkout


# ---------------------------------------------------------------------------------------------- agreement


def test_entra_file_agrees_with_what_apply_writes(tmp_path: Path) -> None:
    """The rendered attributeMappings are exactly what `apply` merges into an empty template schema."""
    from connector.mapping.load import load_mapping
    from connector.providers.entra.schema import merge

    mapping, findings = load_mapping(REPO / "mappings" / "azure.yaml")
    assert mapping is not None and not findings
    _, out = render(tmp_path, "azure")
    rendered = json.loads((out / "entra-schema-mappings.json").read_text())["objectMappings"]
    empty = {"directories": [], "synchronizationRules": [{"objectMappings": [
        {"sourceObjectName": om["sourceObjectName"], "targetObjectName": om["targetObjectName"],
         "attributeMappings": []} for om in rendered]}]}
    merged, _ = merge(empty, mapping)
    applied = merged["synchronizationRules"][0]["objectMappings"]
    # apply also puts back the template's User `active` (Entra's deprovisioning) when a schema lacks it, as this
    # empty one does; the file holds the mapping file's own mappings.
    assert [[a for a in om["attributeMappings"] if not (om["sourceObjectName"] == "User"
                                                        and a["targetAttributeName"] == "active")]
            for om in applied] == [om["attributeMappings"] for om in rendered]


def test_mapping_comes_from_the_config_or_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = tmp_path / "my-okta.yaml"
    custom.write_text((REPO / "mappings" / "okta.yaml").read_text().replace("user.profileUrl", "user.nickName"))
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("  integration: oin\n", "  integration: oin\n  mapping: my-okta.yaml\n"))
    monkeypatch.chdir(tmp_path)  # no mappings/ here: the config names the file
    assert main(["render", "--idp", "okta", "--config", str(cfg), "--out", "a"]) == 0
    props = json.loads((tmp_path / "a" / "okta-profile-mapping.json").read_text())["properties"]
    assert props["profileUrl"]["expression"] == "user.nickName"
    assert f"from {custom}" in capsys.readouterr().out
    # Without --mapping or a config entry, outside a checkout: the checkout's shipped mappings.
    assert main(["render", "--idp", "okta", "--out", "b"]) == 0
    props = json.loads((tmp_path / "b" / "okta-profile-mapping.json").read_text())["properties"]
    assert props["profileUrl"]["expression"] == "user.profileUrl"


def test_okta_app_by_id(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("{label: Astro Prod}", "{id: 0oa1b2c3d4E5F6g7h8i9}"))
    _, ok = render(tmp_path, "okta", "--config", str(cfg))
    doc = hcl(ok / "terraform" / "okta.tf")
    assert blocks(doc, "data", "okta_app")["astro"] == {"id": "${var.app_id}"}
    assert variables(doc)["app_id"]["default"] == "0oa1b2c3d4E5F6g7h8i9"
    assert "APP=0oa1b2c3d4E5F6g7h8i9" in (ok / "runbook-okta.md").read_text()


def test_names_that_slug_alike_get_suffixes_no_other_name_holds() -> None:
    """"Data Eng", "Data-Eng" and "Data Eng 2" slug to DATA_ENG, DATA_ENG, DATA_ENG_2: the second took _2, the
    third's own slug, so astro.tf declared `astro_team_roles.data_eng_2` twice (terraform validate failed) and two
    groups shared one ${OKTA_GROUP_ID_...} in the group-push body (the wrong group's id pushed)."""
    from connector.render.generate import _groups, distinct

    assert distinct(["DATA_ENG", "DATA_ENG", "DATA_ENG_2", "B", "DATA_ENG"]) == [
        "DATA_ENG", "DATA_ENG_3", "DATA_ENG_2", "B", "DATA_ENG_4"]
    envs = [g.env for g in _groups(["Data Eng", "Data-Eng", "Data Eng 2"], "OKTA_GROUP_ID")]
    assert len(set(envs)) == 3 and envs[2] == "OKTA_GROUP_ID_DATA_ENG_2"
