"""An Okta Management API emulator (WSGI) covering what the connector uses, with Okta's documented quirks.

Shapes follow the Okta Management OpenAPI spec 5.1.0 (the one the `okta` SDK is generated from); behaviour
follows reference/okta-api.md:
- auth: `SSWS <token>`, `SSWS<token>` (the SDK omits the space) and `Bearer <token>`; else 401 E0000011;
- OAuth for service apps (`register_service_app`): POST /oauth2/v1/token takes the client_credentials grant with a
  private_key_jwt client assertion (RS256, iss = sub = client id, aud = the token URL, not expired), checks the
  requested scopes against the app's grants and issues a Bearer access token for an hour; errors are OAuth's
  `{"error", "error_description"}` (401 invalid_client, 400 invalid_scope / invalid_request /
  unsupported_grant_type). Scopes are checked at the token endpoint only, not per API call;
- every answer carries X-Rate-Limit-Limit/-Remaining/-Reset and a real per-minute budget per endpoint family
  (users, groups, apps, mappings, meta); over budget -> 429 E0000047 (the SDK retries on Date + Reset);
- cursor paging with two separate `link` headers, rel="self" first, rel="next" last, per-endpoint limits;
- the provisioning connection API answers 200 with status/authScheme UNKNOWN for these apps (they are not
  on Okta's supported list), for GET and POST alike; provisioning is switched on by the Admin Console step,
  which the sandbox offers as `POST /_sandbox/apps/{appId}/provisioning` / `enable_provisioning()`;
- features answer 400 E0000001 "Provisioning is not enabled for the app instance." until then;
- group push mappings: create answers 201, PATCH changes status only, DELETE needs INACTIVE and
  deleteTargetGroup; a pushed group appears in Okta as an APP_GROUP (what `targetGroupId` names), as in a real
  org, so list groups with `search=type eq "OKTA_GROUP"` to see only the org's own groups;
- DELETE /groups/{id}: 204; 403 E0000006 for BUILT_IN and for an APP_GROUP a push mapping targets; the group's app
  assignments (its users deprovisioned), memberships and push mappings go with it, the Team stays in the app.
Sandbox decisions (no public source says otherwise): direct unassignment of a user assigned only through a
group answers 400 E0000001; an app user whose provisioning failed keeps status STAGED with syncState ERROR,
and the error text is available through `provisioning_errors()` (Okta shows it in the Admin Console only).

Writes that Okta would provision run the engine (okta_engine.py) synchronously, inside the request.

Sandbox admin endpoints (never faulted, no Okta auth; loopback only) and their Python twins:
  POST /_sandbox/apps/{appId}/provisioning {baseUrl, token}     enable_provisioning(app_id, base_url, token)
  GET  /_sandbox/okta/apps?label=Astro                          app_by_label(label)
  POST /_sandbox/okta/users/{login}/deactivate-silently         deactivate_user_silently(login)
  POST /_sandbox/okta/apps/{appId}/users/{login}/error {summary} set_app_user_error(app_id, login, summary)
  POST /_sandbox/okta/apps/{appId}/push/{group}/error {summary}  set_push_error(app_id, group_name, summary)
  PUT  /_sandbox/okta/rate-limit {perMinute, family?}           set_rate_limit(per_minute, family=None)
Python only: set_sign_on_mode(app_id, mode) (an app added for provisioning only, without SSO, or SAML set up).
Inspection for tests: user_by_login, group_by_name, app_user, push_mapping, provisioning_errors.
App lifecycle: POST /api/v1/apps/{appId}/lifecycle/activate|deactivate (spec 5.1.0) change the app's status only.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connector.sandbox.faults import ADMIN_PREFIX
from connector.sandbox.okta.engine import OktaEngine, app_attributes, expression_error
from connector.sandbox.okta.state import (
    USER_PROVISIONING,
    FilterError,
    OktaState,
    Predicate,
    Row,
    Shapes,
    Table,
    compile_filter,
    public,
)
from connector.sandbox.snapshot import Translate, copied

if TYPE_CHECKING:
    from connector.sandbox.seed import SeedOrg

DEFAULT_RATE_LIMIT = 600  # requests per minute per endpoint family; generous, like a paid org's users budget


class OktaApiError(Exception):
    """An Okta error response: status, errorCode, errorSummary, errorCauses."""

    def __init__(self, status: int, code: str, summary: str, causes: Iterable[str] = ()) -> None:
        super().__init__(summary)
        self.status = status
        self.code = code
        self.summary = summary
        self.causes = list(causes)


def not_found(key: str, kind: str) -> OktaApiError:
    return OktaApiError(404, "E0000007", f"Not found: Resource not found: {key} ({kind})")


def validation(what: str, *causes: str) -> OktaApiError:
    return OktaApiError(400, "E0000001", f"Api validation failed: {what}", causes)


def error_body(code: str, summary: str, causes: Iterable[str] = ()) -> Row:
    return {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oae" + secrets.token_urlsafe(16)[:22],
        "errorCauses": [{"errorSummary": c} for c in causes],
    }


class RateLimiter:
    """Per-family request counts in fixed one-minute windows, like Okta's org-wide per-endpoint limits."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self.overrides: dict[str, int] = {}
        self._clock = clock
        self._window = 0
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def limit(self, family: str) -> int:
        return self.overrides.get(family, self.per_minute)

    def hit(self, family: str) -> tuple[int, int, int, bool]:
        """Count one request: (limit, remaining, reset epoch seconds, allowed)."""
        now = self._clock()
        window = int(now // 60) * 60
        limit = self.limit(family)
        with self._lock:
            if window != self._window:
                self._window, self._counts = window, {}
            used = self._counts.get(family, 0)
            allowed = used < limit
            if allowed:
                used += 1
                self._counts[family] = used
        return limit, max(limit - used, 0), window + 60, allowed

    def peek(self, family: str) -> tuple[int, int, int]:
        now = self._clock()
        window = int(now // 60) * 60
        limit = self.limit(family)
        with self._lock:
            used = self._counts.get(family, 0) if window == self._window else 0
        return limit, max(limit - used, 0), window + 60


def _family(path: str) -> str:
    parts = path.split("/")
    return parts[3] if len(parts) > 3 and parts[1] == "api" else "other"


def _rule(path: str, endpoint: str, *methods: str) -> Rule:
    return Rule(path, endpoint=endpoint, methods=list(methods))


_ROUTES = Map(
    [
        _rule("/api/v1/users", "list_users", "GET"),
        _rule("/api/v1/users", "create_user", "POST"),
        _rule("/api/v1/users/<uid>", "get_user", "GET"),
        _rule("/api/v1/users/<uid>", "update_user", "POST"),
        _rule("/api/v1/users/<uid>", "replace_user", "PUT"),
        _rule("/api/v1/users/<uid>/groups", "list_user_groups", "GET"),
        _rule("/api/v1/users/<uid>/lifecycle/deactivate", "deactivate_user", "POST"),
        _rule("/api/v1/users/<uid>/lifecycle/activate", "activate_user", "POST"),
        _rule("/api/v1/users/<uid>/lifecycle/reactivate", "reactivate_user", "POST"),
        _rule("/api/v1/groups", "list_groups", "GET"),
        _rule("/api/v1/groups", "create_group", "POST"),
        _rule("/api/v1/groups/<gid>", "get_group", "GET"),
        _rule("/api/v1/groups/<gid>", "replace_group", "PUT"),
        _rule("/api/v1/groups/<gid>", "delete_group", "DELETE"),
        _rule("/api/v1/groups/<gid>/users", "list_group_users", "GET"),
        _rule("/api/v1/groups/<gid>/users/<uid>", "add_group_member", "PUT"),
        _rule("/api/v1/groups/<gid>/users/<uid>", "remove_group_member", "DELETE"),
        _rule("/api/v1/groups/<gid>/apps", "list_group_apps", "GET"),
        _rule("/api/v1/meta/types/user", "list_user_types", "GET"),
        _rule("/api/v1/meta/types/user/<tid>", "get_user_type", "GET"),
        _rule("/api/v1/apps", "list_apps", "GET"),
        _rule("/api/v1/apps/<aid>", "get_app", "GET"),
        _rule("/api/v1/apps/<aid>/lifecycle/<action>", "app_lifecycle", "POST"),
        _rule("/api/v1/apps/<aid>/users", "list_app_users", "GET"),
        _rule("/api/v1/apps/<aid>/users", "assign_user", "POST"),
        _rule("/api/v1/apps/<aid>/users/<uid>", "get_app_user", "GET"),
        _rule("/api/v1/apps/<aid>/users/<uid>", "update_app_user", "POST"),
        _rule("/api/v1/apps/<aid>/users/<uid>", "unassign_user", "DELETE"),
        _rule("/api/v1/apps/<aid>/groups", "list_app_groups", "GET"),
        _rule("/api/v1/apps/<aid>/groups/<gid>", "get_app_group", "GET"),
        _rule("/api/v1/apps/<aid>/groups/<gid>", "assign_group", "PUT"),
        _rule("/api/v1/apps/<aid>/groups/<gid>", "patch_app_group", "PATCH"),
        _rule("/api/v1/apps/<aid>/groups/<gid>", "unassign_group", "DELETE"),
        _rule("/api/v1/apps/<aid>/connections/default", "get_connection", "GET"),
        _rule("/api/v1/apps/<aid>/connections/default", "update_connection", "POST"),
        _rule("/api/v1/apps/<aid>/connections/default/lifecycle/<action>", "connection_lifecycle", "POST"),
        _rule("/api/v1/apps/<aid>/features", "list_features", "GET"),
        _rule("/api/v1/apps/<aid>/features/<name>", "get_feature", "GET"),
        _rule("/api/v1/apps/<aid>/features/<name>", "update_feature", "PUT"),
        _rule("/api/v1/apps/<aid>/group-push/mappings", "list_push", "GET"),
        _rule("/api/v1/apps/<aid>/group-push/mappings", "create_push", "POST"),
        _rule("/api/v1/apps/<aid>/group-push/mappings/<mid>", "get_push", "GET"),
        _rule("/api/v1/apps/<aid>/group-push/mappings/<mid>", "update_push", "PATCH"),
        _rule("/api/v1/apps/<aid>/group-push/mappings/<mid>", "delete_push", "DELETE"),
        _rule("/api/v1/mappings", "list_mappings", "GET"),
        _rule("/api/v1/mappings/<mid>", "get_mapping", "GET"),
        _rule("/api/v1/mappings/<mid>", "update_mapping", "POST"),
        _rule(f"{ADMIN_PREFIX}/health", "admin_health", "GET"),
        _rule(f"{ADMIN_PREFIX}/apps/<aid>/provisioning", "admin_provisioning", "POST"),
        _rule(f"{ADMIN_PREFIX}/okta/apps", "admin_apps", "GET"),
        _rule(f"{ADMIN_PREFIX}/okta/users/<login>/deactivate-silently", "admin_deactivate", "POST"),
        _rule(f"{ADMIN_PREFIX}/okta/apps/<aid>/users/<login>/error", "admin_user_error", "POST"),
        _rule(f"{ADMIN_PREFIX}/okta/apps/<aid>/push/<group>/error", "admin_push_error", "POST"),
        _rule(f"{ADMIN_PREFIX}/okta/rate-limit", "admin_rate_limit", "PUT"),
    ],
    strict_slashes=False,
    merge_slashes=False,
)

_CAPABILITY_DEFAULTS: Row = {
    "create": {"lifecycleCreate": {"status": "DISABLED"}},
    "update": {
        "profile": {"status": "DISABLED"},
        "lifecycleDeactivate": {"status": "DISABLED"},
        "password": {"status": "DISABLED", "seed": "RANDOM", "change": "KEEP_EXISTING"},
    },
}
_STATUS_VALUES = ("ENABLED", "DISABLED")


class OktaEmulator:
    """The emulated Okta org. `.app` is the WSGI callable; its Python methods mirror the admin endpoints."""

    def __init__(
        self,
        token: str,
        *,
        org_name: str = "acme",
        rate_limit: int = DEFAULT_RATE_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = [token]
        self._service_apps: dict[str, tuple[str, frozenset[str]]] = {}  # client id -> (public key PEM, scopes)
        self._access_tokens: dict[str, float] = {}  # OAuth access token -> expiry (epoch seconds)
        self._clock = clock
        self.org_name = org_name
        self.state = OktaState(org_name, clock=clock)
        self.engine = OktaEngine(self.state)
        self.shapes = Shapes(self.state)
        self.rate = RateLimiter(rate_limit, clock)
        self.org_id = self.state.org_id
        self.state.seed_defaults()

    def load(self, seed: SeedOrg) -> None:
        """Load a seeded org: ACTIVE users and OKTA_GROUP groups with their members."""
        self.state.load(seed)

    def snapshot(self) -> dict[str, Any]:
        """The org's data and its OAuth service apps and access tokens (Sandbox.snapshot); not its API tokens."""
        return {"state": self.state.snapshot(),
                "oauth": copied({"apps": self._service_apps, "tokens": self._access_tokens})}

    def restore(self, snap: dict[str, Any], translate: Translate | None = None) -> None:
        self.state.restore(snap["state"], translate)
        self.org_id = self.state.org_id
        oauth = copied(snap["oauth"], translate)
        self._service_apps, self._access_tokens = oauth["apps"], oauth["tokens"]

    # == Python API for the sandbox and tests (mirrored by /_sandbox endpoints) ==============================

    def add_token(self, token: str) -> None:
        self._tokens.append(token)

    def register_service_app(self, client_id: str, public_key_pem: str, scopes: Iterable[str]) -> None:
        """An OAuth service app with public-key client authentication and these granted scopes."""
        self._service_apps[client_id] = (public_key_pem, frozenset(scopes))

    def _lookup(self, find: Callable[[], Row | None], what: str) -> Row:
        with self.state.lock:
            row = find()
            if row is None:
                raise KeyError(f"no {what}")
            return public(row)

    def app_by_label(self, label: str) -> Row:
        return self._lookup(lambda: self.state.app_by_label(label), f"app labelled {label!r}")

    def user_by_login(self, login: str) -> Row:
        return self._lookup(lambda: self.state.user(login), f"user {login!r}")

    def group_by_name(self, name: str) -> Row:
        return self._lookup(lambda: self.state.group_by_name(name), f"group {name!r}")

    def enable_provisioning(self, app_id: str, base_url: str, token: str) -> None:
        """The Admin Console's "Configure API integration": the app provisions to `base_url` with `token`.

        USER_PROVISIONING then exists with every "To App" capability DISABLED, as after the console step.
        """
        st = self.state
        with st.lock:
            app = self._app(app_id)
            st.connections[app_id] = {"baseUrl": base_url.rstrip("/"), "token": token}
            if app_id not in st.features:
                st.features[app_id] = {
                    "status": "ENABLED",
                    "capabilities": json.loads(json.dumps(_CAPABILITY_DEFAULTS)),
                }
            if "organizationId" in app["settings"]["app"]:
                # The OIN app asks for the Astro Organization ID; the SCIM base URL ends with it.
                app["settings"]["app"]["organizationId"] = base_url.rstrip("/").rsplit("/", 1)[-1]
            for au in st.app_users[app_id].values():
                if not au.get("externalId"):
                    au.update(status="STAGED", syncState="DISABLED")
            self.engine.refresh_app_features(app_id)

    def set_sign_on_mode(self, app_id: str, mode: str) -> None:
        """The app's signOnMode: AUTO_LOGIN or BOOKMARK stand for an Astro app added for provisioning only (no
        SSO, the seed's first prerequisite left out); SAML_2_0 for the Admin Console's Sign On > SAML 2.0 done."""
        with self.state.lock:
            self._app(app_id).update(signOnMode=mode, lastUpdated=self.state.now())

    def deactivate_user_silently(self, login: str) -> None:
        """Deactivate a user in Okta without telling any app: a missed deprovision (drift)."""
        st = self.state
        with st.lock:
            user = st.user(login)
            if user is None:
                raise KeyError(f"no user {login!r}")
            now = st.now()
            st.change_user(user, status="DEPROVISIONED", statusChanged=now, lastUpdated=now)
            for table in st.app_users.values():
                table.remove(user["id"])

    def set_app_user_error(self, app_id: str, login: str, summary: str) -> None:
        st = self.state
        with st.lock:
            user = st.user(login)
            au = st.app_users[self._app(app_id)["id"]].get(user["id"]) if user else None
            if au is None:
                raise KeyError(f"{login!r} is not assigned to app {app_id}")
            au.update(syncState="ERROR", _error=summary, lastUpdated=st.now())

    def set_push_error(self, app_id: str, group_name: str, summary: str) -> None:
        st = self.state
        with st.lock:
            group = st.group_by_name(group_name)
            for pm in st.push[self._app(app_id)["id"]].values():
                if group is not None and pm["sourceGroupId"] == group["id"]:
                    pm.update(status="ERROR", errorSummary=summary, lastUpdated=st.now())
                    return
            raise KeyError(f"no push mapping for {group_name!r} in app {app_id}")

    def set_rate_limit(self, per_minute: int, family: str | None = None) -> None:
        """Change the per-minute budget for every family, or one (users, groups, apps, mappings, meta)."""
        if family is None:
            self.rate.per_minute = per_minute
            self.rate.overrides.clear()
        else:
            self.rate.overrides[family] = per_minute

    def app_user(self, app_id: str, login: str) -> Row | None:
        st = self.state
        with st.lock:
            user = st.user(login)
            au = st.app_users[app_id].get(user["id"]) if user else None
            return public(au) if au else None

    def push_mapping(self, app_id: str, group_name: str) -> Row | None:
        st = self.state
        with st.lock:
            group = st.group_by_name(group_name)
            for pm in st.push[app_id].values():
                if group is not None and pm["sourceGroupId"] == group["id"]:
                    return public(pm)
        return None

    def provisioning_errors(self, app_id: str) -> dict[str, str]:
        """App username -> the error of each app user in syncState ERROR (Okta's Admin Console tasks)."""
        with self.state.lock:
            return {
                au["credentials"]["userName"]: str(au.get("_error") or "")
                for au in self.state.app_users[app_id].values()
                if au.get("syncState") == "ERROR"
            }

    def close(self) -> None:
        self.engine.close()

    # == WSGI ================================================================================================

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def throttle_response(self, request: Request) -> Response:
        """429 E0000047 with the headers the okta SDK needs to back off and retry (the server sets Date)."""
        family = _family(request.path)
        limit, _remaining, reset = self.rate.peek(family)
        resp = self._error(429, "E0000047", "API call exceeded rate limit due to too many requests.")
        # A simulated burst: reset in this second, so the SDK's backoff (reset - Date + 1) is about a second.
        self._rate_headers(resp, limit, 0, int(self.state.clock()))
        return resp

    def server_error_response(self, request: Request) -> Response:
        """503 E0000009: Okta's transient failure; the okta SDK retries 503s that carry Date and Reset."""
        family = _family(request.path)
        limit, remaining, _reset = self.rate.peek(family)
        resp = self._error(503, "E0000009", "Internal Server Error")
        self._rate_headers(resp, limit, remaining, int(self.state.clock()))
        return resp

    def _rate_headers(self, resp: Response, limit: int, remaining: int, reset: int) -> None:
        resp.headers["X-Rate-Limit-Limit"] = str(limit)
        resp.headers["X-Rate-Limit-Remaining"] = str(remaining)
        resp.headers["X-Rate-Limit-Reset"] = str(reset)
        resp.headers["X-Okta-Request-Id"] = secrets.token_urlsafe(18)

    def _error(self, status: int, code: str, summary: str, causes: Iterable[str] = ()) -> Response:
        return Response(
            json.dumps(error_body(code, summary, causes)), status=status, content_type="application/json"
        )

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        for scheme in ("SSWS ", "SSWS", "Bearer "):
            if header.startswith(scheme):
                given = header[len(scheme) :].strip()
                if scheme == "Bearer " and self._access_tokens.get(given, 0.0) > self._clock():
                    return True
                return any(secrets.compare_digest(given.encode(), t.encode()) for t in self._tokens)
        return False

    def _oauth_token(self, request: Request) -> Response:
        """POST /oauth2/v1/token: the client_credentials grant of a service app (see the module docstring)."""
        import jwt

        def refuse(status: int, error: str, description: str) -> Response:
            return Response(json.dumps({"error": error, "error_description": description}), status=status,
                            content_type="application/json")

        form = request.form
        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", "The authorization grant type is not supported.")
        assertion = form.get("client_assertion") or ""
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
                or not assertion:
            return refuse(400, "invalid_request", "client_assertion and its type are required.")
        try:
            client_id = str(jwt.decode(assertion, options={"verify_signature": False}).get("iss") or "")
        except jwt.PyJWTError:
            return refuse(401, "invalid_client", "The client_assertion is not a valid JWT.")
        app = self._service_apps.get(client_id)
        if app is None:
            return refuse(401, "invalid_client", "The client_id is not valid.")
        public_key, granted = app
        try:
            claims = jwt.decode(assertion, public_key, algorithms=["RS256"], issuer=client_id,
                                audience=f"{self._base(request)}/oauth2/v1/token",
                                options={"require": ["iss", "sub", "aud", "exp", "iat"]})
        except jwt.PyJWTError as exc:
            return refuse(401, "invalid_client", f"The client_assertion token is invalid: {exc}.")
        if claims.get("sub") != client_id:
            return refuse(401, "invalid_client", "The client_assertion sub must be the client_id.")
        asked = set((form.get("scope") or "").split())
        if not asked or asked - granted:
            return refuse(400, "invalid_scope", "The following scopes are not granted to the client: "
                          + " ".join(sorted(asked - granted) or ["(none requested)"]) + ".")
        token = secrets.token_urlsafe(32)
        self._access_tokens[token] = self._clock() + 3600
        return self._json({"token_type": "Bearer", "expires_in": 3600, "access_token": token,
                           "scope": " ".join(sorted(asked))})

    def _handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith(ADMIN_PREFIX):
            return self._dispatch(request)
        if path == "/oauth2/v1/token" and request.method == "POST":
            return self._oauth_token(request)
        family = _family(path)
        if not self._authorized(request):
            limit, remaining, reset = self.rate.peek(family)
            resp = self._error(401, "E0000011", "Invalid token provided")
            self._rate_headers(resp, limit, remaining, reset)
            return resp
        limit, remaining, reset, allowed = self.rate.hit(family)
        if not allowed:
            resp = self._error(429, "E0000047", "API call exceeded rate limit due to too many requests.")
        else:
            resp = self._dispatch(request)
        self._rate_headers(resp, limit, remaining, reset)
        return resp

    def _dispatch(self, request: Request) -> Response:
        adapter = _ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except MethodNotAllowed:
            return self._error(405, "E0000022", "The endpoint does not support the provided HTTP method")
        except NotFound:
            return self._error(404, "E0000007", f"Not found: Resource not found: {request.path} (Path)")
        except HTTPException as exc:  # redirects for trailing slashes and the like
            return self._error(exc.code or 400, "E0000001", "Api validation failed: path")
        handler: Callable[..., Response] = getattr(self, f"_ep_{endpoint}")
        try:
            with self.state.lock:
                return handler(request, **values)
        except OktaApiError as exc:
            return self._error(exc.status, exc.code, exc.summary, exc.causes)

    # == helpers =============================================================================================

    _bases: dict[tuple[Any, ...], str] = {}

    @classmethod
    def _base(cls, request: Request) -> str:
        # host_url depends only on these environ keys; werkzeug rebuilds it (IRI/URI conversions) on each access.
        env = request.environ
        key = (env.get("wsgi.url_scheme"), env.get("HTTP_HOST"), env.get("SERVER_NAME"), env.get("SERVER_PORT"),
               env.get("SCRIPT_NAME"))
        base = cls._bases.get(key)
        if base is None:
            if len(cls._bases) > 256:
                cls._bases.clear()
            base = cls._bases[key] = request.host_url.rstrip("/")
        return base

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    @staticmethod
    def _body(request: Request, *, required: bool = True) -> Any:
        raw = request.get_data(cache=True)
        if not raw.strip():
            if required:
                raise OktaApiError(400, "E0000003", "The request body was not well-formed.")
            return None
        try:
            return json.loads(raw)
        except ValueError as cause:
            raise OktaApiError(400, "E0000003", "The request body was not well-formed.") from cause

    def _object_body(self, request: Request) -> Row:
        body = self._body(request)
        if not isinstance(body, dict):
            raise OktaApiError(400, "E0000003", "The request body was not well-formed.")
        return body

    @staticmethod
    def _limit(request: Request, default: int, minimum: int, maximum: int) -> int:
        raw = request.args.get("limit")
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError as cause:
            raise validation("limit", "limit: must be an integer") from cause
        if value < 0:  # -1: "no limit", i.e. the endpoint's maximum page
            return maximum
        return min(max(value, minimum), maximum)

    def _page(
        self,
        request: Request,
        table: Table,
        render: Callable[[Row], Row],
        *,
        default: int,
        maximum: int,
        minimum: int = 1,
        pred: Predicate | None = None,
        paginate: bool = True,
        raw: Callable[[list[Row]], list[bytes]] | None = None,
    ) -> Response:
        """One page of `table` with Okta's link headers. `raw` (instead of `render`) gives the rows' JSON bytes,
        e.g. from a cache: the page is then joined, not serialized (same bytes as json.dumps of the list)."""
        limit = self._limit(request, default, minimum, maximum)
        start = 0
        after = request.args.get("after")
        if after and paginate:
            pos = table.position_after(after)
            if pos is None:
                raise validation("after", f"after: invalid cursor {after!r}")
            start = pos
        rows, more = table.scan(start, limit, pred)
        if raw is not None:
            resp = Response(b"[" + b", ".join(raw(rows)) + b"]", content_type="application/json")
        else:
            resp = self._json([render(r) for r in rows])
        base = self._base(request)
        self_url = base + request.full_path.rstrip("?")
        # Two separate headers, self first: the okta SDK keeps only the last one, which must be rel="next".
        headers: Headers = resp.headers
        headers.add("link", f'<{self_url}>; rel="self"')
        if more and paginate and rows:
            args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("after", "limit")]
            args += [("after", str(rows[-1]["id"])), ("limit", str(limit))]
            headers.add("link", f'<{base}{request.path}?{urllib.parse.urlencode(args)}>; rel="next"')
        return resp

    @staticmethod
    def _filter_arg(request: Request, *names: str) -> Predicate | None:
        preds: list[Predicate] = []
        for name in names:
            text = request.args.get(name)
            if text:
                try:
                    preds.append(compile_filter(text))
                except FilterError as exc:
                    raise OktaApiError(400, "E0000031", "Invalid search criteria.", [str(exc)]) from exc
        if not preds:
            return None
        return lambda r: all(p(r) for p in preds)

    def _app(self, aid: str) -> Row:
        row = self.state.apps.get(aid)
        if row is None:
            raise not_found(aid, "App")
        return row

    def _user(self, uid: str) -> Row:
        row = self.state.user(uid)
        if row is None:
            raise not_found(uid, "User")
        return row

    def _group(self, gid: str) -> Row:
        row = self.state.groups.get(gid)
        if row is None:
            raise not_found(gid, "UserGroup")
        return row

    # == users ===============================================================================================

    def _ep_list_users(self, request: Request) -> Response:
        base = self._base(request)
        q = request.args.get("q")
        searched = self._filter_arg(request, "search", "filter")
        if q:
            needle = q.casefold()
            fields = ("firstName", "lastName", "email", "login")

            def q_pred(r: Row) -> bool:
                return r["status"] != "DEPROVISIONED" and any(
                    str(r["profile"].get(f) or "").casefold().startswith(needle) for f in fields
                )

            # `q` does not paginate and defaults to 10 results.
            return self._page(
                request,
                self.state.users,
                lambda r: self.shapes.user_json(r, base),
                default=10,
                maximum=200,
                pred=q_pred,
                paginate=False,
                raw=lambda rows: self.shapes.users_bytes(rows, base),
            )
        if searched is not None:
            pred = searched
        else:

            def pred(r: Row) -> bool:
                return bool(r["status"] != "DEPROVISIONED")

        return self._page(
            request,
            self.state.users,
            lambda r: self.shapes.user_json(r, base),
            default=200,
            maximum=200,
            pred=pred,
            raw=lambda rows: self.shapes.users_bytes(rows, base),
        )

    def _ep_get_user(self, request: Request, uid: str) -> Response:
        if uid == "me":
            # For an API token, /users/me is the token's owner: the org's admin.
            uid = self.state.admin_id
        return self._json(self.shapes.user_json(self._user(uid), self._base(request)))

    def _validate_profile(self, profile: Any, *, full: bool, exclude_id: str | None = None) -> Row:
        if not isinstance(profile, dict):
            raise validation("profile", "profile: must be an object")
        causes = []
        if full:
            for f in ("login", "email", "firstName", "lastName"):
                if not profile.get(f):
                    causes.append(f"{f}: The field cannot be left blank")
        login = profile.get("login")
        if login is not None:
            other = self.state.logins.get(str(login).casefold())
            if other and other != exclude_id:
                causes.append("login: An object with this field already exists in the current organization")
        if causes:
            raise validation(causes[0].split(":")[0], *causes)
        return profile

    def _ep_create_user(self, request: Request) -> Response:
        body = self._object_body(request)
        profile = self._validate_profile(body.get("profile"), full=True)
        group_ids = body.get("groupIds") or []
        for gid in group_ids:
            self._group(str(gid))
        activate = request.args.get("activate", "true").lower() != "false"
        raw_creds = body.get("credentials")
        creds: Row = raw_creds if isinstance(raw_creds, dict) else {}
        password = isinstance(creds.get("password"), dict) and bool(creds["password"].get("value"))
        # With a password an activated user is ACTIVE at once; without one Okta leaves them PROVISIONED until
        # the welcome flow (okta-management-openapi-5.1.0.yaml, createUser / activateUser).
        status = ("ACTIVE" if password else "PROVISIONED") if activate else "STAGED"
        if activate and not password and not isinstance(raw_creds, dict):
            status = "ACTIVE"  # the emulator's long-standing shortcut for profile-only creates (tests, seeds)
        user = self.state.add_user(dict(profile), status=status)
        if password:
            user["_password"] = True
            user["credentials"] = {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}}
            question = creds.get("recovery_question")
            if isinstance(question, dict) and question.get("question"):
                user["credentials"]["recovery_question"] = {"question": str(question["question"])}
        for gid in group_ids:
            if self.state.add_member(str(gid), user["id"]):
                self.engine.member_added(str(gid), user["id"])
        return self._json(self.shapes.user_json(user, self._base(request)))

    def _change_profile(self, request: Request, uid: str, *, replace: bool) -> Response:
        user = self._user(uid)
        body = self._object_body(request)
        profile = self._validate_profile(body.get("profile"), full=replace, exclude_id=user["id"])
        new = dict(profile) if replace else {**user["profile"], **profile}
        old_login = str(user["profile"]["login"]).casefold()
        if str(new["login"]).casefold() != old_login:
            self.state.logins.pop(old_login, None)
            self.state.logins[str(new["login"]).casefold()] = user["id"]
        self.state.change_user(user, profile=new, lastUpdated=self.state.now())
        self.engine.user_changed(user)
        return self._json(self.shapes.user_json(user, self._base(request)))

    def _ep_update_user(self, request: Request, uid: str) -> Response:
        return self._change_profile(request, uid, replace=False)

    def _ep_replace_user(self, request: Request, uid: str) -> Response:
        return self._change_profile(request, uid, replace=True)

    def _ep_list_user_groups(self, request: Request, uid: str) -> Response:
        user = self._user(uid)
        base = self._base(request)
        groups = [self.state.groups.get(g) for g in self.state.user_groups.get(user["id"], {})]
        return self._json([self.shapes.group_json(g, base) for g in groups if g is not None])

    def _ep_deactivate_user(self, request: Request, uid: str) -> Response:
        st = self.state
        user = self._user(uid)
        if user["status"] == "DEPROVISIONED":
            raise validation("user", "Cannot deactivate a user that is already deactivated")
        for aid, table in st.app_users.items():
            au = table.get(user["id"])
            if au is None:
                continue
            if st.capability(aid, "update", "lifecycleDeactivate"):
                self.engine.deactivate(aid, au)
            table.remove(user["id"])
        now = st.now()
        st.change_user(user, status="DEPROVISIONED", statusChanged=now, lastUpdated=now)
        return self._json({})

    def _activation(self, request: Request, user: Row, *, send_email_default: bool) -> Response:
        # Okta answers a UserActivationToken: the link and token when sendEmail=false, else an empty object
        # (okta-management-openapi-5.1.0.yaml, activateUser / reactivateUser).
        send = request.args.get("sendEmail", "true" if send_email_default else "false").lower() != "false"
        if send:
            return self._json({})
        token = secrets.token_urlsafe(15)
        return self._json({"activationUrl": f"{self._base(request)}/welcome/{token}", "activationToken": token})

    def _ep_activate_user(self, request: Request, uid: str) -> Response:
        """`POST /users/{id}/lifecycle/activate`: only STAGED or DEPROVISIONED users (okta-management-openapi-
        5.1.0.yaml, activateUser); a user with a password becomes ACTIVE, one without waits in PROVISIONED for
        the welcome flow. Okta's SCIM 2.0 CRUD test re-enables its deactivated user this way and expects 200.
        App assignments are not restored: deactivation removed them, and the test assigns the app again."""
        st = self.state
        user = self._user(uid)
        if user["status"] not in ("STAGED", "DEPROVISIONED"):
            raise OktaApiError(403, "E0000016", "Activation failed because the user is already active")
        now = st.now()
        status = "ACTIVE" if user.get("_password") else "PROVISIONED"
        st.change_user(user, status=status, statusChanged=now, lastUpdated=now,
                       activated=now if status == "ACTIVE" else user.get("activated"))
        return self._activation(request, user, send_email_default=True)

    def _ep_reactivate_user(self, request: Request, uid: str) -> Response:
        """`POST /users/{id}/lifecycle/reactivate`: only PROVISIONED or RECOVERY users (reactivateUser); it
        restarts the activation flow, so the status does not change."""
        user = self._user(uid)
        if user["status"] not in ("PROVISIONED", "RECOVERY"):
            raise OktaApiError(
                403, "E0000038", "This operation is not allowed in the user's current status."
            )
        return self._activation(request, user, send_email_default=False)

    # == groups ==============================================================================================

    def _ep_list_groups(self, request: Request) -> Response:
        base = self._base(request)
        expand = request.args.get("expand", "")
        q = request.args.get("q")
        searched = self._filter_arg(request, "search", "filter")
        if q:
            needle = q.casefold()

            def q_pred(r: Row) -> bool:
                return str(r["profile"].get("name", "")).casefold().startswith(needle) and (
                    searched is None or searched(r)
                )

            return self._page(
                request,
                self.state.groups,
                lambda r: self.shapes.group_json(r, base, expand),
                default=300,
                maximum=10000,
                pred=q_pred,
                paginate=False,
            )
        return self._page(
            request,
            self.state.groups,
            lambda r: self.shapes.group_json(r, base, expand),
            default=10000,
            maximum=10000,
            pred=searched,
        )

    def _ep_get_group(self, request: Request, gid: str) -> Response:
        return self._json(
            self.shapes.group_json(self._group(gid), self._base(request), request.args.get("expand", ""))
        )

    def _group_profile(self, request: Request, exclude: str | None = None) -> Row:
        body = self._object_body(request)
        profile = body.get("profile")
        if not isinstance(profile, dict) or not profile.get("name"):
            raise validation("name", "name: The field cannot be left blank")
        other = self.state.group_by_name(str(profile["name"]))
        if other is not None and other["id"] != exclude:
            raise validation(
                "name", "name: An object with this field already exists in the current organization"
            )
        return profile

    def _ep_create_group(self, request: Request) -> Response:
        profile = self._group_profile(request)
        row = self.state.add_group(str(profile["name"]), str(profile.get("description") or ""))
        return self._json(self.shapes.group_json(row, self._base(request)))

    def _ep_replace_group(self, request: Request, gid: str) -> Response:
        group = self._group(gid)
        if group["type"] != "OKTA_GROUP":
            raise OktaApiError(403, "E0000006", "You do not have permission to perform the requested action")
        profile = self._group_profile(request, exclude=gid)
        renamed = profile["name"] != group["profile"]["name"]
        group["profile"] = {"name": profile["name"], "description": profile.get("description") or ""}
        group["lastUpdated"] = self.state.now()
        if renamed:
            for aid, mappings in self.state.push.items():
                for pm in mappings.values():
                    if pm["sourceGroupId"] == gid and pm["status"] == "ACTIVE" and not pm.get("_targetName"):
                        self.engine.rename(aid, pm)
        return self._json(self.shapes.group_json(group, self._base(request)))

    def _ep_delete_group(self, request: Request, gid: str) -> Response:
        """`DELETE /groups/{groupId}` (deleteGroup, spec 5.1.0): 204; 404 E0000007 for an unknown id; 403
        E0000006 (the spec's ErrorAccessDenied) for a BUILT_IN group (Everyone: "managed by Okta and can't be
        modified") and for an APP_GROUP a push mapping targets ("You can't remove groups of type APP_GROUP if they
        are used in a group push mapping"). The group's app assignments go (its members assigned only through it
        are unassigned, so deprovisioned as on any unassignment), then its memberships.

        A pushed group's mapping goes with it: a mapping cannot outlive its source group. What Okta then does to
        the group in the target app is not documented (reference/okta-api.md and Okta's Group Push help describe
        only the unlink dialog, "Delete the group in the target app" or "Leave the group in the target app"), so
        the emulator takes the conservative side: nothing is sent to Astro, the Team stays (as after an unlink
        that leaves it), and the audit must find it."""
        group = self._group(gid)
        if group["type"] == "BUILT_IN":
            raise OktaApiError(403, "E0000006", "You do not have permission to perform the requested action")
        if group["type"] == "APP_GROUP" and any(
            pm.get("targetGroupId") == gid for t in self.state.push.values() for pm in t.values()
        ):
            raise OktaApiError(403, "E0000006", "You do not have permission to perform the requested action")
        for table in self.state.push.values():
            for pm in [pm for pm in table.values() if pm["sourceGroupId"] == gid]:
                table.remove(pm["id"])
        for aid, assigned in self.state.app_groups.items():
            if assigned.remove(gid) is not None:
                for member in list(self.state.members.get(gid, Table()).values()):
                    self.engine.unassign(aid, member["id"], group_id=gid)
        for member in list(self.state.members.get(gid, Table()).values()):
            self.state.remove_member(gid, member["id"])
        self.state.members.pop(gid, None)
        self.state.groups.remove(gid)
        return Response(status=204)

    def _ep_list_group_users(self, request: Request, gid: str) -> Response:
        self._group(gid)
        base = self._base(request)
        users = self.state.users

        def render(r: Row) -> Row:
            return self.shapes.user_json(users.get(r["id"]) or {"id": r["id"], "type": {"id": ""}}, base)

        def raw(rows: list[Row]) -> list[bytes]:
            out = []
            for r in rows:
                user = users.get(r["id"])
                out.append(json.dumps(render(r)).encode() if user is None else self.shapes.user_bytes(user, base))
            return out

        return self._page(request, self.state.members[gid], render, default=1000, maximum=10000, raw=raw)

    def _ep_add_group_member(self, request: Request, gid: str, uid: str) -> Response:
        group = self._group(gid)
        user = self._user(uid)
        if group["type"] != "OKTA_GROUP":
            raise OktaApiError(403, "E0000006", "You do not have permission to perform the requested action")
        if self.state.add_member(gid, user["id"]):
            self.engine.member_added(gid, user["id"])
        return Response(status=204)

    def _ep_remove_group_member(self, request: Request, gid: str, uid: str) -> Response:
        group = self._group(gid)
        user = self._user(uid)
        if group["type"] != "OKTA_GROUP":
            raise OktaApiError(403, "E0000006", "You do not have permission to perform the requested action")
        if self.state.is_member(gid, user["id"]):
            # Push the removal while the app user still exists, then take back the group's assignment.
            self.state.remove_member(gid, user["id"])
            self.engine.member_removed(gid, user["id"])
        return Response(status=204)

    def _ep_list_group_apps(self, request: Request, gid: str) -> Response:
        self._group(gid)
        base = self._base(request)
        apps = [self.state.apps.get(a) for a, t in self.state.app_groups.items() if gid in t]
        return self._json([self.shapes.app_json(a, base) for a in apps if a is not None])

    # == user types ==========================================================================================

    def _ep_list_user_types(self, request: Request) -> Response:
        base = self._base(request)
        return self._json([self.shapes.user_type_json(r, base) for r in self.state.user_types.values()])

    def _ep_get_user_type(self, request: Request, tid: str) -> Response:
        row = self.state.user_types.get(tid)
        if row is None:
            raise not_found(tid, "UserType")
        return self._json(self.shapes.user_type_json(row, self._base(request)))

    # == apps ================================================================================================

    def _ep_list_apps(self, request: Request) -> Response:
        base = self._base(request)
        q = request.args.get("q")
        searched = self._filter_arg(request, "filter")
        needle = (q or "").casefold()

        def pred(r: Row) -> bool:
            if needle and not (
                str(r["name"]).casefold().startswith(needle) or str(r["label"]).casefold().startswith(needle)
            ):
                return False
            return searched is None or searched(r)

        return self._page(
            request,
            self.state.apps,
            lambda r: self.shapes.app_json(r, base),
            default=200,
            maximum=200,
            pred=pred,
        )

    def _ep_get_app(self, request: Request, aid: str) -> Response:
        return self._json(self.shapes.app_json(self._app(aid), self._base(request)))

    def _ep_app_lifecycle(self, request: Request, aid: str, action: str) -> Response:
        """POST /api/v1/apps/{appId}/lifecycle/activate|deactivate (spec 5.1.0: activateApplication,
        deactivateApplication; 200 with an empty Success object). The status is all this emulator changes: an
        INACTIVE app keeps its assignments and push mappings, as Okta's do, and is shown as such."""
        app = self._app(aid)
        if action not in ("activate", "deactivate"):
            raise not_found(action, "Path")
        with self.state.lock:
            app.update(status="ACTIVE" if action == "activate" else "INACTIVE", lastUpdated=self.state.now())
        return self._json({})

    # -- app users --

    def _ep_list_app_users(self, request: Request, aid: str) -> Response:
        self._app(aid)
        base = self._base(request)
        expand = request.args.get("expand", "")
        q = (request.args.get("q") or "").casefold()
        pred: Predicate | None = None
        if q:
            users = self.state.users

            def pred(r: Row) -> bool:
                if str(r["credentials"]["userName"]).casefold().startswith(q):
                    return True
                user = users.get(r["id"])
                return user is not None and any(
                    str(user["profile"].get(f) or "").casefold().startswith(q)
                    for f in ("firstName", "lastName", "email")
                )

        return self._page(
            request,
            self.state.app_users[aid],
            lambda r: self.shapes.app_user_json(aid, r, base, expand),
            default=50,
            maximum=500,
            pred=pred,
            raw=(lambda rows: self.shapes.app_users_bytes(aid, rows, base)) if "user" in expand else None,
        )

    def _app_user_row(self, aid: str, uid: str) -> Row:
        self._app(aid)
        user = self._user(uid)
        au = self.state.app_users[aid].get(user["id"])
        if au is None:
            raise not_found(uid, "AppUser")
        return au

    def _check_mapped_profile(self, aid: str, profile: Row, user: Row) -> None:
        """Okta refuses explicit values for mapped attributes while it pushes them (E0000075), but only values
        that differ from what the mapping gives: Okta's own SCIM 2.0 CRUD test assigns a user with
        `givenName`/`familyName`/`email` equal to the mapped ones and expects 200 (okta-scim20-crud-test.json,
        step "Assign user to SCIM App")."""
        mapping = self.state.mapping_to_app(aid) or {"properties": {}}
        pushing = self.state.capability(aid, "create", "lifecycleCreate") or self.state.capability(
            aid, "update", "profile"
        )
        if not pushing:
            return
        mapped = self.engine.app_profile(aid, user)
        for attr, value in profile.items():
            if attr in mapping["properties"] and value != mapped.get(attr):
                raise OktaApiError(
                    403,
                    "E0000075",
                    f"Cannot modify the {attr} attribute because it has a field "
                    "mapping and profile push is enabled.",
                )

    def _ep_assign_user(self, request: Request, aid: str) -> Response:
        self._app(aid)
        body = self._object_body(request)
        uid = body.get("id")
        if not uid or not isinstance(uid, str):
            raise validation("id", "id: The field cannot be left blank")
        user = self._user(uid)
        profile = body.get("profile") or {}
        if not isinstance(profile, dict):
            raise validation("profile", "profile: must be an object")
        self._check_mapped_profile(aid, profile, user)
        user_name = (body.get("credentials") or {}).get("userName")
        au, _ = self.engine.assign(aid, user["id"], explicit=profile, user_name=user_name)
        return self._json(self.shapes.app_user_json(aid, au, self._base(request)))

    def _ep_get_app_user(self, request: Request, aid: str, uid: str) -> Response:
        au = self._app_user_row(aid, uid)
        return self._json(
            self.shapes.app_user_json(aid, au, self._base(request), request.args.get("expand", ""))
        )

    def _ep_update_app_user(self, request: Request, aid: str, uid: str) -> Response:
        au = self._app_user_row(aid, uid)
        body = self._object_body(request)
        profile = body.get("profile")
        creds = body.get("credentials")
        if profile is None and creds is None:
            raise validation("appUser", "Either credentials or profile is required")
        if profile is not None:
            if not isinstance(profile, dict):
                raise validation("profile", "profile: must be an object")
            user_row = self.state.users.get(au["id"])
            assert user_row is not None
            self._check_mapped_profile(aid, profile, user_row)
            au["_explicit"].update(profile)
        if isinstance(creds, dict) and creds.get("userName"):
            au["credentials"]["userName"] = str(creds["userName"])
        user = self.state.users.get(au["id"])
        assert user is not None
        au["profile"] = self.engine.app_profile(aid, user, au["_explicit"])
        au["lastUpdated"] = self.state.now()
        if au.get("externalId") and self.state.capability(aid, "update", "profile"):
            self.engine.update(aid, au)
        return self._json(self.shapes.app_user_json(aid, au, self._base(request)))

    def _ep_unassign_user(self, request: Request, aid: str, uid: str) -> Response:
        au = self._app_user_row(aid, uid)
        if not au["_direct"]:
            raise validation(
                "user",
                "The user is assigned to the app through a group; remove the group "
                "assignment or the group membership instead",
            )
        self.engine.unassign(aid, au["id"])
        return Response(status=204)

    # -- app groups --

    def _ep_list_app_groups(self, request: Request, aid: str) -> Response:
        self._app(aid)
        base = self._base(request)
        expand = request.args.get("expand", "")
        q = (request.args.get("q") or "").casefold()
        pred: Predicate | None = None
        if q:
            groups = self.state.groups

            def pred(r: Row) -> bool:
                g = groups.get(r["id"])
                return g is not None and str(g["profile"].get("name", "")).casefold().startswith(q)

        return self._page(
            request,
            self.state.app_groups[aid],
            lambda r: self.shapes.app_group_json(aid, r, base, expand),
            default=20,
            minimum=20,
            maximum=200,
            pred=pred,
        )

    def _app_group_row(self, aid: str, gid: str) -> Row:
        self._app(aid)
        self._group(gid)
        row = self.state.app_groups[aid].get(gid)
        if row is None:
            raise not_found(gid, "ApplicationGroupAssignment")
        return row

    def _ep_get_app_group(self, request: Request, aid: str, gid: str) -> Response:
        row = self._app_group_row(aid, gid)
        return self._json(
            self.shapes.app_group_json(aid, row, self._base(request), request.args.get("expand", ""))
        )

    def _ep_assign_group(self, request: Request, aid: str, gid: str) -> Response:
        self._app(aid)
        group = self._group(gid)
        body = self._body(request, required=False) or {}
        if not isinstance(body, dict):
            raise OktaApiError(400, "E0000003", "The request body was not well-formed.")
        table = self.state.app_groups[aid]
        row = table.get(gid)
        now = self.state.now()
        if row is None:
            priority = body.get("priority")
            row = table.add(
                gid,
                {
                    "id": gid,
                    "lastUpdated": now,
                    "priority": priority if isinstance(priority, int) else len(table),
                    "profile": dict(body.get("profile") or {}),
                },
            )
            if group["type"] == "OKTA_GROUP":
                users = self.state.users
                for member in list(self.state.members[gid].values()):
                    user = users.get(member["id"])
                    if user is not None and user["status"] == "ACTIVE":
                        self.engine.assign(aid, member["id"], group_id=gid)
        else:
            if "priority" in body and isinstance(body["priority"], int):
                row["priority"] = body["priority"]
            if isinstance(body.get("profile"), dict):
                row["profile"] = dict(body["profile"])
            row["lastUpdated"] = now
        return self._json(self.shapes.app_group_json(aid, row, self._base(request)))

    def _ep_patch_app_group(self, request: Request, aid: str, gid: str) -> Response:
        row = self._app_group_row(aid, gid)
        ops = self._body(request)
        if not isinstance(ops, list):
            raise OktaApiError(400, "E0000003", "The request body was not well-formed.")
        for op in ops:
            if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
                raise validation("op", "op: must be add, replace or remove")
            path = str(op.get("path") or "")
            if path == "/priority" and op["op"] != "remove":
                row["priority"] = op.get("value")
            elif path.startswith("/profile/"):
                key = path[len("/profile/") :]
                if op["op"] == "remove":
                    row["profile"].pop(key, None)
                else:
                    row["profile"][key] = op.get("value")
            else:
                raise validation("path", f"path: unsupported {path!r}")
        row["lastUpdated"] = self.state.now()
        return self._json(self.shapes.app_group_json(aid, row, self._base(request)))

    def _ep_unassign_group(self, request: Request, aid: str, gid: str) -> Response:
        self._app_group_row(aid, gid)
        self.state.app_groups[aid].remove(gid)
        for member in list(self.state.members.get(gid, Table()).values()):
            self.engine.unassign(aid, member["id"], group_id=gid)
        return Response(status=204)

    # -- provisioning connection: unsupported for these apps, as for every app outside Okta's short list --

    def _unknown_connection(self, request: Request, aid: str) -> Row:
        base = self._base(request)
        return {
            "authScheme": "UNKNOWN",
            "status": "UNKNOWN",
            "profile": {"authScheme": "UNKNOWN"},
            "_links": {
                "self": {
                    "href": f"{base}/api/v1/apps/{aid}/connections/default",
                    "hints": {"allow": ["GET", "POST"]},
                }
            },
        }

    def _ep_get_connection(self, request: Request, aid: str) -> Response:
        self._app(aid)
        return self._json(self._unknown_connection(request, aid))

    def _ep_update_connection(self, request: Request, aid: str) -> Response:
        self._app(aid)
        self._object_body(request)
        # Okta answers 200 UNKNOWN and configures nothing (okta-mcp-server PR #72); the token is never stored.
        return self._json(self._unknown_connection(request, aid))

    def _ep_connection_lifecycle(self, request: Request, aid: str, action: str) -> Response:
        self._app(aid)
        if action not in ("activate", "deactivate"):
            raise not_found(action, "Path")
        raise validation("connection", "Provisioning connection is not supported for this app instance.")

    # -- features --

    def _require_provisioning(self, aid: str) -> None:
        self._app(aid)
        if aid not in self.state.features:
            raise validation("feature", "Provisioning is not enabled for the app instance.")

    def _ep_list_features(self, request: Request, aid: str) -> Response:
        self._require_provisioning(aid)
        return self._json([self.shapes.feature_json(aid, self._base(request))])

    def _ep_get_feature(self, request: Request, aid: str, name: str) -> Response:
        self._require_provisioning(aid)
        if name != USER_PROVISIONING:
            raise not_found(name, "AppFeature")
        return self._json(self.shapes.feature_json(aid, self._base(request)))

    def _ep_update_feature(self, request: Request, aid: str, name: str) -> Response:
        self._require_provisioning(aid)
        if name != USER_PROVISIONING:
            raise not_found(name, "AppFeature")
        body = self._object_body(request)
        caps = self.state.features[aid]["capabilities"]
        merged = json.loads(json.dumps(caps))
        allowed: dict[str, dict[str, tuple[str, ...]]] = {
            "create": {"lifecycleCreate": ("status",)},
            "update": {
                "profile": ("status",),
                "lifecycleDeactivate": ("status",),
                "password": ("status", "seed", "change"),
            },
        }
        enums = {"status": _STATUS_VALUES, "seed": ("OKTA", "RANDOM"), "change": ("CHANGE", "KEEP_EXISTING")}
        for section, value in body.items():
            if section not in allowed or not isinstance(value, dict):
                raise validation("capabilities", f"{section}: unknown capability")
            for cap, setting in value.items():
                if cap not in allowed[section] or not isinstance(setting, dict):
                    raise validation("capabilities", f"{section}.{cap}: unknown capability")
                for key, v in setting.items():
                    if key not in allowed[section][cap] or v not in enums[key]:
                        raise validation("capabilities", f"{section}.{cap}.{key}: invalid value {v!r}")
                    merged[section][cap][key] = v
        was_creating = self.state.capability(aid, "create", "lifecycleCreate")
        self.state.features[aid]["capabilities"] = merged
        self.engine.refresh_app_features(aid)
        if not was_creating and self.state.capability(aid, "create", "lifecycleCreate"):
            # Turning on "Create Users" provisions the existing assignments too.
            for au in list(self.state.app_users[aid].values()):
                if not au.get("externalId"):
                    self.engine.provision(aid, au)
        return self._json(self.shapes.feature_json(aid, self._base(request)))

    # -- group push --

    def _ep_list_push(self, request: Request, aid: str) -> Response:
        self._app(aid)
        base = self._base(request)
        source = request.args.get("sourceGroupId")
        status = request.args.get("status")
        if status and status not in ("ACTIVE", "INACTIVE", "ERROR"):
            raise validation("status", f"status: invalid value {status!r}")
        since = request.args.get("lastUpdated")

        def pred(r: Row) -> bool:
            return (
                (not source or r["sourceGroupId"] == source)
                and (not status or r["status"] == status)
                and (not since or str(r["lastUpdated"]) >= since.replace("Z", ".000Z"))
            )

        return self._page(
            request,
            self.state.push[aid],
            lambda r: self.shapes.push_json(aid, r, base),
            default=100,
            maximum=1000,
            pred=pred,
        )

    def _push_row(self, aid: str, mid: str) -> Row:
        self._app(aid)
        row = self.state.push[aid].get(mid)
        if row is None:
            raise not_found(mid, "GroupPushMapping")
        return row

    def _ep_create_push(self, request: Request, aid: str) -> Response:
        st = self.state
        self._app(aid)
        body = self._object_body(request)
        source_id = body.get("sourceGroupId")
        if not source_id or not isinstance(source_id, str):
            raise validation("sourceGroupId", "sourceGroupId: The field cannot be left blank")
        source = st.groups.get(source_id)
        if source is None or source["type"] != "OKTA_GROUP":
            raise validation("sourceGroupId", f"sourceGroupId: no Okta group {source_id}")
        if not st.provisioning_on(aid):
            raise validation("groupPush", "Group Push is not enabled for the app instance.")
        name, target_id = body.get("targetGroupName"), body.get("targetGroupId")
        if name and target_id:
            raise validation("targetGroupName", "Specify either targetGroupName or targetGroupId, not both")
        if not name and not target_id:
            # CreateGroupPushMappingRequest: each is "Required if the other is not provided".
            raise validation("targetGroupName", "Either targetGroupName or targetGroupId must be provided")
        status = body.get("status") or "ACTIVE"
        if status not in ("ACTIVE", "INACTIVE"):
            raise validation("status", f"status: invalid value {status!r}")
        for pm in st.push[aid].values():
            if pm["sourceGroupId"] == source_id:
                raise validation("sourceGroupId", "A group push mapping already exists for this source group")
        now = st.now()
        mid = st.ids.new("gPm")
        row: Row = {
            "id": mid,
            "sourceGroupId": source_id,
            "targetGroupId": None,
            "status": status,
            "errorSummary": "",
            "created": now,
            "lastUpdated": now,
            "lastPush": None,
            "_scimId": None,
            "_targetName": None,
        }
        if target_id:
            target = st.groups.get(str(target_id))
            if target is None or target["type"] != "APP_GROUP" or target.get("_sourceApp") != aid:
                raise validation("targetGroupId", f"targetGroupId: no group {target_id} in this app")
            row.update(
                targetGroupId=target["id"],
                _scimId=target.get("_scimId"),
                _targetName=target["profile"]["name"],
            )
        elif name:
            row["_targetName"] = None if str(name) == source["profile"]["name"] else str(name)
        st.push[aid].add(mid, row)
        if status == "ACTIVE":
            self.engine.push(aid, row)
        return self._json(self.shapes.push_json(aid, row, self._base(request)), status=201)

    def _ep_get_push(self, request: Request, aid: str, mid: str) -> Response:
        return self._json(self.shapes.push_json(aid, self._push_row(aid, mid), self._base(request)))

    def _ep_update_push(self, request: Request, aid: str, mid: str) -> Response:
        row = self._push_row(aid, mid)
        body = self._object_body(request)
        extra = set(body) - {"status"}
        if extra:
            raise validation("status", f"Only status can be changed, not {', '.join(sorted(extra))}")
        status = body.get("status")
        if status not in ("ACTIVE", "INACTIVE"):
            raise validation("status", f"status: invalid value {status!r}")
        if status == "INACTIVE":
            row.update(status="INACTIVE", lastUpdated=self.state.now())
        elif row["status"] != "ACTIVE":
            # INACTIVE/ERROR -> ACTIVE pushes the whole group again (the documented "Push now" workaround).
            self.engine.push(aid, row)
        return self._json(self.shapes.push_json(aid, row, self._base(request)))

    def _ep_delete_push(self, request: Request, aid: str, mid: str) -> Response:
        row = self._push_row(aid, mid)
        raw = request.args.get("deleteTargetGroup")
        if raw is None or raw.lower() not in ("true", "false"):
            raise validation(
                "deleteTargetGroup", "deleteTargetGroup: The query parameter is required (true or false)"
            )
        if row["status"] == "ACTIVE":
            raise validation("status", "The group push mapping must be INACTIVE before it can be deleted")
        if raw.lower() == "true":
            if not self.engine.delete_target(aid, row):
                raise validation("deleteTargetGroup", str(row.get("errorSummary") or "delete failed"))
            if row.get("targetGroupId"):
                self.state.groups.remove(row["targetGroupId"])
                self.state.members.pop(row["targetGroupId"], None)
        self.state.push[aid].remove(mid)
        return Response(status=204)

    # == profile mappings ====================================================================================

    def _ep_list_mappings(self, request: Request) -> Response:
        base = self._base(request)
        source, target = request.args.get("sourceId"), request.args.get("targetId")

        def pred(r: Row) -> bool:
            return (not source or r["source"]["id"] == source) and (not target or r["target"]["id"] == target)

        return self._page(
            request,
            self.state.mappings,
            lambda r: self.shapes.mapping_json(r, base, with_properties=False),
            default=20,
            maximum=200,
            pred=pred,
        )

    def _mapping_row(self, mid: str) -> Row:
        row = self.state.mappings.get(mid)
        if row is None:
            raise not_found(mid, "Mapping")
        return row

    def _ep_get_mapping(self, request: Request, mid: str) -> Response:
        return self._json(
            self.shapes.mapping_json(self._mapping_row(mid), self._base(request), with_properties=True)
        )

    def _ep_update_mapping(self, request: Request, mid: str) -> Response:
        row = self._mapping_row(mid)
        body = self._object_body(request)
        props = body.get("properties")
        if not isinstance(props, dict):
            raise validation("properties", "properties: The field cannot be left blank")
        to_app = row["target"]["type"] == "appuser"
        known = set(app_attributes()) if to_app else None
        updated = json.loads(json.dumps(row["properties"]))
        for attr, prop in props.items():
            if known is not None and attr not in known:
                raise validation("properties", f"Property {attr} does not exist in the target schema")
            if prop is None or (isinstance(prop, dict) and prop.get("expression") is None):
                updated.pop(attr, None)  # {"expression": null, "pushStatus": null} removes the mapping
                continue
            if not isinstance(prop, dict) or not isinstance(prop.get("expression"), str):
                raise validation("properties", f"{attr}: expression must be a string")
            push = prop.get("pushStatus") or "PUSH"
            if push not in ("PUSH", "DONT_PUSH"):
                raise validation("properties", f"{attr}: invalid pushStatus {push!r}")
            problem = expression_error(prop["expression"])
            if problem:
                raise validation("properties", f"{attr}: {problem}")
            updated[attr] = {"expression": prop["expression"], "pushStatus": push}
        row["properties"] = updated
        if to_app:
            self.engine.remap_app(row["target"]["id"])
        return self._json(self.shapes.mapping_json(row, self._base(request), with_properties=True))

    # == sandbox admin (never faulted, no Okta auth: loopback only) ==========================================

    def _ep_admin_health(self, request: Request) -> Response:
        return self._json({"ok": True, "users": len(self.state.users), "groups": len(self.state.groups)})

    def _ep_admin_provisioning(self, request: Request, aid: str) -> Response:
        body = self._object_body(request)
        base_url, token = body.get("baseUrl"), body.get("token")
        if not isinstance(base_url, str) or not isinstance(token, str) or not base_url or not token:
            raise validation("provisioning", "baseUrl and token are required")
        self.enable_provisioning(aid, base_url, token)
        return self._json({"appId": aid, "baseUrl": base_url.rstrip("/"), "provisioning": "ENABLED"})

    def _ep_admin_apps(self, request: Request) -> Response:
        base = self._base(request)
        label = request.args.get("label")
        rows = [r for r in self.state.apps.values() if not label or r["label"].casefold() == label.casefold()]
        return self._json([self.shapes.app_json(r, base) for r in rows])

    def _ep_admin_deactivate(self, request: Request, login: str) -> Response:
        try:
            self.deactivate_user_silently(login)
        except KeyError as cause:
            raise not_found(login, "User") from cause
        return Response(status=204)

    def _admin_summary(self, request: Request) -> str:
        body = self._object_body(request)
        summary = body.get("summary")
        if not isinstance(summary, str) or not summary:
            raise validation("summary", "summary is required")
        return summary

    def _ep_admin_user_error(self, request: Request, aid: str, login: str) -> Response:
        summary = self._admin_summary(request)
        try:
            self.set_app_user_error(aid, login, summary)
        except KeyError as exc:
            raise OktaApiError(404, "E0000007", f"Not found: {exc}") from exc
        return Response(status=204)

    def _ep_admin_push_error(self, request: Request, aid: str, group: str) -> Response:
        summary = self._admin_summary(request)
        try:
            self.set_push_error(aid, group, summary)
        except KeyError as exc:
            raise OktaApiError(404, "E0000007", f"Not found: {exc}") from exc
        return Response(status=204)

    def _ep_admin_rate_limit(self, request: Request) -> Response:
        body = self._object_body(request)
        per_minute = body.get("perMinute")
        if not isinstance(per_minute, int) or per_minute < 1:
            raise validation("perMinute", "perMinute must be a positive integer")
        family = body.get("family")
        self.set_rate_limit(per_minute, family if isinstance(family, str) else None)
        return Response(status=204)
