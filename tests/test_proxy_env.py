"""Every client of the tool goes through the proxy the environment names (HTTP_PROXY/HTTPS_PROXY, ALL_PROXY,
unless NO_PROXY names the host), and a ~/.netrc entry changes nothing (connector.support.proxy says why).

The proxy is a real forwarding HTTP proxy on loopback (absolute-form request lines, RFC 9112 3.2.2), in front of
the sandbox's emulators; the tests compare what it forwarded with what the emulators logged."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from token_authority import ACCESS_TOKEN, Seen, TokenAuthority

from connector.cli import main
from connector.errors import ConfigError
from connector.sandbox.core import Sandbox
from connector.support.proxy import AiohttpProxy, env_proxy, proxy_url

# aiohttp's deprecated proxy_auth (ClientSession's warning names its caller: our module) fails the run.
pytestmark = pytest.mark.filterwarnings(r"error::DeprecationWarning:connector(\..*)?$")

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
               "all_proxy")


class _Forwarder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body go out as two writes: with Nagle's algorithm the second waits for the client's
    # delayed ACK on a kept-alive connection (~40 ms a request, most of these tests' time).
    disable_nagle_algorithm = True
    seen: list[tuple[str, str, str | None]]  # (method, target URL, Proxy-Authorization), set on the class

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        target = urlsplit(self.path)  # a proxy is sent the absolute form: http://host:port/path?query
        self.seen.append((self.command, self.path, self.headers.get("Proxy-Authorization")))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-authorization", "proxy-connection", "connection", "keep-alive")}
        conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
        try:
            conn.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers)
            answer = conn.getresponse()
            data = answer.read()
        finally:
            conn.close()
        self.send_response(answer.status, answer.reason)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def do_CONNECT(self) -> None:  # noqa: N802  # an https origin: a tunnel (RFC 9110 9.3.6), bytes both ways
        self.seen.append(("CONNECT", self.path, self.headers.get("Proxy-Authorization")))
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=30)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        client = self.connection

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for end in (source, sink):
                    try:
                        end.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join(timeout=30)
        upstream.close()
        self.close_connection = True


@pytest.fixture
def forward_proxy() -> Iterator[tuple[str, list[tuple[str, str, str | None]]]]:
    seen: list[tuple[str, str, str | None]] = []
    handler = type("Handler", (_Forwarder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll: shutdown() waits for the loop to look again (0.5 s by default, idle time in every test).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://ops:pa55word@127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_drift_and_plan_go_through_the_environments_proxy(
        idp: str, sandbox: Sandbox, tmp_path: Path, clean_env: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        forward_proxy: tuple[str, list[tuple[str, str, str | None]]], capsys: pytest.CaptureFixture[str]) -> None:
    config: Path = request.getfixturevalue(f"{idp}_applied")
    proxy, seen = forward_proxy
    services = ("okta" if idp == "okta" else "graph", "astro")
    before = {s: sandbox.logs[s].count() for s in services}
    clean_env.setenv("HTTP_PROXY", proxy)  # the sandbox is plain http on loopback
    assert main(["drift", "-c", str(config), "--idp", idp]) == 0, capsys.readouterr()
    assert main(["plan", "-c", str(config), "--idp", idp, "--exit-code"]) == 0, capsys.readouterr()
    # Every request the emulators answered came through the proxy (the Graph token is the config's: no
    # sign-in), except the emulated Entra's own credential probe (validateCredentials sends Astro a
    # `filter` query for a random value): the tool reads Astro by pages, never by filter.
    answered = Counter(f"{e.method} {e.path}" for s in services for e in sandbox.logs[s].entries[before[s]:]
                       if not (s == "astro" and "filter=" in e.query))
    forwarded = Counter(f"{method} {urlsplit(url).path}" for method, url, _ in seen)
    idp_path = "/api/v1/" if idp == "okta" else "/v1.0/"
    assert {p for p in ("/scim/", idp_path) if any(k.split()[1].startswith(p) for k in answered)} == {"/scim/",
                                                                                                   idp_path}
    assert forwarded == answered
    # The proxy's credentials go as Proxy-Authorization (Basic ops:pa55word), never in a request line.
    assert {auth for _, _, auth in seen} == {"Basic b3BzOnBhNTV3b3Jk"}
    assert not any("pa55word" in url for _, url, _ in seen)
    assert "pa55word" not in capsys.readouterr().out


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_a_proxy_without_credentials_is_sent_none_of_ours(
        idp: str, sandbox: Sandbox, clean_env: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        forward_proxy: tuple[str, list[tuple[str, str, str | None]]]) -> None:
    # aiohttp sends a session's default headers to the proxy too, and their Authorization as the
    # Proxy-Authorization: the Okta API token and the Astro bearer, among the sessions' headers, reached the
    # proxy as its credentials (on an https origin's CONNECT, in the clear). They now go with each request.
    config: Path = request.getfixturevalue(f"{idp}_applied")
    proxy, seen = forward_proxy
    clean_env.setenv("HTTP_PROXY", proxy.replace("ops:pa55word@", ""))
    assert main(["drift", "-c", str(config), "--idp", idp]) == 0
    assert seen and {auth for _, _, auth in seen} == {None}


def test_no_proxy_goes_direct(okta_applied: Path, sandbox: Sandbox, clean_env: pytest.MonkeyPatch,
                              forward_proxy: tuple[str, list[tuple[str, str, str | None]]]) -> None:
    proxy, seen = forward_proxy
    clean_env.setenv("HTTP_PROXY", proxy)
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    assert main(["drift", "-c", str(okta_applied), "--idp", "okta"]) == 0
    assert seen == []


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_a_netrc_entry_for_every_host_changes_nothing(idp: str, tmp_path: Path, clean_env: pytest.MonkeyPatch,
                                                      request: pytest.FixtureRequest) -> None:
    # A `default` entry (curl's and git's users have them) matches the Astro host too: aiohttp's trust_env read
    # it and refused to combine it with the bearer token, and every Astro request raised ValueError (exit 70).
    config: Path = request.getfixturevalue(f"{idp}_applied")
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password not-our-token\n")
    clean_env.setenv("NETRC", str(netrc))
    assert main(["drift", "-c", str(config), "--idp", idp]) == 0


def test_the_proxy_is_chosen_by_scheme_then_all_proxy_unless_no_proxy(clean_env: pytest.MonkeyPatch) -> None:
    assert env_proxy("https://acme.okta.com") == AiohttpProxy() and proxy_url("https://acme.okta.com") is None
    clean_env.setenv("HTTPS_PROXY", "http://ops:pa55word@proxy.example:3128")
    clean_env.setenv("HTTP_PROXY", "plain.example:8080")  # no scheme: http:// assumed, as httpx does
    # An https origin: the credentials go on the tunnel's CONNECT (aiohttp's per-request proxy_headers), never
    # among the session's headers, which travel inside the tunnel to the origin.
    assert env_proxy("https://acme.okta.com") == AiohttpProxy(
        "http://proxy.example:3128", {}, {"Proxy-Authorization": "Basic b3BzOnBhNTV3b3Jk"})
    assert proxy_url("https://acme.okta.com") == "http://ops:pa55word@proxy.example:3128"
    assert env_proxy("http://127.0.0.1:8080/scim") == AiohttpProxy("http://plain.example:8080")
    assert proxy_url("http://127.0.0.1:8080/scim") == "http://plain.example:8080"
    clean_env.setenv("NO_PROXY", "okta.com")
    assert env_proxy("https://acme.okta.com") == AiohttpProxy() and proxy_url("https://acme.okta.com") is None
    assert env_proxy("https://graph.microsoft.com").url == "http://proxy.example:3128"
    for name in _PROXY_VARS:
        clean_env.delenv(name, raising=False)
    clean_env.setenv("ALL_PROXY", "http://all.example:8080")
    assert env_proxy("https://graph.microsoft.com") == AiohttpProxy("http://all.example:8080")
    # A plain-http origin: aiohttp sends the request itself to the proxy (proxy_headers are only for a CONNECT),
    # so the credentials are among the session's headers; percent-encoded ones are decoded first.
    clean_env.setenv("HTTP_PROXY", "http://ops%40corp:p%3Ass@proxy.example:3128")
    assert env_proxy("http://127.0.0.1:8080/scim") == AiohttpProxy(
        "http://proxy.example:3128", {"Proxy-Authorization": "Basic b3BzQGNvcnA6cDpzcw=="}, None)


def test_the_okta_sdk_client_goes_through_the_proxy_too(
        sandbox: Sandbox, tmp_path: Path, clean_env: pytest.MonkeyPatch,
        forward_proxy: tuple[str, list[tuple[str, str, str | None]]]) -> None:
    # An OAuth service app's calls (its access token, then the reads) go through the okta SDK's session, not
    # the read client: that session takes the same proxy.
    from test_okta_provider import ALL_SCOPES, _key_pair, _service_app_config

    private, public = _key_pair()
    assert sandbox.okta is not None
    sandbox.okta.register_service_app("0oaService", public, ALL_SCOPES)
    config = _service_app_config(sandbox, tmp_path, private)
    proxy, seen = forward_proxy
    clean_env.setenv("HTTP_PROXY", proxy)
    assert main(["plan", "--idp", "okta", "-c", str(config)]) == 0
    answered = Counter(f"{e.method} {e.path}" for e in sandbox.logs["okta"].entries)
    forwarded = Counter(f"{method} {urlsplit(url).path}" for method, url, _ in seen
                        if url.startswith(sandbox.okta_url or "-"))
    assert answered["POST /oauth2/v1/token"] and answered["GET /api/v1/apps"]
    assert forwarded == answered
    # NO_PROXY holds for the SDK's session too (the SDK's own lookup ignored it and proxied anyway).
    seen.clear()
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    assert main(["plan", "--idp", "okta", "-c", str(config)]) == 0
    assert seen == []


def test_an_okta_sdk_proxy_of_its_own_configuration_still_applies(
        sandbox: Sandbox, tmp_path: Path, clean_env: pytest.MonkeyPatch,
        forward_proxy: tuple[str, list[tuple[str, str, str | None]]]) -> None:
    # The SDK documents its own proxy settings (okta.yaml's client.proxy, OKTA_CLIENT_PROXY_*): they still win.
    from test_okta_provider import ALL_SCOPES, _key_pair, _service_app_config

    private, public = _key_pair()
    assert sandbox.okta is not None
    sandbox.okta.register_service_app("0oaService", public, ALL_SCOPES)
    config = _service_app_config(sandbox, tmp_path, private)
    proxy, seen = forward_proxy
    clean_env.setenv("OKTA_CLIENT_PROXY_HOST", "127.0.0.1")
    clean_env.setenv("OKTA_CLIENT_PROXY_PORT", proxy.rsplit(":", 1)[1])
    assert main(["plan", "--idp", "okta", "-c", str(config)]) == 0
    assert any(url.endswith("/oauth2/v1/token") for _, url, _ in seen)


def test_a_socks_proxy_is_refused_naming_the_variable(okta_applied: Path, clean_env: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # aiohttp would speak HTTP to a SOCKS port: every request failing with a transport error naming nothing.
    clean_env.setenv("ALL_PROXY", "socks5://ops:pa55word@127.0.0.1:1080")
    with pytest.raises(ConfigError) as info:
        env_proxy("https://acme.okta.com")
    assert "ALL_PROXY" in str(info.value) and "pa55word" not in str(info.value)
    assert main(["drift", "-c", str(okta_applied), "--idp", "okta"]) == 2
    err = capsys.readouterr().err
    assert "ALL_PROXY names a socks5:// proxy" in err and "NO_PROXY" in err
    assert "pa55word" not in err and "Traceback" not in err


def test_a_proxy_password_is_never_shown(okta_applied: Path, clean_env: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # A bare '/' in the password makes the rest of the URL read as a path: refused, not echoed. Percent-encoded,
    # it is taken, and masked wherever it would show (raw, decoded, as the Basic header).
    clean_env.setenv("ALL_PROXY", "http://ops:PX/s3cretPassw0rd@127.0.0.1:18802")
    assert main(["drift", "-c", str(okta_applied), "--idp", "okta"]) == 2
    err = capsys.readouterr().err
    assert "ALL_PROXY is not a valid proxy URL" in err and "%2F" in err
    assert "s3cretPassw0rd" not in err and "Traceback" not in err
    clean_env.delenv("ALL_PROXY")
    clean_env.setenv("HTTPS_PROXY", "http://ops:PX%2Fs3cretPassw0rd@127.0.0.1:18802")
    header = env_proxy("https://acme.okta.com").proxy_headers or {}
    from connector.support.redact import redact

    shown = redact(f"PX/s3cretPassw0rd PX%2Fs3cretPassw0rd {header['Proxy-Authorization']}")
    assert "s3cretPassw0rd" not in shown and header["Proxy-Authorization"].split()[1] not in shown


# --- Entra's sign-in (azure-identity over requests) and the GitHub OIDC fetch (httpx) ------------------------------

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "99999999-8888-7777-6666-555555555555"
SECRET = "an-entra-client-secret-value"


@pytest.fixture
def authority(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[TokenAuthority]:
    (tmp_path / "tls").mkdir()
    with TokenAuthority(tmp_path / "tls", client_id=CLIENT, client_secret=SECRET) as served:
        # The throwaway CA is trusted as an admin would trust a TLS-inspecting proxy's: a CA bundle.
        clean_env.setenv("REQUESTS_CA_BUNDLE", str(served.ca))
        clean_env.delenv("CURL_CA_BUNDLE", raising=False)
        yield served


def _sign_in(authority: TokenAuthority) -> str:
    """A client-credentials sign-in through the provider's GraphCredential (build_credential), as drift does."""
    from connector.config.load import AzureConfig, AzureCredential
    from connector.providers.entra.client import GraphCredential
    from connector.support.secret import Secret

    cfg = AzureConfig(tenant_id=TENANT, credential=AzureCredential(
        "secret", client_id=CLIENT, client_secret=Secret.from_value(SECRET)), authority=authority.url)
    credential = GraphCredential(cfg)
    try:
        return asyncio.run(credential.bearer("https://graph.microsoft.com/.default"))
    finally:
        credential.close()


