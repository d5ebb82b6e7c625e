"""The one Astro client (connector.astro.client, .platform, .errors) against the sandbox's Astro SCIM server over
loopback, and the layout rule that makes it the only one: nothing else opens HTTP sessions to Astro."""

from __future__ import annotations

import ast
import asyncio
import io
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from connector.astro import errors as astro_errors
from connector.astro.client import FILTER_CHUNK, AstroScimClient, run_sync
from connector.astro.platform import AstroPlatform
from connector.config.load import AstroConfig
from connector.errors import EXIT_REMOTE, AuthError, RemoteError
from connector.providers.okta.astro_check import AstroReader
from connector.sandbox.astro.scim import AstroScim
from connector.sandbox.faults import FaultConfig, FaultMiddleware, FaultRule, RequestLog
from connector.sandbox.server import ServedApp
from connector.support.http import RetryPolicy
from connector.support.secret import Secret

ORG = "clorgclient0000000000000001"
TOKEN = "astro-client-test-token-0123456789"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CONNECTOR = Path(__file__).resolve().parents[1] / "connector"


@dataclass
class Recorder:
    """Keeps the JSON body of every write, so a test sees what went on the wire; `refuse_or` plays a server that
    only takes the `eq` filters Okta and Entra send; `dangling_member` plays an Astro whose Teams list a member id
    that is no user (the sandbox refuses to store one, a real server may still answer with one after a race)."""

    app: Any
    bodies: list[tuple[str, str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse_or: bool = False
    dangling_member: str | None = None
    page_cap: int | None = None  # a server that sends at most this many Users a page, whatever `count` asked

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.refuse_or and " or " in dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("filter", ""):
            error = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
                     "scimType": "invalidFilter", "detail": "only eq filters are supported"}
            start_response("400 Bad Request", [("Content-Type", "application/scim+json")])
            return [json.dumps(error).encode()]
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(raw)
            with self.lock:
                self.bodies.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], json.loads(raw) if raw else None))
        if self.dangling_member and environ["REQUEST_METHOD"] == "GET" and "/Groups" in environ["PATH_INFO"]:
            return self._rewritten(environ, start_response, self._add_dangling_member)
        if self.page_cap and environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"].endswith("/Users"):
            return self._rewritten(environ, start_response, self._cap_page)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result

    def _add_dangling_member(self, body: dict[str, Any]) -> None:
        for group in body.get("Resources", [body] if "id" in body else []):
            group.setdefault("members", []).append({"value": self.dangling_member})

    def _cap_page(self, body: dict[str, Any]) -> None:
        body["Resources"] = body.get("Resources", [])[:self.page_cap]
        body["itemsPerPage"] = len(body["Resources"])

    def _rewritten(self, environ: dict[str, Any], start_response: Callable[..., Any],
                   change: Callable[[dict[str, Any]], None]) -> list[bytes]:
        answer: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            answer.update(status=status, headers=headers)
            return lambda _: None

        body = json.loads(b"".join(self.app(environ, capture)) or b"{}")
        change(body)
        raw = json.dumps(body).encode()
        headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
        start_response(answer["status"], [*headers, ("Content-Length", str(len(raw)))])
        return [raw]


@dataclass
class Astro:
    scim: AstroScim
    recorder: Recorder
    faults: FaultMiddleware
    log: RequestLog
    url: str

    def config(self, token: str = TOKEN) -> AstroConfig:
        return AstroConfig(scim_url=self.url, token=Secret.from_value(token))

    def user(self, name: str) -> str:
        return str(self.scim.add_orphan(ORG, name, "Given", "Family")["id"])

    def lists(self, resource: str) -> list[dict[str, str]]:
        return [dict(parse_qsl(e.query)) for e in self.log.entries
                if e.method == "GET" and e.path.endswith(f"/{resource}")]


