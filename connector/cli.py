"""Argument parsing, exit codes and the last line of defence against tracebacks.

Each command lives in `connector/commands/<name>.py` with `run(args) -> int` and is imported only when chosen,
so `validate`, `render` and `--help` never pay for the Okta or Graph SDKs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

from connector import __version__
from connector.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, ConnectorError

DEFAULT_CONFIG = "astro-scim.yaml"

EXIT_CODES = """exit codes:
  0    success, no findings, no drift
  1    findings: validation errors, drift, a plan with changes (--exit-code), a manual step to do
  2    usage or configuration error (file:line says where)
  3    remote error: authentication, API or network failure after retries
  70   internal error: a one-line message and the path of a log with the details
  130  interrupted
"""


def _name(value: str) -> str:
    """A user, group or app name argument: an empty one would name nothing (and used to read as the other
    option: `provision --user ''` provisioned "group None")."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()


def _config_option(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "-c", "--config", default=os.environ.get("ASTRO_SCIM_CONFIG", DEFAULT_CONFIG),
        help=f"project config file (default: $ASTRO_SCIM_CONFIG or {DEFAULT_CONFIG})",
    )


def _idp_option(p: argparse.ArgumentParser, choices: Sequence[str] = ("okta", "azure", "all"), default: str = "all") -> None:
    p.add_argument("--idp", choices=list(choices), default=default, help=f"which identity provider (default: {default})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astro-scim",
        description="Set up, check and repair SCIM provisioning from Okta and Microsoft Entra ID into Astro.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"astro-scim {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log HTTP calls (secrets masked) to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check mapping files offline (CI)", epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="mapping files or folders of *.yaml")
    p.add_argument("--format", choices=["text", "json", "github"], default="text")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")

    p = sub.add_parser("render", help="render IdP configuration from the mappings (offline)")
    p.add_argument("--idp", choices=["okta", "azure"], required=True)
    p.add_argument("--config", help="project config: fills in URLs, app and group names")
    p.add_argument("--mapping", help="mapping file (default: from --config, else mappings/<idp>.yaml)")
    p.add_argument("--out", required=True, help="output folder")

    for name, text in (("plan", "show what apply would change; writes nothing"),
                       ("apply", "make the IdP match the config (idempotent)")):
        p = sub.add_parser(name, help=text)
        _config_option(p)
        _idp_option(p, ("okta", "azure", "astro", "all"))  # astro: Team access templates only
        p.add_argument("--prune", action="store_true", help="also remove push mappings not in the config")
        # plan takes it too, so that it shows what `apply --pause` will do (pause, not start, the job)
        p.add_argument("--pause", action="store_true", help="Entra: leave the provisioning job paused")
        if name == "plan":
            # plan only: apply narrates its changes as text (an ignored --format json on apply misled scripts)
            p.add_argument("--format", choices=["text", "json"], default="text")
            p.add_argument("--exit-code", action="store_true", help="exit 1 when the plan has changes")
        else:
            p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
            p.add_argument("--force", action="store_true", help="allow deletions above the safety limit")

    p = sub.add_parser("test-connection", help="check IdP credentials, the app and the Astro SCIM token")
    _config_option(p)
    _idp_option(p)

    p = sub.add_parser("push-groups", help="Okta: create/link push mappings and re-push out-of-sync groups")
    _config_option(p)
    p.add_argument("groups", nargs="*", metavar="GROUP", type=_name, help="group names (default: okta.push_groups)")
    p.add_argument("--yes", action="store_true")

    p = sub.add_parser("provision", help="Entra: provision a user or group on demand")
    _config_option(p)
    p.add_argument("--idp", choices=["azure"], default="azure")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--user", type=_name, help="userPrincipalName or object id")
    g.add_argument("--group", type=_name, help="display name or object id")

    p = sub.add_parser("drift", help="audit the IdP against Astro's SCIM endpoint; --fix repairs")
    _config_option(p)
    _idp_option(p)
    p.add_argument("--format", choices=["text", "json", "markdown", "junit", "github", "html"], default="text")
    p.add_argument("--output", "-o", help="write the report to this file instead of stdout")
    p.add_argument("--fix", action="store_true", help="print the remediation plan (acts only with --yes)")
    p.add_argument("--yes", action="store_true")
    p.add_argument("--delete-orphans", action="store_true", help="with --fix: delete Astro accounts the IdP removed")
    p.add_argument("--force", action="store_true", help="allow deletions above the safety limit")

    p = sub.add_parser("status", help="IdP provisioning health: job state, quarantine, errors")
    _config_option(p)
    _idp_option(p)

    p = sub.add_parser("sandbox", help="run emulated Okta, Graph and Astro SCIM on loopback")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--groups", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--rate-429", type=float, default=0.0)
    p.add_argument("--rate-5xx", type=float, default=0.0)
    p.add_argument("--write-config", metavar="FILE", help="write an astro-scim.yaml for this sandbox")
    p.add_argument("--write-json", metavar="FILE", help="write URLs and tokens as JSON for scripts")

    sub.add_parser("demo", help="the whole story against a fresh sandbox, narrated")
    return parser


COMMANDS = {
    "validate": "validate", "render": "render", "plan": "plan", "apply": "apply",
    "test-connection": "test_connection", "push-groups": "push_groups", "provision": "provision",
    "drift": "drift", "status": "status", "sandbox": "sandbox", "demo": "demo",
}


def _crash_log(exc: BaseException) -> str:
    from connector.support.redact import redact

    fd, path = tempfile.mkstemp(prefix="astro-scim-crash-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(redact("".join(traceback.format_exception(exc))))
    return path


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (tests and embedders swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@contextlib.contextmanager
def _verbose_logging(enabled: bool) -> Iterator[None]:
    """-v: log HTTP calls of our code and the SDKs to stderr, every record masked by RedactingFilter.

    The handler goes on the root logger for the duration of the command only (not basicConfig, which does
    nothing when any handler exists, e.g. under pytest or in an embedding program).
    """
    if not enabled:
        yield
        return
    from connector.support.redact import RedactingFilter

    root = logging.getLogger()
    handler = _StderrHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    from connector import output

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        module = importlib.import_module(f"connector.commands.{COMMANDS[args.command]}")
        args.program = main  # the program itself, for a command that runs others (demo): no import back to here
        with _verbose_logging(args.verbose):
            return int(module.run(args))
    except ConnectorError as exc:
        output.error(str(exc), exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        output.error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # the promise: never a raw traceback
        path = _crash_log(exc)
        output.error(f"unexpected {type(exc).__name__}: {exc}", f"details were written to {path}; please report it")
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
