"""Fast unit tests for the Entra provider's pure parts: schema merge, on-demand pacing and parsing, error
translation, the drift view's mapping evaluation, and pins for the msgraph-sdk defects we build around."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from connector.errors import AuthError, RemoteError
from connector.mapping.model import ApplyOn, AttributeMapping, MappingFile
from connector.providers.entra import schema as azure_schema
from connector.providers.entra.errors import credential_error, translate
from connector.providers.entra.expected import compile_mappings, idp_user, user_select
from connector.providers.entra.ondemand import SlidingWindow, group_subject, member_chunks, parse_response
from connector.support.clock import FakeClock


def _src(expr: str, name: str) -> dict[str, Any]:
    return {"expression": expr, "name": name, "parameters": [], "type": "Attribute"}


def _am(target: str, source: dict[str, Any], matching: int = 0) -> dict[str, Any]:
    return {"defaultValue": None, "exportMissingReferences": False, "flowBehavior": "FlowWhenChanged",
            "flowType": "Always", "matchingPriority": matching, "source": source, "targetAttributeName": target}


ACTIVE_SOURCE = {
    "expression": 'Switch([IsSoftDeleted], , "False", "True", "True", "False")', "name": "Switch",
    "type": "Function", "parameters": [
        {"key": "source", "value": _src("[IsSoftDeleted]", "IsSoftDeleted")},
        {"key": "0", "value": {"expression": '"False"', "name": "False", "parameters": [], "type": "Constant"}},
        {"key": "1", "value": {"expression": '"True"', "name": "True", "parameters": [], "type": "Constant"}},
        {"key": "2", "value": {"expression": '"True"', "name": "True", "parameters": [], "type": "Constant"}},
        {"key": "3", "value": {"expression": '"False"', "name": "False", "parameters": [], "type": "Constant"}},
    ],
}


def template_schema() -> dict[str, Any]:
    """A compact but realistic 'scim' template schema: flags enums, unknown fields, scoping filter, metadata."""
    return {
        "id": "scim", "version": "Date:2024-03-01~Revision:1", "someFutureField": {"keep": True},
        "directories": [
            {"id": "d1", "name": "Microsoft Entra ID", "discoverabilities": "AttributeNames, AttributeDataTypes",
             "readOnly": True, "objects": [{"name": "User", "attributes": [], "metadata": []}]},
            {"id": "d2", "name": "customappsso", "discoverabilities": "None", "readOnly": False, "objects": [
                {"name": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "attributes": [
                    {"name": "userName", "type": "String"}, {"name": "active", "type": "Boolean"},
                    {"name": "displayName", "type": "String"}, {"name": "name.givenName", "type": "String"},
                    {"name": "name.familyName", "type": "String"},
                ], "metadata": [{"key": "k", "value": "v"}]},
                {"name": "urn:ietf:params:scim:schemas:core:2.0:Group", "attributes": [
                    {"name": "displayName", "type": "String"}, {"name": "members", "type": "Reference"},
                ]},
            ]},
        ],
        "synchronizationRules": [{
            "id": "rule-1", "name": "USERGROUP_OUTBOUND_USERGROUP", "editable": True, "priority": 1,
            "sourceDirectoryName": "Microsoft Entra ID", "targetDirectoryName": "customappsso",
            "metadata": [{"key": "supportsProvisionOnDemand", "value": "true"}],
            "containerFilter": {"includedContainers": []}, "groupFilter": {"includedGroups": []},
            "objectMappings": [
                {"name": "Provision Microsoft Entra ID Groups", "enabled": True, "flowTypes": "Add, Update, Delete",
                 "sourceObjectName": "Group", "targetObjectName": "urn:ietf:params:scim:schemas:core:2.0:Group",
                 "metadata": [], "scope": None, "attributeMappings": [
                     _am("displayName", _src("[displayName]", "displayName"), 1),
                     _am("members", _src("[members]", "members")),
                 ]},
                {"name": "Provision Microsoft Entra ID Users", "enabled": True, "flowTypes": "Add, Update, Delete",
                 "sourceObjectName": "User",
                 "targetObjectName": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                 "metadata": [{"key": "Scoping", "value": "x"}],
                 "scope": {"categoryFilterGroups": [], "groups": [], "inputFilterGroups": []},
                 "attributeMappings": [
                     _am("userName", _src("[userPrincipalName]", "userPrincipalName"), 1),
                     _am("active", ACTIVE_SOURCE),
                     _am("displayName", _src("[displayName]", "displayName")),
                     _am("name.givenName", _src("[givenName]", "givenName")),
                     _am("name.familyName", _src("[surname]", "surname")),
                 ]},
            ],
        }],
    }


def seed_mapping(**changes: Any) -> MappingFile:
    users = [
        AttributeMapping("userName", "[userPrincipalName]", matching=1),
        AttributeMapping("displayName", "[displayName]"),
        AttributeMapping("name.givenName", "[givenName]"),
        AttributeMapping("name.familyName", "[surname]"),
    ]
    groups = [AttributeMapping("displayName", "[displayName]", matching=1),
              AttributeMapping("members", "[members]")]
    m = MappingFile("azure", "azure.yaml", users=users, groups=groups)
    for k, v in changes.items():
        setattr(m, k, v)
    return m


# --- schema merge -------------------------------------------------------------------------------------------


def test_seed_mapping_on_template_is_a_no_op() -> None:
    schema = template_schema()
    merged, diffs = azure_schema.merge(schema, seed_mapping())
    assert diffs == []
    assert merged == schema


def test_merge_changes_only_owned_fields_and_reports_each_mapping() -> None:
    schema = template_schema()
    mapping = seed_mapping()
    mapping.users[2] = AttributeMapping("name.givenName", 'Coalesce([givenName], "n/a")')
    mapping.users.append(AttributeMapping("externalId", "[objectId]", apply_on=ApplyOn.CREATE_ONLY))
    merged, diffs = azure_schema.merge(schema, mapping)
    assert [(d.key, d.before, d.after) for d in diffs] == [
        ("User name.givenName", "[givenName]", 'Coalesce([givenName], "n/a")'),
        ("User externalId", None, "[objectId]"),
    ]
    assert "defines externalId" in diffs[1].describe() and "on create only" in diffs[1].describe()
    # Input untouched.
    assert schema == template_schema()
    user_om = azure_schema.object_mapping(azure_schema.find_rule(merged), "User")
    assert user_om is not None
    by_target = {a["targetAttributeName"]: a for a in user_om["attributeMappings"]}
    assert by_target["name.givenName"]["source"]["type"] == "Function"
    assert by_target["externalId"]["flowType"] == "ObjectAddOnly"
    # Everything else is byte-for-byte what Graph gave us: flags enums, unknown fields, the active mapping.
    for key in ("directories", "someFutureField", "id", "version"):
        if key != "directories":
            assert merged[key] == schema[key]
    assert user_om["flowTypes"] == "Add, Update, Delete"
    assert by_target["active"] == _am("active", ACTIVE_SOURCE)
    rule = azure_schema.find_rule(merged)
    original_rule = azure_schema.find_rule(schema)
    for key in ("id", "metadata", "containerFilter", "groupFilter", "sourceDirectoryName"):
        assert rule[key] == original_rule[key]
    # externalId was not in the target object's attribute list: it is defined, nothing else there changes.
    target_obj = merged["directories"][1]["objects"][0]
    assert [a["name"] for a in target_obj["attributes"]][-1] == "externalId"
    assert target_obj["metadata"] == [{"key": "k", "value": "v"}]


def test_merge_is_idempotent() -> None:
    mapping = seed_mapping()
    mapping.users.append(AttributeMapping("externalId", "[mailNickname]"))
    once, diffs1 = azure_schema.merge(template_schema(), mapping)
    twice, diffs2 = azure_schema.merge(once, mapping)
    assert diffs1 and not diffs2
    assert once == twice


def test_merge_reports_matching_and_flow_changes() -> None:
    mapping = seed_mapping()
    mapping.users[0] = AttributeMapping("userName", "[userPrincipalName]", matching=2,
                                        apply_on=ApplyOn.CREATE_ONLY)
    _, diffs = azure_schema.merge(template_schema(), mapping)
    assert len(diffs) == 1
    assert diffs[0].describe() == "[userPrincipalName]; matching 1 -> 2; flowType Always -> ObjectAddOnly"


def _with_template_extras(schema: dict[str, Any]) -> dict[str, Any]:
    """The template's mappings Astro does not document (a few of them), on both objects."""
    rule = azure_schema.find_rule(schema)
    users = azure_schema.object_mapping(rule, "User")
    groups = azure_schema.object_mapping(rule, "Group")
    assert users is not None and groups is not None
    users["attributeMappings"] += [_am("title", _src("[jobTitle]", "jobTitle")),
                                   _am('emails[type eq "work"].value', _src("[mail]", "mail"))]
    groups["attributeMappings"].append(_am("externalId", _src("[objectId]", "objectId")))
    return schema


