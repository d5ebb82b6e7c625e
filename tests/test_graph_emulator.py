"""The Graph emulator through the official msgraph-sdk over loopback HTTP: every answer parses into SDK models,
errors raise ODataError with Graph's codes, and the real service's quirks are there (schema PATCH 404,
PascalCase secret keys, default user properties, provisionOnDemand limits, 429 Retry-After)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest

from connector.sandbox.astro.scim import AstroScim
from connector.sandbox.graph.api import USER_ROLE_ID, GraphEmulator
from connector.sandbox.graph.template import NON_GALLERY_TEMPLATE_ID, RULE_ID
from connector.sandbox.seed import SeedOrg, generate
from connector.sandbox.server import ServedApp

# The tests whose SDK calls parse Graph entities into models (see post_raw) share one worker: this module's, and
# the SDK pins of test_azure_provider_units.
MODELS_GROUP = pytest.mark.xdist_group("msgraph-models")
pytestmark = MODELS_GROUP

T = TypeVar("T")
ORG_ID = "clorg0000000000000000000001"


@dataclass
class GraphEnv:
    """A Graph emulator and an Astro SCIM org on loopback (no Okta: these tests are about Entra only)."""

    graph: GraphEmulator
    astro: AstroScim
    seed: SeedOrg
    graph_url: str  # ends with /v1.0
    token: str
    scim_url: str
    scim_token: str
    scim_requests: list[dict[str, Any]] = field(default_factory=list)
    throttle_next: list[int] = field(default_factory=lambda: [0])  # answer this many Graph requests with 429

    def astro_users(self) -> list[dict[str, Any]]:
        return self.astro.users(ORG_ID)

    def astro_groups(self) -> list[dict[str, Any]]:
        return self.astro.groups(ORG_ID)


def _recording(app: Any, sink: list[dict[str, Any]]) -> Any:
    """WSGI wrapper that records each SCIM request (method, path, query, JSON body) the engine sends."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        import io

        environ["wsgi.input"] = io.BytesIO(raw)
        sink.append({
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "body": json.loads(raw) if raw else None,
        })
        return app(environ, start_response)

    return wrapped


def _throttling(app: Any, env_ref: list[GraphEnv]) -> Any:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        env = env_ref[0]
        if env.throttle_next[0] > 0:
            env.throttle_next[0] -= 1
            from werkzeug.wrappers import Request

            return env.graph.throttle_response(Request(environ))(environ, start_response)
        return app(environ, start_response)

    return wrapped


@pytest.fixture
def graph_env() -> Iterator[GraphEnv]:
    token, scim_token = "graph-" + uuid.uuid4().hex, "astro-" + uuid.uuid4().hex
    graph = GraphEmulator(token, tenant_id=str(uuid.uuid4()))
    seed = generate(users=12, groups=3, seed=7)
    graph.load(seed)
    astro = AstroScim()
    astro.add_org(ORG_ID, scim_token)
    requests: list[dict[str, Any]] = []
    env_ref: list[GraphEnv] = []
    astro_served = ServedApp("astro-test", _recording(astro.app, requests)).start()
    graph_served = ServedApp("graph-test", _throttling(graph.app, env_ref)).start()
    astro.base_url = astro_served.url
    env = GraphEnv(graph, astro, seed, graph_served.url + "/v1.0", token, astro.scim_url(ORG_ID), scim_token,
                   requests)
    env_ref.append(env)
    try:
        yield env
    finally:
        graph_served.stop()
        astro_served.stop()


class StaticToken:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


def sdk_client(env: GraphEnv, token: str | None = None) -> Any:
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient

    auth = AzureIdentityAuthenticationProvider(StaticToken(token or env.token), allowed_hosts=["127.0.0.1"])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = env.graph_url
    return GraphServiceClient(request_adapter=adapter)


def run(env: GraphEnv, fn: Callable[[Any], Awaitable[T]], token: str | None = None) -> T:
    """Run `fn(client)` with a fresh GraphServiceClient in a fresh event loop."""

    async def main() -> T:
        return await fn(sdk_client(env, token))

    return asyncio.run(main())


async def instantiate(c: Any, name: str = "Astro") -> Any:
    from msgraph.generated.application_templates.item.instantiate.instantiate_post_request_body import (
        InstantiatePostRequestBody,
    )

    tpl = c.application_templates.by_application_template_id(NON_GALLERY_TEMPLATE_ID)
    return await tpl.instantiate.post(InstantiatePostRequestBody(display_name=name))


async def new_job(c: Any, sp_id: str) -> Any:
    from msgraph.generated.models.synchronization_job import SynchronizationJob

    return await c.service_principals.by_service_principal_id(sp_id).synchronization.jobs.post(
        SynchronizationJob(template_id="scim"))


