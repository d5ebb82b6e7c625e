"""`astro-scim init`: a starting astro-scim.yaml from a few answers and what the IdPs already hold.

Asks (on a terminal) or takes flags (`--non-interactive`, in CI) for the IdPs, their URLs, the credential
references and the Astro endpoint; looks at each IdP through the providers' own reads (the app as plan finds it,
the groups assigned to it or pushed, groups named like it); writes the config with secret references only (the
loader refuses a literal secret, and so does init, before it writes anything) and copies the shipped mappings
into mappings/ next to it when absent; then runs `validate` and `test-connection` on it and reports.

Group choice, per IdP: the flags, else what the app already uses, else the groups named like the app (a guess
the plan shows before anything changes). An IdP init could not read gives no groups: "none found" would be a
claim about an org it never saw. The config is written with a comment where they go (unless the flags gave
them), test-connection is skipped, and init ends with the read's error (exit 3 for a remote one, ok false).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector import output
from connector.config.load import NAME_HINT, ProjectConfig, bad_name, load_config
from connector.errors import EXIT_OK, ConfigError, ConfigErrors, ConnectorError, RemoteError, UsageError
from connector.providers import registry
from connector.providers.base import Discovery
from connector.support.packaged import default_mapping
from connector.support.redact import redact
from connector.support.secret import Secret

HEADER = ("# astro-scim project file, written by 'astro-scim init'. Secrets are references (env:NAME, file:PATH),\n"
          "# never values. Check it with 'astro-scim validate astro-scim.yaml'; see what apply would do with\n"
          "# 'astro-scim plan'.\n")


@dataclass
class Answers:
    idps: list[str]
    astro: dict[str, Any]
    okta: dict[str, Any] = field(default_factory=dict)
    azure: dict[str, Any] = field(default_factory=dict)


Ask = Callable[[str, str | None], str]


def _asker(interactive: bool) -> Ask:
    """Ask on a terminal (the default shown in brackets); without one, a missing answer is a usage error that
    names the flag."""
    def ask(flag: str, default: str | None, *, prompt: str = "") -> str:
        if interactive:
            suffix = f" [{default}]" if default else ""
            answer = input(f"{prompt or flag}{suffix}: ").strip()
            if answer:
                return answer
        if default:
            return default
        raise UsageError(f"init needs {flag}", hint=f"pass {flag} (with --non-interactive every answer is a flag)")

    def ask_flag(flag: str, default: str | None) -> str:
        return ask(flag, default, prompt=_PROMPTS.get(flag, flag))

    return ask_flag


_PROMPTS = {
    "--idp": "Identity provider(s): okta, azure or all",
    "--astro-scim-url": "Astro SCIM Integration URL (Settings > Authentication > SCIM)",
    "--astro-token-ref": "Astro Organization API token (a reference: env:NAME or file:PATH)",
    "--okta-org-url": "Okta org URL (https://<org>.okta.com)",
    "--okta-token-ref": "Okta API token (env:NAME or file:PATH)",
    "--tenant-id": "Entra tenant id",
    "--azure-credential": "Graph credential: secret, certificate, cli, default, workload or token",
    "--azure-client-id": "Entra app registration (client) id",
    "--azure-secret-ref": "Its client secret (env:NAME or file:PATH)",
    "--graph-token-ref": "A Graph access token (env:NAME or file:PATH)",
}


def _ref(flag: str, value: str) -> str:
    """A secret reference, checked now: init never writes a literal secret (the loader would refuse it later)."""
    try:
        Secret(value)
    except ConfigError as exc:
        raise UsageError(f"{flag}: {exc.message}", hint=exc.hint) from exc
    return value


def _answers(args: argparse.Namespace, ask: Ask) -> Answers:
    idp = args.idp or ("all" if args.okta_org_url and args.tenant_id else "okta" if args.okta_org_url
                       else "azure" if args.tenant_id else None)
    idp = idp or ask("--idp", None)
    if idp not in ("okta", "azure", "all"):
        raise UsageError(f"--idp must be okta, azure or all, not {idp!r}")
    idps = ["okta", "azure"] if idp == "all" else [idp]
    astro: dict[str, Any] = {
        "scim_url": args.astro_scim_url or ask("--astro-scim-url", None),
        "token": _ref("--astro-token-ref", args.astro_token_ref or ask("--astro-token-ref", "env:ASTRO_API_TOKEN")),
    }
    if args.astro_api_url:
        astro["api_url"] = args.astro_api_url
    answers = Answers(idps, astro)
    if "okta" in idps:
        answers.okta = {
            "org_url": args.okta_org_url or ask("--okta-org-url", os.environ.get("OKTA_CLIENT_ORGURL")),
            "token": _ref("--okta-token-ref", args.okta_token_ref or ask("--okta-token-ref", "env:OKTA_API_TOKEN")),
            "app": {"label": args.okta_app_label},
            "integration": args.okta_integration,
            "mapping": "mappings/okta.yaml",
        }
    if "azure" in idps:
        answers.azure = {"tenant_id": args.tenant_id or ask("--tenant-id", os.environ.get("AZURE_TENANT_ID"))}
        if args.graph_url:
            answers.azure["graph_url"] = args.graph_url
        answers.azure["credential"] = _credential(args, ask)
        answers.azure["app"] = {"display_name": args.azure_app_name}
        answers.azure["mapping"] = "mappings/azure.yaml"
    return answers


def _credential(args: argparse.Namespace, ask: Ask) -> dict[str, Any]:
    kind = args.azure_credential or ("token" if args.graph_token_ref else "secret" if args.azure_client_id
                                     else ask("--azure-credential", "secret"))
    if kind == "token":
        return {"token": _ref("--graph-token-ref", args.graph_token_ref or ask("--graph-token-ref", None))}
    if kind == "secret":
        return {"client_id": args.azure_client_id or ask("--azure-client-id", None),
                "client_secret": _ref("--azure-secret-ref",
                                      args.azure_secret_ref or ask("--azure-secret-ref", "env:AZURE_CLIENT_SECRET"))}
    if kind in ("cli", "default"):
        return {"type": kind}
    if kind == "workload":
        return {"type": kind, "client_id": args.azure_client_id or ask("--azure-client-id", None)}
    raise UsageError(f"--azure-credential {kind!r} is not one init writes",
                     hint="use secret, token, cli, default or workload (certificate: edit the file afterwards)")


def _document(answers: Answers) -> dict[str, Any]:
    doc: dict[str, Any] = {"astro": answers.astro}
    if answers.okta:
        doc["okta"] = answers.okta
    if answers.azure:
        doc["azure"] = answers.azure
    return doc


def _load_draft(doc: dict[str, Any], folder: Path) -> ProjectConfig:
    """The answers as the loader reads them (same folder as the target: file: references resolve alike)."""
    fd, name = tempfile.mkstemp(prefix=".astro-scim-init.", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True)
        try:
            cfg = load_config(name)
        except ConfigErrors as exc:  # each as below: named by its key, never by the draft's file and line
            lines = [f"{len(exc.errors)} problems in the answers:", *exc.listed(located=False)]
            raise UsageError("\n".join(lines), hint=exc.hint) from exc
        except ConfigError as exc:  # its file:line is the draft's, which is gone: the message names the key
            raise UsageError(exc.message, hint=exc.hint) from exc
        cfg.document = None
        _forget_locations(cfg)
        return cfg
    finally:
        Path(name).unlink(missing_ok=True)


def _forget_locations(obj: Any, depth: int = 0) -> None:
    """Drop every file:line the draft's objects carry (secrets, sections): the draft is deleted, its lines are not
    the written file's, and an error read later (a secret reference that cannot be read during discovery) named
    them. Without one, such an error names its key and value's source (the variable, the file) instead."""
    if depth > 4 or obj is None or isinstance(obj, str | int | float | bool | Path):
        return
    if isinstance(obj, list | tuple):
        for item in obj:
            _forget_locations(item, depth + 1)
        return
    if isinstance(obj, dict):
        for item in obj.values():
            _forget_locations(item, depth + 1)
        return
    names: Iterable[str] = getattr(obj, "__dataclass_fields__", None) or getattr(obj, "__slots__", None) or ()
    for attr in names:
        if attr == "location":
            setattr(obj, attr, None)
        elif not attr.startswith("_"):
            _forget_locations(getattr(obj, attr, None), depth + 1)


