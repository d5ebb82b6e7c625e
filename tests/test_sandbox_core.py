"""The Sandbox context manager: three real loopback services, seeded IdPs, faults, and the files it writes."""

from __future__ import annotations

import json
import socket
import stat
import threading
from pathlib import Path

import httpx
import pytest

from connector.config.load import load_config
from connector.sandbox.core import TOKEN_FILES, Sandbox
from connector.sandbox.faults import FaultConfig
from connector.support.clock import FakeClock


def _port_open(url: str) -> bool:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


def _okta(sb: Sandbox, path: str) -> httpx.Response:
    return httpx.get(f"{sb.okta_url}{path}", headers={"Authorization": f"SSWS {sb.okta_token}"})


def _graph(sb: Sandbox, path: str) -> httpx.Response:
    return httpx.get(f"{sb.graph_url}{path}", headers={"Authorization": f"Bearer {sb.graph_token}"})


def _astro(sb: Sandbox, idp: str, path: str, token: str | None = None) -> httpx.Response:
    org = sb.astro_orgs[idp]
    return httpx.get(f"{org.scim_url}{path}", headers={"Authorization": f"Bearer {token or org.token}"})


def test_start_serves_three_services_and_stop_closes_them() -> None:
    threads_before = {t.name for t in threading.enumerate()}
    sb = Sandbox(users=5, groups=2, seed=3)
    with sb:
        assert set(sb.running) == {"okta", "graph", "astro"}
        urls = [sb.okta_url, sb.graph_url, sb.astro_url]
        assert all(u and u.startswith("http://127.0.0.1:") for u in urls)
        assert sb.graph_url and sb.graph_url.endswith("/v1.0")
        assert all(_port_open(u) for u in urls if u)
        assert {f"sandbox-{n}" for n in ("okta", "graph", "astro")} <= {t.name for t in threading.enumerate()}
    assert sb.running == {}
    assert not any(_port_open(u) for u in urls if u)
    leftover = {t.name for t in threading.enumerate()} - threads_before
    assert not {n for n in leftover if n.startswith("sandbox-")}
    sb.stop()  # idempotent


def test_idps_are_seeded_from_the_seed_org(sandbox: Sandbox) -> None:
    emails = {p.email for p in sandbox.seed_org.people}
    assert len(emails) == 12 and len(sandbox.seed_org.teams) == 4
    okta_users = _okta(sandbox, "/api/v1/users?limit=200")
    assert okta_users.status_code == 200
    assert emails <= {u["profile"]["login"] for u in okta_users.json()}
    okta_groups = {g["profile"]["name"] for g in _okta(sandbox, "/api/v1/groups?limit=200").json()}
    assert {t.name for t in sandbox.seed_org.teams} <= okta_groups
    graph_users = _graph(sandbox, "/users?$top=999")
    assert graph_users.status_code == 200
    assert emails <= {u["userPrincipalName"] for u in graph_users.json()["value"]}
    graph_groups = {g["displayName"] for g in _graph(sandbox, "/groups?$top=999").json()["value"]}
    assert {t.name for t in sandbox.seed_org.teams} <= graph_groups


def test_one_astro_org_per_idp_with_its_own_token(sandbox: Sandbox) -> None:
    okta_org, azure_org = sandbox.astro_orgs["okta"], sandbox.astro_orgs["azure"]
    assert okta_org.org_id != azure_org.org_id and okta_org.token != azure_org.token
    assert okta_org.scim_url == f"{sandbox.astro_url}/scim/v2/{okta_org.org_id}"
    assert _astro(sandbox, "okta", "/Users").json()["totalResults"] == 0  # Astro starts empty: IdPs provision it
    assert _astro(sandbox, "azure", "/Users").status_code == 200
    assert _astro(sandbox, "okta", "/Users", token=azure_org.token).status_code == 401
    assert okta_org.token not in repr(okta_org)