def _token_posts(authority: TokenAuthority) -> list[Seen]:
    return [s for s in authority.seen if s.method == "POST" and s.path == f"/{TENANT}/oauth2/v2.0/token"]


def test_the_entra_sign_in_sends_no_netrc_credentials(authority: TokenAuthority, tmp_path: Path,
                                                      clean_env: pytest.MonkeyPatch) -> None:
    # requests, under azure-identity, read ~/.netrc: a `default` entry went with the token POST to the authority
    # as Basic credentials.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("default login someone password netrc-secret-value\n")
    (home / ".netrc").chmod(0o600)
    clean_env.setenv("HOME", str(home))
    clean_env.delenv("NETRC", raising=False)
    assert _sign_in(authority) == ACCESS_TOKEN
    assert [s.path for s in authority.seen] == [f"/{TENANT}/v2.0/.well-known/openid-configuration",
                                                f"/{TENANT}/oauth2/v2.0/token"]
    assert not any("authorization" in {k.lower() for k in s.headers} for s in authority.seen)
    (post,) = _token_posts(authority)
    assert post.form["grant_type"] == "client_credentials" and post.form["client_id"] == CLIENT
    assert post.form["client_secret"] == SECRET and post.form["scope"] == "https://graph.microsoft.com/.default"


def test_the_entra_sign_in_goes_through_the_environments_proxy(
        authority: TokenAuthority, clean_env: pytest.MonkeyPatch,
        forward_proxy: tuple[str, list[tuple[str, str, str | None]]]) -> None:
    proxy, seen = forward_proxy
    clean_env.setenv("HTTPS_PROXY", proxy)
    assert _sign_in(authority) == ACCESS_TOKEN
    # Every connection to the authority was a tunnel through the proxy, with the proxy's credentials.
    host = authority.url.removeprefix("https://")
    assert seen and set(seen) == {("CONNECT", host, "Basic b3BzOnBhNTV3b3Jk")}
    assert len(_token_posts(authority)) == 1
    # NO_PROXY names the host: straight to the authority.
    seen.clear()
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    assert _sign_in(authority) == ACCESS_TOKEN
    assert seen == [] and len(_token_posts(authority)) == 2


