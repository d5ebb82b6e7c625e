"""`test-connection` and `status` with `--format json`: one document that validates against its published,
versioned schema (docs/schemas/checks.v1.json), with the same verdict and exit code as the text, and no secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "schemas" / "checks.v1.json").read_text())


def checks(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    rc = main([*argv, "--format", "json"])
    out = capsys.readouterr().out
    doc = json.loads(out)  # stdout holds the document and nothing else
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
    return rc, doc


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_healthy_and_broken_setups_as_json(sandbox: Sandbox, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = str(sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",)))
    # Never applied: test-connection finds the credentials good but no app; status is not healthy.
    rc, doc = checks(capsys, "status", "-c", config)
    assert rc == 1 and doc["ok"] is False and doc["command"] == "status" and doc["exit_code"] == 1
    assert main(["apply", "-c", config, "--yes"]) == 0
    for command in ("test-connection", "status"):
        rc, doc = checks(capsys, command, "-c", config)
        assert rc == 0 and doc["ok"] is True, doc
        assert [i["idp"] for i in doc["idps"]] == ["azure"] and doc["idps"][0]["checks"]
        assert doc["tool_version"] and doc["checked_at"].endswith("+00:00") and doc["exit_code"] == 0
        assert doc["generated_at"] == doc["checked_at"]  # the envelope every other document has
    # A wrong Astro token saved nowhere yet: our own token for Astro refused -> a failed check with its hint.
    (tmp_path / "astro-azure.token").write_text("not-the-astro-token\n")
    rc, doc = checks(capsys, "test-connection", "-c", config)
    failed = [c for c in doc["idps"][0]["checks"] if c["ok"] is False]
    assert rc == 1 and doc["ok"] is False and failed and all(c["hint"] for c in failed)
    text = json.dumps(doc)
    for secret in (sandbox.graph_token, sandbox.astro_orgs["azure"].token, "not-the-astro-token"):
        assert secret not in text
