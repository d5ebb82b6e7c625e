"""Team access templates offline: parsing, validation (file:line:col), role-set diffs, Terraform render."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from connector.access.model import (
    DEFAULT_ORGANIZATION_ROLE,
    RoleSet,
    describe_diff,
    parse_access,
    require_templates,
    validate_project_file,
)
from connector.cli import main
from connector.config.load import load_config
from connector.errors import ConfigError

HCL = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
HEAD = """\
astro:
  scim_url: https://api.astronomer.io/scim/v2/clorg0000000000000000000a
  token: env:ASTRO_API_TOKEN
okta:
  org_url: https://acme.okta.com
  token: env:OKTA_API_TOKEN
  assign_groups: [Astro Users]
  push_groups: [Data Engineering, Analytics]
azure:
  tenant_id: 00000000-0000-0000-0000-000000000000
  credential: {token: env:GRAPH_TOKEN}
  assign_groups: [Astro Users, ML Research]
"""


def write(tmp_path: Path, access: str, head: str = HEAD) -> Path:
    path = tmp_path / "astro-scim.yaml"
    path.write_text(head + "access:\n" + textwrap.indent(textwrap.dedent(access), "  "), encoding="utf-8")
    return path


def findings(tmp_path: Path, access: str) -> list[tuple[int, int, str, str]]:
    path = write(tmp_path, access)
    _, found = parse_access(load_config(path))
    return [(f.location.line, f.location.column, f.code, f.message) for f in found]


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# -- parsing -----------------------------------------------------------------------------------------------


def test_full_template_parses_with_idps_and_locations(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        Data Engineering:
          organization: ORGANIZATION_BILLING_ADMIN
          workspaces: {analytics: WORKSPACE_AUTHOR, clws000000000000000000001: WORKSPACE_MEMBER}
          deployments:
            analytics/prod: DEPLOYMENT_ADMIN
            cldp000000000000000000001: my custom role
        ML Research:
          workspaces: {platform: WORKSPACE_OWNER}
        """,
    )
    (de, ml), found = parse_access(load_config(path))
    assert found == []
    assert de.group == "Data Engineering" and de.idps == ["okta"]
    assert de.organization_role == "ORGANIZATION_BILLING_ADMIN"
    assert [(w.ref, w.role) for w in de.workspaces] == [
        ("analytics", "WORKSPACE_AUTHOR"),
        ("clws000000000000000000001", "WORKSPACE_MEMBER"),
    ]
    assert [(d.ref, d.workspace, d.name, d.role) for d in de.deployments] == [
        ("analytics/prod", "analytics", "prod", "DEPLOYMENT_ADMIN"),
        ("cldp000000000000000000001", None, None, "my custom role"),
    ]
    assert de.deployments[0].location.line == line_of(path, "analytics/prod:")
    # Organization omitted: the lowest organization role (the API needs one).
    assert ml.idps == ["azure"] and ml.organization_role == DEFAULT_ORGANIZATION_ROLE


def test_a_group_both_idps_provision_targets_both(tmp_path: Path) -> None:
    head = HEAD.replace(
        "assign_groups: [Astro Users, ML Research]", "assign_groups: [Astro Users, Analytics]"
    )
    path = write(tmp_path, "Analytics: {organization: ORGANIZATION_MEMBER}\n", head)
    (tpl,) = require_templates(load_config(path))
    assert tpl.idps == ["okta", "azure"]


# -- validation --------------------------------------------------------------------------------------------


