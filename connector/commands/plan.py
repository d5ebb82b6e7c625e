"""`astro-scim plan`: read the IdP, print what apply would change, write nothing."""

from __future__ import annotations

import argparse

from connector.config.arg import load_config_arg
from connector.errors import EXIT_FINDINGS, EXIT_OK
from connector.plan.view import show_plans
from connector.providers import registry


def run(args: argparse.Namespace) -> int:
    cfg = load_config_arg(args.config)
    plans = []
    for provider in registry.config_providers(cfg, args.idp, prune=args.prune, pause=args.pause):
        try:
            plans.append(provider.plan())
        finally:
            provider.close()
    show_plans(plans, args.format)
    if args.exit_code and any(plans):
        return EXIT_FINDINGS
    return EXIT_OK
