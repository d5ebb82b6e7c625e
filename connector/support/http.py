"""The one retry / rate-limit policy shared by every client we drive (SDK calls and raw httpx/aiohttp alike).

It is the only retry layer: the Graph client is built without kiota's RetryHandler, the okta SDK's rate-limit
retry is set to 0, aiohttp's resend of a dropped idempotent request is turned off (without_transport_retry), and
httpx and scim2-client do not retry by themselves (tests/test_http.py counts the requests per call against the
sandbox). `retry_async` wraps whole idempotent operations so every provider
converges the same way under faults.

The policy is bounded twice:
- failures (5xx, dropped connections, timeouts) by a number of attempts: a host that refuses connections is
  reported within seconds;
- throttling (429) by time: the service is not failing, it says when to come back (Retry-After, or Okta's
  X-Rate-Limit-Reset), and we come back then for as long as the call's time budget lasts. This is what rides
  out a sustained share of 429s that a fixed number of attempts would not.
A wait the server asks for is honoured in full, even past max_delay, when it fits in the budget; when it does
not, the call gives up at once rather than hammer the service early.

Every wait goes through connector.support.clock, so tests run all of this with virtual time.
"""

from __future__ import annotations

import email.utils
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

from connector import output
from connector.errors import AuthError, RemoteError
from connector.support import clock as clocks
from connector.support.clock import Clock

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("connector.http")
T = TypeVar("T")
S = TypeVar("S")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
THROTTLED = 429
# A Retry-After beyond this is treated as this: the budget refuses it anyway, and float() of an absurd number of
# digits must not overflow.
MAX_HINT_SECONDS = 86_400.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries for a failing call (5xx, connection errors); 429s are bounded by `budget` instead
    base_delay: float = 0.2  # the first backoff's upper bound; doubles per failure (full jitter)
    max_delay: float = 30.0  # cap of a computed backoff (a server's own Retry-After may exceed it)
    # Seconds a call may spend, first try to last retry (no retry would end after it): two of Okta's one-minute
    # rate-limit windows plus margin, as parallel workers can use up the new window before our retry gets in.
    budget: float = 150.0
    min_throttle_delay: float = 1.0  # never retry a 429 sooner than this ("Retry-After: 0" must not spin)
    statuses: frozenset[int] = field(default=RETRY_STATUSES)


DEFAULT_POLICY = RetryPolicy()


def _digits(value: str) -> int | None:
    """A non-negative integer written as 1*DIGIT (RFC 9110's delay-seconds, Okta's epoch seconds), else None."""
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 15:  # int() of thousands of digits even raises
        return None
    return int(text)


def _delta_seconds(value: str) -> float | None:
    seconds = _digits(value)
    return None if seconds is None else min(float(seconds), MAX_HINT_SECONDS)


def _http_date(value: str) -> float | None:
    """RFC 9110 HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms) as epoch seconds, or None."""
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # asctime carries no zone; HTTP dates are always GMT
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date, RFC 9110 10.2.3); None if absent or
    malformed (a malformed header is ignored: the policy's own backoff applies)."""
    if value is None:
        return None
    seconds = _delta_seconds(value)
    if seconds is not None:
        return seconds
    when = _http_date(value)
    if when is None:
        return None
    return min(max(0.0, when - now), MAX_HINT_SECONDS)


def retry_after_seconds(
    headers: Mapping[str, str] | None, *, rate_limit_reset: bool = False, clock: Clock | None = None
) -> float | None:
    """How long the server asked us to wait: Retry-After, else (with rate_limit_reset) Okta's X-Rate-Limit-Reset.

    X-Rate-Limit-Reset is the epoch second the rate-limit window resets; it is measured against the answer's own
    Date header when there is one (Okta's clock, so our clock's skew does not matter), else against ours.
    """
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    now = (clock or clocks.current()).time()
    if "retry-after" in lower:
        hinted = parse_retry_after(lower["retry-after"], now=now)
        if hinted is not None:
            return hinted
    if rate_limit_reset and "x-rate-limit-reset" in lower:
        reset = _digits(lower["x-rate-limit-reset"])
        if reset is None:
            return None
        server_now = _http_date(lower["date"]) if "date" in lower else None
        return min(max(0.0, reset - (server_now if server_now is not None else now)), MAX_HINT_SECONDS)
    return None


def without_transport_retry(session: S) -> S:
    """Turn off aiohttp's own retry of an idempotent request whose connection dropped (RFC 9112 9.3.1; aiohttp
    >= 3.10 resends once, on any dropped connection, not only a stale kept-alive one). Ours is the one retry
    layer: a drop becomes one failure of the policy, retried after its backoff. aiohttp has no public switch;
    its own test client turns the same attribute off. tests/test_http.py counts requests, so a rename shows."""
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False  # aiohttp's private switch, see above
    return session


SEND_WAIT_SECONDS = 0.25  # `written` never waits longer than this, whatever a request is stuck on


def sent_trace() -> Any:
    """An aiohttp TraceConfig that sets a request's `trace_request_ctx` (an asyncio.Event, when one is given) once
    its headers are written: what `written` waits for. A cursor reader starts the next page's request as a task,
    which only runs at the event loop's next turn; waiting until it is on the wire before decoding the current
    page makes the decoding overlap the round trip instead of delaying it (~60 ms a link of an Okta chain)."""
    import asyncio

    import aiohttp

    async def headers_sent(session: Any, context: Any, params: Any) -> None:
        if isinstance(context.trace_request_ctx, asyncio.Event):
            context.trace_request_ctx.set()

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers_sent)
    return trace


