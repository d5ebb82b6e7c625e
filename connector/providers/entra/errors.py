"""Foreign exceptions from msgraph-sdk, kiota and azure-identity -> one readable connector error.

The SDKs raise ODataError (with the service's code and message buried in `.error`), bare kiota APIError when a
body cannot be parsed, azure-identity ClientAuthenticationError with a multi-line AADSTS text, and httpx
transport errors. Users get one line with the code, the endpoint and, where we know it, what to do.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

from connector.errors import UNREACHABLE_HINT, AuthError, ConnectorError, RemoteError
from connector.support.http import retry_after_seconds
from connector.support.redact import redact

if TYPE_CHECKING:
    from connector.config.load import AzureCredential

SERVICE = "graph"

# The Microsoft Graph application permission each family of calls needs (least privilege first). Named in the
# error when Graph answers 403, so the admin knows exactly what to grant.
PERMISSIONS: dict[str, str] = {
    "apps.read": "Application.Read.All",
    "apps": "Application.ReadWrite.OwnedBy (or Application.ReadWrite.All)",
    "sync": "Synchronization.ReadWrite.All",
    "assign": "AppRoleAssignment.ReadWrite.All",
    "users": "User.Read.All",
    "groups": "GroupMember.Read.All (or Directory.Read.All)",
    "logs": "AuditLog.Read.All",
}

# The AADSTS codes people actually hit when wiring a CI credential, with the fix.
AADSTS_HINTS: dict[str, str] = {
    "AADSTS7000215": "the client secret is wrong: use the secret's Value, not its Secret ID",
    "AADSTS7000222": "the client secret has expired: create a new one in App registrations > Certificates & secrets",
    "AADSTS700016": "no application with this client_id in the tenant: check azure.credential.client_id and tenant_id",
    "AADSTS90002": "the tenant was not found: check azure.tenant_id",
    "AADSTS900023": "the tenant id is malformed: check azure.tenant_id",
    "AADSTS700024": "the GitHub OIDC token expired before it was exchanged; it is fetched fresh per token request, "
                    "so re-run the job",
    "AADSTS70021": "no federated identity credential matches this workflow: add one for the repo, branch or "
                   "environment in the app registration",
    "AADSTS700213": "no federated identity credential matches the token's subject: check the repo/branch/environment",
    "AADSTS50034": "the user does not exist in this tenant",
    "AADSTS53003": "a Conditional Access policy blocked the sign-in",
    "AADSTS7000112": "the application is disabled",
    "AADSTS65001": "admin consent has not been granted for the requested permissions",
}

_AADSTS = re.compile(r"(AADSTS\d+):?\s*([^\r\n]*)")


def _first_sentence(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    if 0 < end < limit:
        return text[: end + 1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _headers(exc: BaseException) -> dict[str, str] | None:
    raw = getattr(exc, "response_headers", None)
    if not raw:
        return None
    try:
        return {str(k): str(v) for k, v in dict(raw).items()}
    except (TypeError, ValueError):
        return None


def translate(exc: BaseException, *, endpoint: str, permission: str | None = None) -> ConnectorError:
    """Map any exception from a Graph call to a ConnectorError (not raised: the caller raises it).

    `permission` is a PERMISSIONS key: the Graph permission this call needs, named on a 403.
    """
    if isinstance(exc, ConnectorError):
        return exc
    error = _translate(exc, endpoint=endpoint, permission=permission)
    if isinstance(error, RemoteError):
        # Graph's 429 and 503 say how long to back off; connector.support.http honours it.
        error.retry_after = retry_after_seconds(_headers(exc))
    return error


def _translate(exc: BaseException, *, endpoint: str, permission: str | None) -> ConnectorError:
    # An exception of a class exists only once its module is loaded: look the classes up in sys.modules instead
    # of importing azure-core, kiota or httpx to compare (the audit's Graph reader, entra/reads.py, loads none).
    azure_errors = sys.modules.get("azure.core.exceptions")
    if azure_errors is not None and isinstance(exc, azure_errors.ClientAuthenticationError):
        return credential_error(exc)
    kiota_errors = sys.modules.get("kiota_abstractions.api_error")
    if kiota_errors is not None and isinstance(exc, kiota_errors.APIError):
        code, message = odata_code_message(exc)
        return status_error(exc.response_status_code, code, message, endpoint=endpoint, permission=permission)
    if _is_transport_error(exc):
        return unreachable(exc, endpoint=endpoint)
    if type(exc).__name__ == "HTTPError" and "https" in str(exc):
        return RemoteError(
            f"{exc}: azure.graph_url must use https (plain http only on loopback)", service=SERVICE,
            endpoint=endpoint, status=0,
        )
    return RemoteError(
        f"unexpected {type(exc).__name__}: {_first_sentence(redact(str(exc)))}", service=SERVICE,
        endpoint=endpoint, status=0,
    )


def _is_transport_error(exc: BaseException) -> bool:
    """A connection that failed or timed out (httpx under the SDK, aiohttp under the reader, or the OS's)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.TransportError):
        return True
    aiohttp = sys.modules.get("aiohttp")
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


def unreachable(exc: BaseException, *, endpoint: str) -> RemoteError:
    """Graph did not answer. Status None: connection resets and timeouts are retried."""
    return RemoteError(
        f"cannot reach Microsoft Graph ({type(exc).__name__}: {redact(str(exc)) or 'no answer'})",
        service=SERVICE, endpoint=endpoint, hint=UNREACHABLE_HINT.format(key="azure.graph_url"),
    )


def named_credential(error: ConnectorError, credential: AzureCredential) -> ConnectorError:
    """`error`, a refused Graph credential (401), with a hint naming which credential of the config was used."""
    if isinstance(error, AuthError) and error.status == 401:
        which = {
            "token": f"the access token in {credential.token}" if credential.token is not None else None,
            "secret": f"the client secret ({credential.client_secret}) of client_id {credential.client_id}"
            if credential.client_secret is not None else None,
            "certificate": f"the certificate {credential.certificate_path} of client_id {credential.client_id}",
        }.get(credential.kind) or f"azure.credential ({credential.kind})"
        error.hint = f"Graph refused {which}: is it expired, revoked or for another tenant? Check azure.credential"
    return error


def status_error(status: int | None, code: str | None, message: str, *, endpoint: str, permission: str | None
                 ) -> RemoteError:
    """Graph's error answer (status, OData code and message) as the connector error: 401 and 403 with what to do,
    403 naming the permission the call needs."""
    text = f"{code}: {message}" if code else message
    if status == 401:
        return AuthError(
            text, service=SERVICE, endpoint=endpoint, status=status, code=code,
            hint="the Graph credential was refused: check azure.credential (token expired or wrong tenant?)",
        )
    if status == 403:
        needed = PERMISSIONS.get(permission or "", permission)
        hint = (
            f"grant the Microsoft Graph application permission {needed} to the app you sign in with, "
            "then grant admin consent"
            if needed else "the credential lacks a Microsoft Graph permission for this call"
        )
        if needed:
            text += f" (missing permission: {needed})"
        return AuthError(text, service=SERVICE, endpoint=endpoint, status=status, code=code, hint=hint)
    return RemoteError(text, service=SERVICE, endpoint=endpoint, status=status, code=code)


def error_body(body: bytes, status: int, reason: str | None = None) -> tuple[str | None, str]:
    """(code, message) of a raw Graph error answer: `{"error": {"code", "message"}}`, else the HTTP status."""
    import orjson

    err: Any = None
    try:
        err = orjson.loads(body).get("error") if body else None
    except (orjson.JSONDecodeError, AttributeError):
        err = None
    code = err.get("code") if isinstance(err, dict) and isinstance(err.get("code"), str) else None
    message = err.get("message") if isinstance(err, dict) and isinstance(err.get("message"), str) else None
    return code or None, _one_line(redact(message or f"HTTP {status}{' ' + reason if reason else ''}"))


def odata_code_message(exc: Any) -> tuple[str | None, str]:
    """(code, message) of an ODataError, or of a bare kiota APIError."""
    err = getattr(exc, "error", None)
    code = getattr(err, "code", None) if err is not None else None
    message = getattr(err, "message", None) if err is not None else None
    if not message:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return code, _one_line(redact(str(message)))


def credential_error(exc: BaseException) -> AuthError:
    """azure-identity's multi-line failure -> `AADSTSnnnn: first sentence` plus a hint for the known codes."""
    from azure.identity import CredentialUnavailableError

    text = str(getattr(exc, "message", None) or exc)
    match = _AADSTS.search(text)
    if match:
        code = match.group(1)
        return AuthError(
            f"{code}: {_first_sentence(redact(match.group(2)))}", service="entra-id", endpoint="token", code=code,
            hint=AADSTS_HINTS.get(code, "see https://login.microsoftonline.com/error?code=" + code[6:]),
        )
    if isinstance(exc, CredentialUnavailableError):
        return AuthError(
            f"no Azure credential available: {_first_sentence(redact(text))}", service="entra-id",
            hint="for credential type 'cli' run 'az login'; for 'default' set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
                 "AZURE_CLIENT_SECRET or sign in with the Azure CLI",
        )
    return AuthError(
        f"could not get a Graph token: {_first_sentence(redact(text))}", service="entra-id",
        hint="check azure.tenant_id and azure.credential",
    )
