"""Packaging: the core runs without the extras, a command whose extra is missing names the pip line (exit 2),
and pyproject, constraints.txt and the pre-commit hook agree.

A package is made absent in a child interpreter by a sys.meta_path finder that refuses to find it: what Python
does for a package that is not installed. The CLI itself runs unchanged. (.ci/run also installs the built wheel
without extras in a fresh venv and runs the same commands there.)
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from connector.sandbox.core import Sandbox
from connector.support import extras

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OKTA = ("okta",)
ENTRA = ("msgraph", "msgraph_core", "azure", "kiota_abstractions", "kiota_http", "kiota_authentication_azure")
SANDBOX = ("scim2_server", "werkzeug", "jwt")
EVERY_EXTRA = (*OKTA, *ENTRA, *SANDBOX, "aiohttp")

# What a missing package looks like to an interpreter (the template's BLOCKED set names them): formatted with
# str.format, so its own braces are doubled.
NOT_INSTALLED = """
import sys
from importlib.abc import MetaPathFinder


class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
"""

RUN_BLOCKED = """
BLOCKED = {blocked!r}
""" + NOT_INSTALLED + """
for name in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[name]
from connector.cli import main

code = main({argv!r})
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & BLOCKED)
print(f"LOADED={{loaded}}")
sys.exit(code)
"""


# The cases below run in children forked from one interpreter that imported the CLI with every extra missing (so
# the CLI itself needs none), instead of an interpreter started per case: each child then narrows the missing
# packages to its case's, exactly as RUN_BLOCKED does, runs the command and exits through the interpreter's normal
# shutdown (what it prints there, e.g. an exception ignored in a finalizer, is read too). The kiota_http case below
# shows the narrowing: its child imports msgraph, which the server itself could not.
FORK_SERVER = """
import json, os

BLOCKED = {every!r}
""" + NOT_INSTALLED + """from connector.cli import main

