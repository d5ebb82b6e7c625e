"""drift's Astro read in a forked child (connector.astro.beside) against the sandbox's AstroScim over loopback HTTP:
the same view, progress and errors as the in-process read; a child that fails otherwise is read again in-process;
a child is never left behind; where fork is not wanted, the read runs in-process."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_astro_reader import ORG, Astro
from test_astro_reader import astro as astro_fixture  # noqa: F401 - the fixture `astro`

from connector.astro.beside import IN_PROCESS_ENV, AstroRead, fork_available
from connector.astro.reader import read_astro
from connector.audit.reconcile import compared
from connector.cli import main
from connector.config.load import AstroConfig
from connector.errors import AuthError, ConfigError, RemoteError
from connector.sandbox.core import Sandbox
from connector.support import clock
from connector.support.clock import FakeClock, SystemClock, use
from connector.support.secret import Secret
from connector.views import AstroView

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the child read needs fork (Linux)")

@pytest.fixture
def astro(astro_fixture: Astro) -> Astro:  # noqa: F811
    """test_astro_reader's emulated Astro (its wrappers: a request held, a misbehaviour)."""
    return astro_fixture


PATHS = ["userName", "name.givenName", "name.familyName", "displayName", "active"]


def _compare() -> Any:
    return compared(PATHS)


def _rows(view: AstroView) -> tuple[Any, ...]:
    return ([(u.id, u.user_name, u.active, u.external_id, u.data, u.values) for u in view.users],
            sorted((t.id, t.name, sorted(t.members), t.external_id) for t in view.teams),
            view.deviations, view.compared, view.scim_url)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _fill(astro: Astro) -> None:
    ids = astro.add_users(23)
    astro.scim.edit_user(ORG, "user0003@acme.example", "active", False)
    astro.add_team("Data Engineering", ids[:5])
    astro.add_team("Analytics", [])


def test_the_child_gives_the_in_process_view_and_progress(astro: Astro) -> None:
    _fill(astro)
    config = replace(astro.config, page_size=5)
    here: list[tuple[str, int, int]] = []
    expected = read_astro(config, compare=_compare, progress=lambda *count: here.append(count))
    beside: list[tuple[str, int, int]] = []
    read = AstroRead.start(config, compare=_compare, fork=True)
    pid = read.pid
    assert read.forked and pid is not None and pid != os.getpid()
    try:
        view = read.result(progress=lambda *count: beside.append(count))
    finally:
        read.close()
    assert _rows(view) == _rows(expected)
    assert all(u.values is not None and not u.data for u in view.users)
    # A count per page, each kind rising to its total (pages arrive in any order: the counts between differ).
    def per_kind(seen: list[tuple[str, int, int]]) -> dict[str, tuple[int, int, int]]:
        return {kind: (len([c for c in seen if c[0] == kind]), max(c[1] for c in seen if c[0] == kind),
                       max(c[2] for c in seen if c[0] == kind)) for kind, _, _ in seen}

    assert per_kind(beside) == per_kind(here) == {"users": (5, 23, 23), "Teams": (1, 2, 2)}
    assert _gone(pid)


def test_with_rebuild_the_paths_are_evaluated_here_and_sent_to_the_child(astro: Astro) -> None:
    """drift's way: the mapping behind the compared paths is loaded by this process (the IdP read needs it too),
    and the child makes its Compared from the paths it is sent."""
    _fill(astro)
    where: list[int] = []
    built: list[tuple[str, ...]] = []

    def compare() -> Any:
        where.append(os.getpid())
        return _compare()

    def rebuild(paths: tuple[str, ...]) -> Any:
        built.append(paths)  # in the child: this list stays empty here
        return compared(paths)

    read = AstroRead.start(astro.config, compare=compare, rebuild=rebuild, fork=True)
    try:
        view = read.result()
    finally:
        read.close()
    assert where == [os.getpid()] and built == []
    assert _rows(view) == _rows(read_astro(astro.config, compare=_compare))


def test_an_error_evaluating_the_paths_is_the_callers_and_the_child_is_stopped(astro: Astro) -> None:
    _fill(astro)

    def compare() -> Any:
        raise ConfigError("the mapping is broken")

    read = AstroRead.start(astro.config, compare=compare, rebuild=compared, fork=True)
    pid = read.pid
    with pytest.raises(ConfigError, match="the mapping is broken"):
        read.result()
    read.close()
    assert pid is not None and _gone(pid)


