"""The Astro session (connector.astro.engine) and scim2-client's engine on it (connector.astro.scim2_engine),
against real loopback servers."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from scim2_client import RequestNetworkException
from scim2_models import EnterpriseUser, Group, ResourceType, ScimProvider, User

from connector.astro.engine import AstroSession
from connector.astro.scim2_engine import AiohttpSCIMClient
from connector.sandbox.astro.scim import AstroScim
from connector.sandbox.server import ServedApp

ORG, TOKEN = "clorgengine0000000000000001", "engine-token"


@asynccontextmanager
async def _client(base_url: str, token: str = TOKEN, concurrency: int = 4) -> AsyncIterator[AiohttpSCIMClient]:
    provider = ScimProvider(models=[User, EnterpriseUser, Group], resource_types=[
        ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)])
    async with AstroSession(base_url, headers={"Authorization": f"Bearer {token}"}, concurrency=concurrency,
                            timeout=10) as session:
        client = AiohttpSCIMClient(session, provider=provider)
        yield client


@pytest.fixture
def astro_url() -> Iterator[str]:
    scim = AstroScim()
    scim.add_org(ORG, TOKEN)
    served = ServedApp("engine-astro", scim.app).start()
    scim.base_url = served.url
    try:
        yield scim.scim_url(ORG)
    finally:
        served.stop()


def test_scim2_client_crud_through_the_engine(astro_url: str) -> None:
    # The engine carries scim2-client's whole request/response cycle: a JSON body out, a validated model back.
    async def go() -> tuple[Any, Any, Any]:
        async with _client(astro_url) as client:
            user = User[EnterpriseUser](user_name="engine@acme.example", active=True)
            created = await client.create(user)
            fetched = await client.query(User[EnterpriseUser], created.id)
            await client.delete(User[EnterpriseUser], created.id)
            listed = await client.query(User[EnterpriseUser])
            return created, fetched, listed

    created, fetched, listed = asyncio.run(go())
    assert created.user_name == fetched.user_name == "engine@acme.example" and created.id == fetched.id
    assert listed.total_results == 0


def test_requests_stay_under_the_base_url() -> None:
    async def go() -> None:
        async with _client("http://127.0.0.1:1/scim/v2/org") as client:
            await client.request("GET", "https://elsewhere.example/steal")

    with pytest.raises(ValueError, match="under the SCIM base URL"):
        asyncio.run(go())


def test_a_refused_connection_is_scim2_clients_network_exception() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there

    async def go() -> None:
        async with _client(f"http://127.0.0.1:{port}/scim/v2") as client:
            await client.request("GET", "/Users")

    with pytest.raises(RequestNetworkException) as caught:
        asyncio.run(go())
    assert caught.value.__notes__  # says what failed


class _HeldApp:
    """Counts requests as they arrive and holds every answer until the test releases them: "not answered yet"
    is then a fact of the test, not a race against a timer."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.all_arrived = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            self.arrived += 1
            if self.arrived == self.expected:
                self.all_arrived.set()
        self.release.wait(30)  # a bound so a broken test cannot hang the server thread forever
        body = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0}'
        start_response("200 OK", [("Content-Type", "application/scim+json"), ("Content-Length", str(len(body)))])
        return [body]


def test_all_sent_returns_once_the_requests_are_on_the_wire_not_answered() -> None:
    app = _HeldApp(expected=4)
    served = ServedApp("engine-held", app).start()
    try:
        async def go() -> tuple[bool, bool]:
            async with _client(served.url, concurrency=4) as client:
                tasks = [asyncio.ensure_future(client.request("GET", f"/Users?startIndex={i}")) for i in range(4)]
                try:
                    await client.session.all_sent()
                    answered = any(t.done() for t in tasks)  # nothing can be: the server holds every answer
                    # The requests are written; the server reads them from its sockets in its own time.
                    arrived = await asyncio.to_thread(app.all_arrived.wait, 30)
                finally:
                    app.release.set()
                await asyncio.gather(*tasks)
                return arrived, answered

        arrived, answered = asyncio.run(go())
    finally:
        app.release.set()
        served.stop()
    assert arrived and app.arrived == 4
    assert not answered  # all_sent did not wait for the answers
