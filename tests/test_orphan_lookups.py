"""Astro accounts the IdP's view does not account for are looked up in the IdP (a deprovision that did not reach
Astro is not an orphan), at most views.MAX_INACTIVE_LOOKUPS of them in one audit. The accounts past that bound were
reported `orphaned` like any other, and `drift --fix --yes --delete-orphans` deleted them: the Astro accounts of
users the IdP had deactivated, which the README says are deactivated, never deleted. Now they are orphans
"not verified" (`unverified` in the JSON), which no remedy deletes. The bound is lowered to 2 here so that three
deactivated users are past it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import connector.audit.run as audit_run
from connector.cli import main
from connector.sandbox.core import Sandbox


def _drift(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--format", "json", *args])
    return rc, json.loads(capsys.readouterr().out)


def _findings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for idp in doc["idps"] for f in idp["findings"]]


def test_accounts_past_the_lookup_bound_are_orphans_not_verified_and_never_deleted(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert sandbox.okta is not None
    monkeypatch.setattr(audit_run, "MAX_INACTIVE_LOOKUPS", 2)
    logins = [p.email for p in sandbox.seed_org.people[1:4]]
    for login in logins:
        sandbox.okta.deactivate_user_silently(login)  # Okta deactivates; its deprovision never reaches Astro

    rc, doc = _drift(okta_applied, capsys)
    found = _findings(doc)
    assert rc == 1
    assert sorted(f["kind"] for f in found) == ["deactivation_not_propagated", "deactivation_not_propagated",
                                                "orphaned"]
    orphan = next(f for f in found if f["kind"] == "orphaned")
    assert orphan["subject"] in logins and orphan["unverified"] is True
    assert "not looked up in okta" in orphan["detail"] and "never deleted" in orphan["detail"]
    assert all("unverified" not in f for f in found if f is not orphan)

    # --delete-orphans deactivates the two it verified and deletes nothing; the third is left for a person.
    rc, doc = _drift(okta_applied, capsys, "--fix", "--yes", "--delete-orphans")
    org = sandbox.astro_orgs["okta"].org_id
    accounts = {login: sandbox.astro.find_user(org, login) for login in logins}
    assert all(a is not None for a in accounts.values()), "an account of a deactivated Okta user was deleted"
    assert sum(1 for a in accounts.values() if a is not None and a["active"] is False) == 2
    not_fixed = [n["finding"] for idp in doc["idps"] for n in idp["not_fixed"]]
    assert [(f["kind"], f["subject"], f.get("unverified")) for f in not_fixed] == [
        ("orphaned", orphan["subject"], True)]  # left, and said so
    # The re-audit after the fix has one unknown account, within the bound: looked up, a deprovision.
    assert [(f["kind"], f["subject"]) for f in _findings(doc)] == [("deactivation_not_propagated", orphan["subject"])]

    # Run again: --fix deactivates it.
    rc, doc = _drift(okta_applied, capsys, "--fix", "--yes", "--delete-orphans")
    accounts = {login: sandbox.astro.find_user(org, login) for login in logins}
    assert all(a is not None and a["active"] is False for a in accounts.values())
    rc, doc = _drift(okta_applied, capsys)
    assert rc == 0 and _findings(doc) == []


def test_an_account_okta_made_under_another_app_username_is_okta_s_deprovision_not_an_orphan(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The app username is not the login (a per-assignment name, an email prefix): once Okta deactivated the user,
    the lookup by the account's userName found no such login and the account Okta made (its externalId is the Okta
    user's id) was reported orphaned and deleted by --delete-orphans. Its externalId is looked up first."""
    import httpx

    assert sandbox.okta is not None
    app = str(sandbox.okta.app_by_label("Astro")["id"])
    login = sandbox.seed_org.people[5].email
    uid = sandbox.okta.state.user(login)["id"]
    short = login.split("@")[0]
    with httpx.Client(base_url=str(sandbox.okta_url), headers={"Authorization": f"SSWS {sandbox.okta_token}"}) as c:
        assert c.post(f"/api/v1/apps/{app}/users/{uid}", json={"credentials": {"userName": short}}).status_code == 200
    org = sandbox.astro_orgs["okta"].org_id
    account = sandbox.astro.find_user(org, short)
    assert account is not None and account["externalId"] == uid
    rc, doc = _drift(okta_applied, capsys)
    assert (rc, _findings(doc)) == (0, [])
    sandbox.okta.deactivate_user_silently(login)
    rc, doc = _drift(okta_applied, capsys)
    assert [(f["kind"], f["subject"]) for f in _findings(doc)] == [("deactivation_not_propagated", short)]
    rc, doc = _drift(okta_applied, capsys, "--fix", "--yes", "--delete-orphans")
    account = sandbox.astro.find_user(org, short)
    assert account is not None and account["active"] is False, "Okta's own account was deleted"
