"""`astro-scim render --idp okta|azure --out DIR [--config FILE] [--mapping FILE]`: offline, imports no IdP SDK.

Exit 0 with the list of files written; 1 when the mapping has validation errors (each printed with file:line:col);
2 when an input cannot be read or the flags do not fit together.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector import output
from connector.errors import EXIT_FINDINGS, EXIT_OK, ConfigError
from connector.mapping.model import Finding, Severity
from connector.support.packaged import default_mapping

if TYPE_CHECKING:
    from connector.config.load import ProjectConfig


def _mapping_path(args: argparse.Namespace, config: ProjectConfig | None) -> Path:
    if args.mapping:
        return Path(args.mapping)
    section = None if config is None else config.okta if args.idp == "okta" else config.azure
    configured = section.mapping if section is not None else None
    if configured is not None:
        return Path(configured)
    local = Path("mappings") / f"{args.idp}.yaml"
    if local.is_file():
        return local
    return default_mapping(args.idp)  # the shipped tables of Astro's setup page


def _print(findings: list[Finding]) -> None:
    for f in findings:
        text = f"{f.location}: {f.message}"
        if f.severity == Severity.ERROR:
            output.error(text, f.hint)
        else:
            output.warn(f"warning: {text}" + (f" (hint: {f.hint})" if f.hint else ""))


# What each rendered file is, by its name (the templates' folder, connector/data/templates/<idp>/).
_KINDS = (("runbook-", "runbook"), ("terraform/", "terraform"), ("entra-schema", "entra-schema"),
          ("entra-secrets", "secrets-template"), ("okta-profile-mapping", "okta-mapping"),
          ("okta-group-push", "okta-group-push"), ("okta-features", "okta-features"))


def _kind(rel: str) -> str:
    return next((kind for prefix, kind in _KINDS if rel.startswith(prefix)), "other")


def _file_json(idp: str, out: Path, written: Path) -> dict[str, Any]:
    rel = written.relative_to(out).as_posix()
    return {"idp": idp, "kind": _kind(rel), "path": rel, "bytes": written.stat().st_size}


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"location": str(f.location), "severity": f.severity.value, "message": f.message, "hint": f.hint}


def run(args: argparse.Namespace) -> int:
    # --format json: one document (docs/schemas/render.v1.json), printed however the command ends
    with output.json_document("render", "render", args.format == "json", idp=args.idp, out=str(args.out),
                              mapping=None, files=[], findings=[]) as doc:
        return _run(args, doc)


def _run(args: argparse.Namespace, doc: output.Document) -> int:
    from connector.config.arg import load_config_arg
    from connector.mapping.load import load_mapping
    from connector.mapping.validate import UNREADABLE, validate_paths
    from connector.render.write import render_idp

    config = load_config_arg(args.config) if args.config else None
    path = _mapping_path(args, config)
    if not path.exists():
        raise ConfigError(f"mapping file {path} not found")
    if not path.is_file():
        raise ConfigError(f"mapping path {path} is not a file", hint="render takes one mapping file per IdP")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot read mapping file {path}: {exc.strerror}") from exc

    doc["mapping"] = str(path)
    findings = validate_paths([str(path)])
    unreadable = [f for f in findings if f.code in UNREADABLE]
    if unreadable:
        raise ConfigError(unreadable[0].message, location=unreadable[0].location, hint=unreadable[0].hint)
    _print(findings)
    doc["findings"] = [_finding_json(f) for f in findings]
    if any(f.severity == Severity.ERROR for f in findings):
        output.error(f"{path} has validation errors; nothing was rendered")
        return doc.done(EXIT_FINDINGS)
    mapping, load_findings = load_mapping(str(path))
    if mapping is None:  # validate_paths reported why; this only guards against a disagreement between the two
        _print([f for f in load_findings if f not in findings])
        doc["findings"] += [_finding_json(f) for f in load_findings if f not in findings]
        return doc.done(EXIT_FINDINGS)
    if mapping.idp != args.idp:
        raise ConfigError(
            f"{path} is a mapping for {mapping.idp}, not {args.idp}",
            location=mapping.location,
            hint=f"pass --mapping mappings/{args.idp}.yaml or --idp {mapping.idp}",
        )

    command = f"astro-scim render --idp {args.idp}"
    removed: list[Path] = []
    written = render_idp(args.idp, mapping, config, args.out, mapping_path=str(path), command=command,
                         removed=removed)
    doc["files"] = [_file_json(args.idp, Path(args.out), p) for p in written]
    output.say(f"rendered {len(written)} files for {args.idp} from {path}:")
    for p in written:
        output.say(f"  {p}")
    for p in removed:
        output.warn(f"removed {p}: an earlier render's Team roles, which this config no longer gives (run terraform "
                    "from a copy of it first to remove those roles, or keep the roles by restoring it)")
    return doc.done(EXIT_OK)
