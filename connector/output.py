"""Everything the tool prints goes through here: redacted, to a rich console created on first use."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from connector.support.redact import redact

if TYPE_CHECKING:
    from rich.console import Console

_out: Console | None = None
_err: Console | None = None
# --quiet: only errors and the data a command was asked for (raw: JSON, reports) are printed.
_quiet = False


def set_quiet(quiet: bool) -> bool:
    """Turn --quiet on or off; returns the previous setting, for the caller to restore."""
    global _quiet
    previous, _quiet = _quiet, quiet
    return previous


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
    console().print(redact(text), style=style, markup=markup)


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
    console().print(obj)
