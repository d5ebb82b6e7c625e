"""Every Microsoft Graph call the Entra provider makes, one small async method each.

Reads (and validateCredentials, which changes nothing) go through reads.GraphReader: a URL with its OData query
options, raw JSON back, no SDK to load (drift and plan read only). Writes go through client.GraphClient, where the
SDK builds the request (URL templates, bodies from its models, auth, middleware). Answers are raw Graph JSON, not
SDK models, for two measured reasons:
  - kiota's Entity deserializer re-runs ~1,200 `import` statements for EVERY object it parses (about 25 ms per
    object here: listing 40 assignments 40 times took 30 s); raw JSON takes microseconds;
  - the models drop flags enums (schema `flowTypes`) and mangle some values (provisioningStepType "import"),
    and the schema must go back by PUT, which the SDK does not offer (see reference 2.5).
Creates (instantiate, job, assignment) re-read before each retry, and the SDK's own POST retry is switched off
for them, so a retried create can never make a duplicate.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.errors import Ambiguous, NotFound, RemoteError
from connector.providers.entra.client import GraphClient
from connector.providers.entra.reads import GraphReader, collection_page, segment
from connector.support import clock as clocks
from connector.support.answers import invalid, object_answer
from connector.support.http import RetryPolicy, is_retryable, retry_async
from connector.support.suggest import close_names, some_of

NON_GALLERY_TEMPLATE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
JOB_TEMPLATE = "scim"
DEFAULT_ROLE_ID = "00000000-0000-0000-0000-000000000000"  # "default access" when an app defines no roles
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Right after instantiate, the new app is not yet visible to every Graph front end: calls answer 403/404/409
# for a while (Terraform's azuread provider retries 403/409; PowerShell scripts poll). Retry those then.
PROPAGATION_STATUSES = frozenset({403, 404, 409})
PROPAGATION_POLICY = RetryPolicy(attempts=10, base_delay=0.5, max_delay=15.0)

Json = dict[str, Any]

# Apps of one name created this close together are taken as a create race (every run keeps the oldest), not two
# apps someone made on purpose (then the user must say which: azure.app.app_id).
RACE_WINDOW_S = 600.0
log = logging.getLogger("connector.azure")


@dataclass(frozen=True)
class AppStamp:
    """An application's createdDateTime and object id: the order racing creates agree on."""

    created: str
    object_id: str

    def moment(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.created.replace("Z", "+00:00"))
        except ValueError:
            return None

    def order(self) -> tuple[datetime, str]:
        # An unreadable stamp sorts last: an app whose age is unknown never wins over one whose age is known.
        return (self.moment() or datetime.max.replace(tzinfo=UTC), self.object_id)


def is_guid(text: str) -> bool:
    return bool(_GUID.match(text.strip()))


def odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _propagating(exc: BaseException) -> bool:
    return (isinstance(exc, RemoteError) and exc.status in PROPAGATION_STATUSES) or is_retryable(exc)


def _config(query: Any = None, *, no_retry: bool = False) -> Any:
    """A request configuration; no_retry turns the SDK's RetryHandler off (for non-idempotent creates)."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_http.middleware.options import RetryHandlerOption

    options = [RetryHandlerOption(delay=0.0, max_retries=0, should_retry=False)] if no_retry else []
    return RequestConfiguration(query_parameters=query, options=options)


# $select of the service principal reads.
SP_SELECT = ["id", "appId", "displayName", "appRoles", "preferredSingleSignOnMode"]



def pick_job(jobs: list[Json]) -> Json | None:
    """The app's SCIM provisioning job among its synchronization jobs (templateId scim), else the first."""
    for job in jobs:
        if str(job.get("templateId") or "").lower() == JOB_TEMPLATE or str(job.get("id", "")).startswith("scim."):
            return job
    return jobs[0] if jobs else None

