"""A group deleted in the IdP: the emulators delete as Okta and Graph document, their provisioning engines follow
what each IdP then does, and every command that reads the IdP names the missing group with both fixes (re-create
it, or drop it from the config) instead of a verdict.

All through real HTTP against the sandbox; the CLI runs as a user runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM


def okta_http(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=str(sb.okta_url), headers={"Authorization": f"SSWS {sb.okta_token}"})


def graph_http(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=str(sb.graph_url), headers={"Authorization": f"Bearer {sb.graph_token}"})


def astro_user(sb: Sandbox, idp: str, login: str) -> dict[str, Any] | None:
    return sb.astro.find_user(sb.astro_orgs[idp].org_id, login)


def astro_team(sb: Sandbox, idp: str, name: str) -> dict[str, Any] | None:
    return sb.astro.find_group(sb.astro_orgs[idp].org_id, name)


def azure_sp(sb: Sandbox) -> str:
    assert sb.graph is not None
    return str(next(s for s in sb.graph.service_principals() if s["displayName"] == "Astro")["id"])


# -- Okta: DELETE /api/v1/groups/{groupId} -----------------------------------------------------------------------


def test_okta_deletes_a_pushed_group_its_mapping_goes_the_team_stays(sandbox: Sandbox, okta_applied: Path) -> None:
    """204, then 404 E0000007 for the id. The push mapping goes with its source group; the Team stays in Astro
    (Okta documents no DELETE of the target for this: the emulator's conservative choice, see _ep_delete_group)."""
    assert sandbox.okta is not None
    team = sandbox.default_team_names()[0]
    app_id = str(sandbox.okta.app_by_label("Astro")["id"])
    gid = str(sandbox.okta.group_by_name(team)["id"])
    members = [u["id"] for u in okta_http(sandbox).get(f"/api/v1/groups/{gid}/users").json()]
    assert members and sandbox.okta.push_mapping(app_id, team) is not None
    with okta_http(sandbox) as c:
        resp = c.delete(f"/api/v1/groups/{gid}")
        assert resp.status_code == 204 and resp.content == b""
        again = c.delete(f"/api/v1/groups/{gid}")
        assert again.status_code == 404 and again.json()["errorCode"] == "E0000007"
        assert c.get(f"/api/v1/groups/{gid}").status_code == 404
        assert c.get(f"/api/v1/apps/{app_id}/group-push/mappings", params={"sourceGroupId": gid}).json() == []
        for uid in members:  # the memberships are gone from the users' side too
            assert gid not in {g["id"] for g in c.get(f"/api/v1/users/{uid}/groups").json()}
    team_row = astro_team(sandbox, "okta", team)
    assert team_row is not None and team_row["members"], "Okta sends Astro nothing: the Team is left as it was"


def test_okta_deleting_the_assigned_group_unassigns_and_deprovisions_its_users(sandbox: Sandbox,
                                                                             okta_applied: Path) -> None:
    assert sandbox.okta is not None
    app_id = str(sandbox.okta.app_by_label("Astro")["id"])
    gid = str(sandbox.okta.group_by_name(ASSIGNED_TEAM)["id"])
    login = sandbox.seed_org.people[0].email
    assert (astro_user(sandbox, "okta", login) or {}).get("active") is True
    with okta_http(sandbox) as c:
        assert c.delete(f"/api/v1/groups/{gid}").status_code == 204
        assert c.get(f"/api/v1/apps/{app_id}/groups/{gid}").status_code == 404
        assert c.get(f"/api/v1/apps/{app_id}/users").json() == []  # every user was assigned through it
    account = astro_user(sandbox, "okta", login)
    assert account is not None and account["active"] is False  # deactivated, never deleted (Okta's way)


@pytest.mark.parametrize("kind", ["BUILT_IN", "APP_GROUP"])
def test_okta_refuses_to_delete_groups_okta_manages_403_e0000006(sandbox: Sandbox, okta_applied: Path,
                                                                 kind: str) -> None:
    """BUILT_IN (Everyone: "managed by Okta and can't be modified") and an APP_GROUP a push mapping targets
    ("You can't remove groups of type APP_GROUP if they are used in a group push mapping"): the spec's 403."""
    assert sandbox.okta is not None
    if kind == "BUILT_IN":
        gid = str(sandbox.okta.state.add_group("Everyone", group_type="BUILT_IN")["id"])
    else:
        app_id = str(sandbox.okta.app_by_label("Astro")["id"])
        mapping = sandbox.okta.push_mapping(app_id, sandbox.default_team_names()[0])
        assert mapping is not None
        gid = str(mapping["targetGroupId"])
    with okta_http(sandbox) as c:
        resp = c.delete(f"/api/v1/groups/{gid}")
        assert resp.status_code == 403 and resp.json()["errorCode"] == "E0000006", resp.text
        assert c.get(f"/api/v1/groups/{gid}").status_code == 200


# -- Graph: DELETE /v1.0/groups/{id} ------------------------------------------------------------------------------


def test_graph_deletes_a_group_and_the_next_cycle_deletes_its_team(sandbox: Sandbox, azure_applied: Path) -> None:
    assert sandbox.graph is not None
    team = sandbox.default_team_names()[0]
    sp = azure_sp(sandbox)
    gid = str(sandbox.graph.state.group_by_name(team)["id"])  # type: ignore[index]
    with graph_http(sandbox) as c:
        resp = c.delete(f"/groups/{gid}")
        assert resp.status_code == 204 and resp.content == b""
        again = c.delete(f"/groups/{gid}")
        assert again.status_code == 404 and again.json()["error"]["code"] == "Request_ResourceNotFound"
        assert c.get(f"/groups/{gid}/members").status_code == 404
        rows = c.get(f"/servicePrincipals/{sp}/appRoleAssignedTo").json()["value"]
        assert gid not in {r["principalId"] for r in rows}
    assert astro_team(sandbox, "azure", team) is not None  # nothing happens before Entra's next cycle
    sandbox.graph.run_cycle(sp)
    assert astro_team(sandbox, "azure", team) is None  # out of scope: deleted, as for an unassigned group


def test_graph_deleting_the_assigned_group_disables_who_was_in_scope_only_through_it(
        sandbox: Sandbox, azure_applied: Path) -> None:
    assert sandbox.graph is not None
    st = sandbox.graph.state
    sp = azure_sp(sandbox)
    gid = str(st.group_by_name(ASSIGNED_TEAM)["id"])  # type: ignore[index]
    others = {m for g in st.assigned_principals(sp) if g != gid for m in st.members.get(g, [])}
    only_through_it = [st.users[u]["userPrincipalName"] for u in st.members[gid] if u not in others]
    still_in = [st.users[u]["userPrincipalName"] for u in st.members[gid] if u in others]
    assert only_through_it and still_in
    with graph_http(sandbox) as c:
        assert c.delete(f"/groups/{gid}").status_code == 204
    sandbox.graph.run_cycle(sp)
    for upn in only_through_it:
        assert (astro_user(sandbox, "azure", upn) or {}).get("active") is False, upn  # disabled, not deleted
    for upn in still_in:
        assert (astro_user(sandbox, "azure", upn) or {}).get("active") is True, upn
    assert astro_team(sandbox, "azure", ASSIGNED_TEAM) is None


# -- the commands: a configured group the IdP no longer has --------------------------------------------------------


def delete_in_idp(sb: Sandbox, idp: str, name: str) -> None:
    if idp == "okta":
        assert sb.okta is not None
        with okta_http(sb) as c:
            assert c.delete(f"/api/v1/groups/{sb.okta.group_by_name(name)['id']}").status_code == 204
    else:
        assert sb.graph is not None
        with graph_http(sb) as c:
            assert c.delete(f"/groups/{sb.graph.state.group_by_name(name)['id']}").status_code == 204  # type: ignore[index]
        sb.graph.run_cycle(azure_sp(sb))


@pytest.mark.parametrize(("idp", "which", "key"), [
    ("okta", "pushed", "okta.push_groups"), ("okta", "assigned", "okta.assign_groups"),
    ("azure", "pushed", "azure.assign_groups"), ("azure", "assigned", "azure.assign_groups")])
def test_a_configured_group_deleted_in_the_idp_is_named_with_both_fixes_never_clean(
        request: pytest.FixtureRequest, sandbox: Sandbox, capsys: pytest.CaptureFixture[str], idp: str, which: str,
        key: str) -> None:
    config: Path = request.getfixturevalue(f"{idp}_applied")
    name = sandbox.default_team_names()[0] if which == "pushed" else ASSIGNED_TEAM
    delete_in_idp(sandbox, idp, name)
    for argv in (["drift"], ["drift", "--fix", "--yes"], ["drift", "--format", "json"], ["plan"], ["status"],
                 ["apply", "--yes"]):
        capsys.readouterr()
        rc = main([*argv, "-c", str(config)])
        out = capsys.readouterr()
        said = out.out + out.err
        assert rc == 2, (argv, said)  # a config error naming the file and line, not a verdict
        assert f"{config}:" in out.err and f"no {'Entra group' if idp == 'azure' else 'group'} named {name!r}" \
            in out.err and f"({key})" in out.err, (argv, said)
        assert "re-create it" in out.err and f"or drop it from {key} in the config" in out.err, (argv, said)
        for verdict in ("no drift", "\"clean\": true", "healthy", "verified"):
            assert verdict not in said.lower(), (argv, verdict, said)
