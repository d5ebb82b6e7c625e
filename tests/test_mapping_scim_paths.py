"""SCIM target paths: parsing, checks against RFC 7643 schemas (via scim2-models), and JSON get/set."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from connector.mapping import scim_paths as S
from connector.mapping.model import Severity

ENT = S.ENTERPRISE_USER


def test_schema_table_equals_scim2_models() -> None:
    assert S.schemas_from_scim2_models() == S.SCHEMAS


def test_every_schema_attribute_is_accepted() -> None:
    for urn, attrs in S.SCHEMAS.items():
        resource = "Group" if urn == S.CORE_GROUP else "User"
        for a in attrs:
            if a.mutability == "readOnly":
                continue
            prefix = f"{urn}:" if urn == ENT else ""
            if a.sub and a.multi and a.name not in ("members", "roles"):
                path = f'{prefix}{a.name}[type eq "{_first_type(a)}"].{a.sub[0].name}'
            elif a.sub and not a.multi:
                path = f"{prefix}{a.name}.{a.sub[0].name}"
            else:
                path = f"{prefix}{a.name}"
            errors = [i for i in S.check_path(path, resource) if i.severity is Severity.ERROR]
            assert errors == [], path


def _first_type(a: S.Attr) -> str:
    t = next((s for s in a.sub if s.name == "type"), None)
    return t.canonical[0] if t and t.canonical else "work"


CLEAN = [
    ("userName", "User"),
    ("name.givenName", "User"),
    ("name.familyName", "User"),
    ('emails[type eq "work"].value', "User"),
    ("displayName", "User"),
    ("profileUrl", "User"),
    ("active", "User"),
    ("externalId", "User"),
    ("displayName", "Group"),
    ("members", "Group"),
    ("externalId", "Group"),
]


@pytest.mark.parametrize(("path", "resource"), CLEAN)
def test_astro_documented_paths_are_clean(path: str, resource: str) -> None:
    assert S.check_path(path, resource) == []


ISSUES = [
    ("givenName", "User", "error", "scim-unknown-attribute", "did you mean name.givenName?"),
    ("email", "User", "error", "scim-unknown-attribute", 'did you mean emails[type eq "work"].value?'),
    ("department", "User", "error", "scim-unknown-attribute", f"did you mean {ENT}:department?"),
    (f"{ENT}:departmnt", "User", "error", "scim-unknown-attribute", f"did you mean {ENT}:department?"),
    ("name.givenNme", "User", "error", "scim-unknown-attribute", "did you mean name.givenName?"),
    ("members", "User", "error", "scim-unknown-attribute", "put it under groups:"),
    ("emails", "User", "error", "scim-multi-valued-target", 'emails[type eq "work"].value'),
    ("name", "User", "error", "scim-complex-target", "name.givenName"),
    ("id", "User", "error", "scim-read-only", "externalId"),
    ("meta.created", "User", "error", "scim-read-only", None),
    ("groups", "User", "error", "scim-read-only", None),
    ('emails[type eq "work"]', "User", "error", "scim-missing-sub-attribute", '.value'),
    ('emails[typ eq "work"].value', "User", "error", "scim-unknown-attribute", "did you mean type?"),
    ("userName.x", "User", "error", "scim-not-complex", None),
    ("displayName[x eq 1].y", "User", "error", "scim-filter-on-single", None),
    ("urn:foo:bar", "User", "error", "scim-unknown-schema", None),
    (f"{ENT}:department", "Group", "error", "scim-wrong-schema", None),
    ('emails[type eq "work"', "User", "error", "scim-path-syntax", None),
    ('emails[type = "work"].value', "User", "error", "scim-path-syntax", "operators: eq"),
    ("emails[type eq work].value", "User", "error", "scim-path-syntax", 'write "work"'),
    ("name.givenName.x", "User", "error", "scim-path-syntax", "at most one sub-attribute"),
    ("user name", "User", "error", "scim-path-syntax", None),
    ("", "User", "error", "scim-path-syntax", None),
    ("username", "User", "warning", "scim-attribute-case", "write userName"),
    ('emails[type eq "office"].value', "User", "warning", "scim-non-canonical-value", "work, home, other"),
    ("title", "User", "warning", "astro-undocumented", "Astro documents"),
    (f"{ENT}:department", "User", "warning", "astro-undocumented", None),
    ("urn:ietf:params:scim:schemas:extension:acme:2.0:User:tier", "User", "warning", "scim-custom-extension", None),
    ("password", "User", "warning", "scim-write-only", None),
]


@pytest.mark.parametrize(("path", "resource", "severity", "code", "hint"), ISSUES)
def test_path_issues(path: str, resource: str, severity: str, code: str, hint: str | None) -> None:
    issues = S.check_path(path, resource)
    match = [i for i in issues if i.code == code]
    assert match, issues
    assert match[0].severity.value == severity
    if hint:
        assert match[0].hint is not None and hint in match[0].hint


@pytest.mark.parametrize(("text", "column"), [
    ('emails[type eq "work"', 7), ('emails[type = "work"].value', 13), ("user name", 5), ("a]", 2),
    ('emails[type eq "work" xor x].value', 23), ("urn:x:", 7),
])
def test_syntax_error_columns(text: str, column: int) -> None:
    with pytest.raises(S.ScimPathError) as info:
        S.parse_path(text)
    assert info.value.column == column


def test_parse_shapes() -> None:
    p = S.parse_path('emails[type eq "work" and primary eq true].value')
    assert (p.attr, p.sub, p.join) == ("emails", "value", "and")
    assert p.filter == (S.Condition("type", "eq", "work"), S.Condition("primary", "eq", True))
    p = S.parse_path(f"{ENT}:manager.value")
    assert (p.schema, p.attr, p.sub) == (ENT, "manager", "value")


@pytest.mark.parametrize(("text", "canonical"), [
    ('EMAILS[Type eq "work"].Value', 'emails[type eq "work"].value'),
    ("USERNAME", "userName"),
    (f"{ENT.upper()}:DEPARTMENT", f"{ENT}:department"),
    ("name.givenname", "name.givenName"),
    ("not a path", "not a path"),
])
def test_canonical(text: str, canonical: str) -> None:
    assert S.canonical(text) == canonical


USER: dict[str, Any] = {
    "schemas": [S.CORE_USER],
    "userName": "a@x",
    "name": {"givenName": "A"},
    "emails": [{"type": "home", "value": "h@x"}, {"type": "Work", "value": "w@x", "primary": True}],
    "active": "False",
}

GET_CASES = [
    ("userName", "a@x"),
    ("USERNAME", "a@x"),
    (f"{S.CORE_USER}:userName", "a@x"),
    ("name.givenName", "A"),
    ("name.familyName", None),
    ('emails[type eq "work"].value', "w@x"),  # SCIM string comparison ignores case for type
    ('emails[type eq "work" and primary eq true].value', "w@x"),
    ('emails[type eq "other"].value', None),
    ("emails.value", ["h@x", "w@x"]),
    ('emails[type eq "home"]', {"type": "home", "value": "h@x"}),
    (f"{ENT}:department", None),
    ("nickName", None),
]


@pytest.mark.parametrize(("path", "expected"), GET_CASES)
def test_get_value(path: str, expected: Any) -> None:
    assert S.get_value(USER, path) == expected


def test_set_value_creates_what_is_missing() -> None:
    user = copy.deepcopy(USER)
    S.set_value(user, 'emails[type eq "work"].value', "new@x")
    S.set_value(user, 'phoneNumbers[type eq "mobile"].value', "123")
    S.set_value(user, "name.familyName", "B")
    S.set_value(user, f"{ENT}:department", "Sales")
    S.set_value(user, f"{ENT}:manager.value", "m1")
    S.set_value(user, "displayname", "D")  # canonical spelling is used for new keys
    assert user["emails"][1] == {"type": "Work", "value": "new@x", "primary": True}
    assert user["phoneNumbers"] == [{"type": "mobile", "value": "123"}]
    assert user["name"] == {"givenName": "A", "familyName": "B"}
    assert user[ENT] == {"department": "Sales", "manager": {"value": "m1"}}
    assert ENT in user["schemas"]
    assert user["displayName"] == "D"
    for path, _ in GET_CASES[:3]:
        assert S.get_value(user, path) == "a@x"


def test_set_value_none_removes() -> None:
    user = copy.deepcopy(USER)
    S.set_value(user, 'phoneNumbers[type eq "mobile"].value', "123")
    S.set_value(user, 'phoneNumbers[type eq "mobile"].value', None)
    S.set_value(user, "active", None)
    S.set_value(user, "name.givenName", None)
    assert "phoneNumbers" not in user and "active" not in user
    assert user["name"] == {}
    S.set_value(user, "nickName", None)  # removing what is absent is fine


def test_set_then_get_round_trip_for_every_documented_path() -> None:
    for path, resource in CLEAN:
        if path == "members":
            continue
        resource_json: dict[str, Any] = {}
        S.set_value(resource_json, path, "v")
        assert S.get_value(resource_json, path) == "v", (path, resource)


def test_entra_string_booleans_match_boolean_filters() -> None:
    user = {"roles": [{"value": "a", "primary": "False"}, {"value": "b", "primary": "True"}]}
    assert S.get_value(user, "roles[primary eq true].value") == "b"
    assert S.get_value(user, 'roles[primary eq "True"].value') == "b"


@pytest.mark.parametrize("target", [
    'emails[type eq "work"].value', 'emails[primary eq true].value', 'emails[type eq "work" and primary eq true].value',
    'phoneNumbers[type eq "mobile"].value', 'addresses[type eq "work"].locality', "name.givenName", "displayName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    # validate accepted these, and what apply writes through them cannot be read back through them (drift forever):
    'emails[type sw "work"].value', 'emails[type eq "work" or type eq "home"].value', 'emails[type ne "home"].value',
    'emails[value pr].type', "emails.value",
])
def test_a_target_validate_accepts_reads_back_what_is_written_through_it(target: str) -> None:
    """A target is written into a user that lacks it (the IdP creates the entry) and read back by the audit:
    validate must refuse a target for which those two disagree."""
    written: dict[str, Any] = {"schemas": [S.CORE_USER]}
    S.set_value(written, target, "a@example.com")
    round_trips = S.get_value(written, target) == "a@example.com" and \
        isinstance(written.get("emails", []), list)
    accepted = not any(i.severity is Severity.ERROR for i in S.check_path(target))
    assert not accepted or round_trips, written
