"""drift's Astro read in its child process (connector/astro/beside.py) against an Astro that never answers: past
the deadline the HTTP timeouts allow, drift reports Astro not verified (exit 3) naming the endpoint, with a hint,
and the child is killed; on the test's virtual clock, without real sleeps."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from connector.astro import beside
from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.faults import FaultRule
from connector.support.clock import FakeClock

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the child read needs fork (Linux)")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_hung_astro_read_is_stopped_and_reported_not_verified(
        sandbox: Sandbox, okta_applied: Path, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    release = threading.Event()
    # Astro's Users list never answers (the child's first request of it is held).
    rule = sandbox.fail("astro", FaultRule("GET", r"/Users$", times=None, release=release))
    silence = beside.silence_seconds()
    parent = os.getpid()

    def meanwhile(now: float) -> None:  # the parent waits on the child: once the request is held, time passes
        if os.getpid() == parent and rule.held.is_set():
            fake_clock.advance(silence + 1)

    fake_clock.on_sleep = meanwhile
    # The child read as the CLI has it (fork_available says no on a test's FakeClock and beside its threads).
    monkeypatch.setattr(beside, "fork_available", lambda: True)
    forked: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    try:
        capsys.readouterr()
        rc = main(["drift", "-c", str(okta_applied), "--format", fmt])
        out, err = capsys.readouterr()
    finally:
        release.set()
        fake_clock.on_sleep = None
    assert rule.held.is_set() and forked, "the child never reached the held request"
    assert rc == 3, (out, err)  # README: a remote error (network) after retries
    scim_url = sandbox.astro_orgs["okta"].scim_url
    if fmt == "json":
        doc = json.loads(out)
        assert doc["clean"] is False and doc["error"]["exit_code"] == 3, doc
        message, hint = doc["error"]["message"], doc["error"]["hint"]
    else:
        message, hint = err, err
    assert "not verified" in message and scim_url in message and f"{silence:.0f}s" in message, message
    assert "check that this machine reaches the Astro SCIM URL" in hint, hint
    (pid,) = forked
    with pytest.raises(ChildProcessError):  # killed and reaped: no child left
        os.waitpid(pid, os.WNOHANG)
