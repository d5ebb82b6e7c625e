"""Pure planning for the Okta provider (connector/providers/okta_plan.py): fast, no HTTP."""

from __future__ import annotations

import pytest

from connector.config.load import AstroConfig
from connector.errors import ConfigError
from connector.mapping.model import ApplyOn, AttributeMapping, MappingFile
from connector.plan.model import Action
from connector.providers.okta import plan as P
from connector.support.secret import Secret

TABLE = {"name.givenName": "givenName", "name.familyName": "familyName", "displayName": "displayName",
         'emails[type eq "work"].value': "email", "profileUrl": "profileUrl"}

ASTRO = AstroConfig(scim_url="https://api.astronomer.io/scim/v2/clorg123", token=Secret("env:ASTRO_API_TOKEN"),
                    organization_id="clorg123")


def mapping(*extra: AttributeMapping) -> MappingFile:
    return MappingFile(idp="okta", file="m.yaml", users=[
        AttributeMapping("userName", None, from_sign_on=True),
        AttributeMapping("name.givenName", "user.firstName"),
        AttributeMapping("displayName", "user.displayName", apply_on=ApplyOn.CREATE_ONLY),
        *extra,
    ])


def test_desired_properties_skip_sign_on_username_and_map_push_status() -> None:
    props = P.desired_properties(mapping(), TABLE.get)
    assert [(p.attribute, p.expression, p.push_status) for p in props] == [
        ("givenName", "user.firstName", "PUSH"), ("displayName", "user.displayName", "DONT_PUSH"),
    ]


def test_unknown_scim_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nickName"):
        P.desired_properties(mapping(AttributeMapping("nickName", "user.nickName")), TABLE.get)


def test_property_changes_create_update_and_leave_others_alone() -> None:
    props = P.desired_properties(mapping(), TABLE.get)
    current = {
        "givenName": {"expression": "user.firstName", "pushStatus": "PUSH"},  # already right
        "displayName": {"expression": "user.login", "pushStatus": "PUSH"},  # wrong
        "nickName": {"expression": "user.nickName", "pushStatus": "PUSH"},  # not ours: untouched
    }
    changes = P.property_changes(props, current, mapping_id="prm1")
    assert [(c.action, c.key) for c in changes] == [(Action.UPDATE, "displayName")]
    assert changes[0].before == {"expression": "user.login", "pushStatus": "PUSH"}
    assert changes[0].after == {"expression": "user.displayName", "pushStatus": "DONT_PUSH"}
    assert changes[0].data["mapping_id"] == "prm1"
    created = P.property_changes(props, {}, mapping_id=None)
    assert [(c.action, c.key) for c in created] == [(Action.CREATE, "givenName"), (Action.CREATE, "displayName")]


def test_expression_whitespace_is_not_a_change() -> None:
    props = P.desired_properties(mapping(), TABLE.get)
    current = {"givenName": {"expression": " user.firstName ", "pushStatus": "PUSH"},
               "displayName": {"expression": "user.displayName", "pushStatus": "DONT_PUSH"}}
    assert P.property_changes(props, current, mapping_id="prm1") == []


def test_feature_change_only_lists_what_differs() -> None:
    feature = {"name": "USER_PROVISIONING", "capabilities": {
        "create": {"lifecycleCreate": {"status": "ENABLED"}},
        "update": {"profile": {"status": "DISABLED"}, "lifecycleDeactivate": {"status": "ENABLED"},
                   "password": {"status": "ENABLED", "seed": "RANDOM", "change": "CHANGE"}},
    }}
    change = P.feature_change(feature, provisioning_enabled=True)
    assert change is not None and change.action is Action.UPDATE
    assert change.before == {"update.profile": "DISABLED", "update.password": "ENABLED"}
    assert change.after == {"update.profile": "ENABLED", "update.password": "DISABLED"}
    done = {"capabilities": P.capabilities_body()}
    assert P.feature_change(done, provisioning_enabled=True) is None
    pending = P.feature_change(None, provisioning_enabled=False)
    assert pending is not None and pending.action is Action.CREATE