def test_template_mappings_the_yaml_does_not_name_are_removed_but_active_is_kept() -> None:
    schema = _with_template_extras(template_schema())
    merged, diffs = azure_schema.merge(schema, seed_mapping())
    emails = 'emails[type eq "work"].value'
    assert [(d.key, d.removed) for d in diffs] == [
        ("User mappings not in the mapping file", ("title", emails)),
        ("Group mappings not in the mapping file", ("externalId",)),
    ]
    assert diffs[0].describe() == ("remove 2 mappings the mapping file does not name (Entra would send them to "
                                   f"Astro): title, {emails}")
    assert diffs[1].describe().startswith("remove 1 mapping the mapping file does not name (Entra would send it")
    assert merged == template_schema()  # exactly the YAML's mappings and active; the rest of the schema as it was
    again, more = azure_schema.merge(merged, seed_mapping())
    assert more == [] and again == merged  # idempotent: a second plan is empty


def test_a_removed_active_mapping_is_put_back() -> None:
    """`active` is how Entra deprovisions (active=false): removed in the portal and not in the mapping file, the
    merge adds the template's back (it kept it only when present: unassigned users then stayed active in Astro)."""
    schema = template_schema()
    users = azure_schema.object_mapping(azure_schema.find_rule(schema), "User")
    assert users is not None
    users["attributeMappings"] = [a for a in users["attributeMappings"] if a["targetAttributeName"] != "active"]
    merged, diffs = azure_schema.merge(schema, seed_mapping())
    [diff] = diffs
    assert (diff.key, diff.before, diff.after) == ("User active", None, azure_schema.ACTIVE_SOURCE)
    assert "deprovisioning" in diff.describe()
    merged_users = azure_schema.object_mapping(azure_schema.find_rule(merged), "User")
    assert merged_users is not None
    [active] = [a for a in merged_users["attributeMappings"] if a["targetAttributeName"] == "active"]
    assert azure_schema.canonical(active["source"]) == azure_schema.canonical(ACTIVE_SOURCE)
    assert azure_schema.merge(merged, seed_mapping())[1] == []  # idempotent


