"""`astro-scim apply`: re-plan, show the plan, make it so, then verify the IdP's provisioning reached Astro.

Idempotent: a second run finds nothing to do. "applied" is said only once the outcome was read back (see
connector/audit/verify.py); `--no-wait` skips that and says "not verified". With several IdPs, a manual step in
one does not stop the others: apply ends with what is left to do (exit 1).
"""

from __future__ import annotations

import argparse
import functools
import sys

from connector import output
from connector.config.arg import load_config_arg
from connector.config.load import ProjectConfig
from connector.errors import (
    EXIT_FINDINGS,
    EXIT_OK,
    ConnectorError,
    ManualStepRequired,
    ProvisioningFailed,
    UsageError,
)
from connector.plan.model import Change
from connector.plan.view import show_plans
from connector.providers import registry
from connector.providers.base import ConfigProvider


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError("refusing to apply without confirmation", hint="re-run with --yes (e.g. in CI)")
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _report(done: list[Change], change: Change) -> None:
    done.append(change)
    output.say("  done " + change.describe(), style="green")


def _apply_one(cfg: ProjectConfig, provider: ConfigProvider, args: argparse.Namespace) -> int | None:
    """Plan and apply one provider; the number of changes made, None when the user declined."""
    plan = provider.plan()
    show_plans([plan], "text")
    if not plan:
        return 0
    plan.check_safety(
        existing=max(plan.existing, len(plan.changes)),
        max_fraction=cfg.safety.max_delete_fraction,
        max_count=cfg.safety.max_delete_count,
        force=args.force,
    )
    if not args.yes and not _confirm(f"apply {len(plan.changes)} change(s) to {plan.provider}?"):
        output.say("nothing applied")
        return None
    done: list[Change] = []
    try:
        return provider.apply(plan, functools.partial(_report, done))
    except ManualStepRequired as exc:
        output.say(f"{plan.provider}: {len(done)} change(s) applied before a manual step", style="bold")
        shown = any(c.data.get("steps") for c in plan.changes)  # the plan above already listed them
        if exc.steps and not shown:
            output.say(exc.steps)
        raise
    except ConnectorError:
        output.error(
            f"{plan.provider}: stopped after {len(done)} of {len(plan.changes)} change(s); "
            "re-run 'astro-scim apply' to continue (it re-plans from the current state)"
        )
        raise


def _verify(cfg: ProjectConfig, idp: str, args: argparse.Namespace) -> None:
    """Wait (bounded) for the IdP's outcome and raise ProvisioningFailed when it failed."""
    from connector.audit.verify import VERIFY_SECONDS, verify_applied

    timeout = VERIFY_SECONDS if args.wait is None else max(0.0, args.wait)
    output.say(f"{idp}: checking the IdP's provisioning and Astro (up to {timeout:.0f}s; --no-wait skips this)")
    verdict = verify_applied(cfg, idp, timeout=timeout, say=output.say)
    if not verdict.ok:
        raise ProvisioningFailed(verdict.summary(), hint=verdict.hint())
    output.say(verdict.summary(), style="green" if not verdict.pending else "yellow")


def run(args: argparse.Namespace) -> int:
    cfg = load_config_arg(args.config)
    if args.wait is not None and args.wait < 0:
        raise UsageError("--wait takes a number of seconds >= 0", hint="--wait 60, or --no-wait")
    # With several IdPs, one that stops (a manual step) or fails verification does not stop the others.
    several = args.idp == "all" and len(cfg.idps()) > 1
    total = 0
    left: list[str] = []  # manual steps still to do, one line each
    failed: ProvisioningFailed | None = None
    for provider in registry.config_providers(cfg, args.idp, prune=args.prune, pause=args.pause):
        if provider.name == "astro" and left:
            # Team roles need the Teams the IdPs push; an IdP waiting for a manual step pushes none yet.
            left.append("astro: Team roles (access:) are set once the IdPs above provision: re-run apply then")
            provider.close()
            continue
        try:
            made = _apply_one(cfg, provider, args)
        except ManualStepRequired as exc:
            if not several:
                raise
            output.error(str(exc))
            left.append(f"{provider.name}: {exc}")
            continue
        finally:
            provider.close()
        if made is None:
            continue
        total += made
        if provider.name in ("okta", "azure") and not (provider.name == "azure" and args.pause):
            if args.no_wait:
                output.say(f"{provider.name}: not verified (--no-wait): 'astro-scim drift' checks Astro",
                           style="yellow")
            else:
                try:
                    _verify(cfg, provider.name, args)
                except ProvisioningFailed as exc:
                    if not several:
                        raise
                    output.error(str(exc))
                    if exc.hint:
                        output.say(f"hint: {exc.hint}")
                    failed = failed or ProvisioningFailed(
                        f"apply made its changes, but {provider.name}'s provisioning failed (see above)",
                        hint=exc.hint)
    if left:
        output.say(f"applied {total} change(s); left to do:", style="bold")
        for line in left:
            output.say(f"  - {line}")
    if failed is not None:
        raise failed
    if left:
        return EXIT_FINDINGS
    output.say(f"applied {total} change(s)" + (" (not verified)" if args.no_wait else ""), style="bold green")
    return EXIT_OK
