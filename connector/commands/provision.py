"""`astro-scim provision --user U | --group G`: Entra provision on demand (the seed FAQ's fix for an Azure user
or group that is out of sync with Astro). Groups are sent as one group plus up to 5 members per call, paced at
5 calls per 10 seconds."""

from __future__ import annotations

import argparse
from typing import Any

from connector import output
from connector.config.arg import load_config_arg
from connector.errors import EXIT_FINDINGS, EXIT_OK
from connector.plan import trail
from connector.providers import registry
from connector.providers.base import OnDemandOutcome


def _result_json(r: OnDemandOutcome) -> dict[str, Any]:
    """One subject in the JSON answer (docs/schemas/provision.v1.json): Entra's own verdict on exporting it to
    Astro (its provisionOnDemand result), and what that verdict means here."""
    outcome = "provisioned" if r.ok else "failed" if r.failed else "not_provisioned"
    return {"subject": r.subject, "object_type": r.object_type, "action": r.action or None, "status": r.status,
            "error_code": getattr(r, "error_code", "") or None, "reason": r.reason or None, "outcome": outcome,
            "message": r.describe()}


@trail.recorded("provision")
def run(args: argparse.Namespace) -> int:
    # --format json: one document (docs/schemas/provision.v1.json), printed however the command ends
    subject = {"type": "user" if args.user is not None else "group",
               "name": args.user if args.user is not None else args.group}
    with output.json_document("provision", "provision", args.format == "json", idp=args.idp, subject=subject,
                              results=[], summary={"results": 0, "provisioned": 0, "not_provisioned": 0}) as doc:
        return _run(args, doc)


def _run(args: argparse.Namespace, doc: output.Document) -> int:
    cfg = load_config_arg(args.config)
    trail.bind(cfg)
    provider = registry.provision_on_demand(cfg, args.idp)
    try:
        subject = f"user {args.user}" if args.user is not None else f"group {args.group}"
        output.say(f"azure: provisioning {subject} on demand", style="bold")
        with output.progress().stage(f"provision {subject}", unit="calls") as stage:
            results = provider.provision_on_demand(users=[args.user] if args.user is not None else None,
                                                    groups=[args.group] if args.group is not None else None,
                                                    progress=stage.update)
    finally:
        provider.close()
    not_done = 0
    doc["results"] = [_result_json(r) for r in results]
    for r in results:
        style = "red" if r.failed else "green" if r.ok else "yellow"
        output.say("  " + r.describe(), style=style)
        not_done += not r.ok
        trail.record("azure", {"action": "provision_on_demand", "resource": r.object_type, "key": r.subject,
                               "detail": r.action, "outcome": r.status, "message": r.describe()})
    summary = f"{len(results)} result(s): {len(results) - not_done} provisioned or in sync"
    if not_done:
        summary += f", {not_done} not provisioned"
    output.say(summary, style="bold red" if not_done else "bold green")
    doc["summary"] = {"results": len(results), "provisioned": len(results) - not_done, "not_provisioned": not_done}
    return doc.done(EXIT_FINDINGS if not_done else EXIT_OK)