def test_a_disabled_object_mapping_the_yaml_maps_is_enabled() -> None:
    """The portal's "Provision Microsoft Entra ID Groups > Enabled: No": Entra sends no group to Astro whatever the
    attribute mappings say; the merge saw only the attribute mappings and reported no change."""
    schema = template_schema()
    groups = azure_schema.object_mapping(azure_schema.find_rule(schema), "Group")
    assert groups is not None
    groups["enabled"] = False
    merged, diffs = azure_schema.merge(schema, seed_mapping())
    assert [(d.key, d.before, d.after) for d in diffs] == [("Group provisioning", "disabled", "enabled")]
    assert merged == template_schema()
    groups["enabled"] = False
    assert azure_schema.merge(schema, seed_mapping(groups=[]))[1] == []  # not the file's: left alone


def test_a_mapping_the_yaml_names_is_kept_and_an_object_without_yaml_mappings_is_left_alone() -> None:
    schema = _with_template_extras(template_schema())
    mapping = seed_mapping(groups=[])
    mapping.users.append(AttributeMapping("title", "[jobTitle]"))
    merged, diffs = azure_schema.merge(schema, mapping)
    # title is named now (with the template's source: no change); only emails goes
    assert [(d.key, d.removed) for d in diffs] == [
        ("User mappings not in the mapping file", ('emails[type eq "work"].value',)),
    ]
    group_om = azure_schema.object_mapping(azure_schema.find_rule(merged), "Group")
    assert group_om is not None and "externalId" in [a["targetAttributeName"] for a in group_om["attributeMappings"]]


