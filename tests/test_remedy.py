"""Remediation plans from findings (pure), the safety limit, and the Astro-side executor over real SCIM HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.audit.reconcile import Finding, Kind, finding_id, remedy_text
from connector.audit.remedies import (
    ASTRO_DEACTIVATE,
    ASTRO_DELETE,
    ASTRO_REACTIVATE,
    AZURE_GROUP,
    AZURE_USER,
    MANUAL,
    OKTA_REASSIGN,
    OKTA_REPUSH,
    OKTA_UPDATE,
    check_limits,
    execute,
    plan_remedies,
)
from connector.config.load import AstroConfig, SafetyConfig
from connector.errors import EXIT_USAGE, UnsafePlan
from connector.plan.model import Action
from connector.sandbox.astro.scim import AstroScim
from connector.sandbox.server import ServedApp
from connector.support.http import RetryPolicy
from connector.support.secret import Secret

ADA, BOB = "ada@acme.example", "bob@acme.example"


def finding(idp: str, kind: Kind, subject: str, **fields: Any) -> Finding:
    return Finding(id=finding_id(idp, kind, subject, str(sorted(fields.items()))), kind=kind, idp=idp,
                   subject=subject, detail="d", remedy=remedy_text(idp, kind, issue_kind=fields.get("issue_kind", "")),
                   **fields)


def rows(plan: Any) -> list[tuple[str, str, str]]:
    return [(c.action.value, c.resource, c.key) for c in plan.changes]


def test_okta_plan_orders_cleanup_users_then_groups_and_merges_duplicates() -> None:
    findings = [
        finding("okta", Kind.MEMBERSHIP_MISSING, "Analytics", team="Analytics", user=BOB),
        finding("okta", Kind.USER_MISSING, ADA, user=ADA, teams=("Analytics", "Platform")),
        finding("okta", Kind.ATTRIBUTE_MISMATCH, ADA, user=ADA, attribute="name.givenName"),
        finding("okta", Kind.DEACTIVATION_NOT_PROPAGATED, BOB, user=BOB, astro_id="a2"),
        finding("okta", Kind.ORPHANED, "eve@acme.example", astro_id="a9"),
        finding("okta", Kind.IDP_ERROR, "Platform", team="Platform", issue_kind="okta.push_error"),
        finding("okta", Kind.TEAM_ROLES_MISMATCH, "Platform", team="Platform"),  # connector.access handles it
    ]
    plan = plan_remedies("okta", findings)
    assert rows(plan) == [
        ("update", ASTRO_DEACTIVATE, BOB),
        ("run", OKTA_REASSIGN, ADA),
        ("run", OKTA_REPUSH, "Analytics"),
        ("run", OKTA_REPUSH, "Platform"),
        ("manual", MANUAL, "eve@acme.example"),
    ]
    reassign = plan.changes[1]
    assert reassign.data["login"] == ADA and len(reassign.data["findings"]) == 2  # one change, two findings
    assert len(plan.changes[2].data["findings"]) == 2  # membership + the missing user's team


def test_orphans_are_deleted_only_with_delete_orphans_and_disabled_users_only_deactivated() -> None:
    findings = [finding("okta", Kind.ORPHANED, "eve@acme.example", astro_id="a9"),
                finding("okta", Kind.DEACTIVATION_NOT_PROPAGATED, BOB, user=BOB, astro_id="a2")]
    plan = plan_remedies("okta", findings, delete_orphans=True)
    # A disabled IdP user keeps the Astro account (active=false), so re-enabling them brings it back.
    assert rows(plan) == [("update", ASTRO_DEACTIVATE, BOB), ("delete", ASTRO_DELETE, "eve@acme.example")]
    assert {c.data["astro_id"] for c in plan.changes} == {"a2", "a9"}
    without = plan_remedies("okta", findings, delete_orphans=False)
    assert [r[0] for r in rows(without)] == ["update", "manual"]


def test_okta_active_mismatch_is_reactivated_in_astro_and_other_attributes_updated_in_okta() -> None:
    findings = [
        finding("okta", Kind.ATTRIBUTE_MISMATCH, ADA, user=ADA, attribute="active", expected=True, actual=False,
                astro_id="a1", teams=("Analytics",)),
        finding("okta", Kind.ATTRIBUTE_MISMATCH, ADA, user=ADA, attribute="name.givenName", astro_id="a1"),
        finding("okta", Kind.ATTRIBUTE_MISMATCH, BOB, user=BOB, attribute="name.givenName", astro_id="a2"),
    ]
    plan = plan_remedies("okta", findings)
    # Astro first (the account active again), then Okta's profile push, then the Team it was taken out of.
    assert rows(plan) == [("update", ASTRO_REACTIVATE, ADA), ("run", OKTA_UPDATE, ADA), ("run", OKTA_UPDATE, BOB),
                          ("run", OKTA_REPUSH, "Analytics")]
    reactivate = plan.changes[0]
    assert reactivate.data["astro_id"] == "a1" and (reactivate.before, reactivate.after) == (False, True)
    # The same finding for Entra is the FAQ's on-demand provisioning, with the Team's member named.
    azure = plan_remedies("azure", [finding("azure", Kind.ATTRIBUTE_MISMATCH, ADA, user=ADA, attribute="active",
                                            expected=True, actual=False, astro_id="a1", idp_id="u1",
                                            teams=("Analytics",))])
    assert rows(azure) == [("run", AZURE_USER, ADA), ("run", AZURE_GROUP, "Analytics")]
    assert azure.changes[1].data["add_users"] == [ADA]


def test_entra_failed_export_of_a_group_is_provisioned_on_demand_not_manual() -> None:
    plan = plan_remedies("azure", [
        finding("azure", Kind.IDP_ERROR, "Analytics", team="Analytics", idp_id="g1",
                issue_kind="entra.failed_export"),
        finding("azure", Kind.IDP_ERROR, "Astro", issue_kind="entra.failed_export"),  # unknown object: manual
    ])
    assert rows(plan) == [("run", AZURE_GROUP, "Analytics"), ("manual", MANUAL, "Astro")]
    assert plan.changes[0].data["subject"] == "g1"


def test_azure_plan_uses_on_demand_and_names_the_members_to_check() -> None:
    findings = [
        finding("azure", Kind.USER_MISSING, ADA, user=ADA, idp_id="u-ada", teams=("Astro Users",)),
        finding("azure", Kind.MEMBERSHIP_EXTRA, "Analytics", team="Analytics", astro_id="a7", idp_id="g-an"),
        finding("azure", Kind.MEMBERSHIP_MISSING, "Analytics", team="Analytics", user=BOB, idp_id="g-an"),
        finding("azure", Kind.DEACTIVATION_NOT_PROPAGATED, "cy@acme.example", idp_id="u-cy", astro_id="a3"),
        finding("azure", Kind.IDP_ERROR, "Astro", issue_kind="entra.quarantine"),
    ]
    plan = plan_remedies("azure", findings, group_sizes={"Astro Users": 4000, "Analytics": 8})
    assert rows(plan) == [
        ("run", AZURE_USER, ADA), ("run", AZURE_USER, "cy@acme.example"),
        ("run", AZURE_GROUP, "Analytics"), ("run", AZURE_GROUP, "Astro Users"),
        ("manual", MANUAL, "Astro"),
    ]
    by_key = {c.key: c for c in plan.changes}
    assert by_key[ADA].data["subject"] == "u-ada"
    analytics = by_key["Analytics"]
    assert analytics.data["on_demand"] and analytics.data["subject"] == "g-an"
    assert analytics.data["add_users"] == [BOB] and analytics.data["remove_ids"] == ["a7"]
    big = by_key["Astro Users"]
    assert not big.data["on_demand"] and "too many for on-demand" in big.detail
    assert big.data["subject"] == "Astro Users" and big.data["add_users"] == [ADA]
    assert "Restart provisioning" in by_key["Astro"].data["steps"]


@pytest.mark.parametrize(
    ("astro_users", "deletions", "refused"),
    [(12, 1, False), (12, 2, True), (100, 10, False), (100, 11, True), (1000, 25, False), (1000, 26, True)],
)
def test_deletions_above_min_of_fraction_and_count_are_refused(astro_users: int, deletions: int,
                                                               refused: bool) -> None:
    findings = [finding("okta", Kind.ORPHANED, f"o{i}@x.example", astro_id=f"a{i}") for i in range(deletions)]
    plan = plan_remedies("okta", findings, delete_orphans=True)
    if refused:
        with pytest.raises(UnsafePlan) as caught:
            check_limits(plan, astro_users=astro_users, safety=SafetyConfig(), force=False)
        assert caught.value.exit_code == EXIT_USAGE and "--force" in (caught.value.hint or "")
    else:
        check_limits(plan, astro_users=astro_users, safety=SafetyConfig(), force=False)
    check_limits(plan, astro_users=astro_users, safety=SafetyConfig(), force=True)  # --force always allows


# -- the Astro-side executor against the sandbox's SCIM server -------------------------------------------------

ORG, TOKEN = "clorgremedy000000000000001", "remedy-test-token-0123456789"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def astro() -> Iterator[tuple[AstroScim, AstroConfig]]:
    scim = AstroScim()
    scim.add_org(ORG, TOKEN)
    served = ServedApp("astro", scim.app).start()
    scim.base_url = served.url
    try:
        yield scim, AstroConfig(scim_url=scim.scim_url(ORG), token=Secret.from_value(TOKEN))
    finally:
        served.stop()


def test_executor_deletes_and_deactivates_astro_accounts(astro: tuple[AstroScim, AstroConfig]) -> None:
    scim, cfg = astro
    eve = scim.add_orphan(ORG, "eve@acme.example", "Eve", "Orphan")
    bob = scim.add_orphan(ORG, BOB, "Bob", "Kahn")
    plan = plan_remedies("okta", [
        finding("okta", Kind.ORPHANED, "eve@acme.example", astro_id=eve["id"]),
        finding("okta", Kind.ORPHANED, "gone@acme.example", astro_id="cl-no-such-user"),
        finding("okta", Kind.DEACTIVATION_NOT_PROPAGATED, BOB, user=BOB, astro_id=bob["id"]),
    ], delete_orphans=True)
    keep = next(c for c in plan.changes if c.key == BOB)
    keep.resource, keep.action = ASTRO_DEACTIVATE, Action.UPDATE  # keep Bob's account: deactivate, not delete
    outcomes = execute(plan, provider=None, astro=cfg, policy=FAST)
    assert all(o.ok for o in outcomes), [o.message for o in outcomes]
    assert {o.message for o in outcomes} == {"deleted", "already gone", "deactivated (active=false)"}
    assert scim.find_user(ORG, "eve@acme.example") is None
    user = scim.find_user(ORG, BOB)
    assert user is not None and user["active"] is False


def test_executor_reactivates_an_astro_account_and_again_is_harmless(astro: tuple[AstroScim, AstroConfig]) -> None:
    scim, cfg = astro
    ada = scim.add_orphan(ORG, ADA, "Ada", "Lovelace")
    scim.edit_user(ORG, ADA, "active", False)
    plan = plan_remedies("okta", [finding("okta", Kind.ATTRIBUTE_MISMATCH, ADA, user=ADA, attribute="active",
                                          expected=True, actual=False, astro_id=ada["id"])])
    for _ in range(2):  # run twice: PATCH active=true of an active account changes nothing
        (outcome,) = execute(plan, provider=None, astro=cfg, policy=FAST)
        assert outcome.ok and outcome.message == "reactivated (active=true)", outcome.message
        user = scim.find_user(ORG, ADA)
        assert user is not None and user["active"] is True


def test_executor_makes_team_members_right_without_on_demand(astro: tuple[AstroScim, AstroConfig]) -> None:
    scim, cfg = astro
    ada, bob, cy = (scim.add_orphan(ORG, u, "G", "F") for u in (ADA, BOB, "cy@acme.example"))
    r = httpx.post(f"{cfg.scim_url}/Groups", headers={"Authorization": f"Bearer {TOKEN}"}, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Analytics",
        "members": [{"value": bob["id"]}, {"value": cy["id"]}]})
    assert r.status_code == 201
    plan = plan_remedies("azure", [
        finding("azure", Kind.MEMBERSHIP_MISSING, "Analytics", team="Analytics", user=ADA, idp_id="g1"),
        finding("azure", Kind.MEMBERSHIP_EXTRA, "Analytics", team="Analytics", astro_id=cy["id"], idp_id="g1"),
    ], group_sizes={"Analytics": 500})
    (outcome,) = execute(plan, provider=None, astro=cfg, policy=FAST)
    assert outcome.ok and "+1 -1" in outcome.message, outcome.message
    team = scim.find_group(ORG, "Analytics")
    assert team is not None and {m["value"] for m in team["members"]} == {ada["id"], bob["id"]}
    (again,) = execute(plan, provider=None, astro=cfg, policy=FAST)  # idempotent
    assert again.ok and "members are right" in again.message


def test_executor_reports_a_refused_token_as_a_failed_outcome(astro: tuple[AstroScim, AstroConfig]) -> None:
    scim, cfg = astro
    eve = scim.add_orphan(ORG, "eve@acme.example", "Eve", "Orphan")
    bad = AstroConfig(scim_url=cfg.scim_url, token=Secret.from_value("wrong-token-for-remedy"))
    plan = plan_remedies("okta", [finding("okta", Kind.ORPHANED, "eve@acme.example", astro_id=eve["id"])],
                         delete_orphans=True)
    (outcome,) = execute(plan, provider=None, astro=bad, policy=FAST)
    assert not outcome.ok and "HTTP 401" in outcome.message and "wrong-token-for-remedy" not in outcome.message
    assert scim.find_user(ORG, "eve@acme.example") is not None


def test_a_manual_remedys_title_is_not_cut_inside_parentheses_or_quotes() -> None:
    from connector.audit.remedies import _manual_title

    # It read "run 'astro-scim apply --idp azure' (starts it; by hand": cut at the colon inside the parentheses.
    whole = "run 'astro-scim apply --idp azure' (starts it; by hand: Entra > Provisioning > Start provisioning)"
    assert _manual_title(whole) == whole
    assert _manual_title("re-link the user in Okta: Directory > People > ken") == "re-link the user in Okta"
    assert _manual_title("set 'a:b' here: then") == "set 'a:b' here"