for line in sys.stdin:
    case = json.loads(line)
    pid = os.fork()
    if pid == 0:
        BLOCKED.clear()
        BLOCKED.update(case["blocked"])
        for name in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
            del sys.modules[name]
        os.chdir(case["cwd"])
        for fd, path in ((1, case["out"]), (2, case["err"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        code = main(case["argv"])
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & BLOCKED)
        print(f"LOADED={{loaded}}")
        sys.exit(code)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


class ForkServer:
    """RUN_BLOCKED's runs, forked from one interpreter (FORK_SERVER)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.runs = 0
        self.proc = subprocess.Popen([sys.executable, "-c", FORK_SERVER.format(every=set(EVERY_EXTRA))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def __call__(self, blocked: tuple[str, ...], argv: list[str], cwd: Path = ROOT
                 ) -> subprocess.CompletedProcess[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.runs += 1
        out, err = self.directory / f"{self.runs}.out", self.directory / f"{self.runs}.err"
        self.proc.stdin.write(json.dumps({"blocked": sorted(blocked), "argv": argv, "cwd": str(cwd),
                                          "out": str(out), "err": str(err)}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 120)
        assert ready, f"no answer in 120 s: {argv}"
        code = int(self.proc.stdout.readline())
        return subprocess.CompletedProcess(argv, code, out.read_text(), err.read_text())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def run_without(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    server = ForkServer(tmp_path_factory.mktemp("forked"))
    yield server
    server.close()


def test_the_blocker_blocks() -> None:
    # the harness itself must be able to fail: a blocked package really cannot be imported
    done = subprocess.run([sys.executable, "-c", RUN_BLOCKED.format(blocked={"okta"}, argv=["--version"])
                           .replace("from connector.cli import main", "import okta")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1 and "ModuleNotFoundError: No module named 'okta'" in done.stderr


@pytest.mark.parametrize("argv", [
    ["validate", "mappings/"],
    ["validate", "--format", "json", "mappings/okta.yaml"],
    ["render", "--idp", "okta", "--out", "{tmp}/okta"],
    ["render", "--idp", "azure", "--out", "{tmp}/azure"],
    ["--help"],
    ["drift", "--help"],
])
def test_core_commands_run_without_any_extra(run_without: ForkServer, argv: list[str], tmp_path: Path) -> None:
    done = run_without(EVERY_EXTRA, [a.format(tmp=tmp_path) for a in argv])
    assert done.returncode == 0, done.stderr
    assert "LOADED=[]" in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("blocked", "argv", "line"), [
    (OKTA, ["plan", "--idp", "okta"], "[okta]"),
    (OKTA, ["apply", "--idp", "okta", "--yes"], "[okta]"),
    (OKTA, ["test-connection", "--idp", "okta"], "[okta]"),
    (OKTA, ["drift", "--idp", "okta"], "[okta]"),
    (OKTA, ["status", "--idp", "okta"], "[okta]"),
    (OKTA, ["push-groups"], "[okta]"),
    (ENTRA, ["plan", "--idp", "azure"], "[entra]"),
    (ENTRA, ["provision", "--user", "ada"], "[entra]"),
    (ENTRA, ["drift", "--idp", "azure"], "[entra]"),
    (("aiohttp",), ["drift", "--idp", "azure"], "[entra]"),
    (SANDBOX, ["sandbox"], "[sandbox]"),
    (SANDBOX, ["demo"], "[all,sandbox]"),
    (OKTA, ["demo"], "[all,sandbox]"),
])
def test_a_missing_extra_is_named_before_anything_is_read(
    run_without: ForkServer, blocked: tuple[str, ...], argv: list[str], line: str, tmp_path: Path
) -> None:
    # the config does not exist: the missing extra is what the user has to fix first
    config = ["--config", str(tmp_path / "nope.yaml")] if argv[0] not in ("sandbox", "demo") else []
    done = run_without(blocked, [*argv, *config], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"pip install 'astro-scim-connector{line}'" in done.stderr
    assert "is not installed" in done.stderr and "Traceback" not in done.stderr
    assert "not found" not in done.stderr.replace("module", "")  # not the missing config
    assert "LOADED=[]" in done.stdout


@pytest.mark.parametrize(("blocked", "idps", "line", "module", "command"), [
    (OKTA, ("okta", "azure"), "[okta]", "okta", ["plan"]),
    # Entra's reads need no SDK (providers/entra/reads.py): kiota is found missing at apply's first write
    (("kiota_http",), ("azure",), "[entra]", "kiota_http", ["apply", "--yes"]),
    # aiohttp comes with both IdP extras: the provider that was importing it says which one is missing
    (("aiohttp",), ("okta",), "[okta]", "aiohttp", ["plan"]),
    (("aiohttp",), ("azure",), "[entra]", "aiohttp", ["plan"]),
])
def test_a_missing_extra_found_from_the_config_names_the_pip_line(
    run_without: ForkServer, sandbox: Sandbox, tmp_path: Path, blocked: tuple[str, ...], idps: tuple[str, ...], line: str, module: str,
    command: list[str]
) -> None:
    # --idp all: the config says which IdPs run, so the SDK is only found missing when its provider loads
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=idps)
    done = run_without(blocked, [*command, "--config", str(config)], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"pip install 'astro-scim-connector{line}'" in done.stderr
    assert f"module '{module}" in done.stderr and "Traceback" not in done.stderr


def test_a_dependency_of_the_sdk_missing_names_the_sdk_extra(run_without: ForkServer, sandbox_config: Path) -> None:
    # PyJWT comes with [sandbox] for the emulator, but for `plan --idp okta` it is the okta SDK's dependency
    done = run_without(("jwt",), ["plan", "--idp", "okta", "--config", str(sandbox_config)],
                       cwd=sandbox_config.parent)
    assert done.returncode == 2, done.stderr
    assert "pip install 'astro-scim-connector[okta]'" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_module_no_extra_provides_is_still_an_internal_error() -> None:
    # only the extras' packages are explained by an install line; anything else is a bug worth a crash log
    err = extras.from_import_error(ModuleNotFoundError("No module named 'pydantic'", name="pydantic"), "plan", "all")
    assert err is None


# -- pyproject, constraints, hook ------------------------------------------------------------------------


def _names(reqs: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in reqs}


def test_the_core_holds_no_sdk_and_no_server_stack() -> None:
    core = _names(PYPROJECT["project"]["dependencies"])
    assert not core & {"okta", "msgraph-sdk", "azure-identity", "scim2-server", "werkzeug", "pyjwt", "aiohttp"}
    opt = PYPROJECT["project"]["optional-dependencies"]
    assert {"okta", "entra", "all", "sandbox", "test", "dev"} <= set(opt)
    assert _names(opt["okta"]) >= {"okta", "aiohttp"}
    assert _names(opt["entra"]) >= {"msgraph-sdk", "azure-identity", "aiohttp"}
    assert opt["all"] == ["astro-scim-connector[okta,entra]"]
    assert "astro-scim-connector[all,sandbox]" in opt["test"]


def test_the_extras_module_names_what_pyproject_installs() -> None:
    # every import name extras.PROVIDES checks for comes from a distribution of that extra (or one it pulls)
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    opt = PYPROJECT["project"]["optional-dependencies"]
    pulled = {"okta": {"okta"}, "entra": {"msgraph-sdk", "azure-identity", "msgraph-core"}}
    for extra, names in extras.PROVIDES.items():
        declared = _names(opt[extra]) | pulled.get(extra, set())
        for name in names:
            owners = {d.lower() for d in dists[name.split(".")[0]]}
            assert owners & declared, (extra, name, owners)


def test_private_sdk_internals_are_pinned_to_a_minor_version() -> None:
    every = [*PYPROJECT["project"]["dependencies"], *sum(PYPROJECT["project"]["optional-dependencies"].values(), [])]
    pins = {Requirement(r).name.lower(): Requirement(r).specifier for r in every}
    # okta: ConfigSetter._apply_config/_prune_config; scim2-server: InMemoryStorage internals; scim2-client:
    # BaseAsyncSCIMClient._parse_json. A new minor version may rename them: it has to be verified first.
    for name in ("okta", "scim2-server", "scim2-client"):
        uppers = [s.version for s in pins[name] if s.operator == "<"]
        assert uppers, name
        lower = next(s.version for s in pins[name] if s.operator == ">=")
        assert uppers[0].split(".")[:2] == [lower.split(".")[0], str(int(lower.split(".")[1]) + 1)], name


def test_constraints_pin_every_declared_dependency_within_its_range() -> None:
    pinned: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[name.lower().replace("_", "-")] = version
    every = [*PYPROJECT["project"]["dependencies"], *sum(PYPROJECT["project"]["optional-dependencies"].values(), [])]
    for text in every:
        req = Requirement(text)
        if req.name == "astro-scim-connector":
            continue
        name = req.name.lower().replace("_", "-")
        assert name in pinned, f"{name} is not in constraints.txt: run make constraints"
        assert req.specifier.contains(pinned[name]), f"constraints.txt pins {name}=={pinned[name]}, not {req}"


def test_pre_commit_hook_installs_the_core_and_runs_validate() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "astro-scim-validate" and hook["entry"] == "astro-scim validate"
    # language: python installs this repository's package with its core dependencies only (no SDK)
    assert hook["language"] == "python" and not hook.get("additional_dependencies")


def test_license_is_apache_2_and_declared() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text


def test_the_install_line_for_a_missing_extra_is_pipxs_under_pipx(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed with pipx, `pip install '...[okta]'` went to another environment and the command kept failing."""
    import sys

    from connector.support.extras import pip_line

    monkeypatch.setattr(sys, "prefix", "/home/ada/.local/share/pipx/venvs/astro-scim-connector")
    assert pip_line("okta") == "pipx install --force 'astro-scim-connector[okta]'"
    monkeypatch.setattr(sys, "prefix", "/work/venv")
    assert pip_line("okta") == "pip install 'astro-scim-connector[okta]'"