def test_rule_is_found_by_what_it_maps_not_by_directory_name() -> None:
    schema = template_schema()
    schema["synchronizationRules"].insert(0, {"id": "other", "objectMappings": [{"sourceObjectName": "Device"}]})
    assert azure_schema.rule_id(schema) == "rule-1"
    schema["synchronizationRules"] = schema["synchronizationRules"][:1]
    with pytest.raises(RemoteError, match="no rule with a User object mapping"):
        azure_schema.find_rule(schema)


def test_equivalent_trees_are_not_changes() -> None:
    schema = template_schema()
    om = azure_schema.object_mapping(azure_schema.find_rule(schema), "User")
    assert om is not None
    # Graph sometimes returns a tree without the expression text: compared by meaning, not by bytes.
    om["attributeMappings"][2]["source"] = {"name": "displayName", "type": "Attribute", "parameters": []}
    _, diffs = azure_schema.merge(schema, seed_mapping())
    assert diffs == []


# --- provision on demand ------------------------------------------------------------------------------------


def test_member_chunks_split_at_five() -> None:
    ids = [f"u{i}" for i in range(12)]
    chunks = member_chunks(ids)
    assert [len(c) for c in chunks] == [5, 5, 2]
    assert sum(chunks, []) == ids
    assert member_chunks([]) == [[]]
    subject = group_subject("g1", chunks[0])
    assert subject["objectTypeName"] == "Group" and len(subject["links"]["members"]) == 5


def test_sliding_window_never_allows_six_calls_in_ten_seconds() -> None:
    clock = FakeClock()
    window = SlidingWindow(5, 10.0, clock=clock)
    stamps = []

    async def run() -> None:
        for _ in range(12):
            await window.acquire()
            stamps.append(clock.monotonic())
            clock.advance(0.3)  # each call takes a bit

    asyncio.run(run())
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 10.0
    assert len(clock.sleeps) == 2  # calls 6 and 11 waited
    assert stamps[5] < 11.0  # ... but no longer than needed


def test_window_penalize_after_429() -> None:
    clock = FakeClock()
    clock.advance(100.0)
    window = SlidingWindow(5, 10.0, clock=clock)
    window.penalize()
    waited = asyncio.run(window.acquire())
    assert waited >= 10.0


def test_parse_on_demand_v1_shape() -> None:
    value = json.dumps({
        "action": "Create", "changeId": "c1",
        "statusInfo": {"@odata.type": "microsoft.graph.statusDetails", "status": "failure",
                       "errorCode": "SystemForCrossDomainIdentityManagementBadRequest",
                       "reason": "The SCIM endpoint\nanswered 400."},
        "sourceIdentity": {"id": "u1", "displayName": "Ada Lovelace", "identityType": "User"},
        "provisioningSteps": [],
    })
    key = json.dumps({"result": "Failure", "details": {}})
    [r] = parse_response(key, value, subject="ada@x", object_type="User")
    assert (r.subject, r.object_type, r.action, r.status) == ("Ada Lovelace", "User", "Create", "failure")
    assert r.error_code == "SystemForCrossDomainIdentityManagementBadRequest"
    assert r.reason == "The SCIM endpoint answered 400."
    assert r.failed


