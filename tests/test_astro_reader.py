"""The Astro SCIM reader against the sandbox's AstroScim (real scim2-server over loopback HTTP).

Deviations are produced by small WSGI wrappers around the real server, one per vendor behaviour, so each test
shows the reader's answer to exactly one thing going wrong.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from connector.astro.conformance import check_conformance
from connector.astro.reader import read_astro
from connector.config.load import AstroConfig
from connector.errors import EXIT_REMOTE, AuthError, RemoteError
from connector.sandbox.astro.scim import AstroScim
from connector.sandbox.faults import FaultConfig, FaultMiddleware, RequestLog
from connector.sandbox.server import ServedApp
from connector.support.http import RetryPolicy
from connector.support.secret import Secret

ORG = "clorg0000000000000000000001"
TOKEN = "astro-test-token-0123456789"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)

Transform = Callable[[dict[str, Any], str, list[tuple[str, str]], bytes], tuple[str, list[tuple[str, str]], bytes]]


class Wrapper:
    """Buffers the real app's answer so a test can rewrite the request (`before`) or the response (`after`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.before: Callable[[dict[str, Any]], None] | None = None
        self.after: Transform | None = None
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()
        # The gate: the requests `gate` picks are held, unanswered, until `gate_size` of them are in flight at
        # once; then it stays open. So "sent side by side" is seen for certain, with no time involved.
        self.gate: Callable[[dict[str, Any]], bool] | None = None
        self.gate_size = 0
        self.most_at_gate = 0
        self._at_gate = 0
        self._gate_open = False
        self._gate_changed = threading.Condition()

    def _wait_at_gate(self) -> None:
        with self._gate_changed:
            self._at_gate += 1
            self.most_at_gate = max(self.most_at_gate, self._at_gate)
            self._gate_changed.notify_all()
            # Bounded only so that a client that never has gate_size requests in flight fails the test (with
            # most_at_gate short of it) instead of hanging it.
            self._gate_changed.wait_for(lambda: self._gate_open or self._at_gate >= self.gate_size, timeout=10)
            self._gate_open = True
            self._gate_changed.notify_all()
            self._at_gate -= 1

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            if self.gate is not None and self.gate(environ):
                self._wait_at_gate()
            if self.before:
                self.before(environ)
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured["status"], captured["headers"] = status, headers
                return lambda _data: None

            body = b"".join(self.app(environ, capture))
            status, headers = captured["status"], captured["headers"]
            if self.after:
                status, headers, body = self.after(environ, status, headers, body)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
            start_response(status, headers)
            return [body]
        finally:
            with self._lock:
                self.in_flight -= 1


@dataclass
class Astro:
    scim: AstroScim
    wrapper: Wrapper
    faults: FaultMiddleware
    log: RequestLog
    url: str

    @property
    def config(self) -> AstroConfig:
        return AstroConfig(scim_url=self.url, token=Secret.from_value(TOKEN))

    def add_users(self, n: int, prefix: str = "user") -> list[str]:
        return [self.scim.add_orphan(ORG, f"{prefix}{i:04d}@acme.example", "Given", f"Family{i}")["id"]
                for i in range(n)]

    def add_team(self, name: str, member_ids: list[str]) -> str:
        r = httpx.post(f"{self.url}/Groups", headers={"Authorization": f"Bearer {TOKEN}"}, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
            "members": [{"value": i} for i in member_ids],
        })
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def list_requests(self, resource: str) -> list[dict[str, str]]:
        return [dict(parse_qsl(e.query)) for e in self.log.entries if e.path.endswith(f"/{resource}")]


@pytest.fixture
def astro() -> Iterator[Astro]:
    scim = AstroScim()
    scim.add_org(ORG, TOKEN)
    wrapper = Wrapper(scim.app)
    log = RequestLog()
    faults = FaultMiddleware(wrapper, FaultConfig(), throttle=scim.throttle_response,
                             server_error=scim.server_error_response, log=log)
    served = ServedApp("astro", faults).start()
    scim.base_url = served.url
    try:
        yield Astro(scim, wrapper, faults, log, scim.scim_url(ORG))
    finally:
        served.stop()