def test_same_seed_same_ids_but_fresh_tokens() -> None:
    a, b = Sandbox(users=3, groups=1, seed=11), Sandbox(users=3, groups=1, seed=11)
    assert a.tenant_id == b.tenant_id
    assert a._org_ids == b._org_ids
    assert a.okta_token != b.okta_token and a.graph_token != b.graph_token
    assert Sandbox(users=3, groups=1, seed=12).tenant_id != a.tenant_id


def test_write_config_loads_and_keeps_tokens_in_private_files(sandbox: Sandbox, sandbox_config: Path) -> None:
    text = sandbox_config.read_text()
    for token in (sandbox.okta_token, sandbox.graph_token, *(o.token for o in sandbox.astro_orgs.values())):
        assert token not in text
    for name in TOKEN_FILES.values():
        path = sandbox_config.parent / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    cfg = load_config(sandbox_config)
    assert cfg.okta is not None and cfg.azure is not None
    assert cfg.okta.org_url == sandbox.okta_url
    assert cfg.okta.token is not None and cfg.okta.token.reveal() == sandbox.okta_token
    assert cfg.okta.app_label == "Astro" and cfg.okta.integration == "oin"
    assert cfg.okta.mapping is not None and cfg.okta.mapping.is_file() and cfg.okta.mapping.name == "okta.yaml"
    teams = [t.name for t in sandbox.seed_org.teams[1:3]]
    assert cfg.okta.assign_groups == ["Astro Users"] and cfg.okta.push_groups == teams
    assert cfg.azure.tenant_id == sandbox.tenant_id and cfg.azure.graph_url == sandbox.graph_url
    assert cfg.azure.credential.kind == "token"
    assert cfg.azure.credential.token is not None and cfg.azure.credential.token.reveal() == sandbox.graph_token
    assert cfg.azure.app_display_name == "Astro" and cfg.azure.assign_groups == ["Astro Users", *teams]
    assert cfg.azure.mapping is not None and cfg.azure.mapping.is_file()
    for idp in ("okta", "azure"):
        astro = cfg.astro_for(idp)
        assert astro.scim_url == sandbox.astro_orgs[idp].scim_url
        assert astro.organization_id == sandbox.astro_orgs[idp].org_id
        assert astro.token.reveal() == sandbox.astro_orgs[idp].token


def test_write_config_options(sandbox: Sandbox, tmp_path: Path) -> None:
    path = sandbox.write_config(tmp_path / "sub" / "only-okta.yaml", idps=("okta",), okta_push_groups=[],
                                okta_integration="manual", okta_app_label="Astro SCIM (custom)")
    cfg = load_config(path)
    assert cfg.azure is None and cfg.okta is not None
    assert cfg.okta.push_groups == [] and cfg.okta.integration == "manual"
    assert cfg.okta.app_label == "Astro SCIM (custom)"


