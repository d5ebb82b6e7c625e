"""Progress on stderr (connector/support/progress.py) and what the long commands show with it.

Not a terminal (pytest captures stderr): one plain line per stage, stdout untouched; --quiet: nothing on stderr.
A terminal: a rich bar drawn to a forced-terminal console, with the counts, rate and ETA of the fake clock.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM
from connector.support.clock import FakeClock
from connector.support.progress import Bar, Lines, Silent, rate_and_eta, summary

STAGE_LINE = re.compile(r"^[\w .@-]+: (\d+(/\d+)? [\w]+, )?(done in|stopped after) \d+\.\d s( \(\d+\.\d/s\))?$")


# -- the three ways, as units --------------------------------------------------------------------------------


def test_lines_writes_one_line_per_stage_when_it_ends(fake_clock: FakeClock) -> None:
    written: list[str] = []
    progress = Lines(written.append)
    with progress.stage("apply okta", total=4, unit="changes") as stage:
        for _ in range(4):
            fake_clock.advance(0.5)
            stage.advance()
            assert written == []  # nothing while it runs: no redraw, no partial lines
    with progress.stage("read Astro users", unit="users") as stage:
        stage.update(250, 1000)
        fake_clock.advance(1.0)
        stage.update(1000, 1000)
    assert written == ["apply okta: 4/4 changes, done in 2.0 s (2.0/s)",
                       "read Astro users: 1000/1000 users, done in 1.0 s (1000.0/s)"]


def test_a_stage_that_fails_says_where_it_stopped(fake_clock: FakeClock) -> None:
    written: list[str] = []
    with pytest.raises(RuntimeError), Lines(written.append).stage("apply azure", total=10, unit="changes") as stage:
        stage.advance(3)
        fake_clock.advance(1.5)
        raise RuntimeError("boom")
    assert written == ["apply azure: 3/10 changes, stopped after 1.5 s"]


def test_summary_of_a_stage_without_counts() -> None:
    assert summary("discover okta", 0, None, "", 0.25) == "discover okta: done in 0.2 s"
    assert summary("read okta users", 7, None, "users", 2.0) == "read okta users: 7 users, done in 2.0 s (3.5/s)"


def test_a_stage_that_counted_nothing_shows_no_unit(fake_clock: FakeClock) -> None:
    """A failed stage that never counted read "okta group push: groups, stopped after 0.5 s"."""
    assert summary("okta group push", 0, None, "groups", 0.5, failed=True) == "okta group push: stopped after 0.5 s"
    assert summary("read okta users", 0, None, "users", 1.0) == "read okta users: done in 1.0 s"
    assert summary("read okta users", 0, 0, "users", 1.0) == "read okta users: 0/0 users, done in 1.0 s"
    written: list[str] = []
    with pytest.raises(RuntimeError), Lines(written.append).stage("provision user ada", unit="calls"):
        fake_clock.advance(0.5)
        raise RuntimeError("refused")
    assert written == ["provision user ada: stopped after 0.5 s"]


def test_silent_counts_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Silent().stage("apply okta", total=2, unit="changes") as stage:
        stage.advance(2)
    assert capsys.readouterr() == ("", "")


def test_the_bar_on_a_terminal_shows_counts_rate_and_eta_from_the_clock(fake_clock: FakeClock) -> None:
    from rich.console import Console

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    bar = Bar(console, refresh_each_update=True)
    with bar.stage("apply okta", total=10, unit="changes") as stage:
        for _ in range(3):
            fake_clock.advance(2.0)  # one change every 2 s: 0.5/s, 7 left -> 14 s to go
            stage.advance()
        drawn = _plain(screen.getvalue())
    assert "apply okta" in drawn and "3/10 changes" in drawn
    assert "0.5/s" in drawn and "eta 0:00:14" in drawn and "0:00:06" in drawn  # rate, ETA, elapsed
    # The bar goes when the stage ends (transient) and leaves its summary line.
    assert _plain(screen.getvalue()).rstrip().endswith("apply okta: 3/10 changes, done in 6.0 s (0.5/s)")


def test_the_bar_keeps_concurrent_stages_apart(fake_clock: FakeClock) -> None:
    from rich.console import Console

    screen = io.StringIO()
    bar = Bar(Console(file=screen, force_terminal=True, width=120, color_system=None), refresh_each_update=True)
    with bar.stage("read Astro users", unit="users") as users, bar.stage("read Astro Teams", unit="Teams") as teams:
        for second in (1, 2):
            fake_clock.advance(1.0)
            users.update(500 * second, 2000)
            teams.update(3 * second, 40)
        drawn = _plain(screen.getvalue()).splitlines()
    users_row = next(line for line in reversed(drawn) if line.startswith("read Astro users"))
    teams_row = next(line for line in reversed(drawn) if line.startswith("read Astro Teams"))
    assert "1000/2000 users" in users_row and "500/s eta 0:00:02" in users_row  # 1,000 to go at 500/s
    assert "6/40 Teams" in teams_row and "3.0/s eta 0:00:11" in teams_row  # 34 to go at 3/s
    assert "read Astro Teams: 6/40 Teams, done in 2.0 s (3.0/s)" in _plain(screen.getvalue())


def _plain(text: str) -> str:
    """What a terminal would show of rich's output, control sequences left out."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "\n", text)