@pytest.fixture
def astro() -> Iterator[Astro]:
    scim = AstroScim()
    scim.add_org(ORG, TOKEN)
    recorder = Recorder(scim.app)
    log = RequestLog()
    faults = FaultMiddleware(recorder, FaultConfig(), throttle=scim.throttle_response,
                             server_error=scim.server_error_response, log=log)
    served = ServedApp("astro-client", faults).start()
    scim.base_url = served.url
    try:
        yield Astro(scim, recorder, faults, log, scim.scim_url(ORG))
    finally:
        served.stop()


def _closed_port() -> int:
    with socket.socket() as s:  # bind then close: nothing listens there afterwards
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _team(astro: Astro, name: str, member_ids: list[str]) -> str:
    async def make(scim: AstroScimClient) -> str:
        from scim2_models import Group

        created = await scim.engine.create(Group(display_name=name, members=[{"value": i} for i in member_ids]))
        return str(created.id)

    return run_sync(astro.config(), make)


# -- reads ---------------------------------------------------------------------------------------------------

def test_users_are_found_by_user_name_in_or_filters_case_insensitively(astro: Astro) -> None:
    names = [f"u{i:03d}@acme.example" for i in range(FILTER_CHUNK + 7)]
    for n in names:
        astro.user(n)
    asked = [n.upper() for n in names] + ["nobody@acme.example"]
    found = run_sync(astro.config(), lambda scim: scim.find_users(asked))
    assert set(found) == {n.casefold() for n in names}  # the unknown name is simply absent
    searches = astro.lists("Users")
    assert len(searches) == 2 and all(" or " in s["filter"] for s in searches)  # 58 names: two requests
    assert run_sync(astro.config(), lambda scim: scim.find_user("U000@ACME.EXAMPLE"))["id"] == found[names[0]]["id"]


def test_team_members_are_one_groups_read_and_one_users_filter_per_chunk(astro: Astro) -> None:
    ids = [astro.user(f"m{i:03d}@acme.example") for i in range(FILTER_CHUNK + 10)]
    _team(astro, "Data Engineering", ids)
    astro.recorder.dangling_member = "cl-dangling-member-id"
    astro.log.clear()

    async def go() -> tuple[set[str] | None, set[str] | None]:
        async with AstroReader(astro.config(), policy=FAST) as reader:
            return await reader.team_members("Data Engineering"), await reader.team_members("No Such Team")

    got, missing = asyncio.run(go())
    assert got == {f"m{i:03d}@acme.example" for i in range(FILTER_CHUNK + 10)}  # the dangling id is left out
    assert missing is None
    # Was 1 + 61 GETs (one per member); now 1 Groups read + 2 Users filters, and 1 more for the missing Team.
    assert len(astro.lists("Groups")) == 2 and len(astro.lists("Users")) == 2
    assert astro.log.count("GET") == 4


def test_a_server_refusing_or_filters_is_asked_one_user_at_a_time(astro: Astro) -> None:
    ids = [astro.user(f"m{i}@acme.example") for i in range(3)]
    _team(astro, "Ops", ids)
    astro.recorder.dangling_member = "cl-dangling-member-id"
    astro.recorder.refuse_or = True
    astro.log.clear()

    async def go() -> tuple[set[str] | None, dict[str, dict[str, Any]], list[str]]:
        async with AstroReader(astro.config(), policy=FAST) as reader:
            members = await reader.team_members("Ops")
            users = await reader.find_users(["M0@acme.example", "m1@acme.example", "nobody@acme.example"])
            return members, users, reader.deviations

    members, users, deviations = asyncio.run(go())
    assert members == {f"m{i}@acme.example" for i in range(3)} and set(users) == {"m0@acme.example", "m1@acme.example"}
    assert deviations == ["/Users refuses 'or' filters (HTTP 400); users are read one at a time"]
    # One refused `or` filter, then GET by id per member (the dangling one is a 404) and userName eq per name.
    assert astro.log.count("GET", prefix=f"/scim/v2/{ORG}/Users/") == 4
    assert [s["filter"].count(" or ") for s in astro.lists("Users")] == [3, 0, 0, 0]