def _show(found: Discovery) -> None:
    def names(items: list[str]) -> str:
        return ", ".join(items) if items else "none"

    if found.app is None:
        output.say(f"  {found.idp}: no app yet: {found.app_hint}", style="yellow")
    else:
        output.say(f"  {found.idp}: app {found.app}; assigned groups: {names(found.assigned)}"
                   + (f"; pushed groups: {names(found.pushed)}" if found.idp == "okta" else ""))
    output.say(f"  {found.idp}: groups named like the app: {names(found.candidates)}")


# How a group list was chosen: the text line's words -> the JSON document's (docs/schemas/init.v1.json).
_WHY = {"from the flags": "flags", "in use by the app": "in_use_by_app", "named like the app": "named_like_app",
        "none found": "none_found", "as answered": "answered", "not read": "not_read"}
_NAMES = {"okta": "Okta", "azure": "Entra"}


def _discovery_json(found: Discovery, error: ConnectorError | None) -> dict[str, Any]:
    return {"idp": found.idp, "app_found": found.app is not None, "app": found.app,
            "app_hint": None if found.app is not None or error is not None else found.app_hint or None,
            "assigned": found.assigned, "pushed": found.pushed if found.idp == "okta" else None,
            "candidates": found.candidates, "groups": [],
            "error": None if error is None else {"type": type(error).__name__, "message": str(error),
                                                 "hint": error.hint}}


