"""Plans: what a provider would change, as value objects that render as text or JSON. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, is_dataclass
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
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
        out = {
            "action": self.action.value,
            "resource": self.resource,
            "key": self.key,
            # Values read from the IdP may hold what was never registered as a secret (a Tenant URL with a password
            # typed in the portal): masked as the text is. Apply reads `data`, never these.
            "before": _masked(self.before),
            "after": _masked(self.after),
            "detail": redact(self.detail),
        }
        if self.action is Action.MANUAL and self.data.get("steps"):
            # The runbook is the whole of a manual change: a script reading the JSON plan needs it as much as a
            # person reading the text one (only the values apply needs, the ids, stay out).
            out["steps"] = redact(str(self.data["steps"]))
        return out

    def to_record(self) -> dict[str, Any]:
        """Everything apply needs, `data` included: the change as a saved plan holds it."""
        return {**self.to_json(), "data": self.data}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Change:
        return cls(Action(record["action"]), str(record["resource"]), str(record["key"]), record.get("before"),
                   record.get("after"), str(record.get("detail") or ""), dict(record.get("data") or {}))



def _masked(value: Any) -> Any:
    """`value` with every string in it redacted (connector.support.redact)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value

@dataclass
class Plan:
    provider: str
    changes: list[Change] = field(default_factory=list)
    existing: int = 0  # objects of the kinds the plan may delete: the deletion limit is a fraction of them
    # What the plan was made from: resource kind -> digest of what populate read of it. A saved plan carries it,
    # and `apply FILE` refuses when a fresh read digests differently (the org moved since the review).
    state: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.action.value] = out.get(c.action.value, 0) + 1
        return out

    def deletions(self) -> list[Change]:
        return [c for c in self.changes if c.action is Action.DELETE]

    def safety_problem(self, *, existing: int, max_fraction: float | None, max_count: int) -> str | None:
        """Why this plan deletes more than the limits allow (the lower of the two; `max_fraction` None: the count
        alone), or None."""
        n = len(self.deletions())
        if n == 0:
            return None
        if max_fraction is None:
            limit, why = max_count, "safety.max_delete_count"
        else:
            # In decimal, as the user wrote it: in binary floating point 50 x 0.58 is 28.999..., a limit of 28.
            limit = min(max_count, int(Decimal(existing) * Decimal(str(max_fraction))))
            why = f"{max_fraction:.0%} of {existing} or {max_count}, whichever is lower"
        if n <= limit:
            return None
        return f"{self.provider}: the plan deletes {n} objects, over the safety limit of {limit} ({why})"

    def check_safety(self, *, existing: int, max_fraction: float | None, max_count: int, force: bool) -> None:
        """Refuse a plan that deletes more than the limits allow, unless forced."""
        problem = None if force else self.safety_problem(existing=existing, max_fraction=max_fraction,
                                                          max_count=max_count)
        if problem is not None:
            raise UnsafePlan(problem, hint="review the plan, then re-run with --force to allow it")

    def apply_limit_problem(self, max_count: int) -> str | None:
        """What `apply` refuses without --force: the count limit alone. What apply deletes is IdP setup (Okta push
        mappings with --prune, their Teams kept in Astro), a handful of objects, of which any fraction would refuse
        the first removal. `plan` warns with the same words."""
        return self.safety_problem(existing=self.existing, max_fraction=None, max_count=max_count)

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "changes": [c.to_json() for c in self.changes], "counts": self.counts()}


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """A JSON-able form of what providers read (dataclasses, sets, paths, enums), for digests only."""
    kind = type(value)
    if kind in _SCALARS:  # most leaves: tested first, as every plan digests the whole state it read
        return value
    if kind is dict:
        return {str(k): _plain(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        # Field by field, as asdict() would give them, without its deep copy of every value (most of the cost).
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def digest(value: Any) -> str:
    """A stable digest of a value: canonical JSON (sorted keys), SHA-256, first 32 hex digits."""
    text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def state_digests(parts: dict[str, Any]) -> dict[str, str]:
    """One digest per resource kind, so that a refusal can name what moved rather than just 'something'."""
    return {name: digest(value) for name, value in parts.items()}