async def put_secrets(c: Any, sp_id: str, pairs: dict[str, str]) -> None:
    from msgraph.generated.models.synchronization_secret import SynchronizationSecret
    from msgraph.generated.models.synchronization_secret_key_string_value_pair import (
        SynchronizationSecretKeyStringValuePair,
    )
    from msgraph.generated.service_principals.item.synchronization.secrets.secrets_put_request_body import (
        SecretsPutRequestBody,
    )

    body = SecretsPutRequestBody(value=[
        SynchronizationSecretKeyStringValuePair(key=SynchronizationSecret(k), value=v) for k, v in pairs.items()
    ])
    await c.service_principals.by_service_principal_id(sp_id).synchronization.secrets.put(body)


async def assign(c: Any, sp_id: str, principal_id: str) -> Any:
    from msgraph.generated.models.app_role_assignment import AppRoleAssignment

    return await c.service_principals.by_service_principal_id(sp_id).app_role_assigned_to.post(AppRoleAssignment(
        principal_id=uuid.UUID(principal_id), resource_id=uuid.UUID(sp_id), app_role_id=uuid.UUID(USER_ROLE_ID)))


def job_builder(c: Any, sp_id: str, job_id: str) -> Any:
    return c.service_principals.by_service_principal_id(sp_id).synchronization.jobs.by_synchronization_job_id(
        job_id)


async def raw(c: Any, method: str, builder: Any, body: Any = None) -> bytes | None:
    """Send raw JSON to a builder's URL with the SDK's adapter (what the connector does for the schema)."""
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    ri = RequestInformation(Method(method), builder.url_template, builder.path_parameters)
    if body is not None:
        ri.set_stream_content(json.dumps(body).encode(), "application/json")
    if method == "GET":
        return await c.request_adapter.send_primitive_async(ri, "bytes", {"XXX": ODataError})
    await c.request_adapter.send_no_response_content_async(ri, {"XXX": ODataError})
    return None


def odata_error(exc_info: Any) -> tuple[int, str, str]:
    err = exc_info.value
    return err.response_status_code, err.error.code, err.error.message or ""


async def post_raw(c: Any, builder: Any, body: Any) -> Any:
    """POST a body the SDK serialises; the answer as JSON, not as an SDK model. Parsing any Graph entity with the
    SDK first imports every one of msgraph's ~2,400 entity modules (Entity.get_field_deserializers: ~1.9 s per
    process), so only the tests about the SDK's parsing do it (in one worker: MODELS_GROUP)."""
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    answer = await c.request_adapter.send_primitive_async(builder.to_post_request_information(body), "bytes",
                                                          {"XXX": ODataError})
    return json.loads(answer)


def configured(env: GraphEnv) -> tuple[str, str]:
    """Instantiate Astro, create the scim job and save working secrets: (sp id, job id)."""
    from msgraph.generated.application_templates.item.instantiate.instantiate_post_request_body import (
        InstantiatePostRequestBody,
    )
    from msgraph.generated.models.synchronization_job import SynchronizationJob

    async def go(c: Any) -> tuple[str, str]:
        tpl = c.application_templates.by_application_template_id(NON_GALLERY_TEMPLATE_ID)
        asp = await post_raw(c, tpl.instantiate, InstantiatePostRequestBody(display_name="Astro"))
        sp_id = str(asp["servicePrincipal"]["id"])
        job = await post_raw(c, c.service_principals.by_service_principal_id(sp_id).synchronization.jobs,
                             SynchronizationJob(template_id="scim"))
        await put_secrets(c, sp_id, {"BaseAddress": env.scim_url, "SecretToken": env.scim_token})
        return sp_id, str(job["id"])

    return run(env, go)


# ------------------------------------------------------------------------------------------ app and SP


def test_instantiate_and_find_service_principal(graph_env: GraphEnv) -> None:
    async def go(c: Any) -> None:
        from msgraph.generated.service_principals.service_principals_request_builder import (
            ServicePrincipalsRequestBuilder,
        )

        asp = await instantiate(c)
        sp, app = asp.service_principal, asp.application
        assert sp.app_id == app.app_id and sp.display_name == "Astro"
        assert {r.display_name for r in sp.app_roles} == {"User", "msiam_access"}
        assert sp.app_role_assignment_required is True
        assert app.application_template_id == NON_GALLERY_TEMPLATE_ID

        q = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            filter="displayName eq 'astro'", select=["id", "appId"])
        from kiota_abstractions.base_request_configuration import RequestConfiguration

        found = await c.service_principals.get(request_configuration=RequestConfiguration(query_parameters=q))
        assert [s.id for s in found.value] == [sp.id]
        assert found.value[0].display_name is None  # $select is honoured
        by_app = await c.service_principals_with_app_id(sp.app_id).get()
        assert by_app.id == sp.id
        by_id = await c.service_principals.by_service_principal_id(sp.id).get()
        assert by_id.app_id == sp.app_id
        none = await c.service_principals.get(request_configuration=RequestConfiguration(
            query_parameters=ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
                filter="displayName eq 'Nope'")))
        assert none.value == []

    run(graph_env, go)


