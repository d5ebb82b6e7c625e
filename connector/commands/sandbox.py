"""`astro-scim sandbox`: run emulated Okta, Microsoft Graph and Astro SCIM on loopback until Ctrl-C.

Token values are never printed: they go to owner-only files (next to --write-config, or into --write-json), and
the panel says which file holds which token.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from connector import output
from connector.errors import EXIT_OK, UsageError


def _check(args: argparse.Namespace) -> None:
    if args.users < 0 or args.groups < 0:
        raise UsageError("--users and --groups must be 0 or more")
    if args.latency_ms < 0:
        raise UsageError("--latency-ms must be 0 or more")
    for flag, value in (("--rate-429", args.rate_429), ("--rate-5xx", args.rate_5xx)):
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{flag} must be a fraction between 0 and 1, not {value}")
    for flag, value in (("--write-config", args.write_config), ("--write-json", args.write_json)):
        if value:
            _check_writable(flag, Path(value))


def _check_writable(flag: str, path: Path) -> None:
    """Refuse a path the sandbox could not write, before it starts its servers (it creates missing folders)."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder, not a file", hint=f"e.g. {flag} {path / 'astro-scim.yaml'}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: {folder} is a file, not a folder", hint="choose another path")


def _panel(sb: object, config_path: Path, json_path: Path | None, args: argparse.Namespace, temporary: bool) -> None:
    from rich.panel import Panel
    from rich.table import Table

    from connector.sandbox.core import TOKEN_FILES, Sandbox

    assert isinstance(sb, Sandbox)
    where = config_path.parent

    def token_in(key: str) -> str:
        return f"token in {where / TOKEN_FILES[key]}"

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Okta", f"{sb.okta_url or '(emulator not available)'}   {token_in('okta')}")
    table.add_row("Microsoft Graph", f"{sb.graph_url or '(emulator not available)'}   {token_in('graph')}")
    table.add_row("Entra tenant", sb.tenant_id)
    for idp in ("okta", "azure"):
        org = sb.astro_orgs[idp]
        table.add_row(f"Astro SCIM ({idp})", f"{org.scim_url}   {token_in('astro-' + idp)}")
    table.add_row("Seeded", f"{len(sb.seed_org.people)} people, {len(sb.seed_org.teams)} teams (seed {args.seed})")
    table.add_row("Latency", f"{args.latency_ms:g} ms per request, every service" if args.latency_ms else "off")
    faults = f"429 rate {args.rate_429:g}, 5xx rate {args.rate_5xx:g}"
    table.add_row("IdP faults", faults if (args.rate_429 or args.rate_5xx) else "off")
    table.add_row("Config", f"{config_path}" + ("   (temporary: deleted on exit)" if temporary else ""))
    if json_path is not None:
        table.add_row("JSON", f"{json_path}   (URLs and all tokens)")
    output.render(Panel(table, title="astro-scim sandbox: running on loopback", expand=False))
    if sb.okta is not None and sb.okta_url:
        # Okta's manual step has no API; the emulator takes it at an admin endpoint. Filled in, the token read from
        # its file when run (never printed).
        app_id = str(sb.okta.app_by_label("Astro")["id"])
        org = sb.astro_orgs["okta"]
        token_file = shlex.quote(str(where / TOKEN_FILES["astro-okta"]))
        output.say("Okta's manual step (Configure API integration), when apply stops at it, is here:")
        # raw: one line, never wrapped, as the shell takes it
        output.raw(f"  curl -sS -X POST {sb.okta_url}/_sandbox/apps/{app_id}/provisioning "
                   f"-d '{{\"baseUrl\": \"{org.scim_url}\", \"token\": \"'\"$(cat {token_file})\"'\"}}'")
    output.say(f"try: astro-scim plan --config {config_path}")
    output.say("Ctrl-C stops the sandbox.", style="dim")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    _check(args)
    from connector.sandbox.core import Sandbox
    from connector.sandbox.faults import FaultConfig

    faults = FaultConfig(latency_ms=args.latency_ms, rate_429=args.rate_429, rate_5xx=args.rate_5xx, seed=args.seed)
    # Latency is the network's: every service pays it, Astro included (a slow link to Astro is what makes an
    # audit's Astro read worth rehearsing). 429s and 5xx are the IdPs' faults.
    astro_faults = FaultConfig(latency_ms=args.latency_ms, seed=args.seed)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C and SIGTERM (e.g. from a process manager) both shut down cleanly. SIGINT gets a handler too: a
    # shell starts background jobs with SIGINT ignored, and Python would then never raise KeyboardInterrupt.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    temp_dir: Path | None = None
    try:
        with Sandbox(users=args.users, groups=args.groups, seed=args.seed, faults=faults,
                     astro_faults=astro_faults) as sb:
            if args.write_config:
                config_path = sb.write_config(Path(args.write_config))
            else:
                # The tokens must live somewhere the user can point the connector at; only for this run.
                temp_dir = Path(tempfile.mkdtemp(prefix="astro-scim-sandbox-"))
                config_path = sb.write_config(temp_dir / "astro-scim.yaml")
            json_path = sb.write_json(Path(args.write_json)) if args.write_json else None
            _panel(sb, config_path.resolve(), json_path.resolve() if json_path else None, args, temp_dir is not None)
            while not stop.wait(0.5):
                pass
            output.say("stopping the sandbox ...", style="dim")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    output.say("sandbox stopped")
    return EXIT_OK
