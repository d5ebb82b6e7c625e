"""Okta users tests make through the emulator's API, as an admin would in the Admin Console."""

from __future__ import annotations

from typing import Any

import httpx


def directly_assigned(sb: Any, login: str = "dana.direct@acme.example") -> str:
    """A new Okta user assigned to the Astro app directly (no group): Okta provisions them into Astro. Returns the
    Okta user's id."""
    assert sb.okta is not None
    app_id = str(sb.okta.app_by_label("Astro")["id"])
    with httpx.Client(base_url=str(sb.okta_url), headers={"Authorization": f"SSWS {sb.okta_token}"}) as okta:
        user = okta.post("/api/v1/users", params={"activate": "true"}, json={"profile": {
            "firstName": "Dana", "lastName": "Direct", "email": login, "login": login}}).raise_for_status().json()
        okta.post(f"/api/v1/apps/{app_id}/users", json={"id": user["id"], "scope": "USER",
                                                        "credentials": {"userName": login}}).raise_for_status()
    return str(user["id"])
