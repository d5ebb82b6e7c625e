"""Plan value objects: rendering, JSON, safety limits, redaction."""

from __future__ import annotations

import pytest

from connector.errors import UnsafePlan
from connector.plan.model import Action, Change, Plan
from connector.support import redact


def test_counts_and_json() -> None:
    plan = Plan("okta", [Change(Action.CREATE, "okta.push_mapping", "Data"), Change(Action.DELETE, "x", "y")])
    assert plan.counts() == {"create": 1, "delete": 1}
    assert plan.to_json()["changes"][0] == {
        "action": "create", "resource": "okta.push_mapping", "key": "Data", "before": None, "after": None,
        "detail": "",
    }
    assert not Plan("okta")


def test_safety_limit_lower_of_fraction_and_count() -> None:
    plan = Plan("astro", [Change(Action.DELETE, "astro.user", f"u{i}") for i in range(11)])
    with pytest.raises(UnsafePlan, match="11 objects"):
        plan.check_safety(existing=100, max_fraction=0.10, max_count=25, force=False)
    plan.check_safety(existing=100, max_fraction=0.10, max_count=25, force=True)
    small = Plan("astro", [Change(Action.DELETE, "astro.user", f"u{i}") for i in range(10)])
    small.check_safety(existing=100, max_fraction=0.10, max_count=25, force=False)
    with pytest.raises(UnsafePlan):
        small.check_safety(existing=1000, max_fraction=0.10, max_count=5, force=False)


def test_describe_masks_secrets() -> None:
    redact.register("supersecret-token-xyz")
    c = Change(Action.UPDATE, "azure.secrets", "SecretToken", detail="set to supersecret-token-xyz")
    assert "supersecret" not in c.describe() and "****" in c.describe()


def test_the_fraction_limit_is_taken_in_decimal() -> None:
    # 58% of 50 is 29: in binary floating point 50 * 0.58 is 28.999..., which made the limit 28
    plan = Plan("astro", [Change(Action.DELETE, "astro.user", f"u{i}") for i in range(29)])
    plan.check_safety(existing=50, max_fraction=0.58, max_count=100, force=False)
    with pytest.raises(UnsafePlan, match="over the safety limit of 29"):
        Plan("astro", [*plan.changes, Change(Action.DELETE, "astro.user", "u29")]).check_safety(
            existing=50, max_fraction=0.58, max_count=100, force=False)


def test_values_read_from_the_idp_are_masked_in_the_json_plan_and_the_saved_one() -> None:
    """`before` is what the IdP holds: a Tenant URL with a password typed in the portal was printed by
    `plan --format json` and written by `plan --out`, though the text plan (its detail) masked it."""
    change = Change(Action.UPDATE, "azure.secrets", "BaseAddress",
                    before={"BaseAddress": "https://admin:hunter2@scim.example/v2", "list": ["https://u:pw@h/x"]},
                    after="https://api.astronomer.io/scim/v2/org")
    for doc in (change.to_json(), change.to_record()):
        text = str(doc)
        assert "hunter2" not in text and ":pw@" not in text
        assert doc["after"] == "https://api.astronomer.io/scim/v2/org"