def test_hierarchy_violation_points_at_the_deployment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        Data Engineering:
          workspaces: {platform: WORKSPACE_MEMBER}
          deployments: {analytics/prod: DEPLOYMENT_ADMIN}
        """,
    )
    _, found = parse_access(load_config(path))
    assert [(f.code, f.location.line, f.location.column) for f in found] == [
        ("access-hierarchy", line_of(path, "analytics/prod"), 19)
    ]
    assert "needs a role on its workspace 'analytics'" in found[0].message
    assert found[0].hint and "analytics: WORKSPACE_ACCESSOR" in found[0].hint
    with pytest.raises(ConfigError) as exc:
        require_templates(load_config(path))
    assert str(exc.value).startswith(f"{path}:{line_of(path, 'analytics/prod')}:19: a role on deployment")


def test_workspace_granted_by_id_defers_the_hierarchy_check_to_plan(tmp_path: Path) -> None:
    assert (
        findings(
            tmp_path,
            """\
        Data Engineering:
          workspaces: {clws000000000000000000001: WORKSPACE_MEMBER}
          deployments: {analytics/prod: DEPLOYMENT_ADMIN}
        """,
        )
        == []
    )


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ("organization: WORKSPACE_OWNER", "access-role", "unknown organization role 'WORKSPACE_OWNER'"),
        ("organization: organization_member", "access-role", "unknown organization role"),
        (
            "workspaces: {analytics: DEPLOYMENT_ADMIN}",
            "access-role",
            "unknown workspace role 'DEPLOYMENT_ADMIN'",
        ),
        ("workspaces: {analytics: 3}", "access-role", "the workspace role must be a role name"),
        (
            "deployments: {cldp000000000000000000001: WORKSPACE_OWNER}",
            "access-role",
            "WORKSPACE_OWNER is a workspace role, not a deployment role",
        ),
        ("deployments: {prod: DEPLOYMENT_ADMIN}", "access-deployment", "must be '<workspace>/<deployment>'"),
        ("workspaces: [analytics]", "access-shape", "workspaces must be a mapping"),
        ("teams: {}", "access-unknown-key", "unknown key 'teams'"),
    ],
)
def test_each_mistake_is_one_located_finding(tmp_path: Path, body: str, code: str, needle: str) -> None:
    path = write(tmp_path, f"Data Engineering:\n  {body}\n")
    _, found = parse_access(load_config(path))
    assert len(found) == 1, found
    assert found[0].code == code and needle in found[0].message
    assert found[0].location.file == str(path) and found[0].location.line == line_of(path, body.split(":")[0])


def test_role_hints_name_the_fix(tmp_path: Path) -> None:
    _, found = parse_access(
        load_config(write(tmp_path, "Data Engineering: {organization: organization_owner}\n"))
    )
    assert found[0].hint == "role names are upper case: ORGANIZATION_OWNER"
    _, found = parse_access(
        load_config(write(tmp_path, "Data Engineering: {organization: WORKSPACE_OWNER}\n"))
    )
    assert found[0].hint and found[0].hint.startswith(
        "WORKSPACE_OWNER is a workspace role; organization roles:"
    )


def test_a_group_no_idp_pushes_is_refused_with_the_way_to_push_it(tmp_path: Path) -> None:
    okta_only = HEAD[: HEAD.index("azure:")]
    path = write(
        tmp_path, "Astro Users: {organization: ORGANIZATION_MEMBER}\ndata engineering: {}\n", okta_only
    )
    _, found = parse_access(load_config(path))
    assert [(f.code, f.location.line) for f in found] == [
        ("access-group", line_of(path, "  Astro Users:")),
        ("access-group", line_of(path, "data engineering")),
    ]
    # Astro Users is assigned in Okta (members get accounts) but not pushed: no Team in that organization.
    assert found[0].hint and "add it to okta.push_groups so it becomes a Team" in found[0].hint
    assert found[1].hint and found[1].hint.startswith("did you mean 'Data Engineering'?")


def test_a_group_neither_idp_provisions_offers_either_idp_as_alternatives(tmp_path: Path) -> None:
    _, found = parse_access(load_config(write(tmp_path, "Marketing: {}\n")))
    assert found[0].hint == "add it to okta.push_groups; or add it to azure.assign_groups"


def test_validate_command_checks_the_access_section_with_file_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """\
        Data Engineering:
          workspaces: {platform: WORKSPACE_MEMBER}
          deployments: {analytics/prod: DEPLOYMENT_ADMIN}
        """,
    )
    assert main(["validate", str(path), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(f["file"], f["line"], f["code"]) for f in report["findings"]] == [
        (str(path), line_of(path, "analytics/prod"), "access-hierarchy")
    ]
    good = write(tmp_path, "Data Engineering: {workspaces: {analytics: WORKSPACE_AUTHOR}}\n")
    assert main(["validate", str(good)]) == 0
    assert capsys.readouterr().out.strip() == "1 project config OK"


def test_validate_reports_a_broken_project_config_as_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "astro-scim.yaml"
    path.write_text(HEAD + "extra: 1\n", encoding="utf-8")
    (finding,) = validate_project_file(path) or []
    assert finding.code == "config" and "unknown top-level key 'extra'" in finding.message
    assert finding.location.line == line_of(path, "extra:")
    mapping = tmp_path / "okta.yaml"
    mapping.write_text("idp: okta\nusers: []\n", encoding="utf-8")
    assert validate_project_file(mapping) is None  # a mapping file: the mapping validator's business


# -- role sets ---------------------------------------------------------------------------------------------


def test_role_set_round_trips_the_api_body_and_diffs_by_name() -> None:
    body = {
        "organizationRole": "ORGANIZATION_MEMBER",
        "workspaceRoles": [
            {"workspaceId": "w1", "role": "WORKSPACE_MEMBER"},
            {"workspaceId": "w2", "role": "WORKSPACE_OWNER"},
        ],
        "deploymentRoles": [{"deploymentId": "d1", "role": "DEPLOYMENT_ADMIN"}],
    }
    roles = RoleSet.from_api(body)
    assert RoleSet.from_api(roles.body()) == roles and roles.body() == body
    after = RoleSet("ORGANIZATION_OWNER", frozenset({("w1", "WORKSPACE_AUTHOR"), ("w3", "WORKSPACE_MEMBER")}))
    names = {"w1": "analytics", "w2": "platform", "w3": "sales", "d1": "analytics/prod"}
    assert describe_diff(roles, after, names) == [
        "~ organization ORGANIZATION_MEMBER -> ORGANIZATION_OWNER",
        "~ workspace analytics WORKSPACE_MEMBER -> WORKSPACE_AUTHOR",
        "- workspace platform WORKSPACE_OWNER",
        "+ workspace sales WORKSPACE_MEMBER",
        "- deployment analytics/prod DEPLOYMENT_ADMIN",
    ]
    assert describe_diff(roles, roles, names) == []
    assert after.view(names) == {
        "organization": "ORGANIZATION_OWNER",
        "workspaces": {"analytics": "WORKSPACE_AUTHOR", "sales": "WORKSPACE_MEMBER"},
        "deployments": {},
    }


# -- render ------------------------------------------------------------------------------------------------


def test_render_emits_team_roles_terraform_per_idp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """\
        Data Engineering:
          organization: ORGANIZATION_MEMBER
          workspaces: {analytics: WORKSPACE_AUTHOR, clws000000000000000000001: WORKSPACE_MEMBER}
          deployments: {analytics/prod: DEPLOYMENT_ADMIN, cldp000000000000000000001: DEPLOYMENT_ADMIN}
        ML Research:
          workspaces: {platform: WORKSPACE_OWNER}
        """,
    )
    out = tmp_path / "okta-out"
    assert main(["render", "--idp", "okta", "--config", str(path), "--out", str(out)]) == 0
    text = (out / "terraform" / "astro.tf").read_text()
    doc = hcl2.loads(text, serialization_options=HCL)
    (resource,) = doc["resource"]
    (roles,) = resource["astro_team_roles"].values()  # ML Research is Entra's, not in Okta's file
    assert roles["team_id"] == '${local.team_ids["Data Engineering"]}'
    assert roles["organization_role"] == "ORGANIZATION_MEMBER"
    assert [w["workspace_id"] for w in roles["workspace_roles"]] == [
        '${local.workspace_ids["analytics"]}',
        "clws000000000000000000001",
    ]
    assert [d["deployment_id"] for d in roles["deployment_roles"]] == [
        '${local.deployment_ids[format("%s/%s", local.workspace_ids["analytics"], "prod")]}',
        "cldp000000000000000000001",
    ]
    data = {k: v for block in doc["data"] for k, v in block.items()}
    assert data["astro_teams"]["access"]["names"] == ["Data Engineering"]
    assert data["astro_workspaces"]["access"]["names"] == ["analytics"]
    assert data["astro_deployments"]["access"]["names"] == ["prod"]
    assert (doc["variable"][0]["organization_id"]["default"]) == "clorg0000000000000000000a"
    assert "host" not in doc["provider"][0]["astro"]  # the real API: the provider's default host
    # One required_providers block per module (Terraform refuses two): astro's is in the IdP's file.
    tf = {p.name: p.read_text() for p in (out / "terraform").glob("*.tf")}
    assert sum(t.count("required_providers") for t in tf.values()) == 1, list(tf)
    (block,) = hcl2.loads(tf["okta.tf"], serialization_options=HCL)["terraform"]
    assert set(block["required_providers"][0]) == {"okta", "astro"}
    azure = tmp_path / "azure-out"
    assert main(["render", "--idp", "azure", "--config", str(path), "--out", str(azure)]) == 0
    doc = hcl2.loads((azure / "terraform" / "astro.tf").read_text(), serialization_options=HCL)
    assert list(doc["resource"][0]["astro_team_roles"]) == ["ml_research"]
    assert "astro.tf" not in capsys.readouterr().err
    # Rendered again once the templates are gone: the old team roles are not left for terraform apply.
    bare = path.with_name("bare.yaml")
    bare.write_text(path.read_text().split("access:")[0])
    capsys.readouterr()
    assert main(["render", "--idp", "okta", "--config", str(bare), "--out", str(out)]) == 0
    assert not (out / "terraform" / "astro.tf").exists() and (out / "terraform" / "okta.tf").exists()
    assert f"removed {out / 'terraform' / 'astro.tf'}" in capsys.readouterr().err
    # The other IdP into the same folder would make one Terraform module declaring everything twice.
    capsys.readouterr()
    assert main(["render", "--idp", "azure", "--config", str(path), "--out", str(out)]) == 2
    assert "render each IdP into its own folder" in capsys.readouterr().err


def test_render_without_access_writes_no_astro_tf(tmp_path: Path) -> None:
    path = tmp_path / "astro-scim.yaml"
    path.write_text(HEAD, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["render", "--idp", "okta", "--config", str(path), "--out", str(out)]) == 0
    assert not (out / "terraform" / "astro.tf").exists()


def test_render_refuses_a_broken_access_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "Data Engineering: {organization: OWNER}\n")
    assert main(["render", "--idp", "okta", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"{path}:{line_of(path, 'OWNER')}" in capsys.readouterr().err


@pytest.mark.parametrize(("role", "warned"), [("DEPLOYMENT_ADMN", True), ("deployment_admin", True),
                                              ("DEPLOYMENT_ADMIN", False), ("DEPLOYMENT_VIEWER", False)])
def test_a_deployment_role_a_letter_off_the_built_in_one_is_warned_offline(tmp_path: Path, role: str,
                                                                          warned: bool) -> None:
    """Any name may be a custom Deployment role, so DEPLOYMENT_ADMN passed validate and plan and failed only at
    apply (HTTP 400, no file:line). One this close to DEPLOYMENT_ADMIN is a warning at its line."""
    path = write(tmp_path, f"""\
        Data Engineering:
          workspaces: {{analytics: WORKSPACE_MEMBER}}
          deployments: {{analytics/prod: {role}}}
        """)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["validate", str(path)])
    line, text = next((i, t) for i, t in enumerate(path.read_text().splitlines(), 1) if "deployments" in t)
    col = text.index(role) + 1
    assert (f"{path}:{line}:{col}: warning: deployment role {role!r} is not DEPLOYMENT_ADMIN" in out.getvalue()) is warned, \
        out.getvalue()
