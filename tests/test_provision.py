"""`astro-scim provision` and AzureProvider.provision_on_demand against the sandbox: Graph's limits (one group
with at most 5 members per call, 5 calls per 10 s) and the per-subject results parsed from its JSON-in-a-string
answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.cli import main
from connector.config.load import load_config
from connector.providers.entra.provider import AzureProvider
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM
from connector.support.clock import FakeClock


@pytest.fixture
def azure_config(sandbox: Sandbox, tmp_path: Path) -> Path:
    return sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))


def cli(*args: str, config: Path) -> int:
    return main([args[0], "--config", str(config), *args[1:]])


def applied(config: Path, *extra: str) -> None:
    assert cli("apply", "--idp", "azure", "--yes", *extra, config=config) == 0


def azure_org(sb: Sandbox) -> str:
    return sb.astro_orgs["azure"].org_id


def test_provision_user_makes_exactly_that_user_appear(sandbox: Sandbox, azure_config: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    applied(azure_config, "--pause")  # configured, but no cycle has run
    org = azure_org(sandbox)
    assert sandbox.astro.users(org) == []
    person = sandbox.seed_org.people[3]
    capsys.readouterr()
    assert cli("provision", "--user", person.email, config=azure_config) == 0
    out = capsys.readouterr().out
    assert "User" in out and "success" in out.lower()
    assert [u["userName"] for u in sandbox.astro.users(org)] == [person.email]


def test_group_of_twelve_is_provisioned_in_three_calls_within_the_rate_limit(
    sandbox: Sandbox, azure_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(azure_config, "--pause")
    sandbox.logs["graph"].clear()
    assert cli("provision", "--group", ASSIGNED_TEAM, config=azure_config) == 0
    calls = [e for e in sandbox.logs["graph"].entries if e.path.endswith("/provisionOnDemand")]
    assert len(calls) == 3 and all(e.status == 200 for e in calls)
    org = azure_org(sandbox)
    assert len(sandbox.astro.users(org)) == 12
    [team] = [g for g in sandbox.astro.groups(org) if g["displayName"] == ASSIGNED_TEAM]
    assert len(team["members"]) == 12


def test_more_calls_than_the_limit_are_paced_not_throttled(sandbox: Sandbox, azure_config: Path,
                                                           fake_clock: FakeClock) -> None:
    assert sandbox.graph is not None
    applied(azure_config, "--pause")
    before = fake_clock.slept  # apply's own waits (the settle after creating the app)
    # The service counts its 5-calls-per-10-s window on the test's virtual clock too: the real limits, no waiting.
    sandbox.graph.ondemand_clock = fake_clock.monotonic
    p = AzureProvider(load_config(azure_config))
    try:
        sandbox.logs["graph"].clear()
        results = p.provision_on_demand(users=[person.email for person in sandbox.seed_org.people[:7]])
    finally:
        p.close()
    assert len(results) == 7 and all(r.ok for r in results)
    calls = [e for e in sandbox.logs["graph"].entries if e.path.endswith("/provisionOnDemand")]
    assert [e.status for e in calls] == [200] * 7  # paced: the service never had to say 429
    assert 10.0 <= fake_clock.slept - before < 11.0  # the 6th call waited for the window, and no longer than needed


def test_unassigned_user_is_reported_not_provisioned(sandbox: Sandbox, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    team = sandbox.default_team_names()[0]
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",), azure_assign_groups=[team])
    applied(config, "--pause")
    members = next(t for t in sandbox.seed_org.teams if t.name == team).member_keys
    outsider = next(p for p in sandbox.seed_org.people if p.key not in members)
    capsys.readouterr()
    assert cli("provision", "--user", outsider.email, config=config) == 1
    out = capsys.readouterr().out
    assert "Skipped (NotEffectivelyEntitled)" in out and "assign the user" in out
    assert sandbox.astro.users(azure_org(sandbox)) == []


def test_unknown_user_is_a_usage_error(sandbox: Sandbox, azure_config: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    applied(azure_config, "--pause")
    assert cli("provision", "--user", "nobody@acme.example", config=azure_config) == 2
    assert "no Entra user with userPrincipalName 'nobody@acme.example'" in capsys.readouterr().err
