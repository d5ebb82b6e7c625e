"""`astro-scim drift` end to end against the sandbox: per finding kind, inject it, see exactly it, fix it, clean.

Everything goes through the real CLI, the official SDKs and loopback HTTP; drift is injected behind the tool's
back with the emulators' own drift methods or plain SCIM requests (what an Astro admin or a script would do).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from probe import modules_loaded

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM

Found = list[tuple[str, str]]


def drift(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Found]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--format", "json", *extra])
    doc = json.loads(capsys.readouterr().out)
    return rc, [(f["kind"], f["subject"]) for idp in doc["idps"] for f in idp["findings"]]


def fix(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--fix", "--yes", *extra])
    out = capsys.readouterr()
    return rc, out.out + out.err


def scim(sb: Sandbox, idp: str) -> httpx.Client:
    org = sb.astro_orgs[idp]
    return httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"})


def okta_app(sb: Sandbox) -> str:
    assert sb.okta is not None
    return str(sb.okta.app_by_label("Astro")["id"])


def _team(sb: Sandbox, idp: str, name: str) -> dict[str, Any]:
    team = sb.astro.find_group(sb.astro_orgs[idp].org_id, name)
    assert team is not None, name
    return team


def _member_of(sb: Sandbox, team: str) -> str:
    return sb.seed_org.person(sb.seed_org.team(team).member_keys[0]).email


def _not_member_of(sb: Sandbox, team: str) -> str:
    keys = set(sb.seed_org.team(team).member_keys)
    return next(p.email for p in sb.seed_org.people if p.key not in keys)


def _only_in_assigned_team(sb: Sandbox) -> str:
    """A person in no team but "Astro Users": repairing them takes few on-demand calls (Entra allows 5 / 10 s)."""
    others = {k for t in sb.default_team_names() for k in sb.seed_org.team(t).member_keys}
    return next((p.email for p in sb.seed_org.people if p.key not in others), sb.seed_org.people[0].email)


# Each injector changes one thing and returns the one finding drift must report, as (kind, subject).
Inject = Callable[[Sandbox, str], tuple[str, str]]


def user_missing(sb: Sandbox, idp: str) -> tuple[str, str]:
    login = _only_in_assigned_team(sb)
    sb.astro.delete_user(sb.astro_orgs[idp].org_id, login)
    return "user_missing", login


def orphan_in_astro(sb: Sandbox, idp: str) -> tuple[str, str]:
    sb.astro.add_orphan(sb.astro_orgs[idp].org_id, "eve.orphan@acme.example", "Eve", "Orphan")
    return "orphaned", "eve.orphan@acme.example"


def removed_in_idp(sb: Sandbox, idp: str) -> tuple[str, str]:
    login = sb.seed_org.people[1].email
    if idp == "okta":
        assert sb.okta is not None
        sb.okta.deactivate_user_silently(login)  # Okta also unassigns a deactivated user from its apps
        return "deactivation_not_propagated", login  # still known to Okta, as deactivated
    assert sb.graph is not None
    sb.graph.remove_user_silently(login)
    return "orphaned", login


def disabled_in_entra(sb: Sandbox, idp: str) -> tuple[str, str]:
    login = sb.seed_org.people[2].email
    assert sb.graph is not None
    sb.graph.update_user(login, accountEnabled=False)
    return "deactivation_not_propagated", login


def attribute_edited(sb: Sandbox, idp: str) -> tuple[str, str]:
    login = sb.seed_org.people[3].email
    sb.astro.edit_user(sb.astro_orgs[idp].org_id, login, "name.givenName", "Mallory")
    return "attribute_mismatch", login


def team_deleted(sb: Sandbox, idp: str) -> tuple[str, str]:
    name = sb.default_team_names()[0]
    assert scim(sb, idp).delete(f"/Groups/{_team(sb, idp, name)['id']}").status_code == 204
    return "team_missing", name


def membership_dropped(sb: Sandbox, idp: str) -> tuple[str, str]:
    name = sb.default_team_names()[1]
    sb.astro.drop_membership(sb.astro_orgs[idp].org_id, name, _member_of(sb, name))
    return "membership_missing", name


def membership_added(sb: Sandbox, idp: str) -> tuple[str, str]:
    name = sb.default_team_names()[0]
    user = sb.astro.find_user(sb.astro_orgs[idp].org_id, _not_member_of(sb, name))
    assert user is not None
    r = scim(sb, idp).patch(f"/Groups/{_team(sb, idp, name)['id']}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}]})
    assert r.status_code in (200, 204), r.text
    return "membership_extra", name


def app_user_error(sb: Sandbox, idp: str) -> tuple[str, str]:
    login = sb.seed_org.people[4].email
    assert sb.okta is not None
    sb.okta.set_app_user_error(okta_app(sb), login, "SCIM 409: userName already exists")
    return "idp_error", login


def push_error(sb: Sandbox, idp: str) -> tuple[str, str]:
    name = sb.default_team_names()[0]
    assert sb.okta is not None
    sb.okta.set_push_error(okta_app(sb), name, "Failed on 2024-01-01: unable to push")
    return "idp_error", name


@dataclass
class Case:
    inject: Inject
    flags: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.inject.__name__


ORPHAN_FLAGS = ("--delete-orphans",)
OKTA_CASES = [Case(user_missing), Case(orphan_in_astro, ORPHAN_FLAGS), Case(removed_in_idp, ORPHAN_FLAGS),
              Case(attribute_edited), Case(team_deleted), Case(membership_dropped), Case(membership_added),
              Case(app_user_error), Case(push_error)]
AZURE_CASES = [Case(user_missing), Case(orphan_in_astro, ORPHAN_FLAGS), Case(removed_in_idp, ORPHAN_FLAGS),
               Case(disabled_in_entra), Case(attribute_edited), Case(team_deleted), Case(membership_dropped),
               Case(membership_added)]


def _inject_see_fix_clean(sb: Sandbox, config: Path, idp: str, case: Case,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert drift(config, capsys) == (0, []), "the configured sandbox starts clean"
    expected = case.inject(sb, idp)
    assert drift(config, capsys) == (1, [expected])
    rc, out = fix(config, capsys, *case.flags)
    assert rc == 0, out
    assert "0 finding(s) left" in out
    assert drift(config, capsys) == (0, [])


@pytest.mark.parametrize("case", OKTA_CASES, ids=str)
def test_okta_each_finding_kind_is_seen_fixed_and_gone(sandbox: Sandbox, okta_applied: Path, case: Case,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _inject_see_fix_clean(sandbox, okta_applied, "okta", case, capsys)


@pytest.mark.parametrize("case", AZURE_CASES, ids=str)
def test_azure_each_finding_kind_is_seen_fixed_and_gone(sandbox: Sandbox, azure_applied: Path, case: Case,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _inject_see_fix_clean(sandbox, azure_applied, "azure", case, capsys)


def test_quarantine_is_reported_with_its_manual_step_and_left(sandbox: Sandbox, azure_applied: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox.graph is not None
    sp = next(s for s in sandbox.graph.service_principals() if s["displayName"] == "Astro")
    sandbox.graph.quarantine(sp["id"], reason="EncounteredQuarantineException")
    assert drift(azure_applied, capsys) == (1, [("idp_error", "Astro")])
    sandbox.logs["graph"].clear()
    rc, out = fix(azure_applied, capsys)
    assert rc == 1 and "! remedy.manual Astro" in out and "Restart provisioning" in out
    # validateCredentials (the setup audit's test of the token Entra holds) is a POST that changes nothing
    assert [w for w in sandbox.logs["graph"].writes() if not w.path.endswith("/validateCredentials")] == []


def test_fix_without_yes_prints_the_plan_and_changes_nothing(sandbox: Sandbox, okta_applied: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    user_missing(sandbox, "okta")
    membership_dropped(sandbox, "okta")
    for log in sandbox.logs.values():
        log.clear()
    capsys.readouterr()
    assert main(["drift", "-c", str(okta_applied), "--fix"]) == 1
    out = capsys.readouterr().out
    assert "> remedy.okta.reassign_user" in out and "> remedy.okta.repush_group" in out
    assert "nothing done (add --yes to act)" in out
    assert sandbox.logs["okta"].writes() == [] and sandbox.logs["astro"].writes() == []
    # the report is shown once, before the plan: nothing changed, so it is not repeated after it
    assert out.count("finding(s):") == 1 and out.rindex("nothing done") > out.index("finding(s):")


def test_mass_orphan_deletion_is_refused_without_force(sandbox: Sandbox, okta_applied: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    org = sandbox.astro_orgs["okta"].org_id
    for i in range(2):  # 12 + 2 Astro users: the limit is min(10% of 14, 25) = 1 deletion
        sandbox.astro.add_orphan(org, f"orphan{i}@acme.example", "Or", f"Phan{i}")
    sandbox.logs["astro"].clear()
    capsys.readouterr()
    assert main(["drift", "-c", str(okta_applied), "--fix", "--yes", "--delete-orphans"]) == 2
    err = capsys.readouterr().err
    assert "the plan deletes 2 objects, over the safety limit of 1" in err and "--force" in err
    assert sandbox.logs["astro"].count("DELETE") == 0
    rc, out = fix(okta_applied, capsys, "--delete-orphans", "--force")
    assert rc == 0, out
    assert sandbox.astro.find_user(org, "orphan0@acme.example") is None
    assert sandbox.logs["astro"].count("DELETE") == 2


def test_report_formats_through_the_cli_and_no_secret_in_any(sandbox: Sandbox, okta_applied: Path, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    attribute_edited(sandbox, "okta")
    orphan_in_astro(sandbox, "okta")
    report = tmp_path / "drift.xml"
    capfd.readouterr()
    assert main(["drift", "-c", str(okta_applied), "--format", "junit", "--output", str(report)]) == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"
    outputs = [report.read_text()]
    for fmt in ("text", "json", "markdown", "github", "html"):
        assert main(["drift", "-c", str(okta_applied), "--format", fmt]) == 1
        out, err = capfd.readouterr()
        outputs += [out, err]
        assert "eve.orphan@acme.example" in out.replace("<wbr>", ""), fmt  # html marks where long names wrap
    doc = json.loads(outputs[3])  # the json run's stdout is one clean document
    assert doc["tool_version"] and doc["audited_at"].endswith("Z")
    assert doc["orgs"] == [{"idp": "okta", "idp_org": str(sandbox.okta_url).split("://", 1)[1],
                            "astro_org": sandbox.astro_orgs["okta"].org_id,
                            "scim_url": sandbox.astro_orgs["okta"].scim_url}]
    secrets = [sandbox.okta_token, sandbox.astro_orgs["okta"].token]
    for text in outputs:
        for secret in secrets:
            assert secret not in text


def test_a_refused_astro_token_exits_3_naming_the_endpoint(sandbox: Sandbox, okta_applied: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    (okta_applied.parent / "astro-okta.token").write_text("not-the-astro-token\n")
    capsys.readouterr()
    assert main(["drift", "-c", str(okta_applied)]) == 3
    err = capsys.readouterr().err
    assert sandbox.astro_orgs["okta"].scim_url in err and "HTTP 401" in err
    assert "not-the-astro-token" not in err


def test_both_idps_in_one_run(sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml")
    org = sandbox.astro_orgs["okta"]
    assert sandbox.okta is not None
    sandbox.okta.enable_provisioning(okta_app(sandbox), org.scim_url, org.token)
    assert main(["apply", "-c", str(config), "--yes"]) == 0
    assert drift(config, capsys) == (0, [])
    team = sandbox.astro.find_group(sandbox.astro_orgs["azure"].org_id, ASSIGNED_TEAM)
    assert team is not None and len(team["members"]) == len(sandbox.seed_org.people)
    attribute_edited(sandbox, "azure")
    rc, found = drift(config, capsys)
    assert rc == 1 and found == [("attribute_mismatch", sandbox.seed_org.people[3].email)]


def test_report_to_a_missing_folder_is_a_usage_error_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # no config, no sandbox: the output path is checked first (it used to crash with exit 70 after the audit)
    assert main(["drift", "-c", str(tmp_path / "none.yaml"), "-o", str(tmp_path / "no" / "drift.html")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the report to" in err and "folder does not exist" in err and "Traceback" not in err


def test_report_that_cannot_be_written_is_a_usage_error(okta_applied: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["drift", "-c", str(okta_applied), "--format", "html", "-o", str(tmp_path)]) == 2  # a folder
    err = capsys.readouterr().err
    assert f"cannot write the report to {tmp_path}" in err and "crash" not in err


def test_fix_yes_with_only_manual_remedies_prints_the_report_once(
    sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan_in_astro(sandbox, "okta")  # without --delete-orphans its remedy is manual: nothing is done
    capsys.readouterr()
    assert main(["drift", "-c", str(okta_applied), "--fix", "--yes"]) == 1
    out = capsys.readouterr().out
    assert "! remedy.manual eve.orphan@acme.example" in out
    assert out.count("finding(s):") == 1 and out.count("eve.orphan@acme.example") == 2  # the table, the plan


def test_an_okta_drift_loads_neither_scim2_nor_an_idp_sdk(sandbox: Sandbox, okta_applied: Path) -> None:
    """The audit reads plain JSON: importing scim2-client/scim2-models (pydantic models) or the okta SDK would cost
    a fresh process ~1 s each before its verdict (benchmarks/audit_scale.py). Only a remedy or a verification
    loads them."""
    heavy = ("scim2_client", "scim2_models", "pydantic", "okta", "msgraph", "kiota_http",
             "connector.mapping.expr.entra")  # the other IdP's expression parser: its mappings are not read
    loaded, code = modules_loaded(["drift", "-c", str(okta_applied), "--format", "json"], heavy,
                                  cwd=okta_applied.parent, timeout=120)
    assert code == 0 and loaded == []


def test_an_error_on_the_second_idp_keeps_the_first_idps_findings(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--idp all`: Okta audited, then Entra refuses the Graph credential. The report still holds Okta's findings
    (JSON and text) beside the error, never a clean verdict, and the exit code is the error's."""
    config = sandbox.write_config(tmp_path / "astro-scim.yaml")
    org = sandbox.astro_orgs["okta"]
    assert sandbox.okta is not None
    sandbox.okta.enable_provisioning(okta_app(sandbox), org.scim_url, org.token)
    assert main(["apply", "-c", str(config), "--idp", "okta", "--yes"]) == 0
    _, login = user_missing(sandbox, "okta")
    (tmp_path / "graph.token").write_text("not-the-graph-token\n")
    capsys.readouterr()
    assert main(["drift", "-c", str(config), "--format", "json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["clean"] is False and doc["error"]["exit_code"] == 3
    assert [(i["idp"], [(f["kind"], f["subject"]) for f in i["findings"]]) for i in doc["idps"]] == [
        ("okta", [("user_missing", login)])]
    assert main(["drift", "-c", str(config)]) == 3
    out = capsys.readouterr()
    assert login in out.out and "graph" in out.err.lower()


def test_remedies_carried_out_before_a_failed_re_audit_are_reported_and_recorded(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--fix --yes acts, then the re-audit cannot read Astro: what was done is still in the JSON (the remedies,
    with the audit they came from) and in the audit trail; the exit code is the error's, the verdict not clean."""
    _, login = user_missing(sandbox, "okta")
    middleware = sandbox._middleware["astro"]
    inner = middleware.app
    wrote: list[str] = []

    def failing_after_a_write(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] != "GET":
            wrote.append(environ["REQUEST_METHOD"])
        elif wrote and "filter=" not in environ.get("QUERY_STRING", ""):  # the re-audit's list pages
            body = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "500"}'
            start_response("500 Internal Server Error", [("Content-Type", "application/scim+json")])
            return [body]
        return inner(environ, start_response)

    middleware.app = failing_after_a_write
    try:
        capsys.readouterr()
        rc = main(["drift", "-c", str(okta_applied), "--fix", "--yes", "--format", "json"])
        doc = json.loads(capsys.readouterr().out)
    finally:
        middleware.app = inner
    assert wrote and rc == 3 and doc["clean"] is False and doc["error"]["exit_code"] == 3
    (okta,) = doc["idps"]
    assert [(f["kind"], f["subject"]) for f in okta["findings"]] == [("user_missing", login)]
    assert okta["remedies"] and all("ok" in r for r in okta["remedies"])
    trail_lines = (okta_applied.parent / ".astro-scim" / "audit.log").read_text().splitlines()
    recorded = [json.loads(line) for line in trail_lines]
    (line,) = [r for r in recorded if r["command"] == "drift --fix"]
    assert line["changes"] and all(c["outcome"] in ("done", "failed") for c in line["changes"]), line
    assert login in json.dumps(line["changes"])


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_an_orphans_remedy_gives_the_command_that_deletes_it(
    sandbox: Sandbox, idp: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    """The remedy text names the whole command: `drift --fix --delete-orphans` alone only shows the plan."""
    import re
    import shlex

    config = request.getfixturevalue(f"{idp}_applied")
    _, login = orphan_in_astro(sandbox, idp)
    capsys.readouterr()
    assert main(["drift", "-c", str(config), "--idp", idp, "--format", "json"]) == 1
    (finding,) = [f for i in json.loads(capsys.readouterr().out)["idps"] for f in i["findings"]]
    commands = re.findall(r"`(astro-scim [^`]+)`", finding["remedy"])
    assert commands == ["astro-scim drift --fix --delete-orphans --yes"], finding["remedy"]
    argv = shlex.split(commands[0])[1:]
    assert main([*argv, "-c", str(config), "--idp", idp]) == 0  # as given: it deletes the account
    assert sandbox.astro.find_user(sandbox.astro_orgs[idp].org_id, login) is None


# -- accounts of users out of the IdP's scope, and of another IdP provisioning into the same Astro organization --


def _out_of_scope_with_astro_active(sb: Sandbox, idp: str, applied: Path) -> str:
    """A user taken out of the app's scope (out of the assigned group, still an active user of the IdP) whose
    deprovision did not reach Astro: its account there is still active. Returns the userName."""
    others = {k for t in sb.default_team_names() for k in sb.seed_org.team(t).member_keys}
    who = next(p.email for p in sb.seed_org.people if p.key not in others and p.active)
    org = sb.astro_orgs[idp].org_id
    if idp == "okta":
        assert sb.okta is not None
        uid, gid = sb.okta.user_by_login(who)["id"], sb.okta.group_by_name(ASSIGNED_TEAM)["id"]
        with httpx.Client(base_url=str(sb.okta_url), headers={"Authorization": f"SSWS {sb.okta_token}"}) as c:
            c.delete(f"/api/v1/groups/{gid}/users/{uid}").raise_for_status()
    else:
        assert sb.graph is not None
        sb.graph.remove_member(ASSIGNED_TEAM, who)
    sb.astro.edit_user(org, who, "active", True)  # the deprovision was lost
    return who


def test_a_user_out_of_the_apps_scope_is_deactivated_never_deleted_as_an_orphan(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Okta marks the accounts it creates (externalId: the Okta user's id), so its deprovision is told apart from an
    # account Okta never made. (Entra's accounts carry no such mark with the seed's mappings: there, such a user
    # stays an orphan, below.)
    idp, applied = "okta", okta_applied
    who = _out_of_scope_with_astro_active(sandbox, idp, applied)
    rc, found = drift(applied, capsys)
    assert rc == 1 and ("deactivation_not_propagated", who) in found, found
    assert not any(kind == "orphaned" for kind, _ in found), found
    main(["drift", "-c", str(applied), "--format", "json"])
    (doc,) = json.loads(capsys.readouterr().out)["idps"]
    in_scope = sum(1 for p in sandbox.seed_org.people if p.email != who)  # the read's users, not the lookup's
    assert doc["counts"]["idp_users"] == in_scope, doc["counts"]
    sandbox.logs["astro"].clear()
    rc, out = fix(applied, capsys, "--delete-orphans")
    assert sandbox.logs["astro"].count("DELETE") == 0, out  # deactivated, as the IdP itself would
    user = sandbox.astro.find_user(sandbox.astro_orgs[idp].org_id, who)
    assert user is not None and user["active"] is False


def _one_org_for_both(sandbox: Sandbox, tmp_path: Path) -> Path:
    """Okta (assigning one team) and Entra (everyone) applied into one Astro organization: the config's path."""
    import yaml
    from applied import applied

    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta", "azure"))
    data = yaml.safe_load(config.read_text())
    data["astro"] = data["okta"].pop("astro")
    data["azure"].pop("astro")
    data["okta"].update(assign_groups=["Data Engineering"], push_groups=[])
    config.write_text(yaml.safe_dump(data))
    applied(sandbox, config, "okta", console_step=True, only=True)
    applied(sandbox, config, "azure", only=True)
    return config


def test_two_idps_into_one_astro_org_never_take_the_others_accounts_for_orphans(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's own example: one top-level `astro:` for Okta and Entra. Okta assigns one team, Entra everyone:
    the accounts Entra provisions are Entra's, not Okta's orphans (deleting them, Entra made them again)."""
    config = _one_org_for_both(sandbox, tmp_path)
    rc, found = drift(config, capsys)
    assert (rc, found) == (0, []), found  # no orphans, nor "deactivations" of the other's users (the same people
    org = sandbox.astro_orgs["okta"].org_id  # are in both IdPs: Okta knows Entra's users, out of its own scope)
    people = len(sandbox.astro.users(org))
    sandbox.astro.add_orphan(org, "eve.orphan@acme.example", "Eve", "Orphan")
    rc, found = drift(config, capsys)
    assert rc == 1 and {s for kind, s in found if kind == "orphaned"} == {"eve.orphan@acme.example"}, found
    sandbox.logs["astro"].clear()
    rc, out = fix(config, capsys, "--delete-orphans")
    assert sandbox.logs["astro"].count("DELETE") == 1, out  # the real orphan only
    assert sandbox.astro.find_user(org, "eve.orphan@acme.example") is None
    assert len(sandbox.astro.users(org)) == people and all(u["active"] for u in sandbox.astro.users(org))


def test_okta_never_takes_entras_team_for_its_own_renamed_one(sandbox: Sandbox, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """One Astro organization for both: Okta pushes 'Data Engineering', Entra assigns 'Analytics' with the same
    people. Okta's Team deleted in Astro, Okta's audit took Entra's Team (no externalId with the seed's mappings,
    the same members) for its own renamed one, and --fix renamed Entra's Team: the two IdPs then renamed it back and
    forth, and Okta's Team never came back. A Team named as another IdP's group is never a candidate."""
    import httpx
    import yaml
    from applied import applied

    assert sandbox.graph is not None
    de = [sandbox.seed_org.person(k).email for k in sandbox.seed_org.team("Data Engineering").member_keys]
    an = [sandbox.seed_org.person(k).email for k in sandbox.seed_org.team("Analytics").member_keys]
    for upn in set(an) - set(de):
        sandbox.graph.remove_member("Analytics", upn)
    for upn in set(de) - set(an):
        sandbox.graph.add_member("Analytics", upn)
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta", "azure"))
    data = yaml.safe_load(config.read_text())
    data["astro"] = data["okta"].pop("astro")
    data["azure"].pop("astro")
    data["okta"].update(assign_groups=[ASSIGNED_TEAM], push_groups=["Data Engineering"])
    data["azure"].update(assign_groups=[ASSIGNED_TEAM, "Analytics"])
    config.write_text(yaml.safe_dump(data))
    applied(sandbox, config, "okta", console_step=True, only=True)
    applied(sandbox, config, "azure", only=True)
    org = sandbox.astro_orgs["okta"]
    team = sandbox.astro.find_group(org.org_id, "Data Engineering")
    with httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"}) as c:
        assert c.delete(f"/Groups/{team['id']}").status_code == 204

    rc, found = drift(config, capsys, "--idp", "okta")
    assert (rc, found) == (1, [("team_missing", "Data Engineering")]), found
    rc, out = fix(config, capsys, "--idp", "okta")
    assert rc == 0, out
    assert {g["displayName"] for g in sandbox.astro.groups(org.org_id)} >= {"Data Engineering", "Analytics"}
    rc, found = drift(config, capsys)
    assert (rc, found) == (0, []), found


def test_two_idps_into_one_astro_org_are_each_read_once_per_drift(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each IdP's audit needs the other's users (whose accounts are not its orphans): with both audited in one run,
    the view read for the first one's own audit (Okta's) serves the second's, instead of a second whole read.
    Entra, audited second, is still read twice: as Okta's sibling, then for its own audit."""
    config = _one_org_for_both(sandbox, tmp_path)
    assert sandbox.okta is not None
    app = str(sandbox.okta.app_by_label("Astro")["id"])
    sandbox.logs["okta"].clear()
    sandbox.logs["graph"].clear()
    rc, found = drift(config, capsys)
    assert (rc, found) == (0, []), found

    def view_reads() -> int:  # Okta's view: the app users with their users embedded (the setup audit reads others)
        return sum(1 for e in sandbox.logs["okta"].entries
                   if e.path == f"/api/v1/apps/{app}/users" and "expand=user" in e.query)

    assert view_reads() == 1
    members = [e for e in sandbox.logs["graph"].entries if e.method == "GET" and e.path.endswith("/members")]
    assert members and len(members) == 2 * len({e.path for e in members}), members
    sandbox.logs["okta"].clear()
    rc, found = drift(config, capsys, "--idp", "azure")
    assert (rc, found) == (0, []) and view_reads() == 1  # Entra alone: Okta read as its sibling, as before


def test_an_account_the_idp_knows_but_never_provisioned_stays_an_orphan(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An Astro account made by hand for a name Okta knows (an admin's own, an invite): not Okta's deprovision, so
    # plain --fix leaves it alone (only --delete-orphans, within the safety limits, would delete it).
    others = {k for t in sandbox.default_team_names() for k in sandbox.seed_org.team(t).member_keys}
    who = next(p.email for p in sandbox.seed_org.people if p.key not in others and p.active)
    org = sandbox.astro_orgs["okta"].org_id
    assert sandbox.okta is not None
    uid, gid = sandbox.okta.user_by_login(who)["id"], sandbox.okta.group_by_name(ASSIGNED_TEAM)["id"]
    with httpx.Client(base_url=str(sandbox.okta_url), headers={"Authorization": f"SSWS {sandbox.okta_token}"}) as c:
        c.delete(f"/api/v1/groups/{gid}/users/{uid}").raise_for_status()
    sandbox.astro.edit_user(org, who, "active", True)
    sandbox.astro.edit_user(org, who, "externalId", "made-by-hand")
    rc, found = drift(okta_applied, capsys)
    assert ("orphaned", who) in found, found
    sandbox.logs["astro"].clear()
    fix(okta_applied, capsys)
    assert sandbox.logs["astro"].writes() == []


def test_when_the_other_idp_of_the_org_cannot_be_read_no_account_is_judged_an_orphan(
        sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    config = _one_org_for_both(sandbox, tmp_path)
    data = yaml.safe_load(config.read_text())
    data["azure"]["graph_url"] = "http://127.0.0.1:9/v1.0"  # nothing listens there
    config.write_text(yaml.safe_dump(data))
    sandbox.astro.add_orphan(sandbox.astro_orgs["okta"].org_id, "eve.orphan@acme.example", "Eve", "Orphan")
    capsys.readouterr()
    rc = main(["drift", "-c", str(config), "--idp", "okta", "--format", "json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    found = [(f["kind"], f["subject"]) for idp in doc["idps"] for f in idp["findings"]]
    assert found == [], found
    assert "azure provisions into the same Astro organization and could not be read" in err, err
    # Not "no drift": Eve's account is an orphan the audit could not judge. Never clean, never exit 0.
    assert rc == 3 and doc["clean"] is False and doc["idps"][0]["clean"] is False
    (note,) = doc["idps"][0]["not_verified"]
    assert note.startswith("orphaned accounts and deprovisions not reported: azure provisions into the same")
    import jsonschema

    schema = json.loads((Path(__file__).parents[1] / "connector/data/output-schemas/drift.v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    capsys.readouterr()
    assert main(["drift", "-c", str(config), "--idp", "okta"]) == 3
    out = capsys.readouterr().out
    assert "not verified: orphaned accounts and deprovisions not reported" in out and "no drift" not in out
    for fmt, needle in (("markdown", "no finding left, but not clean"), ("github", "::error"),
                        ("junit", 'errors="1"'), ("html", "No finding left, but not clean")):
        assert main(["drift", "-c", str(config), "--idp", "okta", "--format", fmt]) == 3
        out = capsys.readouterr().out
        assert needle in out and "No drift" not in out and "no drift" not in out, (fmt, out[-800:])
    # -o: the line that says what was written says it too; JUnit's root counts the error (what CI reads first)
    report = tmp_path / "drift.xml"
    assert main(["drift", "-c", str(config), "--idp", "okta", "--format", "junit", "-o", str(report)]) == 3
    said = capsys.readouterr()
    said_all = said.out + said.err
    assert f"wrote the junit report to {report}: no finding left, but not clean" in said_all
    assert "no drift" not in said_all
    assert '<testsuites name="astro-scim drift" tests=' in report.read_text() and 'errors="1">' in report.read_text()


@pytest.mark.parametrize("fmt", ["json", "junit"])
def test_an_interrupted_drift_leaves_no_earlier_report_in_its_file(
        sandbox: Sandbox, okta_applied: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    """Ctrl-C (or a CI cancel) with -o: the file an earlier run wrote stayed, read as this run's verdict. JSON gets
    the interrupted document; another format's earlier report goes."""
    from hostile import ctrl_c_at

    report = tmp_path / f"drift.{fmt}"
    report.write_text('{"clean": true, "stale": "from an earlier run"}' if fmt == "json" else "<testsuites/>")
    with ctrl_c_at(sandbox, "okta", "/users"):  # one Ctrl-C (a second one may cut the document's write short)
        rc = main(["drift", "-c", str(okta_applied), "--format", fmt, "-o", str(report)])
    capsys.readouterr()
    assert rc == 130
    if fmt == "json":
        doc = json.loads(report.read_text())
        assert doc["clean"] is False and doc["error"]["type"] == "Interrupted" and "stale" not in doc
    else:
        assert not report.exists()


def test_a_folder_as_the_report_file_is_refused_before_any_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # no config: the path is checked first (a folder was found only after the audit, which can take minutes)
    assert main(["drift", "-c", str(tmp_path / "none.yaml"), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the report to {tmp_path}: it is a folder" in err and "none.yaml" not in err


@pytest.mark.parametrize("fmt", ["junit", "html", "json"])
def test_an_error_never_leaves_an_earlier_report_in_place(
        sandbox: Sandbox, okta_applied: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    """A CI step uploads the report after a failed run too: the last clean one, left at the path, read as this
    run's verdict. JSON gets the error document (as on stdout); the other formats leave no file."""
    report = tmp_path / f"drift.{fmt}"
    assert main(["drift", "-c", str(okta_applied), "--format", fmt, "-o", str(report)]) == 0
    assert report.is_file()
    (okta_applied.parent / "okta.token").write_text("revoked-token\n")
    capsys.readouterr()
    assert main(["drift", "-c", str(okta_applied), "--format", fmt, "-o", str(report)]) == 3
    out = capsys.readouterr()
    assert out.out == ""
    if fmt == "json":
        doc = json.loads(report.read_text())
        assert doc["clean"] is False and doc["error"]["exit_code"] == 3 and doc["error"]["type"] == "AuthError"
    else:
        assert not report.exists() and f"removed the earlier report {report}" in out.err


def test_a_name_with_terminal_escapes_is_printed_escaped_in_the_report_and_the_fix_plan(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An Astro account named with an OSC 8 link and a [/b] (rich markup): the report's table crashed on the markup
    (exit 70) and the --fix plan line wrote the escape sequence to the terminal as is."""
    name = "eve\x1b]8;;http://evil\x1b\\[/b]@acme.example"
    sandbox.astro.add_orphan(sandbox.astro_orgs["okta"].org_id, name, "Eve", "Orphan")
    capsys.readouterr()
    assert main(["drift", "-c", str(okta_applied), "--fix"]) == 1
    out = capsys.readouterr()
    assert "\x1b" not in out.out + out.err
    shown = "eve\\x1b]8;;http://evil\\x1b\\[/b]@acme.example"
    assert f"! remedy.manual {shown}" in out.out  # the plan line; the table may fold the subject


@pytest.mark.parametrize("argv", [["drift", "--format", "json"], ["drift", "--format", "junit"], ["drift"], ["plan"]])
def test_stdout_on_a_full_disk_is_said_not_a_crash(okta_applied: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """`astro-scim drift --format json > report.json` on a full disk: exit 70 with a crash log before."""
    with open("/dev/full", "w", encoding="utf-8") as full:  # every write fails with ENOSPC, as on a full disk
        try:
            monkeypatch.setattr("sys.stdout", full)
            rc = main([argv[0], "-c", str(okta_applied), *argv[1:]])
        finally:
            monkeypatch.undo()
    err = capsys.readouterr().err
    assert rc == 2 and "No space left on device" in err and "unexpected" not in err, err


def test_github_format_says_why_an_error_left_no_report(okta_applied: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """In Actions the run page shows annotations and the job summary: a stopped audit left both empty."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    (okta_applied.parent / "okta.token").write_text("revoked-token\n")
    capsys.readouterr()
    assert main(["drift", "-c", str(okta_applied), "--format", "github"]) == 3
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("::error title=astro-scim drift stopped%3A no report::") and "token" in line
    assert "**Stopped, no report:**" in summary.read_text() and "(exit 3)" in summary.read_text()


def test_one_ctrl_c_while_an_event_loop_runs_on_the_main_thread_always_interrupts(
        sandbox: Sandbox, okta_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """asyncio.run's own SIGINT handler only cancels its task and raises when the task ends cancelled: one Ctrl-C
    during status's Okta reads was swallowed about one time in four (status went on, exit 0). The CLI's handler
    raises KeyboardInterrupt wherever the main thread is."""
    from hostile import ctrl_c_at

    codes = []
    with ctrl_c_at(sandbox, "okta", "/users") as sent:  # once a run: the main thread runs the status' event loop
        for _ in range(12):
            sent.clear()
            codes.append(main(["status", "-c", str(okta_applied)]))
    capsys.readouterr()
    assert codes == [130] * 12


def test_an_interrupted_json_drift_still_prints_its_document(sandbox: Sandbox, okta_applied: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the audit (SIGINT while Okta's users are read): exit 130 and, as every --format json command
    does on the way out, the document: never clean, error Interrupted. stdout was empty. One Ctrl-C: a second
    one, while the document is printed, cuts it short (as it would for a user pressing it twice)."""
    import jsonschema
    from hostile import ctrl_c_at

    monkeypatch.setenv("ASTRO_SCIM_READ_IN_PROCESS", "1")
    capsys.readouterr()
    with ctrl_c_at(sandbox, "okta", "/users"):
        rc = main(["drift", "-c", str(okta_applied), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads((Path(__file__).parents[1] / "connector/data/output-schemas/drift.v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert rc == 130 and doc["clean"] is False and doc["error"]["type"] == "Interrupted"
    assert doc["error"]["exit_code"] == 130


def test_a_missing_team_too_big_for_on_demand_is_said_not_done(sandbox: Sandbox, azure_applied: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A group over the on-demand limit whose Team is missing: nothing was run and the remedy said "done" with an
    empty message, on every --fix. It says it was not done and why (the limit lowered so a seed group is over)."""
    from connector.audit import remedies

    monkeypatch.setattr(remedies, "MAX_ON_DEMAND_GROUP_MEMBERS", 2)
    name = sandbox.default_team_names()[0]
    assert scim(sandbox, "azure").delete(f"/Groups/{_team(sandbox, 'azure', name)['id']}").status_code == 204
    rc, out = fix(azure_applied, capsys)
    assert rc == 1 and f"FAILED > remedy.azure.provision_group {name}" in out, out
    assert "not done: the group is too big for on-demand provisioning" in out and "done > remedy.azure" not in out


def test_a_team_renamed_only_in_case_gets_its_members_fixed(sandbox: Sandbox, azure_applied: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconcile matches Teams ignoring case ("ANALYTICS" is the "Analytics" Team), but the member fix looked the
    Team up by its exact name and failed, on every --fix ("no Team named 'Analytics' after provisioning")."""
    from connector.audit import remedies

    monkeypatch.setattr(remedies, "MAX_ON_DEMAND_GROUP_MEMBERS", 2)  # the member fix, not Entra's on-demand call
    name = sandbox.default_team_names()[1]
    org = sandbox.astro_orgs["azure"].org_id
    team_id = _team(sandbox, "azure", name)["id"]
    renamed = scim(sandbox, "azure").patch(f"/Groups/{team_id}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": name.upper()}]})
    assert renamed.status_code in (200, 204)
    sandbox.astro.drop_membership(org, name.upper(), _member_of(sandbox, name))
    rc, out = fix(azure_applied, capsys)
    assert rc == 0 and "FAILED" not in out, out
    rc, found = drift(azure_applied, capsys)
    assert (rc, found) == (0, []), found


def test_a_missing_users_team_is_fixed_through_its_group_by_id_when_another_group_has_its_name(
        sandbox: Sandbox, azure_applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """azure.assign_groups by id, and another (unassigned) group of the same name in the tenant: a missing user's
    Team remedy named its group by display name, the lookup was ambiguous, and the remedy failed on every run."""
    import yaml

    assert sandbox.graph is not None
    st = sandbox.graph.state
    data = yaml.safe_load(azure_applied.read_text())
    data["azure"]["assign_groups"] = [st.group_by_name(n)["id"] for n in data["azure"]["assign_groups"]]
    azure_applied.write_text(yaml.safe_dump(data))
    name = sandbox.default_team_names()[0]
    st.add_group({"displayName": name, "mailNickname": "twin", "securityEnabled": True, "mailEnabled": False})
    login = _member_of(sandbox, name)
    sandbox.astro.delete_user(sandbox.astro_orgs["azure"].org_id, login)
    rc, out = fix(azure_applied, capsys)
    assert rc == 0 and "FAILED" not in out and "are named" not in out, out
    rc, found = drift(azure_applied, capsys)
    assert (rc, found) == (0, []), found
