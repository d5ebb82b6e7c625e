"""The emulated Astro in its documented-only mode: it announces and keeps only what Astro's "Set up SCIM
provisioning" page maps (userName, name.givenName, name.familyName, emails, displayName, profileUrl, active;
Teams: displayName, members) and refuses the rest with the RFC 7644 error (§3.12), never a silent 2xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connector.sandbox.core import Sandbox

SCIM = {"Content-Type": "application/scim+json"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def documented() -> Iterator[httpx.Client]:
    with Sandbox(users=2, groups=1, seed=8, astro_documented_only=True) as sb:
        org = sb.astro_orgs["okta"]
        with httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"}) as client:
            yield client


def test_undocumented_attributes_are_refused_with_the_rfc_error(documented: httpx.Client) -> None:
    ok = documented.post("/Users", headers=SCIM, json={
        "schemas": [USER], "userName": "ada@acme.example", "externalId": "00u1",
        "name": {"givenName": "Ada", "familyName": "Lovelace"}, "displayName": "Ada Lovelace",
        "emails": [{"value": "ada@acme.example", "type": "work", "primary": True}], "active": True,
        "password": "1mz050nq", "groups": []})  # Okta's create, as its reference prints it
    assert ok.status_code == 201, ok.text

    title = documented.post("/Users", headers=SCIM, json={"schemas": [USER], "userName": "bob@acme.example",
                                                          "title": "Engineer"})
    assert title.status_code == 400
    assert title.json()["scimType"] == "invalidSyntax" and "title" in title.json()["detail"]

    nick = documented.patch(f"/Users/{ok.json()['id']}", headers=SCIM, json={
        "schemas": [PATCH], "Operations": [{"op": "add", "path": "nickName", "value": "Babs"}]})
    assert nick.status_code == 400 and nick.json()["scimType"] == "invalidPath"
    middle = documented.patch(f"/Users/{ok.json()['id']}", headers=SCIM, json={
        "schemas": [PATCH], "Operations": [{"op": "replace", "value": {"name.middleName": "Augusta"}}]})
    assert middle.status_code == 400 and middle.json()["scimType"] == "invalidPath"
    assert "nickName" not in documented.get(f"/Users/{ok.json()['id']}").json()


def test_discovery_announces_only_the_documented_attributes(documented: httpx.Client) -> None:
    schema = documented.get(f"/Schemas/{USER}").json()
    names = {a["name"] for a in schema["attributes"]}
    assert {"userName", "name", "emails", "displayName", "profileUrl", "active"} <= names
    assert not names & {"title", "nickName", "addresses", "phoneNumbers", "x509Certificates"}
    name = next(a for a in schema["attributes"] if a["name"] == "name")
    assert {s["name"] for s in name["subAttributes"]} == {"givenName", "familyName"}
    listed = documented.get("/Schemas").json()
    assert "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" not in {s["id"] for s in listed["Resources"]}
    user_type = documented.get("/ResourceTypes/User").json()
    assert not user_type.get("schemaExtensions")
    config = documented.get("/ServiceProviderConfig").json()
    assert config["patch"]["supported"] and config["filter"]["supported"]
    assert not any(config[f]["supported"] for f in ("bulk", "changePassword", "sort", "etag"))
    bulk = documented.post("/Bulk", headers=SCIM, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []})
    assert bulk.status_code == 501
