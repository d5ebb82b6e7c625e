"""Read an Astro organization's SCIM endpoint into an `AstroView`: discovery, then every User and Group, paged.

Over the one Astro SCIM client (connector.astro.client: its aiohttp session, the retry policy and the error
mapping; plain GETs, so neither scim2-client nor scim2-models is loaded: connector.astro.engine says what that
saves). Paging: the first page of each resource type,
then the remaining pages concurrently once totalResults is known (bounded), as many resources a page as the
server's filter.maxResults allows (at most 1000, or astro.page_size when set). The critical path is discovery ->
first page -> the rest, whatever the user count; each page is decoded and converted while later ones are on their way.

Strict first, relaxed one flag at a time: a JSON body under the wrong media type, a server that refuses
excludedAttributes, Teams listed without members, discovery that is missing or points elsewhere are tolerated and
reported in `AstroView.deviations`. Anything that would make the audit lie is an error naming the endpoint: HTTP
errors after retries, HTML, truncated JSON, resources without ids, and totals that do not add up (fewer resources
than totalResults, duplicates, a total that moves). Whether the answers validate against the RFC 7643 models is
`test-connection`'s question (connector.astro.conformance): it changes nothing in what the audit reads, and
answering it costs a fresh process the import of scim2-models (~1 s of CPU).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from sys import intern
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from connector.astro.client import DEFAULT_CONCURRENCY, SERVICE, AstroScimClient
from connector.config.load import AstroConfig
from connector.errors import AuthError, RemoteError
from connector.support.gcpause import collection_paused
from connector.support.http import DEFAULT_POLICY, RetryPolicy
from connector.support.paging import check_page_count
from connector.views import AstroTeam, AstroUser, AstroView, Compared

if TYPE_CHECKING:
    from connector.astro.engine import AstroSession

log = logging.getLogger("connector.astro")
T = TypeVar("T")

# Pages as large as the server says it honours (ServiceProviderConfig filter.maxResults), at most MAX_PAGE_SIZE,
# unless astro.page_size asks for less: each request costs a round trip, so the fewest pages the server allows
# make the shortest read (benchmarks/audit_scale.py). The first pages go out with discovery, before maxResults is
# known, asking MAX_PAGE_SIZE: a server caps count at its maximum (RFC 7644 3.4.2.4) and the rest follow its cap.
DEFAULT_PAGE_SIZE = 100  # what is assumed when the server announces no filter.maxResults
MAX_PAGE_SIZE = 1000  # bounds memory per response whatever the server announces or the config asks
# Teams a page at most: a Team carries its members, and 1,000 Teams of 250 members are 250,000 memberships in one
# answer (~20 MB of JSON, ~100 MB decoded; three such pages in flight took a 100,000-user audit from 568 to 652 MB
# peak). Team pages are as independent as the rest (startIndex), so smaller ones add requests, not chain length.
TEAM_PAGE_SIZE = 100
# What drift never reads, left out of the list pages (RFC 7644 3.4.2.5; a server that refuses is read in full):
# `meta` (~40% of a resource's JSON); a User's `groups` (read-only, derived from the Teams' members, which drift
# reads from /Groups; with its $refs ~70% of what remains: 1.38 MB -> 0.42 MB a page of 1,000 users); a Team
# member's `display` (half of each membership; drift matches members by `value`, the user's id).
USER_EXCLUDED = "meta,groups"
TEAM_EXCLUDED = "meta,members.display"

Progress = Callable[[str, int, int], None]  # ("users" | "Teams", resources read so far, totalResults)
Convert = Callable[[dict[str, Any], str, int], Any]  # (resource, endpoint URL, page start) -> view object


@dataclass
class _Page:
    start: int
    total: int
    # The resources' JSON; once converted, a users' page given a `Compared` keeps only the first page's
    # validation sample (the values it compares are in `items`): `size` is how many the page held.
    resources: list[dict[str, Any]]
    echoed: int = 0  # the startIndex the server says the page starts at
    items: list[Any] = field(default_factory=list)  # the resources as view objects (AstroUser, AstroTeam)
    size: int = 0  # len(resources) as received


# The `data` of every user whose compared values were kept (AstroUser.values): one shared empty dict, never
# written to (the audit only reads a user's data), instead of one each.
_NO_DATA: dict[str, Any] = {}


# Teams read by id to tell whether a Team list leaves members out (complete_members).
PROBED_TEAMS = 3

class _Reader:
    """One read of an organization, over `scim` (whose requests, retries, errors and deviations it uses)."""

    def __init__(self, scim: AstroScimClient, *, page_size: int | None, progress: Progress | None,
                 compare: Callable[[], Compared] | None = None) -> None:
        self.scim = scim
        self.session: AstroSession = scim.session
        self.page_size = page_size
        self.progress = progress
        self.deviations = scim.deviations
        self._read: dict[str, int] = {}  # resources read so far, by kind: what `progress` is told
        self._gap_requests = 0  # pages asked again to fill gaps (connector.support.paging bounds them)
        # What drift never reads, asked to be left out (unless the server refuses: then everything is read).
        self._exclude = True
        # What the audit compares, asked for when the first users' page is converted (the mapping it comes from
        # loads off the critical path, while the first pages travel); None: every user's JSON is kept.
        self._compare = compare
        self.compared: Compared | None = None

    def _keep_compared(self, page: _Page) -> None:
        """Each user of `page` keeps only the values the audit compares; the page none of its JSON."""
        if self._compare is None:
            return
        if self.compared is None:
            self.compared = self._compare()
        read = self.compared.read
        for user in page.items:
            user.values = read(user.data)
            user.data = _NO_DATA
        page.resources = []

    def _deviate(self, text: str) -> None:
        self.scim.deviate(text)

    def url(self, path: str) -> str:
        return self.scim.url(path)

    # -- discovery ----------------------------------------------------------------------------------------

    def fetch(self, path: str) -> asyncio.Future[Any]:
        """GET a discovery endpoint's JSON (its answer checked by AstroScimClient.get_json)."""
        return asyncio.ensure_future(self.scim.get_json(path))

    async def discover(self, spc_q: asyncio.Future[Any], rt_q: asyncio.Future[Any]) -> tuple[int, dict[str, str]]:
        """Page size from ServiceProviderConfig; endpoints from ResourceTypes (best effort), read from the JSON."""
        spc: Any
        rts: Any
        spc, rts = await asyncio.gather(spc_q, rt_q, return_exceptions=True)
        page = DEFAULT_PAGE_SIZE
        if isinstance(spc, BaseException):
            if not isinstance(spc, RemoteError) or spc.status not in (404, 501):
                raise spc
            self._deviate(f"no /ServiceProviderConfig (HTTP {spc.status}); pages of {page} assumed")
        else:
            filter_ = spc.get("filter") if isinstance(spc, dict) else None
            max_results = filter_.get("maxResults") if isinstance(filter_, dict) else None
            if isinstance(max_results, int) and not isinstance(max_results, bool) and max_results > 0:
                page = max_results
            else:
                self._deviate(f"/ServiceProviderConfig announces no filter.maxResults; pages of {page} assumed")
        page = min(page, MAX_PAGE_SIZE, self.page_size or MAX_PAGE_SIZE)

        endpoints = {"User": "/Users", "Group": "/Groups"}
        if isinstance(rts, AuthError):
            raise rts
        if isinstance(rts, BaseException):
            self._deviate(f"/ResourceTypes unavailable ({rts}); standard endpoints assumed")
        else:
            resources = rts.get("Resources") if isinstance(rts, dict) else None
            for rt in resources if isinstance(resources, list) else []:
                name, endpoint = (rt.get("name"), rt.get("endpoint")) if isinstance(rt, dict) else (None, None)
                if name not in endpoints or not isinstance(endpoint, str) or not endpoint:
                    continue
                if _is_relative_path(endpoint):
                    endpoints[name] = endpoint
                else:  # the token would go wherever it points
                    self._deviate(f"/ResourceTypes announces {endpoint!r} for {name}, not a path under the SCIM "
                                  f"base URL; {endpoints[name]} used")
        return page, endpoints

    async def _page(self, endpoint: str, start: int, count: int, convert: Convert) -> _Page:
        excluded = TEAM_EXCLUDED if convert is _team else USER_EXCLUDED

        def ask(exclude: bool) -> str:
            return f"{endpoint}?startIndex={start}&count={count}" + (f"&excludedAttributes={excluded}"
                                                                     if exclude else "")

        def get(where: str) -> Awaitable[Any]:
            return self.scim.get_json(where)

        exclude = self._exclude
        where = ask(exclude)
        try:
            payload = await get(where)
        except RemoteError as exc:
            if not (exclude and exc.status in (400, 501)):
                raise
            self._exclude = False
            self._deviate(f"{endpoint} refuses excludedAttributes={excluded} (HTTP {exc.status}); full resources "
                          "read")
            where = ask(False)
            payload = await get(where)
        page = _check_list(payload, self.url(where), start)
        # Converted as each page arrives, while later pages are still on their way.
        url = self.url(endpoint)
        page.items = [convert(r, url, start) for r in page.resources]
        if convert is _team:
            # The Teams are converted: their member lists (a dict of two strings per membership: ~150 MB for
            # 500,000) are no longer needed; whether a page left `members` out is (complete_members).
            for r in page.resources:
                if "members" in r:
                    r["members"] = ()
        else:
            self._keep_compared(page)
        if page.echoed != start:
            self._deviate(f"{endpoint} answers startIndex={page.echoed} when asked for startIndex={start}")
        if self.progress:
            kind = "Teams" if convert is _team else "users"
            self._read[kind] = self._read.get(kind, 0) + page.size
            # a gap asked again may overlap what was read: never more than the server's total
            self.progress(kind, min(self._read[kind], page.total), page.total)
        return page

    async def first_page(self, endpoint: str, page_size: int, convert: Convert) -> _Page:
        return await self._page(endpoint, 1, page_size, convert)

    async def rest(self, endpoint: str, first: _Page, page_size: int, convert: Convert) -> list[_Page]:
        """Every page of one resource type after `first`, in order with it. Raises RemoteError when they do not
        add up to totalResults."""
        total = first.total
        pages = [first]
        step = first.size
        if total <= step:
            return _assemble(pages, self.url(endpoint), total)
        if step == 0:
            raise _totals_error(self.url(endpoint), f"totalResults is {total} but the first page is empty")
        # A server may cap count below what it announces (or the first page may have been asked before the
        # announcement was read): the rest start where the first page ended, in pages no larger than either.
        count = min(step, page_size)
        check_page_count(total=total, per_page=count, service=SERVICE, endpoint=self.url(endpoint))
        starts = list(range(1 + step, total + 1, count))
        pages += await asyncio.gather(*(self._page(endpoint, s, count, convert) for s in starts))
        pages += await self._fill_gaps(endpoint, pages, total, count, convert)
        return _assemble(pages, self.url(endpoint), total)

    async def complete_members(self, endpoint: str, pages: list[_Page]) -> list[AstroTeam]:
        """Some servers leave `members` out of list responses; then read each group by id (concurrently)."""
        teams = [team for page in pages for team in page.items]
        groups = [group for page in pages for group in page.resources]
        if not groups or any("members" in g for g in groups):
            return teams

        done = 0

        async def one(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal done
            path = f"{endpoint}/{group['id']}"
            full = await self.scim.get_json(path)
            if not isinstance(full, dict) or full.get("id") != group["id"]:
                raise RemoteError("answered with another resource than the one asked for", service=SERVICE,
                                  endpoint=self.url(path), code="invalid_body")
            done += 1
            if self.progress:
                # A word per Team read: the Astro read beside the audit (beside.py) is taken for hung after a
                # silence, which Teams read by id, 8 at a time, outlasted (40 Teams at 0.25 s a read against a
                # 1 s bound, a helper's reproduction).
                self.progress("Teams", done, len(groups))
            return full

        # A few Teams read by id say whether members are left out: one alone, when empty, read every Team as empty
        # (false membership findings). All of them empty: most likely Teams with no members yet.
        probes = await asyncio.gather(*(one(g) for g in groups[:PROBED_TEAMS]))
        if not any(p.get("members") for p in probes):
            return teams
        self._deviate(f"{endpoint} lists Teams without their members; each Team was read by id")
        full = [*probes, *await asyncio.gather(*(one(g) for g in groups[PROBED_TEAMS:]))]
        return [_team(group, self.url(f"{endpoint}/{group['id']}"), 1) for group in full]

    async def _fill_gaps(self, endpoint: str, pages: list[_Page], total: int, step: int,
                         convert: Convert) -> list[_Page]:
        """Pages shorter than asked (without being the last) leave gaps; ask for them until none is left."""
        extra: list[_Page] = []
        while True:
            covered = sorted((p.start, p.start + p.size) for p in (*pages, *extra))
            gaps, pos = [], 1
            for lo, hi in covered:
                if lo > pos:
                    gaps.append(pos)
                pos = max(pos, hi)
            if pos <= total:
                gaps.append(pos)
            if not gaps:
                return extra
            # Each round fills at least one resource per gap (or stops below); bound the rounds' requests too.
            self._gap_requests += len(gaps)
            check_page_count(total=self._gap_requests, per_page=1, service=SERVICE, endpoint=self.url(endpoint))
            got = await asyncio.gather(*(self._page(endpoint, g, step, convert) for g in gaps))
            for g, page in zip(gaps, got, strict=True):
                if not page.size:
                    raise _totals_error(
                        self.url(endpoint), f"totalResults is {total} but startIndex={g} returned no resources"
                    )
            extra += got


def _is_relative_path(endpoint: str) -> bool:
    """A path under the base URL: no scheme or host, query, fragment or dot segments."""
    parts = urlsplit(endpoint)
    return (endpoint.startswith("/") and not (parts.scheme or parts.netloc or parts.query or parts.fragment)
            and not {".", ".."} & set(parts.path.split("/")))


def _totals_error(endpoint: str, message: str) -> RemoteError:
    return RemoteError(f"the list does not add up: {message}", service=SERVICE, endpoint=endpoint,
                       code="inconsistent_paging",
                       hint="the server's paging is broken or the data changed while reading; re-run, and if "
                            "it persists report it to Astro support")


def _check_list(payload: Any, where: str, start: int) -> _Page:
    """The page as asked for (`start` is what we requested: coverage is computed from our requests, so a server
    that ignores startIndex shows up as duplicates, not as an endless hunt for gaps)."""
    if not isinstance(payload, dict):
        raise RemoteError("answered with something other than a ListResponse", service=SERVICE,
                          endpoint=where, code="invalid_body")
    total = payload.get("totalResults")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise RemoteError(f"ListResponse without a valid totalResults ({total!r})", service=SERVICE,
                          endpoint=where, code="invalid_body")
    resources = payload.get("Resources") or []
    echoed = payload.get("startIndex", start)
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        raise RemoteError("Resources is not a list of objects", service=SERVICE, endpoint=where,
                          code="invalid_body")
    return _Page(start=start, total=total, resources=resources, echoed=echoed if isinstance(echoed, int) else start,
                 size=len(resources))


def _assemble(pages: list[_Page], endpoint: str, total: int) -> list[_Page]:
    totals = {p.total for p in pages}
    if len(totals) > 1:
        raise _totals_error(endpoint, f"totalResults changed while paging ({', '.join(map(str, sorted(totals)))})")
    pages = sorted(pages, key=lambda p: p.start)
    seen: set[str] = set()
    for page in pages:
        for item in page.items:
            if item.id in seen:
                raise _totals_error(endpoint, f"resource {item.id} was returned twice (unstable paging order)")
            seen.add(item.id)
    if len(seen) != total:
        raise _totals_error(endpoint, f"totalResults is {total} but {len(seen)} distinct resources came back")
    return pages


def _required(resource: dict[str, Any], key: str, endpoint: str, start: int) -> tuple[str, str]:
    """The resource's id and its `key` attribute (userName, displayName): without them it cannot be audited."""
    rid = resource.get("id")
    if not isinstance(rid, str) or not rid:
        raise RemoteError(f"a resource has no id (startIndex={start})", service=SERVICE, endpoint=endpoint,
                          code="invalid_body")
    value = resource.get(key)
    if not isinstance(value, str):
        raise RemoteError(f"resource {rid} has no {key}", service=SERVICE, endpoint=endpoint, code="invalid_body")
    return rid, value


def _active(value: Any) -> bool:
    # Absent means active (Astro lists live accounts); Entra-era servers may store "False" strings.
    if isinstance(value, str):
        return value.strip().casefold() != "false"
    return value is not False


# _user and _team run for every resource (20,000 users, 100,000 memberships per audit): the common case is
# tested with exact type checks first, the careful path only runs when it fails. Ids are interned: a user's id
# and its every Team membership are then one string object, not one per occurrence (500,000 memberships of
# 100,000 users: ~35 MB of duplicate strings).

_USER_SCHEMAS = ["urn:ietf:params:scim:schemas:core:2.0:User"]  # never changed: read, compared, validated


def _user(resource: dict[str, Any], endpoint: str, start: int) -> AstroUser:
    rid, user_name = resource.get("id"), resource.get("userName")
    if type(rid) is not str or not rid or type(user_name) is not str:
        rid, user_name = _required(resource, "userName", endpoint, start)
    ext = resource.get("externalId")
    active = resource.get("active", True)
    if resource.get("schemas") == _USER_SCHEMAS:
        resource["schemas"] = _USER_SCHEMAS  # one list shared by every user, not one each (~16 MB at 100,000)
    return AstroUser(id=intern(rid), user_name=user_name, active=True if active is True else _active(active),
                     external_id=ext if type(ext) is str else None, data=resource)


def _team(resource: dict[str, Any], endpoint: str, start: int) -> AstroTeam:
    rid, name = _required(resource, "displayName", endpoint, start)
    members = resource.get("members") or ()
    if not isinstance(members, list | tuple):  # a string would be read as its characters: an empty Team
        raise RemoteError(f"Team {rid}: members is {type(members).__name__}, not a list", service=SERVICE,
                          endpoint=endpoint, code="invalid_body")
    try:
        ids = {intern(m["value"]) for m in members}  # TypeError unless every value is a string
    except (TypeError, KeyError):
        values = [m.get("value") for m in members if isinstance(m, dict)]
        ids = {intern(i) for i in values if isinstance(i, str)}
    ext = resource.get("externalId")
    return AstroTeam(id=rid, name=name, members=tuple(ids), external_id=ext if isinstance(ext, str) else None)


async def _cancel(tasks: Sequence[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _all_or_none(tasks: Sequence[asyncio.Future[T]]) -> list[T]:
    """Every task's result; at the first failure the others are cancelled (not left running unobserved)."""
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        await _cancel(tasks)
        raise


@dataclass
class ReadStats:
    """What a read cost, for the benchmark and `--verbose`."""

    requests: int = 0
    page_size: int = 0


async def read_astro_async(
    astro: AstroConfig,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    policy: RetryPolicy = DEFAULT_POLICY,
    page_size: int | None = None,
    progress: Progress | None = None,
    stats: ReadStats | None = None,
    compare: Callable[[], Compared] | None = None,
) -> AstroView:
    """See `read_astro`; `page_size` overrides astro.page_size. With `compare`, each user keeps only the values
    it names (AstroUser.values, in AstroView.compared's order), not its JSON."""
    async with AstroScimClient(astro, concurrency=concurrency, policy=policy) as scim:
        session = scim.session
        reader = _Reader(scim, page_size=page_size or astro.page_size, progress=progress, compare=compare)
        # Discovery and the first page of each type go out together: the pages do not depend on it unless the
        # server announces other endpoints than the standard ones (then they are read again from those).
        asked = min(page_size or astro.page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        standard = {"User": "/Users", "Group": "/Groups"}
        firsts = [asyncio.ensure_future(reader.first_page(standard["User"], asked, _user)),
                  asyncio.ensure_future(reader.first_page(standard["Group"], min(asked, TEAM_PAGE_SIZE), _team))]
        await session.all_sent()
        spc, rts = reader.fetch("/ServiceProviderConfig"), reader.fetch("/ResourceTypes")
        discovery = asyncio.ensure_future(reader.discover(spc, rts))
        try:
            size, endpoints = await discovery
        except BaseException:
            await _cancel([*firsts, spc, rts])
            raise
        try:
            if endpoints != standard:
                await _cancel(firsts)
                firsts = [asyncio.ensure_future(reader.first_page(endpoints["User"], size, _user)),
                          asyncio.ensure_future(reader.first_page(endpoints["Group"], min(size, TEAM_PAGE_SIZE),
                                                                  _team))]
            first_users, first_groups = await _all_or_none(firsts)
            # Teams first: a page of them carries ~10,000 memberships (~6 ms to decode); queued behind the users'
            # pages they would be decoded at the end, with no request left in flight to overlap them.
            rests = [asyncio.ensure_future(reader.rest(endpoints["Group"], first_groups, min(size, TEAM_PAGE_SIZE),
                                                       _team)),
                     asyncio.ensure_future(reader.rest(endpoints["User"], first_users, size, _user))]
            group_pages, user_pages = await _all_or_none(rests)
            teams = await reader.complete_members(endpoints["Group"], group_pages)
        except BaseException:
            await _cancel(firsts)
            raise
        if stats is not None:
            stats.requests, stats.page_size = scim.requests, size
        users = [user for page in user_pages for user in page.items]
        if compare is not None and reader.compared is None:
            reader.compared = compare()  # no user at all: the paths still say what the (empty) values hold
        return AstroView(scim_url=astro.scim_url, users=users, teams=teams, deviations=reader.deviations,
                         compared=reader.compared.paths if reader.compared is not None else ())


def read_astro(astro: AstroConfig, **options: Any) -> AstroView:
    """Every User and Team of the organization behind `astro.scim_url` (see the module docstring)."""
    holder: list[AstroView] = []

    async def main() -> None:
        # The view leaves through `holder`, not as the task's result: anyio formats the running task into cancel
        # reasons (f"... by {task}"), and a task repr includes its result: 20,000 users cost ~0.8 s to format.
        holder.append(await read_astro_async(astro, **options))

    # The collector is kept off the read: its ~500,000 containers (20,000 users) make no cycles, and two full
    # passes cost 0.14 s of a 0.9 s read (drift pauses it for the whole audit: connector.audit.run).
    with collection_paused():
        asyncio.run(main())
    return holder[0]
