"""The audit's fast paths give the findings of the slow ones, on the same data, with drift injected.

Fast: the Okta view over the read-only client (okta/reads.py: no SDK, pages streamed into the view), the Graph
view's reads over Entra's read client, the reconcile shortcut for equal values. Slow: the SDK clients the other
commands use, and the full normalisation. Real emulators on loopback; drift injected behind the tool's back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.audit.reconcile import normalise, run_audit, same_value
from connector.config.load import load_config
from connector.providers.okta.client import OktaClient
from connector.providers.okta.provider import OktaProvider
from connector.providers.okta.reads import OktaReadClient, read_client
from connector.sandbox.core import Sandbox
from connector.views import IdpView


def _okta_app(sb: Sandbox) -> str:
    assert sb.okta is not None
    return str(sb.okta.app_by_label("Astro")["id"])


def _inject_okta_drift(sb: Sandbox) -> None:
    """One of each kind the Okta view feeds: missing, orphan, deactivated, edited, membership, IdP errors."""
    assert sb.okta is not None
    org = sb.astro_orgs["okta"]
    people = sb.seed_org.people
    team, other = sb.default_team_names()
    sb.astro.delete_user(org.org_id, people[5].email)
    sb.astro.add_orphan(org.org_id, "eve.orphan@acme.example", "Eve", "Orphan")
    sb.okta.deactivate_user_silently(people[1].email)
    sb.astro.edit_user(org.org_id, people[3].email, "name.givenName", "Mallory")
    members = sb.seed_org.team(other).member_keys
    sb.astro.drop_membership(org.org_id, other, sb.seed_org.person(members[0]).email)
    sb.okta.set_app_user_error(_okta_app(sb), people[4].email, "SCIM 409: userName already exists")
    with httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"}) as scim:
        listed = scim.get("/Groups", params={"filter": f'displayName eq "{team}"'}).json()["Resources"][0]
        assert scim.delete(f"/Groups/{listed['id']}").status_code == 204


def _summary(view: IdpView) -> tuple[Any, ...]:
    users = sorted((u.id, u.user_name, u.active, sorted(u.expected.items()), u.scim_id, u.error) for u in view.users)
    groups = sorted((g.id, g.name, sorted(g.members), g.error) for g in view.groups)
    issues = sorted((i.kind, i.subject, i.message) for i in view.issues)
    return users, groups, issues


def test_okta_read_client_view_and_findings_equal_the_sdk_clients(sandbox: Sandbox, okta_applied: Path) -> None:
    _inject_okta_drift(sandbox)
    provider = OktaProvider(load_config(okta_applied))
    try:
        fast = provider.read_view()
        slow = provider._call(provider._read_view)  # the SDK client: whole lists, then the view
    finally:
        provider.close()
    assert _summary(fast) == _summary(slow)
    from connector.astro.reader import read_astro

    astro = read_astro(provider.astro)
    for view in (fast, slow):
        known = {u.user_name.casefold() for u in view.users}
        unknown = [u.user_name for u in astro.users if u.active and u.user_name.casefold() not in known]
        view.users.extend(provider.inactive_users(unknown))
    fast_findings = [(f.id, f.kind, f.subject, f.detail) for f in run_audit(fast, astro).findings]
    slow_findings = [(f.id, f.kind, f.subject, f.detail) for f in run_audit(slow, astro).findings]
    assert fast_findings == slow_findings
    kinds = {k.value for _, k, _, _ in fast_findings}
    assert {"user_missing", "orphaned", "deactivation_not_propagated", "attribute_mismatch", "team_missing",
            "membership_missing", "idp_error"} <= kinds


def test_okta_read_client_is_chosen_for_an_api_token_only(okta_applied: Path) -> None:
    cfg = load_config(okta_applied)
    assert cfg.okta is not None
    assert isinstance(read_client(cfg.okta), OktaReadClient)
    from dataclasses import replace

    from connector.support.secret import Secret

    oauth = replace(cfg.okta, token=None, client_id="0oa1", private_key=Secret.from_value("-----BEGIN-----"))
    client = read_client(oauth)
    assert type(client) is OktaClient


def test_okta_read_client_pages_a_long_list_in_order(sandbox: Sandbox, okta_applied: Path) -> None:
    """Cursor pages asked for ahead of decoding still come back complete and in order (limit 2: many pages)."""
    import asyncio

    cfg = load_config(okta_applied)
    assert cfg.okta is not None
    okta_cfg = cfg.okta

    async def both() -> tuple[list[str], list[str]]:
        path = f"/api/v1/apps/{_okta_app(sandbox)}/users"
        async with OktaReadClient(okta_cfg) as fast:
            a = [str(u["id"]) for u in await fast.pages(path, {"limit": 2})]
        async with OktaClient(okta_cfg) as slow:
            b = [str(u["id"]) for u in await slow.pages(path, {"limit": 2})]
        return a, b

    fast_ids, slow_ids = asyncio.run(both())
    assert fast_ids == slow_ids and len(fast_ids) == len(set(fast_ids)) > 2


@pytest.mark.parametrize(("a", "b"), [
    ("Ada", "Ada"), ("Ada", "ada "), ("Ada", "Bob"), (True, True), (True, "True"), (1, True), ("", None),
    (["x@acme.example"], "x@acme.example"), ({"value": "a"}, {"value": "a"}), ([], None), (None, None),
    ([{"value": "a"}, {"value": "b"}], ["b", "a"]), ("  ", ""), (1.0, 1),
])
@pytest.mark.parametrize("path", ["name.givenName", "active", "externalId", "emails[type eq \"work\"].value"])
def test_same_value_shortcut_agrees_with_normalising(a: Any, b: Any, path: str) -> None:
    assert same_value(a, b, path) == (normalise(a, path) == normalise(b, path))


def _whole_lists_view(provider: Any) -> IdpView:
    """The slow path: every assignment's whole member list read one after the other, then mapped."""
    from connector.providers.entra.expected import compile_mappings, idp_group, idp_user, user_select

    async def read() -> IdpView:
        sp = await provider._require_sp()
        select = user_select(provider.mapping)
        users_maps, group_maps = compile_mappings(provider.mapping.users), compile_mappings(provider.mapping.groups)
        view = IdpView("azure")
        users: dict[str, Any] = {}
        seen: set[str] = set()
        for a in await provider.tenant.assignments(str(sp["id"])):
            pid = str(a["principalId"])
            if a["principalType"] == "User":
                profile = await provider.tenant.get_user(pid, select)
                users.setdefault(pid, idp_user(profile, users_maps))
            elif pid not in seen:
                seen.add(pid)
                names = set()
                for profile in await provider.tenant.group_members(pid, select):
                    u = users.setdefault(str(profile["id"]), idp_user(profile, users_maps))
                    if u is not None and u.active:
                        names.add(u.user_name)
                view.groups.append(idp_group({"id": pid, "displayName": a["principalDisplayName"]}, group_maps,
                                             names))
        view.users = [u for u in users.values() if u is not None]
        view.issues = await provider._issues(sp)
        return view

    return provider._run(read())  # type: ignore[no-any-return]


