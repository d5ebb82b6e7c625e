"""The product against the emulated Astro that keeps only what Astro documents (`astro_documented_only`): the
shipped mappings send nothing it refuses (for Entra, apply removes the template's other mappings), so setup,
provisioning and the audit work end to end, for both IdPs."""

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


def test_entra_provisions_into_a_documented_only_astro_and_audits_clean(
        strict: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Entra's non-gallery template maps more than Astro documents (title, emails, addresses, the enterprise
    # extension...); the strict Astro refuses those. apply writes only the mapping file's attributes (and
    # `active`, Entra's deprovisioning), so every user and Team gets there.
    config = strict.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    capsys.readouterr()
    assert main(["apply", "-c", str(config), "--yes"]) == 0  # verified: every user and Team reached Astro
    out = capsys.readouterr().out
    assert "azure: verified" in out and "FAILED" not in out
    assert strict.graph is not None
    sp = next(s for s in strict.graph.service_principals() if s["displayName"] == "Astro")
    schema = strict.graph.schema(str(sp["id"]))
    targets = {om["sourceObjectName"]: sorted(a["targetAttributeName"] for a in om["attributeMappings"])
               for rule in schema["synchronizationRules"] for om in rule["objectMappings"]}
    assert targets == {"User": ["active", "displayName", "name.familyName", "name.givenName", "userName"],
                       "Group": ["displayName", "members"]}
    # Another cycle (Entra's schedule) exports nothing Astro refuses: the log has no failure.
    strict.graph.run_cycle(str(sp["id"]))
    failures = [e for e in strict.graph.logs() if e["provisioningStatusInfo"]["status"] == "failure"]
    assert failures == []
    rc, found = drift_findings(config, capsys)
    assert (rc, found) == (0, [])
    # Read back: Astro holds every user with the mapped names, and the Teams with their members.
    org = strict.astro_orgs["azure"]
    users = {u["userName"].casefold(): u for u in strict.astro.users(org.org_id)}
    assert set(users) == {p.email.casefold() for p in strict.seed_org.people}
    person = strict.seed_org.people[0]
    assert users[person.email.casefold()]["name"] == {"givenName": person.first_name,
                                                      "familyName": person.last_name}
    for team in strict.default_team_names():
        group = strict.astro.find_group(org.org_id, team)
        assert group is not None and len(group["members"]) == len(strict.seed_org.team(team).member_keys)
    # Run twice: the second plan is empty, and apply changes nothing.
    assert main(["plan", "-c", str(config), "--exit-code"]) == 0
    assert "azure: no changes" in capsys.readouterr().out
    strict.logs["graph"].clear()
    assert main(["apply", "-c", str(config), "--yes"]) == 0
    assert [w.path for w in strict.logs["graph"].writes() if not w.path.endswith("/validateCredentials")] == []
