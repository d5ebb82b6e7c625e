"""Reconcile's shortcuts give the findings of its careful path.

- A user whose compared values are all equal skips the per-attribute loop (reconcile._Plan): on an Astro view that
  kept only the compared values (what `drift` reads), the findings are those of the same view with each user's
  whole JSON (which always takes the per-attribute loop), on a seeded random organization with drift of every
  kind a value can have (case, blanks, types, lists, missing values, renamed or deactivated accounts).
- Users claim Astro accounts in the order (active first, folded userName, then the view's order).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from connector.audit.reconcile import Finding, Kind, audit, compared, prepare
from connector.views import AstroTeam, AstroUser, AstroView, IdpGroup, IdpUser, IdpView

PATHS = ("userName", "name.givenName", "name.familyName", 'emails[type eq "work"].value', "displayName", "title",
         "active", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
DEPT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _key(f: Finding) -> tuple[Any, ...]:
    return (f.id, f.kind.value, f.subject, f.detail, f.attribute, f.expected, f.actual, f.astro_id, f.idp_id,
            f.teams)


def _twist(value: Any, rnd: random.Random) -> Any:
    """A value as Astro may hold it: often the same, else a spelling that normalises alike or not."""
    roll = rnd.random()
    if roll < 0.6:
        return value
    if not isinstance(value, str):
        return rnd.choice([value, str(value), None, [value]])
    return rnd.choice([value.upper(), f" {value} ", value + "x", None, "", [value], [{"value": value}],
                       [value, "other"], 1, True, "True"])


def _world(seed: int, users: int = 300) -> tuple[IdpView, list[dict[str, Any]], list[tuple[str, str]]]:
    """An IdP view, the Astro users' JSON and the Teams (name, member ids), with random drift."""
    rnd = random.Random(seed)
    idp = IdpView("okta" if seed % 2 else "azure")
    astro: list[dict[str, Any]] = []
    for i in range(users):
        login = f"user{i}@acme.example"
        # Some IdP users spell their name in another case, some share a folded name, some lack values.
        idp_name = login.upper() if rnd.random() < 0.05 else login
        if rnd.random() < 0.03:
            idp_name = f"user{max(i - 1, 0)}@ACME.example"
        expected: dict[str, Any] = {"userName": idp_name}
        if rnd.random() < 0.1:
            del expected["userName"]
        values = {"name.givenName": f"First{i}", "name.familyName": f"Last{i}",
                  'emails[type eq "work"].value': login, "displayName": f"First{i} Last{i}",
                  "title": rnd.choice(["Engineer", "engineer", None, 3, 2.0, True]),
                  f"{DEPT}:department": rnd.choice(["R&D", "Sales", ""])}
        for path, value in values.items():
            if rnd.random() < 0.95:
                expected[path] = value
        if rnd.random() < 0.05:
            expected["active"] = True
        idp.users.append(IdpUser(id=f"00u{i}", user_name=idp_name, active=rnd.random() > 0.08, expected=expected,
                                 scim_id=f"a{i}" if rnd.random() < 0.3 else None))
        if rnd.random() < 0.05:
            continue  # never provisioned
        data: dict[str, Any] = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": f"a{i}",
                                "userName": login if rnd.random() > 0.05 else login.title(),
                                "name": {"givenName": _twist(values["name.givenName"], rnd),
                                         "familyName": _twist(values["name.familyName"], rnd)},
                                "emails": [{"type": "work", "value": _twist(login, rnd)}],
                                "displayName": _twist(values["displayName"], rnd),
                                "active": rnd.random() > 0.05}
        if values["title"] is not None or rnd.random() < 0.5:
            data["title"] = _twist(values["title"], rnd)
        data[DEPT] = {"department": _twist(values[f"{DEPT}:department"], rnd)}
        if rnd.random() < 0.5:
            data["externalId"] = f"00u{i}"
        astro.append(data)
    for i in range(rnd.randint(0, 5)):  # orphans
        astro.append({"id": f"o{i}", "userName": f"orphan{i}@acme.example", "active": True})
    teams = []
    for t in range(4):
        members = rnd.sample([u["id"] for u in astro], k=min(40, len(astro)))
        teams.append((f"Team {t}", members))
        idp.groups.append(IdpGroup(id=f"00g{t}", name=f"Team {t}",
                                   members={u.user_name for u in rnd.sample(idp.users, k=40)}))
    return idp, astro, teams