def test_parse_on_demand_array_shape_and_garbage() -> None:
    value = json.dumps([
        {"provisioningAction": "Update", "provisioningStatusInfo": {"status": "success"},
         "sourceIdentity": {"displayName": "Data Engineering", "identityType": "Group"}},
        {"action": "Other", "statusInfo": {"status": "skipped"},
         "provisioningSteps": [{"name": "Scoping", "status": "skipped", "description": "not assigned"}]},
    ])
    results = parse_response(None, value, subject="g", object_type="Group")
    assert [(r.subject, r.action, r.status) for r in results] == [
        ("Data Engineering", "Update", "success"), ("g", "Other", "skipped")]
    assert results[1].reason == "not assigned" and not results[1].failed
    [r] = parse_response(json.dumps({"result": "Skipped", "details": {"errorCode": "RedundantExport"}}),
                         "not json", subject="x", object_type="User")
    assert (r.status, r.error_code) == ("Skipped", "RedundantExport")


def test_call_summary_is_not_pinned_on_every_subject() -> None:
    key = json.dumps({"result": "Skipped", "details": {"errorCode": "NotEffectivelyEntitled"}})
    value = json.dumps([{"action": "Create", "statusInfo": {"status": "Success"}},
                        {"action": "Other", "statusInfo": {"status": "Skipped", "reason": "NotEffectivelyEntitled"}}])
    ok, skipped = parse_response(key, value, subject="g", object_type="Group")
    assert ok.ok and (ok.error_code, ok.reason) == ("", "")
    assert not skipped.ok and not skipped.failed
    assert skipped.describe() == ("Group g: Other, Skipped (NotEffectivelyEntitled); not in scope: assign the user "
                                  "(or a group it is a direct member of) to the app")
    [same] = parse_response(None, json.dumps({"statusInfo": {"status": "Skipped", "reason": "RedundantExport"}}),
                            subject="u", object_type="User")
    assert same.ok


# --- errors ------------------------------------------------------------------------------------------------


def _odata(status: int, code: str, message: str) -> Exception:
    from msgraph.generated.models.o_data_errors.main_error import MainError
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    err = ODataError(error=MainError(code=code, message=message))
    err.response_status_code = status
    err.response_headers = {"Retry-After": "2"}
    return err


def test_403_names_the_missing_permission() -> None:
    exc = translate(_odata(403, "Authorization_RequestDenied", "Insufficient privileges to complete the "
                                                               "operation."),
                    endpoint="GET /servicePrincipals/x/appRoleAssignedTo", permission="assign")
    assert isinstance(exc, AuthError)
    line = str(exc)
    assert "\n" not in line
    assert "Authorization_RequestDenied" in line and "AppRoleAssignment.ReadWrite.All" in line
    assert "GET /servicePrincipals/x/appRoleAssignedTo" in line and "HTTP 403" in line
    assert exc.hint and "AppRoleAssignment.ReadWrite.All" in exc.hint


def test_odata_error_is_one_line_with_code_and_keeps_retry_after() -> None:
    exc = translate(_odata(429, "TooManyRequests", "Too many requests.\nTry later."), endpoint="GET /users")
    assert isinstance(exc, RemoteError) and not isinstance(exc, AuthError)
    assert str(exc) == "graph GET /users: TooManyRequests: Too many requests. Try later. (HTTP 429, TooManyRequests)"
    assert exc.retry_after == 2.0


def test_aadsts_error_is_one_line_with_code_and_hint() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    raw = ClientAuthenticationError(
        message="ClientSecretCredential.get_token failed: Authentication failed: AADSTS7000215: Invalid client "
                "secret provided. Ensure the secret being sent in the request is the client secret value.\r\n"
                "Trace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2024-01-01 00:00:00Z")
    exc = translate(raw, endpoint="GET /servicePrincipals")
    assert isinstance(exc, AuthError)
    assert str(exc) == "entra-id token: AADSTS7000215: Invalid client secret provided. (AADSTS7000215)"
    assert exc.hint and "Value" in exc.hint
    assert credential_error(raw).code == "AADSTS7000215"