def test_write_json_has_exactly_the_contract_keys(sandbox: Sandbox, tmp_path: Path) -> None:
    path = sandbox.write_json(tmp_path / "sandbox.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert set(data) == {"okta", "graph", "astro", "astro_orgs"}
    assert data["okta"] == {"org_url": sandbox.okta_url, "token": sandbox.okta_token}
    assert data["graph"] == {"base_url": sandbox.graph_url, "token": sandbox.graph_token}
    okta_org = sandbox.astro_orgs["okta"]
    assert data["astro"] == {"scim_url": okta_org.scim_url, "token": okta_org.token}
    assert set(data["astro_orgs"]) == {"okta", "azure"}
    for idp, org in sandbox.astro_orgs.items():
        assert data["astro_orgs"][idp] == {"org_id": org.org_id, "scim_url": org.scim_url, "token": org.token}


def test_faults_change_live_per_service(sandbox: Sandbox) -> None:
    sandbox.set_faults(FaultConfig(rate_429=1.0))
    okta = _okta(sandbox, "/api/v1/users")
    assert okta.status_code == 429 and okta.json()["errorCode"] == "E0000047"
    assert _graph(sandbox, "/users").status_code == 429
    assert _astro(sandbox, "okta", "/Users").status_code == 200  # Astro has its own (off) fault config

    sandbox.set_faults(FaultConfig(rate_5xx=1.0), service="astro")
    resp = _astro(sandbox, "okta", "/Users")
    assert resp.status_code == 500 and resp.json()["status"] == "500"
    sandbox.set_faults(FaultConfig(rate_429=1.0), service="astro")
    resp = _astro(sandbox, "okta", "/Users")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "1"
    assert resp.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]

    sandbox.set_faults(FaultConfig(rate_5xx=1.0), service="graph")
    assert _graph(sandbox, "/users").status_code >= 500 and _okta(sandbox, "/api/v1/users").status_code == 429

    sandbox.set_faults(FaultConfig(), service="all")
    assert _okta(sandbox, "/api/v1/users").status_code == 200
    assert _graph(sandbox, "/users").status_code == 200
    assert _astro(sandbox, "okta", "/Users").status_code == 200
    with pytest.raises(ValueError):
        sandbox.set_faults(FaultConfig(), service="ldap")


def test_request_logs_record_each_service(sandbox: Sandbox) -> None:
    _okta(sandbox, "/api/v1/users")
    _graph(sandbox, "/users")
    _astro(sandbox, "okta", "/Users")
    assert sandbox.logs["okta"].count("GET", "/api/v1/users") == 1
    assert sandbox.logs["graph"].count("GET", "/v1.0/users") == 1
    assert sandbox.logs["astro"].count("GET", "/scim/v2/") == 1
    assert all(not log.writes() for log in sandbox.logs.values())


def test_faults_at_construction_apply_to_the_idps() -> None:
    with Sandbox(users=2, groups=1, seed=1, faults=FaultConfig(rate_5xx=1.0)) as sb:
        assert _okta(sb, "/api/v1/users").status_code >= 500
        assert _graph(sb, "/users").status_code >= 500
        assert _astro(sb, "okta", "/Users").status_code == 200


# -- `astro-scim sandbox` ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [["--rate-429", "1.5"], ["--rate-5xx", "-0.1"], ["--users", "-1"],
                                   ["--latency-ms", "-5"]])
