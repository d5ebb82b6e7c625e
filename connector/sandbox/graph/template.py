"""The "scim" synchronization template Entra gives a non-gallery app: directories, one rule, default mappings.

The shape follows Graph's synchronizationSchema resource; the mapping list is the default attribute mapping
Microsoft documents for custom SCIM apps (entra-docs use-scim-to-provision-users-and-groups.md). It is rich on
purpose: flags enums with several members (`flowTypes`, `discoverabilities`), functions with parameter trees,
metadata, filters. A client that loses any of it on a GET -> PUT round trip is caught by the tests.
"""

from __future__ import annotations

import json
from typing import Any

from connector.sandbox.snapshot import plain_copy

NON_GALLERY_TEMPLATE_ID = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
SCIM_TEMPLATE_ID = "scim"
SOURCE_DIRECTORY = "Azure Active Directory"
TARGET_DIRECTORY = "customappsso"
TARGET_USER_OBJECT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
TARGET_GROUP_OBJECT = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
RULE_ID = "03f7d90d-bf71-41b1-bda6-aaf0ddbee5d8"
USER_MAPPING_NAME = "Provision Azure Active Directory Users"
GROUP_MAPPING_NAME = "Provision Azure Active Directory Groups"
SCHEMA_VERSION = "Date:2024-03-01T00:00:00Z~Revision:1"
NULL_DATE = "0001-01-01T00:00:00Z"


def _attr(
    name: str,
    type_: str = "String",
    *,
    multivalued: bool = False,
    anchor: bool = False,
    required: bool = False,
    mutability: str = "ReadWrite",
    case_exact: bool = False,
    refs: tuple[str, ...] = (),
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "anchor": anchor,
        "caseExact": case_exact,
        "defaultValue": None,
        "flowNullValues": False,
        "multivalued": multivalued,
        "mutability": mutability,
        "name": name,
        "required": required,
        "type": type_,
        "apiExpressions": [],
        "metadata": [{"key": k, "value": v} for k, v in (metadata or {}).items()],
        "referencedObjects": [{"referencedObjectName": r, "referencedProperty": None} for r in refs],
    }


def _source_user_attributes() -> list[dict[str, Any]]:
    names = [
        "city", "companyName", "country", "department", "displayName", "employeeId", "employeeType",
        "facsimileTelephoneNumber", "givenName", "jobTitle", "mail", "mailNickname", "mobile",
        "onPremisesDistinguishedName", "onPremisesSamAccountName", "physicalDeliveryOfficeName", "postalCode",
        "preferredLanguage", "state", "streetAddress", "surname", "telephoneNumber", "usageLocation",
        "userPrincipalName", "userType",
    ] + [f"extensionAttribute{i}" for i in range(1, 16)]
    attrs = [_attr(n) for n in names]
    attrs += [
        _attr("objectId", anchor=True, mutability="ReadOnly", required=True),
        _attr("accountEnabled", "Boolean"),
        _attr("IsSoftDeleted", "Boolean", mutability="ReadOnly"),
        _attr("employeeHireDate", "DateTime"),
        _attr("appRoleAssignments", multivalued=True, mutability="ReadOnly"),
        _attr("otherMails", multivalued=True),
        _attr("proxyAddresses", multivalued=True),
        _attr("manager", "Reference", refs=("User",)),
    ]
    return sorted(attrs, key=lambda a: a["name"].lower())


def _source_group_attributes() -> list[dict[str, Any]]:
    attrs = [
        _attr("description"),
        _attr("displayName", required=True),
        _attr("IsSoftDeleted", "Boolean", mutability="ReadOnly"),
        _attr("mail"),
        _attr("mailEnabled", "Boolean"),
        _attr("mailNickname"),
        _attr("members", "Reference", multivalued=True, refs=("User", "Group")),
        _attr("objectId", anchor=True, mutability="ReadOnly", required=True),
        _attr("proxyAddresses", multivalued=True),
        _attr("securityEnabled", "Boolean"),
    ]
    return attrs


