"""The one error mapping for Astro: HTTP answers and transport failures -> RemoteError / AuthError.

Both Astro APIs go through it: SCIM (connector.astro.client, over scim2-client: its exceptions are translated by
`from_scim2`) and the Platform API (connector.astro.platform, over httpx). Whatever the client, an error names the
service, the endpoint (the URL; a write is prefixed with its method), the status, the server's own detail
(redacted) and a hint; Retry-After is parsed into `retry_after`, which connector.support.http's retry honours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from connector.errors import UNREACHABLE_HINT, AuthError, RemoteError
from connector.support.http import retry_after_seconds
from connector.support.redact import redact

SCIM = "Astro SCIM"
PLATFORM = "Astro Platform API"
REFUSED = "refused the Organization API token"


def endpoint(method: str, url: str) -> str:
    """How an error names what was asked: the URL, with the method in front unless it is a plain read."""
    return url if method == "GET" else f"{method} {url}"


def unreachable(service: str, where: str, cause: str, *, key: str) -> RemoteError:
    """No HTTP answer at all (refused, DNS, TLS, timeout); `key` is the config key holding the URL."""
    return RemoteError(f"could not reach the endpoint: {redact(cause) or 'connection failed'}", service=service,
                       endpoint=where, hint=UNREACHABLE_HINT.format(key=key))


def http_error(service: str, where: str, status: int, headers: Mapping[str, str] | None, body: Any, *,
               auth_hint: str) -> RemoteError:
    """An HTTP error answer. `body` is the raw answer (bytes or text) or its decoded JSON; the detail comes from a
    SCIM Error (`detail`, `scimType`) or a Platform API error (`message`), else from the start of the text."""
    detail, code = _detail(body)
    if status in (401, 403):
        # 401: the token itself is wrong, expired or revoked; 403: Astro knows it, but it may not do this.
        err: RemoteError = AuthError(REFUSED + (f" ({detail})" if detail else ""), service=service, endpoint=where,
                                     status=status, code=code,
                                     hint=auth_hint if status == 401 else forbidden_hint(service))
    else:
        err = RemoteError(detail or "request failed", service=service, endpoint=where, status=status, code=code)
    err.retry_after = retry_after_seconds(headers)
    return err


def scim_auth_hint(token: object) -> str:
    """The hint for a 401. `token` is the config's Secret: its str() names where it comes from, never its value."""
    return (f"the token ({token}) is wrong, expired or revoked: create an Organization API token (Organization "
            "Owner role) in Astro and check that SCIM is turned on (Settings > Authentication > SCIM integration)")


def forbidden_hint(service: str) -> str:
    """The hint for a 403: the token is valid, its role is not enough."""
    return (f"the token is valid but lacks the permission for this {service} call: it needs the Organization Owner "
            "role (Organization API tokens with a lower role can read but not provision or change Team roles)")


def _detail(body: Any) -> tuple[str, str | None]:
    data = body
    if isinstance(body, bytes | str):
        try:
            data = orjson.loads(body) if body else None
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            # Masked before it is cut: cut first, a token the server echoed past the cut's start stayed half.
            return redact(" ".join(text[:4000].split()))[:200], None
    if not isinstance(data, dict):
        return "", None
    detail = data.get("detail") or data.get("message") or ""
    code = data.get("scimType")
    return redact(str(detail)), (str(code) if code else None)


def header(exc: BaseException, name: str) -> str | None:
    """A header of the response a scim2-client exception carries (`source`), if any."""
    source = getattr(exc, "source", None)
    headers = getattr(source, "headers", None)
    return headers.get(name) if headers is not None else None


def invalid_body(content_type: str | None, text: str, where: str, status: int | None) -> RemoteError:
    """A success answer whose body is not JSON: named by what it looks like (an HTML page: the wrong URL)."""
    ctype = (content_type or "").split(";")[0].strip() or "no content type"
    if "html" in ctype or text.lstrip()[:1] == "<":
        what = f"an HTML page ({ctype}), not SCIM JSON: is the URL the SCIM base URL?"
    elif "json" in ctype:
        what = f"a body that is not valid JSON ({len(text)} bytes of {ctype}; truncated?)"
    else:
        what = f"a body that is not JSON ({ctype})"
    return RemoteError(f"answered with {what}", service=SCIM, endpoint=where, status=status, code="invalid_body")


def from_scim2(exc: BaseException, where: str, *, auth_hint: str) -> RemoteError:
    """scim2-client / scim2-models exceptions -> RemoteError (status None means transport)."""
    from scim2_client import RequestNetworkException, UnexpectedContentFormatException

    if isinstance(exc, RemoteError):
        return exc
    source = getattr(exc, "source", None)
    status = getattr(source, "status_code", None)
    if isinstance(exc, RequestNetworkException):
        notes = "; ".join(getattr(exc, "__notes__", []) or [])
        return unreachable(SCIM, where, notes, key="astro.scim_url")
    if isinstance(exc, UnexpectedContentFormatException):
        return invalid_body(header(exc, "content-type"), getattr(source, "text", "") or "", where, status)
    if isinstance(status, int) and status >= 400:
        return http_error(SCIM, where, status, getattr(source, "headers", None), getattr(source, "content", b""),
                          auth_hint=auth_hint)
    if status is not None:  # a success status whose answer scim2-client refused (unexpected code, bad payload)
        notes = "; ".join(getattr(exc, "__notes__", []) or [])
        return RemoteError(redact(f"{exc}" + (f": {redact(notes[:4000])[:200]}" if notes else "")) or "unexpected answer",
                           service=SCIM, endpoint=where, status=status, code="invalid_body")
    return RemoteError(f"{type(exc).__name__}: {exc}", service=SCIM, endpoint=where, code="invalid_body")
