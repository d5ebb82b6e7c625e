"""The Graph credential, and a thin wrapper over msgraph-sdk's GraphServiceClient for the tenant's writes.

Reads do not come here: reads.GraphReader sends them (raw JSON, no SDK to load), with this module's credential
(GraphCredential, shared) and the same error translation.

Why a wrapper: every call needs the same three things the SDK does not give us. (1) Errors translated into one
readable line (azure_errors.translate), with the missing Graph permission named on 403. (2) The project's retry
policy as the only retry layer: the middleware is kiota's default chain minus its RetryHandler (which retries
429/503/504 only, would nest inside ours and multiply the requests per call, and sleeps on the real clock).
(3) Raw JSON for the calls the SDK gets wrong: the synchronization schema (GET -> model -> PATCH
loses flowTypes and the PATCH route answers 404; we PUT JSON).

All SDK imports are lazy: offline commands never load msgraph, kiota or azure.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from connector.config.load import AzureConfig
from connector.errors import ConfigError
from connector.providers.entra.errors import named_credential, translate
from connector.support.http import DEFAULT_POLICY, RetryPolicy, is_retryable, retry_async
from connector.support.paging import redirect_error
from connector.support.proxy import proxy_url
from connector.support.redact import register
from connector.support.secret import Secret
from connector.support.urls import is_loopback

log = logging.getLogger("connector.graph")
T = TypeVar("T")

GITHUB_AUDIENCE = "api://AzureADTokenExchange"


class StaticTokenCredential:
    """An azure-core TokenCredential that hands out one fixed bearer token (CI tokens, the sandbox).

    azure-core ships none. kiota calls `get_token(*scopes, claims=..., enable_cae=True)`, hence **kwargs.
    """

    def __init__(self, token: Secret) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token.reveal(), int(time.time()) + 3600)

    def close(self) -> None:
        pass


def _github_oidc_token() -> str:
    """A fresh GitHub Actions OIDC JWT for Entra's token exchange (it lives ~5 minutes: fetch per token request)."""
    import httpx

    url = os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"]
    bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    register(bearer)
    if urlsplit(url).scheme != "https" and not is_loopback(url):  # the runner's bearer must not travel in clear
        raise ConfigError("ACTIONS_ID_TOKEN_REQUEST_URL must use https (only loopback addresses may use http)",
                          hint="GitHub sets it for a job with `permissions: id-token: write`; do not set it by hand")
    sep = "&" if "?" in url else "?"
    # The tool's one proxy decision (connector.support.proxy), not httpx's own lookup: trust_env off, the trust
    # store it would give kept (SSL_CERT_FILE / SSL_CERT_DIR, else certifi's). httpx reads no ~/.netrc either way
    # (only an explicit httpx.NetRCAuth does).
    resp = httpx.get(f"{url}{sep}audience={GITHUB_AUDIENCE}", headers={"Authorization": f"bearer {bearer}"},
                     timeout=30, trust_env=False, proxy=proxy_url(url), verify=httpx.create_ssl_context())
    resp.raise_for_status()
    token = str(resp.json()["value"])
    register(token)
    return token


def build_credential(cfg: AzureConfig) -> Any:
    """The azure-identity credential for azure.credential.type (secret|certificate|cli|default|workload|token).

    Every kind that signs in over HTTP does so through signin.SignInTransport (no ~/.netrc, the tool's proxy) and
    to azure.authority when set. `cli` runs the az CLI, which signs in (and talks HTTP) on its own: its settings
    apply there, not ours."""
    c = cfg.credential
    kind = c.kind
    if kind == "token":
        if c.token is None:
            raise ConfigError("azure.credential.type 'token' needs azure.credential.token", location=cfg.location)
        return StaticTokenCredential(c.token)

    from azure import identity

    from connector.providers.entra.signin import sign_in_options

    client_id = c.client_id or os.environ.get("AZURE_CLIENT_ID")
    if kind == "cli":
        # Takes no transport: the token comes from `az account get-access-token`, a process of its own.
        return identity.AzureCliCredential(tenant_id=cfg.tenant_id)
    options = sign_in_options(cfg.authority)
    if kind == "secret":
        if not client_id or c.client_secret is None:
            raise ConfigError("azure.credential needs client_id and client_secret", location=cfg.location)
        return identity.ClientSecretCredential(cfg.tenant_id, client_id, c.client_secret.reveal(), **options)
    if kind == "certificate":
        if not client_id or c.certificate_path is None:
            raise ConfigError("azure.credential needs client_id and certificate_path", location=cfg.location)
        return identity.CertificateCredential(cfg.tenant_id, client_id, certificate_path=str(c.certificate_path),
                                              **options)
    if kind == "workload":
        if not client_id:
            raise ConfigError(
                "azure.credential type 'workload' needs client_id (or AZURE_CLIENT_ID)", location=cfg.location
            )
        if os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
            # GitHub hands out the JWT over HTTP, not as a file: exchange a fresh one on every token request.
            return identity.ClientAssertionCredential(cfg.tenant_id, client_id, _github_oidc_token, **options)
        token_file = os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
        if not token_file:
            raise ConfigError(
                "workload identity needs a federated token: run inside GitHub Actions with 'permissions: "
                "id-token: write', or set AZURE_FEDERATED_TOKEN_FILE", location=cfg.location,
            )
        return identity.WorkloadIdentityCredential(
            tenant_id=cfg.tenant_id, client_id=client_id, token_file_path=token_file, **options
        )
    # The chain hands these to each credential it builds that signs in over HTTP (environment, workload and
    # managed identity, shared token cache, browser); its developer-tool credentials (az, azd, PowerShell) run
    # their tools, which sign in on their own.
    return identity.DefaultAzureCredential(**options)


