"""The one retry layer (connector.support.http): Retry-After parsing, the attempts/time budget, and, against the
sandbox, exactly the policy's number of requests per call for every client (no SDK or transport retries nested
inside ours). Everything runs on the autouse fake clock (tests/conftest.py): no test here waits for real."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from connector.config.load import ProjectConfig, load_config
from connector.errors import AuthError, RemoteError
from connector.sandbox.core import Sandbox
from connector.sandbox.faults import FaultConfig
from connector.support.clock import FakeClock
from connector.support.http import (
    DEFAULT_POLICY,
    RateBudget,
    RetryPolicy,
    parse_retry_after,
    retry_after_seconds,
    retry_async,
)

NOW = 1_800_000_000.0  # a fixed wall time for the header arithmetic


# -- Retry-After (RFC 9110 10.2.3) ----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "seconds"), [
    ("0", 0.0),
    ("7", 7.0),
    (" 120 ", 120.0),
    (formatdate(NOW + 30, usegmt=True), 30.0),  # IMF-fixdate
    ("Friday, 15-Jan-27 08:00:30 GMT", None),  # RFC 850 form: resolved below against its own timestamp
    (formatdate(NOW - 30, usegmt=True), 0.0),  # a date in the past: retry now
    ("99999999999", 86_400.0),  # absurdly long: capped (the budget refuses it anyway)
])
def test_retry_after_delta_seconds_and_http_dates(value: str, seconds: float | None) -> None:
    if seconds is None:
        from email.utils import parsedate_to_datetime

        seconds = parsedate_to_datetime(value).timestamp() - NOW
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


def test_retry_after_in_asctime_form_is_read_as_gmt() -> None:
    import time

    text = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(NOW + 5))  # asctime: no zone, always GMT
    assert parse_retry_after(text, now=NOW) == pytest.approx(5.0)


@pytest.mark.parametrize("value", [
    "", "soon", "-5", "1.5", "1e3", "５", "Sun, 99 Foo 2026 25:61:00 GMT", "9" * 5000, "\x00", None,
])
def test_malformed_retry_after_is_ignored_never_a_crash(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None
    assert retry_after_seconds({"Retry-After": value} if value is not None else None) is None


def test_okta_rate_limit_reset_counts_from_the_answers_own_date() -> None:
    clock = FakeClock(wall=NOW + 500)  # our clock is 500 s off: the server's Date is what counts
    headers = {"X-Rate-Limit-Reset": str(int(NOW) + 42), "Date": formatdate(NOW, usegmt=True)}
    assert retry_after_seconds(headers, rate_limit_reset=True, clock=clock) == pytest.approx(42.0)
    # Without a Date header, our own clock.
    assert retry_after_seconds({"X-Rate-Limit-Reset": str(int(NOW) + 42)}, rate_limit_reset=True,
                               clock=FakeClock(wall=NOW)) == pytest.approx(42.0)
    # Okta sends the reset on every answer: it is a wait hint only where the caller says so (429).
    assert retry_after_seconds(headers, clock=clock) is None
    # Retry-After wins when both are there; a malformed reset is ignored.
    assert retry_after_seconds({**headers, "retry-after": "3"}, rate_limit_reset=True, clock=clock) == 3.0
    assert retry_after_seconds({"X-Rate-Limit-Reset": "soon"}, rate_limit_reset=True, clock=clock) is None


# -- the policy -------------------------------------------------------------------------------------------------

@dataclass
class Scripted:
    """An operation that raises the given errors in turn, then returns "ok"."""

    errors: list[BaseException]
    calls: int = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def run_retry(op: Callable[[], Awaitable[str]], clock: FakeClock, policy: RetryPolicy = DEFAULT_POLICY) -> str:
    return asyncio.run(retry_async(op, what="test", policy=policy, clock=clock))


def test_failures_are_bounded_by_attempts() -> None:
    clock = FakeClock()
    op = Scripted([RemoteError("boom", status=503) for _ in range(10)])
    with pytest.raises(RemoteError):
        run_retry(op, clock)
    assert op.calls == DEFAULT_POLICY.attempts and len(clock.sleeps) == DEFAULT_POLICY.attempts - 1
    # Backoff without a hint: full jitter under base * 2^n.
    assert all(0 <= s <= DEFAULT_POLICY.base_delay * 2 ** i for i, s in enumerate(clock.sleeps))


def test_throttling_is_ridden_out_past_the_attempts_for_as_long_as_the_budget_lasts() -> None:
    clock = FakeClock()
    burst = 3 * DEFAULT_POLICY.attempts  # far more 429s in a row than a count of attempts would survive
    op = Scripted([RemoteError("slow down", status=429, retry_after=2.0) for _ in range(burst)])
    assert run_retry(op, clock) == "ok"
    assert op.calls == burst + 1 and clock.sleeps == [2.0] * burst  # each wait as long as the server asked


def test_throttling_gives_up_when_the_budget_is_spent() -> None:
    clock = FakeClock()
    policy = RetryPolicy(budget=10.0)
    op = Scripted([RemoteError("slow down", status=429, retry_after=1.0) for _ in range(100)])
    with pytest.raises(RemoteError):
        run_retry(op, clock, policy)
    assert op.calls == 11 and clock.slept == 10.0  # 1 + 10 waits of 1 s: none would end past the budget


def test_a_wait_longer_than_the_budget_is_not_made_and_the_error_says_why() -> None:
    clock = FakeClock()
    op = Scripted([RemoteError("slow down", status=429, retry_after=3600.0)])
    with pytest.raises(RemoteError) as info:
        run_retry(op, clock)
    assert op.calls == 1 and clock.sleeps == []
    assert info.value.hint and "asked to wait 3600s" in info.value.hint


def test_a_server_hint_longer_than_max_delay_is_honoured_in_full() -> None:
    clock = FakeClock()
    op = Scripted([RemoteError("unavailable", status=503, retry_after=45.0)])
    assert run_retry(op, clock) == "ok"
    assert clock.sleeps == [45.0]  # max_delay (30 s) caps our own backoff, not the server's word


def test_retry_after_zero_on_every_429_does_not_spin() -> None:
    clock = FakeClock()
    policy = RetryPolicy(budget=5.0)
    op = Scripted([RemoteError("slow down", status=429, retry_after=0.0) for _ in range(100)])
    with pytest.raises(RemoteError):
        run_retry(op, clock, policy)
    assert clock.sleeps == [policy.min_throttle_delay] * 5


def test_waits_a_user_would_notice_are_said_on_stderr_at_most_once_per_ten_seconds(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Twelve 429s asking for 2 s each: 24 s of silence, which looked hung. Said once the waits reach 5 s (at 4 s
    # spent), then at most every 10 s (at 14 s): concurrent calls meet the same 429s and must not flood stderr.
    op = Scripted([RemoteError("slow down", status=429, retry_after=2.0) for _ in range(12)])
    assert run_retry(op, FakeClock()) == "ok"
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 2, err
    assert all("test: rate limited (HTTP 429); retrying in 2s" in line and "at most 150s" in line for line in lines)
    assert "(4s of retries so far" in lines[0] and "(14s of retries so far" in lines[1]

    # One long wait is said at once; waits that stay short are not; --quiet says none.
    assert run_retry(Scripted([RemoteError("down", status=503, retry_after=30.0)]), FakeClock()) == "ok"
    assert "test: HTTP 503; retrying in 30s" in capsys.readouterr().err
    assert run_retry(Scripted([RemoteError("slow", status=429, retry_after=1.0)] * 4), FakeClock()) == "ok"
    assert capsys.readouterr().err == ""
    from connector import output

    was = output.set_quiet(True)
    try:
        assert run_retry(Scripted([RemoteError("down", status=503, retry_after=30.0)]), FakeClock()) == "ok"
    finally:
        output.set_quiet(was)
    assert capsys.readouterr().err == ""


def test_a_throttled_drift_says_why_it_waits_and_still_ends_clean(
        okta_applied: Path, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    from connector.cli import main
    from connector.sandbox.faults import FaultRule

    # Eight 429s without a reset header: backed off at least 1 s each, past the 5 s a user notices.
    rule = sandbox.fail("okta", FaultRule("GET", r"/api/v1/apps/[^/]+/users", status=429, times=8))
    capsys.readouterr()
    assert main(["drift", "-c", str(okta_applied)]) == 0
    err = capsys.readouterr().err
    assert rule.hits == 8
    assert "okta GET /api/v1/apps/" in err and "rate limited (HTTP 429); retrying in" in err, err


def test_what_is_not_transient_is_not_retried() -> None:
    clock = FakeClock()
    for error in (AuthError("no", status=401), RemoteError("bad", status=400), ValueError("bug")):
        op = Scripted([error])
        with pytest.raises(type(error)):
            run_retry(op, clock)
        assert op.calls == 1
    assert clock.sleeps == []


def test_rate_budget_waits_for_the_reset_on_the_clock() -> None:
    clock = FakeClock(wall=NOW)
    budget = RateBudget(reserve=2, clock=clock)
    budget.observe({"X-Rate-Limit-Remaining": "1", "X-Rate-Limit-Reset": str(int(NOW) + 20),
                    "Date": formatdate(NOW, usegmt=True)})
    clock.advance(5.0)
    asyncio.run(budget.wait())
    assert clock.sleeps == [pytest.approx(15.0)]
    budget.observe({"X-Rate-Limit-Remaining": "garbage"})  # ignored, not a crash
    asyncio.run(budget.wait())
    assert len(clock.sleeps) == 1


# -- every client, against the sandbox: the policy is the only retry layer ----------------------------------

# Each makes `times` calls through one client and returns their results.
Call = Callable[[ProjectConfig, RetryPolicy, int], Awaitable[list[Any]]]


async def okta_call(cfg: ProjectConfig, policy: RetryPolicy, times: int) -> list[Any]:
    from connector.providers.okta.client import OktaClient

    assert cfg.okta is not None
    async with OktaClient(cfg.okta, policy=policy) as okta:
        return [await okta.get("/api/v1/groups") for _ in range(times)]


async def okta_sdk_call(cfg: ProjectConfig, policy: RetryPolicy, times: int) -> list[Any]:
    """Typed calls through the okta SDK (its own rate-limit retry must stay off)."""
    from connector.providers.okta.client import OktaClient

    assert cfg.okta is not None
    async with OktaClient(cfg.okta, policy=policy) as okta:
        return [await okta.call("GET", "/api/v1/users/me", lambda sdk: sdk.get_user("me")) for _ in range(times)]


async def graph_call(cfg: ProjectConfig, policy: RetryPolicy, times: int) -> list[Any]:
    """Raw Graph reads (the reader every Tenant read goes through: aiohttp, no SDK)."""
    from connector.providers.entra.client import GraphCredential
    from connector.providers.entra.reads import GraphReader

    assert cfg.azure is not None
    graph = GraphReader(cfg.azure, GraphCredential(cfg.azure), policy=policy)
    try:
        return [await graph.get_all("GET /users", "/users", permission="users") for _ in range(times)]
    finally:
        await graph.aclose()


async def graph_sdk_call(cfg: ProjectConfig, policy: RetryPolicy, times: int) -> list[Any]:
    """Typed msgraph calls (kiota's RetryHandler must not be in the middleware)."""
    from connector.providers.entra.client import GraphClient

    assert cfg.azure is not None
    graph = GraphClient(cfg.azure, policy=policy)
    try:
        return [await graph.call("GET /users", lambda: graph.sdk.users.get(), permission="users")
                for _ in range(times)]
    finally:
        await graph.aclose()


async def astro_scim_call(cfg: ProjectConfig, policy: RetryPolicy, times: int) -> list[Any]:
    from connector.astro.client import AstroScimClient

    assert cfg.okta is not None and cfg.okta.astro is not None
    async with AstroScimClient(cfg.okta.astro, policy=policy) as scim:
        return [await scim.find_users(["nobody@acme.example"]) for _ in range(times)]


async def astro_reader_call(cfg: ProjectConfig, policy: RetryPolicy) -> Any:
    """The bulk reader (scim2-client over aiohttp): its first request is discovery, five requests in parallel;
    each is one call of the policy."""
    from connector.astro.reader import read_astro_async

    assert cfg.okta is not None and cfg.okta.astro is not None
    return await read_astro_async(cfg.okta.astro, policy=policy, concurrency=1)


CLIENTS: dict[str, tuple[str, Call, str]] = {
    # name: (sandbox service, call, path prefix of the call's requests)
    "okta-raw": ("okta", okta_call, "/api/v1/groups"),
    "okta-sdk": ("okta", okta_sdk_call, "/api/v1/users/me"),
    "graph-raw": ("graph", graph_call, "/v1.0/users"),
    "graph-sdk": ("graph", graph_sdk_call, "/v1.0/users"),
    "astro-scim": ("astro", astro_scim_call, "/scim/v2/"),
}


@pytest.fixture
def project(sandbox: Sandbox, tmp_path: Path) -> ProjectConfig:
    return load_config(sandbox.write_config(tmp_path / "astro-scim.yaml"))


@pytest.fixture
def faulty(sandbox: Sandbox) -> Iterator[Callable[[str, FaultConfig], None]]:
    def set_faults(service: str, faults: FaultConfig) -> None:
        sandbox.set_faults(faults, service=service)
        sandbox.logs[service].clear()

    yield set_faults
    sandbox.set_faults(FaultConfig(), service="all")


@pytest.mark.parametrize("name", list(CLIENTS))
@pytest.mark.parametrize("fault", ["5xx", "dropped"])
def test_a_failing_service_gets_exactly_the_policys_attempts(
    name: str, fault: str, sandbox: Sandbox, project: ProjectConfig, faulty: Any, fake_clock: FakeClock
) -> None:
    service, call, prefix = CLIENTS[name]
    faulty(service, FaultConfig(rate_5xx=1.0) if fault == "5xx" else FaultConfig(rate_reset=1.0))
    with pytest.raises(RemoteError) as info:
        asyncio.run(call(project, DEFAULT_POLICY, 1))
    assert info.value.status in ((None,) if fault == "dropped" else (500, 503))
    assert sandbox.logs[service].count(prefix=prefix) == DEFAULT_POLICY.attempts
    assert len(fake_clock.sleeps) == DEFAULT_POLICY.attempts - 1


@pytest.mark.parametrize("name", list(CLIENTS))
def test_a_throttling_service_gets_retries_for_the_policys_time_budget(
    name: str, sandbox: Sandbox, project: ProjectConfig, faulty: Any, fake_clock: FakeClock
) -> None:
    service, call, prefix = CLIENTS[name]
    policy = RetryPolicy(budget=12.0)
    faulty(service, FaultConfig(rate_429=1.0))
    with pytest.raises(RemoteError) as info:
        asyncio.run(call(project, policy, 1))
    assert info.value.status == 429
    # The sandbox asks for 1 s (Graph and Astro: Retry-After: 1; Okta: a reset in the current second, and a 429
    # is never retried sooner than min_throttle_delay = 1 s): 12 waits fit in the budget, 13 requests.
    assert fake_clock.sleeps == [1.0] * 12
    assert sandbox.logs[service].count(prefix=prefix) == 13


@pytest.mark.parametrize("fault", ["5xx", "dropped"])
def test_the_bulk_reader_makes_each_request_the_policys_attempts(
    fault: str, sandbox: Sandbox, project: ProjectConfig, faulty: Any
) -> None:
    faulty("astro", FaultConfig(rate_5xx=1.0) if fault == "5xx" else FaultConfig(rate_reset=1.0))
    with pytest.raises(RemoteError) as info:
        asyncio.run(astro_reader_call(project, DEFAULT_POLICY))
    assert f"after {DEFAULT_POLICY.attempts} attempts" in str(info.value)
    per_path: dict[str, int] = {}
    for entry in sandbox.logs["astro"].entries:
        per_path[entry.path] = per_path.get(entry.path, 0) + 1
    assert per_path and all(n <= DEFAULT_POLICY.attempts for n in per_path.values()), per_path
    assert DEFAULT_POLICY.attempts in per_path.values(), per_path


@pytest.mark.parametrize("name", ["okta-raw", "graph-raw", "astro-scim"])
def test_many_calls_ride_out_twenty_percent_429s(
    name: str, sandbox: Sandbox, project: ProjectConfig, faulty: Any, fake_clock: FakeClock
) -> None:
    service, call, prefix = CLIENTS[name]
    calls = 60
    faulty(service, FaultConfig(rate_429=0.2, seed=12))
    results = asyncio.run(call(project, DEFAULT_POLICY, calls))
    assert len(results) == calls and all(r is not None for r in results)
    statuses = [e.status for e in sandbox.logs[service].entries if e.path.startswith(prefix)]
    throttled = statuses.count(429)
    assert throttled >= calls // 10 and statuses.count(200) == calls, statuses  # the 429s really happened
    assert len(fake_clock.sleeps) == throttled  # each one waited, on virtual time


def test_a_caller_cancelled_while_its_next_page_is_being_written_drops_that_request() -> None:
    """ask_ahead waits until the next page's request is written; a caller cancelled meanwhile (Ctrl-C) never gets
    the task back to drop it, so ask_ahead drops it itself: no request left running, no 'Task exception was
    never retrieved'."""
    import asyncio

    from connector.support.http import ask_ahead

    started: list[asyncio.Event] = []
    outcome: list[str] = []

    async def fetch(url: str, sent: asyncio.Event) -> str:
        started.append(sent)
        try:
            await asyncio.Event().wait()  # never written, never answered
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return url

    async def main() -> None:
        caller = asyncio.ensure_future(ask_ahead(fetch, "https://example.test/next"))
        while not started:
            await asyncio.sleep(0)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        for _ in range(3):
            await asyncio.sleep(0)  # the dropped request's cancellation runs
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert others == [] and outcome == ["cancelled"]

    asyncio.run(main())
