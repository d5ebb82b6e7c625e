"""Serve a WSGI app on an ephemeral loopback port in a background thread (werkzeug's threaded server)."""

from __future__ import annotations

import functools
import http.client
import re
import socket
import ssl
import threading
import time
import traceback
from typing import IO, Any, cast

import httpx
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

from connector.sandbox.faults import WSGIApp


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context the emulators' own HTTP clients share (the Okta engine's and the Entra engine's pushes to
    Astro): the one `httpx.Client()` builds for itself, built once. Each build loads the CA bundle, ~50 ms of
    CPU: per sandbox start and per Entra provisioning cycle, that was a large part of the test suite's time."""
    return httpx.create_ssl_context()


# A header field the email parser (compat32, which http.client.parse_headers and http.server use) would read as
# exactly (name, value): a name of the characters its header pattern allows, a value of printable ASCII whose
# leading blanks it drops, one line. Anything else (a folded continuation, a bare CR, other bytes) is not matched.
_PLAIN_FIELD = re.compile(rb"([!-9;-~]+):[ \t]*([\t\x20-\x7e]*)\r?\n")
_MAX_FIELDS = 100  # http.client's _MAXHEADERS: past it the stock parser refuses the message


class PlainHeaders(http.client.HTTPMessage):
    """Header fields that plain_header_block checked plain: printable ASCII values, which compat32's fetch
    (header_fetch_parse) hands back unchanged, so `items` and `get` read the stored pairs without it (~2 us a
    field and a call, and werkzeug's environ reads every field of every request)."""

    def items(self) -> list[tuple[str, str]]:
        return list(self.raw_items())

    def get(self, name: str, failobj: Any = None) -> Any:
        name = name.lower()
        for key, value in self.raw_items():
            if key.lower() == name:
                return value
        return failobj


def plain_header_block(data: bytes, start: int) -> tuple[PlainHeaders, int] | None:
    """The header block that begins at `start` of `data`, parsed as http.client.parse_headers would, and the
    offset just past its blank line; None unless the whole block is in `data` and every field is plain
    (`_PLAIN_FIELD`). The stock parser runs the email package's feed parser over each block, ~25 us of CPU per
    message; the engines' 40,000 requests of a 20,000-user rehearsal parse two blocks each (request, answer).
    Callers fall back to the stock parser on None, having consumed nothing."""
    message = PlainHeaders()
    pos = start
    for _ in range(_MAX_FIELDS + 1):
        if data.startswith(b"\r\n", pos):
            return message, pos + 2
        if data.startswith(b"\n", pos):
            return message, pos + 1
        field = _PLAIN_FIELD.match(data, pos)
        if field is None:
            return None
        message.set_raw(field[1].decode("ascii"), field[2].decode("ascii"))
        pos = field.end()
    return None


# (second, its HTTP date): every answer carries a Date, which the stock handler formats anew (email.utils'
# formatdate, ~25 us) though it changes once a second.
_date_cache: tuple[int, str] = (0, "")


class _QuietHandler(WSGIRequestHandler):
    # HTTP/1.1 keeps connections alive (with _KeepAliveHandler): SDK clients reuse them, which is what makes
    # 1,000+ req/s possible.
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_error(self, *args: Any, **kwargs: Any) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        global _date_cache
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        cached = _date_cache
        if cached[0] != now:
            cached = _date_cache = (now, super().date_time_string(now))
        return cached[1]

    def parse_request(self) -> bool:
        return self._parse_plain_request() or super().parse_request()

    def _parse_plain_request(self) -> bool:
        """The stock parse_request's result for a plain HTTP/1.1 request whose header block is already buffered
        and plain (plain_header_block), without the email parser; False, having consumed nothing, for any other
        request (the stock method then parses it and answers its errors). An `Expect` header also takes the
        stock path (its 100-continue handling)."""
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        peek = getattr(self.rfile, "peek", None)
        if len(words) != 3 or words[2] != "HTTP/1.1" or words[1].startswith("//") \
                or self.protocol_version != "HTTP/1.1" or peek is None:
            return False
        parsed = plain_header_block(peek(), 0) if self.MessageClass is http.client.HTTPMessage else None
        if parsed is None or "Expect" in parsed[0]:
            return False
        headers, end = parsed
        self.rfile.read(end)
        self.command, self.path, self.request_version = words
        self.requestline = requestline
        self.headers = headers
        # HTTP/1.1 stays open unless the client says `Connection: close` (RFC 9112 9.3), as the stock method has it.
        self.close_connection = headers.get("Connection", "").lower() == "close"
        return True


# Statuses that carry no body, so no Content-Length either (RFC 9110 8.6).
_NO_BODY = {204, 304}


