"""SCIM attribute paths (RFC 7643/7644) for mapping targets: parse, check against the core User/Group and
enterprise User schemas, and read/write SCIM JSON by path.

Paths look like `userName`, `name.givenName`, `emails[type eq "work"].value`, `members`, or carry a schema URN:
`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`. Attribute names are case-insensitive
(RFC 7643 section 2.1). The schema table below is generated from scim2-models (`User.to_schema()`,
`EnterpriseUser.to_schema()`, `Group.to_schema()`); tests/test_mapping_scim_paths.py checks it still equals what
scim2-models says. It is a literal because importing pydantic costs most of a second, and `validate` is meant
to be fast.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connector.errors import ConfigError
from connector.mapping.model import Severity
from connector.support.suggest import closest

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Attr(NamedTuple):
    name: str
    type: str
    multi: bool = False
    mutability: str = "readWrite"
    case_exact: bool = False
    canonical: tuple[str, ...] = ()
    sub: tuple[Attr, ...] = ()


def _a(name: str, type_: str, *, multi: bool = False, mutability: str = "readWrite", case_exact: bool = False,
       canonical: tuple[str, ...] = (), sub: tuple[Attr, ...] = ()) -> Attr:
    return Attr(name, type_, multi, mutability, case_exact, canonical, sub)


# ---- generated from scim2-models 0.12 (see module docstring) ------------------------------------------------
_USER_ATTRS = (
    _a("userName", "string"),
    _a("name", "complex", sub=(
        _a("formatted", "string"),
        _a("familyName", "string"),
        _a("givenName", "string"),
        _a("middleName", "string"),
        _a("honorificPrefix", "string"),
        _a("honorificSuffix", "string"),
    )),
    _a("displayName", "string"),
    _a("nickName", "string"),
    _a("profileUrl", "reference", case_exact=True),
    _a("title", "string"),
    _a("userType", "string"),
    _a("preferredLanguage", "string"),
    _a("locale", "string"),
    _a("timezone", "string"),
    _a("active", "boolean"),
    _a("password", "string", mutability="writeOnly", case_exact=True),
    _a("emails", "complex", multi=True, sub=(
        _a("value", "string"),
        _a("display", "string"),
        _a("type", "string", canonical=("work", "home", "other")),
        _a("primary", "boolean"),
    )),
    _a("phoneNumbers", "complex", multi=True, sub=(
        _a("value", "string"),
        _a("display", "string"),
        _a("type", "string", canonical=("work", "home", "mobile", "fax", "pager", "other")),
        _a("primary", "boolean"),
    )),
    _a("ims", "complex", multi=True, sub=(
        _a("value", "string"),
        _a("display", "string"),
        _a("type", "string", canonical=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
        _a("primary", "boolean"),
    )),
    _a("photos", "complex", multi=True, sub=(
        _a("value", "reference", case_exact=True),
        _a("display", "string"),
        _a("type", "string", canonical=("photo", "thumbnail")),
        _a("primary", "boolean"),
    )),
    _a("addresses", "complex", multi=True, sub=(
        _a("formatted", "string"),
        _a("streetAddress", "string"),
        _a("locality", "string"),
        _a("region", "string"),
        _a("postalCode", "string"),
        _a("country", "string"),
        _a("type", "string", canonical=("work", "home", "other")),
        _a("primary", "boolean"),
    )),
    _a("groups", "complex", multi=True, mutability="readOnly", sub=(
        _a("value", "string", mutability="readOnly", case_exact=True),
        _a("$ref", "reference", mutability="readOnly", case_exact=True),
        _a("display", "string", mutability="readOnly"),
        _a("type", "string", mutability="readOnly", canonical=("direct", "indirect")),
    )),
    _a("entitlements", "complex", multi=True, sub=(
        _a("value", "string"),
        _a("display", "string"),
        _a("type", "string"),
        _a("primary", "boolean"),
    )),
    _a("roles", "complex", multi=True, sub=(
        _a("value", "string"),
        _a("display", "string"),
        _a("type", "string"),
        _a("primary", "boolean"),
    )),
    _a("x509Certificates", "complex", multi=True, sub=(
        _a("value", "binary", case_exact=True),
        _a("display", "string"),
        _a("type", "string"),
        _a("primary", "boolean"),
    )),
)
_ENTERPRISE_USER_ATTRS = (
    _a("employeeNumber", "string"),
    _a("costCenter", "string"),
    _a("organization", "string"),
    _a("division", "string"),
    _a("department", "string"),
    _a("manager", "complex", sub=(
        _a("value", "string", case_exact=True),
        _a("$ref", "reference", case_exact=True),
        _a("displayName", "string", mutability="readOnly"),
    )),
)
_GROUP_ATTRS = (
    _a("displayName", "string"),
    _a("members", "complex", multi=True, sub=(
        _a("value", "string", mutability="immutable", case_exact=True),
        _a("$ref", "reference", mutability="immutable", case_exact=True),
        _a("type", "string", mutability="immutable", canonical=("User", "Group")),
        _a("display", "string"),
    )),
)
# ---- end of generated table ------------------------------------------------------------------------------------

# RFC 7643 section 3.1: on every resource, outside the schema documents.
_COMMON_ATTRS = (
    _a("id", "string", mutability="readOnly", case_exact=True),
    _a("externalId", "string", case_exact=True),
    _a("meta", "complex", mutability="readOnly", sub=(
        _a("resourceType", "string", mutability="readOnly", case_exact=True),
        _a("created", "dateTime", mutability="readOnly"),
        _a("lastModified", "dateTime", mutability="readOnly"),
        _a("location", "reference", mutability="readOnly", case_exact=True),
        _a("version", "string", mutability="readOnly", case_exact=True),
    )),
)

SCHEMAS: dict[str, tuple[Attr, ...]] = {
    CORE_USER: _USER_ATTRS,
    ENTERPRISE_USER: _ENTERPRISE_USER_ATTRS,
    CORE_GROUP: _GROUP_ATTRS,
}
RESOURCE_SCHEMAS: dict[str, tuple[str, tuple[str, ...]]] = {  # resource -> (core schema, extensions)
    "User": (CORE_USER, (ENTERPRISE_USER,)),
    "Group": (CORE_GROUP, ()),
}

# What Astro's SCIM page documents; anything else is accepted by the schema but may be ignored by Astro.
ASTRO_DOCUMENTED: dict[str, tuple[str, ...]] = {
    "User": ("userName", "name.givenName", "name.familyName", "emails", "displayName", "profileUrl", "active",
             "externalId"),
    "Group": ("displayName", "members", "externalId"),
}
# Multi-valued attributes that IdPs map whole (Entra: members <- members, roles <- AppRoleAssignmentsComplex).
_WHOLE_MULTI = {"members", "roles"}


class ScimPathError(ConfigError):
    """A path that does not parse. `column` is 1-based within the path."""

    def __init__(self, message: str, column: int = 1, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.column = column


@dataclass(frozen=True)
class Condition:
    """One `attr op value` of a value filter; value is None for `pr`."""

    attr: str
    op: str
    value: Any = None

    def text(self) -> str:
        if self.op == "pr":
            return f"{self.attr} pr"
        return f"{self.attr} {self.op} {_literal(self.value)}"


@dataclass(frozen=True)
class ScimPath:
    attr: str
    schema: str | None = None  # the URN as written, None for core attributes without a prefix
    filter: tuple[Condition, ...] = ()
    join: str = "and"  # how filter conditions combine
    sub: str | None = None
    text: str = ""

    def format(self) -> str:
        out = f"{self.schema}:{self.attr}" if self.schema else self.attr
        if self.filter:
            out += "[" + f" {self.join} ".join(c.text() for c in self.filter) + "]"
        if self.sub:
            out += f".{self.sub}"
        return out


@dataclass(frozen=True)
class PathIssue:
    severity: Severity
    code: str
    message: str
    hint: str | None = None
    column: int = 1


@dataclass
class Resolved:
    """A path matched against the schema: the attribute definitions it lands on (None when unknown)."""

    path: ScimPath
    schema: str | None  # full URN of the schema the attribute belongs to
    attr: Attr | None
    sub: Attr | None = None
    extension: bool = False
    issues: list[PathIssue] = field(default_factory=list)

    @property
    def canonical(self) -> str:
        p = self.path
        if self.attr is None:
            return p.format()
        name = self.attr.name if self.attr else p.attr
        sub = (self.sub.name if self.sub else p.sub) if p.sub else None
        conditions = tuple(Condition(_sub_name(self.attr, c.attr), c.op, c.value) for c in p.filter)
        schema = self.schema if self.extension else None
        return ScimPath(name, schema, conditions, p.join, sub).format()


def filter_string(value: str) -> str:
    """A SCIM filter string literal: quotes and backslashes escaped (RFC 7644 3.4.2.2 uses JSON strings)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return filter_string(str(value))


