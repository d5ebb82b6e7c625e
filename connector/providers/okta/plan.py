"""Pure planning for the Okta provider: observed Okta state (plain JSON) + config -> Changes. No I/O.

Resource kinds, in the order apply performs them (each depends on the ones before it):
    okta.provisioning     the API integration / SCIM connection: Admin Console only, a MANUAL change with a runbook
    okta.feature          USER_PROVISIONING "To App": create users, update attributes, deactivate users; no passwords
    okta.profile_mapping  Okta user -> app user attribute expressions (one change per app attribute)
    okta.group_assignment groups assigned to the app (their members become app users and are provisioned)
    okta.push_mapping     Group Push mappings (groups pushed to Astro as Teams)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from connector.config.load import AstroConfig
from connector.errors import ConfigError
from connector.mapping.model import ApplyOn, MappingFile
from connector.plan.model import Action, Change
from connector.support.secret import Secret

APP_STATUS = "okta.app_status"
PROVISIONING = "okta.provisioning"
FEATURE = "okta.feature"
PROFILE_MAPPING = "okta.profile_mapping"
GROUP_ASSIGNMENT = "okta.group_assignment"
PUSH_MAPPING = "okta.push_mapping"
ORDER = (APP_STATUS, PROVISIONING, FEATURE, PROFILE_MAPPING, GROUP_ASSIGNMENT, PUSH_MAPPING)

USER_PROVISIONING = "USER_PROVISIONING"
# "Provisioning to App": only Create Users, Update User Attributes and Deactivate Users (the seed page, step 7).
DESIRED_CAPABILITIES: dict[str, str] = {
    "create.lifecycleCreate": "ENABLED",
    "update.profile": "ENABLED",
    "update.lifecycleDeactivate": "ENABLED",
    "update.password": "DISABLED",
}
PUSH_STATUS = {ApplyOn.CREATE_AND_UPDATE: "PUSH", ApplyOn.CREATE_ONLY: "DONT_PUSH"}
# Usernames Astro can work with: its userName is the person's email, which Okta logins normally are.
EXPECTED_USERNAME_TEMPLATES = ("${source.login}", "${source.email}")


def app_status_change(app: dict[str, Any]) -> Change | None:
    """An INACTIVE app provisions nothing: activate it (POST /api/v1/apps/{id}/lifecycle/activate)."""
    status = str(app.get("status") or "")
    if status in ("ACTIVE", ""):
        return None
    return Change(Action.UPDATE, APP_STATUS, str(app.get("label") or app.get("id")), before=status, after="ACTIVE",
                  detail="activate the app (it is deactivated: Okta provisions nothing to Astro)")


# -- provisioning (manual) ----------------------------------------------------------------------------------

def secret_reference(secret: Secret | None, *, where: str = "the config") -> str:
    """How the runbook names a token: where it is kept, never its value."""
    if secret is None:
        return "your Organization API token"
    if secret.ref.startswith("env:"):
        return f"the token in env {secret.ref[4:]}"
    if secret.ref.startswith("file:"):
        return f"the token in file {secret.ref[5:]}"
    return f"the token written in {where} (move it to env: or file:)"


def runbook_steps(
    *, integration: str, app_label: str, astro: AstroConfig, config_file: str, connection_status: str | None
) -> str:
    """The Admin Console steps, with the exact values, for the one step no public API can do."""
    token = secret_reference(astro.token, where=config_file)
    why = (
        f"Okta's connections API answers status {connection_status} for this app, so the API integration "
        "cannot be configured through the API."
        if connection_status else "Provisioning is not enabled for this app, and no public API can enable it."
    )
    lines = [why, f"In the Okta Admin Console open Applications > Applications > {app_label}, then:"]
    if integration == "oin":
        lines += [
            "1. Provisioning tab > Configure API integration > check Enable API integration.",
            f"2. Organization ID: {astro.organization_id}"
            "   (older versions of the form call it Organization Short Name; the Astro UI shows both under "
            "Settings > General)",
            f"3. API token: {token} (an Organization API token with the Organization Owner role).",
            "4. Click Test API Credentials, then Save.",
        ]
    else:
        lines += [
            "1. General tab > App Settings > Edit: set Provisioning to SCIM, Save (skip if the Provisioning tab "
            "already shows Integration).",
            "2. Provisioning tab > Integration > Edit:",
            f"   SCIM connector base URL: {astro.scim_url}",
            "   Unique identifier field for users: email",
            "   Supported provisioning actions: Push New Users, Push Profile Updates, Push Groups",
            f"   Authentication Mode: HTTP Header; Bearer: {token}",
            "3. Click Test Connector Configuration, then Save.",
        ]
    lines.append(
        f"Then re-run 'astro-scim apply --config {config_file}': it verifies the connection and configures "
        "To App, attribute mappings, assignments and Group Push."
    )
    return "\n".join(lines)


def provisioning_change(
    *, integration: str, app_label: str, app_id: str, astro: AstroConfig, config_file: str,
    connection_status: str | None,
) -> Change:
    return Change(
        Action.MANUAL,
        PROVISIONING,
        app_label,
        detail="enable the API integration in the Okta Admin Console (no public API)",
        data={
            "app_id": app_id,
            "steps": runbook_steps(
                integration=integration, app_label=app_label, astro=astro, config_file=config_file,
                connection_status=connection_status,
            ),
        },
    )


def configured_organization(app: dict[str, Any]) -> str | None:
    """The Astro Organization ID the OIN app's API integration holds (`settings.app`), if the app shows one."""
    value = ((app.get("settings") or {}).get("app") or {}).get("organizationId")
    return str(value) if value else None


