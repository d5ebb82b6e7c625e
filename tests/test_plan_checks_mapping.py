"""`plan` checks the Okta expressions of the mapping file as `validate` does, before it talks to Okta."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.support.packaged import default_mapping


def _okta_config_with(sandbox: Sandbox, tmp_path: Path, mapping: Path) -> Path:
    """The sandbox's Okta config with okta.mapping naming `mapping`."""
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    data = yaml.safe_load(config.read_text())
    data["okta"]["mapping"] = str(mapping)
    config.write_text(yaml.safe_dump(data))
    return config


@pytest.mark.parametrize(("expression", "words"), [
    ("String.toUpperCase(user.firstName", "unclosed"),
    ("user.firstName +", "expression"),
    ("String.noSuchFunction(user.firstName)", "noSuchFunction"),
])
def test_plan_refuses_a_bad_okta_expression_before_calling_okta(sandbox: Sandbox, tmp_path: Path, expression: str,
                                                               words: str, capsys: pytest.CaptureFixture[str]) -> None:
    lines = default_mapping("okta").read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if "user.firstName" in line)
    lines[index] = lines[index].replace("user.firstName", expression.replace('"', '\\"'))
    mapping = tmp_path / "okta.yaml"
    mapping.write_text("\n".join(lines) + "\n")
    config = _okta_config_with(sandbox, tmp_path, mapping)
    sandbox.logs["okta"].clear()
    assert main(["plan", "--config", str(config), "--idp", "okta"]) == 2
    err = capsys.readouterr().err
    assert f"{mapping}:{index + 1}:" in err and words.lower() in err.lower()
    assert sandbox.logs["okta"].entries == []


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_a_mapping_file_that_is_missing_is_named_at_the_config_line(sandbox_config: Path, idp: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The config's line that names the file is where the fix goes (it said '<path>: file not found' alone)."""
    data = yaml.safe_load(sandbox_config.read_text())
    data[idp]["mapping"] = "nope/mapping.yaml"
    sandbox_config.write_text(yaml.safe_dump(data, sort_keys=False))
    line = next(n for n, text in enumerate(sandbox_config.read_text().splitlines(), 1)
                if "nope/mapping.yaml" in text)
    capsys.readouterr()
    assert main(["plan", "--idp", idp, "-c", str(sandbox_config)]) == 2
    err = capsys.readouterr().err
    assert f"error: {sandbox_config}:{line}:" in err and "nope/mapping.yaml: file not found" in err
    assert "hint: fix the path" in err


@pytest.mark.parametrize("target", ["externalId", "active", "name.formatted", 'emails[primary eq true].value',
                                    'phoneNumbers[type eq "home"].value'])
def test_an_okta_target_plan_cannot_map_is_refused_by_validate_too(sandbox: Sandbox, tmp_path: Path, target: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """validate said OK to an Okta user target the app has no attribute for, then plan refused it (a false pass
    in CI): both now refuse it, at the target's line."""
    mapping = tmp_path / "okta.yaml"
    mapping.write_text(_with_user_entry(default_mapping("okta").read_text(), target))
    line = next(n for n, text in enumerate(mapping.read_text().splitlines(), 1) if "user.login" in text) - 1
    assert main(["validate", str(mapping)]) == 1
    out = capsys.readouterr().out
    assert f"{mapping}:{line}:13: error: Okta has no app user attribute for {target}" in out, out
    config = _okta_config_with(sandbox, tmp_path, mapping)
    sandbox.logs["okta"].clear()
    assert main(["plan", "--config", str(config), "--idp", "okta"]) == 2
    assert f"{mapping}:{line}:" in capsys.readouterr().err
    assert sandbox.logs["okta"].entries == []


def _with_user_entry(text: str, target: str) -> str:
    """The shipped Okta mapping with one more user entry, before its groups."""
    head, groups = text.split("groups:\n")
    return head + f"  - target: '{target}'\n    source: user.login\ngroups:\n" + groups