def _sub_name(attr: Attr | None, name: str) -> str:
    if attr is not None:
        for s in attr.sub:
            if s.name.lower() == name.lower():
                return s.name
    return name


# ----------------------------------------------------------------------------------------------- parsing

_OPS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr")


def _is_name_start(c: str) -> bool:
    return len(c) == 1 and c.isascii() and (c.isalpha() or c == "$")


def _is_name_char(c: str) -> bool:
    return len(c) == 1 and c.isascii() and (c.isalnum() or c in "_-$")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def col(self) -> int:
        return self.i + 1

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.peek() == " ":
            self.i += 1

    def name(self, what: str, hint: str | None = "attribute names start with a letter, e.g. userName") -> str:
        start = self.i
        if not _is_name_start(self.peek()):
            found = repr(self.peek()) if self.peek() else "the end"
            raise ScimPathError(f"expected {what}, found {found}", self.col(), hint)
        while _is_name_char(self.peek()):
            self.i += 1
        return self.text[start:self.i]


def parse_path(text: str) -> ScimPath:
    """Parse a SCIM attribute path. Raises ScimPathError(message, column, hint)."""
    if not isinstance(text, str) or not text.strip():
        raise ScimPathError("empty SCIM attribute path", 1, "e.g. userName or name.givenName")
    if text != text.strip():
        raise ScimPathError("SCIM path has leading or trailing spaces", 1)
    schema: str | None = None
    head_end = text.find("[")
    head = text if head_end < 0 else text[:head_end]
    offset = 0
    if text[:4].lower() == "urn:":
        cut = head.rfind(":")
        schema = text[:cut]
        if not schema or cut == len(head) - 1:
            raise ScimPathError("schema URN without an attribute name after the last ':'", len(head) + 1,
                                f"e.g. {ENTERPRISE_USER}:department")
        offset = cut + 1
    r = _Reader(text)
    r.i = offset
    attr = r.name("an attribute name")
    conditions: list[Condition] = []
    join = "and"
    if r.peek() == "[":
        open_col = r.col()
        r.i += 1
        joins: set[str] = set()
        while True:
            r.skip_spaces()
            name = r.name("an attribute name in the filter")
            r.skip_spaces()
            op_col = r.col()
            op = r.name("a filter operator", 'operators: eq, ne, co, sw, ew, gt, ge, lt, le, pr (e.g. type eq "work")'
                        ).lower()
            if op not in _OPS:
                raise ScimPathError(f"unknown filter operator {op!r}", op_col,
                                    "use one of: " + ", ".join(_OPS) + ' (e.g. type eq "work")')
            value: Any = None
            if op != "pr":
                r.skip_spaces()
                value = _filter_value(r)
            conditions.append(Condition(name, op, value))
            r.skip_spaces()
            if r.peek() == "]":
                r.i += 1
                break
            if not r.peek():
                raise ScimPathError("unclosed '[' in the value filter: missing ']'", open_col)
            word_col = r.col()
            word = r.name("'and', 'or' or ']'").lower() if _is_name_start(r.peek()) else ""
            if word not in ("and", "or"):
                raise ScimPathError(f"expected 'and', 'or' or ']' in the filter, found {r.text[word_col - 1]!r}",
                                    word_col)
            joins.add(word)
        if len(joins) > 1:
            raise ScimPathError("mixing 'and' and 'or' in a target filter is not supported", open_col)
        join = joins.pop() if joins else "and"
    sub: str | None = None
    if r.peek() == ".":
        r.i += 1
        sub = r.name("a sub-attribute name after '.'")
    if r.peek():
        c = r.peek()
        hint = None
        if c == "]":
            hint = "remove the extra ']' or add the matching '['"
        elif c == ".":
            hint = "SCIM paths have at most one sub-attribute (e.g. name.givenName)"
        raise ScimPathError(f"unexpected {c!r} in SCIM path", r.col(), hint)
    return ScimPath(attr, schema, tuple(conditions), join, sub, text)