def test_an_empty_team_costs_one_request(astro: Astro) -> None:
    _team(astro, "Empty", [])
    astro.log.clear()

    async def go() -> set[str] | None:
        async with AstroReader(astro.config()) as reader:
            return await reader.team_members("Empty")

    assert asyncio.run(go()) == set()
    assert astro.log.count("GET") == 1


# -- writes: scim2-models PatchOp --------------------------------------------------------------------------------

def test_members_are_added_and_removed_with_one_patch_op(astro: Astro) -> None:
    ada, bob, cy = (astro.user(n) for n in ("ada@acme.example", "bob@acme.example", "cy@acme.example"))
    group_id = _team(astro, "Analytics", [bob, cy])
    run_sync(astro.config(), lambda scim: scim.set_members(group_id, add=[ada], remove=[cy]))
    team = astro.scim.find_group(ORG, "Analytics")
    assert team is not None and {m["value"] for m in team["members"]} == {ada, bob}
    method, path, body = astro.recorder.bodies[-1]
    assert (method, path.rsplit("/", 2)[-2:]) == ("PATCH", ["Groups", group_id])
    assert body["schemas"] == [PATCH_OP]
    assert body["Operations"] == [{"op": "add", "path": "members", "value": [{"value": ada}]},
                                  {"op": "remove", "path": f'members[value eq "{cy}"]'}]


def test_nothing_to_change_sends_nothing(astro: Astro) -> None:
    group_id = _team(astro, "Quiet", [])
    writes = len(astro.recorder.bodies)
    run_sync(astro.config(), lambda scim: scim.set_members(group_id))
    assert len(astro.recorder.bodies) == writes


def test_deactivate_then_delete_and_a_second_delete_is_already_gone(astro: Astro) -> None:
    eve = astro.user("eve@acme.example")

    async def go(scim: AstroScimClient) -> tuple[bool, bool]:
        await scim.deactivate_user(eve)
        user = astro.scim.find_user(ORG, "eve@acme.example")
        assert user is not None and user["active"] is False
        return await scim.delete_user(eve), await scim.delete_user(eve)

    assert run_sync(astro.config(), go) == (True, False)
    assert astro.recorder.bodies[0][2] == {"schemas": [PATCH_OP],
                                           "Operations": [{"op": "replace", "path": "active", "value": False}]}
    assert astro.scim.find_user(ORG, "eve@acme.example") is None


# -- the one error mapping ----------------------------------------------------------------------------------------

def test_a_refused_token_is_an_auth_error_naming_the_token_source_not_its_value(astro: Astro) -> None:
    eve = astro.user("eve@acme.example")
    with pytest.raises(AuthError) as caught:
        run_sync(astro.config("wrong-token-for-the-client"), lambda scim: scim.delete_user(eve), policy=FAST)
    err = caught.value
    assert err.status == 401 and err.exit_code == EXIT_REMOTE
    assert astro_errors.REFUSED in err.message and err.endpoint == f"DELETE {astro.url}/Users/{eve}"
    assert err.hint and "Organization API token" in err.hint and "SCIM integration" in err.hint
    assert "wrong-token-for-the-client" not in f"{err} {err.hint}"
    assert astro.scim.find_user(ORG, "eve@acme.example") is not None


def test_server_errors_are_retried_then_named_with_the_attempts(astro: Astro) -> None:
    astro.faults.config = FaultConfig(rate_5xx=1.0)
    with pytest.raises(RemoteError) as caught:
        run_sync(astro.config(), lambda scim: scim.find_user("ada@acme.example"), policy=FAST)
    err = caught.value
    assert err.status in (500, 502, 503, 504) and "after 3 attempts" in err.message
    assert err.endpoint == f"{astro.url}/Users" and astro.log.count("GET") == 3


