"""`astro-scim apply`: re-plan, show the plan, make it so, then verify the IdP's provisioning reached Astro.

Idempotent: a second run finds nothing to do. "applied" is said only once the outcome was read back (see
connector/audit/verify.py); `--no-wait` skips that and says "not verified". With several IdPs, a manual step in
one does not stop the others: apply ends with what is left to do (exit 1).
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import TYPE_CHECKING, Any

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
    UnsafePlan,
    UsageError,
    WrittenButFailing,
)
from connector.plan import trail
from connector.plan.model import Action, Change, Plan
from connector.plan.view import show_plans
from connector.providers import registry
from connector.providers.base import ConfigProvider
from connector.support.progress import Progress, Stage

if TYPE_CHECKING:
    from connector.audit.verify import Verdict


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
               saved: dict[str, Plan] | None, entry: dict[str, Any], progress: Progress) -> int | None:
    """Plan (or take the saved plan) and apply one provider; the number of changes made, None when declined.
    `entry` is the provider's part of the JSON answer: each change and its outcome."""
    with progress.stage(f"plan {provider.name}"):
        plan = _plan_for(provider, saved)
    _outcomes(entry, plan, [])
    entry["status"] = "not_applied" if plan else "no_changes"  # until the provider says otherwise
    show_plans([plan], "text")
    if not plan:
        return 0
    if not args.force and (problem := plan.apply_limit_problem(cfg.safety.max_delete_count)) is not None:
        raise UnsafePlan(problem, hint="review the plan, then re-run with --force to allow it")
    if not args.yes and not _confirm(f"apply {len(plan.changes)} change(s) to {plan.provider}?"):
        output.say("nothing applied")
        entry["status"] = "declined"
        return None
    trail.planned(plan.provider, plan.changes)
    done: list[Change] = []
    try:
        with progress.stage(f"apply {plan.provider}", total=len(plan.changes), unit="changes") as stage:
            made = provider.apply(plan, functools.partial(_report, done, stage))
    except ManualStepRequired as exc:
        _outcomes(entry, plan, done, exc)
        output.say(f"{plan.provider}: {len(done)} change(s) applied before a manual step", style="bold")
        shown = any(c.data.get("steps") for c in plan.changes)  # the plan above already listed them
        if exc.steps and not shown:
            output.say(exc.steps)
        raise
    except ConnectorError as exc:
        _outcomes(entry, plan, done, exc)
        if isinstance(exc, WrittenButFailing) and isinstance(exc.change, Change):
            # Written, then its read-back failed: the trail says it was written, and that it fails.
            trail.outcome(exc.change, "applied, check failed", str(exc))
            output.error(f"{plan.provider}: {exc.change.describe()}: written, but it fails its check; stopped "
                         f"after {len(done)} of {len(plan.changes)} change(s)")
            raise
        output.error(
            f"{plan.provider}: stopped after {len(done)} of {len(plan.changes)} change(s); "
            "re-run 'astro-scim apply' to continue (it re-plans from the current state)"
        )
        raise
    _outcomes(entry, plan, done)
    return made


def _outcomes(entry: dict[str, Any], plan: Plan, done: list[Change], exc: ConnectorError | None = None) -> None:
    """The JSON answer's account of one provider's changes (docs/schemas/apply.v1.json): each change of the plan
    with its outcome. A change the provider reported done is applied (a manual one: found done by hand); when a
    manual step stopped the provider, its manual changes are still to do, with their instructions (steps); the
    rest were not applied. An error stops a provider, not one change: it is the provider's `error`."""
    made = {(c.action, c.resource, c.key) for c in done}
    manual = isinstance(exc, ManualStepRequired)
    changes = []
    for c in plan.changes:
        if (c.action, c.resource, c.key) in made:
            outcome = "done_by_hand" if c.action is Action.MANUAL else "applied"
        else:
            outcome = "manual_step" if manual and c.action is Action.MANUAL else "not_applied"
        changes.append({**c.to_json(), "outcome": outcome})
    entry["changes"] = changes
    entry["applied"] = sum(1 for c in changes if c["outcome"] == "applied")
    entry["status"] = "manual_step" if manual else "failed" if exc is not None else (
        "applied" if plan.changes else "no_changes")
    if exc is not None:
        entry["error"] = {"type": type(exc).__name__, "message": str(exc), "hint": exc.hint}
    if isinstance(exc, ManualStepRequired):
        steps = [c["steps"] for c in changes if c["outcome"] == "manual_step" and c.get("steps")]
        entry["manual_steps"] = steps or [exc.steps or str(exc)]


# A verification at the start of a 100,000-user apply may have most of them pending: the JSON names the first ones
# (`pending` counts them all), as the text names the first five.
MAX_PENDING_SUBJECTS = 1000


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    """A read-back verdict (connector/audit/verify.Verdict) as the JSON answer holds it."""
    status = ("failed" if not verdict.ok else "partly_verified" if verdict.pending else "verified")
    r = verdict.result
    return {"status": status, "summary": verdict.summary(), "hint": None if status == "verified" else verdict.hint(),
            "seconds": round(verdict.seconds, 3),
            "counts": {"idp_users": r.idp_users, "idp_groups": r.idp_groups, "astro_users": r.astro_users},
            "blocking": [{"kind": f.kind.value, "subject": f.subject, "detail": f.detail, "remedy": f.remedy}
                         for f in verdict.blocking],
            "pending": len(verdict.pending),
            "pending_subjects": [{"kind": f.kind.value, "subject": f.subject,
                                  **({"user": f.user} if f.user else {}), **({"team": f.team} if f.team else {})}
                                 for f in verdict.pending[:MAX_PENDING_SUBJECTS]]}


