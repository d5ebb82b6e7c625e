"""The SCIM requests Microsoft's provisioning tutorial and SCIM compatibility page print (transcribed in
tests/data/fidelity/entra-scim-doc-examples.json) replayed against the emulated Astro over loopback.

Target: every documented request passes, including Example 5 (PATCH `manager` with `[{"$ref", "value"}]`: the
manager is kept in the enterprise extension). One printed request is not RFC 7644 syntax: Example 1's
`filter=externalId eq jyoung` (the value unquoted); its right answer is the RFC's 400 `invalidFilter`
(RFC 7644 §3.4.2.2: string values are JSON strings; §3.12 Table 9), which is what this replay expects of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.sandbox.core import Sandbox
from connector.sandbox.replay import run_documented

EXAMPLES = Path(__file__).parent / "data" / "fidelity" / "entra-scim-doc-examples.json"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

RFC_JUDGED = {
    "query-externalid-unquoted": {
        "expect_status": [400],
        "checks": [["scimType", "eq", "invalidFilter"],
                   ["schemas", "contains", "urn:ietf:params:scim:api:messages:2.0:Error"]],
    },
}


@pytest.fixture
def astro() -> Iterator[tuple[Sandbox, httpx.Client]]:
    with Sandbox(users=3, groups=1, seed=6) as sb:
        org = sb.astro_orgs["azure"]
        with httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"}) as client:
            yield sb, client


def test_microsoft_documented_requests(astro: tuple[Sandbox, httpx.Client]) -> None:
    _sb, client = astro
    document: dict[str, Any] = json.loads(EXAMPLES.read_text(encoding="utf-8"))
    variables: dict[str, Any] = {"guid": "0f1e2d3c-4b5a-4697-8877-665544332211"}  # the portal's random GUID
    report = run_documented(document, client, variables, overrides=RFC_JUDGED)
    steps = report.steps()
    assert len(steps) == len(document["steps"]) == 34
    assert not report.failures, report.table()


def test_example_5_manager_is_kept_and_served(astro: tuple[Sandbox, httpx.Client]) -> None:
    """The manager PATCH as Microsoft prints it (unqualified path, one-entry list) lands in the enterprise
    extension, and reads back there; a PATCH of an attribute no schema declares is refused, not dropped."""
    _sb, client = astro
    scim = {"Content-Type": "application/scim+json"}
    boss = client.post("/Users", headers=scim, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "boss@contoso.example"}).json()
    joy = client.post("/Users", headers=scim, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "joy@contoso.example"}).json()
    patched = client.patch(f"/Users/{joy['id']}", headers=scim, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "manager",
                        "value": [{"$ref": f"http://example.com/scim/Users/{boss['id']}", "value": boss["id"]}]}]})
    assert patched.status_code in (200, 204), patched.text
    got = client.get(f"/Users/{joy['id']}").json()
    assert got[ENTERPRISE]["manager"]["value"] == boss["id"]

    refused = client.patch(f"/Users/{joy['id']}", headers=scim, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "favouriteColour", "value": "teal"}]})
    assert refused.status_code == 400 and refused.json()["scimType"] == "invalidPath"
    refused = client.post("/Users", headers=scim, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x@contoso.example",
        "favouriteColour": "teal"})
    assert refused.status_code == 400 and refused.json()["scimType"] == "invalidSyntax"
    group = client.post("/Groups", headers=scim, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G",
        "members": [{"value": "no-such-user"}]})
    assert group.status_code == 400 and group.json()["scimType"] == "invalidValue"