def test_an_unreachable_scim_url_names_the_config_key() -> None:
    cfg = AstroConfig(scim_url=f"http://127.0.0.1:{_closed_port()}/scim/v2/x", token=Secret.from_value(TOKEN))
    with pytest.raises(RemoteError) as caught:
        run_sync(cfg, lambda scim: scim.service_provider_config(), policy=RetryPolicy(attempts=1))
    err = caught.value
    assert err.status is None and "could not reach" in err.message
    assert err.hint and err.hint.startswith("check astro.scim_url")


def test_the_platform_api_shares_the_mapping() -> None:
    @dataclass
    class Org:
        key: tuple[str, str]
        base: str
        astro: AstroConfig

    url = f"http://127.0.0.1:{_closed_port()}"
    org = Org((url, "org"), url + "/organizations/org", AstroConfig(scim_url="", token=Secret.from_value(TOKEN)))

    async def go() -> None:
        async with AstroPlatform([org], RetryPolicy(attempts=1)) as api:
            await api.get(org, "/teams")

    with pytest.raises(RemoteError) as caught:
        asyncio.run(go())
    assert caught.value.service == astro_errors.PLATFORM and caught.value.endpoint == org.base + "/teams"
    assert caught.value.hint and caught.value.hint.startswith("check astro.api_url")
    refused = astro_errors.http_error(astro_errors.PLATFORM, "POST x", 403, {"Retry-After": "1"},
                                      b'{"message": "forbidden", "statusCode": 403}', auth_hint="h")
    assert isinstance(refused, AuthError) and refused.message == f"{astro_errors.REFUSED} (forbidden)"
    html = astro_errors.http_error(astro_errors.SCIM, "x", 502, None, b"<html><body>Bad gateway</body></html>",
                                   auth_hint="h")
    assert html.message.startswith("<html>") and html.status == 502


# -- the layout rule: one module opens HTTP sessions to Astro SCIM ----------------------------------------------

SESSION_CONSTRUCTORS = {("aiohttp", "ClientSession"), ("httpx", "Client"), ("httpx", "AsyncClient"),
                        ("httpx2", "Client"), ("httpx2", "AsyncClient")}