def test_templates_have_the_scim_schema(graph_env: GraphEnv) -> None:
    async def go(c: Any) -> None:
        from msgraph.generated.models.object_flow_types import ObjectFlowTypes

        sp = (await instantiate(c)).service_principal
        templates = await c.service_principals.by_service_principal_id(sp.id).synchronization.templates.get()
        (tpl,) = templates.value
        assert tpl.id == "scim" and str(tpl.application_id) == sp.app_id
        schema = tpl.schema
        assert {d.name for d in schema.directories} == {"Azure Active Directory", "customappsso"}
        (rule,) = schema.synchronization_rules
        assert rule.id == RULE_ID
        users = next(m for m in rule.object_mappings if m.source_object_name == "User")
        assert users.name == "Provision Azure Active Directory Users"
        assert set(users.flow_types) == {ObjectFlowTypes.Add, ObjectFlowTypes.Update, ObjectFlowTypes.Delete}
        by_target = {m.target_attribute_name: m for m in users.attribute_mappings}
        assert by_target["userName"].source.name == "userPrincipalName"
        assert by_target["userName"].matching_priority == 1
        active = by_target["active"].source
        assert active.name == "Switch" and active.expression.startswith("Switch([IsSoftDeleted]")
        assert [p.key for p in active.parameters][:2] == ["source", "defaultValue"]
        assert by_target['emails[type eq "work"].value'].source.name == "mail"
        assert by_target["externalId"].source.name == "mailNickname"
        groups = next(m for m in rule.object_mappings if m.source_object_name == "Group")
        assert {m.target_attribute_name for m in groups.attribute_mappings} == {"displayName", "externalId",
                                                                                "members"}

    run(graph_env, go)


# --------------------------------------------------------------------------------------------- jobs


def test_job_lifecycle(graph_env: GraphEnv) -> None:
    async def go(c: Any) -> None:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.models.synchronization_schedule_state import SynchronizationScheduleState
        from msgraph.generated.models.synchronization_status_code import SynchronizationStatusCode

        sp = (await instantiate(c)).service_principal
        job = await new_job(c, sp.id)
        assert job.id.startswith("scim.") and job.template_id == "scim"
        assert job.schedule.state == SynchronizationScheduleState.Disabled
        assert job.status.code == SynchronizationStatusCode.NotConfigured
        assert job.status.steady_state_first_achieved_time.year == 1
        jobs = await c.service_principals.by_service_principal_id(sp.id).synchronization.jobs.get()
        assert [j.id for j in jobs.value] == [job.id]
        with pytest.raises(ODataError) as dup:
            await new_job(c, sp.id)
        assert odata_error(dup)[:2] == (409, "Conflict")
        await put_secrets(c, sp.id, {"BaseAddress": graph_env.scim_url, "SecretToken": graph_env.scim_token})
        got = await job_builder(c, sp.id, job.id).get()
        assert got.status.code == SynchronizationStatusCode.NotRun
        await job_builder(c, sp.id, job.id).delete()
        with pytest.raises(ODataError) as gone:
            await job_builder(c, sp.id, job.id).get()
        assert odata_error(gone)[:2] == (404, "Request_ResourceNotFound")

    run(graph_env, go)


def test_start_pause_restart_status(graph_env: GraphEnv) -> None:
    sp_id, job_id = configured(graph_env)
    group = graph_env.graph.group("Astro Users")
    assert group is not None

    async def go(c: Any) -> None:
        from msgraph.generated.models.synchronization_job_restart_criteria import (
            SynchronizationJobRestartCriteria,
        )
        from msgraph.generated.models.synchronization_job_restart_scope import SynchronizationJobRestartScope
        from msgraph.generated.models.synchronization_status_code import SynchronizationStatusCode
        from msgraph.generated.models.synchronization_task_execution_result import (
            SynchronizationTaskExecutionResult,
        )
        from msgraph.generated.service_principals.item.synchronization.jobs.item.restart.restart_post_request_body import (  # noqa: E501
            RestartPostRequestBody,
        )

        await assign(c, sp_id, group["id"])
        jb = job_builder(c, sp_id, job_id)
        await jb.start.post()
        job = await jb.get()
        assert job.status.code == SynchronizationStatusCode.Active
        last = job.status.last_execution
        assert last.state == SynchronizationTaskExecutionResult.Succeeded
        assert last.count_exported == 13 and last.count_entitled == 13  # 12 users + the group
        assert job.status.steady_state_last_achieved_time.year > 2000
        await jb.pause.post()
        assert (await jb.get()).status.code == SynchronizationStatusCode.Paused
        await jb.restart.post(RestartPostRequestBody(criteria=SynchronizationJobRestartCriteria(
            reset_scope=SynchronizationJobRestartScope.Full)))
        await jb.restart.post(RestartPostRequestBody(criteria=SynchronizationJobRestartCriteria(
            additional_data={"resetScope": "Watermark, Escrows, QuarantineState"})))
        await jb.start.post()
        job = await jb.get()
        assert job.status.code == SynchronizationStatusCode.Active
        # The restart forgot the escrows: the cycle compared every user again (no change) and, as Entra does
        # not read members back, re-sent the group's members.
        assert job.status.last_execution.count_exported == 1
        assert job.status.last_execution.count_imported == 13

    run(graph_env, go)
    assert len(graph_env.astro_users()) == 12
    (team,) = graph_env.astro_groups()
    assert len(team["members"]) == 12  # re-adding members did not duplicate them


