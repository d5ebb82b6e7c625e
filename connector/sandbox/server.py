"""Serve a WSGI app on an ephemeral loopback port in a background thread (werkzeug's threaded server)."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from connector.sandbox.faults import WSGIApp


class _QuietHandler(WSGIRequestHandler):
    # HTTP/1.1 keeps connections alive: SDK clients reuse them, which is what makes 1,000+ req/s possible.
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_error(self, *args: Any, **kwargs: Any) -> None:
        pass


class ServedApp:
    """A started HTTP server. `url` is its base, e.g. http://127.0.0.1:54321."""

    def __init__(self, name: str, app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietHandler
        )
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        # serve_forever polls for shutdown every poll_interval (default 0.5 s): every stop() would wait that long,
        # which adds up over hundreds of test fixtures.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name=f"sandbox-{name}", daemon=True
        )

    def start(self) -> ServedApp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