def _nested(program: Callable[[list[str]], int], argv: list[str]) -> tuple[int, dict[str, Any] | None]:
    """Run another command with --format json and keep its document (its stdout) for ours; None if it printed
    none it could parse (the exit code still says how it went)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = program([*argv, "--format", "json"])
    try:
        doc = json.loads(buffer.getvalue())
    except ValueError:
        return code, None
    return code, doc if isinstance(doc, dict) else None


def _groups(given: list[str], *found: list[str]) -> tuple[list[str], str]:
    if given:
        return given, "from the flags"
    for source, label in zip(found, ("in use by the app", "named like the app"), strict=False):
        if source:
            return list(source), label
    return [], "none found"


def _choose_groups(args: argparse.Namespace, answers: Answers, found: dict[str, Discovery],
                   interactive: bool, chosen: dict[str, list[dict[str, Any]]], unread: set[str]) -> None:
    for idp, section in (("okta", answers.okta), ("azure", answers.azure)):
        if idp not in found:
            continue
        d = found[idp]
        kinds: list[tuple[str, list[str] | None, tuple[list[str], ...]]] = [
            ("assign_groups", args.assign_group, (d.assigned, d.candidates))]
        if idp == "okta":
            # Okta refuses one group for both assignment and push: push candidates are only what is pushed.
            kinds.append(("push_groups", args.push_group, (d.pushed,)))
        for key, given, sources in kinds:
            groups, why = _groups(list(given or []), *sources)
            if idp in unread and not given:
                # Nothing was read: no groups, and no "none found" (the comment written in their place says so).
                chosen.setdefault(idp, []).append({"key": key, "groups": [], "why": _WHY["not read"]})
                output.say(f"  {idp}.{key}: not written: could not read {_NAMES[idp]} (fill it in by hand, or "
                           "re-run init once it can be read)", style="yellow")
                continue
            if interactive:
                answer = input(f"{idp}.{key} (comma-separated) [{', '.join(groups)}]: ").strip()
                if answer:
                    groups, why = [g.strip() for g in answer.split(",") if g.strip()], "as answered"
            section[key] = groups
            chosen.setdefault(idp, []).append({"key": key, "groups": groups, "why": _WHY[why]})
            output.say(f"  {idp}.{key}: {', '.join(groups) if groups else '(empty)'} ({why})")


def _check_mappings_folder(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} is a file: init copies the mapping files into a folder of that name",
                          hint=f"move {target} away, or run init in another folder")


def _copy_mappings(folder: Path, idps: list[str]) -> list[dict[str, Any]]:
    target = folder / "mappings"
    _check_mappings_folder(target)
    target.mkdir(exist_ok=True)
    done = []
    for idp in idps:
        path = target / f"{idp}.yaml"
        done.append({"idp": idp, "path": str(path), "written": not path.exists()})
        if path.exists():
            output.say(f"  kept {path} (already there)")
            continue
        shutil.copyfile(default_mapping(idp), path)
        output.say(f"  wrote {path} (the shipped mapping: Astro's setup page)")
    return done


def _placeholders(text: str, answers: Answers, unread: dict[str, ConnectorError]) -> str:
    """A comment where the groups of an IdP init could not read go (the keys themselves left out)."""
    for idp, exc in unread.items():
        section = answers.okta if idp == "okta" else answers.azure
        keys = [k for k in ("assign_groups", "push_groups" if idp == "okta" else "") if k and k not in section]
        if not keys:
            continue
        why = redact(" ".join(f"could not read {_NAMES[idp]}: {exc}".split()))  # the file is no masked output
        lines = [f"  # TODO: init {why}", *(f"  # {k}: [...]  (fill in the group names)" for k in keys)]
        text = text.replace(f"\n{idp}:\n", f"\n{idp}:\n" + "\n".join(lines) + "\n", 1)
    return text


def _unread_error(errors: dict[str, ConnectorError], path: Path, todo: bool) -> ConnectorError:
    """init's own error for the IdPs it could not read: the first read's class (its exit code: 3 for a remote
    error), naming each."""
    idp, first = next(iter(errors.items()))
    message = "; ".join(f"could not read {_NAMES[i]}: {e}" for i, e in errors.items())
    # The groups given as flags leave no TODO comment to point at.
    by_hand = f"or fill them in {path} by hand (see its TODO comment)" if todo else f"or check them in {path}"
    hint = (f"{first.hint + '; then ' if first.hint else ''}re-run 'astro-scim init --force' to fill in the groups "
            f"from the IdP, {by_hand}")
    text = f"{message} ({path} was written without what the read would have given)"
    if isinstance(first, RemoteError):  # built as the base class: a subclass may take other arguments
        return RemoteError(text, service=first.service, endpoint=first.endpoint, status=first.status,
                           code=first.code, hint=hint)
    error = ConnectorError(text, hint=hint)
    error.exit_code = first.exit_code  # a config error stays 2
    return error


def _write(path: Path, doc: dict[str, Any], answers: Answers, unread: dict[str, ConnectorError]) -> bool:
    """Write the config; whether it holds a TODO comment (groups left for the user to fill in)."""
    plain = HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    text = _placeholders(plain, answers, unread)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 is for secrets; the config holds references only
    os.replace(tmp, path)
    return text != plain


def run(args: argparse.Namespace) -> int:
    # --format json: one document (docs/schemas/init.v1.json), printed however the command ends
    with output.json_document("init", "init", args.format == "json", config=str(args.config), written=False,
                              idps=[], discovery=[], mappings=[], validate=None, test_connection=None) as doc:
        return _run(args, doc)


def _run(args: argparse.Namespace, doc: output.Document) -> int:
    machine = args.format == "json"
    if machine and not args.non_interactive:  # a question on the terminal would mix with the document
        raise UsageError("init --format json needs --non-interactive",
                         hint="pass every answer as a flag with --non-interactive")
    path = Path(args.config)
    if path.exists() and not args.force:
        raise UsageError(f"{path} already exists; init does not overwrite it",
                         hint="pass --force to replace it, or --config OTHER.yaml to write another file")
    if not path.resolve().parent.is_dir():
        raise UsageError(f"cannot write {path}: its folder does not exist", hint=f"mkdir -p {path.parent}")
    _check_mappings_folder(path.resolve().parent / "mappings")  # before any question or read
    for flag, names in (("--assign-group", args.assign_group), ("--push-group", args.push_group)):
        for name in names or []:  # refused before anything is read or written, as the config would refuse it
            if (problem := bad_name(name)) is not None:
                raise UsageError(f"{flag}: {problem}", hint=NAME_HINT)
    interactive = not args.non_interactive and sys.stdin.isatty()
    answers = _answers(args, _asker(interactive))
    doc["idps"] = answers.idps
    folder = path.resolve().parent
    cfg = _load_draft(_document(answers), folder)  # every answer checked before anything is written
    cfg.file = str(path)  # what a hint names is the file about to be written, never the draft (deleted)

    output.say("looking at what the IdPs already hold", style="bold")
    found: dict[str, Discovery] = {}
    errors: dict[str, ConnectorError] = {}
    progress = output.progress()
    for idp in answers.idps:
        reader = registry.discovery(cfg, idp)
        try:
            with progress.stage(f"discover {idp}"):
                found[idp] = reader.discover()
        except ConnectorError as exc:
            # A refused token or an unreachable org: say so (never "no app", "none found": nothing was read).
            # The config is still written, with the groups the flags gave and a comment for the others.
            output.say(f"  {idp}: could not read {_NAMES[idp]}: {exc}", style="yellow")
            found[idp] = Discovery(idp, None)
            errors[idp] = exc
            continue
        finally:
            reader.close()
        _show(found[idp])
    chosen: dict[str, list[dict[str, Any]]] = {}
    _choose_groups(args, answers, found, interactive, chosen, set(errors))
    doc["discovery"] = [{**_discovery_json(found[idp], errors.get(idp)), "groups": chosen.get(idp, [])}
                        for idp in answers.idps]

    doc["mappings"] = _copy_mappings(folder, answers.idps)
    todo = _write(path, _document(answers), answers, errors)
    doc["written"] = True
    output.say(f"wrote {path}", style="bold green")

    program = args.program
    output.say(f"astro-scim validate {path}", style="bold")
    if machine:  # each check's own document, kept in ours (its shape: validate.v1 / checks.v1)
        valid, checked = _nested(program, ["validate", str(path)])
        doc["validate"] = {"exit_code": valid, "ok": valid == EXIT_OK,
                           "summary": checked.get("summary") if checked else None,
                           "findings": checked.get("findings", []) if checked else []}
    else:
        valid = program(["validate", str(path)])
    if valid != EXIT_OK:
        # validate's own exit code (1 for findings) would read as "findings" to a script; a config init wrote and
        # that does not validate (e.g. a kept mapping that is broken) is a configuration error, exit 2. Checking
        # connections through a config the tool refuses would only add errors about the same cause.
        output.say(f"skipped test-connection: {path} does not validate", style="yellow")
        raise ConfigError(f"{path} was written but does not validate (see above)",
                          hint=f"fix what validate reports, then run 'astro-scim validate {path}' and "
                               f"'astro-scim test-connection --config {path}'")
    if errors:
        # test-connection would only meet the same unreachable IdP again (after its retries).
        output.say(f"skipped test-connection: could not read {', '.join(_NAMES[i] for i in errors)}",
                   style="yellow")
        raise _unread_error(errors, path, todo)
    output.say(f"astro-scim test-connection --config {path}", style="bold")
    if machine:
        connected, checks = _nested(program, ["test-connection", "--config", str(path)])
        doc["test_connection"] = {"exit_code": connected, "ok": connected == EXIT_OK,
                                  "idps": checks.get("idps", []) if checks else [],
                                  "error": checks.get("error") if checks else None}
    else:
        connected = program(["test-connection", "--config", str(path)])
    if connected != EXIT_OK:
        # Not init's failure: a credential or a group the checks above name (a fresh tenant's missing app and
        # Okta's provisioning before its manual step are information, not failures).
        output.warn(f"test-connection: some checks did not pass (exit {connected}); see above. "
                    "'astro-scim plan' shows what apply would change")
    output.say("next: astro-scim plan, then astro-scim apply", style="bold")
    return doc.done(EXIT_OK)