def organization_change(*, app: dict[str, Any], astro: AstroConfig, config_file: str) -> Change | None:
    """A MANUAL change when the API integration points to another Astro organization than the config's."""
    have = configured_organization(app)
    if have is None or have == astro.organization_id:
        return None
    label = str(app.get("label") or app.get("id"))
    steps = "\n".join([
        f"The API integration of {label} sends users to Astro organization {have}, but the config says "
        f"{astro.organization_id} ({astro.scim_url}).",
        f"In the Okta Admin Console open Applications > Applications > {label} > Provisioning > Integration > Edit:",
        f"1. Organization ID: {astro.organization_id}",
        f"2. API token: {secret_reference(astro.token, where=config_file)} (a token of that organization).",
        "3. Click Test API Credentials, then Save.",
        f"Or, if {have} is right, fix the astro section of {config_file}.",
    ])
    return Change(
        Action.MANUAL, PROVISIONING, label, before={"organizationId": have},
        after={"organizationId": astro.organization_id},
        detail=f"the API integration points to Astro organization {have}, not {astro.organization_id}",
        data={"app_id": app.get("id"), "steps": steps},
    )


# -- USER_PROVISIONING --------------------------------------------------------------------------------------

def capability_statuses(feature: dict[str, Any] | None) -> dict[str, str | None]:
    """Flatten the feature's capabilities to the keys we manage: {"create.lifecycleCreate": "ENABLED", ...}."""
    caps = (feature or {}).get("capabilities") or {}
    out: dict[str, str | None] = {}
    for key in DESIRED_CAPABILITIES:
        section, name = key.split(".")
        node = (caps.get(section) or {}).get(name) or {}
        out[key] = node.get("status") if isinstance(node, dict) else None
    return out


def capabilities_body() -> dict[str, Any]:
    """The PUT /features/USER_PROVISIONING body (a CapabilitiesObject) for DESIRED_CAPABILITIES."""
    body: dict[str, Any] = {}
    for key, status in DESIRED_CAPABILITIES.items():
        section, name = key.split(".")
        body.setdefault(section, {})[name] = {"status": status}
    return body


# The capabilities as the Admin Console's "Provisioning to App" page names them (the create line's wording).
CAPABILITY_LABELS = {
    "create.lifecycleCreate": "Create Users",
    "update.profile": "Update User Attributes",
    "update.lifecycleDeactivate": "Deactivate Users",
    "update.password": "Sync Password",
}


def feature_change(feature: dict[str, Any] | None, *, provisioning_enabled: bool) -> Change | None:
    if not provisioning_enabled:
        return Change(Action.CREATE, FEATURE, USER_PROVISIONING, after=dict(DESIRED_CAPABILITIES),
                      detail="Create Users, Update User Attributes, Deactivate Users (after the manual step)")
    current = capability_statuses(feature)
    before = {k: v for k, v in current.items() if v != DESIRED_CAPABILITIES[k]}
    if not before:
        return None
    after = {k: DESIRED_CAPABILITIES[k] for k in before}
    return Change(Action.UPDATE, FEATURE, USER_PROVISIONING, before=before, after=after,
                  detail=capabilities_detail(before, after))


def capabilities_detail(before: dict[str, str | None], after: dict[str, str]) -> str:
    """'turn on Create Users (was DISABLED), Update User Attributes (was not set); turn off Sync Password (was
    ENABLED)': each capability that changes, by the console's name, old -> new. Without it the plan line was the
    raw dicts, "{'create.lifecycleCreate': 'DISABLED', ...} -> {...}"."""
    def named(keys: list[str]) -> str:
        return ", ".join(f"{CAPABILITY_LABELS.get(k, k)} (was {before[k] or 'not set'})" for k in keys)

    on = [k for k in after if after[k] == "ENABLED"]
    off = [k for k in after if after[k] != "ENABLED"]
    parts = ([f"turn on {named(on)}"] if on else []) + ([f"turn off {named(off)}"] if off else [])
    return "; ".join(parts)


