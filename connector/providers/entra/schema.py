"""Merge the YAML attribute mappings into an Entra synchronization schema (raw Graph JSON). Pure: no I/O.

We own, for each object mapping the YAML gives mappings, what Entra provisions of that object at all, as the seed
sets it up: enabled (the portal's Enabled: No sends none of its objects), no scoping filter (`scope`, the portal's
Source Object Scope: a clause added there silently stops the users it excludes from being provisioned; who is
provisioned is decided by assignment, azure.assign_groups) and every target object action (`flowTypes` "Add,
Update, Delete": with Delete unticked Entra never disables a leaver in Astro). These diffs are `limits`: drift
reports them as provisioning_limited, not as a mapping difference. And, per YAML target, an attributeMapping's `source`, `matchingPriority`, `flowType` and `defaultValue`, and
which attributeMappings a User or Group object mapping has: the mapping file is the source of truth for what Entra
sends. The non-gallery template maps ~20 user attributes (title, emails, addresses, phone numbers, the enterprise
extension...) that Astro does not document; an Astro that keeps only what it documents refuses them (RFC 7644
400), and every user's export fails. So a template mapping whose target the YAML does not name is removed, except
`active` (KEPT): it is how Entra deprovisions (Switch([IsSoftDeleted], ...) sends active=false), which the mapping
file does not spell out; removed (the portal's Delete), the template's is put back. An object the YAML gives no mappings (no `groups:`) is left as it is.

Everything else in the schema (directories and their attribute definitions, metadata, other rules, the object
mappings of objects the YAML does not map, flowBehavior, unknown fields) is kept exactly as Graph returned it: the schema is replaced
whole by PUT, so anything we dropped would be deleted in the tenant.

Expressions are compared by their canonical text (entra_expr.format), so a tree Graph wrote with other parameter
keys or spacing is not "changed" on every run.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from connector.errors import RemoteError
from connector.mapping.expr import entra as entra_expr
from connector.mapping.model import ApplyOn, AttributeMapping, MappingFile

OBJECTS = ("User", "Group")
FLOW_TYPE = {ApplyOn.CREATE_AND_UPDATE: "Always", ApplyOn.CREATE_ONLY: "ObjectAddOnly"}
# Template mappings kept though the YAML does not name them: Entra's deprovisioning (active=false on soft delete)
# and a Group's members (without it Entra stops syncing memberships, and nothing would say so).
KEPT: dict[str, frozenset[str]] = {"User": frozenset({"active"}), "Group": frozenset({"members"})}


@dataclass(frozen=True)
class MappingDiff:
    """One attributeMapping the merge adds or changes."""

    object_name: str  # "User" | "Group"
    target: str
    before: str | None  # canonical expression before; None = the mapping did not exist
    after: str  # "" when removed
    changes: tuple[str, ...] = ()  # other owned fields that change, e.g. "matching 0 -> 1"
    removed: tuple[str, ...] = ()  # the targets of template mappings the YAML does not name, removed
    # What Entra provisions of the object at all (enabled, scoping filter, target object actions), not how an
    # attribute maps: drift's provisioning_limited.
    limits: bool = False

    @property
    def key(self) -> str:
        return f"{self.object_name} {self.target}"

    def describe(self) -> str:
        if self.removed:
            n = len(self.removed)
            return (f"remove {n} mapping{'s' * (n != 1)} the mapping file does not name (Entra would send "
                    f"{'them' if n != 1 else 'it'} to Astro): {', '.join(self.removed)}")
        if self.before is None:
            text = f"add {self.after}"
        elif self.before != self.after:
            text = f"{self.before} -> {self.after}"
        else:
            text = self.after
        return text + "".join(f"; {c}" for c in self.changes)


def _shape_error(message: str) -> RemoteError:
    return RemoteError(message, service="graph", endpoint="synchronization schema", status=0, code="SchemaShape",
                       hint="the job's schema is not a SCIM provisioning schema; was the job created from "
                            "templateId 'scim'?")


def find_rule(schema: dict[str, Any]) -> dict[str, Any]:
    """The rule that provisions users: its objectMappings have sourceObjectName == "User".

    The source directory is "Azure Active Directory" in older tenants and "Microsoft Entra ID" in newer ones, so
    the rule is found by what it maps, never by directory name.
    """
    for rule in schema.get("synchronizationRules") or []:
        for om in rule.get("objectMappings") or []:
            if str(om.get("sourceObjectName", "")).lower() == "user":
                return rule  # type: ignore[no-any-return]
    raise _shape_error("the synchronization schema has no rule with a User object mapping")


def object_mapping(rule: dict[str, Any], source_object: str) -> dict[str, Any] | None:
    for om in rule.get("objectMappings") or []:
        if str(om.get("sourceObjectName", "")).lower() == source_object.lower():
            return om  # type: ignore[no-any-return]
    return None


def canonical(source: Any) -> str:
    """Canonical text of an attributeMappingSource (falls back to its raw expression if we cannot parse it)."""
    if not isinstance(source, dict):
        return ""
    try:
        return entra_expr.format(entra_expr.from_source_tree(source))
    except entra_expr.ExpressionError:
        return str(source.get("expression") or source.get("name") or "")


def _as_read(source: dict[str, Any], like: Any) -> dict[str, Any]:
    """`source` without its expression text when `like` (what Graph returned) has none: a tree alone does not say
    how a constant was written (1 or "1", vbTextCompare or "vbTextCompare"), so the two are compared alike, and
    Left([givenName], 1) was not a change on every plan."""
    if isinstance(like, dict) and isinstance(like.get("expression"), str) and like["expression"].strip():
        return source

    def bare(tree: Any) -> Any:
        if not isinstance(tree, dict):
            return tree
        out = {k: v for k, v in tree.items() if k != "expression"}
        out["parameters"] = [{**p, "value": bare(p.get("value"))} if isinstance(p, dict) else p
                             for p in tree.get("parameters") or []]
        return out

    return bare(source)  # type: ignore[no-any-return]


def desired_source(m: AttributeMapping) -> dict[str, Any]:
    return entra_expr.to_source_tree(entra_expr.parse(m.source or ""))


def _target_attribute_defined(schema: dict[str, Any], rule: dict[str, Any], om: dict[str, Any], target: str) -> bool:
    directory = str(rule.get("targetDirectoryName", "")).lower()
    obj_name = str(om.get("targetObjectName", "")).lower()
    for d in schema.get("directories") or []:
        if str(d.get("name", "")).lower() != directory:
            continue
        for obj in d.get("objects") or []:
            if str(obj.get("name", "")).lower() == obj_name:
                return any(str(a.get("name", "")).lower() == target.lower() for a in obj.get("attributes") or [])
    return True  # no definition to check against: leave the directory alone


def _define_target_attribute(schema: dict[str, Any], rule: dict[str, Any], om: dict[str, Any], target: str) -> None:
    """Entra refuses a mapping to an attribute its target object does not list (the portal's "Edit attribute
    list"); add a plain string definition."""
    directory = str(rule.get("targetDirectoryName", "")).lower()
    obj_name = str(om.get("targetObjectName", "")).lower()
    for d in schema.get("directories") or []:
        if str(d.get("name", "")).lower() != directory:
            continue
        for obj in d.get("objects") or []:
            if str(obj.get("name", "")).lower() == obj_name:
                obj.setdefault("attributes", []).append({
                    "name": target, "type": "String", "mutability": "ReadWrite", "required": False,
                    "multivalued": False, "caseExact": False, "anchor": False, "flowNullValues": False,
                    "defaultValue": None, "apiExpressions": [], "referencedObjects": [], "metadata": [],
                })
                return


def _blank(value: Any) -> bool:
    return value is None or value == ""


def merge(schema: dict[str, Any], mapping: MappingFile) -> tuple[dict[str, Any], list[MappingDiff]]:
    """The schema with the YAML mappings applied, and what changed. The input is not modified."""
    merged = copy.deepcopy(schema)
    rule = find_rule(merged)
    diffs: list[MappingDiff] = []
    for obj_name, items in (("User", mapping.users), ("Group", mapping.groups)):
        if not items:
            continue
        om = object_mapping(rule, obj_name)
        if om is None:
            raise _shape_error(f"the provisioning rule has no {obj_name} object mapping")
        diffs += _object_limits(om, obj_name)
        attrs: list[dict[str, Any]] = om.setdefault("attributeMappings", [])
        index = {str(a.get("targetAttributeName", "")).lower(): a for a in attrs}
        for m in items:
            diff = _merge_one(merged, rule, om, attrs, index, obj_name, m)
            if diff is not None:
                diffs.append(diff)
        for target in sorted(KEPT.get(obj_name, frozenset()) - set(index)):
            diffs.append(_restore_kept(merged, rule, om, attrs, index, obj_name, target))
        diffs += _prune(om, attrs, obj_name, {m.target.lower() for m in items})
    return merged, diffs


# The portal's Target Object Actions (objectFlowTypes, a flags enum) and the seed's choice: all three.
ACTIONS = {"Add": "Create", "Update": "Update", "Delete": "Delete"}
ALL_FLOW_TYPES = "Add, Update, Delete"


def flow_types(value: Any) -> set[str]:
    """The actions an objectFlowTypes value holds ("Add, Update, Delete"); absent is the template's: all."""
    if value is None:
        return set(ACTIONS)
    return {n.strip() for n in str(value).split(",") if n.strip() and n.strip() != "None"}


def filter_clauses(scope: Any) -> list[list[dict[str, Any]]]:
    """A scoping filter's groups of clauses (a group's clauses are ANDed, the groups ORed); [] = no filter."""
    if not isinstance(scope, dict):
        return []
    out = []
    for key in ("groups", "categoryFilterGroups", "inputFilterGroups"):
        for g in scope.get(key) or []:
            clauses = [c for c in (g.get("clauses") or []) if isinstance(c, dict)] if isinstance(g, dict) else []
            if clauses:
                out.append(clauses)
    return out


def describe_filter(groups: list[list[dict[str, Any]]]) -> str:
    """`department EQUALS 'Sales' and ...` per group, the groups joined by `or`."""
    def clause(c: dict[str, Any]) -> str:
        values = (c.get("targetOperand") or {}).get("values") if isinstance(c.get("targetOperand"), dict) else None
        shown = " " + ", ".join(repr(str(v)) for v in values) if values else ""
        return f"{c.get('sourceOperandName')} {c.get('operatorName')}{shown}"

    return " or ".join(" and ".join(clause(c) for c in g) for g in groups)


def _object_limits(om: dict[str, Any], obj_name: str) -> list[MappingDiff]:
    """Put back what the seed's setup has for the object mapping: enabled, no scoping filter, every action."""
    diffs = []
    what = f"{obj_name.lower()}s"
    if om.get("enabled") is False:
        # The portal's Mappings > "Provision Microsoft Entra ID Users/Groups" > Enabled: No. Entra then sends
        # none of these objects to Astro, whatever their attribute mappings say: the mapping file has them.
        om["enabled"] = True
        diffs.append(MappingDiff(obj_name, "provisioning", "disabled", "enabled", (
            f"the {obj_name} object mapping was disabled: Entra provisioned no {what} to Astro",), limits=True))
    groups = filter_clauses(om.get("scope"))
    if groups:
        om["scope"] = None
        diffs.append(MappingDiff(obj_name, "scoping filter", describe_filter(groups), "none", (
            f"Entra provisioned only the assigned {what} the filter let through; the others were never created in "
            "Astro, or were disabled there",), limits=True))
    have = flow_types(om.get("flowTypes"))
    if have != set(ACTIONS):
        off = [ACTIONS[a] for a in ACTIONS if a not in have]
        om["flowTypes"] = ALL_FLOW_TYPES
        why = {"Create": f"new {what} were not created in Astro",
               "Update": "changes were not sent to Astro",
               "Delete": f"{what} leaving the scope were left active in Astro" if obj_name == "User"
               else f"{what} leaving the scope were left in Astro"}
        before = ", ".join(ACTIONS[a] for a in ACTIONS if a in have) or "none"
        diffs.append(MappingDiff(obj_name, "target object actions", before, "Create, Update, Delete", (
            f"{', '.join(off)} unticked: {'; '.join(why[o] for o in off)}",), limits=True))
    return diffs


UNNAMED = "mappings not in the mapping file"
# The template's `active` mapping (entra-docs, use-scim-to-provision-users-and-groups): Entra deprovisions by
# sending active=false, and only through this mapping ("ensure that you have a mapping for active", entra-docs
# how-provisioning-works, Deprovisioning).
ACTIVE_SOURCE = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'
# Each KEPT mapping as the template has it, and what is lost without it.
KEPT_SOURCES: dict[tuple[str, str], tuple[str, str]] = {
    ("User", "active"): (ACTIVE_SOURCE, "Entra's deprovisioning: without it, users unassigned or disabled in Entra "
                                        "stay active in Astro"),
    ("Group", "members"): ("[members]", "Entra's memberships: without it, Entra stops sending who is in each Team, "
                                        "and nothing else says so"),
}


def _restore_kept(schema: dict[str, Any], rule: dict[str, Any], om: dict[str, Any], attrs: list[dict[str, Any]],
                  index: dict[str, dict[str, Any]], obj_name: str, target: str) -> MappingDiff:
    """Put back a template mapping the mapping file may leave unnamed (KEPT), which someone removed (the portal's
    Delete on it): a User's `active`, a Group's `members`."""
    source, why = KEPT_SOURCES[(obj_name, target)]
    m = AttributeMapping(target=target, source=source)
    added = _merge_one(schema, rule, om, attrs, index, obj_name, m)  # absent from the index: always an addition
    notes = added.changes if added is not None else ()
    return MappingDiff(obj_name, target, None, canonical(desired_source(m)), (*notes, why))


def _prune(om: dict[str, Any], attrs: list[dict[str, Any]], obj_name: str, owned: set[str]) -> list[MappingDiff]:
    """Remove the attributeMappings whose target is neither the YAML's nor KEPT: one diff per object (the
    template has ~20 such mappings; one plan line, and one drift finding, says it)."""
    keep = owned | KEPT.get(obj_name, frozenset())
    kept = [a for a in attrs if str(a.get("targetAttributeName", "")).lower() in keep]
    removed = tuple(str(a.get("targetAttributeName", "")) for a in attrs
                    if str(a.get("targetAttributeName", "")).lower() not in keep)
    if not removed:
        return []
    om["attributeMappings"] = kept
    return [MappingDiff(obj_name, UNNAMED, ", ".join(removed), "", removed=removed)]


def _merge_one(
    schema: dict[str, Any],
    rule: dict[str, Any],
    om: dict[str, Any],
    attrs: list[dict[str, Any]],
    index: dict[str, dict[str, Any]],
    obj_name: str,
    m: AttributeMapping,
) -> MappingDiff | None:
    want_source = desired_source(m)
    after = canonical(want_source)
    want_flow = FLOW_TYPE[m.apply_on]
    existing = index.get(m.target.lower())
    if existing is None:
        notes: list[str] = []
        if not _target_attribute_defined(schema, rule, om, m.target):
            _define_target_attribute(schema, rule, om, m.target)
            notes.append(f"defines {m.target} on {om.get('targetObjectName')}")
        if m.matching:
            notes.append(f"matching {m.matching}")
        if m.apply_on is ApplyOn.CREATE_ONLY:
            notes.append("on create only")
        new = {
            "targetAttributeName": m.target,
            "source": want_source,
            "defaultValue": m.default,
            "exportMissingReferences": False,
            "flowBehavior": "FlowWhenChanged",
            "flowType": want_flow,
            "matchingPriority": m.matching,
        }
        attrs.append(new)
        index[m.target.lower()] = new
        return MappingDiff(obj_name, m.target, None, after, tuple(notes))

    changes: list[str] = []
    before = canonical(existing.get("source"))
    if before != after and before == canonical(_as_read(want_source, existing.get("source"))):
        after = before  # the same tree, read without its text as Graph's was (see _as_read)
    if before != after:
        existing["source"] = want_source
    have_match = int(existing.get("matchingPriority") or 0)
    if have_match != m.matching:
        changes.append(f"matching {have_match} -> {m.matching}")
        existing["matchingPriority"] = m.matching
    have_flow = existing.get("flowType") or "Always"
    if have_flow != want_flow:
        changes.append(f"flowType {have_flow} -> {want_flow}")
        existing["flowType"] = want_flow
    have_default = existing.get("defaultValue")
    if not (_blank(have_default) and _blank(m.default)) and have_default != m.default:
        changes.append(f"default {have_default!r} -> {m.default!r}")
        existing["defaultValue"] = m.default
    if before == after and not changes:
        return None
    return MappingDiff(obj_name, str(existing.get("targetAttributeName") or m.target), before, after, tuple(changes))


def rule_id(schema: dict[str, Any]) -> str:
    """The id provisionOnDemand needs (the user/group rule's)."""
    rid = find_rule(schema).get("id")
    if not rid:
        raise _shape_error("the provisioning rule has no id")
    return str(rid)
