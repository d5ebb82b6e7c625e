"""Applies that run at the same time (two CI jobs, an operator and a pipeline) converge on one Entra app, one
provisioning job and one Team per group, and every one of them exits 0.

The Graph emulator's instantiate takes 0.2 s of real time (`instantiate_delay_s`; about 2 s in real Entra), so
the runs' creates overlap as they do against the real service. The runs are threads calling the CLI's main; the
waits inside the tool (the settle after a create, retry backoff) pass on the test's virtual clock."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox

RUNS = 3
TRIALS = 20


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


@pytest.mark.slow  # 20 trials of three applies: ~45 s on one core
def test_concurrent_applies_with_slow_instantiate_make_one_app(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    with Sandbox(users=2, groups=1, seed=3) as reference:
        config = reference.write_config(tmp_path / "ref" / "astro-scim.yaml", idps=("azure",))
        assert main(["apply", "--config", str(config), "--idp", "azure", "--yes"]) == 0
        single = _end_state(reference)
    assert single[:2] == (1, 1)

    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        with Sandbox(users=2, groups=1, seed=3) as sb:
            assert sb.graph is not None
            sb.graph.instantiate_delay_s = 0.2
            config = sb.write_config(tmp_path / str(trial) / "astro-scim.yaml", idps=("azure",))
            codes = _apply_at_once(config, RUNS)
            state = _end_state(sb)
            outcomes[f"{codes} {state[:2]}"] += 1
            assert codes == [0] * RUNS, (trial, codes, capsys.readouterr())
            assert state == single, (trial, state)
            # A later plan sees nothing to do: no second app blocks it.
            assert main(["plan", "--config", str(config), "--idp", "azure", "--exit-code"]) == 0
    capsys.readouterr()


def test_concurrent_okta_applies_all_exit_0_with_one_push_mapping_per_group(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The losing run's POST of a push mapping meets "A group push mapping already exists": it reads the mapping
    back and goes on, instead of exiting 3."""
    for trial in range(5):
        with Sandbox(users=4, groups=2, seed=3) as sb:
            assert sb.okta is not None
            config = sb.write_config(tmp_path / str(trial) / "astro-scim.yaml", idps=("okta",))
            app_id = str(sb.okta.app_by_label("Astro")["id"])
            org = sb.astro_orgs["okta"]
            sb.okta.enable_provisioning(app_id, org.scim_url, org.token)
            codes = _apply_at_once(config, RUNS, idp="okta")
            assert codes == [0] * RUNS, (trial, codes, capsys.readouterr())
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
