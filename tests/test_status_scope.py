"""`status` says healthy only when the users in scope are in Astro, read back from Astro, not only when the IdP's
own records look fine: an Entra job that started but has not provisioned anyone yet (or left users out), or Okta
app users marked provisioned whose accounts Astro no longer holds (or that a wrong token hides), are not healthy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(users=6, groups=3, seed=3) as sandbox:
        yield sandbox


def status(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["status", "-c", str(config)])
    return rc, capsys.readouterr().out


def test_status_is_unhealthy_until_the_users_in_scope_are_in_astro(sb: Sandbox, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert sb.graph is not None
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    sb.graph.hold_cycles = True  # the job starts; its first cycle does not begin
    assert main(["apply", "-c", str(config), "--yes", "--no-wait"]) == 0
    rc, out = status(config, capsys)
    assert rc == 1 and "FAIL users in scope" in out and "0 active in Astro; not in Astro:" in out
    sp = next(s for s in sb.graph.service_principals() if s["displayName"] == "Astro")
    sb.graph.hold_cycles = False
    sb.graph.run_cycle(str(sp["id"]))
    rc, out = status(config, capsys)
    assert rc == 0, out
    assert "ok   users in scope" in out and "not in Astro" not in out
    # An account removed in Astro behind Entra's back: in scope, not in Astro again.
    user = sb.astro.users(sb.astro_orgs["azure"].org_id)[0]["userName"]
    sb.astro.delete_user(sb.astro_orgs["azure"].org_id, user)
    rc, out = status(config, capsys)
    assert rc == 1 and f"not in Astro: {user}" in out


def test_okta_status_reads_astro_back(sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from applied import applied

    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    applied(sb, config, "okta", console_step=True)
    rc, out = status(config, capsys)
    assert rc == 0, out
    assert "ok   users in scope: 6 in scope, 6 active in Astro" in out
    # Removed in Astro behind Okta's back: Okta still records the app user as provisioned (its externalId).
    org = sb.astro_orgs["okta"]
    user = sb.astro.users(org.org_id)[0]["userName"]
    sb.astro.delete_user(org.org_id, user)
    rc, out = status(config, capsys)
    assert rc == 1 and "ok   app users: 6 assigned, 6 provisioned to Astro" in out
    assert f"FAIL users in scope: 6 in scope, 5 active in Astro; not in Astro: {user}" in out
    # Our astro.token refused: nothing can be compared, so no verdict of health.
    (tmp_path / "astro-okta.token").write_text("revoked\n", encoding="utf-8")
    rc, out = status(config, capsys)
    assert rc == 1 and "FAIL users in scope: could not compare with Astro" in out


def _delete_team(sb: Sandbox, idp: str, team: str) -> None:
    """A Team deleted in Astro behind the IdP's back (an admin's click): the IdP's push mapping stays ACTIVE, its
    job Succeeded."""
    import httpx

    org = sb.astro_orgs[idp]
    with httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"}) as scim:
        found = scim.get("/Groups", params={"filter": f'displayName eq "{team}"'}).raise_for_status().json()
        (group,) = found["Resources"]
        scim.delete(f"/Groups/{group['id']}").raise_for_status()


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_status_is_unhealthy_when_a_team_the_idp_provisions_is_gone_from_astro(
        idp: str, sb: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It said healthy (exit 0) with a pushed or assigned group's Team deleted in Astro: every IdP-side line (push
    mapping ACTIVE, no ERROR, job Succeeded) and the users line were true, and nothing read the Teams back."""
    import json

    from applied import applied

    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=(idp,))
    applied(sb, config, idp, console_step=idp == "okta")
    team = sb.default_team_names()[0]
    rc, out = status(config, capsys)
    assert rc == 0 and "ok   Teams:" in out, out
    _delete_team(sb, idp, team)
    rc, out = status(config, capsys)
    assert rc == 1, out
    assert f"in Astro; no Team in Astro for: {team}" in out and "FAIL Teams:" in out
    assert "--fix --yes" in out
    capsys.readouterr()
    assert main(["status", "-c", str(config), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    (teams,) = [c for c in doc["idps"][0]["checks"] if c["name"] == "Teams"]
    assert teams["ok"] is False and team in teams["detail"] and teams["hint"]
    assert doc["ok"] is False and doc["exit_code"] == 1
    assert main(["drift", "-c", str(config), "--fix", "--yes"]) == 0  # the hint's repair for every one
    rc, out = status(config, capsys)
    assert rc == 0 and "ok   Teams:" in out, out
