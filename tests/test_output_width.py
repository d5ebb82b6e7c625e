"""Output takes the terminal's width: lines and the drift table fit COLUMNS (or the terminal's own width), cells
wrap rather than cut, and a finding id never breaks. Without a terminal and without COLUMNS, tables are 120
columns wide and plain lines are left whole (for grep and log files)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import termios
from pathlib import Path

import pytest

from connector import output
from connector.cli import main
from connector.sandbox.core import Sandbox

WIDTHS = (60, 100, 200)
LONG_NAME = "a.very.long.user.name.that.will.not.fit.in.a.narrow.column@example-corporation.example"


@pytest.fixture
def drifted(sandbox: Sandbox, sandbox_config: Path) -> Path:
    """Okta set up and applied, then drift behind the tool's back: an orphan with a long name, a Team deleted."""
    assert sandbox.okta is not None
    org = sandbox.astro_orgs["okta"]
    sandbox.okta.enable_provisioning(str(sandbox.okta.app_by_label("Astro")["id"]), org.scim_url, org.token)
    assert main(["apply", "-c", str(sandbox_config), "--idp", "okta", "--yes", "-q"]) == 0
    sandbox.astro.add_orphan(org.org_id, LONG_NAME, "Long", "Name")
    return sandbox_config


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    main(list(argv))
    return capsys.readouterr().out


def _fits(text: str, width: int) -> None:
    long = [line for line in text.splitlines() if len(line) > width]
    assert not long, f"{len(long)} line(s) wider than {width}: {long[:3]}"
    assert "…" not in text  # rich's mark of a cut cell


@pytest.mark.parametrize("width", WIDTHS)
def test_the_drift_table_fits_the_width_and_keeps_ids_whole(drifted: Path, width: int,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    doc = json.loads(_run(capsys, "drift", "-c", str(drifted), "--idp", "okta", "--format", "json"))
    ids = [f["id"] for idp in doc["idps"] for f in idp["findings"]]
    assert ids
    monkeypatch.setenv("COLUMNS", str(width))
    text = _run(capsys, "drift", "-c", str(drifted), "--idp", "okta")
    _fits(text, width)
    words = text.split()
    for fid in ids:  # whole, as a word of its own
        assert fid in words, fid
    # The long name is folded across lines of its cell, never cut: every character of it is there, in order.
    cells = "".join(line.split("│")[3].strip() for line in text.splitlines() if line.count("│") == 5)
    assert LONG_NAME in cells
    if width >= 200:
        assert f" {LONG_NAME} " in text  # wide enough: on one line


@pytest.mark.parametrize("width", WIDTHS)
def test_plan_lines_fit_the_width_and_cut_nothing(sandbox_config: Path, width: int,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _lines_fit(sandbox_config, "plan", width, capsys, monkeypatch)  # a fresh org: a plan with changes


@pytest.mark.parametrize("width", WIDTHS)
def test_status_lines_fit_the_width_and_cut_nothing(drifted: Path, width: int, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _lines_fit(drifted, "status", width, capsys, monkeypatch)


def _lines_fit(config: Path, command: str, width: int, capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    whole = _run(capsys, command, "-c", str(config), "--idp", "okta")
    assert max(len(line) for line in whole.splitlines()) > 60  # something to wrap at 60
    monkeypatch.setenv("COLUMNS", str(width))
    wrapped = _run(capsys, command, "-c", str(config), "--idp", "okta")
    _fits(wrapped, width)
    # Lines break between words: every word shorter than the width is still there, whole and in order (a longer
    # one, a temporary folder's path, is folded over lines).
    left = iter(wrapped.split())
    assert all(word in left for word in whole.split() if len(word) < width)
    assert "".join(whole.split()) == "".join(wrapped.split())  # and not a character lost


def test_without_a_terminal_or_columns_lines_stay_whole_and_tables_take_120(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output.terminal_width() is None  # pytest captures stdout: not a terminal
    assert output.table_width() == output.DEFAULT_WIDTH == 120
    monkeypatch.setenv("COLUMNS", "87")
    assert output.terminal_width() == output.table_width() == 87


def test_a_terminal_gives_its_own_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    leader, follower = pty.openpty()
    try:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 77, 0, 0))
        with os.fdopen(follower, "w", closefd=False) as tty:
            assert output.terminal_width(tty) == 77
            assert output.table_width(tty) == 77
    finally:
        os.close(leader)
        os.close(follower)
