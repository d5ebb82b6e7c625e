"""Entra's provisioning engine, emulated: a sync cycle pushes the in-scope users and groups into a SCIM server.

It talks to the SCIM server over real HTTP with the job's secrets (BaseAddress, SecretToken) and sends the
request shapes Entra sends without the `aadOptscim062020` flag (entra-docs, SCIM compatibility page):
- match first: `GET /Users?filter=userName eq "..."` (the mapping with matchingPriority 1, then 2, ...);
  groups: `GET /Groups?excludedAttributes=members&filter=displayName eq "..."`;
- create: POST /Users with `meta.resourceType`, `roles: []` and the enterprise schema; POST /Groups with the
  extra `http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group` schema and NO members;
- update: one capitalised `Replace` (or `Add` for a value the target lacks) per changed path;
  disable: `{"op": "Replace", "path": "active", "value": "False"}` (a string);
- members: PATCH `Add` `[{"$ref": null, "value": id}]`, removals `{"op": "Remove", "path": "members",
  "value": [{"value": id}]}`; groups that leave scope are DELETEd.

Attribute values come from the job's CURRENT schema: each attribute mapping's source is evaluated with
connector.mapping.entra_expr against the Graph object, so a schema the connector PUTs changes what flows.
The engine remembers what it exported (an "escrow" per object, Entra's connector data store): an incremental
cycle only exports what changed in Entra; `restart` forgets, so the next cycle compares everything with the
target again. Every export and failure is written to the provisioning log; the job status gets lastExecution
counts, and repeated complete failures put the job in quarantine.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from connector.sandbox.graph.state import Escrow, GraphState, SyncJob, now_iso
from connector.sandbox.graph.template import SOURCE_DIRECTORY, TARGET_DIRECTORY
from connector.sandbox.scim_http import ERRORS as HTTP_ERRORS
from connector.sandbox.scim_http import Reply, ScimHttp, encode_json
from connector.sandbox.snapshot import plain_copy
from connector.support.urls import is_loopback

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
AD_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json"
MEMBER_BATCH = 100  # members per PATCH, so the first cycle of a big group is not one giant request
QUARANTINE_AFTER = 3  # successive complete failures before the job is quarantined


_frozen_lock = threading.Lock()
_frozen_depth = 0  # cycles running inside _gc_spares_long_lived (cycles of other jobs may overlap)
_frozen_by_us = False  # whether the objects frozen now were frozen by those cycles (not by someone else)
FREEZE_EVERY = 1_000  # users examined between two freezes in a cycle
# Tenants smaller than this run their cycles without _gc_spares_long_lived: the full passes it saves are noise at a
# few hundred users, and its gc.get_freeze_count() walks every frozen object (CPython 3.11 counts the list), ~25 ms
# once a process has frozen its heap, as drift's collection pause does (connector/support/gcpause.py). The test
# suite's workers do both (a drift, then Entra cycles): ~500 small cycles paid ~13 s of the suite's CPU there.
FREEZE_FROM_USERS = 1_000


@contextlib.contextmanager
def _gc_spares_long_lived() -> Iterator[None]:
    """Keep the collector's full passes off what a cycle keeps: gc.freeze before it and every FREEZE_EVERY
    users (`_freeze_again`), gc.unfreeze after it.

    The sandbox's tenant, its emulated Astro and every other emulator live in this process: hundreds of
    thousands of long-lived objects at 20,000 users, and a cycle adds as many (the users Astro stores, the
    provisioning log, the escrows). Each full collection walked them all again though a cycle frees none of
    them: ~3 s of a 20,000-user cycle, 7-11 passes each longer than the last, so growing faster than the
    users. Frozen objects are still freed by reference counting; only reference cycles among them wait for
    the unfreeze, which hands everything back to the oldest generation (so the first full collection after a
    cycle walks the whole heap once: ~1 s at 20,000 users, paid by whatever runs next). A process that froze
    objects itself is left alone: unfreezing would hand its objects back too."""
    global _frozen_depth, _frozen_by_us
    with _frozen_lock:
        _frozen_depth += 1
        if _frozen_depth == 1:
            _frozen_by_us = gc.get_freeze_count() == 0
            if _frozen_by_us:
                gc.freeze()
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen_depth -= 1
            if _frozen_depth == 0 and _frozen_by_us:
                gc.unfreeze()
                _frozen_by_us = False


def _freeze_again() -> None:
    """What the cycle made so far joins the frozen objects (inside _gc_spares_long_lived only)."""
    with _frozen_lock:
        if _frozen_depth and _frozen_by_us:
            gc.freeze()


class CredentialCheckFailed(Exception):
    """validateCredentials / a cycle could not use the SCIM endpoint. `code` is Entra's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _ExportFailed(Exception):
    def __init__(self, code: str, reason: str, status: int = 0) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status


def _scim_code(status: int) -> str:
    if status in (401, 403):
        return "SystemForCrossDomainIdentityManagementCredentialValidationUnauthorized"
    if status == 404:
        return "SystemForCrossDomainIdentityManagementResourceNotFound"
    if status == 409:
        return "SystemForCrossDomainIdentityManagementConflict"
    if status == 429:
        return "SystemForCrossDomainIdentityManagementThrottled"
    if status >= 500 or status == 0:
        return "SystemForCrossDomainIdentityManagementServiceFailure"
    return "SystemForCrossDomainIdentityManagementBadRequest"


def _scim_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


FLOW_TYPES = ("None", "Add", "Update", "Delete")  # Graph's objectFlowTypes, a flags enum
ALL_FLOWS = frozenset({"Add", "Update", "Delete"})


def flow_types(value: Any) -> frozenset[str] | None:
    """The members of an objectFlowTypes value ("Add, Update, Delete"); None when a name is not one of the enum's
    (Graph refuses the schema). Absent is the template's: every action."""
    if value is None:
        return ALL_FLOWS
    if not isinstance(value, str):
        return None
    names = {n.strip() for n in value.split(",") if n.strip()}
    if not names <= set(FLOW_TYPES):
        return None
    return frozenset(names - {"None"})


@dataclass
class _Mapping:
    target: str
    expr: Any  # entra_expr.Expr
    matching: int
    add_only: bool
    boolean: bool


@dataclass
class _Rules:
    rule_id: str
    users: list[_Mapping] = field(default_factory=list)
    groups: list[_Mapping] = field(default_factory=list)
    users_enabled: bool = True
    groups_enabled: bool = True
    user_scope: Any = None
    group_scope: Any = None
    group_members: bool = False  # the group mapping maps `members`
    # The object mappings' flowTypes (the portal's Target Object Actions): Add creates, Update changes objects
    # already in the target, Delete disables (users) or deletes (groups) what leaves the scope.
    user_flows: frozenset[str] = ALL_FLOWS
    group_flows: frozenset[str] = ALL_FLOWS


