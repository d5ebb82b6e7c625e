"""CLI contract: help, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
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


def test_apply_refuses_a_format_it_would_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # apply narrates as text; `apply --format json` used to be accepted and silently print text
    assert main(["apply", "--format", "json", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "unrecognized arguments: --format" in capsys.readouterr().err
    assert main(["plan", "--format", "json", "--config", str(tmp_path / "nope.yaml")]) == 2  # the config, not the flag
    assert "not found" in capsys.readouterr().err


def test_missing_config_is_exit_2_with_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "hint" in err and "Traceback" not in err


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
    assert main(["status"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" not in err and "kaboom" in err
    log = err.split("written to ")[1].split(";")[0].strip()
    assert "Traceback" in Path(log).read_text()
