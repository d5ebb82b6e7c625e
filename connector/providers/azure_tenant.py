"""Every Microsoft Graph call the Entra provider makes, one small async method each, through GraphClient.

Reads go through the SDK's builders and models. The synchronization schema, the secrets read and the template
list go raw (bytes -> json), because the SDK models drop `flowTypes` and other flags enums, and schema PATCH is
the wrong verb (see reference 2.5). Creates (instantiate, job, assignment) re-read before each retry, and the
SDK's own POST retry is switched off for them, so a retried create can never make a duplicate.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable
from typing import Any

from connector.errors import NotFound, RemoteError
from connector.http import RetryPolicy, is_retryable
from connector.providers.graph_client import GraphClient

NON_GALLERY_TEMPLATE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
JOB_TEMPLATE = "scim"
DEFAULT_ROLE_ID = "00000000-0000-0000-0000-000000000000"  # "default access" when an app defines no roles
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Right after instantiate, the new app is not yet visible to every Graph front end: calls answer 403/404/409
# for a while (Terraform's azuread provider retries 403/409; PowerShell scripts poll). Retry those then.
PROPAGATION_STATUSES = frozenset({403, 404, 409})
PROPAGATION_POLICY = RetryPolicy(attempts=10, base_delay=0.5, max_delay=15.0)


def is_guid(text: str) -> bool:
    return bool(_GUID.match(text.strip()))


def odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _propagating(exc: BaseException) -> bool:
    return (isinstance(exc, RemoteError) and exc.status in PROPAGATION_STATUSES) or is_retryable(exc)


def _no_sdk_retry() -> Any:
    """Request configuration that turns the SDK's RetryHandler off (for non-idempotent creates)."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_http.middleware.options import RetryHandlerOption

    return RequestConfiguration(options=[RetryHandlerOption(delay=0.0, max_retries=0, should_retry=False)])


