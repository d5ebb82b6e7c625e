"""An Okta mapping whose value depends on what the audit does not read (the user's groups, another app's or the
org's profile, the clock) is not judged from a guess: it was evaluated as if the user were in no group (or the
value were null), and every member of the group became an attribute_mismatch that `drift --fix` could not clear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from applied import applied

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM
from connector.support.packaged import default_mapping


@pytest.fixture
def sb() -> Any:
    with Sandbox(users=6, groups=3, seed=3) as sandbox:
        yield sandbox


def test_a_group_dependent_okta_expression_is_not_reported_as_drift(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = tmp_path / "okta.yaml"
    mapping.write_text(default_mapping("okta").read_text().replace(
        "source: user.displayName",
        f"source: 'isMemberOfGroupName(\"{ASSIGNED_TEAM}\") ? \"Member \" + user.lastName : user.displayName'"))
    assert "isMemberOfGroupName" in mapping.read_text()
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    data = yaml.safe_load(config.read_text())
    data["okta"]["mapping"] = str(mapping)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(mapping)]) == 0
    applied(sb, config, "okta", console_step=True)
    names = [u["displayName"] for u in sb.astro.users(sb.astro_orgs["okta"].org_id)]
    assert any(str(n).startswith("Member ") for n in names), names  # Okta computed it with the user's groups
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    findings = [(f["kind"], f.get("attribute")) for idp in doc["idps"] for f in idp["findings"]]
    assert (rc, findings) == (0, []), findings