class Tenant:
    def __init__(self, graph: GraphClient, reads: GraphReader) -> None:
        self.graph = graph  # writes, through the SDK
        self.reads = reads  # reads, raw
        # How long a run that created the app waits before looking for a concurrent run's app (Entra's
        # replication lag: a list on another front end may not show a new app for a few seconds).
        self.settle_seconds = 10.0

    @property
    def sdk(self) -> Any:
        return self.graph.sdk

    def sync(self, sp_id: str) -> Any:
        return self.sdk.service_principals.by_service_principal_id(sp_id).synchronization

    def job_builder(self, sp_id: str, job_id: str) -> Any:
        return self.sync(sp_id).jobs.by_synchronization_job_id(job_id)

    @staticmethod
    def sync_path(sp_id: str, rest: str = "") -> str:
        return f"/servicePrincipals/{segment(sp_id)}/synchronization{rest}"

    @staticmethod
    def job_path(sp_id: str, job_id: str, rest: str = "") -> str:
        return Tenant.sync_path(sp_id, f"/jobs/{segment(job_id)}{rest}")

    # --- the enterprise app ------------------------------------------------------------------------------

    async def list_service_principals(self, *, filter: str | None = None, top: int | None = None) -> list[Json]:
        query = {"$filter": filter, "$select": SP_SELECT, "$top": top}
        if top is not None:
            return await self.reads.get_page("GET /servicePrincipals", "/servicePrincipals", query,
                                             permission="apps.read")
        return await self.reads.get_all("GET /servicePrincipals", "/servicePrincipals", query,
                                        permission="apps.read")

    async def find_service_principal(self, *, display_name: str | None, app_id: str | None) -> Json | None:
        if app_id:
            sps = await self.list_service_principals(filter=f"appId eq {odata_quote(app_id)}")
        else:
            sps = await self.list_service_principals(filter=f"displayName eq {odata_quote(display_name or '')}")
            # Graph's eq is case-insensitive; an exact match wins when several differ only in case.
            exact = [sp for sp in sps if sp.get("displayName") == display_name]
            sps = exact or sps
        if len(sps) > 1:
            survivor = await self._race_survivor(display_name or "", sps)
            if survivor is not None:
                return survivor
            ids = ", ".join(str(sp.get("id")) for sp in sps)
            raise Ambiguous(
                f"{len(sps)} enterprise apps are named {display_name!r} ({ids})",
                hint="set azure.app.app_id to the one to manage",
            )
        return sps[0] if sps else None

    # --- concurrent creates (see docs/design.md, "Concurrent apply") ---------------------------------------

    async def app_registrations(self, display_name: str) -> dict[str, AppStamp]:
        """appId -> (createdDateTime, application object id) of the applications named `display_name`. The
        service principal carries no creation time; its application does."""
        query = {"$filter": f"displayName eq {odata_quote(display_name)}", "$select": ["id", "appId", "createdDateTime"]}
        apps = await self.reads.get_all("GET /applications", "/applications", query, permission="apps.read")
        return {str(a.get("appId")): AppStamp(str(a.get("createdDateTime") or ""), str(a.get("id") or ""))
                for a in apps if a.get("appId")}

    async def _race_survivor(self, display_name: str, sps: list[Json]) -> Json | None:
        """Of several apps with one name, the one every concurrent apply keeps (the oldest), when they were all
        created within RACE_WINDOW_S of each other: that is a create race whose losers are removing their copy,
        not a choice someone made (then None: the caller asks which one to manage)."""
        stamps = await self.app_registrations(display_name)
        known = [(stamps[str(sp.get("appId"))], sp) for sp in sps if str(sp.get("appId")) in stamps]
        if len(known) != len(sps) or not known:
            return None
        moments = [stamp.moment() for stamp, _ in known]
        if any(m is None for m in moments):
            return None
        times = [m for m in moments if m is not None]
        if (max(times) - min(times)).total_seconds() > RACE_WINDOW_S:
            return None
        return min(known, key=lambda pair: pair[0].order())[1]

    async def _settle_create(self, display_name: str, mine: Json, stamp: AppStamp) -> Json:
        """After our instantiate: keep our app only if it is the oldest of its name, else delete it and use the
        oldest. Every racing run applies the same order, so exactly one app survives (docs/design.md)."""
        # Entra replicates a new object for a few seconds; wait so another run's app is visible to this list.
        await clocks.current().asleep(self.settle_seconds)
        listed = await self.list_service_principals(filter=f"displayName eq {odata_quote(display_name)}")
        others = [sp for sp in listed if sp.get("displayName") == display_name and sp.get("appId") != mine["appId"]]
        if not others:
            return mine
        stamps = await self.app_registrations(display_name)
        stamps[str(mine["appId"])] = stamp
        contenders = [(stamps[str(sp["appId"])], sp) for sp in [mine, *others] if str(sp.get("appId")) in stamps]
        winner = min(contenders, key=lambda pair: pair[0].order())[1]
        if winner["appId"] == mine["appId"]:
            return mine
        log.info("another run created app %r at the same time; removing ours (%s), keeping %s",
                 display_name, mine["id"], winner["id"])
        await self.delete_application(stamp.object_id)
        return winner

    async def delete_application(self, object_id: str) -> None:
        """Delete an application (its service principal goes with it); already gone counts as done."""
        builder = self.sdk.applications.by_application_id(object_id)
        try:
            await self.graph.call(f"DELETE /applications/{object_id}", lambda: builder.delete(), permission="apps")
        except RemoteError as exc:
            if exc.status != 404:
                raise

    async def instantiate(self, display_name: str) -> Json:
        """Instantiate the non-gallery template; the service principal, with the application's creation stamp
        under "_stamp" (an AppStamp)."""
        from msgraph.generated.application_templates.item.instantiate.instantiate_post_request_body import (
            InstantiatePostRequestBody,
        )

        builder = self.sdk.application_templates.by_application_template_id(NON_GALLERY_TEMPLATE).instantiate
        body = InstantiatePostRequestBody(display_name=display_name)
        result = await self.graph.send_json(
            f"POST /applicationTemplates/{NON_GALLERY_TEMPLATE}/instantiate",
            lambda: builder.to_post_request_information(body, _config(no_retry=True)),
            permission="apps", retry=False,
        )
        sp = (result or {}).get("servicePrincipal") if isinstance(result, dict) else None
        app = (result or {}).get("application") if isinstance(result, dict) else None
        if not isinstance(sp, dict) or not sp.get("id") or not sp.get("appId"):
            raise RemoteError("instantiate returned no servicePrincipal", service="graph", endpoint="instantiate",
                              status=0)
        app = app if isinstance(app, dict) else {}
        sp["_stamp"] = AppStamp(str(app.get("createdDateTime") or ""), str(app.get("id") or ""))
        return sp

    async def ensure_service_principal(self, display_name: str) -> tuple[Json, bool]:
        """Find the app or instantiate it; (service principal, created?). Safe to retry: re-reads first. Safe
        to run concurrently: a run whose app lost the race removes it and uses the survivor."""
        created = False

        async def attempt() -> Json:
            nonlocal created
            sp = await self.find_service_principal(display_name=display_name, app_id=None)
            if sp is not None:
                return sp
            mine = await self.instantiate(display_name)
            created = True
            stamp: AppStamp = mine.pop("_stamp")
            if not stamp.object_id:  # the answer lacked the application: read its stamp like another run's
                stamp = (await self.app_registrations(display_name)).get(str(mine["appId"]), stamp)
            return await self._settle_create(display_name, mine, stamp)

        sp = await retry_async(attempt, what="create the enterprise app", policy=self.graph.policy)
        return sp, created

    async def wait_until_visible(self, sp_id: str) -> None:
        """After instantiate: poll the synchronization templates until the new app answers."""
        await self.templates(sp_id, fresh=True)

    # --- assignments -------------------------------------------------------------------------------------

    async def assignments(self, sp_id: str) -> list[Json]:
        return await self.reads.get_all(f"GET /servicePrincipals/{sp_id}/appRoleAssignedTo",
                                        f"/servicePrincipals/{segment(sp_id)}/appRoleAssignedTo", permission="assign")

    async def assign(self, sp: Json, principal_id: str, *, fresh: bool = False) -> None:
        """Assign a group (or user) to the app with its "User" role; a no-op when already assigned."""
        from msgraph.generated.models.app_role_assignment import AppRoleAssignment

        sp_id = str(sp["id"])
        builder = self.sdk.service_principals.by_service_principal_id(sp_id).app_role_assigned_to
        body = AppRoleAssignment(principal_id=uuid.UUID(principal_id), resource_id=uuid.UUID(sp_id),
                                 app_role_id=uuid.UUID(user_role_id(sp)))

        async def attempt() -> None:
            if any(str(a.get("principalId")) == principal_id for a in await self.assignments(sp_id)):
                return
            try:
                await self.graph.send_json(
                    f"POST /servicePrincipals/{sp_id}/appRoleAssignedTo",
                    lambda: builder.to_post_request_information(body, _config(no_retry=True)),
                    permission="assign", retry=False,
                )
            except RemoteError as exc:
                # Another run assigned it between our read and our POST: done, once a read-back shows it.
                if not (already_exists(exc) and any(str(a.get("principalId")) == principal_id
                                                    for a in await self.assignments(sp_id))):
                    raise

        await retry_async(attempt, what="assign a group to the app",
                          policy=PROPAGATION_POLICY if fresh else self.graph.policy,
                          retry_on=_propagating if fresh else None)

    # --- directory objects -------------------------------------------------------------------------------

    async def _group_names(self) -> list[str]:
        groups = await self.reads.get_page("GET /groups", "/groups", {"$select": ["id", "displayName"], "$top": 999},
                                           permission="groups")
        return [str(g["displayName"]) for g in groups if g.get("displayName")]

    async def find_group(self, name_or_id: str, select: list[str] | None = None) -> Json:
        """A group by display name (exact) or object id, with `select` (its id and name without); NotFound with
        close names otherwise."""
        select = select or ["id", "displayName"]
        if is_guid(name_or_id):
            return await self._get_by_id(f"GET /groups/{name_or_id}", f"/groups/{segment(name_or_id)}",
                                         {"$select": select}, permission="groups",
                                         missing=f"no Entra group with id {name_or_id}")
        groups = await self.reads.get_page("GET /groups", "/groups", {
            "$filter": f"displayName eq {odata_quote(name_or_id)}", "$select": select}, permission="groups")
        found = [g for g in groups if g.get("displayName") == name_or_id] or groups
        if len(found) > 1:
            raise Ambiguous(
                f"{len(found)} Entra groups are named {name_or_id!r}",
                hint="use the group's object id instead: " + ", ".join(str(g.get("id")) for g in found),
            )
        if not found:
            known = await self._group_names()
            close = close_names(name_or_id, known, n=3)
            # Nothing close: still say what the tenant has, as an unknown user's hint says what to give.
            raise NotFound(f"no Entra group named {name_or_id!r}", candidates=close,
                           hint=None if close else (f"give the group's displayName exactly, or its object id; the "
                                                    f"tenant's groups: {some_of(known)}"))
        return found[0]

    async def find_user(self, upn_or_id: str, select: list[str]) -> Json:
        """A user by userPrincipalName or object id."""
        if is_guid(upn_or_id):
            return await self.get_user(upn_or_id, select)
        users = await self.reads.get_page("GET /users", "/users", {
            "$filter": f"userPrincipalName eq {odata_quote(upn_or_id)}", "$select": select}, permission="users")
        if not users:
            raise NotFound(f"no Entra user with userPrincipalName {upn_or_id!r}",
                           hint="give the userPrincipalName (e.g. ada@contoso.com) or the object id")
        return users[0]

    async def get_group(self, group_id: str, select: list[str]) -> Json:
        return await self._get_by_id(f"GET /groups/{group_id}", f"/groups/{segment(group_id)}", {"$select": select},
                                     permission="groups", missing=f"no Entra group with id {group_id}")

    async def get_user(self, user_id: str, select: list[str]) -> Json:
        return await self._get_by_id(f"GET /users/{user_id}", f"/users/{segment(user_id)}", {"$select": select},
                                     permission="users", missing=f"no Entra user with id {user_id}")

    async def _get_by_id(self, endpoint: str, path: str, query: dict[str, Any], *, permission: str,
                         missing: str) -> Json:
        """One object by id; Graph's 404 becomes NotFound (exit 2: the config or argument names nothing)."""
        try:
            data = await self.reads.get(endpoint, path, query, permission=permission)
        except RemoteError as exc:
            if exc.status != 404:
                raise
            raise NotFound(missing) from exc
        body = object_answer(data, service="graph", endpoint=endpoint)
        if not isinstance(body.get("id"), str):
            raise invalid("the object has no id", service="graph", endpoint=endpoint)
        return body

    async def group_members(self, group_id: str, select: list[str]) -> list[Json]:
        """Direct members that are users (Entra provisions direct members only)."""
        return [m async for page in self.iter_group_members(group_id, select) for m in page]

    async def iter_group_members(self, group_id: str, select: list[str]) -> AsyncIterator[list[Json]]:
        """`group_members` a page ($top 999, Graph's largest) at a time: the audit keeps what it needs of each
        page and drops the rest, instead of holding every member's JSON of a 100,000-member group."""
        endpoint = f"GET /groups/{group_id}/members"
        # Paged through GraphReader.iter_pages: next links only on azure.graph_url, once each, shapes checked;
        # the next page is on its way while the caller works on this one.
        async for page in self.reads.iter_pages(endpoint, f"/groups/{segment(group_id)}/members",
                                                {"$select": select, "$top": 999}, permission="groups"):
            # Members may be users, groups, devices or service principals; only users are provisioned.
            yield [m for m in page
                   if str(m.get("@odata.type", "#microsoft.graph.user")).lower().endswith("user")]

    # --- synchronization ---------------------------------------------------------------------------------

    async def templates(self, sp_id: str, *, fresh: bool = False) -> list[Json]:
        endpoint = f"GET /servicePrincipals/{sp_id}/synchronization/templates"
        data = await self.reads.get(endpoint, self.sync_path(sp_id, "/templates"), permission="sync",
                                    retry_on=_propagating if fresh else None,
                                    policy=PROPAGATION_POLICY if fresh else None)
        return _items(data, endpoint)

    async def jobs(self, sp_id: str) -> list[Json]:
        endpoint = f"GET /servicePrincipals/{sp_id}/synchronization/jobs"

        async def read() -> list[Json]:
            return await self.reads.get_all(endpoint, self.sync_path(sp_id, "/jobs"), permission="sync")

        # The service principal was just read, so a 404 from its synchronization is Entra still replicating an
        # app made moments ago (by an apply that stopped, or in the portal): wait for it as apply's creates do,
        # instead of failing plan with "not found". 403 is not retried here: it is far more often a permission.
        return await retry_async(read, what=endpoint, policy=PROPAGATION_POLICY,
                                 retry_on=lambda e: isinstance(e, RemoteError) and e.status == 404)

    async def find_job(self, sp_id: str) -> Json | None:
        return pick_job(await self.jobs(sp_id))

    async def get_job(self, sp_id: str, job_id: str) -> Json:
        endpoint = f"GET /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}"
        data = await self.reads.get(endpoint, self.job_path(sp_id, job_id), permission="sync")
        return object_answer(data, service="graph", endpoint=endpoint)

    async def ensure_job(self, sp_id: str, *, fresh: bool = False) -> Json:
        from msgraph.generated.models.synchronization_job import SynchronizationJob

        builder = self.sync(sp_id).jobs
        body = SynchronizationJob(template_id=JOB_TEMPLATE)

        async def attempt() -> Json:
            job = await self.find_job(sp_id)
            if job is not None:
                return job
            try:
                made = await self.graph.send_json(
                    f"POST /servicePrincipals/{sp_id}/synchronization/jobs",
                    lambda: builder.to_post_request_information(body, _config(no_retry=True)),
                    permission="sync", retry=False,
                )
            except RemoteError as exc:
                # One job per template: a 409 means another run made it meanwhile. Use that one.
                if exc.status == 409 and (job := await self.find_job(sp_id)) is not None:
                    return job
                raise
            if not isinstance(made, dict) or not made.get("id"):
                raise RemoteError("the job create answered without a job id", service="graph",
                                  endpoint=f"POST /servicePrincipals/{sp_id}/synchronization/jobs", status=0)
            return made

        return await retry_async(attempt, what="create the provisioning job",
                                 policy=PROPAGATION_POLICY if fresh else self.graph.policy,
                                 retry_on=_propagating if fresh else None)

    async def read_secrets(self, sp_id: str) -> dict[str, str] | None:
        """The saved synchronization secrets (key -> value; secret values come back masked), or None when the
        service does not let us read them."""
        endpoint = f"GET /servicePrincipals/{sp_id}/synchronization/secrets"
        try:
            data = await self.reads.get(endpoint, self.sync_path(sp_id, "/secrets"), permission="sync")
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
        """Entra's "Test connection": Entra queries the SCIM endpoint. Raises RemoteError with the SCIM error.
        credentials None = test the saved ones (useSavedCredentials). Through the reader: it changes nothing
        (the setup audit asks it), and its body is plain JSON (the SDK's model serialized to the same)."""
        body = {"useSavedCredentials": credentials is None,
                "credentials": [{"key": k, "value": v} for k, v in (credentials or {}).items()]}
        await self.reads.send("POST", f"POST /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/"
                              "validateCredentials", self.job_path(sp_id, job_id, "/validateCredentials"),
                              body=body, permission="sync")

    async def get_schema(self, sp_id: str, job_id: str) -> Json:
        data = await self.reads.get(f"GET /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema",
                                    self.job_path(sp_id, job_id, "/schema"), permission="sync")
        if not isinstance(data, dict):
            raise RemoteError("the job's schema is empty", service="graph", endpoint="GET schema", status=0)
        data.pop("@odata.context", None)
        return data

    async def put_schema(self, sp_id: str, job_id: str, schema: Json) -> None:
        builder = self.job_builder(sp_id, job_id).schema
        await self.graph.raw("PUT", builder, f"PUT /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/schema",
                             body=schema, permission="sync")

    async def start(self, sp_id: str, job_id: str) -> None:
        await self._job_action(sp_id, job_id, "start", lambda job: job_running(job))

    async def pause(self, sp_id: str, job_id: str) -> None:
        await self._job_action(sp_id, job_id, "pause", lambda job: job_state(job) == "paused")

    async def _job_action(self, sp_id: str, job_id: str, action: str, done: Callable[[Json], bool]) -> None:
        """POST start or pause, retried; before each retry the job is read back, and a job already in the wanted
        state is done: an answer lost after Entra acted is not reported as a failure, and start is not sent again
        to a running job (Graph's docs: do not call it repeatedly while the job runs)."""
        builder = getattr(self.job_builder(sp_id, job_id), action)
        endpoint = f"POST /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/{action}"
        sent = False

        async def attempt() -> None:
            nonlocal sent
            if sent and done(job := await self.get_job(sp_id, job_id)):
                log.info("azure: the %s answer was lost, but the job reads back %s: done", action, job_state(job))
                return
            sent = True
            await self.graph.call(endpoint, lambda: builder.post(), permission="sync", retry=False)

        await retry_async(attempt, what=endpoint, policy=self.graph.policy)

    async def provision_on_demand(self, sp_id: str, job_id: str, rule_id: str, subject: Json,
                                  *, retry_on: Callable[[BaseException], bool] | None = None) -> Json:
        """One provisionOnDemand call; returns the raw {key, value} pair (both JSON text)."""
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
        data = await self.graph.send_json(
            f"POST /servicePrincipals/{sp_id}/synchronization/jobs/{job_id}/provisionOnDemand",
            lambda: builder.to_post_request_information(body), permission="sync", retry_on=retry_on,
        )
        return data if isinstance(data, dict) else {}

    async def provisioning_log(self, sp_id: str, *, top: int = 50) -> list[Json]:
        """Recent provisioning log entries of this app, newest first."""
        query = {"$filter": f"servicePrincipal/id eq {odata_quote(sp_id)}", "$top": top,
                 "$orderby": ["activityDateTime desc"]}
        entries = await self.reads.get_page("GET /auditLogs/provisioning", "/auditLogs/provisioning", query,
                                            permission="logs")
        # Filter again locally: the service's filter support on nested properties has varied over time.
        return [e for e in entries
                if not isinstance(e.get("servicePrincipal"), dict) or str(e["servicePrincipal"].get("id")) == sp_id]


def job_state(job: Json) -> str:
    """The job's schedule state, lower case (active, paused, disabled; "" when absent)."""
    return str((job.get("schedule") or {}).get("state") or "").lower()


def job_running(job: Json) -> bool:
    """Started and not held in quarantine (what `start` brings a job to)."""
    code = str((job.get("status") or {}).get("code") or "").lower()
    return job_state(job) == "active" and code != "quarantine"


def _items(page: Any, endpoint: str) -> list[Json]:
    """The items of a one-page read, its shape checked like every page of GraphReader.iter_pages."""
    return collection_page(page, endpoint)[0]


def already_exists(exc: RemoteError) -> bool:
    """Graph's answer to creating what exists (a concurrent run was first): 409, or 400 "... already exists"."""
    return exc.status == 409 or (exc.status == 400 and "already exists" in exc.message.lower())


def user_role_id(sp: Json) -> str:
    """The id of the app's "User" role (the non-gallery template's default), else default access."""
    for role in sp.get("appRoles") or []:
        if (role.get("displayName") == "User" or role.get("value") == "User") and role.get("isEnabled") is not False:
            return str(role["id"])
    return DEFAULT_ROLE_ID