# --- the drift view ----------------------------------------------------------------------------------------


def test_view_evaluates_the_yaml_per_user() -> None:
    mapping = seed_mapping()
    mapping.users.append(AttributeMapping("title", "ToUpper([jobTitle])"))
    compiled = compile_mappings(mapping.users)
    profile = {"id": "u1", "userPrincipalName": "ada@acme.example", "displayName": "Ada Lovelace",
               "givenName": "Ada", "surname": "Lovelace", "accountEnabled": False, "jobTitle": None}
    u = idp_user(profile, compiled)
    assert u is not None
    assert (u.id, u.user_name, u.active) == ("u1", "ada@acme.example", False)
    assert u.expected == {"userName": "ada@acme.example", "displayName": "Ada Lovelace",
                          "name.givenName": "Ada", "name.familyName": "Lovelace"}  # null title not expected
    select = user_select(mapping)
    assert "jobTitle" in select and "accountEnabled" in select and "IsSoftDeleted" not in select


def test_renamed_source_attributes_are_selected_and_read_by_their_graph_names() -> None:
    """Entra source attributes keep Azure AD Graph's names (telephoneNumber, mobile, facsimileTelephoneNumber,
    physicalDeliveryOfficeName, extensionAttribute1-15); Microsoft Graph has the values under businessPhones,
    mobilePhone, faxNumber, officeLocation and onPremisesExtensionAttributes. The view must $select those and
    read the values from them (it asked Graph for properties a user does not have and expected nothing)."""
    mapping = seed_mapping()
    mapping.users += [AttributeMapping('phoneNumbers[type eq "work"].value', "[telephoneNumber]"),
                      AttributeMapping('phoneNumbers[type eq "mobile"].value', "[mobile]"),
                      AttributeMapping('addresses[type eq "work"].formatted', "[physicalDeliveryOfficeName]"),
                      AttributeMapping("nickName", "[extensionAttribute4]"),
                      AttributeMapping("costCenter", "[employeeOrgData.costCenter]"),
                      AttributeMapping("password", "[passwordProfile.password]")]
    select = user_select(mapping)
    for old in ("telephoneNumber", "mobile", "physicalDeliveryOfficeName", "extensionAttribute4",
                "employeeOrgData.costCenter", "passwordProfile.password", "passwordProfile"):
        assert old not in select
    for graph_name in ("businessPhones", "mobilePhone", "officeLocation", "onPremisesExtensionAttributes",
                       "employeeOrgData"):
        assert select.count(graph_name) == 1, (graph_name, select)
    profile = {"id": "u1", "userPrincipalName": "ada@acme.example", "accountEnabled": True,
               "businessPhones": ["+1 425 555 0100"], "mobilePhone": "+1 425 555 0101", "officeLocation": "B7",
               "onPremisesExtensionAttributes": {"extensionAttribute4": "ada"},
               "employeeOrgData": {"costCenter": "CC-9", "division": None}}
    u = idp_user(profile, compile_mappings(mapping.users))
    assert u is not None
    assert {k: u.expected.get(k) for k in ('phoneNumbers[type eq "work"].value', 'phoneNumbers[type eq "mobile"].value',
                                           'addresses[type eq "work"].formatted', "nickName", "costCenter")} == {
        'phoneNumbers[type eq "work"].value': "+1 425 555 0100", 'phoneNumbers[type eq "mobile"].value':
        "+1 425 555 0101", 'addresses[type eq "work"].formatted': "B7", "nickName": "ada", "costCenter": "CC-9"}


# --- pins: the msgraph-sdk defects this provider works around (fail when the SDK changes) ------------------