def test_reads_every_user_and_team_with_members(astro: Astro) -> None:
    ids = astro.add_users(23)
    astro.scim.edit_user(ORG, "user0003@acme.example", "active", False)
    astro.add_team("Data Engineering", ids[:5])
    astro.add_team("Analytics", [])
    view = read_astro(astro.config, page_size=5)
    assert sorted(u.user_name for u in view.users) == sorted(f"user{i:04d}@acme.example" for i in range(23))
    assert {u.user_name for u in view.users if not u.active} == {"user0003@acme.example"}
    teams = {t.name: set(t.members) for t in view.teams}
    assert teams == {"Data Engineering": set(ids[:5]), "Analytics": set()}
    first = next(u for u in view.users if u.user_name == "user0000@acme.example")
    assert first.data["name"]["familyName"] == "Family0"
    assert view.deviations == []
    # Minimal requests: 3 discovery + ceil(23/5) user pages + 1 group page, counts never above the page size.
    pages = astro.list_requests("Users")
    assert len(pages) == 5 and {p["count"] for p in pages} == {"5"}
    assert sorted(int(p["startIndex"]) for p in pages) == [1, 6, 11, 16, 21]
    assert astro.log.count("GET") == 2 + 5 + 1


def test_page_size_comes_from_max_results(astro: Astro, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the server announces in ServiceProviderConfig. The provider is shared by every sandbox in the
    # process, so the change must be undone after the test (monkeypatch does).
    monkeypatch.setattr(astro.scim.provider.config.filter, "max_results", 4)
    astro.add_users(9)
    view = read_astro(astro.config)
    assert len(view.users) == 9
    # The first page goes out with discovery, asking the most the reader ever asks (1000): the server caps it
    # at 4. The rest ask for what the server announced.
    assert sorted((int(p["startIndex"]), p["count"]) for p in astro.list_requests("Users")) == [
        (1, "1000"), (5, "4"), (9, "4")
    ]


def test_page_size_comes_from_the_config_when_smaller(astro: Astro) -> None:
    astro.add_users(7)
    config = astro.config
    config.page_size = 3
    view = read_astro(config)
    assert len(view.users) == 7
    assert sorted((int(p["startIndex"]), p["count"]) for p in astro.list_requests("Users")) == [
        (1, "3"), (4, "3"), (7, "3")
    ]


def test_endpoints_announced_in_resource_types_are_used(astro: Astro) -> None:
    # A server whose users live at /Accounts: the first pages, sent to /Users before ResourceTypes was read,
    # are dropped and the users read again from the endpoint it announces.
    astro.add_users(5)

    def route(environ: dict[str, Any]) -> None:
        path = environ["PATH_INFO"]
        if path.endswith("/Users"):
            environ["PATH_INFO"] = path + "-not-here"
        elif path.endswith("/Accounts"):
            environ["PATH_INFO"] = path.removesuffix("/Accounts") + "/Users"

    def announce(data: dict[str, Any]) -> None:
        for resource_type in data["Resources"]:
            if resource_type["name"] == "User":
                resource_type["endpoint"] = "/Accounts"

    astro.wrapper.before = route
    astro.wrapper.after = _rewrite_json("/ResourceTypes", announce)
    view = read_astro(astro.config, page_size=2)
    assert sorted(u.user_name for u in view.users) == [f"user{i:04d}@acme.example" for i in range(5)]
    assert view.deviations == []
    accounts = [dict(parse_qsl(e.query)) for e in astro.log.entries if e.path.endswith("/Accounts")]
    assert sorted(int(p["startIndex"]) for p in accounts) == [1, 3, 5]


def test_remaining_pages_are_fetched_concurrently_within_the_bound(astro: Astro) -> None:
    astro.add_users(40)
    read_astro(astro.config)  # warm up: imports and model building are not what this test measures
    astro.wrapper.peak = 0
    # The remaining user pages (not the first: it says how many there are) are answered only once four of them
    # are in flight together: a reader that asked for them one after the other would never get there.
    astro.wrapper.gate = lambda environ: (environ["PATH_INFO"].endswith("/Users")
                                          and dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("startIndex") != "1")
    astro.wrapper.gate_size = 4
    view = read_astro(astro.config, page_size=4, concurrency=4)
    assert len(view.users) == 40
    assert astro.wrapper.most_at_gate == 4  # 4 of the 9 remaining user pages in flight at once...
    assert astro.wrapper.peak == 4  # ...and never more than allowed
    # What that buys in wall time (1 + 1 + 3 rounds instead of 14 requests in a row) is measured in
    # benchmarks/timing.py, not asserted here.


def test_a_server_that_returns_shorter_pages_than_asked_is_read_completely(astro: Astro) -> None:
    astro.add_users(17)

    def cap_count(environ: dict[str, Any]) -> None:
        params = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        if "count" in params:
            params["count"] = str(min(int(params["count"]), 3))
            environ["QUERY_STRING"] = urlencode(params)

    astro.wrapper.before = cap_count
    view = read_astro(astro.config, page_size=10)
    assert len({u.id for u in view.users}) == 17


def _rewrite_json(path_suffix: str, change: Callable[[dict[str, Any]], None]) -> Transform:
    def after(environ: dict[str, Any], status: str, headers: list[tuple[str, str]], body: bytes
              ) -> tuple[str, list[tuple[str, str]], bytes]:
        if environ["PATH_INFO"].endswith(path_suffix) and body:
            data = json.loads(body)
            change(data)
            body = json.dumps(data).encode()
        return status, headers, body
    return after


def test_json_under_a_wrong_media_type_is_tolerated_and_reported(astro: Astro) -> None:
    astro.add_users(3)

    def plain(environ: dict[str, Any], status: str, headers: list[tuple[str, str]], body: bytes
              ) -> tuple[str, list[tuple[str, str]], bytes]:
        return status, [(k, "text/plain" if k.lower() == "content-type" else v) for k, v in headers], body

    astro.wrapper.after = plain
    view = read_astro(astro.config)
    assert len(view.users) == 3
    assert view.deviations == ["responses are JSON served as 'text/plain', not application/scim+json"]


def test_resources_that_do_not_validate_are_read_as_json_and_reported_by_the_conformance_check(
        astro: Astro) -> None:
    """The audit reads plain JSON (a string `active` is read as the IdPs' engines send it); whether the answers
    validate against RFC 7643 is test-connection's conformance check, which names the first offending path."""
    astro.add_users(3)
    assert check_conformance(astro.config) == []

    def odd_active(data: dict[str, Any]) -> None:
        for r in data.get("Resources", []):
            r["active"] = "enabled"

    astro.wrapper.after = _rewrite_json("/Users", odd_active)
    view = read_astro(astro.config)
    assert len(view.users) == 3 and all(u.active for u in view.users) and view.deviations == []
    (deviation,) = check_conformance(astro.config)
    assert deviation.startswith("/Users resources do not validate against RFC 7643 (Resources.0.active")


def test_the_conformance_check_validates_discovery_and_teams_too(astro: Astro) -> None:
    ids = astro.add_users(2)
    astro.add_team("Data", ids)

    def odd(data: dict[str, Any]) -> None:
        if "Resources" in data:
            for r in data["Resources"]:
                if "members" in r:
                    r["members"] = [{"value": 7}]
        else:
            data["patch"] = "yes"

    astro.wrapper.after = _rewrite_json("/Groups", odd)
    (team,) = check_conformance(astro.config)
    assert team.startswith("/Groups resources do not validate against RFC 7643 (Resources.0.members.0.value")
    astro.wrapper.after = _rewrite_json("/ServiceProviderConfig", odd)
    (spc,) = check_conformance(astro.config)
    assert spc.startswith("/ServiceProviderConfig does not validate against RFC 7643 (patch")


def test_the_conformance_check_fails_when_astro_cannot_be_read(astro: Astro) -> None:
    bad = AstroConfig(scim_url=astro.url, token=Secret.from_value("not-the-right-token"))
    with pytest.raises(AuthError):
        check_conformance(bad)


def test_teams_listed_without_members_are_read_one_by_one(astro: Astro) -> None:
    ids = astro.add_users(4)
    astro.add_team("Empty", [])  # listed first: alone, it made every Team read as empty
    astro.add_team("Platform", ids[:2])
    astro.add_team("Analytics", ids[2:])

    def drop_members(data: dict[str, Any]) -> None:
        for r in data.get("Resources", []):
            r.pop("members", None)

    astro.wrapper.after = _rewrite_json("/Groups", drop_members)
    words: list[tuple[str, int, int | None]] = []
    view = read_astro(astro.config, progress=lambda kind, done, total: words.append((kind, done, total)))
    assert {t.name: set(t.members) for t in view.teams} == {"Empty": set(), "Platform": set(ids[:2]),
                                                            "Analytics": set(ids[2:])}
    # A word per Team read by id: the read beside the audit (beside.py) is taken for hung after a silence, and
    # thousands of Teams read by id were minutes without one.
    assert [w for w in words if w[0] == "Teams"][-3:] == [("Teams", 1, 3), ("Teams", 2, 3), ("Teams", 3, 3)]
    assert view.deviations == ["/Groups lists Teams without their members; each Team was read by id"]


def test_missing_service_provider_config_falls_back_to_pages_of_100(astro: Astro) -> None:
    astro.add_users(2)

    def no_spc(environ: dict[str, Any], status: str, headers: list[tuple[str, str]], body: bytes
               ) -> tuple[str, list[tuple[str, str]], bytes]:
        if environ["PATH_INFO"].endswith("/ServiceProviderConfig"):
            err = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "nope"}
            return "404 NOT FOUND", [("Content-Type", "application/scim+json")], json.dumps(err).encode()
        return status, headers, body

    astro.wrapper.after = no_spc
    view = read_astro(astro.config)
    assert len(view.users) == 2
    # The first page went out with discovery, asking the reader's maximum; the server answered all of it.
    assert [p["count"] for p in astro.list_requests("Users")] == ["1000"]
    assert any("ServiceProviderConfig" in d for d in view.deviations)


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("html", "HTML page"),
        ("truncated", "not valid JSON"),
        ("wrong_totals", "does not add up"),
        ("error_500", "HTTP 500"),
    ],
)
def test_each_misbehaviour_is_a_clear_remote_error(astro: Astro, mode: str, words: str) -> None:
    astro.add_users(6)
    astro.scim.set_misbehaviour(ORG, mode)
    with pytest.raises(RemoteError) as caught:
        read_astro(astro.config, page_size=4, policy=FAST)
    err = caught.value
    assert words in str(err)
    assert err.endpoint.startswith(astro.url + "/"), err.endpoint  # names the endpoint
    assert err.exit_code == EXIT_REMOTE
    assert TOKEN not in str(err)
    if mode == "error_500":
        assert "after 3 attempts" in str(err)