def _filter_value(r: _Reader) -> Any:
    c = r.peek()
    col = r.col()
    if c == '"':
        out: list[str] = []
        r.i += 1
        while True:
            c = r.peek()
            if not c:
                raise ScimPathError("unterminated string in the value filter", col, 'e.g. [type eq "work"]')
            r.i += 1
            if c == '"':
                return "".join(out)
            if c == "\\" and r.peek():
                out.append(r.peek())
                r.i += 1
            else:
                out.append(c)
    if c == "'":
        raise ScimPathError("filter strings use double quotes", col, 'e.g. [type eq "work"]')
    start = r.i
    while r.peek() and r.peek() not in " ]":
        r.i += 1
    word = r.text[start:r.i]
    if word in ("true", "false"):
        return word == "true"
    if word == "null":
        return None
    try:
        return int(word) if word.lstrip("-").isdigit() else float(word)
    except ValueError as cause:
        raise ScimPathError(f"filter value {word!r} must be quoted", col, f'write "{word}"') from cause


# ---------------------------------------------------------------------------------------------- checking


def _find(attrs: tuple[Attr, ...], name: str) -> Attr | None:
    low = name.lower()
    return next((a for a in attrs if a.name.lower() == low), None)


def _all_paths(resource: str) -> dict[str, str]:
    """Every addressable path of a resource, lowercased bare name -> the path to suggest."""
    core, extensions = RESOURCE_SCHEMAS[resource]
    out: dict[str, str] = {}

    def suggest(prefix: str, a: Attr) -> str:
        if a.multi and a.sub and a.name not in _WHOLE_MULTI:
            type_sub = _find(a.sub, "type")
            first = type_sub.canonical[0] if type_sub and type_sub.canonical else None
            return f'{prefix}{a.name}[type eq "{first}"].value' if first else f"{prefix}{a.name}"
        return f"{prefix}{a.name}"

    for a in SCHEMAS[core] + _COMMON_ATTRS:
        out.setdefault(a.name.lower(), suggest("", a))
        for s in a.sub:
            full = f"{a.name}.{s.name}" if not a.multi else suggest("", a)
            out.setdefault(f"{a.name}.{s.name}".lower(), full)
            out.setdefault(s.name.lower(), full)
    for urn in extensions:
        for a in SCHEMAS[urn]:
            out.setdefault(a.name.lower(), f"{urn}:{a.name}")
            for s in a.sub:
                out.setdefault(f"{a.name}.{s.name}".lower(), f"{urn}:{a.name}.{s.name}")
    # Okta app-user names people write for SCIM paths.
    aliases = {"email": 'emails[type eq "work"].value', "firstname": "name.givenName",
               "lastname": "name.familyName", "surname": "name.familyName", "login": "userName",
               "username": "userName", "primaryphone": 'phoneNumbers[type eq "work"].value',
               "mobilephone": 'phoneNumbers[type eq "mobile"].value'}
    for k, v in aliases.items():
        out.setdefault(k, v)
    return out


