"""The audit's fast paths give the slow paths' findings on a larger organization with drift injected: 2,000 users,
their Teams with every member, per IdP (tests/test_audit_fast_path.py does the same on 12 users).

2,000 rather than the benchmark's 20,000: at 20,000 the set-up alone (the IdP's apply and the Astro preload) takes
minutes on a shared machine, and what a larger size could show (page boundaries, several pages in flight, many
Teams per user) already happens at 2,000: Okta app users come in 4 pages of 500, Graph members in 3 of 999,
Astro users in 2 of 1,000 and Teams in pages of 100. Speed is measured in benchmarks/audit_scale.py, not here.

The set-up fills Astro without a SCIM request per user, as each IdP's engine would have filled it: Entra's with
`apply --pause` and the Astro preload, Okta's with the real apply and the engine's provisioning written straight
into Astro afterwards (`_okta_apply`, checked against a plain apply on 30 users).
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


def _okta_apply(sb: Sandbox, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`apply` as a user runs it, except that Okta's engine provisions the assigned users afterwards, straight into
    the emulated Astro (the bodies it would POST, built by its own code), not by a GET and a POST per user: at 2,000
    users those 4,000 SCIM requests were ~10 of the test's ~12 CPU-s. The rest is the real apply (features,
    mapping, assignment, group pushes); the pushed groups' memberships then go out as Okta sends them, a PATCH per
    member. test_okta_held_provisioning_leaves_what_apply_leaves checks the end state against a plain apply."""
    assert sb.okta is not None
    engine, state = sb.okta.engine, sb.okta.state
    held: dict[tuple[str, str], dict[str, Any]] = {}

    def hold(app_id: str, au: dict[str, Any]) -> bool:
        held[(app_id, au["id"])] = au
        return False  # not provisioned yet: the app user stays STAGED until the flush below

    with monkeypatch.context() as patch:
        patch.setattr(engine, "provision", hold)
        _apply(config, "--no-wait")  # nothing reaches Astro during the apply: its wait for Astro would fail
    org = sb.astro_orgs["okta"]
    with state.lock:  # the engine's rule: its caller holds the state lock
        rows = [(app_id, au, state.users.get(au["id"])) for (app_id, _), au in held.items()]
        rows = [(app_id, au, user) for app_id, au, user in rows if user is not None and user["status"] == "ACTIVE"]
        bodies = [engine._scim_user(app_id, au, user) for app_id, au, user in rows]
        for body in bodies:
            body.pop("groups")  # read-only in SCIM: Astro keeps none from a POST either
        ids, _ = sb.astro.preload_json(org.org_id, bodies, lambda ids: [])
        now = state.now()
        for (app_id, au, _), scim_id in zip(rows, ids, strict=True):  # what provision() records on success
            au.update(externalId=scim_id, status="PROVISIONED", syncState="SYNCHRONIZED", lastSync=now,
                      statusChanged=now, lastUpdated=now, _error=None)
            engine._join_pushed_groups(app_id, au)


def _okta_end_state(sb: Sandbox) -> tuple[Any, ...]:
    assert sb.okta is not None
    org = sb.astro_orgs["okta"].org_id
    app_id = str(sb.okta.app_by_label("Astro")["id"])
    users = {u["userName"]: {**{k: v for k, v in u.items() if k not in ("id", "meta", "externalId", "groups")},
                             "groups": sorted(g["display"] for g in u.get("groups") or [])}
             for u in sb.astro.users(org)}
    teams = {g["displayName"]: sorted(m["display"] for m in g.get("members") or []) for g in sb.astro.groups(org)}
    with sb.okta.state.lock:
        app_users = {au["credentials"]["userName"]: (au["status"], au["syncState"], au["scope"], au["profile"],
                                                     au["_error"], bool(au["externalId"]))
                     for au in sb.okta.state.app_users[app_id].values()}
        pushes = sorted((pm["status"], pm["errorSummary"], bool(pm["_scimId"]))
                        for pm in sb.okta.state.push[app_id].values())
    return users, teams, app_users, pushes


def test_okta_held_provisioning_leaves_what_apply_leaves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    states = []
    for held in (False, True):
        with Sandbox(users=30, groups=4, seed=11) as sb:
            assert sb.okta is not None
            config = sb.write_config(tmp_path / f"held-{held}" / "astro-scim.yaml", idps=("okta",))
            org = sb.astro_orgs["okta"]
            sb.okta.enable_provisioning(str(sb.okta.app_by_label("Astro")["id"]), org.scim_url, org.token)
            _okta_apply(sb, config, monkeypatch) if held else _apply(config)
            with contextlib.redirect_stdout(io.StringIO()) as out:
                assert main(["drift", "-c", str(config), "--format", "json"]) == 0, out.getvalue()
            states.append(_okta_end_state(sb))
    plain, held_state = states
    users, teams, app_users, pushes = plain
    assert users and len(teams) == 2 and all(teams.values()) and len(pushes) == 2
    assert held_state == plain


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


def test_okta_fast_view_gives_the_sdk_views_findings_at_2k(big: Sandbox, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.providers.okta.provider import OktaProvider

    assert big.okta is not None
    config = big.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    org = big.astro_orgs["okta"]
    app_id = str(big.okta.app_by_label("Astro")["id"])
    big.okta.enable_provisioning(app_id, org.scim_url, org.token)
    _okta_apply(big, config, monkeypatch)
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
