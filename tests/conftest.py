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