def _suggest(resource: str, name: str) -> str | None:
    paths = _all_paths(resource)  # lower-cased names and aliases -> the canonical path
    key = closest(name, paths, 0.7)
    return paths[key] if key else None


def resolve(text: str, resource: str = "User") -> Resolved:
    """Parse and check a target path against `resource`'s schemas. Syntax errors become an issue, not an
    exception, so a validator can keep going."""
    if resource not in RESOURCE_SCHEMAS:
        raise ValueError(f"unknown SCIM resource {resource!r}")
    try:
        path = parse_path(text)
    except ScimPathError as exc:
        res = Resolved(ScimPath(text or "", text=text or ""), None, None)
        res.issues.append(PathIssue(Severity.ERROR, "scim-path-syntax", f"invalid SCIM path {text!r}: "
                                    f"{exc.message}", exc.hint, exc.column))
        return res
    core, extensions = RESOURCE_SCHEMAS[resource]
    issues: list[PathIssue] = []
    err = Severity.ERROR
    warn = Severity.WARNING
    schema_urn: str | None = core
    extension = False
    if path.schema is not None:
        known = {u.lower(): u for u in SCHEMAS}
        urn = known.get(path.schema.lower())
        if urn is None:
            if path.schema.lower().startswith("urn:ietf:params:scim:schemas:extension:") and \
                    path.schema.lower().endswith(":" + resource.lower()):
                issues.append(PathIssue(warn, "scim-custom-extension",
                                        f"custom extension attribute {text!r}: not in RFC 7643, and Astro does not "
                                        "document custom extensions", "check that Astro stores it before relying on it"))
                return Resolved(path, path.schema, None, None, True, issues)
            close = difflib.get_close_matches(path.schema, [core, *extensions], n=1, cutoff=0.8)
            issues.append(PathIssue(err, "scim-unknown-schema", f"unknown schema {path.schema!r} in {text!r}",
                                    f"did you mean {close[0]}?" if close else
                                    f"{resource} schemas: " + ", ".join([core, *extensions])))
            return Resolved(path, None, None, None, False, issues)
        if urn != core and urn not in extensions:
            issues.append(PathIssue(err, "scim-wrong-schema", f"{urn} does not apply to {resource} resources",
                                    f"{resource} schemas: " + ", ".join([core, *extensions])))
            return Resolved(path, urn, None, None, False, issues)
        schema_urn = urn
        extension = urn != core
        pool = SCHEMAS[urn] + (_COMMON_ATTRS if urn == core else ())
    else:
        pool = SCHEMAS[core] + _COMMON_ATTRS
    attr = _find(pool, path.attr)
    if attr is None:
        guess = _suggest(resource, path.attr if not path.sub else f"{path.attr}.{path.sub}") or \
            _suggest(resource, path.attr)
        where = f"the {resource} schema" if not extension else schema_urn
        other = "Group" if resource == "User" else "User"
        if guess is None and not extension and _find(SCHEMAS[RESOURCE_SCHEMAS[other][0]], path.attr):
            hint: str | None = f"{path.attr} is a {other} attribute: put it under {other.lower()}s:"
        else:
            hint = f"did you mean {guess}?" if guess else None
        issues.append(PathIssue(err, "scim-unknown-attribute", f"unknown SCIM attribute {path.attr!r} in {where}",
                                hint))
        return Resolved(path, schema_urn, None, None, extension, issues)
    res = Resolved(path, schema_urn, attr, None, extension, issues)
    if attr.name != path.attr:
        issues.append(PathIssue(warn, "scim-attribute-case", f"{path.attr!r} is spelled {attr.name!r} in RFC 7643",
                                f"write {attr.name}"))
    if attr.mutability == "readOnly":
        issues.append(PathIssue(err, "scim-read-only", f"{attr.name} is read-only: the SCIM service sets it",
                                "map externalId to carry an IdP identifier" if attr.name == "id" else None))
        return res
    if path.filter:
        if not attr.multi:
            issues.append(PathIssue(err, "scim-filter-on-single", f"{attr.name} is not multi-valued; a "
                                    "[filter] only applies to multi-valued attributes"))
            return res
        if path.join != "and" or any(c.op != "eq" for c in path.filter):
            # The IdP creates the entry a target names when the user has none (Entra's unmatched filter, Okta's
            # template): only `eq` conditions say what to write. With sw/co/pr/ne/or the entry written lacks
            # what the filter reads back, so every audit after apply would report the value as drift.
            issues.append(PathIssue(err, "scim-filter-not-writable", "a target's filter names the entry to "
                                    "write: only eq conditions joined by and",
                                    f"e.g. {_suggest(resource, attr.name)}"))
        for cond in path.filter:
            sub_attr = _find(attr.sub, cond.attr)
            if sub_attr is None:
                guess = closest(cond.attr, [s.name for s in attr.sub])
                issues.append(PathIssue(err, "scim-unknown-attribute",
                                        f"{attr.name} has no sub-attribute {cond.attr!r} to filter on",
                                        f"did you mean {guess}?" if guess else
                                        "sub-attributes: " + ", ".join(s.name for s in attr.sub)))
            elif cond.op == "eq" and sub_attr.canonical and isinstance(cond.value, str) and \
                    cond.value.lower() not in {v.lower() for v in sub_attr.canonical}:
                issues.append(PathIssue(warn, "scim-non-canonical-value",
                                        f"{cond.value!r} is not a canonical {attr.name}.{sub_attr.name} value",
                                        "canonical values: " + ", ".join(sub_attr.canonical)))
        if path.sub is None:
            issues.append(PathIssue(err, "scim-missing-sub-attribute",
                                    f"{text!r} selects a whole {attr.name} entry; say which sub-attribute to set",
                                    f"e.g. {path.format()}.value"))
    if path.sub is not None and attr.multi and attr.sub and not path.filter and attr.name not in _WHOLE_MULTI:
        # emails.value reads every entry's value, but written it is no entry at all (Entra writes an object where
        # SCIM has a list): name the entry.
        issues.append(PathIssue(err, "scim-multi-valued-target", f"{attr.name} is multi-valued; select one "
                                "entry with a filter", f"e.g. {_suggest(resource, attr.name)}"))
        return res
    if path.sub is not None:
        if not attr.sub:
            issues.append(PathIssue(err, "scim-not-complex", f"{attr.name} is a simple attribute; it has no "
                                    f"sub-attribute {path.sub!r}", f"map {attr.name} itself"))
            return res
        sub_attr = _find(attr.sub, path.sub)
        if sub_attr is None:
            guess = closest(path.sub, [s.name for s in attr.sub])
            issues.append(PathIssue(err, "scim-unknown-attribute",
                                    f"{attr.name} has no sub-attribute {path.sub!r}",
                                    f"did you mean {attr.name}.{guess}?" if guess else
                                    "sub-attributes: " + ", ".join(s.name for s in attr.sub)))
            return res
        res.sub = sub_attr
        if sub_attr.mutability == "readOnly":
            issues.append(PathIssue(err, "scim-read-only", f"{attr.name}.{sub_attr.name} is read-only"))
    elif attr.sub and not path.filter:
        if not attr.multi:
            issues.append(PathIssue(err, "scim-complex-target", f"{attr.name} is complex; map one of its "
                                    "sub-attributes", "e.g. " + ", ".join(f"{attr.name}.{s.name}"
                                                                          for s in attr.sub[:3])))
        elif attr.name not in _WHOLE_MULTI:
            issues.append(PathIssue(err, "scim-multi-valued-target", f"{attr.name} is multi-valued; select one "
                                    "entry with a filter", f"e.g. {_suggest(resource, attr.name)}"))
    if attr.mutability == "writeOnly":
        issues.append(PathIssue(warn, "scim-write-only", f"{attr.name} is write-only and cannot be verified"))
    if not any(e.severity is err for e in issues) and not is_documented(res, resource):
        issues.append(PathIssue(warn, "astro-undocumented",
                                f"Astro does not document {res.canonical!r}; it may ignore it",
                                "Astro documents: " + ", ".join(ASTRO_DOCUMENTED[resource])))
    return res


