"""The Astro read of `drift`, in a child process beside the one that reads the IdP (Linux), else in-process.

Why: both reads are CPU-heavy at scale (decoding every page, a view row per user) and a Python process runs one
thread at a time, so reading them side by side in threads still spent their CPU one after the other: at 100,000
Entra users the Astro read held the interpreter ~1.8 s while Graph's chain of pages waited for it. A forked child
reads Astro (connector.astro.reader, unchanged) on the machine's other core and hands back a compact view: plain
tuples and strings, marshalled (~0.3 s to load and rebuild at 100,000 users and 500,000 memberships).

- The fork happens before the caller starts its threads (`AstroRead.start`), so no lock of another thread can be
  held in the child; the child never touches the terminal, runs no atexit handler and ends with os._exit.
- Progress: the child sends its counts; the caller's callback sees the same (kind, done, total) as in-process.
- Errors: a ConnectorError in the child is the caller's, as it was raised (pickled: message, hint, endpoint,
  status, code; what the CLI shows). Anything else (a bug, a child killed) is not passed on: the read is done
  again in-process, so the caller meets it with its real traceback.
- Never waited for forever: a child that says nothing (no progress, no answer) for longer than one Astro request
  may take with all its retries (`silence_seconds`, from the client's HTTP timeout and the retry budget) is taken
  for hung: it is killed and the read fails as a RemoteError naming the endpoint ("not verified", exit 3), never
  read again in-process (a server that does not answer would hold that read too). The wait is on the injectable
  clock (connector.support.clock), so a test's FakeClock passes it without real time.
- Never left behind: `close` kills and reaps a child still running (the caller's error, Ctrl-C: the child ignores
  SIGINT, its parent decides); a child whose parent dies gets SIGKILL (Linux's parent-death signal).
- Where fork is unavailable or unsafe (macOS, Windows), ASTRO_SCIM_READ_IN_PROCESS is set, or the clock is an
  injected one (tests), the read runs in-process, in the caller's thread, exactly as before.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import pickle
import select
import signal
import struct
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from connector.astro.client import SERVICE, TIMEOUT_SECONDS
from connector.astro.reader import Progress, read_astro
from connector.config.load import AstroConfig
from connector.errors import ConnectorError, RemoteError
from connector.support import clock
from connector.support.clock import SystemClock
from connector.support.http import DEFAULT_POLICY, RetryPolicy
from connector.views import AstroTeam, AstroUser, AstroView, Compared

log = logging.getLogger("connector.astro")

IN_PROCESS_ENV = "ASTRO_SCIM_READ_IN_PROCESS"
_HEADER = struct.Struct("!Q")
# With an injected clock the wait for the child looks at its time between slices of this many real seconds.
_SLICE_SECONDS = 0.05


def silence_seconds(policy: RetryPolicy = DEFAULT_POLICY, timeout: float = TIMEOUT_SECONDS) -> float:
    """How long the child may say nothing before it is taken for hung. It speaks after each page it reads, so
    between two words lies at most one request: retried for up to the policy's budget, its last try running up to
    the HTTP timeout; one more timeout of margin for its own work (decoding, sending the view). 270 s by default."""
    return policy.budget + 2 * timeout


class _Silent(Exception):
    """The child said nothing for silence_seconds()."""


def _await_word(fd: int, deadline: float) -> None:
    """Return once `fd` is readable (a word from the child, or its end); _Silent past `deadline` (the clock's
    monotonic seconds). On the real clock the kernel waits for either. An injected clock's time is not the
    kernel's: the pipe is watched in short real slices, and after each quiet one the clock is told of the wait
    (sleep(0): no time passes by it, a test's FakeClock.on_sleep may make it pass), so its deadline is checked
    without this wait racing ahead of a child working in real time."""
    c = clock.current()
    real = isinstance(c, SystemClock)
    while True:
        remaining = deadline - c.monotonic()
        if remaining <= 0:
            raise _Silent
        if select.select([fd], [], [], remaining if real else min(remaining, _SLICE_SECONDS))[0]:
            return
        if not real:
            c.sleep(0)


def fork_available() -> bool:
    """A child can read beside us: Linux (fork is the default start method there; macOS forbids what its system
    libraries do after a fork of a threaded process) with more than one CPU to run on and no other thread, unless
    the user asked for the in-process read, or the clock is an injected one (connector.support.clock: a test's
    FakeClock), whose waits (retries, Retry-After) belong to this process and must be seen by it."""
    return (sys.platform == "linux" and hasattr(os, "fork") and not _wants_in_process()
            and isinstance(clock.current(), SystemClock) and _cores() > 1 and _alone())


def _wants_in_process() -> bool:
    """ASTRO_SCIM_READ_IN_PROCESS set to anything but empty, 0, false, no or off."""
    return os.environ.get(IN_PROCESS_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def _alone() -> bool:
    """No other thread runs in this process. The CLI forks with its main thread alone (drift starts its threads
    after the fork); a program embedding the audit may have threads of its own, and a lock one of them holds at
    the fork (in a library, in OpenSSL) would stay locked in the child forever: a read that hangs instead of
    failing. Then the read stays in-process."""
    return threading.active_count() == 1


def _cores() -> int:
    """The CPUs this process may run on (a container's limit): with one, a child only adds its own cost."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class AstroRead:
    """One Astro read: `AstroRead.start(astro, compare=...)` before the caller's threads start, then `result()`
    (in any thread) and `close()` (always: a `finally`)."""

    def __init__(self, astro: AstroConfig, compare: Callable[[], Compared] | None) -> None:
        self.astro = astro
        self.compare = compare
        self.pid: int | None = None  # the child reading, until reaped
        self._answers: IO[bytes] | None = None  # its end of the pipe
        self._paths: IO[bytes] | None = None  # where the compared paths go to the child (see `start`)
        self._stopped = False  # closed by its owner: an answer cut short is not read again in-process
        self._answered = False  # the child sent its answer and exits by itself

    @classmethod
    def start(cls, astro: AstroConfig, *, compare: Callable[[], Compared] | None = None,
              rebuild: Callable[[tuple[str, ...]], Compared] | None = None, fork: bool | None = None) -> AstroRead:
        """Fork the child that reads (unless `fork` is False or fork_available() says no).

        `compare` says what each user keeps (read_astro's); with `rebuild` (paths -> Compared, e.g.
        reconcile.compared) the child does not evaluate `compare` itself: this process does, in `result`, and
        sends the paths (the mapping it comes from is loaded once, here, where the IdP's read needs it too)."""
        read = cls(astro, compare)
        if not (fork_available() if fork is None else fork):
            return read
        try:
            # Revealed here, where errors are printed: the token is then among this process's masked values (only
            # the child would have revealed it). One that cannot be read is read in-process, where the error meets
            # the caller as it always did.
            astro.token.reveal()
        except ConnectorError:
            return read
        # Our modules both processes need, imported once before the fork. aiohttp is not among them (the engine
        # imports it where it first sends): each process imports it itself, the child on its own core. Imported
        # here instead, it saved the child ~0.2 s of CPU but put its ~0.2 s (two SSL contexts built on import)
        # before the fork, where the parent's first request waits for it (measured: no earlier, often later).
        import connector.astro.engine  # noqa: F401
        rfd, wfd = os.pipe()
        prfd, pwfd = os.pipe() if compare is not None and rebuild is not None else (-1, -1)
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:  # no process left to fork (limits): the read runs in-process
            log.info("astro: cannot fork a reader (%s); reading in-process", exc)
            for fd in (rfd, wfd, prfd, pwfd):
                if fd >= 0:
                    os.close(fd)
            return read
        if pid == 0:  # pragma: no cover - the child's lines run in another process
            os.close(rfd)
            if pwfd >= 0:
                os.close(pwfd)
            _child(wfd, astro, compare if prfd < 0 or rebuild is None else _paths_from(prfd, rebuild), parent)
        os.close(wfd)
        if prfd >= 0:
            os.close(prfd)
            read._paths = os.fdopen(pwfd, "wb")
        # Unbuffered: whether a word waits is asked of the pipe itself (select), never hidden in a read-ahead buffer.
        read.pid, read._answers = pid, os.fdopen(rfd, "rb", buffering=0)
        return read

    @property
    def forked(self) -> bool:
        return self._answers is not None

    def result(self, progress: Progress | None = None) -> AstroView:
        """The view (from the child when there is one, else read here), `progress` told as pages arrive."""
        answers = self._answers
        if answers is None:
            return read_astro(self.astro, progress=progress, compare=self.compare)
        paths, self._paths = self._paths, None
        if paths is not None:  # the child waits for them at its first page of users
            assert self.compare is not None
            try:
                chosen = self.compare().paths  # an error here is the caller's (`close` ends the child)
                # A BrokenPipeError: the child ended before asking for them (an error at its first request, a bad
                # token) and its answer waits below. Not passed on: the CLI would take it for its stdout closed.
                with contextlib.suppress(BrokenPipeError):
                    _send(paths, ("paths", chosen))
            finally:
                with contextlib.suppress(OSError):
                    paths.close()
        silence = silence_seconds()
        try:
            while True:
                try:
                    message = _receive(answers, silence)
                except _Silent:
                    raise self._hung(silence) from None
                except (OSError, ValueError):  # closed under us (`close` from another thread)
                    message = None
                if message is None:
                    if self._stopped:  # its owner stopped it (an error elsewhere): nobody waits for a view
                        raise RuntimeError("the Astro read was stopped")
                    # the child ended without an answer (killed): read again here
                    log.info("astro: the reader process ended without an answer; reading in-process")
                    break
                if message[0] == "progress":
                    if progress is not None:
                        progress(*message[1:])
                    continue
                self._answered = True  # the child ends by itself now
                if message[0] == "view":
                    return _view(message)
                if message[0] == "error":
                    raise message[1]
                break  # "crash": not passed on, read again here (below)
        finally:
            # The child is reaped by `close` (the owner's, after its reconcile: it has long exited by then, where
            # waiting for it here would wait for the kernel to free its memory).
            self._answers = None
            answers.close()
        self.close()
        return read_astro(self.astro, progress=progress, compare=self.compare)

    def _hung(self, silence: float) -> RemoteError:
        """The child said nothing for `silence` seconds: killed (a read that does not answer is never waited for),
        and the read fails, unverified, naming the endpoint. Not read again here: Astro, not answering the child,
        would hold that read as long."""
        self.close()
        log.info("astro: the reader process said nothing for %.0fs; stopped", silence)
        return RemoteError(
            f"not verified: the read of Astro got no answer for {silence:.0f}s (one request's HTTP timeouts and "
            "retries take less); it was stopped", service=SERVICE, endpoint=self.astro.scim_url, code="timeout",
            hint="check that this machine reaches the Astro SCIM URL (network, proxy: HTTPS_PROXY, firewall) and "
                 "Astro's status, then run drift again; nothing was compared",
        )

    def close(self) -> None:
        """End the child if it still runs and reap it, then close our end of the pipe (a thread blocked reading it
        then meets its end). Idempotent; from any thread."""
        self._stopped = True
        paths, self._paths = self._paths, None
        if paths is not None:
            paths.close()
        pid, self.pid = self.pid, None
        if pid is not None:
            try:
                if not self._answered and os.waitpid(pid, os.WNOHANG)[0] == 0:
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:  # already reaped (by a handler of the embedding program)
                pass
        answers, self._answers = self._answers, None
        if answers is not None:
            answers.close()


def _view(message: tuple[Any, ...]) -> AstroView:
    _, scim_url, users, teams, deviations, compared = message
    return AstroView(
        scim_url=scim_url,
        users=[AstroUser(uid, name, active, ext, data, values) for uid, name, active, ext, data, values in users],
        teams=[AstroTeam(tid, name, members, ext) for tid, name, members, ext in teams],
        deviations=deviations, compared=compared)


def _child(wfd: int, astro: AstroConfig, compare: Callable[[], Compared] | None, parent: int
           ) -> None:  # pragma: no cover - runs in the child process
    """Read, send the answer, and end without running the parent's exit handlers or flushing its buffers."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
        _die_with_parent(parent)
        out = os.fdopen(wfd, "wb")
        try:
            view = read_astro(astro, compare=compare,
                              progress=lambda kind, done, total: _send(out, ("progress", kind, done, total)))
        except ConnectorError as exc:
            _send(out, ("error", _bare(exc)))
        except BaseException:
            _send(out, ("crash",))
        else:
            _send(out, ("view", view.scim_url,
                        [(u.id, u.user_name, u.active, u.external_id, u.data, u.values) for u in view.users],
                        [(t.id, t.name, tuple(t.members), t.external_id) for t in view.teams],
                        view.deviations, view.compared))
        out.flush()
    except BaseException:  # noqa: S110 - the parent sees the missing answer and reads in-process
        pass
    finally:
        os._exit(0)


def _paths_from(rfd: int, rebuild: Callable[[tuple[str, ...]], Compared]
                ) -> Callable[[], Compared]:  # pragma: no cover - runs in the child process
    """The child's `compare`: the paths its parent sends (see AstroRead.start), made a Compared here."""
    def compare() -> Compared:
        with os.fdopen(rfd, "rb") as source:
            message = _receive(source)
        if message is None or message[0] != "paths":
            raise RuntimeError("the parent sent no compared paths")  # it failed or stopped: a crash, not passed on
        return rebuild(tuple(message[1]))

    return compare


def _bare(exc: ConnectorError) -> ConnectorError:
    """The error as the CLI shows it, without its chain (the foreign causes need not pickle; nothing shows them)."""
    exc.__cause__ = exc.__context__ = None
    exc.__traceback__ = None
    return exc


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the child process
    """SIGKILL when the parent dies (Linux's PR_SET_PDEATHSIG): the read is the parent's, nobody else wants it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call above (re-parented: to 1, or a subreaper)
        os._exit(0)


def _send(out: IO[bytes], message: tuple[Any, ...]) -> None:
    """One message: its size, how it is encoded, the bytes. The view goes by marshal (plain tuples, strings and
    the JSON values of the compared attributes: what it encodes; twice as fast as pickle, ~0.2 s at 100,000
    users; shared strings, a user's id in its Teams, once each; both ends are the same interpreter, forked);
    errors, which marshal cannot encode, by pickle."""
    if message[0] == "view":
        kind, data = b"m", marshal.dumps(message, 4)
    else:
        kind, data = b"p", pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_HEADER.pack(len(data)) + kind)
    out.write(data)
    if message[0] in ("progress", "paths"):
        out.flush()


def _receive(answers: IO[bytes], silence: float | None = None) -> tuple[Any, ...] | None:
    """The next message, or None at the end of the pipe (a complete message or none: a child killed mid-write
    leaves a partial one, read as the end). With `silence`, _Silent when the pipe stays quiet that long (each
    chunk that arrives starts the wait again: a large view comes in many)."""
    head = _read(answers, _HEADER.size + 1, silence)
    if len(head) < _HEADER.size + 1:
        return None
    (size,) = _HEADER.unpack(head[:-1])
    data = _read(answers, size, silence)
    if len(data) < size:
        return None
    message = marshal.loads(data) if head[-1:] == b"m" else pickle.loads(data)
    return message if isinstance(message, tuple) and message else None


def _read(answers: IO[bytes], size: int, silence: float | None) -> bytes | bytearray:
    """`size` bytes, fewer only at the end of the pipe. An unbuffered pipe answers what it holds (64 KiB at most
    on Linux), so the bytes are gathered into one buffer (a view of 100,000 users is tens of MB: not copied
    again); with `silence`, each wait for more is bounded (see _await_word)."""
    if silence is None:
        return answers.read(size) or b""
    fd = answers.fileno()
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        _await_word(fd, clock.current().monotonic() + silence)
        # Into the buffer, not os.read(fd, size - got): that allocates what is still missing (tens of MB) for
        # each chunk of at most 64 KiB.
        n = os.readv(fd, [view[got:]])
        if not n:
            return buf[:got]
        got += n
    return buf
