"""The GitHub Action (action.yml + action/run.sh), run locally the way a runner runs it: inputs as INPUT_*
variables, GITHUB_* files for outputs, path and job summary. astro-scim is already on PATH here and the step runs
it (`use-installed: true`), as on a runner with a cached venv; the wheel smoke in .ci/run covers installing, and
the install logic (which venv, which pins, what goes on PATH) runs below with a stand-in for Python and pip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from connector.cli import main
from connector.sandbox.core import Sandbox

ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


def run_action(tmp_path: Path, extra_env: dict[str, str] | None = None, **inputs: str
               ) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    files = {name: tmp_path / name for name in ("summary.md", "output.txt", "path.txt")}
    for f in files.values():
        f.write_text("")
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_STEP_SUMMARY": str(files["summary.md"]),
        "GITHUB_OUTPUT": str(files["output.txt"]),
        "GITHUB_PATH": str(files["path.txt"]),
        "RUNNER_TEMP": str(tmp_path),
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
    }
    step = ACTION["runs"]["steps"][-1]
    inputs = {"use_installed": "true", **inputs}
    for name, expr in step["env"].items():  # what action.yml maps each input to, with its declared default
        if not expr.startswith("${{ inputs."):
            continue  # another step's output (setup-python's python-path): the test's python3 on PATH instead
        key = expr.removeprefix("${{ inputs.").removesuffix(" }}")
        env[name] = inputs.get(key.replace("-", "_"), str(ACTION["inputs"][key].get("default", "")))
    env.update(extra_env or {})
    proc = subprocess.run(["bash", str(ROOT / "action" / "run.sh")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    return proc, {name: f.read_text() for name, f in files.items()}


def test_every_input_reaches_the_step_and_none_is_spliced_into_the_script() -> None:
    setup, step = ACTION["runs"]["steps"]
    mapped = {v.removeprefix("${{ inputs.").removesuffix(" }}") for v in step["env"].values()
              if v.startswith("${{ inputs.")}
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"
    # The tool's Python for its venv only: the job's python (and a later `pip install`) stay the workflow's.
    assert setup["with"]["update-environment"] is False
    assert step["env"]["INPUT_PYTHON"] == "${{ steps." + setup["id"] + ".outputs.python-path }}"
    assert mapped | {"python-version"} == set(ACTION["inputs"])
    assert "${{" not in step["run"]  # inputs as environment variables: no shell injection through a value
    assert ACTION["runs"]["using"] == "composite"


def test_validate_clean_mappings(tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()
    for name in ("okta.yaml", "azure.yaml"):
        (tmp_path / "mappings" / name).write_text((ROOT / "mappings" / name).read_text())
    proc, files = run_action(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "::error" not in proc.stdout
    assert "exit-code=0" in files["output.txt"]
    assert "### astro-scim validate" in files["summary.md"] and "2 mapping files OK" in files["summary.md"]


def test_validate_findings_become_annotations_and_a_summary_table(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "mappings" / "okta.yaml").read_text().replace("user.lastName", "String.toUpperCase("))
    proc, files = run_action(tmp_path, paths="bad.yaml")
    assert proc.returncode == 1
    assert proc.stdout.startswith("::error file=bad.yaml,line=12,col=")
    assert "exit-code=1" in files["output.txt"]
    assert "| where | severity | finding | hint |" in files["summary.md"] and "`bad.yaml:12:" in files["summary.md"]


def test_paths_one_per_line_are_all_validated(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text((ROOT / "mappings" / "okta.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("idp: okta\nusers: []\n")
    proc, files = run_action(tmp_path, paths="good.yaml\nbad.yaml\n")  # `paths: |` in a workflow
    assert proc.returncode == 1 and "file=bad.yaml" in proc.stdout, proc.stdout
    assert "exit-code=1" in files["output.txt"]


def test_a_path_with_spaces_is_one_path_on_its_line(tmp_path: Path) -> None:
    """One path a line (a YAML block) is one path, spaces and all: `read -a` split "my maps/okta.yaml" in two."""
    (tmp_path / "my maps").mkdir()
    (tmp_path / "my maps" / "okta.yaml").write_text((ROOT / "mappings" / "okta.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("idp: okta\nusers: []\n")
    proc, files = run_action(tmp_path, paths="my maps/okta.yaml\r\n\nbad.yaml\n")
    assert proc.returncode == 1 and "file=bad.yaml" in proc.stdout, proc.stdout
    assert "file=my," not in proc.stdout and "my maps" not in proc.stdout  # read, and clean
    proc, _ = run_action(tmp_path, paths="bad.yaml my")  # on one line, spaces separate
    assert "file=bad.yaml" in proc.stdout and "file=my," in proc.stdout


STAND_IN_PYTHON = """#!/usr/bin/env bash
# A stand-in for `python3 -m venv DIR`: a venv whose pip records what it is asked to install and whose astro-scim
# prints which venv ran it.
set -e
venv="$3"
mkdir -p "$venv/bin"
printf '#!/usr/bin/env bash\necho "pip $*" >> "%s/pip.log"\n' "$venv" > "$venv/bin/pip"
printf '#!/usr/bin/env bash\necho "astro-scim of %s: $*"\n' "$venv" > "$venv/bin/astro-scim"
chmod +x "$venv/bin/pip" "$venv/bin/astro-scim"
"""


def test_the_install_takes_a_venv_per_set_of_extras_and_puts_only_astro_scim_on_path(tmp_path: Path) -> None:
    python = tmp_path / "python-stand-in"
    python.write_text(STAND_IN_PYTHON)
    python.chmod(0o755)
    env = {"INPUT_PYTHON": str(python)}
    proc, files = run_action(tmp_path, extra_env=env, use_installed="false")  # validate: the core
    core = tmp_path / "astro-scim-core"
    assert proc.returncode == 0 and f"astro-scim of {core}: validate" in proc.stdout, proc.stderr
    assert (core / "pip.log").read_text().split() == ["pip", "install", "--quiet", "--disable-pip-version-check",
                                                      "-c", f"{ROOT}/constraints.txt", str(ROOT)]
    # A drift step after it gets its own [all] venv, not the core install validate left on PATH.
    proc, files = run_action(tmp_path, extra_env=env, use_installed="false", command="drift")
    full = tmp_path / "astro-scim-all"
    assert f"astro-scim of {full}: drift" in proc.stdout, proc.stderr
    assert (full / "pip.log").read_text().split()[-1] == f"{ROOT}[all]"
    (path_entry,) = set(files["path.txt"].split())
    assert sorted(p.name for p in Path(path_entry).iterdir()) == ["astro-scim"]  # not the venv's python or pip
    assert Path(path_entry, "astro-scim").resolve() == (full / "bin" / "astro-scim").resolve()
    # A released version asked for: from PyPI, in a venv of its own.
    proc, _ = run_action(tmp_path, extra_env=env, use_installed="false", version="1.2.3")
    pinned = tmp_path / "astro-scim-core-1.2.3"
    assert (pinned / "pip.log").read_text().split()[-1] == "astro-scim-connector==1.2.3", proc.stderr


def test_a_failed_install_is_exit_2_with_an_annotation_and_no_half_made_venv(tmp_path: Path) -> None:
    """pip failing (an index down, a version that does not exist) ended the step under `set -e`: exit 1, read as
    "findings", no exit-code output, and a venv without astro-scim left where the next step would look."""
    python = tmp_path / "python-stand-in"
    python.write_text(STAND_IN_PYTHON.replace('echo "pip $*" >> "%s/pip.log"', 'echo "pip $*" >> "%s/pip.log"; '
                                                                               'exit 1'))
    python.chmod(0o755)
    proc, files = run_action(tmp_path, extra_env={"INPUT_PYTHON": str(python)}, use_installed="false",
                             version="9.9.9")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "::error title=astro-scim::could not install astro-scim-connector==9.9.9" in proc.stdout
    assert "exit-code=2" in files["output.txt"] and not (tmp_path / "astro-scim-core-9.9.9").exists()


def test_the_job_summarys_code_block_holds_output_with_backticks(tmp_path: Path) -> None:
    """status/plan output goes into the job summary in a ``` block; output holding ``` (a group name may) ended the
    block early and the rest was read as Markdown."""
    import os

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "astro-scim").write_text("#!/usr/bin/env bash\necho 'group ````odd```` name'\necho '<b>x</b>'\n")
    (fake / "astro-scim").chmod(0o755)
    proc, files = run_action(tmp_path, command="status",
                             extra_env={"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    summary = files["summary.md"]
    assert "\n`````\ngroup ````odd```` name\n<b>x</b>\n`````\n" in summary, summary


def test_findings_can_be_reported_without_failing_the_step(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("idp: okta\nusers: []\n")
    proc, files = run_action(tmp_path, paths="bad.yaml", fail_on_findings="false")
    assert proc.returncode == 0 and "exit-code=1" in files["output.txt"]


def test_an_unknown_command_is_an_error_annotation(tmp_path: Path) -> None:
    proc, files = run_action(tmp_path, command="rm -rf /")
    assert proc.returncode == 2 and "::error title=astro-scim::unknown command" in proc.stdout


@pytest.mark.parametrize("paths", ["mappings/; touch pwned", "$(touch pwned)", "`touch pwned`"])
def test_input_values_are_never_executed(tmp_path: Path, paths: str) -> None:
    proc, _ = run_action(tmp_path, paths=paths)
    assert proc.returncode == 2  # the words are paths that do not exist
    assert not (tmp_path / "pwned").exists()


def test_drift_in_the_action_annotates_and_summarises(sandbox: Sandbox, tmp_path: Path) -> None:
    """The whole drift through the action's step against the sandbox: the Entra side applied, then an account
    created in Astro behind the IdP's back, which the audit reports as an orphan."""
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    assert main(["apply", "-c", str(config), "--yes"]) == 0
    org = sandbox.astro_orgs["azure"]
    with httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"}) as scim:
        scim.post("/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                  "userName": "eve.orphan@acme.example", "active": True}).raise_for_status()
    proc, files = run_action(tmp_path, command="drift", config=str(config), idp="azure")
    assert proc.returncode == 1, proc.stderr
    assert "::error title=drift azure orphaned%3A eve.orphan@acme.example::" in proc.stdout
    assert "exit-code=1" in files["output.txt"]
    assert "eve.orphan@acme.example" in files["summary.md"] and files["summary.md"].lstrip().startswith("#")
    for secret in (sandbox.graph_token, org.token):
        assert secret not in proc.stdout + proc.stderr + files["summary.md"]
