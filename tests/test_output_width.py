"""Output takes the terminal's width: lines and the drift table fit COLUMNS (or the terminal's own width), cells
wrap rather than cut, and a finding id never breaks. Without a terminal and without COLUMNS, tables are 120
columns wide and plain lines are left whole (for grep and log files)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import sys
import termios
import threading
from pathlib import Path

import pytest
from applied import applied

from connector import output
from connector.cli import main
from connector.sandbox.core import Sandbox

WIDTHS = (60, 100, 200)
TABLE = set("┏┃┡│└")  # the first character of a table's lines (plain lines start with a letter or a space)
LONG_NAME = "a.very.long.user.name.that.will.not.fit.in.a.narrow.column@example-corporation.example"


@pytest.fixture
def drifted(sandbox: Sandbox, sandbox_config: Path) -> Path:
    """Okta set up and applied, then drift behind the tool's back: an orphan with a long name, a Team deleted."""
    applied(sandbox, sandbox_config, "okta", console_step=True, only=True)  # tests/applied.py
    sandbox.astro.add_orphan(sandbox.astro_orgs["okta"].org_id, LONG_NAME, "Long", "Name")
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
    _fits("\n".join(line for line in text.splitlines() if line[:1] in TABLE), width)  # not a terminal: the table
    words = text.split()
    for fid in ids:  # whole, as a word of its own
        assert fid in words, fid
    # The long name is folded across lines of its cell, never cut: every character of it is there, in order.
    cells = "".join(line.split("│")[3].strip() for line in text.splitlines() if line.count("│") == 5)
    assert LONG_NAME in cells
    if width >= 200:
        assert f" {LONG_NAME} " in text  # wide enough: on one line


@pytest.mark.parametrize("width", WIDTHS)
def test_plan_lines_fit_the_terminal_and_cut_nothing(sandbox_config: Path, width: int,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _lines_fit(sandbox_config, "plan", width, capsys, monkeypatch)  # a fresh org: a plan with changes


@pytest.mark.parametrize("width", WIDTHS)
def test_status_lines_fit_the_terminal_and_cut_nothing(drifted: Path, width: int,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _lines_fit(drifted, "status", width, capsys, monkeypatch)


class Terminal:
    """A pseudo-terminal of `width` columns as stdout: what rich and the tool see is a real terminal; what was
    drawn is read from the other end (by a thread: a full pty buffer would block the writer)."""

    def __init__(self, width: int) -> None:
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, width, 0, 0))
        self.stream = os.fdopen(follower, "w", encoding="utf-8")
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.leader, 65536)
            except OSError:  # the other end closed
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    def close(self) -> str:
        self.stream.close()
        self.reader.join(timeout=10)
        os.close(self.leader)
        text = b"".join(self.chunks).decode("utf-8")
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")  # colours; the pty's CR LF


