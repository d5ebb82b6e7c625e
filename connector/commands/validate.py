"""`astro-scim validate PATH... [--format text|json|github] [--strict]`: check mapping files offline.

A project config among the paths is checked too (its access section), with the mapping files it names.

Exit 0 when clean, 1 when there are errors (or warnings with --strict), 2 when a path cannot be read.
Output goes through connector.output.raw (plain text, secrets masked) so that this command stays fast: it
imports neither rich nor any IdP SDK.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from connector import output
from connector.access.model import validate_project_file
from connector.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, ConfigError, Location
from connector.mapping.model import Finding, Severity
from connector.mapping.validate import UNREADABLE, find_files, validate_file
from connector.support import github


def _text_line(f: Finding) -> str:
    line = f"{f.location}: {f.severity.value}: {f.message}"
    if f.hint:
        line += f" (hint: {f.hint})"
    return line


def _github_add(capped: github.Capped, f: Finding) -> None:
    kind = "error" if f.severity is Severity.ERROR else "warning"
    message = f.message + (f" (hint: {f.hint})" if f.hint else "")
    capped.add(kind, message, title=f"astro-scim {f.code}", file=f.location.file, line=f.location.line,
               column=f.location.column)


def _markdown(findings: list[Finding], summary: str) -> str:
    """The job summary: the verdict line, then a table of the findings."""
    lines = ["### astro-scim validate", "", summary]
    if findings:
        lines += ["", "| where | severity | finding | hint |", "|---|---|---|---|"]
        for f in findings:
            cells = [f"`{f.location}`", f.severity.value, f.message, f.hint or ""]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def _as_json(f: Finding) -> dict[str, object]:
    return {
        "file": f.location.file,
        "line": f.location.line or None,
        "column": (f.location.column or 1) if f.location.line else None,
        "severity": f.severity.value,
        "code": f.code,
        "message": f.message,
        "hint": f.hint,
    }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _referenced_mappings(path: Path) -> list[tuple[str, Path, Location]]:
    """The mapping files a project config names (okta.mapping, azure.mapping): the IdP, the file, and where it is
    named."""
    from connector.config.load import load_config_collecting

    try:  # the mappings are checked beside the config's own mistakes, which validate_project_file reports
        cfg, _ = load_config_collecting(path)
    except ConfigError:
        return []  # no mapping of keys: validate_project_file has reported it
    doc = cfg.document  # the file as the loader parsed it (not parsed again)
    if doc is None:
        return []
    return [(idp, section.mapping, doc.loc((idp, "mapping")))
            for idp, section in (("okta", cfg.okta), ("azure", cfg.azure))
            if section is not None and section.mapping is not None]


def _other_idp(idp: str, mapping: Path, where: Location) -> Finding | None:
    """okta.mapping naming an `idp: azure` file (or the reverse): plan refuses it, so validate must too."""
    from connector.mapping.load import load_mapping

    try:
        loaded, _ = load_mapping(mapping)
    except ConfigError:
        return None  # unreadable: validate_file reports it
    if loaded is None or loaded.idp == idp:
        return None
    return Finding(Severity.ERROR, where, "mapping-wrong-idp",
                   f"{idp}.mapping names a mapping for {loaded.idp} ({mapping}), not {idp}",
                   f"point {idp}.mapping at a file with 'idp: {idp}'")


def run(args: argparse.Namespace) -> int:
    files, findings = find_files(args.paths)
    seen = {Path(p).resolve() for p in files}
    projects = mappings = 0
    for path in list(files):  # referenced mappings are appended as they are checked
        project = validate_project_file(path)  # a project config: its access section (connector/access/model.py)
        if project is None:
            findings.extend(validate_file(path))
            mappings += 1
            continue
        projects += 1
        findings.extend(project)
        for idp, mapping, where in _referenced_mappings(Path(path)):
            if mapping.is_file() and (wrong := _other_idp(idp, mapping, where)) is not None:
                findings.append(wrong)
            if mapping.resolve() in seen:
                continue
            seen.add(mapping.resolve())
            if mapping.is_dir():
                findings.append(Finding(Severity.ERROR, where, "mapping-not-found",
                                        f"mapping file {mapping} is a folder, not a file",
                                        f"name the mapping file itself, e.g. mappings/{idp}.yaml"))
                continue
            if not mapping.is_file():
                findings.append(Finding(Severity.ERROR, where, "mapping-not-found",
                                        f"mapping file {mapping} does not exist",
                                        "the path is relative to the config file"))
                continue
            findings.extend(validate_file(mapping))
            files.append(mapping)
            mappings += 1
    # Each file's findings by line (a project file's own and its mapping-not-found among them), files in turn.
    order = {str(p): i for i, p in enumerate(files)}
    findings.sort(key=lambda f: (order.get(f.location.file, len(order)), f.location.line, f.location.column))
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    warnings = len(findings) - errors
    unreadable = any(f.code in UNREADABLE for f in findings)
    failed = errors > 0 or (args.strict and warnings > 0)
    code = EXIT_USAGE if unreadable else EXIT_FINDINGS if failed else EXIT_OK

    if args.format == "json":  # docs/schemas/validate.v1.json
        from connector import __version__

        output.raw(json.dumps({
            "schema": output.schema_id("validate"), "command": "validate", "tool_version": __version__,
            "ok": code == EXIT_OK, "exit_code": code,
            "files": [str(p) for p in files],
            "summary": {"files": len(files), "errors": errors, "warnings": warnings, "strict": args.strict,
                        "exit_code": code},
            "findings": [_as_json(f) for f in findings],
        }, indent=2))
        return code
    if args.format == "github":  # within GitHub's cap of annotations per level, the rest as log lines, counted
        capped = github.Capped("validate")
        for f in findings:
            _github_add(capped, f)
        for line in capped.lines():
            output.raw(line)
    else:
        for f in findings:
            output.raw(_text_line(f))
    checked = " and ".join(([_plural(projects, "project config")] if projects else [])
                           + ([_plural(mappings, "mapping file")] if mappings or not projects else []))
    if not findings:
        summary = f"{checked} OK"
    else:
        summary = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} in {checked}"
        if args.strict and warnings and not errors:
            summary += " (--strict: warnings fail)"
    output.note(summary)  # --quiet: the findings alone
    if args.format == "github":
        github.append_summary(_markdown(findings, summary))
    return code
