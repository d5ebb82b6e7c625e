"""Team access templates: the `access:` section of the project config, read, checked and compared. Pure.

    access:
      Data Engineering:                          # a group some IdP of this config brings into Astro as a Team
        organization: ORGANIZATION_MEMBER        # default ORGANIZATION_MEMBER (the API needs one)
        workspaces: {analytics: WORKSPACE_AUTHOR}            # Workspace name or id -> role
        deployments: {analytics/prod: DEPLOYMENT_ADMIN}      # "<workspace>/<deployment>" or a Deployment id

A template is the Team's whole role set: Astro's `POST .../teams/{id}/roles` replaces every role, so a scope
the template leaves out ends up empty. SCIM brings the Team and its members, never its roles; the provider in
connector/access/provider.py sets them once the IdP has pushed the group.

Checks here need no network: role names per scope (reference/astro-api.md), the hierarchy rule (a Deployment
role needs a role on that Deployment's Workspace), and that some IdP of the config pushes (Okta
`push_groups`) or provisions (Entra `assign_groups`) every group named. Names of Workspaces and Deployments
are resolved, and checked, against Astro at plan time. Every finding carries file:line:col.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.errors import ConfigError, ConfigErrors, Location
from connector.mapping.model import Finding, Severity
from connector.support.suggest import closest

if TYPE_CHECKING:
    from connector.config.load import ProjectConfig

ORGANIZATION_ROLES = ("ORGANIZATION_MEMBER", "ORGANIZATION_BILLING_ADMIN", "ORGANIZATION_OWNER")
WORKSPACE_ROLES = (
    "WORKSPACE_ACCESSOR",
    "WORKSPACE_MEMBER",
    "WORKSPACE_AUTHOR",
    "WORKSPACE_OPERATOR",
    "WORKSPACE_OWNER",
)
# Deployments take DEPLOYMENT_ADMIN or the name of a custom Deployment role defined in the Organization.
DEPLOYMENT_ADMIN = "DEPLOYMENT_ADMIN"
DEFAULT_ORGANIZATION_ROLE = "ORGANIZATION_MEMBER"
TEMPLATE_KEYS = ("organization", "workspaces", "deployments")
RESOURCE = "astro.team_roles"

# Astro ids are cuids: "c" + 24 lower-case base-36 characters (e.g. clk17xqgm124q01hkrgilsr49).
_ID = re.compile(r"^c[a-z0-9]{24}$")


def looks_like_id(text: str) -> bool:
    return bool(_ID.match(text))


# ---------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class WorkspaceGrant:
    ref: str  # a Workspace name or id, as written
    role: str
    location: Location


@dataclass(frozen=True)
class DeploymentGrant:
    ref: str  # "<workspace>/<deployment>" (split at the first "/") or a Deployment id, as written
    role: str
    location: Location

    @property
    def workspace(self) -> str | None:
        return self.ref.split("/", 1)[0] if "/" in self.ref else None

    @property
    def name(self) -> str | None:
        return self.ref.split("/", 1)[1] if "/" in self.ref else None


@dataclass
class AccessTemplate:
    group: str
    organization_role: str = DEFAULT_ORGANIZATION_ROLE
    workspaces: list[WorkspaceGrant] = field(default_factory=list)
    deployments: list[DeploymentGrant] = field(default_factory=list)
    idps: list[str] = field(default_factory=list)  # the IdPs that bring the group into Astro
    location: Location = field(default_factory=lambda: Location("<memory>"))


def providers_of(cfg: ProjectConfig, group: str) -> list[str]:
    """IdPs of `cfg` making `group` a Team: Okta pushes `push_groups`, Entra provisions `assign_groups`."""
    out = []
    if cfg.okta is not None and group in cfg.okta.push_groups:
        out.append("okta")
    if cfg.azure is not None and group in cfg.azure.assign_groups:
        out.append("azure")
    return out


# ---------------------------------------------------------------------------------------------- parsing


class _Reader:
    def __init__(self, cfg: ProjectConfig) -> None:
        self.cfg = cfg
        self.findings: list[Finding] = []

    def loc(self, *path: str | int, key: bool = False) -> Location:
        doc = self.cfg.document
        if doc is None:
            return Location(self.cfg.file)
        return doc.loc(("access", *path), key=key)

    def error(self, location: Location, code: str, message: str, hint: str | None = None) -> None:
        self.findings.append(Finding(Severity.ERROR, location, code, message, hint))

    def role(self, value: Any, location: Location, scope: str, allowed: tuple[str, ...]) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.error(
                location,
                "access-role",
                f"the {scope} role must be a role name",
                hint="one of: " + ", ".join(allowed) if allowed else None,
            )
            return None
        if allowed and value not in allowed:
            upper = value.strip().upper()
            other = _scope_of(upper)
            if upper in allowed:
                hint = f"role names are upper case: {upper}"
            elif other and other != scope:
                hint = f"{upper} is {_a(other)} {other} role; {scope} roles: " + ", ".join(allowed)
            else:
                hint = "one of: " + ", ".join(allowed)
            self.error(location, "access-role", f"unknown {scope} role {value!r}", hint)
            return None
        if scope == "deployment":
            other = _scope_of(value)
            if other in ("organization", "workspace"):
                self.error(
                    location,
                    "access-role",
                    f"{value} is {_a(other)} {other} role, not a deployment role",
                    hint=f"use {DEPLOYMENT_ADMIN} or a custom Deployment role name",
                )
                return None
            if value != DEPLOYMENT_ADMIN and closest(value.upper(), [DEPLOYMENT_ADMIN], cutoff=0.9) is not None:
                # Any other name may be a custom role (Astro checks it at apply), but one this close to the
                # built-in one is most likely a typo: said offline, before apply fails on it.
                self.findings.append(Finding(
                    Severity.WARNING, location, "access-role",
                    f"deployment role {value!r} is not {DEPLOYMENT_ADMIN}; unless Astro has a custom Deployment "
                    "role of that name, apply fails on it", f"did you mean {DEPLOYMENT_ADMIN}?"))
        return value

    def mapping(self, value: Any, location: Location, what: str) -> dict[Any, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(
                location,
                "access-shape",
                f"{what} must be a mapping of name -> role",
                hint=f"e.g. {what}: {{analytics: WORKSPACE_MEMBER}}"
                if what == "workspaces"
                else f"e.g. {what}: {{analytics/prod: DEPLOYMENT_ADMIN}}",
            )
            return None
        return value

    def template(self, group: Any, body: Any) -> AccessTemplate | None:
        if not isinstance(group, str) or not group.strip():
            self.error(
                self.loc(str(group), key=True), "access-shape", "a group name must be a non-empty string"
            )
            return None
        where = self.loc(group, key=True)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            self.error(
                self.loc(group),
                "access-shape",
                f"access for {group!r} must be a mapping",
                hint="keys: " + ", ".join(TEMPLATE_KEYS),
            )
            return None
        ok = True
        for key in body:
            if key not in TEMPLATE_KEYS:
                self.error(
                    self.loc(group, str(key), key=True),
                    "access-unknown-key",
                    f"unknown key {key!r} in the access template of {group!r}",
                    hint="allowed keys: " + ", ".join(TEMPLATE_KEYS),
                )
                ok = False
        org_role = DEFAULT_ORGANIZATION_ROLE
        if "organization" in body:
            checked = self.role(
                body["organization"], self.loc(group, "organization"), "organization", ORGANIZATION_ROLES
            )
            ok = ok and checked is not None
            org_role = checked or org_role
        tpl = AccessTemplate(
            group=group, organization_role=org_role, idps=providers_of(self.cfg, group), location=where
        )
        workspaces = self.mapping(body.get("workspaces"), self.loc(group, "workspaces"), "workspaces")
        for ref, role in (workspaces or {}).items():
            key_loc = self.loc(group, "workspaces", str(ref), key=True)
            if not isinstance(ref, str) or not ref.strip():
                self.error(key_loc, "access-shape", "a workspace must be named by its name or id")
                ok = False
                continue
            checked = self.role(role, self.loc(group, "workspaces", ref), "workspace", WORKSPACE_ROLES)
            if checked is None:
                ok = False
                continue
            tpl.workspaces.append(WorkspaceGrant(ref, checked, key_loc))
        deployments = self.mapping(body.get("deployments"), self.loc(group, "deployments"), "deployments")
        for ref, role in (deployments or {}).items():
            key_loc = self.loc(group, "deployments", str(ref), key=True)
            if not isinstance(ref, str) or not (looks_like_id(ref) or _has_both_parts(ref)):
                self.error(
                    key_loc,
                    "access-deployment",
                    f"deployment {ref!r} must be '<workspace>/<deployment>' or a Deployment id",
                    hint="e.g. analytics/prod",
                )
                ok = False
                continue
            checked = self.role(role, self.loc(group, "deployments", ref), "deployment", ())
            if checked is None:
                ok = False
                continue
            tpl.deployments.append(DeploymentGrant(ref, checked, key_loc))
        ok = ok and workspaces is not None and deployments is not None
        ok = self._hierarchy(tpl) and ok
        ok = self._provisioned(tpl) and ok
        return tpl if ok else None

    def _hierarchy(self, tpl: AccessTemplate) -> bool:
        """A Deployment role needs a role on the Deployment's Workspace (Astro's roles are hierarchical)."""
        granted = {w.ref for w in tpl.workspaces}
        # A Workspace granted by id may be the one a "<workspace>/<deployment>" names: plan checks that case.
        by_id = any(looks_like_id(ref) for ref in granted)
        ok = True
        for d in tpl.deployments:
            # A Deployment named "<workspace id>/<name>" under a Workspace granted by name: plan resolves both.
            if d.workspace is not None and d.workspace not in granted and not by_id \
                    and not looks_like_id(d.workspace):
                self.error(
                    d.location,
                    "access-hierarchy",
                    f"a role on deployment {d.ref!r} needs a role on its workspace {d.workspace!r}, and "
                    f"the template of {tpl.group!r} gives none",
                    hint=f"add '{d.workspace}: WORKSPACE_ACCESSOR' (or any workspace role) under workspaces",
                )
                ok = False
        return ok

    def _provisioned(self, tpl: AccessTemplate) -> bool:
        if tpl.idps:
            return True
        cfg = self.cfg
        hints = []
        if cfg.okta is not None:
            if tpl.group in cfg.okta.assign_groups:
                hints.append(
                    "okta only assigns it (its members get accounts); add it to okta.push_groups so "
                    "it becomes a Team"
                )
            else:
                hints.append("add it to okta.push_groups")
        if cfg.azure is not None:
            hints.append("add it to azure.assign_groups")
        known = [g for g in _all_groups(cfg) if g.casefold() == tpl.group.casefold()]
        if known:
            hints.insert(0, f"did you mean {known[0]!r}? (names are case-sensitive)")
        self.error(
            tpl.location,
            "access-group",
            f"group {tpl.group!r} is not pushed or provisioned by any "
            "identity provider of this config, so it never becomes an Astro Team",
            hint="; or ".join(hints) or "add an okta: or azure: section that provisions it",  # alternatives
        )
        return False


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _has_both_parts(ref: str) -> bool:
    ws, sep, dep = ref.partition("/")
    return bool(sep and ws.strip() and dep.strip())


def _scope_of(role: str) -> str | None:
    if role in ORGANIZATION_ROLES or role.startswith("ORGANIZATION_"):
        return "organization"
    if role in WORKSPACE_ROLES or role.startswith("WORKSPACE_"):
        return "workspace"
    if role.startswith("DEPLOYMENT_"):
        return "deployment"
    return None


def _all_groups(cfg: ProjectConfig) -> list[str]:
    groups: list[str] = []
    if cfg.okta is not None:
        groups += cfg.okta.push_groups + cfg.okta.assign_groups
    if cfg.azure is not None:
        groups += cfg.azure.assign_groups
    return groups


def parse_access(cfg: ProjectConfig) -> tuple[list[AccessTemplate], list[Finding]]:
    """The valid templates of `cfg.access`, and a finding (with file:line:col) for every mistake."""
    reader = _Reader(cfg)
    templates = []
    for group, body in (cfg.access or {}).items():
        tpl = reader.template(group, body)
        if tpl is not None:
            templates.append(tpl)
    return templates, reader.findings


def validate_access(cfg: ProjectConfig) -> list[Finding]:
    return parse_access(cfg)[1]


def require_templates(cfg: ProjectConfig) -> list[AccessTemplate]:
    """Templates, or ConfigError (exit 2) at the first mistake; commands refuse a broken section."""
    templates, findings = parse_access(cfg)
    # every mistake of the section at once, each at its line
    ConfigErrors.raise_all([ConfigError(f.message, location=f.location, hint=f.hint) for f in findings
                            if f.severity is Severity.ERROR])
    return templates


# ---------------------------------------------------------------------------------------------- validate hook


_PROJECT_KEYS = frozenset({"astro", "okta", "azure", "access", "safety"})


def validate_project_file(path: str | Path) -> list[Finding] | None:
    """Findings for a project config given to `astro-scim validate`; None when `path` is not one (a mapping).

    A project config is a YAML mapping with top-level astro/okta/azure/access keys and no `idp:` key.
    """
    from connector.config.load import load_config_collecting
    from connector.support import yamlsrc

    try:
        doc = yamlsrc.load(path)
    except (ConfigError, RecursionError):
        return None  # unreadable or a recursive anchor: the mapping validator reports it the usual way
    data = doc.data
    if not isinstance(data, dict) or "idp" in data or not (set(data) & (_PROJECT_KEYS - {"safety"})):
        return None
    try:
        cfg, errors = load_config_collecting(path)
    except ConfigError as exc:  # not a mapping of keys: nothing else could be checked (the hint says so)
        return [Finding(Severity.ERROR, exc.location or Location(str(path)), "config", exc.message, exc.hint)]
    # Every independent mistake of the file, each at its line (one run of a CI job shows them all).
    findings = [Finding(Severity.ERROR, e.location or Location(str(path)), "config", e.message, e.hint)
                for e in errors]
    for idp in ("okta", "azure"):  # the Astro token source every IdP command needs (astro_for raises it later)
        section = getattr(cfg, idp)
        if section is not None and section.astro is None and "astro" not in data and not isinstance(
                data[idp].get("astro"), dict):
            findings.append(Finding(
                Severity.ERROR, cfg.document.loc((idp,)) if cfg.document else Location(str(path)), "config",
                f"no Astro SCIM endpoint configured for {idp}",
                f"add an 'astro:' section (or {idp}.astro) with scim_url and token"))
    if any(section in data and getattr(cfg, section) is None for section in ("okta", "azure")):
        return findings  # an IdP section that is no mapping: its groups are unknown, the access checks would guess
    findings += validate_access(cfg)
    if cfg.okta is not None:  # what plan notes too, here offline: Okta does not support one group for both
        pushed = {g.casefold() for g in cfg.okta.push_groups}
        both = [g for g in cfg.okta.assign_groups if g.strip() and g.casefold() in pushed]  # blank: its own error
        if both:
            loc = cfg.document.loc(("okta", "push_groups")) if cfg.document is not None else None
            findings.append(Finding(
                Severity.WARNING, loc or Location(str(path)), "config",
                "Okta does not support one group for both assignment and Group Push: " + ", ".join(both),
                "assign the app to another group holding the same people (e.g. 'Astro Users'), and push this one"))
    return findings


# ---------------------------------------------------------------------------------------------- role sets


@dataclass(frozen=True)
class RoleSet:
    """A Team's roles by id, as the Platform API reads and writes them."""

    organization: str
    workspaces: frozenset[tuple[str, str]] = frozenset()  # (workspace id, role)
    deployments: frozenset[tuple[str, str]] = frozenset()  # (deployment id, role)

    @classmethod
    def from_api(cls, team: Mapping[str, Any]) -> RoleSet:
        return cls(
            organization=str(team.get("organizationRole") or ""),
            workspaces=frozenset(
                (str(w.get("workspaceId")), str(w.get("role"))) for w in team.get("workspaceRoles") or []
            ),
            deployments=frozenset(
                (str(d.get("deploymentId")), str(d.get("role"))) for d in team.get("deploymentRoles") or []
            ),
        )

    def body(self) -> dict[str, Any]:
        """The body of POST /organizations/{org}/teams/{team}/roles."""
        return {
            "organizationRole": self.organization,
            "workspaceRoles": [{"workspaceId": i, "role": r} for i, r in sorted(self.workspaces)],
            "deploymentRoles": [{"deploymentId": i, "role": r} for i, r in sorted(self.deployments)],
        }

    def view(self, names: Mapping[str, str]) -> dict[str, Any]:
        """By name, for plans and reports: {"organization", "workspaces": {name: role}, "deployments"}."""
        return {
            "organization": self.organization,
            "workspaces": {
                names.get(i, i): r for i, r in sorted(self.workspaces, key=lambda x: names.get(x[0], x[0]))
            },
            "deployments": {
                names.get(i, i): r for i, r in sorted(self.deployments, key=lambda x: names.get(x[0], x[0]))
            },
        }


def describe_diff(before: RoleSet, after: RoleSet, names: Mapping[str, str]) -> list[str]:
    """One line per role that changes: "+ workspace analytics WORKSPACE_AUTHOR", "~ organization A -> B"."""
    lines = []
    if before.organization != after.organization:
        lines.append(f"~ organization {before.organization or '(none)'} -> {after.organization}")
    for scope, old, new in (
        ("workspace", before.workspaces, after.workspaces),
        ("deployment", before.deployments, after.deployments),
    ):
        old_map, new_map = dict(old), dict(new)
        for item in sorted(set(old_map) | set(new_map), key=lambda i: names.get(i, i)):
            label = names.get(item, item)
            if item not in old_map:
                lines.append(f"+ {scope} {label} {new_map[item]}")
            elif item not in new_map:
                lines.append(f"- {scope} {label} {old_map[item]}")
            elif old_map[item] != new_map[item]:
                lines.append(f"~ {scope} {label} {old_map[item]} -> {new_map[item]}")
    return lines