def _lines_fit(config: Path, command: str, width: int, capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    whole = _run(capsys, command, "-c", str(config), "--idp", "okta")  # not a terminal: lines left whole
    assert max(len(line) for line in whole.splitlines()) > 60  # something to wrap at 60
    terminal = Terminal(width)
    monkeypatch.setattr(sys, "stdout", terminal.stream)
    main([command, "-c", str(config), "--idp", "okta"])
    monkeypatch.undo()
    wrapped = terminal.close()
    _fits(wrapped, width)
    # Lines break between words: every word shorter than the width is still there, whole and in order (a longer
    # one, a temporary folder's path, is folded over lines).
    left = iter(wrapped.split())
    assert all(word in left for word in whole.split() if len(word) < width)
    assert "".join(whole.split()) == "".join(wrapped.split())  # and not a character lost


def test_without_a_terminal_lines_stay_whole_and_tables_take_columns_or_120(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output.terminal_width() is None  # pytest captures stdout: not a terminal
    assert output.table_width() == output.DEFAULT_WIDTH == 120
    monkeypatch.setenv("COLUMNS", "87")  # exported to every process by some environments (xdist workers: 80)
    assert output.terminal_width() is None and output.table_width() == 87


def test_a_terminal_gives_its_own_width_unless_columns_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    terminal = Terminal(77)
    try:
        assert output.terminal_width(terminal.stream) == output.table_width(terminal.stream) == 77
        monkeypatch.setenv("COLUMNS", "50")
        assert output.terminal_width(terminal.stream) == 50
    finally:
        terminal.close()


def _plain(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:1] not in TABLE]


@pytest.mark.parametrize("columns", [None, "60"])
def test_drift_text_in_a_pipe_or_a_file_leaves_plain_lines_whole(
        drifted: Path, tmp_path: Path, columns: str | None, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the table is fitted to a width when stdout is no terminal: the header and the remedies stay one
    line each (README: plain lines are left whole), on stdout and in an -o file alike."""
    monkeypatch.delenv("COLUMNS", raising=False)
    if columns:
        monkeypatch.setenv("COLUMNS", columns)
    piped = _run(capsys, "drift", "-c", str(drifted), "--idp", "okta")
    report = tmp_path / "drift.txt"
    main(["drift", "-c", str(drifted), "--idp", "okta", "-o", str(report)])
    for text in (piped, report.read_text()):
        header = text.splitlines()[0]
        assert header.startswith("astro-scim ") and " -> Astro org " in header and " at 127.0.0.1:" in header
        assert max(len(line) for line in _plain(text)) > 120  # long enough to have been broken before
        # Every plain line is one of the report's own (header, counts, an indented line): no continuation.
        assert all(line.startswith(("astro-scim ", "okta: ", "  ")) for line in _plain(text)), _plain(text)
        assert any(line.startswith("  - ") for line in _plain(text))  # a remedy line, whole


def test_drift_text_on_a_terminal_wraps_plain_lines_too(drifted: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    whole = _run(capsys, "drift", "-c", str(drifted), "--idp", "okta")
    terminal = Terminal(60)
    monkeypatch.setattr(sys, "stdout", terminal.stream)
    main(["drift", "-c", str(drifted), "--idp", "okta"])
    monkeypatch.undo()
    wrapped = terminal.close()
    _fits(wrapped, 60)
    header = whole.splitlines()[0]
    left = iter(wrapped.split())
    assert all(word in left for word in header.split())  # wrapped between words, nothing lost


def test_a_terminal_lists_the_first_50_of_a_large_kind_and_a_pipe_lists_every_finding(
        sandbox: Sandbox, drifted: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """105 more orphans (106 of a kind): a terminal lists the first 50 and says how many it left out and where they
    all are; a pipe, a file (-o) and JSON hold every one (README: Large drifts)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    org = sandbox.astro_orgs["okta"].org_id
    for i in range(105):
        sandbox.astro.add_orphan(org, f"left{i:03}@example.com", "Left", f"N{i}")
    doc = json.loads(_run(capsys, "drift", "-c", str(drifted), "--idp", "okta", "--format", "json"))
    orphans = [f["subject"] for f in doc["idps"][0]["findings"] if f["kind"] == "orphaned"]  # the report's order
    assert len(orphans) == 106
    left = [name for name in orphans if name.startswith("left")]  # the long one is folded in its cell
    piped = _run(capsys, "drift", "-c", str(drifted), "--idp", "okta")
    assert all(name in piped for name in left) and "not listed" not in piped
    terminal = Terminal(200)
    monkeypatch.setattr(sys, "stdout", terminal.stream)
    main(["drift", "-c", str(drifted), "--idp", "okta"])
    monkeypatch.undo()
    shown = terminal.close()
    first = orphans[:50]  # the first 50 in the report's order, and none after them
    assert all(name in shown for name in first if name in left)
    assert not any(name in shown for name in orphans[50:] if name in left)
    assert "not listed on this terminal: 56 of 106 orphaned (the first 50 of each are above)" in shown
    assert "every finding: write the report to a file or a pipe (-o drift.txt, | less), or --format json" in shown
    total = len(doc["idps"][0]["findings"])
    assert f"  {total} finding(s): " in shown and f"  {total} finding(s): " in piped  # the totals are whole
