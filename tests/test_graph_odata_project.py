"""`$select` over a page (project_page) gives exactly what `project` gives object by object."""

from __future__ import annotations

from typing import Any

import pytest

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
