"""Validate mapping files: collect every finding (structure, SCIM targets, expressions, IdP rules), never stop
at the first one. Pure and offline: no SDK is imported here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from connector.errors import ConfigError, ExpressionError, Location
from connector.mapping import idp_attributes, scim_paths
from connector.mapping.load import LoadResult, load, load_bytes
from connector.mapping.model import ApplyOn, AttributeMapping, Finding, MappingFile, Severity
from connector.support.suggest import closest
from connector.support.yamlsrc import read_bytes

# Findings that mean "could not read what you pointed at": the CLI exits 2 on these, 1 on the rest.
UNREADABLE = frozenset({"unreadable", "no-files"})

ERROR = Severity.ERROR
WARNING = Severity.WARNING
RESOURCE = {"users": "User", "groups": "Group"}
ENTRA_MANAGER = f"{idp_attributes.ENTERPRISE}:manager"
# For the SCIM path findings that come without a hint of their own.
_PATH_HINTS = {
    "scim-path-syntax": 'a SCIM path reads attribute, attribute.sub or attribute[type eq "work"].sub',
    "scim-read-only": "remove this mapping: the SCIM service sets it",
    "scim-unknown-attribute": "see RFC 7643 section 4 for the User, Group and enterprise User attributes",
}
# The only group mappings Okta honours: Group Push sends the Okta group's name and its members (see okta_group).
OKTA_GROUP_SOURCES = {"displayName": "group.name", "members": "group.members"}


def find_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[Finding]]:
    """Expand files and folders (recursively, *.yaml / *.yml) into a sorted, de-duplicated file list."""
    files: list[Path] = []
    problems: list[Finding] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            # Hidden files and folders are left out (.github/workflows/*.yml, .pre-commit-config.yaml: a folder such
            # as the repository's root holds YAML that is no mapping); named on the command line, they are checked.
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in (".yaml", ".yml") and f.is_file()
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                problems.append(Finding(ERROR, Location(str(raw)), "no-files", "no *.yaml or *.yml files in folder",
                                        "point at a mapping file or a folder that holds some"))
            files.extend(found)
        elif p.exists() or p.is_symlink():
            files.append(p)
        else:
            problems.append(Finding(ERROR, Location(str(raw)), "unreadable", "no such file or folder",
                                    f"check the path (relative to {Path.cwd()})" if not p.is_absolute() else
                                    "check the path"))
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


def validate_paths(paths: Sequence[str | Path]) -> list[Finding]:
    """Every finding for the given files and folders, in file order."""
    files, findings = find_files(paths)
    for f in files:
        findings.extend(validate_file(f))
    return findings


def validate_file(path: str | Path) -> list[Finding]:
    try:
        result = load(path)
    except ConfigError as exc:
        return [Finding(ERROR, exc.location or Location(str(path)), "unreadable", exc.message, exc.hint)]
    return _findings(result)


def _findings(result: LoadResult) -> list[Finding]:
    findings = list(result.findings)
    if result.mapping is not None:
        findings.extend(_Checker(result, result.mapping).run())
    return sorted(findings, key=lambda f: (f.location.line, f.location.column))


def checked_mapping(path: str | Path, *, named_at: Location | None = None) -> MappingFile:
    """The mapping a provider plans with: loaded once and put through every check `validate` makes, so that plan
    never pushes a mapping validate rejects. The first error (of how many) becomes a ConfigError at its file:line;
    `named_at` is where the config names the file, for a file that cannot be used at all."""
    try:
        raw = read_bytes(path)
    except ConfigError as exc:
        if named_at is None or exc.location is None or exc.location.line:
            raise
        # The file itself cannot be read (missing, a folder, not UTF-8): the config's line that names it is where
        # the fix goes.
        raise ConfigError(f"mapping file {path}: {exc.message}", location=named_at,
                          hint=exc.hint or "fix the path (a relative one is read from the config file's folder), "
                                           "or leave 'mapping' out to use the shipped default") from exc
    key = (str(path), raw)
    checked = _CHECKED.get(key)
    if checked is not None:
        return checked
    result = load_bytes(raw, str(path))
    errors = [f for f in _findings(result) if f.severity is ERROR]
    if result.mapping is None or errors:
        first = errors[0] if errors else None
        detail = f": {first.message}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "") if first else ""
        raise ConfigError(f"mapping file {path} is not valid{detail}",
                          location=first.location if first else named_at,
                          hint=f"run 'astro-scim validate {path}' for every finding")
    if len(_CHECKED) >= 16:
        _CHECKED.clear()
    _CHECKED[key] = result.mapping
    return result.mapping


# Mappings that passed every check, by file name and content (~1.5 ms of parsing and path resolving each): one
# process may plan, apply and verify with the same file (and the test suite runs ~1,300 commands in-process with
# the shipped ones). A file that changes is a new key. The MappingFile is shared, so callers treat it as read-only
# (none writes to one).
_CHECKED: dict[tuple[str, bytes], MappingFile] = {}


def _expression_code(message: str) -> str:
    if message.startswith("unknown function"):
        return "unknown-function"
    if " takes " in message or "even number of arguments" in message or "cannot be left blank" in message:
        return "arity"
    if message.startswith(("unclosed", "unbalanced")):
        return "unbalanced-brackets"
    if message.startswith("unterminated string"):
        return "unbalanced-quotes"
    return "expression-syntax"


class _Checker:
    def __init__(self, result: LoadResult, mapping: MappingFile) -> None:
        self.r = result
        self.m = mapping
        self.out: list[Finding] = []
        self.idp_label = "Okta" if mapping.idp == "okta" else "Entra"

    def add(self, severity: Severity, loc: Location, code: str, message: str, hint: str | None = None) -> None:
        self.out.append(Finding(severity, loc, code, message, hint))

    def run(self) -> list[Finding]:
        for section in ("users", "groups"):
            entries: list[AttributeMapping] = getattr(self.m, section)
            for entry in entries:
                self.entry(section, entry)
            self.duplicates(section, entries)
            self.matching(section, entries)
        self.user_name()
        self.group_display_name()
        return self.out

    # -- locations -----------------------------------------------------------------------------------------

    def inner(self, loc: Location, value: str, column: int) -> Location:
        """The location of `column` inside a scalar that starts at `loc`, when the scalar sits on one line as
        written (plain or quoted without escapes); else the scalar's own location."""
        if not loc.line or loc.line > len(self.r.lines) or column <= 1:
            return loc
        rest = self.r.lines[loc.line - 1][loc.column - 1:]
        if rest.startswith(value):
            return Location(loc.file, loc.line, loc.column + column - 1)
        if rest[:1] in ("'", '"') and rest[1:].startswith(value):
            return Location(loc.file, loc.line, loc.column + column)
        return loc

    # -- per entry -----------------------------------------------------------------------------------------

    def entry(self, section: str, e: AttributeMapping) -> None:
        target_loc = self.r.entry_loc(e, "target")
        issues = scim_paths.check_path(e.target, RESOURCE[section])
        if self.m.idp == "azure" and [i.code for i in issues] == ["scim-complex-target"] and \
                scim_paths.canonical(e.target).lower() == ENTRA_MANAGER.lower():
            # Entra's default mapping: the manager reference goes to the complex attribute itself (Entra writes
            # its value), so that is no mistake here; Astro still does not document it.
            issues = [scim_paths.PathIssue(WARNING, "astro-undocumented",
                                           f"Astro does not document {ENTRA_MANAGER!r}; it may ignore it")]
        for issue in issues:
            self.add(issue.severity, self.inner(target_loc, e.target, issue.column), issue.code,
                     issue.message, issue.hint or _PATH_HINTS.get(issue.code))
        is_user_name = section == "users" and scim_paths.canonical(e.target) == "userName"
        okta = self.m.idp == "okta"
        if not okta and not any(i.severity is ERROR for i in scim_paths.check_path(e.target, RESOURCE[section])):
            spelled = scim_paths.canonical(e.target, RESOURCE[section])
            if spelled.lower() != e.target.lower():
                # Entra's schema keys attributes by name (case aside): apply would define a second attribute and
                # drop the template's mapping to the one Astro reads.
                self.add(ERROR, target_loc, "entra-target-spelling",
                         f"Entra names a target attribute by its text: {e.target!r} is another attribute than "
                         f"Entra's {spelled}", f"write {spelled}")
        if okta and section == "users" and not is_user_name and not any(
                i.severity is ERROR for i in scim_paths.check_path(e.target, "User")):
            self.okta_app_attribute(e, target_loc)
        if e.from_sign_on:
            if not okta:
                self.add(ERROR, self.r.entry_loc(e, "from_sign_on"), "from-sign-on-okta-only",
                         "from_sign_on is Okta-only (Okta's 'Configured in sign-on settings')",
                         "for Entra, map userName from an expression such as [userPrincipalName]")
            elif not is_user_name:
                self.add(ERROR, self.r.entry_loc(e, "from_sign_on"), "from-sign-on-not-username",
                         f"from_sign_on only applies to userName, not {e.target}",
                         "Okta takes only the app username from the sign-on settings; give a source expression")
            if e.source is not None and okta:
                self.add(ERROR, self.r.entry_loc(e, "source"), "from-sign-on-and-source",
                         "give either from_sign_on: true or a source, not both",
                         "Okta ignores profile mappings for the app username")
        elif okta and is_user_name and e.source is not None:
            self.add(ERROR, self.r.entry_loc(e, "source"), "okta-username-mapped",
                     "Okta sets userName from the app's sign-on settings, not from a profile mapping",
                     "use from_sign_on: true and pick the username format on the app's Sign On tab")
        if e.matching and okta:
            self.add(ERROR, self.r.entry_loc(e, "matching"), "matching-azure-only",
                     "matching is Entra-only (matching precedence); Okta matches users on userName",
                     "remove matching from Okta mappings")
        if e.default is not None and okta:
            self.add(ERROR, self.r.entry_loc(e, "default"), "default-azure-only",
                     "default is Entra-only (defaultValue); Okta profile mappings have none",
                     'use the elvis operator instead: user.x ?: "fallback"')
        if e.source is not None:
            if okta:
                self.okta_source(section, e)
            else:
                self.entra_source(section, e)

    def okta_app_attribute(self, e: AttributeMapping, loc: Location) -> None:
        """Okta maps a profile expression onto an app user attribute, and plan knows those of Okta's SCIM app
        template only (connector.mapping.idp_attributes): any other target would pass here and then be refused by
        plan and apply."""
        if idp_attributes.okta_app_user_attribute(e.target) is not None:
            return
        why = idp_attributes.OKTA_SENDS_ITSELF.get(scim_paths.canonical(e.target).lower())
        # Compared without the enterprise URN: its 60 shared characters make every extension path look alike.
        short = {p.removeprefix(idp_attributes.ENTERPRISE + ":"): p
                 for p in idp_attributes.SCIM_TO_OKTA_APPUSER if p != "userName"}
        near = closest(e.target.removeprefix(idp_attributes.ENTERPRISE + ":"), list(short), 0.8)
        guess = short[near] if near else None
        self.add(ERROR, loc, "okta-no-app-attribute",
                 f"Okta has no app user attribute for {e.target}" + (f": {why}" if why else ""),
                 "remove this mapping" if why else f"did you mean {guess}?" if guess else
                 "map an attribute of Okta's SCIM app, e.g. name.givenName, name.familyName, "
                 'emails[type eq "work"].value, displayName, profileUrl')

    def okta_group(self, e: AttributeMapping, loc: Location) -> None:
        """Okta has no group profile mappings: Group Push sends the group's name and members as they are, and the
        Okta provider never reads the groups section. Anything else there would validate and then be ignored."""
        assert e.source is not None
        target = scim_paths.canonical(e.target, "Group")
        want = OKTA_GROUP_SOURCES.get(target)
        if want is None and any(i.severity is ERROR for i in scim_paths.check_path(e.target, "Group")):
            return  # the path itself is reported
        if want is not None and "".join(e.source.split()) == want:
            if e.apply_on is ApplyOn.CREATE_ONLY:
                self.add(ERROR, self.r.entry_loc(e, "apply_on"), "okta-group-mapping",
                         "apply_on: create_only has no effect on an Okta group: Group Push sends the name and "
                         "members on every push", "remove apply_on from Okta group mappings")
            return
        from connector.mapping.expr import okta as okta_expr

        if any(p.root != "group" for p in okta_expr.attributes(okta_expr.parse(e.source))):
            return  # reported as wrong-object
        self.add(ERROR, loc, "okta-group-mapping",
                 "Okta Group Push sends the group's name as displayName and its members, nothing else: this "
                 "mapping would not be applied", f"write source: {want}" if want else "remove this mapping")

    def expression_error(self, e: AttributeMapping, exc: ExpressionError) -> None:
        assert e.source is not None
        loc = self.inner(self.r.entry_loc(e, "source"), e.source, exc.column)
        self.add(ERROR, loc, _expression_code(exc.message),
                 f"invalid {self.idp_label} expression for {e.target}: {exc.message}", exc.hint or (
                     'Okta expressions: user.attribute, "text", String.fn(...), +, a ? b : c, a ?: b'
                     if self.m.idp == "okta" else 'Entra expressions: [attribute], "text", Function(argument, ...)'))

    def okta_source(self, section: str, e: AttributeMapping) -> None:
        # Each IdP's expression module is imported by its own mappings only: a command about one IdP does not
        # build the other's parser (~5-10 ms of a drift's start-up each).
        from connector.mapping.expr import okta as okta_expr

        assert e.source is not None
        try:
            expr = okta_expr.parse(e.source)
        except okta_expr.ExpressionError as exc:
            self.expression_error(e, exc)
            return
        loc = self.r.entry_loc(e, "source")
        if section == "groups":
            self.okta_group(e, loc)
        for p in okta_expr.attributes(expr):
            at = self.inner(loc, e.source, p.column)
            kind = "users" if p.root == "user" else "groups" if p.root == "group" else None
            if section == "users" and p.root == "group":
                self.add(ERROR, at, "wrong-object", f"{p.root}.{p.name}: user mappings cannot read the group",
                         "use user.* attributes")
            elif section == "groups" and p.root in ("user", "appuser"):
                self.add(ERROR, at, "wrong-object", f"{p.root}.{p.name}: group mappings read group.* attributes",
                         "e.g. group.name")
            elif p.root not in okta_expr.ROOTS:
                # Okta reads it as another app's user profile (zendesk.firstName); a stray word parses the same.
                self.add(WARNING, at, "okta-other-app-object",
                         f"{p.root}.{p.name} reads the app user of an app named '{p.root}'",
                         f"fine if {p.root} is an app's instance name in your Okta org; the Okta user's own is "
                         f"user.{p.name}")
            elif kind and not idp_attributes.is_standard("okta", kind, p.name):
                guess = idp_attributes.suggest("okta", kind, p.name)
                self.add(WARNING, at, "unknown-source-attribute",
                         f"{p.root}.{p.name} is not in Okta's standard {kind[:-1]} profile",
                         f"did you mean {p.root}.{guess}?" if guess else
                         "fine if it is a custom attribute in your Okta profile")
        for call in okta_expr.calls(expr):
            spec = okta_expr.FUNCTIONS[call.qualified]
            at = self.inner(loc, e.source, call.column)
            if spec.deprecated_for:
                self.add(WARNING, at, "deprecated-function", f"{call.qualified} is deprecated",
                         f"use {spec.deprecated_for}")
            if spec.note:
                self.add(WARNING, at, "function-context", f"{call.qualified}: {spec.note}")

    def entra_source(self, section: str, e: AttributeMapping) -> None:
        from connector.mapping.expr import entra as entra_expr  # see okta_source

        assert e.source is not None
        try:
            expr = entra_expr.parse(e.source)
        except entra_expr.ExpressionError as exc:
            self.expression_error(e, exc)
            return
        loc = self.r.entry_loc(e, "source")
        for a in entra_expr.attributes(expr):
            if not idp_attributes.is_standard("azure", section, a.name):
                guess = idp_attributes.suggest("azure", section, a.name)
                self.add(WARNING, self.inner(loc, e.source, a.column), "unknown-source-attribute",
                         f"[{a.name}] is not a standard Entra {section[:-1]} attribute",
                         f"did you mean [{guess}]?" if guess else
                         "fine if it is a directory extension or custom attribute in your tenant")
        for fn in entra_expr.calls(expr):
            spec = entra_expr.FUNCTIONS[fn.name]
            if spec.note:
                self.add(WARNING, self.inner(loc, e.source, fn.column), "function-context",
                         f"{fn.name}: {spec.note}")

    # -- across entries --------------------------------------------------------------------------------------

    def duplicates(self, section: str, entries: Iterable[AttributeMapping]) -> None:
        seen: dict[str, AttributeMapping] = {}
        for e in entries:
            key = scim_paths.canonical(e.target, RESOURCE[section]).lower()
            first = seen.get(key)
            if first is None:
                seen[key] = e
                continue
            if key == "username" and section == "users":
                continue  # reported once, as "more than one userName"
            first_loc = self.r.entry_loc(first, "target")
            self.add(ERROR, self.r.entry_loc(e, "target"), "duplicate-target",
                     f"{section} maps {e.target} twice (first at line {first_loc.line})",
                     "keep one mapping per target")

    def matching(self, section: str, entries: list[AttributeMapping]) -> None:
        if self.m.idp != "azure" or not entries:
            return
        by_priority: dict[int, AttributeMapping] = {}
        for e in entries:
            if not e.matching:
                continue
            other = by_priority.get(e.matching)
            if other is not None:
                self.add(ERROR, self.r.entry_loc(e, "matching"), "duplicate-matching",
                         f"matching {e.matching} is also used by {other.target}",
                         "give each matching attribute its own precedence (1, 2, ...)")
            else:
                by_priority[e.matching] = e
        if not by_priority and section not in self.r.incomplete:
            want = "userName" if section == "users" else "displayName"
            self.add(ERROR, self.r.loc((section,), key=True), "no-matching",
                     f"Entra needs a matching attribute for {section}", f"add matching: 1 to {want}")

    def user_name(self) -> None:
        if "users" in self.r.incomplete:
            return
        names = [e for e in self.m.users if scim_paths.canonical(e.target) == "userName"]
        broken = any(scim_paths.canonical(t) == "userName" for t in self.r.broken_targets["users"])
        if not names and not broken:
            data = self.r.document.data if self.r.document is not None else None
            loc = self.r.loc(("users",), key=True) if isinstance(data, dict) and "users" in data else \
                Location(self.r.file, 1, 1)
            self.add(ERROR, loc, "missing-username", "no mapping for userName: Astro identifies users by it",
                     "add '- target: userName' with " + ("from_sign_on: true" if self.m.idp == "okta"
                                                          else 'source: "[userPrincipalName]" and matching: 1'))
        for extra in names[1:]:
            first = self.r.entry_loc(names[0], "target")
            self.add(ERROR, self.r.entry_loc(extra, "target"), "duplicate-username",
                     f"more than one userName mapping (first at line {first.line})", "keep exactly one")

    def group_display_name(self) -> None:
        if not self.m.groups or "groups" in self.r.incomplete:
            return
        if any(scim_paths.canonical(e.target, "Group") == "displayName" for e in self.m.groups):
            return
        if any(scim_paths.canonical(t, "Group") == "displayName" for t in self.r.broken_targets["groups"]):
            return
        self.add(ERROR, self.r.loc(("groups",), key=True), "missing-group-display-name",
                 "groups have no displayName mapping: Astro names Teams by it",
                 "add '- target: displayName' with source: " + ("group.name" if self.m.idp == "okta"
                                                                 else '"[displayName]"'))
