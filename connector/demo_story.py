"""The steps of `astro-scim demo`: each runs the real commands, then checks the outcome in the sandbox itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.commands.demo import REPO, Story, cli
from connector.errors import EXIT_FINDINGS, EXIT_OK


def _validate() -> str:
    code = cli("validate", str(REPO / "mappings"))
    assert code == EXIT_OK, f"validate exited {code}"
    return "the shipped Okta and Azure mappings are valid"


def _render(out: Path) -> str:
    written = []
    for idp in ("okta", "azure"):
        code = cli("render", "--idp", idp, "--out", str(out / idp))
        assert code == EXIT_OK, f"render --idp {idp} exited {code}"
        written += [p for p in (out / idp).rglob("*") if p.is_file()]
    assert written, "render wrote no files"
    return f"{len(written)} files rendered under {out}"


class Demo:
    """State shared by the steps: the sandbox and the config written for it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sb: Any = None
        self.config = tmp / "astro-scim.yaml"

    # -- sandbox -------------------------------------------------------------------------------------------
    def start(self) -> str:
        from connector.sandbox.core import Sandbox

        self.sb = Sandbox(users=24, groups=4, seed=1).start()
        self.sb.write_config(self.config)
        return (f"Okta at {self.sb.okta_url}, Graph at {self.sb.graph_url}, Astro SCIM at {self.sb.astro_url}; "
                f"{len(self.sb.seed_org.people)} people, {len(self.sb.seed_org.teams)} groups; config {self.config}")

    def stop(self) -> None:
        if self.sb is not None:
            self.sb.stop()

    def astro_users(self, idp: str) -> list[dict[str, Any]]:
        return list(self.sb.astro.users(self.sb.astro_orgs[idp].org_id))

    def astro_groups(self, idp: str) -> list[dict[str, Any]]:
        return list(self.sb.astro.groups(self.sb.astro_orgs[idp].org_id))

    def assigned_people(self) -> list[Any]:
        team = next(t for t in self.sb.seed_org.teams if t.name == "Astro Users")
        keys = set(team.member_keys)
        return [p for p in self.sb.seed_org.people if p.key in keys and p.active]

    def check_teams(self, idp: str, names: list[str]) -> None:
        """Every named Team exists in Astro with exactly the seed's members (by userName)."""
        users_by_id = {u["id"]: u["userName"].lower() for u in self.astro_users(idp)}
        groups = {g["displayName"]: g for g in self.astro_groups(idp)}
        people = {p.key: p.email.lower() for p in self.sb.seed_org.people if p.active}
        for name in names:
            assert name in groups, f"Team {name!r} missing in Astro ({idp})"
            team = next(t for t in self.sb.seed_org.teams if t.name == name)
            want = {people[k] for k in team.member_keys if k in people}
            got = {users_by_id.get(m["value"], "?") for m in groups[name].get("members") or []}
            assert got == want, f"Team {name!r}: members differ: missing {sorted(want - got)}, extra {sorted(got - want)}"

    # -- Okta ----------------------------------------------------------------------------------------------
    def okta_plan_fresh(self) -> str:
        before = len(self.sb.logs["okta"].writes())
        code = cli("plan", "--config", str(self.config), "--idp", "okta", "--exit-code")
        assert code == EXIT_FINDINGS, f"plan on a fresh org should list changes (exit 1), got {code}"
        assert len(self.sb.logs["okta"].writes()) == before, "plan wrote to Okta"
        return "the plan lists every change, and the Okta request log shows no write"

    def okta_apply_until_manual(self) -> str:
        code = cli("apply", "--config", str(self.config), "--idp", "okta", "--yes")
        assert code == EXIT_FINDINGS, f"apply should stop at the manual Admin Console step (exit 1), got {code}"
        return "apply stopped at the step no API can do, with the exact values to enter"

    def okta_admin_console(self) -> str:
        app = self.sb.okta.app_by_label("Astro")
        org = self.sb.astro_orgs["okta"]
        self.sb.okta.enable_provisioning(app["id"], org.scim_url, org.token)
        return "(in the sandbox, the narrator does the Admin Console step: Configure API integration)"

    def okta_apply(self) -> str:
        code = cli("apply", "--config", str(self.config), "--idp", "okta", "--yes")
        assert code == EXIT_OK, f"apply exited {code}"
        want = {p.email.lower(): p for p in self.assigned_people()}
        users = {u["userName"].lower(): u for u in self.astro_users("okta")}
        assert set(users) == set(want), f"Astro users differ: missing {sorted(set(want) - set(users))[:3]}"
        sample = want[sorted(want)[0]]
        u = users[sample.email.lower()]
        assert u["name"]["givenName"] == sample.first_name and u["name"]["familyName"] == sample.last_name, (
            f"mapped names wrong for {sample.email}: {u.get('name')}"
        )
        self.check_teams("okta", self.sb.default_team_names())
        return (f"Astro holds the {len(users)} assigned users with mapped attributes and the pushed groups "
                f"{self.sb.default_team_names()} as Teams with their members")

    # -- Microsoft Entra ID --------------------------------------------------------------------------------
    def azure_plan_fresh(self) -> str:
        code = cli("plan", "--config", str(self.config), "--idp", "azure", "--exit-code")
        assert code == EXIT_FINDINGS, f"plan on a fresh tenant should list changes (exit 1), got {code}"
        assert not self.sb.graph.service_principals(), "plan created an app"
        return "the plan lists the app, assignments, credentials, job, schema mappings and start; nothing created"

    def azure_apply(self) -> str:
        code = cli("apply", "--config", str(self.config), "--idp", "azure", "--yes")
        assert code == EXIT_OK, f"apply exited {code}"
        self.sb.graph.wait_for_cycles()
        want = {p.email.lower(): p for p in self.assigned_people()}
        users = {u["userName"].lower(): u for u in self.astro_users("azure")}
        assert set(users) == set(want), f"Astro users differ: missing {sorted(set(want) - set(users))[:3]}"
        sample = want[sorted(want)[-1]]
        u = users[sample.email.lower()]
        assert u["name"]["familyName"] == sample.last_name and u["displayName"] == sample.display_name, (
            f"mapped attributes wrong for {sample.email}"
        )
        teams = ["Astro Users", *self.sb.default_team_names()]
        self.check_teams("azure", teams)
        return f"after the job's first cycle Astro holds {len(users)} users and the Teams {teams} with members"

    def azure_on_demand(self) -> str:
        person = self.assigned_people()[0]
        self.sb.graph.update_user(person.email, surname="Hopper-Lovelace")
        code = cli("provision", "--config", str(self.config), "--user", person.email)
        assert code == EXIT_OK, f"provision exited {code}"
        u = self.sb.astro.find_user(self.sb.astro_orgs["azure"].org_id, person.email)
        assert u is not None and u["name"]["familyName"] == "Hopper-Lovelace", "the change did not reach Astro"
        return "a surname change in Entra reached Astro in the same call, without waiting for the next cycle"

    def status(self, idp: str) -> str:
        code = cli("status", "--config", str(self.config), "--idp", idp)
        assert code == EXIT_OK, f"status exited {code}"
        return "the IdP reports healthy provisioning"

    def plan_empty(self, idp: str) -> str:
        code = cli("plan", "--config", str(self.config), "--idp", idp, "--exit-code")
        assert code == EXIT_OK, f"second plan is not empty (exit {code})"
        return "the second plan is empty: apply is idempotent"


def tell(story: Story, tmp: Path) -> None:
    story.step("Validate the mappings as code (what CI runs)", _validate)
    story.step("Render each IdP's configuration, runbooks and Terraform", lambda: _render(tmp / "render"))
    demo = Demo(tmp)
    if not story.step("Start the sandbox: emulated Okta and Graph, Astro SCIM, on loopback", demo.start):
        return
    try:
        story.step("Okta: plan against a fresh org (writes nothing)", demo.okta_plan_fresh)
        story.step("Okta: apply stops at the manual step", demo.okta_apply_until_manual)
        story.step("Okta: the Admin Console step", demo.okta_admin_console)
        story.step("Okta: apply provisions users and pushes groups", demo.okta_apply)
        story.step("Okta: plan again", lambda: demo.plan_empty("okta"))
        story.step("Entra ID: plan against a fresh tenant", demo.azure_plan_fresh)
        story.step("Entra ID: apply creates the app and starts provisioning", demo.azure_apply)
        story.step("Entra ID: plan again", lambda: demo.plan_empty("azure"))
        story.step("Entra ID: provision on demand", demo.azure_on_demand)
        story.step("Both: provisioning health as the IdPs report it", lambda: demo.status("all"))
    finally:
        demo.stop()
