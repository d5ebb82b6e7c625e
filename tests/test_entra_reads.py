"""The Graph reader (connector/providers/entra/reads.py): every Entra read without msgraph-sdk, kiota or azure's
libraries (a static token), the next page asked for before the current one is handed on, and the credential's
token kept until it nears its expiry. Against the sandbox's Graph emulator over loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from applied import applied
from probe import modules_loaded, modules_loaded_each

from connector.config.load import AzureConfig, AzureCredential, load_config
from connector.providers.entra.client import GraphCredential
from connector.providers.entra.reads import GraphReader, early_next_link, query_value, segment
from connector.sandbox.core import Sandbox
from connector.support.clock import FakeClock, use
from connector.support.proxy import AiohttpProxy
from connector.support.secret import Secret

ROOT = Path(__file__).resolve().parents[1]
# azure-identity and azure-core, not the bare `azure` namespace package (extras.check's find_spec of
# "azure.identity" imports that one, and it holds no code).
SDKS = ("msgraph", "msgraph_core", "kiota_abstractions", "kiota_http", "kiota_authentication_azure", "azure.identity",
        "azure.core", "httpx")

def _loaded(argv: list[str], pre: str = "") -> tuple[list[str], int]:
    return modules_loaded(argv, SDKS, cwd=ROOT, pre=pre)


def _azure(config: Path) -> AzureConfig:
    azure = load_config(config).azure
    assert azure is not None
    return azure


READING = [["drift", "--format", "json"], ["plan"], ["status"], ["test-connection"]]


@pytest.fixture(scope="module")
def reading_probe(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[list[str], int | None]]:
    """One probe interpreter runs the READING commands one after the other against an applied sandbox, then
    imports msgraph_core: the SDK modules loaded after each step (one interpreter start and one set of imports
    instead of one per command; what none of them loads in sequence none loads on its own either)."""
    with use(FakeClock()) as clock, Sandbox(users=12, groups=3, seed=7) as sb:
        assert sb.graph is not None
        sb.graph.ondemand_clock = clock.monotonic
        config = sb.write_config(tmp_path_factory.mktemp("reads") / "astro-scim.yaml", idps=("azure",))
        applied(sb, config, "azure")
        steps: list[list[str] | str] = [[c[0], "-c", str(config), "--idp", "azure", *c[1:]] for c in READING]
        # And the Okta expression parser: an Entra command reads no Okta mapping (validate imports each IdP's
        # expression module for its own mappings only).
        return modules_loaded_each([*steps, "import msgraph_core"], (*SDKS, "connector.mapping.expr.okta"),
                                   cwd=ROOT)


@pytest.mark.xdist_group("entra-reads-probe")
def test_the_probe_sees_an_sdk(reading_probe: list[tuple[list[str], int | None]]) -> None:
    sdks, _ = reading_probe[-1]
    assert "msgraph_core" in sdks


@pytest.mark.xdist_group("entra-reads-probe")
@pytest.mark.parametrize("command", READING)
def test_reading_commands_load_no_graph_sdk(reading_probe: list[tuple[list[str], int | None]],
                                            command: list[str]) -> None:
    # The whole audit (setup audit with Entra's validateCredentials, the view, the job's log) and plan read
    # through the reader: with a static token none of msgraph, kiota, azure-identity/core or httpx is imported.
    sdks, code = reading_probe[READING.index(command)]
    assert code in (0, 1), code  # 1: findings (the sandbox's job has not provisioned everything yet)
    assert sdks == []


def test_apply_still_writes_through_the_sdk(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml", idps=("azure",))
    # Its own process: the waits (the new app's replication, the read-back) go on a virtual clock there too.
    sdks, code = _loaded(["apply", "-c", str(config), "--yes"],
                         pre="from connector.support.clock import FakeClock, use\nvirtual = use(FakeClock())\n"
                             "virtual.__enter__()")  # held: a collected context manager would restore the real clock
    assert code == 0
    assert "msgraph" in sdks


def test_the_next_page_is_asked_for_before_this_one_is_handed_on(sandbox: Sandbox, sandbox_config: Path) -> None:
    """While the consumer holds page 1, blocking its event loop (the view maps a page's members without awaiting),
    the server has already received the request for page 2: only a request written before page 1 was handed on
    can reach it meanwhile. Then the rest of the collection, each page once."""
    from hostile import request_seen

    azure = _azure(sandbox_config)
    sandbox.logs["graph"].clear()

    async def first_page() -> tuple[int, int]:
        reader = GraphReader(azure, GraphCredential(azure))
        try:
            pages = reader.iter_pages("GET /users", "/users", {"$select": ["id"], "$top": 5}, permission="users")
            with request_seen(sandbox, "graph", "skiptoken") as second_asked:
                items = await anext(pages)
                # Handed page 1, before asking for more: the request for page 2 is already under way (written:
                # the server sees it while this loop waits here; page 2's answer waits for the reader to be asked
                # for it, connector.support.chain.PageWatch).
                assert second_asked.wait(timeout=10)
            rest = [item async for page in pages for item in page]
            return len(items), len(rest)
        finally:
            await reader.aclose()

    first, rest = asyncio.run(first_page())
    assert first == 5 and first + rest == len(sandbox.seed_org.people)
    # each page asked once (counted once all are in: the log records a request when its answer is done, and page
    # 2's could still be on its way when page 1 was handed on)
    assert sandbox.logs["graph"].count("GET", "/v1.0/users") == -(-len(sandbox.seed_org.people) // 5)


def _read_users(azure: AzureConfig, top: int = 5) -> list[str]:
    async def read() -> list[str]:
        reader = GraphReader(azure, GraphCredential(azure))
        try:
            return [u["id"] async for page in reader.iter_pages("GET /users", "/users", {"$select": ["id"],
                                                                                         "$top": top},
                                                                permission="users") for u in page]
        finally:
            await reader.aclose()

    return asyncio.run(read())


def test_the_next_page_is_asked_from_the_first_bytes_of_this_one(sandbox_config: Path) -> None:
    """Graph writes @odata.nextLink before "value": with page 1 half written (up to its "value"), the reader has
    already asked for page 2. A reader that waited for the whole page would leave the server waiting (its hold
    ends after 5 s, and the test fails)."""
    from hostile import Trickling

    def answer(base: str, target: str) -> tuple[list[tuple[str, str]], list[bytes]]:
        page: dict[str, Any] = {"@odata.context": f"{base}/v1.0/$metadata#users"}
        if "skiptoken" in target:
            return [("Content-Type", "application/json")], [json.dumps({**page, "value": [{"id": "u3"}]}).encode()]
        page["@odata.nextLink"] = f"{base}/v1.0/users?$top=2&$skiptoken=2"
        body = json.dumps({**page, "value": [{"id": "u1"}, {"id": "u2"}]}).encode()
        cut = body.index(b'"value"') + len(b'"value"')
        return [("Content-Type", "application/json")], [body[:cut], body[cut:]]

    with Trickling(answer, release_on="skiptoken") as server:
        ids = _read_users(replace(_azure(sandbox_config), graph_url=f"{server.url}/v1.0"), top=2)
    assert server.released == [True]
    assert ids == ["u1", "u2", "u3"]


def test_a_page_in_whole_is_read_only_once_the_chain_has_acted_on_its_head(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over loopback a page's head and its rest come in together: `_read_head_first` hands the head to the chain
    and leaves the rest unread (the connection's buffer holding it) until the chain has acted (PageWatch.acted),
    so the next request is written before this page is decoded. Without the hold the fetch reads the buffered rest
    within a turn or two of the loop."""
    import aiohttp
    from hostile import Trickling

    import connector.support.chain as chain
    from connector.providers.entra.reads import _read_head_first
    from connector.support.chain import PageWatch

    monkeypatch.setattr(chain, "HOLD_SECONDS", 60.0)  # the hold must not end on its own while the test looks
    body = json.dumps({"@odata.nextLink": "https://graph.example/v1.0/users?$skiptoken=2",
                       "value": [{"id": f"u{i}"} for i in range(200)]}).encode()

    async def read(url: str) -> tuple[bytes, bool, bytes]:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            watch: PageWatch[bytes] = PageWatch()
            task = asyncio.ensure_future(_read_head_first(resp, watch))
            head = await watch.head
            deadline = time.monotonic() + 10
            while not resp.content.is_eof() and time.monotonic() < deadline:
                await asyncio.sleep(0)  # the rest comes into the buffer (loopback: already there, or nearly)
            assert resp.content.is_eof(), "the page's rest never came in"
            for _ in range(10):
                await asyncio.sleep(0)
            held = not task.done()
            watch.acted.set()
            return head, held, await task

    with Trickling(lambda base, target: ([("Content-Type", "application/json")], [body]), release_on="-") as srv:
        head, held, whole = asyncio.run(read(f"{srv.url}/v1.0/users"))
    assert b'"value"' in head
    assert held, "the rest of the page was read before the chain acted on its head"
    assert whole == body


def test_a_head_that_names_another_next_link_than_the_page_is_not_followed(sandbox_config: Path) -> None:
    """A page whose first bytes name one next link and whose whole JSON another (a duplicate key: the last wins):
    the early request for the first is made (the server holds the rest of the page until it comes), then
    dropped, and the page's own link is followed: no user of the decoy page is read."""
    from hostile import Trickling

    def answer(base: str, target: str) -> tuple[list[tuple[str, str]], list[bytes]]:
        json_type = [("Content-Type", "application/json")]
        context = f'"@odata.context": "{base}/v1.0/$metadata#users"'
        if "skiptoken=decoy" in target:
            return json_type, [f'{{{context}, "value": [{{"id": "DECOY"}}]}}'.encode()]
        if "skiptoken=2" in target:
            return json_type, [f'{{{context}, "value": [{{"id": "u3"}}]}}'.encode()]
        head = f'{{{context}, "@odata.nextLink": "{base}/v1.0/users?$skiptoken=decoy", "value"'.encode()
        rest = f': [{{"id": "u1"}}, {{"id": "u2"}}], "@odata.nextLink": "{base}/v1.0/users?$skiptoken=2"}}'
        return json_type, [head, rest.encode()]

    with Trickling(answer, release_on="skiptoken=decoy") as server:
        ids = _read_users(replace(_azure(sandbox_config), graph_url=f"{server.url}/v1.0"), top=2)
    assert server.released == [True]  # the decoy was asked early
    assert ids == ["u1", "u2", "u3"]


@pytest.mark.parametrize(("head", "link"), [
    (b'{"@odata.context": "c", "@odata.nextLink": "https://g/v1.0/users?$skiptoken=x", "value": [{"id"',
     "https://g/v1.0/users?$skiptoken=x"),
    (b'{"@odata.context":"c","@odata.count":7,"@odata.nextLink":"https://g/n","value":[', "https://g/n"),
    (b'{"@odata.context": "c", "value": [{"id": "1"}], "@odata.nextLink": "https://g/n"}', None),  # after value
    (b'{"@odata.context": "c", "value": []}', None),
    (b'{"@odata.context": "a \\"value\\" b", "@odata.nextLink": "https://g/n", "value": [', "https://g/n"),
    (b'{"@odata.context": "c", "x": {"value": 1}, "@odata.nextLink": "https://g/n", "value": [', None),
    (b'{"@odata.nextLink": 5, "value": [', None),
    (b'{"@odata.context": "c", "@odata.nextLink": "https://g/n"', None),  # "value" not in yet
    (b'["value"]', None),
    (b'{"@odata.context": "c" "value": [', None),
])
def test_the_early_next_link_is_read_only_from_members_before_value(head: bytes, link: str | None) -> None:
    assert early_next_link(head) == link


def test_a_reader_stopped_early_cancels_the_page_it_asked_ahead(sandbox: Sandbox, sandbox_config: Path) -> None:
    azure = _azure(sandbox_config)

    async def stop_after_one() -> list[bool]:
        reader = GraphReader(azure, GraphCredential(azure))
        try:
            pages = reader.iter_pages("GET /users", "/users", {"$select": ["id"], "$top": 5}, permission="users")
            await anext(pages)
            await pages.aclose()
            # Cancelled by the reader itself (asyncio.run would cancel what is left only when the loop ends): the
            # page asked ahead, and the request it was waiting for, end cancelled, not answered.
            ahead = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            ended = await asyncio.gather(*ahead, return_exceptions=True)
            return [isinstance(e, asyncio.CancelledError) for e in ended]
        finally:
            await reader.aclose()

    ahead = asyncio.run(stop_after_one())
    assert ahead and all(ahead)


def test_identical_reads_in_flight_share_one_request(sandbox: Sandbox, sandbox_config: Path) -> None:
    # drift's setup audit and view ask for the same service principal at the same moment.
    azure = _azure(sandbox_config)
    sandbox.logs["graph"].clear()

    async def together() -> tuple[list[Any], int, list[Any]]:
        reader = GraphReader(azure, GraphCredential(azure))
        try:
            both = await asyncio.gather(*(reader.get("GET /groups", "/groups", {"$select": ["id"]},
                                                     permission="groups") for _ in range(2)))
            shared = sandbox.logs["graph"].count("GET", "/v1.0/groups")
            # One caller gives up (cancelled): the other still gets the answer of the request they shared.
            quitter = asyncio.ensure_future(reader.get("GET /groups", "/groups", permission="groups"))
            stayer = asyncio.ensure_future(reader.get("GET /groups", "/groups", permission="groups"))
            await asyncio.sleep(0)  # both are waiting for the one request
            quitter.cancel()
            result = [await stayer, quitter.cancelled()]
            await asyncio.sleep(0)  # the answered request's clean-up callback runs
            assert reader._inflight == {}  # nothing answered stays held (its bytes would live to the end)
            return both, shared, result
        finally:
            await reader.aclose()

    (first, second), shared, (answer, quit_) = asyncio.run(together())
    assert shared == 1 and sandbox.logs["graph"].count("GET", "/v1.0/groups") == 2
    assert first == second and first is not second  # each caller decoded its own copy
    assert quit_ and len(answer["value"]) == len(first["value"])


PEOPLE_IN_PAGES = {"$select": ["id"], "$top": 5}


def test_a_chain_page_another_caller_shares_is_never_held_for_the_chain(sandbox: Sandbox,
                                                                         sandbox_config: Path) -> None:
    """A chain's page holds its rest until the chain has asked for the next one (chain.PageWatch); a caller that
    shares the request (GraphReader._shared_get) gets the answer without waiting for that chain, even when the
    chain's own consumer is that caller: it holds page 1 and reads the same collection again (its page 2 joins the
    outer chain's page 2, asked ahead), which waited for itself before."""
    azure = _azure(sandbox_config)
    everyone = len(sandbox.seed_org.people)

    async def nested() -> tuple[int, int]:
        reader = GraphReader(azure, GraphCredential(azure))
        try:
            pages = reader.iter_pages("GET /users", "/users", PEOPLE_IN_PAGES, permission="users")
            first = await anext(pages)
            again = await asyncio.wait_for(
                reader.get_all("GET /users", "/users", PEOPLE_IN_PAGES, permission="users"), 10)
            rest = [item async for page in pages for item in page]
            return len(again), len(first) + len(rest)
        finally:
            await reader.aclose()

    assert asyncio.run(nested()) == (everyone, everyone)


def test_a_caller_sharing_a_chains_request_is_answered_when_the_chain_is_cancelled(
        sandbox: Sandbox, sandbox_config: Path) -> None:
    """The chain's first request is joined by another caller, then the chain is cancelled while it waits for the
    request to be written (the page never reaches the chain): the other caller gets its answer. What releases it is
    the join itself (_Flight.released); the chain's own release of a page it was asking for is test_chain's."""
    azure = _azure(sandbox_config)

    async def cancelled_chain() -> int:
        reader = GraphReader(azure, GraphCredential(azure))
        url = reader.url("/users", PEOPLE_IN_PAGES)
        try:
            chain = asyncio.ensure_future(reader.get_all("GET /users", "/users", PEOPLE_IN_PAGES,
                                                         permission="users"))
            for _ in range(1000):  # a few turns of the loop: the chain's request is made (not yet written)
                if url in reader._inflight or chain.done():
                    break
                await asyncio.sleep(0)
            assert url in reader._inflight, chain
            other = asyncio.ensure_future(reader.get_page("GET /users", "/users", PEOPLE_IN_PAGES,
                                                          permission="users"))
            for _ in range(1000):  # the other caller joins it
                if reader._inflight[url].waiters == 2 or other.done():
                    break
                await asyncio.sleep(0)
            assert reader._inflight[url].waiters == 2, other
            chain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chain
            return len(await asyncio.wait_for(other, 10))
        finally:
            await reader.aclose()

    assert asyncio.run(cancelled_chain()) == 5


def test_a_request_every_caller_left_is_not_joined_by_the_next_one(sandbox: Sandbox, sandbox_config: Path) -> None:
    """The last waiter gone, the shared request is cancelled: a caller arriving in that loop turn asks again
    instead of joining a dying request (it used to get a CancelledError, outside every error handler)."""
    azure = _azure(sandbox_config)

    async def go() -> Any:
        reader = GraphReader(azure, GraphCredential(azure))
        try:
            left = asyncio.ensure_future(reader.get("GET /groups", "/groups", permission="groups"))
            await asyncio.sleep(0)
            left.cancel()
            await asyncio.sleep(0)  # the waiter has gone; its request's cancellation is not yet done
            return await reader.get("GET /groups", "/groups", permission="groups")
        finally:
            await reader.aclose()

    assert asyncio.run(go())["value"]


def test_query_options_are_encoded_as_kiota_writes_them() -> None:
    assert query_value(["id", "displayName"]) == "id,displayName"
    assert query_value("displayName eq 'A&B'") == "displayName%20eq%20%27A%26B%27"
    assert query_value(999) == "999"
    assert segment("a/b?c") == "a%2Fb%3Fc"


class _Credential:
    """An azure-core TokenCredential standing in for Entra's token endpoint: counts the tokens it hands out."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.calls.append(scopes)
        return AccessToken(f"token-{len(self.calls)}", int(time.time() + self.lifetime))


def test_a_credentials_token_is_kept_until_it_nears_expiry() -> None:
    azure = AzureConfig(tenant_id="11111111-2222-3333-4444-555555555555", credential=AzureCredential(
        "secret", client_id="99999999-8888-7777-6666-555555555555", client_secret=Secret.from_value("s3cr3t-value")))
    scope = "https://graph.microsoft.com/.default"

    async def tokens(credential: GraphCredential) -> list[str]:
        return [await credential.bearer(scope) for _ in range(3)]

    lasting, expiring = _Credential(3600), _Credential(GraphCredential.REFRESH_MARGIN_S - 1)
    for fake, expected in ((lasting, ["token-1"] * 3), (expiring, ["token-1", "token-2", "token-3"])):
        credential = GraphCredential(azure)
        credential._azure = fake  # what build_credential makes for a secret/certificate/workload credential
        assert asyncio.run(tokens(credential)) == expected
        assert set(fake.calls) == {(scope,)}


def test_a_static_token_needs_no_azure_library(sandbox_config: Path) -> None:
    azure = _azure(sandbox_config)
    assert azure.credential.kind == "token" and azure.credential.token is not None
    assert asyncio.run(GraphCredential(azure).bearer("x")) == azure.credential.token.reveal()


def test_the_scope_is_the_graph_origin_without_its_port(sandbox_config: Path) -> None:
    azure = _azure(sandbox_config)
    reader = GraphReader(azure, GraphCredential(azure))
    assert reader.scope == "http://127.0.0.1/.default"


class _Refused:
    """An azure-identity credential whose token request Entra refuses (a wrong client secret)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.exceptions import ClientAuthenticationError

        raise ClientAuthenticationError(message="ClientSecretCredential.get_token failed: AADSTS7000215: Invalid "
                                                "client secret provided. Ensure the secret being sent is correct.")


def test_a_refused_token_request_is_one_line_with_its_hint_and_no_request(sandbox: Sandbox,
                                                                          sandbox_config: Path) -> None:
    from connector.errors import AuthError

    azure = _azure(sandbox_config)
    secret = AzureConfig(tenant_id=azure.tenant_id, graph_url=azure.graph_url, credential=AzureCredential(
        "secret", client_id="99999999-8888-7777-6666-555555555555", client_secret=Secret.from_value("s3cr3t-value")))
    credential = GraphCredential(secret)
    credential._azure = _Refused()
    sandbox.logs["graph"].clear()

    async def read() -> None:
        reader = GraphReader(secret, credential)
        try:
            await reader.get("GET /users", "/users", permission="users")
        finally:
            await reader.aclose()

    with pytest.raises(AuthError) as info:
        asyncio.run(read())
    assert info.value.code == "AADSTS7000215" and "Value, not its Secret ID" in str(info.value.hint)
    assert sandbox.logs["graph"].count() == 0  # not retried, nothing sent without a token


def test_the_proxy_comes_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # HTTPS_PROXY and NO_PROXY, as httpx honoured them under the SDK client; the proxy's credentials go apart.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    azure = AzureConfig(tenant_id="t", credential=AzureCredential("token", token=Secret.from_value("a-token-value")))
    reader = GraphReader(azure, GraphCredential(azure))
    assert reader.proxy() == AiohttpProxy()
    monkeypatch.setenv("HTTPS_PROXY", "http://ops:pa55word@proxy.example:3128")
    proxy = reader.proxy()
    assert proxy.url == "http://proxy.example:3128"
    assert proxy.proxy_headers == {"Proxy-Authorization": "Basic b3BzOnBhNTV3b3Jk"}  # on the tunnel's CONNECT
    monkeypatch.setenv("NO_PROXY", "graph.microsoft.com")
    assert reader.proxy() == AiohttpProxy()
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("ALL_PROXY", "http://all.example:8080")  # httpx honoured it too
    assert reader.proxy() == AiohttpProxy("http://all.example:8080")