def _astro_view(astro: list[dict[str, Any]], teams: list[tuple[str, str]], paths: list[str] | None) -> AstroView:
    """The whole JSON per user (paths None), or only the compared values, as the drift read keeps them."""
    keep = compared(paths) if paths is not None else None
    users = []
    for data in astro:
        user = AstroUser(id=data["id"], user_name=data["userName"], active=data.get("active") is not False,
                         external_id=data.get("externalId"), data=data)
        if keep is not None:
            user.values, user.data = keep.read(data), {}
        users.append(user)
    return AstroView("https://astro.example/scim/v2/org", users=users,
                     teams=[AstroTeam(f"t{i}", name, tuple(m)) for i, (name, m) in enumerate(teams)],
                     compared=keep.paths if keep is not None else ())


@pytest.mark.parametrize("seed", range(12))
def test_kept_values_give_the_whole_jsons_findings(seed: int) -> None:
    idp, astro, teams = _world(seed)
    whole = [_key(f) for f in audit(idp, _astro_view(astro, teams, None))]
    kept = [_key(f) for f in audit(idp, _astro_view(astro, teams, list(PATHS)))]
    assert kept == whole
    # the seeds make drift of each kind a value can have, and users without any
    kinds = {f[1] for f in whole}
    assert Kind.ATTRIBUTE_MISMATCH.value in kinds and len(whole) < len(idp.users) * 3


def test_equal_values_of_other_types_are_no_finding_either_way() -> None:
    """1 and 1.0, True and 1: equal, so the shortcut skips them; the careful path finds them equal too."""
    idp = IdpView("okta", users=[IdpUser("00u1", "ada@acme.example", True,
                                         {"userName": "ada@acme.example", "title": 1, "displayName": True})])
    data = {"id": "a1", "userName": "ada@acme.example", "title": 1.0, "displayName": 1}
    for paths in (None, ["userName", "title", "displayName"]):
        assert audit(idp, _astro_view([data], [], paths)) == []


def test_a_value_the_read_did_not_keep_is_an_error_not_a_finding() -> None:
    idp = IdpView("okta", users=[IdpUser("00u1", "ada@acme.example", True,
                                         {"userName": "ada@acme.example", "title": "Engineer"})])
    data = {"id": "a1", "userName": "ada@acme.example", "title": "Engineer"}
    with pytest.raises(RuntimeError, match="'title' is compared"):
        audit(idp, _astro_view([data], [], ["displayName"]))


def test_users_claim_active_first_then_by_folded_name_then_in_view_order() -> None:
    """Who claims an account shows in what its Team membership is reported under."""
    astro = [{"id": "a1", "userName": "ada@acme.example", "active": True},
             {"id": "a2", "userName": "bob@acme.example", "active": True}]
    teams = [("Data", ["a1", "a2"])]
    # Three IdP users fold to a1's name: an inactive one listed first, then two active ones; bob's two spellings
    # come after "bob" in folded order, the later one first in the view.
    users = [IdpUser("00u0", "ADA@acme.example", False, {"userName": "ADA@acme.example"}),
             IdpUser("00u1", "Ada@acme.example", True, {"userName": "Ada@acme.example"}),
             IdpUser("00u2", "ada@ACME.example", True, {"userName": "ada@ACME.example"}),
             IdpUser("00u4", "BOB@acme.example", True, {"userName": "BOB@acme.example"}),
             IdpUser("00u3", "Bob@acme.example", True, {"userName": "Bob@acme.example"})]
    idp = IdpView("okta", users=users, groups=[IdpGroup("00g1", "Data", set())])
    for paths in (None, ["userName"]):
        findings = audit(idp, _astro_view(astro, teams, paths))
        extra = sorted(f.detail for f in findings if f.kind is Kind.MEMBERSHIP_EXTRA)
        # The first active spelling in the view claims each account (not the inactive one, listed before it).
        assert extra == ["Ada@acme.example is in the Team but not in the okta group",
                         "BOB@acme.example is in the Team but not in the okta group"], findings
        # Each userName is one key: the inactive spelling reads the claimed live account.
        assert [(f.kind, f.idp_id) for f in findings if f.kind is not Kind.MEMBERSHIP_EXTRA] == [
            (Kind.DEACTIVATION_NOT_PROPAGATED, "00u0")]


def test_an_index_prepared_ahead_gives_the_same_findings_and_only_for_its_own_view() -> None:
    idp, astro, teams = _world(3)
    view = _astro_view(astro, teams, list(PATHS))
    whole = [_key(f) for f in audit(idp, view)]
    assert [_key(f) for f in audit(idp, view, prepare(view))] == whole
    # An index made of another view (an earlier read) is not used: the findings are this view's.
    other = _astro_view(astro[: len(astro) // 2], teams, list(PATHS))
    assert [_key(f) for f in audit(idp, view, prepare(other))] == whole