def test_a_child_that_fails_before_asking_for_the_paths_is_the_callers_error(astro: Astro) -> None:
    """The child's first request fails (a wrong token) and it ends while this process still loads the mapping:
    the paths then meet a closed pipe. The child's error is the caller's, not a BrokenPipeError (which the CLI
    takes for its stdout closed: exit 141, nothing said)."""
    astro.add_users(3)
    bad = AstroConfig(scim_url=astro.url, token=Secret.from_value("not-the-right-token"))
    read: AstroRead | None = None

    def compare() -> Any:
        assert read is not None and read.pid is not None
        os.waitid(os.P_PID, read.pid, os.WEXITED | os.WNOWAIT)  # until the child has ended (not reaped)
        return _compare()

    read = AstroRead.start(bad, compare=compare, rebuild=compared, fork=True)
    with pytest.raises(AuthError, match="401"):
        read.result()
    read.close()


def test_an_unreadable_token_is_read_in_process_and_met_as_before(astro: Astro) -> None:
    missing = AstroConfig(scim_url=astro.url, token=Secret("env:ASTRO_SCIM_TEST_NO_SUCH_VARIABLE"))
    read = AstroRead.start(missing, compare=_compare, rebuild=compared, fork=True)
    assert not read.forked
    with pytest.raises(ConfigError, match="ASTRO_SCIM_TEST_NO_SUCH_VARIABLE"):
        read.result()
    read.close()


def test_without_compare_the_child_sends_each_users_json(astro: Astro) -> None:
    _fill(astro)
    read = AstroRead.start(astro.config, fork=True)
    try:
        view = read.result()
    finally:
        read.close()
    assert _rows(view) == _rows(read_astro(astro.config))
    assert view.users[0].data["name"]["givenName"] == "Given"


def test_an_error_in_the_child_is_the_callers_as_raised(astro: Astro) -> None:
    astro.add_users(3)
    bad = AstroConfig(scim_url=astro.url, token=Secret.from_value("not-the-right-token"))
    with pytest.raises(AuthError) as here:
        read_astro(bad)
    read = AstroRead.start(bad, fork=True)
    pid = read.pid
    with pytest.raises(AuthError) as beside:
        read.result()
    read.close()
    assert (str(beside.value), beside.value.hint, beside.value.status, beside.value.endpoint, beside.value.code) \
        == (str(here.value), here.value.hint, here.value.status, here.value.endpoint, here.value.code)
    assert "not-the-right-token" not in str(beside.value)
    assert pid is not None and _gone(pid)


def test_a_misbehaving_server_is_the_same_remote_error(astro: Astro) -> None:
    astro.add_users(6)
    astro.scim.set_misbehaviour(ORG, "html")
    with pytest.raises(RemoteError) as here:
        read_astro(astro.config)
    with pytest.raises(RemoteError) as beside:
        AstroRead.start(astro.config, fork=True).result()
    assert (str(beside.value), beside.value.hint) == (str(here.value), here.value.hint)
    assert "HTML page" in str(beside.value)


def test_a_child_failing_otherwise_is_read_again_in_process(astro: Astro) -> None:
    """A bug in the child (here: its compare raises) is not passed on as a pickled exception: the caller reads
    again itself, so a bug meets it with its real traceback, and a child-only failure still gives the view."""
    _fill(astro)
    parent = os.getpid()

    def only_the_child_fails() -> Any:
        if os.getpid() != parent:
            raise RuntimeError("boom in the child")
        return _compare()

    view = AstroRead.start(astro.config, compare=only_the_child_fails, fork=True).result()
    assert _rows(view) == _rows(read_astro(astro.config, compare=_compare))
    assert len(astro.list_requests("Users")) == 3  # the child's first page, then the caller's (and this test's)

    def always_fails() -> Any:
        raise RuntimeError("boom everywhere")

    with pytest.raises(RuntimeError, match="boom everywhere"):
        AstroRead.start(astro.config, compare=always_fails, fork=True).result()


def test_a_child_killed_mid_read_is_read_again_in_process(astro: Astro) -> None:
    _fill(astro)
    parent = os.getpid()

    def killed() -> Any:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return _compare()

    read = AstroRead.start(astro.config, compare=killed, fork=True)
    pid = read.pid
    view = read.result()
    read.close()
    assert _rows(view) == _rows(read_astro(astro.config, compare=_compare))
    assert pid is not None and _gone(pid)