@dataclass
class _Snapshot:
    """Everything a cycle reads from the tenant, copied under the lock (then no lock is held over HTTP)."""

    sp: dict[str, Any]
    base: str
    token: str
    sync_all: bool
    rules: _Rules | None
    users: dict[str, dict[str, Any]]
    deleted: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    members: dict[str, list[str]]
    assigned: set[str]


@dataclass
class _Outcome:
    action: str  # create | update | disable | delete | other
    status: str  # success | failure | skipped
    target_id: str | None = None
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    error_code: str | None = None
    reason: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    exports: int = 0


@dataclass
class _Counts:
    entitled: int = 0
    imported: int = 0
    exported: int = 0
    exports: int = 0
    escrowed: int = 0
    failures: list[str] = field(default_factory=list)


class _Scim:
    """A tiny SCIM client speaking Entra's dialect, over one kept-alive connection (scim_http)."""

    def __init__(self, base: str, token: str, timeout: float) -> None:
        self.client = ScimHttp(
            base,
            {"Authorization": f"Bearer {token}", "Accept": SCIM_JSON,
             "User-Agent": "Microsoft.Azure.ProvisioningService (sandbox)"},
            timeout,
        )

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                body: Any = None) -> Reply:
        content = None if body is None else encode_json(body)
        headers = {"Content-Type": SCIM_JSON} if body is not None else None
        try:
            return self.client.request(method, path, params=params, body=content, headers=headers)
        except HTTP_ERRORS as exc:
            raise _ExportFailed(_scim_code(0), f"Could not reach the SCIM endpoint: {type(exc).__name__}") from exc

    def checked(self, method: str, path: str, *, params: dict[str, str] | None = None,
                body: Any = None) -> Any:
        resp = self.request(method, path, params=params, body=body)
        if resp.status_code >= 400:
            detail = resp.text[:300]
            raise _ExportFailed(
                _scim_code(resp.status_code),
                f"We received this unexpected response from your application: HTTP {resp.status_code} for "
                f"{method} {path}: {detail}",
                resp.status_code,
            )
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as cause:
            raise _ExportFailed("SystemForCrossDomainIdentityManagementBadResponse",
                                f"The response to {method} {path} is not JSON.", resp.status_code) from cause

    def find(self, path: str, filter_text: str, *, exclude_members: bool = False) -> dict[str, Any] | None:
        params = {"filter": filter_text}
        if exclude_members:
            params = {"excludedAttributes": "members", "filter": filter_text}
        data = self.checked("GET", path, params=params)
        resources = data.get("Resources") if isinstance(data, dict) else None
        if not isinstance(resources, list):
            if isinstance(data, dict) and data.get("totalResults") == 0:
                return None
            raise _ExportFailed("SystemForCrossDomainIdentityManagementBadResponse",
                                f"The response to GET {path} is not a SCIM ListResponse.")
        return resources[0] if resources else None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _same(desired: Any, current: Any, boolean: bool) -> bool:
    if boolean:
        return _to_bool(desired) == _to_bool(current)
    if current is None:
        return desired is None
    if isinstance(desired, list) or isinstance(current, list):
        return bool(desired == current)
    return str(desired) == str(current)


def _boolean_targets(schema: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for directory in schema.get("directories") or []:
        if not isinstance(directory, dict) or directory.get("name") != TARGET_DIRECTORY:
            continue
        for obj in directory.get("objects") or []:
            for attr in obj.get("attributes") or []:
                if isinstance(attr, dict) and attr.get("type") == "Boolean":
                    out.add(str(attr.get("name")).lower())
    return out or {"active"}


def compile_rules(schema: dict[str, Any]) -> _Rules | None:
    """The rule with the User object mapping, its mappings parsed into expressions. None if the schema has
    no usable rule (the cycle then fails, as Entra's does on a broken schema)."""
    from connector.mapping.expr import entra as entra_expr

    booleans = _boolean_targets(schema)
    for rule in schema.get("synchronizationRules") or []:
        if not isinstance(rule, dict):
            continue
        maps = [m for m in rule.get("objectMappings") or [] if isinstance(m, dict)]
        if not any(m.get("sourceObjectName") == "User" for m in maps):
            continue
        out = _Rules(rule_id=str(rule.get("id") or ""))
        for om in maps:
            kind = om.get("sourceObjectName")
            if kind not in ("User", "Group"):
                continue
            mappings: list[_Mapping] = []
            for am in om.get("attributeMappings") or []:
                target = str(am.get("targetAttributeName") or "")
                if not target:
                    continue
                if kind == "Group" and target.lower() == "members":
                    out.group_members = True
                    continue
                expr = entra_expr.from_source_tree(am.get("source") or {})
                mappings.append(_Mapping(
                    target=target,
                    expr=expr,
                    matching=int(am.get("matchingPriority") or 0),
                    add_only=am.get("flowType") == "ObjectAddOnly",
                    boolean=target.lower() in booleans,
                ))
            enabled = om.get("enabled", True) is not False
            flows = flow_types(om.get("flowTypes"))  # "None": no action at all (an empty set, not "all")
            if flows is None:  # not reached: a PUT with another value is refused
                flows = ALL_FLOWS
            if kind == "User":
                out.users, out.users_enabled, out.user_scope = mappings, enabled, om.get("scope")
                out.user_flows = flows
            else:
                out.groups, out.groups_enabled, out.group_scope = mappings, enabled, om.get("scope")
                out.group_flows = flows
        return out
    return None


# The scoping-filter operators a clause may name (filterClause.operatorName), as Microsoft documents them for the
# portal's Source Object Scope (entra-docs, define-conditional-rules-for-provisioning-user-accounts: "The following
# operators are supported", fourteen). Graph's reference shows one API name only (EQUALS, in the filterOperators
# example); the others are named as the portal's names are written with an underscore for each space (ENDS_WITH,
# Greater_Than and Includes are written so there already). Others are refused when the schema is PUT
# (connector/sandbox/graph/api.py), so the engine never meets one.
SCOPE_OPERATORS = frozenset({"&", "!&", "ENDS_WITH", "EQUALS", "Greater_Than", "Greater_Than_OR_EQUALS", "Includes",
                             "IS_FALSE", "IS_NOT_NULL", "IS_NULL", "IS_TRUE", "NOT_EQUALS", "NOT_REGEX_MATCH",
                             "REGEX_MATCH"})


def scope_clauses(scope: Any) -> list[dict[str, Any]]:
    """Every clause of a scoping filter (filter: groups, categoryFilterGroups, inputFilterGroups)."""
    if not isinstance(scope, dict):
        return []
    return [c for key in ("groups", "categoryFilterGroups", "inputFilterGroups") for g in scope.get(key) or []
            if isinstance(g, dict) for c in g.get("clauses") or [] if isinstance(c, dict)]


def _integer(text: str) -> int | None:
    """An integer as the documentation says Greater_Than compares them ("[0,1,2,...]"): digits only (int() also
    reads " 11 ", "1_1" and "-1")."""
    return int(text) if text.isascii() and text.isdigit() else None


# .NET's named group, (?<name>...), which Python's re writes (?P<name>...); (?<= and (?<! are lookbehinds in both.
_NET_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")


def python_pattern(pattern: str) -> str:
    """A scoping filter's REGEX MATCH pattern (.NET's syntax: Entra evaluates it) as Python's re reads it, where
    they differ in spelling only (named groups). What Python cannot read at all (\\p{L}) stays as it is: the
    schema PUT refuses it."""
    return _NET_NAMED_GROUP.sub("(?P<", pattern)


def operand_values(clause: dict[str, Any]) -> list[str]:
    """The clause's targetOperand values as strings (a lone string is one value, not its characters)."""
    operand = clause.get("targetOperand") or {}
    values = operand.get("values") if isinstance(operand, dict) else None
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values or []] if isinstance(values, list) else []


