"""The Okta emulator's app-user pages with expand=user, assembled from cached user JSON, are the rendered page
(key order included), before and after a user or app user changes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from connector.sandbox.core import Sandbox


def _page(sb: Sandbox, aid: str) -> bytes:
    answer = httpx.get(f"{sb.okta_url}/api/v1/apps/{aid}/users", params={"limit": 500, "expand": "user"},
                       headers={"Authorization": f"SSWS {sb.okta_token}"})
    assert answer.status_code == 200
    return answer.content


def _rendered(sb: Sandbox, aid: str) -> str:
    assert sb.okta is not None
    rows = list(sb.okta.state.app_users[aid].values())
    return json.dumps([sb.okta.shapes.app_user_json(aid, r, sb.okta_url, "user") for r in rows])


def _same(page: bytes, rendered: str) -> bool:
    """The same JSON, keys in the same order (json.loads keeps it)."""
    return json.dumps(json.loads(page)) == rendered


def test_app_user_pages_with_the_user_embedded_are_the_rendered_json(sandbox: Sandbox, okta_applied: Path) -> None:
    assert sandbox.okta is not None
    aid = str(sandbox.okta.app_by_label("Astro")["id"])
    first = _page(sandbox, aid)
    assert json.loads(first) and all("_embedded" in au for au in json.loads(first))
    assert _same(first, _rendered(sandbox, aid))
    # A change to an Okta user and one to an app user both show in the next page.
    uid = json.loads(first)[0]["id"]
    state = sandbox.okta.state
    user = state.users.get(uid)
    app_user = state.app_users[aid].get(uid)
    assert user is not None and app_user is not None
    state.change_user(user, profile={**user["profile"], "title": "Chief"})
    app_user["syncState"] = "ERROR"
    second = _page(sandbox, aid)
    assert second != first and _same(second, _rendered(sandbox, aid))
    changed = json.loads(second)[0]
    assert changed["_embedded"]["user"]["profile"]["title"] == "Chief" and changed["syncState"] == "ERROR"
