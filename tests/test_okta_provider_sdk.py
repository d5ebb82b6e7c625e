"""The okta SDK's verified defects, pinned, and the OktaClient wrapper that builds around them.

Each `test_sdk_defect_*` asserts the defect as it is in okta 3.4.x. When one of them fails after an SDK upgrade,
the SDK got fixed: remove the matching workaround in connector/providers/okta_client.py (or okta.py) and the test.

A tiny scripted Okta stands in for the org here (real HTTP on loopback, through the real SDK): these tests need
answers the sandbox emulator deliberately never gives (next-link first, a dropped port, a captured body).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from connector.config.load import OktaConfig
from connector.errors import AuthError, RemoteError
from connector.providers.okta.client import HTTPS_CHECK_ENV, OktaClient, client_config, next_link, unpack
from connector.sandbox.server import ServedApp
from connector.support.clock import FakeClock
from connector.support.http import RetryPolicy
from connector.support.secret import Secret

pytestmark = pytest.mark.xdist_group("okta-sdk")  # see test_okta_emulator.py: one worker imports the SDK client

ROOT = Path(__file__).resolve().parents[1]

TOKEN = "stub-okta-token-0123456789abcdef"
Handler = Callable[[Request], Response]


@dataclass
class StubOkta:
    """Routes (method, path) to handlers; records every request with its body."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    seen: list[tuple[str, str, str, Any]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        req = Request(environ)
        body = req.get_data(as_text=True)
        self.seen.append((req.method, req.path, req.query_string.decode(), json.loads(body) if body else None))
        handler = self.routes.get((req.method, req.path))
        if handler is None:
            resp = okta_error(404, "E0000007", f"Not found: Resource not found: {req.path}")
        else:
            resp = handler(req)
        return resp(environ, start_response)


