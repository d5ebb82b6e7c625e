"""Paging that a hostile or broken server steers: next links to another origin or back to a page already read,
and totals no organization has. Each stops the command with exit 3 naming the endpoint, and no request (so no
credential) ever goes to another origin. The servers are real: a tampering proxy in front of the emulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile import Answer, Elsewhere, TamperingProxy

from connector.cli import main
from connector.sandbox.core import Sandbox


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    with Elsewhere() as server:
        yield server


def _config(sb: Sandbox, tmp_path: Path, idp: str, proxy: TamperingProxy) -> Path:
    config = sb.write_config(tmp_path / "astro-scim.yaml", idps=("okta",) if idp == "astro" else (idp,))
    data = yaml.safe_load(config.read_text())
    if idp == "okta":
        data["okta"]["org_url"] = proxy.url
    elif idp == "azure":
        data["azure"]["graph_url"] = proxy.url + "/v1.0"
    else:
        org = sb.astro_orgs["okta"]
        data["okta"]["astro"]["scim_url"] = proxy.url + org.scim_url[len(sb.astro_url):]
    config.write_text(yaml.safe_dump(data))
    return config


def _graph_next(link: str, path: str) -> Any:
    def tamper(a: Answer) -> None:
        if a.method == "GET" and a.path == path and a.status == 200:
            body = a.json()
            body["@odata.nextLink"] = link
            a.set_json(body)
    return tamper


def _okta_next(link: str, path: str) -> Any:
    def tamper(a: Answer) -> None:
        if a.method == "GET" and a.path == path and a.status == 200:
            a.replace_header("Link", [f'<{link}>; rel="next"'])
    return tamper


def _run(config: Path, *args: str) -> int:
    return main([args[0], "--config", str(config), *args[1:]])


@pytest.mark.parametrize("idp", ["azure", "okta"])
def test_next_link_to_another_origin_is_refused_and_never_requested(
        sandbox: Sandbox, tmp_path: Path, elsewhere: Elsewhere, idp: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    if idp == "azure":
        upstream, path = sandbox.graph_url.removesuffix("/v1.0"), "/v1.0/servicePrincipals"
        tamper = _graph_next(f"{elsewhere.url}/v1.0/servicePrincipals?$skiptoken=x", path)
        endpoint = "GET /servicePrincipals"
    else:
        upstream, path = sandbox.okta_url, "/api/v1/apps"
        tamper = _okta_next(f"{elsewhere.url}/api/v1/apps?after=x", path)
        endpoint = "GET /api/v1/apps"
    with TamperingProxy(upstream, tamper) as proxy:
        config = _config(sandbox, tmp_path, idp, proxy)
        assert _run(config, "plan", "--idp", idp) == 3
    err = capsys.readouterr().err
    assert endpoint in err and "another origin" in err and "no credential was sent" in err
    assert elsewhere.seen == []


@pytest.mark.parametrize("idp", ["azure", "okta"])
def test_next_link_back_to_a_page_already_read_ends(sandbox: Sandbox, tmp_path: Path, idp: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    holder: dict[str, str] = {}

    def tamper(a: Answer) -> None:
        if a.method != "GET" or a.status != 200 or not holder:
            return
        if idp == "azure" and a.path == "/v1.0/servicePrincipals":
            _graph_next(holder["url"] + a.target, a.path)(a)  # a link to the very page being answered
        if idp == "okta" and a.path == "/api/v1/apps":
            _okta_next(holder["url"] + a.target, a.path)(a)

    upstream = sandbox.graph_url.removesuffix("/v1.0") if idp == "azure" else sandbox.okta_url
    with TamperingProxy(upstream, tamper) as proxy:
        holder["url"] = proxy.url
        config = _config(sandbox, tmp_path, idp, proxy)
        assert _run(config, "plan", "--idp", idp) == 3
        pages = [s for s in proxy.seen if s.target.split("?")[0].endswith(("/servicePrincipals", "/api/v1/apps"))]
    err = capsys.readouterr().err
    assert "repeats a page already read" in err
    assert len(pages) <= 3  # the first page, then at most the page it links to again


def test_astro_total_no_organization_has_stops_the_audit(sandbox: Sandbox, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    def tamper(a: Answer) -> None:
        if a.method == "GET" and a.path.endswith("/Users") and a.status == 200:
            body = a.json()
            body["totalResults"] = 10**12
            body["Resources"] = [{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1",
                                  "userName": "ada@example.com", "active": True}]
            a.set_json(body)

    with TamperingProxy(sandbox.astro_url, tamper) as proxy:
        config = _config(sandbox, tmp_path, "astro", proxy)
        assert _run(config, "drift", "--idp", "okta") == 3
        requests = len(proxy.seen)
    err = capsys.readouterr().err
    assert "/Users" in err and "would take" in err and "no drift" not in err
    assert requests < 50


def test_an_early_guess_is_checked_like_a_next_link_but_counted_only_when_followed() -> None:
    """PageGuard.check (a next link read from a page's first part, connector.support.chain) refuses what follow
    refuses, yet records nothing: a guess the page did not confirm neither counts as a page nor makes the same
    link, when a later page names it, look like a loop."""
    from connector.errors import RemoteError
    from connector.support.paging import PageGuard

    guard = PageGuard(base_url="https://graph.example/", service="graph", endpoint="GET /users", max_pages=3)
    guard.first("https://graph.example/v1.0/users")
    counted = guard.pages
    assert guard.check("/v1.0/users?$skiptoken=a") == "https://graph.example/v1.0/users?$skiptoken=a"
    assert guard.pages == counted
    assert guard.follow("/v1.0/users?$skiptoken=a") == "https://graph.example/v1.0/users?$skiptoken=a"
    for refused in ("https://elsewhere.example/v1.0/users", "/v1.0/users?$skiptoken=a", 5):
        with pytest.raises(RemoteError):
            guard.check(refused)
    guard.follow("/v1.0/users?$skiptoken=b")
    with pytest.raises(RemoteError, match="more than 3 pages"):
        guard.follow("/v1.0/users?$skiptoken=c")
