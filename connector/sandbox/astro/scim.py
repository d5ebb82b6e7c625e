"""An Astro-like SCIM 2.0 service: the real scim2-server, one in-memory store per Astro organization.

Served under `/scim/v2/<org-id>` like Astro's SCIM base URL. What it adds to scim2-server, and why:
- a bearer token per organization (Astro's Organization API token); wrong or missing -> 401 SCIM error;
- a policy tolerant of Microsoft Entra's request shapes (capitalised ops, "False" strings, Remove-with-value);
- it keeps what it accepts and refuses what it cannot keep with the RFC 7644 error, never a silent 2xx
  (vocabulary.py: unknown attributes, Entra's `manager` kept in the enterprise extension); a documented-only
  mode per organization announces and keeps only what Astro's setup page documents;
- Astro's limits: no nested groups (a Group member that is a group -> 400), and a member is a user of the
  organization (any other id -> 400 invalidValue; scim2-server stores any id);
- referential cleanup: a deleted user leaves every Team (scim2-server keeps dangling members);
- answers carry `User.groups` (computed, RFC 7643 §4.1.2) and print empty `members`/`groups` as `[]`, as the
  vendors' examples do;
- misbehaviour modes (HTML page, truncated JSON, wrong totals, 500s) that the drift auditor must survive;
- a rate limit, announced on every answer. Astro documents none for SCIM, so this is an assumption: a budget of
  1,000 requests per second per organization (`RATE_LIMIT`, `RATE_WINDOW_S`; `AstroScim.rate_limit` changes
  it), fixed windows, announced with the IETF RateLimit fields as SCIM servers behind common API gateways send
  them (draft-ietf-httpapi-ratelimit-headers, separate fields): `RateLimit-Limit` (requests per window),
  `RateLimit-Remaining` (left in this window), `RateLimit-Reset` (seconds until it resets); over budget, 429
  with a SCIM error and `Retry-After` (seconds). Sized so that no IdP engine reaches it (Entra and Okta send one
  SCIM request at a time per app), while a client with many requests in flight can.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import urlsplit
from wsgiref.util import application_uri

from scim2_models import (
    AttributeBinding,
    AuthenticationScheme,
    Context,
    External,
    InvalidValueException,
    ListResponse,
    Meta,
    NotFoundException,
    PatchOp,
    Path,
    Reference,
    Resource,
    ResourceType,
    ResponseParameters,
    Schema,
    ScimPolicy,
    ScimProvider,
    SearchRequest,
    UnauthorizedException,
    Uniqueness,
)
from scim2_models.path import Comparison
from scim2_server import routing as scim2_routing
from scim2_server.applications.wsgi import WSGIApplication, send_response
from scim2_server.handler import ScimHandler
from scim2_server.memory import InMemoryStorage, _hashable, _key, _page
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Target
from scim2_server.service import SEARCH_REQUEST_PARAMETERS, ScimService
from scim2_server.storage import SearchPage
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
    parametrize,
)
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from connector.sandbox.astro import vocabulary
from connector.sandbox.faults import ADMIN_PREFIX
from connector.sandbox.ratelimit import Budget, WindowLimiter
from connector.sandbox.seed import SeedOrg

SCIM_PREFIX = "/scim/v2"
SCIM_MEDIA_TYPE = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
MISBEHAVIOURS = ("html", "truncated", "wrong_totals", "error_500")
RATE_LIMIT = 1_000  # requests per window per organization (an assumption: see the module docstring)
RATE_WINDOW_S = 1.0

# The three knobs Entra needs (reference: scim-libraries-and-quirks.md §1.4); Okta's shapes pass either way.
ENTRA_TOLERANT_POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

_BEARER = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="OAuth Bearer Token",
    description="Astro Organization API token",
    spec_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc6750"),
)

_CUID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_CUID_TABLE = bytes(ord(_CUID_ALPHABET[i % 36]) for i in range(256))  # random byte -> base-36 character


@functools.lru_cache(maxsize=4)
def build_provider(policy: ScimPolicy = ENTRA_TOLERANT_POLICY) -> ScimProvider:
    """scim2-server's default schemas and config, announcing bearer auth, with the (Entra-tolerant) policy.

    Cached: building it costs ~0.1 s and it holds no state, so every sandbox in a test run shares one.
    """
    config = load_default_service_provider_config()
    config = config.model_copy(update={"authentication_schemes": [_BEARER]})
    return ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=config,
        policy=policy,
    )


def scim_error(status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
               ) -> Response:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type=SCIM_MEDIA_TYPE)


class _SharedMembers(list[Any]):
    """A Team's member list on the PATCH copy (AstroStorage.group_for_patch): copying it, deep or not, makes a
    new list of the same member objects."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _SharedMembers:
        return _SharedMembers(self)


@dataclass
class _Members:
    """Something holding `members` only: what `_check_members` checks, for the members a PATCH appends."""

    members: list[Any]


