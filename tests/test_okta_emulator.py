"""The Okta emulator through the official `okta` SDK 3.x over loopback HTTP: shapes parse into SDK models,
paging, rate limits, errors, and the sandbox admin endpoints."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
from okta.models import (
    ApplicationGroupAssignment,
    AppUserAssignRequest,
    AppUserCredentials,
    AppUserProfileRequestPayload,
    AppUserUpdateRequest,
    CreateGroupPushMappingRequest,
    ProfileMappingProperty,
    ProfileMappingRequest,
    UpdateFeatureForApplicationRequest,
    UpdateGroupPushMappingRequest,
)
from okta.pagination import paginate_all

from connector.sandbox.core import Sandbox
from connector.sandbox.okta.api import OktaEmulator
from connector.sandbox.seed import generate
from connector.sandbox.server import ServedApp

# The okta SDK refuses http:// org URLs unless this is set before a Client is built (reference §2.3).
os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = "true"

if TYPE_CHECKING:
    from okta.client import Client as OktaSdkClient

# The okta SDK's client (~4 s to import) is needed by this module and test_okta_engine.py and
# test_okta_provider_sdk.py only: one xdist worker runs the three, so one worker imports it.
pytestmark = pytest.mark.xdist_group("okta-sdk")

TOKEN = "00TestTokenForTheOktaEmulator000000000000"
T = TypeVar("T")


def Client(config: dict[str, Any]) -> OktaSdkClient:  # noqa: N802 - stands in for the SDK's class
    """okta.client.Client, imported when a test first builds one: the import is ~4 s of CPU, which every xdist
    worker paid at collection when it sat at the top of this module; now only the worker running this group."""
    from okta.client import Client as SdkClient

    return SdkClient(config)


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


class World:
    """The shared sandbox seen from Okta: the emulator, its URL and token, and the Okta side's Astro org."""

    def __init__(self, sb: Sandbox) -> None:
        assert sb.okta is not None and sb.okta_url is not None
        self.sb = sb
        self.seed = sb.seed_org
        self.okta: OktaEmulator = sb.okta
        self.url = sb.okta_url
        self.token = sb.okta_token
        self.astro = sb.astro
        self.astro_org = sb.astro_orgs["okta"]
        self.app_id = str(self.okta.app_by_label("Astro")["id"])

    def client(self) -> Client:
        return Client({"orgUrl": self.url, "token": self.token})

    def raw(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"SSWS {self.token}"} if auth else {}
        headers.update(kw.pop("headers", {}))
        return httpx.request(method, self.url + path, headers=headers, **kw)

    def enable(self) -> None:
        self.okta.enable_provisioning(self.app_id, self.astro_org.scim_url, self.astro_org.token)

    def group_id(self, name: str) -> str:
        return str(self.okta.group_by_name(name)["id"])


@pytest.fixture(scope="module")
def shared() -> Iterator[World]:
    """Read-only tests share one sandbox."""
    with Sandbox(users=30, groups=4, seed=7) as sb:
        yield World(sb)


@pytest.fixture
def world(sandbox: Sandbox) -> World:
    """Tests that change state get their own (the shared conftest sandbox: 12 people, 3 teams)."""
    return World(sandbox)


async def _all(method: Callable[..., Any], limit: int, **kw: Any) -> list[Any]:
    return [item async for item in paginate_all(method, limit=limit, **kw)]


# -- users, groups, types ------------------------------------------------------------------------------------


def test_list_users_pages_through_everyone_with_the_sdk(shared: World) -> None:
    async def go() -> tuple[list[Any], list[Any]]:
        async with shared.client() as c:
            paged = await _all(lambda **kw: c.list_users(**kw), limit=7)
            first, resp, err = await c.list_users(limit=7)
            assert err is None
            # The SDK keeps only the last link header; it must be the next page's.
            assert 'rel="next"' in resp.headers["Link"] and "after=" in resp.headers["Link"]
            return paged, first

    paged, first = run(go())
    logins = [u.profile.login for u in paged]
    assert len(logins) == len(set(logins)) == len(shared.seed.people) + 1  # + the org admin
    assert {p.email for p in shared.seed.people} <= set(logins)
    assert [u.id for u in first] == [u.id for u in paged[:7]]
    assert paged[1].profile.first_name == shared.seed.people[0].first_name
    assert paged[1].profile.profile_url == f"https://acme.example/people/{shared.seed.people[0].key}"


