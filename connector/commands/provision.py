"""`astro-scim provision --user U | --group G`: Entra provision on demand (the seed FAQ's fix for an Azure user
or group that is out of sync with Astro). Groups are sent as one group plus up to 5 members per call, paced at
5 calls per 10 seconds."""

from __future__ import annotations

import argparse

from connector import output
from connector.config.arg import load_config_arg
from connector.errors import EXIT_FINDINGS, EXIT_OK
from connector.plan import trail
from connector.providers import registry


@trail.recorded("provision")
def run(args: argparse.Namespace) -> int:
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
    return EXIT_FINDINGS if not_done else EXIT_OK
