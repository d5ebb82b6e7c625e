"""`astro-scim apply`: re-plan, show the plan, and make it so. Idempotent: a second run finds nothing to do."""

from __future__ import annotations

import argparse
import functools
import sys

from connector import output
from connector.config.arg import load_config_arg
from connector.config.load import ProjectConfig
from connector.errors import EXIT_OK, ConnectorError, ManualStepRequired, StalePlan, UsageError
from connector.plan import trail
from connector.plan.model import Action, Change, Plan
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
    trail.outcome(change, "verified done by hand" if change.action is Action.MANUAL else "applied")
    output.say("  done " + change.describe(), style="green")


def _saved_plans(args: argparse.Namespace, cfg: ProjectConfig) -> dict[str, Plan] | None:
    """`apply FILE`: the saved plans by provider name, once every provider has been re-read and found as the plan
    left it (else StalePlan, before anything is written). None without a FILE: apply re-plans."""
    if not args.plan_file:
        return None
    from connector.plan import saved as saved_plan

    saved = saved_plan.read(args.plan_file)
    for flag, default in (("idp", "all"), ("prune", False), ("pause", False)):
        given, planned = getattr(args, flag), saved.options.get(flag, default)
        if given != default and given != planned:
            what = f"--{flag} {given} differs from the saved plan's ({planned})" if flag == "idp" else (
                f"the saved plan was made without --{flag}")
            raise UsageError(what, hint="apply FILE applies the plan as it was made: leave the flag out, or re-plan")
        setattr(args, flag, planned)
    args.yes = True  # the saved plan is what was reviewed and approved (as `terraform apply PLANFILE`)
    saved_plan.check_made_here(saved, cfg)
    planned_plans = saved.by_name()
    moved: list[str] = []
    for provider in registry.config_providers(cfg, args.idp, prune=args.prune, pause=args.pause):
        try:
            fresh = provider.plan()
        finally:
            provider.close()
        old = planned_plans.get(provider.name)
        if old is None:
            raise StalePlan(f"the saved plan has nothing for {provider.name}", hint="re-plan: astro-scim plan -out FILE")
        moved += [f"{provider.name}: {kind}" for kind in saved_plan.moved_state(old, fresh)]
        if not moved and saved_plan.change_records(old) != saved_plan.change_records(fresh):
            raise StalePlan(f"{args.plan_file}: the changes in the file are not the ones its recorded state and "
                            f"config give for {provider.name} (was the file edited?)",
                            hint="re-plan: astro-scim plan -out FILE")
    if moved:
        raise StalePlan(f"the org changed since the plan was made ({saved.created_at}): " + "; ".join(moved),
                        hint="review a new plan: astro-scim plan -out FILE, then astro-scim apply FILE")
    output.say(f"{args.plan_file}: the org and the config are as the plan found them; applying it")
    return planned_plans


def _plan_for(provider: ConfigProvider, saved: dict[str, Plan] | None) -> Plan:
    return provider.plan() if saved is None else saved[provider.name]


@trail.recorded("apply")
def run(args: argparse.Namespace) -> int:
    cfg = load_config_arg(args.config)
    trail.bind(cfg)
    saved = _saved_plans(args, cfg)
    total = 0
    for provider in registry.config_providers(cfg, args.idp, prune=args.prune, pause=args.pause):
        try:
            plan = _plan_for(provider, saved)
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
            trail.planned(plan.provider, plan.changes)
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