def test_link_headers_are_two_separate_headers_self_then_next(shared: World) -> None:
    resp = shared.raw("GET", "/api/v1/users?limit=5")
    links = resp.headers.get_list("link")
    assert len(links) == 2
    assert links[0].endswith('rel="self"') and links[1].endswith('rel="next"')
    # The last page has no next link.
    last = shared.raw("GET", "/api/v1/users?limit=200")
    assert [link for link in last.headers.get_list("link") if "next" in link] == []


def test_user_search_filter_and_q(shared: World) -> None:
    person = shared.seed.people[3]

    async def go() -> tuple[list[Any], list[Any], list[Any]]:
        async with shared.client() as c:
            by_search, _, e1 = await c.list_users(
                search=f'profile.department eq "{person.department}" and status eq "ACTIVE"'
            )
            by_q, _, e2 = await c.list_users(q=person.first_name)
            by_filter, _, e3 = await c.list_users(filter=f'profile.login eq "{person.email}"')
            assert (e1, e2, e3) == (None, None, None)
            return by_search, by_q, by_filter

    by_search, by_q, by_filter = run(go())
    expected = {p.email for p in shared.seed.people if p.department == person.department}
    assert {u.profile.login for u in by_search} == expected
    assert person.email in {u.profile.login for u in by_q}
    assert all(u.profile.first_name.startswith(person.first_name) for u in by_q)
    assert [u.profile.login for u in by_filter] == [person.email]


def test_get_user_by_id_login_and_me(shared: World) -> None:
    person = shared.seed.people[0]

    async def go() -> tuple[Any, Any, Any]:
        async with shared.client() as c:
            by_login, _, _ = await c.get_user(person.email)
            by_id, _, _ = await c.get_user(by_login.id)
            me, _, _ = await c.get_user("me")
            return by_login, by_id, me

    by_login, by_id, me = run(go())
    assert by_login.id == by_id.id and by_id.profile.email == person.email
    assert by_id.status.value == "ACTIVE" and by_id.id.startswith("00u") and len(by_id.id) == 20
    assert me.profile.login == "admin@acme.example"


def test_groups_members_and_user_groups(shared: World) -> None:
    team = shared.seed.teams[1]

    async def go() -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        async with shared.client() as c:
            groups, _, err = await c.list_groups(search='type eq "OKTA_GROUP"', expand="stats")
            assert err is None
            gid = next(g.id for g in groups if g.profile.actual_instance.name == team.name)
            members = await _all(lambda **kw: c.list_group_users(gid, **kw), limit=3)
            q, _, _ = await c.list_groups(q=team.name[:4])
            user_groups, _, _ = await c.list_user_groups(members[0].id)
            return groups, members, q, user_groups

    groups, members, q, user_groups = run(go())
    assert [g.profile.actual_instance.name for g in groups] == [t.name for t in shared.seed.teams]
    stats = {g.profile.actual_instance.name: g.embedded.stats.users_count for g in groups}
    assert stats == {t.name: len(t.member_keys) for t in shared.seed.teams}
    by_key = {p.key: p.email for p in shared.seed.people}
    assert sorted(m.profile.login for m in members) == sorted(by_key[k] for k in team.member_keys)
    assert team.name in {g.profile.actual_instance.name for g in q}
    assert team.name in {g.profile.actual_instance.name for g in user_groups}


def test_user_types(shared: World) -> None:
    async def go() -> list[Any]:
        async with shared.client() as c:
            types, _, err = await c.list_user_types()
            assert err is None
            return list(types)

    types = run(go())
    assert len(types) == 1 and types[0].default and types[0].id.startswith("oty") and types[0].name == "user"


# -- apps ----------------------------------------------------------------------------------------------------


def test_list_and_get_applications(shared: World) -> None:
    async def go() -> tuple[list[Any], list[Any], Any]:
        async with shared.client() as c:
            listed, _, err = await c.list_applications(q="astro")
            assert err is None
            filtered, _, _ = await c.list_applications(filter='name eq "astronomer"')
            app, _, err = await c.get_application(shared.app_id)
            assert err is None
            return listed, filtered, app

    listed, filtered, app = run(go())
    assert sorted(a.label for a in listed) == ["Astro", "Astro SCIM (custom)"]
    assert [a.label for a in filtered] == ["Astro"]
    assert type(app).__name__ == "SamlApplication" and app.sign_on_mode.value == "SAML_2_0"
    # SDK defect #7: the model drops settings.app; the raw JSON has the OIN instance settings.
    raw = shared.raw("GET", f"/api/v1/apps/{shared.app_id}").json()
    assert "organizationId" in raw["settings"]["app"]


