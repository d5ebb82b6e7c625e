"""The one way this tool talks to Okta: the official `okta` SDK (async), wrapped so its sharp edges stay here.

What the wrapper adds over calling the SDK directly (reference/okta-api.md section 2.4):
- every result tuple is unpacked defensively: typed calls return 3-tuples, `None`-returning calls (delete,
  unassign, lifecycle) return 2-tuples on error, and a dropped connection makes typed calls raise
  AttributeError instead of returning an error (`test_sdk_defect_*` in tests/test_okta_provider_sdk.py pin each);
- list endpoints are read through the SDK's own request executor, because `ApiResponse.headers` keeps only the
  last `Link` header and would silently lose the next-page cursor;
- calls whose models are broken (provisioning connection enum, application `features`/`settings.app`, mapping
  property removal with nulls) go through the same executor as raw JSON;
- every SDK error becomes a connector.errors exception (endpoint, HTTP status, Okta errorCode, no secret);
- the project's retry policy (connector.http.retry_async) handles 429/5xx/dropped connections, and a RateBudget
  fed from X-Rate-Limit-* headers slows down before the limit; the SDK's own retry is turned off (it waits
  `reset - Date + 1` whole seconds and only when both headers are present), so there is one policy, not two;
- the client is built from the SDK API classes this tool calls, not `okta.client.Client` (which imports all of
  them: ~4 s before an Okta command's first request).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from connector.config.load import OktaConfig
from connector.errors import UNREACHABLE_HINT, AuthError, ConfigError, RemoteError
from connector.providers.okta import answers
from connector.support import clock
from connector.support.answers import list_of_objects
from connector.support.http import (
    DEFAULT_POLICY,
    RateBudget,
    RetryPolicy,
    retry_after_seconds,
    retry_async,
    without_transport_retry,
)
from connector.support.paging import PageGuard, redirect_error
from connector.support.proxy import env_proxy
from connector.support.redact import redact
from connector.support.secret import Secret
from connector.support.urls import is_loopback

log = logging.getLogger("connector.okta")
T = TypeVar("T")

# The SDK would retry 429/503/504 itself; retry_async does it for every client the same way (see module doc).
SDK_MAX_RETRIES = 0
DEFAULT_CONCURRENCY = 8
HTTPS_CHECK_ENV = "OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"
# The SDK reads any non-empty value of this variable as "skip the https check"; constructing a client is the only
# moment it looks, so it is set around construction only, for loopback URLs only.
_env_lock = threading.Lock()

# The SDK's request executor looks for the OAuth access token under this cache key before it asks for one.
SDK_TOKEN_KEY = "OKTA_ACCESS_TOKEN"
# Okta's access tokens for service apps live one hour; a shared one is not used past this age (the SDK itself
# renews five minutes before expiry), so no request goes out with an expired token.
SHARED_TOKEN_SECONDS = 30 * 60


class SharedToken:
    """The OAuth access token of one command, shared by the SDK clients it opens one after another.

    Each phase of a command (read, plan, write, verify) opens its own SDK client in its own event loop, and a fresh
    client asks Okta for a new token: 1-4 per command, each a signed assertion (two RSA key loads: ~0.25 s of CPU)
    and a request against the token endpoint's own rate limit. Held in memory for the command's loaded config
    (shared_token_for), never beyond it, never written anywhere."""

    def __init__(self) -> None:
        self._value: Any = None
        self._since = 0.0
        # The last token ever held: once aged out or refused it is never shared again. A client's own OAuth object
        # keeps the token it fetched and hands it back to the cache whenever the cache has none; taken again, an
        # old token would be shared past its life (the SDK checks expiry only on its own copy, never the cache's).
        self._last: Any = None

    def get(self) -> Any:
        if self._value is not None and clock.current().monotonic() - self._since > SHARED_TOKEN_SECONDS:
            self._value = None
        return self._value

    def put(self, value: Any) -> None:
        if value == self._last:  # the one held (its age counts from its first put), or one retired: not again
            return
        self._value = self._last = value
        self._since = clock.current().monotonic()

    def clear(self) -> None:
        """Stop sharing the token (Okta refused it): the next client asks for a new one."""
        self._value = None

    def __repr__(self) -> str:  # never the token
        return f"SharedToken(held={self._value is not None})"


# One SharedToken per loaded OktaConfig (a command loads its config once): by identity, as two configs that read
# alike may name two orgs served one after the other on one address (a rehearsal's sandboxes).
_tokens: dict[int, tuple[weakref.ref[OktaConfig], SharedToken]] = {}
_tokens_lock = threading.Lock()


def shared_token_for(okta: OktaConfig) -> SharedToken:
    with _tokens_lock:
        entry = _tokens.get(id(okta))
        if entry is None or entry[0]() is not okta:
            for key in [k for k, (ref, _) in _tokens.items() if ref() is None]:
                del _tokens[key]
            entry = (weakref.ref(okta), SharedToken())
            _tokens[id(okta)] = entry
        return entry[1]


def client_config(okta: OktaConfig) -> dict[str, Any]:
    """The dict handed to `okta.client.Client`: SSWS token or OAuth service app with a private key."""
    config: dict[str, Any] = {
        "orgUrl": okta.org_url,
        # An int: the SDK crashes on the string it would read from OKTA_CLIENT_RATELIMIT_MAXRETRIES.
        "rateLimit": {"maxRetries": SDK_MAX_RETRIES},
        "requestTimeout": 0,
        "logging": {"enabled": False},
    }
    if okta.private_key is not None:
        config.update(
            authorizationMode="PrivateKey",
            clientId=okta.client_id,
            scopes=okta.scopes or [
                "okta.apps.read", "okta.apps.manage", "okta.groups.read", "okta.groups.manage", "okta.users.read",
                "okta.profileMappings.read", "okta.profileMappings.manage",
            ],
            privateKey=_checked_private_key(okta.private_key),
        )
    else:
        if okta.token is None:  # config.py always sets one of the two; keep mypy and future callers honest
            raise AuthError("no Okta credential configured", service="okta", hint="set okta.token or okta.private_key")
        config.update(authorizationMode="SSWS", token=okta.token.reveal())
    return config


def _checked_private_key(secret: Secret) -> str:
    """The service app's key, refused here when the SDK could not sign with it: the SDK parses it only when it asks
    for a token, deep in a request, where a malformed one crashed (a traceback quoting a line of the key) or read as
    "Okta answered with something that is not JSON". Parsed by the SDK's own JWT.get_PEM_JWK (what its token
    request does: PEM, JWK JSON or a Python-dict JWK), then it must be a private RSA key (the SDK signs RS256)."""
    value = secret.reveal()
    if not _signable(value):
        # No cause chained: the parsers' messages quote the key's text.
        raise ConfigError("okta.private_key is not a private RSA key the okta SDK can sign with (not shown)",
                          location=secret.location,
                          hint="okta.private_key: file:PATH of the service app's private key, PEM (not encrypted) or "
                               "JWK (\"kty\": \"RSA\" with its private parts)")
    return value


@functools.lru_cache(maxsize=4)
def _signable(value: str) -> bool:
    """Whether the SDK can sign with this key. Kept per key: parsing it loads the RSA key (~0.1 s of CPU), and every
    phase of a command builds its own SDK client (the token itself is shared: SharedToken)."""
    from okta.jwt import JWT

    try:
        _, jwk = JWT.get_PEM_JWK(value)
        return bool(jwk.has_private) and jwk.get("kty") == "RSA"
    except Exception:  # whatever the SDK's parsers raise (SyntaxError, ValueError, jwcrypto's, cryptography's)
        return False


# The SDK API classes this tool calls (each is a mixin of okta.client.Client, which inherits all ~100 of them).
SDK_APIS = (
    ("okta.api.application_features_api", "ApplicationFeaturesApi"),  # list/update_feature_for_application
    ("okta.api.application_groups_api", "ApplicationGroupsApi"),  # assign_group_to_application
    ("okta.api.application_users_api", "ApplicationUsersApi"),  # unassign_user_from_application
    ("okta.api.group_api", "GroupApi"),  # assign/unassign_user_to/from_group
    ("okta.api.group_push_mapping_api", "GroupPushMappingApi"),  # create/update/delete/list_group_push_mapping(s)
    ("okta.api.profile_mapping_api", "ProfileMappingApi"),  # get_profile_mapping
    ("okta.api.user_api", "UserApi"),  # get_user
)


class _NoRedirects:
    """The SDK's aiohttp session, never following a redirect. aiohttp follows them by default (dropping the
    Authorization header on another host, but still asking it, and then reading its answer as Okta's); a 3xx
    from okta.org_url is reported instead (OktaClient.request_once), so nothing reaches another origin."""

    def __init__(self, session: Any, proxy_headers: dict[str, str] | None = None) -> None:
        self._session = session
        self._proxy_headers = proxy_headers  # connector.support.proxy.AiohttpProxy: sent with each request

    def request(self, **params: Any) -> Any:
        if "proxy" not in params:  # the SDK's own proxy (SessionProxyHTTPClient) takes no credentials of ours
            params["proxy_headers"] = self._proxy_headers
        return _RefuseRedirect(self._session.request(**{**params, "allow_redirects": False}),
                               f"{params.get('method', 'GET')} {urlsplit(str(params.get('url', ''))).path}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


class _RefuseRedirect:
    """`async with session.request(...)` whose 3xx answer raises (paging.redirect_error) instead of being parsed
    by the SDK as an error body (an empty 302 read as 'not JSON')."""

    def __init__(self, inner: Any, endpoint: str) -> None:
        self._inner = inner
        self._endpoint = endpoint

    async def __aenter__(self) -> Any:
        response = await self._inner.__aenter__()
        if 300 <= response.status < 400:
            location = response.headers.get("Location")
            await self._inner.__aexit__(None, None, None)
            raise redirect_error("okta", self._endpoint, response.status, location)
        return response

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


def _sdk_client_class() -> type:
    """A client built from the SDK's own API classes, only those this tool calls.

    `okta.client.Client` inherits from every API class of the SDK, so importing it imports all of them and their
    models: ~3.7 s on a 2-core machine, paid by every Okta command (this class: ~0.7 s). Construction goes through
    the same SDK pieces as Client's (ConfigSetter with the environment and okta.yaml, ConfigValidator,
    RequestExecutor, the cache it configures, the SDK's logger off).
    tests/test_okta_provider_sdk.py checks that both end up with the same configuration and executor.
    """
    import importlib

    import aiohttp
    from okta.cache.cache import Cache
    from okta.cache.no_op_cache import NoOpCache
    from okta.cache.okta_cache import OktaCache
    from okta.config.config_setter import ConfigSetter
    from okta.config.config_validator import ConfigValidator
    from okta.http_client import HTTPClient
    from okta.request_executor import RequestExecutor

    bases = tuple(getattr(importlib.import_module(module), name) for module, name in SDK_APIS)

    class SessionProxyHTTPClient(HTTPClient):  # type: ignore[misc]  # the SDK is untyped
        def _setup_proxy(self, proxy: Any) -> str | None:
            # A proxy set in the SDK's own configuration (okta.yaml's client.proxy, OKTA_CLIENT_PROXY_HOST...) is
            # still the SDK's, per request. Otherwise none per request, so the session's applies (set in
            # __aenter__ from connector.support.proxy): the SDK's own environment lookup takes HTTPS_PROXY for
            # every scheme and ignores NO_PROXY and ALL_PROXY.
            if isinstance(proxy, dict) and proxy.get("host"):
                return cast(str | None, super()._setup_proxy(proxy))
            return None

    class SharedTokenCache(Cache):  # type: ignore[misc]  # the SDK is untyped
        """The SDK's cache interface holding nothing but the OAuth access token, in the command's SharedToken (the
        SDK's response cache stays off: it would answer a read-back with what was read before the write)."""

        def __init__(self, shared: SharedToken) -> None:
            super().__init__()
            self._shared = shared

        def get(self, key: str) -> Any:
            return self._shared.get() if key == SDK_TOKEN_KEY else None

        def contains(self, key: str) -> bool:
            return key == SDK_TOKEN_KEY and self._shared.get() is not None

        def add(self, key: str, value: Any) -> None:
            if key == SDK_TOKEN_KEY:
                self._shared.put(value)

        def delete(self, key: str) -> None:
            if key == SDK_TOKEN_KEY:
                self._shared.clear()

        def clear(self) -> None:
            self._shared.clear()

    class OktaSdkClient(*bases):  # type: ignore[misc]  # the bases are only known here
        def __init__(self, user_config: dict[str, Any], shared_token: SharedToken | None = None) -> None:
            setter = ConfigSetter()
            setter._apply_config({"client": user_config})
            config = setter._prune_config(setter.get_config())
            ConfigValidator(config)
            super().__init__(configuration=config)
            cache = config["client"]["cache"]
            # Client's logging set-up leaves the SDK's logger disabled unless logging.enabled (ours: never, the
            # SDK logs response bodies unredacted); it also adds a handler per client, which is not copied.
            logging.getLogger("okta-sdk-python").disabled = not config["client"]["logging"]["enabled"]
            self._config = config
            sdk_cache: Any
            if cache["enabled"]:  # asked for in okta.yaml or OKTA_CLIENT_CACHE_*: the SDK's own, per client
                sdk_cache = OktaCache(cache["defaultTtl"], cache["defaultTti"])
            elif shared_token is not None and not config["client"].get("dpopEnabled"):  # a DPoP token is bound to
                sdk_cache = SharedTokenCache(shared_token)  # its client's own key: not shared
            else:
                sdk_cache = NoOpCache()
            self._request_executor = RequestExecutor(config, sdk_cache, SessionProxyHTTPClient)
            self._session: aiohttp.ClientSession | None = None

        async def __aenter__(self) -> OktaSdkClient:
            # The proxy from the environment (connector.support.proxy), as the other clients take it.
            proxy = env_proxy(str(self._config["client"]["orgUrl"]))
            self._session = without_transport_retry(aiohttp.ClientSession(proxy=proxy.url,
                                                                          headers=proxy.session_headers))
            self._request_executor.set_session(_NoRedirects(self._session, proxy.proxy_headers))
            return self

        async def __aexit__(self, *exc: object) -> None:
            if self._session is not None:
                await self._session.close()

        def get_config(self) -> dict[str, Any]:
            return self._config  # type: ignore[no-any-return]

        def get_request_executor(self) -> Any:
            return self._request_executor

    return OktaSdkClient


_client_class: type | None = None


def new_sdk_client(okta: OktaConfig, shared_token: SharedToken | None = None) -> Any:
    """Construct the SDK client (imported here, never at start-up); an OAuth client takes its access token from
    `shared_token` when it holds one."""
    global _client_class
    if _client_class is None:
        _client_class = _sdk_client_class()
    client_class = _client_class
    config = client_config(okta)
    if not is_loopback(okta.org_url):
        return client_class(config, shared_token)
    with _env_lock:
        previous = os.environ.get(HTTPS_CHECK_ENV)
        os.environ[HTTPS_CHECK_ENV] = "true"
        try:
            return client_class(config, shared_token)
        finally:
            if previous is None:
                os.environ.pop(HTTPS_CHECK_ENV, None)
            else:
                os.environ[HTTPS_CHECK_ENV] = previous


@dataclass
class RawResponse:
    status: int
    data: Any
    headers: Mapping[str, str]
    links: list[str]  # every Link header value, in order (a plain dict would keep only the last one)


# The OAuth scope family each API path needs (Okta: <family>.read for GET, <family>.manage for writes).
_SCOPES = (("/api/v1/mappings", "okta.profileMappings"), ("/api/v1/groups", "okta.groups"),
           ("/api/v1/users", "okta.users"), ("/api/v1/apps", "okta.apps"))


def next_link(links: list[str]) -> str | None:
    """The URL of rel="next" among all Link headers (Okta sends self and next as separate headers)."""
    for header in links:
        for part in header.split(","):
            if "rel=\"next\"" in part or "rel=next" in part:
                url = part.split(";", 1)[0].strip()
                return url.strip("<>").strip()
    return None


@dataclass
class _StatusError:
    """An error answer the SDK did not report (no body to build its error from), for `translate`."""

    status: int
    headers: dict[str, str]

    def __str__(self) -> str:
        return "Okta answered with an error and no error body"


def _headers_of(obj: Any) -> dict[str, str]:
    headers = getattr(obj, "headers", None) or getattr(obj, "response_headers", None)
    if not headers:
        return {}
    try:
        return {str(k): str(v) for k, v in headers.items()}
    except AttributeError:
        return {}


def unpack(result: Any) -> tuple[Any, Any, Any]:
    """(data, response, error) from whatever shape the SDK returned.

    Typed calls: (data, ApiResponse, None) or (None, ClientResponse, OktaAPIError); calls returning None:
    (None, ApiResponse, None) on success but (ClientResponse, OktaAPIError) on error; request-building
    failures: (None, error).
    """
    if not isinstance(result, tuple):
        return result, None, None
    if len(result) == 3:
        return result[0], result[1], result[2]
    if len(result) == 2:
        return None, result[0], result[1]
    raise RemoteError(f"unexpected result shape from the okta SDK: {len(result)} values", service="okta")


class OktaClient:
    """An open connection to one Okta org. Use as `async with OktaClient(cfg.okta) as okta:`."""

    def __init__(
        self,
        okta: OktaConfig,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.config = okta
        self.org_url = okta.org_url
        self.policy = policy
        self.concurrency = concurrency
        self.budget = RateBudget()
        self.requests = 0
        self._sdk: Any = None
        self._sem: asyncio.Semaphore | None = None

    async def __aenter__(self) -> OktaClient:
        self._sdk = new_sdk_client(self.config, shared_token_for(self.config))
        await self._sdk.__aenter__()
        self._sem = asyncio.Semaphore(self.concurrency)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sdk is not None:
            await self._sdk.__aexit__(None, None, None)
            self._sdk = None

    @property
    def sdk(self) -> Any:
        if self._sdk is None:
            raise RuntimeError("OktaClient used outside 'async with'")
        return self._sdk

    @property
    def credential_name(self) -> str:
        return "OAuth service app credentials" if self.config.private_key is not None else "API token"

    # -- errors ----------------------------------------------------------------------------------------------

    def translate(self, err: Any, method: str, path: str) -> RemoteError:
        """An SDK error object (OktaAPIError, HTTPError, aiohttp/other exception) -> connector.errors."""
        endpoint = f"{method} {path.split('?', 1)[0]}"
        status = getattr(err, "status", None)
        code = getattr(err, "error_code", None)
        summary = getattr(err, "error_summary", None)
        causes = getattr(err, "error_causes", None) or []
        headers = _headers_of(err)
        exc: RemoteError
        if status == 401:
            shared_token_for(self.config).clear()  # a refused access token is not handed to the next phase
            exc = AuthError(
                f"Okta {self.org_url} refused the {self.credential_name}"
                + (f": {summary}" if summary else ""),
                service="okta",
                endpoint=endpoint,
                status=401,
                code=code or "E0000011",
                hint=self._auth_hint(),
            )
        elif status is None:
            exc = RemoteError(
                f"could not reach Okta at {self.org_url}: {type(err).__name__} {err}".rstrip(),
                service="okta",
                endpoint=endpoint,
                hint=UNREACHABLE_HINT.format(key="okta.org_url"),
            )
        else:
            text = summary or str(getattr(err, "message", "") or err).strip() or "request failed"
            cause_text = "; ".join(str(c.get("errorSummary", "")) for c in causes if isinstance(c, dict))
            if cause_text and cause_text not in text:
                text = f"{text} ({cause_text})"
            exc = RemoteError(
                text, service="okta", endpoint=endpoint, status=int(status), code=code,
                hint=self._forbidden_hint(method, path) if status == 403 else self._status_hint(int(status), code),
            )
        exc.message = redact(exc.message)
        # Okta sends X-Rate-Limit-Reset on every answer (the end of the current minute's window): a wait hint for
        # a 429 only; a 5xx waits only if it says Retry-After, else the policy's short backoff.
        exc.retry_after = retry_after_seconds(headers, rate_limit_reset=status == 429)
        return exc

    def _auth_hint(self) -> str:
        """401: the credential itself is wrong, expired or revoked."""
        if self.config.private_key is not None:
            return (
                "check okta.client_id and okta.private_key (the OAuth service app's key) and that the app is "
                "granted the okta.apps/groups/users/profileMappings scopes"
            )
        ref = str(self.config.token) if self.config.token is not None else "okta.token"
        return (
            f"the token ({ref}) is invalid, expired or revoked: create one in the Okta Admin Console under "
            "Security > API > Tokens (by an admin with the Application Administrator role or higher)"
        )

    def _forbidden_hint(self, method: str, path: str) -> str:
        """403: the credential is valid but may not make this call. Name what it lacks: the OAuth scope for the
        endpoint, or for an API token the admin role it was created with."""
        bare = urlsplit(path).path  # calls name a path, page requests a whole URL
        family = next((scope for prefix, scope in _SCOPES if bare.startswith(prefix)), "okta.apps")
        scope = f"{family}.{'read' if method == 'GET' else 'manage'}"
        if self.config.private_key is not None:
            return (f"the service app lacks the scope {scope}: grant it under Applications > the service app > "
                    f"Okta API Scopes, and list it in okta.scopes")
        return (f"the token is valid but its admin may not {method} {bare} ({scope}): create the "
                "token as an admin with the Super Administrator role, or Application Administrator plus Group "
                "Administrator for the pushed groups")

    @staticmethod
    def _status_hint(status: int, code: str | None) -> str | None:
        if status == 429:
            return "Okta's rate limit was exceeded even after retries; try again in a minute"
        if code == "invalid_scope":
            return ("grant the scopes to the service app (Okta Admin Console > Applications > the app > Okta API "
                    "Scopes) or list only granted ones in okta.scopes")
        return None

    # -- calls -------------------------------------------------------------------------------------------------

    async def _slot(self) -> asyncio.Semaphore:
        if self._sem is None:
            raise RuntimeError("OktaClient used outside 'async with'")
        await self.budget.wait()
        return self._sem

    async def call_once(self, method: str, path: str, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        """One SDK call. `method`/`path` only name the endpoint in logs and errors."""
        from pydantic import ValidationError

        sem = await self._slot()
        async with sem:
            self.requests += 1
            try:
                result = await fn(self.sdk)
            except AttributeError as exc:
                # okta 3.4.x: a dropped connection makes typed calls read `.status` of a None response.
                if "'NoneType' object has no attribute 'status'" in str(exc):
                    raise self.translate(ConnectionError("connection failed"), method, path) from exc
                # Otherwise the SDK's model parsing met a body of the wrong shape ('str' has no 'get').
                log.info("okta %s %s: the SDK could not parse the answer: %r", method, path, exc)
                raise RemoteError("the okta SDK could not read Okta's answer (not the documented shape)",
                                  service="okta", endpoint=f"{method} {path}", status=0,
                                  code="invalid_body") from exc
            except (TypeError, KeyError) as exc:  # the same, raised by other models
                log.info("okta %s %s: the SDK could not parse the answer: %r", method, path, exc)
                raise RemoteError("the okta SDK could not read Okta's answer (not the documented shape)",
                                  service="okta", endpoint=f"{method} {path}", status=0,
                                  code="invalid_body") from exc
            except ValidationError as exc:
                raise RemoteError(
                    f"the okta SDK could not read Okta's answer ({exc.error_count()} validation error(s))",
                    service="okta", endpoint=f"{method} {path}", status=0, code="invalid_body",
                ) from exc
            except ValueError as cause:  # JSONDecodeError: the SDK parses the body itself
                raise RemoteError("Okta answered with something that is not JSON", service="okta",
                                  endpoint=f"{method} {path}", status=0, code="invalid_body") from cause
        data, response, error = unpack(result)
        self.budget.observe(_headers_of(response))
        status = getattr(response, "status", getattr(response, "status_code", None))
        log.info("okta %s %s -> %s", method, path, status if status is not None else "?")
        if error is None and isinstance(status, int) and status >= 400:
            # The SDK builds its error from the body: an error answer without one (a proxy's empty 403, a 503
            # page) came back as no error at all, and a refused DELETE passed for done.
            error = _StatusError(status, _headers_of(response))
        if error is not None:
            raise self.translate(error, method, path)
        return data

    async def call(self, method: str, path: str, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        """An idempotent SDK call, retried on transient failures."""
        return await retry_async(lambda: self.call_once(method, path, fn), what=f"okta {method} {path}",
                                 policy=self.policy)

    async def request_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        keep_empty: bool = False,
    ) -> RawResponse:
        """One request through the SDK's request executor (same auth, session and user agent as typed calls)."""
        url = self._url(path, params)
        sem = await self._slot()
        async with sem:
            self.requests += 1
            executor = self.sdk.get_request_executor()
            request, error = await executor.create_request(
                method, url, body, {}, keep_empty_params=keep_empty
            )
            if error is not None:
                raise self.translate(error, method, path)
            try:
                response, text, error = await executor.execute(request)
            except ValueError as cause:  # the SDK parses error bodies itself and raises on one that is not JSON
                raise RemoteError("Okta answered with something that is not JSON", service="okta",
                                  endpoint=f"{method} {path}", status=0, code="invalid_body") from cause
        if response is None:  # connection-level failure: no status at all
            raise self.translate(error or ConnectionError("no response"), method, path)
        headers = _headers_of(response)
        self.budget.observe(headers)
        log.info("okta %s %s -> %s", method, url[len(self.org_url):], response.status)
        if error is not None:
            raise self.translate(error, method, path)
        data: Any = None
        if text:
            try:
                data = json.loads(text)
            except ValueError as cause:
                raise RemoteError(
                    "Okta answered with something that is not JSON", service="okta", endpoint=f"{method} {path}",
                    status=response.status,
                ) from cause
        links = list(response.headers.getall("Link", [])) if hasattr(response.headers, "getall") else []
        return RawResponse(status=response.status, data=data, headers=headers, links=links)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        keep_empty: bool = False,
    ) -> RawResponse:
        """An idempotent raw request, retried on transient failures."""
        return await retry_async(
            lambda: self.request_once(method, path, params=params, body=body, keep_empty=keep_empty),
            what=f"okta {method} {path}",
            policy=self.policy,
        )

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        data = (await self.request("GET", path, params=params)).data
        answers.check_answer(urlsplit(path).path, data, f"GET {path}")
        return data

    async def pages(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a cursor-paged list, following rel="next" across all Link headers, only on okta.org_url
        and only once each (connector.support.paging). Every item must be a JSON object."""
        items: list[dict[str, Any]] = []
        url = self._url(path, params)
        guard = PageGuard(base_url=self.org_url, service="okta", endpoint=f"GET {path}")
        guard.first(url)
        while True:
            page = await self.request("GET", url)
            got = list_of_objects(page.data, service="okta", endpoint=f"GET {path}", status=page.status)
            answers.check_list(urlsplit(path).path, got, f"GET {path}")
            items.extend(got)
            nxt = next_link(page.links)
            if not nxt:
                return items
            url = self._url(guard.follow(nxt), None)

    def _url(self, path: str, params: Mapping[str, Any] | None) -> str:
        if path.startswith(("http://", "https://")):
            path = self._relative(path)
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        if query:
            path += ("&" if "?" in path else "?") + query
        return self.org_url + path

    def _relative(self, url: str) -> str:
        # Next links are absolute (and checked to be on org_url by the page guard): keep path and query.
        parts = urlsplit(url)
        if not parts.scheme:
            return url
        return parts.path + (f"?{parts.query}" if parts.query else "")
