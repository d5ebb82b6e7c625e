"""The Astro-like SCIM server, driven over loopback HTTP with the real scim2-client (httpx2 engine) and raw httpx2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from scim2_client import SCIMClientException
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import (
    EnterpriseUser,
    Group,
    ListResponse,
    Name,
    PatchOp,
    Path,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    SearchRequest,
    UniquenessException,
    User,
)
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.storage import SearchPage
from scim2_server.utils import parametrize

from connector.sandbox.astro.scim import AstroScim, AstroStorage
from connector.sandbox.seed import generate
from connector.sandbox.server import ServedApp

ORG, TOKEN = "clorgone00000000000000001", "token-one"
ORG2, TOKEN2 = "clorgtwo00000000000000002", "token-two"
SCIM_JSON = "application/scim+json"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Astro:
    """A served AstroScim with two organizations and raw HTTP helpers."""

    def __init__(self, server: AstroScim, served: ServedApp) -> None:
        self.server, self.served = server, served
        self.http = httpx2.Client(
            base_url=f"{served.url}/scim/v2/{ORG}", headers={"Authorization": f"Bearer {TOKEN}"}
        )

    def client(self) -> SyncSCIMClient:
        provider = ScimProvider(
            models=[User, EnterpriseUser, Group],
            resource_types=[ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)],
        )
        client = SyncSCIMClient(self.http, provider=provider)
        client.discover()
        return client

    def send(self, method: str, path: str, body: Any = None, content_type: str = SCIM_JSON) -> httpx2.Response:
        content = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if content is not None else {}
        return self.http.request(method, path, content=content, headers=headers)

    def new_user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        resp = self.send("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": user_name, "active": True, **extra})
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def new_group(self, name: str, members: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": name}
        if members is not None:
            body["members"] = [{"value": m} for m in members]
        resp = self.send("POST", "/Groups", body)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def member_ids(self, group_id: str) -> set[str]:
        return {m["value"] for m in self.send("GET", f"/Groups/{group_id}").json().get("members") or []}


def _serve(policy: ScimPolicy | None = None) -> Iterator[Astro]:
    server = AstroScim() if policy is None else AstroScim(policy=policy)
    server.add_org(ORG, TOKEN)
    server.add_org(ORG2, TOKEN2)
    served = ServedApp("astro-test", server.app).start()
    server.base_url = served.url
    astro = Astro(server, served)
    try:
        yield astro
    finally:
        astro.http.close()
        served.stop()


@pytest.fixture
def astro() -> Iterator[Astro]:
    yield from _serve()


@pytest.fixture
def strict_astro() -> Iterator[Astro]:
    yield from _serve(ScimPolicy())


# -- protocol basics through the official client -----------------------------------------------------------


def test_crud_users_and_groups_with_scim2_client(astro: Astro) -> None:
    client = astro.client()
    created = client.create(User[EnterpriseUser](
        user_name="ada.lovelace@acme.example", name=Name(given_name="Ada", family_name="Lovelace"), active=True,
    ))
    assert isinstance(created, User) and created.id and created.meta
    assert created.id.startswith("cl") and len(created.id) == 25
    assert created.meta.location == f"{astro.served.url}/scim/v2/{ORG}/Users/{created.id}"

    fetched = client.query(User[EnterpriseUser], created.id)
    assert isinstance(fetched, User) and fetched.name
    assert fetched.user_name == "ada.lovelace@acme.example" and fetched.name.given_name == "Ada"

    found = client.query(User[EnterpriseUser], query_parameters=SearchRequest.model_validate(
        {"filter": 'userName eq "ADA.LOVELACE@acme.example"'}))
    assert isinstance(found, ListResponse) and found.resources
    assert found.total_results == 1 and found.resources[0].id == created.id

    fetched.display_name = "Ada L."
    replaced = client.replace(fetched)
    assert isinstance(replaced, User) and replaced.display_name == "Ada L."

    patch = PatchOp[User[EnterpriseUser]].model_validate(
        {"Operations": [{"op": "replace", "path": "active", "value": False}]})
    assert client.modify(User[EnterpriseUser], created.id, patch) is None  # 204, like Astro
    after = client.query(User[EnterpriseUser], created.id)
    assert isinstance(after, User) and after.active is False

    group = client.create(Group.model_validate(
        {"displayName": "Data Engineering", "members": [{"value": created.id}]}))
    assert isinstance(group, Group) and [m.value for m in group.members or []] == [created.id]
    groups: Any = client.query(Group, query_parameters=SearchRequest.model_validate(  # type: ignore[arg-type]
        {"filter": 'displayName eq "data engineering"'}))
    assert isinstance(groups, ListResponse) and groups.total_results == 1

    client.delete(User[EnterpriseUser], created.id)
    assert astro.send("GET", f"/Users/{created.id}").status_code == 404


def test_duplicate_username_is_409_and_orgs_are_isolated(astro: Astro) -> None:
    astro.new_user("grace@acme.example")
    dup = astro.send("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "GRACE@acme.example"})
    assert dup.status_code == 409 and dup.json()["scimType"] == "uniqueness"

    other = httpx2.Client(base_url=f"{astro.served.url}/scim/v2/{ORG2}",
                          headers={"Authorization": f"Bearer {TOKEN2}"})
    with other:
        assert other.get("/Users").json()["totalResults"] == 0
        again = other.post("/Users", json={"schemas": [USER_SCHEMA], "userName": "grace@acme.example"})
        assert again.status_code == 201  # the same person may exist in another Astro organization
    assert len(astro.server.users(ORG)) == 1 and len(astro.server.users(ORG2)) == 1


def test_discovery_endpoints_work_under_the_org_prefix(astro: Astro) -> None:
    spc = astro.send("GET", "/ServiceProviderConfig")
    assert spc.status_code == 200
    assert spc.json()["meta"]["location"] == f"{astro.served.url}/scim/v2/{ORG}/ServiceProviderConfig"
    assert spc.json()["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert {r["name"] for r in astro.send("GET", "/ResourceTypes").json()["Resources"]} >= {"User", "Group"}
    assert astro.send("GET", "/Schemas").json()["totalResults"] >= 3


# -- auth and routing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN2}"])
def test_wrong_or_missing_token_is_401_scim_error(astro: Astro, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    resp = httpx2.get(f"{astro.served.url}/scim/v2/{ORG}/Users", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith(SCIM_JSON)
    assert resp.headers["www-authenticate"].startswith("Bearer")
    body = resp.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "401"


def test_unknown_org_and_unknown_path_are_404_scim_errors(astro: Astro) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for url in (f"{astro.served.url}/scim/v2/nope/Users", f"{astro.served.url}/api/v1/users",
                f"{astro.served.url}/scim/v2/{ORG}/Users/does-not-exist"):
        resp = httpx2.get(url, headers=auth)
        assert resp.status_code == 404, url
        assert resp.json()["status"] == "404"


def test_add_org_refuses_duplicates_and_bad_ids() -> None:
    server = AstroScim()
    server.add_org("a", "t")
    with pytest.raises(ValueError):
        server.add_org("a", "t2")
    with pytest.raises(ValueError):
        server.add_org("a/b", "t")


# -- IdP request shapes ------------------------------------------------------------------------------------


def _entra_flow(astro: Astro) -> tuple[str, str]:
    created = astro.send("POST", "/Users", {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": "ada", "userName": "ada@acme.example", "active": True,
        "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
        "emails": [{"primary": True, "type": "work", "value": "ada@acme.example"}],
        "meta": {"resourceType": "User"}, "roles": [],
        ENTERPRISE: {"department": "Data"},
    })
    assert created.status_code == 201, created.text
    uid = created.json()["id"]
    assert astro.send("GET", "/Users", None).status_code == 200
    lookup = astro.http.get("/Users", params={"filter": 'userName eq "ada@acme.example"'})
    assert lookup.json()["totalResults"] == 1
    # Entra without aadOptscim062020: capitalised ops, one Replace per path, a string boolean
    patched = astro.send("PATCH", f"/Users/{uid}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "Replace", "path": "name.givenName", "value": "Augusta"},
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"},
        {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "42"},
        {"op": "Replace", "path": "active", "value": "False"},
    ]})
    assert patched.status_code == 204, patched.text
    user = astro.server.find_user(ORG, "ada@acme.example")
    assert user is not None
    assert user["active"] is False and user["name"]["givenName"] == "Augusta"
    assert user["phoneNumbers"][0]["value"] == "+1 555 0100"
    assert user[ENTERPRISE]["employeeNumber"] == "42"

    group = astro.send("POST", "/Groups", {
        "schemas": [GROUP_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "00000000-0000-0000-0000-000000000001", "displayName": "Analytics",
        "meta": {"resourceType": "Group"},
    })
    assert group.status_code == 201, group.text
    gid = group.json()["id"]
    found = astro.http.get("/Groups", params={"excludedAttributes": "members",
                                              "filter": 'displayName eq "Analytics"'})
    assert found.json()["totalResults"] == 1 and "members" not in found.json()["Resources"][0]
    add = astro.send("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid}]}]})
    assert add.status_code == 204, add.text
    assert astro.member_ids(gid) == {uid}
    return uid, gid


def test_entra_request_shapes_are_accepted(astro: Astro) -> None:
    uid, gid = _entra_flow(astro)
    remove = astro.send("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"value": uid}]}]})
    assert remove.status_code == 204, remove.text
    assert astro.member_ids(gid) == set()


def test_entra_shapes_need_the_tolerant_policy(strict_astro: Astro) -> None:
    # The control: scim2-server's strict default refuses Entra's extra group schema.
    group = strict_astro.send("POST", "/Groups", {
        "schemas": [GROUP_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "displayName": "Analytics",
    })
    assert group.status_code == 400


def _okta_flow(astro: Astro) -> None:
    lookup = astro.http.get("/Users", params={"filter": 'userName eq "linus@acme.example"', "startIndex": 1,
                                              "count": 100})
    assert lookup.status_code == 200 and lookup.json()["totalResults"] == 0
    created = astro.send("POST", "/Users", {
        "schemas": [USER_SCHEMA], "userName": "linus@acme.example", "externalId": "00u1abcd",
        "name": {"givenName": "Linus", "familyName": "Torvalds"},
        "emails": [{"primary": True, "value": "linus@acme.example", "type": "work"}],
        "displayName": "Linus Torvalds", "active": True, "password": "xY9!secret", "groups": [],
    }, content_type="application/json")
    assert created.status_code == 201, created.text
    user = created.json()
    full = {**user, "name": {"givenName": "Linus B.", "familyName": "Torvalds"}}
    assert astro.send("PUT", f"/Users/{user['id']}", full, content_type="application/json").status_code == 200
    deactivate = astro.send("PATCH", f"/Users/{user['id']}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "replace", "value": {"active": False}}]})
    assert deactivate.status_code == 204, deactivate.text
    other = astro.new_user("ken@acme.example")
    group = astro.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Platform", "members": []})
    assert group.status_code == 201, group.text
    gid = group.json()["id"]
    push = astro.send("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "replace", "value": {"id": gid, "displayName": "Platform Team"}},
        {"op": "add", "path": "members", "value": [{"value": user["id"], "display": "linus@acme.example"},
                                                    {"value": other["id"], "display": "ken@acme.example"}]},
    ]})
    assert push.status_code == 204, push.text
    remove = astro.send("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "remove", "path": f'members[value eq "{other["id"]}"]'}]})
    assert remove.status_code == 204, remove.text
    got = astro.send("GET", f"/Groups/{gid}").json()
    assert got["displayName"] == "Platform Team" and [m["value"] for m in got["members"]] == [user["id"]]
    stored = astro.server.find_user(ORG, "LINUS@acme.example")
    assert stored is not None and stored["active"] is False and stored["name"]["givenName"] == "Linus B."
    assert "password" not in stored


def test_okta_request_shapes_are_accepted(astro: Astro) -> None:
    _okta_flow(astro)


def test_okta_request_shapes_pass_the_strict_policy(strict_astro: Astro) -> None:
    _okta_flow(strict_astro)


# -- Astro's rules ----------------------------------------------------------------------------------------


def test_nested_group_member_is_refused(astro: Astro) -> None:
    user = astro.new_user("ada@acme.example")
    inner = astro.new_group("Inner", [user["id"]])
    nested = astro.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Outer",
                                            "members": [{"value": inner["id"]}]})
    assert nested.status_code == 400 and nested.json()["scimType"] == "invalidValue"
    assert "nested" in nested.json()["detail"]
    typed = astro.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Outer",
                                           "members": [{"value": "whatever", "type": "Group"}]})
    assert typed.status_code == 400
    outer = astro.new_group("Outer", [user["id"]])
    patch = astro.send("PATCH", f"/Groups/{outer['id']}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": inner["id"]}]}]})
    assert patch.status_code == 400
    assert astro.member_ids(outer["id"]) == {user["id"]}
    assert astro.server.find_group(ORG, "Outer") is not None


def test_deleting_a_user_removes_them_from_every_team(astro: Astro) -> None:
    ada, ken = astro.new_user("ada@acme.example"), astro.new_user("ken@acme.example")
    g1 = astro.new_group("One", [ada["id"], ken["id"]])
    g2 = astro.new_group("Two", [ada["id"]])
    g3 = astro.new_group("Three", [ken["id"]])
    version_before = astro.send("GET", f"/Groups/{g3['id']}").headers.get("etag")
    assert astro.send("DELETE", f"/Users/{ada['id']}").status_code == 204
    assert astro.member_ids(g1["id"]) == {ken["id"]}
    assert astro.member_ids(g2["id"]) == set()
    assert astro.send("GET", f"/Groups/{g3['id']}").headers.get("etag") == version_before  # untouched
    astro.server.delete_user(ORG, "ken@acme.example")
    assert astro.member_ids(g1["id"]) == set()
    assert astro.server.users(ORG) == []


# -- paging ------------------------------------------------------------------------------------------------


def test_excluded_meta_pages_are_the_full_pages_without_meta_and_never_stale(astro: Astro) -> None:
    for i in range(30):
        astro.server.add_orphan(ORG, f"user{i:03d}@acme.example", "U", f"{i}")
    full = astro.http.get("/Users", params={"count": 1000}).json()["Resources"]
    slim = astro.http.get("/Users", params={"count": 1000, "excludedAttributes": "meta"}).json()["Resources"]
    assert all("meta" in r for r in full)
    assert slim == [{k: v for k, v in r.items() if k != "meta"} for r in full]
    astro.server.edit_user(ORG, "user007@acme.example", "name.givenName", "Changed")
    again = astro.http.get("/Users", params={"count": 1000, "excludedAttributes": "meta"}).json()["Resources"]
    assert next(r for r in again if r["userName"] == "user007@acme.example")["name"]["givenName"] == "Changed"


def test_paging_is_complete_stable_and_matches_the_stock_order(astro: Astro) -> None:
    for i in range(120):
        astro.server.add_orphan(ORG, f"user{i:03d}@acme.example", "U", f"{i}")
    seen: list[str] = []
    start = 1
    while True:
        page = astro.http.get("/Users", params={"startIndex": start, "count": 50}).json()
        assert page["totalResults"] == 120 and page["startIndex"] == start
        if not page.get("Resources"):
            break
        seen += [r["id"] for r in page["Resources"]]
        start += page["itemsPerPage"]
    assert len(seen) == len(set(seen)) == 120
    # A filter takes scim2-server's own (sorting) search path: same order as the cached fast path.
    stock = astro.http.get("/Users", params={"filter": "userName pr", "count": 1000}).json()
    assert [r["id"] for r in stock["Resources"]] == seen, {k: v for k, v in stock.items() if k != "Resources"}
    # A new user invalidates the cached order.
    astro.new_user("late@acme.example")
    assert astro.http.get("/Users", params={"count": 1000}).json()["totalResults"] == 121
    assert astro.http.get("/Users", params={"count": 0}).json()["totalResults"] == 121


# -- drift injection helpers --------------------------------------------------------------------------------


def test_drift_helpers_change_astro_only(astro: Astro) -> None:
    ada = astro.new_user("ada@acme.example", name={"givenName": "Ada", "familyName": "Lovelace"},
                         emails=[{"value": "ada@acme.example", "type": "work", "primary": True}])
    team = astro.new_group("Analytics", [ada["id"]])
    astro.server.edit_user(ORG, "ADA@acme.example", "name.givenName", "Eve")
    astro.server.edit_user(ORG, "ada@acme.example", 'emails[type eq "work"].value', "eve@acme.example")
    astro.server.edit_user(ORG, "ada@acme.example", "active", False)
    got = astro.send("GET", f"/Users/{ada['id']}").json()
    assert got["name"]["givenName"] == "Eve" and got["active"] is False
    assert got["emails"][0]["value"] == "eve@acme.example"

    astro.server.drop_membership(ORG, "analytics", "ada@acme.example")
    assert astro.member_ids(team["id"]) == set()
    with pytest.raises(KeyError):
        astro.server.drop_membership(ORG, "Analytics", "ada@acme.example")

    orphan = astro.server.add_orphan(ORG, "mallory@acme.example", "Mallory", "Orphan")
    assert orphan["id"] and orphan["name"] == {"givenName": "Mallory", "familyName": "Orphan",
                                               "formatted": "Mallory Orphan"}
    listed = astro.http.get("/Users", params={"filter": 'userName eq "mallory@acme.example"'}).json()
    assert listed["Resources"][0]["id"] == orphan["id"]
    assert astro.send("GET", f"/Users/{orphan['id']}").json() == orphan  # the helpers return what GET returns
    assert astro.server.find_user(ORG2, "mallory@acme.example") is None
    assert astro.server.find_group(ORG, "nope") is None
    with pytest.raises(KeyError):
        astro.server.edit_user(ORG, "nobody@acme.example", "active", True)
    with pytest.raises(KeyError):
        astro.server.users("no-such-org")
    assert {g["displayName"] for g in astro.server.groups(ORG)} == {"Analytics"}


# -- misbehaviour ------------------------------------------------------------------------------------------


def test_misbehaviour_modes(astro: Astro) -> None:
    for i in range(3):
        astro.new_user(f"u{i}@acme.example")
    users = f"{astro.served.url}/scim/v2/{ORG}/Users"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    client = astro.client()

    astro.server.set_misbehaviour(ORG, "html")
    resp = httpx2.get(users, headers=auth)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    with pytest.raises(SCIMClientException):  # whichever of the client's checks fires first, it must not accept it
        client.query(User[EnterpriseUser])

    astro.server.set_misbehaviour(ORG, "truncated")
    resp = httpx2.get(users, headers=auth)
    assert resp.status_code == 200 and int(resp.headers["content-length"]) == len(resp.content)
    with pytest.raises(ValueError):
        json.loads(resp.content)

    astro.server.set_misbehaviour(ORG, "wrong_totals")
    body = httpx2.get(users, headers=auth).json()
    assert body["totalResults"] > len(body["Resources"]) == 3

    astro.server.set_misbehaviour(ORG, "error_500")
    resp = httpx2.get(users, headers=auth)
    assert resp.status_code == 500 and resp.json()["status"] == "500"
    assert httpx2.get(f"{astro.served.url}/scim/v2/{ORG2}/Users",
                      headers={"Authorization": f"Bearer {TOKEN2}"}).status_code == 200  # other org unaffected

    astro.server.set_misbehaviour(ORG, None)
    listed = client.query(User[EnterpriseUser])
    assert isinstance(listed, ListResponse) and listed.total_results == 3
    with pytest.raises(ValueError):
        astro.server.set_misbehaviour(ORG, "slow")


def test_admin_endpoints(astro: Astro) -> None:
    base = astro.served.url
    assert httpx2.get(f"{base}/_sandbox/health").json() == {"ok": True}
    astro.new_user("a@acme.example")
    orgs = {o["org_id"]: o for o in httpx2.get(f"{base}/_sandbox/orgs").json()}
    assert orgs[ORG]["users"] == 1 and orgs[ORG2]["users"] == 0
    assert httpx2.put(f"{base}/_sandbox/orgs/{ORG}/misbehaviour", json={"mode": "error_500"}).status_code == 204
    assert astro.send("GET", "/Users").status_code == 500
    assert httpx2.put(f"{base}/_sandbox/orgs/{ORG}/misbehaviour", json={"mode": "bogus"}).status_code == 400
    assert httpx2.put(f"{base}/_sandbox/orgs/{ORG}/misbehaviour", json={"mode": None}).status_code == 204
    assert astro.send("GET", "/Users").status_code == 200


# -- the speed-ups must not change answers ------------------------------------------------------------------


def test_cached_list_pages_equal_scim2_servers_own_rendering(astro: Astro) -> None:
    astro.server.preload(ORG, generate(30, 3, seed=2))
    some = astro.server.users(ORG)[0]["id"]
    # a relative member reference: scim2-server turns it into a URL when it publishes the group
    astro.new_group("Relative", [])
    gid = astro.server.find_group(ORG, "Relative")["id"]  # type: ignore[index]
    astro.send("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": some, "$ref": f"Users/{some}"}]}]})
    server = astro.server
    stock = ScimService(server.provider)
    base = f"{astro.served.url}/scim/v2/{ORG}"
    cases = [
        ("/Users", server.user_type, {"count": "10"}),
        ("/Users", server.user_type, {"startIndex": "11", "count": "10"}),
        ("/Users", server.user_type, {"count": "0"}),
        ("/Groups", server.group_type, {"count": "10"}),
    ]
    for endpoint, rtype, params in cases:
        served = astro.http.get(endpoint, params=params).json()
        served_again = astro.http.get(endpoint, params=params).json()  # second answer comes from the cache
        ids = [r["id"] for r in served.get("Resources", [])]
        stored = server._orgs[ORG].storage._resources[rtype.name]
        with server.provider:
            request = parametrize(SearchRequest, stock.get_model(rtype)).model_validate(
                {k: int(v) for k, v in params.items()})
            request.start_index = request.start_index or 1
            expected = stock.search_response(base, [rtype], SearchPage(served["totalResults"],
                                                                        [stored[i] for i in ids]), request).body
        # What Astro adds to scim2-server's rendering: each user's groups (RFC 7643 §4.1.2) and `members: []`.
        ours = server._orgs[ORG].app.service
        for item in expected.get("Resources", []):
            if rtype is server.user_type:
                item["groups"] = ours._groups_of(base, item["id"])
            else:
                item.setdefault("members", [])
        assert served == served_again == expected
    relative = astro.http.get("/Groups", params={"filter": 'displayName eq "Relative"'}).json()["Resources"][0]
    assert relative["members"][0]["$ref"] == f"{base}/Users/{some}"

    # filtered lookups are served from the same cache, and see writes
    name = astro.server.users(ORG)[3]["userName"]
    lookup = {"filter": f'userName eq "{name}"'}
    first = astro.http.get("/Users", params=lookup).json()["Resources"][0]
    assert astro.http.get("/Users", params=lookup).json()["Resources"][0] == first
    assert first == astro.send("GET", f"/Users/{first['id']}").json()
    server.edit_user(ORG, name, "title", "Chief Drift Officer")
    assert astro.http.get("/Users", params=lookup).json()["Resources"][0]["title"] == "Chief Drift Officer"
    # an update changes the version, so the cached JSON of that user is not reused
    first = astro.http.get("/Users", params={"count": "1"}).json()["Resources"][0]
    server.edit_user(ORG, first["userName"], "displayName", "Renamed Person")
    again = astro.http.get("/Users", params={"count": "1"}).json()["Resources"][0]
    assert again["id"] == first["id"] and again["displayName"] == "Renamed Person"
    assert again["meta"]["version"] != first["meta"]["version"]


def test_fast_attribute_reads_match_the_stock_path_walk() -> None:
    server = AstroScim()
    server.add_org("o", "t")
    server.add_orphan("o", "Ada@Acme.example", "Ada", "Lovelace")
    server.edit_user("o", "ada@acme.example", "externalId", "00uABC")
    stored = next(iter(server._orgs["o"].storage._resources["User"].values()))
    for path in ("userName", "externalId", "displayName", "name.givenName", "emails.value", "active",
                 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"):
        with server.provider:
            binding = parametrize(Path, type(stored))(path).resolve()
        assert binding is not None
        assert AstroStorage._comparable_value(stored, binding) == InMemoryStorage._comparable_value(stored, binding)


def test_preload_looks_like_a_provisioned_org(astro: Astro) -> None:
    seed = generate(25, 3, seed=4)
    astro.server.preload(ORG, seed, teams=[seed.teams[1].name])
    assert len(astro.server.users(ORG)) == 25
    person = seed.people[3]
    user = astro.server.find_user(ORG, person.email)
    assert user is not None and user["name"]["givenName"] == person.first_name and user["active"] is True
    groups = astro.http.get("/Groups").json()
    assert groups["totalResults"] == 1
    team = groups["Resources"][0]
    assert team["displayName"] == seed.teams[1].name
    members = {m["display"] for m in team["members"]}
    assert members == {seed.person(k).email for k in seed.teams[1].member_keys}
    assert astro.http.get("/Users", params={"filter": f'userName eq "{person.email.upper()}"'}).json()[
        "totalResults"] == 1
    with pytest.raises(UniquenessException):  # duplicates are refused by the storage's uniqueness check
        astro.server.preload(ORG, seed, teams=[])


def test_cached_list_answers_follow_every_kind_of_write(astro: Astro) -> None:
    # List answers are cached per storage generation: each write below must show in the very next answer of
    # the same URL, and a cached answer must never be served to a wrong token.
    ids = [astro.new_user(f"cache{i}@acme.example")["id"] for i in range(3)]
    team = astro.new_group("Cached", ids[:1])
    url = "/Users?startIndex=1&count=100&excludedAttributes=meta"

    def names() -> list[str]:
        return sorted(r["userName"] for r in astro.http.get(url).json()["Resources"])

    def members() -> set[str]:
        return {m["value"] for m in astro.http.get("/Groups?count=100").json()["Resources"][0].get("members", [])}

    assert names() == names() == ["cache0@acme.example", "cache1@acme.example", "cache2@acme.example"]
    astro.new_user("cache3@acme.example")  # create
    assert "cache3@acme.example" in names()
    patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "userName",
                                                         "value": "renamed@acme.example"}]}
    assert astro.send("PATCH", f"/Users/{ids[0]}", patch).status_code in (200, 204)  # update
    assert "renamed@acme.example" in names() and "cache0@acme.example" not in names()
    assert astro.send("DELETE", f"/Users/{ids[1]}").status_code == 204  # delete
    assert "cache1@acme.example" not in names()
    assert members() == {ids[0]}
    add = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[2]}]}]}
    assert astro.send("PATCH", f"/Groups/{team['id']}", add).status_code in (200, 204)  # membership
    assert members() == {ids[0], ids[2]}
    wrong = astro.http.get(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert astro.http.get(url, headers={"Authorization": f"Bearer {TOKEN2}"}).status_code == 401  # other org's


def test_user_groups_follow_memberships_and_team_names(astro: Astro) -> None:
    """`User.groups` (RFC 7643 §4.1.2, read-only) is computed from the Teams, in lists and single reads alike,
    and stays true after a membership PATCH, a rename and a deletion (cached renderings included)."""
    ada, bob = astro.new_user("ada@acme.example"), astro.new_user("bob@acme.example")
    team = astro.new_group("Analytics", [ada["id"]])
    assert [m["value"] for m in team["members"]] == [ada["id"]]
    empty = astro.new_group("Empty")
    assert empty["members"] == []  # printed, as Okta's "Create Groups" answer does

    def groups_of(user_id: str) -> list[tuple[str, str]]:
        listed = {u["id"]: u for u in astro.send("GET", "/Users").json()["Resources"]}
        single = astro.send("GET", f"/Users/{user_id}").json()
        assert listed[user_id]["groups"] == single["groups"]
        return [(g["value"], g["display"]) for g in single["groups"]]

    assert groups_of(ada["id"]) == [(team["id"], "Analytics")] and groups_of(bob["id"]) == []
    astro.send("PATCH", f"/Groups/{team['id']}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": bob["id"]}]}]})
    assert groups_of(bob["id"]) == [(team["id"], "Analytics")]
    astro.send("PATCH", f"/Groups/{team['id']}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "replace", "value": {"id": team["id"], "displayName": "Data"}}]})
    assert groups_of(ada["id"]) == [(team["id"], "Data")]
    assert astro.send("DELETE", f"/Groups/{team['id']}").status_code == 204
    assert groups_of(ada["id"]) == [] and groups_of(bob["id"]) == []
    unknown = astro.send("PATCH", f"/Groups/{empty['id']}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "cl-no-such-user"}]}]})
    assert unknown.status_code == 400 and unknown.json()["scimType"] == "invalidValue"
    assert astro.member_ids(empty["id"]) == set()


def test_list_requests_honour_attributes_and_excluded_attributes(astro: Astro) -> None:
    """RFC 7644 §3.4.2.5 on list requests: `attributes` returns those (plus `id`, returned always), and
    `excludedAttributes` leaves those out; the values are the full answer's. The drift reader relies on it."""
    astro.server.preload(ORG, generate(12, 3, seed=3))
    full = {r["id"]: r for r in astro.http.get("/Users", params={"count": "50"}).json()["Resources"]}
    assert any(r["groups"] for r in full.values())
    asked = astro.http.get("/Users", params={"count": "50", "attributes": "userName,externalId,active,groups"})
    assert asked.status_code == 200
    listed = asked.json()["Resources"]
    assert len(listed) == len(full) == asked.json()["totalResults"]
    for item in listed:
        assert set(item) == {"schemas", "id", "userName", "externalId", "active", "groups"}
        assert {k: item[k] for k in ("userName", "externalId", "active", "groups")} == \
            {k: full[item["id"]][k] for k in ("userName", "externalId", "active", "groups")}
    # a sub-attribute: only that part of a complex multi-valued attribute
    emails = astro.http.get("/Users", params={"count": "50", "attributes": "emails.value"}).json()["Resources"]
    assert all(item["emails"] == [{"value": full[item["id"]]["emails"][0]["value"]}] for item in emails)

    excluded = astro.http.get("/Users", params={"count": "50", "excludedAttributes": "groups,meta,name"})
    for item in excluded.json()["Resources"]:
        whole = dict(full[item["id"]])
        for key in ("groups", "meta", "name"):
            whole.pop(key)
        assert item == whole

    teams = {g["id"]: g for g in astro.http.get("/Groups", params={"count": "50"}).json()["Resources"]}
    lean = astro.http.get("/Groups", params={"count": "50", "attributes": "displayName,members.value"}).json()
    for item in lean["Resources"]:
        whole = teams[item["id"]]
        assert item["displayName"] == whole["displayName"] and "meta" not in item and "externalId" not in item
        assert item.get("members", []) == [{"value": m["value"]} for m in whole["members"]]
    # both at once is a client error (scim2-models: mutually exclusive), answered as a SCIM 400
    both = astro.http.get("/Users", params={"attributes": "userName", "excludedAttributes": "meta"})
    assert both.status_code == 400 and both.json()["scimType"] == "invalidValue"