def _clause_matches(clause: dict[str, Any], obj: dict[str, Any]) -> bool:
    """A scoping filter clause: the source attribute's value against the clause's operand values, as the
    documentation says each operator reads (case-sensitive; "scoping filters return false if the value is null /
    empty", which IS NULL exists to ask; Greater_Than compares integers)."""
    from connector.mapping.expr.entra import Attribute, evaluate

    value = evaluate(Attribute(str(clause.get("sourceOperandName") or "")), obj)
    op = str(clause.get("operatorName") or "")
    if isinstance(value, list):
        # "Filtering is not supported for multi-valued attributes": only whether there is a value is told.
        return not value if op == "IS_NULL" else bool(value) if op == "IS_NOT_NULL" else False
    text = "" if value is None else ("True" if value is True else "False" if value is False else str(value))
    values = operand_values(clause)
    if op == "IS_NULL":
        return text == ""
    if text == "":
        return False  # every other operator, NOT EQUALS and NOT REGEX MATCH included
    if op == "IS_NOT_NULL":
        return True
    if op == "IS_TRUE":
        return text.lower() == "true"
    if op == "IS_FALSE":
        return text.lower() == "false"
    if op == "EQUALS":
        return text in values
    if op == "NOT_EQUALS":
        return text not in values
    if op == "&":  # the attribute's value is found in the given string
        return any(text in v for v in values)
    if op == "!&":
        return not any(text in v for v in values)
    if op == "Includes":  # the attribute's value contains the given string
        return any(v in text for v in values)
    if op == "ENDS_WITH":
        return any(text.endswith(v) for v in values)
    if op in ("Greater_Than", "Greater_Than_OR_EQUALS"):
        number = _integer(text)
        bounds = [b for b in (_integer(v) for v in values) if b is not None]
        if number is None or not bounds:
            return False
        return any(number > b if op == "Greater_Than" else number >= b for b in bounds)
    if op in ("REGEX_MATCH", "NOT_REGEX_MATCH"):
        hit = any(re.search(python_pattern(v), text) for v in values)
        return hit if op == "REGEX_MATCH" else not hit
    return False  # not reached: the schema PUT refuses other operators


def _in_filter_scope(scope: Any, obj: dict[str, Any]) -> bool:
    """Scoping filter: clauses in a group are ANDed, groups are ORed; no filter = everyone."""
    if not isinstance(scope, dict):
        return True
    groups = [g for g in (scope.get("categoryFilterGroups") or []) + (scope.get("groups") or [])
              + (scope.get("inputFilterGroups") or []) if isinstance(g, dict)]
    if not groups:
        return True
    return any(all(_clause_matches(c, obj) for c in g.get("clauses") or [] if isinstance(c, dict)) for g in groups)