def test_duplicates_from_an_unstable_order_are_an_error_not_a_clean_result(astro: Astro) -> None:
    astro.add_users(8)

    def ignore_start_index(environ: dict[str, Any]) -> None:
        params = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        params.pop("startIndex", None)
        environ["QUERY_STRING"] = urlencode(params)

    astro.wrapper.before = ignore_start_index
    with pytest.raises(RemoteError, match="returned twice"):
        read_astro(astro.config, page_size=4)


def test_fewer_resources_than_total_is_an_error(astro: Astro) -> None:
    astro.add_users(3)

    def inflate(data: dict[str, Any]) -> None:
        data["totalResults"] = 4

    astro.wrapper.after = _rewrite_json("/Users", inflate)
    with pytest.raises(RemoteError, match="does not add up") as caught:
        read_astro(astro.config, page_size=10)
    assert caught.value.endpoint.endswith("/Users")


def test_a_refused_token_is_an_auth_error_with_a_hint(astro: Astro) -> None:
    bad = AstroConfig(scim_url=astro.url, token=Secret.from_value("not-the-right-token"))
    with pytest.raises(AuthError) as caught:
        read_astro(bad)
    assert caught.value.status == 401 and caught.value.hint and "Organization API token" in caught.value.hint
    assert "not-the-right-token" not in str(caught.value)