class AstroStorage(InMemoryStorage):
    """scim2-server's in-memory storage with Astro's rules on Teams, tuned for 50,000-user organizations.

    The stock search sorts every resource on each request (O(n log n)) and deep-copies the page; Okta imports and
    the drift auditor page through all users without a filter, so that case reads a cached id order instead
    (invalidated on create and delete; updates keep a resource's id, so its place). `rendered` caches each
    resource's JSON per stored version for `AstroService` (the SCIM dump costs ~0.5 ms per resource).
    """

    versions: itertools.count[int]  # scim2-server's write counter (set in its __init__)

    def __init__(self, user_type: ResourceType, group_type: ResourceType) -> None:
        super().__init__()
        self.user_type = user_type
        self.group_type = group_type
        self._order: dict[str | None, list[str]] = {}
        self._unique: dict[type[Any], list[AttributeBinding]] = {}
        # id -> (stored object, base_url, JSON). Keyed on the object itself: every write stores a new object
        # (nothing is changed in place), and `is` is ~1 us cheaper than reading meta.version.
        self.rendered: dict[str, tuple[Resource[Any], str, bytes]] = {}
        # The same without `meta`, for `excludedAttributes=meta` (the drift reader asks for it).
        self.rendered_nometa: dict[str, tuple[Resource[Any], str, bytes]] = {}
        # The same per `attributes`/`excludedAttributes` choice ((asked, excluded) -> id -> entry): readers that
        # ask only for what they use (RFC 7644 §3.4.2.5) would otherwise pay scim2-server's full rendering
        # (~0.6 ms a resource) on every page.
        self.rendered_by_spec: dict[tuple[tuple[str, ...], tuple[str, ...]],
                                    dict[str, tuple[Resource[Any], str, bytes]]] = {}
        self.generation = 0  # bumped by every write: cached list answers of an older generation are stale
        # user id -> {group id: None}, kept with every group write: answers carry `User.groups` (RFC 7643 §4.1.2,
        # read-only, "groups to which the user belongs"), which scim2-server leaves unset.
        self.member_of: dict[str, dict[str, None]] = {}
        # id(stored Team) -> (that Team, its member ids): stored objects never change, so a member PATCH reads
        # the ids of the version it replaces instead of collecting them again (O(members) per PATCH: quadratic
        # when an engine fills a 20,000-member Team 100 members at a time). Read-only sets.
        self._id_sets: dict[int, tuple[Resource[Any], set[str]]] = {}
        self._replacing = False

    @staticmethod
    def _member_ids(group: Resource[Any] | None) -> set[str]:
        return {m.value for m in (getattr(group, "members", None) or []) if m.value is not None}

    def _ids_of(self, group: Resource[Any] | None) -> set[str]:
        """`_member_ids`, remembered for stored Teams (see `_id_sets`); the caller must not change the set."""
        hit = self._id_sets.get(id(group)) if group is not None else None
        if hit is not None and hit[0] is group:
            return hit[1]
        return self._member_ids(group)

    def member_ids(self, group_id: str) -> set[str]:
        """The member ids of a stored Team (read-only)."""
        with self.lock:
            return self._ids_of(self._resources.get(self.group_type.name, {}).get(group_id))

    def _reindex(self, gid: str, old: Resource[Any] | None, new: Resource[Any] | None) -> set[str]:
        """Keep `member_of` for one group write, and forget the cached JSON of the users whose `groups` changed
        (only those: a PATCH adding one member to a 5,000-member Team re-renders one user, not 5,000).
        Returns the new version's member ids."""
        before, after = self._ids_of(old), self._ids_of(new)
        renamed = old is not None and new is not None and \
            getattr(old, "display_name", None) != getattr(new, "display_name", None)
        touched = (before ^ after) | (after if renamed else set())
        for uid in before - after:
            self.member_of.get(uid, {}).pop(gid, None)
        for uid in after - before:
            self.member_of.setdefault(uid, {})[gid] = None
        for uid in touched:
            self.forget_rendered(uid)
        return after

    def stored_state(self) -> tuple[list[Resource[Any]], int]:
        """The stored resources (users first, in creation order) and the next version number: `replace_all` puts
        them back here or in another storage. The objects are shared, not copied: stored objects are never
        changed in place (every write stores a new one; the caches above rely on that too)."""
        with self.lock:
            version = next(self.versions)
            self.versions = itertools.count(version)
            return self.resources, version

    def replace_all(self, resources: list[Resource[Any]], version: int) -> None:
        """Hold exactly `resources` (their ids, meta and members as they are), the next write at `version`."""
        with self.lock:
            self._order, self.member_of, self._id_sets = {}, {}, {}
            self.rendered, self.rendered_nometa, self.rendered_by_spec = {}, {}, {}
            self.generation += 1
            self.resources = resources  # scim2-server's setter: rebuilds its indexes, and ours, through _store
            self.versions = itertools.count(version)

    def forget_rendered(self, resource_id: str) -> None:
        self.rendered.pop(resource_id, None)
        self.rendered_nometa.pop(resource_id, None)
        for cache in self.rendered_by_spec.values():
            cache.pop(resource_id, None)

    def _store(self, resource: Resource[Any], values: dict[str, Any]) -> None:
        self.generation += 1
        key = _key(resource)
        if key[0] != self.group_type.name:
            super()._store(resource, values)
            return
        old = self._resources.get(key[0], {}).get(key[1])
        self._replacing = True  # the stock _store removes the old version first: not a deletion
        try:
            super()._store(resource, values)
        finally:
            self._replacing = False
        after = self._reindex(key[1], old, resource)
        if old is not None:
            self._id_sets.pop(id(old), None)
        self._id_sets[id(resource)] = (resource, after)

    def _remove(self, key: Any) -> None:
        self.generation += 1
        if key[0] == self.group_type.name and not self._replacing:
            old = self._resources.get(key[0], {}).get(key[1])
            self._reindex(key[1], old, None)
            self._id_sets.pop(id(old), None)
        super()._remove(key)

    def generate_id(self, resource_type: ResourceType, resource: Resource[Any]) -> str:
        # Astro's ids are cuids (e.g. clk17xqgm124q01hkrgilsr49), not UUIDs: "cl" + 23 base-36 characters.
        return "cl" + os.urandom(23).translate(_CUID_TABLE).decode()

    def _values_of(self, resource: Resource[Any]) -> dict[str, Any]:
        # Same result as the stock method; the unique attributes of a model are resolved once, not per write
        # (that lookup was most of the cost of a create).
        bindings = self._unique.get(type(resource))
        if bindings is None:
            paths = parametrize(Path, type(resource)).iter_paths(
                include_subattributes=False, uniqueness=[Uniqueness.server, Uniqueness.global_]
            )
            bindings = self._unique[type(resource)] = [cast(AttributeBinding, p.resolve()) for p in paths]
        values = {}
        for attribute in bindings:
            value = self._comparable_value(resource, attribute)
            if value is not None:
                values[attribute.urn] = _hashable(value)
        return values

    @staticmethod
    def _comparable_value(resource: Resource[Any], attribute: AttributeBinding) -> Any:
        # A plain top-level attribute of the resource's own model (userName, externalId, displayName) is read
        # directly; the stock path-walk costs ~0.1 ms, i.e. seconds to index 50,000 users. Others: stock.
        if attribute.sub_field_name is None and not attribute.is_multivalued and isinstance(resource, attribute.model):
            value = getattr(resource, attribute.field_name, None)
            if value is None:
                return None
            try:
                return attribute.comparable(value)
            except ValueError:
                return None
        return InMemoryStorage._comparable_value(resource, attribute)

    def _check_members(self, resource: Resource[Any], known: set[str] | None = None) -> None:
        """Refuse a member Astro cannot keep. `known`: the ids of the stored version's members, already checked
        (a PATCH adding one member to a 20,000-member Team checks that one, not 20,000)."""
        groups = self._resources.get(self.group_type.name, {})
        users = self._resources.get(self.user_type.name, {})
        for member in getattr(resource, "members", None) or []:
            if known is not None and member.value in known and member.type != "Group":
                continue
            if member.type == "Group" or (member.value is not None and member.value in groups):
                raise InvalidValueException(
                    detail=f"member {member.value!r} is a group: Astro Teams cannot contain groups "
                    "(nested groups are not supported)"
                )
            if member.value not in users:
                # A member is a user of this organization; an id that is none cannot be kept as one (RFC 7643
                # §4.2: "value: Identifier of the member"; RFC 7644 §3.12 invalidValue).
                raise InvalidValueException(detail=f"member {member.value!r} is no user of this organization")

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        """The stock create without its two defensive deep copies (in and out, ~1/3 of a user's create): the
        caller hands over a resource it just built and only renders the stored object it gets back (the SCIM
        handler reads the body into a fresh model; add_orphan builds one)."""
        with self.lock:
            [created] = self.insert_many(resource_type, [resource])
            return self._resources[cast(str, resource_type.name)][created]

    def insert_many(self, resource_type: ResourceType, resources: Iterable[Resource[Any]]) -> list[str]:
        """Store freshly built resources without the two defensive copies of `create` (bulk loading)."""
        ids = []
        with self.lock:
            for resource in resources:
                if resource_type.name == self.group_type.name:
                    self._check_members(resource)
                resource.id = self.generate_id(resource_type, resource)
                now = self.clock()
                resource.meta = Meta(
                    resource_type=resource_type.name, created=now, last_modified=now, version=self.next_version()
                )
                values = self._values_of(resource)
                self._check_uniqueness(resource, values)
                self._store(resource, values)
                ids.append(resource.id)
            self._order.pop(resource_type.name, None)
        return ids

    def update(
        self, resource_type: ResourceType, resource: Resource[Any], *, expected_version: str | None = None
    ) -> Resource[Any]:
        with self.lock:
            if resource_type.name == self.group_type.name:
                stored = self._resources.get(resource_type.name, {}).get(cast(str, resource.id))
                self._check_members(resource, self._ids_of(stored) if stored is not None else None)
            return super().update(resource_type, resource, expected_version=expected_version)

    def group_for_patch(self, group_id: str) -> Resource[Any]:
        """A Team to PATCH, without the deep copy of its member list that `get` makes (O(members) per PATCH:
        quadratic when an engine adds members one PATCH at a time). The copy's own list holds the stored
        member objects: only for PATCHes that never change a member in place (`_OrgApplication.patch_resource`
        checks the paths); the result is stored by `update_patched`."""
        with self.lock:
            stored = self._stored(self.group_type, group_id)
            copy = stored.model_copy()
            members = getattr(stored, "members", None)
            if members is not None:
                # A list of its own (assignment would revalidate every member), whose deep copy is shallow:
                # scim2-models snapshots the resource for rollback before a PATCH, and on this path no member
                # object is changed in place, so the snapshot needs a new list, not 20,000 new members.
                copy.__dict__["members"] = _SharedMembers(members)
            return copy

    def update_patched(self, resource: Resource[Any], *, expected_version: str | None,
                       appended: list[Any] | None = None) -> Resource[Any]:
        """`update` for a Team from `group_for_patch`: the same checks, version and indexes, without the stock
        dump/validate round trip and the copy handed back (both O(members)). The object becomes the stored one;
        callers only render it. `appended`: the resource's members are the stored version's followed by these
        (a PATCH that only adds members), so only these are checked and indexed."""
        with self.lock:
            if isinstance(getattr(resource, "members", None), _SharedMembers):  # untouched by the PATCH
                resource.__dict__["members"] = list(resource.members)  # type: ignore[attr-defined]
            stored = self._stored(self.group_type, resource.id)
            self._check_version(stored, expected_version)
            known = self._ids_of(stored)
            ids: set[str] | None = None
            if appended is None:
                self._check_members(resource, known)
            else:
                self._check_members(cast(Any, _Members(appended)), set())
                added = {m.value for m in appended if m.value is not None}
                ids = known | added if added - known else known
            assert stored.meta is not None
            resource.meta = stored.meta.model_copy(
                update={"location": None, "last_modified": self.clock(), "version": self.next_version()})
            values = self._values_of(resource)
            self._check_uniqueness(resource, values)
            if ids is not None:
                self._id_sets[id(resource)] = (resource, ids)  # read by _store's _reindex instead of collecting
            self._store(resource, values)
            return resource

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        with self.lock:
            super().delete(resource_type, resource_id, expected_version=expected_version)
            self._order.pop(resource_type.name, None)
            self.forget_rendered(resource_id)
            if resource_type.name == self.user_type.name:
                self._leave_all_groups(resource_id)

    def _leave_all_groups(self, user_id: str) -> None:
        for group in list(self._resources.get(self.group_type.name, {}).values()):
            members = getattr(group, "members", None) or []
            kept = [m for m in members if m.value != user_id]
            if len(kept) != len(members):
                updated = group.model_copy(deep=True)
                updated.members = kept
                super().update(self.group_type, updated)

    def search(
        self, resource_types: list[ResourceType], search_request: SearchRequest[Any], *, position: Any = None
    ) -> SearchPage:
        plain = (
            len(resource_types) == 1
            and search_request.filter is None
            and search_request.sort_by is None
            and search_request.cursor is None
        )
        flt = search_request.filter
        if (
            len(resource_types) == 1
            and flt is not None
            and flt.models  # bound to the resource models already, as the service's queries are
            and search_request.sort_by is None
            and search_request.cursor is None
        ):
            # Okta's and Entra's `userName eq "..."` lookups: the stock search deep-copies the page (~2/3 of a
            # lookup's cost) only for the copies to be swapped for the stored objects below. Same candidates
            # (the equality index), same match and the same paging function, without the copies.
            with self.lock:
                candidates = self._candidates([resource_types[0].name], flt)
                return _page(search_request, position, [r for r in candidates if flt.match(r)])
        if not plain:
            with self.lock:
                page = super().search(resource_types, search_request, position=position)
                # Hand back the stored objects rather than the stock copies, as the fast path does, so the
                # service's per-object JSON cache serves filtered lookups (Okta's and Entra's `eq` matches) too.
                page.resources = [
                    self._resources[r.meta.resource_type if r.meta else None][cast(str, r.id)]
                    for r in page.resources
                ]
                return page
        with self.lock:
            name = resource_types[0].name
            stored = self._resources.get(name, {})
            order = self._order.get(name)
            if order is None:
                # Same order as the stock search (by id), so results do not change with the fast path.
                order = self._order[name] = sorted(stored)
            start = search_request.start_index_0 or 0
            stop = None if search_request.count is None else start + search_request.count
            # No copies: stored resources are replaced on write, never changed in place, and the service only
            # reads them (publish() copies before it changes anything).
            return SearchPage(len(order), [stored[i] for i in order[start:stop]])