def is_documented(res: Resolved, resource: str) -> bool:
    if res.attr is None or res.extension:
        return False
    name = res.attr.name
    documented = ASTRO_DOCUMENTED[resource]
    if name in documented:
        return True
    return res.sub is not None and f"{name}.{res.sub.name}" in documented


def check_path(text: str, resource: str = "User") -> list[PathIssue]:
    """Every problem with a mapping target path (errors and warnings)."""
    return resolve(text, resource).issues


def canonical(text: str, resource: str = "User") -> str:
    """A normal form for comparing targets (`EMAILS[Type eq "work"].Value` -> `emails[type eq "work"].value`);
    unparseable text comes back unchanged."""
    res = resolve(text, resource)
    if any(i.code == "scim-path-syntax" for i in res.issues):
        return text
    return res.canonical


# ------------------------------------------------------------------------------------ reading and writing


def _key(obj: dict[str, Any], name: str) -> str | None:
    if name in obj:
        return name
    low = name.lower()
    return next((k for k in obj if isinstance(k, str) and k.lower() == low), None)


def _matches(entry: Any, conditions: tuple[Condition, ...], join: str) -> bool:
    if not isinstance(entry, dict):
        return False
    results = []
    for c in conditions:
        k = _key(entry, c.attr)
        v = entry.get(k) if k else None
        results.append(_compare(c, v))
    return all(results) if join == "and" else any(results)


