"""Progress of long operations (apply, provision, push-groups, drift, init's discovery), always on stderr.

Three ways to show it, one interface. A command gets one from `connector.output.progress()` and passes it (or a
stage's `update`/`advance`, as a plain callback) down to the layers that do the work; those never import rich:

    Bar      stderr is a terminal: a live rich bar per running stage (counts, rate, ETA), then one summary line
    Lines    stderr is not a terminal (CI logs, pipes): one plain line per stage when it ends, never a redraw
    Silent   --quiet: nothing

A stage is a `with progress.stage("apply okta", total=40, unit="changes") as s:` block; `s.advance()` after each
item, or `s.update(done, total)` when the worker knows both. Stages may run at once in several threads (drift
reads the IdP and Astro side by side). Every time read goes through the injectable clock
(connector/support/clock.py): tests see rates and ETAs of a fake clock, with no real wait.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, TYPE_CHECKING, Protocol

from connector.support import clock
from connector.support.redact import redact

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import ProgressColumn, TaskID

Count = Callable[[int, "int | None"], None]  # (done, total when known): a stage's update, as a callback


class Stage(Protocol):
    def update(self, done: int, total: int | None = None) -> None:
        """`done` items so far (and the total, once known)."""
        ...

    def advance(self, step: int = 1) -> None:
        """`step` more items done."""
        ...


class Progress(Protocol):
    def stage(self, label: str, total: int | None = None, unit: str = "") -> AbstractContextManager[Stage]:
        """A stage of work named `label`, of `total` items (None: not known yet) counted in `unit`."""
        ...


class _Count:
    """What every stage counts, thread-safe; `changed` is told of each change (the live bar)."""

    def __init__(self, total: int | None, changed: Callable[[int, int | None], None] | None = None) -> None:
        self.done = 0
        self.total = total
        self._lock = threading.Lock()
        self._changed = changed

    def update(self, done: int, total: int | None = None) -> None:
        with self._lock:
            self.done = done
            if total is not None:
                self.total = total
            done, total = self.done, self.total
        if self._changed is not None:
            self._changed(done, total)

    def advance(self, step: int = 1) -> None:
        with self._lock:
            self.done += step
            done, total = self.done, self.total
        if self._changed is not None:
            self._changed(done, total)


def summary(label: str, done: int, total: int | None, unit: str, seconds: float, *, failed: bool = False) -> str:
    """The one line a stage leaves: 'apply okta: 40/40 changes, done in 3.2 s (12.5/s)'."""
    counted = f"{done}/{total}" if total is not None else str(done) if done else ""
    # Nothing counted (a stage that failed, or never learnt its total): no unit either, which alone read as
    # "okta group push: groups, stopped after 0.5 s".
    what = f"{counted} {unit}".strip() if counted else ""
    end = f"stopped after {seconds:.1f} s" if failed else f"done in {seconds:.1f} s"
    rate = f" ({done / seconds:.1f}/s)" if done and seconds > 0 and not failed else ""
    return f"{label}: {what + ', ' if what else ''}{end}{rate}"


class Silent:
    """--quiet: stages are counted (a caller may read them) and never shown."""

    @contextmanager
    def stage(self, label: str, total: int | None = None, unit: str = "") -> Iterator[Stage]:
        yield _Count(total)


class Lines:
    """Not a terminal: one line per stage, written when it ends (a log file or CI console never sees a redraw)."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        self._write = write or _stderr_line
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, label: str, total: int | None = None, unit: str = "") -> Iterator[Stage]:
        with _timed(label, _Count(total), unit, self._line) as count:
            yield count

    def _line(self, line: str) -> None:
        with self._lock:
            self._write(redact(line))


@contextmanager
def _timed(label: str, count: _Count, unit: str, end: Callable[[str], None]) -> Iterator[Stage]:
    """A stage's body, timed on the project clock; `end` gets its summary line however it ends (failed or not)."""
    clk = clock.current()
    started = clk.monotonic()
    failed = False
    try:
        yield count
    except BaseException:
        failed = True
        raise
    finally:
        end(summary(label, count.done, count.total, unit, clk.monotonic() - started, failed=failed))


