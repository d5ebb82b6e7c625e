"""What an emulated Astro organization keeps, and the RFC 7644 error for what it cannot keep.

scim2-server under an `unknown=ignore` policy answers 2xx and drops what no schema declares: Microsoft's Example 5
(PATCH `manager`) answered 204 and the manager was lost; a POST with an unknown attribute lost it silently. A
client cannot tell "kept" from "dropped", so the emulator checks each write against its vocabulary first and
refuses what it would not keep (RFC 7644 §3.12, Table 9, each error with its `scimType`):

- a PATCH operation whose path, or a key of whose pathless value, names no attribute -> 400 `invalidPath`;
- a POST/PUT body with an attribute no schema declares -> 400 `invalidSyntax` ("did not conform to the request
  schema"; scim2-models gives the same type under its strict policy);
- (member ids that are no user are refused by the storage, `invalidValue`.)

Nothing is lost by accepting an empty value (null, [], {}, ""), so those pass: Entra's Example 2 sends
`"manager": null`, `"addresses": null` at the top level, and its POST /Groups names a schema URN
(`...ADSCIM/2.0/Group`) that carries no attribute.

Two vocabularies:
- COMPLETE (the default): every attribute of RFC 7643's User (with the enterprise extension) and Group, as a
  complete SCIM server keeps them. An unqualified path naming an extension attribute (Entra's `manager`) is
  qualified with that extension's URN, and a one-entry list for a single-valued complex attribute (Entra's
  `[{"$ref": ..., "value": ...}]`) is unwrapped: Microsoft's tutorial prints both and expects them kept.
- DOCUMENTED: only what Astro's "Set up SCIM provisioning" page maps (userName, name.givenName, name.familyName,
  emails, displayName, profileUrl, active; Teams: displayName, members), plus the common attributes (id,
  externalId, meta, schemas), the write-only `password` Okta always sends (nothing is kept: it is never returned)
  and the read-only `groups` a PUT echoes (RFC 7644 §3.5.1: read-only values in a request are ignored).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from scim2_server.utils import load_default_schemas

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
COMMON = frozenset({"schemas", "id", "externalid", "meta"})
# scim2-server parses and validates its schema files on every call (~13 ms, three calls per organization, so ~80
# ms of every sandbox start); they never change, and only their names and shapes are read here.
_default_schemas = functools.cache(load_default_schemas)


@dataclass(frozen=True)
class Attr:
    name: str
    multi_valued: bool
    subs: frozenset[str]  # lower-cased sub-attribute names; empty for simple attributes


@dataclass
class Vocabulary:
    """The attributes a resource type keeps: its core schema's and each extension's (names lower-cased)."""

    core_urn: str
    core: dict[str, Attr]
    extensions: dict[str, tuple[str, dict[str, Attr]]] = field(default_factory=dict)  # lower URN -> (URN, attrs)

    def extension(self, key: str) -> tuple[str, dict[str, Attr]] | None:
        return self.extensions.get(key.lower())


class Refusal(Exception):
    """A write the organization cannot keep: answered 400 with this `scimType` and detail."""

    def __init__(self, scim_type: str, detail: str) -> None:
        super().__init__(detail)
        self.scim_type = scim_type
        self.detail = detail


def _attrs(schema_id: str, only: dict[str, frozenset[str] | None] | None = None) -> dict[str, Attr]:
    schema = _default_schemas()[schema_id]
    out: dict[str, Attr] = {}
    for a in schema.attributes or []:
        name = str(a.name)
        subs = frozenset(str(s.name).lower() for s in (a.sub_attributes or []))
        if only is not None:
            if name not in only:
                continue
            kept = only[name]
            if kept is not None:
                subs = subs & kept
        out[name.lower()] = Attr(name, bool(a.multi_valued), subs)
    return out


def complete() -> dict[str, Vocabulary]:
    """RFC 7643 in full: User + enterprise extension, Group (scim2-server's default schemas)."""
    return {
        "User": Vocabulary(CORE_USER, _attrs(CORE_USER),
                           {ENTERPRISE_USER.lower(): (ENTERPRISE_USER, _attrs(ENTERPRISE_USER))}),
        "Group": Vocabulary(CORE_GROUP, _attrs(CORE_GROUP)),
    }


# Astro's setup page (seed: set-up-scim-provisioning.md, the Okta manual and Azure AD tables) and design.md §3.
DOCUMENTED_USER: dict[str, frozenset[str] | None] = {
    "userName": None,
    "name": frozenset({"givenname", "familyname"}),
    "emails": None,
    "displayName": None,
    "profileUrl": None,
    "active": None,
    "password": None,  # write-only: Okta always sends one; never returned, so nothing undocumented is kept
    "groups": None,  # read-only: ignored in requests (RFC 7644 §3.5.1), computed in answers
}
DOCUMENTED_GROUP: dict[str, frozenset[str] | None] = {"displayName": None, "members": None}


def documented() -> dict[str, Vocabulary]:
    return {
        "User": Vocabulary(CORE_USER, _attrs(CORE_USER, DOCUMENTED_USER)),
        "Group": Vocabulary(CORE_GROUP, _attrs(CORE_GROUP, DOCUMENTED_GROUP)),
    }


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _check_subs(attr: Attr, value: Any, where: str, scim_type: str) -> None:
    if not attr.subs:
        return
    entries = value if isinstance(value, list) else [value]
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for key, sub in entry.items():
            if key.lower() not in attr.subs and not _empty(sub):
                raise Refusal(scim_type, f"{where}.{key} is not an attribute this organization keeps")


def _split_urn(vocab: Vocabulary, path: str) -> tuple[str | None, dict[str, Attr], str]:
    """(extension URN or None for core, its attributes, the attribute path after the URN)."""
    lower = path.lower()
    if lower.startswith(vocab.core_urn.lower() + ":"):
        return None, vocab.core, path[len(vocab.core_urn) + 1:]
    for ext_lower, (urn, attrs) in vocab.extensions.items():
        if lower.startswith(ext_lower + ":"):
            return urn, attrs, path[len(urn) + 1:]
    if lower.startswith("urn:"):
        raise Refusal("invalidPath", f"{path!r}: unknown schema")
    return None, vocab.core, path


def _head(path: str) -> tuple[str, str | None]:
    """('emails', 'value') for 'emails[type eq "work"].value'; ('name', 'givenName') for 'name.givenName'."""
    cut = len(path)
    for mark in (".", "["):
        i = path.find(mark)
        if i != -1:
            cut = min(cut, i)
    head, rest = path[:cut], path[cut:]
    if rest.startswith("["):
        close = rest.find("]")
        rest = rest[close + 1:] if close != -1 else ""
    sub = rest[1:] if rest.startswith(".") else None
    return head, sub or None


def check_resource(vocab: Vocabulary, body: Any) -> None:
    """A POST/PUT body: refuse (invalidSyntax) a non-empty attribute outside the vocabulary."""
    if not isinstance(body, dict):
        return
    for key, value in body.items():
        if key.lower() in COMMON or _empty(value):
            continue
        ext = vocab.extension(key)
        if ext is not None:
            if isinstance(value, dict):
                for sub_key, sub_value in value.items():
                    attr = ext[1].get(sub_key.lower())
                    if attr is None:
                        if not _empty(sub_value):
                            raise Refusal("invalidSyntax",
                                          f"{ext[0]}:{sub_key} is not an attribute this organization keeps")
                    else:
                        _check_subs(attr, sub_value, f"{ext[0]}:{sub_key}", "invalidSyntax")
            continue
        attr = vocab.core.get(key.lower())
        if attr is None:
            raise Refusal("invalidSyntax", f"{key!r} is not an attribute this organization keeps")
        _check_subs(attr, value, key, "invalidSyntax")


def _resolve(vocab: Vocabulary, path: str) -> tuple[str, Attr, str | None]:
    """(the path as the server should read it, its attribute, its sub-attribute) or invalidPath."""
    urn, attrs, rest = _split_urn(vocab, path)
    head, sub = _head(rest)
    if head.lower() in COMMON:  # id, externalId, meta, schemas: scim2-server applies their mutability itself
        return path, Attr(head, False, frozenset()), sub
    attr = attrs.get(head.lower())
    if attr is None and urn is None and rest == path:
        # An unqualified extension attribute (Entra's `manager`): qualified when exactly one extension has it.
        owners = [(u, a[head.lower()]) for u, a in vocab.extensions.values() if head.lower() in a]
        if len(owners) == 1:
            urn, attr = owners[0]
            path = f"{urn}:{path}"
    if attr is None:
        raise Refusal("invalidPath", f"{path!r} is not an attribute this organization keeps")
    if sub is not None and attr.subs and sub.lower() not in attr.subs:
        raise Refusal("invalidPath", f"{path!r} is not an attribute this organization keeps")
    return path, attr, sub


def rewrite_patch(vocab: Vocabulary, body: Any) -> bool:
    """Check a PatchOp body in place; qualify extension paths and unwrap one-entry lists. True if changed."""
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        return False
    changed = False
    for op in body["Operations"]:
        if not isinstance(op, dict):
            continue
        path, value = op.get("path"), op.get("value")
        if isinstance(path, str) and path:
            resolved, attr, sub = _resolve(vocab, path)
            if resolved != path:
                op["path"] = resolved
                changed = True
            if (sub is None and not attr.multi_valued and attr.subs and isinstance(value, list)
                    and len(value) == 1 and isinstance(value[0], dict)):
                op["value"] = value = value[0]  # Entra's manager: [{"$ref": ..., "value": ...}]
                changed = True
            if sub is None and not _empty(value):
                _check_subs(attr, value, resolved, "invalidPath")
        elif isinstance(value, dict):
            renamed: dict[str, Any] = {}
            for key, item in value.items():
                if key.lower() in COMMON or _empty(item):
                    renamed[key] = item
                    continue
                ext = vocab.extension(key)
                if ext is not None and isinstance(item, dict):
                    for sub_key, sub_value in item.items():
                        if not _empty(sub_value):
                            _resolve(vocab, f"{ext[0]}:{sub_key}")
                    renamed[key] = item
                    continue
                resolved, attr, sub = _resolve(vocab, key)
                if sub is None:
                    _check_subs(attr, item, key, "invalidPath")
                renamed[resolved] = item
                changed = changed or resolved != key
            op["value"] = renamed
    return changed


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


# What Astro's page documents of the protocol: create, update, deactivate and list users; create, rename and
# delete Teams and change their members (PATCH, `eq` filters for the IdPs' lookups). Nothing about bulk,
# password changes, sorting or ETags, so the documented-only mode does not announce them.
_UNANNOUNCED = ("bulk", "changePassword", "sort", "etag")


def _announce_schema(schema: dict[str, Any], vocabularies: dict[str, Vocabulary]) -> dict[str, Any] | None:
    kept: dict[str, Attr] | None = None
    for vocab in vocabularies.values():
        if str(schema.get("id")) == vocab.core_urn:
            kept = vocab.core
        elif ext := vocab.extension(str(schema.get("id"))):
            kept = ext[1]
    if kept is None:
        return None
    out = dict(schema)
    attributes = []
    for attr in schema.get("attributes") or []:
        known = kept.get(str(attr.get("name", "")).lower())
        if known is None:
            continue
        attr = dict(attr)
        if attr.get("subAttributes"):
            attr["subAttributes"] = [s for s in attr["subAttributes"]
                                     if str(s.get("name", "")).lower() in known.subs]
        attributes.append(attr)
    out["attributes"] = attributes
    return out


def _announce_one(item: dict[str, Any], vocabularies: dict[str, Vocabulary]) -> dict[str, Any] | None:
    if "attributes" in item and "id" in item:
        return _announce_schema(item, vocabularies)
    if "endpoint" in item:  # a ResourceType: only the extensions this organization keeps
        vocab = vocabularies.get(str(item.get("name")))
        out = dict(item)
        extensions = [e for e in item.get("schemaExtensions") or []
                      if vocab is not None and vocab.extension(str(e.get("schema")))]
        if extensions:
            out["schemaExtensions"] = extensions
        else:
            out.pop("schemaExtensions", None)
        return out
    if "patch" in item and "filter" in item:  # the ServiceProviderConfig
        out = dict(item)
        for feature in _UNANNOUNCED:
            if isinstance(out.get(feature), dict):
                out[feature] = {**out[feature], "supported": False}
                for limit in ("maxOperations", "maxPayloadSize"):
                    if limit in out[feature]:
                        out[feature][limit] = 0
        return out
    return item


def announce(data: Any, vocabularies: dict[str, Vocabulary]) -> Any:
    """A discovery answer (/Schemas, /ResourceTypes, /ServiceProviderConfig, a list or one) cut down to the
    vocabulary; None for a single schema the organization does not keep (answered 404)."""
    if not isinstance(data, dict):
        return data
    if isinstance(data.get("Resources"), list):
        items = [_announce_one(r, vocabularies) for r in data["Resources"] if isinstance(r, dict)]
        kept = [r for r in items if r is not None]
        return {**data, "Resources": kept, "totalResults": len(kept), "itemsPerPage": len(kept)}
    return _announce_one(data, vocabularies)
