"""One retry / rate-limit / TLS policy shared by every client we drive (SDK calls and raw httpx alike).

The SDKs retry some failures themselves (okta: 429/503/504 with rate-limit headers; msgraph: 429/503/504 with
Retry-After), but not all (okta never retries a 500 or a dropped connection). `retry_async` wraps whole idempotent
operations so every provider converges the same way under faults.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from connector.errors import AuthError, RemoteError

log = logging.getLogger("connector.http")
T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 30.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)


DEFAULT_POLICY = RetryPolicy()


def retry_after_seconds(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """How long the server asked us to wait: Retry-After (seconds or HTTP date) or Okta's X-Rate-Limit-Reset."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    value = lower.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, parsed.timestamp() - (now or time.time()))
    reset = lower.get("x-rate-limit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - (now or time.time())) + 0.05
        except ValueError:
            return None
    return None


def is_retryable(exc: BaseException, policy: RetryPolicy = DEFAULT_POLICY) -> bool:
    if isinstance(exc, AuthError):
        return False
    if isinstance(exc, RemoteError):
        return exc.status is None or exc.status in policy.statuses
    import httpx

    return isinstance(exc, httpx.TransportError | ConnectionError | asyncio.TimeoutError)


def backoff(attempt: int, policy: RetryPolicy, hinted: float | None = None) -> float:
    if hinted is not None:
        return min(hinted, policy.max_delay)
    # Full jitter: spreads retries of parallel workers apart.
    return random.uniform(0, min(policy.max_delay, policy.base_delay * (2**attempt)))


async def retry_async(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    retry_on: Callable[[BaseException], bool] | None = None,
) -> T:
    """Run an idempotent async operation, retrying transient failures with backoff.

    Non-idempotent creates must re-read state before calling again (the caller's job), so a retried POST never
    makes a duplicate.
    """
    check = retry_on or (lambda e: is_retryable(e, policy))
    for attempt in range(policy.attempts):
        try:
            return await operation()
        except Exception as exc:
            if attempt == policy.attempts - 1 or not check(exc):
                raise
            hinted = retry_after_seconds(getattr(exc, "headers", None))
            delay = backoff(attempt, policy, hinted)
            log.info("%s failed (%s); retry %d in %.2fs", what, exc, attempt + 1, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


class RateBudget:
    """Okta-style budget from X-Rate-Limit-Remaining/Reset: slow down before the limit instead of hitting 429."""

    def __init__(self, reserve: int = 2) -> None:
        self.reserve = reserve
        self.remaining: int | None = None
        self.reset_at: float = 0.0

    def observe(self, headers: Mapping[str, str] | None) -> None:
        if not headers:
            return
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            if "x-rate-limit-remaining" in lower:
                self.remaining = int(lower["x-rate-limit-remaining"])
            if "x-rate-limit-reset" in lower:
                self.reset_at = float(lower["x-rate-limit-reset"])
        except ValueError:
            return

    async def wait(self) -> None:
        if self.remaining is not None and self.remaining <= self.reserve:
            delay = self.reset_at - time.time()
            if 0 < delay < 65:
                log.info("rate limit nearly used (%d left); waiting %.1fs for the reset", self.remaining, delay)
                await asyncio.sleep(delay)
            self.remaining = None