def _compare(c: Condition, v: Any) -> bool:
    if c.op == "pr":
        return v not in (None, "", [], {})
    a: Any
    b: Any
    if isinstance(v, str) and isinstance(c.value, str):
        a, b = v.lower(), c.value.lower()  # SCIM string comparison: caseExact is false for type/display/value
    elif isinstance(c.value, bool) and isinstance(v, str) and v.lower() in ("true", "false"):
        a, b = v.lower() == "true", c.value  # Entra sends "True"/"False"
    else:
        a, b = v, c.value
    try:
        compare: dict[str, Callable[[], bool]] = {
            "eq": lambda: bool(a == b), "ne": lambda: bool(a != b),
            "co": lambda: isinstance(a, str) and b in a, "sw": lambda: isinstance(a, str) and a.startswith(b),
            "ew": lambda: isinstance(a, str) and a.endswith(b),
            "gt": lambda: bool(a > b), "ge": lambda: bool(a >= b), "lt": lambda: bool(a < b),
            "le": lambda: bool(a <= b),
        }
        return compare[c.op]()
    except TypeError:
        return False


def _container(resource: dict[str, Any], path: ScimPath, create: bool) -> dict[str, Any] | None:
    """The object that holds path.attr: the resource itself, or its extension object."""
    if path.schema is None or path.schema.lower() in (CORE_USER.lower(), CORE_GROUP.lower()):
        return resource
    k = _key(resource, path.schema)
    if k is not None and isinstance(extension := resource[k], dict):
        return extension
    if not create:
        return None
    ext: dict[str, Any] = {}
    resource[path.schema] = ext
    schemas = resource.get("schemas")
    if isinstance(schemas, list) and path.schema not in schemas:
        schemas.append(path.schema)
    return ext


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> ScimPath:
    # An audit reads the same few mapping targets from every user (100,000 parses for 20,000 users); ScimPath
    # is frozen, so one parse per text is shared.
    return parse_path(text)