# -- the commands against the sandbox (stderr is not a terminal here) ------------------------------------------


def _okta_set_up(sb: Sandbox) -> None:
    assert sb.okta is not None
    org = sb.astro_orgs["okta"]
    sb.okta.enable_provisioning(str(sb.okta.app_by_label("Astro")["id"]), org.scim_url, org.token)


def _stage_lines(err: str) -> list[str]:
    lines = err.splitlines()
    assert lines and all(STAGE_LINE.match(line) for line in lines), err
    return lines


def test_apply_shows_its_stages_on_stderr_and_nothing_with_quiet(
        sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _okta_set_up(sandbox)
    capsys.readouterr()
    assert main(["apply", "-c", str(sandbox_config), "--idp", "okta", "--yes"]) == 0
    out, err = capsys.readouterr()
    lines = _stage_lines(err)
    assert [line.split(":")[0] for line in lines] == ["plan okta", "apply okta", "verify okta in Astro"]
    made = int(re.search(r"applied (\d+) change", out).group(1))  # type: ignore[union-attr]
    assert made > 0 and lines[1].startswith(f"apply okta: {made}/{made} changes, done in ")
    assert "done in" not in out and "  done " in out  # stdout as before: the narration, no stage lines
    # Run twice, quietly: nothing left to do, and not a character on stderr.
    assert main(["apply", "-c", str(sandbox_config), "--idp", "okta", "--yes", "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_drift_reports_each_read_and_keeps_its_json_on_stdout(
        sandbox: Sandbox, sandbox_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _okta_set_up(sandbox)
    assert main(["apply", "-c", str(sandbox_config), "--idp", "okta", "--yes", "-q"]) == 0
    capsys.readouterr()
    assert main(["drift", "-c", str(sandbox_config), "--idp", "okta", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)  # stdout is the document alone
    [idp] = doc["idps"]
    lines = {line.split(":")[0]: line for line in _stage_lines(err)}
    assert set(lines) == {"read okta users", "read Astro users", "read Astro Teams", "check okta setup",
                          "reconcile okta"}
    users = len(sandbox.astro.users(sandbox.astro_orgs["okta"].org_id))
    assert lines["read Astro users"].startswith(f"read Astro users: {users}/{users} users, done in")
    assert lines["read okta users"].startswith("read okta users: 12/12 users")  # the seed's 12 people
    assert main(["drift", "-c", str(sandbox_config), "--idp", "okta", "--format", "json", "-q"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and json.loads(quiet.out)["idps"][0]["findings"] == idp["findings"]


def test_drift_fix_counts_its_remedies(sandbox: Sandbox, sandbox_config: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _okta_set_up(sandbox)
    assert main(["apply", "-c", str(sandbox_config), "--idp", "okta", "--yes", "-q"]) == 0
    org = sandbox.astro_orgs["okta"].org_id
    sandbox.astro.add_orphan(org, "orphan@acme.example", "Or", "Phan")  # an account no IdP knows
    capsys.readouterr()
    assert main(["drift", "-c", str(sandbox_config), "--idp", "okta", "--fix", "--yes", "--delete-orphans"]) == 0
    lines = {line.split(":")[0]: line for line in _stage_lines(capsys.readouterr().err)}
    assert lines["fix okta"].startswith("fix okta: 1/1 remedies, done in")
    assert "re-audit okta until the fixes show" in lines


def test_push_groups_counts_the_groups(sandbox: Sandbox, sandbox_config: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _okta_set_up(sandbox)
    assert main(["apply", "-c", str(sandbox_config), "--idp", "okta", "--yes", "-q"]) == 0
    team = sandbox.default_team_names()[0]
    org = sandbox.astro_orgs["okta"].org_id
    member = next(iter(sandbox.astro.find_group(org, team)["members"]))  # type: ignore[index]
    user = next(u["userName"] for u in sandbox.astro.users(org) if u["id"] == member["value"])
    sandbox.astro.drop_membership(org, team, user)
    capsys.readouterr()
    assert main(["push-groups", "-c", str(sandbox_config), "--yes"]) == 0
    out, err = capsys.readouterr()
    # With --yes the one call inspects every configured group, then re-pushes the one out of sync: the count
    # it ends with is of those. (Beside it on stderr: the note on Okta's missing Push now API.)
    [line] = [line for line in err.splitlines() if STAGE_LINE.match(line)]
    assert line.startswith("okta group push: 1/1 groups, done in ")
    assert "fixed and verified" in out and "done in" not in out
    assert main(["push-groups", "-c", str(sandbox_config), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_provision_counts_its_calls(sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   fake_clock: FakeClock) -> None:
    assert sandbox.graph is not None
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    assert main(["apply", "-c", str(config), "--idp", "azure", "--yes", "--pause", "-q"]) == 0
    capsys.readouterr()
    assert main(["provision", "-c", str(config), "--group", ASSIGNED_TEAM]) == 0
    out, err = capsys.readouterr()
    # its 12 members, 5 a call: 3 calls
    [line] = _stage_lines(err)
    assert line.startswith(f"provision group {ASSIGNED_TEAM}: 3/3 calls, done in ")
    assert "15 result(s): 15 verified" in out and "done in" not in out  # read back in Astro
    assert main(["provision", "-c", str(config), "--group", ASSIGNED_TEAM, "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_init_shows_its_discovery_per_idp(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OKTA_API_TOKEN", sandbox.okta_token)
    monkeypatch.setenv("ASTRO_API_TOKEN", sandbox.astro_orgs["okta"].token)
    flags = ["--okta-org-url", sandbox.okta_url, "--astro-scim-url", sandbox.astro_orgs["okta"].scim_url]
    assert main(["init", "--non-interactive", "-c", str(tmp_path / "a.yaml"), *flags]) == 0
    out, err = capsys.readouterr()
    [line] = [line for line in err.splitlines() if STAGE_LINE.match(line)]
    assert line.startswith("discover okta: done in ") and "okta: app Astro (" in out
    assert main(["init", "--non-interactive", "-c", str(tmp_path / "b.yaml"), *flags, "-q"]) == 0
    assert not [line for line in capsys.readouterr().err.splitlines() if STAGE_LINE.match(line)]


def test_rate_and_eta_are_the_whole_stage_average() -> None:
    assert rate_and_eta(0, 10, 5.0) == (None, None)  # nothing done yet: no promise
    assert rate_and_eta(3, 10, 6.0) == (0.5, 14.0)
    assert rate_and_eta(40, None, 2.0) == (20.0, None)  # a read before its total is known
    assert rate_and_eta(12, 10, 1.0) == (12.0, 0.0)  # more than announced (a total that grew): never negative
