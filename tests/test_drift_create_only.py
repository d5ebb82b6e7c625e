"""An attribute mapped `apply_on: create_only` (Okta DONT_PUSH, Entra ObjectAddOnly) is sent when the user is
created and never again: after the IdP's value changes, Astro keeping the old one is what the mapping asks for.
drift compared it with the IdP's current value, and reported an attribute_mismatch that --fix could not clear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from applied import applied

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.support.packaged import default_mapping


@pytest.fixture
def sb() -> Any:
    with Sandbox(users=6, groups=3, seed=3) as sandbox:
        yield sandbox


def _findings(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[tuple[str, str]]]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    return rc, [(f["kind"], f.get("attribute")) for idp in doc["idps"] for f in idp["findings"]]


def test_okta_create_only_attribute_is_not_drift_after_the_idp_changes_it(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = tmp_path / "okta.yaml"
    text = default_mapping("okta").read_text()
    assert "    source: user.lastName\n    apply_on: create_and_update\n" in text
    mapping.write_text(text.replace("    source: user.lastName\n    apply_on: create_and_update\n",
                                    "    source: user.lastName\n    apply_on: create_only\n"))
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    data = yaml.safe_load(config.read_text())
    data["okta"]["mapping"] = str(mapping)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    applied(sb, config, "okta", console_step=True)
    assert _findings(config, capsys) == (0, [])
    login = sb.seed_org.people[2].email
    with httpx.Client(base_url=str(sb.okta_url), headers={"Authorization": f"SSWS {sb.okta_token}"}) as c:
        (user,) = [u for u in c.get("/api/v1/users", params={"limit": 200}).json()
                   if u["profile"]["login"] == login]
        c.post(f"/api/v1/users/{user['id']}", json={"profile": {"lastName": "Renamed"}}).raise_for_status()
    astro = {u["userName"]: u for u in sb.astro.users(sb.astro_orgs["okta"].org_id)}
    assert astro[login]["name"]["familyName"] != "Renamed"  # DONT_PUSH: Okta did not send the new value
    assert _findings(config, capsys) == (0, [])


def test_entra_create_only_attribute_is_not_drift_after_the_idp_changes_it(
        sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = tmp_path / "azure.yaml"
    text = default_mapping("azure").read_text()
    assert '    source: "[surname]"\n' in text
    mapping.write_text(text.replace('    source: "[surname]"\n', '    source: "[surname]"\n    apply_on: create_only\n'))
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    data = yaml.safe_load(config.read_text())
    data["azure"]["mapping"] = str(mapping)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    applied(sb, config, "azure")
    assert _findings(config, capsys) == (0, [])
    assert sb.graph is not None
    login = sb.seed_org.people[2].email
    sb.graph.update_user(login, surname="Renamed")
    sp = next(s for s in sb.graph.service_principals() if s["displayName"] == "Astro")
    sb.graph.run_cycle(str(sp["id"]))  # Entra's cycle: ObjectAddOnly leaves the existing user's value alone
    astro = {u["userName"]: u for u in sb.astro.users(sb.astro_orgs["azure"].org_id)}
    assert astro[login]["name"]["familyName"] != "Renamed"
    assert _findings(config, capsys) == (0, [])
