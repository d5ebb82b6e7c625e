"""load_mapping / validate_paths as other modules use them (render, providers, drift)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.mapping.load import load_mapping
from connector.mapping.model import ApplyOn, Severity
from connector.mapping.validate import validate_paths

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "mappings"


def test_shipped_okta_mapping_is_the_seed_table() -> None:
    mapping, findings = load_mapping(ROOT / "mappings" / "okta.yaml")
    assert findings == []
    assert mapping is not None and mapping.idp == "okta"
    rows = [(m.target, m.source, m.apply_on, m.from_sign_on) for m in mapping.users]
    assert rows == [
        ("userName", None, ApplyOn.CREATE_AND_UPDATE, True),
        ("name.givenName", "user.firstName", ApplyOn.CREATE_AND_UPDATE, False),
        ("name.familyName", "user.lastName", ApplyOn.CREATE_AND_UPDATE, False),
        ('emails[type eq "work"].value', "user.email", ApplyOn.CREATE_AND_UPDATE, False),
        ("displayName", "user.displayName", ApplyOn.CREATE_AND_UPDATE, False),
        ("profileUrl", "user.profileUrl", ApplyOn.CREATE_AND_UPDATE, False),
    ]
    assert mapping.users[1].location.line == 8  # the entry's "- target:" line
    assert [m.target for m in mapping.groups] == ["displayName", "members"]


def test_shipped_azure_mapping_is_the_seed_table() -> None:
    mapping, findings = load_mapping(ROOT / "mappings" / "azure.yaml")
    assert findings == [] and mapping is not None
    assert [(m.target, m.source, m.matching) for m in mapping.users] == [
        ("userName", "[userPrincipalName]", 1), ("displayName", "[displayName]", 0),
        ("name.givenName", "[givenName]", 0), ("name.familyName", "[surname]", 0),
    ]
    assert mapping.user_target("USERNAME") is mapping.users[0]


def test_valid_fixture_values() -> None:
    mapping, findings = load_mapping(FIXTURES / "valid" / "azure-expressions.yml")
    assert findings == [] and mapping is not None
    external = mapping.user_target("externalId")
    assert external is not None
    assert (external.apply_on, external.default, external.matching) == (ApplyOn.CREATE_ONLY, "none", 2)


def test_broken_file_gives_findings_and_sound_entries() -> None:
    mapping, findings = load_mapping(FIXTURES / "broken" / "wrong-type-source.yaml")
    assert mapping is not None and [m.target for m in mapping.users] == ["userName"]
    assert [(f.code, f.location.line) for f in findings] == [("wrong-type", 6)]


def test_unusable_file_gives_no_mapping() -> None:
    mapping, findings = load_mapping(FIXTURES / "broken" / "idp-unknown.yaml")
    assert mapping is None
    assert findings[0].code == "unknown-idp"


def test_unreadable_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_mapping(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_mapping(tmp_path)


def test_validate_paths_collects_across_files_and_folders(tmp_path: Path) -> None:
    findings = validate_paths([FIXTURES / "broken" / "two-usernames.yaml", FIXTURES / "valid",
                               tmp_path / "missing.yaml"])
    assert [(f.code, f.severity) for f in findings] == [("unreadable", Severity.ERROR),
                                                       ("duplicate-username", Severity.ERROR)]