# ------------------------------------------------------------------------------------------ secrets


def test_secrets_put_and_read_back_masked(graph_env: GraphEnv) -> None:
    sp_id, _ = configured(graph_env)

    async def go(c: Any) -> None:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        sync = await c.service_principals.by_service_principal_id(sp_id).synchronization.get()
        values = {str(s.key.value if hasattr(s.key, "value") else s.key): s.value for s in sync.secrets}
        assert values == {"BaseAddress": graph_env.scim_url, "SecretToken": "*****"}
        secrets_builder = c.service_principals.by_service_principal_id(sp_id).synchronization.secrets
        listed = json.loads(await raw(c, "GET", secrets_builder) or b"{}")
        assert {p["key"]: p["value"] for p in listed["value"]}["SecretToken"] == "*****"
        with pytest.raises(ODataError) as bad:
            await raw(c, "PUT", secrets_builder, {"value": [{"key": "baseAddress", "value": "https://x"}]})
        status, code, message = odata_error(bad)
        assert (status, code) == (500, "UnknownError") and "baseAddress" in message

    run(graph_env, go)
    assert graph_env.graph.secrets(sp_id)["SecretToken"] == graph_env.scim_token


# --------------------------------------------------------------------------------- validateCredentials


def test_validate_credentials_calls_the_scim_endpoint(graph_env: GraphEnv) -> None:
    sp_id, job_id = configured(graph_env)

    async def go(c: Any) -> None:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.models.synchronization_secret import SynchronizationSecret
        from msgraph.generated.models.synchronization_secret_key_string_value_pair import (
            SynchronizationSecretKeyStringValuePair as Pair,
        )
        from msgraph.generated.service_principals.item.synchronization.jobs.item.validate_credentials.validate_credentials_post_request_body import (  # noqa: E501
            ValidateCredentialsPostRequestBody,
        )

        jb = job_builder(c, sp_id, job_id)
        assert await jb.validate_credentials.post(ValidateCredentialsPostRequestBody(use_saved_credentials=True)) \
            is None
        good = [Pair(key=SynchronizationSecret.BaseAddress, value=graph_env.scim_url),
                Pair(key=SynchronizationSecret.SecretToken, value=graph_env.scim_token)]
        await jb.validate_credentials.post(ValidateCredentialsPostRequestBody(use_saved_credentials=False,
                                                                              credentials=good))
        bad = [good[0], Pair(key=SynchronizationSecret.SecretToken, value="wrong-token")]
        with pytest.raises(ODataError) as refused:
            await jb.validate_credentials.post(ValidateCredentialsPostRequestBody(use_saved_credentials=False,
                                                                                  credentials=bad))
        status, code, message = odata_error(refused)
        assert status == 400 and code.endswith("CredentialValidationUnauthorized") and "401" in message
        assert "wrong-token" not in message
        nowhere = [Pair(key=SynchronizationSecret.BaseAddress, value="http://127.0.0.1:9/scim/v2/x"), good[1]]
        with pytest.raises(ODataError) as down:
            await jb.validate_credentials.post(ValidateCredentialsPostRequestBody(use_saved_credentials=False,
                                                                                  credentials=nowhere))
        assert odata_error(down)[1].endswith("CredentialValidationUnavailable")

    run(graph_env, go)
    probes = [r for r in graph_env.scim_requests if r["method"] == "GET"]
    assert any(r["path"].endswith("/Users") and "userName+eq" in r["query"] for r in probes)
    assert any(r["path"].endswith("/Groups") and "excludedAttributes=members" in r["query"] for r in probes)


# -------------------------------------------------------------------------------------------- schema


def test_schema_get_put_and_patch_404(graph_env: GraphEnv) -> None:
    sp_id, job_id = configured(graph_env)

    async def go(c: Any) -> None:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        jb = job_builder(c, sp_id, job_id)
        model = await jb.schema.get()
        assert model.synchronization_rules[0].object_mappings[0].attribute_mappings
        # The SDK only offers PATCH; the service has no PATCH route (msgraph-sdk-python#820).
        with pytest.raises(ODataError) as patched:
            await jb.schema.patch(model)
        status, code, message = odata_error(patched)
        assert status == 404 and "No HTTP resource was found that matches the request URI" in message
        assert code == "UnknownError"

        # Raw GET -> edit -> PUT keeps everything, unknown fields included.
        doc = json.loads(await raw(c, "GET", jb.schema) or b"{}")
        users = doc["synchronizationRules"][0]["objectMappings"][0]
        users["attributeMappings"] = [m for m in users["attributeMappings"] if m["targetAttributeName"] != "title"]
        users["x-sandbox-note"] = {"kept": True}
        await raw(c, "PUT", jb.schema, doc)
        again = json.loads(await raw(c, "GET", jb.schema) or b"{}")
        users_again = again["synchronizationRules"][0]["objectMappings"][0]
        assert users_again["flowTypes"] == "Add, Update, Delete"
        assert users_again["x-sandbox-note"] == {"kept": True}
        assert "title" not in {m["targetAttributeName"] for m in users_again["attributeMappings"]}

        # Sending the SDK model with PUT (the documented workaround) loses the flags enums (kiota#3238).
        from kiota_abstractions.method import Method

        ri = jb.schema.to_patch_request_information(model)
        ri.http_method = Method.PUT
        await c.request_adapter.send_no_response_content_async(ri, {"XXX": ODataError})
        lossy = json.loads(await raw(c, "GET", jb.schema) or b"{}")
        assert "flowTypes" not in lossy["synchronizationRules"][0]["objectMappings"][0]

        with pytest.raises(ODataError) as broken:
            await raw(c, "PUT", jb.schema, {"directories": []})
        assert odata_error(broken)[:2] == (400, "BadRequest")

    run(graph_env, go)


