"""The contract every provider keeps (modelled on octodns): `plan` never writes; after `apply`, `plan` is empty."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from connector.plan.model import Change, Plan

Progress = Callable[[Change], None]


@dataclass
class Check:
    """One line of test-connection or status output. ok=None is information, not a verdict."""

    name: str
    ok: bool | None
    detail: str = ""
    hint: str | None = None


class Provider(Protocol):
    name: str  # "okta" | "azure" | "astro"

    def plan(self) -> Plan:
        """Read the current state and return what `apply` would change. Never writes."""
        ...

    def apply(self, plan: Plan, progress: Progress | None = None) -> int:
        """Make the changes of `plan`, calling `progress` after each; return how many were made.

        Raises ManualStepRequired when it reaches a step no API can do (after the steps before it are done).
        """
        ...

    def test_connection(self) -> list[Check]:
        ...

    def status(self) -> list[Check]:
        ...

    def close(self) -> None:
        ...
