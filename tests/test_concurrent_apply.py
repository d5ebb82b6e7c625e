"""Applies that run at the same time (two CI jobs, an operator and a pipeline) converge on one Entra app, one
provisioning job and one Team per group, and every one of them exits 0.

The runs are threads calling the CLI's main; the waits inside the tool (the settle after a create, retry backoff)
pass on the test's virtual clock. The races are forced, not hoped for, so each trial proves the rule:
- a barrier inside the Graph emulator's instantiate holds every run until all three are creating, and answers
  none until all three apps are stored: every run created an app and sees the other two, so two must remove
  theirs (docs/design.md, "Concurrent apply");
- `FirstComer` (hostile.py) sends each create of a job, an assignment or a push mapping twice, the copy first, as
  another run that got there a moment earlier: every create of the runs meets the IdP's "already exists" answer.
Without the rule every trial leaves three apps; without the read-back after "already exists" every run fails.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hostile import first_comer as copies_first

from connector.cli import main
from connector.sandbox.core import Sandbox

RUNS = 3


def _gate_instantiate(sb: Sandbox, runs: int) -> None:
    """Every run's instantiate waits for all `runs` of them, and no run hears back before all apps are stored."""
    assert sb.graph is not None
    creating, stored = threading.Barrier(runs, timeout=60), threading.Barrier(runs, timeout=60)
    real = sb.graph.instantiate

    def gated(display_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        creating.wait()  # all runs listed the apps and found none: none exists until all of them create
        made = real(display_name)
        stored.wait()  # so each run's list after its settle shows all the apps
        return made

    sb.graph.instantiate = gated  # type: ignore[method-assign]


def _apply_at_once(config: Path, runs: int, *, idp: str = "azure") -> list[int]:
    barrier = threading.Barrier(runs)
    codes: list[int] = [-1] * runs

    def one(i: int) -> None:
        barrier.wait()
        codes[i] = main(["apply", "--config", str(config), "--idp", idp, "--yes"])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return codes


def _end_state(sb: Sandbox) -> tuple[int, int, list[str]]:
    """(apps named Astro, provisioning jobs on them, the Team names in Astro with repeats)."""
    assert sb.graph is not None
    sps = [s for s in sb.graph.service_principals() if s["displayName"] == "Astro"]
    jobs = sum(len(sb.graph.jobs(s["id"])) for s in sps)
    teams = sorted(g["displayName"] for g in sb.astro.groups(sb.astro_orgs["azure"].org_id))
    return len(sps), jobs, teams


_SINGLE: list[tuple[int, int, list[str]]] = []  # the reference below, once per process (both trials compare to it)


def _single_apply_end_state(directory: Path) -> tuple[int, int, list[str]]:
    """What one apply alone leaves in a sandbox like the race's (same seed): the end state the racing runs must
    reach. Deterministic for the seed, so the first trial in a process runs it and the second reuses it."""
    if not _SINGLE:
        with Sandbox(users=2, groups=1, seed=3) as reference:
            config = reference.write_config(directory / "astro-scim.yaml", idps=("azure",))
            assert main(["apply", "--config", str(config), "--idp", "azure", "--yes"]) == 0
            _SINGLE.append(_end_state(reference))
    return _SINGLE[0]


def _statuses(sb: Sandbox, service: str, method: str, suffix: str) -> list[int]:
    return [e.status for e in sb.logs[service].entries if e.method == method and e.path.endswith(suffix)]


@pytest.mark.parametrize("first_comer", [False, True], ids=["three-creators", "and-every-create-preempted"])
def test_concurrent_applies_make_one_app(first_comer: bool, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Three runs create an app each at the same moment (forced): one app, one job, each Team once, all exit 0.
    With first_comer every job and assignment a run creates already exists by then, too."""
    single = _single_apply_end_state(tmp_path / "ref")
    assert single[:2] == (1, 1)

    with Sandbox(users=2, groups=1, seed=3) as sb:
        _gate_instantiate(sb, RUNS)
        copies = copies_first(sb, "graph", "POST", r"(/synchronization/jobs|/appRoleAssignedTo)$") if first_comer \
            else None
        config = sb.write_config(tmp_path / "race" / "astro-scim.yaml", idps=("azure",))
        codes = _apply_at_once(config, RUNS)
        assert codes == [0] * RUNS, (codes, capsys.readouterr())
        # The race happened as forced: three apps were made and two of their creators removed theirs.
        assert _statuses(sb, "graph", "POST", "/instantiate") == [201] * RUNS
        assert sorted(_statuses(sb, "graph", "DELETE", "")) == [204] * (RUNS - 1)
        if copies is not None:
            # The copies created the job and the assignments (racing each other as well); the runs' own creates
            # all met "already exists".
            assert any(s.startswith("201") for s in copies.statuses), copies.statuses
            assert set(_statuses(sb, "graph", "POST", "/synchronization/jobs")) == {409}
            assert set(_statuses(sb, "graph", "POST", "/appRoleAssignedTo")) == {400}
        assert _end_state(sb) == single
        # A later plan sees nothing to do: no second app blocks it.
        assert main(["plan", "--config", str(config), "--idp", "azure", "--exit-code"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("first_comer", [False, True], ids=["three-runs", "every-create-preempted"])
def test_concurrent_okta_applies_all_exit_0_with_one_push_mapping_per_group(
        first_comer: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The losing run's POST of a push mapping meets "A group push mapping already exists": it reads the mapping
    back and goes on, instead of exiting 3. With first_comer every run's POST meets it."""
    with Sandbox(users=4, groups=2, seed=3) as sb:
        assert sb.okta is not None
        copies = copies_first(sb, "okta", "POST", r"/group-push/mappings$") if first_comer else None
        config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
        app_id = str(sb.okta.app_by_label("Astro")["id"])
        org = sb.astro_orgs["okta"]
        sb.okta.enable_provisioning(app_id, org.scim_url, org.token)
        codes = _apply_at_once(config, RUNS, idp="okta")
        assert codes == [0] * RUNS, (codes, capsys.readouterr())
        if copies is not None:
            assert any(s.startswith(("200", "201")) for s in copies.statuses), copies.statuses
            assert set(_statuses(sb, "okta", "POST", "/group-push/mappings")) == {400}
        sources = Counter(str(m["sourceGroupId"]) for m in sb.okta.state.push[app_id].values())
        assert len(sources) == 2 and set(sources.values()) == {1}
    capsys.readouterr()


def test_a_left_over_race_duplicate_is_resolved_to_the_oldest_app(sandbox: Sandbox, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Two apps of the name made moments apart (a racing run died before removing its copy): every run manages
    the oldest, the one the racing runs themselves keep, instead of refusing to plan."""
    assert sandbox.graph is not None
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    _app, oldest = sandbox.graph.instantiate("Astro")
    sandbox.graph.instantiate("Astro")
    assert main(["apply", "--config", str(config), "--idp", "azure", "--yes"]) == 0
    assert [s["id"] for s in sandbox.graph.service_principals() if sandbox.graph.jobs(s["id"])] == [oldest["id"]]
    capsys.readouterr()


def test_two_apps_made_far_apart_are_a_choice_the_user_makes(sandbox: Sandbox, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox.graph is not None
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    first, first_sp = sandbox.graph.instantiate("Astro")
    _second, second_sp = sandbox.graph.instantiate("Astro")
    sandbox.graph.state.applications[first["id"]]["createdDateTime"] = "2024-01-02T03:04:05.0000000Z"
    assert main(["plan", "--config", str(config), "--idp", "azure"]) == 2
    err = capsys.readouterr().err
    assert "2 enterprise apps are named 'Astro'" in err and first_sp["id"] in err and second_sp["id"] in err
    assert "azure.app.app_id" in err
