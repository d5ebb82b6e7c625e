"""Plans: what a provider would change, as value objects that render as text or JSON. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from connector.errors import UnsafePlan
from connector.support.redact import redact


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    MANUAL = "manual"  # a step no API can do; carries runbook text
    RUN = "run"  # an operation that changes no stored state (e.g. start a job, re-push a group)


_SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.MANUAL: "!", Action.RUN: ">"}


@dataclass
class Change:
    action: Action
    resource: str  # kind, e.g. "okta.push_mapping"
    key: str  # human identity, e.g. "Data Engineering"
    before: Any = None
    after: Any = None
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # what apply needs (ids); never printed

    def describe(self) -> str:
        text = f"{_SYMBOL[self.action]} {self.resource} {self.key}"
        if self.detail:
            text += f": {self.detail}"
        elif self.action is Action.UPDATE and self.before is not None:
            text += f": {self.before!r} -> {self.after!r}"
        return redact(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "resource": self.resource,
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "detail": redact(self.detail),
        }


@dataclass
class Plan:
    provider: str
    changes: list[Change] = field(default_factory=list)
    existing: int = 0  # objects of the kinds the plan may delete: the deletion limit is a fraction of them

    def __bool__(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.action.value] = out.get(c.action.value, 0) + 1
        return out

    def deletions(self) -> list[Change]:
        return [c for c in self.changes if c.action is Action.DELETE]

    def check_safety(self, *, existing: int, max_fraction: float, max_count: int, force: bool) -> None:
        """Refuse a plan that deletes more than the limits allow (the lower of the two), unless forced."""
        n = len(self.deletions())
        if force or n == 0:
            return
        limit = min(max_count, int(existing * max_fraction))
        if n > limit:
            raise UnsafePlan(
                f"{self.provider}: the plan deletes {n} objects, over the safety limit of {limit} "
                f"({max_fraction:.0%} of {existing} or {max_count}, whichever is lower)",
                hint="review the plan, then re-run with --force to allow it",
            )

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "changes": [c.to_json() for c in self.changes], "counts": self.counts()}
