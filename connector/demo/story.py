"""The steps of `astro-scim demo`: each runs the real commands, then checks the outcome in the sandbox itself."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from connector.demo.narration import Story, cli
from connector.errors import EXIT_FINDINGS, EXIT_NOT_PROVISIONED, EXIT_OK
from connector.support.packaged import data_dir


def _validate(work: Path) -> str:
    # Start as a user starts a project: copy the shipped mappings into the working folder, then check them.
    mappings = work / "mappings"
    shutil.copytree(data_dir("mappings"), mappings)
    code = cli("validate", str(mappings))
    assert code == EXIT_OK, f"validate exited {code}"
    return f"the shipped Okta and Azure mappings, copied to {mappings}, are valid"


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

    def okta_admin_console(self, token: str | None = None) -> str:
        app = self.sb.okta.app_by_label("Astro")
        org = self.sb.astro_orgs["okta"]
        self.sb.okta.enable_provisioning(app["id"], org.scim_url, token or org.token)
        if token:
            return "(the narrator does the Admin Console step, and pastes a wrong Astro token: a common slip)"
        return "(in the sandbox, the narrator does the Admin Console step: Configure API integration)"

    def okta_apply_refused(self) -> str:
        code = cli("apply", "--config", str(self.config), "--idp", "okta", "--yes")
        assert code == EXIT_NOT_PROVISIONED, f"apply should fail its verification (exit 4), got {code}"
        return "apply made its changes, read the outcome back, and did not say 'applied': Okta's pushes got a 401"

    def okta_drift_names_the_cause(self) -> str:
        code, found = self.drift("--idp", "okta")
        assert code == EXIT_FINDINGS and ("okta", "connection_broken", "Astro") in found, sorted(found)
        assert not any(kind == "idp_error" for _, kind, _ in found), sorted(found)
        return "drift names one cause (connection_broken: Astro refuses the token Okta holds) with the console fix"

    def okta_token_repaired(self) -> str:
        self.okta_admin_console()  # the right token this time
        code, _ = self.drift("--idp", "okta", "--fix", "--yes")
        code, found = self.drift("--idp", "okta")
        assert code == EXIT_OK and not found, f"left after the fix: {sorted(found)}"
        return "with the right token in Okta, drift --fix re-pushed users and groups, and the audit is clean"

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

    # -- drift -----------------------------------------------------------------------------------------------
    def drift(self, *extra: str) -> tuple[int, set[tuple[str, str, str]]]:
        import json

        report = self.tmp / "drift.json"
        code = cli("drift", "--config", str(self.config), "--format", "json", "-o", str(report), *extra)
        doc = json.loads(report.read_text())
        found = {(i["idp"], f["kind"], f["subject"]) for i in doc["idps"] for f in i["findings"]}
        return code, found

    def audit_clean(self) -> str:
        code, found = self.drift()
        assert code == EXIT_OK and not found, f"expected a clean audit, got exit {code}: {sorted(found)}"
        return "Okta, Entra ID and both Astro organizations agree: no drift"

    def inject(self) -> str:
        sb = self.sb
        people = self.assigned_people()
        okta_org, azure_org = sb.astro_orgs["okta"].org_id, sb.astro_orgs["azure"].org_id
        team_a, team_b = sb.default_team_names()
        touched = {p.email for p in people[1:4]}
        member = next(e for e in (sb.seed_org.person(k).email for k in sb.seed_org.team(team_b).member_keys)
                      if e not in touched)
        # Each line is something that happens behind the tool's back; the audit must name exactly these.
        sb.okta.deactivate_user_silently(people[1].email)  # removed in Okta, deprovisioning missed
        sb.astro.edit_user(okta_org, people[3].email, "name.givenName", "Mallory")  # edited in Astro only
        sb.astro.drop_membership(okta_org, team_b, member)  # a Team membership lost
        sb.astro.add_orphan(azure_org, "eve.orphan@acme.example", "Eve", "Orphan")  # an account nobody owns
        sb.graph.update_user(people[2].email, accountEnabled=False)  # disabled in Entra, Astro not told
        sb.okta.set_push_error(sb.okta.app_by_label("Astro")["id"], team_a, "unable to push: SCIM 500")
        self.expected = {
            ("okta", "deactivation_not_propagated", people[1].email),
            ("okta", "attribute_mismatch", people[3].email),
            ("okta", "membership_missing", team_b),
            ("okta", "idp_error", team_a),
            ("azure", "orphaned", "eve.orphan@acme.example"),
            ("azure", "deactivation_not_propagated", people[2].email),
        }
        return "injected: a missed Okta deprovision, an Astro-only edit, a lost membership, an orphan account, " \
               "a missed Entra disable and a failed Okta group push"

    def audit_finds_exactly(self) -> str:
        cli("drift", "--config", str(self.config))  # the table a person reads
        code, found = self.drift()
        assert code == EXIT_FINDINGS, f"drift should exit 1, got {code}"
        assert found == self.expected, (
            f"missing {sorted(self.expected - found)}, unexpected {sorted(found - self.expected)}"
        )
        return f"the audit found exactly the {len(found)} injected problems, each with its remedy"

    def fix(self) -> str:
        code, _ = self.drift("--fix", "--yes", "--delete-orphans")
        assert code == EXIT_OK, f"drift --fix exited {code}: a remedy failed or left something"
        code, found = self.drift()
        assert code == EXIT_OK and not found, f"left after the fix: {sorted(found)}"
        return ("re-pushed groups, re-assigned and provisioned users on demand, deactivated the deprovisioned, deleted "
                "the orphan; the re-audit is clean")

    # -- Team access templates -----------------------------------------------------------------------------
    ROLES = {"organization": "ORGANIZATION_MEMBER", "workspaces": {"analytics": "WORKSPACE_AUTHOR"},
             "deployments": {"analytics/prod": "DEPLOYMENT_ADMIN"}}

    def access_apply(self) -> str:
        import yaml

        team = self.sb.default_team_names()[0]
        data = yaml.safe_load(self.config.read_text())
        data["access"] = {team: self.ROLES}
        self.config.write_text(yaml.safe_dump(data, sort_keys=False))
        code = cli("apply", "--config", str(self.config), "--idp", "astro", "--yes")
        assert code == EXIT_OK, f"apply --idp astro exited {code}"
        for idp in ("okta", "azure"):
            got = self.sb.astro_platform.team_roles(self.sb.astro_orgs[idp].org_id, team)
            assert got == self.ROLES, f"{idp}: Team {team!r} has {got}"
        assert cli("plan", "--config", str(self.config), "--idp", "astro", "--exit-code") == EXIT_OK
        return f"Team {team!r} got its organization, workspace and deployment roles in both Astro organizations"

    def access_drift(self) -> str:
        team = self.sb.default_team_names()[0]
        org = self.sb.astro_orgs["okta"].org_id
        self.sb.astro_platform.set_team_roles(org, team, workspaces={"analytics": "WORKSPACE_OWNER"})
        code, found = self.drift()
        assert code == EXIT_FINDINGS and found == {("okta", "team_roles_mismatch", team)}, sorted(found)
        code, _ = self.drift("--fix", "--yes")
        assert code == EXIT_OK, f"drift --fix exited {code}"
        code, found = self.drift()
        assert code == EXIT_OK and not found, sorted(found)
        assert self.sb.astro_platform.team_roles(org, team) == self.ROLES
        return "an out-of-band role change (WORKSPACE_OWNER) was caught by drift and put back"

    def plan_empty(self, idp: str) -> str:
        code = cli("plan", "--config", str(self.config), "--idp", idp, "--exit-code")
        assert code == EXIT_OK, f"second plan is not empty (exit {code})"
        return "the second plan is empty: apply is idempotent"


def tell(story: Story, tmp: Path) -> None:
    story.step("Validate the mappings as code (what CI runs)", lambda: _validate(tmp))
    story.step("Render each IdP's configuration, runbooks and Terraform", lambda: _render(tmp / "render"))
    demo = Demo(tmp)
    if not story.step("Start the sandbox: emulated Okta and Graph, Astro SCIM, on loopback", demo.start):
        return
    try:
        story.step("Okta: plan against a fresh org (writes nothing)", demo.okta_plan_fresh)
        story.step("Okta: apply stops at the manual step", demo.okta_apply_until_manual)
        story.step("Okta: the Admin Console step, with a wrong token", lambda: demo.okta_admin_console("wrong"),
                   checks=False)
        story.step("Okta: apply configures Okta, then checks what Okta did", demo.okta_apply_refused)
        story.step("Okta: drift finds the cause", demo.okta_drift_names_the_cause)
        story.step("Okta: the token fixed in the console, drift --fix re-pushes", demo.okta_token_repaired)
        story.step("Okta: apply again: nothing left to change, every user and group verified in Astro",
                   demo.okta_apply)
        story.step("Okta: plan again", lambda: demo.plan_empty("okta"))
        story.step("Entra ID: plan against a fresh tenant", demo.azure_plan_fresh)
        story.step("Entra ID: apply creates the app and starts provisioning", demo.azure_apply)
        story.step("Entra ID: plan again", lambda: demo.plan_empty("azure"))
        story.step("Entra ID: provision on demand", demo.azure_on_demand)
        story.step("Both: provisioning health as the IdPs report it", lambda: demo.status("all"))
        story.step("Drift: audit both IdPs against Astro", demo.audit_clean)
        story.step("Drift: things go wrong behind the tool's back", demo.inject, checks=False)
        story.step("Drift: the audit finds exactly what went wrong", demo.audit_finds_exactly)
        story.step("Drift: fix, then audit again", demo.fix)
        story.step("Team access: pushed groups get their Astro roles", demo.access_apply)
        story.step("Team access: an out-of-band role change is caught and repaired", demo.access_drift)
    finally:
        demo.stop()
