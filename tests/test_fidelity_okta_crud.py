"""Okta's "SCIM 2.0 CRUD Test" (the Runscope export Okta publishes, tests/data/fidelity/okta-scim20-crud-test.json)
replayed against the sandbox: its Okta steps go to the emulated Okta, its SCIM checks to the emulated Astro the
Okta app provisions into.

Target: all 21 assertions as published: create an Okta user, assign it to the app (with the profile values the
mapping gives, which Okta accepts), update, deactivate, activate again, re-assign, unassign; after each step
the SCIM server holds what Okta pushed. The app is set up as Astro's page says (API integration to the
organization's SCIM URL; Create Users, Update User Attributes, Deactivate Users).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector.sandbox.core import Sandbox
from connector.sandbox.replay import run_runscope

EXPORT = Path(__file__).parent / "data" / "fidelity" / "okta-scim20-crud-test.json"


@pytest.fixture
def okta_app() -> Iterator[tuple[Sandbox, str]]:
    with Sandbox(users=4, groups=2, seed=3) as sb:
        assert sb.okta is not None and sb.okta_url is not None
        org = sb.astro_orgs["okta"]
        app_id = str(sb.okta.app_by_label("Astro")["id"])
        sb.okta.enable_provisioning(app_id, org.scim_url, org.token)  # the Admin Console's API integration
        enabled = {"status": "ENABLED"}
        resp = httpx.put(
            f"{sb.okta_url}/api/v1/apps/{app_id}/features/USER_PROVISIONING",
            headers={"Authorization": f"SSWS {sb.okta_token}"},
            json={"create": {"lifecycleCreate": enabled},
                  "update": {"profile": enabled, "lifecycleDeactivate": enabled}},
        )
        assert resp.status_code == 200, resp.text
        yield sb, app_id


def test_okta_scim20_crud_test_passes_as_published(okta_app: tuple[Sandbox, str]) -> None:
    sb, app_id = okta_app
    org = sb.astro_orgs["okta"]
    export = json.loads(EXPORT.read_text(encoding="utf-8"))
    variables: dict[str, object] = {
        "oktaOrgUrl": sb.okta_url,
        "oktaToken": sb.okta_token,
        "oktaAppId": app_id,
        "SCIMUrl": org.scim_url,
        "SCIMAuth": f"Bearer {org.token}",
        "okta_user_firstname": "Crud",
        "okta_user_firstname_update": "Crudder",
        "okta_user_lastname": "Tester",
        "okta_user_email": "crud.tester@atko.example",
        "okta_user_title": "Tester",
        "okta_user_primaryphone": "+1 555 0100",
    }
    with httpx.Client(timeout=10) as client:
        report = run_runscope(export, client, variables, response_time=lambda _r: sb.faults.latency_ms)
    assertions = sum(len(s.get("assertions", [])) for s in export["steps"])
    assert assertions == 21
    assert not report.failures, report.table()
    assert report.passed == assertions, report.table()

    # Okta never deletes the user: unassigned, it is deactivated and still there.
    user = sb.astro.find_user(org.org_id, "crud.tester@atko.example")
    assert user is not None and user["active"] is False and user["name"]["givenName"] == "Crudder"
    assert user["externalId"] == variables["okta_add_userid"]


def test_assignment_with_a_value_other_than_the_mapped_one_is_refused(okta_app: tuple[Sandbox, str]) -> None:
    """Okta refuses only profile values that differ from what the mapping gives (E0000075)."""
    sb, app_id = okta_app
    headers = {"Authorization": f"SSWS {sb.okta_token}"}
    created = httpx.post(f"{sb.okta_url}/api/v1/users?activate=true", headers=headers, json={
        "profile": {"firstName": "Ann", "lastName": "Other", "email": "ann@atko.example",
                    "login": "ann@atko.example"},
        "credentials": {"password": {"value": "Kv7J2LEa"}}}).json()
    refused = httpx.post(f"{sb.okta_url}/api/v1/apps/{app_id}/users", headers=headers, json={
        "id": created["id"], "scope": "USER", "profile": {"givenName": "Not Ann"}})
    assert refused.status_code == 403 and refused.json()["errorCode"] == "E0000075"
    assert sb.astro.find_user(sb.astro_orgs["okta"].org_id, "ann@atko.example") is None


def test_user_lifecycle_activate_and_reactivate(okta_app: tuple[Sandbox, str]) -> None:
    """Okta's lifecycle rules (okta-management-openapi-5.1.0.yaml, activateUser / reactivateUser): activate only
    STAGED or DEPROVISIONED users (ACTIVE with a password, PROVISIONED without); reactivate only PROVISIONED or
    RECOVERY users; with sendEmail=false the answer carries the activation link and token."""
    sb, _app_id = okta_app
    with httpx.Client(base_url=str(sb.okta_url), headers={"Authorization": f"SSWS {sb.okta_token}"}) as c:
        def user(login: str, password: bool) -> str:
            body: dict[str, object] = {"profile": {"firstName": "L", "lastName": "C", "email": login, "login": login}}
            if password:
                body["credentials"] = {"password": {"value": "Kv7J2LEa"}}
            else:
                body["credentials"] = {}
            made = c.post("/api/v1/users", params={"activate": "false"}, json=body)
            assert made.status_code == 200 and made.json()["status"] == "STAGED", made.text
            return str(made.json()["id"])

        with_pw, without_pw = user("pw@atko.example", True), user("nopw@atko.example", False)
        assert c.post(f"/api/v1/users/{with_pw}/lifecycle/activate").json() == {}
        assert c.get(f"/api/v1/users/{with_pw}").json()["status"] == "ACTIVE"
        again = c.post(f"/api/v1/users/{with_pw}/lifecycle/activate")
        assert again.status_code == 403 and again.json()["errorCode"] == "E0000016"
        assert c.post(f"/api/v1/users/{with_pw}/lifecycle/reactivate").status_code == 403
        assert c.post(f"/api/v1/users/{with_pw}/lifecycle/deactivate").status_code == 200
        assert c.post(f"/api/v1/users/{with_pw}/lifecycle/activate").status_code == 200
        assert c.get(f"/api/v1/users/{with_pw}").json()["status"] == "ACTIVE"

        token = c.post(f"/api/v1/users/{without_pw}/lifecycle/activate", params={"sendEmail": "false"}).json()
        assert token["activationToken"] and token["activationUrl"].endswith(token["activationToken"])
        assert c.get(f"/api/v1/users/{without_pw}").json()["status"] == "PROVISIONED"
        again_token = c.post(f"/api/v1/users/{without_pw}/lifecycle/reactivate").json()  # sendEmail defaults false
        assert again_token["activationToken"] != token["activationToken"]
