"""IdP attribute tables: Okta's base profile matches the Okta SDK; every SCIM path in the app user table is valid."""

from __future__ import annotations

import pytest

from connector.mapping import idp_attributes as A
from connector.mapping import scim_paths
from connector.mapping.model import Severity


def test_okta_user_attributes_match_the_sdk_user_profile() -> None:
    from okta.models import UserProfile

    names = {f.alias or name for name, f in UserProfile.model_fields.items() if name != "additional_properties"}
    assert names == set(A.OKTA_USER_ATTRIBUTES)


@pytest.mark.parametrize(("attr", "path"), sorted(A.OKTA_APP_USER_TO_SCIM.items()))
def test_app_user_table_paths_are_valid_scim(attr: str, path: str) -> None:
    errors = [i for i in scim_paths.check_path(path, "User") if i.severity is Severity.ERROR]
    assert errors == []
    assert scim_paths.canonical(path) == path  # written in canonical form, so lookups by text work


def test_tables_are_inverse() -> None:
    assert {v: k for k, v in A.SCIM_TO_OKTA_APPUSER.items()} == A.OKTA_APP_USER_TO_SCIM
    assert A.SCIM_TO_OKTA_APPUSER['emails[type eq "work"].value'] == "email"
    assert A.SCIM_TO_OKTA_APPUSER["name.givenName"] == "givenName"


@pytest.mark.parametrize(("target", "attr"), [
    ("name.givenName", "givenName"),
    ("NAME.GIVENNAME", "givenName"),
    ('emails[Type eq "work"].Value', "email"),
    ("profileUrl", "profileUrl"),
    ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department", "department"),
    ("active", None),
])
def test_okta_app_user_attribute(target: str, attr: str | None) -> None:
    assert A.okta_app_user_attribute(target) == attr


def test_default_sources_read_standard_okta_attributes() -> None:
    for path, source in A.OKTA_DEFAULT_SOURCE.items():
        assert path in A.SCIM_TO_OKTA_APPUSER
        assert A.is_standard("okta", "users", source.removeprefix("user."))


@pytest.mark.parametrize(("idp", "kind", "name", "standard"), [
    ("okta", "users", "firstName", True),
    ("okta", "users", "firstname", False),  # Okta attribute names are case-sensitive
    ("okta", "users", "givenName", False),
    ("okta", "groups", "name", True),
    ("azure", "users", "userPrincipalName", True),
    ("azure", "users", "userprincipalname", True),
    ("azure", "users", "extensionAttribute15", True),
    ("azure", "users", "extension_0123456789abcdef0123456789abcdef_costCenter", True),
    ("azure", "users", "firstName", False),
    ("azure", "groups", "members", True),
])
def test_is_standard(idp: str, kind: str, name: str, standard: bool) -> None:
    assert A.is_standard(idp, kind, name) is standard


def test_suggest() -> None:
    assert A.suggest("okta", "users", "firstname") == "firstName"
    assert A.suggest("azure", "users", "userPrincipleName") == "userPrincipalName"
    assert A.suggest("azure", "users", "zzzz") is None


def test_okta_app_attribute_ignores_case_as_validate_does() -> None:
    """validate calls `Emails[Type eq "Work"].Value` a spelling of the work email (a warning, and a duplicate of
    emails[type eq "work"].value); plan must find the same app attribute for it, not refuse it."""
    from connector.mapping.idp_attributes import okta_app_user_attribute

    assert okta_app_user_attribute('Emails[Type eq "Work"].Value') == "email"
    assert okta_app_user_attribute('emails[ type  EQ "work" ].value') == "email"
    assert okta_app_user_attribute("externalId") is None