def test_transient_failures_are_retried_to_a_complete_view(astro: Astro) -> None:
    astro.add_users(30)
    astro.faults.config = FaultConfig(rate_5xx=0.3, rate_reset=0.1, seed=5)
    view = read_astro(astro.config, page_size=3, policy=RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.05))
    assert len({u.id for u in view.users}) == 30
    assert any(e.status in (0, 500) for e in astro.log.entries)  # faults did happen


def test_an_empty_organization_reads_as_empty(astro: Astro) -> None:
    view = read_astro(astro.config)
    assert view.users == [] and view.teams == [] and view.deviations == []
    assert astro.log.count("GET") == 4  # 2 discovery + the first page of Users and of Teams


def test_what_drift_never_reads_is_left_out_of_list_pages(astro: Astro) -> None:
    """Drift never reads `meta`, a User's `groups` or a member's `display`: asking the server to leave them out
    cuts most of each page (the Teams' members are still read, by id)."""
    ids = astro.add_users(5)
    astro.add_team("Data", ids[:3])
    view = read_astro(astro.config)
    assert len(view.users) == 5 and not view.deviations
    assert [set(t.members) for t in view.teams] == [set(ids[:3])]
    users, groups = ([p for p in astro.list_requests(kind) if "startIndex" in p] for kind in ("Users", "Groups"))
    assert users and all(p.get("excludedAttributes") == "meta,groups" for p in users)
    assert groups and all(p.get("excludedAttributes") == "meta,members.display" for p in groups)
    assert all("meta" not in u.data and "groups" not in u.data for u in view.users)