def test_entra_streamed_view_and_findings_equal_whole_lists(sandbox: Sandbox, azure_applied: Path) -> None:
    from connector.astro.reader import read_astro
    from connector.providers.entra.provider import AzureProvider

    assert sandbox.graph is not None
    org = sandbox.astro_orgs["azure"]
    people = sandbox.seed_org.people
    other = sandbox.default_team_names()[1]
    sandbox.astro.delete_user(org.org_id, people[5].email)
    sandbox.astro.add_orphan(org.org_id, "eve.orphan@acme.example", "Eve", "Orphan")
    sandbox.graph.update_user(people[2].email, accountEnabled=False)
    sandbox.astro.edit_user(org.org_id, people[3].email, "name.givenName", "Mallory")
    members = sandbox.seed_org.team(other).member_keys
    sandbox.astro.drop_membership(org.org_id, other, sandbox.seed_org.person(members[0]).email)
    provider = AzureProvider(load_config(azure_applied))
    try:
        fast = provider.read_view()
        slow = _whole_lists_view(provider)
    finally:
        provider.close()
    assert _summary(fast) == _summary(slow)
    astro = read_astro(provider.astro)
    fast_findings = [(f.id, f.kind, f.subject, f.detail) for f in run_audit(fast, astro).findings]
    assert fast_findings == [(f.id, f.kind, f.subject, f.detail) for f in run_audit(slow, astro).findings]
    kinds = {k.value for _, k, _, _ in fast_findings}
    assert {"user_missing", "orphaned", "deactivation_not_propagated", "attribute_mismatch",
            "membership_missing"} <= kinds


