"""`astro-scim test-connection`: can we reach the IdP, find the app, and does the Astro SCIM token work?"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from connector import output
from connector.config.arg import load_config_arg
from connector.config.load import AstroConfig, ProjectConfig
from connector.errors import EXIT_FINDINGS, EXIT_OK, ConnectorError, RemoteError
from connector.providers import registry
from connector.providers.base import Check, Health

MARK = {True: "ok  ", False: "FAIL", None: "info"}
CHECKS_SCHEMA = "astro-scim/checks/v1"  # its JSON Schema: docs/schemas/checks.v1.json


def show_checks(title: str, checks: list[Check]) -> bool:
    output.say(title, style="bold")
    for c in checks:
        style = {True: "green", False: "red", None: "cyan"}[c.ok]
        output.say(f"  {MARK[c.ok]} {c.name}" + (f": {c.detail}" if c.detail else ""), style=style)
        if c.hint and c.ok is not True:  # a failure's fix, or what an information line ("not verified") needs
            output.say(f"       hint: {c.hint}", style="dim")
    return all(c.ok is not False for c in checks)


def checks_document(command: str, results: list[tuple[str, list[Check]]]) -> dict[str, Any]:
    """The `--format json` answer of test-connection and status (docs/schemas/checks.v1.json)."""
    from connector import __version__

    idps = [{"idp": name, "ok": all(c.ok is not False for c in found),
             "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "hint": c.hint} for c in found]}
            for name, found in results]
    ok = all(i["ok"] for i in idps)
    now = output.utc_now()
    # generated_at and exit_code as every other document has them; checked_at (the same time) stays for v1 readers.
    return {
        "schema": CHECKS_SCHEMA, "command": command, "tool_version": __version__, "generated_at": now,
        "checked_at": now, "ok": ok, "exit_code": EXIT_OK if ok else EXIT_FINDINGS, "idps": idps,
    }


def run_checks(args: argparse.Namespace, checks: Callable[[Health, ProjectConfig], list[Check]], command: str
               ) -> int:
    """Show each configured IdP's `checks`; exit 1 when any failed. `status` shares it."""
    results: list[tuple[str, list[Check]]] = []
    try:
        return _run_checks(args, checks, command, results)
    except (ConnectorError, KeyboardInterrupt) as exc:
        if args.format == "json":  # the document still comes: the checks made so far, and what stopped them
            document = checks_document(command, results)
            document["error"] = output.error_fields(exc)  # Ctrl-C too: stdout holds one document however it ends
            document["ok"], document["exit_code"] = False, document["error"]["exit_code"]
            output.raw(json.dumps(document, indent=2))
        raise


def _run_checks(args: argparse.Namespace, checks: Callable[[Health, ProjectConfig], list[Check]], command: str,
                results: list[tuple[str, list[Check]]]) -> int:
    cfg = load_config_arg(args.config)
    unread: RemoteError | None = None
    for provider in registry.health(cfg, args.idp):
        try:
            found = checks(provider, cfg)
        except RemoteError as exc:
            # This IdP could not be read (after retries): say so in its place and go on with the others, whose
            # verdicts stand; the run still ends as the remote error (exit 3), never healthy.
            found = [Check("read the IdP", False, f"not checked: {exc}", exc.hint)]
            unread = unread or exc
        finally:
            provider.close()
        results.append((provider.name, found))
        if args.format == "text":
            show_checks(provider.name, found)
    if unread is not None:
        raise unread
    document = checks_document(command, results)
    if args.format == "json":
        output.raw(json.dumps(document, indent=2))
    return EXIT_OK if document["ok"] else EXIT_FINDINGS


def run(args: argparse.Namespace) -> int:
    checked: set[str] = set()  # Astro organizations whose conformance is shown (once each, with the first IdP)

    def checks(provider: Health, cfg: ProjectConfig) -> list[Check]:
        found = provider.test_connection()
        try:
            astro = cfg.astro_for(provider.name)
        except ConnectorError:  # no Astro configured for it: the provider's own checks say so
            return found
        if astro.scim_url not in checked:
            checked.add(astro.scim_url)
            found.append(conformance_check(astro))
        return found

    return run_checks(args, checks, "test-connection")


def conformance_check(astro: AstroConfig) -> Check:
    """Whether Astro's SCIM answers validate against RFC 7643 (connector.astro.conformance): deviations are
    information (the audit tolerates them), an endpoint that cannot be read is a failure."""
    from connector.astro.conformance import check_conformance

    name = "Astro SCIM conformance"
    try:
        deviations = check_conformance(astro)
    except ConnectorError as exc:
        return Check(name, False, str(exc), exc.hint)
    if not deviations:
        return Check(name, True, "discovery, Users and Teams validate against RFC 7643")
    return Check(name, None, "tolerated by the audit: " + "; ".join(deviations),
                 "nothing to fix on your side; the audit reads these answers as plain JSON")