_META_ORDER = ("resourceType", "created", "lastModified", "location", "version")


_ENTERPRISE_MANAGER_REF = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref"
_HANDLED_REFERENCES = {"groups.$ref", "members.$ref", _ENTERPRISE_MANAGER_REF}
_REFERENCE_PATHS: dict[type[Any], bool] = {}  # model -> its resource references are all handled above


def _relative(ref: Any) -> bool:
    """A reference publish() turns into a URL (scim2-server's reference_location keeps the others)."""
    if not isinstance(ref, str) or ref.startswith(("http://", "https://", "/")):
        return False
    return not urlsplit(ref).scheme


def _has_relative_ref(value: Any) -> bool:
    """True when a dumped resource holds a `$ref` that publish() would turn into a URL."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "$ref" and isinstance(v, str) and not (urlsplit(v).scheme or v.startswith("/")):
                return True
            if isinstance(v, dict | list) and _has_relative_ref(v):
                return True
        return False
    if isinstance(value, list):
        return any(_has_relative_ref(v) for v in value)
    return False


class _RawResponse(ScimResponse):
    """A response whose JSON body is already serialized (list pages assembled from cached resource JSON)."""

    raw: bytes = b""


# scim2-server routes each request 3-4 times (auth, body limit, dispatch, operation), each a scan of 20 patterns;
# the answer depends only on (method, path) and Target is frozen, so it is computed once.
_route = functools.lru_cache(maxsize=8192)(scim2_routing.match)


# An IdP's matching lookup: one attribute, `eq`, a quoted value without escapes or control characters.
_EQ_LOOKUP = re.compile(r'(userName|displayName|externalId) eq "([\x20\x21\x23-\x5b\x5d-\x7e]*)"')
_EQ_SAMPLE = "sample"

_FULL_DUMP: SearchRequest[Any] = SearchRequest()  # no attributes asked or excluded: every default attribute


@functools.cache
def _kept_generics(models: tuple[type[Resource[Any]], ...]) -> tuple[Any, ...]:
    """The generic messages scim2-server parametrizes per request for these resource models, built once and kept.

    Pydantic holds parametrized generics only weakly, so each was built again after every garbage collection:
    ~3 ms each in a small process, 30-100 ms in a test worker (scim2-models has pydantic read every class's
    attribute docstrings from source, and inspect searches sys.modules for it). Holding them here keeps pydantic's
    own cache answering scim2-server's `parametrize` calls."""
    kept: list[Any] = [ListResponse[Schema], ListResponse[ResourceType]]  # /Schemas, /ResourceTypes
    for model in models:  # a resource type's own endpoint: search, attributes=..., PATCH
        kept += [PatchOp[model], ResponseParameters[model], SearchRequest[model]]  # type: ignore[valid-type]
    return tuple(kept)


