"""`astro-scim status`: provisioning health as the IdP reports it (job state, quarantine, errors)."""

from __future__ import annotations

import argparse

from connector.commands.test_connection import run_checks


def run(args: argparse.Namespace) -> int:
    return run_checks(args, lambda provider, _cfg: provider.status(), "status")
