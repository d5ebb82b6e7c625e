"""schemas/*.json are generated, current, and agree with the loaders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from connector.config import schemas
from connector.config.load import load_config
from connector.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "mappings"


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((ROOT / "schemas" / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_files_on_disk_are_the_generated_ones() -> None:
    assert schemas.stale(ROOT / "schemas") == []
    assert schemas.main(["--check"]) == 0


def test_stale_file_is_detected(tmp_path: Path) -> None:
    schemas.write(tmp_path)
    assert schemas.stale(tmp_path) == []
    (tmp_path / "mapping.schema.json").write_text("{}\n")
    assert schemas.stale(tmp_path) == ["mapping.schema.json"]


@pytest.mark.parametrize("path", sorted([*(ROOT / "mappings").glob("*.yaml"), *(FIXTURES / "valid").iterdir()]),
                         ids=lambda p: p.name)
def test_good_mappings_match_the_schema(path: Path) -> None:
    errors = list(_validator("mapping.schema.json").iter_errors(yaml.safe_load(path.read_text())))
    assert errors == []


@pytest.mark.parametrize("name", [
    "unknown-key.yaml", "unknown-top-key.yaml", "idp-missing.yaml", "idp-unknown.yaml", "wrong-type-source.yaml",
    "wrong-type-matching.yaml", "wrong-type-from-sign-on.yaml", "missing-target.yaml", "missing-source.yaml",
    "bad-apply-on.yaml", "matching-on-okta.yaml", "default-on-okta.yaml", "from-sign-on-on-azure.yaml",
    "list-instead-of-mapping.yaml", "users-not-a-list.yaml", "entry-not-a-mapping.yaml",
])
def test_structurally_broken_mappings_fail_the_schema(name: str) -> None:
    data = yaml.safe_load((FIXTURES / "broken" / name).read_text())
    assert list(_validator("mapping.schema.json").iter_errors(data)) != []


FULL_CONFIG: dict[str, Any] = {
    "astro": {"scim_url": "https://api.astronomer.io/scim/v2/org1", "token": "env:ASTRO_API_TOKEN",
              "api_url": "https://api.astronomer.io/v1", "organization_id": "org1", "team_wait_seconds": 30,
              "page_size": 500},
    "okta": {"org_url": "https://acme.okta.com", "token": "env:OKTA_API_TOKEN", "client_id": "0oa1",
             "private_key": "file:okta.pem", "scopes": ["okta.apps.read"], "app": {"label": "Astro", "id": "0oa2"},
             "integration": "manual", "mapping": "mappings/okta.yaml", "assign_groups": ["Astro Users"],
             "push_groups": ["Data Engineering"],
             "astro": {"scim_url": "https://api.astronomer.io/scim/v2/org2", "token": "env:T2",
                       "api_url": "https://api.astronomer.io/v1", "organization_id": "org2", "team_wait_seconds": 5,
                       "page_size": 50}},
    "azure": {"tenant_id": "t1", "credential": {"type": "secret", "client_id": "c1",
                                                "client_secret": "env:AZURE_CLIENT_SECRET",
                                                "certificate_path": "cert.pem", "token": "env:X"},
              "graph_url": "https://graph.microsoft.com/v1.0", "authority": "https://login.microsoftonline.us",
              "app": {"display_name": "Astro", "app_id": "a1"},
              "mapping": "mappings/azure.yaml", "assign_groups": ["Astro Users"],
              "astro": {"scim_url": "https://api.astronomer.io/scim/v2/org3", "token": "env:T3",
                        "api_url": "https://api.astronomer.io/v1", "organization_id": "org3", "team_wait_seconds": 5,
                        "page_size": 1000}},
    "safety": {"max_delete_fraction": 0.2, "max_delete_count": 10},
    "access": {"Data Engineering": {"organization": "ORGANIZATION_MEMBER"}},
    "audit_log": "logs/audit.jsonl",
}


def _schema_keys(schema: dict[str, Any], defs: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if "$ref" in schema:
        schema = defs[schema["$ref"].split("/")[-1]]
    out: set[tuple[str, ...]] = set()
    for key, sub in (schema.get("properties") or {}).items():
        out.add((*prefix, key))
        out |= _schema_keys(sub, defs, (*prefix, key))
    return out


def _data_keys(data: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    if isinstance(data, dict) and prefix != ("access",):
        for key, value in data.items():
            out.add((*prefix, key))
            out |= _data_keys(value, (*prefix, key))
    return out


def test_full_config_uses_every_schema_key_and_loads(tmp_path: Path) -> None:
    schema = json.loads((ROOT / "schemas" / "config.schema.json").read_text())
    assert _data_keys(FULL_CONFIG) == _schema_keys(schema, schema["$defs"])
    assert list(_validator("config.schema.json").iter_errors(FULL_CONFIG)) == []
    path = tmp_path / "astro-scim.yaml"
    path.write_text(yaml.safe_dump(FULL_CONFIG))
    config = load_config(path)  # the loader accepts every key the schema offers
    assert config.astro is not None and config.astro.page_size == 500 and config.astro.team_wait_seconds == 30
    assert config.okta is not None and config.okta.integration == "manual"
    assert config.azure is not None and config.azure.app_id == "a1"
    assert config.audit_log_setting == tmp_path / "logs" / "audit.jsonl"


def test_the_schema_offers_every_astro_key_the_loader_accepts() -> None:
    from connector.config.load import ASTRO_KEYS

    schema = json.loads((ROOT / "schemas" / "config.schema.json").read_text())
    assert set(schema["$defs"]["astro"]["properties"]) == set(ASTRO_KEYS)


@pytest.mark.parametrize(("section", "key"), [((), "oktaa"), (("okta",), "tokn"), (("azure", "credential"), "kind"),
                                              (("astro",), "url"), (("okta", "app"), "name")])
def test_unknown_config_keys_fail_both(section: tuple[str, ...], key: str, tmp_path: Path) -> None:
    data = json.loads(json.dumps(FULL_CONFIG))
    node = data
    for part in section:
        node = node[part]
    node[key] = "x"
    assert list(_validator("config.schema.json").iter_errors(data)) != []
    path = tmp_path / "astro-scim.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="unknown"):
        load_config(path)