def test_parse_expression(graph_env: GraphEnv) -> None:
    sp_id, job_id = configured(graph_env)

    async def go(c: Any) -> None:
        from msgraph.generated.service_principals.item.synchronization.jobs.item.schema.parse_expression.parse_expression_post_request_body import (  # noqa: E501
            ParseExpressionPostRequestBody,
        )

        jb = job_builder(c, sp_id, job_id)
        ok = await jb.schema.parse_expression.post(ParseExpressionPostRequestBody(expression='Join(" ", [a], [b])'))
        assert ok.parsing_succeeded and ok.parsed_expression.name == "Join"
        bad = await jb.schema.parse_expression.post(ParseExpressionPostRequestBody(expression="Join([a]"))
        assert not bad.parsing_succeeded and bad.error is not None

    run(graph_env, go)


# ----------------------------------------------------------------------------------- provisionOnDemand


def test_provision_on_demand_user_and_group_limits(graph_env: GraphEnv) -> None:
    sp_id, job_id = configured(graph_env)
    graph = graph_env.graph
    group = graph.group("Astro Users")
    assert group is not None
    upns = graph.group_member_upns("Astro Users")
    ids = [graph.user(u)["id"] for u in upns]  # type: ignore[index]

    async def go(c: Any) -> None:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph.generated.models.synchronization_job_application_parameters import (
            SynchronizationJobApplicationParameters,
        )
        from msgraph.generated.models.synchronization_job_subject import SynchronizationJobSubject
        from msgraph.generated.models.synchronization_linked_objects import SynchronizationLinkedObjects
        from msgraph.generated.service_principals.item.synchronization.jobs.item.provision_on_demand.provision_on_demand_post_request_body import (  # noqa: E501
            ProvisionOnDemandPostRequestBody,
        )

        def group_body(members: list[str]) -> Any:
            subject = SynchronizationJobSubject(
                object_id=group["id"], object_type_name="Group",
                links=SynchronizationLinkedObjects(members=[
                    SynchronizationJobSubject(object_id=m, object_type_name="User") for m in members]))
            return ProvisionOnDemandPostRequestBody(parameters=[SynchronizationJobApplicationParameters(
                rule_id=RULE_ID, subjects=[subject])])

        await assign(c, sp_id, group["id"])
        jb = job_builder(c, sp_id, job_id)
        one = await jb.provision_on_demand.post(ProvisionOnDemandPostRequestBody(parameters=[
            SynchronizationJobApplicationParameters(rule_id=RULE_ID, subjects=[
                SynchronizationJobSubject(object_id=ids[0], object_type_name="User")])]))
        assert json.loads(one.key)["result"] == "Success"
        result = json.loads(one.value)
        assert result["action"] == "Create" and result["statusInfo"]["status"] == "Success"
        assert result["targetSystem"]["name"] == "customappsso"

        five = await jb.provision_on_demand.post(group_body(ids[:5]))
        results = json.loads(five.value)
        assert isinstance(results, list) and results[0]["sourceIdentity"]["type"] == "Group"
        assert [r["statusInfo"]["status"] for r in results[1:]] == ["Skipped"] + ["Success"] * 4
        with pytest.raises(ODataError) as six:
            await jb.provision_on_demand.post(group_body(ids[:6]))
        assert odata_error(six)[:2] == (400, "BadRequest")
        with pytest.raises(ODataError) as bad_rule:
            await jb.provision_on_demand.post(ProvisionOnDemandPostRequestBody(parameters=[
                SynchronizationJobApplicationParameters(rule_id="nope", subjects=[
                    SynchronizationJobSubject(object_id=ids[0], object_type_name="User")])]))
        assert odata_error(bad_rule)[0] == 400

    run(graph_env, go)
    astro_group = graph_env.astro.find_group(ORG_ID, "Astro Users")
    assert astro_group is not None and len(astro_group["members"]) == 5