def test_features_need_provisioning_then_update_partially(world: World) -> None:
    async def go() -> tuple[Any, Any, Any]:
        async with world.client() as c:
            before = await c.list_features_for_application(world.app_id)
            world.enable()
            feats, _, err = await c.list_features_for_application(world.app_id)
            assert err is None
            body = UpdateFeatureForApplicationRequest.from_dict(
                {"create": {"lifecycleCreate": {"status": "ENABLED"}}}
            )
            updated, _, err = await c.update_feature_for_application(world.app_id, "USER_PROVISIONING", body)
            assert err is None
            return before, feats, updated

    before, feats, updated = run(go())
    err = before[-1]
    assert err.status == 400 and err.error_code == "E0000001"
    assert err.error_causes[0]["errorSummary"] == "Provisioning is not enabled for the app instance."
    caps = feats[0].capabilities
    assert feats[0].name.value == "USER_PROVISIONING"
    assert caps.create.lifecycle_create.status.value == "DISABLED"
    new = updated.capabilities
    assert new.create.lifecycle_create.status.value == "ENABLED"
    assert new.update.profile.status.value == "DISABLED"  # partial update left the rest alone
    assert "PUSH_NEW_USERS" in world.raw("GET", f"/api/v1/apps/{world.app_id}").json()["features"]


def test_provisioning_connection_answers_unknown_and_configures_nothing(world: World) -> None:
    from pydantic import ValidationError

    async def go() -> None:
        async with world.client() as c:
            # SDK defect #5: top-level authScheme UNKNOWN does not fit the SDK's TOKEN-only enum.
            with pytest.raises(ValidationError):
                await c.get_default_provisioning_connection_for_application(world.app_id)

    run(go())
    got = world.raw("GET", f"/api/v1/apps/{world.app_id}/connections/default")
    assert got.status_code == 200
    assert got.json()["status"] == "UNKNOWN" and got.json()["authScheme"] == "UNKNOWN"
    assert got.json()["profile"] == {"authScheme": "UNKNOWN"}
    posted = world.raw(
        "POST",
        f"/api/v1/apps/{world.app_id}/connections/default?activate=true",
        json={
            "baseUrl": "https://example.test/scim",
            "profile": {"authScheme": "TOKEN", "token": "secret-xyz"},
        },
    )
    assert posted.status_code == 200 and posted.json()["status"] == "UNKNOWN"
    assert "secret-xyz" not in posted.text
    # Still not provisioning: the connection call did not configure anything.
    assert world.raw("GET", f"/api/v1/apps/{world.app_id}/features").status_code == 400


def test_profile_mappings_list_get_update_and_remove(world: World) -> None:
    async def go() -> tuple[list[Any], list[Any], Any, Any]:
        async with world.client() as c:
            types, _, _ = await c.list_user_types()
            to_app, _, err = await c.list_profile_mappings(source_id=types[0].id, target_id=world.app_id)
            assert err is None
            from_app, _, _ = await c.list_profile_mappings(source_id=world.app_id)
            got, _, _ = await c.get_profile_mapping(to_app[0].id)
            req = ProfileMappingRequest(
                properties={
                    "displayName": ProfileMappingProperty(expression="user.displayName", push_status="PUSH"),
                    "profileUrl": ProfileMappingProperty(
                        expression="user.profileUrl", push_status="DONT_PUSH"
                    ),
                }
            )
            updated, _, err = await c.update_profile_mapping(to_app[0].id, req)
            assert err is None
            return to_app, from_app, got, updated

    to_app, from_app, got, updated = run(go())
    assert len(to_app) == 1 and to_app[0].target.type == "appuser" and to_app[0].source.type == "user"
    assert from_app[0].target.type == "user"
    assert set(got.properties) == {"givenName", "familyName", "email"}
    assert got.properties["givenName"].expression == "user.firstName"
    assert updated.properties["profileUrl"].push_status.value == "DONT_PUSH"
    assert set(updated.properties) == {"givenName", "familyName", "email", "displayName", "profileUrl"}
    # Removal needs an explicit null, which the SDK strips (defect #6): send it raw.
    mid = to_app[0].id
    removed = world.raw(
        "POST",
        f"/api/v1/mappings/{mid}",
        json={"properties": {"profileUrl": {"expression": None, "pushStatus": None}}},
    )
    assert removed.status_code == 200 and "profileUrl" not in removed.json()["properties"]