def _stderr_line(line: str) -> None:
    stream: IO[str] = sys.stderr
    stream.write(line + "\n")
    stream.flush()


class Bar:
    """A terminal: one live rich bar per running stage (label, bar, done/total, rate, ETA, elapsed).

    The live display runs only while a stage does, so a question asked between stages (apply's confirmation)
    is not drawn over. Lines printed to stdout meanwhile go above the bar when stdout is the same terminal
    (rich redirects it); a redirected stdout is left alone, so a file or pipe gets exactly what it would without
    the bar. A finished stage leaves its summary line. `refresh_each_update` draws on every update instead of
    on rich's timer (deterministic output: tests).
    """

    def __init__(self, console: Console, *, refresh_each_update: bool = False) -> None:
        self._console = console
        self._manual = refresh_each_update
        self._lock = threading.Lock()
        self._running = 0
        self._bar: RichProgress | None = None

    def _progress(self) -> RichProgress:
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        clk = clock.current()
        return RichProgress(
            TextColumn("{task.description}"), BarColumn(), *_columns(), TimeElapsedColumn(),
            console=self._console, transient=True, get_time=clk.monotonic, auto_refresh=not self._manual,
            redirect_stdout=_stdout_is_terminal(), redirect_stderr=False)

    def _start(self, label: str, total: int | None, unit: str) -> tuple[RichProgress, TaskID]:
        with self._lock:
            if self._bar is None:
                self._bar = self._progress()
                self._bar.start()
            self._running += 1
            bar = self._bar
            return bar, bar.add_task(redact(label), total=total, unit=unit)

    def _end(self, bar: RichProgress, task: TaskID, line: str) -> None:
        with self._lock:
            bar.remove_task(task)
            self._running -= 1
            if not self._running:
                bar.stop()
                self._bar = None
            bar.console.print(redact(line), style="dim", markup=False, highlight=False)

    @contextmanager
    def stage(self, label: str, total: int | None = None, unit: str = "") -> Iterator[Stage]:
        bar, task = self._start(label, total, unit)

        def changed(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total, refresh=self._manual)

        with _timed(label, _Count(total, changed), unit, lambda line: self._end(bar, task, line)) as count:
            yield count


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced by something with no isatty
        return False


def rate_and_eta(done: float, total: float | None, elapsed: float | None) -> tuple[float | None, float | None]:
    """Items per second over the whole stage, and the seconds left at that pace (None: not known yet).

    The whole stage's average, not rich's recent-samples speed: work here comes in bursts (concurrent pages
    arriving together, an apply waiting on the IdP), and a burst's speed promised an ETA that then stood still.
    """
    if not done or not elapsed or elapsed <= 0:
        return None, None
    rate = done / elapsed
    return rate, None if total is None else max(0.0, total - done) / rate


def _columns() -> tuple[ProgressColumn, ...]:
    """Counts with their unit ("12/40 changes", "12 users" before the total is known), the rate and the ETA;
    empty for a stage that counts nothing (a read with no total: its elapsed time says enough). Built on first
    use: rich loads only for a bar."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    def counted(task: Task) -> bool:
        return task.total is not None or task.completed > 0 or bool(task.fields.get("unit"))

    class CountColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            if not counted(task):
                return Text("")
            done = f"{task.completed:.0f}" + ("" if task.total is None else f"/{task.total:.0f}")
            return Text(f"{done} {task.fields.get('unit', '')}".rstrip())

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            rate, _ = rate_and_eta(task.completed, task.total, task.elapsed)
            if rate is None:
                return Text("-/s" if counted(task) else "")
            return Text(f"{rate:.1f}/s" if rate < 100 else f"{rate:.0f}/s")

    class EtaColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            _, left = rate_and_eta(task.completed, task.total, task.elapsed)
            if left is None:
                return Text("eta -:--:--" if task.total is not None else "")
            seconds = round(left)
            return Text(f"eta {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")

    return CountColumn(), RateColumn(), EtaColumn()
