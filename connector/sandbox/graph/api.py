"""Microsoft Graph emulator: the v1.0 endpoints the connector uses to set up Entra provisioning into Astro.

    emu = GraphEmulator(token, tenant_id=tid)
    emu.load(seed_org)                        # users and security groups
    ServedApp("graph", emu.app).start()       # base URL for the SDK: <url>/v1.0

Served under `/v1.0`: applicationTemplates/{id}/instantiate, applications, servicePrincipals (by id, by
`(appId='...')`, filtered lists), synchronization (templates, secrets, jobs, validateCredentials, schema,
start/pause/restart, provisionOnDemand), appRoleAssignedTo, users, groups (DELETE: 204, its memberships and app
role assignments go with it), members, auditLogs/provisioning, organization. OData paging (`@odata.nextLink`,
`$top` 1..999, opaque `$skiptoken`), `$filter`, `$select`.
Errors are OData error bodies with Graph's codes, so the SDK raises `ODataError` with `.error.code`.

Behaviours kept from the real service on purpose (clients must cope with them):
- `PATCH .../jobs/{id}/schema` answers 404 "No HTTP resource was found..." (the SDK only offers PATCH); PUT
  works and stores the body verbatim, unknown fields included.
- secrets keys are case-sensitive enum names: `baseAddress` is a 500, as on the real service.
- GET `/users` without `$select` returns Graph's default property set only (no accountEnabled, department...).
- provisionOnDemand: 5 calls per 10 s per job, then 429 with Retry-After; one group with at most 5 members.
- Throttling as Graph's identity and access service announces it (Microsoft Graph throttling guidance): a budget
  of resource units per app per tenant per 10 s by tenant size (< 50 users 3,500; 50-500 users 5,000; more
  than 500 users 8,000; `rate_limit` overrides it). Every answer carries `x-ms-resource-unit` (the request's
  cost); once the app has used 80% of its budget, `x-ms-throttle-limit-percentage` (0.8-1.0, the share used);
  over it, 429 TooManyRequests with `Retry-After` (seconds to the window's end), `x-ms-throttle-scope` and
  `x-ms-throttle-information`. Graph announces no limit or remaining count up front: the limit is the
  documented one. Simplification: every request costs 1 unit (the documented costs are 1-3 units by resource
  and query options), so the emulator throttles no sooner than Graph would.

Emulator choices where the real service is undocumented (documented here so clients do not rely on them):
- Secret values of SecretToken/Password/ClientSecret/... read back as "*****"; BaseAddress, SyncAll and the
  other settings read back as stored. PUT merges by key; an empty value removes the key.
- `start`/`restart` run the provisioning cycle synchronously before answering 204, so a test can look at Astro
  right after (`background_cycles = True` runs it in a thread instead, like the real service); the job stays
  Active (code "Active") until paused or quarantined.
- One job per template per service principal: a second POST of the same templateId is a 409.
- An application's createdDateTime is stamped when it is stored, strictly increasing (microseconds).
- Server errors are 503 `serviceNotAvailable` with `Retry-After` (what Graph sends for transient failures).

Sandbox-only controls (Python methods, and HTTP under `/_sandbox/...`, never faulted): `run_cycle`,
`quarantine`, `remove_user_silently`, `deny_permission`/`allow_permission`, `propagation_failures`,
`instantiate_delay_s` (instantiate takes that long, so concurrent creates overlap as in real Entra), state
inspection (`users`, `groups`, `service_principal`, `job`, `schema`, `secrets`, `assignments`, `logs`).
Switches (Python only): `hold_cycles` (jobs start, cycles never begin), `sso_mode_for_new_apps` (SSO preset on
instantiated apps, standing for the admin's Single sign-on > SAML step, Graph's servicePrincipal
preferredSingleSignOnMode).
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connector.sandbox.graph.engine import (
    SCOPE_OPERATORS,
    CredentialCheckFailed,
    EntraEngine,
    flow_types,
    operand_values,
    python_pattern,
    scope_clauses,
)
from connector.sandbox.graph.odata import (
    ODataQueryError,
    advanced_operator,
    compile_filter,
    decode_skiptoken,
    encode_skiptoken,
    order_by,
    page_size,
    project,
    project_page,
    select_fields,
    simple_equality,
)
from connector.sandbox.graph.state import (
    GROUP_TYPE,
    MASKED_SECRET_KEYS,
    PERMISSIONS,
    SECRET_KEYS,
    SECRET_MASK,
    USER_DEFAULT_PROPERTIES,
    USER_TYPE,
    GraphState,
    SeedLike,
    SyncJob,
    now_iso,
)
from connector.sandbox.graph.template import (
    NON_GALLERY_TEMPLATE_ID,
    SCIM_TEMPLATE_ID,
    build_schema,
    build_template,
)
from connector.sandbox.ratelimit import Budget, WindowLimiter
from connector.sandbox.snapshot import Translate, copied, plain_copy

# App roles Entra gives an app created from the non-gallery template (fixed ids, the same in every tenant).
USER_ROLE_ID = "18d14569-c3bd-439b-9a66-3a2aee01d14f"
MSIAM_ROLE_ID = "b9632174-c057-4f7e-951b-be3adc52bfe6"
DEFAULT_ACCESS_ROLE_ID = "00000000-0000-0000-0000-000000000000"
JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
ONDEMAND_LIMIT = 5
ONDEMAND_WINDOW_S = 10.0
ONDEMAND_MAX_MEMBERS = 5
RATE_WINDOW_S = 10.0  # Graph's throttling window for directory requests
RESOURCE_UNITS_PER_REQUEST = 1
SANDBOX_APP_ID = "00000000-0000-0000-0000-00000000a11c"  # the calling app in x-ms-throttle-scope (token only)


class GraphError(Exception):
    """Raised inside a handler; becomes an OData error response."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _not_found(what: str) -> GraphError:
    return GraphError(
        404, "Request_ResourceNotFound",
        f"Resource '{what}' does not exist or one of its queried reference-property objects are not present.",
    )


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _object_id(value: str) -> str:
    """`value` when it is an object id (a GUID). Directory objects other than users are keyed by GUID only: a name
    or any other text in their place is Graph's 400 Request_BadRequest "Invalid object identifier '...'."
    (e.g. GET /groups/<a group's name>/members), not a 404, so a client that puts a name where the id goes
    sees here what it would see against the real service."""
    if not _GUID.match(value):
        raise GraphError(400, "Request_BadRequest", f"Invalid object identifier '{value}'.")
    return value


def _bad_body() -> GraphError:
    return GraphError(
        400, "BadRequest",
        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid "
        "JSON format.",
    )


def odata_error(
    status: int, code: str, message: str, *, request: Request | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    request_id = str(uuid.uuid4())
    client_id = (request.headers.get("client-request-id") if request is not None else None) or request_id
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": now_iso()[:19], "request-id": request_id, "client-request-id": client_id},
        }
    }
    resp = Response(json.dumps(body), status=status, content_type="application/json")
    resp.headers["request-id"] = request_id
    resp.headers["client-request-id"] = client_id
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _rule(path: str, endpoint: str, methods: list[str], family: str) -> Rule:
    # The permission family rides on the endpoint name: "<family>:<handler>".
    return Rule(path, endpoint=f"{family}:{endpoint}", methods=methods)


_SP = "/v1.0/servicePrincipals/<sp_id>"
_JOB = _SP + "/synchronization/jobs/<job_id>"