def test_app_user_assign_get_update_list_unassign(world: World) -> None:
    person = world.seed.people[2]

    async def go() -> tuple[Any, Any, list[Any], Any, Any]:
        async with world.client() as c:
            user, _, _ = await c.get_user(person.email)
            req = AppUserAssignRequest(
                id=user.id, scope="USER", credentials=AppUserCredentials(user_name=person.email)
            )
            assigned, _, err = await c.assign_user_to_application(world.app_id, req)
            assert err is None
            got, _, _ = await c.get_application_user(world.app_id, user.id)
            listed, _, _ = await c.list_application_users(world.app_id, expand="user")
            upd = AppUserUpdateRequest(AppUserProfileRequestPayload(profile={"title": "Lead"}))
            updated, _, err = await c.update_application_user(world.app_id, user.id, upd)
            assert err is None
            gone = await c.unassign_user_from_application(world.app_id, user.id)
            return assigned, got, listed, updated, gone

    assigned, got, listed, updated, gone = run(go())
    assert assigned.credentials.user_name == person.email and assigned.scope == "USER"
    assert got.status.value == "ACTIVE" and got.sync_state.value == "DISABLED"  # no provisioning yet
    assert got.profile["givenName"] == person.first_name
    assert [u.embedded["user"]["profile"]["login"] for u in listed] == [person.email]
    assert updated.profile["title"] == "Lead"
    assert gone[-1] is None
    assert world.okta.app_user(world.app_id, person.email) is None


def test_an_app_users_page_with_expand_user_is_each_app_user_as_read_alone(world: World) -> None:
    """The page of app users with expand=user is assembled from bytes (connector/sandbox/okta/state.py,
    app_users_bytes), not rendered per object: it must be what GET of each app user with expand=user gives,
    provisioned, unprovisioned (null externalId left out) and with a null passwordChanged kept."""
    world.enable()
    people = world.seed.people[:3]
    for person in people:
        uid = world.okta.user_by_login(person.email)["id"]
        got = world.raw("POST", f"/api/v1/apps/{world.app_id}/users",
                        json={"id": uid, "scope": "USER", "credentials": {"userName": person.email}})
        assert got.status_code == 200, got.text
    first = world.okta.state.app_users[world.app_id].get(world.okta.user_by_login(people[0].email)["id"])
    assert world.okta.engine.provision(world.app_id, first)  # into Astro: its externalId is set
    page = world.raw("GET", f"/api/v1/apps/{world.app_id}/users", params={"expand": "user", "limit": 500})
    assert page.status_code == 200
    listed = page.json()
    assert len(listed) >= len(people)
    for au in listed:
        alone = world.raw("GET", f"/api/v1/apps/{world.app_id}/users/{au['id']}", params={"expand": "user"})
        assert au == alone.json()
        assert "passwordChanged" in au and "_embedded" in au
    assert {"externalId" in au for au in listed} == {True, False}  # both kinds of row were compared


def test_group_assignments_give_users_group_scope(world: World) -> None:
    gid = world.group_id("Astro Users")

    async def go() -> tuple[Any, list[Any], Any, list[Any], Any]:
        async with world.client() as c:
            assigned, _, err = await c.assign_group_to_application(
                world.app_id, gid, ApplicationGroupAssignment()
            )
            assert err is None
            groups, _, _ = await c.list_application_group_assignments(world.app_id, expand="group")
            got, _, _ = await c.get_application_group_assignment(world.app_id, gid)
            users = await _all(lambda **kw: c.list_application_users(world.app_id, **kw), limit=5)
            gone = await c.unassign_application_from_group(world.app_id, gid)
            return assigned, groups, got, users, gone

    assigned, groups, got, users, gone = run(go())
    assert assigned.id == gid and got.id == gid
    assert [g.id for g in groups] == [gid]
    assert len(users) == len(world.seed.people) and {u.scope for u in users} == {"GROUP"}
    assert gone[-1] is None
    assert world.raw("GET", f"/api/v1/apps/{world.app_id}/users").json() == []


