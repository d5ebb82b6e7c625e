"""Small raw-httpx calls to an Astro organization's SCIM endpoint with its Organization API token (bearer).

The Okta provider's push verification and drift's remedies use it; the bulk reader (connector.astro) goes through
scim2-client instead. Errors become AuthError/RemoteError (detail redacted, Retry-After kept for connector.http)
and every request is retried by connector.http's policy, so callers only send idempotent requests.
"""

from __future__ import annotations

import json as jsonlib
import logging
from typing import TYPE_CHECKING, Any, Self

from connector.config.load import AstroConfig
from connector.errors import UNREACHABLE_HINT, AuthError, RemoteError
from connector.mapping.scim_paths import filter_string as scim_filter_value
from connector.support.http import DEFAULT_POLICY, RetryPolicy, retry_after_seconds, retry_async
from connector.support.redact import redact

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("connector.astro.http")
SCIM_JSON = "application/scim+json"
SERVICE = "astro"
__all__ = ["SCIM_JSON", "AstroScimHttp", "scim_filter_value"]


class AstroScimHttp:
    """`async with AstroScimHttp(astro) as scim: await scim.request("GET", "/Users", params=...)`."""

    def __init__(self, astro: AstroConfig, *, timeout: float = 20.0, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.astro = astro
        self.base = astro.scim_url.rstrip("/")
        self.timeout = timeout
        self.policy = policy
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        import httpx

        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {self.astro.token.reveal()}", "Accept": SCIM_JSON},
            timeout=self.timeout,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None) -> Any:
        """The answer's JSON (None when it has no body), retried on transient failures."""
        return await retry_async(lambda: self._once(method, path, params, json), what=f"astro {method} {path}",
                                 policy=self.policy)

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def _once(self, method: str, path: str, params: dict[str, Any] | None, body: Any) -> Any:
        import httpx

        if self._client is None:
            raise RuntimeError("AstroScimHttp is used outside `async with`")
        endpoint = f"{method} {path}"
        kw: dict[str, Any] = {}
        if body is not None:
            kw = {"content": jsonlib.dumps(body), "headers": {"Content-Type": SCIM_JSON}}
        try:
            resp = await self._client.request(method, self.base + path, params=params, **kw)
        except httpx.HTTPError as exc:
            raise RemoteError(f"could not reach Astro SCIM at {self.base}: {type(exc).__name__}",
                              service=SERVICE, endpoint=endpoint,
                              hint=UNREACHABLE_HINT.format(key="astro.scim_url")) from None
        log.info("astro %s %s -> %s", method, path, resp.status_code)
        if resp.status_code in (401, 403):
            raise AuthError(
                f"Astro SCIM at {self.base} refused the Organization API token",
                service=SERVICE, endpoint=endpoint, status=resp.status_code,
                hint=f"check {self.astro.token} (an Organization API token with the Organization Owner role) and "
                     "that SCIM is turned on in Astro (Settings > Authentication > SCIM integration)",
            )
        if resp.status_code >= 400:
            detail = ""
            try:
                answer = resp.json()
                detail = str(answer.get("detail") or answer.get("scimType") or "")
            except (ValueError, AttributeError):
                detail = resp.text[:200]
            err = RemoteError(redact(detail or "request failed"), service=SERVICE, endpoint=endpoint,
                              status=resp.status_code)
            err.retry_after = retry_after_seconds(resp.headers)
            raise err
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise RemoteError("Astro SCIM answered with something that is not JSON", service=SERVICE,
                              endpoint=endpoint, status=resp.status_code) from None
