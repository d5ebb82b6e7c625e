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
import textwrap
import traceback
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NoReturn

from connector import __version__
from connector.errors import (
    EXIT_FINDINGS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_NOT_PROVISIONED,
    EXIT_OK,
    EXIT_PIPE_CLOSED,
    EXIT_REMOTE,
    EXIT_USAGE,
    ConnectorError,
)

DEFAULT_CONFIG = "astro-scim.yaml"

# The one list of exit codes: every --help shows it (top level and each command's epilog), and
# tests/test_help_texts.py checks README's "Exit codes" table has the same codes. Each meaning is what
# connector/errors.py maps to the code: UnsafePlan and StalePlan are 2, ManualStepRequired and
# VerificationFailed 1, ProvisioningFailed 4.
EXIT_CODE_MEANINGS: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success: valid, no findings, no drift, healthy, applied"),
    (EXIT_FINDINGS, "findings: validation errors, drift, unhealthy status, a plan with changes (plan --exit-code), "
                    "a manual step to do, a group or user push-groups or provision could not bring into Astro"),
    (EXIT_USAGE, "usage or configuration error (the option or file:line named), a plan over a safety limit "
                 "without --force, a saved plan that is damaged or stale (apply FILE), or an extra the command "
                 "needs is not installed (the message gives the pip install line)"),
    (EXIT_REMOTE, "remote error: authentication, API or network failure after retries, or an answer the tool "
                  "refuses to use (the endpoint and status named)"),
    (EXIT_NOT_PROVISIONED, "apply made its changes, but the IdP's provisioning into Astro failed (users or groups "
                           "in ERROR, a connection the IdP cannot use, users or Teams it reports provisioned "
                           "that Astro lacks, nothing reached Astro)"),
    (EXIT_INTERNAL, "internal error: a one-line message and the path of a log with the details"),
    (EXIT_INTERRUPTED, "interrupted"),
    (EXIT_PIPE_CLOSED, "stdout closed by its reader (astro-scim ... | head): nothing more is printed"),
)


def _exit_codes_text(width: int = 78) -> str:  # an 80-column terminal, as argparse wraps
    lines = ["exit codes:"]
    for code, meaning in EXIT_CODE_MEANINGS:
        lines += textwrap.wrap(meaning, width, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7,
                               break_on_hyphens=False)
    return "\n".join(lines) + "\n"


EXIT_CODES = _exit_codes_text()


def _name(value: str) -> str:
    """A user, group or app name argument: an empty one would name nothing (and used to read as the other
    option: `provision --user ''` provisioned "group None")."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value.strip()


def _config_option(p: argparse.ArgumentParser,
                   text: str = "project config file to read (default: $ASTRO_SCIM_CONFIG, else %(default)s)") -> None:
    p.add_argument("-c", "--config", default=os.environ.get("ASTRO_SCIM_CONFIG", DEFAULT_CONFIG), help=text)


# What each --format prints; a command offers some of them (choices), and its help explains those only.
_FORMATS = {
    "text": "for people (the default)",
    "json": "one document on stdout, valid against the JSON Schema connector/data/output-schemas/{schema}.v1.json "
            "of the installed package (docs/schemas/ in a checkout); narration goes to stderr",
    "github": "GitHub Actions annotations (::error file=...::), and in Actions a summary of the run",
    "markdown": "a Markdown report (a pull request comment, a wiki page)",
    "junit": "JUnit XML: one testsuite per IdP, one failing testcase per finding (for CI test views)",
    "html": "one self-contained page (no scripts, no network) with a chart of the findings",
}


def _format_option(p: argparse.ArgumentParser, schema: str, *more: str, note: str = "") -> None:
    """--format: text, json (one document on stdout, valid against the packaged
    connector/data/output-schemas/<schema>.v1.json; narration on stderr) and the command's `more`."""
    choices = ["text", "json", *more]
    text = "; ".join(f"{name}: {_FORMATS[name]}" for name in choices).format(schema=schema)
    p.add_argument("--format", choices=choices, default="text", help=text + note)


def _idp_option(p: argparse.ArgumentParser, choices: Sequence[str] = ("okta", "azure", "all"), default: str = "all",
                note: str = "") -> None:
    p.add_argument("--idp", choices=list(choices), default=default,
                   help="which identity provider (default: %(default)s; all: each one the config has)" + note)


