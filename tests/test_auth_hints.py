"""401 and 403 get different hints: 401 says the credential is wrong or expired, 403 that it lacks a permission
and names it. 403s the emulators cannot be asked for are made by a tampering proxy (a real HTTP server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hostile import Answer, TamperingProxy

from connector.cli import main
from connector.sandbox.core import TOKEN_FILES, Sandbox


def _forbid(path_end: str, body: object) -> object:
    def tamper(a: Answer) -> None:
        if a.path.endswith(path_end):
            a.status = 403
            a.set_json(body)
    return tamper


def _hint(err: str) -> str:
    return next(line for line in err.splitlines() if line.strip().startswith("hint:"))


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_401_says_the_credential_is_wrong_or_expired(sandbox: Sandbox, tmp_path: Path, idp: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=(idp,))
    (tmp_path / TOKEN_FILES["okta" if idp == "okta" else "graph"]).write_text("not-the-token\n")
    assert main(["plan", "--config", str(config), "--idp", idp]) == 3
    hint = _hint(capsys.readouterr().err)
    assert ("expired" in hint) and "permission" not in hint and "scope" not in hint
    assert str(tmp_path / TOKEN_FILES["okta" if idp == "okta" else "graph"]) in hint  # which credential was refused


def test_okta_403_names_the_scope_the_call_needs(sandbox: Sandbox, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    body = {"errorCode": "E0000006", "errorSummary": "You do not have permission to perform the requested action",
            "errorLink": "E0000006", "errorId": "x", "errorCauses": []}
    with TamperingProxy(sandbox.okta_url, _forbid("/api/v1/apps", body)) as proxy:
        config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
        data = yaml.safe_load(config.read_text())
        data["okta"]["org_url"] = proxy.url
        config.write_text(yaml.safe_dump(data))
        assert main(["plan", "--config", str(config), "--idp", "okta"]) == 3
    err = capsys.readouterr().err
    hint = _hint(err)
    assert "/api/v1/apps" in err and "okta.apps.read" in hint and "expired" not in hint


def test_graph_403_names_the_missing_permission(sandbox: Sandbox, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox.graph is not None
    sandbox.graph.deny_permission("applications")
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    assert main(["plan", "--config", str(config), "--idp", "azure"]) == 3
    err = capsys.readouterr().err
    assert "Application.Read.All" in _hint(err) and "expired" not in _hint(err)


def test_astro_401_and_403_differ(sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    good = (tmp_path / TOKEN_FILES["astro-okta"]).read_text()
    (tmp_path / TOKEN_FILES["astro-okta"]).write_text("not-the-token\n")
    assert main(["drift", "--config", str(config), "--idp", "okta"]) == 3
    unauthorized = _hint(capsys.readouterr().err)
    (tmp_path / TOKEN_FILES["astro-okta"]).write_text(good)
    scim_error = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "403", "detail": "forbidden"}
    with TamperingProxy(sandbox.astro_url, _forbid("/Users", scim_error)) as proxy:
        data = yaml.safe_load(config.read_text())
        org = sandbox.astro_orgs["okta"]
        data["okta"]["astro"]["scim_url"] = proxy.url + org.scim_url[len(sandbox.astro_url):]
        config.write_text(yaml.safe_dump(data))
        assert main(["drift", "--config", str(config), "--idp", "okta"]) == 3
    forbidden = _hint(capsys.readouterr().err)
    assert "expired" in unauthorized and "Organization Owner" in forbidden and "expired" not in forbidden
    assert json.dumps(forbidden)  # one line


@pytest.mark.parametrize("argv", [["provision", "--user", ""], ["provision", "--group", " "], ["push-groups", ""]])
def test_an_empty_name_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "must not be empty" in err and "None" not in err