async def written(sent: asyncio.Event, timeout: float = SEND_WAIT_SECONDS) -> None:
    """Until the request behind `sent` is on the wire (see `sent_trace`; its sender also sets `sent` when the
    request fails before that), never longer than `timeout`."""
    import asyncio

    try:
        await asyncio.wait_for(sent.wait(), timeout)
    except TimeoutError:
        pass


async def ask_ahead(fetch: Callable[..., Awaitable[T]], *args: Any, sent: asyncio.Event | None = None,
                    **kwargs: Any) -> asyncio.Future[T]:
    """Start `fetch(*args, sent=..., **kwargs)` (the next page of a cursor chain; `sent` is the Event its request
    sets once written, see `sent_trace`: a new one unless the caller brings its own) as a task, and return it once
    that request is on the wire: what the caller does with the current page then overlaps the round trip."""
    import asyncio

    if sent is None:
        sent = asyncio.Event()
    task = asyncio.ensure_future(fetch(*args, sent=sent, **kwargs))
    try:
        await written(sent)
    except BaseException:
        abandon(task)  # the caller was cancelled while waiting: nobody will hold the task to drop it
        raise
    return task


def retrieved(future: asyncio.Future[Any]) -> None:
    """A done-callback: the future's error is nobody's news (asyncio would log it as never retrieved)."""
    if not future.cancelled():
        future.exception()


def abandon(task: asyncio.Future[Any] | None) -> None:
    """A page asked for ahead that is no longer wanted (its reader stopped early or failed): cancelled, and its
    error, if it already has one, retrieved."""
    if task is not None:
        task.add_done_callback(retrieved)
        task.cancel()


def is_retryable(exc: BaseException, policy: RetryPolicy = DEFAULT_POLICY) -> bool:
    if isinstance(exc, AuthError):
        return False
    if isinstance(exc, RemoteError):
        return exc.status is None or exc.status in policy.statuses
    import asyncio

    import httpx

    return isinstance(exc, httpx.TransportError | ConnectionError | asyncio.TimeoutError)


def backoff(failures: int, policy: RetryPolicy) -> float:
    """The wait before retry number `failures` (1-based) when the server gave no hint."""
    # Full jitter: spreads retries of parallel workers apart.
    return random.uniform(0, min(policy.max_delay, policy.base_delay * (2 ** (failures - 1))))


def _throttled(exc: BaseException) -> bool:
    return isinstance(exc, RemoteError) and exc.status == THROTTLED


async def retry_async(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    retry_on: Callable[[BaseException], bool] | None = None,
    clock: Clock | None = None,
) -> T:
    """Run an idempotent async operation, retrying transient failures with backoff (see the module doc).

    Non-idempotent creates must re-read state before calling again (the caller's job), so a retried POST never
    makes a duplicate.
    """
    clk = clock or clocks.current()
    check = retry_on or (lambda e: is_retryable(e, policy))
    started = clk.monotonic()
    failures = 0
    throttles = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not check(exc):
                raise
            if _throttled(exc):
                throttles += 1
            else:
                failures += 1
                if failures >= policy.attempts:
                    _give_up_hint(exc, f"through {failures} attempts")
                    raise
            hinted = exc.retry_after if isinstance(exc, RemoteError) else None
            if _throttled(exc):
                # Never sooner than min_throttle_delay: "Retry-After: 0" (or a reset already past) on every 429
                # would otherwise spin until the budget is gone.
                delay = max(policy.min_throttle_delay, hinted if hinted is not None else backoff(throttles, policy))
            else:
                delay = hinted if hinted is not None else backoff(failures, policy)
            spent = clk.monotonic() - started
            if spent + delay > policy.budget:
                if isinstance(exc, RemoteError) and exc.hint is None and hinted is not None:
                    exc.hint = (f"the service asked to wait {hinted:.0f}s, past the {policy.budget:.0f}s this tool "
                                "waits per call; try again later")
                _give_up_hint(exc, f"for {spent:.0f}s of retries")
                log.info("%s failed (%s); no retry: %.1fs spent, %.1fs more would pass the %.0fs budget",
                         what, exc, spent, delay, policy.budget)
                raise
            log.info("%s failed (%s); retry in %.2fs", what, exc, delay)
            why = "rate limited (HTTP 429)" if _throttled(exc) else _failure(exc)
            announce_wait(clk, f"{what}: {why}; retrying in {delay:.0f}s ({spent:.0f}s of retries so far, at most "
                               f"{policy.budget:.0f}s)", delay, waited=spent)
            await clk.asleep(delay)


