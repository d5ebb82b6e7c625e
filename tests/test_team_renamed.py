"""A Team renamed directly in Astro: drift reports the rename (same Team, by the id the IdP provisions into, or
exactly its members where the IdP's API does not say the id) and `--fix` renames it back with a SCIM PATCH, never
creating a second Team; Okta's push-groups re-pushes (Okta's mapping targets the Team's id and sends the name with
every push) instead of unlinking, which made a duplicate.

Real CLI, real HTTP against the sandbox; each mutating command is run twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def scim(sb: Sandbox, idp: str) -> httpx.Client:
    org = sb.astro_orgs[idp]
    return httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"})


def teams(sb: Sandbox, idp: str) -> dict[str, tuple[str, list[str]]]:
    """displayName -> (id, sorted member ids), every Team of the organization."""
    return {g["displayName"]: (g["id"], sorted(m["value"] for m in g.get("members") or []))
            for g in sb.astro.groups(sb.astro_orgs[idp].org_id)}


def rename_in_astro(sb: Sandbox, idp: str, name: str, new: str) -> str:
    with scim(sb, idp) as c:
        (group,) = c.get("/Groups", params={"filter": f'displayName eq "{name}"'}).raise_for_status().json()[
            "Resources"]
        c.patch(f"/Groups/{group['id']}", json={"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "displayName", "value": new}]}).raise_for_status()
        return str(group["id"])


def drift(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    return rc, [f for idp in doc["idps"] for f in idp["findings"]]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_a_team_renamed_in_astro_is_its_own_finding_and_fix_renames_it_back(
        request: pytest.FixtureRequest, sandbox: Sandbox, capsys: pytest.CaptureFixture[str], idp: str) -> None:
    config: Path = request.getfixturevalue(f"{idp}_applied")
    team = sandbox.default_team_names()[0]
    before = teams(sandbox, idp)
    team_id = rename_in_astro(sandbox, idp, team, "Renamed In Astro")
    rc, found = drift(config, capsys)
    assert rc == 1 and [(f["kind"], f["subject"]) for f in found] == [("team_renamed", team)], found
    detail = found[0]["detail"]
    assert f"expected name {team!r}, found 'Renamed In Astro', same Team (id {team_id}, known by" in detail, detail
    rc, out = run(capsys, "drift", "-c", str(config), "--fix")  # the plan: a rename, nothing created
    assert "remedy.astro.rename_team" in out and "unlink" not in out, out
    rc, out = run(capsys, "drift", "-c", str(config), "--fix", "--yes")
    assert rc == 0 and "renamed to" in out, out
    assert teams(sandbox, idp) == before  # the same Team (id, members) under its name; no second Team
    # Run twice: the second drift is clean and its fix plans nothing.
    assert drift(config, capsys) == (0, [])
    rc, out = run(capsys, "drift", "-c", str(config), "--fix", "--yes")
    assert rc == 0 and "remedy." not in out, out
    assert teams(sandbox, idp) == before


def test_okta_push_groups_re_pushes_a_renamed_team_back_instead_of_a_duplicate(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    team = sandbox.default_team_names()[0]
    before = teams(sandbox, "okta")
    rename_in_astro(sandbox, "okta", team, "Renamed In Astro")
    rc, out = run(capsys, "push-groups", "-c", str(okta_applied), team, "--yes")
    assert rc == 0, out
    assert teams(sandbox, "okta") == before  # renamed back by Okta's re-push; no Team created beside it
    rc, out = run(capsys, "push-groups", "-c", str(okta_applied), team, "--yes")
    assert rc == 0 and teams(sandbox, "okta") == before, out
    assert drift(okta_applied, capsys) == (0, [])


def test_okta_a_renamed_team_whose_members_also_changed_is_renamed_back_not_duplicated(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Members differ too, so the audit cannot tell the Team by its members: team_missing. The remedy re-pushes
    first (Okta targets the Team's id and sends the name), and unlinks only a Team that is really gone."""
    team = sandbox.default_team_names()[0]
    before = teams(sandbox, "okta")
    team_id = rename_in_astro(sandbox, "okta", team, "Renamed In Astro")
    member = before[team][1][0]
    with scim(sandbox, "okta") as c:
        c.patch(f"/Groups/{team_id}", json={"schemas": [PATCH_OP], "Operations": [
            {"op": "remove", "path": f'members[value eq "{member}"]'}]}).raise_for_status()
    rc, found = drift(okta_applied, capsys)
    assert rc == 1 and ("team_missing", team) in [(f["kind"], f["subject"]) for f in found], found
    rc, out = run(capsys, "drift", "-c", str(okta_applied), "--fix", "--yes")
    assert rc == 0, out
    assert teams(sandbox, "okta") == before, out  # the same Team, its name and members back
    assert drift(okta_applied, capsys) == (0, [])


def test_members_are_evidence_only_when_exactly_one_unnamed_team_has_exactly_them() -> None:
    """Pure: the audit names a rename from members only for a single candidate; two Teams with the same members
    (or a Team another group names) leave it team_missing, never a guess that --fix would act on."""
    from connector.audit.reconcile import audit
    from connector.views import AstroTeam, AstroUser, AstroView, IdpGroup, IdpUser, IdpView

    users = [IdpUser(id=f"u{i}", user_name=f"p{i}@acme.example", active=True) for i in range(3)]
    accounts = [AstroUser(id=f"a{i}", user_name=f"p{i}@acme.example", active=True, external_id=None, data={})
                for i in range(3)]
    group = IdpGroup(id="g1", name="Data", members={"p0@acme.example", "p1@acme.example"})

    def kinds(*astro_teams: AstroTeam) -> list[tuple[str, str]]:
        idp = IdpView("okta", users=list(users), groups=[group])
        found = audit(idp, AstroView("http://astro", users=list(accounts), teams=list(astro_teams)))
        return [(f.kind.value, f.subject) for f in found]

    one = AstroTeam(id="t1", name="Renamed", members=("a0", "a1"))
    assert kinds(one) == [("team_renamed", "Data")]
    assert kinds(one, AstroTeam(id="t2", name="Copy", members=("a1", "a0"))) == [("team_missing", "Data")]
    assert kinds(AstroTeam(id="t3", name="Renamed", members=("a0",))) == [("team_missing", "Data")]


def test_okta_a_team_another_idp_provisions_is_never_taken_for_a_renamed_one(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Team with an externalId is not an Okta push group's (Okta pushes groups without one): another IdP's (an
    Entra group sharing the organization) or another group's. With exactly the members of an Okta group whose
    Team is gone, it is no evidence of a rename: --fix must not rename another IdP's Team."""
    team = sandbox.default_team_names()[0]
    before = teams(sandbox, "okta")
    team_id, members = before[team]
    with scim(sandbox, "okta") as c:
        c.delete(f"/Groups/{team_id}").raise_for_status()
        c.post("/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                "displayName": "Entra Data Team", "externalId": "5d0c2f1e-entra-object-id",
                                "members": [{"value": m} for m in members]}).raise_for_status()
    rc, found = drift(okta_applied, capsys)
    kinds = [(f["kind"], f["subject"]) for f in found]
    assert rc == 1 and ("team_missing", team) in kinds and ("team_renamed", team) not in kinds, found