class GraphCredential:
    """The provider's Graph credential, built on first use and shared by its two clients: the azure-core
    credential for the SDK's (`azure()`), a bearer token for the audit's reader (`bearer()`, entra/reads.py).

    Kind `token` needs no library: its bearer is the configured token. Other kinds build the azure-identity
    credential of build_credential (its import costs ~0.3 s: only then) and keep its token until 5 minutes
    before it expires (azure-identity caches too, but through MSAL's cache lookups on every call)."""

    REFRESH_MARGIN_S = 300

    def __init__(self, cfg: AzureConfig) -> None:
        self.cfg = cfg
        self._azure: Any = None
        self._token: tuple[str, str, float] | None = None  # (scope, token, expires_on epoch seconds)
        self._lock: Any = None  # an asyncio.Lock, made on the reader's loop: one token request at a time

    def azure(self) -> Any:
        if self._azure is None:
            self._azure = build_credential(self.cfg)
        return self._azure

    async def bearer(self, scope: str) -> str:
        """The bearer token for `scope` (Graph's "<origin>/.default"). A sync azure-identity credential may ask
        Entra over the network: it runs in a worker thread, not on the loop the reads share."""
        static = self.cfg.credential.token if self.cfg.credential.kind == "token" else None
        if static is not None:
            return static.reveal()
        import asyncio

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            cached = self._token
            if cached is None or cached[0] != scope or cached[2] - self.REFRESH_MARGIN_S <= time.time():
                credential = self.azure()
                access = await asyncio.to_thread(credential.get_token, scope)
                register(access.token)
                cached = self._token = (scope, access.token, float(access.expires_on))
            return cached[1]

    def close(self) -> None:
        close = getattr(self._azure, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # closing a credential must never mask the real outcome
                pass
        self._azure = None
        self._token = None
        self._lock = None  # bound to the loop that made it: a provider started again makes a new one


def graph_middleware() -> list[Any]:
    """msgraph's default middleware chain (kiota's defaults with msgraph's options, then its telemetry handler)
    without kiota's RetryHandler (connector.support.http is the one retry layer) and RedirectHandler."""
    from kiota_http.kiota_client_factory import KiotaClientFactory
    from kiota_http.middleware import RedirectHandler, RetryHandler
    from msgraph.graph_request_adapter import options as graph_options
    from msgraph_core.middleware import GraphTelemetryHandler
    from msgraph_core.middleware.options import GraphTelemetryHandlerOption

    options = dict(graph_options)
    # No RedirectHandler either: a redirect from Graph is reported, not followed, so a request (and what it
    # reads back) never goes to another origin.
    chain = [m for m in KiotaClientFactory.get_default_middleware(options)
             if not isinstance(m, RetryHandler | RedirectHandler)]
    # What create_with_default_middleware appends: the telemetry handler with msgraph's SDK version.
    telemetry = options.get(GraphTelemetryHandlerOption.get_key())
    chain.append(GraphTelemetryHandler(options=telemetry) if isinstance(telemetry, GraphTelemetryHandlerOption)
                 else GraphTelemetryHandler())
    return chain


def graph_http_client(http: Any) -> Any:
    """`http` (an httpx.AsyncClient) with the Graph middleware of `graph_middleware()` as its transport."""
    from msgraph_core import GraphClientFactory

    return GraphClientFactory.create_with_custom_middleware(graph_middleware(), client=http)


class GraphClient:
    """One GraphServiceClient per provider, created on first use inside the provider's event loop."""

    def __init__(self, cfg: AzureConfig, *, policy: RetryPolicy = DEFAULT_POLICY,
                 credential: GraphCredential | None = None) -> None:
        self.cfg = cfg
        self.policy = policy
        # The provider shares one credential between this client and its reader (and closes it); a client
        # made alone owns its own.
        self.credential = credential or GraphCredential(cfg)
        self._owns_credential = credential is None
        self._client: Any = None
        self._http: Any = None

    @property
    def sdk(self) -> Any:
        """The GraphServiceClient (msgraph.GraphServiceClient) with base URL = azure.graph_url."""
        if self._client is None:
            import httpx
            from kiota_authentication_azure.azure_identity_authentication_provider import (
                AzureIdentityAuthenticationProvider,
            )
            from msgraph import GraphRequestAdapter, GraphServiceClient

            credential = self.credential.azure()
            base = self.cfg.graph_url.rstrip("/")
            http = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(100, connect=30),
                                     event_hooks={"response": [_refuse_redirect]})
            self._http = graph_http_client(http)
            auth = AzureIdentityAuthenticationProvider(credential)
            adapter = GraphRequestAdapter(auth, client=self._http)
            adapter.base_url = base
            self._client = GraphServiceClient(request_adapter=adapter)
        return self._client

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self._client = None
        if self._owns_credential:
            self.credential.close()

    async def call(
        self,
        endpoint: str,
        op: Callable[[], Awaitable[T]],
        *,
        permission: str | None = None,
        retry: bool = True,
        retry_on: Callable[[BaseException], bool] | None = None,
        policy: RetryPolicy | None = None,
    ) -> T:
        """Run one SDK call: translate its errors; retry transient ones (idempotent calls only)."""

        async def once() -> T:
            try:
                return await op()
            except Exception as exc:
                raise named_credential(translate(exc, endpoint=endpoint, permission=permission),
                                       self.cfg.credential) from exc

        if not retry:
            return await once()
        pol = policy or self.policy
        return await retry_async(once, what=endpoint, policy=pol,
                                 retry_on=retry_on or (lambda e: is_retryable(e, pol)))

    # --- raw JSON over the SDK's adapter (auth, middleware and base URL stay the SDK's) ----------------------

    async def send_json(
        self,
        endpoint: str,
        make_request: Callable[[], Any],
        *,
        body: Any = None,
        permission: str | None = None,
        retry: bool = True,
        retry_on: Callable[[BaseException], bool] | None = None,
        policy: RetryPolicy | None = None,
    ) -> Any:
        """Send the RequestInformation `make_request()` builds (an SDK builder's URL, query and method) with an
        optional JSON body; return the parsed JSON answer, or None for an empty one (204)."""
        import orjson
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        adapter = self.sdk.request_adapter

        async def send() -> Any:
            ri = make_request()
            ri.headers.try_add("Accept", "application/json")
            if body is not None:
                ri.set_stream_content(json.dumps(body).encode("utf-8"), "application/json")
            data = await adapter.send_primitive_async(ri, "bytes", {"XXX": ODataError})  # None on 204
            return orjson.loads(data) if data else None

        return await self.call(endpoint, send, permission=permission, retry=retry, retry_on=retry_on,
                               policy=policy)

    async def raw(
        self,
        method: str,
        builder: Any,
        endpoint: str,
        *,
        body: Any = None,
        permission: str | None = None,
        retry: bool = True,
        retry_on: Callable[[BaseException], bool] | None = None,
        policy: RetryPolicy | None = None,
    ) -> Any:
        """`method` on the URL of an SDK request builder (no query), raw JSON in and out."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.request_information import RequestInformation

        def make() -> Any:
            return RequestInformation(Method[method], builder.url_template, dict(builder.path_parameters))

        return await self.send_json(endpoint, make, body=body, permission=permission, retry=retry,
                                    retry_on=retry_on, policy=policy)


async def _refuse_redirect(response: Any) -> None:
    """httpx response hook: a 3xx from Graph is an error, never followed (graph_middleware drops kiota's
    RedirectHandler); raised as a ConnectorError, which translate() passes through."""
    if 300 <= response.status_code < 400:
        request = response.request
        raise redirect_error("graph", f"{request.method} {request.url.path}", response.status_code,
                             response.headers.get("location"))
