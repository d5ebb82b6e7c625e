"""What each IdP's user and group objects are called, and how Okta's SCIM app user attributes map to SCIM paths.

Sources: the Okta base user profile (okta-management OpenAPI 5.1.0 `UserProfile`, the Okta SDK's UserProfile
model), Microsoft Entra's provisioning source attributes (the "Azure Active Directory" user and group objects
of a synchronization schema; entra-docs `customize-application-attributes.md` and the Graph parseExpression
example), and the attribute names of Okta's custom SCIM 2.0 app template (one app user attribute per SCIM
path; e.g. `email` is `emails[type eq "work"].value`).

Validation warns, not fails, on a source attribute outside these lists: both IdPs allow custom attributes.
"""

from __future__ import annotations

import re

from connector.support.suggest import closest

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# Okta base user profile (user.<name> in expressions).
OKTA_USER_ATTRIBUTES: tuple[str, ...] = (
    "login", "email", "secondEmail", "firstName", "lastName", "middleName", "honorificPrefix",
    "honorificSuffix", "title", "displayName", "nickName", "profileUrl", "primaryPhone", "mobilePhone",
    "streetAddress", "city", "state", "zipCode", "countryCode", "postalAddress", "preferredLanguage", "locale",
    "timezone", "userType", "employeeNumber", "costCenter", "organization", "division", "department",
    "managerId", "manager",
)

# Okta group profile (group.<name>). "members" is not a profile attribute: the shipped mapping names it to say
# that Group Push sends the group's members, which it always does.
OKTA_GROUP_ATTRIBUTES: tuple[str, ...] = ("name", "description", "members")

# Entra user attributes a provisioning mapping can read ([name] in expressions).
ENTRA_USER_ATTRIBUTES: tuple[str, ...] = (
    "accountEnabled", "appRoleAssignments", "city", "companyName", "country", "department", "displayName",
    "employeeHireDate", "employeeId", "employeeLeaveDateTime", "employeeOrgData.costCenter",
    "employeeOrgData.division", "employeeType", "facsimileTelephoneNumber", "givenName", "IsSoftDeleted",
    "jobTitle", "mail", "mailNickname", "manager", "mobile", "objectId", "onPremisesDistinguishedName",
    "onPremisesDomainName", "onPremisesImmutableId", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "onPremisesUserPrincipalName", "otherMails", "passwordProfile.password", "physicalDeliveryOfficeName",
    "postalCode", "preferredLanguage", "proxyAddresses", "state", "streetAddress", "surname",
    "telephoneNumber", "usageLocation", "userPrincipalName", "userType",
    *(f"extensionAttribute{i}" for i in range(1, 16)),
)

# Entra group attributes.
ENTRA_GROUP_ATTRIBUTES: tuple[str, ...] = (
    "appRoleAssignments", "description", "displayName", "IsSoftDeleted", "mail", "mailEnabled", "mailNickname",
    "members", "objectId", "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "proxyAddresses",
    "securityEnabled",
)

# Directory extensions registered on an app: extension_<appId without dashes>_<name>.
_ENTRA_EXTENSION = re.compile(r"^extension_[0-9a-fA-F]{32}_\w+$")

# Okta's custom SCIM 2.0 app template: app user attribute -> the SCIM path Okta sends it as.
OKTA_APP_USER_TO_SCIM: dict[str, str] = {
    "userName": "userName",
    "givenName": "name.givenName",
    "familyName": "name.familyName",
    "middleName": "name.middleName",
    "honorificPrefix": "name.honorificPrefix",
    "honorificSuffix": "name.honorificSuffix",
    "email": 'emails[type eq "work"].value',
    "secondEmail": 'emails[type eq "home"].value',
    "displayName": "displayName",
    "nickName": "nickName",
    "profileUrl": "profileUrl",
    "title": "title",
    "userType": "userType",
    "preferredLanguage": "preferredLanguage",
    "locale": "locale",
    "timezone": "timezone",
    "primaryPhone": 'phoneNumbers[type eq "work"].value',
    "mobilePhone": 'phoneNumbers[type eq "mobile"].value',
    "streetAddress": 'addresses[type eq "work"].streetAddress',
    "city": 'addresses[type eq "work"].locality',
    "state": 'addresses[type eq "work"].region',
    "zipCode": 'addresses[type eq "work"].postalCode',
    "countryCode": 'addresses[type eq "work"].country',
    "employeeNumber": f"{ENTERPRISE}:employeeNumber",
    "costCenter": f"{ENTERPRISE}:costCenter",
    "organization": f"{ENTERPRISE}:organization",
    "division": f"{ENTERPRISE}:division",
    "department": f"{ENTERPRISE}:department",
}

# The same table the other way: SCIM path -> Okta app user attribute (profile mapping property names).
SCIM_TO_OKTA_APPUSER: dict[str, str] = {path: attr for attr, path in OKTA_APP_USER_TO_SCIM.items()}

# The Okta profile attribute that usually feeds each SCIM path (Astro's "Okta - Manual" table and its kin).
OKTA_DEFAULT_SOURCE: dict[str, str] = {
    "name.givenName": "user.firstName",
    "name.familyName": "user.lastName",
    'emails[type eq "work"].value': "user.email",
    "displayName": "user.displayName",
    "profileUrl": "user.profileUrl",
    "title": "user.title",
    "nickName": "user.nickName",
    "preferredLanguage": "user.preferredLanguage",
    "locale": "user.locale",
    "timezone": "user.timezone",
    'phoneNumbers[type eq "work"].value': "user.primaryPhone",
    'phoneNumbers[type eq "mobile"].value': "user.mobilePhone",
}


def user_attributes(idp: str) -> tuple[str, ...]:
    return OKTA_USER_ATTRIBUTES if idp == "okta" else ENTRA_USER_ATTRIBUTES


def group_attributes(idp: str) -> tuple[str, ...]:
    return OKTA_GROUP_ATTRIBUTES if idp == "okta" else ENTRA_GROUP_ATTRIBUTES


def is_standard(idp: str, kind: str, name: str) -> bool:
    """Is `name` a standard attribute of the IdP's user (kind="users") or group (kind="groups")?
    Okta names are case-sensitive; Entra matches case-insensitively, as its engine does."""
    names = user_attributes(idp) if kind == "users" else group_attributes(idp)
    if idp == "okta":
        return name in names
    if _ENTRA_EXTENSION.match(name):
        return True
    return name.lower() in {n.lower() for n in names}


def suggest(idp: str, kind: str, name: str) -> str | None:
    """The closest standard attribute name, for a did-you-mean hint."""
    names = user_attributes(idp) if kind == "users" else group_attributes(idp)
    return closest(name, names, 0.7)


def okta_app_user_attribute(target: str) -> str | None:
    """The Okta app user attribute for a SCIM target path (None when the template has none)."""
    if target in SCIM_TO_OKTA_APPUSER:
        return SCIM_TO_OKTA_APPUSER[target]
    from connector.mapping.scim_paths import canonical

    # Case-insensitive, filter values included: RFC 7643 makes `type` caseExact false, and validate's duplicate
    # check compares targets the same way (`Emails[Type eq "Work"].Value` is the template's `email`).
    wanted = canonical(target).lower()
    for path, attr in SCIM_TO_OKTA_APPUSER.items():
        if canonical(path).lower() == wanted:
            return attr
    return None


# SCIM paths Okta fills itself, never from a profile mapping: a mapping for them is refused with this reason.
OKTA_SENDS_ITSELF: dict[str, str] = {
    "externalid": "Okta sends externalId itself (the Okta user id)",
    "active": "Okta sends active itself (from the user's status and assignment)",
}
