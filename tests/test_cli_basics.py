"""CLI contract: help, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from connector.cli import main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("validate", "render", "plan", "apply", "test-connection", "push-groups", "provision", "drift",
                "status", "sandbox", "demo"):
        assert cmd in out
    assert "exit codes" in out


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2


def test_bad_flag_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--nope"]) == 2


def test_apply_format_json_is_a_document_never_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `apply --format json` once was accepted and silently printed text: now it is a document (test_json_schemas.py)
    import json

    assert main(["apply", "--format", "json", "--yes", "--config", str(tmp_path / "nope.yaml")]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["type"] == "ConfigError" and "not found" in captured.err
    assert main(["plan", "--format", "json", "--config", str(tmp_path / "nope.yaml")]) == 2  # the config, not the flag
    assert "not found" in capsys.readouterr().err


def test_missing_config_is_exit_2_with_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "hint" in err and "Traceback" not in err


def test_a_config_that_cannot_be_read_is_not_said_to_be_partly_checked(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A folder given as the config: one line that says so. "Nothing else in the file was checked" is for YAML
    that does not parse (there is a rest that was not looked at), not for a file that could not be read."""
    assert main(["plan", "--config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path}: is a directory, expected a YAML file\n"
    (tmp_path / "c.yaml").write_text("astro: [\n")
    assert main(["plan", "--config", str(tmp_path / "c.yaml")]) == 2
    assert "nothing else in the file was checked: fix this first" in capsys.readouterr().err


def test_broken_config_reports_file_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("astro:\n  scim_url: ftp://x\n")
    assert main(["plan", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:2:" in err


def test_module_entry_point_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "connector", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "astro-scim" in proc.stdout


def test_unexpected_exception_gives_one_line_and_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import connector.commands.status as status

    def boom(args: object) -> int:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(status, "run", boom)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the log lands in the test's folder, not in /tmp
    assert main(["status"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" not in err and "kaboom" in err
    log = err.split("written to ")[1].split(";")[0].strip()
    assert "Traceback" in Path(log).read_text() and Path(log).parent == tmp_path


# -- -v/--verbose and -q/--quiet: before or after the command --------------------------------------------

EVERY_COMMAND = {
    "validate": ["validate", "mappings/"],
    "render": ["render", "--idp", "okta", "--out", "out"],
    "plan": ["plan"],
    "apply": ["apply", "--yes"],
    "test-connection": ["test-connection"],
    "push-groups": ["push-groups", "Analytics"],
    "provision": ["provision", "--user", "ada"],
    "drift": ["drift", "--format", "json"],
    "status": ["status"],
    "sandbox": ["sandbox"],
    "demo": ["demo"],
    "init": ["init", "--non-interactive"],
    "completion": ["completion", "bash"],
}


def test_every_command_is_covered() -> None:
    from connector.cli import COMMANDS

    assert set(EVERY_COMMAND) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(EVERY_COMMAND))
@pytest.mark.parametrize("flag", ["-v", "--verbose", "-q", "--quiet"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_global_flags_before_or_after_the_command(command: str, flag: str, where: str) -> None:
    from connector.cli import build_parser

    argv = EVERY_COMMAND[command]
    args = build_parser().parse_args([flag, *argv] if where == "before" else [*argv, flag])
    assert args.command == command
    assert (args.verbose, args.quiet) == (flag in ("-v", "--verbose"), flag in ("-q", "--quiet"))


@pytest.mark.parametrize("command", sorted(EVERY_COMMAND))
def test_global_flags_default_off(command: str) -> None:
    from connector.cli import build_parser

    args = build_parser().parse_args(EVERY_COMMAND[command])
    assert (args.verbose, args.quiet) == (False, False)


def test_verbose_and_quiet_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-v", "validate", "mappings/", "-q"]) == 2
    assert "contradict" in capsys.readouterr().err


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [["-v", "validate", "mappings/"], ["validate", "-v", "mappings/"],
                                  ["validate", "mappings/", "--verbose"]])
def test_validate_takes_verbose_anywhere(argv: list[str], capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(argv) == 0
    assert "2 mapping files OK" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["-q", "validate", "mappings/"], ["validate", "mappings/", "--quiet"]])
def test_quiet_validate_prints_nothing_when_clean(argv: list[str], capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(argv) == 0
    assert capsys.readouterr() == ("", "")


def test_quiet_validate_prints_the_findings_only(capsys: pytest.CaptureFixture[str]) -> None:
    broken = ROOT / "tests/fixtures/mappings/broken/two-usernames.yaml"
    assert main(["validate", str(broken)]) == 1
    loud = capsys.readouterr().out.splitlines()
    assert main(["validate", "-q", str(broken)]) == 1
    quiet = capsys.readouterr().out.splitlines()
    assert quiet and quiet == loud[:-1]  # the findings, without the summary line
    assert all(str(broken) in line for line in quiet)


def test_quiet_validate_json_is_the_data_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["validate", "--format", "json", str(ROOT / "mappings"), "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["errors"] == 0


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_render_writes_the_files_and_prints_nothing(where: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["render", "--idp", "azure", "--mapping", str(ROOT / "mappings/azure.yaml"), "--out", str(tmp_path)]
    assert main(["-q", *argv] if where == "before" else [*argv, "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert (tmp_path / "entra-schema-mappings.json").is_file()


def test_quiet_still_prints_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-q", "--config", str(tmp_path / "nope.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "not found" in captured.err


def test_quiet_plan_json_and_verbose_plan_after_the_command(sandbox_config: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["plan", "--idp", "okta", "--config", str(sandbox_config), "--format", "json", "-q"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["plans"] and captured.err == ""
    assert main(["plan", "--idp", "okta", "--config", str(sandbox_config), "-v"]) == 0
    captured = capsys.readouterr()
    assert "okta:" in captured.out and "GET" in captured.err  # -v: the HTTP calls, on stderr


def test_quiet_holds_for_commands_run_inside_another(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # the demo runs its steps through main(); an inner main() must neither drop nor leak --quiet
    import connector.commands.status as status
    from connector import output

    def outer(args: object) -> int:
        assert main(["validate", str(ROOT / "mappings")]) == 0
        output.say("after the inner command")
        return 0

    monkeypatch.setattr(status, "run", outer)
    assert main(["status", "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["status"]) == 0
    assert "after the inner command" in capsys.readouterr().out


def test_a_negative_wait_is_refused_before_the_config_is_read(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`apply FILE --wait -1` re-read every IdP (a saved plan's check) before refusing the option."""
    assert main(["apply", "--wait", "-1", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --wait takes a number of seconds >= 0") and "nope.yaml" not in err