def get_value(resource: dict[str, Any], path: str | ScimPath) -> Any:
    """The value at a SCIM path in SCIM JSON, or None. A filter selects the first matching entry; a
    sub-attribute of an unfiltered multi-valued attribute gives the list of those values."""
    p = _parsed(path) if isinstance(path, str) else path
    holder = _container(resource, p, create=False)
    if holder is None:
        return None
    k = _key(holder, p.attr)
    value = holder.get(k) if k else None
    if value is None:
        return None
    if p.filter:
        if not isinstance(value, list):
            return None
        value = next((e for e in value if _matches(e, p.filter, p.join)), None)
        if value is None:
            return None
    if p.sub is None:
        return value
    if isinstance(value, list):
        subs = [e.get(_key(e, p.sub) or p.sub) for e in value if isinstance(e, dict)]
        return [s for s in subs if s is not None]
    if isinstance(value, dict):
        sk = _key(value, p.sub)
        return value.get(sk) if sk else None
    return None


def _canonical_name(path: ScimPath, name: str, sub: bool = False) -> str:
    return _canonical(path.attr, name, sub)


@functools.lru_cache(maxsize=1024)
def _canonical(attr: str, name: str, sub: bool) -> str:
    # A scan of every schema's attributes; an engine building 20,000 bodies asks for the same few names.
    for attrs in SCHEMAS.values():
        a = _find(attrs + _COMMON_ATTRS, attr)
        if a is None:
            continue
        if not sub:
            return a.name
        s = _find(a.sub, name)
        if s is not None:
            return s.name
    return name


