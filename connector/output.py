"""Everything the tool prints goes through here: redacted, to a rich console created on first use."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from connector.support.redact import printable, redact

if TYPE_CHECKING:
    from rich.console import Console

    from connector.support.progress import Progress

_out: Console | None = None
_err: Console | None = None
# --quiet: only errors and the data a command was asked for (raw: JSON, reports) are printed.
_quiet = False
# --format json: stdout holds one JSON document and nothing else; what say/note/render print goes to stderr.
_machine = False


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


def _human() -> Console:
    """Where narration goes: stdout, or stderr while a JSON document owns stdout."""
    return err_console() if _machine else console()


def say(text: str = "", *, style: str | None = None, markup: bool = False) -> None:
    """Print one line to stdout (stderr under --format json; secrets masked); nothing under --quiet."""
    if _quiet:
        return
    out = _human()
    width = terminal_width(sys.stderr if _machine else None)
    if width is None:  # not a terminal: the line as it is (no wrap at a guessed width)
        out.print(printable(redact(text)), style=style, markup=markup)
        return
    # On a terminal, rich wraps at the width (long words folded, never cut), so no line runs past the edge.
    out.width = width
    out.print(printable(redact(text)), style=style, markup=markup, soft_wrap=False)


def raw(text: str) -> None:
    """Write text to stdout as is (after masking): for JSON and other machine formats."""
    try:
        sys.stdout.write(redact(text))
        if not text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away: cli.main's exit 141
        raise
    except OSError as exc:  # `> report.json` on a full disk (ENOSPC), a quota, an I/O error: not a crash (exit 70)
        from connector.errors import UsageError

        discard_stdout()
        raise UsageError(f"cannot write to stdout: {exc.strerror or exc}",
                         hint="free some space, or write the report elsewhere (-o FILE where the command has it)"
                         ) from exc


def discard_stdout() -> None:
    """Point stdout at /dev/null: what a failed write left in its buffer would fail again at exit (exit 120)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is no file (captured, embedded): nothing flushes at exit
        pass


def note(text: str) -> None:
    """A plain summary line (as raw, no rich), left out under --quiet."""
    if _quiet:
        return
    if _machine:
        sys.stderr.write(printable(redact(text)).rstrip("\n") + "\n")
        return
    raw(printable(text))


def warn(text: str) -> None:
    if _quiet:
        return
    # printable: names from Astro or the IdP (a plan line's userName) may hold terminal escapes
    err_console().print(printable(redact(text)), style="yellow", markup=False)


def error(text: str, hint: str | None = None) -> None:
    err_console().print("error: " + printable(redact(text)), style="bold red", markup=False)
    if hint:
        err_console().print("hint: " + printable(redact(hint)), style="dim", markup=False)


def render(obj: Any) -> None:
    """Print a rich renderable (table, panel); nothing under --quiet."""
    if _quiet:
        return
    out = _human()
    out.width = table_width(sys.stderr if _machine else None)
    out.print(obj)


# -- --format json --------------------------------------------------------------------------------------------
# Every command's JSON document starts with the same envelope; its JSON Schema is
# connector/data/output-schemas/<name>.v<version>.json (docs/schemas links there). New optional fields keep the
# version; a field removed, renamed or given another meaning is a new version (a new file, the old one kept).


def schema_id(name: str, version: int = 1) -> str:
    """The `schema` value of a document, e.g. "astro-scim/apply/v1" (the file is <name>.v<version>.json)."""
    return f"astro-scim/{name}/v{version}"


def utc_now() -> str:
    """The project clock's time, UTC, ISO 8601 to the second (what the documents' *_at fields hold)."""
    from datetime import UTC, datetime

    from connector.support import clock

    return datetime.fromtimestamp(clock.current().time(), UTC).isoformat(timespec="seconds")


class Document(dict[str, Any]):
    """A command's JSON answer, filled in as the command runs (see `json_document`)."""

    def done(self, exit_code: int, *, ok: bool | None = None) -> int:
        """The command's verdict: its exit code and, unless said otherwise, ok = exit code 0. Returns the code."""
        self["exit_code"] = exit_code
        self["ok"] = exit_code == 0 if ok is None else ok
        return exit_code


def error_fields(exc: BaseException) -> dict[str, Any]:
    """A JSON document's `error`: {type, message, hint, exit_code} for the exception a command ends with."""
    shown = _as_shown(exc)
    code, kind = _error_code(shown)
    return {"type": kind, "message": str(shown) or kind, "hint": getattr(shown, "hint", None), "exit_code": code}


def _as_shown(exc: BaseException) -> BaseException:
    """The error as the CLI shows it: a module of an extra that is not installed is its pip line (exit 2), not an
    internal error (the document said 70 where the process exited 2)."""
    if isinstance(exc, ModuleNotFoundError):
        from connector.support import extras

        missing = extras.from_import_error(exc, "", None)
        if missing is not None:
            return missing
    return exc


def _error_code(exc: BaseException) -> tuple[int, str]:
    from connector.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ConnectorError

    if isinstance(exc, ConnectorError):
        return exc.exit_code, type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "Interrupted"
    return EXIT_INTERNAL, "InternalError"


@contextlib.contextmanager
def json_document(name: str, command: str, enabled: bool, **fields: Any) -> Iterator[Document]:
    """Run a command whose `--format json` answer is a Document: yields it for the command to fill in (`fields`
    are its initial values, so that every required field is there however early the command stops). When
    `enabled`, narration goes to stderr meanwhile, and the document is printed when the command ends, however
    it ends: on an error with `error` {type, message, hint}, ok false and the exit code the CLI returns."""
    global _machine
    doc = Document(schema=schema_id(name), command=command, tool_version=_version(), generated_at=utc_now(),
                   ok=False, exit_code=0, error=None, **fields)
    previous, _machine = _machine, _machine or enabled
    try:
        yield doc
    except BaseException as exc:
        error = error_fields(exc)
        doc["ok"], doc["exit_code"] = False, error.pop("exit_code")
        doc["error"] = error
        raise
    finally:
        _machine = previous
        if enabled:
            raw(json.dumps(doc, indent=2, default=str, ensure_ascii=False))


def _version() -> str:
    from connector import __version__

    return __version__


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