class EntraEngine:
    def __init__(self, state: GraphState, *, timeout: float = 10.0) -> None:
        self.state = state
        self.timeout = timeout

    # -- credentials ------------------------------------------------------------------------------------

    def _check_base(self, base: str) -> None:
        if not base:
            raise CredentialCheckFailed("SystemForCrossDomainIdentityManagementCredentialValidationUnavailable",
                                        "The tenant URL (BaseAddress) is empty.")
        if not base.startswith(("http://", "https://")) or (base.startswith("http://") and not is_loopback(base)):
            raise CredentialCheckFailed(
                "SystemForCrossDomainIdentityManagementCredentialValidationUnavailable",
                f"The tenant URL must be an https URL: {base}",
            )

    def validate_credentials(self, base: str, token: str) -> None:
        """What Test Connection does: query a random user and group; both must answer 200 with a ListResponse."""
        self._check_base(base)
        scim = _Scim(base, token, self.timeout)
        try:
            probe = str(uuid.uuid4())
            scim.find("/Users", f"userName eq {_scim_string(probe)}")
            scim.find("/Groups", f"displayName eq {_scim_string(probe)}", exclude_members=True)
        except _ExportFailed as exc:
            code = exc.code
            if code != "SystemForCrossDomainIdentityManagementCredentialValidationUnauthorized":
                code = "SystemForCrossDomainIdentityManagementCredentialValidationUnavailable"
            raise CredentialCheckFailed(
                code,
                "You appear to have entered invalid credentials or the SCIM endpoint did not answer as expected. "
                f"Details: {exc.reason}",
            ) from exc
        finally:
            scim.close()

    # -- snapshots --------------------------------------------------------------------------------------

    def _snapshot(self, sp_id: str, job: SyncJob) -> _Snapshot:
        st = self.state
        with st.lock:
            secrets = st.sp_sync(sp_id).secrets
            schema = plain_copy(job.schema)
            snap = _Snapshot(
                sp=dict(st.service_principals.get(sp_id) or {"id": sp_id, "displayName": ""}),
                base=secrets.get("BaseAddress", ""),
                token=secrets.get("SecretToken", ""),
                sync_all=secrets.get("SyncAll", "false").lower() == "true",
                rules=None,
                users={k: dict(v) for k, v in st.users.items()},
                deleted={k: dict(v) for k, v in st.deleted_users.items()},
                groups={k: dict(v) for k, v in st.groups.items()},
                members={k: list(v) for k, v in st.members.items()},
                assigned=st.assigned_principals(sp_id),
            )
        snap.rules = compile_rules(schema)
        return snap

    @staticmethod
    def _user_profile(user: dict[str, Any], in_scope: bool) -> dict[str, Any]:
        profile = dict(user)
        profile["objectId"] = user["id"]
        # Entra: IsSoftDeleted is true for unassigned, out-of-scope, deleted or disabled users.
        profile["IsSoftDeleted"] = (not in_scope) or user.get("accountEnabled") is False
        return profile

    def _scope(self, snap: _Snapshot) -> tuple[set[str], set[str]]:
        """(user ids, group ids) in scope: assigned users and direct user members of assigned groups."""
        rules = snap.rules
        if snap.sync_all:
            groups = set(snap.groups)
            users = set(snap.users)
        else:
            groups = {g for g in snap.assigned if g in snap.groups}
            users = {u for u in snap.assigned if u in snap.users}
            for gid in groups:
                users.update(m for m in snap.members.get(gid, []) if m in snap.users)
        if rules is not None:
            users = {u for u in users if _in_filter_scope(rules.user_scope, self._user_profile(snap.users[u], True))}
            groups = {g for g in groups if _in_filter_scope(rules.group_scope, {**snap.groups[g],
                                                                               "objectId": g})}
            if not rules.users_enabled:
                users = set()
            if not rules.groups_enabled:
                groups = set()
        return users, groups

    # -- evaluation -------------------------------------------------------------------------------------

    @staticmethod
    def _evaluate(mappings: list[_Mapping], profile: dict[str, Any]) -> dict[str, Any]:
        from connector.mapping.expr import entra as entra_expr

        out: dict[str, Any] = {}
        for m in mappings:
            try:
                value = entra_expr.evaluate(m.expr, profile)
            except entra_expr.ExpressionError:
                value = None
            if value is None or value == "" or value == []:
                continue  # Entra does not flow null values
            if isinstance(value, bool):
                value = "True" if value else "False"
            out[m.target] = value
        return out

    # -- users ------------------------------------------------------------------------------------------

    def _match(self, scim: _Scim, mappings: list[_Mapping], desired: dict[str, Any], path: str,
               exclude_members: bool = False) -> dict[str, Any] | None:
        for m in sorted((m for m in mappings if m.matching > 0), key=lambda m: m.matching):
            value = desired.get(m.target)
            if value is None:
                continue
            found = scim.find(path, f"{m.target} eq {_scim_string(str(value))}", exclude_members=exclude_members)
            if found is not None:
                return found
        return None

    def _build_user(self, desired: dict[str, Any], mappings: list[_Mapping]) -> dict[str, Any]:
        from connector.mapping import scim_paths

        body: dict[str, Any] = {"schemas": [CORE_USER, ENTERPRISE_USER]}
        booleans = {m.target for m in mappings if m.boolean}
        for target, value in desired.items():
            if target in booleans:
                value = _to_bool(value)  # POST carries real booleans; only PATCH sends "False" strings
            scim_paths.set_value(body, target, value)
        for email in body.get("emails") or []:
            if isinstance(email, dict) and email.get("type") == "work":
                email["primary"] = True
        body["meta"] = {"resourceType": "User"}
        body["roles"] = []
        return body

    def _ops(self, desired: dict[str, Any], current: dict[str, Any], mappings: list[_Mapping]
             ) -> tuple[list[dict[str, Any]], list[tuple[str, Any, Any]]]:
        from connector.mapping import scim_paths

        ops: list[dict[str, Any]] = []
        changes: list[tuple[str, Any, Any]] = []
        for m in mappings:
            if m.add_only or m.target not in desired:
                continue
            value = desired[m.target]
            old = scim_paths.get_value(current, m.target)
            if _same(value, old, m.boolean):
                continue
            op = "Replace" if old not in (None, "", []) else "Add"
            ops.append({"op": op, "path": m.target, "value": value})
            changes.append((m.target, old, value))
        return ops, changes

    def _export_user(self, scim: _Scim, rules: _Rules, user: dict[str, Any], desired: dict[str, Any],
                     escrow: Escrow | None) -> _Outcome:
        name = user.get("userPrincipalName") or user["id"]
        steps = [_step("EntryImport", "import", "success", f"Retrieved User '{name}' from {SOURCE_DIRECTORY}")]
        current: dict[str, Any] | None = None
        if escrow is not None:
            resp = scim.request("GET", f"/Users/{escrow.target_id}")
            if resp.status_code == 200:
                current = resp.json()
            elif resp.status_code != 404:
                raise _ExportFailed(_scim_code(resp.status_code),
                                    f"HTTP {resp.status_code} for GET /Users/{escrow.target_id}", resp.status_code)
        if current is None:
            current = self._match(scim, rules.users, desired, "/Users")
        wants_active = _to_bool(desired.get("active", "True")) is not False
        if current is None:
            steps.append(_step("EntryImportObjectNotFound", "matching", "success",
                               f"User '{name}' was not found in {TARGET_DIRECTORY}"))
            if not wants_active:
                steps.append(_step("EntrySynchronizationSkipped", "export", "skipped",
                                   "The user is not active and does not exist in the target: nothing to do."))
                return _Outcome("other", "skipped", steps=steps, reason="NotEffectivelyEntitled")
            if "Add" not in rules.user_flows:
                return _action_off(steps, "User", name, "Create")
            created = scim.checked("POST", "/Users", body=self._build_user(desired, rules.users))
            target_id = str((created or {}).get("id") or "")
            steps.append(_step("EntryExportAdd", "export", "success",
                               f"User '{name}' was created in {TARGET_DIRECTORY}"))
            return _Outcome("create", "success", target_id=target_id, exports=1,
                            changes=[(t, None, v) for t, v in desired.items()], steps=steps)
        target_id = str(current.get("id") or "")
        steps.append(_step("EntryImportObjectFound", "matching", "success",
                           f"Retrieved '{name}' from {TARGET_DIRECTORY}"))
        ops, changes = self._ops(desired, current, rules.users)
        if not ops:
            steps.append(_step("EntrySynchronizationSkip", "export", "skipped",
                               "The state of the user in both the source and target systems already match."))
            return _Outcome("other", "skipped", target_id=target_id, steps=steps, reason="RedundantExport")
        if "Update" not in rules.user_flows:
            return _action_off(steps, "User", name, "Update")  # no target id: the escrow keeps what was sent
        scim.checked("PATCH", f"/Users/{target_id}", body={"schemas": [PATCH_OP], "Operations": ops})
        disabling = any(op["path"] == "active" and _to_bool(op["value"]) is False for op in ops)
        action = "disable" if disabling and len(ops) == 1 else "update"
        steps.append(_step("EntryExportUpdate", "export", "success",
                           f"User '{name}' was updated in {TARGET_DIRECTORY}"))
        return _Outcome(action, "success", target_id=target_id, changes=changes, steps=steps, exports=1)

    def _disable(self, scim: _Scim, escrow: Escrow) -> _Outcome:
        resp = scim.request("PATCH", f"/Users/{escrow.target_id}", body={
            "schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
        if resp.status_code == 404:
            return _Outcome("disable", "skipped", target_id=escrow.target_id, reason="TargetObjectNotFound")
        if resp.status_code >= 400:
            raise _ExportFailed(_scim_code(resp.status_code),
                                f"HTTP {resp.status_code} for PATCH /Users/{escrow.target_id}", resp.status_code)
        return _Outcome("disable", "success", target_id=escrow.target_id, changes=[("active", "True", "False")],
                        exports=1, steps=[_step("EntryExportUpdateSoftDelete", "export", "success",
                                                "The user was disabled in the target (out of scope).")])

    # -- groups -----------------------------------------------------------------------------------------

    def _export_group(self, scim: _Scim, rules: _Rules, group: dict[str, Any], desired: dict[str, Any],
                      escrow: Escrow | None) -> _Outcome:
        name = group.get("displayName") or group["id"]
        steps = [_step("EntryImport", "import", "success", f"Retrieved Group '{name}' from {SOURCE_DIRECTORY}")]
        current: dict[str, Any] | None = None
        if escrow is not None:
            resp = scim.request("GET", f"/Groups/{escrow.target_id}", params={"excludedAttributes": "members"})
            if resp.status_code == 200:
                current = resp.json()
            elif resp.status_code != 404:
                raise _ExportFailed(_scim_code(resp.status_code),
                                    f"HTTP {resp.status_code} for GET /Groups/{escrow.target_id}", resp.status_code)
            else:
                escrow.members.clear()  # the group is gone from the target; its members must be added again
        if current is None:
            current = self._match(scim, rules.groups, desired, "/Groups", exclude_members=True)
        if current is None:
            from connector.mapping import scim_paths

            if "Add" not in rules.group_flows:
                return _action_off(steps, "Group", name, "Create")

            body: dict[str, Any] = {"schemas": [CORE_GROUP, AD_GROUP]}
            for target, value in desired.items():
                scim_paths.set_value(body, target, value)
            body["meta"] = {"resourceType": "Group"}
            created = scim.checked("POST", "/Groups", body=body)
            steps.append(_step("EntryExportAdd", "export", "success",
                               f"Group '{name}' was created in {TARGET_DIRECTORY}"))
            return _Outcome("create", "success", target_id=str((created or {}).get("id") or ""), exports=1,
                            changes=[(t, None, v) for t, v in desired.items()], steps=steps)
        target_id = str(current.get("id") or "")
        ops, changes = self._ops(desired, current, rules.groups)
        if not ops:
            return _Outcome("other", "skipped", target_id=target_id, steps=steps, reason="RedundantExport")
        if "Update" not in rules.group_flows:
            return _action_off(steps, "Group", name, "Update", target_id)
        scim.checked("PATCH", f"/Groups/{target_id}", body={"schemas": [PATCH_OP], "Operations": ops})
        steps.append(_step("EntryExportUpdate", "export", "success",
                           f"Group '{name}' was updated in {TARGET_DIRECTORY}"))
        return _Outcome("update", "success", target_id=target_id, changes=changes, steps=steps, exports=1)

    @staticmethod
    def _sync_members(scim: _Scim, job: SyncJob, target_id: str, escrow: Escrow, desired: dict[str, str],
                      *, remove: bool = True) -> int:
        """Bring the exported membership to `desired` (source id -> target id). Returns exports sent."""
        exports = 0
        adds = [sid for sid in desired if sid not in escrow.members]
        for i in range(0, len(adds), MEMBER_BATCH):
            batch = adds[i:i + MEMBER_BATCH]
            value = [{"$ref": None, "value": desired[sid]} for sid in batch]
            scim.checked("PATCH", f"/Groups/{target_id}", body={
                "schemas": [PATCH_OP], "Operations": [{"op": "Add", "path": "members", "value": value}]})
            escrow.members.update(batch)
            exports += 1
        if remove:
            gone = [sid for sid in escrow.members if sid not in desired]
            for sid in gone:
                member = job.escrows.get(sid)
                prior = member.target_id if member else None
                if not prior:
                    escrow.members.discard(sid)
                    continue
                scim.checked("PATCH", f"/Groups/{target_id}", body={
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "Remove", "path": "members", "value": [{"value": prior}]}]})
                escrow.members.discard(sid)
                exports += 1
        return exports

    # -- cycles -----------------------------------------------------------------------------------------

    def run_cycle(self, sp_id: str, job: SyncJob) -> None:
        """One full pass over the scope; updates job status and the provisioning log."""
        with job.cycle_lock:
            began = now_iso()
            cycle_id = str(uuid.uuid4())
            snap = self._snapshot(sp_id, job)
            counts = _Counts()
            error: dict[str, Any] | None = None
            try:
                if snap.rules is None:
                    raise CredentialCheckFailed("SchemaInvalid", "The job's schema has no rule for User objects.")
                self._check_base(snap.base)
                scim = _Scim(snap.base, snap.token, self.timeout)
                try:
                    big = len(snap.users) >= FREEZE_FROM_USERS
                    with _gc_spares_long_lived() if big else contextlib.nullcontext():
                        self._cycle(sp_id, job, snap, scim, cycle_id, counts)
                finally:
                    scim.close()
                if counts.failures and not counts.exported:
                    # Nothing got through (endpoint down, every request refused): a complete failure, which
                    # counts towards quarantine; a few failed entries only make EntryLevelErrors.
                    error = {"code": counts.failures[0], "tenantActionable": True,
                             "message": f"All {len(counts.failures)} exports of the cycle failed."}
            except CredentialCheckFailed as exc:
                error = {"code": exc.code, "message": exc.message, "tenantActionable": True}
            except _ExportFailed as exc:  # a failure that stops the whole cycle (auth, connection)
                error = {"code": exc.code, "message": exc.reason, "tenantActionable": True}
            self._record(job, began, counts, error)

    def _cycle(self, sp_id: str, job: SyncJob, snap: _Snapshot, scim: _Scim, cycle_id: str,
               counts: _Counts) -> None:
        rules = snap.rules
        assert rules is not None
        user_ids, group_ids = self._scope(snap)
        counts.entitled = len(user_ids) + len(group_ids)
        for uid in sorted(user_ids, key=lambda u: snap.users[u]["userPrincipalName"].lower()):
            user = snap.users[uid]
            counts.imported += 1
            desired = self._evaluate(rules.users, self._user_profile(user, True))
            escrow = job.escrows.get(uid)
            if escrow is not None and escrow.exported == desired:
                continue  # nothing changed in Entra since the last export
            if counts.imported % FREEZE_EVERY == 0:
                _freeze_again()
            self._run_one(sp_id, job, snap, cycle_id, counts, "User", user, lambda u=user, d=desired, e=escrow:
                          self._export_user(scim, rules, u, d, e), desired)
        for uid, escrow in list(job.escrows.items()):
            # Delete unticked in Target Object Actions: Entra never disables a user who left the scope.
            if escrow.exported.get("__kind") == "Group" or uid in user_ids or not escrow.active \
                    or "Delete" not in rules.user_flows:
                continue
            gone = snap.users.get(uid) or snap.deleted.get(uid)
            if gone is None:
                continue
            desired = {**escrow.exported, "active": "False"}
            self._run_one(sp_id, job, snap, cycle_id, counts, "User", gone,
                          lambda e=escrow: self._disable(scim, e), desired)
        for gid in sorted(group_ids, key=lambda g: str(snap.groups[g].get("displayName")).lower()):
            group = snap.groups[gid]
            counts.imported += 1
            desired = self._evaluate(rules.groups, {**group, "objectId": gid})
            escrow = job.escrows.get(gid)
            member_targets = self._member_targets(job, snap, gid, user_ids) if rules.group_members else {}
            if escrow is not None and escrow.exported == {**desired, "__kind": "Group"} \
                    and set(member_targets) == escrow.members:
                continue
            self._run_group(sp_id, job, snap, cycle_id, counts, scim, rules, group, desired, member_targets)
        for gid, escrow in list(job.escrows.items()):
            if escrow.exported.get("__kind") != "Group" or gid in group_ids or "Delete" not in rules.group_flows:
                continue
            group = snap.groups.get(gid) or {"id": gid, "displayName": escrow.exported.get("displayName")}
            self._run_one(sp_id, job, snap, cycle_id, counts, "Group", group,
                          lambda e=escrow, g=gid: self._delete_group(scim, job, g, e), escrow.exported,
                          remember=False)

    def _member_targets(self, job: SyncJob, snap: _Snapshot, gid: str, user_ids: set[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for mid in snap.members.get(gid, []):
            esc = job.escrows.get(mid)
            if mid in user_ids and esc is not None and esc.active and esc.target_id:
                out[mid] = esc.target_id
        return out

    def _delete_group(self, scim: _Scim, job: SyncJob, gid: str, escrow: Escrow) -> _Outcome:
        resp = scim.request("DELETE", f"/Groups/{escrow.target_id}")
        if resp.status_code >= 400 and resp.status_code != 404:
            raise _ExportFailed(_scim_code(resp.status_code),
                                f"HTTP {resp.status_code} for DELETE /Groups/{escrow.target_id}", resp.status_code)
        with self.state.lock:
            job.escrows.pop(gid, None)
        return _Outcome("delete", "success", target_id=escrow.target_id, exports=1,
                        steps=[_step("EntryExportDelete", "export", "success",
                                     "The group left the provisioning scope and was deleted in the target.")])

    def _run_group(self, sp_id: str, job: SyncJob, snap: _Snapshot, cycle_id: str, counts: _Counts,
                   scim: _Scim, rules: _Rules, group: dict[str, Any], desired: dict[str, Any],
                   member_targets: dict[str, str], *, remove: bool = True) -> _Outcome:
        gid = group["id"]

        def work() -> _Outcome:
            escrow = job.escrows.get(gid)
            outcome = self._export_group(scim, rules, group, desired, escrow)
            if not outcome.target_id:
                return outcome  # not created (Create unticked)
            if outcome.reason == "ActionNotEnabled" or (outcome.action != "create"
                                                        and "Update" not in rules.group_flows):
                return outcome  # Update unticked: neither its attributes nor its members change
            if escrow is None or escrow.target_id != outcome.target_id:
                escrow = Escrow(target_id=outcome.target_id or "")
            escrow.exported = {**desired, "__kind": "Group"}
            with self.state.lock:
                job.escrows[gid] = escrow
            if rules.group_members and escrow.target_id:
                sent = self._sync_members(scim, job, escrow.target_id, escrow, member_targets, remove=remove)
                if sent:
                    outcome.exports += sent
                    outcome.changes.append(("members", None, f"{len(member_targets)} members"))
                    if outcome.action == "other":
                        outcome.action, outcome.status = "update", "success"
            return outcome

        return self._run_one(sp_id, job, snap, cycle_id, counts, "Group", group, work, desired, remember=False)

    def _run_one(self, sp_id: str, job: SyncJob, snap: _Snapshot, cycle_id: str, counts: _Counts, kind: str,
                 obj: dict[str, Any], work: Any, desired: dict[str, Any], *, remember: bool = True,
                 initiator: str = "system") -> _Outcome:
        started = time.monotonic()
        try:
            outcome: _Outcome = work()
        except _ExportFailed as exc:
            if exc.status in (401, 403):
                raise  # the endpoint refuses our token: the whole cycle fails
            outcome = _Outcome("other", "failure", error_code=exc.code, reason=exc.reason,
                               steps=[_step("EntryExportFailed", "export", "failure", exc.reason)])
            counts.failures.append(exc.code)
        if remember and outcome.status != "failure" and kind == "User" and outcome.target_id:
            active = _to_bool(desired.get("active", "True")) is not False
            with self.state.lock:
                job.escrows[obj["id"]] = Escrow(target_id=outcome.target_id, exported=dict(desired), active=active)
        if outcome.status == "success":
            counts.exported += 1
            counts.exports += outcome.exports
        if outcome.status != "skipped" or outcome.reason != "RedundantExport":
            self.state.add_log(self._log_entry(sp_id, job, snap, cycle_id, kind, obj, outcome,
                                               int((time.monotonic() - started) * 1000), initiator))
        return outcome

    def _record(self, job: SyncJob, began: str, counts: _Counts, error: dict[str, Any] | None) -> None:
        with self.state.lock:
            status = job.status
            if error is not None:
                state = "Failed"
            elif counts.failures:
                state = "EntryLevelErrors"
            else:
                state = "Succeeded"
            execution = {
                "activityIdentifier": str(uuid.uuid4()),
                "countEntitled": counts.entitled,
                "countEntitledForProvisioning": counts.entitled,
                "countEscrowed": len(counts.failures),
                "countEscrowedRaw": len(counts.failures),
                "countExported": counts.exported,
                "countExports": counts.exports,
                "countImported": counts.imported,
                "countImportedDeltas": counts.imported,
                "countImportedReferenceDeltas": 0,
                "error": error,
                "state": state,
                "timeBegan": began,
                "timeEnded": now_iso(),
            }
            status["lastExecution"] = execution
            users = sum(1 for e in job.escrows.values() if e.exported.get("__kind") != "Group")
            groups = len(job.escrows) - users
            status["synchronizedEntryCountByType"] = [
                {"key": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": users},
                {"key": "urn:ietf:params:scim:schemas:core:2.0:Group", "value": groups},
            ]
            status["progress"] = [{"completedUnits": counts.entitled, "totalUnits": counts.entitled,
                                   "units": "Objects", "progressObservationDateTime": execution["timeEnded"]}]
            if error is None:
                status["countSuccessiveCompleteFailures"] = 0
                status["lastSuccessfulExecution"] = execution
                if counts.exports:
                    status["lastSuccessfulExecutionWithExports"] = execution
                if state == "Succeeded":
                    if status["steadyStateFirstAchievedTime"].startswith("0001"):
                        status["steadyStateFirstAchievedTime"] = execution["timeEnded"]
                    status["steadyStateLastAchievedTime"] = execution["timeEnded"]
                return
            status["countSuccessiveCompleteFailures"] += 1
            if status["countSuccessiveCompleteFailures"] >= QUARANTINE_AFTER and status["code"] != "Quarantine":
                began_q = now_iso()
                status["code"] = "Quarantine"
                status["quarantine"] = {
                    "currentBegan": began_q, "nextAttempt": began_q,
                    "reason": "EncounteredQuarantineException", "seriesBegan": began_q,
                    "seriesCount": status["countSuccessiveCompleteFailures"], "error": error,
                }

    # -- provisioning log ---------------------------------------------------------------------------------

    def _log_entry(self, sp_id: str, job: SyncJob, snap: _Snapshot, cycle_id: str, kind: str,
                   obj: dict[str, Any], outcome: _Outcome, duration_ms: int, initiator: str) -> dict[str, Any]:
        name = obj.get("userPrincipalName") or obj.get("displayName") or obj.get("id")
        error_info = None
        if outcome.status == "failure":
            error_info = {"errorCode": outcome.error_code, "reason": outcome.reason, "additionalDetails": None,
                          "errorCategory": "nonServiceFailure", "recommendedAction": None}
        target_type = ENTERPRISE_USER if kind == "User" else CORE_GROUP
        steps = [_step("EntrySynchronizationScoping", "scoping", "success",
                       f"Determine if {kind} is in scope by evaluating against each scoping filter")]
        return {
            "id": f"{cycle_id[:8]}-{uuid.uuid4()}",
            "activityDateTime": now_iso(),
            "tenantId": self.state.tenant_id,
            "jobId": job.id,
            "cycleId": cycle_id,
            "changeId": str(uuid.uuid4()),
            "durationInMilliseconds": duration_ms,
            "initiatedBy": {"id": "", "displayName": "Azure AD Provisioning Service" if initiator == "system"
                            else "Provision on demand", "initiatorType": initiator},
            "provisioningAction": outcome.action,
            "provisioningStatusInfo": {"status": outcome.status, "errorInformation": error_info},
            "provisioningSteps": outcome.steps[:1] + steps + outcome.steps[1:],
            "modifiedProperties": [
                {"displayName": t, "oldValue": None if o is None else str(o), "newValue": None if n is None else str(n)}
                for t, o, n in outcome.changes
            ],
            "servicePrincipal": {"id": sp_id, "displayName": snap.sp.get("displayName")},
            "sourceIdentity": {"id": obj.get("id"), "displayName": name, "identityType": kind, "details": {}},
            "targetIdentity": {"id": outcome.target_id or "", "displayName": name, "identityType": target_type,
                               "details": {}},
            "sourceSystem": {"id": None, "displayName": SOURCE_DIRECTORY, "details": {}},
            "targetSystem": {"id": None, "displayName": TARGET_DIRECTORY,
                             "details": {"ApplicationId": snap.sp.get("appId"), "ServicePrincipalId": sp_id,
                                         "ServicePrincipalDisplayName": snap.sp.get("displayName")}},
        }

    # -- provision on demand --------------------------------------------------------------------------------

    def _on_demand_prepare(self, sp_id: str, job: SyncJob) -> tuple[_Snapshot, _Scim]:
        snap = self._snapshot(sp_id, job)
        if snap.rules is None:
            raise CredentialCheckFailed("SchemaInvalid", "The job's schema has no rule for User objects.")
        self._check_base(snap.base)
        return snap, _Scim(snap.base, snap.token, self.timeout)

    def _on_demand_user(self, sp_id: str, job: SyncJob, snap: _Snapshot, scim: _Scim, cycle_id: str,
                        counts: _Counts, uid: str, user_ids: set[str]) -> dict[str, Any]:
        rules = snap.rules
        assert rules is not None
        user = snap.users.get(uid)
        if user is None:
            outcome = _Outcome("other", "failure", error_code="ObjectNotFound",
                               reason=f"The user '{uid}' was not found in {SOURCE_DIRECTORY}.")
            return _result_json(outcome, {"id": uid}, "User", snap)
        in_scope = uid in user_ids
        desired = self._evaluate(rules.users, self._user_profile(user, in_scope))
        escrow = job.escrows.get(uid)
        if not in_scope and (escrow is None or not escrow.active):
            outcome = _Outcome("other", "skipped", reason="NotEffectivelyEntitled", steps=[_step(
                "EntrySynchronizationSkipped", "scoping", "skipped",
                f"The User '{user['userPrincipalName']}' will be skipped: it is not assigned to the application "
                "or is out of scope.")])
            self.state.add_log(self._log_entry(sp_id, job, snap, cycle_id, "User", user, outcome, 0, "user"))
            return _result_json(outcome, user, "User", snap)
        outcome = self._run_one(sp_id, job, snap, cycle_id, counts, "User", user,
                                lambda: self._export_user(scim, rules, user, desired, None), desired,
                                initiator="user")
        return _result_json(outcome, user, "User", snap)

    def provision_on_demand_users(self, sp_id: str, job: SyncJob, user_ids: list[str]) -> tuple[str, str]:
        with job.cycle_lock:
            snap, scim = self._on_demand_prepare(sp_id, job)
            try:
                scope_users, _ = self._scope(snap)
                cycle_id, counts = str(uuid.uuid4()), _Counts()
                results = [self._on_demand_user(sp_id, job, snap, scim, cycle_id, counts, uid, scope_users)
                           for uid in user_ids]
            except _ExportFailed as exc:
                results = [_result_json(_Outcome("other", "failure", error_code=exc.code, reason=exc.reason),
                                        {"id": uid}, "User", snap) for uid in user_ids]
            finally:
                scim.close()
        return _key_json(results), json.dumps(results[0] if len(results) == 1 else results)

    def provision_on_demand_group(self, sp_id: str, job: SyncJob, group_id: str,
                                  member_ids: list[str]) -> tuple[str, str]:
        with job.cycle_lock:
            snap, scim = self._on_demand_prepare(sp_id, job)
            rules = snap.rules
            assert rules is not None
            results: list[dict[str, Any]] = []
            try:
                scope_users, scope_groups = self._scope(snap)
                cycle_id, counts = str(uuid.uuid4()), _Counts()
                group = snap.groups.get(group_id)
                if group is None:
                    outcome = _Outcome("other", "failure", error_code="ObjectNotFound",
                                       reason=f"The group '{group_id}' was not found in {SOURCE_DIRECTORY}.")
                    results.append(_result_json(outcome, {"id": group_id}, "Group", snap))
                elif group_id not in scope_groups:
                    outcome = _Outcome("other", "skipped", reason="NotEffectivelyEntitled")
                    results.append(_result_json(outcome, group, "Group", snap))
                else:
                    direct = set(snap.members.get(group_id, []))
                    for mid in member_ids:
                        if mid not in direct:
                            outcome = _Outcome("other", "failure", error_code="NotAGroupMember",
                                               reason=f"'{mid}' is not a direct member of the group.")
                            results.append(_result_json(outcome, snap.users.get(mid) or {"id": mid}, "User", snap))
                            continue
                        results.append(self._on_demand_user(sp_id, job, snap, scim, cycle_id, counts, mid,
                                                            scope_users))
                    desired = self._evaluate(rules.groups, {**group, "objectId": group_id})
                    wanted = self._member_targets(job, snap, group_id, scope_users)
                    wanted = {k: v for k, v in wanted.items() if k in member_ids}
                    outcome = self._run_group(sp_id, job, snap, cycle_id, counts, scim, rules, group, desired,
                                              wanted, remove=False)
                    results.insert(0, _result_json(outcome, group, "Group", snap))
            except _ExportFailed as exc:
                results.append(_result_json(_Outcome("other", "failure", error_code=exc.code, reason=exc.reason),
                                            {"id": group_id}, "Group", snap))
            finally:
                scim.close()
        return _key_json(results), json.dumps(results)


def _off_step(kind: str, name: str, action: str) -> dict[str, Any]:
    return _step("EntrySynchronizationSkipped", "export", "skipped",
                 f"The {kind} '{name}' was not exported: the {action} action is not enabled for {kind} objects "
                 "(Target Object Actions).")


def _action_off(steps: list[dict[str, Any]], kind: str, name: str, action: str,
                target_id: str | None = None) -> _Outcome:
    """An export the object mapping's flowTypes do not allow: skipped, logged, nothing sent."""
    return _Outcome("other", "skipped", target_id=target_id, reason="ActionNotEnabled",
                    steps=[*steps, _off_step(kind, name, action)])


def _step(name: str, kind: str, status: str, description: str) -> dict[str, Any]:
    return {"name": name, "provisioningStepType": kind, "status": status, "description": description,
            "details": {}}


def _result_json(outcome: _Outcome, obj: dict[str, Any], kind: str, snap: _Snapshot) -> dict[str, Any]:
    """One subject's result in provisionOnDemand's `value` (the shape of Graph's documented example)."""
    status = {"success": "Success", "failure": "Failure", "skipped": "Skipped"}[outcome.status]
    now = now_iso()
    return {
        "action": outcome.action.capitalize() if outcome.action != "other" else "Other",
        "changeId": str(uuid.uuid4()),
        "startTime": now,
        "endTime": now,
        "modifiedProperties": [
            {"displayName": t, "oldValue": None if o is None else str(o), "newValue": None if n is None else str(n)}
            for t, o, n in outcome.changes
        ],
        "provisioningSteps": [
            {"name": s["name"], "type": s["provisioningStepType"].capitalize(), "status": s["status"].capitalize(),
             "description": s["description"], "timestamp": now, "details": s["details"]}
            for s in outcome.steps
        ],
        "reportableIdentifier": obj.get("userPrincipalName") or obj.get("displayName") or obj.get("id"),
        "statusInfo": {"status": status, "errorCode": outcome.error_code if outcome.status != "skipped" else None,
                       "reason": outcome.reason, "additionalDetails": None, "errorCategory": None,
                       "recommendedAction": None},
        "sourceIdentity": {"id": obj.get("id"), "type": kind, "displayName": obj.get("displayName"),
                           "details": None},
        "sourceSystem": {"id": None, "name": SOURCE_DIRECTORY, "details": None},
        "targetIdentity": {"id": outcome.target_id, "type": ENTERPRISE_USER if kind == "User" else CORE_GROUP,
                           "displayName": None, "details": None},
        "targetSystem": {"id": None, "name": TARGET_DIRECTORY,
                         "details": {"ServicePrincipalId": snap.sp.get("id")}},
    }


def _key_json(results: list[dict[str, Any]]) -> str:
    statuses = [r["statusInfo"]["status"] for r in results]
    overall = "Failure" if "Failure" in statuses else "Success" if "Success" in statuses else "Skipped"
    first_bad = next((r for r in results if r["statusInfo"]["status"] != "Success"), None)
    details: dict[str, Any] = {}
    if first_bad is not None and overall != "Success":
        details = {"errorCode": first_bad["statusInfo"].get("errorCode") or first_bad["statusInfo"].get("reason"),
                   "errorMessage": first_bad["statusInfo"].get("reason")}
    return json.dumps({"result": overall, "details": details})