# A wait a user notices (a command silent for seconds looks hung): said on stderr, unless --quiet. Concurrent calls
# meet the same 429s, so at most one such line per NOTICE_EVERY seconds of the clock in use (a longer wait than
# that is always said: it is news).
NOTICE_AFTER = 5.0
NOTICE_EVERY = 10.0
_last_notice: tuple[int, float] | None = None  # (id of the clock, its monotonic time) of the last line


def announce_wait(clk: Clock, text: str, delay: float, *, waited: float = 0.0) -> None:
    """Tell the user the tool is waiting (`text`: why, and for how long) when this wait, or the call's waits so far
    with it (`waited`), reach NOTICE_AFTER seconds."""
    global _last_notice
    if delay + waited < NOTICE_AFTER:
        return
    now = clk.monotonic()
    last = _last_notice
    if delay < NOTICE_EVERY and last is not None and last[0] == id(clk) and 0 <= now - last[1] < NOTICE_EVERY:
        return
    _last_notice = (id(clk), now)
    output.warn(text)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, RemoteError) and exc.status is not None:
        return f"HTTP {exc.status}"
    return "no answer" if isinstance(exc, RemoteError) else type(exc).__name__


def _give_up_hint(exc: BaseException, how_long: str) -> None:
    """The hint of a call given up on, when the error has none: a service that kept answering 5xx or 429 is an
    outage or someone else's load on its side, which no setting here fixes; say so rather than nothing."""
    if not isinstance(exc, RemoteError) or exc.hint is not None or exc.status is None:
        return
    if exc.status == THROTTLED:
        exc.hint = (f"the service kept answering 429 (rate limited) {how_long}: other clients may be using its rate "
                    "limit; try again later")
    elif exc.status >= 500:
        exc.hint = (f"the service kept failing (HTTP {exc.status}) {how_long}: a fault on its side, not in your "
                    "setup; try again later, and check the service's status page if it lasts")


class RateBudget:
    """Okta-style budget from X-Rate-Limit-Remaining/Reset: slow down before the limit instead of hitting 429."""

    def __init__(self, reserve: int = 2, *, clock: Clock | None = None) -> None:
        self.reserve = reserve
        self.remaining: int | None = None
        self.reset_in: float | None = None  # seconds from `observed_at` to the reset, by the server's clock
        self.observed_at = 0.0
        self._clock = clock

    @property
    def clock(self) -> Clock:
        return self._clock or clocks.current()

    def observe(self, headers: Mapping[str, str] | None) -> None:
        if not headers:
            return
        lower = {k.lower(): v for k, v in headers.items()}
        if "x-rate-limit-remaining" in lower:
            remaining = _digits(lower["x-rate-limit-remaining"])
            if remaining is None:
                return
            self.remaining = remaining
        if "x-rate-limit-reset" in lower:
            self.reset_in = retry_after_seconds(
                {k: v for k, v in lower.items() if k != "retry-after"}, rate_limit_reset=True, clock=self.clock
            )
            self.observed_at = self.clock.monotonic()

    async def wait(self) -> None:
        if self.remaining is not None and self.remaining <= self.reserve:
            delay = (self.reset_in or 0.0) - (self.clock.monotonic() - self.observed_at)
            if 0 < delay < 65:
                log.info("rate limit nearly used (%d left); waiting %.1fs for the reset", self.remaining, delay)
                announce_wait(self.clock, f"rate limit nearly used ({self.remaining} requests left in this window); "
                                          f"waiting {delay:.0f}s for it to reset", delay)
                await self.clock.asleep(delay)
            self.remaining = None