class AstroService(ScimService):
    """scim2-server's service; list pages reuse each resource's JSON while its version is unchanged."""

    def __init__(self, provider: ScimProvider, storage: AstroStorage) -> None:
        super().__init__(provider, secret=os.environ.get("SCIM2_SERVER_SECRET"))
        self.storage = storage
        _kept_generics(tuple(self.get_models()))
        self._searches: dict[tuple[Any, ...], tuple[SearchRequest[Any], Any]] = {}
        self._eq_templates: dict[tuple[Any, ...], SearchRequest[Any]] = {}

    def match(self, request: ScimRequest) -> Target:
        return _route(request.method.upper(), request.path)

    # -- what answers carry beyond the stored resource ------------------------------------------------------

    def _groups_of(self, base_url: str, user_id: str) -> list[dict[str, Any]]:
        """`User.groups` as RFC 7643 §4.1.2 prints it (value, $ref, display, type "direct")."""
        stored = self.storage._resources.get(self.storage.group_type.name, {})
        out = []
        for gid in self.storage.member_of.get(user_id, {}):
            group = stored.get(gid)
            if group is not None:
                out.append({"value": gid, "$ref": self.resource_location(base_url, self.storage.group_type, gid),
                            "display": getattr(group, "display_name", None), "type": "direct"})
        return out

    def _needs_stock_publish(self, resource: Resource[Any]) -> bool:
        """True unless the resource is a User or Group of the known models holding no relative reference: the
        stock publish() rewrites only those (RFC 7643 §2.3.7), and costs a deep copy and a path walk."""
        known = _REFERENCE_PATHS.get(type(resource))
        if known is None:
            paths = {str(p) for p in parametrize(Path, type(resource)).iter_paths(target_type=[Reference])
                     if set(cast(Any, p.resolve()).target_type.__reference_types__) - {"external", "uri"}}
            known = _REFERENCE_PATHS[type(resource)] = paths <= _HANDLED_REFERENCES
        if not known:
            return True
        name = _key(resource)[0]
        if name == self.storage.group_type.name:
            return any(_relative(getattr(m, "ref", None)) for m in getattr(resource, "members", None) or [])
        if name != self.storage.user_type.name:
            return True
        if any(_relative(getattr(g, "ref", None)) for g in getattr(resource, "groups", None) or []):
            return True
        manager = getattr(getattr(resource, "EnterpriseUser", None), "manager", None)
        return _relative(getattr(manager, "ref", None))

    def publish(self, base_url: str, resource: Resource[Any]) -> Resource[Any]:
        if self._needs_stock_publish(resource):
            published = super().publish(base_url, resource)
        else:
            # What the stock method gives for such a resource, from a shallow copy: callers only read it (or
            # assign whole attributes, like `groups` below), never change the stored values it shares.
            assert resource.meta is not None
            update: dict[str, Any] = {"location": self.resource_location(
                base_url, self.get_resource_type_of(resource), cast(str, resource.id))}
            if not self.etag_supported:
                update["version"] = None
            published = resource.model_copy()
            published.meta = resource.meta.model_copy(update=update)
        if _key(resource)[0] == self.storage.user_type.name:
            groups = self._groups_of(base_url, cast(str, resource.id))
            if groups:
                published.groups = groups  # validated into the model's type
        return published

    def _empty_lists(self, body: Any, resource: Resource[Any], parameters: Any) -> None:
        """Print `members: []` on a Team and `groups: []` on a user with none, as Okta's and Microsoft's examples
        do (Okta SCIM 2.0 reference "Create Groups" answers `"members": []`; its "Create the User" answer and
        Microsoft's tutorial print `"groups": []`): a dump leaves empty lists out. Not when the client asked
        for other attributes only, or excluded these."""
        if not isinstance(body, dict):
            return
        name = _key(resource)[0]
        key = "members" if name == self.storage.group_type.name else \
            "groups" if name == self.storage.user_type.name else None
        if key is None or key in body:
            return
        asked = [str(a).rsplit(":", 1)[-1].lower() for a in (getattr(parameters, "attributes", None) or [])]
        excluded = [str(a).rsplit(":", 1)[-1].lower() for a in (getattr(parameters, "excluded_attributes", None)
                                                                 or [])]
        if (asked and key not in asked) or key in excluded:
            return
        body[key] = []

    def resource_response(
        self,
        resource: Resource[Any],
        scim_ctx: Context,
        response_parameters: Any = None,
        status: HTTPStatus = HTTPStatus.OK,
    ) -> ScimResponse:
        response = super().resource_response(resource, scim_ctx, response_parameters, status)
        self._empty_lists(response.body, resource, response_parameters)
        return response

    def patch_response(self, base_url: str, resource: Resource[Any], response_parameters: Any) -> ScimResponse:
        # The stock method publishes (deep-copies, walks every reference of) the resource even for the 204 it
        # sends when no attributes were asked: O(members) per Team PATCH. Same answer, without the copy.
        if not response_parameters.attributes and not response_parameters.excluded_attributes:
            assert resource.meta is not None
            version = resource.meta.version if self.etag_supported else None
            return ScimResponse(HTTPStatus.NO_CONTENT, None, {"ETag": version} if version else {})
        return super().patch_response(base_url, resource, response_parameters)

    def creation_response(self, base_url: str, created: Resource[Any]) -> ScimResponse:
        # publish() + a dump in the creation context cost ~6x the lean dump the list pages use; same body.
        body = self._publish_dump(base_url, created, _FULL_DUMP, Context.RESOURCE_CREATION_RESPONSE)
        meta = body.get("meta") or {}
        headers = {"Content-Location": meta["location"], "Location": meta["location"]}
        if meta.get("version"):
            headers["ETag"] = meta["version"]
        return ScimResponse(HTTPStatus.CREATED, body, headers)

    def read_search_query(
        self, resource_types: list[ResourceType], query: Mapping[str, str]
    ) -> tuple[SearchRequest[Any], Any]:
        # Validating the query into a SearchRequest is ~half the cost of a list request, and pagers send the
        # same few queries over and over. Cursor queries are not cached (their position is per request).
        key = (tuple(rt.id for rt in resource_types),
               tuple(sorted((k, query[k]) for k in SEARCH_REQUEST_PARAMETERS if k in query)))
        hit = self._searches.get(key)
        if hit is None:
            lookup = self._eq_lookup(resource_types, query)
            if lookup is not None:
                return lookup, None
        if hit is None:
            hit = super().read_search_query(resource_types, query)
            if hit[1] is not None or hit[0].cursor is not None:
                return hit
            if len(self._searches) >= 4096:
                self._searches.clear()
            self._searches[key] = hit
        return hit[0].model_copy(), hit[1]

    def _eq_lookup(self, resource_types: list[ResourceType], query: Mapping[str, str]) -> SearchRequest[Any] | None:
        """The SearchRequest of an IdP's matching lookup (`userName eq "..."`, `displayName eq "..."`), built from
        the one validated for the same query with another value: the engines send one per user, each value new,
        and validating the query (the filter's parse included) was ~60% of such a GET. Only for a plain ASCII
        string the filter's own rendering gives back unchanged, so the filter is the one parsing would build
        (same text, same tree); anything else (None) takes scim2-server's path."""
        text = query.get("filter")
        matched = _EQ_LOOKUP.fullmatch(text) if text else None
        if matched is None or "cursor" in query:
            return None
        others = tuple(sorted((k, query[k]) for k in SEARCH_REQUEST_PARAMETERS if k in query and k != "filter"))
        key = (tuple(rt.id for rt in resource_types), others, matched.group(1))
        template = self._eq_templates.get(key)
        if template is None:
            sample = dict(query)
            sample["filter"] = f'{matched.group(1)} eq "{_EQ_SAMPLE}"'
            try:
                template, position = super().read_search_query(resource_types, sample)
            except Exception:
                return None  # the stock path raises the same for the real query, with its own words
            node = getattr(template.filter, "ast", None)
            if position is not None or template.cursor is not None or not isinstance(node, Comparison) \
                    or node.value != _EQ_SAMPLE:
                return None
            if len(self._eq_templates) >= 256:
                self._eq_templates.clear()
            self._eq_templates[key] = template
        node = cast(Comparison, cast(Any, template.filter).ast)
        flt = cast(Any, type(template.filter))(Comparison(node.attr_path, node.op, matched.group(2)))
        if str(flt) != text:
            return None
        return template.model_copy(update={"filter": flt})

    def _rendered(self, base_url: str, resource: Resource[Any], search_request: SearchRequest[Any],
                  nometa: bool = False) -> bytes:
        # The full dump, then meta dropped: dumping with the exclusion would take publish()'s slow path.
        dump = self._publish_dump(base_url, resource, _FULL_DUMP if nometa else search_request)
        if nometa:
            dump.pop("meta", None)
        body = json.dumps(dump).encode()
        key = cast(str, resource.id)
        stored = self.storage._resources.get(resource.meta.resource_type if resource.meta else None, {})
        if stored.get(key) is resource:  # a copy (filtered search) could never be hit again
            cache = self.storage.rendered_nometa if nometa else self.storage.rendered
            cache[key] = (resource, base_url, body)
        return body

    def _spec_page(self, base_url: str, resource_types: list[ResourceType], page: SearchPage,
                   search_request: SearchRequest[Any]) -> ScimResponse:
        """A list page with `attributes`/`excludedAttributes`: each resource's JSON rendered once per choice and
        stored version (tests/test_astro_scim.py compares the pages with scim2-server's own)."""
        spec = (tuple(str(a) for a in search_request.attributes or []),
                tuple(str(a) for a in search_request.excluded_attributes or []))
        caches = self.storage.rendered_by_spec
        cache = caches.get(spec)
        if cache is None:
            if len(caches) >= 16:  # a few choices in practice; a client varying them must not grow memory
                caches.clear()
            cache = caches[spec] = {}
        items = []
        for r in page.resources:
            hit = cache.get(cast(str, r.id))
            if hit is not None and hit[0] is r and hit[1] == base_url:
                items.append(hit[2])
                continue
            body = json.dumps(_spec_item(self, base_url, r, search_request)).encode()
            stored = self.storage._resources.get(r.meta.resource_type if r.meta else None, {})
            if stored.get(cast(str, r.id)) is r:
                cache[cast(str, r.id)] = (r, base_url, body)
            items.append(body)
        return _list_answer(page.total, search_request.start_index, items)

    def _publish_dump(self, base_url: str, resource: Resource[Any], search_request: SearchRequest[Any],
                      ctx: Context = Context.RESOURCE_QUERY_RESPONSE) -> dict[str, Any]:
        """What publish() + model_dump() give, without publish()'s deep copy and path walk (~3/4 of the cost).

        publish() only adds meta.location, drops the version without ETag support, and turns relative
        references into URLs; a resource holding a relative reference takes the stock path.
        """
        data: dict[str, Any] = resource.model_dump(scim_ctx=ctx, response_parameters=search_request)
        meta = data.get("meta")
        if _has_relative_ref(data) or not isinstance(meta, dict):
            published: dict[str, Any] = self.publish(base_url, resource).model_dump(
                scim_ctx=ctx, response_parameters=search_request)
            self._empty_lists(published, resource, search_request)
            return published
        meta["location"] = self.resource_location(base_url, self.get_resource_type_of(resource), cast(str, resource.id))
        if not self.etag_supported:
            meta.pop("version", None)
        if meta.get("resourceType") == self.storage.user_type.name:
            data["groups"] = self._groups_of(base_url, cast(str, resource.id))
        elif "members" not in data:
            data["members"] = []
        del data["meta"]  # re-added last, where a dump puts it
        data["meta"] = {k: meta[k] for k in _META_ORDER if k in meta}
        return data

    def search_response(
        self,
        base_url: str,
        resource_types: list[ResourceType],
        page: SearchPage,
        search_request: SearchRequest[Any],
    ) -> ScimResponse:
        excluded = search_request.excluded_attributes
        nometa = bool(excluded) and [str(a) for a in excluded or []] == ["meta"]
        if (search_request.attributes or (excluded and not nometa)) and search_request.cursor is None \
                and page.total is not None:
            return self._spec_page(base_url, resource_types, page, search_request)
        if (
            search_request.attributes
            or (excluded and not nometa)
            or search_request.cursor is not None
            or page.total is None
        ):
            response = super().search_response(base_url, resource_types, page, search_request)
            listed = response.body.get("Resources") if isinstance(response.body, dict) else None
            for item, resource in zip(listed or [], page.resources, strict=False):
                self._empty_lists(item, resource, search_request)
            if search_request.cursor is None and response.status == HTTPStatus.OK and isinstance(response.body, dict):
                # Serialized here so the organization's page cache (_OrgApplication._pages) keeps it too: a
                # reader asking for attributes= / excludedAttributes= pages the same URLs again and again.
                raw = _RawResponse(response.status, None, dict(response.headers))
                raw.raw = json.dumps(response.body).encode()
                return raw
            return response
        # The hit test is inlined: this loop runs for every resource of every page.
        rendered = self.storage.rendered_nometa if nometa else self.storage.rendered
        items = []
        for r in page.resources:
            hit = rendered.get(r.id)
            if hit is not None and hit[0] is r and hit[1] == base_url:
                items.append(hit[2])
            else:
                items.append(self._rendered(base_url, r, search_request, nometa))
        return _list_answer(page.total, search_request.start_index, items)


