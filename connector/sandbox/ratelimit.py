"""Fixed-window request budgets for the emulators that announce rate limits (Graph, the emulated Astro).

Okta's per-family, per-minute budget lives in okta/api.py (RateLimiter) because its headers are Okta's own. This
one counts a cost per key (an app, an organization) in fixed windows of `window_s` seconds on an injectable clock,
so a test can move time instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """One request's view of its window: the limit, what is left after it, seconds until the window resets, and
    whether it was allowed (a refused request costs nothing)."""

    limit: int
    remaining: int
    reset_s: int
    allowed: bool
    used: int

    @property
    def used_fraction(self) -> float:
        return self.used / self.limit if self.limit else 1.0


class WindowLimiter:
    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._window = -1.0
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, cost: int = 1) -> Budget:
        now = self.clock()
        start = math.floor(now / self.window_s) * self.window_s
        with self._lock:
            if start != self._window:
                self._window, self._used = start, {}
            used = self._used.get(key, 0)
            allowed = used + cost <= self.limit
            if allowed:
                used += cost
                self._used[key] = used
        reset = max(1, math.ceil(start + self.window_s - now))
        return Budget(self.limit, max(self.limit - used, 0), reset, allowed, used)