_RESOURCES: list[dict[str, Any]] = [
    {"displayName": "Ada", "name": {"givenName": "Ada", "familyName": "L"},
     "emails": [{"type": "home", "value": "h@x"}, {"type": "WORK", "value": "w@x"}]},
    {"DisplayName": "case", "Name": {"GivenName": "G"}, "Emails": [{"Type": "work", "Value": "v"}]},
    {"name": {"GivenName": "G"}, "emails": [{"type": "work"}, {"type": "work", "value": "second"}]},
    {"name": "not an object", "emails": "not a list", "displayName": None},
    {"emails": [1, {"type": 2, "value": "x"}, {"type": "work", "Value": "y"}]},
    {"emails": [{"type": "home", "value": "h"}]},
    {"emails": [], "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}},
    {},
]


@pytest.mark.parametrize("resource", _RESOURCES)
@pytest.mark.parametrize("path", [
    "displayName", "name.givenName", "name.familyName", 'emails[type eq "work"].value', "emails.value",
    'emails[type eq "work" and value pr].value', 'emails[type eq "work"]', "emails", "nickName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:core:2.0:User:displayName",
])
def test_reconcile_attribute_reader_agrees_with_get_value(resource: dict[str, Any], path: str) -> None:
    """reconcile's per-path shortcut (_getter) reads what scim_paths.get_value reads, whatever the spelling."""
    from connector.audit.reconcile import _getter
    from connector.mapping.scim_paths import get_value

    assert _getter(path)(resource) == get_value(resource, path)


def test_okta_read_client_writes_the_next_pages_request_before_handing_out_the_current_page(
        sandbox: Sandbox, okta_applied: Path) -> None:
    """The next cursor page is on the wire before the consumer gets the current one (the view's work on a page
    then overlaps the next round trip): while the consumer holds page 1, blocking its event loop, the server has
    already received the request for page 2."""
    import asyncio

    from hostile import request_seen

    cfg = load_config(okta_applied)
    assert cfg.okta is not None
    okta_cfg = cfg.okta
    path = f"/api/v1/apps/{_okta_app(sandbox)}/users"

    with request_seen(sandbox, "okta", "after=") as second_asked:
        async def first_page_held() -> bool:
            async with OktaReadClient(okta_cfg) as client:
                async for _page in client.iter_pages(path, {"limit": 2}):
                    # Blocks the loop: only a request already written can reach the server meanwhile.
                    return second_asked.wait(timeout=10)
            return False

        assert asyncio.run(first_page_held())


def test_okta_read_client_asks_the_next_page_from_the_headers_before_the_body_is_in(okta_applied: Path) -> None:
    """Okta's cursor is in the Link header: with page 1's headers written and its body held back, the reader has
    already asked for page 2. A reader that waited for the body would leave the server waiting (its hold ends
    after 5 s, and the test fails)."""
    import asyncio
    import json
    from dataclasses import replace

    from hostile import Trickling

    def app_users(*ids: str) -> bytes:
        return json.dumps([{"id": i, "status": "PROVISIONED", "profile": {}} for i in ids]).encode()

    def answer(base: str, target: str) -> tuple[list[tuple[str, str]], list[bytes]]:
        json_type = ("Content-Type", "application/json")
        if "after=" in target:
            return [json_type], [app_users("00u3")]
        link = ("Link", f'<{base}/api/v1/apps/0oa1/users?after=00u2&limit=2>; rel="next"')
        return [json_type, link], [b"", app_users("00u1", "00u2")]

    cfg = load_config(okta_applied)
    assert cfg.okta is not None

    with Trickling(answer, release_on="after=") as server:
        async def read() -> list[str]:
            async with OktaReadClient(replace(cfg.okta, org_url=server.url)) as client:  # type: ignore[arg-type]
                return [str(u["id"]) async for page in client.iter_pages("/api/v1/apps/0oa1/users", {"limit": 2})
                        for u in page]

        ids = asyncio.run(read())
    assert server.released == [True]
    assert ids == ["00u1", "00u2", "00u3"]
