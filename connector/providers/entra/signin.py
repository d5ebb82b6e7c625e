"""How Entra's sign-in (the azure-identity credentials of client.build_credential) reaches the token authority.

azure-identity sends its token requests through azure-core's RequestsTransport over `requests`. By default that
transport honours the environment as `requests` does: ~/.netrc included, so a `default` entry (or one for
login.microsoftonline.com) went with the token POST as Basic credentials, a secret handed to a third party, and
proxies by requests' own rules. SignInTransport reads none of it (use_env_settings=False: the session's trust_env
is off) and takes, for each request, the proxy of connector.support.proxy, the one decision every client of the
tool follows (NO_PROXY included, SOCKS refused naming the variable).

What it keeps from the environment is the trust store requests would have used: REQUESTS_CA_BUNDLE, else
CURL_CA_BUNDLE, else certifi's (a TLS-inspecting proxy's CA stays trusted; no certificate check is ever turned
off).

Imported only by build_credential: offline commands never load azure.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline.transport import RequestsTransport

from connector.support.proxy import proxy_url
from connector.support.urls import is_loopback


def ca_bundle() -> str | bool:
    """What requests verifies an authority's certificate against: the bundle REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE
    names (as requests reads them with trust_env on), else True (certifi's)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


class SignInTransport(RequestsTransport):  # type: ignore[misc]  # azure.core exports it lazily: Any to mypy
    """azure-core's requests transport without the environment's settings, and our proxy for each request."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(use_env_settings=False, connection_verify=ca_bundle(), **kwargs)

    def send(self, request: Any, *, proxies: MutableMapping[str, str] | None = None, **kwargs: Any) -> Any:
        # azure-core's ProxyPolicy passes `proxies` only when a credential is given some (we give none): the
        # proxy is decided here, from the request's URL, and nothing else.
        proxy = proxy_url(request.url)
        scheme = urlsplit(request.url).scheme
        return super().send(request, proxies={scheme: proxy} if proxy else {}, **kwargs)


def sign_in_options(authority: str | None) -> dict[str, Any]:
    """The keyword arguments every azure-identity credential that signs in over HTTP takes from build_credential.

    `authority`: azure.authority (None: azure-identity's default, AZURE_AUTHORITY_HOST else the public cloud).
    A loopback authority (a local token service, the tests' emulated one) turns off MSAL's instance discovery,
    which asks login.microsoftonline.com whether a host is one of Microsoft's: a loopback host never is. Any
    other authority keeps that check.

    The proxy is decided here once too, for the authority, so that a SOCKS one is refused (ConfigError naming the
    variable) before a credential runs: inside DefaultAzureCredential's chain the error would be swallowed."""
    default = os.environ.get("AZURE_AUTHORITY_HOST") or "login.microsoftonline.com"
    proxy_url(authority or (default if "://" in default else f"https://{default}"))
    options: dict[str, Any] = {"transport": SignInTransport()}
    if authority is not None:
        options["authority"] = authority
        if is_loopback(authority):
            options["disable_instance_discovery"] = True
    return options
