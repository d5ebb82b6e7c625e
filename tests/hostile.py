"""Hostile servers for tests: small real HTTP servers on loopback, never mocks of our code.

- `TamperingProxy` stands in front of an emulator (the config points at the proxy) and lets a test rewrite any
  answer: a next link to another host or to itself, a list of strings, an absurd totalResults. It forwards the
  client's Host header, so the emulator's own links name the proxy, as a real service's name itself.
- `Elsewhere` is another origin: it answers every request with a harmless page and records what it was sent, so a
  test can prove no request, and no credential, ever reached it.
- `Trickling` writes an answer in parts, holding each after the first until another request comes in: what a
  client does while a page is still arriving (the sandbox's server writes every answer at once).
"""

from __future__ import annotations

import http.server
import io
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from werkzeug.wrappers import Request, Response

from connector.sandbox.core import Sandbox
from connector.sandbox.server import ServedApp

_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}


@dataclass
class Seen:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        return f"{self.method} {self.target}\n{self.headers}\n{self.body.decode('utf-8', 'replace')}"


@dataclass
class Answer:
    """An answer the tamper function may change in place."""

    method: str
    target: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def json(self) -> Any:
        return json.loads(self.body)

    def set_json(self, data: Any) -> None:
        self.body = json.dumps(data).encode()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != "content-type"]
        self.headers.append(("Content-Type", "application/json"))

    def replace_header(self, name: str, values: list[str]) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers += [(name, v) for v in values]


Tamper = Callable[[Answer], None]


@dataclass
class _Server:
    served: ServedApp | None = None
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.served is not None
        return self.served.url

    def _record(self, request: Request, environ: dict[str, Any]) -> tuple[str, bytes]:
        target = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path)
        body = request.get_data()
        with self.lock:
            self.seen.append(Seen(request.method, target, dict(request.headers.items()), body))
        return target, body

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TamperingProxy(_Server):
    def __init__(self, upstream: str, tamper: Tamper | None = None) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.tamper = tamper
        self._client = httpx.Client(timeout=30)
        self.served = ServedApp("hostile-proxy", self._app).start()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        target, body = self._record(request, environ)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        got = self._client.request(request.method, self.upstream + target, headers=headers, content=body)
        answer = Answer(request.method, target, got.status_code,
                        [(k, v) for k, v in got.headers.multi_items() if k.lower() not in _HOP], got.content)
        if self.tamper is not None:
            self.tamper(answer)
        response = Response(answer.body, status=answer.status)
        response.headers.clear()
        for k, v in answer.headers:
            response.headers.add(k, v)
        return response(environ, start_response)

    def stop(self) -> None:
        super().stop()
        self._client.close()


class Elsewhere(_Server):
    """Another origin. Answers every request with an empty list page in both IdPs' shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.served = ServedApp("elsewhere", self._app).start()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        self._record(request, environ)
        response = Response(json.dumps({"value": []}), status=200, content_type="application/json")
        return response(environ, start_response)


@contextmanager
def request_seen(sandbox: Any, service: str, query_part: str) -> Iterator[threading.Event]:
    """An Event set once `service`'s emulator in `sandbox` ("okta", "graph", "astro") receives a request whose query
    string contains `query_part` (e.g. the next page's cursor): the real emulator answers it as usual."""
    seen = threading.Event()
    middleware = sandbox._middleware[service]
    inner = middleware.app

    def watching(environ: dict[str, Any], start_response: Any) -> Any:
        if query_part in environ.get("QUERY_STRING", ""):
            seen.set()
        return inner(environ, start_response)

    middleware.app = watching
    try:
        yield seen
    finally:
        middleware.app = inner


# (headers, body parts) of the answer to a GET of `target` (path and query) on the server at `base`.
TrickleAnswer = Callable[[str, str], tuple[list[tuple[str, str]], list[bytes]]]


class Trickling:
    """A server whose answers (`answer(base, target)`) are written part by part: the status line and headers at
    once, then each part, every part after the first held until a request whose target holds `release_on` has
    come in (or 5 s have passed: `released` records which, per hold)."""

    def __init__(self, answer: TrickleAnswer, release_on: str) -> None:
        self.released: list[bool] = []
        arrived = threading.Event()
        released = self.released

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if release_on in self.path:
                    arrived.set()
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                headers, parts = answer(base, self.path)
                self.send_response(200)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(sum(len(p) for p in parts)))
                self.end_headers()
                for i, part in enumerate(parts):
                    if i:
                        released.append(arrived.wait(timeout=5))
                    self.wfile.write(part)
                    self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Trickling:
        # shutdown() waits for serve_forever's next look at its flag: every poll interval (0.5 s by default,
        # which each test using this server spent waiting at its end).
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class FirstComer:
    """WSGI wrapper in front of an emulator: a request of `method` whose path matches `pattern` (re.search) is
    sent twice, an identical copy first (another run's create or delete, a moment earlier), then the request
    itself."""

    def __init__(self, app: Callable[..., Iterable[bytes]], method: str, pattern: str) -> None:
        self.app, self.method, self.pattern = app, method, re.compile(pattern)
        self.statuses: list[str] = []  # what the copies got

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == self.method and self.pattern.search(environ["PATH_INFO"]):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))

            def record(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                self.statuses.append(status)
                return lambda data: None

            for _ in self.app({**environ, "wsgi.input": io.BytesIO(body)}, record):
                pass
            environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


def first_comer(sb: Sandbox, service: str, method: str, pattern: str) -> FirstComer:
    """Put a FirstComer in front of `service`'s emulator. The fault middleware (which logs every request) stays
    outermost: the log shows the runs' requests only."""
    mw = sb._middleware[service]
    wrapper = FirstComer(mw.app, method, pattern)
    mw.app = wrapper
    return wrapper


@contextmanager
def ctrl_c_at(sb: Sandbox, service: str, suffix: str, *, once: bool = True) -> Iterator[list[bool]]:
    """Ctrl-C (SIGINT to this process) while `service`'s emulator answers a request whose path ends with
    `suffix`: at the first such request, or at each (`once=False`). Yields the list of what was sent: clear it to
    arm a `once` again."""
    import os
    import signal

    mw = sb._middleware[service]
    inner = mw.app
    sent: list[bool] = []

    def ctrl_c(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"].endswith(suffix) and not (once and sent):
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # the main thread, whatever it runs, is interrupted
        result: Iterable[bytes] = inner(environ, start_response)
        return result

    mw.app = ctrl_c
    try:
        yield sent
    finally:
        mw.app = inner