def _list_answer(total: int, start_index: int | None, items: list[bytes]) -> _RawResponse:
    """A ListResponse around already-serialised resources (RFC 7644 section 3.4.2), joined as bytes: the page
    answers are cached per resource, so the page is never serialised as a whole."""
    head = json.dumps({"schemas": [LIST_SCHEMA], "totalResults": total, "startIndex": start_index,
                       "itemsPerPage": len(items)})
    response = _RawResponse(HTTPStatus.OK, None)
    response.raw = head[:-1].encode() + b', "Resources": [' + b", ".join(items) + b"]}"
    return response


_GROUP_URN_PREFIX = "urn:ietf:params:scim:schemas:core:2.0:group:"


def _members_kept_whole(patch_op: PatchOp[Any]) -> bool:
    """True when no operation of a Team PATCH can change a stored member object in place, so the PATCH may work
    on a copy that shares them (scim2-models replaces or appends list entries for these, and changes an entry
    in place only for a value filter with add/replace, or a member sub-attribute)."""
    for operation in patch_op.operations or []:
        raw = getattr(operation, "path", None)
        if raw is None:
            value = getattr(operation, "value", None)
            if not isinstance(value, dict) or any(str(k).lower().rsplit(":", 1)[-1] == "members" for k in value):
                return False
            continue
        path = str(raw).lower()
        if path.startswith(_GROUP_URN_PREFIX):
            path = path[len(_GROUP_URN_PREFIX):]
        if not path.startswith("members"):
            continue
        op = str(getattr(getattr(operation, "op", None), "value", "")).lower()
        if path == "members" or (op == "remove" and path.startswith("members[") and path.endswith("]")):
            continue
        return False
    return True


def _spec_item(service: AstroService, base_url: str, resource: Resource[Any], search_request: SearchRequest[Any]
               ) -> dict[str, Any]:
    """One resource of a list page with `attributes`/`excludedAttributes`, as scim2-server's search_response
    renders it (publish, dump with the request's parameters) plus what Astro adds (`_empty_lists`)."""
    item: dict[str, Any] = service.publish(base_url, resource).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=search_request)
    service._empty_lists(item, resource, search_request)
    return item


