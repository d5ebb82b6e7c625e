"""`astro-scim test-connection`: can we reach the IdP, find the app, and does the Astro SCIM token work?"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from connector import output
from connector.config.arg import load_config_arg
from connector.errors import EXIT_FINDINGS, EXIT_OK
from connector.providers import registry
from connector.providers.base import Check, Health

MARK = {True: "ok  ", False: "FAIL", None: "info"}


def show_checks(title: str, checks: list[Check]) -> bool:
    output.say(title, style="bold")
    for c in checks:
        style = {True: "green", False: "red", None: "cyan"}[c.ok]
        output.say(f"  {MARK[c.ok]} {c.name}" + (f": {c.detail}" if c.detail else ""), style=style)
        if c.hint and c.ok is False:
            output.say(f"       hint: {c.hint}", style="dim")
    return all(c.ok is not False for c in checks)


def run_checks(args: argparse.Namespace, checks: Callable[[Health], list[Check]]) -> int:
    """Show each configured IdP's `checks`; exit 1 when any failed. `status` shares it."""
    cfg = load_config_arg(args.config)
    ok = True
    for provider in registry.health(cfg, args.idp):
        try:
            ok &= show_checks(provider.name, checks(provider))
        finally:
            provider.close()
    return EXIT_OK if ok else EXIT_FINDINGS


def run(args: argparse.Namespace) -> int:
    return run_checks(args, lambda provider: provider.test_connection())
