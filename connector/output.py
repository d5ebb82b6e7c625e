"""Everything the tool prints goes through here: redacted, to a rich console created on first use."""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING, Any

from connector.support.redact import redact

if TYPE_CHECKING:
    from rich.console import Console

    from connector.support.progress import Progress

_out: Console | None = None
_err: Console | None = None
# --quiet: only errors and the data a command was asked for (raw: JSON, reports) are printed.
_quiet = False


def set_quiet(quiet: bool) -> bool:
    """Turn --quiet on or off; returns the previous setting, for the caller to restore."""
    global _quiet
    previous, _quiet = _quiet, quiet
    return previous


# The width of tables when nothing says the terminal's (stdout is a file or a pipe and COLUMNS is not set).
DEFAULT_WIDTH = 120


def _columns() -> int | None:
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def terminal_width(stream: IO[str] | None = None) -> int | None:
    """The width of the terminal behind `stream` (stdout by default): COLUMNS when set (as rich and shutil
    honour it), else the terminal's own; None when `stream` is no terminal, where a line is better left whole for
    grep and log files (some environments export COLUMNS to every process: pytest-xdist's workers have 80)."""
    stream = sys.stdout if stream is None else stream
    try:
        if not stream.isatty():
            return None
        return _columns() or os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):  # an object with no descriptor, or closed
        return _columns()


def table_width(stream: IO[str] | None = None) -> int:
    """A table needs a width: the terminal's, else COLUMNS when set, else DEFAULT_WIDTH."""
    return terminal_width(stream) or _columns() or DEFAULT_WIDTH


def console() -> Console:
    global _out
    if _out is None:
        from rich.console import Console

        _out = Console(highlight=False, soft_wrap=True)
    return _out


def err_console() -> Console:
    global _err
    if _err is None:
        from rich.console import Console

        _err = Console(stderr=True, highlight=False, soft_wrap=True)
    return _err


def say(text: str = "", *, style: str | None = None, markup: bool = False) -> None:
    """Print one line to stdout (secrets masked); nothing under --quiet."""
    if _quiet:
        return
    out = console()
    width = terminal_width()
    if width is None:  # not a terminal: the line as it is (no wrap at a guessed width)
        out.print(redact(text), style=style, markup=markup)
        return
    # On a terminal, rich wraps at the width (long words folded, never cut), so no line runs past the edge.
    out.width = width
    out.print(redact(text), style=style, markup=markup, soft_wrap=False)


def raw(text: str) -> None:
    """Write text to stdout as is (after masking): for JSON and other machine formats."""
    sys.stdout.write(redact(text))
    if not text.endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A plain summary line (as raw, no rich), left out under --quiet."""
    if not _quiet:
        raw(text)


def warn(text: str) -> None:
    if _quiet:
        return
    err_console().print(redact(text), style="yellow", markup=False)


def error(text: str, hint: str | None = None) -> None:
    err_console().print("error: " + redact(text), style="bold red", markup=False)
    if hint:
        err_console().print("hint: " + redact(hint), style="dim", markup=False)


def render(obj: Any) -> None:
    """Print a rich renderable (table, panel); nothing under --quiet."""
    if _quiet:
        return
    out = console()
    out.width = table_width()
    out.print(obj)


def progress() -> Progress:
    """How a command shows the progress of its long stages, on stderr: nothing with --quiet, a live bar on a
    terminal, one line per stage otherwise (see connector/support/progress.py)."""
    from connector.support import progress as stages

    if _quiet:
        return stages.Silent()
    err = err_console()
    if err.is_terminal:
        err.width = table_width(sys.stderr)
        return stages.Bar(err)
    return stages.Lines()