class _AstroHandler(ScimHandler):
    """scim2-server's request handler with a cheaper Team PATCH."""

    def patch_resource(self, resource_type: ResourceType, resource_id: str, patch_op: PatchOp[Any],
                       conditions: Any) -> Resource[Any]:
        """The stock PATCH, without copying a Team's member list twice and rebuilding it (see
        AstroStorage.group_for_patch) when no operation can change a member object in place."""
        storage = cast(AstroStorage, self.storage)
        if resource_type.name != storage.group_type.name or not _members_kept_whole(patch_op):
            return cast(Resource[Any], super().patch_resource(resource_type, resource_id, patch_op, conditions))
        current = storage.group_for_patch(resource_id)
        assert current.meta is not None
        version = current.meta.version
        added = _appended_member_ids(patch_op)
        full: list[Any] = list(getattr(current, "members", None) or [])
        if added is not None and full:
            # Only appends to `members`: scim2-models compares each added value with every current member
            # (O(members) per PATCH, ~0.1 s at 20,000). A current member can only equal an added one if it has
            # the same `value`, so the PATCH runs on those alone and the rest is put back in front of them.
            present = added & storage.member_ids(resource_id)
            kept = [m for m in full if m.value in present] if present else []
            current.__dict__["members"] = kept
            patched = self.service.apply_patch(current, patch_op, conditions)
            if patched is None:
                return storage._stored(storage.group_type, resource_id)
            tail = list(getattr(patched, "members", None) or [])[len(kept):]
            patched.__dict__["members"] = full + tail
            return storage.update_patched(patched, expected_version=version, appended=tail)
        patched = self.service.apply_patch(current, patch_op, conditions)
        if patched is None:
            return current
        return storage.update_patched(patched, expected_version=version)


def _appended_member_ids(patch_op: PatchOp[Any]) -> set[Any] | None:
    """The `value`s a Team PATCH adds, when its only change to `members` is `add` with path `members` (Entra's
    and Okta's member additions; other operations may touch other attributes); else None."""
    added: set[Any] = set()
    for operation in patch_op.operations or []:
        raw = getattr(operation, "path", None)
        op = str(getattr(getattr(operation, "op", None), "value", "")).lower()
        path = "" if raw is None else str(raw).lower()
        if path.startswith(_GROUP_URN_PREFIX):
            path = path[len(_GROUP_URN_PREFIX):]
        if not path.startswith("members"):
            continue  # no path (checked by _members_kept_whole: no members in its value) or another attribute
        if path != "members" or op != "add":
            return None
        value = getattr(operation, "value", None)
        for entry in value if isinstance(value, list) else [value]:
            member = entry.get("value") if isinstance(entry, dict) else getattr(entry, "value", None)
            if member is None:
                return None
            added.add(member)
    return added


class _OrgApplication(WSGIApplication):
    """One organization's SCIM app: bearer-token auth, URLs built from the mount point (no extra /v2)."""

    def __init__(self, storage: AstroStorage, provider: ScimProvider, service: ScimService, token: str,
                 *, documented_only: bool = False) -> None:
        super().__init__(storage, provider, service)
        self.handler = _AstroHandler(self.service, storage)
        self.token = token
        self.documented_only = documented_only
        self.vocabulary = vocabulary.documented() if documented_only else vocabulary.complete()
        # (path, query, base URL) -> (storage generation, status line, headers, body) for list answers. An
        # auditor pages the same unchanged organization again and again; scim2-server's request handling costs
        # ~1 ms a page, which at 20 ms of latency and 8 pages in flight is most of what the sandbox adds.
        self._pages: dict[tuple[str, str, str], tuple[int, str, list[tuple[str, str]], bytes]] = {}

    def _authorized(self, environ: dict[str, Any]) -> bool:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        return auth[:7].lower() == "bearer " and secrets.compare_digest(auth[7:].strip().encode(), self.token.encode())

    def _check_write(self, environ: dict[str, Any]) -> Response | None:
        """Refuse (RFC 7644 §3.12) a write of what this organization would not keep; see vocabulary.py.

        Runs before scim2-server reads the request: the body is read here and handed on unchanged, or with
        Entra's unqualified extension paths qualified."""
        method = environ.get("REQUEST_METHOD", "")
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        kind = {"users": "User", "groups": "Group"}.get(parts[0].lower()) if parts else None
        if method not in ("POST", "PUT", "PATCH") or kind is None or len(parts) > 2 \
                or (len(parts) == 2 and parts[1].startswith(".")) or not self._authorized(environ):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return None  # scim2-server answers the invalid JSON itself
        vocab = self.vocabulary[kind]
        try:
            if method == "PATCH":
                if vocabulary.rewrite_patch(vocab, body):
                    raw = vocabulary.encode(body)
                    environ["wsgi.input"] = io.BytesIO(raw)
                    environ["CONTENT_LENGTH"] = str(len(raw))
            else:
                vocabulary.check_resource(vocab, body)
        except vocabulary.Refusal as refusal:
            return scim_error(400, refusal.detail, refusal.scim_type)
        return None

    def _discovery(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
        """In the documented-only mode, discovery announces what Astro documents, nothing more."""
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        if environ.get("REQUEST_METHOD") != "GET" or parts[0] not in ("Schemas", "ServiceProviderConfig",
                                                                       "ResourceTypes"):
            return None
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        body = b"".join(send_response(self.serve(self.read_request(environ)), capture))
        if not captured["status"].startswith("200"):
            start_response(captured["status"], captured["headers"])
            return [body]
        data = vocabulary.announce(json.loads(body), self.vocabulary)
        if data is None:
            return send_response(cast(ScimResponse, self.service.error_response(
                NotFoundException(detail="no such schema"))), start_response)
        out = json.dumps(data).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        start_response(captured["status"], [*headers, ("Content-Length", str(len(out)))])
        return [out]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        refused = self._check_write(environ)
        if refused is not None:
            return refused(environ, start_response)
        if self.documented_only:
            if environ.get("PATH_INFO", "").strip("/").lower() == "bulk" and self._authorized(environ):
                # Announced unsupported, so not served: RFC 7644 §3.7 ("bulk.supported"), 501 as §3.12 lists.
                return scim_error(501, "bulk operations are not supported")(environ, start_response)
            announced = self._discovery(environ, start_response)
            if announced is not None:
                return announced
        key: tuple[str, str, str] | None = None
        if environ.get("REQUEST_METHOD") == "GET":
            key = (environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), self.get_base_url(environ))
            hit = self._pages.get(key)
            # The same bearer check as check_auth, or the request takes the full path (and its 401).
            auth = environ.get("HTTP_AUTHORIZATION", "")
            if hit is not None and hit[0] == self.storage.generation and auth[:7].lower() == "bearer " \
                    and secrets.compare_digest(auth[7:].strip().encode(), self.token.encode()):
                start_response(hit[1], hit[2])
                return [hit[3]]
        generation = self.storage.generation  # read first: a write during the request makes the entry stale
        response = self.serve(self.read_request(environ))
        if isinstance(response, _RawResponse):
            status = f"{response.status.value} {response.status.phrase}"
            headers = list(response.headers.items())
            if key is not None and response.status == HTTPStatus.OK:
                if len(self._pages) >= 4096:
                    self._pages.clear()
                self._pages[key] = (generation, status, headers, response.raw)
            start_response(status, headers)
            return [response.raw]
        return send_response(response, start_response)

    @staticmethod
    def get_base_url(environ: dict[str, Any]) -> str:
        # SCRIPT_NAME already holds /scim/v2/<org>; the stock method would append another /v2. Asked once or
        # twice per request (the page cache's key, then scim2-server's request), always with the same few parts.
        return _base_url(*(environ.get(name) for name in _URI_PARTS))

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), self.token.encode()):
            raise UnauthorizedException(detail="invalid or missing bearer token")


_URI_PARTS = ("wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME")  # what it reads


@functools.lru_cache(maxsize=256)
def _base_url(*parts: Any) -> str:
    """application_uri of an environ with these _URI_PARTS (None: absent)."""
    return application_uri({k: v for k, v in zip(_URI_PARTS, parts, strict=True) if v is not None}).rstrip("/")


@dataclass
class _Org:
    org_id: str
    token: str
    storage: AstroStorage
    app: _OrgApplication
    misbehaviour: str | None = None


