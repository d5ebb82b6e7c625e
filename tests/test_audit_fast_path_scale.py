"""The audit's fast paths give the slow paths' findings on a larger organization with drift injected: 2,000 users,
their Teams with every member, per IdP (tests/test_audit_fast_path.py does the same on 12 users).

2,000 rather than the benchmark's 20,000: at 20,000 the set-up alone (the IdP's apply and the Astro preload) takes
minutes on a shared machine, and what a larger size could show (page boundaries, several pages in flight, many
Teams per user) already happens at 2,000: Okta app users come in 4 pages of 500, Graph members in 3 of 999,
Astro users in 2 of 1,000 and Teams in pages of 100. Speed is measured in benchmarks/audit_scale.py, not here.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.astro.reader import read_astro
from connector.audit.reconcile import Finding, compared, run_audit
from connector.cli import main
from connector.config.load import load_config
from connector.sandbox.core import Sandbox
from connector.views import AstroView, IdpView

USERS, GROUPS = 2_000, 20


def _findings(idp: IdpView, astro: AstroView) -> list[tuple[Any, ...]]:
    return [_key(f) for f in run_audit(idp, astro).findings]


def _kept(provider: Any, astro: AstroView) -> AstroView:
    """The Astro read as `drift` makes it: each user keeps only the values the mapping's targets compare."""
    kept = read_astro(provider.astro, compare=lambda: compared(provider.compared_paths()))
    assert kept.compared and len(kept.users) == len(astro.users)
    assert all(u.values is not None and len(u.values) == len(kept.compared) and not u.data for u in kept.users)
    return kept


def _key(f: Finding) -> tuple[Any, ...]:
    return (f.id, f.kind.value, f.subject, f.detail, f.attribute, f.astro_id, f.idp_id, f.teams)


def _apply(config: Path, *extra: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["apply", "-c", str(config), "--yes", *extra]) == 0


@pytest.fixture
def big() -> Iterator[Sandbox]:
    with Sandbox(users=USERS, groups=GROUPS, seed=11) as sb:
        yield sb


def _inject_astro_drift(sb: Sandbox, idp: str) -> list[str]:
    """Drift on the Astro side: a user deleted, an orphan, an attribute edited, a membership dropped."""
    org = sb.astro_orgs[idp]
    people = sb.seed_org.people
    other = sb.default_team_names()[1]
    sb.astro.delete_user(org.org_id, people[1005].email)
    sb.astro.add_orphan(org.org_id, "eve.orphan@acme.example", "Eve", "Orphan")
    sb.astro.edit_user(org.org_id, people[1501].email, "name.givenName", "Mallory")
    sb.astro.edit_user(org.org_id, people[7].email, "displayName", "  " + people[7].email.upper())
    members = sb.seed_org.team(other).member_keys
    sb.astro.drop_membership(org.org_id, other, sb.seed_org.person(members[-1]).email)
    return ["user_missing", "orphaned", "attribute_mismatch", "membership_missing"]


def test_okta_fast_view_gives_the_sdk_views_findings_at_2k(big: Sandbox, tmp_path: Path) -> None:
    from connector.providers.okta.provider import OktaProvider

    assert big.okta is not None
    config = big.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    org = big.astro_orgs["okta"]
    app_id = str(big.okta.app_by_label("Astro")["id"])
    big.okta.enable_provisioning(app_id, org.scim_url, org.token)
    _apply(config)
    expected = _inject_astro_drift(big, "okta")
    people = big.seed_org.people
    big.okta.deactivate_user_silently(people[1999].email)
    big.okta.set_app_user_error(app_id, people[1200].email, "SCIM 409: userName already exists")
    provider = OktaProvider(load_config(config))
    try:
        fast = provider.read_view()
        slow = provider._call(provider._read_view)  # the SDK client: whole lists, then the view
        gaps_fast = provider.setup_gaps()
        gaps_slow = provider._call(provider._setup_gaps)
    finally:
        provider.close()
    assert len(fast.users) >= USERS - 2 and fast.groups
    astro = read_astro(provider.astro)
    assert len(astro.users) == USERS and len(astro.teams) == 2  # the pushed groups
    for view in (fast, slow):
        known = {u.user_name.casefold() for u in view.users}
        unknown = [u.user_name for u in astro.users if u.active and u.user_name.casefold() not in known]
        view.users.extend(provider.inactive_users(unknown))
    assert gaps_fast == gaps_slow
    fast.setup = gaps_fast
    slow.setup = gaps_slow
    findings = _findings(fast, astro)
    assert findings == _findings(slow, astro)
    assert findings == _findings(fast, _kept(provider, astro))  # the compared values alone, not the whole JSON
    kinds = {k for _, k, *_ in findings}
    assert {*expected, "deactivation_not_propagated", "idp_error"} <= kinds


def test_entra_fast_view_gives_the_whole_lists_findings_at_2k(big: Sandbox, tmp_path: Path) -> None:
    from test_audit_fast_path import _whole_lists_view

    from connector.providers.entra.provider import AzureProvider

    assert big.graph is not None
    config = big.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    _apply(config, "--pause")  # the app and its assignments, no cycle: Astro is filled as a cycle would
    big.astro.preload(big.astro_orgs["azure"].org_id, big.seed_org)
    expected = _inject_astro_drift(big, "azure")
    big.graph.update_user(big.seed_org.people[1999].email, accountEnabled=False)
    provider = AzureProvider(load_config(config))
    try:
        fast = provider.read_view()
        slow = _whole_lists_view(provider)
    finally:
        provider.close()
    assert len(fast.users) >= USERS - 1 and fast.groups
    astro = read_astro(provider.astro)
    assert len(astro.users) == USERS
    findings = _findings(fast, astro)
    assert findings == _findings(slow, astro)
    assert findings == _findings(fast, _kept(provider, astro))  # the compared values alone, not the whole JSON
    kinds = {k for _, k, *_ in findings}
    assert {*expected, "deactivation_not_propagated"} <= kinds