def test_provision_on_demand_rate_limit(graph_env: GraphEnv) -> None:
    sp_id, job_id = configured(graph_env)
    user = graph_env.graph.users()[0]
    url = f"{graph_env.graph_url}/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/provisionOnDemand"
    body = {"parameters": [{"ruleId": RULE_ID, "subjects": [{"objectId": user["id"], "objectTypeName": "User"}]}]}
    headers = {"Authorization": f"Bearer {graph_env.token}"}
    with httpx.Client() as client:
        codes = [client.post(url, json=body, headers=headers).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        throttled = client.post(url, json=body, headers=headers)
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10


# ------------------------------------------------------------------------------------------ assignments


def test_app_role_assignments(graph_env: GraphEnv) -> None:
    user = graph_env.graph.users()[0]

    async def go(c: Any) -> None:
        from msgraph.generated.models.app_role_assignment import AppRoleAssignment
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        sp = (await instantiate(c)).service_principal
        made = await assign(c, sp.id, user["id"])
        assert made.principal_type == "User" and made.principal_display_name == user["displayName"]
        assert str(made.app_role_id) == USER_ROLE_ID and made.created_date_time is not None
        listed = await c.service_principals.by_service_principal_id(sp.id).app_role_assigned_to.get()
        assert [a.id for a in listed.value] == [made.id]
        with pytest.raises(ODataError) as dup:
            await assign(c, sp.id, user["id"])
        assert odata_error(dup)[0] == 400
        with pytest.raises(ODataError) as bad_role:
            await c.service_principals.by_service_principal_id(sp.id).app_role_assigned_to.post(AppRoleAssignment(
                principal_id=uuid.UUID(user["id"]), resource_id=uuid.UUID(sp.id), app_role_id=uuid.uuid4()))
        assert "Permission being assigned was not found" in odata_error(bad_role)[2]
        await c.service_principals.by_service_principal_id(sp.id).app_role_assigned_to.by_app_role_assignment_id(
            made.id).delete()
        assert (await c.service_principals.by_service_principal_id(sp.id).app_role_assigned_to.get()).value == []

    run(graph_env, go)


# ------------------------------------------------------------------------------------ users and groups


def test_users_paging_filter_and_select(graph_env: GraphEnv) -> None:
    async def go(c: Any) -> None:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder
        from msgraph_core.tasks.page_iterator import PageIterator

        Q = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters
        first = await c.users.get(request_configuration=RequestConfiguration(query_parameters=Q(top=5)))
        assert len(first.value) == 5 and first.odata_next_link
        assert first.value[0].department is None  # not in Graph's default property set
        seen: list[str] = []

        def collect(user: Any) -> bool:
            seen.append(user.user_principal_name)
            return True

        it = PageIterator(first, c.request_adapter)
        await it.iterate(collect)
        assert len(seen) == 12 and len(set(seen)) == 12
        second = await c.users.with_url(first.odata_next_link).get()
        assert second.value[0].user_principal_name == seen[5]

        target = seen[3]
        found = await c.users.get(request_configuration=RequestConfiguration(query_parameters=Q(
            filter=f"userPrincipalName eq '{target.upper()}'", select=["id", "accountEnabled", "department"])))
        (user,) = found.value
        assert user.account_enabled is True and user.department and user.user_principal_name is None
        assert (await c.users.by_user_id(target).get()).id == user.id

    run(graph_env, go)


def test_top_out_of_range_is_400(graph_env: GraphEnv) -> None:
    headers = {"Authorization": f"Bearer {graph_env.token}"}
    r = httpx.get(f"{graph_env.graph_url}/users", params={"$top": "1000"}, headers=headers)
    assert r.status_code == 400 and "between 1 and 999" in r.json()["error"]["message"]
    r = httpx.get(f"{graph_env.graph_url}/users", params={"$filter": "displayName eq"}, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"


def test_ne_not_endswith_and_count_on_directory_objects_need_an_advanced_query(graph_env: GraphEnv) -> None:
    """"Advanced query capabilities on Microsoft Entra ID objects" (Graph docs): `ne`, `not` and `endsWith` in a
    directory $filter are served only with the header ConsistencyLevel: eventual and $count=true; without them
    Graph answers 400 Request_UnsupportedQuery ("Operator 'ne' is not supported because the required parameters
    might be missing..."). `eq` and `startsWith` need neither; a quoted 'not' is a value, not the operator."""
    headers = {"Authorization": f"Bearer {graph_env.token}"}
    users = f"{graph_env.graph_url}/users"
    graph_env.graph.update_user(graph_env.graph.users()[0]["userPrincipalName"], accountEnabled=False)
    everyone = graph_env.graph.users()
    disabled = {u["id"] for u in everyone if u.get("accountEnabled") is False}
    for flt, op in (("accountEnabled ne true", "ne"), ("not(accountEnabled eq true)", "not"),
                    ("endswith(mail,'.example')", "endsWith")):
        for extra_headers, params in (({}, {}), ({"ConsistencyLevel": "eventual"}, {}), ({}, {"$count": "true"})):
            plain = httpx.get(users, params={"$filter": flt, **params}, headers={**headers, **extra_headers})
            assert plain.status_code == 400, (flt, extra_headers, params, plain.text)
            if params:
                continue  # $count without the header: refused for that already (below)
            error = plain.json()["error"]
            assert error["code"] == "Request_UnsupportedQuery" and f"Operator '{op}' is not supported" in \
                error["message"] and "ConsistencyLevel:eventual" in error["message"]
        advanced = httpx.get(users, params={"$filter": flt, "$count": "true", "$top": "999"},
                             headers={**headers, "ConsistencyLevel": "eventual"})
        assert advanced.status_code == 200, advanced.text
        found = {u["id"] for u in advanced.json()["value"]}
        assert found == (disabled if op != "endsWith" else {u["id"] for u in everyone
                                                            if str(u.get("mail") or "").endswith(".example")})
    assert disabled and len(disabled) < len(everyone)
    # $count itself needs the header on directory objects (microsoft-graph-docs#13226, #13142).
    for path in ("/users", f"/groups/{graph_env.graph.groups()[0]['id']}/members"):
        bare = httpx.get(graph_env.graph_url + path, params={"$count": "true"}, headers=headers)
        assert (bare.status_code, bare.json()["error"]["code"]) == (400, "Request_BadRequest"), bare.text
        counted = httpx.get(graph_env.graph_url + path, params={"$count": "true"},
                            headers={**headers, "ConsistencyLevel": "eventual"})
        assert counted.status_code == 200 and counted.json()["@odata.count"] == len(counted.json()["value"])
    for flt in ("startswith(displayName,'A')", "displayName eq 'not'", "accountEnabled eq true"):
        assert httpx.get(users, params={"$filter": flt}, headers=headers).status_code == 200, flt
    sps = httpx.get(f"{graph_env.graph_url}/servicePrincipals", params={"$filter": "displayName ne 'x'"},
                    headers=headers)
    assert sps.status_code == 400 and sps.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_a_name_where_an_object_id_goes_is_400_invalid_object_identifier(graph_env: GraphEnv) -> None:
    """Groups, service principals and applications are keyed by GUID: Graph answers a name in the id's place
    with 400 Request_BadRequest "Invalid object identifier '<name>'." (reported for GET /groups/{name}/members
    in OfficeDev/microsoft-teams-apps-incentives#53 and microsoftgraph/microsoft-graph-docs-contrib#3854), not
    404. A well-formed id that names nothing stays 404; a user is also found by userPrincipalName."""
    headers = {"Authorization": f"Bearer {graph_env.token}"}
    base = graph_env.graph_url
    for path in ("/groups/Engineering", "/groups/Engineering/members", "/groups/Engineering/transitiveMembers",
                 "/servicePrincipals/Astro", "/servicePrincipals/Astro/synchronization/jobs",
                 "/servicePrincipals/Astro/appRoleAssignedTo", "/applications/Astro"):
        r = httpx.get(base + path, headers=headers)
        assert r.status_code == 400, (path, r.status_code, r.text)
        error = r.json()["error"]
        assert (error["code"], error["message"]) == (
            "Request_BadRequest", f"Invalid object identifier '{path.split('/')[2]}'."), path
    for path in (f"/groups/{uuid.uuid4()}/members", f"/servicePrincipals/{uuid.uuid4()}",
                 "/users/nobody@example.com"):
        r = httpx.get(base + path, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "Request_ResourceNotFound"), path


def test_groups_and_members(graph_env: GraphEnv) -> None:
    team = next(t for t in graph_env.seed.teams if t.name != "Astro Users" and t.member_keys)

    async def go(c: Any) -> None:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
        from msgraph.generated.models.user import User

        found = await c.groups.get(request_configuration=RequestConfiguration(
            query_parameters=GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
                filter=f"displayName eq '{team.name}'")))
        (group,) = found.value
        assert group.security_enabled is True
        members = await c.groups.by_group_id(group.id).members.get()
        assert all(isinstance(m, User) for m in members.value)
        assert len(members.value) == len(team.member_keys)
        users = await c.groups.by_group_id(group.id).transitive_members.graph_user.get()
        assert {u.id for u in users.value} == {m.id for m in members.value}
        all_groups = await c.groups.get()
        assert len(all_groups.value) == 4  # "Astro Users" + 3 teams

    run(graph_env, go)


# ------------------------------------------------------------------------------------------- logs


def test_provisioning_logs_parse(graph_env: GraphEnv) -> None:
    sp_id, job_id = configured(graph_env)
    graph_env.graph.assign(sp_id, graph_env.graph.users()[0]["id"])

    async def go(c: Any) -> None:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.audit_logs.provisioning.provisioning_request_builder import (
            ProvisioningRequestBuilder,
        )
        from msgraph.generated.models.provisioning_action import ProvisioningAction
        from msgraph.generated.models.provisioning_result import ProvisioningResult

        await job_builder(c, sp_id, job_id).start.post()
        Q = ProvisioningRequestBuilder.ProvisioningRequestBuilderGetQueryParameters
        logs = await c.audit_logs.provisioning.get(request_configuration=RequestConfiguration(query_parameters=Q(
            filter=f"jobId eq '{job_id}' and activityDateTime ge 2020-01-01", top=50,
            orderby=["activityDateTime desc"])))
        (entry,) = logs.value
        assert entry.provisioning_action == ProvisioningAction.Create
        assert entry.provisioning_status_info.status == ProvisioningResult.Success
        assert entry.service_principal.id == sp_id and entry.job_id == job_id
        assert entry.target_identity.id and entry.source_identity.identity_type == "User"
        assert entry.provisioning_steps and entry.target_system.display_name == "customappsso"
        none = await c.audit_logs.provisioning.get(request_configuration=RequestConfiguration(query_parameters=Q(
            filter="jobId eq 'other'")))
        assert none.value == []

    run(graph_env, go)


def test_provisioning_log_pages_by_skiptoken_only(graph_env: GraphEnv) -> None:
    """List provisioningObjectSummary (Graph v1.0) pages with $top and $skiptoken: "You cannot specify the
    number of results to be skipped", so $skip is a 400 there as on the directory lists."""
    sp_id, job_id = configured(graph_env)
    for user in graph_env.graph.users()[:3]:
        graph_env.graph.assign(sp_id, user["id"])
    headers = {"Authorization": f"Bearer {graph_env.token}"}
    started = httpx.post(f"{graph_env.graph_url}/servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/start",
                         headers=headers)
    assert started.status_code == 204, started.text
    url = f"{graph_env.graph_url}/auditLogs/provisioning"
    skipped = httpx.get(url, params={"$top": "1", "$skip": "1"}, headers=headers)
    assert skipped.status_code == 400, skipped.text
    assert "$skip" in skipped.json()["error"]["message"]
    first = httpx.get(url, params={"$top": "1"}, headers=headers).json()
    second = httpx.get(first["@odata.nextLink"], headers=headers).json()
    assert len(first["value"]) == len(second["value"]) == 1 and first["value"][0]["id"] != second["value"][0]["id"]


# ------------------------------------------------------------------------------------------ errors


def test_error_bodies_raise_odata_errors(graph_env: GraphEnv) -> None:
    async def unknown_sp(c: Any) -> None:
        await c.service_principals.by_service_principal_id(str(uuid.uuid4())).get()

    async def listing(c: Any) -> None:
        await c.users.get()

    async def bad_body(c: Any) -> None:
        tpl = c.application_templates.by_application_template_id(NON_GALLERY_TEMPLATE_ID)
        await raw(c, "POST", tpl.instantiate, {"displayName": ""})

    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    with pytest.raises(ODataError) as wrong_token:
        run(graph_env, listing, token="not-the-token")
    assert odata_error(wrong_token)[:2] == (401, "InvalidAuthenticationToken")
    with pytest.raises(ODataError) as missing:
        run(graph_env, unknown_sp)
    assert odata_error(missing)[:2] == (404, "Request_ResourceNotFound")
    with pytest.raises(ODataError) as invalid:
        run(graph_env, bad_body)
    assert odata_error(invalid)[0] == 400
    r = httpx.post(f"{graph_env.graph_url}/servicePrincipals/x/synchronization/jobs",
                   content=b"{not json", headers={"Authorization": f"Bearer {graph_env.token}"})
    assert r.status_code in (400, 404)
    graph_env.graph.deny_permission("User.Read.All")
    with pytest.raises(ODataError) as denied:
        run(graph_env, listing)
    assert odata_error(denied) == (403, "Authorization_RequestDenied",
                                   "Insufficient privileges to complete the operation.")


def test_retry_handler_honours_retry_after(graph_env: GraphEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from kiota_http.middleware import retry_handler

    # The SDK's retry handler waits with asyncio.sleep: record what it was told to wait instead of timing it.
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(delay: float) -> None:
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(retry_handler, "asyncio", SimpleNamespace(sleep=recorded))
    graph_env.throttle_next[0] = 1

    async def go(c: Any) -> int:
        return len((await c.users.get()).value)

    assert run(graph_env, go) == 12
    assert graph_env.throttle_next[0] == 0
    assert waits == [graph_env.graph.retry_after_s] == [1]  # the 429's Retry-After, once, before the retry


def test_propagation_delay_knob(graph_env: GraphEnv) -> None:
    graph_env.graph.propagation_failures = 2

    async def go(c: Any) -> list[int]:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        sp = (await instantiate(c)).service_principal
        codes = []
        for _ in range(3):
            try:
                await c.service_principals.by_service_principal_id(sp.id).synchronization.templates.get()
                codes.append(200)
            except ODataError as exc:
                codes.append(int(exc.response_status_code or 0))
        return codes

    assert run(graph_env, go) == [404, 404, 200]


def test_concurrent_reads_are_consistent(graph_env: GraphEnv) -> None:
    headers = {"Authorization": f"Bearer {graph_env.token}"}
    counts: list[int] = []

    def worker() -> None:
        with httpx.Client(headers=headers) as client:
            for _ in range(10):
                counts.append(len(client.get(f"{graph_env.graph_url}/users", params={"$top": "999"}).json()["value"]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [12] * 40
