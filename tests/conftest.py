"""Shared fixtures: a small, fresh sandbox per test (real HTTP servers on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.sandbox.core import Sandbox
from connector.support.clock import FakeClock, use


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """Okta, Graph and Astro SCIM on ephemeral loopback ports, seeded with 12 people and 3 teams."""
    with Sandbox(users=12, groups=3, seed=7) as sb:
        yield sb


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