def test_the_entra_sign_in_refuses_a_socks_proxy_naming_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    # requests would fail every sign-in with "Missing dependencies for SOCKS support", naming no variable.
    from connector.config.load import AzureConfig, AzureCredential
    from connector.providers.entra.client import build_credential
    from connector.support.secret import Secret

    clean_env.setenv("ALL_PROXY", "socks5://ops:pa55word@127.0.0.1:1080")
    for kind in ("secret", "default"):
        cfg = AzureConfig(tenant_id=TENANT, credential=AzureCredential(
            kind, client_id=CLIENT, client_secret=Secret.from_value(SECRET)))
        with pytest.raises(ConfigError, match="ALL_PROXY names a socks5:// proxy") as info:
            build_credential(cfg)
        assert "pa55word" not in str(info.value)


def test_the_github_oidc_fetch_takes_the_same_proxy(
        sandbox: Sandbox, clean_env: pytest.MonkeyPatch,
        forward_proxy: tuple[str, list[tuple[str, str, str | None]]]) -> None:
    from test_azure_provider_credentials import serve_github_oidc

    from connector.providers.entra.client import _github_oidc_token

    proxy, seen = forward_proxy
    with serve_github_oidc() as (url, answered):
        clean_env.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", url)
        clean_env.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-request-token")
        clean_env.setenv("HTTP_PROXY", proxy)
        assert _github_oidc_token() == "eyJhbGciOi.github-oidc-jwt.sig"
        assert [(m, urlsplit(u).path, a) for m, u, a in seen] == [("GET", "/token", "Basic b3BzOnBhNTV3b3Jk")]
        clean_env.setenv("NO_PROXY", "127.0.0.1")
        assert _github_oidc_token() == "eyJhbGciOi.github-oidc-jwt.sig"
        assert len(seen) == 1 and len(answered) == 2
        # A SOCKS proxy: refused naming the variable (httpx would ask for socksio instead).
        clean_env.delenv("NO_PROXY")
        clean_env.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
        with pytest.raises(ConfigError, match="HTTP_PROXY names a socks5:// proxy"):
            _github_oidc_token()
