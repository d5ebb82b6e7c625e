"""What Astro should hold according to Entra: Graph user/group JSON mapped through the YAML. Pure: no I/O."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from connector.mapping.expr import entra as entra_expr
from connector.mapping.model import AttributeMapping, MappingFile
from connector.views import IdpGroup, IdpUser

log = logging.getLogger("connector.azure")

# Always read: identity, scope and the attributes of the seed's table.
BASE_USER_SELECT = ("id", "userPrincipalName", "displayName", "givenName", "surname", "mail", "mailNickname",
                    "accountEnabled")
# Names expressions may use that are not Graph user properties (so they must not go into $select).
VIRTUAL_ATTRIBUTES = frozenset({"issoftdeleted", "objectid", "appRoleAssignments".lower(), "manager", "members",
                                "objectguid"})


# A group's identity; its mappings' attributes are added (group_select).
BASE_GROUP_SELECT = ("id", "displayName")


def user_select(mapping: MappingFile) -> list[str]:
    """$select for users: the base set plus every attribute the user mappings read."""
    return _select(BASE_USER_SELECT, mapping.users)


def group_select(mapping: MappingFile) -> list[str]:
    """$select for a group: its id and name plus every attribute the group mappings read (a Team named
    Append("Entra-", [mailNickname]) is evaluated on the group's mailNickname, never on a missing one)."""
    return _select(BASE_GROUP_SELECT, mapping.groups)


def _select(base: tuple[str, ...], items: list[AttributeMapping]) -> list[str]:
    names: list[str] = list(base)
    seen = {n.lower() for n in names}
    for m in items:
        try:
            attrs = entra_expr.attributes(entra_expr.parse(m.source or ""))
        except entra_expr.ExpressionError:
            continue
        for a in attrs:
            if a.name.lower() in VIRTUAL_ATTRIBUTES or a.name.lower() == "passwordprofile.password":
                continue  # not a property Graph returns (the password is write-only)
            # Entra's source attribute names are Azure AD Graph's: [telephoneNumber] is read from businessPhones.
            prop = entra_expr.graph_property(a.name)
            if prop.lower() not in seen:
                seen.add(prop.lower())
                names.append(prop)
    return names


@dataclass
class CompiledMapping:
    target: str
    expr: entra_expr.Expr

    def value(self, profile: dict[str, Any]) -> Any:
        try:
            return entra_expr.evaluate(self.expr, profile)
        except entra_expr.ExpressionError as exc:
            # Tenant-only functions (Now, Guid, AppRoleAssignmentsComplex...) have no offline value.
            log.debug("cannot evaluate %s offline: %s", self.target, exc)
            return None


# Functions Entra draws anew at each evaluation: what the audit computes is not what Entra sent.
_DRAWN = frozenset({"Guid", "Now", "RandomString"})


def compared_mappings(mapping: MappingFile) -> tuple[list[CompiledMapping], list[CompiledMapping]]:
    """The user and group mappings whose values Astro must hold now (drift's expectation, and provision's read-back):
    a create_only (ObjectAddOnly) attribute keeps the value Entra sent at creation, so the directory's value today is
    no measure of it and it is left out; userName and a group's displayName still name the object: kept."""
    from connector.mapping.model import ApplyOn

    def compared(items: list[AttributeMapping], key: str) -> list[CompiledMapping]:
        return compile_mappings([m for m in items if m.apply_on is ApplyOn.CREATE_AND_UPDATE
                                 or m.target.lower() == key.lower()])

    return compared(mapping.users, "userName"), compared(mapping.groups, "displayName")


def compile_mappings(items: list[AttributeMapping]) -> list[CompiledMapping]:
    out = []
    for m in items:
        try:
            expr = entra_expr.parse(m.source or "")
        except entra_expr.ExpressionError:
            continue  # `validate` reports it; the view just has no expectation for this attribute
        if any(fn.name in _DRAWN for fn in entra_expr.calls(expr)):
            log.info("azure: %s is not compared: its expression draws a new value at each evaluation", m.target)
            continue
        out.append(CompiledMapping(m.target, expr))
    return out


def expected_values(compiled: list[CompiledMapping], profile: dict[str, Any]) -> dict[str, Any]:
    """SCIM path -> value. None is left out: Entra does not provision null values."""
    out: dict[str, Any] = {}
    for c in compiled:
        expr = c.expr
        # `[givenName]`, the common mapping, spelled as Graph spells it: what evaluate gives (its exact-key case),
        # without its dispatch per call (80,000 calls for 20,000 users).
        value = profile[expr.name] if type(expr) is entra_expr.Attribute and expr.name in profile else c.value(profile)
        if value is not None and value != "":
            out[c.target] = value
    return out


def idp_user(profile: dict[str, Any], compiled: list[CompiledMapping]) -> IdpUser | None:
    expected = expected_values(compiled, profile)
    user_name = next((v for k, v in expected.items() if k.lower() == "username"), None)
    if user_name is None:
        if any(c.target.lower() == "username" for c in compiled):
            # The mapping gives this user no userName (`[mail]` and no mail): Entra cannot send it (its export
            # fails, which its provisioning log reports), so Astro is not expected to hold it under another name.
            return None
        user_name = profile.get("userPrincipalName")
    if not user_name:
        return None
    return IdpUser(
        id=str(profile.get("id") or ""),
        user_name=str(user_name),
        active=profile.get("accountEnabled") is not False,
        expected=expected,
    )


def idp_group(group: dict[str, Any], compiled: list[CompiledMapping], member_names: set[str]) -> IdpGroup:
    expected = expected_values(compiled, group)
    name = next((v for k, v in expected.items() if k.lower() == "displayname"), None)
    return IdpGroup(id=str(group.get("id") or ""), name=str(name or group.get("displayName") or ""),
                    members={n.lower() for n in member_names})
