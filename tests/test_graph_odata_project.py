"""The Graph emulator's list pages: `$select` over a page (project_page) gives exactly what `project` gives object
by object, and a group's members read page by page follow every change to the group."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connector.sandbox.core import Sandbox
from connector.sandbox.graph.odata import project, project_page

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
    answer = httpx.get(f"{sandbox.graph_url}/users", params=params,
                       headers={"Authorization": f"Bearer {sandbox.graph_token}"})
    assert answer.status_code == 200
    keys = list(answer.json())
    assert keys == [k for k in ("@odata.context", "@odata.count", "@odata.nextLink", "value") if k in keys]
    assert "@odata.nextLink" in keys and ("@odata.count" in keys) == ("$count" in params)