def _constructions(tree: ast.AST) -> set[str]:
    """`aiohttp.ClientSession(...)`, `httpx.AsyncClient(...)`, ... called in a module (attribute form)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in SESSION_CONSTRUCTORS:
            out.add(f"{node.func.value.id}.{node.func.attr}")
    return out


def test_only_the_astro_package_talks_to_astro() -> None:
    opened: dict[str, set[str]] = {}
    engine_users: set[str] = set()
    for path in sorted(CONNECTOR.rglob("*.py")):
        rel = path.relative_to(CONNECTOR).as_posix()
        if rel.startswith("sandbox/"):
            continue  # the emulators are servers, not clients of Astro
        source = path.read_text()
        tree = ast.parse(source)
        if found := _constructions(tree):
            opened[rel] = found
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "AiohttpSCIMClient" and isinstance(node.ctx, ast.Load):
                engine_users.add(rel)
        assert PATCH_OP not in source or rel.startswith("astro/"), f"{rel} writes PatchOp JSON by hand"
    astro = {m: s for m, s in opened.items() if m.startswith("astro/")}
    assert astro == {"astro/engine.py": {"aiohttp.ClientSession"}, "astro/platform.py": {"httpx.AsyncClient"}}
    # Every other HTTP client is an IdP's (design rule: only providers/ and astro/ talk HTTP).
    assert all(m.startswith("providers/") for m in opened if m not in astro), opened
    # The SCIM engine is built by the client alone: every Astro SCIM request has its retries and error mapping.
    assert engine_users <= {"astro/client.py", "astro/engine.py", "astro/reader.py"}, engine_users
    assert "AiohttpSCIMClient(" not in (CONNECTOR / "astro" / "reader.py").read_text()


def test_users_a_server_sends_fewer_of_a_page_than_asked_are_read_from_its_next_pages(astro: Astro) -> None:
    """`find_users` asks for up to FILTER_CHUNK users a query; a server that honours a smaller count (RFC 7644
    3.4.2.4 lets it) left the rest unread, and callers took them for users Astro does not have."""
    names = [f"user{i:03d}@acme.example" for i in range(FILTER_CHUNK)]
    for name in names:
        astro.user(name)
    astro.recorder.page_cap = 20
    found = run_sync(astro.config(), lambda scim: scim.find_users(names))
    assert sorted(found) == names
    starts = sorted(int(q.get("startIndex", 1)) for q in astro.lists("Users"))
    assert starts == [1, 21, 41]


def test_the_platform_api_reads_every_page_a_server_caps_and_does_not_retry_a_non_object() -> None:
    """A server that sends 50 Teams a page asked for 100: list_all stopped at the first short page (50 of 150,
    the rest taken for Teams Astro does not have). An answer that is JSON but no object was retried six times
    as a network failure, its error without a status."""
    from werkzeug.wrappers import Request, Response

    seen: list[str] = []

    @Request.application
    def app(request: Request) -> Response:
        seen.append(request.path)
        if request.path.endswith("/odd"):
            return Response("[1, 2]", content_type="application/json")
        offset, limit = int(request.args.get("offset", 0)), min(int(request.args.get("limit", 100)), 50)
        items = [{"id": f"t{i}", "name": f"T{i}"} for i in range(offset, min(offset + limit, 150))]
        return Response(json.dumps({"teams": items, "totalCount": 150}), content_type="application/json")

    @dataclass
    class Org:
        key: tuple[str, str]
        base: str
        astro: AstroConfig

    served = ServedApp("platform", app).start()
    try:
        org = Org((served.url, "org"), served.url + "/organizations/org",
                  AstroConfig(scim_url="", token=Secret.from_value(TOKEN)))

        async def go() -> tuple[list[dict[str, Any]], RemoteError]:
            async with AstroPlatform([org], RetryPolicy(attempts=6)) as api:
                teams = await api.list_all(org, "/teams", "teams")
                with pytest.raises(RemoteError) as caught:
                    await api.get(org, "/odd")
                return teams, caught.value

        teams, err = asyncio.run(go())
    finally:
        served.stop()
    assert [t["id"] for t in teams] == [f"t{i}" for i in range(150)]
    assert (err.status, err.code) == (200, "invalid_body") and seen.count("/organizations/org/odd") == 1


def test_a_delete_whose_answer_was_lost_is_this_runs_delete_not_already_gone(astro: Astro) -> None:
    """The DELETE reached Astro and its answer was lost; the retry met 404, and delete_user said "already gone"
    (the remedy's outcome and the audit trail then denied this run's own delete)."""
    uid = astro.user("gone@acme.example")
    astro.faults.fail(FaultRule("DELETE", "/Users/", status=0, after=True))
    assert run_sync(astro.config(), lambda scim: scim.delete_user(uid), policy=FAST) is True
    assert run_sync(astro.config(), lambda scim: scim.delete_user(uid), policy=FAST) is False  # now it was gone


def test_an_error_says_how_many_requests_were_made_not_the_policys_most() -> None:
    """A 503 whose Retry-After is past the retry budget is given up after one request; the message said "after 3
    attempts" (the policy's most)."""
    from werkzeug.wrappers import Request, Response

    seen: list[str] = []

    @Request.application
    def app(request: Request) -> Response:
        seen.append(request.path)
        return Response('{"detail": "maintenance"}', status=503, headers={"Retry-After": "600"},
                        content_type="application/scim+json")

    served = ServedApp("astro-503", app).start()
    try:
        config = AstroConfig(scim_url=served.url + "/scim/v2", token=Secret.from_value(TOKEN))
        with pytest.raises(RemoteError) as caught:
            run_sync(config, lambda scim: scim.service_provider_config(), policy=FAST)
    finally:
        served.stop()
    assert len(seen) == 1 and "attempts" not in caught.value.message, caught.value.message
