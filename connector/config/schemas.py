"""JSON Schemas for editors (YAML language servers, IDEs), generated from the same constants the loaders use.

    python -m connector.config.schemas            # rewrite schemas/*.json
    python -m connector.config.schemas --check    # exit 1 when the files on disk are stale (CI)

mapping.schema.json is built from connector.mapping.load's key lists and ApplyOn; config.schema.json mirrors
connector.config's sections (tests/test_mapping_schemas.py feeds every property through load_config, so a key
the loader does not know fails the build). The schemas describe shape only; `astro-scim validate` checks
meaning (SCIM paths, expressions, one userName, ...).

To use one in an editor, put this first line in a YAML file:
    # yaml-language-server: $schema=../schemas/mapping.schema.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# The package copy (connector/data/schemas, shipped in the wheel); a checkout's schemas/ links to it.
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "data" / "schemas"

SECRET_REF = (
    "A secret by reference: env:NAME (read from the environment) or file:PATH (relative to this file). "
    "The secret itself is refused."
)


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


SECRET_PATTERN = r"^(env:\s*[A-Za-z_][A-Za-z0-9_]*|file:\s*\S.*)$"


def _secret(description: str, **extra: Any) -> dict[str, Any]:
    return _string(description.rstrip() + " " + SECRET_REF, pattern=SECRET_PATTERN, **extra)


def _strings(description: str) -> dict[str, Any]:
    """A list of names, each once (the loader refuses a name listed twice: one object in the IdP)."""
    return {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True,
            "description": description}


def _object(description: str, properties: dict[str, Any], required: Sequence[str] = (), *,
            additional: bool | dict[str, Any] = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "description": description, "properties": properties,
                           "additionalProperties": additional}
    if required:
        out["required"] = list(required)
    return out


# ------------------------------------------------------------------------------------------------ mapping


def mapping_schema() -> dict[str, Any]:
    from connector.mapping.load import ENTRY_KEYS, IDPS, TOP_KEYS
    from connector.mapping.model import ApplyOn

    entry_properties: dict[str, Any] = {
        "target": _string(
            "SCIM attribute path (RFC 7643) that Astro receives, e.g. userName, name.givenName, "
            'emails[type eq "work"].value, or urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department.',
            minLength=1, examples=["userName", "name.givenName", 'emails[type eq "work"].value', "displayName"],
        ),
        "source": _string(
            "The IdP expression that computes the value. Okta: expression language, e.g. user.firstName. "
            'Entra: [attribute], "constant" or Function(...), e.g. [userPrincipalName].',
            minLength=1, examples=["user.firstName", "[userPrincipalName]"],
        ),
        "apply_on": {"enum": [a.value for a in ApplyOn],
                     "description": "When the value flows: create_and_update (Okta PUSH, Entra Always) or "
                                    "create_only (Okta DONT_PUSH, Entra ObjectAddOnly).",
                     "default": ApplyOn.CREATE_AND_UPDATE.value},
        "matching": {"type": "integer", "minimum": 0, "default": 0,
                     "description": "Entra only: matching precedence (1 = matched first; 0 = not a matching "
                                    "attribute)."},
        "default": {"type": ["string", "number"],
                    "description": "Entra only: defaultValue used when the source is empty."},
        "from_sign_on": {"type": "boolean", "default": False,
                         "description": "Okta only, userName only: the value is the app username configured in "
                                        "the app's sign-on settings."},
    }
    assert tuple(entry_properties) == ENTRY_KEYS, "schema and loader disagree on the entry keys"
    entry = _object("One attribute mapping.", entry_properties, ["target"])
    entry["anyOf"] = [
        {"required": ["source"]},
        {"required": ["from_sign_on"], "properties": {"from_sign_on": {"const": True}}},
    ]
    section = {"type": ["array", "null"], "items": {"$ref": "#/$defs/entry"}}
    top_properties: dict[str, Any] = {
        "idp": {"enum": list(IDPS), "description": "Which identity provider the expressions are written for."},
        "users": {**section, "description": "User attribute mappings (exactly one must target userName)."},
        "groups": {**section, "description": "Group attribute mappings (Astro Teams; map displayName and "
                                             "members)."},
    }
    assert tuple(top_properties) == TOP_KEYS, "schema and loader disagree on the top-level keys"

    def forbid(keys: Sequence[str]) -> dict[str, Any]:
        no_keys = {"not": {"anyOf": [{"required": [k]} for k in keys]}}
        items = {"type": ["array", "null"], "items": no_keys}
        return {"properties": {"users": items, "groups": items}}

    return {
        "$schema": DRAFT,
        "$id": "mapping.schema.json",
        "title": "astro-scim attribute mappings",
        "description": "IdP -> Astro SCIM attribute mappings as code (mappings/*.yaml). Check the meaning with "
                       "`astro-scim validate`.",
        "type": "object",
        "properties": top_properties,
        "required": ["idp"],
        "additionalProperties": False,
        "allOf": [
            {"if": {"properties": {"idp": {"const": "okta"}}, "required": ["idp"]},
             "then": forbid(["matching", "default"])},
            {"if": {"properties": {"idp": {"const": "azure"}}, "required": ["idp"]},
             "then": forbid(["from_sign_on"])},
        ],
        "$defs": {"entry": entry},
    }


# ------------------------------------------------------------------------------------------------- config


def _astro() -> dict[str, Any]:
    return _object("The Astro organization the IdP provisions into.", {
        "scim_url": _string("Astro's SCIM Integration URL (Settings > Authentication), "
                            "https://api.astronomer.io/scim/v2/<organization-id>.", format="uri"),
        "token": _secret("Organization API token with Organization Owner rights. ",
                         default="env:ASTRO_API_TOKEN", examples=["env:ASTRO_API_TOKEN"]),
        "api_url": _string("Astro Platform API base URL.", default="https://api.astronomer.io/v1", format="uri"),
        "organization_id": _string("Astro organization id (default: the last segment of scim_url)."),
        "team_wait_seconds": {"type": "number", "minimum": 0, "default": 60,
                              "description": "Access templates: how long apply waits for an IdP to push a Team."},
        "page_size": {"type": "integer", "minimum": 1, "maximum": 1000,
                      "description": "Resources per SCIM list page the drift audit asks for (default: the "
                                     "server's maxResults, at most 1000)."},
    }, ["scim_url"])


def config_schema() -> dict[str, Any]:
    okta = _object("Okta org and the Astro app in it.", {
        "org_url": _string("Okta org URL, e.g. https://acme.okta.com (or set OKTA_CLIENT_ORGURL).", format="uri"),
        "token": _secret("Okta API token (SSWS). ", examples=["env:OKTA_API_TOKEN"]),
        "client_id": _string("OAuth service app client id (with private_key)."),
        "private_key": _secret("OAuth service app private key (PEM or JWK). ",
                               examples=["file:okta.pem"]),
        "scopes": _strings("OAuth scopes to request with private_key."),
        "app": _object("The Okta app: by label or by id.", {
            "label": _string("App label, e.g. Astro.", default="Astro"),
            "id": _string("App id (0oa...)."),
        }),
        "integration": {"enum": ["oin", "manual"], "default": "oin",
                        "description": "oin = Okta's Astro catalogue app; manual = a custom SCIM app."},
        "mapping": _string("Mapping file for Okta, relative to this file.", examples=["mappings/okta.yaml"]),
        "assign_groups": _strings("Okta groups to assign to the app (their members are provisioned)."),
        "push_groups": _strings("Okta groups to push to Astro as Teams."),
        "astro": {"$ref": "#/$defs/astro"},
    })
    credential = _object("How to authenticate to Microsoft Graph (default: AZURE_CLIENT_ID/AZURE_CLIENT_SECRET "
                         "from the environment, else DefaultAzureCredential).", {
                             "type": {"enum": ["secret", "certificate", "cli", "default", "workload", "token"],
                                      "description": "Credential kind (inferred from the other keys when absent)."},
                             "client_id": _string("App registration (client) id."),
                             "client_secret": _secret("Client secret. ",
                                                      examples=["env:AZURE_CLIENT_SECRET"]),
                             "certificate_path": _string("Client certificate (PEM), relative to this file."),
                             "token": _secret("A ready access token. "),
                         })
    azure = _object("Microsoft Entra tenant and the Astro enterprise app in it.", {
        "tenant_id": _string("Tenant id (or set AZURE_TENANT_ID)."),
        "credential": credential,
        "graph_url": _string("Microsoft Graph base URL.", default="https://graph.microsoft.com/v1.0", format="uri"),
        "authority": _string("Where Entra's sign-in goes (https, no path): a sovereign cloud's, e.g. "
                             "https://login.microsoftonline.us (default: AZURE_AUTHORITY_HOST, else "
                             "https://login.microsoftonline.com).", format="uri",
                             examples=["https://login.microsoftonline.us"]),
        "app": _object("The enterprise app: by display name (created from the non-gallery template if missing) "
                       "or by app id.", {
                           "display_name": _string("Display name.", default="Astro"),
                           "app_id": _string("Application (client) id of the enterprise app."),
                       }),
        "mapping": _string("Mapping file for Entra, relative to this file.", examples=["mappings/azure.yaml"]),
        "assign_groups": _strings("Groups to assign to the app (in provisioning scope)."),
        "astro": {"$ref": "#/$defs/astro"},
    })
    safety = _object("Limits that make apply refuse a plan unless --force.", {
        "max_delete_fraction": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.1,
                                "description": "Largest share of objects one plan may delete."},
        "max_delete_count": {"type": "integer", "minimum": 0, "default": 25,
                             "description": "Largest number of objects one plan may delete."},
    })
    access = {"type": "object", "additionalProperties": True,
              "description": "Team access templates: group name -> the Astro organization, workspace and "
                             "deployment roles its Team should hold."}
    audit_log = _string("Audit trail: apply, push-groups, provision and drift --fix append one JSON line each "
                        "here (relative to this file; $ASTRO_SCIM_AUDIT_LOG overrides it).",
                        default=".astro-scim/audit.log", examples=["logs/astro-scim-audit.jsonl"])
    return {
        "$schema": DRAFT,
        "$id": "config.schema.json",
        "title": "astro-scim project configuration",
        "description": "astro-scim.yaml: where Astro, Okta and Entra are, and which mappings and groups to use. "
                       "Secrets by reference only (env:NAME, file:PATH).",
        "type": "object",
        "properties": {"astro": {"$ref": "#/$defs/astro"}, "okta": okta, "azure": azure, "safety": safety,
                       "access": access, "audit_log": audit_log},
        "additionalProperties": False,
        "$defs": {"astro": _astro()},
    }


# -------------------------------------------------------------------------------------------------- files

SCHEMAS = {"mapping.schema.json": mapping_schema, "config.schema.json": config_schema}


def render(name: str) -> str:
    return json.dumps(SCHEMAS[name](), indent=2, ensure_ascii=False) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name in SCHEMAS:
        path = directory / name
        path.write_text(render(name), encoding="utf-8")
        out.append(path)
    return out


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that differ from what the code generates."""
    names = []
    for name in SCHEMAS:
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(name):
            names.append(name)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--check"]:
        names = stale()
        for name in names:
            print(f"schemas/{name} is stale: run python -m connector.config.schemas")
        return 1 if names else 0
    if args:
        print("usage: python -m connector.config.schemas [--check]")
        return 2
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
