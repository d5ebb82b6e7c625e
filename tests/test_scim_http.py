"""The emulated engines' HTTP client (connector/sandbox/scim_http.py): one kept-alive connection, reopened when
the server closed it, failures below HTTP raised as one of ERRORS."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from connector.sandbox.scim_http import ERRORS, ScimHttp
from connector.sandbox.server import ServedApp


def _echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("201 Created", [("Content-Type", "application/scim+json"), ("ETag", 'W/"1"')])
    return [b'{"port": %d, "path": "%s", "query": "%s", "auth": "%s", "body": %s}' % (
        int(environ["REMOTE_PORT"]), environ["PATH_INFO"].encode(), environ["QUERY_STRING"].encode(),
        environ.get("HTTP_AUTHORIZATION", "").encode(), body or b"null")]


def test_requests_share_one_connection_and_survive_the_server_closing_it() -> None:
    served = ServedApp("scim-http-test", _echo).start()
    client = ScimHttp(f"{served.url}/scim/v2/org", {"Authorization": "Bearer t"}, timeout=5)
    try:
        first = client.request("GET", "/Users", params={"filter": 'userName eq "a@b.c"'})
        assert first.status_code == 201 and first.reason_phrase == "Created" and first.headers["etag"] == 'W/"1"'
        data = first.json()
        assert data["path"] == "/scim/v2/org/Users" and data["auth"] == "Bearer t"
        assert data["query"] == "filter=userName+eq+%22a%40b.c%22"
        second = client.request("POST", "/Users", body=b'{"x": 1}', headers={"Content-Type": "application/json"})
        assert second.json()["port"] == data["port"] and second.json()["body"] == {"x": 1}  # same connection
        for conn in list(served._server.open_connections):  # type: ignore[attr-defined]
            conn.shutdown(socket.SHUT_RDWR)  # as a server's idle timeout does
        third = client.request("GET", "/Users")
        assert third.status_code == 201 and third.json()["port"] != data["port"]  # reopened, not failed
    finally:
        client.close()
        served.stop()


def test_an_endpoint_that_does_not_answer_raises_one_of_the_transport_errors() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: the connection is refused
        client = ScimHttp(f"http://127.0.0.1:{port}/scim/v2/org", {}, timeout=5)
        with pytest.raises(ERRORS):
            client.request("GET", "/Users")
        client.close()
