"""Argument parsing, exit codes and the last line of defence against tracebacks.

Each command lives in `connector/commands/<name>.py` with `run(args) -> int` and is imported only when chosen,
so `validate`, `render` and `--help` never pay for the Okta or Graph SDKs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import logging
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from connector import __version__
from connector.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_PIPE_CLOSED, EXIT_USAGE, ConnectorError

DEFAULT_CONFIG = "astro-scim.yaml"

EXIT_CODES = """exit codes:
  0    success, no findings, no drift
  1    findings: validation errors, drift, a plan with changes (--exit-code), a manual step to do
  2    usage or configuration error (file:line says where), or an extra the command needs is not
       installed (the message gives the pip install line)
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


def _format_option(p: argparse.ArgumentParser, schema: str, *more: str) -> None:
    """--format json: one document on stdout, valid against docs/schemas/<schema>.v1.json; narration on stderr."""
    p.add_argument("--format", choices=["text", "json", *more], default="text",
                   help=f"json: one document (docs/schemas/{schema}.v1.json)")


def _idp_option(p: argparse.ArgumentParser, choices: Sequence[str] = ("okta", "azure", "all"), default: str = "all") -> None:
    p.add_argument("--idp", choices=list(choices), default=default, help=f"which identity provider (default: {default})")


def _global_options(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="log HTTP calls (secrets masked) to stderr")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="print only errors and the data asked for (--format json, reports); no progress")
    p.add_argument("--log-format", choices=["text", "json"], default="text" if default is False else default,
                   help="json: each log record (warnings; with -v the HTTP calls) one JSON line on stderr, "
                        "for log shippers")


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped command, choice or flag (Python 3.11 has none)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{_did_you_mean(self, message)}\n"
                              f"hint: {self.prog} --help lists what it takes\n")