def test_close_stops_a_child_still_reading_and_its_reader_thread(astro: Astro) -> None:
    """The caller's error (or Ctrl-C) while the child reads: `close` kills and reaps it, and the thread waiting
    for its answer stops instead of reading Astro again."""
    astro.add_users(3)
    held = threading.Event()
    release = threading.Event()

    def hold(environ: dict[str, Any]) -> None:
        if environ.get("PATH_INFO", "").endswith("/Users"):
            held.set()
            release.wait(10)

    astro.wrapper.before = hold
    read = AstroRead.start(astro.config, fork=True)
    pid = read.pid
    outcome: list[BaseException | AstroView] = []

    def wait() -> None:
        try:
            outcome.append(read.result())
        except BaseException as exc:  # noqa: BLE001 - what the waiting thread met is the assertion
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        assert held.wait(10)  # the child is reading
        read.close()
        waiter.join(10)
        assert not waiter.is_alive()
    finally:
        release.set()
    assert pid is not None and _gone(pid)
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError) and "stopped" in str(outcome[0])
    read.close()  # idempotent


def test_in_process_when_fork_is_not_wanted(astro: Astro, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(astro)
    # A test's fake clock belongs to this process (its sleeps are asserted): no child then.
    assert isinstance(clock.current(), FakeClock) and not fork_available()
    with use(SystemClock()):
        # This worker runs the sandbox's threads: a fork now could copy a lock one of them holds, so no child.
        assert threading.active_count() > 1 and not fork_available()
        monkeypatch.setattr(threading, "active_count", lambda: 1)  # as the CLI is when drift forks
        assert fork_available() is (len(os.sched_getaffinity(0)) > 1)
        with monkeypatch.context() as patch:  # one CPU: a child would only add its own cost
            patch.setattr(os, "sched_getaffinity", lambda _pid: {0})
            assert not fork_available()
        for off in ("0", "false", "No", ""):
            monkeypatch.setenv(IN_PROCESS_ENV, off)
            assert fork_available() is (len(os.sched_getaffinity(0)) > 1)
        monkeypatch.setenv(IN_PROCESS_ENV, "1")
        assert not fork_available()
    read = AstroRead.start(astro.config, compare=_compare)
    assert not read.forked and read.pid is None
    assert _rows(read.result()) == _rows(read_astro(astro.config, compare=_compare))
    read.close()


def _children(run: Any) -> tuple[Any, int]:
    """run()'s result and how many processes it forked (os.fork counted as it is called)."""
    forks = [0]
    real = os.fork

    def counted() -> int:
        forks[0] += 1
        return real()

    os.fork = counted
    try:
        return run(), forks[0]
    finally:
        os.fork = real


def _drift(config: Path) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["drift", "-c", str(config), "--format", "json"])
    return dict(json.loads(out.getvalue()))


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_drift_reports_the_same_findings_either_way(sandbox: Sandbox, idp: str,
                                                    request: pytest.FixtureRequest) -> None:
    config: Path = request.getfixturevalue(f"{idp}_applied")
    org = sandbox.astro_orgs[idp].org_id
    user = sandbox.astro.users(org)[0]["userName"]
    sandbox.astro.edit_user(org, user, "name.givenName", "Drifted")  # an attribute mismatch
    sandbox.astro.add_orphan(org, "eve.orphan@acme.example", "Eve", "Orphan")  # an orphan
    # The real clock: the child reads (nothing here waits: no fault is injected). The sandbox's threads are idle
    # here; the CLI forks with its main thread alone, which fork_available checks.
    with use(SystemClock()), pytest.MonkeyPatch.context() as patch:
        patch.setattr(threading, "active_count", lambda: 1)
        spawned = _children(lambda: _drift(config))
    forked = spawned[0]
    assert spawned[1] >= 1
    here = _drift(config)  # the test's fake clock: in-process
    findings = [[{k: f.get(k) for k in ("id", "kind", "subject", "detail", "expected", "actual")}
                 for f in r["findings"]] for r in forked["idps"]]
    assert findings == [[{k: f.get(k) for k in ("id", "kind", "subject", "detail", "expected", "actual")}
                         for f in r["findings"]] for r in here["idps"]]
    kinds = {f["kind"] for r in findings for f in r}
    assert {"attribute_mismatch", "orphaned"} <= kinds
