"""The contract every provider keeps (modelled on octodns): `plan` never writes; after `apply`, `plan` is empty."""

from __future__ import annotations

from typing import Protocol

from connector.plan import Plan


class Provider(Protocol):
    name: str

    def plan(self) -> Plan:
        """Read the current state and return what `apply` would change. Never writes."""
        ...

    def apply(self, plan: Plan) -> int:
        """Make the changes of `plan`; return how many were made. Raises ManualStepRequired at a manual step."""
        ...
