"""A generated corpus of bad inputs: config files, mapping files, command lines, and hostile Okta, Graph and
Astro SCIM answers (served by a tampering proxy in front of the emulators: real HTTP, no mock of our code).

Every case must end within its time limit, with its documented exit code (never 70, never 0 where the input is
bad: no false "clean"), with a message naming the file:line, the option or the endpoint; and no secret of the
sandbox (the canaries: every token it issued) may appear in any output or in a request to another service.
"""

from __future__ import annotations

import copy
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile import Answer, Elsewhere, TamperingProxy

from connector.cli import main
from connector.sandbox.core import TOKEN_FILES, Sandbox
from connector.support.clock import FakeClock, use
from connector.support.packaged import default_mapping

CASE_SECONDS = 60.0  # per case, on the real clock (the tool's own waits are virtual)
pytestmark = pytest.mark.xdist_group("bad_inputs")  # one worker builds the applied sandbox once


@dataclass
class Case:
    id: str
    argv: Callable[[Path], list[str]]  # given the case's config path
    codes: tuple[int, ...]
    names: Callable[[Path], list[str]]  # each must appear in stderr or stdout
    config: Callable[[dict[str, Any]], Any] | None = None  # edits the config data (or returns raw text)
    files: dict[str, str | bytes] = field(default_factory=dict)  # extra files next to the config
    proxy: str | None = None  # "okta" | "graph" | "astro": put a tampering proxy in front of that service
    tamper: Callable[[Answer], None] | None = None


# --- the applied sandbox the cases run against ------------------------------------------------------------


@dataclass
class World:
    sb: Sandbox
    dir: Path
    data: dict[str, Any]
    canaries: dict[str, str]  # service -> its token


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with use(FakeClock()), Sandbox(users=6, groups=2, seed=11) as sb:
        base = tmp_path_factory.mktemp("bad-inputs")
        config = sb.write_config(base / "astro-scim.yaml")
        assert sb.okta is not None
        org = sb.astro_orgs["okta"]
        sb.okta.enable_provisioning(str(sb.okta.app_by_label("Astro")["id"]), org.scim_url, org.token)
        assert main(["apply", "-c", str(config), "--yes"]) == 0
        canaries = {"okta": sb.okta_token, "graph": sb.graph_token, "astro-okta": org.token,
                    "astro-azure": sb.astro_orgs["azure"].token}
        yield World(sb, base, yaml.safe_load(config.read_text()), canaries)


# --- case builders ----------------------------------------------------------------------------------------

def _plan(idp: str = "all") -> Callable[[Path], list[str]]:
    return lambda c: ["plan", "-c", str(c), "--idp", idp]


def _drift(idp: str) -> Callable[[Path], list[str]]:
    # -v logs every HTTP call: the canary check covers the log too.
    return lambda c: ["-v", "drift", "-c", str(c), "--idp", idp]


def _report(idp: str, fmt: str) -> Callable[[Path], list[str]]:
    return lambda c: ["-v", "drift", "-c", str(c), "--idp", idp, "--format", fmt, "-o", str(c.parent / f"r.{fmt}")]


def _provision(c: Path) -> list[str]:
    return ["provision", "-c", str(c), "--user", "nobody@example.com"]


def _const(*words: str) -> Callable[[Path], list[str]]:
    return lambda c: list(words)


def _config_file(c: Path) -> list[str]:
    return [str(c)]


def _config_line(c: Path) -> list[str]:
    return [f"{c}:"]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def edit(d: dict[str, Any]) -> None:
        node: Any = d
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def edit(d: dict[str, Any]) -> None:
        node: Any = d
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return edit


def _raw(text: str | bytes) -> Callable[[dict[str, Any]], str | bytes]:
    return lambda d: text