def test_a_server_refusing_excluded_attributes_is_read_in_full(astro: Astro) -> None:
    astro.add_users(5)

    def refuse(environ: dict[str, Any], status: str, headers: list[tuple[str, str]], body: bytes
               ) -> tuple[str, list[tuple[str, str]], bytes]:
        if "excludedAttributes" in environ.get("QUERY_STRING", ""):
            error = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
                     "scimType": "invalidValue", "detail": "excludedAttributes is not supported"}
            return "400 Bad Request", [("Content-Type", "application/scim+json")], json.dumps(error).encode()
        return status, headers, body

    astro.wrapper.after = refuse
    view = read_astro(astro.config)
    assert len(view.users) == 5
    assert any("excludedAttributes" in d for d in view.deviations)
    assert astro.list_requests("Users")[-1].get("excludedAttributes") is None


@pytest.mark.parametrize("enabled", [True, False])
def test_the_cyclic_gc_is_paused_during_the_read_and_restored_after(astro: Astro, enabled: bool) -> None:
    import gc

    astro.add_users(5)
    during: list[bool] = []
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        read_astro(astro.config, page_size=2, progress=lambda kind, done, total: during.append(gc.isenabled()))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert during and not any(during)


def test_progress_counts_users_and_teams_against_their_totals(astro: Astro) -> None:
    ids = astro.add_users(12)
    astro.add_team("Data Engineering", ids[:3])
    seen: list[tuple[str, int, int]] = []
    read_astro(astro.config, page_size=5, progress=lambda kind, done, total: seen.append((kind, done, total)))
    users = [(done, total) for kind, done, total in seen if kind == "users"]
    # One count per page (the first page first; the others in whatever order they arrive), rising to the total.
    assert len(users) == 3 and users[0] == (5, 12) and users[-1] == (12, 12)
    assert [done for done, _ in users] == sorted(done for done, _ in users)
    assert [(kind, done, total) for kind, done, total in seen if kind == "Teams"] == [("Teams", 1, 1)]
