"""What --help tells: every option explained, the one list of exit codes on every command (and the README's table
with the same codes), and usage errors that name the help of the command they are about."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from connector import errors
from connector.cli import EXIT_CODE_MEANINGS, EXIT_CODES, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def commands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_and_argument_of_every_command_says_what_it_does(name: str) -> None:
    parser = commands()[name]
    missing = [a.option_strings[-1] if a.option_strings else a.dest for a in parser._actions
               if not (a.help or "").strip() or a.help == argparse.SUPPRESS]
    assert missing == []
    parser.format_help()  # every %(default)s and literal % in the texts formats


@pytest.mark.parametrize("name", sorted(commands()))
def test_an_option_with_a_default_states_it(name: str) -> None:
    unstated = [a.option_strings[-1] for a in commands()[name]._actions
                if a.default not in (None, False, argparse.SUPPRESS) and "default" not in (a.help or "")]
    assert unstated == []


def test_sandbox_and_init_help_say_their_defaults() -> None:
    sandbox = " ".join(commands()["sandbox"].format_help().split())
    for text in ("people to seed (default: 20)", "(default: 4)", "(default: 1)", "fraction (0-1) of Okta and Graph "
                 "requests answered 429", "--groups 3 seeds 4 teams"):
        assert text in sandbox
    init = " ".join(commands()["init"].format_help().split())
    assert "label (default: Astro)" in init and "(default: oin)" in init and "display name (default: Astro)" in init
    assert "the config file to write" in init


def test_the_exit_codes_are_every_code_errors_py_defines() -> None:
    defined = {value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    assert [code for code, _ in EXIT_CODE_MEANINGS] == sorted(defined)


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in sorted(commands())]])
def test_every_help_ends_with_the_one_list_of_exit_codes(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.endswith(EXIT_CODES)
    for code in ("4", "141"):
        assert re.search(rf"^  {code} ", out, re.MULTILINE)


def test_the_readme_exit_code_table_has_the_same_codes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Exit codes", 1)[1].split("\n\n", 2)[1]
    codes = [int(m) for m in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)]
    assert codes == [code for code, _ in EXIT_CODE_MEANINGS]


def test_the_format_help_explains_each_format_the_command_takes() -> None:
    for name, parser in commands().items():
        fmt = parser._option_string_actions.get("--format")
        if fmt is None:
            continue
        assert fmt.choices is not None
        for choice in fmt.choices:
            assert f"{choice}: " in (fmt.help or ""), (name, choice)
        assert "docs/schemas/" not in (fmt.help or "").split("(docs/schemas/ in a checkout)")[0]


@pytest.mark.parametrize(("argv", "help_line"), [
    (["drift", "--fromat", "json"], "hint: astro-scim drift --help"),
    (["validate", "--stirct", "mappings/"], "hint: astro-scim validate --help"),
    (["--nope"], "hint: astro-scim --help"),
])
def test_an_unknown_flag_names_the_help_of_its_command(argv: list[str], help_line: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert help_line in err and err.startswith(help_line.split("hint: ")[1].split(" --help")[0] + ": error:")


def test_a_guess_after_a_command_is_one_of_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    # --strict is validate's: drift has none to guess from it, and `--fiz` is drift's --fix
    assert main(["drift", "--fiz"]) == 2
    assert "did you mean --fix?" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["apply", "--wait", "5", "--no-wait"], ["apply", "--no-wait", "--wait", "5"],
                                  ["apply", "plan.json", "--no-wait", "--wait=0"]])
def test_wait_and_no_wait_together_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2  # before the command runs: no config is read
    err = capsys.readouterr().err
    assert "--wait" in err and "--no-wait" in err and "contradict each other" in err
    assert "hint: astro-scim apply --help" in err


def test_the_readme_validate_example_is_what_validate_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # The README's example: the shipped Entra mapping copied to my-mappings/, its users' displayName mistyped.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("$ astro-scim validate my-mappings/azure.yaml\n", 1)[1].split("\n$ ", 1)[0]
    shipped = (ROOT / "connector" / "data" / "mappings" / "azure.yaml").read_text(encoding="utf-8")
    (tmp_path / "my-mappings").mkdir()
    (tmp_path / "my-mappings" / "azure.yaml").write_text(
        shipped.replace('source: "[displayName]"', 'source: "toLower([displayName])"', 1), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "my-mappings/azure.yaml"]) == 1
    captured = capsys.readouterr()
    assert (captured.out + captured.err).splitlines() == example.splitlines()