def okta_json(data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    resp = Response(json.dumps(data), status=status, content_type="application/json")
    resp.headers["X-Rate-Limit-Limit"] = "600"
    resp.headers["X-Rate-Limit-Remaining"] = "599"
    resp.headers["X-Rate-Limit-Reset"] = str(int(time.time()) + 60)
    for k, v in headers or []:
        resp.headers.add(k, v)
    return resp


def okta_error(status: int, code: str, summary: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return okta_json({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oae1",
                      "errorCauses": []}, status, headers)


@pytest.fixture
def stub() -> Iterator[tuple[StubOkta, str]]:
    app = StubOkta()
    served = ServedApp("stub-okta", app).start()
    try:
        yield app, served.url
    finally:
        served.stop()


def okta_config(url: str, token: str = TOKEN) -> OktaConfig:
    return OktaConfig(org_url=url, token=Secret.from_value(token))


def run(coro_fn: Callable[[OktaClient], Any], url: str, **kw: Any) -> Any:
    async def main() -> Any:
        async with OktaClient(okta_config(url), **kw) as c:
            return await coro_fn(c)

    return asyncio.run(main())


def sdk_client(url: str) -> Any:
    """A bare SDK client, okta.client.Client as the SDK documents it, to show its behaviour without our wrapper."""
    from okta.client import Client

    with pytest.MonkeyPatch.context() as env:
        env.setenv(HTTPS_CHECK_ENV, "true")  # a loopback stub
        return Client(client_config(okta_config(url)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- defects ---------------------------------------------------------------------------------------------------

def two_pages(stub: StubOkta, url: str, *, next_first: bool) -> None:
    path = "/api/v1/apps/0oa1/group-push/mappings"

    def handler(req: Request) -> Response:
        if req.args.get("after") == "c2":
            return okta_json([{"id": "gPm2", "sourceGroupId": "00g2", "status": "ACTIVE"}],
                             headers=[("Link", f'<{url}{path}?after=c2>; rel="self"')])
        links = [("Link", f'<{url}{path}>; rel="self"'), ("Link", f'<{url}{path}?after=c2&limit=1>; rel="next"')]
        if next_first:
            links.reverse()
        return okta_json([{"id": "gPm1", "sourceGroupId": "00g1", "status": "ACTIVE"}], headers=links)

    stub.routes[("GET", path)] = handler


def test_sdk_defect_paging_headers_keep_only_the_last_link(stub: tuple[StubOkta, str]) -> None:
    from okta.pagination import PaginationHelper

    app, url = stub
    two_pages(app, url, next_first=True)

    async def sdk_first_page() -> Any:
        async with sdk_client(url) as c:
            _, resp, err = await c.list_group_push_mappings("0oa1", limit=1)
            assert err is None
            return PaginationHelper.extract_next_cursor(resp.headers)

    assert asyncio.run(sdk_first_page()) is None  # the next cursor was in the first Link header: lost
    items = run(lambda c: c.pages("/api/v1/apps/0oa1/group-push/mappings", {"limit": 1}), url)
    assert [i["id"] for i in items] == ["gPm1", "gPm2"]


def test_pages_follow_next_in_okta_order(stub: tuple[StubOkta, str]) -> None:
    app, url = stub
    two_pages(app, url, next_first=False)
    items = run(lambda c: c.pages("/api/v1/apps/0oa1/group-push/mappings", {"limit": 1}), url)
    assert [i["id"] for i in items] == ["gPm1", "gPm2"]


def test_sdk_defect_none_returning_calls_give_two_tuples_on_error(stub: tuple[StubOkta, str]) -> None:
    _, url = stub  # no route: DELETE answers 404 E0000007

    async def sdk_delete() -> Any:
        async with sdk_client(url) as c:
            return await c.delete_group_push_mapping("0oa1", "gPmX", False)

    result = asyncio.run(sdk_delete())
    assert len(result) == 2
    data, response, error = unpack(result)
    assert data is None and error.error_code == "E0000007"
    with pytest.raises(RemoteError) as info:
        run(lambda c: c.call("DELETE", "/api/v1/apps/0oa1/group-push/mappings/gPmX",
                             lambda s: s.delete_group_push_mapping("0oa1", "gPmX", False)), url)
    assert info.value.status == 404 and info.value.code == "E0000007"


def test_sdk_defect_mapping_property_removal_is_stripped(stub: tuple[StubOkta, str]) -> None:
    from okta.models import ProfileMappingRequest

    app, url = stub
    app.routes[("POST", "/api/v1/mappings/prm1")] = lambda req: okta_json({"id": "prm1", "properties": {}})
    removal = {"properties": {"nickName": {"expression": None, "pushStatus": None}}}

    async def sdk_update() -> Any:
        async with sdk_client(url) as c:
            return await c.update_profile_mapping("prm1", ProfileMappingRequest.from_dict(removal))

    asyncio.run(sdk_update())
    sent = app.seen[-1][3]
    assert "nickName" not in ((sent or {}).get("properties") or {})  # the removal never reached Okta

    run(lambda c: c.request("POST", "/api/v1/mappings/prm1", body=removal, keep_empty=True), url)
    assert app.seen[-1][3] == removal


def test_sdk_defect_provisioning_connection_unknown_raises(stub: tuple[StubOkta, str]) -> None:
    from pydantic import ValidationError

    app, url = stub
    unknown = {"authScheme": "UNKNOWN", "status": "UNKNOWN", "profile": {"authScheme": "UNKNOWN"}}
    app.routes[("GET", "/api/v1/apps/0oa1/connections/default")] = lambda req: okta_json(unknown)

    async def sdk_get() -> Any:
        async with sdk_client(url) as c:
            return await c.get_default_provisioning_connection_for_application("0oa1")

    with pytest.raises(ValidationError):
        asyncio.run(sdk_get())
    assert run(lambda c: c.get("/api/v1/apps/0oa1/connections/default"), url)["status"] == "UNKNOWN"


def test_sdk_defect_application_drops_settings_app() -> None:
    from okta.models import Application

    raw = {"id": "0oa1", "label": "Astro", "name": "astronomer", "signOnMode": "SAML_2_0", "status": "ACTIVE",
           "settings": {"app": {"organizationId": "clx"}}}
    assert "app" not in (Application.from_dict(raw).to_dict().get("settings") or {})


def test_sdk_defect_application_features_enum_rejects_unknown_values() -> None:
    from okta.models import Application
    from pydantic import ValidationError

    raw = {"id": "0oa1", "label": "Astro", "name": "astronomer", "signOnMode": "SAML_2_0", "status": "ACTIVE",
           "features": ["PUSH_NEW_USERS", "AUTO_CONFIRM_IMPORTS"]}
    with pytest.raises(ValidationError):
        Application.from_dict(raw)


def test_sdk_defect_dropped_connection_raises_attribute_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    async def sdk_list() -> Any:
        async with sdk_client(url) as c:
            return await c.list_group_push_mappings("0oa1")

    with pytest.raises(AttributeError):
        asyncio.run(sdk_list())
    policy = RetryPolicy(attempts=2, base_delay=0.01)
    with pytest.raises(RemoteError) as info:
        run(lambda c: c.call("GET", "/api/v1/apps/0oa1/group-push/mappings",
                             lambda s: s.list_group_push_mappings("0oa1")), url, policy=policy)
    assert info.value.status is None and "could not reach Okta" in info.value.message


def test_sdk_defect_max_retries_from_env_is_not_coerced(monkeypatch: pytest.MonkeyPatch) -> None:
    from okta.client import Client

    monkeypatch.setenv("OKTA_CLIENT_RATELIMIT_MAXRETRIES", "3")
    with pytest.raises(TypeError):
        Client({"orgUrl": "https://acme.okta.com", "token": TOKEN})
    # Our config passes an int, which wins over the environment.
    Client(client_config(okta_config("https://acme.okta.com")))


def test_sdk_defect_https_check_switch_in_dict_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    from okta.client import Client

    monkeypatch.delenv(HTTPS_CHECK_ENV, raising=False)
    with pytest.raises(ValueError, match="https"):
        Client({"orgUrl": "http://127.0.0.1:1", "token": TOKEN, "testing": {"testingDisableHttpsCheck": True}})
    from connector.providers.okta.client import new_sdk_client

    new_sdk_client(okta_config("http://127.0.0.1:1"))  # loopback: the switch is set around construction only
    assert HTTPS_CHECK_ENV not in os.environ


# -- the wrapper -------------------------------------------------------------------------------------------------

def test_unauthorized_is_an_auth_error_without_the_token(stub: tuple[StubOkta, str]) -> None:
    app, url = stub
    app.routes[("GET", "/api/v1/users/me")] = lambda req: okta_error(401, "E0000011", "Invalid token provided")
    with pytest.raises(AuthError) as info:
        run(lambda c: c.call("GET", "/api/v1/users/me", lambda s: s.get_user("me")), url)
    err = info.value
    assert err.exit_code == 3 and err.code == "E0000011" and url in str(err)
    assert TOKEN not in str(err) and TOKEN not in (err.hint or "")


def test_rate_limited_calls_wait_for_the_reset_and_succeed(stub: tuple[StubOkta, str],
                                                           fake_clock: FakeClock) -> None:
    app, url = stub
    calls = {"n": 0}

    def flaky(req: Request) -> Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return okta_error(429, "E0000047", "API call exceeded rate limit due to too many requests.",
                              headers=[("Date", formatdate(usegmt=True))])
        return okta_json([{"id": "00g1", "profile": {"name": "Data"}, "type": "OKTA_GROUP"}])

    app.routes[("GET", "/api/v1/groups")] = flaky
    assert run(lambda c: c.get("/api/v1/groups"), url)[0]["id"] == "00g1"
    assert calls["n"] == 3  # our retry, not the SDK's
    # Each 429 waited until X-Rate-Limit-Reset (60 s ahead of the answer's Date in the stub), on virtual time.
    assert len(fake_clock.sleeps) == 2 and all(59 <= s <= 60 for s in fake_clock.sleeps), fake_clock.sleeps


def test_server_errors_are_retried_then_reported_with_okta_code(stub: tuple[StubOkta, str]) -> None:
    app, url = stub
    app.routes[("GET", "/api/v1/apps")] = lambda req: okta_error(500, "E0000009", "Internal Server Error")
    policy = RetryPolicy(attempts=3, base_delay=0.01)
    with pytest.raises(RemoteError) as info:
        run(lambda c: c.get("/api/v1/apps"), url, policy=policy)
    assert info.value.status == 500 and info.value.code == "E0000009"
    assert "GET /api/v1/apps" in str(info.value)
    assert sum(1 for s in app.seen if s[1] == "/api/v1/apps") == 3


def test_next_link_parsing() -> None:
    assert next_link(['<https://a/x>; rel="self"', '<https://a/x?after=2>; rel="next"']) == "https://a/x?after=2"
    assert next_link(['<https://a/x>; rel="self", <https://a/x?after=3>; rel="next"']) == "https://a/x?after=3"
    assert next_link(['<https://a/x>; rel="self"']) is None
    assert next_link([]) is None


def test_client_config_private_key_mode() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from connector.providers.okta.client import new_sdk_client

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    cfg = OktaConfig(org_url="https://acme.okta.com", client_id="0oaSvc", private_key=Secret.from_value(pem))
    conf = client_config(cfg)
    assert conf["authorizationMode"] == "PrivateKey" and conf["clientId"] == "0oaSvc"
    assert "okta.apps.manage" in conf["scopes"] and "token" not in conf
    assert conf["rateLimit"]["maxRetries"] == 0
    # The SDK accepts it as an OAuth service app configuration (the token request happens on first call).
    assert new_sdk_client(cfg).get_config()["client"]["authorizationMode"] == "PrivateKey"


# -- the client this tool builds (only the API classes it calls) --------------------------------------------------

def test_our_client_is_configured_exactly_as_the_sdks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from okta.client import Client

    from connector.providers.okta.client import new_sdk_client

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    for cfg in (okta_config("https://acme.okta.com"),
                OktaConfig(org_url="https://acme.okta.com", client_id="0oaSvc", private_key=Secret.from_value(pem))):
        ours, theirs = new_sdk_client(cfg), Client(client_config(cfg))
        assert ours.get_config() == theirs.get_config()
        mine, sdk = ours.get_request_executor(), theirs.get_request_executor()
        assert type(mine) is type(sdk) and type(mine._cache) is type(sdk._cache)
        assert mine._default_headers == sdk._default_headers  # user agent, authorization
        assert mine._authorization_mode == sdk._authorization_mode
    import logging

    logging.getLogger("okta-sdk-python").disabled = False
    new_sdk_client(okta_config("https://acme.okta.com"))
    assert logging.getLogger("okta-sdk-python").disabled  # as Client leaves it: the SDK logs bodies unredacted


def test_our_client_has_every_sdk_method_the_code_calls() -> None:
    # Typed calls are written `lambda s: s.<method>(...)` / `lambda sdk: sdk.<method>(...)`: each must exist on the
    # client we build, with the SDK's own implementation (the one okta.client.Client would run).
    import re

    from okta.client import Client

    from connector.providers.okta.client import new_sdk_client

    sources = "\n".join(p.read_text() for p in (ROOT / "connector" / "providers" / "okta").glob("*.py"))
    called = set(re.findall(r"lambda (s|sdk): \1\.(\w+)\(", sources))
    assert {"get_user", "create_group_push_mapping", "update_feature_for_application"} <= {m for _, m in called}
    ours = new_sdk_client(okta_config("https://acme.okta.com"))
    for _, method in called:
        assert getattr(type(ours), method) is getattr(Client, method), method


def test_building_our_client_does_not_import_the_whole_sdk() -> None:
    code = ("import sys\n"
            "from connector.config.load import OktaConfig\n"
            "from connector.providers.okta.client import new_sdk_client\n"
            "from connector.support.secret import Secret\n"
            "new_sdk_client(OktaConfig(org_url='https://acme.okta.com', token=Secret.from_value('x')))\n"
            "print(sorted(m for m in sys.modules if m in ('okta.client', 'okta.api.policy_api')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