# -- profile mappings ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MappedProperty:
    attribute: str  # the app user attribute (Okta's mapping property name), e.g. givenName
    expression: str
    push_status: str  # PUSH | DONT_PUSH
    target: str  # the SCIM path in the mapping file


def desired_properties(mapping: MappingFile, attribute_for: Callable[[str], str | None]) -> list[MappedProperty]:
    """The mapping file's user attributes as Okta mapping properties; userName comes from sign-on settings."""
    out: list[MappedProperty] = []
    for m in mapping.users:
        if m.from_sign_on or m.source is None:
            continue
        attribute = attribute_for(m.target)
        if attribute is None:
            raise ConfigError(
                f"no Okta app attribute is known for SCIM path {m.target!r}",
                location=m.location,
                hint="map one of Astro's attributes (name.givenName, name.familyName, emails[type eq \"work\"].value, "
                     "displayName, profileUrl)",
            )
        out.append(MappedProperty(attribute, m.source, PUSH_STATUS[m.apply_on], m.target))
    return out


def _norm(expression: Any) -> str:
    return " ".join(str(expression or "").split())


def property_changes(
    desired: Iterable[MappedProperty], current: dict[str, Any] | None, *, mapping_id: str | None
) -> list[Change]:
    """Only the mapped properties are compared and touched; other properties of the app stay as they are."""
    props: dict[str, Any] = current or {}
    changes: list[Change] = []
    for p in desired:
        after = {"expression": p.expression, "pushStatus": p.push_status}
        have = props.get(p.attribute)
        data = {"mapping_id": mapping_id, "attribute": p.attribute, **after}
        if not isinstance(have, dict) or not have.get("expression"):
            changes.append(Change(Action.CREATE, PROFILE_MAPPING, p.attribute, after=after,
                                  detail=f"{p.expression} ({p.push_status}) -> {p.target}", data=data))
            continue
        before = {"expression": have.get("expression"), "pushStatus": have.get("pushStatus")}
        if _norm(before["expression"]) != _norm(p.expression) or before["pushStatus"] != p.push_status:
            changes.append(Change(Action.UPDATE, PROFILE_MAPPING, p.attribute, before=before, after=after, data=data))
    return changes


# -- group assignments and Group Push -----------------------------------------------------------------------

@dataclass(frozen=True)
class OktaGroup:
    id: str
    name: str


def assignment_changes(wanted: Iterable[OktaGroup], assigned_ids: set[str]) -> list[Change]:
    return [
        Change(Action.CREATE, GROUP_ASSIGNMENT, g.name, detail="assign the group to the app", data={"group_id": g.id})
        for g in wanted
        if g.id not in assigned_ids
    ]


def push_changes(
    wanted: Iterable[OktaGroup],
    mappings: list[dict[str, Any]],
    group_names: dict[str, str],
    *,
    prune: bool,
) -> list[Change]:
    """Create (or reactivate) a push mapping per wanted group; with prune, retire the mappings of other groups.

    Deletion deactivates first (Okta requires it) and keeps the Team in Astro (deleteTargetGroup=false): removing
    a Team is a decision for Astro's admins, not a side effect of tidying Okta.
    """
    by_source: dict[str, dict[str, Any]] = {}
    for m in mappings:
        by_source.setdefault(str(m.get("sourceGroupId")), m)
    changes: list[Change] = []
    wanted_ids: set[str] = set()
    for g in wanted:
        wanted_ids.add(g.id)
        have = by_source.get(g.id)
        if have is None:
            changes.append(Change(
                Action.CREATE, PUSH_MAPPING, g.name, after={"targetGroupName": g.name, "status": "ACTIVE"},
                detail=f"push as Team {g.name!r}", data={"group_id": g.id, "group_name": g.name},
            ))
        elif have.get("status") == "INACTIVE":
            changes.append(Change(
                Action.UPDATE, PUSH_MAPPING, g.name, before={"status": "INACTIVE"}, after={"status": "ACTIVE"},
                data={"group_id": g.id, "group_name": g.name, "mapping_id": have.get("id")},
            ))
    if prune:
        for m in mappings:
            source = str(m.get("sourceGroupId"))
            if source in wanted_ids:
                continue
            name = group_names.get(source, source)
            changes.append(Change(
                Action.DELETE, PUSH_MAPPING, name, before={"status": m.get("status")},
                detail="not in okta.push_groups: deactivate and delete the mapping (the Team stays in Astro)",
                data={"group_id": source, "group_name": name, "mapping_id": m.get("id")},
            ))
    return changes


def username_note(app: dict[str, Any]) -> str | None:
    """Information (not a change) when the app's username template is not the usual login/email."""
    template = ((app.get("credentials") or {}).get("userNameTemplate") or {}).get("template")
    if not template or template in EXPECTED_USERNAME_TEMPLATES:
        return None
    return (
        f"the app's username template is {template!r}: Astro receives that value as userName "
        "(sign-on settings, not a mapping property; usually ${source.login} or ${source.email})"
    )
