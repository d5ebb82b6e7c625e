"""`drift --fix` for Entra: the plan's member counts per Team are what `--yes` then does (the audit log's detail
too), however many findings about the Team were merged into its one change."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox


def test_azure_group_remedy_counts_every_merged_member(sandbox: Sandbox, azure_applied: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    org = sandbox.astro_orgs["azure"].org_id
    teams = sandbox.default_team_names()
    shared = [p for p in sandbox.seed_org.team(teams[0]).member_keys
              if p in sandbox.seed_org.team(teams[1]).member_keys] or list(sandbox.seed_org.team(teams[0]).member_keys)
    gone = [sandbox.seed_org.person(k).email for k in shared[:3]]
    assert len(gone) == 3
    for login in gone:
        sandbox.astro.delete_user(org, login)
    capsys.readouterr()
    assert main(["drift", "-c", str(azure_applied), "--idp", "azure", "--fix"]) == 1
    planned = dict(re.findall(r"remedy\.azure\.provision_group (.+?): .*\((members to add: \d+, to remove: \d+)\)",
                              capsys.readouterr().out))
    assert len(planned) == 3 and all(v == "members to add: 3, to remove: 0" for v in planned.values()), planned
    assert main(["drift", "-c", str(azure_applied), "--idp", "azure", "--fix", "--yes"]) == 0
    out = capsys.readouterr().out
    patched = {t: (a, r) for t, a, r in re.findall(r"patched .(.+?). in Astro directly \(\+(\d+) -(\d+) member", out)}
    assert {team: f"members to add: {add}, to remove: {rm}" for team, (add, rm) in patched.items()} == planned
    log = [json.loads(line) for line in (azure_applied.parent / ".astro-scim" / "audit.log").read_text().splitlines()]
    details = {c["key"]: c["detail"] for c in log[-1]["changes"] if c["resource"] == "remedy.azure.provision_group"}
    assert {k: re.sub(r".*\((.*)\)$", r"\1", v) for k, v in details.items()} == planned