def test_write_answers_equal_the_read_answers(astro: Astro) -> None:
    """A create answers the resource as a GET of it does (the lean rendering of the list pages, not scim2-server's
    publish-and-dump, so it must not drift from it); a PATCH without `attributes` answers 204 with no body."""
    user = astro.new_user("grace.hopper@acme.example", name={"givenName": "Grace", "familyName": "Hopper"},
                          emails=[{"value": "grace.hopper@acme.example", "type": "work", "primary": True}])
    assert user["groups"] == []
    assert user == astro.send("GET", f"/Users/{user['id']}").json()
    resp = astro.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Navy",
                                          "members": [{"value": user["id"], "$ref": f"Users/{user['id']}"}]})
    assert resp.status_code == 201 and resp.headers["Location"] == resp.json()["meta"]["location"]
    group = resp.json()
    assert group == astro.send("GET", f"/Groups/{group['id']}").json()
    assert group["members"][0]["$ref"].startswith("http")  # a relative reference published as a URL
    empty = astro.new_group("Empty")
    assert empty["members"] == [] and empty == astro.send("GET", f"/Groups/{empty['id']}").json()
    patched = astro.send("PATCH", f"/Groups/{empty['id']}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": user["id"]}]}]})
    assert patched.status_code == 204 and not patched.content


