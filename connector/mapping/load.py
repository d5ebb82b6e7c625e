"""Mapping files -> MappingFile, with every structural problem reported as a Finding at file:line:col.

Structure only: YAML syntax, encoding, duplicate keys, unknown keys, wrong types, missing or unknown idp. What
the values mean (SCIM paths, expressions, one userName, ...) is checked by connector.mapping.validate.
A file that cannot be read at all (missing, a directory, no permission) raises ConfigError instead: that is a
usage problem, not a finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.errors import ConfigError, Location
from connector.mapping.model import ApplyOn, AttributeMapping, Finding, MappingFile, Severity
from connector.support import yamlsrc
from connector.support.suggest import closest

IDPS = ("okta", "azure")
TOP_KEYS = ("idp", "users", "groups")
ENTRY_KEYS = ("target", "source", "apply_on", "matching", "default", "from_sign_on")
SECTIONS = ("users", "groups")
# A project config's sections (connector.access.model._PROJECT_KEYS): a file with none of them is read as a mapping.
PROJECT_SECTIONS = ("astro", "okta", "azure", "access")

# Names people reach for, from the IdPs' own vocabularies.
_KEY_ALIASES = {
    "attribute": "target", "scim": "target", "to": "target", "targetattributename": "target",
    "expression": "source", "value": "source", "from": "source", "sourceattribute": "source",
    "applyon": "apply_on", "apply": "apply_on", "pushstatus": "apply_on", "flowtype": "apply_on",
    "matchingpriority": "matching", "match": "matching", "defaultvalue": "default",
    "fromsignon": "from_sign_on", "sign_on": "from_sign_on",
    "user": "users", "group": "groups", "provider": "idp", "identity_provider": "idp",
}
_IDP_ALIASES = {"entra": "azure", "entra_id": "azure", "azure_ad": "azure", "aad": "azure", "microsoft": "azure",
                "msft": "azure"}


@dataclass
class LoadResult:
    """Everything validate needs beyond the MappingFile: where each entry's keys are in the file."""

    file: str
    mapping: MappingFile | None
    findings: list[Finding] = field(default_factory=list)
    document: yamlsrc.Document | None = None
    lines: list[str] = field(default_factory=list)
    entry_paths: dict[int, tuple[str | int, ...]] = field(default_factory=dict)  # id(AttributeMapping) -> path
    broken_targets: dict[str, set[str]] = field(default_factory=lambda: {"users": set(), "groups": set()})
    # Sections whose entries could not all be read (not a list, an entry without a target, a misspelt section
    # name): checks that need the whole section, such as "exactly one userName", are skipped for them so that
    # one mistake gives one finding.
    incomplete: set[str] = field(default_factory=set)

    def loc(self, path: tuple[str | int, ...], *, key: bool = False) -> Location:
        if self.document is None:
            return Location(self.file)
        return self.document.loc(path, key=key)

    def entry_loc(self, m: AttributeMapping, key: str | None = None) -> Location:
        path = self.entry_paths.get(id(m))
        if path is None:
            return m.location
        return self.loc((*path, key) if key else path)


def did_you_mean(word: str, choices: tuple[str, ...] | list[str], aliases: dict[str, str] | None = None) -> str | None:
    low = word.lower().replace("-", "_")
    for c in choices:
        if c.lower() == low:
            return c
    if aliases:
        squashed = low.replace("_", "")
        for k in (low, squashed):
            if k in aliases and aliases[k] in choices:
                return aliases[k]
    return closest(low, choices)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _utf8_error_location(file: str, raw: bytes, offset: int) -> Location:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    column = len(before) - (before.rfind(b"\n") + 1) + 1
    return Location(file, line, column)



# Without its IdP a mapping's expressions and targets cannot be read (Okta EL or Entra's language, which profile
# attributes exist): only the entries' shape was checked, and the hint says so.
_UNCHECKED = " (the expressions and targets were not checked: they depend on the IdP)"