def _target_user_attributes() -> list[dict[str, Any]]:
    attrs: list[dict[str, Any]] = [
        # No metadata: its keys are attributeDefinitionMetadata members (Graph v1.0 CSDL), and `scim:Path` is none.
        _attr("userName", required=True),
        _attr("active", "Boolean"),
        _attr("displayName"),
        _attr("externalId"),
        _attr("locale"),
        _attr("nickName"),
        _attr("preferredLanguage"),
        _attr("profileUrl"),
        _attr("timezone"),
        _attr("title"),
        _attr("userType"),
        _attr("name.familyName"),
        _attr("name.formatted"),
        _attr("name.givenName"),
        _attr("name.honorificPrefix"),
        _attr("name.honorificSuffix"),
        _attr("name.middleName"),
        _attr('roles[primary eq "True"].display'),
        _attr('roles[primary eq "True"].type'),
        _attr('roles[primary eq "True"].value'),
        _attr("roles", multivalued=True),
    ]
    for kind in ("work", "home", "other"):
        attrs.append(_attr(f'emails[type eq "{kind}"].value'))
    for kind in ("work", "mobile", "fax", "home", "other", "pager"):
        attrs.append(_attr(f'phoneNumbers[type eq "{kind}"].value'))
    for kind in ("work", "other"):
        for part in ("formatted", "streetAddress", "locality", "region", "postalCode", "country"):
            attrs.append(_attr(f'addresses[type eq "{kind}"].{part}'))
    for kind in ("xmpp", "icq", "skype", "aim", "yahoo", "msn"):
        attrs.append(_attr(f'ims[type eq "{kind}"].value'))
    for field in ("costCenter", "department", "division", "employeeNumber", "organization"):
        attrs.append(_attr(f"{ENTERPRISE}:{field}"))
    attrs.append(_attr(f"{ENTERPRISE}:manager", "Reference", refs=(TARGET_USER_OBJECT,)))
    return attrs


def _target_group_attributes() -> list[dict[str, Any]]:
    return [
        _attr("displayName", required=True),
        _attr("externalId"),
        _attr("members", "Reference", multivalued=True, refs=(TARGET_USER_OBJECT, TARGET_GROUP_OBJECT)),
    ]


def attribute_source(name: str) -> dict[str, Any]:
    return {"expression": f"[{name}]", "name": name, "parameters": [], "type": "Attribute"}


def constant_source(value: str) -> dict[str, Any]:
    return {"expression": json.dumps(value), "name": value, "parameters": [], "type": "Constant"}


def function_source(name: str, expression: str, params: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "expression": expression,
        "name": name,
        "parameters": [{"key": k, "value": v} for k, v in params],
        "type": "Function",
    }


def mapping(
    target: str,
    source: dict[str, Any],
    *,
    matching: int = 0,
    flow_type: str = "Always",
    default: str = "",
) -> dict[str, Any]:
    return {
        "defaultValue": default,
        "exportMissingReferences": False,
        "flowBehavior": "FlowWhenChanged",
        "flowType": flow_type,
        "matchingPriority": matching,
        "source": source,
        "targetAttributeName": target,
    }


def _user_mappings() -> list[dict[str, Any]]:
    active = function_source(
        "Switch",
        'Switch([IsSoftDeleted], , "False", "True", "True", "False")',
        [
            ("source", attribute_source("IsSoftDeleted")),
            ("defaultValue", constant_source("")),
            ("key", constant_source("False")),
            ("value", constant_source("True")),
            ("key", constant_source("True")),
            ("value", constant_source("False")),
        ],
    )
    formatted = function_source(
        "Join",
        'Join(" ", [givenName], [surname])',
        [
            ("separator", constant_source(" ")),
            ("source", attribute_source("givenName")),
            ("source", attribute_source("surname")),
        ],
    )
    simple = [
        ("displayName", "displayName"),
        ("title", "jobTitle"),
        ('emails[type eq "work"].value', "mail"),
        ("preferredLanguage", "preferredLanguage"),
        ("name.givenName", "givenName"),
        ("name.familyName", "surname"),
    ]
    address = [
        ('addresses[type eq "work"].formatted', "physicalDeliveryOfficeName"),
        ('addresses[type eq "work"].streetAddress', "streetAddress"),
        ('addresses[type eq "work"].locality', "city"),
        ('addresses[type eq "work"].region', "state"),
        ('addresses[type eq "work"].postalCode', "postalCode"),
        ('addresses[type eq "work"].country', "country"),
        ('phoneNumbers[type eq "work"].value', "telephoneNumber"),
        ('phoneNumbers[type eq "mobile"].value', "mobile"),
        ('phoneNumbers[type eq "fax"].value', "facsimileTelephoneNumber"),
        ("externalId", "mailNickname"),
        (f"{ENTERPRISE}:employeeNumber", "employeeId"),
        (f"{ENTERPRISE}:department", "department"),
        (f"{ENTERPRISE}:manager", "manager"),
    ]
    out = [mapping("userName", attribute_source("userPrincipalName"), matching=1)]
    out.append(mapping("active", active))
    out += [mapping(t, attribute_source(s)) for t, s in simple]
    out.append(mapping("name.formatted", formatted))
    out += [mapping(t, attribute_source(s)) for t, s in address]
    return out