def test_capabilities_body_shape() -> None:
    assert P.capabilities_body() == {
        "create": {"lifecycleCreate": {"status": "ENABLED"}},
        "update": {"profile": {"status": "ENABLED"}, "lifecycleDeactivate": {"status": "ENABLED"},
                   "password": {"status": "DISABLED"}},
    }


def test_assignment_changes() -> None:
    wanted = [P.OktaGroup("00g1", "Astro Users"), P.OktaGroup("00g2", "Data")]
    changes = P.assignment_changes(wanted, {"00g1"})
    assert [(c.action, c.key, c.data["group_id"]) for c in changes] == [(Action.CREATE, "Data", "00g2")]


def test_push_changes_create_activate_and_prune() -> None:
    wanted = [P.OktaGroup("00g1", "Data"), P.OktaGroup("00g2", "ML"), P.OktaGroup("00g3", "Ops")]
    mappings = [
        {"id": "gPm1", "sourceGroupId": "00g1", "status": "ACTIVE"},
        {"id": "gPm2", "sourceGroupId": "00g2", "status": "INACTIVE"},
        {"id": "gPm9", "sourceGroupId": "00g9", "status": "ACTIVE"},
    ]
    kept = P.push_changes(wanted, mappings, {}, prune=False)
    assert [(c.action, c.key) for c in kept] == [(Action.UPDATE, "ML"), (Action.CREATE, "Ops")]
    assert kept[1].after == {"targetGroupName": "Ops", "status": "ACTIVE"}
    pruned = P.push_changes(wanted, mappings, {"00g9": "Old Team"}, prune=True)
    delete = [c for c in pruned if c.action is Action.DELETE]
    assert [(c.key, c.data["mapping_id"]) for c in delete] == [("Old Team", "gPm9")]


@pytest.mark.parametrize("integration", ["oin", "manual"])
def test_runbook_names_exact_values_and_never_the_token(integration: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTRO_API_TOKEN", "canary-astro-token-value-123")
    change = P.provisioning_change(integration=integration, app_label="Astro", app_id="0oa1", astro=ASTRO,
                                   config_file="astro-scim.yaml", connection_status="UNKNOWN")
    steps = change.data["steps"]
    assert change.action is Action.MANUAL and change.resource == "okta.provisioning"
    assert "the token in env ASTRO_API_TOKEN" in steps and "canary-astro-token-value-123" not in steps
    assert "UNKNOWN" in steps and "astro-scim apply --config astro-scim.yaml" in steps
    if integration == "oin":
        assert "Configure API integration" in steps and "Organization ID: clorg123" in steps
    else:
        assert f"SCIM connector base URL: {ASTRO.scim_url}" in steps and "HTTP Header" in steps
        assert "Push New Users, Push Profile Updates, Push Groups" in steps


def test_secret_reference_forms(tmp_path: object) -> None:
    assert P.secret_reference(Secret("env:X")) == "the token in env X"
    assert P.secret_reference(Secret("file:/run/astro.token")) == "the token in file /run/astro.token"
    assert "move it to env: or file:" in P.secret_reference(Secret.from_value("literal-token-value-xyz"))
    assert "literal-token-value-xyz" not in P.secret_reference(Secret.from_value("literal-token-value-xyz"))


def test_username_note_only_for_unusual_templates() -> None:
    assert P.username_note({"credentials": {"userNameTemplate": {"template": "${source.login}"}}}) is None
    assert P.username_note({}) is None
    note = P.username_note({"credentials": {"userNameTemplate": {"template": "${source.samAccountName}"}}})
    assert note is not None and "samAccountName" in note


def test_organization_change_only_when_the_app_points_elsewhere() -> None:
    app = {"id": "0oa1", "label": "Astro", "settings": {"app": {"organizationId": "clother"}}}
    change = P.organization_change(app=app, astro=ASTRO, config_file="astro-scim.yaml")
    assert change is not None and change.action is Action.MANUAL
    assert change.before == {"organizationId": "clother"} and change.after == {"organizationId": "clorg123"}
    assert "Organization ID: clorg123" in change.data["steps"]
    same = {"settings": {"app": {"organizationId": "clorg123"}}}
    assert P.organization_change(app=same, astro=ASTRO, config_file="x") is None
    assert P.organization_change(app={"settings": {"app": {}}}, astro=ASTRO, config_file="x") is None
