"""connector.support.chain.cursor_chain with fetches of the test's own (no HTTP): what happens in which order when a
page's head and its rest arrive together, and that a chain that stops releases what waits for it."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import aclosing
from typing import Any

from connector.support.chain import PageWatch, cursor_chain, handed_on

PAGES: dict[str, dict[str, Any]] = {
    "p1": {"next": "p2", "items": [1, 2]},
    "p2": {"next": "p3", "items": [3]},
    "p3": {"next": None, "items": [4]},
}


def _chain(events: list[str], watches: dict[str, PageWatch[Any]]) -> Any:
    async def fetch(url: str, watch: PageWatch[Any]) -> dict[str, Any]:
        watches[url] = watch
        events.append(f"ask {url}")
        watch.set()  # the request is written
        page = PAGES[url]
        # The whole answer is in at once (as over loopback): its head, then the rest read and decoded.
        await handed_on(watch, page["next"])
        events.append(f"read {url}")
        return page

    return cursor_chain("p1", fetch, early=lambda head: head, link=lambda page: page["next"],
                        follow=lambda link: link, check=lambda link: link)


def test_the_next_page_is_asked_before_the_rest_of_this_one_is_read() -> None:
    """Each page's fetch hands its head (the next link) to the chain and reads its rest only once the chain has
    asked for the next page: the rest (Graph's 300 KB of members) is decoded while the next request travels."""
    events: list[str] = []

    async def read() -> list[int]:
        async with aclosing(_chain(events, {})) as pages:
            return [item async for page in pages for item in page["items"]]

    assert asyncio.run(read()) == [1, 2, 3, 4]
    assert events == ["ask p1", "ask p2", "read p1", "ask p3", "read p2", "read p3"]


def test_a_page_the_chain_never_acts_on_is_read_after_the_hold(monkeypatch: Any) -> None:
    """A fetch holds its page's rest for the chain at most HOLD_SECONDS: a page whose chain never acts (a path
    that forgot to) is read late, never held for ever."""
    import connector.support.chain as chain

    monkeypatch.setattr(chain, "HOLD_SECONDS", 0.001)

    async def alone() -> str:
        watch: PageWatch[str] = PageWatch()
        await handed_on(watch, "p2")
        return watch.head.result()

    assert asyncio.run(asyncio.wait_for(alone(), 5)) == "p2"


def test_a_chain_that_stops_releases_the_page_it_asked_ahead() -> None:
    """A reader that stops after the first page: the page asked ahead no longer waits for the chain (a request
    another caller shares reads on for that caller), and nothing is left running."""
    events: list[str] = []
    watches: dict[str, PageWatch[Any]] = {}

    async def first_only() -> list[int]:
        async with aclosing(_chain(events, watches)) as pages:
            async for page in pages:
                return list(page["items"])
        return []

    async def run() -> tuple[list[int], int]:
        got = await first_only()
        for _ in range(10):  # the cancelled tasks' last steps (the page's, its hold's)
            await asyncio.sleep(0)
        return got, len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

    got, left = asyncio.run(run())
    assert got == [1, 2] and left == 0
    assert watches["p2"].acted.is_set()
    assert events == ["ask p1", "ask p2", "read p1"]


def test_a_chain_cancelled_while_its_request_is_written_releases_that_page() -> None:
    """Cancelled before its first request is written (ask_ahead then drops the page: the chain never holds it),
    the page's watch is released all the same, for whoever shares that request."""
    watches: list[PageWatch[Any]] = []

    async def fetch(url: str, watch: PageWatch[Any]) -> dict[str, Any]:
        watches.append(watch)
        await asyncio.Event().wait()  # the request is never written
        raise AssertionError("unreachable")

    async def read() -> None:
        chain = cursor_chain("p1", fetch, early=lambda head: head, link=lambda page: page["next"],
                             follow=lambda link: link, check=lambda link: link)
        async with aclosing(chain) as pages:
            async for _ in pages:
                pass

    async def run() -> None:
        task = asyncio.ensure_future(read())
        for _ in range(1000):  # a few turns of the loop: the chain asks for its first page at once
            if watches or task.done():
                break
            await asyncio.sleep(0)
        assert watches, task
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(watches) == 1 and watches[0].acted.is_set()
