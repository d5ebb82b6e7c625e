"""The emulated provisioning engines' HTTP client: one kept-alive HTTP/1.1 connection to a SCIM base URL.

Entra's and Okta's engines send one SCIM request at a time per app, so an engine needs one connection, reused,
and nothing of a general client (pools, redirects, cookies, auth flows, URL merging). The standard library's
http.client is that: about 0.3 ms of CPU a request here, where httpx's client stack costs ~1 ms, and a
20,000-user rehearsal sends 40,000 of them (benchmarks/engines.py). The engines' SCIM server is the sandbox's
own emulated Astro on loopback, or an https URL verified with the same TLS context httpx would build.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from connector.sandbox.server import plain_header_block, tls_context

# What a request can fail with below HTTP: refused, reset or timed-out connections, and answers that are no HTTP.
ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)


@dataclass
class Reply:
    """An answer, read whole (SCIM answers are small JSON documents)."""

    status_code: int
    reason_phrase: str
    headers: dict[str, str]  # names lower-cased
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is none (orjson.JSONDecodeError is one)."""
        return orjson.loads(self.content)


def encode_json(body: Any) -> bytes:
    return orjson.dumps(body)


class _Response(http.client.HTTPResponse):
    """http.client's response, whose head is parsed without the email package when it is plain: a status line
    `HTTP/1.1 <code> <reason>` that is no 1xx, plain header fields (server.plain_header_block), no
    Transfer-Encoding, and all of it already buffered (the emulators send head and body in one write). Anything
    else takes the stock begin(), nothing consumed. Same attributes as the stock method sets."""

    def begin(self) -> None:
        if self.headers is None and self._begin_plain():
            return
        super().begin()

    def _begin_plain(self) -> bool:
        peek = getattr(self.fp, "peek", None)
        if peek is None:
            return False
        data = peek()
        line_end = data.find(b"\n")
        if line_end < 0:
            return False
        status = _STATUS_LINE.fullmatch(data, 0, line_end + 1)
        if status is None:
            return False
        parsed = plain_header_block(data, line_end + 1)
        if parsed is None or "Transfer-Encoding" in parsed[0]:
            return False
        headers, end = parsed
        self.fp.read(end)
        self.code = self.status = int(status[1])
        self.reason = (status[2] or b"").decode("ascii").strip()
        self.version = 11
        self.headers = self.msg = headers
        self.chunked = False
        self.will_close = "close" in (headers.get("Connection") or "").lower()
        try:
            length: int | None = int(headers.get("Content-Length") or "")
        except ValueError:
            length = None
        self.length = length if length is not None and length >= 0 else None
        if self.code in (204, 304) or getattr(self, "_method", None) == "HEAD":  # as the stock begin()
            self.length = 0
        if self.length is None:
            self.will_close = True  # no length and not chunked: the body ends when the server closes
        return True


# A final (non-1xx) HTTP/1.1 status line; the reason phrase may be empty.
_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([2-9]\d\d)(?: ([\t\x20-\x7e]*))?\r?\n")


class _KnownFields:
    """putheader for the fields an engine sends with every request (Authorization, Accept, User-Agent, Host...):
    each (name, value) pair is checked by http.client's putheader the first time, then its encoded line is
    reused (~3 us a field and a request). Other values (Content-Length) take the stock method every time."""

    _lines: dict[tuple[str, str], bytes]

    def putheader(self, header: Any, *values: Any) -> None:
        stock = super().putheader  # type: ignore[misc]
        if len(values) != 1 or type(header) is not str or type(values[0]) is not str:
            stock(header, *values)
            return
        key = (header, values[0])
        line = self._lines.get(key)
        if line is None:
            stock(header, *values)  # checks the name and value (ValueError), then writes the line
            if len(self._lines) < 32 and header.lower() != "content-length":  # a new value with each body
                self._lines[key] = header.encode("ascii") + b": " + values[0].encode("latin-1")  # as stock does
            return
        self._output(line)  # type: ignore[attr-defined]  # what stock ends with


class _Connection(_KnownFields, http.client.HTTPConnection):
    response_class = _Response

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lines = {}


class _TlsConnection(_KnownFields, http.client.HTTPSConnection):
    response_class = _Response

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lines = {}


class ScimHttp:
    """Requests to `base` (e.g. http://127.0.0.1:5000/scim/v2/org) over one connection, reopened when the server
    closed it (an idle timeout, `Connection: close`, an error). One request at a time, as the IdPs' engines send
    them per app: callers that share a client between threads hold `lock` around `request`."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(base.rstrip("/"))
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path
        self.headers = dict(headers)
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self.lock = threading.Lock()  # for callers that share one client between threads: one request at a time

    def _connection(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None and _closed_by_peer(conn.sock):
            conn.close()  # the server closed the kept-alive connection: reconnect rather than fail the request
        if conn is None:
            if self.https:
                conn = _TlsConnection(self.host, self.port, timeout=self.timeout, context=tls_context())
            else:
                conn = _Connection(self.host, self.port, timeout=self.timeout)
            self._conn = conn
        return conn

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        """One request; `path` is relative to the base URL. Raises one of ERRORS when no HTTP answer came."""
        url = self.prefix + path
        if params:
            url += "?" + urlencode(params)
        sent = {**self.headers, **headers} if headers else self.headers
        conn = self._connection()
        try:
            conn.request(method, url, body=body, headers=sent)
            resp = conn.getresponse()
            content = resp.read()
        except BaseException:
            conn.close()  # whatever was half-sent or half-read: the next request starts on a new connection
            raise
        if resp.will_close:
            conn.close()
        return Reply(resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, content)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _closed_by_peer(sock: socket.socket) -> bool:
    """True when an idle kept-alive socket is readable: the server closed it (or sent what nobody asked for)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
