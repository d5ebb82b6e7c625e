"""Okta's provisioning engine, emulated: assignments, profile changes and group push reach a SCIM server over
loopback HTTP with Okta's request shapes. Driven through the official `okta` SDK; checked against the
Astro-like SCIM server and against scim2-server's strict default policy."""

from __future__ import annotations

import asyncio
import io
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from okta.models import (
    ApplicationGroupAssignment,
    CreateGroupPushMappingRequest,
    UpdateFeatureForApplicationRequest,
    UpdateGroupPushMappingRequest,
    UpdateUserRequest,
)
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.memory import InMemoryStorage
from scim2_server.utils import load_default_provider

from connector.sandbox.astro.scim import AstroScim
from connector.sandbox.core import Sandbox
from connector.sandbox.faults import RequestLog
from connector.sandbox.okta.api import OktaEmulator
from connector.sandbox.seed import generate
from connector.sandbox.server import ServedApp

if TYPE_CHECKING:
    from okta.client import Client as OktaSdkClient

os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = "true"
pytestmark = pytest.mark.xdist_group("okta-sdk")  # see test_okta_emulator.py: one worker imports the SDK client


def Client(config: dict[str, Any]) -> OktaSdkClient:  # noqa: N802 - stands in for the SDK's class
    """okta.client.Client, imported when a test first builds one (see test_okta_emulator.py)."""
    from okta.client import Client as SdkClient

    return SdkClient(config)


STRICT_TOKEN = "00EngineTestToken0000000000000000000000"


@dataclass
class Call:
    method: str
    path: str
    query: str
    body: Any
    status: int


