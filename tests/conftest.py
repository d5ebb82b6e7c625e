"""Shared fixtures: a small, fresh sandbox per test (real HTTP servers on loopback)."""

from __future__ import annotations

import importlib.util
import os
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from connector.support.clock import FakeClock, use

if TYPE_CHECKING:
    from connector.sandbox.core import Sandbox
# The sandbox (scim2-server, pydantic, werkzeug: ~0.8 s of imports) is imported by the fixtures that use it, not
# here: xdist's controller process loads this file too, and never runs a test.


@pytest.fixture(autouse=True, scope="session")
def one_tls_context() -> Iterator[None]:
    """Every httpx client in the test process (the tests' own, the CLI's run in-process) shares the TLS context
    httpx builds for `verify=True`, instead of building its own. Building one loads the CA bundle, ~50 ms of CPU,
    and the suite built thousands (a client per CLI run and per raw request): about a quarter of the suite's CPU
    in a profile. The context is httpx's own, built by httpx with the same arguments; the tests talk plain HTTP on
    loopback, so it is never used to verify anything. Anything but the default (a CA file, verify=False, a client
    certificate) still gets its own; a changed SSL_CERT_FILE / SSL_CERT_DIR gets a new one."""
    from httpx._transports import default as transports  # where httpx's transports look the builder up

    real = getattr(transports, "create_ssl_context", None)
    if real is None:  # another httpx layout: nothing to share, the tests just take longer
        yield
        return
    built: dict[tuple[str | None, str | None], ssl.SSLContext] = {}

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None or not trust_env:
            return cast(ssl.SSLContext, real(verify, cert, trust_env))
        key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in built:
            built[key] = real(verify, cert, trust_env)
        return built[key]

    transports.create_ssl_context = shared
    try:
        yield
    finally:
        transports.create_ssl_context = real


@pytest.fixture(autouse=True, scope="session")
def sniffio_known_missing() -> Iterator[None]:
    """httpcore asks `import sniffio` on every async request (to tell asyncio from trio) and takes asyncio when
    it is not installed, as here. A missing module is searched for again on every import: through pytest's
    assertion-rewriting hook and every path entry, ~90 us each, several per request; a profile of the CLI tests
    put it at ~4% of their CPU. Recording it as missing (None in sys.modules) makes that import fail at once, with
    the same ImportError and the same answer. Nothing changes when sniffio is installed."""
    if "sniffio" in sys.modules or importlib.util.find_spec("sniffio") is not None:
        yield
        return
    sys.modules["sniffio"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.modules.pop("sniffio", None)


@pytest.fixture
def sandbox(fake_clock: FakeClock) -> Iterator[Sandbox]:
    """Okta, Graph and Astro SCIM on ephemeral loopback ports, seeded with 12 people and 3 teams.

    Graph's provisionOnDemand window (5 calls per 10 s) counts on the test's virtual clock, the one the tool
    paces itself by: on the real clock a paced tool (virtual seconds, real milliseconds) met 429s it had waited
    out, e.g. `drift --fix` provisioning a user in three Teams."""
    from connector.sandbox.core import Sandbox

    with Sandbox(users=12, groups=3, seed=7) as sb:
        if sb.graph is not None:
            sb.graph.ondemand_clock = fake_clock.monotonic
        yield sb


@pytest.fixture
def okta_applied(sandbox: Sandbox, tmp_path: Path) -> Path:
    """Okta configured (the admin's manual step done, `apply --yes` run): Astro holds every user and Team."""
    from applied import applied

    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("okta",))
    applied(sandbox, config, "okta", console_step=True)
    return config


@pytest.fixture
def azure_applied(sandbox: Sandbox, tmp_path: Path) -> Path:
    """Entra configured by `apply --yes`: Astro holds every user and Team in scope."""
    from applied import applied

    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    applied(sandbox, config, "azure")
    return config


@pytest.fixture
def sandbox_config(sandbox: Sandbox, tmp_path: Path) -> Path:
    """Path of an astro-scim.yaml (and its token files) that works as-is against `sandbox`."""
    return sandbox.write_config(tmp_path / "astro-scim.yaml")


@pytest.fixture(autouse=True)
def fake_clock() -> Iterator[FakeClock]:
    """Every test runs on virtual time: retry backoff, Retry-After, rate budgets and pacing (everything that waits
    through connector.support.clock) return at once, and the test can read how long the tool would have waited."""
    with use(FakeClock()) as clock:
        yield clock


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep `make test`'s `--dist loadgroup` grouping on pytest >= 9.2.

    pytest-xdist marks an `xdist_group` test by appending "@group" to the legacy `item._nodeid`, which pytest 9.2
    no longer reads (its node ids are structured), so every group was silently spread over the workers and a
    module-scoped fixture (the Okta OpenAPI spec, ~2 s of CPU) was built once per worker (pytest-dev/pytest-xdist
    issue 1386, fix pending in PR 1388). Carry xdist's suffixed id over to the structured one. A no-op without
    xdist, on older pytest (the ids already agree) and once xdist writes the structured id itself.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    stale = [(item, legacy) for item in items
             if isinstance(legacy := item.__dict__.get("_nodeid"), str) and legacy != item.nodeid]
    if not stale:
        return
    from _pytest.nodeid import NodeId  # only on a pytest with structured ids (9.2+)

    for item, legacy in stale:
        item._id = NodeId.parse(legacy)
