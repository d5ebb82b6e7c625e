"""The sandbox's provisioning engines on a tenant big enough for Astro's Team PATCH shortcuts to matter (member
batches of 100, Teams of hundreds): the state they leave in Astro is what the IdP holds, and a second cycle
changes nothing. Behaviour only; the speed is measured in benchmarks/engines.py."""

from __future__ import annotations

from pathlib import Path

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM


def test_an_entra_cycle_over_hundreds_of_users_leaves_exactly_the_tenant_in_astro(tmp_path: Path) -> None:
    with Sandbox(users=450, groups=4, seed=3) as sb:
        config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
        assert main(["apply", "--config", str(config), "--idp", "azure", "--yes", "--pause"]) == 0
        assert sb.graph is not None
        graph = sb.graph
        sp_id = next(sp for sp, v in graph.state.service_principals.items() if v.get("displayName") == "Astro")
        jobs = list(graph.state.sync[sp_id].jobs.values())
        for job in jobs:
            graph.engine.run_cycle(sp_id, job)
            assert job.status["lastExecution"]["state"] == "Succeeded", job.status["lastExecution"]
        org = sb.astro_orgs["azure"].org_id
        users = {u["userName"]: u for u in sb.astro.users(org)}
        entra = {u["userPrincipalName"]: u for u in graph.users()}
        assert set(users) == set(graph.group_member_upns(ASSIGNED_TEAM)) == set(entra)
        assert all(u["active"] is True and u["displayName"] == entra[n]["displayName"] for n, u in users.items())
        ids = {u["id"]: n for n, u in users.items()}
        teams = {g["displayName"]: g for g in sb.astro.groups(org)}
        assigned = [ASSIGNED_TEAM, *sb.default_team_names()]
        assert set(teams) == set(assigned)
        for name in assigned:
            members = [ids[m["value"]] for m in teams[name]["members"]]
            assert len(members) == len(set(members))  # each member once, though added 100 at a time
            assert set(members) == set(graph.group_member_upns(name))
        assert len(teams[ASSIGNED_TEAM]["members"]) == 450
        # every user's `groups` agrees with the Teams
        for name, user in users.items():
            assert {g["display"] for g in user["groups"]} == {t for t in assigned if name in
                                                                set(graph.group_member_upns(t))}
        sb.logs["astro"].clear()
        for job in jobs:
            graph.engine.run_cycle(sp_id, job)
        assert not sb.logs["astro"].writes()  # nothing changed in Entra: the second cycle writes nothing