class Recorder:
    """WSGI wrapper that keeps every SCIM request with its JSON body, to check Okta's request shapes."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        status: list[int] = [0]

        def record(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(s.split(" ", 1)[0])
            return start_response(s, headers)

        out = list(self.app(environ, record))
        with self._lock:
            self.calls.append(
                Call(
                    environ["REQUEST_METHOD"],
                    environ["PATH_INFO"],
                    environ.get("QUERY_STRING", ""),
                    json.loads(raw) if raw else None,
                    status[0],
                )
            )
        return out

    def of(self, method: str, prefix: str = "") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and prefix in c.path]


class Env:
    """Okta emulator + a SCIM server with the Astro app provisioning into it: the shared sandbox (Astro-like
    SCIM), or a plain scim2-server with its strict default policy and a body-recording wrapper."""

    def __init__(self, sb: Sandbox | None = None) -> None:
        self.recorder: Recorder | None = None
        self._served: list[ServedApp] = []
        if sb is not None:
            assert sb.okta is not None and sb.okta_url is not None
            self.seed = sb.seed_org
            self.okta: OktaEmulator = sb.okta
            self.okta_url, self.okta_token = sb.okta_url, sb.okta_token
            self.astro: AstroScim | None = sb.astro
            self.org_id = sb.astro_orgs["okta"].org_id
            self.scim_url, self.scim_token = sb.astro_orgs["okta"].scim_url, sb.astro_orgs["okta"].token
            self._log: RequestLog | None = sb.logs["astro"]
        else:
            self.seed = generate(12, 3, 7)
            self.okta = OktaEmulator(STRICT_TOKEN)
            self.okta.load(self.seed)
            self._served.append(ServedApp("okta", self.okta.app).start())
            self.okta_url, self.okta_token = self._served[0].url, STRICT_TOKEN
            self.astro, self.org_id, self._log = None, "", None
            # scim2-server's own defaults: RFC-strict policy, no Astro tolerance.
            self.recorder = Recorder(WSGIApplication(InMemoryStorage(), load_default_provider()))
            self._served.append(ServedApp("scim", self.recorder).start())
            self.scim_url, self.scim_token = self._served[1].url + "/v2", "scim-token"
        self.app_id = str(self.okta.app_by_label("Astro")["id"])
        self.okta.enable_provisioning(self.app_id, self.scim_url, self.scim_token)

    def of(self, method: str, fragment: str = "") -> list[Call]:
        """SCIM requests with `method` whose path contains `fragment` (bodies only on the strict server)."""
        if self.recorder is not None:
            return self.recorder.of(method, fragment)
        assert self._log is not None
        with self._log.lock:
            entries = list(self._log.entries)
        return [
            Call(e.method, e.path, e.query, None, e.status)
            for e in entries
            if e.method == method and fragment in e.path
        ]

    def clear_log(self) -> None:
        if self.recorder is not None:
            self.recorder.calls.clear()
        elif self._log is not None:
            self._log.clear()

    def run(self, fn: Callable[[Client], Any]) -> Any:
        async def go() -> Any:
            async with Client({"orgUrl": self.okta_url, "token": self.okta_token}) as c:
                return await fn(c)

        return asyncio.run(go())

    def raw(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(
            method, self.okta_url + path, headers={"Authorization": f"SSWS {self.okta_token}"}, **kw
        )

    def features(self, *, create: bool = True, profile: bool = True, deactivate: bool = True) -> None:
        def st(on: bool) -> dict[str, str]:
            return {"status": "ENABLED" if on else "DISABLED"}

        body = UpdateFeatureForApplicationRequest.from_dict(
            {
                "create": {"lifecycleCreate": st(create)},
                "update": {"profile": st(profile), "lifecycleDeactivate": st(deactivate)},
            }
        )
        _, _, err = self.run(
            lambda c: c.update_feature_for_application(self.app_id, "USER_PROVISIONING", body)
        )
        assert err is None

    def map_astro_attributes(self, profile_url_push: str = "PUSH") -> None:
        mid = self.raw("GET", f"/api/v1/mappings?targetId={self.app_id}").json()[0]["id"]
        resp = self.raw(
            "POST",
            f"/api/v1/mappings/{mid}",
            json={
                "properties": {
                    "displayName": {"expression": "user.displayName", "pushStatus": "PUSH"},
                    "profileUrl": {"expression": "user.profileUrl", "pushStatus": profile_url_push},
                }
            },
        )
        assert resp.status_code == 200

    def gid(self, name: str) -> str:
        return str(self.okta.group_by_name(name)["id"])

    def uid(self, login: str) -> str:
        return str(self.okta.user_by_login(login)["id"])

    def assign_group(self, name: str) -> None:
        _, _, err = self.run(
            lambda c: c.assign_group_to_application(self.app_id, self.gid(name), ApplicationGroupAssignment())
        )
        assert err is None

    def push(self, name: str, **kw: Any) -> Any:
        if "target_group_id" not in kw:  # one of the two is required (CreateGroupPushMappingRequest)
            kw.setdefault("target_group_name", name)
        req = CreateGroupPushMappingRequest(source_group_id=self.gid(name), **kw)
        created, resp, err = self.run(lambda c: c.create_group_push_mapping(self.app_id, req))
        assert err is None and resp.status_code == 201
        return created

    def set_push_status(self, mapping_id: str, status: str) -> Any:
        got, _, err = self.run(
            lambda c: c.update_group_push_mapping(
                self.app_id, mapping_id, UpdateGroupPushMappingRequest(status=status)
            )
        )
        assert err is None
        return got

    def scim(self, kind: str) -> list[dict[str, Any]]:
        resp = httpx.get(
            f"{self.scim_url}/{kind}",
            params={"count": 1000},
            headers={"Authorization": f"Bearer {self.scim_token}"},
        )
        assert resp.status_code == 200, resp.text
        return list(resp.json().get("Resources") or [])

    def scim_user(self, user_name: str) -> dict[str, Any]:
        return next(u for u in self.scim("Users") if u["userName"].lower() == user_name.lower())

    def scim_group(self, name: str) -> dict[str, Any] | None:
        return next((g for g in self.scim("Groups") if g["displayName"] == name), None)

    def team(self, index: int = 1) -> tuple[str, list[str]]:
        team = self.seed.teams[index]
        emails = {p.key: p.email for p in self.seed.people}
        return team.name, sorted(emails[k] for k in team.member_keys)

    def stop(self) -> None:
        for served in self._served:
            served.stop()
        if self.recorder is not None:
            self.okta.close()


@pytest.fixture
def env(sandbox: Sandbox) -> Env:
    return Env(sandbox)


@pytest.fixture
def strict() -> Iterator[Env]:
    e = Env()
    yield e
    e.stop()


def test_assigning_the_group_provisions_everyone_with_the_mapped_attributes(env: Env) -> None:
    env.features()
    env.map_astro_attributes()
    env.assign_group("Astro Users")

    users = {u["userName"]: u for u in env.scim("Users")}
    assert set(users) == {p.email for p in env.seed.people}
    for person in env.seed.people:
        u = users[person.email]
        assert u["name"] == {"givenName": person.first_name, "familyName": person.last_name}
        assert u["displayName"] == person.display_name
        assert u["profileUrl"] == f"https://acme.example/people/{person.key}"
        assert u["emails"] == [{"value": person.email, "type": "work", "primary": True}]
        assert u["active"] is True
        assert u["externalId"] == env.uid(person.email)  # Okta sends its user id as externalId
    app_users = env.raw("GET", f"/api/v1/apps/{env.app_id}/users?limit=500").json()
    assert {a["status"] for a in app_users} == {"PROVISIONED"}
    assert {a["syncState"] for a in app_users} == {"SYNCHRONIZED"}
    assert {a["externalId"] for a in app_users} == {u["id"] for u in users.values()}
    assert env.okta.provisioning_errors(env.app_id) == {}


def test_group_push_creates_the_team_with_its_provisioned_members(env: Env) -> None:
    env.features()
    env.assign_group("Astro Users")
    name, emails = env.team(1)
    mapping = env.push(name)

    group = env.scim_group(name)
    assert group is not None
    ids = {env.scim_user(e)["id"] for e in emails}
    assert {m["value"] for m in group["members"]} == ids
    assert mapping.status == "ACTIVE" and mapping.error_summary == ""
    target = env.raw("GET", f"/api/v1/groups/{mapping.target_group_id}").json()
    assert target["type"] == "APP_GROUP" and target["profile"]["name"] == name
    # Okta's own group list, filtered the way a careful client does, does not show the APP_GROUP.
    okta_groups = env.raw("GET", "/api/v1/groups", params={"search": 'type eq "OKTA_GROUP"'}).json()
    assert mapping.target_group_id not in {g["id"] for g in okta_groups}


def test_okta_request_shapes_pass_scim2_servers_strict_policy(strict: Env) -> None:
    env = strict
    env.features()
    env.map_astro_attributes()
    env.assign_group("Astro Users")
    name, emails = env.team(1)
    mapping = env.push(name)
    outsider = next(p.email for p in env.seed.people if p.email not in emails)
    member = emails[0]

    env.raw("PUT", f"/api/v1/groups/{env.gid(name)}/users/{env.uid(outsider)}")  # join: PATCH add
    env.raw("DELETE", f"/api/v1/groups/{env.gid(name)}/users/{env.uid(member)}")  # leave: PATCH remove
    env.run(
        lambda c: c.update_user(
            env.uid(outsider), UpdateUserRequest.from_dict({"profile": {"lastName": "Renamed"}})
        )
    )  # profile: GET + PUT
    env.raw("DELETE", f"/api/v1/groups/{env.gid('Astro Users')}/users/{env.uid(member)}")  # unassign: PATCH
    env.set_push_status(mapping.id, "INACTIVE")
    env.set_push_status(mapping.id, "ACTIVE")  # re-push: rename + replace

    assert env.recorder is not None
    failures = [c for c in env.recorder.calls if c.status >= 400]
    assert failures == [], failures
    assert env.okta.provisioning_errors(env.app_id) == {}
    assert (env.okta.push_mapping(env.app_id, name) or {}).get("status") == "ACTIVE"

    # Match before create: GET /Users?filter=userName eq "..."&startIndex=1&count=100, then POST.
    searches = env.of("GET", "/Users")
    assert len([s for s in searches if "filter=" in s.query]) == len(env.seed.people)
    assert all("startIndex=1" in s.query and "count=100" in s.query for s in searches if "filter=" in s.query)
    posted = env.of("POST", "/Users")
    assert len(posted) == len(env.seed.people)
    body = posted[0].body
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]
    assert body["active"] is True and body["groups"] == [] and body["externalId"].startswith("00u")
    assert set(body) == {
        "schemas",
        "userName",
        "name",
        "emails",
        "displayName",
        "profileUrl",
        "active",
        "externalId",
        "groups",
        "password",  # Okta always sends one (Okta SCIM 2.0 reference, "Create the User")
    }

    users = {u["userName"]: u for u in env.scim("Users")}

    # Profile change: a full PUT of the resource, with the new value.
    puts = env.of("PUT", "/Users/")
    assert len(puts) == 1 and puts[0].body["name"]["familyName"] == "Renamed"
    # The whole resource Okta read goes back, `id`, `meta` and `groups` included (Okta SCIM 2.0 reference, PUT).
    assert {"id", "meta", "groups"} <= set(puts[0].body)
    assert users[outsider]["name"]["familyName"] == "Renamed"

    # Deprovisioning: pathless PATCH active=false; never a DELETE of a user.
    deactivations = env.of("PATCH", "/Users/")
    assert [c.body["Operations"] for c in deactivations] == [[{"op": "replace", "value": {"active": False}}]]
    assert users[member]["active"] is False
    assert env.of("DELETE", "/Users") == []

    # Group push shapes (Okta SCIM 2.0 reference): POST with `members: []`, then PATCH add of the members;
    # every membership PATCH re-sends the rename op first; re-push = rename op + members replace.
    group_posts = env.of("POST", "/Groups")
    assert len(group_posts) == 1 and group_posts[0].body["displayName"] == name
    assert group_posts[0].body["members"] == []
    ops = [c.body["Operations"] for c in env.of("PATCH", "/Groups/")]
    outsider_id, member_id = users[outsider]["id"], users[member]["id"]
    group = env.scim_group(name)
    assert group is not None
    rename = {"op": "replace", "value": {"id": group["id"], "displayName": name}}
    assert ops[0][0] == rename and ops[0][1]["op"] == "add" and ops[0][1]["path"] == "members"
    assert {m["value"] for m in ops[0][1]["value"]} == {users[e]["id"] for e in emails}
    assert ops[1] == [rename, {"op": "add", "path": "members", "value": [{"value": outsider_id, "display": outsider}]}]
    assert ops[2] == [rename, {"op": "remove", "path": f'members[value eq "{member_id}"]'}]
    assert ops[-1][0] == rename
    replace = ops[-1][1]
    assert replace["op"] == "replace" and replace["path"] == "members"
    expected = {users[e]["id"] for e in [*emails[1:], outsider]}
    assert {m["value"] for m in replace["value"]} == expected
    assert {m["value"] for m in group["members"]} == expected


def test_push_now_workaround_restores_a_membership_dropped_in_astro(env: Env) -> None:
    assert env.astro is not None
    env.features()
    env.assign_group("Astro Users")
    name, emails = env.team(1)
    mapping = env.push(name)
    env.astro.drop_membership(env.org_id, name, emails[0])
    group = env.scim_group(name)
    assert group is not None and len(group.get("members") or []) == len(emails) - 1

    env.set_push_status(mapping.id, "INACTIVE")
    again = env.set_push_status(mapping.id, "ACTIVE")

    group = env.scim_group(name)
    assert group is not None
    assert {m["value"] for m in group["members"]} == {env.scim_user(e)["id"] for e in emails}
    assert again.status == "ACTIVE" and again.last_push >= mapping.last_push


def test_an_existing_account_is_matched_not_duplicated(env: Env) -> None:
    assert env.astro is not None
    person = env.seed.people[0]
    existing = env.astro.add_orphan(env.org_id, person.email.upper(), "Old", "Name")
    env.astro.edit_user(env.org_id, person.email, "active", False)
    env.features()
    env.assign_group("Astro Users")

    matches = [u for u in env.scim("Users") if u["userName"].lower() == person.email]
    assert len(matches) == 1 and matches[0]["id"] == existing["id"]
    assert matches[0]["active"] is True  # re-assignment reactivates
    assert matches[0]["name"]["givenName"] == person.first_name  # and the update pushed Okta's profile
    assert (env.okta.app_user(env.app_id, person.email) or {}).get("externalId") == existing["id"]


def test_pushing_links_an_existing_team_of_the_same_name(env: Env) -> None:
    env.features()
    env.assign_group("Astro Users")
    name, emails = env.team(1)
    pre = httpx.post(
        f"{env.scim_url}/Groups",
        headers={"Authorization": f"Bearer {env.scim_token}"},
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name},
    )
    assert pre.status_code == 201
    env.clear_log()

    env.push(name, target_group_name=name)

    assert env.of("POST", "/Groups") == []
    groups = [g for g in env.scim("Groups") if g["displayName"] == name]
    assert len(groups) == 1 and groups[0]["id"] == pre.json()["id"]
    assert {m["value"] for m in groups[0]["members"]} == {env.scim_user(e)["id"] for e in emails}


def test_scim_failures_become_sync_errors_and_push_errors(env: Env) -> None:
    assert env.astro is not None
    env.features()
    env.astro.set_misbehaviour(env.org_id, "error_500")
    person = env.seed.people[0]
    resp = env.raw("POST", f"/api/v1/apps/{env.app_id}/users", json={"id": env.uid(person.email)})
    assert resp.status_code == 200
    assert resp.json()["syncState"] == "ERROR" and resp.json()["status"] == "STAGED"
    summary = env.okta.provisioning_errors(env.app_id)[person.email]
    assert "500" in summary and env.scim_token not in summary

    name, _ = env.team(1)
    mapping = env.push(name)
    assert mapping.status == "ERROR" and "500" in mapping.error_summary
    listed = env.raw(
        "GET", f"/api/v1/apps/{env.app_id}/group-push/mappings", params={"status": "ERROR"}
    ).json()
    assert [m["id"] for m in listed] == [mapping.id]

    env.astro.set_misbehaviour(env.org_id, None)
    retried = env.set_push_status(mapping.id, "ACTIVE")  # ERROR -> ACTIVE pushes again
    assert retried.status == "ACTIVE" and retried.error_summary == ""
    assert env.scim_group(name) is not None


def test_a_wrong_scim_token_is_an_error_without_the_token(env: Env) -> None:
    env.okta.enable_provisioning(env.app_id, env.scim_url, "wrong-token-value")
    env.features()
    env.assign_group("Astro Users")
    errors = env.okta.provisioning_errors(env.app_id)
    assert len(errors) == len(env.seed.people)
    assert all("401" in e and "wrong-token-value" not in e for e in errors.values())


def test_enabling_create_users_later_provisions_existing_assignments(env: Env) -> None:
    env.assign_group("Astro Users")
    staged = env.raw("GET", f"/api/v1/apps/{env.app_id}/users?limit=500").json()
    assert {a["status"] for a in staged} == {"STAGED"} and env.scim("Users") == []
    env.features()
    assert len(env.scim("Users")) == len(env.seed.people)


def test_dont_push_attributes_are_sent_on_create_only(env: Env) -> None:
    env.features()
    env.map_astro_attributes(profile_url_push="DONT_PUSH")
    person = env.seed.people[0]
    env.assign_group("Astro Users")
    assert env.scim_user(person.email)["profileUrl"].endswith(person.key)
    env.raw(
        "POST",
        f"/api/v1/users/{env.uid(person.email)}",
        json={"profile": {"profileUrl": "https://acme.example/elsewhere", "firstName": "Changed"}},
    )
    user = env.scim_user(person.email)
    assert user["name"]["givenName"] == "Changed"
    assert user["profileUrl"].endswith(person.key)


def test_profile_updates_wait_for_update_user_attributes(env: Env) -> None:
    env.features(profile=False)
    person = env.seed.people[0]
    env.assign_group("Astro Users")
    env.raw("POST", f"/api/v1/users/{env.uid(person.email)}", json={"profile": {"firstName": "Changed"}})
    assert env.scim_user(person.email)["name"]["givenName"] == person.first_name
    assert env.of("PUT") == []


def test_deactivation_in_okta_deprovisions_but_a_silent_one_does_not(env: Env) -> None:
    assert env.astro is not None
    env.features()
    env.assign_group("Astro Users")
    loud, quiet = env.seed.people[0].email, env.seed.people[1].email
    resp = env.raw("POST", f"/api/v1/users/{env.uid(loud)}/lifecycle/deactivate")
    assert resp.status_code == 200
    env.okta.deactivate_user_silently(quiet)

    assert env.scim_user(loud)["active"] is False
    assert env.scim_user(quiet)["active"] is True  # the drift the auditor must find
    assert env.okta.app_user(env.app_id, loud) is None and env.okta.app_user(env.app_id, quiet) is None


def test_deleting_a_mapping_deletes_the_team_only_when_asked(env: Env) -> None:
    env.features()
    env.assign_group("Astro Users")
    first, _ = env.team(1)
    second, _ = env.team(2)
    m1, m2 = env.push(first), env.push(second)
    for m in (m1, m2):
        env.set_push_status(m.id, "INACTIVE")
    assert (
        env.raw(
            "DELETE",
            f"/api/v1/apps/{env.app_id}/group-push/mappings/{m1.id}",
            params={"deleteTargetGroup": "true"},
        ).status_code
        == 204
    )
    assert (
        env.raw(
            "DELETE",
            f"/api/v1/apps/{env.app_id}/group-push/mappings/{m2.id}",
            params={"deleteTargetGroup": "false"},
        ).status_code
        == 204
    )
    assert env.scim_group(first) is None
    assert env.scim_group(second) is not None
    assert env.raw("GET", f"/api/v1/groups/{m1.target_group_id}").status_code == 404


def test_renaming_a_pushed_group_renames_the_team(env: Env) -> None:
    env.features()
    env.assign_group("Astro Users")
    name, _ = env.team(1)
    env.push(name)
    resp = env.raw("PUT", f"/api/v1/groups/{env.gid(name)}", json={"profile": {"name": name + " Guild"}})
    assert resp.status_code == 200
    assert env.scim_group(name + " Guild") is not None and env.scim_group(name) is None


def test_a_new_hire_in_assigned_and_pushed_groups_is_provisioned_and_joins_the_team(env: Env) -> None:
    env.features()
    env.assign_group("Astro Users")
    name, emails = env.team(1)
    env.push(name)
    resp = env.raw(
        "POST",
        "/api/v1/users",
        params={"activate": "true"},
        json={
            "profile": {
                "firstName": "Nia",
                "lastName": "New",
                "email": "nia.new@acme.example",
                "login": "nia.new@acme.example",
                "displayName": "Nia New",
            },
            "groupIds": [env.gid("Astro Users"), env.gid(name)],
        },
    )
    assert resp.status_code == 200 and resp.json()["status"] == "ACTIVE"
    hire = env.scim_user("nia.new@acme.example")
    assert hire["externalId"] == resp.json()["id"] and hire["name"]["givenName"] == "Nia"
    group = env.scim_group(name)
    assert group is not None
    assert {m["value"] for m in group["members"]} == {
        env.scim_user(e)["id"] for e in [*emails, hire["userName"]]
    }


def test_the_engine_retries_scim_429s_like_okta() -> None:
    astro = AstroScim()
    astro.add_org("org", "tok")
    count = [0]
    lock = threading.Lock()

    def every_third_throttled(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            count[0] += 1
            throttle = count[0] % 3 == 0
        if throttle:
            start_response(
                "429 Too Many Requests", [("Retry-After", "0"), ("Content-Type", "application/scim+json")]
            )
            return [b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"429"}']
        return astro.app(environ, start_response)

    served = ServedApp("astro", every_third_throttled).start()
    astro.base_url = served.url
    okta = OktaEmulator(STRICT_TOKEN)
    seed = generate(6, 1, 2)
    okta.load(seed)
    try:
        app_id = str(okta.app_by_label("Astro")["id"])
        okta.enable_provisioning(app_id, astro.scim_url("org"), "tok")
        okta.state.features[app_id]["capabilities"]["create"]["lifecycleCreate"]["status"] = "ENABLED"
        from werkzeug.test import Client as WClient

        client = WClient(okta.app)
        gid = okta.group_by_name("Astro Users")["id"]
        resp = client.put(
            f"/api/v1/apps/{app_id}/groups/{gid}", json={}, headers={"Authorization": f"SSWS {STRICT_TOKEN}"}
        )
        assert resp.status_code == 200
        assert okta.provisioning_errors(app_id) == {}
        assert {u["userName"] for u in astro.users("org")} == {p.email for p in seed.people}
        assert count[0] > 2 * len(seed.people)  # the throttled requests were sent again
    finally:
        served.stop()
        okta.close()