def _group_mappings() -> list[dict[str, Any]]:
    return [
        mapping("displayName", attribute_source("displayName"), matching=1),
        mapping("externalId", attribute_source("objectId")),
        mapping("members", attribute_source("members")),
    ]


def _object(name: str, attributes: list[dict[str, Any]], metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "attributes": attributes,
        "metadata": [{"key": k, "value": v} for k, v in metadata.items()],
        "supportedApis": [],
    }


def build_schema(schema_id: str) -> dict[str, Any]:
    """A fresh, complete synchronizationSchema JSON (callers own the result)."""
    source = {
        "id": "66e4a8cc-1b7b-435e-95f8-f06cea133828",
        "name": SOURCE_DIRECTORY,
        "discoverabilities": "None",
        "discoveryDateTime": None,
        "readOnly": False,
        "version": "Date:2024-03-01T00:00:00Z~Revision:1",
        "objects": [
            _object("User", _source_user_attributes(), {"PropertyNameAccountEnabled": "accountEnabled",
                                                         "PropertyNameSoftDeleted": "IsSoftDeleted"}),
            _object("Group", _source_group_attributes(), {"PropertyNameSoftDeleted": "IsSoftDeleted"}),
        ],
    }
    target = {
        "id": "8ffa6169-f354-4751-9b77-9c00765be92d",
        "name": TARGET_DIRECTORY,
        "discoverabilities": "AttributeNames, AttributeDataTypes, ReferenceAttributes",
        "discoveryDateTime": "2024-03-01T00:00:00Z",
        "readOnly": False,
        "version": "Date:2024-03-01T00:00:00Z~Revision:1",
        "objects": [
            _object(TARGET_USER_OBJECT, _target_user_attributes(),
                    {"Extensions": "urn:ietf:params:scim:schemas:core:2.0:User"}),
            _object(TARGET_GROUP_OBJECT, _target_group_attributes(), {}),
        ],
    }
    rule = {
        "id": RULE_ID,
        "name": "USERGROUP_OUTBOUND_USERGROUP",
        "editable": True,
        "priority": 1,
        "sourceDirectoryName": SOURCE_DIRECTORY,
        "targetDirectoryName": TARGET_DIRECTORY,
        "metadata": [
            {"key": "supportsProvisionOnDemand", "value": "true"},
            {"key": "defaultSourceObjectMappings", "value": "User,Group"},
        ],
        "containerFilter": {"includedContainers": []},
        "groupFilter": {"includedGroups": []},
        "objectMappings": [
            {
                "enabled": True,
                "flowTypes": "Add, Update, Delete",
                "metadata": [{"key": "ExcludeFromReporting", "value": "false"}],
                "name": USER_MAPPING_NAME,
                "scope": None,
                "sourceObjectName": "User",
                "targetObjectName": TARGET_USER_OBJECT,
                "attributeMappings": _user_mappings(),
            },
            {
                "enabled": True,
                "flowTypes": "Add, Update, Delete",
                "metadata": [{"key": "ExcludeFromReporting", "value": "false"}],
                "name": GROUP_MAPPING_NAME,
                "scope": None,
                "sourceObjectName": "Group",
                "targetObjectName": TARGET_GROUP_OBJECT,
                "attributeMappings": _group_mappings(),
            },
        ],
    }
    return {
        "id": schema_id,
        "version": SCHEMA_VERSION,
        "directories": [source, target],
        "synchronizationRules": [rule],
    }


_TEMPLATE_SCHEMA = build_schema(SCIM_TEMPLATE_ID)


def build_template(application_id: str) -> dict[str, Any]:
    """The synchronizationTemplate listed under a non-gallery service principal."""
    fields = [
        {"name": "BaseAddress", "required": True, "secret": False},
        {"name": "SecretToken", "required": False, "secret": True},
    ]
    return {
        "id": SCIM_TEMPLATE_ID,
        "applicationId": application_id,
        "default": True,
        "description": "Provision users and groups to any application that supports SCIM 2.0.",
        "discoverable": True,
        "factoryTag": SCIM_TEMPLATE_ID,
        # Keys are synchronizationMetadata members, spelled as the v1.0 CSDL declares them (PascalCase).
        "metadata": [
            {"key": "GalleryApplicationIdentifier", "value": NON_GALLERY_TEMPLATE_ID},
            {"key": "GalleryApplicationKey", "value": "customappsso"},
            {"key": "ConfigurationFields", "value": json.dumps(fields)},
            {"key": "IsOAuthEnabled", "value": "false"},
        ],
        "schema": plain_copy(_TEMPLATE_SCHEMA),
    }