class _KeepAliveHandler(_QuietHandler):
    """Werkzeug's handler, but connections stay open between requests.

    werkzeug's own `run_wsgi` sends `Connection: close` on every response and then waits up to 10 ms for stray
    request bytes, so each request pays a new TCP connection, a new thread and that wait (a trivial app topped
    out at ~200-400 req/s). Here the response is buffered and sent with a Content-Length, an unread request body
    is skipped exactly (LimitedStream), and the connection is reused. Chunked request bodies still close it.
    """

    timeout = 30  # seconds an idle keep-alive connection may stay open
    # Headers and body go out as separate writes: with Nagle's algorithm the second one waits for the client's
    # delayed ACK (~40 ms per request on a reused connection).
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        conns = getattr(self.server, "open_connections", None)
        if conns is not None:
            conns.add(self.connection)

    def finish(self) -> None:
        conns = getattr(self.server, "open_connections", None)
        if conns is not None:
            conns.discard(self.connection)
        super().finish()

    def run_wsgi(self) -> None:
        # No "100 Continue" here (werkzeug's run_wsgi writes one): parse_request's handle_expect_100 already
        # answered the Expect, and a second interim answer would be read as the final one by a strict client.
        self.environ = environ = self.make_environ()
        body_stream: LimitedStream | None = None
        if environ.get("wsgi.input_terminated"):
            self.close_connection = True  # chunked request: cannot skip what the app leaves unread
        else:
            body_stream = LimitedStream(cast(IO[bytes], self.rfile), int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = body_stream
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: started.append(data)  # legacy write(): buffered with the body

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks = [bytes(c) for c in result]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            self.server.log("error", "Error on request:\n%s", traceback.format_exc())
            started[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain; charset=utf-8")]]
            chunks = [b"Internal Server Error"]
            self.close_connection = True
        if not started:
            # The app answered nothing (a fault that drops the connection): close without a response.
            self.close_connection = True
            return
        status, headers, *written = started
        body = b"".join([*written, *chunks])
        code_str, _, reason = status.partition(" ")
        code = int(code_str)
        # The head as send_response/send_header write it, built as one string (~7 us less than a call and an
        # encode per field); headers and body go out in one write: one syscall, one TCP segment when small.
        self.log_request(code)
        lines = [f"{self.protocol_version} {code} {reason}\r\nServer: {self.version_string()}\r\n"
                 f"Date: {self.date_time_string()}\r\n"]
        lines += [f"{key}: {value}\r\n" for key, value in headers
                  if key.lower() not in ("content-length", "connection", "transfer-encoding")]
        if code not in _NO_BODY and not 100 <= code < 200:
            lines.append(f"Content-Length: {len(body)}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        head = b"" if self.request_version == "HTTP/0.9" else "".join(lines).encode("latin-1", "strict")
        sends_body = environ["REQUEST_METHOD"] != "HEAD" and code not in _NO_BODY
        self.wfile.write(head + body if sends_body else head)
        if body_stream is not None and not self.close_connection:
            body_stream.exhaust()  # skip what the app did not read, so the next request starts clean


class ServedApp:
    """A started HTTP server. `url` is its base, e.g. http://127.0.0.1:54321."""

    def __init__(self, name: str, app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_KeepAliveHandler
        )
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        # Keep-alive connections outlive serve_forever(); stop() shuts them so a stopped server really is.
        self._server.open_connections = set()  # type: ignore[attr-defined]
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        # serve_forever checks for shutdown each time select() returns: at the end of a poll interval, or when a
        # connection arrives, which stop() makes at once. So the interval costs stop() nothing, while a short one
        # woke every idle server 50 times a second (4.5 ms of CPU a second per idle sandbox at 0.02 s, 0.3 at 0.5).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.5}, name=f"sandbox-{name}", daemon=True
        )

    def start(self) -> ServedApp:
        self._thread.start()
        return self

    def stop(self) -> None:
        # shutdown() waits for serve_forever to see its flag, which it checks each time select() returns: on
        # its own at the end of a poll interval, or at once when a connection arrives. A connection is made
        # until the loop has stopped (the first one usually does it; it is accepted and closed without a
        # request, so no app and no request log sees it): every stop took ~10 ms of idle wall time before,
        # over a thousand stops in the test suite.
        stopper = threading.Thread(target=self._server.shutdown, name=f"stop-{self.name}", daemon=True)
        stopper.start()
        while stopper.is_alive():
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
            except OSError:
                pass
            stopper.join(0.005)
        self._server.server_close()
        for conn in list(self._server.open_connections):  # type: ignore[attr-defined]
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
