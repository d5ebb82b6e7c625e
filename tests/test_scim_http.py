"""The emulated engines' HTTP client (connector/sandbox/scim_http.py): one kept-alive connection, reopened when
the server closed it, failures below HTTP raised as one of ERRORS."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
from typing import Any

import pytest

from connector.sandbox.scim_http import ERRORS, ScimHttp
from connector.sandbox.server import ServedApp, plain_header_block


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


# -- the plain-header fast paths (server.plain_header_block, the server's parse_request, the client's begin) --

_BLOCKS = [
    b"Host: h\r\nContent-Type: application/scim+json\r\nContent-Length: 12\r\n\r\nbody",
    b"A: 1\nB:2\n\n",  # bare LF line ends, no blank after the colon
    b"X-Trailing: value with trailing blanks  \r\nEmpty:\r\nDup: 1\r\nDup: 2\r\n\r\n",
    b"\r\n",  # no fields
]


@pytest.mark.parametrize("block", _BLOCKS)
def test_plain_header_blocks_parse_as_the_stock_parser_reads_them(block: bytes) -> None:
    parsed = plain_header_block(block, 0)
    assert parsed is not None
    headers, end = parsed
    stream = io.BytesIO(block)
    stock = http.client.parse_headers(stream)
    assert headers.items() == stock.items() and end == stream.tell()  # the same fields, the same bytes consumed
    for name in ("content-type", "DUP", "missing", "Empty"):
        assert headers.get(name) == stock.get(name)


@pytest.mark.parametrize("block", [
    b"Host: h\r\n",  # the blank line has not arrived: not whole
    b"Folded: a\r\n b\r\n\r\n",  # obsolete line folding
    b"Latin: caf\xe9\r\n\r\n",  # not ASCII
    b"Bad Name: x\r\n\r\n",  # a blank in the name
    b"Bare: a\rb\r\n\r\n",  # a bare CR
    b"NoColon\r\n\r\n",
    b"".join(b"F%d: v\r\n" % i for i in range(101)) + b"\r\n",  # more than http.client allows
])
def test_anything_unusual_is_left_to_the_stock_parser(block: bytes) -> None:
    assert plain_header_block(block, 0) is None


def _raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_server_reads_plain_and_unusual_requests_alike() -> None:
    served = ServedApp("scim-http-parse", _echo).start()
    try:
        plain = _raw_exchange(served.port, b"GET /scim/v2/org/Users?x=1 HTTP/1.1\r\nHost: h\r\n"
                                           b"Authorization: Bearer t\r\nConnection: close\r\n\r\n")
        folded = _raw_exchange(served.port, b"GET /scim/v2/org/Users?x=1 HTTP/1.1\r\nHost: h\r\n"
                                            b"Authorization: Bearer\r\n t\r\nConnection: close\r\n\r\n")
        expect = _raw_exchange(served.port, b"POST /scim/v2/org/Users HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
                                            b"Expect: 100-continue\r\nConnection: close\r\n\r\n{}")
    finally:
        served.stop()
    for answer in (plain, folded):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 201 ") and b"Connection: close" in head
        data = json.loads(body)
        assert data["path"] == "/scim/v2/org/Users" and data["query"] == "x=1"
    assert json.loads(plain.partition(b"\r\n\r\n")[2])["auth"] == "Bearer t"
    assert json.loads(folded.partition(b"\r\n\r\n")[2])["auth"] == "Bearer t"  # the stock parser unfolds it
    # The stock parse_request answers the Expect, once: the final answer follows the one interim answer.
    assert expect.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 ")
    assert json.loads(expect.partition(b"HTTP/1.1 201 ")[2].partition(b"\r\n\r\n")[2])["body"] == {}


def _canned(answers: list[bytes]) -> tuple[socket.socket, threading.Thread]:
    """A server that answers each request on one connection with the next canned bytes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            for answer in answers:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_the_client_reads_plain_and_unusual_answers_alike() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",  # stock begin()
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nETag: W/\"2\"\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 204 \r\nX-Folded: a\r\n b\r\n\r\n",  # stock begin(); no body on a 204
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",  # no length: read to the close
    ]
    listener, thread = _canned(answers)
    client = ScimHttp(f"http://127.0.0.1:{listener.getsockname()[1]}/scim/v2/org", {}, timeout=5)
    try:
        replies = [client.request("GET", "/Users") for _ in answers]
    finally:
        client.close()
        listener.close()
        thread.join(5)
    assert [(r.status_code, r.content) for r in replies] == [
        (200, b"{}"), (200, b"{}"), (201, b"{}"), (204, b""), (200, b"until close")]
    assert replies[0].headers["content-type"] == "application/scim+json" and replies[2].headers["etag"] == 'W/"2"'
    assert replies[3].reason_phrase == "" and replies[3].headers["x-folded"] == "a\r\n b"  # as the stock parser keeps it
