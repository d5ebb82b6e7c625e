"""`astro-scim validate PATH... [--format text|json|github] [--strict]`: check mapping files offline.

Exit 0 when clean, 1 when there are errors (or warnings with --strict), 2 when a path cannot be read.
Output goes through connector.output.raw (plain text, secrets masked) so that this command stays fast: it
imports neither rich nor any IdP SDK.
"""

from __future__ import annotations

import argparse
import json

from connector import output
from connector.access import validate_project_file
from connector.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from connector.mapping.model import Finding, Severity
from connector.mapping.validate import UNREADABLE, find_files, validate_file


def _text_line(f: Finding) -> str:
    line = f"{f.location}: {f.severity.value}: {f.message}"
    if f.hint:
        line += f" (hint: {f.hint})"
    return line


def _gh_escape(text: str, prop: bool = False) -> str:
    # GitHub workflow commands: https://docs.github.com/actions/reference/workflow-commands-for-github-actions
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _github_line(f: Finding) -> str:
    kind = "error" if f.severity is Severity.ERROR else "warning"
    props = [f"file={_gh_escape(f.location.file, True)}"]
    if f.location.line:
        props.append(f"line={f.location.line}")
        props.append(f"col={f.location.column or 1}")
    props.append(f"title={_gh_escape('astro-scim ' + f.code, True)}")
    message = f.message + (f" (hint: {f.hint})" if f.hint else "")
    return f"::{kind} {','.join(props)}::{_gh_escape(message)}"


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


def run(args: argparse.Namespace) -> int:
    files, findings = find_files(args.paths)
    for path in files:
        project = validate_project_file(path)  # a project config: its access section (connector/access.py)
        findings.extend(project if project is not None else validate_file(path))
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    warnings = len(findings) - errors
    unreadable = any(f.code in UNREADABLE for f in findings)
    failed = errors > 0 or (args.strict and warnings > 0)
    code = EXIT_USAGE if unreadable else EXIT_FINDINGS if failed else EXIT_OK

    if args.format == "json":
        output.raw(json.dumps({
            "files": [str(p) for p in files],
            "summary": {"files": len(files), "errors": errors, "warnings": warnings, "strict": args.strict,
                        "exit_code": code},
            "findings": [_as_json(f) for f in findings],
        }, indent=2))
        return code
    if args.format == "github":
        for f in findings:
            output.raw(_github_line(f))
    else:
        for f in findings:
            output.raw(_text_line(f))
    if not findings:
        summary = f"{_plural(len(files), 'mapping file')} OK"
    else:
        summary = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} in {_plural(len(files), 'file')}"
        if args.strict and warnings and not errors:
            summary += " (--strict: warnings fail)"
    output.raw(summary)
    return code
