"""The audit trail: every command that changes the IdP or Astro appends one JSON line saying who ran what, from
which config, what it changed and with what outcome.

    @trail.recorded("apply")       on the command's run(args): one line per run, written when it ends (whatever
    def run(args): ...             way it ends: exit code and error are part of the line)
        trail.bind(cfg)            the run is about this config: where the log is, its fingerprint. A run that
                                   never binds (config missing, drift without --fix) writes no line: it changed
                                   nothing. bind checks the log can be appended to, so a run refuses (exit 2)
                                   before changing anything it could not record.
        trail.planned(p, changes)  changes it is about to make (outcome "not applied" until told otherwise)
        trail.outcome(c, "applied")  what became of one
        trail.record(p, {...})     a change described by the command itself (push-groups, provision, drift --fix)
        trail.stopped(reason)      why a run that raised nothing still ended short (the line's `error`)

The line: time (UTC), tool_version, command, options, config {file, fingerprint}, actor ($USER; in GitHub
Actions also $GITHUB_ACTOR, $GITHUB_RUN_ID, $GITHUB_REPOSITORY, $GITHUB_WORKFLOW), changes [{provider, action,
resource, key, detail, outcome, message}], exit_code, error. It is masked like every other output (every secret
value read is replaced by ****) and appended with one write(2) on an O_APPEND descriptor, so concurrent runs never
interleave within a line.

Recorders sit on a module-level stack rather than in a contextvar: providers report progress from their own
threads and event loops, where a contextvar set by the command is not visible.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector import __version__, output
from connector.config.fingerprint import config_fingerprint
from connector.config.load import ProjectConfig
from connector.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ConnectorError, UsageError
from connector.plan.model import Change
from connector.support import clock
from connector.support.redact import redact

Run = Callable[[Any], int]

NOT_APPLIED = "not applied"
_lock = threading.Lock()
# The recorder of the command running in this context: each thread (concurrent applies in one process) and each
# asyncio task started from it see their own; the provider's event loop runs in the command's thread.
_active: ContextVar[Recorder | None] = ContextVar("astro_scim_trail", default=None)
# Flags that are about output, not about what was done; and what argparse adds for the program itself.
_SKIP_OPTIONS = {"program", "command", "config", "verbose", "quiet", "format", "output"}


@dataclass
class Recorder:
    command: str
    options: dict[str, Any]
    cfg: ProjectConfig | None = None
    path: Path | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None  # why a run that raised nothing ended short (see `stopped`)
    _by_change: dict[int, dict[str, Any]] = field(default_factory=dict)

    def line(self, exit_code: int, error: BaseException | None) -> str:
        assert self.cfg is not None
        entry = {
            "time": datetime.fromtimestamp(clock.current().time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tool_version": __version__,
            "command": self.command,
            "options": self.options,
            "config": {"file": str(Path(self.cfg.file).resolve()), "fingerprint": config_fingerprint(self.cfg)},
            "actor": actor(),
            "changes": self.changes,
            **self.notes,
            "exit_code": exit_code,
            "error": self.stopped if error is None else str(error) or type(error).__name__,
        }
        # One line: json.dumps never emits a raw newline (they are escaped inside strings).
        return redact(json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":"))) + "\n"


def actor() -> dict[str, str]:
    """Who ran it, as the environment says. In GitHub Actions the person is GITHUB_ACTOR and the run is the
    place to look for the rest; $USER there is the runner's account."""
    import getpass

    try:
        user = os.environ.get("USER") or getpass.getuser()
    except Exception:  # no USER and no passwd entry (some containers)
        user = ""
    who = {"user": user}
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for key in ("GITHUB_ACTOR", "GITHUB_RUN_ID", "GITHUB_REPOSITORY", "GITHUB_WORKFLOW"):
            if os.environ.get(key):
                who[key.lower()] = os.environ[key]
    return who


