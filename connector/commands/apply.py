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
    StalePlan,
    UsageError,
)
from connector.plan import trail
from connector.plan.model import Action, Change, Plan
from connector.plan.view import show_plans
from connector.providers import registry
from connector.providers.base import ConfigProvider
from connector.support.progress import Progress, Stage


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError("refusing to apply without confirmation", hint="re-run with --yes (e.g. in CI)")
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _report(done: list[Change], stage: Stage, change: Change) -> None:
    done.append(change)
    stage.advance()
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


def _apply_one(cfg: ProjectConfig, provider: ConfigProvider, args: argparse.Namespace,
               saved: dict[str, Plan] | None, progress: Progress) -> int | None:
    """Plan (or take the saved plan) and apply one provider; the number of changes made, None when declined."""
    with progress.stage(f"plan {provider.name}"):
        plan = _plan_for(provider, saved)
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
    trail.planned(plan.provider, plan.changes)
    done: list[Change] = []
    try:
        with progress.stage(f"apply {plan.provider}", total=len(plan.changes), unit="changes") as stage:
            return provider.apply(plan, functools.partial(_report, done, stage))
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


def _verify(cfg: ProjectConfig, idp: str, args: argparse.Namespace, progress: Progress) -> None:
    """Wait (bounded) for the IdP's outcome and raise ProvisioningFailed when it failed."""
    from connector.audit.verify import VERIFY_SECONDS, verify_applied

    timeout = VERIFY_SECONDS if args.wait is None else max(0.0, args.wait)
    output.say(f"{idp}: checking the IdP's provisioning and Astro (up to {timeout:.0f}s; --no-wait skips this)")
    with progress.stage(f"verify {idp} in Astro"):
        verdict = verify_applied(cfg, idp, timeout=timeout, say=output.say)
    trail.note(f"verification.{idp}", verdict.summary())
    if not verdict.ok:
        raise ProvisioningFailed(verdict.summary(), hint=verdict.hint())
    output.say(verdict.summary(), style="green" if not verdict.pending else "yellow")


@trail.recorded("apply")
def run(args: argparse.Namespace) -> int:
    cfg = load_config_arg(args.config)
    trail.bind(cfg)
    saved = _saved_plans(args, cfg)  # apply FILE: sets --idp/--prune/--pause from the file, before they are read
    if args.wait is not None and args.wait < 0:
        raise UsageError("--wait takes a number of seconds >= 0", hint="--wait 60, or --no-wait")
    # With several IdPs, one that stops (a manual step) or fails verification does not stop the others.
    several = args.idp == "all" and len(cfg.idps()) > 1
    total = 0
    left: list[str] = []  # manual steps still to do, one line each
    failed: ProvisioningFailed | None = None
    progress = output.progress()
    for provider in registry.config_providers(cfg, args.idp, prune=args.prune, pause=args.pause):
        if provider.name == "astro" and left:
            # Team roles need the Teams the IdPs push; an IdP waiting for a manual step pushes none yet.
            left.append("astro: Team roles (access:) are set once the IdPs above provision: re-run apply then")
            provider.close()
            continue
        try:
            made = _apply_one(cfg, provider, args, saved, progress)
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
                    _verify(cfg, provider.name, args, progress)
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