class _Loader:
    def __init__(self, result: LoadResult) -> None:
        self.r = result
        self.doc = result.document
        assert self.doc is not None

    def add(self, code: str, message: str, loc: Location, hint: str | None = None,
            severity: Severity = Severity.ERROR) -> None:
        self.r.findings.append(Finding(severity, loc, code, message, hint))

    def load(self) -> MappingFile | None:
        doc = self.doc
        assert doc is not None
        for key_path, loc in doc.duplicates:
            where = ".".join(str(p) for p in key_path[:-1])
            self.add("duplicate-key", f"duplicate key '{key_path[-1]}'" + (f" in {where}" if where else ""), loc,
                     "YAML keeps only the last one; remove or rename the other")
        data = doc.data
        if data is None:
            self.add("empty-file", "mapping file is empty", Location(self.r.file, 1, 1),
                     "start with 'idp: okta' or 'idp: azure', then a users: list")
            return None
        if not isinstance(data, dict):
            self.add("not-a-mapping", f"a mapping file must be a YAML mapping with idp, users and groups, not "
                     f"{_type_name(data)}", doc.loc(()), "start with 'idp: okta' or 'idp: azure'")
            return None
        for key in data:
            if str(key) not in TOP_KEYS:
                guess = did_you_mean(str(key), TOP_KEYS, _KEY_ALIASES)
                if guess in SECTIONS and guess not in data:
                    self.r.incomplete.add(guess)
                # A project config whose sections are all misspelt is read as a mapping: say which file it is.
                section = None if guess or "idp" in data else did_you_mean(str(key), PROJECT_SECTIONS)
                self.add("unknown-key", f"unknown top-level key '{key}'", doc.loc((str(key),), key=True),
                         f"did you mean '{guess}'?" if guess else
                         f"did you mean '{section}'? (a project config's section)" if section else
                         "allowed keys: " + ", ".join(TOP_KEYS))
        idp = self._idp(data)
        # The entries' shape (keys, types) is the same for either IdP: checked, and reported, whatever `idp` says.
        sections = {section: self._section(data, section) for section in SECTIONS}
        if idp is None:
            return None
        mapping = MappingFile(idp=idp, file=self.r.file, location=doc.loc(()))
        for section, entries in sections.items():
            setattr(mapping, section, entries)
        return mapping

    def _idp(self, data: dict[str, Any]) -> str | None:
        doc = self.doc
        assert doc is not None
        if "idp" not in data:
            self.add("missing-idp", "missing 'idp': say which identity provider this mapping is for",
                     doc.loc(()), "add 'idp: okta' or 'idp: azure' at the top" + _UNCHECKED)
            return None
        value = data["idp"]
        if not isinstance(value, str):
            self.add("wrong-type", f"'idp' must be a string, not {_type_name(value)}", doc.loc(("idp",)),
                     "use okta or azure" + _UNCHECKED)
            return None
        if value in IDPS:
            return value
        guess = _IDP_ALIASES.get(value.lower().replace(" ", "_").replace("-", "_")) or did_you_mean(value, IDPS)
        self.add("unknown-idp", f"unknown idp '{value}'", doc.loc(("idp",)),
                 (f"did you mean '{guess}'?" if guess else "use okta or azure") + _UNCHECKED)
        return None

    def _section(self, data: dict[str, Any], section: str) -> list[AttributeMapping]:
        doc = self.doc
        assert doc is not None
        if section not in data or data[section] is None:
            return []
        items = data[section]
        if not isinstance(items, list):
            self.r.incomplete.add(section)
        if isinstance(items, dict):
            self.add("wrong-type", f"'{section}' must be a list of mappings (each starting with '- target:'), "
                     "not a mapping", doc.loc((section,)), "put a '- ' before each entry")
            return []
        if not isinstance(items, list):
            self.add("wrong-type", f"'{section}' must be a list of mappings, not {_type_name(items)}",
                     doc.loc((section,)), f"write '{section}:' then one '- target: ...' entry per line")
            return []
        out: list[AttributeMapping] = []
        for i, item in enumerate(items):
            m = self._entry(section, i, item)
            if m is not None:
                out.append(m)
        return out

    def _entry(self, section: str, index: int, item: Any) -> AttributeMapping | None:
        doc = self.doc
        assert doc is not None
        path: tuple[str | int, ...] = (section, index)
        loc = doc.loc(path)
        if not isinstance(item, dict):
            self.r.incomplete.add(section)
            self.add("wrong-type", f"{section}[{index}] must be a mapping with target and source, not "
                     f"{_type_name(item)}", loc, "e.g. '- target: displayName' then 'source: ...' on the next line")
            return None
        ok = True
        misspelt: set[str] = set()  # keys the user meant, so their absence is not reported twice
        for key in item:
            if str(key) not in ENTRY_KEYS:
                guess = did_you_mean(str(key), ENTRY_KEYS, _KEY_ALIASES)
                if guess and guess not in item:
                    misspelt.add(guess)
                self.add("unknown-key", f"unknown key '{key}' in {section}[{index}]",
                         doc.loc((*path, str(key)), key=True),
                         f"did you mean '{guess}'?" if guess else "allowed keys: " + ", ".join(ENTRY_KEYS))
        target = item.get("target")
        if target is None:
            self.r.incomplete.add(section)
            if "target" in misspelt:
                return None
            self.add("missing-target", f"{section}[{index}] has no 'target' (the SCIM attribute to set)", loc,
                     "e.g. target: name.givenName")
            return None
        if not isinstance(target, str) or not target.strip():
            self.r.incomplete.add(section)
            self.add("wrong-type", "'target' is empty" if isinstance(target, str) else
                     f"'target' must be a SCIM attribute path string, not {_type_name(target)}",
                     doc.loc((*path, "target")), "e.g. target: name.givenName")
            return None

        def bad(key: str, message: str, hint: str | None = None) -> None:
            nonlocal ok
            ok = False
            self.add("wrong-type", message, doc.loc((*path, key)), hint)

        from_sign_on = item.get("from_sign_on", False)
        if not isinstance(from_sign_on, bool):
            bad("from_sign_on", f"'from_sign_on' must be true or false, not {_type_name(from_sign_on)}",
                "write from_sign_on: true, without quotes")
            misspelt.add("source")  # the user meant from_sign_on; a missing source is not news
            from_sign_on = False
        source = item.get("source")
        if "source" in item and not isinstance(source, str):
            if source is None:
                bad("source", "'source' is empty", "write the IdP expression, e.g. user.firstName or [givenName]")
            else:
                bad("source", f"'source' must be an expression string, not {_type_name(source)}",
                    f'quote it: source: "{source}"' if isinstance(source, int | float | bool) else
                    "quote an expression that starts with [ or {: source: \"[givenName]\"")
            source = None
        elif isinstance(source, str) and not source.strip():
            bad("source", "'source' is an empty string", "write the IdP expression, e.g. user.firstName")
            source = None
        elif source is None and not from_sign_on:
            ok = False
            if "source" not in misspelt:
                self.add("missing-source", f"{section}[{index}] ({target}) has no 'source' expression", loc,
                         "add source: <expression>" + (" (or from_sign_on: true for Okta's userName)"
                                                        if section == "users" else ""))
        apply_on = ApplyOn.CREATE_AND_UPDATE
        raw_apply = item.get("apply_on")
        if raw_apply is not None:
            values = tuple(a.value for a in ApplyOn)
            if isinstance(raw_apply, str) and raw_apply in values:
                apply_on = ApplyOn(raw_apply)
            else:
                guess = did_you_mean(str(raw_apply), values,
                                     {"push": "create_and_update", "always": "create_and_update",
                                      "dont_push": "create_only", "objectaddonly": "create_only",
                                      "create": "create_only", "createandupdate": "create_and_update",
                                      "createonly": "create_only"})
                ok = False
                self.add("bad-apply-on", f"apply_on must be one of {', '.join(values)}, not {raw_apply!r}",
                         doc.loc((*path, "apply_on")), f"did you mean {guess}?" if guess else
                         "create_and_update (the default) or create_only")
        matching = item.get("matching", 0)
        if matching is None:
            matching = 0
        if isinstance(matching, bool) or not isinstance(matching, int) or matching < 0:
            ok = False
            self.add("bad-matching", f"'matching' must be a whole number >= 0 (1 = matched first), not "
                     f"{matching!r}", doc.loc((*path, "matching")), "use matching: 1 on the attribute Entra matches on")
            matching = 0
        default = item.get("default")
        if default is not None:
            if isinstance(default, bool) or not isinstance(default, str | int | float):
                bad("default", f"'default' must be a string, not {_type_name(default)}",
                    f'quote it: default: "{default}"' if isinstance(default, bool) else
                    "one value, used when the source is empty")
                default = None
            else:
                default = str(default)
        if not ok:
            self.r.broken_targets[section].add(target)
            return None
        m = AttributeMapping(target=target, source=source, apply_on=apply_on, matching=matching, default=default,
                             from_sign_on=from_sign_on, location=loc)
        self.r.entry_paths[id(m)] = path
        return m