def _did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    from connector.support.suggest import closest

    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        guess = closest(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        return f" (did you mean '{guess}'?)" if guess else ""
    if message.startswith("unrecognized arguments:"):
        words = [word.split("=")[0] for word in message.split(":", 1)[1].split() if word.startswith("-")]
        # A real flag of other commands (`validate --config`) is named with the commands that take it: a guess
        # would only repeat it ("did you mean --config?").
        owners = {word: sorted(name for name, p in _commands(parser).items() if word in p._option_string_actions)
                  for word in words}
        known = [f"{word} is an option of {', '.join(names)}" for word, names in owners.items() if names]
        if known:
            return " (" + "; ".join(known) + ")"
        flags = {flag for p in _all_parsers(parser) for flag in p._option_string_actions}
        guesses = [(word, guess) for word in words if (guess := closest(word, flags))]
        if len(guesses) == 1:
            return f" (did you mean {guesses[0][1]}?)"
        return " (did you mean " + ", ".join(f"{g} for {w}" for w, g in guesses) + "?)" if guesses else ""
    return ""


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: p for action in subs for name, p in action.choices.items()}


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [parser, *_commands(parser).values()]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="astro-scim",
        description="Set up, check and repair SCIM provisioning from Okta and Microsoft Entra ID into Astro.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"astro-scim {__version__}")
    _global_options(parser, False)
    # -v/-q are taken after the command too: each subcommand repeats them with a SUPPRESS default, so that one
    # not given there leaves the value parsed before the command alone (argparse copies the subcommand's
    # namespace over the main one).
    common = _Parser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    p = command("validate", help="check mapping files offline (CI)", epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="mapping files or folders of *.yaml")
    _format_option(p, "validate", "github")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")

    p = command("render", help="render IdP configuration from the mappings (offline)")
    p.add_argument("--idp", choices=["okta", "azure"], required=True)
    p.add_argument("--config", help="project config: fills in URLs, app and group names")
    p.add_argument("--mapping", help="mapping file (default: from --config, else mappings/<idp>.yaml)")
    p.add_argument("--out", required=True, help="output folder")
    _format_option(p, "render")

    for name, text in (("plan", "show what apply would change; writes nothing"),
                       ("apply", "make the IdP match the config (idempotent)")):
        p = command(name, help=text)
        _config_option(p)
        _idp_option(p, ("okta", "azure", "astro", "all"))  # astro: Team access templates only
        p.add_argument("--prune", action="store_true", help="also remove push mappings not in the config")
        # plan takes it too, so that it shows what `apply --pause` will do (pause, not start, the job)
        p.add_argument("--pause", action="store_true", help="Entra: leave the provisioning job paused")
        _format_option(p, name)  # apply: needs --yes (or a saved plan) with json
        if name == "plan":
            p.add_argument("--exit-code", action="store_true", help="exit 1 when the plan has changes")
            p.add_argument("-out", "--out", metavar="FILE", help="save the plan for 'astro-scim apply FILE'")
        else:
            p.add_argument("plan_file", nargs="?", metavar="FILE",
                           help="a plan saved by 'plan -out FILE': apply exactly it, refused if the org moved")
            p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
            p.add_argument("--force", action="store_true", help="allow deletions above the safety limit")
            p.add_argument("--no-wait", action="store_true",
                           help="do not wait for the IdP to provision and check Astro (says 'not verified')")
            p.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                           help="how long to wait for the IdP's provisioning to show in Astro (default 120)")

    p = command("test-connection", help="check IdP credentials, the app and the Astro SCIM token")
    _config_option(p)
    _idp_option(p)
    _format_option(p, "checks")

    p = command("push-groups", help="Okta: create/link push mappings and re-push out-of-sync groups")
    _config_option(p)
    p.add_argument("groups", nargs="*", metavar="GROUP", type=_name, help="group names (default: okta.push_groups)")
    p.add_argument("--yes", action="store_true")
    _format_option(p, "push-groups")

    p = command("provision", help="Entra: provision a user or group on demand")
    _config_option(p)
    p.add_argument("--idp", choices=["azure"], default="azure")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--user", type=_name, help="userPrincipalName or object id")
    g.add_argument("--group", type=_name, help="display name or object id")
    _format_option(p, "provision")

    p = command("drift", help="audit the IdP against Astro's SCIM endpoint; --fix repairs")
    _config_option(p)
    _idp_option(p)
    _format_option(p, "drift", "markdown", "junit", "github", "html")
    p.add_argument("--output", "-o", help="write the report to this file instead of stdout")
    p.add_argument("--fix", action="store_true", help="print the remediation plan (acts only with --yes)")
    p.add_argument("--yes", action="store_true")
    p.add_argument("--delete-orphans", action="store_true", help="with --fix: delete Astro accounts the IdP removed")
    p.add_argument("--force", action="store_true", help="allow deletions above the safety limit")

    p = command("status", help="IdP provisioning health: job state, quarantine, errors")
    _config_option(p)
    _idp_option(p)
    _format_option(p, "checks")

    p = command("sandbox", help="run emulated Okta, Graph and Astro SCIM on loopback")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--groups", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--rate-429", type=float, default=0.0)
    p.add_argument("--rate-5xx", type=float, default=0.0)
    p.add_argument("--write-config", metavar="FILE", help="write an astro-scim.yaml for this sandbox")
    p.add_argument("--write-json", metavar="FILE", help="write URLs and tokens as JSON for scripts")

    command("demo", help="the whole story against a fresh sandbox, narrated")

    p = command("completion", help="print the shell completion script (eval it, or save it in the shell's folder)")
    p.add_argument("shell", choices=["bash", "zsh", "fish"])

    p = command("init", help="write a starting astro-scim.yaml from a few answers and what the IdPs hold")
    _config_option(p)  # the file to write
    p.add_argument("--idp", choices=["okta", "azure", "all"], help="default: from the flags given, else asked")
    p.add_argument("--non-interactive", action="store_true", help="never ask: every answer is a flag (CI)")
    _format_option(p, "init")  # needs --non-interactive with json
    p.add_argument("--force", action="store_true", help="overwrite an existing config file")
    p.add_argument("--astro-scim-url", help="Astro's SCIM Integration URL")
    p.add_argument("--astro-token-ref", help="env:NAME or file:PATH (default env:ASTRO_API_TOKEN)")
    p.add_argument("--astro-api-url", help="Astro Platform API URL (default https://api.astronomer.io/v1)")
    p.add_argument("--okta-org-url")
    p.add_argument("--okta-token-ref", help="env:NAME or file:PATH (default env:OKTA_API_TOKEN)")
    p.add_argument("--okta-app-label", default="Astro")
    p.add_argument("--okta-integration", choices=["oin", "manual"], default="oin")
    p.add_argument("--tenant-id", help="Entra tenant id")
    p.add_argument("--azure-credential", choices=["secret", "token", "cli", "default", "workload"])
    p.add_argument("--azure-client-id")
    p.add_argument("--azure-secret-ref", help="env:NAME or file:PATH (default env:AZURE_CLIENT_SECRET)")
    p.add_argument("--graph-token-ref", help="env:NAME or file:PATH: a ready Graph token")
    p.add_argument("--graph-url", help="Graph endpoint (default https://graph.microsoft.com/v1.0)")
    p.add_argument("--azure-app-name", default="Astro")
    p.add_argument("--assign-group", action="append", metavar="GROUP", help="repeatable; default: discovered")
    p.add_argument("--push-group", action="append", metavar="GROUP", help="Okta; repeatable; default: discovered")
    return parser


