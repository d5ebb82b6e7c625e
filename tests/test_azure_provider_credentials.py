"""Which azure-identity credential each azure.credential type builds, and the GitHub Actions OIDC exchange
(ClientAssertionCredential fed by a fresh JWT from ACTIONS_ID_TOKEN_REQUEST_URL, served here on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from connector.config.load import AzureConfig, AzureCredential
from connector.errors import ConfigError
from connector.providers.entra.client import StaticTokenCredential, _github_oidc_token, build_credential
from connector.sandbox.server import ServedApp
from connector.support.redact import redact
from connector.support.secret import Secret

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "99999999-8888-7777-6666-555555555555"


def cfg(kind: str, **kw: Any) -> AzureConfig:
    return AzureConfig(tenant_id=TENANT, credential=AzureCredential(kind, **kw))


def test_each_credential_type_builds_the_matching_azure_identity_credential(tmp_path: Path) -> None:
    from azure import identity

    assert isinstance(build_credential(cfg("secret", client_id=CLIENT, client_secret=Secret.from_value("s3cr3t-value"))),
                      identity.ClientSecretCredential)
    assert isinstance(build_credential(cfg("cli")), identity.AzureCliCredential)
    assert isinstance(build_credential(cfg("default")), identity.DefaultAzureCredential)
    assert isinstance(build_credential(cfg("token", token=Secret.from_value("static-token-value"))), StaticTokenCredential)
    with pytest.raises(ConfigError, match="client_id and client_secret"):
        build_credential(cfg("secret", client_secret=Secret.from_value("x" * 8)))


def test_static_token_credential_answers_kiota_style_calls() -> None:
    cred = StaticTokenCredential(Secret.from_value("a-static-bearer-token"))
    token = cred.get_token("https://graph.microsoft.com/.default", claims=None, enable_cae=True)
    assert token.token == "a-static-bearer-token" and token.expires_on > 0
    assert redact("Bearer a-static-bearer-token") == "Bearer ****"  # reveal() registered it


@contextmanager
def serve_github_oidc() -> Iterator[tuple[str, list[Request]]]:
    """GitHub's OIDC token service for a runner, on loopback: (the request URL, the requests it answered)."""
    seen: list[Request] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        seen.append(request)
        ok = request.headers.get("Authorization") == "bearer runner-request-token"
        body = {"value": "eyJhbGciOi.github-oidc-jwt.sig"} if ok else {"message": "bad token"}
        return Response(json.dumps(body), status=200 if ok else 401, content_type="application/json")(
            environ, start_response)

    served = ServedApp("github-oidc", app).start()
    try:
        yield served.url + "/token?api-version=2.0", seen
    finally:
        served.stop()


@pytest.fixture
def github_oidc() -> Iterator[tuple[str, list[Request]]]:
    with serve_github_oidc() as served:
        yield served


def test_workload_identity_in_github_actions_exchanges_a_fresh_oidc_token(
    github_oidc: tuple[str, list[Request]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure import identity

    url, seen = github_oidc
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", url)
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-request-token")
    cred = build_credential(cfg("workload", client_id=CLIENT))
    assert isinstance(cred, identity.ClientAssertionCredential)
    assert _github_oidc_token() == "eyJhbGciOi.github-oidc-jwt.sig"
    assert _github_oidc_token() == "eyJhbGciOi.github-oidc-jwt.sig"
    assert len(seen) == 2  # fetched per token request: the JWT lives ~5 minutes
    assert seen[0].args["audience"] == "api://AzureADTokenExchange" and seen[0].args["api-version"] == "2.0"
    assert redact("jwt=eyJhbGciOi.github-oidc-jwt.sig") == "jwt=****"


def test_workload_identity_outside_ci_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    with pytest.raises(ConfigError, match="id-token: write"):
        build_credential(cfg("workload", client_id=CLIENT))


def test_the_github_oidc_fetch_refuses_plain_http_off_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.errors import ConfigError

    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "http://192.0.2.2:18804/token?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-request-token")
    with pytest.raises(ConfigError, match="must use https"):
        _github_oidc_token()  # before any request: nothing was sent
