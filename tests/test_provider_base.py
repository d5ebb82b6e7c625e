"""The plan/apply template method (providers/base.BaseProvider) and the registry's typed capabilities.

The provider here keeps its "IdP" in a dict: the flow under test is BaseProvider's own, run for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from connector.cli import main
from connector.errors import ManualStepRequired, UsageError
from connector.plan.model import Action, Change, Plan
from connector.providers.base import BaseProvider

T = TypeVar("T")


class DictProvider(BaseProvider[dict[str, str], dict[str, str], list[str]]):
    """Makes a dict hold `desired`; a key whose value is "MANUAL" is a step only a person can do."""

    name = "dict"

    def __init__(self, idp: dict[str, str], desired: dict[str, str]) -> None:
        self.idp, self.desired = idp, desired
        self.calls = 0

    def _call(self, fn: Callable[[dict[str, str]], Awaitable[T]]) -> T:
        async def run() -> T:
            return await fn(self.idp)

        self.calls += 1
        return asyncio.run(run())

    async def _populate(self, s: dict[str, str]) -> dict[str, str]:
        return dict(s)

    def _changes(self, state: dict[str, str]) -> list[Change]:
        out = []
        for key, value in self.desired.items():
            if state.get(key) == value:
                continue
            action = Action.MANUAL if value == "MANUAL" else Action.UPDATE if key in state else Action.CREATE
            out.append(Change(action, "dict.key", key, before=state.get(key), after=value))
        return out

    def _notes(self, state: dict[str, str]) -> list[str]:
        return ["the dict is small"] if len(state) < 2 else []

    def _existing(self, state: dict[str, str]) -> int:
        return len(state)

    async def _begin_apply(self, s: dict[str, str], plan: Plan) -> list[str]:
        return []

    async def _apply_change(self, s: dict[str, str], ctx: list[str], change: Change) -> None:
        s[change.key] = str(change.after)
        ctx.append(change.key)

    def close(self) -> None:
        pass


def test_plan_populates_then_computes_changes_and_warns_the_notes(capsys: pytest.CaptureFixture[str]) -> None:
    p = DictProvider({"a": "1"}, {"a": "1", "b": "2", "c": "3"})
    plan = p.plan()
    assert [(c.action, c.key) for c in plan.changes] == [(Action.CREATE, "b"), (Action.CREATE, "c")]
    assert plan.provider == "dict" and plan.existing == 1
    assert "dict: note: the dict is small" in capsys.readouterr().err
    assert p.idp == {"a": "1"}  # plan never writes


def test_apply_makes_each_change_in_order_with_progress_then_the_plan_is_empty() -> None:
    p = DictProvider({"a": "1"}, {"a": "2", "b": "2"})
    seen: list[str] = []
    assert p.apply(p.plan(), lambda c: seen.append(c.key)) == 2
    assert seen == ["a", "b"] and p.idp == {"a": "2", "b": "2"}
    assert not p.plan()


def test_apply_stops_at_a_manual_step_after_doing_the_steps_before_it() -> None:
    p = DictProvider({}, {"a": "1", "b": "MANUAL", "c": "3"})
    seen: list[str] = []
    with pytest.raises(ManualStepRequired, match="dict: ! dict.key b"):
        p.apply(p.plan(), lambda c: seen.append(c.key))
    assert seen == ["a"] and p.idp == {"a": "1"}  # c waits for the manual step


def test_apply_refuses_another_providers_plan_and_skips_an_empty_one() -> None:
    p = DictProvider({}, {})
    with pytest.raises(UsageError, match="cannot apply a plan for okta"):
        p.apply(Plan("okta", [Change(Action.CREATE, "okta.feature", "x")]))
    calls = p.calls
    assert p.apply(Plan("dict")) == 0 and p.calls == calls  # nothing to do: no session opened


def test_push_groups_without_okta_is_a_config_error_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASTRO_API_TOKEN", "t0ken")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cret")
    config = tmp_path / "astro-scim.yaml"
    config.write_text(
        "astro:\n  scim_url: https://api.astronomer.io/scim/v2/clorg123\n  token: env:ASTRO_API_TOKEN\n"
        "azure:\n  tenant_id: 00000000-0000-0000-0000-000000000000\n"
        "  credential: {client_id: abc, client_secret: env:AZURE_CLIENT_SECRET}\n  app: {display_name: Astro}\n"
    )
    assert main(["push-groups", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "push-groups is for Okta, and the config has no 'okta' section" in err
    assert "Traceback" not in err