def load(path: str | Path) -> LoadResult:
    """Load a mapping file with full detail. Raises ConfigError only when the file cannot be read."""
    return load_bytes(yamlsrc.read_bytes(path), str(path))


def load_bytes(raw: bytes, file: str) -> LoadResult:
    """`load` of a file's bytes already read."""
    result = LoadResult(file=file, mapping=None)
    if b"\x00" in raw:
        result.findings.append(Finding(Severity.ERROR, Location(file, 1, 1), "binary",
                                       "file is binary, not YAML", "point at a .yaml text file"))
        return result
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        result.findings.append(Finding(Severity.ERROR, _utf8_error_location(file, raw, exc.start), "not-utf8",
                                       f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                                       "save the file as UTF-8"))
        return result
    result.lines = text.splitlines()
    try:
        result.document = yamlsrc.parse(text, file)
    except ConfigError as exc:
        code = "binary" if "binary" in exc.message else "yaml-syntax"
        if exc.hint and "tab" in exc.hint:
            code = "tabs"
        # Nothing after a syntax error can be checked (no key is known): said, so a clean rest is not assumed.
        result.findings.append(Finding(Severity.ERROR, exc.location or Location(file), code, exc.message,
                                       (exc.hint or "check the quotes, brackets and indentation up to this place")
                                       + "; nothing else in the file was checked: fix this first"))
        return result
    except RecursionError:  # an alias that contains itself (a: &x [*x]) or absurd nesting
        result.findings.append(Finding(Severity.ERROR, Location(file, 1, 1), "yaml-syntax",
                                       "invalid YAML: an anchor refers to itself, or nesting is too deep",
                                       "remove the recursive &anchor / *alias"))
        return result
    result.mapping = _Loader(result).load()
    return result


def load_mapping(path: str | Path) -> tuple[MappingFile | None, list[Finding]]:
    """Load a mapping file. Findings are structural problems; the MappingFile holds the sound entries
    (None when the file is unusable: empty, not a mapping, no or unknown idp, bad YAML)."""
    result = load(path)
    return result.mapping, result.findings