URL_MAP = Map(
    [
        _rule("/v1.0/applicationTemplates/<template_id>/instantiate", "instantiate", ["POST"], "applications"),
        _rule("/v1.0/applications", "list_applications", ["GET"], "applications"),
        _rule("/v1.0/applications/<app_id>", "application", ["GET", "DELETE"], "applications"),
        _rule("/v1.0/servicePrincipals", "list_sps", ["GET"], "applications"),
        _rule("/v1.0/servicePrincipals(appId='<app_id>')", "sp_by_app_id", ["GET", "DELETE"], "applications"),
        _rule(_SP, "sp", ["GET", "PATCH", "DELETE"], "applications"),
        _rule(_SP + "/synchronization", "synchronization", ["GET"], "synchronization"),
        _rule(_SP + "/synchronization/templates", "templates", ["GET"], "synchronization"),
        _rule(_SP + "/synchronization/secrets", "secrets", ["GET", "PUT"], "synchronization"),
        _rule(_SP + "/synchronization/jobs", "jobs", ["GET", "POST"], "synchronization"),
        _rule(_SP + "/synchronization/jobs/validateCredentials", "validate_jobless", ["POST"], "synchronization"),
        _rule(_JOB, "job", ["GET", "DELETE"], "synchronization"),
        _rule(_JOB + "/validateCredentials", "validate", ["POST"], "synchronization"),
        _rule(_JOB + "/start", "start", ["POST"], "synchronization"),
        _rule(_JOB + "/pause", "pause", ["POST"], "synchronization"),
        _rule(_JOB + "/restart", "restart", ["POST"], "synchronization"),
        _rule(_JOB + "/provisionOnDemand", "on_demand", ["POST"], "synchronization"),
        _rule(_JOB + "/schema", "schema", ["GET", "PUT", "PATCH"], "synchronization"),
        _rule(_JOB + "/schema/parseExpression", "parse_expression", ["POST"], "synchronization"),
        _rule(_SP + "/appRoleAssignedTo", "assignments", ["GET", "POST"], "appRoleAssignments"),
        _rule(_SP + "/appRoleAssignedTo/<assignment_id>", "assignment", ["GET", "DELETE"], "appRoleAssignments"),
        _rule("/v1.0/users", "list_users", ["GET"], "users"),
        _rule("/v1.0/users/<user_id>", "user", ["GET"], "users"),
        _rule("/v1.0/groups", "list_groups", ["GET"], "groups"),
        _rule("/v1.0/groups/<group_id>", "group", ["GET", "DELETE"], "groups"),
        _rule("/v1.0/groups/<group_id>/members", "members", ["GET"], "groups"),
        _rule("/v1.0/groups/<group_id>/members/<cast>", "members", ["GET"], "groups"),
        _rule("/v1.0/groups/<group_id>/transitiveMembers", "transitive", ["GET"], "groups"),
        _rule("/v1.0/groups/<group_id>/transitiveMembers/<cast>", "transitive", ["GET"], "groups"),
        _rule("/v1.0/auditLogs/provisioning", "logs", ["GET"], "auditLogs"),
        _rule("/v1.0/organization", "organization", ["GET"], "users"),
        # Sandbox administration: never faulted, same bearer token.
        _rule("/_sandbox/servicePrincipals/<sp_id>/runCycle", "admin_run_cycle", ["POST"], "admin"),
        _rule("/_sandbox/servicePrincipals/<sp_id>/quarantine", "admin_quarantine", ["POST"], "admin"),
        _rule("/_sandbox/users/<upn>/removeSilently", "admin_remove_user", ["POST"], "admin"),
        _rule("/_sandbox/permissions/<family>", "admin_permission", ["PUT", "DELETE"], "admin"),
        _rule("/_sandbox/state", "admin_state", ["GET"], "admin"),
    ]
)

_TYPE_CASTS = {"graph.user": USER_TYPE, "microsoft.graph.user": USER_TYPE,
               "graph.group": GROUP_TYPE, "microsoft.graph.group": GROUP_TYPE}


def _quarantine_json(reason: str, message: str) -> dict[str, Any]:
    began = now_iso()
    return {
        "currentBegan": began,
        "nextAttempt": began,
        "reason": reason,
        "seriesBegan": began,
        "seriesCount": 1,
        "error": {"code": reason, "message": message, "tenantActionable": True},
    }