def _options(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted(vars(args).items()):
        if key in _SKIP_OPTIONS or callable(value):
            continue
        if value is None or isinstance(value, str | int | float | bool) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value)):
            out[key] = value
    return out


def _current() -> Recorder | None:
    return _active.get()


def recorded(command: str) -> Callable[[Run], Run]:
    """Decorate a command's run(args) so that each run appends one line (see the module docstring)."""
    def wrap(run: Run) -> Run:
        @functools.wraps(run)
        def inner(args: Any) -> int:
            rec = Recorder(command, _options(args))
            token = _active.set(rec)
            code: int = EXIT_INTERNAL
            error: BaseException | None = None
            try:
                code = run(args)
                return code
            except ConnectorError as exc:
                code, error = exc.exit_code, exc
                raise
            except KeyboardInterrupt as exc:
                code, error = EXIT_INTERRUPTED, exc
                raise
            except Exception as exc:
                code, error = EXIT_INTERNAL, exc
                raise
            finally:
                _active.reset(token)
                if rec.path is not None:
                    _append(rec.path, rec.line(code, error))
        return inner
    return wrap


def bind(cfg: ProjectConfig) -> None:
    """The running command is about `cfg`: its line goes to cfg.audit_log. Refuses now (exit 2) when the log
    cannot be appended to, before the command changes anything."""
    rec = _current()
    if rec is None:
        return
    path = cfg.audit_log
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    except OSError as exc:
        raise UsageError(f"cannot append to the audit log {path}: {exc.strerror or exc}",
                         hint="set audit_log: in the config or $ASTRO_SCIM_AUDIT_LOG to a writable file") from exc
    rec.cfg, rec.path = cfg, path


def _append(path: Path, line: str) -> None:
    data = line.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, data)  # one write: O_APPEND makes it land whole at the end
        finally:
            os.close(fd)
        if written != len(data):
            raise OSError(f"short write ({written} of {len(data)} bytes)")
    except OSError as exc:
        # The command has already acted: say so loudly, but do not turn its outcome into a different one.
        output.error(f"could not append to the audit log {path}: {exc}")


def _change_entry(provider: str, change: Change, outcome: str, message: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {"provider": provider, "action": change.action.value, "resource": change.resource,
                             "key": change.key, "detail": change.detail, "outcome": outcome}
    if message:
        entry["message"] = message
    return entry


def planned(provider: str, changes: Sequence[Change]) -> None:
    """Changes the command is about to make: each is "not applied" until `outcome` says otherwise."""
    rec = _current()
    if rec is None:
        return
    with _lock:
        for change in changes:
            entry = _change_entry(provider, change, NOT_APPLIED)
            rec._by_change[id(change)] = entry
            rec.changes.append(entry)


def outcome(change: Change, result: str, message: str = "", *, provider: str = "") -> None:
    """What became of a change (`planned` before, or given its provider here)."""
    rec = _current()
    if rec is None:
        return
    with _lock:
        entry = rec._by_change.get(id(change))
        if entry is None:
            entry = _change_entry(provider, change, result, message)
            rec._by_change[id(change)] = entry
            rec.changes.append(entry)
        entry["outcome"] = result
        if message:
            entry["message"] = message


def record(provider: str, entry: dict[str, Any]) -> None:
    """A change the command describes itself ({action, resource, key, detail, outcome, message})."""
    rec = _current()
    if rec is not None:
        with _lock:
            rec.changes.append({"provider": provider, **entry})


def stopped(reason: str) -> None:
    """Why the run ended short without an exception (apply over several IdPs, one waiting for its manual step:
    exit 1 with the others done): the line's `error`, as the command printed it, instead of null."""
    rec = _current()
    if rec is not None:
        rec.stopped = reason


def note(key: str, value: Any) -> None:
    """A top-level field of the line (e.g. a verification verdict)."""
    rec = _current()
    if rec is not None:
        rec.notes[key] = value
