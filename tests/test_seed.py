"""Seeding: deterministic, realistic, unique logins, and the 'Astro Users' team the IdPs assign."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from connector.sandbox.seed import ASSIGNED_TEAM, generate


def test_same_seed_same_org_and_different_seed_differs() -> None:
    a, b = generate(200, 10, seed=3), generate(200, 10, seed=3)
    assert [asdict(p) for p in a.people] == [asdict(p) for p in b.people]
    assert [asdict(t) for t in a.teams] == [asdict(t) for t in b.teams]
    c = generate(200, 10, seed=4)
    assert [p.email for p in a.people] != [p.email for p in c.people]


def test_astro_users_team_holds_everyone_and_other_teams_are_named() -> None:
    org = generate(30, 5, seed=1)
    assert org.teams[0].name == ASSIGNED_TEAM
    assert org.teams[0].member_keys == [p.key for p in org.people]
    names = [t.name for t in org.teams[1:]]
    assert names == ["Data Engineering", "Analytics", "Platform", "ML Research", "Data Science"]
    assert all(t.member_keys for t in org.teams), "every team has at least one member"
    keys = {p.key for p in org.people}
    for team in org.teams:
        assert set(team.member_keys) <= keys
        assert len(team.member_keys) == len(set(team.member_keys))
    per_person = {p.key: sum(p.key in t.member_keys for t in org.teams[1:]) for p in org.people}
    assert set(per_person.values()) <= {0, 1, 2, 3}


def test_keys_emails_and_team_names_are_unique_at_scale() -> None:
    org = generate(5000, 120, seed=9)
    assert org.people[0].key == "p00001" and org.people[-1].key == "p05000"
    emails = [p.email for p in org.people]
    assert len(set(emails)) == len(emails)
    assert all(e.isascii() and e.endswith("@acme.example") and e.count("@") == 1 for e in emails)
    # with 100 x 101 names, 5,000 people collide: the collision suffix must show up
    assert any(e.split("@")[0][-1].isdigit() for e in emails)
    names = [t.name for t in org.teams]
    assert len(set(names)) == len(names) == 121
    assert "Data Engineering 2" in names
    assert {t.key for t in org.teams} == {f"t{i:04d}" for i in range(1, 122)}


def test_people_have_realistic_fields() -> None:
    p = generate(1, 0, seed=5).people[0]
    assert p.display_name == f"{p.first_name} {p.last_name}"
    assert p.department and p.title and p.active is True
    assert generate(0, 0, seed=1).teams[0].member_keys == []


def test_negative_sizes_refused() -> None:
    with pytest.raises(ValueError):
        generate(-1, 0, seed=1)


def test_an_org_has_exactly_the_size_asked() -> None:
    # How fast a 50,000-person org is generated is a figure in benchmarks/timing.py.
    org = generate(2_000, 150, seed=1)
    assert len(org.people) == 2_000 and len(org.teams) == 151  # + the Astro Users team