@functools.cache
def _routes() -> Map:
    # Built once per process and shared (a Map is only read once built): compiling the rules costs ~25 ms, on
    # every sandbox start.
    return Map([
        Rule(f"{SCIM_PREFIX}/<org_id>", endpoint="scim"),
        Rule(f"{SCIM_PREFIX}/<org_id>/<path:rest>", endpoint="scim"),
        Rule(f"{ADMIN_PREFIX}/health", endpoint="health"),
        Rule(f"{ADMIN_PREFIX}/orgs", endpoint="orgs"),
        Rule(f"{ADMIN_PREFIX}/orgs/<org_id>/misbehaviour", endpoint="misbehaviour", methods=["PUT"]),
    ], strict_slashes=False, merge_slashes=False)


class AstroScim:
    """Several Astro organizations' SCIM endpoints in one WSGI app (`.app`).

    `policy` defaults to the Entra-tolerant one; pass `ScimPolicy()` for scim2-server's strict RFC reading
    (e.g. to prove a client's request shapes need no tolerance).
    """

    def __init__(self, *, policy: ScimPolicy = ENTRA_TOLERANT_POLICY) -> None:
        self.provider = build_provider(policy)
        self.service = ScimService(self.provider, secret=os.environ.get("SCIM2_SERVER_SECRET"))
        self.user_type = self.service.get_resource_type("User")
        self.group_type = self.service.get_resource_type("Group")
        self.base_url = "http://127.0.0.1"  # the Sandbox sets the served URL; used for meta.location in dumps
        self._orgs: dict[str, _Org] = {}
        self._lock = threading.Lock()
        self.rate_clock: Callable[[], float] = time.monotonic  # tests move a virtual clock instead of sleeping
        self.rate = WindowLimiter(RATE_LIMIT, RATE_WINDOW_S, lambda: self.rate_clock())
        self._routes = _routes()

    # -- organizations ------------------------------------------------------------------------------------

    def add_org(self, org_id: str, token: str, *, documented_only: bool = False) -> None:
        """A new organization. By default it is a complete SCIM server (RFC 7643 User with the enterprise
        extension, Group) that keeps what it accepts; `documented_only` makes it announce and keep only what
        Astro's setup page documents. Either refuses what it would not keep (vocabulary.py)."""
        if not org_id or "/" in org_id:
            raise ValueError(f"invalid organization id {org_id!r}")
        storage = AstroStorage(self.user_type, self.group_type)
        with self._lock:
            if org_id in self._orgs:
                raise ValueError(f"organization {org_id!r} already exists")
            service = AstroService(self.provider, storage)
            app = _OrgApplication(storage, self.provider, service, token, documented_only=documented_only)
            self._orgs[org_id] = _Org(org_id, token, storage, app)

    def org_ids(self) -> list[str]:
        with self._lock:
            return list(self._orgs)

    def scim_url(self, org_id: str) -> str:
        return f"{self.base_url.rstrip('/')}{SCIM_PREFIX}/{org_id}"

    def _org(self, org_id: str) -> _Org:
        with self._lock:
            org = self._orgs.get(org_id)
        if org is None:
            raise KeyError(f"no Astro organization {org_id!r}")
        return org

    def set_misbehaviour(self, org_id: str, mode: str | None) -> None:
        """Make an organization's endpoint answer badly: html, truncated, wrong_totals, error_500, or None."""
        if mode is not None and mode not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {mode!r}; one of {', '.join(MISBEHAVIOURS)} or None")
        self._org(org_id).misbehaviour = mode

    # -- snapshots (Sandbox.snapshot / restore) ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Each organization's stored resources, next version and misbehaviour (see AstroStorage.stored_state)."""
        with self._lock:
            orgs = dict(self._orgs)
        out: dict[str, Any] = {}
        for org_id, org in orgs.items():
            resources, version = org.storage.stored_state()
            out[org_id] = {"resources": resources, "version": version, "misbehaviour": org.misbehaviour}
        return out

    def restore(self, snap: dict[str, Any]) -> None:
        """Put a `snapshot()` back into the organizations of the same ids (their tokens stay this server's)."""
        for org_id, data in snap.items():
            org = self._org(org_id)
            org.storage.replace_all(list(data["resources"]), data["version"])
            org.misbehaviour = data["misbehaviour"]

    # -- inspection and drift injection (tests, demo) ------------------------------------------------------

    def _dump(self, org_id: str, resource: Resource[Any]) -> dict[str, Any]:
        """The resource as a GET would return it (meta.location under the org's SCIM URL)."""
        service = cast(AstroService, self._org(org_id).app.service)
        body: dict[str, Any] = service.publish(self.scim_url(org_id), resource).model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        service._empty_lists(body, resource, None)
        return body

    def _count(self, org_id: str, type_name: str) -> int:
        org = self._org(org_id)
        with org.storage.lock:
            return len(org.storage._resources.get(type_name, {}))

    def _stored(self, org_id: str, type_name: str) -> list[Resource[Any]]:
        org = self._org(org_id)
        with org.storage.lock:
            return [r.model_copy(deep=True) for r in org.storage._resources.get(type_name, {}).values()]

    def users(self, org_id: str) -> list[dict[str, Any]]:
        with self.provider:
            return [self._dump(org_id, r) for r in self._stored(org_id, cast(str, self.user_type.name))]

    def groups(self, org_id: str) -> list[dict[str, Any]]:
        with self.provider:
            return [self._dump(org_id, r) for r in self._stored(org_id, cast(str, self.group_type.name))]

    def _find(self, org_id: str, type_name: str, attr: str, value: str) -> Resource[Any] | None:
        # userName and displayName compare case-insensitively, as the SCIM filters of Okta and Entra do.
        wanted = value.casefold()
        org = self._org(org_id)
        with org.storage.lock:
            for resource in org.storage._resources.get(type_name, {}).values():
                current = getattr(resource, attr, None)
                if isinstance(current, str) and current.casefold() == wanted:
                    return resource.model_copy(deep=True)
        return None

    def _find_user(self, org_id: str, user_name: str) -> Resource[Any] | None:
        return self._find(org_id, cast(str, self.user_type.name), "user_name", user_name)

    def _find_group(self, org_id: str, display_name: str) -> Resource[Any] | None:
        return self._find(org_id, cast(str, self.group_type.name), "display_name", display_name)

    def find_user(self, org_id: str, user_name: str) -> dict[str, Any] | None:
        found = self._find_user(org_id, user_name)
        if found is None:
            return None
        with self.provider:
            return self._dump(org_id, found)

    def find_group(self, org_id: str, display_name: str) -> dict[str, Any] | None:
        found = self._find_group(org_id, display_name)
        if found is None:
            return None
        with self.provider:
            return self._dump(org_id, found)

    def _require_user(self, org_id: str, user_name: str) -> Resource[Any]:
        user = self._find_user(org_id, user_name)
        if user is None:
            raise KeyError(f"no user {user_name!r} in Astro organization {org_id!r}")
        return user

    def edit_user(self, org_id: str, user_name: str, path: str, value: Any) -> None:
        """Change one attribute in Astro only (drift), e.g. ("name.givenName", "Eve") or ("active", False)."""
        org = self._org(org_id)
        with self.provider, org.storage.lock:
            user = self._require_user(org_id, user_name)
            op = parametrize(PatchOp, self.service.get_model(self.user_type)).model_validate(
                {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                 "Operations": [{"op": "replace", "path": path, "value": value}]},
                scim_ctx=Context.RESOURCE_PATCH_REQUEST,
            )
            op.patch(user)
            org.storage.update(self.user_type, user)

    def drop_membership(self, org_id: str, group_name: str, user_name: str) -> None:
        """Remove a user from a Team in Astro only (drift)."""
        org = self._org(org_id)
        with self.provider, org.storage.lock:
            group = self._find_group(org_id, group_name)
            if group is None:
                raise KeyError(f"no team {group_name!r} in Astro organization {org_id!r}")
            user = self._require_user(org_id, user_name)
            members = getattr(group, "members", None) or []
            kept = [m for m in members if m.value != user.id]
            if len(kept) == len(members):
                raise KeyError(f"{user_name!r} is not a member of {group_name!r}")
            group.members = kept  # type: ignore[attr-defined]
            org.storage.update(self.group_type, group)

    def add_orphan(self, org_id: str, user_name: str, given: str, family: str) -> dict[str, Any]:
        """Create a user that exists in Astro only (no IdP account): what the drift auditor calls an orphan."""
        org = self._org(org_id)
        with self.provider:
            model = self.service.get_model(self.user_type)
            user = model.model_validate({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name,
                "name": {"givenName": given, "familyName": family, "formatted": f"{given} {family}"},
                "displayName": f"{given} {family}",
                "emails": [{"value": user_name, "type": "work", "primary": True}],
                "active": True,
            }, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
            return self._dump(org_id, org.storage.create(self.user_type, user))

    def preload(self, org_id: str, seed: SeedOrg, *, teams: Iterable[str] | None = None) -> None:
        """Fill an organization as if an IdP had provisioned `seed` (benchmarks, large drift scenarios).

        Writes straight to the storage (no HTTP, no engine): about 10x faster than provisioning through SCIM.
        `teams`: names of the teams to create with their members (default: every team but "Astro Users").
        """
        org = self._org(org_id)
        wanted = set(teams) if teams is not None else {t.name for t in seed.teams[1:]}
        user_model = self.service.get_model(self.user_type)
        group_model = self.service.get_model(self.group_type)
        emails = {p.key: p.email for p in seed.people}
        with self.provider, org.storage.lock:
            users = [
                user_model.model_validate({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": p.email,
                    "externalId": p.key,
                    "name": {"givenName": p.first_name, "familyName": p.last_name},
                    "displayName": p.display_name,
                    "emails": [{"value": p.email, "type": "work", "primary": True}],
                    "title": p.title,
                    "active": p.active,
                })
                for p in seed.people
            ]
            ids = dict(zip((p.key for p in seed.people), org.storage.insert_many(self.user_type, users), strict=True))
            groups = [
                group_model.model_validate({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": team.name,
                    "externalId": team.key,
                    "members": [{"value": ids[k], "display": emails[k]} for k in team.member_keys],
                })
                for team in seed.teams if team.name in wanted
            ]
            org.storage.insert_many(self.group_type, groups)

    def preload_json(self, org_id: str, users: list[dict[str, Any]],
                     groups: Callable[[list[str]], list[dict[str, Any]]]) -> tuple[list[str], list[str]]:
        """Fill an organization with SCIM resources as an IdP's engine would have sent them (benchmarks).

        `users`: User bodies; `groups(ids)`: the Group bodies, given the stored users' ids in `users`' order
        (members refer to them). Straight to the storage, like `preload`: no HTTP, no engine. Returns the users'
        and the groups' ids, in order.
        """
        org = self._org(org_id)
        user_model = self.service.get_model(self.user_type)
        group_model = self.service.get_model(self.group_type)
        with self.provider, org.storage.lock:
            ids = org.storage.insert_many(self.user_type, [user_model.model_validate(u) for u in users])
            group_ids = org.storage.insert_many(self.group_type,
                                                [group_model.model_validate(g) for g in groups(ids)])
        return ids, group_ids

    def delete_user(self, org_id: str, user_name: str) -> None:
        """Delete a user in Astro only; Astro also removes them from every Team."""
        org = self._org(org_id)
        with self.provider, org.storage.lock:
            user = self._require_user(org_id, user_name)
            org.storage.delete(self.user_type, cast(str, user.id))

    # -- HTTP ---------------------------------------------------------------------------------------------

    def throttle_response(self, request: Request) -> Response:
        return scim_error(429, "Too many requests; retry later", headers={"Retry-After": "1"})

    def server_error_response(self, request: Request) -> Response:
        return scim_error(500, "Internal server error")

    def _admin(self, endpoint: str, values: Mapping[str, Any], request: Request) -> Response:
        if endpoint == "health":
            return Response(json.dumps({"ok": True}), content_type="application/json")
        if endpoint == "orgs":
            body = [
                {"org_id": o, "users": self._count(o, "User"), "groups": self._count(o, "Group"),
                 "misbehaviour": self._org(o).misbehaviour}
                for o in self.org_ids()
            ]
            return Response(json.dumps(body), content_type="application/json")
        # misbehaviour
        payload = request.get_json(silent=True) or {}
        try:
            self.set_misbehaviour(values["org_id"], payload.get("mode"))
        except (KeyError, ValueError) as exc:
            return Response(json.dumps({"error": str(exc)}), status=400, content_type="application/json")
        return Response(status=204)

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI entry point: route `/scim/v2/<org>/...` to that organization's scim2-server app."""
        path: str = environ.get("PATH_INFO", "")
        org_id, _, rest = path[len(SCIM_PREFIX) + 1:].partition("/")
        if path.startswith(SCIM_PREFIX + "/") and path.isascii() and org_id and not rest.startswith("/"):
            # What the map below answers for these paths (the SCIM traffic), without binding and matching it.
            endpoint, values = "scim", cast(Mapping[str, Any], {"org_id": org_id, "rest": rest})
        else:
            adapter = self._routes.bind_to_environ(environ)
            try:
                endpoint, values = adapter.match()
            except HTTPException:
                return scim_error(404, "not found")(environ, start_response)
        if endpoint != "scim":
            return self._admin(endpoint, values, Request(environ))(environ, start_response)
        with self._lock:
            org = self._orgs.get(values["org_id"])
        if org is None:
            return scim_error(404, f"unknown organization {values['org_id']!r}")(environ, start_response)
        budget = self.rate.hit(org.org_id) if org.app._authorized(environ) else None
        if budget is not None and not budget.allowed:
            return scim_error(429, "Too many requests; retry later", headers={
                "Retry-After": str(budget.reset_s), **_rate_headers(budget)})(environ, start_response)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"{SCIM_PREFIX}/{org.org_id}"
        environ["PATH_INFO"] = "/" + values.get("rest", "")
        mode = org.misbehaviour
        if mode == "html":
            page = "<!doctype html><html><head><title>Astro</title></head><body><h1>Sign in to Astro</h1></body></html>"
            return Response(page, status=200, content_type="text/html; charset=utf-8")(environ, start_response)
        if mode == "error_500":
            return self.server_error_response(Request(environ))(environ, start_response)
        return self._buffered(org, mode, environ, start_response, budget)

    @property
    def rate_limit(self) -> int:
        return self.rate.limit

    @rate_limit.setter
    def rate_limit(self, requests_per_window: int) -> None:
        self.rate.limit = requests_per_window

    def _buffered(self, org: _Org, mode: str | None, environ: dict[str, Any], start_response: Callable[..., Any],
                  budget: Budget | None = None) -> Iterable[bytes]:
        """Run the org's app, then send the body with a Content-Length (keep-alive) and the misbehaviour."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        body = b"".join(org.app(environ, capture))
        status: str = captured["status"]
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        if mode == "wrong_totals" and body:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("totalResults"), int):
                # Claims more than exists: a pager that trusts totalResults would ask for pages that never come.
                data["totalResults"] = data["totalResults"] * 2 + 10
                body = json.dumps(data).encode()
        elif mode == "truncated" and body:
            body = body[: len(body) // 2]
        headers.append(("Content-Length", str(len(body))))
        if budget is not None:
            headers.extend(_rate_headers(budget).items())
        start_response(status, headers)
        return [body]


def _rate_headers(budget: Budget) -> dict[str, str]:
    return {"RateLimit-Limit": str(budget.limit), "RateLimit-Remaining": str(budget.remaining),
            "RateLimit-Reset": str(budget.reset_s)}