def test_team_member_patches_keep_every_other_version_intact(astro: Astro) -> None:
    """Team PATCHes work on a copy that shares the stored member objects (no O(members) copy per PATCH): each
    shape Okta and Entra send gives the RFC result, and an answer read before a PATCH never changes after it."""
    ids = [astro.new_user(f"user{i}@acme.example")["id"] for i in range(6)]
    gid = astro.new_group("Crew", ids[:3])["id"]

    storage = astro.server._orgs[ORG].storage

    def patch(*ops: dict[str, Any]) -> None:
        resp = astro.send("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": list(ops)})
        assert resp.status_code in (200, 204), resp.text
        # the member ids remembered for the stored version are the ones it holds
        assert storage.member_ids(gid) == AstroStorage._member_ids(storage._resources["Group"][gid])

    before = astro.send("GET", f"/Groups/{gid}").json()
    stored_before = astro.server._orgs[ORG].storage._resources["Group"][gid]
    patch({"op": "Add", "path": "members", "value": [{"$ref": None, "value": ids[3]}]})  # Entra, one at a time
    stored_now = astro.server._orgs[ORG].storage._resources["Group"][gid]
    assert stored_now is not stored_before and stored_now.members[0] is stored_before.members[0]  # no copy made
    patch({"op": "add", "path": "members", "value": [{"value": ids[3]}, {"value": ids[4]}]})  # a repeat is kept once
    assert astro.member_ids(gid) == set(ids[:5])
    patch({"op": "Remove", "path": "members", "value": [{"value": ids[0]}]})  # Entra's removal
    patch({"op": "remove", "path": f'members[value eq "{ids[1]}"]'})  # Okta's removal
    assert astro.member_ids(gid) == set(ids[2:5])
    patch({"op": "replace", "value": {"id": gid, "displayName": "Crew"}},  # Okta: rename op first, then members
          {"op": "add", "path": "members", "value": [{"value": ids[5], "display": "user5@acme.example"}]})
    patch({"op": "replace", "path": f'members[value eq "{ids[5]}"].display', "value": "five"})  # in place: stock
    listed = {m["value"]: m for m in astro.send("GET", f"/Groups/{gid}").json()["members"]}
    assert set(listed) == set(ids[2:6]) and listed[ids[5]]["display"] == "five"
    patch({"op": "replace", "path": "members", "value": [{"value": ids[0]}]})
    assert astro.member_ids(gid) == {ids[0]}
    # the version read first is unchanged: no PATCH changed a stored member object in place
    assert [m.value for m in stored_before.members] == ids[:3]
    assert astro.send("GET", f"/Groups/{gid}").json()["meta"]["version"] != before["meta"]["version"]
    # Astro's rules still hold on the fast path: a member that is no user is refused, nothing is kept
    resp = astro.send("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "nobody"}]}]})
    assert resp.status_code == 400 and astro.member_ids(gid) == {ids[0]}
    other = astro.new_group("Other")["id"]
    resp = astro.send("PATCH", f"/Groups/{gid}", {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": ids[1]}, {"value": other, "type": "Group"}]}]})
    assert resp.status_code == 400 and astro.member_ids(gid) == {ids[0]}  # no nested Team, nothing kept
    assert storage.member_ids(gid) == {ids[0]}
    astro.server.delete_user(ORG, "user0@acme.example")  # leaves every Team
    assert astro.member_ids(gid) == set() and storage.member_ids(gid) == set()
    patch({"op": "add", "path": "members", "value": [{"value": ids[2]}]})
    users = {u["id"]: u for u in astro.server.users(ORG)}
    assert [g["value"] for g in users[ids[2]]["groups"]] == [gid] and users[ids[1]]["groups"] == []


def test_pages_with_attributes_equal_scim2_servers_rendering_and_follow_writes(astro: Astro) -> None:
    """Pages asked with attributes/excludedAttributes are served from a per-choice JSON cache: each equals what
    scim2-server's own search_response renders (with Astro's additions), and a write is seen at once."""
    from connector.sandbox.astro.scim import AstroService

    astro.server.preload(ORG, generate(25, 4, seed=5))
    server = astro.server
    ours = server._orgs[ORG].app.service
    base = f"{astro.served.url}/scim/v2/{ORG}"
    cases = [
        ("/Users", server.user_type, {"count": "10", "attributes": "userName,active,groups"}),
        ("/Users", server.user_type, {"startIndex": "11", "count": "10", "attributes": "emails.value,name"}),
        ("/Users", server.user_type, {"count": "30", "excludedAttributes": "groups,meta"}),
        ("/Users", server.user_type, {"count": "30", "excludedAttributes": "name"}),
        ("/Groups", server.group_type, {"count": "10", "attributes": "displayName,members.value"}),
        ("/Groups", server.group_type, {"count": "10", "excludedAttributes": "members"}),
    ]
    for endpoint, rtype, params in cases:
        served = astro.http.get(endpoint, params=params).json()
        assert astro.http.get(endpoint, params=params).json() == served  # the second from the caches
        stored = server._orgs[ORG].storage._resources[rtype.name]
        ids = [r["id"] for r in served["Resources"]]
        with server.provider:
            request = parametrize(SearchRequest, ours.get_model(rtype)).model_validate(params)
            request.start_index = request.start_index or 1
            expected = super(AstroService, ours).search_response(
                base, [rtype], SearchPage(served["totalResults"], [stored[i] for i in ids]), request).body
        for item, rid in zip(expected["Resources"], ids, strict=True):
            ours._empty_lists(item, stored[rid], request)
        assert served == expected, (endpoint, params)

    # a write shows in the cached choices: a renamed user, and a Team change in its members' `groups`
    first = astro.http.get("/Users", params={"count": "1", "attributes": "userName,groups"}).json()["Resources"][0]
    server.edit_user(ORG, first["userName"], "userName", "renamed.person@acme.example")
    team = astro.new_group("Late Team", [first["id"]])
    again = astro.http.get("/Users", params={"count": "1", "attributes": "userName,groups"}).json()["Resources"][0]
    assert again["userName"] == "renamed.person@acme.example"
    assert team["id"] in [g["value"] for g in again["groups"]]


def test_matching_lookups_equal_scim2_servers_own_query_reading(astro: Astro) -> None:
    """The engines' `userName eq "..."` lookups reuse one validated query per attribute (AstroService._eq_lookup):
    the request it builds is the one scim2-server's validation gives, and what it cannot build the same way
    (escapes, non-ASCII, other operators, unknown attributes) takes the stock path, errors included."""
    server = astro.server
    astro.new_user("ada@acme.example", externalId="00uADA", displayName="Ada")
    astro.new_group("Team \u00e9")
    ours = server._orgs[ORG].app.service
    stock = ScimService(server.provider)
    for rtype, query in [
        (server.user_type, {"filter": 'userName eq "ada@acme.example"'}),
        (server.user_type, {"filter": 'userName eq "bob@acme.example"', "startIndex": "1", "count": "100"}),
        (server.user_type, {"filter": 'externalId eq "00uADA"'}),
        (server.user_type, {"filter": 'userName eq ""'}),
        (server.group_type, {"filter": 'displayName eq "Team 1"', "excludedAttributes": "members"}),
    ]:
        with server.provider:
            built = ours._eq_lookup([rtype], query)
            expected, position = stock.read_search_query([rtype], query)
        assert built is not None and position is None
        assert built == expected and repr(built.filter.ast) == repr(expected.filter.ast), query  # type: ignore[union-attr]
    for query in ({"filter": 'userName eq "a\\"b"'}, {"filter": 'displayName eq "Team \u00e9"'},
                  {"filter": 'userName co "ada"'}, {"filter": 'userName eq "x"', "cursor": ""}):
        with server.provider:
            assert ours._eq_lookup([server.user_type], query) is None, query
    # Served answers: a hit, a miss, an escaped value, a non-ASCII one and an invalid query, each as the stock path.
    assert [r["userName"] for r in astro.http.get(
        "/Users", params={"filter": 'userName eq "ada@acme.example"'}).json()["Resources"]] == ["ada@acme.example"]
    assert astro.http.get("/Users", params={"filter": 'userName eq "nobody@acme.example"'}).json()[
        "totalResults"] == 0
    assert astro.http.get("/Users", params={"filter": 'userName eq "a\\"b"'}).json()["totalResults"] == 0
    assert astro.http.get("/Groups", params={"filter": 'displayName eq "Team \u00e9"'}).json()["totalResults"] == 1
    bad = astro.http.get("/Users", params={"filter": 'userName eq "x"', "count": "-"})
    assert bad.status_code == 400 and bad.json()["status"] == "400", bad.text
