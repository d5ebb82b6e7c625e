"""`astro-scim status`: provisioning health as the IdP reports it (job state, quarantine, errors)."""

from __future__ import annotations

import argparse

from connector.cli import load_config_arg
from connector.commands.test_connection import show_checks
from connector.errors import EXIT_FINDINGS, EXIT_OK
from connector.providers import registry


def run(args: argparse.Namespace) -> int:
    cfg = load_config_arg(args.config)
    ok = True
    for provider in registry.build(cfg, args.idp):
        try:
            ok &= show_checks(provider.name, provider.status())
        finally:
            provider.close()
    return EXIT_OK if ok else EXIT_FINDINGS
