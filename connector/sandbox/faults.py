"""Fault injection for the emulators: latency, 429s, 5xx, dropped connections. Seeded, so runs repeat.

Latency waits on connector.support.clock, so under the tests' FakeClock a delayed request costs no real time and
the delay shows in the clock (and in `FaultMiddleware.delayed_s`, the middleware's own account).
"""

from __future__ import annotations

import io
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from connector.support import clock

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Paths no fault touches: the sandbox's own admin endpoints must stay reliable for tests to set up state.
ADMIN_PREFIX = "/_sandbox"


@dataclass
class FaultConfig:
    latency_ms: float = 0.0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_reset: float = 0.0
    seed: int = 0


@dataclass
class FaultRule:
    """Fail chosen requests, not a random share: the next `times` requests (None: every one) whose method is
    `method`, whose path matches `path` (a regex, searched) and, if given, whose body matches `body`.

    `status` is the answer (the emulator's own 5xx body for 5xx, else an empty body); 0 drops the connection
    without one. With `after=True` the request reaches the emulator first and only its answer is lost (the
    change is made, the client never hears of it): a connection dropped after the server acted. With `release`,
    a server that never answers: the request is held (`held` set) until the test sets `release`, then dropped.
    """

    method: str
    path: str
    body: str | None = None
    status: int = 500
    times: int | None = 1
    after: bool = False
    hits: int = 0  # requests this rule failed so far
    release: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if method != self.method.upper() or not re.search(self.path, path):
            return False
        return self.body is None or re.search(self.body.encode(), body) is not None


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    cpu_s: float = 0.0  # CPU the emulator spent answering (its thread's time; the latency sleep excluded)


@dataclass
class RequestLog:
    """Every request a service answered; tests use it to prove `plan` writes nothing."""

    entries: list[LoggedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: LoggedRequest) -> None:
        with self.lock:
            self.entries.append(entry)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def writes(self) -> list[LoggedRequest]:
        with self.lock:
            return [
                e for e in self.entries
                if e.method not in ("GET", "HEAD", "OPTIONS") and not e.path.startswith(ADMIN_PREFIX)
            ]

    def cpu_seconds(self, prefix: str = "") -> float:
        """CPU the service spent on the logged requests under `prefix`: the emulator's own cost, for benchmarks
        that must tell it from the client's (wall time would mix in the other threads and the machine's load)."""
        with self.lock:
            return sum(e.cpu_s for e in self.entries if e.path.startswith(prefix))

    def count(self, method: str | None = None, prefix: str = "") -> int:
        with self.lock:
            return sum(
                1 for e in self.entries if (method is None or e.method == method) and e.path.startswith(prefix)
            )


class FaultMiddleware:
    """Wraps an emulator. `throttle` and `server_error` build the IdP's own error responses."""

    def __init__(
        self,
        app: WSGIApp,
        config: FaultConfig,
        *,
        throttle: Callable[[Request], Response],
        server_error: Callable[[Request], Response],
        log: RequestLog,
    ) -> None:
        self.app = app
        self.config = config
        self.throttle = throttle
        self.server_error = server_error
        self.log = log
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self.delayed_s = 0.0  # latency injected so far (seconds), summed over requests
        self.rules: list[FaultRule] = []  # chosen requests to fail (see `fail`), checked before the random faults

    def fail(self, rule: FaultRule) -> FaultRule:
        """Fail the requests `rule` matches, from now on; returns it (its `hits` count what it failed)."""
        with self._lock:
            self.rules.append(rule)
        return rule

    def _rule_for(self, environ: dict[str, Any], method: str, path: str) -> FaultRule | None:
        with self._lock:
            if not self.rules:
                return None
        # The body is read to match it, then handed on to the emulator unchanged.
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, body):
                    rule.hits += 1
                    return rule
        return None

    def _drop(self, environ: dict[str, Any]) -> list[bytes]:
        sock = environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            # Drop the connection without an answer, as a flaky load balancer does.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return []

    def _roll(self) -> float:
        with self._lock:
            return self._rng.random()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        query = environ.get("QUERY_STRING", "")
        status_holder: list[int] = [0]

        def recording_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_holder[0] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        cfg = self.config
        rule = None if path.startswith(ADMIN_PREFIX) else self._rule_for(environ, method, path)
        if rule is not None:
            if rule.release is not None:  # no answer until the test lets go (its teardown: no thread left behind)
                rule.held.set()
                rule.release.wait()
                self.log.add(LoggedRequest(method, path, query, 0))
                return self._drop(environ)
            if rule.after:  # the emulator acts; its answer is lost on the way back
                answer = self.app(environ, lambda *a, **k: (lambda data: None))
                list(answer)
                if (close := getattr(answer, "close", None)) is not None:
                    close()
                self.log.add(LoggedRequest(method, path, query, 0))
                return self._drop(environ)
            if rule.status == 0:
                self.log.add(LoggedRequest(method, path, query, 0))
                return self._drop(environ)
            resp = (self.server_error(Request(environ)) if rule.status >= 500
                    else Response(status=rule.status))
            resp.status_code = rule.status
            self.log.add(LoggedRequest(method, path, query, rule.status))
            return resp(environ, start_response)
        if not path.startswith(ADMIN_PREFIX):
            if cfg.latency_ms:
                with self._lock:
                    self.delayed_s += cfg.latency_ms / 1000.0
                clock.current().sleep(cfg.latency_ms / 1000.0)
            if cfg.rate_reset and self._roll() < cfg.rate_reset:
                # Logged before the drop: the client sees the drop at once and may be counted right after.
                self.log.add(LoggedRequest(method, path, query, 0))
                return self._drop(environ)
            if cfg.rate_429 and self._roll() < cfg.rate_429:
                resp = self.throttle(Request(environ))
                self.log.add(LoggedRequest(method, path, query, resp.status_code))
                return resp(environ, start_response)
            if cfg.rate_5xx and self._roll() < cfg.rate_5xx:
                resp = self.server_error(Request(environ))
                self.log.add(LoggedRequest(method, path, query, resp.status_code))
                return resp(environ, start_response)
        cpu = time.thread_time()
        # The body is built here (every emulator answers a list of bytes), so the CPU is the answer's.
        answer = self.app(environ, recording_start)
        try:
            result = list(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        self.log.add(LoggedRequest(method, path, query, status_holder[0], time.thread_time() - cpu))
        return result
