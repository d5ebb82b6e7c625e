"""The emulated Okta org's data: plain dicts in insertion-ordered tables, the org's defaults and seeding, and
the API's JSON shapes of each kind of row (`Shapes`).

Rows are stored already in the Okta API's JSON shape (minus `_links`, added per request because links carry
the served origin); keys starting with "_" are private bookkeeping and never serialized. No per-object models:
50,000 users and 2,000 groups must load in about a second.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from connector.sandbox.snapshot import Translate, copied

if TYPE_CHECKING:
    from connector.sandbox.seed import SeedOrg

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_BYTES = bytes(ord(_B62[i % 62]) for i in range(256))  # byte -> base62 character (bias is harmless)


def iso(ts: float) -> str:
    """Okta's timestamp format: UTC, milliseconds, Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def public(row: Row) -> Row:
    """A row without its private keys (shallow copy)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


class IdMaker:
    """Okta-looking 20-character ids (00u..., 00g..., 0oa...): prefix + 17 base62 characters.

    The characters come from a hash of (org, prefix, counter): random-looking like Okta's, yet the same for
    the same org and creation order, so seeded runs repeat.
    """

    def __init__(self, org_name: str) -> None:
        self._org = org_name.encode()
        self._next: dict[str, int] = {}
        self._lock = threading.Lock()

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._next)

    def set_counters(self, counters: dict[str, int]) -> None:
        with self._lock:
            self._next = dict(counters)

    def new(self, prefix: str) -> str:
        with self._lock:
            n = self._next.get(prefix, 1)
            self._next[prefix] = n + 1
        digest = hashlib.blake2b(b"%s/%s/%d" % (self._org, prefix.encode(), n), digest_size=20).digest()
        return prefix + digest[: 20 - len(prefix)].translate(_B62_BYTES).decode()


class Table:
    """Rows in insertion order with an id index. Removal leaves a hole, so positions stay valid.

    `scan` starts at a position and applies an optional predicate lazily: paging through a filtered list costs
    O(rows) in total, not per page. Cursors are row ids (Okta's `after` is the last id of a page, e.g. a user
    id); a removed row's last position is remembered so a cursor on it still resumes in the right place.
    """

    def __init__(self) -> None:
        self._rows: list[Row | None] = []
        self._index: dict[str, int] = {}
        self._removed: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._index)

    def plain(self) -> Row:
        """The table as plain data (shared, not copied: see snapshot.copied); `from_plain` builds it back."""
        return {"rows": self._rows, "index": self._index, "removed": self._removed}

    @classmethod
    def from_plain(cls, data: Row) -> Table:
        table = cls()
        table._rows, table._index, table._removed = data["rows"], data["index"], data["removed"]
        return table

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def add(self, key: str, row: Row) -> Row:
        if key in self._index:
            self.remove(key)
        self._index[key] = len(self._rows)
        self._rows.append(row)
        return row

    def get(self, key: str) -> Row | None:
        pos = self._index.get(key)
        return None if pos is None else self._rows[pos]

    def remove(self, key: str) -> Row | None:
        pos = self._index.pop(key, None)
        if pos is None:
            return None
        row = self._rows[pos]
        self._rows[pos] = None
        self._removed[key] = pos
        return row

    def position_after(self, key: str) -> int | None:
        """Where a page that ended with row `key` continues; None for a cursor this table never issued."""
        pos = self._index.get(key, self._removed.get(key))
        return None if pos is None else pos + 1

    def keys(self) -> list[str]:
        return list(self._index)

    def values(self) -> Iterator[Row]:
        return (r for r in self._rows if r is not None)

    def scan(self, start: int, limit: int, pred: Predicate | None = None) -> tuple[list[Row], bool]:
        """Up to `limit` rows from position `start`, and whether more matching rows follow."""
        out: list[Row] = []
        rows = self._rows
        pos = start
        end = len(rows)
        while pos < end:
            row = rows[pos]
            pos += 1
            if row is None or (pred is not None and not pred(row)):
                continue
            out.append(row)
            if len(out) == limit:
                # Only promise a next page if one exists: Okta omits rel="next" on the last page.
                while pos < end:
                    nxt = rows[pos]
                    if nxt is not None and (pred is None or pred(nxt)):
                        return out, True
                    pos += 1
                return out, False
        return out, False


# -- Okta's filter / search expressions ----------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w.:-]*)|(-?\d+(?:\.\d+)?))')
_OPS = {"eq", "ne", "sw", "co", "ew", "gt", "ge", "lt", "le"}


class FilterError(ValueError):
    pass


def _lookup(row: Row, path: str) -> Any:
    cur: Any = row
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _compare(op: str, actual: Any, wanted: Any) -> bool:
    if isinstance(actual, str) and isinstance(wanted, str):
        a, w = actual.casefold(), wanted.casefold()
    else:
        a, w = actual, wanted
    if op == "eq":
        return bool(a == w)
    if op == "ne":
        return bool(a != w)
    if a is None or w is None:
        return False
    if op in ("sw", "co", "ew"):
        if not isinstance(a, str) or not isinstance(w, str):
            return False
        return a.startswith(w) if op == "sw" else (w in a if op == "co" else a.endswith(w))
    try:
        if op == "gt":
            return bool(a > w)
        if op == "ge":
            return bool(a >= w)
        if op == "lt":
            return bool(a < w)
        return bool(a <= w)
    except TypeError:
        return False


def compile_filter(text: str) -> Predicate:
    """`status eq "ACTIVE" and (profile.department eq "Data" or type eq "OKTA_GROUP")` -> predicate.

    The subset of Okta's `search`/`filter` syntax a SCIM-style client uses: eq ne sw co ew gt ge lt le pr,
    and/or/not-free nesting with parentheses. Strings compare case-insensitively, as Okta's search does.
    """
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot parse {text[pos:]!r}")
        pos = m.end()
        if m.group(1):
            tokens.append(("(", None))
        elif m.group(2):
            tokens.append((")", None))
        elif m.group(3) is not None:
            tokens.append(("str", m.group(3).replace('\\"', '"')))
        elif m.group(4):
            word = m.group(4)
            low = word.lower()
            if low in ("true", "false"):
                tokens.append(("lit", low == "true"))
            elif low == "null":
                tokens.append(("lit", None))
            else:
                tokens.append(("word", word))
        else:
            num = m.group(5)
            tokens.append(("lit", float(num) if "." in num else int(num)))
    i = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal i
        if i >= len(tokens):
            raise FilterError("unexpected end of expression")
        tok = tokens[i]
        i += 1
        return tok

    def is_word(tok: tuple[str, Any] | None, word: str) -> bool:
        return tok is not None and tok[0] == "word" and str(tok[1]).lower() == word

    def parse_or() -> Predicate:
        left = parse_and()
        while is_word(peek(), "or"):
            take()
            right = parse_and()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def parse_and() -> Predicate:
        left = parse_atom()
        while is_word(peek(), "and"):
            take()
            right = parse_atom()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def parse_atom() -> Predicate:
        tok = take()
        if tok[0] == "(":
            inner = parse_or()
            if take()[0] != ")":
                raise FilterError("missing )")
            return inner
        if tok[0] != "word":
            raise FilterError(f"expected an attribute, got {tok[1]!r}")
        attr = str(tok[1])
        op_tok = take()
        op = str(op_tok[1]).lower() if op_tok[0] == "word" else ""
        if op == "pr":
            return lambda r: _lookup(r, attr) not in (None, "", [])
        if op not in _OPS:
            raise FilterError(f"unknown operator {op_tok[1]!r}")
        val_tok = take()
        if val_tok[0] not in ("str", "lit"):
            raise FilterError(f"expected a value after {op}")
        wanted = val_tok[1]
        return lambda r: _compare(op, _lookup(r, attr), wanted)

    if not tokens:
        raise FilterError("empty expression")
    pred = parse_or()
    if i != len(tokens):
        raise FilterError(f"unexpected {tokens[i][1]!r}")
    return pred


# -- the org -------------------------------------------------------------------------------------------------

USER_PROVISIONING = "USER_PROVISIONING"
ADMIN_LOGIN_LOCAL = "admin"  # admin@<org>.example owns the API token (GET /users/me)
OIN_APP_NAME = "astronomer"  # UNCERTAIN: the Astro OIN app's key name is not documented publicly
PROFILE_URL = "https://acme.example/people/{key}"


@dataclass
class OktaState:
    """Everything the emulated org holds. Guard every access with `lock` (the HTTP server is threaded)."""

    org_name: str
    clock: Callable[[], float] = time.time
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: Table = field(default_factory=Table)
    logins: dict[str, str] = field(default_factory=dict)  # casefolded login -> user id
    groups: Table = field(default_factory=Table)
    members: dict[str, Table] = field(default_factory=dict)  # group id -> rows {"id": user id}
    user_groups: dict[str, dict[str, None]] = field(
        default_factory=dict
    )  # user id -> ordered set of group ids
    apps: Table = field(default_factory=Table)
    app_users: dict[str, Table] = field(default_factory=dict)  # app id -> app users (row id = user id)
    app_groups: dict[str, Table] = field(default_factory=dict)  # app id -> assignments (row id = group id)
    features: dict[str, Row] = field(default_factory=dict)  # app id -> USER_PROVISIONING (once enabled)
    connections: dict[str, Row] = field(default_factory=dict)  # app id -> {"baseUrl", "token"}
    mappings: Table = field(default_factory=Table)
    push: dict[str, Table] = field(default_factory=dict)  # app id -> group push mappings
    user_types: Table = field(default_factory=Table)
    admin_id: str = ""
    # user id -> (row, base, lastUpdated, status, profile, JSON bytes of Shapes.user_json): list pages join
    # these instead of serializing 200 users per request. Every change to a user row goes through
    # `change_user`, which drops the entry; the row/profile identity and lastUpdated/status are checked too,
    # so a change made some other way is not served stale either (unless it keeps all four).
    user_bytes: dict[str, tuple[Row, str, Any, Any, Any, bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = IdMaker(self.org_name)
        self.org_id = self.ids.new("00o")
        self._type_id = ""

    def now(self) -> str:
        return iso(self.clock())

    # -- snapshots (Sandbox.snapshot / restore) ----------------------------------------------------------------

    _TABLES = ("users", "groups", "apps", "mappings", "user_types")
    _TABLE_MAPS = ("members", "app_users", "app_groups", "push")
    _PLAIN = ("logins", "user_groups", "features", "connections", "admin_id")

    def snapshot(self) -> Row:
        """Everything the org holds, as a deep copy in plain data (no lock, no cached JSON)."""
        with self.lock:
            data: Row = {name: getattr(self, name).plain() for name in self._TABLES}
            data.update({name: {k: t.plain() for k, t in getattr(self, name).items()} for name in self._TABLE_MAPS})
            data.update({name: getattr(self, name) for name in self._PLAIN})
            data.update(ids=self.ids.counters(), org_id=self.org_id, type_id=self._type_id)
            return cast(Row, copied(data))

    def restore(self, snap: Row, translate: Translate | None = None) -> None:
        """Replace everything the org holds with a `snapshot()` (of this org or another of the same name), every
        string passed through `translate`."""
        data = copied(snap, translate)
        with self.lock:
            for name in self._TABLES:
                setattr(self, name, Table.from_plain(data[name]))
            for name in self._TABLE_MAPS:
                setattr(self, name, {k: Table.from_plain(t) for k, t in data[name].items()})
            for name in self._PLAIN:
                setattr(self, name, data[name])
            self.ids.set_counters(data["ids"])
            self.org_id, self._type_id = data["org_id"], data["type_id"]
            self.user_bytes.clear()

    # -- lookups ---------------------------------------------------------------------------------------------

    def user(self, key: str) -> Row | None:
        """By id or by login (Okta's GET /users/{id} accepts either)."""
        row = self.users.get(key)
        if row is None:
            uid = self.logins.get(key.casefold())
            row = self.users.get(uid) if uid else None
        return row

    def change_user(self, row: Row, **changes: Any) -> None:
        """Change fields of a user row (and forget its cached JSON)."""
        row.update(changes)
        self.user_bytes.pop(row["id"], None)

    def default_user_type(self) -> Row:
        for row in self.user_types.values():
            if row.get("default"):
                return row
        raise LookupError("no default user type")

    def default_type_id(self) -> str:
        if not self._type_id:
            self._type_id = str(self.default_user_type()["id"])
        return self._type_id

    def group_by_name(self, name: str, group_type: str = "OKTA_GROUP") -> Row | None:
        wanted = name.casefold()
        for row in self.groups.values():
            if row["type"] == group_type and str(row["profile"].get("name", "")).casefold() == wanted:
                return row
        return None

    def app_by_label(self, label: str) -> Row | None:
        wanted = label.casefold()
        for row in self.apps.values():
            if str(row.get("label", "")).casefold() == wanted:
                return row
        return None

    def is_member(self, group_id: str, user_id: str) -> bool:
        table = self.members.get(group_id)
        return table is not None and user_id in table

    def mapping_to_app(self, app_id: str) -> Row | None:
        """The Okta user -> app user profile mapping of an app."""
        for row in self.mappings.values():
            if row["target"]["id"] == app_id and row["target"]["type"] == "appuser":
                return row
        return None

    def provisioning_on(self, app_id: str) -> bool:
        return app_id in self.connections

    def capability(self, app_id: str, *path: str) -> bool:
        """Whether USER_PROVISIONING is ENABLED and so is the capability at `path` (e.g. create, ...)."""
        feature = self.features.get(app_id)
        if not feature or feature.get("status") != "ENABLED":
            return False
        cur: Any = feature.get("capabilities", {})
        for part in path:
            cur = cur.get(part, {}) if isinstance(cur, dict) else {}
        return isinstance(cur, dict) and cur.get("status") == "ENABLED"

    # -- creation --------------------------------------------------------------------------------------------

    def add_user(self, profile: Row, *, status: str = "ACTIVE", when: str | None = None) -> Row:
        uid = self.ids.new("00u")
        ts = when or self.now()
        row: Row = {
            "id": uid,
            "status": status,
            "created": ts,
            "activated": ts if status == "ACTIVE" else None,
            "statusChanged": ts,
            "lastLogin": None,
            "lastUpdated": ts,
            "passwordChanged": None,
            "type": {"id": self.default_type_id()},
            "profile": profile,
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        }
        self.users.add(uid, row)
        self.logins[str(profile["login"]).casefold()] = uid
        self.user_groups[uid] = {}
        return row

    def add_group(
        self,
        name: str,
        description: str = "",
        *,
        group_type: str = "OKTA_GROUP",
        when: str | None = None,
        source_app: str | None = None,
    ) -> Row:
        gid = self.ids.new("00g")
        ts = when or self.now()
        row: Row = {
            "id": gid,
            "created": ts,
            "lastUpdated": ts,
            "lastMembershipUpdated": ts,
            "objectClass": ["okta:user_group"] if group_type == "OKTA_GROUP" else ["okta:app_group"],
            "type": group_type,
            "profile": {"name": name, "description": description},
        }
        if source_app:
            row["_sourceApp"] = source_app
        self.groups.add(gid, row)
        self.members[gid] = Table()
        return row

    def add_member(self, group_id: str, user_id: str, *, when: str | None = None) -> bool:
        table = self.members[group_id]
        if user_id in table:
            return False
        table.add(user_id, {"id": user_id})
        self.user_groups.setdefault(user_id, {})[group_id] = None
        if when is None:  # bulk loads pass the time they already stamped on the group
            self.groups.get(group_id)["lastMembershipUpdated"] = self.now()  # type: ignore[index]
        return True

    def remove_member(self, group_id: str, user_id: str) -> bool:
        table = self.members[group_id]
        if table.remove(user_id) is None:
            return False
        self.user_groups.get(user_id, {}).pop(group_id, None)
        self.groups.get(group_id)["lastMembershipUpdated"] = self.now()  # type: ignore[index]
        return True

    # -- seeding ---------------------------------------------------------------------------------------------

    def seed_defaults(self) -> None:
        """What a new org has: the default user type, the admin who owns the API token, the two Astro apps."""
        st = self
        ts = st.now()
        tid = st.ids.new("oty")
        st.user_types.add(
            tid,
            {
                "id": tid,
                "displayName": "User",
                "name": "user",
                "description": "Okta user profile template with default permission settings",
                "createdBy": "",
                "lastUpdatedBy": "",
                "created": ts,
                "lastUpdated": ts,
                "default": True,
                "_schemaId": st.ids.new("osc"),
            },
        )
        domain = f"{self.org_name}.example"
        admin = st.add_user(
            {
                "login": f"{ADMIN_LOGIN_LOCAL}@{domain}",
                "email": f"{ADMIN_LOGIN_LOCAL}@{domain}",
                "firstName": "Org",
                "lastName": "Admin",
                "displayName": "Org Admin",
                "title": "Okta Administrator",
                "department": "IT",
                "profileUrl": None,
            }
        )
        st.admin_id = admin["id"]
        self.add_app("Astro", OIN_APP_NAME, oin=True)
        self.add_app("Astro SCIM (custom)", f"{self.org_name}_astroscimcustom_1", oin=False)

    def add_app(self, label: str, name: str, *, oin: bool) -> Row:
        """A SAML app with its profile mappings (Okta user -> app user and back), as Okta creates them."""
        st = self
        aid = st.ids.new("0oa")
        ts = st.now()
        if oin:
            sign_on: Row = {
                "defaultRelayState": None,
                "ssoAcsUrlOverride": None,
                "audienceOverride": None,
                "recipientOverride": None,
                "destinationOverride": None,
                "attributeStatements": [],
            }
            settings_app: Row = {"organizationId": None}
        else:
            sign_on = {
                "defaultRelayState": None,
                "ssoAcsUrl": "https://auth.astronomer.io/login/callback",
                "idpIssuer": "http://www.okta.com/${org.externalKey}",
                "audience": "urn:auth0:astronomer",
                "recipient": "https://auth.astronomer.io/login/callback",
                "destination": "https://auth.astronomer.io/login/callback",
                "subjectNameIdTemplate": "${user.userName}",
                "subjectNameIdFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                "responseSigned": True,
                "assertionSigned": True,
                "signatureAlgorithm": "RSA_SHA256",
                "digestAlgorithm": "SHA256",
                "honorForceAuthn": True,
                "authnContextClassRef": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                "requestCompressed": False,
                "allowMultipleAcsEndpoints": False,
                "acsEndpoints": [],
                "samlSignedRequestEnabled": False,
                "attributeStatements": [],
                "inlineHooks": [],
            }
            settings_app = {}
        row: Row = {
            "id": aid,
            "orn": f"orn:okta:idp:{self.org_id}:apps:{name}:{aid}",
            "name": name,
            "label": label,
            "status": "ACTIVE",
            "lastUpdated": ts,
            "created": ts,
            # The spec types the redirect URLs as non-nullable strings: absent, not null, when unset.
            "accessibility": {"selfService": False},
            "visibility": {
                "autoLaunch": False,
                "autoSubmitToolbar": False,
                "hide": {"iOS": False, "web": False},
                "appLinks": {f"{name}_link": True},
            },
            "features": [],
            "signOnMode": "SAML_2_0",
            "credentials": {
                "userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"},
                "signing": {"kid": secrets.token_urlsafe(32)},
            },
            "settings": {
                "app": settings_app,
                "notifications": {
                    "vpn": {"network": {"connection": "DISABLED"}, "message": None, "helpUrl": None}
                },
                "manualProvisioning": False,
                "implicitAssignment": False,
                "notes": {"admin": None, "enduser": None},
                "signOn": sign_on,
            },
        }
        st.apps.add(aid, row)
        st.app_users[aid] = Table()
        st.app_groups[aid] = Table()
        st.push[aid] = Table()
        user_type = st.default_user_type()
        to_app = st.ids.new("prm")
        st.mappings.add(
            to_app,
            {
                "id": to_app,
                "source": {"id": user_type["id"], "name": "user", "type": "user"},
                "target": {"id": aid, "name": name, "type": "appuser"},
                # Okta's defaults for a new SCIM app: the names and the email; the rest is the admin's job.
                "properties": {
                    "givenName": {"expression": "user.firstName", "pushStatus": "PUSH"},
                    "familyName": {"expression": "user.lastName", "pushStatus": "PUSH"},
                    "email": {"expression": "user.email", "pushStatus": "PUSH"},
                },
            },
        )
        from_app = st.ids.new("prm")
        st.mappings.add(
            from_app,
            {
                "id": from_app,
                "source": {"id": aid, "name": name, "type": "appuser"},
                "target": {"id": user_type["id"], "name": "user", "type": "user"},
                "properties": {},
            },
        )
        return row

    def load(self, seed: SeedOrg) -> None:
        """Load a seeded org: ACTIVE users and OKTA_GROUP groups with their members."""
        st = self
        with st.lock:
            ts = st.now()
            by_key: dict[str, str] = {}
            for p in seed.people:
                row = st.add_user(
                    {
                        "login": p.email,
                        "email": p.email,
                        "firstName": p.first_name,
                        "lastName": p.last_name,
                        "displayName": p.display_name,
                        "profileUrl": PROFILE_URL.format(key=p.key),
                        "department": p.department,
                        "title": p.title,
                    },
                    status="ACTIVE" if p.active else "DEPROVISIONED",
                    when=ts,
                )
                by_key[p.key] = row["id"]
            for t in seed.teams:
                group = st.add_group(t.name, t.description, when=ts)
                for key in t.member_keys:
                    st.add_member(group["id"], by_key[key], when=ts)