def test_group_push_mapping_lifecycle(world: World) -> None:
    world.enable()
    name = world.seed.teams[1].name
    source = world.group_id(name)

    async def go() -> tuple[Any, list[Any], list[Any], Any, Any, Any, Any]:
        async with world.client() as c:
            req = CreateGroupPushMappingRequest(source_group_id=source, status="INACTIVE", target_group_name=name)
            created, resp, err = await c.create_group_push_mapping(world.app_id, req)
            assert err is None and resp.status_code == 201
            listed, _, _ = await c.list_group_push_mappings(world.app_id, source_group_id=source)
            active_only, _, _ = await c.list_group_push_mappings(world.app_id, status="ACTIVE")
            got, _, _ = await c.get_group_push_mapping(world.app_id, created.id)
            activated, _, err = await c.update_group_push_mapping(
                world.app_id, created.id, UpdateGroupPushMappingRequest(status="ACTIVE")
            )
            assert err is None
            assert world.astro.find_group(world.astro_org.org_id, name) is not None  # ACTIVE pushed the group
            still_active = await c.delete_group_push_mapping(
                world.app_id, created.id, delete_target_group=True
            )
            await c.update_group_push_mapping(
                world.app_id, created.id, UpdateGroupPushMappingRequest(status="INACTIVE")
            )
            deleted = await c.delete_group_push_mapping(world.app_id, created.id, delete_target_group=True)
            return created, listed, active_only, got, activated, still_active, deleted

    created, listed, active_only, got, activated, still_active, deleted = run(go())
    assert created.id.startswith("gPm") and created.status == "INACTIVE" and created.source_group_id == source
    assert [m.id for m in listed] == [created.id] and active_only == []
    assert got.id == created.id
    assert activated.status == "ACTIVE" and activated.target_group_id.startswith("00g")
    assert activated.last_push is not None
    assert still_active[-1].status == 400  # must be INACTIVE before delete
    assert deleted[-1] is None
    assert (
        world.astro.find_group(world.astro_org.org_id, name) is None
    )  # deleteTargetGroup=true removed the Team


def test_push_delete_requires_delete_target_group_param(world: World) -> None:
    world.enable()
    source = world.group_id(world.seed.teams[1].name)
    created = world.raw(
        "POST",
        f"/api/v1/apps/{world.app_id}/group-push/mappings",
        json={"sourceGroupId": source, "status": "INACTIVE", "targetGroupName": world.seed.teams[1].name},
    )
    assert created.status_code == 201
    mid = created.json()["id"]
    missing = world.raw("DELETE", f"/api/v1/apps/{world.app_id}/group-push/mappings/{mid}")
    assert missing.status_code == 400 and missing.json()["errorCode"] == "E0000001"
    ok = world.raw("DELETE", f"/api/v1/apps/{world.app_id}/group-push/mappings/{mid}?deleteTargetGroup=false")
    assert ok.status_code == 204


def test_push_mapping_create_needs_a_target_name_or_id(world: World) -> None:
    """Okta's CreateGroupPushMappingRequest: targetGroupId is "Required if `targetGroupName` is not provided" and
    the reverse ("Either targetGroupId or targetGroupName must be provided, but not both"): neither is a 400."""
    world.enable()
    name = world.seed.teams[1].name
    path = f"/api/v1/apps/{world.app_id}/group-push/mappings"
    neither = world.raw("POST", path, json={"sourceGroupId": world.group_id(name), "status": "INACTIVE"})
    assert neither.status_code == 400, neither.text
    assert neither.json()["errorCode"] == "E0000001" and "targetGroupName" in neither.json()["errorSummary"]
    assert world.raw("GET", path).json() == []  # nothing was made
    named = world.raw("POST", path, json={"sourceGroupId": world.group_id(name), "status": "INACTIVE",
                                          "targetGroupName": name})
    assert named.status_code == 201, named.text


# -- auth, errors, rate limits -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["SSWS {t}", "SSWS{t}", "Bearer {t}"])
def test_accepted_authorization_forms(shared: World, header: str) -> None:
    resp = shared.raw(
        "GET", "/api/v1/users/me", auth=False, headers={"Authorization": header.format(t=shared.token)}
    )
    assert resp.status_code == 200


