"""The guard every paged read goes through: next links stay on the configured origin, are followed once each, and
the number of pages stays within what a real organization can need.

Why: a list answer decides where the next request goes (Okta's Link header, Graph's @odata.nextLink) and how many
are made (SCIM's totalResults). A hostile or broken server could send our bearer token to another host, keep us
paging forever with a link to itself, or make us plan a billion requests, and whatever it answered would be
merged into the audit. Each of those stops the read with a RemoteError naming the endpoint (exit 3), before the
request is made: a credential is never sent to another origin.

The errors carry status 0: they are the server's fault, but asking again would get the same answer, so the
retry layer (connector.support.http, which retries status None) must not repeat them.
"""

from __future__ import annotations

import math
from urllib.parse import urljoin, urlsplit

from connector.errors import RemoteError

# More pages than any organization needs: 1,000,000 users at the smallest page Okta allows (200 per page) is
# 5,000 pages; Graph pages hold up to 999. A server that announces or links more is broken or hostile.
MAX_PAGES = 50_000

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute URL, host lowercased, the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number
        port = -1
    return scheme, (parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme, -1)


class PageGuard:
    """One paged read: `follow(link)` checks each next link before it is requested."""

    def __init__(self, *, base_url: str, service: str, endpoint: str, max_pages: int = MAX_PAGES) -> None:
        self.base_url = base_url
        self.origin = origin(base_url)
        self.service = service
        self.endpoint = endpoint
        self.max_pages = max_pages
        self.pages = 1  # the first page, requested by the caller
        self._seen: set[str] = set()

    def _error(self, message: str, hint: str) -> RemoteError:
        return RemoteError(message, service=self.service, endpoint=self.endpoint, status=0, code="bad_paging",
                           hint=hint)

    def first(self, url: str) -> None:
        """Remember the first page's URL, so a next link back to it counts as a loop."""
        self._seen.add(urljoin(self.base_url, url))

    def follow(self, link: object) -> str:
        """The absolute next link, after checking it: a string, on our origin, not seen before, within bounds."""
        absolute = self.check(link)
        self._seen.add(absolute)
        self.pages += 1
        if self.pages > self.max_pages:
            raise self._error(f"more than {self.max_pages} pages: more than any organization holds",
                              "the service's paging is broken; report it to the service's support")
        return absolute

    def check(self, link: object) -> str:
        """`follow`'s checks without counting the page: for a next link read early, a guess until its page is in
        (connector.support.chain), which `follow` counts once it is confirmed."""
        if not isinstance(link, str) or not link.strip():
            raise self._error(f"the next-page link is not a URL ({type(link).__name__})",
                              "the service's paging is broken; report it to the service's support")
        absolute = urljoin(self.base_url, link.strip())
        theirs = origin(absolute)
        if theirs != self.origin:
            scheme, host, port = theirs
            raise self._error(
                f"the next-page link points to another origin ({scheme}://{host}:{port}); it was not followed and "
                "no credential was sent to it",
                "the answer did not come from the configured service, or a proxy rewrote it: check the URL in "
                "the config and what sits between this machine and the service")
        if absolute in self._seen:
            raise self._error(f"the next-page link repeats a page already read (after {self.pages} page(s)): the "
                              "list would never end", "the service's paging is broken; re-run, and report it if "
                              "it persists")
        return absolute


def check_page_count(*, total: int, per_page: int, service: str, endpoint: str,
                     max_pages: int = MAX_PAGES) -> None:
    """Refuse a list whose announced total would take more than max_pages requests (SCIM's startIndex paging
    plans every request from totalResults before making them)."""
    needed = math.ceil(total / max(per_page, 1))
    if needed > max_pages:
        raise RemoteError(
            f"totalResults {total} at {per_page} per page would take {needed} requests, more than the "
            f"{max_pages} any organization needs", service=service, endpoint=endpoint, status=0,
            code="bad_paging", hint="the service's paging is broken; report it to the service's support")


def redirect_error(service: str, endpoint: str, status: int, location: str | None) -> RemoteError:
    """A 3xx answer. The clients never follow one: a redirect to another origin would take the request, and
    with some clients the credential, there, and its answer would be read as the service's."""
    target = "another URL"
    if location:
        scheme, host, port = origin(location)
        target = f"{scheme}://{host}:{port}" if host else "a path on the same host"
    return RemoteError(
        f"answered with a redirect to {target}; redirects are not followed, so nothing was sent there",
        service=service, endpoint=endpoint, status=status, code="redirect",
        hint="check the URL in the config (scheme, host, path): the service should answer it directly")