CONFIG_EDITS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    # (id, edit, a word the message must carry besides the file)
    ("okta-org-url-number", _set("okta.org_url", 42), "org_url"),
    ("okta-org-url-http-remote", _set("okta.org_url", "http://acme.okta.com"), "https"),
    ("okta-org-url-password", _set("okta.org_url", "https://u:pw@acme.okta.com"), "org_url"),
    ("okta-org-url-not-url", _set("okta.org_url", "acme"), "org_url"),
    ("okta-token-literal", _set("okta.token", "00abcdefLITERAL"), "token"),
    ("okta-token-missing-env", _set("okta.token", "env:ASTRO_SCIM_TEST_UNSET_VAR"), "ASTRO_SCIM_TEST_UNSET_VAR"),
    ("okta-token-missing-file", _set("okta.token", "file:nope.token"), "nope.token"),
    ("okta-token-dollar", _set("okta.token", "$OKTA_TOKEN"), "token"),
    ("okta-token-list", _set("okta.token", ["a"]), "token"),
    ("okta-app-unknown-key", _set("okta.app", {"lable": "Astro"}), "lable"),
    ("okta-app-string", _set("okta.app", "Astro"), "app"),
    ("okta-integration-bad", _set("okta.integration", "scim"), "integration"),
    ("okta-assign-groups-string", _set("okta.assign_groups", "Astro Users"), "assign_groups"),
    ("okta-push-groups-numbers", _set("okta.push_groups", [1, 2]), "push_groups"),
    ("okta-mapping-missing", _set("okta.mapping", "nope/okta.yaml"), "nope/okta.yaml"),
    ("okta-unknown-key", _set("okta.org", "x"), "org"),
    ("okta-astro-scim-url-http", _set("okta.astro.scim_url", "http://api.astronomer.io/scim/v2/x"), "https"),
    ("okta-astro-token-literal", _set("okta.astro.token", "plaintext-token"), "token"),
    ("okta-section-list", _set("okta", ["x"]), "okta"),
    ("azure-tenant-list", _set("azure.tenant_id", [7]), "tenant_id"),
    ("azure-credential-type-bad", _set("azure.credential", {"type": "magic"}), "magic"),
    ("azure-credential-secret-literal", _set("azure.credential", {"client_id": "x", "client_secret": "s3cr3t"}),
     "client_secret"),
    ("azure-graph-url-http", _set("azure.graph_url", "http://graph.example.com/v1.0"), "https"),
    ("azure-app-empty-name", _set("azure.app", {"display_name": ""}), "display_name"),
    ("azure-assign-groups-dict", _set("azure.assign_groups", {"a": 1}), "assign_groups"),
    ("azure-mapping-is-okta", _set("azure.mapping", str(default_mapping("okta"))), str(default_mapping("okta"))),
    ("top-unknown-key", _set("oktaa", {}), "oktaa"),
    ("safety-fraction-2", _set("safety", {"max_delete_fraction": 2}), "max_delete_fraction"),
    ("safety-count-negative", _set("safety", {"max_delete_count": -1}), "max_delete_count"),
    ("safety-string", _set("safety", {"max_delete_count": "many"}), "max_delete_count"),
    ("astro-page-size-0", _set("okta.astro.page_size", 0), "page_size"),
    ("astro-page-size-huge", _set("okta.astro.page_size", 100000), "page_size"),
    ("access-unknown-role", _set("access", {"Analytics": {"organization": "KING"}}), "KING"),
    ("no-idp", lambda d: {"safety": {"max_delete_count": 3}}, "okta"),
    ("raw-empty", _raw(""), ""),
    ("raw-list", _raw("- a\n- b\n"), ""),
    ("raw-tab", _raw("okta:\n\torg_url: x\n"), "tab"),
    ("raw-duplicate-key", _raw("okta:\n  org_url: https://a.okta.com\n  org_url: https://b.okta.com\n"), "org_url"),
    ("raw-unclosed-quote", _raw('okta:\n  org_url: "https://a.okta.com\n'), ""),
    ("raw-alias-bomb", _raw("a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n"), ""),
    ("raw-deep", _raw("a: " + "[" * 500 + "]" * 500 + "\n"), ""),
    ("raw-not-utf8", _raw(b"okta:\n  org_url: \xff\xfe\n"), ""),
    ("raw-scalar", _raw("just a string\n"), ""),
]