@pytest.mark.parametrize("header", [None, "SSWS wrong", "Bearer", "Basic abc"])
def test_bad_or_missing_token_is_401_e0000011(shared: World, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    resp = shared.raw("GET", "/api/v1/users", auth=False, headers=headers)
    assert resp.status_code == 401
    body = resp.json()
    assert body["errorCode"] == "E0000011" and body["errorSummary"] == "Invalid token provided"
    assert body["errorLink"] == "E0000011" and body["errorId"].startswith("oae") and body["errorCauses"] == []
    assert resp.headers["Content-Type"] == "application/json"


def test_sdk_reports_wrong_token_as_okta_error(shared: World) -> None:
    async def go() -> Any:
        async with Client({"orgUrl": shared.url, "token": "not-the-token"}) as c:
            return await c.list_users()

    result = run(go())
    assert result[-1].status == 401 and result[-1].error_code == "E0000011"


def test_unknown_ids_are_404_e0000007(shared: World) -> None:
    async def go() -> tuple[Any, Any]:
        async with shared.client() as c:
            return await c.get_user("00unknown"), await c.get_application("0oanope")

    user, app = run(go())
    assert user[-1].status == 404 and user[-1].error_code == "E0000007"
    assert user[-1].error_summary == "Not found: Resource not found: 00unknown (User)"
    assert app[-1].error_summary == "Not found: Resource not found: 0oanope (App)"


def test_bad_bodies_are_400(world: World) -> None:
    malformed = world.raw(
        "POST",
        f"/api/v1/apps/{world.app_id}/users",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400 and malformed.json()["errorCode"] == "E0000003"
    no_id = world.raw("POST", f"/api/v1/apps/{world.app_id}/users", json={"scope": "USER"})
    assert no_id.status_code == 400 and no_id.json()["errorCode"] == "E0000001"
    mid = world.raw("GET", f"/api/v1/mappings?targetId={world.app_id}").json()[0]["id"]
    unknown_attr = world.raw(
        "POST", f"/api/v1/mappings/{mid}", json={"properties": {"shoeSize": {"expression": "user.firstName"}}}
    )
    assert unknown_attr.status_code == 400 and "shoeSize" in unknown_attr.text
    bad_source = world.raw(
        "POST", f"/api/v1/mappings/{mid}", json={"properties": {"title": {"expression": "user.shoeSize"}}}
    )
    assert bad_source.status_code == 400 and "shoeSize" in bad_source.json()["errorCauses"][0]["errorSummary"]
    bad_search = world.raw("GET", "/api/v1/users", params={"search": "status eq"})
    assert bad_search.status_code == 400 and bad_search.json()["errorCode"] == "E0000031"


def test_rate_limit_headers_count_down_per_family() -> None:
    clock = [1_800_000_010.0]
    okta = OktaEmulator(TOKEN, rate_limit=3, clock=lambda: clock[0])
    served = ServedApp("okta", okta.app).start()
    try:

        def get(path: str) -> httpx.Response:
            return httpx.get(served.url + path, headers={"Authorization": f"SSWS {TOKEN}"})

        seen = [get("/api/v1/users") for _ in range(4)]
        assert [r.status_code for r in seen] == [200, 200, 200, 429]
        assert [r.headers["X-Rate-Limit-Remaining"] for r in seen] == ["2", "1", "0", "0"]
        assert {r.headers["X-Rate-Limit-Limit"] for r in seen} == {"3"}
        assert {r.headers["X-Rate-Limit-Reset"] for r in seen} == {"1800000060"}
        assert seen[3].json()["errorCode"] == "E0000047"
        assert "Date" in seen[3].headers and len(seen[3].headers.get_list("Date")) == 1
        assert get("/api/v1/groups").status_code == 200  # another family has its own budget
        clock[0] += 60  # the next minute
        assert get("/api/v1/users").status_code == 200
    finally:
        served.stop()
        okta.close()


def test_sdk_retries_after_the_emulators_429(monkeypatch: pytest.MonkeyPatch) -> None:
    from okta.request_executor import RequestExecutor

    # The SDK backs off (X-Rate-Limit-Reset - Date + 1 s) with a real asyncio.sleep: record what it was told to
    # wait instead of waiting it (as test_graph_emulator does for msgraph's retry handler).
    waits: list[float] = []

    async def recorded(_executor: Any, seconds: float) -> None:
        waits.append(float(seconds))
        await asyncio.sleep(0)

    monkeypatch.setattr(RequestExecutor, "pause_for_backoff", recorded)
    okta = OktaEmulator(TOKEN)
    seen: list[dict[str, str]] = []
    lock = threading.Lock()

    def flaky(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from werkzeug.wrappers import Request

        with lock:
            seen.append({k: v for k, v in environ.items() if k.startswith("HTTP_")})
            first = len(seen) == 1
        if first:
            return okta.throttle_response(Request(environ))(environ, start_response)
        return okta.app(environ, start_response)

    served = ServedApp("okta", flaky).start()
    try:

        async def go() -> Any:
            async with Client({"orgUrl": served.url, "token": TOKEN}) as c:
                return await c.list_users(limit=1)

        users, _resp, err = run(go())
    finally:
        served.stop()
        okta.close()
    assert err is None and len(users) == 1
    assert len(seen) == 2
    # once, about a second: the reset is the 429's own second (0 if the Date was stamped a second later)
    assert len(waits) == 1 and 0 <= waits[0] <= 1, waits
    assert "HTTP_X_OKTA_RETRY_COUNT" not in seen[0]
    assert seen[1]["HTTP_X_OKTA_RETRY_COUNT"] == "1"


# -- sandbox admin -------------------------------------------------------------------------------------------


def test_sandbox_admin_endpoints(world: World) -> None:
    apps = httpx.get(world.url + "/_sandbox/okta/apps", params={"label": "Astro"}).json()
    assert [a["id"] for a in apps] == [world.app_id]
    enabled = httpx.post(
        world.url + f"/_sandbox/apps/{world.app_id}/provisioning",
        json={"baseUrl": world.astro_org.scim_url, "token": world.astro_org.token},
    )
    assert enabled.status_code == 200 and world.astro_org.token not in enabled.text
    assert world.raw("GET", f"/api/v1/apps/{world.app_id}/features").status_code == 200
    app = world.raw("GET", f"/api/v1/apps/{world.app_id}").json()
    assert app["settings"]["app"]["organizationId"] == world.astro_org.org_id

    person = world.seed.people[0]
    world.raw(
        "POST",
        f"/api/v1/apps/{world.app_id}/users",
        json={"id": world.okta.user_by_login(person.email)["id"]},
    )
    err = httpx.post(
        world.url + f"/_sandbox/okta/apps/{world.app_id}/users/{person.email}/error",
        json={"summary": "Conflict"},
    )
    assert err.status_code == 204
    au = world.raw("GET", f"/api/v1/apps/{world.app_id}/users").json()[0]
    assert au["syncState"] == "ERROR"
    assert world.okta.provisioning_errors(world.app_id) == {person.email: "Conflict"}

    gone = httpx.post(world.url + f"/_sandbox/okta/users/{person.email}/deactivate-silently")
    assert gone.status_code == 204
    assert world.okta.user_by_login(person.email)["status"] == "DEPROVISIONED"
    assert world.raw("GET", f"/api/v1/apps/{world.app_id}/users").json() == []

    limited = httpx.put(world.url + "/_sandbox/okta/rate-limit", json={"perMinute": 1000, "family": "apps"})
    assert limited.status_code == 204
    assert world.raw("GET", "/api/v1/apps").headers["X-Rate-Limit-Limit"] == "1000"
    assert world.raw("GET", "/api/v1/users").headers["X-Rate-Limit-Limit"] == "600"


def test_a_big_org_pages_from_any_cursor() -> None:
    from werkzeug.test import Client as WClient

    # Big enough for a 1,000-member page of "Astro Users"; how fast 50k users load and a cursor near their end
    # resumes is a figure in benchmarks/timing.py, not asserted here.
    seed = generate(1_500, 20, 1)
    okta = OktaEmulator(TOKEN)
    okta.load(seed)
    client = WClient(okta.app)
    headers = {"Authorization": f"SSWS {TOKEN}"}
    cursor = okta.user_by_login(seed.people[1_399].email)["id"]
    page = client.get(f"/api/v1/users?limit=200&after={cursor}", headers=headers)
    assert [u["profile"]["login"] for u in page.get_json()] == [p.email for p in seed.people[1_400:]]
    assert [link for link in page.headers.getlist("link") if "next" in link] == []
    everyone = okta.group_by_name("Astro Users")["id"]
    members = client.get(f"/api/v1/groups/{everyone}/users?limit=1000", headers=headers)
    assert len(members.get_json()) == 1000
    okta.close()