def _unverified(summary: str) -> dict[str, Any]:
    return {"status": "not_verified", "summary": summary, "hint": None, "seconds": None, "counts": None,
            "blocking": [], "pending": 0, "pending_subjects": []}


def _verify(cfg: ProjectConfig, idp: str, args: argparse.Namespace, entry: dict[str, Any],
            progress: Progress) -> None:
    """Wait (bounded) for the IdP's outcome and raise ProvisioningFailed when it failed."""
    from connector.audit.verify import VERIFY_SECONDS, verify_applied

    timeout = VERIFY_SECONDS if args.wait is None else max(0.0, args.wait)
    output.say(f"{idp}: checking the IdP's provisioning and Astro (up to {timeout:.0f}s; --no-wait skips this)")
    with progress.stage(f"verify {idp} in Astro"):
        verdict = verify_applied(cfg, idp, timeout=timeout, say=output.say)
    entry["verification"] = _verdict_json(verdict)
    trail.note(f"verification.{idp}", verdict.summary())
    if not verdict.ok:
        raise ProvisioningFailed(verdict.summary(), hint=verdict.hint())
    output.say(verdict.summary(), style="green" if not verdict.pending else "yellow")


@trail.recorded("apply")
def run(args: argparse.Namespace) -> int:
    # --format json: one document (docs/schemas/apply.v1.json), printed however apply ends
    with output.json_document("apply", "apply", args.format == "json", plan_file=args.plan_file, applied=0,
                              providers=[], left_to_do=[]) as doc:
        if args.format == "json" and not (args.yes or args.plan_file):
            raise UsageError("--format json needs --yes: a question would mix with the JSON document",
                             hint="review with 'astro-scim plan', then apply with --yes (or apply a saved plan)")
        try:
            return _run(args, doc)
        finally:  # however it ended: what was made before a manual step or an error counts too
            doc["applied"] = sum(entry["applied"] for entry in doc["providers"])


def _named(name: str, message: str) -> str:
    """`message` led by the provider's name once: the providers' own messages already start with it
    ("okta: provisioning is not enabled ..."), which a second prefix made "okta: okta: ..."."""
    return message if message.startswith(f"{name}:") else f"{name}: {message}"


def _provider_entry(doc: output.Document, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"provider": name, "status": "not_applied", "applied": 0, "changes": [],
                             "verification": None, "manual_steps": [], "error": None}
    doc["providers"].append(entry)
    return entry


def _run(args: argparse.Namespace, doc: output.Document) -> int:
    if args.wait is not None and args.wait < 0:  # before anything is read (a saved plan reads every IdP again)
        raise UsageError("--wait takes a number of seconds >= 0", hint="--wait 60, or --no-wait")
    cfg = load_config_arg(args.config)
    trail.bind(cfg)
    saved = _saved_plans(args, cfg)  # apply FILE: sets --idp/--prune/--pause from the file, before they are read
    # With several IdPs, one that stops (a manual step) or fails verification does not stop the others.
    several = args.idp == "all" and len(cfg.idps()) > 1
    total = 0
    left: list[str] = doc["left_to_do"]  # manual steps still to do, one line each
    failed: ProvisioningFailed | None = None
    unverified = bool(args.no_wait)
    progress = output.progress()
    for provider in registry.config_providers(cfg, args.idp, prune=args.prune, pause=args.pause):
        entry = _provider_entry(doc, provider.name)
        if provider.name == "astro" and left:
            # Team roles need the Teams the IdPs push; an IdP waiting for a manual step pushes none yet.
            left.append("astro: Team roles (access:) are set once the IdPs above provision: re-run apply then")
            entry["status"] = "skipped"
            provider.close()
            continue
        try:
            made = _apply_one(cfg, provider, args, saved, entry, progress)
        except ManualStepRequired as exc:
            if not several:
                raise
            output.error(str(exc))
            left.append(_named(provider.name, str(exc)))
            continue
        finally:
            provider.close()
        if made is None:
            continue
        total += made
        if provider.name in ("okta", "azure") and not (provider.name == "azure" and args.pause):
            if args.no_wait:
                entry["verification"] = _unverified(f"{provider.name}: not verified (--no-wait)")
                output.say(f"{provider.name}: not verified (--no-wait): 'astro-scim drift' checks Astro",
                           style="yellow")
            else:
                try:
                    _verify(cfg, provider.name, args, entry, progress)
                except ProvisioningFailed as exc:
                    if not several:
                        raise
                    output.error(str(exc))
                    if exc.hint:
                        output.say(f"hint: {exc.hint}")
                    failed = failed or ProvisioningFailed(
                        f"apply made its changes, but {provider.name}'s provisioning failed (see above)",
                        hint=exc.hint)
        else:  # Team roles (astro), or an Entra job left paused: no provisioning to wait for
            entry["verification"] = _unverified(
                f"{provider.name}: " + ("the job is left paused (--pause)" if provider.name == "azure" else
                                        "not verified here: 'astro-scim drift' compares the Team roles"))
            if provider.name == "azure":
                # Nothing reaches Astro while the job is paused: no verdict to give, and the text says so.
                unverified = True
                output.say("azure: not verified: the job is left paused (--pause), so nothing is provisioned to "
                           "check; 'astro-scim apply' without --pause starts it and verifies", style="yellow")
    if left:
        output.say(f"applied {total} change(s); left to do:", style="bold")
        for line in left:
            output.say(f"  - {line}")
        trail.stopped("left to do: " + "; ".join(left))  # the exit 1 says why in the audit trail too
    if failed is not None:
        raise failed
    if left:
        return doc.done(EXIT_FINDINGS)
    output.say(f"applied {total} change(s)" + (" (not verified)" if unverified else ""), style="bold green")
    return doc.done(EXIT_OK)