def _after(stamp: str) -> str:
    """The Graph timestamp one microsecond after `stamp` (now_iso's form: 6 digits, a 0, then Z)."""
    from datetime import datetime, timedelta

    moment = datetime.strptime(stamp[:26], "%Y-%m-%dT%H:%M:%S.%f") + timedelta(microseconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class GraphEmulator:
    """A Microsoft Graph tenant on loopback. `app` is the WSGI callable; everything under `/v1.0`."""

    def __init__(self, token: str, *, tenant_id: str, org_display_name: str = "Acme") -> None:
        self.token = token
        self.tenant_id = tenant_id
        self.org_display_name = org_display_name
        self.state = GraphState(tenant_id)
        self.engine = EntraEngine(self.state)
        self.retry_after_s = 1  # Retry-After of throttled answers; small so faulted test runs stay fast
        # Fail this many synchronization calls on a just-instantiated service principal with 404, the way Entra
        # does while the new app replicates (clients must retry). 0 = off.
        self.propagation_failures = 0
        self._pending_propagation: dict[str, int] = {}
        # (group id, type cast) -> (what the member list looked like, its member ids): see _group_member_ids.
        self._member_ids_cache: dict[tuple[str, str | None], tuple[tuple[Any, ...], list[str]]] = {}
        # Seconds instantiate takes before the new app exists (real Entra: about 2 s). 0 = at once. Concurrent
        # creates then overlap the way they do against the real service, which is what races need to show.
        self.instantiate_delay_s = 0.0
        self._last_created = ""  # the last createdDateTime stamped, to keep stamps strictly increasing
        self.ondemand_limit = ONDEMAND_LIMIT
        self.ondemand_window_s = ONDEMAND_WINDOW_S
        self.ondemand_clock = time.monotonic  # tests share their virtual clock with the client's pacer
        self._ondemand_lock = threading.Lock()
        # False (default): start/restart run the cycle before answering, so tests can look at Astro right away.
        # True: they answer 204 at once and the cycle runs in a thread, as on the real service (big sandboxes,
        # where a cycle over thousands of users would outlast the client's timeout); see wait_for_cycles().
        self.background_cycles = False
        # A fault switch: jobs start but their cycles never run (Entra's first cycle can take minutes to begin),
        # so a client's bounded wait for the outcome can be tested without waiting.
        self.hold_cycles = False
        # The seed's first prerequisite is SSO for Astro in the IdP. An admin who follows it sets SAML on the app
        # (Single sign-on > SAML: PATCH preferredSingleSignOnMode) right after creating it; a value here makes
        # apps instantiated from the template come with that mode, as if that step were done (None: left out).
        self.sso_mode_for_new_apps: str | None = None
        self._cycles: list[threading.Thread] = []
        # Throttling (see the module docstring): None = the documented limit for the tenant's size.
        self.rate_limit: int | None = None
        self.rate_clock: Callable[[], float] = time.monotonic  # tests move a virtual clock instead of sleeping
        self.rate = WindowLimiter(8_000, RATE_WINDOW_S, lambda: self.rate_clock())

    # -- snapshots (Sandbox.snapshot / restore) --------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The tenant's data, and what the API keeps about it beside the state (apps still replicating, the last
        creation stamp)."""
        with self.state.lock:
            return {"state": self.state.snapshot(), "pending": dict(self._pending_propagation),
                    "last_created": self._last_created}

    def restore(self, snap: dict[str, Any], translate: Translate | None = None) -> None:
        self.state.restore(snap["state"], translate)
        with self.state.lock:
            self._pending_propagation = copied(snap["pending"], translate)
            self._last_created = snap["last_created"]
            self._member_ids_cache.clear()

    # -- WSGI ------------------------------------------------------------------------------------------

    def _tenant_limit(self) -> int:
        """Resource units per 10 s for one app in this tenant, by tenant size (Graph throttling guidance,
        identity and access service: < 50 users 3,500; 50-500 users 5,000; > 500 users 8,000)."""
        if self.rate_limit is not None:
            return self.rate_limit
        users = len(self.state.users)
        return 3_500 if users < 50 else 5_000 if users <= 500 else 8_000

    def _throttled(self, request: Request) -> tuple[Response | None, Budget | None]:
        """Count an authenticated Graph request against the app's budget; a 429 when it is spent."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if not request.path.startswith("/v1.0") or scheme.lower() != "bearer" \
                or not secrets.compare_digest(value.strip(), self.token):
            return None, None  # unauthenticated requests get their 401, uncounted
        self.rate.limit = self._tenant_limit()
        budget = self.rate.hit("app", RESOURCE_UNITS_PER_REQUEST)
        if budget.allowed:
            return None, budget
        return odata_error(
            429, "TooManyRequests",
            "Too many requests from the application. Retry after the time in the Retry-After header.",
            request=request, headers={
                "Retry-After": str(budget.reset_s),
                "x-ms-throttle-scope": f"Tenant_Application/ReadWrite/{self.tenant_id}/{SANDBOX_APP_ID}",
                "x-ms-throttle-information": "ResourceUnitLimitExceeded",
            },
        ), budget

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        throttled, budget = self._throttled(request)
        if throttled is not None:
            return throttled(environ, start_response)
        try:
            response = self._dispatch(request)
        except GraphError as exc:
            response = odata_error(exc.status, exc.code, exc.message, request=request, headers=exc.headers)
        except ODataQueryError as exc:
            response = odata_error(400, exc.code, exc.message, request=request)
        except CredentialCheckFailed as exc:
            response = odata_error(400, exc.code, exc.message, request=request)
        except Exception as exc:  # an emulator bug: answer like Graph does, not with an HTML traceback
            response = odata_error(500, "UnknownError", f"Sandbox emulator failure: {type(exc).__name__}: {exc}",
                                   request=request)
        if budget is not None:
            response.headers["x-ms-resource-unit"] = str(RESOURCE_UNITS_PER_REQUEST)
            if budget.used_fraction >= 0.8:
                # Graph adds it once an app has used more than 80% of its limit
                response.headers["x-ms-throttle-limit-percentage"] = f"{budget.used_fraction:.1f}"
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        adapter = URL_MAP.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except MethodNotAllowed as cause:
            self._authenticate(request)
            if request.method == "PATCH" and request.path.endswith("/schema"):
                raise self._schema_patch_error(request) from cause
            raise GraphError(405, "Request_BadRequest",
                             "Specified HTTP method is not allowed for the request target.") from cause
        except NotFound as cause:
            self._authenticate(request)
            segment = request.path.rstrip("/").rsplit("/", 1)[-1]
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.") from cause
        self._authenticate(request)
        family, name = str(endpoint).split(":", 1)
        if family in self.state.denied:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        handler: Callable[..., Response] = getattr(self, f"_h_{name}")
        return handler(request, **values)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value or not secrets.compare_digest(value.strip(), self.token):
            message = "Access token is empty." if not header else "Access token validation failure."
            raise GraphError(
                401, "InvalidAuthenticationToken", message,
                {"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                                     'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'},
            )

    # -- fault responses (FaultMiddleware) ------------------------------------------------------------

    def throttle_response(self, request: Request) -> Response:
        return odata_error(
            429, "TooManyRequests",
            "Too many requests from the application. Retry after the time in the Retry-After header.",
            request=request, headers={"Retry-After": str(self.retry_after_s)},
        )

    def server_error_response(self, request: Request) -> Response:
        return odata_error(
            503, "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry after the time in the Retry-After header.",
            request=request, headers={"Retry-After": str(self.retry_after_s)},
        )

    # -- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _base(request: Request) -> str:
        return request.host_url.rstrip("/") + "/v1.0"

    def _json(self, request: Request, body: Any, status: int = 200) -> Response:
        return self._json_bytes(request, json.dumps(body).encode(), status)

    def _json_bytes(self, request: Request, body: bytes, status: int = 200) -> Response:
        resp = Response(body, status=status, content_type=JSON_TYPE)
        request_id = str(uuid.uuid4())
        resp.headers["request-id"] = request_id
        resp.headers["client-request-id"] = request.headers.get("client-request-id") or request_id
        return resp

    @staticmethod
    def _no_content() -> Response:
        return Response(status=204)

    @staticmethod
    def _body(request: Request, *, required: bool = True) -> dict[str, Any]:
        raw = request.get_data(cache=True)
        if not raw.strip():
            if required:
                raise _bad_body()
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as cause:
            raise _bad_body() from cause
        if not isinstance(data, dict):
            raise _bad_body()
        return data

    def _collection(
        self,
        request: Request,
        items: list[Any],  # objects, or keys that `resolve` turns into objects
        context: str,
        *,
        default_select: tuple[str, ...] | None = None,
        case_insensitive: bool = True,
        directory: bool = True,
        raw: Callable[[list[dict[str, Any]]], list[bytes]] | None = None,
        resolve: Callable[[list[Any]], list[dict[str, Any]]] | None = None,
        resolved_bytes: Callable[[list[Any], list[str] | None], list[bytes]] | None = None,
    ) -> Response:
        """Filter, order, page and project a list the way Graph does, with an absolute @odata.nextLink.

        `directory`: the items are directory objects, whose `ne`, `not` and `endsWith` filters are advanced queries
        (ConsistencyLevel: eventual and $count=true, else 400), as is $count itself (it needs the header); the
        provisioning log is not one.

        `raw` gives the items' JSON bytes when no `$select` is asked (from a cache): the page is then joined,
        not serialized; the bytes are the same as json.dumps of the whole body.

        `resolve` turns `items` (then keys, e.g. member ids) into objects: only the page's, unless a $filter or
        $orderby needs them all; `resolved_bytes(keys, fields)` gives the page's projected objects as compact JSON
        instead (from a cache), the same bytes orjson writes of them. Resolving a group's every member for each
        page made paging a 20,000-member group cost O(members) per page (~0.1 s each)."""
        # First value of each option, like MultiDict.get/items; a plain dict because werkzeug's get() raises
        # and catches an HTTP exception for every absent option (~10 per list request).
        args = dict(request.args.items())
        if "$skip" in args:
            # Directory lists refuse it, and so does the provisioning log ("$skiptoken ... You cannot specify
            # the number of results to be skipped", List provisioningObjectSummary, Graph v1.0).
            raise ODataQueryError("'$skip' is not supported by the service.", "Request_UnsupportedQuery")
        flt = args.get("$filter")
        counted = args.get("$count", "").lower() == "true"
        eventual = request.headers.get("ConsistencyLevel", "").lower() == "eventual"
        if directory and counted and not eventual:
            # "Use of $count on directory objects like users and groups always requires setting this header"
            # (Graph docs maintainers, microsoft-graph-docs#13226; #13142 for a group's members).
            raise ODataQueryError("$count is not currently supported.", "Request_BadRequest")
        if flt and directory and (op := advanced_operator(flt)) is not None and not (eventual and counted):
            raise ODataQueryError(
                f"Operator '{op}' is not supported because the required parameters might be missing. Try adding "
                "$count=true query parameter and ConsistencyLevel:eventual header. Refer to "
                "https://aka.ms/graph-docs/advanced-queries for more information", "Request_UnsupportedQuery")
        if resolve is not None and (flt or args.get("$orderby")):
            items, resolve = resolve(items), None
        if flt:
            pred = compile_filter(flt, case_insensitive=case_insensitive)
            items = [o for o in items if pred(o)]
        items = order_by(items, args.get("$orderby"))
        top = page_size(args.get("$top"))
        offset = decode_skiptoken(args.get("$skiptoken"))
        page = items[offset:offset + top]
        fields = select_fields(args.get("$select"))
        if resolve is not None and resolved_bytes is not None:
            with self.state.lock:  # a change_user between rendering and caching must not leave stale bytes
                values = b",".join(resolved_bytes(page, fields))
        elif resolve is not None:
            with self.state.lock:
                page = resolve(page)
        body: dict[str, Any] = {"@odata.context": f"{self._base(request)}/$metadata#{context}"}
        if counted:
            body["@odata.count"] = len(items)
        if offset + top < len(items):
            query = {k: v for k, v in args.items() if k != "$skiptoken"}
            query["$skiptoken"] = encode_skiptoken(offset + top)
            # Before "value", as Graph writes it (@odata.context, @odata.count, @odata.nextLink, value): a client
            # may start the next request from the answer's first bytes (connector/providers/entra/reads.py).
            body["@odata.nextLink"] = f"{self._base(request)}{request.path[len('/v1.0'):]}?{urlencode(query)}"
        if raw is not None and fields is None:
            # json.dumps(body) with "value" spliced in from per-item bytes, keys in the same order.
            with self.state.lock:  # a change_user between rendering and caching must not leave stale bytes
                values = b", ".join(raw(page))
            joined = json.dumps(body)[:-1].encode() + b', "value": [' + values + b"]"
            return self._json_bytes(request, joined + b"}")
        if resolve is not None and resolved_bytes is not None:
            # orjson.dumps(body) with "value" spliced in: its compact JSON of a list is its items' joined by ",".
            return self._json_bytes(request, orjson.dumps(body)[:-1] + b',"value":[' + values + b"]}")
        body["value"] = project_page(page, fields, default_select)
        # orjson: the same JSON, compact, in under half json.dumps' time (a user-sized dict: ~18 vs ~40 us).
        return self._json_bytes(request, orjson.dumps(body))

    def _entity(self, request: Request, obj: dict[str, Any], context: str,
                default_select: tuple[str, ...] | None = None) -> Response:
        body = {"@odata.context": f"{self._base(request)}/$metadata#{context}"}
        body.update(project(obj, select_fields(request.args.get("$select")), default_select))
        return self._json(request, body)

    def _sp(self, sp_id: str) -> dict[str, Any]:
        sp = self.state.service_principals.get(_object_id(sp_id))
        if sp is None:
            raise _not_found(sp_id)
        return sp

    def _sync_sp(self, sp_id: str) -> dict[str, Any]:
        """The service principal for a synchronization call; fails while a new one 'replicates'."""
        sp = self._sp(sp_id)
        with self.state.lock:
            left = self._pending_propagation.get(sp_id, 0)
            if left > 0:
                self._pending_propagation[sp_id] = left - 1
                raise GraphError(404, "Request_ResourceNotFound",
                                 f"The service principal '{sp_id}' was not found in the synchronization service. "
                                 "It may not have replicated yet.")
        return sp

    def _job(self, sp_id: str, job_id: str) -> SyncJob:
        self._sync_sp(sp_id)
        job = self.state.find_job(sp_id, job_id)
        if job is None:
            raise GraphError(404, "Request_ResourceNotFound", f"The synchronization job '{job_id}' was not found.")
        return job

    # -- applications and service principals ------------------------------------------------------------

    def _h_instantiate(self, request: Request, template_id: str) -> Response:
        if template_id.lower() != NON_GALLERY_TEMPLATE_ID:
            raise _not_found(template_id)
        body = self._body(request)
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise GraphError(400, "Request_BadRequest", "A value is required for property 'displayName' of resource "
                                                        "'applicationServicePrincipal'.")
        if self.instantiate_delay_s > 0:
            time.sleep(self.instantiate_delay_s)  # a request thread of the emulator: the client is not blocked
        app, sp = self.instantiate(name)
        result = {
            "@odata.context": f"{self._base(request)}/$metadata#microsoft.graph.applicationServicePrincipal",
            "application": app,
            "servicePrincipal": sp,
        }
        return self._json(request, result, 201)

    def instantiate(self, display_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Create the application and service principal the non-gallery template makes. Python API for tests."""
        app_id = str(uuid.uuid4())
        roles = [
            {"allowedMemberTypes": ["User"], "description": "msiam_access", "displayName": "msiam_access",
             "id": MSIAM_ROLE_ID, "isEnabled": True, "origin": "Application", "value": None},
            {"allowedMemberTypes": ["User"], "description": "User", "displayName": "User",
             "id": USER_ROLE_ID, "isEnabled": True, "origin": "Application", "value": None},
        ]
        app: dict[str, Any] = {
            "id": str(uuid.uuid4()), "appId": app_id, "applicationTemplateId": NON_GALLERY_TEMPLATE_ID,
            "createdDateTime": None, "deletedDateTime": None, "displayName": display_name,
            "description": None, "groupMembershipClaims": None, "identifierUris": [], "isFallbackPublicClient": None,
            "notes": None, "publisherDomain": "acme.example", "signInAudience": "AzureADMyOrg",
            "tags": [], "appRoles": plain_copy(roles), "keyCredentials": [], "passwordCredentials": [],
            "requiredResourceAccess": [],
            "web": {"homePageUrl": None, "logoutUrl": None, "redirectUris": [],
                    "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False}},
        }
        sp: dict[str, Any] = {
            "id": str(uuid.uuid4()), "deletedDateTime": None, "accountEnabled": True, "alternativeNames": [],
            "appDisplayName": display_name, "appDescription": None, "appId": app_id,
            "applicationTemplateId": NON_GALLERY_TEMPLATE_ID, "appOwnerOrganizationId": self.tenant_id,
            "appRoleAssignmentRequired": True, "appRoles": roles, "description": None, "displayName": display_name,
            "homepage": None, "loginUrl": None, "logoutUrl": None, "notes": None, "notificationEmailAddresses": [],
            "preferredSingleSignOnMode": None, "preferredTokenSigningKeyThumbprint": None, "replyUrls": [],
            "servicePrincipalNames": [app_id], "servicePrincipalType": "Application",
            "signInAudience": "AzureADMyOrg",
            "tags": ["WindowsAzureActiveDirectoryCustomSingleSignOnApplication",
                     "WindowsAzureActiveDirectoryIntegratedApp"],
            "tokenEncryptionKeyId": None, "keyCredentials": [], "passwordCredentials": [],
            "oauth2PermissionScopes": [], "publisherName": self.org_display_name,
            "info": {"logoUrl": None, "marketingUrl": None, "privacyStatementUrl": None, "supportUrl": None,
                     "termsOfServiceUrl": None},
        }
        if self.sso_mode_for_new_apps:
            sp["preferredSingleSignOnMode"] = self.sso_mode_for_new_apps
        with self.state.lock:
            # Stamped when stored, strictly increasing: creation order is the order apps became visible, as a
            # directory write is stamped when it is written (clients that race rely on nothing finer).
            created = now_iso()
            if created <= self._last_created:
                created = _after(self._last_created)
            app["createdDateTime"] = self._last_created = created
            self.state.applications[app["id"]] = app
            self.state.service_principals[sp["id"]] = sp
            self.state.assignments[sp["id"]] = []
            if self.propagation_failures:
                self._pending_propagation[sp["id"]] = self.propagation_failures
        return plain_copy(app), plain_copy(sp)

    def _h_list_applications(self, request: Request) -> Response:
        with self.state.lock:
            items = list(self.state.applications.values())
        return self._collection(request, items, "applications")

    def _h_application(self, request: Request, app_id: str) -> Response:
        with self.state.lock:
            app = self.state.applications.get(_object_id(app_id))
            if app is None:
                raise _not_found(app_id)
            if request.method == "DELETE":
                self._delete_application(app)
                return self._no_content()
        return self._entity(request, app, "applications/$entity")

    def _delete_application(self, app: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.applications.pop(app["id"], None)
            for sp in [s for s in self.state.service_principals.values() if s["appId"] == app["appId"]]:
                self._delete_sp(sp["id"])

    def _delete_sp(self, sp_id: str) -> None:
        with self.state.lock:
            self.state.service_principals.pop(sp_id, None)
            self.state.assignments.pop(sp_id, None)
            self.state.sync.pop(sp_id, None)

    def _h_list_sps(self, request: Request) -> Response:
        with self.state.lock:
            items = list(self.state.service_principals.values())
        return self._collection(request, items, "servicePrincipals")

    def _h_sp_by_app_id(self, request: Request, app_id: str) -> Response:
        with self.state.lock:
            sp = next((s for s in self.state.service_principals.values() if s["appId"] == app_id), None)
        if sp is None:
            raise _not_found(app_id)
        if request.method == "DELETE":
            self._delete_sp(sp["id"])
            return self._no_content()
        return self._entity(request, sp, "servicePrincipals/$entity")

    def _h_sp(self, request: Request, sp_id: str) -> Response:
        sp = self._sp(sp_id)
        if request.method == "DELETE":
            self._delete_sp(sp_id)
            return self._no_content()
        if request.method == "PATCH":
            body = self._body(request)
            writable = {"displayName", "appRoleAssignmentRequired", "notes", "notificationEmailAddresses",
                        "accountEnabled", "tags", "description", "preferredSingleSignOnMode", "loginUrl", "homepage"}
            unknown = [k for k in body if k not in writable]
            if unknown:
                raise GraphError(400, "Request_BadRequest",
                                 f"Property '{unknown[0]}' is read-only and cannot be set.")
            with self.state.lock:
                sp.update(body)
            return self._no_content()
        return self._entity(request, sp, "servicePrincipals/$entity")

    # -- synchronization ---------------------------------------------------------------------------------

    def _masked_secrets(self, sp_id: str) -> list[dict[str, str]]:
        stored = self.state.sp_sync(sp_id).secrets
        return [{"key": k, "value": SECRET_MASK if k in MASKED_SECRET_KEYS else v} for k, v in stored.items()]

    def _h_synchronization(self, request: Request, sp_id: str) -> Response:
        self._sync_sp(sp_id)
        body = {
            "@odata.context": f"{self._base(request)}/$metadata#servicePrincipals('{sp_id}')/synchronization/$entity",
            "id": sp_id,
            "secrets": self._masked_secrets(sp_id),
        }
        return self._json(request, body)

    def _h_templates(self, request: Request, sp_id: str) -> Response:
        sp = self._sync_sp(sp_id)
        body = {
            "@odata.context": f"{self._base(request)}/$metadata#servicePrincipals('{sp_id}')/synchronization/templates",
            "value": [build_template(sp["appId"])],
        }
        return self._json(request, body)

    def _h_secrets(self, request: Request, sp_id: str) -> Response:
        self._sync_sp(sp_id)
        if request.method == "GET":
            body = {
                "@odata.context": f"{self._base(request)}/$metadata#Collection(microsoft.graph."
                                  "synchronizationSecretKeyStringValuePair)",
                "value": self._masked_secrets(sp_id),
            }
            return self._json(request, body)
        data = self._body(request)
        pairs = data.get("value")
        if not isinstance(pairs, list):
            raise _bad_body()
        parsed: list[tuple[str, str]] = []
        for pair in pairs:
            if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
                raise _bad_body()
            key = pair["key"]
            if key not in SECRET_KEYS:
                # The sync service parses keys as a case-sensitive .NET enum and fails hard on anything else.
                raise GraphError(500, "UnknownError", f"Requested value '{key}' was not found.")
            value = pair.get("value")
            parsed.append((key, "" if value is None else str(value)))
        self.set_secrets(sp_id, dict(parsed))
        return self._no_content()

    def set_secrets(self, sp_id: str, values: Mapping[str, str]) -> None:
        """Merge secrets by key (an empty value removes the key). Python API for tests."""
        with self.state.lock:
            sync = self.state.sp_sync(sp_id)
            for key, value in values.items():
                if value == "":
                    sync.secrets.pop(key, None)
                else:
                    sync.secrets[key] = value
            configured = bool(sync.secrets.get("BaseAddress"))
            for job in sync.jobs.values():
                if job.status["code"] == "NotConfigured" and configured:
                    job.status["code"] = "NotRun"
                elif not configured and job.status["code"] == "NotRun":
                    job.status["code"] = "NotConfigured"

    def _h_jobs(self, request: Request, sp_id: str) -> Response:
        self._sync_sp(sp_id)
        sync = self.state.sp_sync(sp_id)
        base = f"{self._base(request)}/$metadata#servicePrincipals('{sp_id}')/synchronization/jobs"
        if request.method == "GET":
            with self.state.lock:
                items = [j.to_json() for j in sync.jobs.values()]
            return self._json(request, {"@odata.context": base, "value": items})
        data = self._body(request)
        template = data.get("templateId")
        if not isinstance(template, str) or not template:
            raise GraphError(400, "BadRequest", "The templateId property is required.")
        if template != SCIM_TEMPLATE_ID:
            raise GraphError(400, "BadRequest", f"The template '{template}' is not valid for this application.")
        with self.state.lock:
            if any(j.template_id == template for j in sync.jobs.values()):
                raise GraphError(409, "Conflict",
                                 f"A synchronization job for template '{template}' already exists.")
            job_id = f"{template}.{uuid.uuid4().hex}.{self.tenant_id}"
            job = SyncJob(id=job_id, template_id=template, schema=build_schema(job_id))
            if sync.secrets.get("BaseAddress"):
                job.status["code"] = "NotRun"
            sync.jobs[job_id] = job
            body = {"@odata.context": base + "/$entity", **job.to_json()}
        return self._json(request, body, 201)

    def _h_job(self, request: Request, sp_id: str, job_id: str) -> Response:
        job = self._job(sp_id, job_id)
        if request.method == "DELETE":
            with self.state.lock:
                self.state.sp_sync(sp_id).jobs.pop(job_id, None)
            return self._no_content()
        with self.state.lock:
            body = {
                "@odata.context": f"{self._base(request)}/$metadata#servicePrincipals('{sp_id}')/synchronization/"
                                  "jobs/$entity",
                **plain_copy(job.to_json()),
            }
        return self._json(request, body)

    def _credentials(self, sp_id: str, data: dict[str, Any]) -> tuple[str, str]:
        if data.get("useSavedCredentials"):
            saved = self.state.sp_sync(sp_id).secrets
            return saved.get("BaseAddress", ""), saved.get("SecretToken", "")
        creds = data.get("credentials")
        if not isinstance(creds, list):
            raise _bad_body()
        values: dict[str, str] = {}
        for pair in creds:
            if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
                raise _bad_body()
            if pair["key"] not in SECRET_KEYS:
                raise GraphError(500, "UnknownError", f"Requested value '{pair['key']}' was not found.")
            values[pair["key"]] = "" if pair.get("value") is None else str(pair["value"])
        return values.get("BaseAddress", ""), values.get("SecretToken", "")

    def _validate(self, sp_id: str, data: dict[str, Any]) -> Response:
        base, token = self._credentials(sp_id, data)
        try:
            self.engine.validate_credentials(base, token)
        except CredentialCheckFailed as exc:
            raise GraphError(400, exc.code, exc.message) from exc
        return self._no_content()

    def _h_validate(self, request: Request, sp_id: str, job_id: str) -> Response:
        self._job(sp_id, job_id)
        return self._validate(sp_id, self._body(request))

    def _h_validate_jobless(self, request: Request, sp_id: str) -> Response:
        self._sync_sp(sp_id)
        data = self._body(request)
        template = data.get("templateId")
        if template is not None and template != SCIM_TEMPLATE_ID:
            raise GraphError(400, "BadRequest", f"The template '{template}' is not valid for this application.")
        return self._validate(sp_id, data)

    def _h_start(self, request: Request, sp_id: str, job_id: str) -> Response:
        job = self._job(sp_id, job_id)
        if not self.state.sp_sync(sp_id).secrets.get("BaseAddress"):
            raise GraphError(400, "BadRequest",
                             "The job cannot be started: the tenant URL (BaseAddress) has not been configured.")
        with self.state.lock:
            job.schedule_state = "Active"
            job.status["code"] = "Active"
            if job.status.get("quarantine"):
                # start is how an admin clears quarantine ("Resume provisioning").
                job.status["quarantine"] = None
                job.status["countSuccessiveCompleteFailures"] = 0
        self._cycle(sp_id, job)
        return self._no_content()

    def _h_pause(self, request: Request, sp_id: str, job_id: str) -> Response:
        job = self._job(sp_id, job_id)
        with self.state.lock:
            job.schedule_state = "Paused"
            job.status["code"] = "Paused"
        return self._no_content()

    def _h_restart(self, request: Request, sp_id: str, job_id: str) -> Response:
        job = self._job(sp_id, job_id)
        data = self._body(request, required=False)
        criteria = data.get("criteria") or {}
        if not isinstance(criteria, dict):
            raise _bad_body()
        raw_scope = criteria.get("resetScope") or ""
        if not isinstance(raw_scope, str):
            raise _bad_body()
        allowed = {"None", "ConnectorDataStore", "Escrows", "Watermark", "QuarantineState", "Full", "ForceDeletes"}
        scopes = {s.strip() for s in raw_scope.split(",") if s.strip()}
        bad = [s for s in scopes if s not in allowed]
        if bad:
            raise GraphError(400, "BadRequest", f"Requested value '{bad[0]}' was not found.")
        if not scopes:
            scopes = {"QuarantineState", "Watermark", "Escrows"}  # the portal's "Restart provisioning"
        with self.state.lock:
            if scopes & {"Full", "Watermark", "Escrows", "ConnectorDataStore"}:
                # Forget what was exported: the next cycle compares every object with the target again.
                job.escrows.clear()
            if scopes & {"Full", "QuarantineState"}:
                job.status["quarantine"] = None
                job.status["countSuccessiveCompleteFailures"] = 0
                if job.schedule_state == "Active":
                    job.status["code"] = "Active"
            run = job.schedule_state == "Active"
        if run:
            self._cycle(sp_id, job)
        return self._no_content()

    def _cycle(self, sp_id: str, job: SyncJob) -> None:
        if self.hold_cycles:
            return
        if not self.background_cycles:
            self.engine.run_cycle(sp_id, job)
            return
        thread = threading.Thread(target=self.engine.run_cycle, args=(sp_id, job), name=f"entra-cycle-{job.id}",
                                  daemon=True)
        with self.state.lock:
            self._cycles = [t for t in self._cycles if t.is_alive()] + [thread]
        thread.start()

    def wait_for_cycles(self, timeout: float = 60.0) -> bool:
        """Wait for background cycles (background_cycles=True) to finish; False if some still run."""
        deadline = time.monotonic() + timeout
        with self.state.lock:
            running = list(self._cycles)
        for thread in running:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in running)

    def _h_on_demand(self, request: Request, sp_id: str, job_id: str) -> Response:
        job = self._job(sp_id, job_id)
        self._ondemand_rate(job)
        data = self._body(request)
        params = data.get("parameters")
        if not isinstance(params, list) or not params:
            raise GraphError(400, "BadRequest", "The parameters property is required.")
        if len(params) > 1:
            raise GraphError(400, "BadRequest", "Only one synchronization rule can be applied per request.")
        param = params[0]
        if not isinstance(param, dict):
            raise _bad_body()
        rule_id = param.get("ruleId")
        rules = [r.get("id") for r in job.schema.get("synchronizationRules") or [] if isinstance(r, dict)]
        if rule_id not in rules:
            raise GraphError(400, "BadRequest", f"The rule '{rule_id}' was not found in the job's schema.")
        subjects = param.get("subjects")
        if not isinstance(subjects, list) or not subjects:
            raise GraphError(400, "BadRequest", "At least one subject is required.")
        groups = [s for s in subjects if isinstance(s, dict) and str(s.get("objectTypeName")) == "Group"]
        users = [s for s in subjects if isinstance(s, dict) and str(s.get("objectTypeName")) == "User"]
        if len(groups) + len(users) != len(subjects):
            raise GraphError(400, "BadRequest", "Each subject needs an objectId and objectTypeName User or Group.")
        if len(groups) > 1 or (groups and users):
            raise GraphError(400, "BadRequest", "Provision on demand accepts one group per request.")
        if groups:
            links = groups[0].get("links") or {}
            members = links.get("members") if isinstance(links, dict) else None
            members = members or []
            if not isinstance(members, list) or len(members) > ONDEMAND_MAX_MEMBERS:
                raise GraphError(
                    400, "BadRequest",
                    f"Provision on demand accepts at most {ONDEMAND_MAX_MEMBERS} members of a group per request.",
                )
            member_ids = [str(m.get("objectId")) for m in members if isinstance(m, dict)]
            key, value = self.engine.provision_on_demand_group(sp_id, job, str(groups[0].get("objectId")),
                                                               member_ids)
        else:
            if len(users) > ONDEMAND_MAX_MEMBERS:
                raise GraphError(400, "BadRequest",
                                 f"Provision on demand accepts at most {ONDEMAND_MAX_MEMBERS} users per request.")
            key, value = self.engine.provision_on_demand_users(sp_id, job, [str(u.get("objectId")) for u in users])
        body = {
            "@odata.context": f"{self._base(request)}/$metadata#microsoft.graph.stringKeyStringValuePair",
            "key": key,
            "value": value,
        }
        return self._json(request, body)

    def _ondemand_rate(self, job: SyncJob) -> None:
        now = self.ondemand_clock()
        with self._ondemand_lock:
            calls = job.ondemand_calls
            while calls and now - calls[0] >= self.ondemand_window_s:
                calls.popleft()
            if len(calls) >= self.ondemand_limit:
                wait = max(1, math.ceil(self.ondemand_window_s - (now - calls[0])))
                raise GraphError(
                    429, "TooManyRequests",
                    f"Provision on demand is limited to {self.ondemand_limit} requests per "
                    f"{self.ondemand_window_s:g} seconds.",
                    {"Retry-After": str(wait)},
                )
            calls.append(now)

    def _schema_patch_error(self, request: Request) -> GraphError:
        m = re.match(r"^/v1\.0/servicePrincipals/([^/]+)/synchronization/jobs/([^/]+)/schema$", request.path)
        sp_id, job_id = (m.group(1), m.group(2)) if m else ("", "")
        inner = json.dumps({
            "Message": "No HTTP resource was found that matches the request URI "
                       f"'https://syncfabric.windowsazure.com/api/servicePrincipals('{sp_id}')/synchronization/"
                       f"jobs('{job_id}')/schema?api-version=2.0'."
        })
        return GraphError(404, "UnknownError", inner)

    def _h_schema(self, request: Request, sp_id: str, job_id: str) -> Response:
        job = self._job(sp_id, job_id)
        if request.method == "PATCH":
            raise self._schema_patch_error(request)
        if request.method == "GET":
            with self.state.lock:
                body = {
                    "@odata.context": f"{self._base(request)}/$metadata#servicePrincipals('{sp_id}')/"
                                      f"synchronization/jobs('{job_id}')/schema/$entity",
                    **plain_copy(job.schema),
                }
            return self._json(request, body)
        data = self._body(request)
        data.pop("@odata.context", None)
        self._check_schema(data)
        with self.state.lock:
            job.schema = data
        return self._no_content()

    @staticmethod
    def _check_schema(data: dict[str, Any]) -> None:
        """The structural checks the service makes before it accepts a schema (details are not documented)."""
        rules = data.get("synchronizationRules")
        if not isinstance(rules, list) or not rules:
            raise GraphError(400, "BadRequest", "The schema must contain at least one synchronization rule.")
        for rule in rules:
            if not isinstance(rule, dict) or not isinstance(rule.get("objectMappings"), list):
                raise GraphError(400, "BadRequest", "Each synchronization rule needs objectMappings.")
            for om in rule["objectMappings"]:
                if not isinstance(om, dict) or not isinstance(om.get("attributeMappings", []), list):
                    raise GraphError(400, "BadRequest", "Each object mapping needs attributeMappings.")
                if flow_types(om.get("flowTypes")) is None:
                    # A flags enum (objectFlowTypes): a name it lacks fails as any enum value does.
                    raise GraphError(400, "BadRequest", f"Requested value '{om.get('flowTypes')}' was not found.")
                for clause in scope_clauses(om.get("scope")):
                    op = clause.get("operatorName")
                    if op not in SCOPE_OPERATORS:
                        raise GraphError(400, "BadRequest",
                                         f"The scoping filter operator '{op}' is not supported. Supported "
                                         f"operators: {', '.join(sorted(SCOPE_OPERATORS))}.")
                    if op in ("REGEX_MATCH", "NOT_REGEX_MATCH"):
                        for pattern in operand_values(clause):
                            try:
                                re.compile(python_pattern(pattern))
                            except re.error as exc:
                                # Refused here, so the cycle never meets it. Entra reads .NET regular expressions,
                                # this emulator Python's: a .NET-only pattern ((?<name>...), \p{L}) may be valid
                                # there, and the message says it is this sandbox that cannot read it.
                                raise GraphError(400, "BadRequest", f"The scoping filter pattern '{pattern}' of "
                                                 f"{clause.get('sourceOperandName')} is not a regular expression "
                                                 f"this sandbox can evaluate (Python's re: {exc}; Entra itself reads "
                                                 f".NET regular expressions).") from exc
                for am in om.get("attributeMappings", []):
                    if not isinstance(am, dict) or not am.get("targetAttributeName") \
                            or not isinstance(am.get("source"), dict):
                        raise GraphError(400, "BadRequest",
                                         "Each attribute mapping needs a targetAttributeName and a source.")

    def _h_parse_expression(self, request: Request, sp_id: str, job_id: str) -> Response:
        self._job(sp_id, job_id)
        data = self._body(request)
        text = data.get("expression")
        if not isinstance(text, str):
            raise GraphError(400, "BadRequest", "The expression property is required.")
        from connector.mapping.expr import entra as entra_expr

        result: dict[str, Any] = {
            "@odata.context": f"{self._base(request)}/$metadata#microsoft.graph.parseExpressionResponse",
            "error": None, "evaluationResult": [], "evaluationSucceeded": False,
            "parsedExpression": None, "parsingSucceeded": False,
        }
        try:
            expr = entra_expr.parse(text)
            result["parsedExpression"] = entra_expr.to_source_tree(expr)
            result["parsingSucceeded"] = True
            sample = data.get("testInputObject")
            if isinstance(sample, dict):
                props = {str(p.get("key")): p.get("value") for p in sample.get("properties") or [] if isinstance(p, dict)}
                value = entra_expr.evaluate(expr, props)
                result["evaluationResult"] = [] if value is None else [str(value)]
                result["evaluationSucceeded"] = True
        except entra_expr.ExpressionError as exc:
            result["error"] = {"code": "ExpressionParsingFailed", "message": str(exc), "tenantActionable": True}
        return self._json(request, result)

    # -- assignments --------------------------------------------------------------------------------------

    def _h_assignments(self, request: Request, sp_id: str) -> Response:
        sp = self._sp(sp_id)
        if request.method == "GET":
            with self.state.lock:
                items = list(self.state.assignments.get(sp_id, []))
            return self._collection(request, items, f"servicePrincipals('{sp_id}')/appRoleAssignedTo")
        data = self._body(request)
        principal = str(data.get("principalId") or "")
        resource = str(data.get("resourceId") or "")
        role = str(data.get("appRoleId") or "")
        if resource.lower() != sp_id.lower():
            raise GraphError(400, "Request_BadRequest",
                             "The resourceId must be the id of the service principal in the request URL.")
        assignment = self.assign(sp["id"], principal, role)
        body = {"@odata.context": f"{self._base(request)}/$metadata#servicePrincipals('{sp_id}')/"
                                  "appRoleAssignedTo/$entity", **assignment}
        return self._json(request, body, 201)

    def assign(self, sp_id: str, principal_id: str, app_role_id: str = USER_ROLE_ID) -> dict[str, Any]:
        """Assign a user or group to the app (Python API for tests; the HTTP POST uses it too)."""
        with self.state.lock:
            sp = self._sp(sp_id)
            if principal_id in self.state.users:
                principal, ptype = self.state.users[principal_id], "User"
            elif principal_id in self.state.groups:
                principal, ptype = self.state.groups[principal_id], "Group"
            else:
                raise _not_found(principal_id)
            roles = {r["id"] for r in sp.get("appRoles") or []}
            if app_role_id not in roles and not (app_role_id == DEFAULT_ACCESS_ROLE_ID and not roles):
                raise GraphError(400, "Request_BadRequest",
                                 f"Permission being assigned was not found on application '{sp['appId']}'.")
            existing = self.state.assignments.setdefault(sp_id, [])
            if any(a["principalId"] == principal_id and a["appRoleId"] == app_role_id for a in existing):
                raise GraphError(400, "Request_BadRequest", "Permission being assigned already exists on the object")
            raw = uuid.uuid4().bytes + uuid.uuid4().bytes[:16]
            assignment = {
                "id": base64.urlsafe_b64encode(raw).decode().rstrip("="),
                "deletedDateTime": None,
                "appRoleId": app_role_id,
                "createdDateTime": now_iso(),
                "principalDisplayName": principal.get("displayName"),
                "principalId": principal_id,
                "principalType": ptype,
                "resourceDisplayName": sp.get("displayName"),
                "resourceId": sp_id,
            }
            existing.append(assignment)
            return dict(assignment)

    def _h_assignment(self, request: Request, sp_id: str, assignment_id: str) -> Response:
        self._sp(sp_id)
        with self.state.lock:
            items = self.state.assignments.get(sp_id, [])
            found = next((a for a in items if a["id"] == assignment_id), None)
            if found is None:
                raise _not_found(assignment_id)
            if request.method == "DELETE":
                items.remove(found)
                return self._no_content()
        return self._entity(request, found, f"servicePrincipals('{sp_id}')/appRoleAssignedTo/$entity")

    # -- directory -----------------------------------------------------------------------------------------

    def _h_list_users(self, request: Request) -> Response:
        flt = request.args.get("$filter")
        with self.state.lock:
            simple = simple_equality(flt) if flt else None
            if simple and simple[0].lower() == "userprincipalname":
                user = self.state.user_by_upn(simple[1])  # index, not a scan: lookups stay fast at 50,000
                items = [user] if user else []
            else:
                items = self.state.user_list()
        return self._collection(request, items, "users", default_select=USER_DEFAULT_PROPERTIES,
                                raw=self._users_bytes)

    def _users_bytes(self, users: list[dict[str, Any]]) -> list[bytes]:
        """JSON of each user's default projection (no $select), cached until `GraphState.change_user`."""
        cache = self.state.user_bytes
        out = []
        for user in users:
            hit = cache.get(user["id"])
            if hit is None or hit[0] is not user:
                hit = cache[user["id"]] = (user, json.dumps(project(user, None, USER_DEFAULT_PROPERTIES)).encode())
            out.append(hit[1])
        return out

    def _h_user(self, request: Request, user_id: str) -> Response:
        with self.state.lock:
            user = self.state.users.get(user_id) or self.state.user_by_upn(user_id)
        if user is None:
            raise _not_found(user_id)
        return self._entity(request, user, "users/$entity", USER_DEFAULT_PROPERTIES)

    def _h_list_groups(self, request: Request) -> Response:
        flt = request.args.get("$filter")
        with self.state.lock:
            simple = simple_equality(flt) if flt else None
            if simple and simple[0].lower() == "displayname":
                ids = self.state.group_names.get(simple[1].lower(), [])
                items = [self.state.groups[i] for i in ids if i in self.state.groups]
            else:
                items = list(self.state.groups.values())
        return self._collection(request, items, "groups")

    def _h_group(self, request: Request, group_id: str) -> Response:
        with self.state.lock:
            group = self.state.groups.get(_object_id(group_id))
        if group is None:
            raise _not_found(group_id)
        if request.method == "DELETE":  # Graph "Delete group": 204 No Content
            self.state.delete_group(group["id"])
            return self._no_content()
        return self._entity(request, group, "groups/$entity")

    def _member_ids(self, ids: Iterable[str], cast: str | None) -> list[str]:
        """The ids of the directory objects among `ids` (of the cast's type), without copying any object."""
        wanted = None
        if cast is not None:
            wanted = _TYPE_CASTS.get(cast)
            if wanted is None:
                raise GraphError(400, "BadRequest", f"Resource not found for the segment '{cast}'.")
        st = self.state
        if wanted is None:
            return [i for i in ids if i in st.users or i in st.groups or i in st.service_principals]
        table = st.users if wanted == USER_TYPE else st.groups if wanted == GROUP_TYPE else st.service_principals
        return [i for i in ids if i in table]

    def _group_member_ids(self, group_id: str, cast: str | None) -> list[str]:
        """`_member_ids` of a group's members, kept from one page to the next while the group's member list and
        the directory's tables keep their size and the list its last member (every change to them moves one of
        those: an add appends, a removal shortens, a replaced member ends the list). Filtering a 100,000-member
        group for each of its 101 pages cost ~25 ms a page, the chain a Graph audit waits on. Under state.lock."""
        st = self.state
        members = st.members.get(group_id, [])
        stamp = (id(members), len(members), members[-1] if members else None, len(st.users), len(st.groups),
                 len(st.service_principals))
        hit = self._member_ids_cache.get((group_id, cast))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        ids = self._member_ids(members, cast)
        self._member_ids_cache[(group_id, cast)] = (stamp, ids)
        return ids

    def _member_objects(self, ids: list[str]) -> list[dict[str, Any]]:
        return [o for o in map(self.state.directory_object, ids) if o is not None]

    def _member_bytes(self, ids: list[str], fields: list[str] | None, default: tuple[str, ...] | None
                      ) -> list[bytes]:
        """orjson's JSON of `project(directory_object(id), fields, default)` for each member id, a user's cached
        in GraphState.member_bytes: copying each member into a directory object and projecting it was most of a
        999-member page's time, the chain a Graph audit waits on, link by link. Under state.lock."""
        st = self.state
        cache = st.member_bytes.setdefault((tuple(fields) if fields is not None else None, default), {})
        out = []
        for oid in ids:
            user = st.users.get(oid)
            if user is None:  # a group or service principal member: rare, rendered each time
                obj = st.directory_object(oid)
                if obj is not None:
                    out.append(orjson.dumps(project(obj, fields, default)))
                continue
            hit = cache.get(oid)
            if hit is None or hit[0] is not user:
                hit = cache[oid] = (user, orjson.dumps(project({"@odata.type": USER_TYPE, **user}, fields, default)))
            out.append(hit[1])
        return out

    def _h_members(self, request: Request, group_id: str, cast: str | None = None) -> Response:
        with self.state.lock:
            if _object_id(group_id) not in self.state.groups:
                raise _not_found(group_id)
            ids = self._group_member_ids(group_id, cast)
        default = None if cast is None or "group" in cast else USER_DEFAULT_PROPERTIES
        return self._collection(request, ids, "directoryObjects", resolve=self._member_objects,
                                resolved_bytes=lambda keys, fields: self._member_bytes(keys, fields, default),
                                default_select=default)

    def _h_transitive(self, request: Request, group_id: str, cast: str | None = None) -> Response:
        with self.state.lock:
            if _object_id(group_id) not in self.state.groups:
                raise _not_found(group_id)
            seen: dict[str, None] = {}
            stack = list(self.state.members.get(group_id, []))
            while stack:
                oid = stack.pop(0)
                if oid in seen:
                    continue
                seen[oid] = None
                stack.extend(self.state.members.get(oid, []))
            ids = self._member_ids(seen, cast)
        return self._collection(request, ids, "directoryObjects", resolve=self._member_objects)

    def _h_logs(self, request: Request) -> Response:
        with self.state.lock:
            items = list(reversed(self.state.provisioning_logs))  # newest first, as the portal shows them
        return self._collection(request, items, "auditLogs/provisioning", case_insensitive=False, directory=False)

    def _h_organization(self, request: Request) -> Response:
        org = {
            "id": self.tenant_id, "displayName": self.org_display_name, "tenantType": "AAD",
            "verifiedDomains": [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": True,
                                 "isInitial": True, "name": "acme.example", "type": "Managed"}],
        }
        return self._collection(request, [org], "organization")

    # -- sandbox administration ------------------------------------------------------------------------------

    def _h_admin_run_cycle(self, request: Request, sp_id: str) -> Response:
        return self._json(request, {"jobs": self.run_cycle(sp_id)})

    def _h_admin_quarantine(self, request: Request, sp_id: str) -> Response:
        data = self._body(request, required=False)
        self.quarantine(sp_id, str(data.get("reason") or "EncounteredQuarantineException"))
        return self._no_content()

    def _h_admin_remove_user(self, request: Request, upn: str) -> Response:
        self.remove_user_silently(upn)
        return self._no_content()

    def _h_admin_permission(self, request: Request, family: str) -> Response:
        if request.method == "PUT":
            self.allow_permission(family)
        else:
            self.deny_permission(family)
        return self._no_content()

    def _h_admin_state(self, request: Request) -> Response:
        with self.state.lock:
            summary = {
                "users": len(self.state.users),
                "groups": len(self.state.groups),
                "servicePrincipals": len(self.state.service_principals),
                "jobs": {sp: list(s.jobs) for sp, s in self.state.sync.items()},
                "denied": sorted(self.state.denied),
                "provisioningLogs": len(self.state.provisioning_logs),
            }
        return self._json(request, summary)

    # -- Python API for the sandbox and tests ------------------------------------------------------------------

    def load(self, seed: SeedLike) -> None:
        self.state.load(seed)

    def run_cycle(self, sp_id: str) -> list[dict[str, Any]]:
        """Run one provisioning cycle for every active job of the service principal; returns each job's
        lastExecution. Paused, disabled and quarantined jobs are skipped, as on the real schedule."""
        sync = self.state.sync.get(sp_id)
        if sync is None:
            raise KeyError(f"no synchronization for service principal {sp_id}")
        results = []
        for job in list(sync.jobs.values()):
            if job.schedule_state == "Active" and job.status["code"] == "Active":
                self.engine.run_cycle(sp_id, job)
                results.append(plain_copy(job.status.get("lastExecution")) or {})
        return results

    def quarantine(self, sp_id: str, reason: str = "EncounteredQuarantineException",
                   message: str = "Quarantined by the sandbox.") -> None:
        sync = self.state.sync.get(sp_id)
        if sync is None:
            raise KeyError(f"no synchronization for service principal {sp_id}")
        with self.state.lock:
            for job in sync.jobs.values():
                job.status["code"] = "Quarantine"
                job.status["quarantine"] = _quarantine_json(reason, message)

    def remove_user_silently(self, upn: str) -> None:
        """Delete a user in Entra without provisioning anything (drift: gone in the IdP, still in Astro)."""
        with self.state.lock:
            user = self.state.user_by_upn(upn)
            if user is None:
                raise KeyError(upn)
            self.state.delete_user(user["id"])

    def deny_permission(self, family: str) -> None:
        """Answer a family of endpoints with 403 Authorization_RequestDenied. Accepts a family name
        (applications, synchronization, appRoleAssignments, users, groups, auditLogs) or the Graph permission."""
        self.state.denied.add(self._family(family))

    def allow_permission(self, family: str) -> None:
        self.state.denied.discard(self._family(family))

    @staticmethod
    def _family(name: str) -> str:
        if name in PERMISSIONS:
            return name
        for family, permission in PERMISSIONS.items():
            if permission.lower() == name.lower():
                return family
        raise KeyError(f"unknown permission family {name!r}; one of {', '.join(PERMISSIONS)}")

    def users(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(u) for u in self.state.users.values()]

    def groups(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(g) for g in self.state.groups.values()]

    def user(self, upn: str) -> dict[str, Any] | None:
        with self.state.lock:
            user = self.state.user_by_upn(upn)
            return dict(user) if user else None

    def group(self, name: str) -> dict[str, Any] | None:
        with self.state.lock:
            group = self.state.group_by_name(name)
            return dict(group) if group else None

    def group_member_upns(self, name: str) -> list[str]:
        with self.state.lock:
            group = self.state.group_by_name(name)
            if group is None:
                raise KeyError(name)
            return [self.state.users[m]["userPrincipalName"] for m in self.state.members.get(group["id"], [])
                    if m in self.state.users]

    def update_user(self, upn: str, **props: Any) -> None:
        """Change a user's Graph properties (e.g. jobTitle=..., accountEnabled=False) without provisioning."""
        with self.state.lock:
            user = self.state.user_by_upn(upn)
            if user is None:
                raise KeyError(upn)
            self.state.change_user(user, props)

    def add_member(self, group_name: str, upn: str) -> None:
        with self.state.lock:
            group, user = self.state.group_by_name(group_name), self.state.user_by_upn(upn)
            if group is None or user is None:
                raise KeyError(group_name if group is None else upn)
            members = self.state.members.setdefault(group["id"], [])
            if user["id"] not in members:
                members.append(user["id"])

    def remove_member(self, group_name: str, upn: str) -> None:
        with self.state.lock:
            group, user = self.state.group_by_name(group_name), self.state.user_by_upn(upn)
            if group is None or user is None:
                raise KeyError(group_name if group is None else upn)
            members = self.state.members.get(group["id"], [])
            if user["id"] in members:
                members.remove(user["id"])

    def service_principals(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [plain_copy(s) for s in self.state.service_principals.values()]

    def service_principal(self, display_name: str) -> dict[str, Any] | None:
        with self.state.lock:
            sp = next((s for s in self.state.service_principals.values() if s["displayName"] == display_name), None)
            return plain_copy(sp) if sp else None

    def jobs(self, sp_id: str) -> list[dict[str, Any]]:
        with self.state.lock:
            sync = self.state.sync.get(sp_id)
            return [plain_copy(j.to_json()) for j in sync.jobs.values()] if sync else []

    def job(self, sp_id: str, job_id: str | None = None) -> SyncJob:
        """The live job object (the only one of the service principal when job_id is None)."""
        sync = self.state.sync.get(sp_id)
        if sync is None or not sync.jobs:
            raise KeyError(f"no synchronization job for service principal {sp_id}")
        if job_id is None:
            return next(iter(sync.jobs.values()))
        return sync.jobs[job_id]

    def schema(self, sp_id: str, job_id: str | None = None) -> dict[str, Any]:
        with self.state.lock:
            return plain_copy(self.job(sp_id, job_id).schema)

    def secrets(self, sp_id: str) -> dict[str, str]:
        """Stored secrets, unmasked (tests only: the HTTP API masks token values)."""
        with self.state.lock:
            return dict(self.state.sp_sync(sp_id).secrets)

    def assignments(self, sp_id: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(a) for a in self.state.assignments.get(sp_id, [])]

    def logs(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return plain_copy(self.state.provisioning_logs)
