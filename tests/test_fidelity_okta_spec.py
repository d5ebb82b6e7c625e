"""Okta's "SCIM 2.0 SPEC Test" (the Runscope export Okta publishes for SCIM app submissions, copied in
tests/data/fidelity/okta-scim20-spec-test.json) replayed against the emulated Astro over loopback.

Target: every one of its 52 assertions passes (plus its one script). The environment values Runscope would hold
are set here; the organization is seeded so that `GET /Users?count=1` has a user to show, as the test expects.
The one timing assertion (`GET /Groups` under 600 ms) reads the latency the sandbox injects (none here), never a
wall-clock measure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector.sandbox.core import Sandbox
from connector.sandbox.replay import run_runscope

EXPORT = Path(__file__).parent / "data" / "fidelity" / "okta-scim20-spec-test.json"


@pytest.fixture
def seeded() -> Iterator[Sandbox]:
    with Sandbox(users=8, groups=3, seed=5) as sb:
        sb.astro.preload(sb.astro_orgs["okta"].org_id, sb.seed_org)
        yield sb


def test_okta_scim20_spec_test_passes_as_published(seeded: Sandbox) -> None:
    export = json.loads(EXPORT.read_text(encoding="utf-8"))
    org = seeded.astro_orgs["okta"]
    variables: dict[str, object] = {
        "SCIMBaseURL": org.scim_url,
        "auth": f"Bearer {org.token}",
        "InvalidUserEmail": "not.a.user@invalid.example",
        "UserIdThatDoesNotExist": "010101001010101010",
        "randomUsername": "Runscope.Tester@atko.example",
        "randomUsernameCaps": "RUNSCOPE.TESTER@ATKO.EXAMPLE",
        "randomEmail": "Runscope.Tester@atko.example",
        "randomGivenName": "Runscope",
        "randomFamilyName": "Tester",
    }
    with httpx.Client(timeout=10) as client:
        report = run_runscope(export, client, variables,
                              response_time=lambda _r: seeded.astro_faults.latency_ms)
    assertions = sum(len(s.get("assertions", [])) for s in export["steps"])
    assert assertions == 52
    assert not report.failures, report.table()
    assert report.passed == assertions + 1, report.table()  # + the "Verify Groups endpoint" script
    # The user the test created is really there, and the lookup of the upper-cased name found it (RFC 7643
    # §4.1.1: userName is caseExact false).
    found = seeded.astro.find_user(org.org_id, "runscope.tester@atko.example")
    assert found is not None and found["name"] == {"givenName": "Runscope", "familyName": "Tester"}