def test_pin_sdk_schema_builder_has_no_put() -> None:
    """Graph documents PUT .../schema; msgraph-sdk 1.65 only offers PATCH (which answers 404): we send raw PUT."""
    from msgraph.generated.service_principals.item.synchronization.jobs.item.schema.schema_request_builder import (  # noqa: E501
        SchemaRequestBuilder,
    )

    assert hasattr(SchemaRequestBuilder, "patch")
    assert not hasattr(SchemaRequestBuilder, "put")


@pytest.mark.xdist_group("msgraph-models")  # parses Graph entities: see test_graph_emulator.post_raw
def test_pin_sdk_model_round_trip_drops_flow_types() -> None:
    """GET -> SynchronizationSchema model -> serialize loses flowTypes (kiota#3238): we keep the schema raw."""
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
    from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
    from msgraph.generated.models.synchronization_schema import SynchronizationSchema

    raw = json.dumps(template_schema()).encode()
    node = JsonParseNodeFactory().get_root_parse_node("application/json", raw)
    model = node.get_object_value(SynchronizationSchema)
    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    back = json.loads(writer.get_serialized_content())
    om = back["synchronizationRules"][0]["objectMappings"][1]
    assert om["sourceObjectName"] == "User"
    assert "flowTypes" not in om  # the defect: if this fails, the SDK fixed it


def test_pin_sdk_secrets_builder_cannot_read() -> None:
    from msgraph.generated.service_principals.item.synchronization.secrets.secrets_request_builder import (
        SecretsRequestBuilder,
    )

    assert hasattr(SecretsRequestBuilder, "put") and not hasattr(SecretsRequestBuilder, "get")


@pytest.mark.xdist_group("msgraph-models")  # parses Graph entities: see test_graph_emulator.post_raw
def test_pin_sdk_provisioning_step_import_enum_is_lost() -> None:
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
    from msgraph.generated.models.provisioning_object_summary import ProvisioningObjectSummary

    raw = json.dumps({"id": "1", "provisioningSteps": [{"name": "x", "provisioningStepType": "import"},
                                                        {"name": "y", "provisioningStepType": "export"}]})
    model = JsonParseNodeFactory().get_root_parse_node("application/json", raw.encode()).get_object_value(
        ProvisioningObjectSummary)
    steps = [s.provisioning_step_type for s in model.provisioning_steps]
    assert steps[0] is None and steps[1] is not None  # we never rely on step types


def test_schema_merge_input_copy_is_deep() -> None:
    schema = template_schema()
    snapshot = copy.deepcopy(schema)
    mapping = seed_mapping()
    mapping.users[1] = AttributeMapping("displayName", "Join(\" \", [givenName], [surname])")
    azure_schema.merge(schema, mapping)
    assert schema == snapshot


def test_a_groups_section_without_members_keeps_the_members_mapping() -> None:
    # A custom mapping file that names only displayName for groups: pruning members would make Entra stop syncing
    # memberships while apply reports success, so members is kept like active (KEPT).
    schema = _with_template_extras(template_schema())
    mapping = seed_mapping(groups=[AttributeMapping("displayName", "[displayName]", matching=1)])
    merged, diffs = azure_schema.merge(schema, mapping)
    assert ("Group mappings not in the mapping file", ("externalId",)) in [(d.key, d.removed) for d in diffs]
    group_om = azure_schema.object_mapping(azure_schema.find_rule(merged), "Group")
    assert group_om is not None and "members" in [a["targetAttributeName"] for a in group_om["attributeMappings"]]


def test_a_value_entra_draws_anew_each_time_is_not_expected() -> None:
    """Guid(), Now() and RandomString() give another value at every evaluation: expected from one, Astro held
    another, and drift reported every user's attribute as a mismatch, on every run."""
    from connector.providers.entra.expected import expected_values

    items = [AttributeMapping("externalId", "Guid()"), AttributeMapping("title", 'Join(" ", "at", Now())'),
             AttributeMapping("nickName", 'RandomString(6, 1, 1, 0, 1, "")'),
             AttributeMapping("displayName", "[displayName]")]
    expected = expected_values(compile_mappings(items), {"displayName": "Ada"})
    assert expected == {"displayName": "Ada"}