MAPPING_EDITS: list[tuple[str, str, str]] = [
    # (id, idp, yaml text) -- validate exits 1 naming file:line; plan exits 2 naming file:line
    ("okta-unclosed-call", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
     "  - target: name.givenName\n    source: String.toUpperCase(user.firstName\n"),
    ("okta-unknown-function", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
     "  - target: name.givenName\n    source: String.shout(user.firstName)\n"),
    ("okta-dangling-plus", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
     "  - target: name.givenName\n    source: user.firstName +\n"),
    ("okta-no-username", "okta", "idp: okta\nusers:\n  - target: name.givenName\n    source: user.firstName\n"),
    ("okta-two-usernames", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
     "  - target: userName\n    source: user.login\n"),
    ("okta-bad-target", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
     "  - target: name.nickName.x\n    source: user.firstName\n"),
    ("okta-unknown-key", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n    sorce: x\n"),
    ("okta-apply-on-bad", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
     "  - target: name.givenName\n    source: user.firstName\n    apply_on: sometimes\n"),
    ("okta-users-not-list", "okta", "idp: okta\nusers: {target: userName}\n"),
    ("okta-tab", "okta", "idp: okta\nusers:\n\t- target: userName\n"),
    ("okta-duplicate-key", "okta", "idp: okta\nidp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"),
    ("okta-idp-unknown", "okta", "idp: onelogin\nusers:\n  - target: userName\n"),
    ("okta-matching", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n    matching: 1\n"),
    ("okta-ternary-open", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
     "  - target: displayName\n    source: user.a ? user.b\n"),
    ("okta-unterminated-string", "okta", "idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
     "  - target: displayName\n    source: '\"abc'\n"),
    ("azure-lowercase-function", "azure", "idp: azure\nusers:\n  - target: userName\n"
     "    source: '[userPrincipalName]'\n    matching: 1\n  - target: displayName\n    source: toLower([x])\n"),
    ("azure-unbalanced", "azure", "idp: azure\nusers:\n  - target: userName\n    source: '[userPrincipalName'\n"
     "    matching: 1\n"),
    ("azure-arity", "azure", "idp: azure\nusers:\n  - target: userName\n    source: '[userPrincipalName]'\n"
     "    matching: 1\n  - target: displayName\n    source: Join([a])\n"),
    ("azure-from-sign-on", "azure", "idp: azure\nusers:\n  - target: userName\n    from_sign_on: true\n"),
    ("azure-duplicate-matching", "azure", "idp: azure\nusers:\n  - target: userName\n"
     "    source: '[userPrincipalName]'\n    matching: 1\n  - target: externalId\n    source: '[objectId]'\n"
     "    matching: 1\n"),
    ("azure-duplicate-target", "azure", "idp: azure\nusers:\n  - target: userName\n"
     "    source: '[userPrincipalName]'\n    matching: 1\n  - target: userName\n    source: '[mail]'\n"),
    ("azure-groups-bad-target", "azure", "idp: azure\nusers:\n  - target: userName\n"
     "    source: '[userPrincipalName]'\n    matching: 1\ngroups:\n  - target: members.x.y\n    source: '[a]'\n"),
    ("azure-unterminated", "azure", "idp: azure\nusers:\n  - target: userName\n    source: '\"abc'\n"
     "    matching: 1\n"),
    ("azure-empty-source", "azure", "idp: azure\nusers:\n  - target: userName\n    source: ''\n    matching: 1\n"),
    ("azure-unknown-key", "azure", "idp: azure\nuser:\n  - target: userName\n"),
]

CLI_ARGS: list[tuple[str, list[str], str]] = [
    ("no-command", [], ""),
    ("unknown-command", ["deploy"], "deploy"),
    ("unknown-flag", ["plan", "--frobnicate"], "--frobnicate"),
    ("plan-idp-bad", ["plan", "--idp", "onelogin"], "--idp"),
    ("apply-idp-bad", ["apply", "--idp", "google"], "--idp"),
    ("drift-format-bad", ["drift", "--format", "pdf"], "--format"),
    ("validate-format-bad", ["validate", "--format", "xml", "mappings"], "--format"),
    ("provision-nothing", ["provision"], "--user"),
    ("provision-both", ["provision", "--user", "a", "--group", "b"], "--group"),
    ("provision-user-empty", ["provision", "--user", ""], "--user"),
    ("provision-group-empty", ["provision", "--group", "  "], "--group"),
    ("provision-idp-okta", ["provision", "--idp", "okta", "--user", "a"], "--idp"),
    ("push-groups-empty", ["push-groups", ""], "GROUP"),
    ("render-no-idp", ["render", "--out", "x"], "--idp"),
    ("render-idp-bad", ["render", "--idp", "ping", "--out", "x"], "--idp"),
    ("config-missing", ["plan", "--config", "/nonexistent/astro-scim.yaml"], "/nonexistent/astro-scim.yaml"),
    ("config-dir", ["plan", "--config", "/"], "/"),
    ("validate-missing", ["validate", "/nonexistent/mappings"], "/nonexistent/mappings"),
    ("sandbox-users-text", ["sandbox", "--users", "many"], "--users"),
    ("sandbox-rate-text", ["sandbox", "--rate-429", "lots"], "--rate-429"),
    ("drift-output-no-value", ["drift", "--output"], "--output"),
    ("status-idp-bad", ["status", "--idp", "x"], "--idp"),
    ("test-connection-idp-bad", ["test-connection", "--idp", "x"], "--idp"),
    ("plan-config-empty-arg", ["plan", "--config", ""], "config"),
    ("validate-format-no-value", ["validate", "--format"], "--format"),
]


# --- hostile answers ---------------------------------------------------------------------------------------

def _body(path_test: Callable[[str], bool], change: Callable[[Any], Any], *, method: str = "GET"
          ) -> Callable[[Answer], None]:
    def tamper(a: Answer) -> None:
        if a.method == method and 200 <= a.status < 300 and path_test(a.path) and a.body:
            a.set_json(change(a.json()))
    return tamper


def _bytes(path_test: Callable[[str], bool], body: bytes, status: int | None = None,
           headers: dict[str, str] | None = None) -> Callable[[Answer], None]:
    def tamper(a: Answer) -> None:
        if a.method == "GET" and path_test(a.path):
            a.body = body
            if status is not None:
                a.status = status
            for k, v in (headers or {}).items():
                a.replace_header(k, [v])
    return tamper


def _each(items_change: Callable[[dict[str, Any]], Any]) -> Callable[[Any], Any]:
    def change(data: Any) -> Any:
        if isinstance(data, list):
            return [items_change(copy.deepcopy(i)) for i in data]
        if isinstance(data, dict) and isinstance(data.get("value"), list):
            return {**data, "value": [items_change(copy.deepcopy(i)) for i in data["value"]]}
        if isinstance(data, dict) and isinstance(data.get("Resources"), list):
            return {**data, "Resources": [items_change(copy.deepcopy(i)) for i in data["Resources"]]}
        return data
    return change


def _without(*keys: str) -> Callable[[dict[str, Any]], Any]:
    def change(item: dict[str, Any]) -> Any:
        for k in keys:
            item.pop(k, None)
        return item
    return change


def _with(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(item: dict[str, Any]) -> Any:
        item[key] = value
        return item
    return change


def _is(suffix: str) -> Callable[[str], bool]:
    return lambda p: p.endswith(suffix)


def _has(part: str) -> Callable[[str], bool]:
    return lambda p: part in p


OKTA_APP_USERS = _has("/users")  # /api/v1/apps/{id}/users and /api/v1/groups/{id}/users
PLAN = "plan"  # a 4th element: met by plan rather than by drift
PROVISION = "provision"

OKTA_HOSTILE: list[tuple[str, Callable[[Answer], None], str] | tuple[str, Callable[[Answer], None], str, str]] = [
    # (id, tamper, endpoint fragment the message must name)
    ("apps-strings", _body(_is("/api/v1/apps"), lambda d: ["x", "y"]), "/api/v1/apps"),
    ("apps-object", _body(_is("/api/v1/apps"), lambda d: {"apps": d}), "/api/v1/apps"),
    ("apps-null-item", _body(_is("/api/v1/apps"), lambda d: [None, *d]), "/api/v1/apps"),
    ("apps-no-id", _body(_is("/api/v1/apps"), _each(_without("id"))), "/api/v1/apps"),
    ("apps-html", _bytes(_is("/api/v1/apps"), b"<html>maintenance</html>"), "/api/v1/apps"),
    ("apps-truncated", _bytes(_is("/api/v1/apps"), b'[{"id": "0oa'), "/api/v1/apps"),
    ("apps-500-forever", _bytes(_is("/api/v1/apps"), b'{"errorCode":"E0000009"}', 500), "/api/v1/apps"),
    ("apps-429-bad-retry-after", _bytes(_is("/api/v1/apps"), b'{"errorCode":"E0000047"}', 429,
                                        {"Retry-After": "soon", "X-Rate-Limit-Reset": "later"}), "/api/v1/apps"),
    ("apps-link-elsewhere", lambda a: None, "/api/v1/apps"),  # filled in with the Elsewhere URL below
    ("app-users-no-profile", _body(_has("/users"), _each(_without("profile"))), "/users"),
    ("app-users-profile-string", _body(_has("/users"), _each(_with("profile", "x"))), "/users"),
    ("app-users-strings", _body(_has("/users"), lambda d: ["u1", "u2"]), "/users"),
    ("app-users-no-id", _body(_has("/users"), _each(_without("id"))), "/users"),
    ("app-users-embedded-user-string", _body(_has("/users"), _each(_with("_embedded", {"user": "x"}))), "/users"),
    ("app-users-status-number", _body(_has("/users"), _each(_with("status", 5))), "/users"),
    ("groups-strings", _body(_has("/groups"), lambda d: ["g"] if isinstance(d, list) else d), "/groups"),
    ("groups-no-profile", _body(_has("/groups"), _each(_without("profile"))), "/groups"),
    ("groups-profile-name-number", _body(_has("/groups"),
                                         _each(lambda g: {**g, "profile": {"name": 7}})), "/groups"),
    ("push-mappings-object", _body(_has("/group-push/mappings"), lambda d: {"x": 1}), "/group-push/mappings"),
    ("push-mappings-no-source", _body(_has("/group-push/mappings"), _each(_without("sourceGroupId"))),
     "/group-push/mappings"),
    ("mappings-strings", _body(_is("/api/v1/mappings"), lambda d: ["m"]), "/api/v1/mappings", PLAN),
    ("mapping-properties-list", _body(_has("/api/v1/mappings/"), lambda d: {**d, "properties": []}),
     "/api/v1/mappings/", PLAN),
    ("features-strings", _body(_has("/features"), lambda d: ["USER_PROVISIONING"]), "/features", PLAN),
    ("app-groups-strings", _body(_is("/groups"), lambda d: ["g"]), "/groups", PLAN),
    ("app-groups-no-id", _body(_is("/groups"), _each(_without("id"))), "/groups", PLAN),
]

GRAPH_HOSTILE: list[tuple[str, Callable[[Answer], None], str] | tuple[str, Callable[[Answer], None], str, str]] = [
    ("sps-value-string", _body(_is("/servicePrincipals"), lambda d: {**d, "value": "x"}), "/servicePrincipals"),
    ("sps-no-value", _body(_is("/servicePrincipals"), lambda d: {"x": 1}), "/servicePrincipals"),
    ("sps-list", _body(_is("/servicePrincipals"), lambda d: [d]), "/servicePrincipals"),
    ("sps-item-null", _body(_is("/servicePrincipals"), lambda d: {**d, "value": [None]}), "/servicePrincipals"),
    ("sps-no-id", _body(_is("/servicePrincipals"), _each(_without("id"))), "/servicePrincipals"),
    ("sps-html", _bytes(_is("/servicePrincipals"), b"<html>oops</html>"), "/servicePrincipals"),
    ("sps-truncated", _bytes(_is("/servicePrincipals"), b'{"value": [{"id": '), "/servicePrincipals"),
    ("sps-next-self", lambda a: None, "/servicePrincipals"),  # filled in below
    ("sps-next-elsewhere", lambda a: None, "/servicePrincipals"),  # filled in below
    ("sps-next-number", _body(_is("/servicePrincipals"), lambda d: {**d, "@odata.nextLink": 5}),
     "/servicePrincipals"),
    ("members-value-string", _body(_is("/members"), lambda d: {**d, "value": "x"}), "/members"),
    ("members-no-upn", _body(_is("/members"), _each(_without("userPrincipalName", "id"))), "/members"),
    ("members-next-elsewhere", lambda a: None, "/members"),  # filled in below
    ("assignments-strings", _body(_is("/appRoleAssignedTo"), lambda d: {**d, "value": ["a"]}),
     "/appRoleAssignedTo"),
    ("assignments-no-principal", _body(_is("/appRoleAssignedTo"), _each(_without("principalId"))),
     "/appRoleAssignedTo"),
    ("jobs-value-string", _body(_is("/jobs"), lambda d: {**d, "value": "x"}), "/jobs"),
    ("jobs-no-id", _body(_is("/jobs"), _each(_without("id"))), "/jobs"),
    ("groups-value-null", _body(_is("/groups"), lambda d: {**d, "value": None}), "/groups", PLAN),
    ("groups-no-id", _body(_is("/groups"), _each(_without("id"))), "/groups", PLAN),
    ("users-object-string", _body(_has("/users"), lambda d: {**d, "value": ["u"]} if "value" in d else "u"),
     "/users", PROVISION),
]

ASTRO_HOSTILE: list[tuple[str, Callable[[Answer], None], str] | tuple[str, Callable[[Answer], None], str, str]] = [
    ("users-total-negative", _body(_is("/Users"), lambda d: {**d, "totalResults": -1}), "/Users"),
    ("users-total-string", _body(_is("/Users"), lambda d: {**d, "totalResults": "12"}), "/Users"),
    ("users-total-huge", _body(_is("/Users"), lambda d: {**d, "totalResults": 10**13}), "/Users"),
    ("users-resources-string", _body(_is("/Users"), lambda d: {**d, "Resources": "x"}), "/Users"),
    ("users-resources-nulls", _body(_is("/Users"), lambda d: {**d, "Resources": [None]}), "/Users"),
    ("users-no-id", _body(_is("/Users"), _each(_without("id"))), "/Users"),
    ("users-no-username", _body(_is("/Users"), _each(_without("userName"))), "/Users"),
    ("users-html", _bytes(_is("/Users"), b"<html>login</html>"), "/Users"),
    ("users-truncated", _bytes(_is("/Users"), b'{"totalResults": 3, "Resources": [{'), "/Users"),
    ("users-list", _body(_is("/Users"), lambda d: [d]), "/Users"),
    ("users-empty-but-total", _body(_is("/Users"), lambda d: {**d, "Resources": []}), "/Users"),
    ("groups-members-string", _body(_is("/Groups"), _each(_with("members", "all"))), "/Groups"),
    ("groups-no-display-name", _body(_is("/Groups"), _each(_without("displayName"))), "/Groups"),
    ("groups-total-huge", _body(_is("/Groups"), lambda d: {**d, "totalResults": 10**13}), "/Groups"),
    ("spc-string", _body(_is("/ServiceProviderConfig"), lambda d: "x"), "/ServiceProviderConfig", "deviation"),
    ("users-500", _bytes(_is("/Users"), b'{"detail": "boom"}', 500), "/Users"),
]


def _cases() -> list[Case]:
    cases: list[Case] = []
    for cid, edit, word in CONFIG_EDITS:
        # The message names the file at fault: the config, or the file it points to when that one is wrong.
        cases.append(Case(f"config-{cid}", _plan(), (2,), lambda c, w=word: [w if "/" in w else str(c)],
                          config=edit))
    for cid, idp, text in MAPPING_EDITS:
        name = f"{idp}-bad.yaml"

        def edit(d: dict[str, Any], idp: str = idp, name: str = name) -> None:
            d[idp]["mapping"] = name
        cases.append(Case(f"mapping-validate-{cid}", lambda c, n=name: ["validate", str(c.parent / n)], (1, 2),
                          lambda c, n=name: [f"{c.parent / n}:"], files={name: text}))
        cases.append(Case(f"mapping-plan-{cid}", _plan(idp), (2,), lambda c, n=name: [f"{n}:"], config=edit,
                          files={name: text}))
    # A token file that is not one line of text (a comment under the token, a CR LF pasted mid-value, a NUL):
    # a config error naming the file (aiohttp refused the header with a ValueError: exit 70).
    for cid, key, content, idp in (("two-lines", "okta", b"00tokenvalue\n# rotated in December\n", "okta"),
                                   ("crlf-inside", "astro-okta", b"astro-tok\r\nen\r\n", "okta"),
                                   ("nul", "astro-azure", b"astro\x00token\n", "azure"),
                                   ("tab", "graph", b"graph\ttoken\n", "azure")):
        cases.append(Case(f"token-file-{cid}", _drift(idp), (2,), lambda c, n=TOKEN_FILES[key]: [n],
                          files={TOKEN_FILES[key]: content}))
    for cid, args, word in CLI_ARGS:
        cases.append(Case(f"cli-{cid}", _const(*args), (2,), lambda c, w=word: [w]))
    for service, table, idp in (("okta", OKTA_HOSTILE, "okta"), ("graph", GRAPH_HOSTILE, "azure"),
                                ("astro", ASTRO_HOSTILE, "okta")):
        for cid, tamper, fragment, *how in table:
            mode = how[0] if how else "drift"
            argv = {"drift": _drift(idp), PLAN: _plan(idp), "deviation": _drift(idp),
                    PROVISION: _const("provision", "--user", "nobody@example.com")}[mode]
            codes = (0, 1) if mode == "deviation" else (3,)  # a tolerated deviation is reported, not fatal
            if mode == PROVISION:
                argv = _provision
            cases.append(Case(f"{service}-{cid}", argv, codes, lambda c, f=fragment: [f], proxy=service,
                              tamper=tamper))
    # Reports written from a hostile answer that still reads (an extra Astro account: drift, exit 1), and from
    # one that does not: the canary check reads every file the run wrote.
    extra_user = _body(_is("/Users"), lambda d: {**d, "totalResults": d["totalResults"] + 1, "Resources": [
        *d["Resources"], {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "zz-extra",
                          "userName": "mallory@example.com", "active": True}]} if d.get("startIndex", 1) == 1 else d)
    for fmt in ("html", "json", "junit", "markdown", "github"):
        for idp in ("okta", "azure"):
            cases.append(Case(f"report-{fmt}-{idp}-extra-account", _report(idp, fmt), (1,),
                              lambda c: [], proxy="astro",  # the report names it: checked below
                              tamper=extra_user))
    # Redirects to another origin: not followed (no request, so no credential, reaches it).
    for service, idp, path_end in (("okta", "okta", "/api/v1/apps"), ("graph", "azure", "/servicePrincipals"),
                                   ("astro", "okta", "/Users")):
        for status in (301, 302, 307, 308):
            cases.append(Case(f"{service}-redirect-{status}", _drift(idp), (3,), lambda c, p=path_end: [p],
                              proxy=service, tamper=_redirect_marker(path_end, status)))
    # The same hostile Okta and Graph answers met by plan, not only by the audit.
    for cid, tamper, fragment, *_how in OKTA_HOSTILE[:9]:
        cases.append(Case(f"okta-plan-{cid}", _plan("okta"), (3,), lambda c, f=fragment: [f], proxy="okta",
                          tamper=tamper))
    for cid, tamper, fragment, *_how in GRAPH_HOSTILE[:10]:
        cases.append(Case(f"graph-plan-{cid}", _plan("azure"), (3,), lambda c, f=fragment: [f], proxy="graph",
                          tamper=tamper))
    return cases


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 150 and len({c.id for c in CASES}) == len(CASES)


@dataclass
class _RedirectMarker:
    """A redirect whose target (another origin) is known only once the servers run."""

    path_end: str
    status: int

    def __call__(self, a: Answer) -> None:  # replaced in _link_tamper
        raise AssertionError("not bound to a target")


def _redirect_marker(path_end: str, status: int) -> Callable[[Answer], None]:
    return _RedirectMarker(path_end, status)


def _link_tamper(case: Case, proxy_url: str, elsewhere_url: str) -> Callable[[Answer], None] | None:
    """The cases whose tamper needs a URL known only once the servers run."""
    case_id = case.id
    if isinstance(case.tamper, _RedirectMarker):
        marker = case.tamper

        def redirect(a: Answer) -> None:
            if a.method == "GET" and a.path.endswith(marker.path_end):
                a.status = marker.status
                a.body = b""
                a.replace_header("Location", [f"{elsewhere_url}{a.target}"])
        return redirect
    if case_id == "okta-apps-link-elsewhere" or case_id == "okta-plan-apps-link-elsewhere":
        def okta(a: Answer) -> None:
            if a.method == "GET" and a.path.endswith("/api/v1/apps"):
                a.replace_header("Link", [f'<{elsewhere_url}/api/v1/apps?after=1>; rel="next"'])
        return okta
    for suffix, where in (("sps-next-self", "self"), ("sps-next-elsewhere", "elsewhere"),
                          ("members-next-elsewhere", "elsewhere")):
        if case_id.endswith(suffix):
            path_end = "/members" if suffix.startswith("members") else "/servicePrincipals"

            def graph(a: Answer, where: str = where, path_end: str = path_end) -> None:
                if a.method == "GET" and a.path.endswith(path_end) and a.status == 200:
                    body = a.json()
                    base = proxy_url if where == "self" else elsewhere_url
                    body["@odata.nextLink"] = base + (a.target if where == "self" else a.path + "?$skiptoken=1")
                    a.set_json(body)
            return graph
    return None


def _write_case(world: World, case: Case, directory: Path, proxy_url: str | None) -> Path:
    for name in TOKEN_FILES.values():
        (directory / name).write_text((world.dir / name).read_text())
    for name, content in case.files.items():
        target = directory / name
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    data = copy.deepcopy(world.data)
    if proxy_url is not None:
        if case.proxy == "okta":
            data["okta"]["org_url"] = proxy_url
        elif case.proxy == "graph":
            data["azure"]["graph_url"] = proxy_url + "/v1.0"
        else:
            for idp in ("okta", "azure"):
                url = data[idp]["astro"]["scim_url"]
                data[idp]["astro"]["scim_url"] = proxy_url + url[len(world.sb.astro_url):]
    config = directory / "astro-scim.yaml"
    raw = case.config(data) if case.config is not None else None
    if isinstance(raw, bytes):
        config.write_bytes(raw)
    elif isinstance(raw, str):
        config.write_text(raw)
    else:
        # libyaml's dumper (what safe_dump gives, several times faster: 225 cases write one each)
        config.write_text(yaml.dump(raw if isinstance(raw, dict) else data, Dumper=yaml.CSafeDumper, sort_keys=False))
    return config


def _run(argv: list[str]) -> int | None:
    """main(argv) with a time limit; None when it did not finish."""
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    worker.start()
    worker.join(CASE_SECONDS)
    return result[0] if result else None


CASES = _cases()


def _crash_logs(tmp: Path) -> set[str]:
    """The crash logs in the case's own temporary folder (tempfile's, pointed there by the test: listing a busy /tmp
    twice per case cost more than most cases)."""
    return {str(p) for p in tmp.iterdir() if p.name.startswith("astro-scim-crash-") and p.name.endswith(".log")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    upstream = {"okta": world.sb.okta_url, "graph": world.sb.graph_url.removesuffix("/v1.0"),
                "astro": world.sb.astro_url}
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where a crash log would land
    crash_logs = _crash_logs(temp)
    with Elsewhere() as elsewhere:
        proxy = TamperingProxy(upstream[case.proxy], case.tamper) if case.proxy else None
        try:
            if proxy is not None:
                proxy.tamper = _link_tamper(case, proxy.url, elsewhere.url) or case.tamper
            config = _write_case(world, case, tmp_path, proxy.url if proxy else None)
            os.environ.pop("ASTRO_SCIM_TEST_UNSET_VAR", None)
            code = _run(case.argv(config))
            seen = list(proxy.seen) if proxy else []
        finally:
            if proxy is not None:
                proxy.stop()
        out, err = capsys.readouterr()
        assert code is not None, f"{case.id}: no answer within {CASE_SECONDS:.0f} s"
        assert code != 70, f"{case.id}: internal error\n{err}"
        assert code in case.codes, f"{case.id}: exit {code}, expected {case.codes}\n{out}\n{err}"
        text = out + err
        for name in case.names(config):
            assert name in text, f"{case.id}: the message does not name {name!r}\n{text}"
        if code == 3:
            assert "no drift" not in text.lower() and "run 'astro-scim apply" not in text, f"{case.id}\n{text}"
        # The canaries: no token in any output, none sent to another origin, none to another service.
        for owner, token in world.canaries.items():
            assert token not in text, f"{case.id}: the {owner} token was printed"
            assert all(token not in s.text() for s in elsewhere.seen), f"{case.id}: {owner} token sent elsewhere"
            allowed = {"okta": ("okta",), "graph": ("graph",), "astro": ("astro-okta", "astro-azure")}
            if case.proxy is not None and owner not in allowed[case.proxy]:
                assert all(token not in s.text() for s in seen), f"{case.id}: {owner} token sent to {case.proxy}"
        assert elsewhere.seen == [], f"{case.id}: a request went to another origin"
    new_logs = _crash_logs(temp) - crash_logs
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name not in TOKEN_FILES.values()]
    for path in [*map(Path, new_logs), *written]:
        body = path.read_bytes().decode("utf-8", "replace")
        assert not any(token in body for token in world.canaries.values()), f"{case.id}: a token in {path}"
    if "-redirect-" in case.id:
        assert f"HTTP {case.id.rsplit('-', 1)[1]}" in out + err, f"{case.id}: the redirect is not reported\n{err}"
    if case.id.startswith("report-"):
        report = next(p for p in written if p.name.startswith("r."))
        assert "mallory" in report.read_text()  # the HTML report may break the address up for line wrapping
