"""The Graph emulator's list pages: `$select` over a page (project_page) gives exactly what `project` gives object
by object, and a group's members read page by page follow every change to the group."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connector.sandbox.core import Sandbox
from connector.sandbox.graph.odata import project, project_page
from connector.sandbox.graph.state import USER_DEFAULT_PROPERTIES

USER = {"@odata.type": "#microsoft.graph.user", "id": "u1", "userPrincipalName": "ada@acme.example",
        "displayName": "Ada", "accountEnabled": True, "givenName": "Ada", "mail": None}
OTHER_SHAPE = {"id": "g1", "displayName": "Data", "mailNickname": "data"}  # a group: no @odata.type, other keys


@pytest.mark.parametrize("fields", [
    None, ["id"], ["ID", "userprincipalname", "accountEnabled"], ["id", "notAProperty"], ["*"], ["id", "id"],
    ["displayName", "givenName", "mail", "surname"],
])
def test_a_page_projects_as_each_object_does(fields: list[str] | None) -> None:
    page: list[dict[str, Any]] = [USER, {**USER, "id": "u2", "givenName": "Grace"}, OTHER_SHAPE, {}]
    assert project_page(page, fields) == [project(o, fields) for o in page]
    default = ("id", "displayName")
    assert project_page(page, fields, default) == [project(o, fields, default) for o in page]
    got = project_page(page, fields)
    assert [list(o) for o in got] == [list(project(o, fields)) for o in page]  # key order too


def test_group_members_pages_follow_every_change_to_the_group(sandbox: Sandbox) -> None:
    """A group's member ids are kept between pages (filtering a 100,000-member group for each page was ~25 ms a
    page): each kind of change shows in the next read all the same."""
    graph = sandbox.graph
    assert graph is not None
    team = sandbox.seed_org.teams[1]
    group = graph.group(team.name)
    assert group is not None

    def members() -> list[str]:
        url = f"{sandbox.graph_url}/groups/{group['id']}/members"
        answer = httpx.get(url, params={"$select": "userPrincipalName", "$top": "2"},
                           headers={"Authorization": f"Bearer {sandbox.graph_token}"})
        found = []
        while True:
            assert answer.status_code == 200
            body = answer.json()
            found += [m["userPrincipalName"] for m in body["value"]]
            if "@odata.nextLink" not in body:
                return found
            answer = httpx.get(body["@odata.nextLink"], headers={"Authorization": f"Bearer {sandbox.graph_token}"})

    assert members() == graph.group_member_upns(team.name) and len(members()) > 2
    outsider = next(p.email for p in sandbox.seed_org.people if p.email not in members())
    graph.add_member(team.name, outsider)  # appended
    assert members() == graph.group_member_upns(team.name) and outsider in members()
    first = members()[0]
    graph.remove_member(team.name, first)  # shortened
    graph.add_member(team.name, first)  # then the same length again, the member last
    assert members() == graph.group_member_upns(team.name) and members()[-1] == first
    graph.remove_user_silently(outsider)  # gone from the directory and the group
    assert members() == graph.group_member_upns(team.name) and outsider not in members()


@pytest.mark.parametrize("params", [{"$top": "2"}, {"$top": "2", "$select": "id"}, {"$top": "2", "$count": "true"}])
def test_a_page_names_its_next_link_before_its_value_as_graph_writes_it(sandbox: Sandbox,
                                                                        params: dict[str, str]) -> None:
    """Graph's order of a page's members (@odata.context, @odata.count, @odata.nextLink, value): a client may ask
    for the next page from the first bytes (connector/providers/entra/reads.py), with and without $select (the
    two ways the emulator writes a page)."""
    advanced = {"ConsistencyLevel": "eventual"} if "$count" in params else {}  # $count needs it on users
    answer = httpx.get(f"{sandbox.graph_url}/users", params=params,
                       headers={"Authorization": f"Bearer {sandbox.graph_token}", **advanced})
    assert answer.status_code == 200
    keys = list(answer.json())
    assert keys == [k for k in ("@odata.context", "@odata.count", "@odata.nextLink", "value") if k in keys]
    assert "@odata.nextLink" in keys and ("@odata.count" in keys) == ("$count" in params)


@pytest.mark.parametrize("select", [None, "id,userPrincipalName,accountEnabled", "ID,displayName,notAProperty"])
@pytest.mark.parametrize("cast", ["", "/microsoft.graph.user"])
def test_member_pages_from_cached_bytes_are_each_member_projected_and_follow_changes(
        sandbox: Sandbox, select: str | None, cast: str) -> None:
    """A group's member pages are joined from per-member JSON kept between requests (GraphApi._member_bytes):
    each item must be what `project` makes of the member's directory object (a nested group included), and a
    user changed or deleted shows in the next page."""
    graph = sandbox.graph
    assert graph is not None
    team = sandbox.seed_org.teams[1]
    group = graph.group(team.name)
    other = graph.group(sandbox.seed_org.teams[2].name)
    assert group is not None and other is not None
    with graph.state.lock:
        graph.state.members[group["id"]].append(other["id"])  # a group as a member (cast to user: left out)
    params = {"$top": "999", **({"$select": select} if select else {})}
    default = None if not cast else USER_DEFAULT_PROPERTIES
    fields = select.split(",") if select else None

    def page() -> list[dict[str, Any]]:
        answer = httpx.get(f"{sandbox.graph_url}/groups/{group['id']}/members{cast}", params=params,
                           headers={"Authorization": f"Bearer {sandbox.graph_token}"})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["value"])

    def expected() -> list[dict[str, Any]]:
        ids = [i for i in graph.state.members[group["id"]] if not cast or i in graph.state.users]
        return [project(o, fields, default) for o in map(graph.state.directory_object, ids) if o is not None]

    assert page() == expected() and len(expected()) > 2
    assert (not cast) == any(m.get("@odata.type") == "#microsoft.graph.group" for m in page())
    first = graph.state.members[group["id"]][0]
    graph.state.change_user(graph.state.users[first], {"accountEnabled": False, "displayName": "Renamed"})
    assert page() == expected()
    assert any(m.get("displayName") == "Renamed" or m.get("accountEnabled") is False for m in page()) \
        == bool(select is None or "accountEnabled" in select or "displayName" in select)
    graph.state.delete_user(first)
    assert page() == expected() and first not in {m.get("id") for m in page()}