def test_a_user_the_username_mapping_gives_nothing_is_not_expected_under_another_name() -> None:
    """`userName <- [mail]` and a user without mail: Entra cannot export the user (no userName). The view fell back
    to the userPrincipalName and reported the user missing under it, which no fix could bring."""
    from connector.mapping.model import AttributeMapping
    from connector.providers.entra.expected import compile_mappings, idp_user

    by_mail = compile_mappings([AttributeMapping(target="userName", source="[mail]")])
    profile = {"id": "u1", "userPrincipalName": "nomail@acme.onmicrosoft.com", "accountEnabled": True}
    assert idp_user(profile, by_mail) is None
    mailed = idp_user({**profile, "mail": "ada@acme.example"}, by_mail)
    assert mailed is not None and mailed.user_name == "ada@acme.example"
    no_mapping = idp_user(profile, compile_mappings([AttributeMapping(target="displayName", source="[mail]")]))
    assert no_mapping is not None and no_mapping.user_name == "nomail@acme.onmicrosoft.com"


def test_the_scim_job_is_picked_whatever_order_graph_lists_the_jobs_in() -> None:
    """test-connection took the first job listed; every other command the SCIM one (tenant.pick_job)."""
    from connector.providers.entra.tenant import pick_job

    other, scim = {"id": "Other.1.t", "templateId": "Other"}, {"id": "scim.2.t", "templateId": "scim"}
    assert pick_job([other, scim]) is scim and pick_job([scim, other]) is scim
    assert pick_job([other]) is other and pick_job([]) is None


def test_a_groups_members_mapping_deleted_in_the_portal_is_put_back() -> None:
    """The mapping file's groups need not name `members` (KEPT): deleted in the portal, Entra stops sending
    memberships, and the merge put back only a User's `active`: no diff, an empty plan, nothing said."""
    schema = template_schema()
    group = azure_schema.object_mapping(azure_schema.find_rule(schema), "Group")
    assert group is not None
    group["attributeMappings"] = [a for a in group["attributeMappings"] if a["targetAttributeName"] != "members"]
    mapping = seed_mapping(groups=[AttributeMapping("displayName", "[displayName]", matching=1)])
    merged, diffs = azure_schema.merge(schema, mapping)
    assert [(d.key, d.before, d.after) for d in diffs] == [("Group members", None, "[members]")]
    assert "Entra stops sending who is in each Team" in diffs[0].changes[-1]
    _, again = azure_schema.merge(merged, mapping)
    assert again == []


def test_a_number_constant_in_a_tree_graph_returns_without_its_text_is_no_change() -> None:
    """Graph may answer a source tree without its expression text; a tree does not say whether a constant was
    written 1 or "1", so `Left([givenName], 1)` read back as Left([givenName], "1") was a change on every plan."""
    mapping = seed_mapping()
    mapping.users.append(AttributeMapping("nickName", "Left([givenName], 1)"))
    mapping.users.append(AttributeMapping("title", 'IIF(InStr([department], "x", , vbTextCompare) > 0, "a", "b")'))
    merged, _ = azure_schema.merge(template_schema(), mapping)
    user = azure_schema.object_mapping(azure_schema.find_rule(merged), "User")
    assert user is not None

    def bare(tree: Any) -> Any:
        out = {k: v for k, v in tree.items() if k != "expression"}
        out["parameters"] = [{**p, "value": bare(p["value"])} for p in tree.get("parameters") or []]
        return out

    for a in user["attributeMappings"]:
        if a["targetAttributeName"] in ("nickName", "title"):
            a["source"] = bare(a["source"])
    _, diffs = azure_schema.merge(merged, mapping)
    assert diffs == []
    mapping.users[-2] = AttributeMapping("nickName", "Left([givenName], 2)")  # a real change still is one
    _, diffs = azure_schema.merge(merged, mapping)
    assert [d.key for d in diffs] == ["User nickName"]