def test_sandbox_command_refuses_bad_flags(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from connector.cli import main

    assert main(["sandbox", *flags]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--write-config", "--write-json"])
def test_sandbox_command_refuses_an_unwritable_path(flag: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from connector.cli import main

    (tmp_path / "afile").write_text("")
    assert main(["sandbox", flag, str(tmp_path / "afile" / "sub" / "x")]) == 2  # used to crash (exit 70)
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["sandbox", flag, str(tmp_path)]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err


def test_sandbox_command_serves_until_interrupted(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import threading

    config, js = tmp_path / "astro-scim.yaml", tmp_path / "sandbox.json"
    err_file = tmp_path / "stderr.txt"  # a file, not a pipe: nobody has to drain it while the sandbox runs
    with err_file.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "sandbox", "--users", "4", "--groups", "1", "--seed", "5",
             "--latency-ms", "50", "--write-config", str(config), "--write-json", str(js)],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, "COLUMNS": "200"},
        )
        lines: list[str] = []
        ready = threading.Event()

        def read_stdout() -> None:
            # The sandbox's own readiness signal: its last words once the files are written and Ctrl-C is wired.
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if "Ctrl-C stops the sandbox." in line:
                    ready.set()
            ready.set()  # end of output: the process is gone, the assertion below says so

        reader = threading.Thread(target=read_stdout, daemon=True)
        reader.start()
        try:
            ready.wait(60)  # a bound against a hang; nothing is asserted about the time taken
            assert proc.poll() is None, "".join(lines) + err_file.read_text()
            data = json.loads(js.read_text())
            org = data["astro_orgs"]["okta"]
            resp = httpx.get(f"{org['scim_url']}/Users", headers={"Authorization": f"Bearer {org['token']}"})
            assert resp.status_code == 200
            okta = httpx.get(f"{data['okta']['org_url']}/api/v1/users",
                             headers={"Authorization": f"SSWS {data['okta']['token']}"})
            assert okta.status_code == 200
            assert len([u for u in okta.json() if "acme.example" in u["profile"]["login"]]) >= 4
            assert load_config(config).okta is not None
            # The Okta console step as the banner prints it, run by a shell: the emulator takes it.
            (step,) = [line.strip() for line in lines if line.strip().startswith("curl ")]
            done = subprocess.run(["sh", "-c", step], capture_output=True, text=True, timeout=30)
            assert done.returncode == 0 and "error" not in done.stdout.lower(), done.stdout + done.stderr
            apps = httpx.get(f"{data['okta']['org_url']}/api/v1/apps", params={"q": "Astro"},
                             headers={"Authorization": f"SSWS {data['okta']['token']}"}).json()
            (app,) = [a for a in apps if a.get("label") == "Astro"]
            answer = json.loads(done.stdout)  # the emulator's admin endpoint: what it enabled, with which URL
            assert answer == {"appId": app["id"], "baseUrl": org["scim_url"], "provisioning": "ENABLED"}, answer
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            reader.join(timeout=30)
    out, err = "".join(lines), err_file.read_text()
    assert proc.returncode == 0, err
    assert "token in" in out and str(config) in out and "sandbox stopped" in out
    assert "50 ms per request, every service" in out  # --latency-ms delays Astro too, not only the IdPs
    for token in (data["okta"]["token"], data["graph"]["token"], org["token"], data["astro_orgs"]["azure"]["token"]):
        assert token not in out and token not in err
    assert not _port_open(data["okta"]["org_url"]) and not _port_open(org["scim_url"])


# -- the loopback HTTP server under the sandbox ---------------------------------------------------------------


def test_connections_are_kept_alive_and_unread_bodies_are_skipped(sandbox: Sandbox) -> None:
    host, port = sandbox.astro_url.split("//")[1].split(":")
    org = sandbox.astro_orgs["okta"]
    path = org.scim_url.split(port, 1)[1]
    body = b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x@acme.example"}'
    with socket.create_connection((host, int(port)), timeout=5) as s:
        # 1: unknown org -> 404 answered without reading the body; 2: same connection must still parse cleanly
        s.sendall(b"POST /scim/v2/nope/Users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        s.sendall(f"GET {path}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {org.token}\r\n\r\n".encode())
        data = b""
        while data.count(b"HTTP/1.1 ") < 2 or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            assert chunk, f"connection closed early: {data!r}"
            data += chunk
    first, second = data.split(b"HTTP/1.1 ")[1:3]
    assert first.startswith(b"404") and b"Connection: close" not in first
    assert second.startswith(b"200") and b'"totalResults": 0' in second


def test_reset_fault_drops_the_connection(sandbox: Sandbox) -> None:
    sandbox.set_faults(FaultConfig(rate_reset=1.0), service="astro")
    with pytest.raises(httpx.TransportError):
        _astro(sandbox, "okta", "/Users")
    sandbox.set_faults(FaultConfig(), service="astro")
    assert _astro(sandbox, "okta", "/Users").status_code == 200


# -- latency and announced rate limits ------------------------------------------------------------------------


def test_latency_delays_every_service_astro_included(fake_clock: FakeClock) -> None:
    """What `astro-scim sandbox --latency-ms` builds (the same FaultConfig for the IdPs and for Astro): each
    service's requests wait the latency, on the injectable clock (so no real wait here)."""
    latency = FaultConfig(latency_ms=50)
    with Sandbox(users=2, groups=1, seed=1, faults=latency, astro_faults=latency) as sb:
        for name, call in (("astro", lambda: _astro(sb, "okta", "/Users")), ("okta", lambda: _okta(sb, "/api/v1/users")),
                           ("graph", lambda: _graph(sb, "/users"))):
            before = fake_clock.monotonic()
            assert call().status_code == 200
            assert sb._middleware[name].delayed_s == pytest.approx(0.05)
            assert fake_clock.monotonic() - before == pytest.approx(0.05)
        sb.set_faults(FaultConfig(), service="astro")
        assert _astro(sb, "okta", "/Users").status_code == 200
        assert sb._middleware["astro"].delayed_s == pytest.approx(0.05)  # off again: no more delay


def test_astro_announces_its_rate_limit_and_throttles_past_it(sandbox: Sandbox, fake_clock: FakeClock) -> None:
    from connector.sandbox.astro.scim import RATE_LIMIT, RATE_WINDOW_S

    sandbox.astro.rate_clock = fake_clock.monotonic
    fake_clock.advance(RATE_WINDOW_S - fake_clock.monotonic() % RATE_WINDOW_S)  # the start of a window
    first = _astro(sandbox, "okta", "/Users")
    assert first.headers["RateLimit-Limit"] == str(RATE_LIMIT)
    assert first.headers["RateLimit-Remaining"] == str(RATE_LIMIT - 1)
    assert first.headers["RateLimit-Reset"] == str(int(RATE_WINDOW_S))
    assert _astro(sandbox, "azure", "/Users").headers["RateLimit-Remaining"] == str(RATE_LIMIT - 1)  # per org
    assert "RateLimit-Limit" not in _astro(sandbox, "okta", "/Users", token="wrong").headers  # 401s uncounted

    sandbox.astro.rate_limit = 3
    assert _astro(sandbox, "okta", "/Users").headers["RateLimit-Remaining"] == "1"
    assert _astro(sandbox, "okta", "/Users").headers["RateLimit-Remaining"] == "0"
    refused = _astro(sandbox, "okta", "/Users")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == refused.headers["RateLimit-Reset"]
    assert refused.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    fake_clock.advance(RATE_WINDOW_S)  # a new window
    again = _astro(sandbox, "okta", "/Users")
    assert again.status_code == 200 and again.headers["RateLimit-Remaining"] == "2"


def test_graph_throttles_like_graph_announces(sandbox: Sandbox, fake_clock: FakeClock) -> None:
    """Graph announces no limit up front: each answer says what the request cost (x-ms-resource-unit), past 80%
    of the app's budget how much is used (x-ms-throttle-limit-percentage), and past it 429 with Retry-After."""
    graph = sandbox.graph
    assert graph is not None
    graph.rate_clock = fake_clock.monotonic
    fake_clock.advance(10 - fake_clock.monotonic() % 10)
    assert graph._tenant_limit() == 3_500  # a 20-user tenant is a small one
    ok = _graph(sandbox, "/users")
    assert ok.status_code == 200 and ok.headers["x-ms-resource-unit"] == "1"
    assert "x-ms-throttle-limit-percentage" not in ok.headers
    graph.rate_limit = 5
    for _ in range(3):
        last = _graph(sandbox, "/users")
    assert last.headers["x-ms-throttle-limit-percentage"] == "0.8"
    assert _graph(sandbox, "/users").headers["x-ms-throttle-limit-percentage"] == "1.0"
    refused = _graph(sandbox, "/users")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "TooManyRequests"
    assert refused.headers["Retry-After"] == "10"
    assert refused.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert refused.headers["x-ms-throttle-scope"].startswith(f"Tenant_Application/ReadWrite/{sandbox.tenant_id}/")
    fake_clock.advance(4)
    assert _graph(sandbox, "/users").headers["Retry-After"] == "6"
    fake_clock.advance(6)
    assert _graph(sandbox, "/users").status_code == 200