class Tenant:
    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    @property
    def sdk(self) -> Any:
        return self.graph.sdk

    def sync(self, sp_id: str) -> Any:
        return self.sdk.service_principals.by_service_principal_id(sp_id).synchronization

    def job_builder(self, sp_id: str, job_id: str) -> Any:
        return self.sync(sp_id).jobs.by_synchronization_job_id(job_id)

    # --- the enterprise app ------------------------------------------------------------------------------

    async def list_service_principals(self, *, filter: str | None = None, top: int | None = None) -> list[Any]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.service_principals.service_principals_request_builder import (
            ServicePrincipalsRequestBuilder,
        )

        query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            filter=filter, top=top, select=["id", "appId", "displayName", "appRoles"],
        )
        builder = self.sdk.service_principals
        endpoint = "GET /servicePrincipals"
        first = await self.graph.call(
            endpoint, lambda: builder.get(request_configuration=RequestConfiguration(query_parameters=query)),
            permission="apps.read",
        )
        if top is not None:
            return list(first.value or [])
        return await self.graph.all_pages(endpoint, first, builder, permission="apps.read")

    async def find_service_principal(self, *, display_name: str | None, app_id: str | None) -> Any | None:
        if app_id:
            sps = await self.list_service_principals(filter=f"appId eq {odata_quote(app_id)}")
        else:
            sps = await self.list_service_principals(filter=f"displayName eq {odata_quote(display_name or '')}")
            # Graph's eq is case-insensitive; an exact match wins when several differ only in case.
            exact = [sp for sp in sps if sp.display_name == display_name]
            sps = exact or sps
        if len(sps) > 1:
            ids = ", ".join(str(sp.id) for sp in sps)
            raise NotFound(
                f"{len(sps)} enterprise apps are named {display_name!r} ({ids})",
                hint="set azure.app.app_id to the one to manage",
            )
        return sps[0] if sps else None

    async def instantiate(self, display_name: str) -> Any:
        from msgraph.generated.application_templates.item.instantiate.instantiate_post_request_body import (
            InstantiatePostRequestBody,
        )

        builder = self.sdk.application_templates.by_application_template_id(NON_GALLERY_TEMPLATE).instantiate
        body = InstantiatePostRequestBody(display_name=display_name)
        result = await self.graph.call(
            f"POST /applicationTemplates/{NON_GALLERY_TEMPLATE}/instantiate",
            lambda: builder.post(body, request_configuration=_no_sdk_retry()), permission="apps", retry=False,
        )
        return result.service_principal

    async def ensure_service_principal(self, display_name: str) -> tuple[Any, bool]:
        """Find the app or instantiate it; (service principal, created?). Safe to retry: re-reads first."""
        created = False

        async def attempt() -> Any:
            nonlocal created
            sp = await self.find_service_principal(display_name=display_name, app_id=None)
            if sp is not None:
                return sp
            sp = await self.instantiate(display_name)
            created = True
            return sp

        from connector.http import retry_async

        sp = await retry_async(attempt, what="create the enterprise app", policy=self.graph.policy)
        return sp, created

    async def wait_until_visible(self, sp_id: str) -> None:
        """After instantiate: poll the synchronization templates until the new app answers."""
        await self.templates(sp_id, fresh=True)

    # --- assignments -------------------------------------------------------------------------------------

    async def assignments(self, sp_id: str) -> list[Any]:
        builder = self.sdk.service_principals.by_service_principal_id(sp_id).app_role_assigned_to
        endpoint = f"GET /servicePrincipals/{sp_id}/appRoleAssignedTo"
        first = await self.graph.call(endpoint, lambda: builder.get(), permission="assign")
        return await self.graph.all_pages(endpoint, first, builder, permission="assign")

    async def assign(self, sp: Any, principal_id: str, *, fresh: bool = False) -> None:
        """Assign a group (or user) to the app with its "User" role; a no-op when already assigned."""
        from msgraph.generated.models.app_role_assignment import AppRoleAssignment

        from connector.http import retry_async

        builder = self.sdk.service_principals.by_service_principal_id(sp.id).app_role_assigned_to
        role = user_role_id(sp)

        async def attempt() -> None:
            if any(str(a.principal_id) == principal_id for a in await self.assignments(sp.id)):
                return
            body = AppRoleAssignment(principal_id=uuid.UUID(principal_id), resource_id=uuid.UUID(str(sp.id)),
                                     app_role_id=uuid.UUID(role))
            await self.graph.call(
                f"POST /servicePrincipals/{sp.id}/appRoleAssignedTo",
                lambda: builder.post(body, request_configuration=_no_sdk_retry()), permission="assign", retry=False,
            )

        await retry_async(attempt, what="assign a group to the app",
                          policy=PROPAGATION_POLICY if fresh else self.graph.policy,
                          retry_on=_propagating if fresh else None)

    # --- directory objects -------------------------------------------------------------------------------

    async def _group_names(self) -> list[str]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder

        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(select=["displayName"], top=999)
        page = await self.graph.call(
            "GET /groups", lambda: self.sdk.groups.get(
                request_configuration=RequestConfiguration(query_parameters=query)), permission="groups",
        )
        return [g.display_name for g in page.value or [] if g.display_name]

    async def find_group(self, name_or_id: str) -> Any:
        """A group by display name (exact) or object id; NotFound with close names otherwise."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder

        select = ["id", "displayName"]
        if is_guid(name_or_id):
            from msgraph.generated.groups.item.group_item_request_builder import GroupItemRequestBuilder

            q = GroupItemRequestBuilder.GroupItemRequestBuilderGetQueryParameters(select=select)
            try:
                return await self.graph.call(
                    f"GET /groups/{name_or_id}",
                    lambda: self.sdk.groups.by_group_id(name_or_id).get(
                        request_configuration=RequestConfiguration(query_parameters=q)), permission="groups",
                )
            except RemoteError as exc:
                if exc.status != 404:
                    raise
                raise NotFound(f"no Entra group with id {name_or_id}") from None
        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter=f"displayName eq {odata_quote(name_or_id)}", select=select,
        )
        page = await self.graph.call(
            "GET /groups", lambda: self.sdk.groups.get(
                request_configuration=RequestConfiguration(query_parameters=query)), permission="groups",
        )
        found = [g for g in page.value or [] if g.display_name == name_or_id] or list(page.value or [])
        if len(found) > 1:
            raise NotFound(
                f"{len(found)} Entra groups are named {name_or_id!r}",
                hint="use the group's object id instead: " + ", ".join(str(g.id) for g in found),
            )
        if not found:
            candidates = difflib.get_close_matches(name_or_id, await self._group_names(), n=3, cutoff=0.5)
            raise NotFound(f"no Entra group named {name_or_id!r}", candidates=candidates)
        return found[0]

    async def find_user(self, upn_or_id: str, select: list[str]) -> dict[str, Any]:
        """A user as Graph JSON, by userPrincipalName or object id."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        if is_guid(upn_or_id):
            return await self.get_user(upn_or_id, select)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"userPrincipalName eq {odata_quote(upn_or_id)}", select=select,
        )
        builder = self.sdk.users
        page = await self.graph.send_json(
            "GET /users", lambda: builder.to_get_request_information(RequestConfiguration(query_parameters=query)),
            permission="users",
        )
        users = list((page or {}).get("value") or [])
        if not users:
            raise NotFound(f"no Entra user with userPrincipalName {upn_or_id!r}",
                           hint="give the userPrincipalName (e.g. ada@contoso.com) or the object id")
        return users[0]  # type: ignore[no-any-return]

    async def get_user(self, user_id: str, select: list[str]) -> dict[str, Any]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        q = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=select)
        builder = self.sdk.users.by_user_id(user_id)
        try:
            data = await self.graph.send_json(
                f"GET /users/{user_id}",
                lambda: builder.to_get_request_information(RequestConfiguration(query_parameters=q)),
                permission="users",
            )
        except RemoteError as exc:
            if exc.status != 404:
                raise
            raise NotFound(f"no Entra user with id {user_id}") from None
        return data if isinstance(data, dict) else {}

    async def group_members(self, group_id: str, select: list[str]) -> list[dict[str, Any]]:
        """Direct members that are users, as Graph JSON (Entra provisions direct members only)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder

        builder = self.sdk.groups.by_group_id(group_id).members
        query = MembersRequestBuilder.MembersRequestBuilderGetQueryParameters(select=select, top=999)
        members = await self.graph.get_all_json(
            f"GET /groups/{group_id}/members", builder, RequestConfiguration(query_parameters=query),
            permission="groups",
        )
        # Members may be users, groups, devices or service principals; only users are provisioned.
        return [m for m in members if str(m.get("@odata.type", "#microsoft.graph.user")).lower().endswith("user")]

    # --- synchronization ---------------------------------------------------------------------------------

    async def templates(self, sp_id: str, *, fresh: bool = False) -> list[dict[str, Any]]:
        builder = self.sync(sp_id).templates
        endpoint = f"GET /servicePrincipals/{sp_id}/synchronization/templates"
        data = await self.graph.raw("GET", builder, endpoint, permission="sync",
                                    retry_on=_propagating if fresh else None,
                                    policy=PROPAGATION_POLICY if fresh else None)
        return list((data or {}).get("value") or [])

    async def jobs(self, sp_id: str) -> list[Any]:
        builder = self.sync(sp_id).jobs
        endpoint = f"GET /servicePrincipals/{sp_id}/synchronization/jobs"
        first = await self.graph.call(endpoint, lambda: builder.get(), permission="sync")
        return await self.graph.all_pages(endpoint, first, builder, permission="sync")

    async def find_job(self, sp_id: str) -> Any | None:
        jobs = await self.jobs(sp_id)
        for job in jobs:
            if str(job.template_id or "").lower() == JOB_TEMPLATE or str(job.id or "").startswith("scim."):
                return job
        return jobs[0] if jobs else None

    async def get_job(self, sp_id: str, job_id: str) -> Any:
        builder = self.job_builder(sp_id, job_id)
        return await self.graph.call(f"GET /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}",
                                     lambda: builder.get(), permission="sync")

    async def ensure_job(self, sp_id: str, *, fresh: bool = False) -> Any:
        from msgraph.generated.models.synchronization_job import SynchronizationJob

        from connector.http import retry_async

        builder = self.sync(sp_id).jobs

        async def attempt() -> Any:
            job = await self.find_job(sp_id)
            if job is not None:
                return job
            return await self.graph.call(
                f"POST /servicePrincipals/{sp_id}/synchronization/jobs",
                lambda: builder.post(SynchronizationJob(template_id=JOB_TEMPLATE),
                                     request_configuration=_no_sdk_retry()),
                permission="sync", retry=False,
            )

        return await retry_async(attempt, what="create the provisioning job",
                                 policy=PROPAGATION_POLICY if fresh else self.graph.policy,
                                 retry_on=_propagating if fresh else None)

    async def read_secrets(self, sp_id: str) -> dict[str, str] | None:
        """The saved synchronization secrets (key -> value; secret values come back masked), or None when the
        service does not let us read them."""
        builder = self.sync(sp_id).secrets
        endpoint = f"GET /servicePrincipals/{sp_id}/synchronization/secrets"
        try:
            data = await self.graph.raw("GET", builder, endpoint, permission="sync")
        except RemoteError as exc:
            if exc.status in (404, 405):
                return None
            raise
        items = (data or {}).get("value") if isinstance(data, dict) else data
        out: dict[str, str] = {}
        for item in items or []:
            if isinstance(item, dict) and item.get("key"):
                out[str(item["key"])] = "" if item.get("value") is None else str(item["value"])
        return out

    async def put_secrets(self, sp_id: str, values: dict[str, str]) -> None:
        from msgraph.generated.models.synchronization_secret import SynchronizationSecret
        from msgraph.generated.models.synchronization_secret_key_string_value_pair import (
            SynchronizationSecretKeyStringValuePair,
        )
        from msgraph.generated.service_principals.item.synchronization.secrets.secrets_put_request_body import (
            SecretsPutRequestBody,
        )

        pairs = [SynchronizationSecretKeyStringValuePair(key=SynchronizationSecret(k), value=v)
                 for k, v in values.items()]
        builder = self.sync(sp_id).secrets
        await self.graph.call(f"PUT /servicePrincipals/{sp_id}/synchronization/secrets",
                              lambda: builder.put(SecretsPutRequestBody(value=pairs)), permission="sync")

    async def validate_credentials(self, sp_id: str, job_id: str, credentials: dict[str, str] | None) -> None:
        """Entra's "Test connection": Entra queries the SCIM endpoint. Raises RemoteError with the SCIM error."""
        from msgraph.generated.models.synchronization_secret import SynchronizationSecret
        from msgraph.generated.models.synchronization_secret_key_string_value_pair import (
            SynchronizationSecretKeyStringValuePair,
        )
        from msgraph.generated.service_principals.item.synchronization.jobs.item.validate_credentials.validate_credentials_post_request_body import (  # noqa: E501
            ValidateCredentialsPostRequestBody,
        )

        body = ValidateCredentialsPostRequestBody(
            use_saved_credentials=credentials is None,
            credentials=[SynchronizationSecretKeyStringValuePair(key=SynchronizationSecret(k), value=v)
                         for k, v in (credentials or {}).items()],
        )
        builder = self.job_builder(sp_id, job_id).validate_credentials
        await self.graph.call(f"POST /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/validateCredentials",
                              lambda: builder.post(body), permission="sync")

    async def get_schema(self, sp_id: str, job_id: str) -> dict[str, Any]:
        builder = self.job_builder(sp_id, job_id).schema
        data = await self.graph.raw("GET", builder,
                                    f"GET /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema",
                                    permission="sync")
        if not isinstance(data, dict):
            raise RemoteError("the job's schema is empty", service="graph", endpoint="GET schema", status=0)
        data.pop("@odata.context", None)
        return data

    async def put_schema(self, sp_id: str, job_id: str, schema: dict[str, Any]) -> None:
        builder = self.job_builder(sp_id, job_id).schema
        await self.graph.raw("PUT", builder, f"PUT /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema",
                             body=schema, permission="sync")

    async def start(self, sp_id: str, job_id: str) -> None:
        builder = self.job_builder(sp_id, job_id).start
        await self.graph.call(f"POST /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/start",
                              lambda: builder.post(), permission="sync")

    async def pause(self, sp_id: str, job_id: str) -> None:
        builder = self.job_builder(sp_id, job_id).pause
        await self.graph.call(f"POST /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/pause",
                              lambda: builder.post(), permission="sync")

    async def provision_on_demand(self, sp_id: str, job_id: str, rule_id: str, subject: dict[str, Any],
                                  *, retry_on: Callable[[BaseException], bool] | None = None) -> Any:
        from msgraph.generated.models.synchronization_job_application_parameters import (
            SynchronizationJobApplicationParameters,
        )
        from msgraph.generated.models.synchronization_job_subject import SynchronizationJobSubject
        from msgraph.generated.models.synchronization_linked_objects import SynchronizationLinkedObjects
        from msgraph.generated.service_principals.item.synchronization.jobs.item.provision_on_demand.provision_on_demand_post_request_body import (  # noqa: E501
            ProvisionOnDemandPostRequestBody,
        )

        links = None
        members = (subject.get("links") or {}).get("members")
        if members is not None:
            links = SynchronizationLinkedObjects(members=[
                SynchronizationJobSubject(object_id=m["objectId"], object_type_name=m["objectTypeName"])
                for m in members
            ])
        body = ProvisionOnDemandPostRequestBody(parameters=[SynchronizationJobApplicationParameters(
            rule_id=rule_id,
            subjects=[SynchronizationJobSubject(object_id=subject["objectId"],
                                                object_type_name=subject["objectTypeName"], links=links)],
        )])
        builder = self.job_builder(sp_id, job_id).provision_on_demand
        return await self.graph.call(
            f"POST /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/provisionOnDemand",
            lambda: builder.post(body), permission="sync", retry_on=retry_on,
        )

    async def provisioning_log(self, sp_id: str, *, top: int = 50) -> list[Any]:
        """Recent provisioning log entries of this app, newest first."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.audit_logs.provisioning.provisioning_request_builder import (
            ProvisioningRequestBuilder,
        )

        query = ProvisioningRequestBuilder.ProvisioningRequestBuilderGetQueryParameters(
            filter=f"servicePrincipal/id eq {odata_quote(sp_id)}", top=top, orderby=["activityDateTime desc"],
        )
        page = await self.graph.call(
            "GET /auditLogs/provisioning",
            lambda: self.sdk.audit_logs.provisioning.get(
                request_configuration=RequestConfiguration(query_parameters=query)), permission="logs",
        )
        entries = list(page.value or [])
        # Filter again locally: the service's filter support on nested properties has varied over time.
        return [e for e in entries if e.service_principal is None or str(e.service_principal.id) == sp_id]


def user_role_id(sp: Any) -> str:
    """The id of the app's "User" role (the non-gallery template's default), else default access."""
    for role in getattr(sp, "app_roles", None) or []:
        if (role.display_name == "User" or role.value == "User") and role.is_enabled is not False:
            return str(role.id)
    return DEFAULT_ROLE_ID