def set_value(resource: dict[str, Any], path: str | ScimPath, value: Any) -> None:
    """Write `value` at a SCIM path, creating what is missing (Entra's `unmatched_path_filter=create`:
    `emails[type eq "work"].value` adds {"type": "work", "value": ...}). `None` removes the value."""
    p = _parsed(path) if isinstance(path, str) else path
    holder = _container(resource, p, create=value is not None)
    if holder is None:
        return
    key = _key(holder, p.attr) or _canonical_name(p, p.attr)
    if not p.filter and p.sub is None:
        if value is None:
            holder.pop(key, None)
        else:
            holder[key] = value
        return
    if not p.filter:
        current = holder.get(key)
        if isinstance(current, list):  # e.g. emails.value: the primary entry, else the first
            entry = next((e for e in current if isinstance(e, dict) and e.get("primary") is True), None) or \
                next((e for e in current if isinstance(e, dict)), None)
            if entry is None:
                if value is None:
                    return
                entry = {}
                current.append(entry)
        elif isinstance(current, dict):
            entry = current
        else:
            if value is None:
                return
            entry = {}
            holder[key] = entry
        _set_sub(entry, p, value)
        return
    items = holder.get(key)
    if not isinstance(items, list):
        if value is None:
            return
        items = []
        holder[key] = items
    entry = next((e for e in items if _matches(e, p.filter, p.join)), None)
    if entry is None:
        if value is None:
            return
        entry = {_canonical_name(p, c.attr, sub=True): c.value for c in p.filter if c.op == "eq" and p.join == "and"}
        items.append(entry)
    if p.sub is None:
        if value is None:
            items.remove(entry)
        elif isinstance(value, dict):
            entry.update(value)
        return
    _set_sub(entry, p, value)
    if value is None and all(_key(entry, c.attr) for c in p.filter) and \
            set(k.lower() for k in entry) <= {c.attr.lower() for c in p.filter} | {"primary"}:
        items.remove(entry)  # nothing left but the selector
    if not items:
        holder.pop(key, None)


def _set_sub(entry: dict[str, Any], p: ScimPath, value: Any) -> None:
    assert p.sub is not None
    sk = _key(entry, p.sub) or _canonical_name(p, p.sub, sub=True)
    if value is None:
        entry.pop(sk, None)
    else:
        entry[sk] = value


def schemas_from_scim2_models() -> dict[str, tuple[Attr, ...]]:
    """The schema table as scim2-models describes it today (slow: imports pydantic). The test suite checks
    that SCHEMAS equals this, so the literal above cannot drift from the library."""
    import scim2_models

    def convert(attrs: Any) -> tuple[Attr, ...]:
        out = []
        for a in attrs or ():
            out.append(Attr(
                a.name,
                a.type.value,
                bool(a.multi_valued),
                a.mutability.value if a.mutability else "readWrite",
                bool(a.case_exact and a.case_exact.value),
                tuple(a.canonical_values or ()),
                convert(a.sub_attributes),
            ))
        return tuple(out)

    return {
        CORE_USER: convert(scim2_models.User.to_schema().attributes),
        ENTERPRISE_USER: convert(scim2_models.EnterpriseUser.to_schema().attributes),
        CORE_GROUP: convert(scim2_models.Group.to_schema().attributes),
    }
