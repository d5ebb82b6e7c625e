"""Okta's group push as Okta's SCIM 2.0 reference documents it: the group is created empty (`members: []`) and
its members follow in a PATCH of their own, which can fail on its own. Then the push is in ERROR and the Team
exists in Astro, empty (what an admin sees after a failed first push)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM


@pytest.fixture
def okta() -> Iterator[tuple[Sandbox, httpx.Client, str]]:
    with Sandbox(users=6, groups=2, seed=11) as sb:
        assert sb.okta is not None and sb.okta_url is not None
        org = sb.astro_orgs["okta"]
        app_id = str(sb.okta.app_by_label("Astro")["id"])
        sb.okta.enable_provisioning(app_id, org.scim_url, org.token)
        with httpx.Client(base_url=sb.okta_url, headers={"Authorization": f"SSWS {sb.okta_token}"}) as c:
            on = {"status": "ENABLED"}
            assert c.put(f"/api/v1/apps/{app_id}/features/USER_PROVISIONING", json={
                "create": {"lifecycleCreate": on}, "update": {"profile": on, "lifecycleDeactivate": on}},
            ).status_code == 200
            gid = sb.okta.group_by_name(ASSIGNED_TEAM)["id"]
            assert c.put(f"/api/v1/apps/{app_id}/groups/{gid}", json={}).status_code == 200
            yield sb, c, app_id


def test_members_patch_fails_alone_and_leaves_an_empty_team(okta: tuple[Sandbox, httpx.Client, str]) -> None:
    sb, c, app_id = okta
    org = sb.astro_orgs["okta"]
    team = next(t for t in sb.seed_org.teams if t.name != ASSIGNED_TEAM and t.member_keys)
    people = {p.key: p for p in sb.seed_org.people}
    gone = people[team.member_keys[0]].email
    sb.astro.delete_user(org.org_id, gone)  # removed in Astro only: Okta still holds its SCIM id

    source = sb.okta.group_by_name(team.name)["id"]  # type: ignore[union-attr]
    made = c.post(f"/api/v1/apps/{app_id}/group-push/mappings", json={"sourceGroupId": source, "status": "ACTIVE",
                                                                 "targetGroupName": team.name})
    assert made.status_code == 201, made.text
    mapping = made.json()
    assert mapping["status"] == "ERROR" and "400" in mapping["errorSummary"], mapping

    pushed = sb.astro.find_group(org.org_id, team.name)
    assert pushed is not None and pushed["members"] == []  # created empty; the members PATCH was refused