class Shapes:
    """The Okta API's JSON for each kind of row, with `_links` on the served origin (`base`)."""

    def __init__(self, state: OktaState) -> None:
        self.state = state

    def user_json(self, row: Row, base: str) -> Row:
        out = public(row)
        href = f"{base}/api/v1/users/{row['id']}"
        out["_links"] = {
            "self": {"href": href},
            "type": {"href": f"{base}/api/v1/meta/types/user/{row['type']['id']}"},
        }
        return out

    def user_bytes(self, row: Row, base: str) -> bytes:
        """`json.dumps(user_json(row, base))` as bytes, cached per user until the row changes."""
        return self.users_bytes([row], base)[0]

    def users_bytes(self, rows: list[Row], base: str) -> list[bytes]:
        """`user_bytes` of each row; one loop with the cache check inlined (it runs for every user of a page)."""
        cache = self.state.user_bytes
        out = []
        for row in rows:
            hit = cache.get(row["id"])
            if (
                hit is None
                or hit[0] is not row
                or hit[1] != base
                or hit[2] != row["lastUpdated"]
                or hit[3] != row["status"]
                or hit[4] is not row["profile"]
            ):
                body = json.dumps(self.user_json(row, base)).encode()
                hit = cache[row["id"]] = (row, base, row["lastUpdated"], row["status"], row["profile"], body)
            out.append(hit[5])
        return out

    def group_json(self, row: Row, base: str, expand: str = "") -> Row:
        out = public(row)
        gid = row["id"]
        links: Row = {
            "logo": [
                {"name": "medium", "href": f"{base}/img/logos/groups/okta-medium.png", "type": "image/png"},
                {"name": "large", "href": f"{base}/img/logos/groups/okta-large.png", "type": "image/png"},
            ],
            "users": {"href": f"{base}/api/v1/groups/{gid}/users"},
            "apps": {"href": f"{base}/api/v1/groups/{gid}/apps"},
        }
        if row.get("_sourceApp"):
            links["source"] = {"href": f"{base}/api/v1/apps/{row['_sourceApp']}"}
        out["_links"] = links
        embedded: Row = {}
        if "stats" in expand:
            embedded["stats"] = {
                "usersCount": len(self.state.members.get(gid, ())),
                "appsCount": sum(1 for t in self.state.app_groups.values() if gid in t),
                "groupPushMappingsCount": sum(
                    1 for t in self.state.push.values() for pm in t.values() if pm["sourceGroupId"] == gid
                ),
                "hasAdminPrivlege": False,  # sic: the spec's spelling,
            }
        if "app" in expand and row.get("_sourceApp"):
            app = self.state.apps.get(row["_sourceApp"])
            if app:
                embedded["app"] = {k: app[k] for k in ("id", "name", "label", "signOnMode")}
        if embedded:
            out["_embedded"] = embedded
        return out

    def app_json(self, row: Row, base: str) -> Row:
        out = public(row)
        aid = row["id"]
        out["_links"] = {
            "uploadLogo": {"href": f"{base}/api/v1/apps/{aid}/logo", "hints": {"allow": ["POST"]}},
            "appLinks": [
                {
                    "name": f"{row['name']}_link",
                    "href": f"{base}/home/{row['name']}/{aid}/aln1",
                    "type": "text/html",
                }
            ],
            "groups": {"href": f"{base}/api/v1/apps/{aid}/groups"},
            "logo": [{"name": "medium", "href": f"{base}/assets/img/logos/default.png", "type": "image/png"}],
            "users": {"href": f"{base}/api/v1/apps/{aid}/users"},
            "deactivate": {"href": f"{base}/api/v1/apps/{aid}/lifecycle/deactivate"},
            "metadata": {"href": f"{base}/api/v1/apps/{aid}/sso/saml/metadata", "type": "application/xml"},
        }
        return out

    def app_user_json(self, aid: str, row: Row, base: str, expand: str = "") -> Row:
        # externalId and lastSync are non-nullable in the spec: absent until provisioning sets them.
        out = {k: v for k, v in public(row).items() if v is not None or k == "passwordChanged"}
        uid = row["id"]
        out["_links"] = {
            "app": {"href": f"{base}/api/v1/apps/{aid}"},
            "user": {"href": f"{base}/api/v1/users/{uid}"},
        }
        if "user" in expand:
            user = self.state.users.get(uid)
            if user:
                out["_embedded"] = {"user": self.user_json(user, base)}
        return out

    def app_users_bytes(self, aid: str, rows: list[Row], base: str) -> list[bytes]:
        """The JSON of `app_user_json(aid, row, base, "user")` for each row, the embedded user's taken from
        users_bytes' cache and the rest written by orjson: rendering was most of a page's CPU (a page of 500 app
        users with expand=user is ~0.8 MB), and this page is the chain an Okta audit waits on, link by link
        (benchmarks/audit_scale.py). `_embedded` is the last key, as app_user_json puts it."""
        import orjson

        users = self.state.users
        embedded_rows = [users.get(r["id"]) for r in rows]
        cached = iter(self.users_bytes([u for u in embedded_rows if u], base))
        app_link = {"href": f"{base}/api/v1/apps/{aid}"}
        out = []
        for row, user in zip(rows, embedded_rows, strict=True):
            # app_user_json's dict in one pass (it is public() then a second filter: twice the time per row).
            body = {k: v for k, v in row.items() if k[0] != "_" and (v is not None or k == "passwordChanged")}
            body["_links"] = {"app": app_link, "user": {"href": f"{base}/api/v1/users/{row['id']}"}}
            data = orjson.dumps(body)
            out.append(b"".join((data[:-1], b',"_embedded":{"user":', next(cached), b"}}")) if user else data)
        return out

    def app_group_json(self, aid: str, row: Row, base: str, expand: str = "") -> Row:
        out = public(row)
        gid = row["id"]
        out["_links"] = {
            "app": {"href": f"{base}/api/v1/apps/{aid}"},
            "self": {"href": f"{base}/api/v1/apps/{aid}/groups/{gid}"},
            "group": {"href": f"{base}/api/v1/groups/{gid}"},
        }
        if "group" in expand:
            group = self.state.groups.get(gid)
            if group:
                out["_embedded"] = {"group": self.group_json(group, base)}
        return out

    def feature_json(self, aid: str, base: str) -> Row:
        feature = self.state.features[aid]
        return {
            "name": USER_PROVISIONING,
            "status": feature["status"],
            "description": "User provisioning settings from Okta to a downstream application",
            "capabilities": json.loads(json.dumps(feature["capabilities"])),
            "_links": {
                "self": {
                    "href": f"{base}/api/v1/apps/{aid}/features/{USER_PROVISIONING}",
                    "hints": {"allow": ["GET", "PUT"]},
                }
            },
        }

    def mapping_json(self, row: Row, base: str, *, with_properties: bool) -> Row:
        def end(e: Row) -> Row:
            if e["type"] == "user":
                links = {
                    "self": {"href": f"{base}/api/v1/meta/types/user/{e['id']}"},
                    "schema": {"href": f"{base}/api/v1/meta/schemas/user/default"},
                }
            else:
                links = {
                    "self": {"href": f"{base}/api/v1/apps/{e['id']}"},
                    "schema": {"href": f"{base}/api/v1/meta/schemas/apps/{e['id']}/default"},
                }
            return {**e, "_links": links}

        out: Row = {"id": row["id"], "source": end(row["source"]), "target": end(row["target"])}
        if with_properties:
            out["properties"] = json.loads(json.dumps(row["properties"]))
        out["_links"] = {"self": {"href": f"{base}/api/v1/mappings/{row['id']}"}}
        return out

    def push_json(self, aid: str, row: Row, base: str) -> Row:
        out = {k: v for k, v in public(row).items() if v is not None}
        links: Row = {
            "app": {"href": f"{base}/api/v1/apps/{aid}"},
            "sourceGroup": {"href": f"{base}/api/v1/groups/{row['sourceGroupId']}"},
        }
        if row.get("targetGroupId"):
            links["targetGroup"] = {"href": f"{base}/api/v1/groups/{row['targetGroupId']}"}
        out["_links"] = links
        return out

    def user_type_json(self, row: Row, base: str) -> Row:
        out = public(row)
        out["_links"] = {
            "self": {"href": f"{base}/api/v1/meta/types/user/{row['id']}"},
            "schema": {"href": f"{base}/api/v1/meta/schemas/user/{row['_schemaId']}"},
        }
        return out