COMMANDS = {
    "validate": "validate", "render": "render", "plan": "plan", "apply": "apply",
    "test-connection": "test_connection", "push-groups": "push_groups", "provision": "provision",
    "drift": "drift", "status": "status", "sandbox": "sandbox", "demo": "demo", "init": "init", "completion": "completion",
}


def _crash_log(exc: BaseException) -> str:
    from connector.support.redact import redact

    fd, path = tempfile.mkstemp(prefix="astro-scim-crash-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(redact("".join(traceback.format_exception(exc))))
    return path


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (tests and embedders swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class JsonFormatter(logging.Formatter):
    """--log-format json: one JSON object per record, on one line: time (UTC, ISO 8601), level, logger, message
    (already masked by RedactingFilter), and the exception's traceback, masked too, when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        import json
        from datetime import UTC, datetime

        from connector.support.redact import redact

        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False)


@contextlib.contextmanager
def _verbose_logging(enabled: bool, fmt: str = "text") -> Iterator[None]:
    """-v: log HTTP calls of our code and the SDKs to stderr, every record masked by RedactingFilter.
    --log-format json: every record (warnings and up; with -v from INFO) as a JSON line instead.

    The handler goes on the root logger for the duration of the command only (not basicConfig, which does
    nothing when any handler exists, e.g. under pytest or in an embedding program).
    """
    if not enabled and fmt == "text":  # Python's last-resort handler prints warnings as plain text
        yield
        return
    from connector.support.redact import RedactingFilter

    root = logging.getLogger()
    handler = _StderrHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(name)s: %(message)s"))
    handler.setLevel(logging.INFO if enabled else logging.WARNING)
    level = root.level
    root.addHandler(handler)
    if enabled:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """The parser, built once per process: parse_args never changes it, and building it is most of the work of
    a short command run in-process many times (the test suite: ~4% of its CLI tests' CPU)."""
    return build_parser()


def main(argv: Sequence[str] | None = None) -> int:
    from connector import output

    parser = _parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (see `astro-scim completion`): answer, exit
        import argcomplete

        argcomplete.autocomplete(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    if args.verbose and args.quiet:
        output.error("-v/--verbose and -q/--quiet contradict each other", "give one of them")
        return EXIT_USAGE
    from connector.support import extras

    idp = getattr(args, "idp", None)
    # A command run inside another (the demo's steps) stays as quiet as the outer one.
    was_quiet = output.set_quiet(args.quiet)
    if was_quiet:
        output.set_quiet(True)
    try:
        extras.check(args.command, idp)
        module = importlib.import_module(f"connector.commands.{COMMANDS[args.command]}")
        args.program = main  # the program itself, for a command that runs others (demo): no import back to here
        with _verbose_logging(args.verbose, args.log_format):
            return int(module.run(args))
    except ConnectorError as exc:
        output.error(str(exc), exc.hint)
        return exc.exit_code
    except ModuleNotFoundError as exc:  # a package of an extra that is not installed: the pip line, not a crash
        missing = extras.from_import_error(exc, args.command, idp)
        if missing is None:
            return _internal_error(exc)
        output.error(str(missing), missing.hint)
        return missing.exit_code
    except KeyboardInterrupt:
        output.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `astro-scim ... | head`: the reader stopped; nothing to report, nowhere to report it
        try:  # so the interpreter's own flush at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is no file (captured, embedded): nothing will flush to the pipe
            pass
        return EXIT_PIPE_CLOSED
    except Exception as exc:  # the promise: never a raw traceback
        return _internal_error(exc)
    finally:
        output.set_quiet(was_quiet)  # main() is also called in-process (the demo, tests, embedders)


def _internal_error(exc: BaseException) -> int:
    from connector import output

    path = _crash_log(exc)
    output.error(f"unexpected {type(exc).__name__}: {exc}", f"details were written to {path}; please report it")
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
