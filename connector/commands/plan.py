"""`astro-scim plan`: read the IdP, print what apply would change, write nothing to it (`-out FILE` saves the plan)."""

from __future__ import annotations

import argparse

from connector import output
from connector.config.arg import load_config_arg
from connector.config.load import ProjectConfig
from connector.errors import EXIT_FINDINGS, EXIT_OK
from connector.plan.model import Plan
from connector.plan.view import show_plans
from connector.providers import registry


def run(args: argparse.Namespace) -> int:
    cfg = load_config_arg(args.config)
    if args.out:
        from connector.plan import saved

        saved.check_writable(args.out)
    named: list[tuple[str, Plan]] = []
    for provider in registry.config_providers(cfg, args.idp, prune=args.prune, pause=args.pause):
        try:
            named.append((provider.name, provider.plan()))
        finally:
            provider.close()
    plans = [plan for _, plan in named]
    show_plans(plans, args.format)
    if args.out:
        _save(args, cfg, named)
    if args.exit_code and any(plans):
        return EXIT_FINDINGS
    return EXIT_OK


def _save(args: argparse.Namespace, cfg: ProjectConfig, named: list[tuple[str, Plan]]) -> None:
    from connector.plan import saved

    path = saved.write(args.out, cfg, {"idp": args.idp, "prune": args.prune, "pause": args.pause}, named)
    say = output.warn if args.format == "json" else output.say  # keep a JSON plan on stdout parseable
    say(f"saved the plan to {path}; apply exactly it with: astro-scim apply {path}")
