"""`astro-scim push-groups [GROUP...]`: Okta Group Push, checked against what Astro actually holds.

Creates or activates missing push mappings and re-pushes groups that are in ERROR or out of sync with their Astro
Team. Okta has no "Push now" API; the re-push is the documented workaround (mapping INACTIVE, then ACTIVE), and it
is verified in Astro's SCIM afterwards. Without --yes it only shows what it would do (or asks, on a terminal).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from connector import output
from connector.config.arg import load_config_arg
from connector.errors import EXIT_OK, RemoteError, VerificationFailed
from connector.plan import trail
from connector.providers import registry
from connector.providers.base import PushReport, PushState


def _show_state(g: PushState, acting: bool) -> None:
    status = g.status or "no mapping"
    # Once acted upon, in_astro is the state after the re-push: this line and its reason describe the state before.
    members = g.in_astro_before if g.verified is not None else g.in_astro
    team = "no Team in Astro" if members is None else f"Team has {len(members)} member(s)"
    line = f"  {g.name}: push mapping {status}, {team}; Okta expects {len(g.expected)}"
    output.say(line, style="yellow" if g.action else "green")
    if g.action:
        output.say(f"      {g.reason}")
        output.say(f"      {'doing' if acting else 'would'}: {g.describe_action()}")


def _show_report(report: PushReport) -> None:
    for g in report.groups:
        _show_state(g, report.acted)


def _group_json(g: PushState, acted: bool) -> dict[str, Any]:
    """One group in the JSON answer (docs/schemas/push-groups.v1.json): its state before acting, what was (or
    would be) done, and the outcome read back in Astro."""
    before = g.in_astro_before if g.verified is not None else g.in_astro
    outcome = ("in_sync" if not g.action else "pending" if not acted else
               "verified" if g.verified else "not_verified" if g.verified is None else "failed")
    return {"name": g.name, "group_id": g.group_id, "mapping_id": g.mapping_id, "status": g.status,
            "error": g.error, "expected_members": len(g.expected),
            "astro_members": None if before is None else len(before),
            "astro_members_after": None if not acted or not g.action or g.in_astro is None or g.unread
            else len(g.in_astro),
            "action": g.action, "action_text": g.describe_action() if g.action else None, "reason": g.reason,
            "outcome": outcome, "result": g.result or None}


def _fill(doc: output.Document, report: PushReport) -> None:
    doc["acted"] = report.acted
    doc["groups"] = [_group_json(g, report.acted) for g in report.groups]
    doc["manual_steps"] = report.manual_steps or None


def _confirm(count: int, machine: bool = False) -> bool:
    if machine or not sys.stdin.isatty():  # --format json: no question mixed with the document
        return False
    answer = input(f"fix {count} group(s) in Okta? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _trail(report: PushReport) -> None:
    for g in report.groups:
        if not g.action:
            continue
        result = ("verified" if g.verified else "not verified" if g.verified is None else "failed"
                  ) if report.acted else trail.NOT_APPLIED
        trail.record("okta", {"action": g.action, "resource": "okta.push_mapping", "key": g.name,
                              "detail": g.describe_action(), "outcome": result, "message": g.result or g.reason})


@trail.recorded("push-groups")
def run(args: argparse.Namespace) -> int:
    # --format json: one document (docs/schemas/push-groups.v1.json), printed however the command ends
    with output.json_document("push-groups", "push-groups", args.format == "json", idp="okta", acted=False,
                              groups=[], manual_steps=None) as doc:
        return _run(args, doc)


def _run(args: argparse.Namespace, doc: output.Document) -> int:
    cfg = load_config_arg(args.config)
    trail.bind(cfg)
    provider = registry.group_push(cfg)
    names = list(args.groups) or None
    progress = output.progress()
    try:
        with progress.stage("okta group push", unit="groups") as stage:
            report = provider.push_groups(names, yes=args.yes, progress=stage.update)
        _fill(doc, report)
        output.say("okta: Group Push", style="bold")
        _show_report(report)
        if not report.pending:
            output.say("every group is pushed and in sync with Astro", style="green")
            return doc.done(EXIT_OK)
        if not report.acted:
            if not _confirm(len(report.pending), args.format == "json"):
                output.say(f"{len(report.pending)} group(s) need attention; nothing changed "
                           "(re-run with --yes to fix them)")
                _trail(report)
                return doc.done(EXIT_OK, ok=False)  # exit 0 as ever (a dry run), but not all in sync
            with progress.stage("okta group push", unit="groups") as stage:
                report = provider.push_groups(names, yes=True, progress=stage.update)
            _fill(doc, report)
        _trail(report)
        if any(g.action == "repush" and not g.relink for g in report.groups):
            output.warn("note: Okta has no API for Push now; re-pushing uses the workaround of setting the push "
                        "mapping INACTIVE and then ACTIVE again, and checks the result in Astro")
        for g in report.groups:
            if not g.action:
                continue
            style = "green" if g.verified else "red"
            output.say(f"  {g.name}: {g.describe_action()}: {g.result}", style=style)
    finally:
        provider.close()
    if stranded := [g for g in report.groups if g.left_state]:
        # A re-push that failed halfway: the audit trail has it (above); the error says what it left.
        raise RemoteError("; ".join(g.result for g in stranded), service="okta",
                          hint="run: " + "; ".join(f"astro-scim push-groups {shlex.quote(g.name)} --yes"
                                                   for g in stranded))
    if errored := [g for g in report.groups if g.failure]:
        # A request failed (the others' outcomes are shown and in the audit trail above).
        raise RemoteError("; ".join(f"{g.name}: {g.failure}" for g in errored), service="okta",
                          hint="re-run 'astro-scim push-groups --yes' for the groups that failed")
    if unread := [g for g in report.groups if g.unread]:
        # Done in Okta, but no read-back: no verdict without evidence (exit 3, as provision's).
        raise RemoteError(f"okta: {len(unread)} group(s) pushed but not verified, Astro could not be read: "
                          f"{unread[0].unread}",
                          hint="once Astro answers ('astro-scim test-connection'), 'astro-scim push-groups' (without "
                               "--yes) reads each Team back and changes nothing")
    if report.failed:
        names_text = ", ".join(g.name for g in report.failed)
        raise VerificationFailed(
            f"okta: {len(report.failed)} group(s) still differ in Astro after the re-push: {names_text}",
            hint=report.manual_steps or None,
        )
    output.say(f"{len(report.pending)} group(s) fixed and verified in Astro", style="bold green")
    return doc.done(EXIT_OK)