def _global_options(p: argparse.ArgumentParser, default: Any) -> None:
    p.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="log HTTP calls (secrets masked) to stderr")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="print only errors and the data asked for (--format json, reports); no progress")
    p.add_argument("--log-format", choices=["text", "json"], default="text" if default is False else default,
                   help="json: each log record (warnings; with -v the HTTP calls) one JSON line on stderr, "
                        "for log shippers")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help as argparse wraps it, but never broken at a hyphen (a path like output-schemas/, a flag like
    --no-wait); the description and epilog (the exit codes) as written."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped command, choice or flag (Python 3.11 has none), and errors
    that name the help of the command they are about."""

    root: argparse.ArgumentParser | None = None  # a command's parser: the program's (set by build_parser)

    def parse_args(self, args: Iterable[str] | None = None, namespace: Any = None) -> Any:
        # argparse reports a flag no parser took from the top-level parser ("astro-scim: error: ... hint:
        # astro-scim --help"), though the user typed it after a command: report it from that command's parser.
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            chosen = _commands(self).get(getattr(parsed, "command", None) or "", self)
            chosen.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{_did_you_mean(self.root or self, self, message)}\n"
                              f"hint: {self.prog} --help lists what it takes\n")


def _did_you_mean(root: argparse.ArgumentParser, parser: argparse.ArgumentParser, message: str) -> str:
    """What to add to argparse's `message` about `parser` (the program's, `root`, or one command's)."""
    from connector.support.suggest import closest

    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        guess = closest(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        return f" (did you mean '{guess}'?)" if guess else ""
    if " not allowed with argument " in message:  # a mutually exclusive group (apply --wait / --no-wait)
        return " (they contradict each other: give one of them)"
    if message.startswith("unrecognized arguments:"):
        words = [word.split("=")[0] for word in message.split(":", 1)[1].split() if word.startswith("-")]
        # A real flag of other commands (`validate --config`) is named with the commands that take it: a guess
        # would only repeat it ("did you mean --config?").
        owners = {word: sorted(name for name, p in _commands(root).items() if word in p._option_string_actions)
                  for word in words}
        known = [f"{word} is an option of {', '.join(names)}" for word, names in owners.items() if names]
        if known:
            return " (" + "; ".join(known) + ")"
        # After a command, the guess is one of its flags; before any, one of any command's.
        flags = {flag for p in (_all_parsers(root) if parser is root else [parser]) for flag in p._option_string_actions}
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
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"astro-scim {__version__}")
    _global_options(parser, False)
    # -v/-q are taken after the command too: each subcommand repeats them with a SUPPRESS default, so that one
    # not given there leaves the value parsed before the command alone (argparse copies the subcommand's
    # namespace over the main one).
    common = _Parser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        # Each command's --help: its one-line summary, its options, and the same exit codes as the top level.
        p = sub.add_parser(name, parents=[common], help=help, description=help, epilog=EXIT_CODES,
                           formatter_class=_HelpFormatter)
        assert isinstance(p, _Parser)
        p.root = parser  # for its errors: the other commands' flags
        return p

    p = command("validate", "check mapping files and project configs offline (CI)")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a mapping file, a project config (checked with the mapping files it names), or a folder "
                        "of *.yaml holding either")
    _format_option(p, "validate", "github")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1)")

    p = command("render", "render IdP configuration from the mappings (offline)")
    p.add_argument("--idp", choices=["okta", "azure"], required=True, help="the identity provider to render for")
    p.add_argument("--config",
                   help="project config: fills in URLs, app and group names (render reads no config unless given "
                        "one: neither $ASTRO_SCIM_CONFIG nor ./astro-scim.yaml; unknown values are ${NAME} "
                        "placeholders)")
    p.add_argument("--mapping",
                   help="mapping file (default: the config's okta.mapping or azure.mapping, else "
                        "mappings/<idp>.yaml, else the mapping shipped in the package: Astro's setup page)")
    p.add_argument("--out", required=True, help="output folder")
    _format_option(p, "render")

    # The deletion limit apply and drift --fix share (connector/plan/model.py Plan.check_safety).
    limit = ("the lower of safety.max_delete_fraction (default 10%%) of {base} and safety.max_delete_count "
             "(default 25); over it the plan is refused (exit 2)")
    for name, text in (("plan", "show what apply would change; writes nothing"),
                       ("apply", "make the IdP match the config (idempotent)")):
        p = command(name, text)
        _config_option(p)
        _idp_option(p, ("okta", "azure", "astro", "all"),
                    note="; astro: only the Team roles of the config's access: section")
        if name == "plan":
            p.add_argument("--prune", action="store_true",
                           help="Okta: also show the removal of push mappings of groups not in okta.push_groups, "
                                "as apply --prune would do it")
            p.add_argument("--pause", action="store_true",
                           help="Entra: plan as apply --pause does: the provisioning job paused, not started")
            _format_option(p, name)
            p.add_argument("--exit-code", action="store_true", help="exit 1 when the plan has changes")
            p.add_argument("-out", "--out", metavar="FILE", help="save the plan for 'astro-scim apply FILE'")
        else:
            p.add_argument("--prune", action="store_true",
                           help="Okta: also deactivate and delete the push mappings of groups not in "
                                "okta.push_groups (their Teams stay in Astro); limited as --force says")
            p.add_argument("--pause", action="store_true",
                           help="Entra: leave the provisioning job paused (pause it if it runs) instead of "
                                "starting it; nothing is verified in Astro then")
            _format_option(p, name, note=" (json needs --yes or a saved plan FILE: no question on stdout)")
            p.add_argument("plan_file", nargs="?", metavar="FILE",
                           help="a plan saved by 'plan -out FILE': apply exactly it, refused if the org moved")
            p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
            p.add_argument("--force", action="store_true",
                           help="allow a plan that deletes more than the safety limit. apply deletes only Okta "
                                "push mappings (--prune); the limit is safety.max_delete_count (default 25) "
                                "of them; over it the plan is refused (exit 2)")
            wait = p.add_mutually_exclusive_group()
            wait.add_argument("--no-wait", action="store_true",
                              help="do not wait for the IdP to provision and check Astro (says 'not verified')")
            wait.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                              help="how long to wait for the IdP's provisioning to show in Astro (default 120)")

    p = command("test-connection", "check IdP credentials, the app and the Astro SCIM token")
    _config_option(p)
    _idp_option(p)
    _format_option(p, "checks")

    p = command("push-groups", "Okta: create/link push mappings and re-push out-of-sync groups")
    _config_option(p)
    p.add_argument("groups", nargs="*", metavar="GROUP", type=_name, help="group names (default: okta.push_groups)")
    p.add_argument("--yes", action="store_true",
                   help="fix without asking; without it, a terminal is asked to confirm, and otherwise (a pipe, "
                        "CI, --format json) nothing changes and the groups to fix are listed")
    _format_option(p, "push-groups")

    p = command("provision", "Entra: provision a user or group on demand")
    _config_option(p)
    p.add_argument("--idp", choices=["okta", "azure"], default="azure",
                   help="azure (the default): provision on demand is Entra's; okta says what to run instead")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--user", type=_name, help="userPrincipalName or object id")
    g.add_argument("--group", type=_name, help="display name or object id")
    _format_option(p, "provision")

    p = command("drift", "audit the IdP against Astro's SCIM endpoint; --fix repairs")
    _config_option(p)
    _idp_option(p)
    _format_option(p, "drift", "markdown", "junit", "github", "html")
    p.add_argument("--output", "-o", help="write the report to this file instead of stdout")
    p.add_argument("--fix", action="store_true", help="print the remediation plan (acts only with --yes)")
    p.add_argument("--yes", action="store_true",
                   help="with --fix: carry out the remedies (it never asks; without --yes nothing changes)")
    p.add_argument("--delete-orphans", action="store_true", help="with --fix: delete Astro accounts the IdP removed")
    p.add_argument("--force", action="store_true",
                   help="with --fix --yes --delete-orphans: allow deleting more Astro accounts than the safety "
                        "limit, " + limit.format(base="Astro's users"))

    p = command("status", "IdP provisioning health: job state, quarantine, errors")
    _config_option(p)
    _idp_option(p)
    _format_option(p, "checks")

    p = command("sandbox", "run emulated Okta, Graph and Astro SCIM on loopback")
    p.add_argument("--users", type=int, default=20, help="people to seed (default: %(default)s)")
    p.add_argument("--groups", type=int, default=4,
                   help="teams to seed besides 'Astro Users', which is always seeded and holds everyone: "
                        "--groups 3 seeds 4 teams (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1,
                   help="random seed of the generated people, teams and faults: the same seed, the same org "
                        "(default: %(default)s)")
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="milliseconds added to every request, on every service (default: %(default)s)")
    p.add_argument("--rate-429", type=float, default=0.0,
                   help="fraction (0-1) of Okta and Graph requests answered 429 Too Many Requests "
                        "(default: %(default)s)")
    p.add_argument("--rate-5xx", type=float, default=0.0,
                   help="fraction (0-1) of Okta and Graph requests answered with a 5xx error (default: %(default)s)")
    p.add_argument("--write-config", metavar="FILE", help="write an astro-scim.yaml for this sandbox")
    p.add_argument("--write-json", metavar="FILE", help="write URLs and tokens as JSON for scripts")

    command("demo", "the whole story against a fresh sandbox, narrated")

    p = command("completion", "print the shell completion script (eval it, or save it in the shell's folder)")
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell to print the script for")

    p = command("init", "write a starting astro-scim.yaml from a few answers and what the IdPs hold")
    _config_option(p, "the config file to write (default: $ASTRO_SCIM_CONFIG, else %(default)s); an existing one "
                      "only with --force")
    p.add_argument("--idp", choices=["okta", "azure", "all"], help="default: from the flags given, else asked")
    p.add_argument("--non-interactive", action="store_true", help="never ask: every answer is a flag (CI)")
    _format_option(p, "init", note=" (json needs --non-interactive: no question on stdout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing config file")
    p.add_argument("--astro-scim-url", help="Astro's SCIM Integration URL")
    p.add_argument("--astro-token-ref", help="env:NAME or file:PATH (default env:ASTRO_API_TOKEN)")
    p.add_argument("--astro-api-url", help="Astro Platform API URL (default https://api.astronomer.io/v1)")
    p.add_argument("--okta-org-url", help="the Okta org, https://<org>.okta.com (default: $OKTA_CLIENT_ORGURL, "
                                          "else asked)")
    p.add_argument("--okta-token-ref", help="env:NAME or file:PATH (default env:OKTA_API_TOKEN)")
    p.add_argument("--okta-app-label", default="Astro", help="the Okta app's label (default: %(default)s)")
    p.add_argument("--okta-integration", choices=["oin", "manual"], default="oin",
                   help="oin: the Astro app of the Okta Integration Network catalogue; manual: a custom SCIM app "
                        "(default: %(default)s)")
    p.add_argument("--tenant-id", help="Entra tenant id (default: $AZURE_TENANT_ID, else asked)")
    p.add_argument("--azure-credential", choices=["secret", "token", "cli", "default", "workload"],
                   help="how to sign in to Graph: secret (client id and secret), token (a ready Graph token), cli "
                        "(the az CLI), default (azure-identity's chain), workload (workload identity, e.g. GitHub "
                        "OIDC). Default: token with --graph-token-ref, else secret (asked on a terminal)")
    p.add_argument("--azure-client-id",
                   help="the app registration's client id that signs in to Graph (secret and workload credentials)")
    p.add_argument("--azure-secret-ref", help="env:NAME or file:PATH (default env:AZURE_CLIENT_SECRET)")
    p.add_argument("--graph-token-ref", help="env:NAME or file:PATH: a ready Graph token")
    p.add_argument("--graph-url", help="Graph endpoint (default https://graph.microsoft.com/v1.0)")
    p.add_argument("--azure-app-name", default="Astro",
                   help="the Entra enterprise app's display name (default: %(default)s)")
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


