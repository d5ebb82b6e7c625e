"""A headless Chromium driven over the DevTools protocol, for the tests that look at the HTML report as a browser
draws it (tests/test_report_browser.py).

The protocol travels over a pipe (`--remote-debugging-pipe`: the browser reads commands on fd 3 and writes answers
on fd 4, each a JSON text ending in NUL), so there is no port, no websocket client and no driver download; only
Debian's `chromium` package. The command line alone is not enough: a headless window is never narrower than
500 px, and a phone is 360, so the page is sized with Emulation.setDeviceMetricsOverride.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

# As the machine notes say: the background-networking flags keep Chromium from calling out (this machine's
# network refuses it, many times over); --no-sandbox because the tests may run as root.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio")


def find() -> str | None:
    """The Chromium executable on PATH, if any (Debian names it chromium)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless browser process; `open` gives a page (a tab) sized as asked."""

    def __init__(self, exe: str, *, timeout: float = 60.0) -> None:
        self.timeout = timeout  # a hung browser fails the test instead of hanging it; nothing waits this long
        self.profile = Path(tempfile.mkdtemp(prefix="astro-scim-chromium-"))
        self.log = self.profile / "chromium.log"
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Moved above 10 so the dup2 onto 3 and 4 below is a real copy (which drops close-on-exec), never a no-op.
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # posix_spawn places the pipe ends at fd 3 and 4 without a preexec_fn (unsafe in a threaded process:
            # the sandbox's servers run in threads).
            self.pid = os.posix_spawn(
                exe, [exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
                dict(os.environ),
                file_actions=[(os.POSIX_SPAWN_DUP2, child_in, 3), (os.POSIX_SPAWN_DUP2, child_out, 4),
                              (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)],
            )
        finally:
            for fd in (child_in, child_out, log):
                os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    # -- the protocol

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept for `wait_for`."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self._events.append(answer)

    def wait_for(self, event: str, session: str) -> dict[str, Any]:
        for i, seen in enumerate(self._events):
            if seen.get("method") == event and seen.get("sessionId") == session:
                return self._events.pop(i)
        while True:
            message = self._read()
            if message.get("method") == event and message.get("sessionId") == session:
                return message
            self._events.append(message)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], self.timeout)
            if not ready:
                raise BrowserError(f"chromium did not answer within {self.timeout:.0f} s; its log:\n{self._tail()}")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium closed the pipe; its log:\n{self._tail()}")
            self._buffer += chunk
        text, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(text)
        return message

    def _tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    # -- pages

    def open(self, url: str, *, width: int, height: int = 800, mobile: bool = False) -> Page:
        """A tab `width` CSS px wide, offline and with scripts off (the report must need neither), at `url`."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, target, session)
        self.call("Page.enable", session)
        self.call("Network.enable", session)
        self.call("Network.emulateNetworkConditions", session, offline=True, latency=0, downloadThroughput=-1,
                  uploadThroughput=-1)
        self.call("Emulation.setScriptExecutionDisabled", session, value=True)
        page.resize(width, height, mobile=mobile)
        navigated = self.call("Page.navigate", session, url=url)
        if navigated.get("errorText"):
            raise BrowserError(f"{url}: {navigated['errorText']}")
        self.wait_for("Page.loadEventFired", session)
        page.evaluate("document.fonts.ready.then(() => true)")  # text measured in the fonts it is drawn in
        return page

    # -- lifetime

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (BrowserError, OSError):
            os.kill(self.pid, signal.SIGKILL)
        # Wait for the exit on a pidfd (no polling), then kill if it does not come.
        pidfd = os.pidfd_open(self.pid)
        try:
            if not select.select([pidfd], [], [], self.timeout)[0]:
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        finally:
            os.close(pidfd)
            os.close(self._to_browser)
            os.close(self._from_browser)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
                 ) -> None:
        self.close()


@dataclass
class Page:
    browser: Chromium
    target: str
    session: str

    def resize(self, width: int, height: int, *, mobile: bool = False) -> None:
        # mobile: the viewport meta tag applies and scrollbars overlay, as on a phone or tablet
        self.browser.call("Emulation.setDeviceMetricsOverride", self.session, width=width, height=height,
                          deviceScaleFactor=1, mobile=mobile)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise), as JSON values."""
        answer = self.browser.call("Runtime.evaluate", self.session, expression=expression, returnByValue=True,
                                   awaitPromise=True)
        if "exceptionDetails" in answer:
            raise BrowserError(f"page script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, *, height: int | None = None) -> bytes:
        """A PNG of the page from the top: `height` px of it, or all of it."""
        width = int(self.evaluate("document.documentElement.clientWidth"))
        full = int(self.evaluate("document.documentElement.scrollHeight"))
        clip = {"x": 0, "y": 0, "width": width, "height": min(height or full, full), "scale": 1}
        shot = self.browser.call("Page.captureScreenshot", self.session, format="png", clip=clip,
                                 captureBeyondViewport=True)
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        self.browser.call("Target.closeTarget", targetId=self.target)
