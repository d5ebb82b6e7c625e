"""Shell completion (`astro-scim completion`, argcomplete over the one parser), 'did you mean' for mistyped
commands, choices and flags, and a closed output pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.cli import main

CLI = [sys.executable, "-m", "connector"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_for_each_shell(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    assert "astro-scim" in script and "_ARGCOMPLETE" in script


def complete(line: str, tmp_path: Path) -> list[str]:
    """What the shell gets when it asks the program to complete `line` (the cursor at its end)."""
    out = tmp_path / "completions"
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    proc = subprocess.run(CLI, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [word.strip() for word in out.read_text().split("\013")]  # a lone match comes with its space


def test_commands_flags_and_choices_complete(tmp_path: Path) -> None:
    assert complete("astro-scim val", tmp_path) == ["validate"]
    assert "--format" in complete("astro-scim drift --fo", tmp_path)
    assert set(complete("astro-scim drift --format ", tmp_path)) == {"text", "json", "markdown", "junit", "github",
                                                                    "html"}
    assert set(complete("astro-scim plan --idp ", tmp_path)) >= {"okta", "azure", "all"}


@pytest.mark.parametrize(("argv", "guess"), [
    (["valdate", "mappings/"], "did you mean 'validate'?"),
    (["plan", "--idp", "okat"], "did you mean 'okta'?"),
    (["drift", "--fromat", "json"], "did you mean --format?"),
    (["validate", "--stirct", "mappings/"], "did you mean --strict?"),
])
def test_a_mistyped_command_choice_or_flag_gets_a_suggestion(argv: list[str], guess: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert guess in err and "--help" in err


def test_a_flag_of_other_commands_is_named_with_them(capsys: pytest.CaptureFixture[str]) -> None:
    # Not "unrecognized arguments: --config (did you mean --config?)": the flag exists, elsewhere.
    assert main(["validate", "--config", "x.yaml", "mappings/"]) == 2
    err = capsys.readouterr().err
    owners = err.split("option of", 1)[1].split(")", 1)[0]
    assert "--config is an option of " in err and "apply" in owners and "validate" not in owners
    assert "did you mean --config" not in err


def test_nothing_close_gets_no_guess(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zzzzzz"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_a_closed_pipe_is_not_a_crash() -> None:
    # `astro-scim completion bash | head -1`: the reader goes away; no crash report, the shell's SIGPIPE code. The
    # read end is closed before the program starts, so its first write fails whatever the timing.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([*CLI, "completion", "bash"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and "crash" not in proc.stderr and "unexpected" not in proc.stderr
