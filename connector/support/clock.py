"""The clock every wait in the tool goes through: retry backoff, Retry-After, rate budgets, pacing.

Why one module-level clock rather than a parameter: the code that waits sits in five clients (Okta, Graph, Astro
SCIM raw and bulk, Astro platform) and the pacer, reached from the CLI through providers and commands; threading a
`clock=` argument through all of them would widen every constructor for the sake of tests. Instead the waiting
code asks `current()` at the moment it waits (never at import or construction), so replacing the clock with
`use(FakeClock())` takes effect everywhere, including inside the CLI run in-process by the tests and inside the
providers' worker threads. Code that wants its own clock (unit tests of one component) still passes `clock=`.

The fake advances virtual time when asked to sleep and returns at once: throttling and unreachable-host tests
run the real retry code with no real waits, and can assert how long the tool *would* have waited.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: elapsed times and deadlines."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch: for absolute server times (HTTP-date, X-Rate-Limit-Reset)."""
        ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Virtual time: sleeping advances it at once. For tests and benchmarks; thread-safe.

    Concurrent sleepers each advance the clock by their own delay, so virtual time overestimates what parallel
    waits would take; totals are an upper bound, never an underestimate.
    """

    def __init__(self, *, wall: float | None = None) -> None:
        self._now = 0.0
        # Starts at the real wall time: absolute server times (the sandbox's X-Rate-Limit-Reset, HTTP dates)
        # come from the real clock, and must read as "about now", not decades away.
        self._wall0 = time.time() if wall is None else wall
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        # Called after each sleep with the virtual time reached: a test makes "meanwhile" happen here (a Team
        # pushed while apply waits for it) at a chosen virtual moment, without a real timer.
        self.on_sleep: Callable[[float], None] | None = None

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        with self._lock:
            return self._wall0 + self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)
            self.sleeps.append(seconds)
            now = self._now
        if self.on_sleep is not None:
            self.on_sleep(now)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still a suspension point: other tasks run, as they would while really waiting

    @property
    def slept(self) -> float:
        with self._lock:
            return sum(self.sleeps)


_current: Clock = SystemClock()
C = TypeVar("C", bound=Clock)


def current() -> Clock:
    """The clock in use now (the real one unless a test replaced it with `use`)."""
    return _current


@contextmanager
def use(clock: C) -> Iterator[C]:
    """Make `clock` the process-wide clock for the duration of the block."""
    global _current
    previous = _current
    _current = clock
    try:
        yield clock
    finally:
        _current = previous
