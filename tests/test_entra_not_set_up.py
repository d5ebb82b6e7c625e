"""Entra `test-connection` before the first `apply` (no Astro app in the tenant yet) answers as Okta's does:
information with the next step, never "ok", never a failure; through the real CLI against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox


def test_entra_before_apply_is_not_set_up_yet_with_the_hint_in_text(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    capsys.readouterr()
    assert main(["test-connection", "-c", str(config), "--idp", "azure"]) == 0  # README: exit 1 on a failed check
    out = capsys.readouterr().out
    assert "FAIL" not in out, out
    app = next(line for line in out.splitlines() if "app 'Astro'" in line)
    assert app.lstrip().startswith("info") and "not set up yet" in app, out
    test = next(line for line in out.splitlines() if "validateCredentials" in line)
    assert test.lstrip().startswith("info") and "not verified" in test, out
    lines = out.splitlines()
    for line in (app, test):  # each information line is followed by its next step
        assert lines[lines.index(line) + 1].strip().startswith("hint: run 'astro-scim apply --idp azure'"), out
    assert "ok   Astro SCIM token" in out  # ours is still checked straight against Astro


def test_entra_before_apply_in_json(sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    capsys.readouterr()
    assert main(["test-connection", "-c", str(config), "--idp", "azure", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["exit_code"] == 0
    checks = {c["name"]: c for c in doc["idps"][0]["checks"]}
    for name in ("app 'Astro'", "Astro SCIM (validateCredentials)"):
        assert checks[name]["ok"] is None and "apply --idp azure" in checks[name]["hint"], checks[name]
    assert "not set up yet" in checks["app 'Astro'"]["detail"]
    assert checks["Astro SCIM (validateCredentials)"]["detail"].startswith("not verified")
    # apply, then the same checks are verified
    assert main(["apply", "-c", str(config), "--idp", "azure", "--yes"]) == 0
    capsys.readouterr()
    assert main(["test-connection", "-c", str(config), "--idp", "azure", "--format", "json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["idps"][0]["checks"]}
    assert checks["app 'Astro'"]["ok"] is True and checks["Astro SCIM (validateCredentials)"]["ok"] is True
