"""The product against the emulated Astro that keeps only what Astro documents (`astro_documented_only`): the
shipped mappings send nothing it refuses, so setup, provisioning and the audit work end to end, for both IdPs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox


@pytest.fixture
def strict() -> Iterator[Sandbox]:
    with Sandbox(users=8, groups=3, seed=21, astro_documented_only=True) as sb:
        yield sb


def drift_findings(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    return rc, [f"{f['kind']}: {f['subject']}" for idp in doc["idps"] for f in idp["findings"]]


def test_okta_provisions_into_a_documented_only_astro_and_audits_clean(
        strict: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Okta pushes only the mapped properties: nothing the strict Astro refuses.
    config = strict.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    assert strict.okta is not None
    org = strict.astro_orgs["okta"]
    strict.okta.enable_provisioning(str(strict.okta.app_by_label("Astro")["id"]), org.scim_url, org.token)
    assert main(["apply", "-c", str(config), "--yes"]) == 0  # verified: every user and Team reached Astro
    rc, found = drift_findings(config, capsys)
    assert (rc, found) == (0, [])
    users = strict.astro.users(org.org_id)
    assert users and all(u["userName"] and u["name"]["givenName"] for u in users)


def test_entra_sending_an_attribute_astro_refuses_is_a_failed_apply_naming_it(
        strict: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Entra's non-gallery template maps more than the seed's four attributes (title, emails, ...) and the tool
    # keeps the template's other mappings (providers/entra/schema.py). An Astro that keeps only what it documents
    # refuses them: apply must not say "applied", and names Astro's own refusal; drift reports it.
    config = strict.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    capsys.readouterr()
    assert main(["apply", "-c", str(config), "--yes"]) == 4
    err = capsys.readouterr().err
    assert "provisioning FAILED" in err and "is not an attribute this organization keeps" in err
    rc, found = drift_findings(config, capsys)
    assert rc == 1 and any(f.startswith("idp_error") for f in found)
