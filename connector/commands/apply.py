"""`astro-scim apply`: re-plan, show the plan, and make it so. Idempotent: a second run finds nothing to do."""

from __future__ import annotations

import argparse
import functools
import sys

from connector import output
from connector.config.arg import load_config_arg
from connector.errors import EXIT_OK, ConnectorError, ManualStepRequired, UsageError
from connector.plan.model import Change
from connector.plan.view import show_plans
from connector.providers import registry


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError("refusing to apply without confirmation", hint="re-run with --yes (e.g. in CI)")
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _report(done: list[Change], change: Change) -> None:
    done.append(change)
    output.say("  done " + change.describe(), style="green")


def run(args: argparse.Namespace) -> int:
    cfg = load_config_arg(args.config)
    total = 0
    for provider in registry.config_providers(cfg, args.idp, prune=args.prune, pause=args.pause):
        try:
            plan = provider.plan()
            show_plans([plan], "text")
            if not plan:
                continue
            plan.check_safety(
                existing=max(plan.existing, len(plan.changes)),
                max_fraction=cfg.safety.max_delete_fraction,
                max_count=cfg.safety.max_delete_count,
                force=args.force,
            )
            if not args.yes and not _confirm(f"apply {len(plan.changes)} change(s) to {plan.provider}?"):
                output.say("nothing applied")
                continue
            done: list[Change] = []
            try:
                total += provider.apply(plan, functools.partial(_report, done))
            except ManualStepRequired as exc:
                output.say(f"{plan.provider}: {len(done)} change(s) applied before a manual step", style="bold")
                shown = any(c.data.get("steps") for c in plan.changes)  # the plan above already listed them
                if exc.steps and not shown:
                    output.say(exc.steps)
                raise
            except ConnectorError as exc:
                output.error(
                    f"{plan.provider}: stopped after {len(done)} of {len(plan.changes)} change(s); "
                    "re-run 'astro-scim apply' to continue (it re-plans from the current state)"
                )
                raise exc
        finally:
            provider.close()
    output.say(f"applied {total} change(s)", style="bold green")
    return EXIT_OK