class _RedactingFormatter(logging.Formatter):
    """The whole record as printed, traceback included, masked (RedactingFilter masks the message only)."""

    def format(self, record: logging.LogRecord) -> str:
        from connector.support.redact import redact

        return redact(super().format(record))


@contextlib.contextmanager
def _verbose_logging(enabled: bool, fmt: str = "text") -> Iterator[None]:
    """-v: log HTTP calls of our code and the SDKs to stderr, every record masked by RedactingFilter.
    --log-format json: every record (warnings and up; with -v from INFO) as a JSON line instead. Without either,
    warnings and up, as plain messages, masked too.

    The handler goes on the root logger for the duration of the command only (not basicConfig, which does
    nothing when any handler exists, e.g. under pytest or in an embedding program).
    """
    from connector.support.redact import RedactingFilter

    root = logging.getLogger()
    handler = _StderrHandler()
    handler.addFilter(RedactingFilter())
    # Without -v a library's warnings still print (as Python's last-resort handler would print them, message only),
    # masked: azure-identity's warning of a failed sign-in quotes the server's answer, which may echo the secret.
    text_format = "%(name)s: %(message)s" if enabled else "%(message)s"
    handler.setFormatter(JsonFormatter() if fmt == "json" else _RedactingFormatter(text_format))
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


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt wherever the main thread is, as Python's own handler does. asyncio.run
    replaces that handler with one that only cancels its task and raises once the task ends cancelled: a task
    that finished anyway (a cancellation lost in a library's wait) swallowed the Ctrl-C, and the command went on
    (16 of 40 Ctrl-Cs during Okta's setup check, measured). With a handler of ours in place asyncio leaves it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # a command run from a thread: nothing to do
        yield
        return
    previous = signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
        with _verbose_logging(args.verbose, args.log_format), _interruptible():
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
    except OSError as exc:
        import errno

        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return _internal_error(exc)
        # Output to a full disk (`astro-scim plan > plan.txt`): the data could not be written, said as such, as
        # output.raw says it for reports; the write is what failed, not the tool (exit 70 and a crash log before).
        output.discard_stdout()
        output.error(f"cannot write the output: {exc.strerror}", "free some space, or write it elsewhere")
        return EXIT_USAGE
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
