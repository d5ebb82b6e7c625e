"""A cursor chain (Okta's Link header, Graph's @odata.nextLink) read page by page, each next page asked for as
early as the answer allows.

Why: an audit waits on its longest chain of pages, one round trip per link, and what the client does between
two links adds to every one of them. So the next page's request is written (`ask_ahead`) before the current
page is handed on, and, when a page names its next link in its first part (Okta's headers; Graph's
@odata.nextLink, which Graph writes before "value"), as soon as that part is in: while the rest of the page is
still arriving and being decoded. The early link is a guess until the whole page is in: the link the page itself
holds must be the same, else the early request is dropped and the right one asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from connector.errors import RemoteError
from connector.support.http import abandon, ask_ahead

A = TypeVar("A")  # a page's answer
H = TypeVar("H")  # what a page's first part says


class PageWatch(asyncio.Event, Generic[H]):
    """What the chain watches of one page's request: set once the request is written (the `sent` Event of
    connector.support.http.sent_trace), and `head`, the first part of a success answer (never set for an error:
    the chain then waits for the whole answer).

    `acted` is set once the chain has done what the head allows (asked for the next page, or found no early link
    to ask), or has given the page up: a fetch may wait for it (`handed_on`) before it reads and decodes the rest.
    Without the wait, the rest of a page that came in with its head (over a short path it does: one read holds
    both) was read and decoded in the same turn of the loop, before the chain could look at the head: Graph's
    300 KB pages of 999 members, ~2 ms a link (0.2 s of a 100,000-user chain) between a page's head and the next
    request. A fetch that waits must not hold back anyone else: GraphReader releases a request another caller
    joins (its _Flight.released)."""

    def __init__(self) -> None:
        super().__init__()
        self.head: asyncio.Future[H] = asyncio.get_running_loop().create_future()
        self.acted = asyncio.Event()


# How long a fetch holds the rest of its page for the chain at most. The chain acts within a turn or two of the
# loop (0.33 ms median measured at 100,000 Entra users); it is later only while its consumer still works on the
# page before.
# Past this the fetch reads on as it would without the chain: a path that never sets `acted` costs a delay, never
# a hang, and a page is not held half-read (its connection and its request's timeout running) by a consumer that
# stopped reading. Generous, so that a busy machine never turns a page the chain drops into one read for nothing.
HOLD_SECONDS = 0.5


async def handed_on(watch: PageWatch[H], head: H) -> None:
    """Give `head` to the chain watching this page, and return once the chain has acted on it (HOLD_SECONDS at
    most: then `acted` is set here, which only says "read on")."""
    if not watch.head.done():
        watch.head.set_result(head)
    if watch.acted.is_set():
        return
    # A timer, not asyncio.wait_for: the wait stays in this task (wait_for runs it in a task of its own, which a
    # cancelled fetch then leaves behind, answered, for a turn of the loop).
    timer = asyncio.get_running_loop().call_later(HOLD_SECONDS, watch.acted.set)
    try:
        await watch.acted.wait()
    finally:
        timer.cancel()


Asked = tuple["asyncio.Future[Any]", PageWatch[Any]]


async def cursor_chain(
    url: str,
    fetch: Callable[[str, PageWatch[H]], Awaitable[A]],
    *,
    early: Callable[[H], str | None],
    link: Callable[[A], str | None],
    follow: Callable[[str], str],
    check: Callable[[str], str],
) -> AsyncGenerator[A, None]:
    """The answers of the chain starting at `url`, in order. `fetch(url, watch)` gets one page (retried as the
    client does), setting `watch` once its request is written and `watch.head` when the first part is in;
    `early(head)` reads the next link from that part (None: not there); `link(answer)` is the next link the
    whole answer holds; `follow(link)` checks a link (connector.support.paging.PageGuard) and gives the URL to
    ask, raising RemoteError for one that must not be followed; `check(link)` does the same for an early guess
    without counting it as followed (`follow` does, once the page confirms it)."""
    current: Asked | None = None
    ahead: Asked | None = None  # asked from the current page's first part

    async def ask(url: str) -> Asked:
        watch: PageWatch[H] = PageWatch()
        try:
            return await ask_ahead(lambda sent: fetch(url, watch), sent=watch), watch
        except BaseException:
            # Cancelled (or failed) before the request was written: ask_ahead dropped the page, the chain never
            # holds it, so nothing else would release a caller sharing its request (see _drop).
            watch.acted.set()
            raise

    try:
        next_url: str | None = url
        while next_url is not None:
            current = current or await ask(next_url)
            task, watch = current
            guess = guessed_url = None
            await asyncio.wait([task, watch.head], return_when=asyncio.FIRST_COMPLETED)
            if not task.done() and watch.head.done():
                try:
                    guess = early(watch.head.result())
                    try:
                        guessed_url = check(guess) if guess is not None else None
                    except RemoteError:
                        guess = None  # the whole page's link meets the same check, and says so
                    if guessed_url is not None:
                        ahead = await ask(guessed_url)
                finally:
                    watch.acted.set()  # the page's fetch reads on (see PageWatch)
            answer = await task
            current = None
            nxt = link(answer)
            if ahead is not None and nxt is not None and nxt == guess:
                next_url = follow(nxt)  # counted now; the same URL the early request went to
                current, ahead = ahead, None
            else:
                _drop(ahead)
                ahead = None
                next_url = follow(nxt) if nxt is not None else None
                current = await ask(next_url) if next_url is not None else None
            yield answer
    finally:
        # A caller that stopped early (or failed): the pages asked for ahead are not wanted.
        _drop(current)
        _drop(ahead)


def _drop(asked: Asked | None) -> None:
    if asked is not None:
        abandon(asked[0])
        # Its fetch may wait for the chain (`acted`): a request another caller shares (GraphReader._shared_get)
        # then reads on for that caller instead of waiting for a chain that has gone. Set after the cancel, so a
        # request nobody else waits for ends cancelled, not read.
        asked[1].acted.set()
