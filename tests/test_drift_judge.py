"""`judge`: which findings a fix fixed, read back in the settled re-audit (pure logic, no sandbox)."""

from __future__ import annotations

from connector.audit.reconcile import AuditResult, Finding, Kind
from connector.audit.run import judge


def _mismatch(fid: str, attribute: str) -> Finding:
    return Finding(fid, Kind.ATTRIBUTE_MISMATCH, "okta", "ken@acme.example", f"{attribute}: expected B",
                   "astro-scim drift --fix --yes", attribute=attribute, user="ken@acme.example")


def test_a_finding_the_subject_already_had_does_not_unfix_another() -> None:
    """Two attributes of one user differ; the fix repairs one, the other stays: the first is fixed (it was reported
    'not fixed: it is now attribute_mismatch' because the user still had a finding)."""
    given, title = _mismatch("a1", "name.givenName"), _mismatch("a2", "title")
    after = AuditResult("okta", "https://x/scim/v2/o", [title], in_scope={"ken@acme.example"})
    fixed, not_fixed = judge([given, title], after, failed=set())
    assert fixed == [given] and not_fixed == []


def test_a_new_finding_of_the_subject_or_a_failed_remedy_is_not_fixed() -> None:
    given = _mismatch("a1", "name.givenName")
    other = Finding("m1", Kind.USER_MISSING, "okta", "ken@acme.example", "not in Astro", "fix",
                    user="ken@acme.example")
    after = AuditResult("okta", "https://x/scim/v2/o", [other], in_scope={"ken@acme.example"})
    fixed, not_fixed = judge([given], after, failed=set())
    assert fixed == [] and "it is now user_missing" in not_fixed[0][1]
    after = AuditResult("okta", "https://x/scim/v2/o", [], in_scope={"ken@acme.example"})
    fixed, not_fixed = judge([given], after, failed={"a1"})
    assert fixed == [] and not_fixed[0][1] == "its remedy failed"
    after = AuditResult("okta", "https://x/scim/v2/o", [], in_scope=set())  # ken left the IdP's scope
    fixed, not_fixed = judge([given], after, failed=set())
    assert fixed == [] and "left the IdP's scope" in not_fixed[0][1]
