"""Reconcile what the IdP says Astro should hold with what Astro's SCIM endpoint holds. Pure: no I/O.

Users reconcile on userName (case-insensitive, RFC 7643 caseExact=false) and, failing that, on externalId
(exact) or on the Astro id the IdP recorded. One root cause gives one finding: a user missing from Astro is not
also reported as missing from each of its Teams (the `user_missing` finding lists those Teams, so the remedy can
repair both), and an orphaned or still-active deprovisioned account is not also reported as an extra member.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from connector.mapping.model import Severity
from connector.views import AstroTeam, AstroUser, AstroView, Compared, IdpGroup, IdpUser, IdpView


class Kind(str, Enum):
    # Setup kinds: an expectation of the configuration the IdP does not meet. First, so reports lead with causes.
    NOT_SET_UP = "not_set_up"
    PROVISIONING_OFF = "provisioning_off"
    CONNECTION_BROKEN = "connection_broken"
    GROUP_NOT_PROVISIONED = "group_not_provisioned"
    MAPPING_NOT_APPLIED = "mapping_not_applied"
    # Entra's object mapping disabled, scoped by a filter, or with a target object action unticked
    PROVISIONING_LIMITED = "provisioning_limited"
    SSO_MISSING = "sso_missing"
    USER_MISSING = "user_missing"
    ORPHANED = "orphaned"
    DEACTIVATION_NOT_PROPAGATED = "deactivation_not_propagated"
    ATTRIBUTE_MISMATCH = "attribute_mismatch"
    TEAM_MISSING = "team_missing"
    TEAM_RENAMED = "team_renamed"  # the IdP's Team, renamed in Astro (its id, or exactly its members, tell it)
    MEMBERSHIP_MISSING = "membership_missing"
    MEMBERSHIP_EXTRA = "membership_extra"
    IDP_ERROR = "idp_error"
    TEAM_ROLES_MISMATCH = "team_roles_mismatch"  # access templates (connector/audit/team_roles.py)


SETUP_KINDS = frozenset({Kind.NOT_SET_UP, Kind.PROVISIONING_OFF, Kind.CONNECTION_BROKEN,
                         Kind.GROUP_NOT_PROVISIONED, Kind.MAPPING_NOT_APPLIED, Kind.PROVISIONING_LIMITED,
                         Kind.SSO_MISSING})

KIND_TITLES: dict[Kind, str] = {
    Kind.NOT_SET_UP: "provisioning set up",
    Kind.PROVISIONING_OFF: "provisioning switched on",
    Kind.CONNECTION_BROKEN: "the connection to Astro works both ways",
    Kind.GROUP_NOT_PROVISIONED: "configured groups assigned or pushed",
    Kind.MAPPING_NOT_APPLIED: "the IdP's attribute mappings are the mapping file's",
    Kind.PROVISIONING_LIMITED: "every assigned user and group provisioned, with every action",
    Kind.SSO_MISSING: "SSO set up for Astro (the seed's prerequisite)",
    Kind.USER_MISSING: "IdP users present in Astro",
    Kind.ORPHANED: "no orphaned Astro accounts",
    Kind.DEACTIVATION_NOT_PROPAGATED: "deprovisioning reached Astro",
    Kind.ATTRIBUTE_MISMATCH: "attributes match the mapping",
    Kind.TEAM_MISSING: "groups present as Astro Teams",
    Kind.TEAM_RENAMED: "Teams named as their groups",
    Kind.MEMBERSHIP_MISSING: "no Team member missing",
    Kind.MEMBERSHIP_EXTRA: "no extra Team member",
    Kind.IDP_ERROR: "no IdP-side provisioning errors",
    Kind.TEAM_ROLES_MISMATCH: "Team roles match the access templates",
}

_ORDER = {k: i for i, k in enumerate(Kind)}

# The remedies of Astro's SCIM setup FAQ, in its words, plus what `drift --fix` does about it, named by the exact
# command that does it: --fix alone only shows the plan (connector/commands/drift.py), acting needs --yes and
# deleting also --delete-orphans.
_FIX = "`astro-scim drift --fix --yes`"
_FAQ_OKTA_GROUP = (
    "Okta group out of sync: in the Okta dashboard open the Astro app, Push Groups, click the group's Push Status, "
    f"then Push now. Okta's API has no Push now: {_FIX} re-pushes with the documented workaround (push mapping "
    "INACTIVE then ACTIVE) and verifies the Team in Astro."
)
_FAQ_OKTA_USER = (
    f"Okta user not appearing in Astro: remove and re-assign the user in Okta. {_FIX} re-assigns the user to the "
    "Astro app."
)
_OKTA_ATTRIBUTES = (
    "Okta user with attributes out of date in Astro: update the user's profile in Okta (Directory > People > the "
    f"user, or the Astro app's assignment), which makes Okta push the mapped attributes. {_FIX} updates the app "
    "user, so Okta pushes its mapped profile; it never removes and re-assigns, which would deactivate the account "
    "in Astro first. A Team's name is fixed by re-pushing the group (Push Groups > Push now)."
)
_DELETE = ("`astro-scim drift --fix --delete-orphans --yes` deletes it (without --yes it only shows the plan; past "
           "the safety limit it also needs --force).")
_FAQ_OKTA_REMOVED = f"Okta user removed but the Astro account remains: delete the account from Astro. {_DELETE}"
_FAQ_OKTA_DEACTIVATED = (
    "Okta user removed or deactivated but the Astro account remains active: delete the account from Astro. "
    f"{_FIX} deactivates it instead (SCIM active=false, what Okta sends when it deprovisions), so re-activating "
    "the user in Okta brings the same account back."
)
_OKTA_REACTIVATED = (
    "Okta user active but the Astro account deactivated (a reactivation or re-assignment whose update did not "
    f"reach Astro): {_FIX} reactivates the account in Astro with the request Okta sends to reactivate a user (SCIM "
    "PATCH active=true), then re-audits. Re-assigning the user in Okta does the same."
)
_FAQ_AZURE = (
    "Azure user or group out of sync: provision the user or group on demand (Entra admin center > Enterprise "
    f"applications > Astro > Provision on demand). {_FIX} calls provision on demand."
)
_FAQ_AZURE_ORPHAN = (
    "Account unknown to Entra: Entra cannot provision it on demand; delete the account from Astro. " + _DELETE
)
_ENTRA_QUARANTINE = (
    "The Entra provisioning job is quarantined: fix the cause it reports (often the Astro token or URL), then "
    "restart provisioning (Enterprise applications > Astro > Provisioning > Restart provisioning)."
)


_ROLES = "Re-apply the Team's role set from the config's access template (`astro-scim drift --fix --yes`)."
_RENAMED = (
    "Team renamed in Astro: the IdP still provisions into it (by its id), so rename it back rather than letting the "
    f"IdP create a second Team of the group's name. {_FIX} renames it in Astro (SCIM PATCH replace displayName); "
    "its members and roles stay. To rename the Team for good, rename the group in the IdP."
)


def remedy_text(idp: str, kind: Kind, *, issue_kind: str = "") -> str:
    if kind is Kind.IDP_ERROR and issue_kind.endswith("quarantine"):
        return _ENTRA_QUARANTINE
    if kind is Kind.TEAM_RENAMED:
        return _RENAMED
    if idp == "okta":
        return {
            Kind.USER_MISSING: _FAQ_OKTA_USER,
            Kind.ORPHANED: _FAQ_OKTA_REMOVED,
            Kind.DEACTIVATION_NOT_PROPAGATED: _FAQ_OKTA_DEACTIVATED,
            Kind.ATTRIBUTE_MISMATCH: _OKTA_ATTRIBUTES,
            Kind.TEAM_MISSING: _FAQ_OKTA_GROUP,
            Kind.MEMBERSHIP_MISSING: _FAQ_OKTA_GROUP,
            Kind.MEMBERSHIP_EXTRA: _FAQ_OKTA_GROUP,
            Kind.IDP_ERROR: _FAQ_OKTA_GROUP if "push" in issue_kind else _FAQ_OKTA_USER,
        }.get(kind, _ROLES)
    if kind is Kind.ORPHANED:
        return _FAQ_AZURE_ORPHAN
    if kind is Kind.TEAM_ROLES_MISMATCH:
        return _ROLES
    return _FAQ_AZURE


@dataclass(frozen=True)
class Finding:
    """One difference between the IdP and Astro. `id` is stable across runs for the same problem."""

    id: str
    kind: Kind
    idp: str
    subject: str  # a userName or a Team name
    detail: str
    remedy: str
    severity: Severity = Severity.ERROR
    attribute: str | None = None
    expected: Any = None
    actual: Any = None
    user: str | None = None  # userName (IdP spelling) the finding is about
    team: str | None = None  # Team / IdP group name the finding is about
    astro_id: str | None = None  # SCIM id of the Astro user concerned
    idp_id: str | None = None  # IdP object id of the user or group concerned
    teams: tuple[str, ...] = ()  # user_missing: the Teams the user should be in
    # ... and their IdP groups' ids, in the same order: a remedy names the group by id (a name may be two groups')
    team_ids: tuple[str, ...] = ()
    # user_missing / team_missing: the IdP reports it provisioned (Okta: the app user's externalId, the push
    # mapping's lastPush), so nothing is in flight: waiting will not bring it (audit/verify.py).
    idp_done: bool = False
    issue_kind: str = ""  # idp_error: the IdP's own kind (okta.app_user_error, entra.quarantine, ...)
    # orphaned: the IdP was not asked about the account (past views.MAX_INACTIVE_LOOKUPS), so it may be a
    # deprovision that did not reach Astro: never deleted.
    unverified: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "kind": self.kind.value, "severity": self.severity.value, "idp": self.idp,
            "subject": self.subject, "detail": self.detail, "remedy": self.remedy,
        }
        for name in ("attribute", "user", "team", "astro_id", "idp_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.kind in (Kind.ATTRIBUTE_MISMATCH, Kind.TEAM_ROLES_MISMATCH):
            out["expected"], out["actual"] = self.expected, self.actual
        if self.teams:
            out["teams"] = list(self.teams)
        if self.issue_kind:
            out["issue_kind"] = self.issue_kind
        if self.unverified:
            out["unverified"] = True
        return out


def finding_id(idp: str, kind: Kind, subject: str, key: str = "") -> str:
    """Hash of what identifies the problem (not of values that may change while it persists)."""
    text = "\x1f".join((idp, kind.value, _fold(subject), key))  # two subjects SCIM tells apart: two ids
    # surrogatepass: a name read from JSON may hold a lone surrogate ("\ud800"), which strict UTF-8 refuses
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _make(idp: str, kind: Kind, subject: str, detail: str, *, key: str = "",
          severity: Severity = Severity.ERROR, remedy: str | None = None, **fields: Any) -> Finding:
    return Finding(
        id=finding_id(idp, kind, subject, key), kind=kind, idp=idp, subject=subject, detail=detail,
        remedy=remedy or remedy_text(idp, kind, issue_kind=fields.get("issue_kind", "")), severity=severity,
        **fields,
    )


def _setup_findings(idp: IdpView) -> list[Finding]:
    out = []
    for gap in idp.setup:
        kind = Kind(gap.kind)
        out.append(_make(idp.idp, kind, gap.subject, gap.message, key=gap.message if kind is Kind.PROVISIONING_OFF
                         else "", severity=Severity.WARNING if gap.warning else Severity.ERROR, remedy=gap.remedy))
    return out


# -- attribute comparison ----------------------------------------------------------------------------------

# RFC 7643 §8.7.1: these are caseExact; every other User string attribute Astro documents compares ignoring case.
_CASE_EXACT = frozenset({"id", "externalid", "password"})
_BOOLEAN_PATHS = frozenset({"active"})


@functools.lru_cache(maxsize=1024)  # a few mapping targets, asked for every user and value
def _root(path: str) -> str:
    return path.split("[", 1)[0].split(".", 1)[0].rsplit(":", 1)[-1].casefold()


def normalise(value: Any, path: str) -> Any:
    """A comparable form: absent, None, "" and [] are the same; strings trimmed, in NFC and lowercased unless
    caseExact (as SCIM compares them: _fold); "True"/"False" strings (Entra without the aadOptscim062020 flag) are
    booleans; a list of complex values (emails) becomes the set of its `value`s; a one-element list is its element."""
    if value is None:
        return None
    root = _root(path)
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if root in _BOOLEAN_PATHS and text.casefold() in ("true", "false"):
            return text.casefold() == "true"
        if not text.isascii():
            text = unicodedata.normalize("NFC", text)
        return text if root in _CASE_EXACT else text.lower()
    if isinstance(value, list | tuple | set):
        items = []
        for item in value:
            if isinstance(item, dict):
                item = item.get("value")
            n = normalise(item, path)
            if n is not None:
                items.append(n)
        if not items:
            return None
        if len(items) == 1:
            return items[0]
        return frozenset(items)
    if isinstance(value, dict):
        if set(value) <= {"value", "type", "primary", "display", "$ref"} and "value" in value:
            return normalise(value["value"], path)
        normalised = {k: normalise(v, f"{path}.{k}") for k, v in value.items()}
        return frozenset((k, v) for k, v in normalised.items() if v is not None) or None
    return value


def same_value(expected: Any, actual: Any, path: str) -> bool:
    if type(expected) is type(actual) and expected == actual:
        return True  # equal values normalise alike: the common case, without normalising both (120,000 calls)
    return bool(normalise(expected, path) == normalise(actual, path))


def _actual_value(user: AstroUser, path: str) -> Any:
    if _root(path) == "username":
        return user.user_name
    return _getter(path)(user.data)


def compared(paths: Iterable[str]) -> Compared:
    """What the audit compares on each Astro user when the IdP's expected values have (at most) these paths: the
    Astro read then keeps those values and drops the user's JSON. userName is read from AstroUser.user_name and
    `active` from AstroUser.active, so neither is kept again; the values are what `_getter` reads, so the findings
    are those of the whole JSON (tests/test_audit_fast_path_scale.py)."""
    kept = tuple(sorted({p for p in paths if _root(p) not in ("username", "active")}))
    getters = tuple(_getter(p) for p in kept)

    def read(data: dict[str, Any]) -> tuple[Any, ...]:
        return tuple([get(data) for get in getters])

    return Compared(paths=kept, read=read)


@functools.lru_cache(maxsize=256)  # one key set per mapping (users whose values are null may have fewer)
def _comparisons(paths: tuple[str, ...]) -> list[tuple[str, Callable[[dict[str, Any]], Any] | None]]:
    """The attributes compared for a user whose expected values have these paths, in report order: userName
    always, `active` never (judged from IdpUser.active), each with its reader (None: AstroUser.user_name)."""
    return [(path, None if _root(path) == "username" else _getter(path))
            for path in sorted({*paths, "userName"}) if _root(path) != "active"]


@functools.lru_cache(maxsize=1024)  # a few mapping targets, read from every user
def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """scim_paths.get_value for one path, with its common cases read directly: an attribute or a sub-attribute
    of a core attribute spelled as the resource spells it (`displayName`, `name.givenName`), and one `eq` filter on
    a string (`emails[type eq "work"].value`). Anything else (other spellings, extensions, other filters, other
    shapes) is get_value's: the result is always what get_value gives (tests/test_audit_fast_path.py). get_value
    took ~60% of reconcile's time: 100,000 calls for 20,000 users, each resolving the path's container, keys
    and filter anew."""
    # Imported here so the module's import graph stays small for the offline commands.
    from connector.mapping.scim_paths import CORE_USER, get_value, parse_path

    p = parse_path(path)

    def slow(data: dict[str, Any]) -> Any:
        return get_value(data, p)

    if p.schema is not None and p.schema.lower() != CORE_USER.lower():
        return slow
    attr, sub = p.attr, p.sub
    if not p.filter:
        if sub is None:
            def plain(data: dict[str, Any]) -> Any:
                return data[attr] if attr in data else get_value(data, p)
            return plain

        def nested(data: dict[str, Any]) -> Any:
            value = data.get(attr)
            if type(value) is dict and sub in value:
                return value[sub]
            return get_value(data, p)
        return nested
    if len(p.filter) != 1 or p.filter[0].op != "eq" or not isinstance(p.filter[0].value, str) or sub is None:
        return slow
    key, wanted = p.filter[0].attr, p.filter[0].value.lower()

    def filtered(data: dict[str, Any]) -> Any:
        entries = data.get(attr)
        if type(entries) is not list:
            return get_value(data, p)
        for entry in entries:
            if type(entry) is not dict or type(entry.get(key)) is not str:
                return get_value(data, p)  # a shape the shortcut does not judge: get_value decides
            if entry[key].lower() == wanted:
                return entry[sub] if sub in entry else get_value(data, p)
        return get_value(data, p)
    return filtered


# -- reconciliation ----------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """A userName as reconcile matches it: as SCIM servers compare it (see _fold)."""
    return _fold(text)


def _fold(text: str) -> str:
    """`text` in Unicode NFC, lowercased: the key SCIM compares a userName by (caseExact false, RFC 7643 §4.1.1;
    scim2-models' comparison_key, so the sandbox's Astro refuses a second account of that key). Not casefold():
    it made "goldwaßer" and "goldwasser", two accounts Astro holds apart, one key, so one person's drift was
    measured against another's account; and without NFC, a name typed decomposed (é as e + U+0301) was another
    key than Astro's. `text` itself when that is already the key (userNames mostly are): the indexes and sets
    below hold a key per user, and a new string per key was ~75 bytes x 4 x 100,000 users of duplicates."""
    folded = text.lower() if text.isascii() else unicodedata.normalize("NFC", text).lower()
    return text if folded == text else folded


@dataclass
class _Index:
    by_name: dict[str, AstroUser] = field(default_factory=dict)
    by_external: dict[str, AstroUser] = field(default_factory=dict)
    by_id: dict[str, AstroUser] = field(default_factory=dict)

    @classmethod
    def of(cls, users: Iterable[AstroUser]) -> _Index:
        index = cls()
        for u in users:
            index.by_id[u.id] = u
            index.by_name.setdefault(_fold(u.user_name), u)
            if u.external_id:
                index.by_external.setdefault(u.external_id, u)
        return index

    def match(self, user: IdpUser, claimed: set[str], folded: str | None = None) -> AstroUser | None:
        """The first unclaimed of: the Astro user of the same userName (`folded`: its folded form, when the caller
        has it), of the Astro id the IdP recorded, of the externalId, of the IdP's id."""
        by_name = self.by_name.get(_fold(user.user_name) if folded is None else folded)
        if by_name is not None and by_name.id not in claimed:
            return by_name  # the common case, without the list of the others
        candidates = [by_name]
        if user.scim_id:
            candidates.append(self.by_id.get(user.scim_id))
        external = user.expected.get("externalId")
        for key in (external, user.id):
            if isinstance(key, str) and key:
                candidates.append(self.by_external.get(key))
        for c in candidates:
            if c is not None and c.id not in claimed:
                return c
        return None


@dataclass
class Prepared:
    """What reconcile makes of the Astro view alone (its index by id, folded userName and externalId: ~0.1 s at
    100,000 users), made by `prepare` as soon as Astro is read, while the IdP's pages are still on their way."""

    astro: AstroView
    index: _Index


def prepare(astro: AstroView) -> Prepared:
    return Prepared(astro, _Index.of(astro.users))


class _Teams:
    """Astro's Teams indexed by id, folded name and externalId, so that matching a group is a few lookups, not a
    scan of every Team (2,001 groups x 2,001 Teams at the 100k benchmark is 4 million name comparisons a scan)."""

    def __init__(self, teams: list[AstroTeam]) -> None:
        self.all = teams
        self.by_id = {t.id: t for t in teams}
        self.by_name: dict[str, list[AstroTeam]] = {}
        self.by_external_id: dict[str, list[AstroTeam]] = {}
        for t in teams:
            self.by_name.setdefault(t.name.casefold(), []).append(t)
            if t.external_id:
                self.by_external_id.setdefault(t.external_id, []).append(t)

    def match(self, group: IdpGroup, claimed: set[str]) -> tuple[AstroTeam, str] | None:
        """The group's Team and how it was known: by the id the IdP recorded, by name, or by externalId."""
        candidates: list[tuple[AstroTeam | None, str]] = [
            (self.by_id.get(group.scim_id) if group.scim_id else None, "by the Team id the IdP recorded")]
        candidates += [(t, "name") for t in self.by_name.get(group.name.casefold(), ())]
        candidates += [(t, "by its externalId, the group's id") for t in self.by_external_id.get(group.id, ())]
        for c, how in candidates:
            if c is not None and c.id not in claimed:
                return c, how
        return None


def _renamed_teams(groups: list[IdpGroup], teams: _Teams, matched: dict[str, AstroUser],
                   foreign_teams: Collection[str] = frozenset()) -> dict[str, AstroTeam]:
    """Group id -> its Team renamed in Astro, for the groups no Team matches by id, name or externalId: the one
    Team no group names or claims whose members are exactly the group's members' accounts (none missing, none
    extra, at least one). Okta's API does not say which Team a push mapping targets (it keeps that id to itself),
    so the members are the evidence; two such Teams, or two groups for one, are no evidence (left team_missing).
    A Team with an externalId is never a candidate: Okta pushes groups without one, so it is another IdP's (sharing
    the organization) or another group's, and --fix would rename someone else's Team. Nor is a Team named as a
    group of another IdP of the organization (`foreign_teams`): Entra's Teams carry no externalId with the seed's
    mappings, and Okta's audit took one with the same members for its deleted Team."""
    names = {g.name.casefold() for g in groups} | set(foreign_teams)
    taken = {t.id for t in teams.all if t.name.casefold() in names}
    unmatched: list[IdpGroup] = []
    for g in groups:
        hit = teams.match(g, set())
        if hit is None:
            unmatched.append(g)
        else:
            taken.add(hit[0].id)
    free = [t for t in teams.all if t.id not in taken and t.members and not t.external_id]
    if not unmatched or not free:
        return {}
    by_members: dict[frozenset[str], list[AstroTeam]] = {}
    for t in free:
        by_members.setdefault(frozenset(t.members), []).append(t)
    found: dict[str, AstroTeam] = {}
    for g in unmatched:
        accounts = frozenset(matched[_fold(m)].id for m in g.members if _fold(m) in matched)
        if not accounts or len(accounts) != len(g.members):
            continue
        same = by_members.get(accounts, [])
        if len(same) == 1:
            found[g.id] = same[0]
    claims = Counter(t.id for t in found.values())
    return {gid: t for gid, t in found.items() if claims[t.id] == 1}


def audit(idp: IdpView, astro: AstroView, prepared: Prepared | None = None,
          foreign: Collection[str] | None = frozenset(), *, no_orphans: bool = False,
          unverified: Collection[str] = frozenset(), foreign_teams: Collection[str] | None = frozenset()
          ) -> list[Finding]:
    """Every unmet setup expectation and every difference between the IdP's view and Astro's, sorted by kind
    then subject. An IdP that is not set up yet has only that finding: the rest would be its consequences.
    `prepared`: `prepare(astro)`, made earlier (used only if it was made of this very view). `foreign`: folded
    userNames another IdP provisioning into the same Astro organization knows: their accounts are that IdP's,
    never this one's orphans. `no_orphans`: whose accounts they are cannot be told (another IdP of the organization
    could not be read): none is reported an orphan. `unverified`: folded userNames the IdP was not asked about (past
    views.MAX_INACTIVE_LOOKUPS): their orphan findings say so and are `unverified` (no remedy deletes them).
    `foreign_teams`: the casefolded group names of the other IdPs of the organization (their Teams, never taken for
    this IdP's renamed Team); None when one could not be read (no Team is then judged renamed)."""
    name = idp.idp
    findings: list[Finding] = _setup_findings(idp)
    if any(f.kind is Kind.NOT_SET_UP for f in findings):
        return findings
    explained = {s.casefold() for gap in idp.setup for s in gap.explains}
    index = prepared.index if prepared is not None and prepared.astro is astro else _Index.of(astro.users)
    at = {path: i for i, path in enumerate(astro.compared)}  # a path -> its place in each AstroUser.values
    claimed: set[str] = set()
    matched: dict[str, AstroUser] = {}  # IdP userName (folded: _fold) -> Astro user
    idp_by_astro: dict[str, IdpUser] = {}
    owner_keys: dict[str, str] = {}  # Astro id -> the folded userName of the IdP user that claimed it
    users = idp.users
    folds = [_fold(u.user_name) for u in users]  # each user's key, folded once
    # Active users claim first: if an inactive duplicate shares a name, the live account belongs to the live user.
    # Then by folded userName, ties in the view's order: sorted((not active, folded)), as two stable index sorts.
    actives = [i for i, u in enumerate(users) if u.active]
    inactives = [i for i, u in enumerate(users) if not u.active]
    actives.sort(key=folds.__getitem__)
    inactives.sort(key=folds.__getitem__)
    for i in (*actives, *inactives):
        user = users[i]
        found = index.match(user, claimed, folds[i])
        if found is not None:
            claimed.add(found.id)
            matched[folds[i]] = found
            idp_by_astro[found.id] = user
            owner_keys[found.id] = folds[i]
    del actives, inactives

    # userName -> the groups naming it, for the users missing from Astro: made at the first one (a list per user
    # of the assigned group, ~15 MB at 100,000 users, that a clean audit never reads).
    teams_of: dict[str, list[tuple[str, str]]] | None = None

    # -- users
    active_idp: set[str] = set()
    plans: dict[tuple[str, ...], _Plan] = {}  # per key set of the expected values: how to compare them at once
    for user, key in zip(users, folds, strict=True):
        astro_user = matched.get(key)
        # A user the IdP holds inactive (suspended, deactivated, out of scope) is not provisioned, whatever error
        # its app user still shows: the deprovision is the finding (its remedy deactivates in Astro); an idp_error
        # here had --fix re-assign a deliberately suspended person.
        if user.error and key not in explained and user.active:
            findings.append(_make(name, Kind.IDP_ERROR, user.user_name, f"{name} reports: {user.error}",
                                  key="user", user=user.user_name, idp_id=user.id, issue_kind=f"{name}.user_error"))
        if not user.active:
            if astro_user is not None and astro_user.active:
                findings.append(_make(
                    name, Kind.DEACTIVATION_NOT_PROPAGATED, user.user_name,
                    f"inactive or out of scope in {name}, but the Astro account is active",
                    user=user.user_name, astro_id=astro_user.id, idp_id=user.id,
                ))
            continue
        active_idp.add(key)
        if astro_user is None:
            if teams_of is None:
                teams_of = {}
                for group in idp.groups:
                    for member in group.members:
                        teams_of.setdefault(_fold(member), []).append((group.name, group.id))
            named = sorted(teams_of.get(key, []))
            teams, team_ids = tuple(n for n, _ in named), tuple(i for _, i in named)
            also = f" (and from {len(teams)} Team{'s' * (len(teams) != 1)}: {', '.join(teams)})" if teams else ""
            findings.append(_make(name, Kind.USER_MISSING, user.user_name, f"no Astro account{also}",
                                  user=user.user_name, idp_id=user.id, teams=teams, team_ids=team_ids,
                                  idp_done=user.scim_id is not None))
            continue
        if astro_user.active and astro_user.values is not None:
            keys = tuple(user.expected)
            plan = plans.get(keys)
            if plan is None:
                plan = plans[keys] = _Plan.of(keys, at)
            if plan.same(user, astro_user):
                continue  # every compared value equal: no attribute finding (see _Plan)
        findings.extend(_attribute_findings(name, user, astro_user, at))

    # -- orphans: active Astro accounts no IdP user accounts for
    for astro_user in [] if no_orphans else astro.users:
        if astro_user.id in claimed or not astro_user.active or (foreign and _fold(astro_user.user_name) in foreign):
            continue
        if unverified and _fold(astro_user.user_name) in unverified:
            findings.append(_make(name, Kind.ORPHANED, astro_user.user_name,
                                  f"active in Astro, unknown to {name}'s app; not looked up in {name} (more such "
                                  "accounts than one audit looks up), so it may be a user "
                                  f"{name} deprovisioned: not verified, never deleted by --delete-orphans",
                                  remedy=f"look the user up in {name}: deactivated or out of the app's scope, "
                                  "deactivate the account in Astro; unknown there, delete it",
                                  user=astro_user.user_name, astro_id=astro_user.id, unverified=True))
            continue
        findings.append(_make(name, Kind.ORPHANED, astro_user.user_name,
                              f"active in Astro, unknown to {name}", user=astro_user.user_name,
                              astro_id=astro_user.id))

    # -- teams and memberships
    claimed_teams: set[str] = set()
    held: dict[str, list[str]] = {}  # active IdP user with a deactivated account -> Teams the account is not in
    team_index = _Teams(astro.teams)
    renamed = {} if foreign_teams is None else _renamed_teams(idp.groups, team_index, matched, foreign_teams)
    for group in sorted(idp.groups, key=lambda g: g.name.casefold()):
        if group.error and group.name.casefold() not in explained:
            findings.append(_make(name, Kind.IDP_ERROR, group.name, f"{name} reports: {group.error}",
                                  key="group", team=group.name, idp_id=group.id, issue_kind=f"{name}.push_error"))
        hit = team_index.match(group, claimed_teams)
        if hit is None and group.id in renamed and renamed[group.id].id not in claimed_teams:
            team = renamed[group.id]
            hit = team, f"by its {len(team.members)} member(s), exactly the group's"
        if hit is None:
            findings.append(_make(name, Kind.TEAM_MISSING, group.name,
                                  f"no Astro Team for this group ({len(group.members)} members in {name})",
                                  team=group.name, idp_id=group.id, idp_done=group.pushed))
            continue
        team, how = hit
        claimed_teams.add(team.id)
        if team.name.casefold() != group.name.casefold():
            # Renamed in Astro, not a Team to create: the IdP provisions into this one (Okta's push mapping and
            # Entra's escrow hold its id), so a second Team of the group's name would be a duplicate.
            findings.append(_make(
                name, Kind.TEAM_RENAMED, group.name,
                f"Team renamed in Astro: expected name {group.name!r}, found {team.name!r}, same Team (id {team.id}, "
                f"known {how})", attribute="displayName", expected=group.name, actual=team.name,
                team=group.name, astro_id=team.id, idp_id=group.id,
            ))
        findings.extend(_membership_findings(name, group, team, matched, idp_by_astro, index, active_idp, held,
                                             owner_keys))
    if held:
        findings = [_with_teams(f, held) for f in findings]

    # Providers may list a user's or group's own error as an issue too: report it once.
    user_ids = {_fold(u.user_name): u.id for u in idp.users} if idp.issues else {}  # 100,000 entries: only if used
    group_ids = {g.name.casefold(): g.id for g in idp.groups}
    reported = {(f.subject.casefold(), f.detail) for f in findings if f.kind is Kind.IDP_ERROR}
    for issue in idp.issues:
        if (issue.subject.casefold(), f"{name} reports: {issue.message}") in reported \
                or issue.subject.casefold() in explained:
            continue
        kind = issue.kind if "." in issue.kind else f"{name}.{issue.kind}"
        # An issue about a user or group the view knows (Entra's failed exports name them) says which, so its
        # remedy can provision that object again rather than be a manual step.
        subject = issue.subject.casefold()
        is_user, is_group = subject in user_ids, subject in group_ids and subject not in user_ids
        findings.append(_make(name, Kind.IDP_ERROR, issue.subject, issue.message, key=issue.kind,
                              issue_kind=kind, user=issue.subject if is_user else None,
                              team=issue.subject if is_group else None,
                              idp_id=user_ids[subject] if is_user else group_ids[subject] if is_group else None))
    findings.sort(key=lambda f: (_ORDER[f.kind], f.subject.casefold(), f.attribute or "", f.detail))
    return findings


@dataclass(frozen=True)
class _Plan:
    """How to tell at once that a user's compared values are all equal to what Astro holds (the common case: 100,000
    users of a clean audit ran _attribute_findings' loop for every attribute). For the users whose expected values
    have the paths `keys`: the expected values of the compared paths in one tuple (`want`), Astro's from
    AstroUser.values in the same order (`have`), and the paths compared with the userName (`names`).

    Equal tuples mean no attribute finding: each pair is then `==`, and equal JSON values normalise alike (what
    same_value compares), whatever their types. Anything else goes through _attribute_findings, which decides."""

    want: Callable[[dict[str, Any]], tuple[Any, ...]]
    have: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    names: tuple[str, ...]

    @classmethod
    def of(cls, keys: tuple[str, ...], at: dict[str, int]) -> _Plan:
        comparisons = _comparisons(keys)
        paths = [path for path, get in comparisons if get is not None]
        names = tuple(path for path, get in comparisons if get is None)
        for path in paths:
            if path not in at:  # _attribute_findings raises the error this is, for the first such user
                return cls(want=lambda _e: (0,), have=lambda _v: (1,), names=names)
        places = [at[path] for path in paths]
        return cls(want=_tuple_getter(paths), have=_tuple_getter(places), names=names)

    def same(self, user: IdpUser, astro_user: AstroUser) -> bool:
        expected = user.expected
        for path in self.names:
            if expected.get(path, user.user_name) != astro_user.user_name:
                return False
        values = astro_user.values
        return values is not None and self.want(expected) == self.have(values)


def _tuple_getter(keys: list[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """operator.itemgetter that gives a tuple whatever the number of keys."""
    if not keys:
        return lambda _obj: ()
    if len(keys) == 1:
        key = keys[0]
        return lambda obj: (obj[key],)
    return operator.itemgetter(*keys)


def _attribute_findings(idp: str, user: IdpUser, astro_user: AstroUser, at: dict[str, int]) -> list[Finding]:
    out: list[Finding] = []
    if not astro_user.active:
        # A user re-enabled in the IdP (Okta: lifecycle activate/reactivate and re-assigned; Entra: accountEnabled
        # true again) whose update never reached Astro, or an account deactivated in Astro behind the IdP's back.
        out.append(_make(idp, Kind.ATTRIBUTE_MISMATCH, user.user_name,
                         f"active in {idp}, but the Astro account is deactivated (active=false)",
                         key="active", severity=Severity.ERROR, attribute="active", expected=True, actual=False,
                         user=user.user_name, astro_id=astro_user.id, idp_id=user.id,
                         remedy=_OKTA_REACTIVATED if idp == "okta" else None))
    expected = user.expected
    data, values = astro_user.data, astro_user.values
    for path, get in _comparisons(tuple(expected)):
        want = expected.get(path, user.user_name)
        if get is None:
            have = astro_user.user_name
        elif values is None:
            have = get(data)
        elif path in at:
            have = values[at[path]]
        else:  # the read kept only `compared` (the mapping's targets): a path outside it is our bug, not drift
            raise RuntimeError(f"{path!r} is compared but the Astro read kept only {sorted(at)}")
        if type(want) is type(have) and want == have:
            continue  # same_value's own first test, inlined: this loop runs 120,000 times for 20,000 users
        if same_value(want, have, path):
            continue
        out.append(_make(idp, Kind.ATTRIBUTE_MISMATCH, user.user_name,
                         f"{path}: expected {want!r}, Astro has {have!r}", key=path, severity=Severity.WARNING,
                         attribute=path, expected=want, actual=have, user=user.user_name,
                         astro_id=astro_user.id, idp_id=user.id))
    return out


def _with_teams(f: Finding, held: dict[str, list[str]]) -> Finding:
    """The `active` finding of a user whose deactivated account is also out of Teams it belongs in (Entra takes a
    disabled user out of its groups): it names those Teams, as `user_missing` does, so the remedy restores both."""
    teams = held.get(_fold(f.user or "")) if f.attribute == "active" else None
    if f.kind is not Kind.ATTRIBUTE_MISMATCH or not teams:
        return f
    names = tuple(sorted(teams, key=str.casefold))
    also = f" (and from {len(names)} Team{'s' * (len(names) != 1)}: {', '.join(names)})"
    return replace(f, teams=names, detail=f.detail + also)


def _membership_findings(
    idp: str,
    group: IdpGroup,
    team: AstroTeam,
    matched: dict[str, AstroUser],
    idp_by_astro: dict[str, IdpUser],
    index: _Index,
    active_idp: set[str],
    held: dict[str, list[str]],
    owner_keys: dict[str, str],
) -> list[Finding]:
    """`owner_keys`: Astro id -> the folded userName of the IdP user that claimed it (idp_by_astro's)."""
    out: list[Finding] = []
    # An assigned group holds everyone (100,000 members): one pass over its members, one over the Team's.
    wanted = {_fold(m) for m in group.members}
    # Members that should be in the Team and whose Astro account is live; a missing or deactivated account is
    # reported once, on the user (a deactivated one lists the Teams it is missing from: `held`).
    expected: set[str] = set()
    in_team: Collection[str] | None = None  # team.members as a set, made only when needed (the reader's is a tuple)
    for m in wanted:
        if m not in active_idp:
            continue
        account = matched.get(m)
        if account is None:
            continue
        if account.active:
            expected.add(m)
            continue
        if in_team is None:
            in_team = team.members if isinstance(team.members, set | frozenset) else set(team.members)
        if account.id not in in_team:
            held.setdefault(m, []).append(group.name)
    actual: set[str] = set()
    extra: list[tuple[str, Finding]] = []  # by member id: reported in id order (the Team's order is the server's)
    by_id = index.by_id
    for member_id in team.members:
        astro_user = by_id.get(member_id)
        if astro_user is None:
            extra.append((member_id, _make(idp, Kind.MEMBERSHIP_EXTRA, group.name,
                                           f"member id {member_id} is not an Astro user", key=f"id:{member_id}",
                                           team=group.name, astro_id=member_id, idp_id=group.id)))
            continue
        owner = idp_by_astro.get(member_id)
        if owner is None or not owner.active or not astro_user.active:
            continue  # orphaned or deprovisioned account: its own finding covers it
        owner_key = owner_keys[member_id]
        actual.add(owner_key)
        if owner_key not in wanted:
            extra.append((member_id, _make(idp, Kind.MEMBERSHIP_EXTRA, group.name,
                                           f"{owner.user_name} is in the Team but not in the {idp} group",
                                           key=_fold(owner.user_name), team=group.name, user=owner.user_name,
                                           astro_id=member_id, idp_id=group.id)))
    extra.sort(key=lambda pair: pair[0])
    out += [finding for _, finding in extra]
    for member in sorted(expected - actual):
        astro_user = matched[member]
        user_name = idp_by_astro[astro_user.id].user_name
        out.append(_make(idp, Kind.MEMBERSHIP_MISSING, group.name,
                         f"{user_name} is in the {idp} group but not in the Team", key=member,
                         team=group.name, user=user_name, astro_id=astro_user.id, idp_id=group.id))
    return out


def summary(findings: Iterable[Finding]) -> dict[str, int]:
    """Finding count per kind, every kind present (zeros included), in the canonical order."""
    counts = {k.value: 0 for k in Kind}
    for f in findings:
        counts[f.kind.value] += 1
    return counts


@dataclass
class AuditResult:
    """One IdP's audit against its Astro organization, as the reports show it."""

    idp: str
    scim_url: str
    findings: list[Finding]
    idp_users: int = 0
    idp_groups: int = 0
    astro_users: int = 0  # every account of the organization, the IdP's or not (an owner, an invite, another IdP's)
    # The IdP's active users, and how many of them have an Astro account: what apply's verification counts.
    active_users: int = 0
    users_in_astro: int = 0
    astro_teams: int = 0
    deviations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    fixed: list[Finding] = field(default_factory=list)  # after `drift --fix --yes`: findings that went away
    # ... and those that went away without being fixed, with why (audit/run.py judge): a failed remedy, a subject
    # that left the IdP's scope or now has another finding
    not_fixed: list[tuple[Finding, str]] = field(default_factory=list)
    # The watched names (audit_once's `watch`, folded) the IdP's view holds as users or groups: what is in its scope.
    in_scope: set[str] = field(default_factory=set)
    remedies: list[dict[str, Any]] = field(default_factory=list)  # what --fix did: change, ok, message
    # `drift --fix` without --yes: the remedies it would carry out (each a change), and why --yes would refuse them
    planned: list[dict[str, Any]] = field(default_factory=list)
    refused_with_yes: str | None = None
    group_sizes: dict[str, int] = field(default_factory=dict)  # IdP group -> members (remedies pick a method)
    # What a report names the sides by: the IdP's organization (Okta's org host, Entra's tenant id; audit/run.py
    # sets it from the config, the view does not carry it) and when the reads began (UTC; None when built by hand).
    idp_org: str = ""
    audited_at: datetime | None = None
    # What this audit could not judge, and why (another IdP of the organization unreadable: whose accounts are
    # orphans or deprovisions cannot be told). Never clean while one is left: no finding is not "no drift".
    not_verified: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No finding, nothing left unverified, and no remedy of --fix --yes that failed (its finding may have gone
        all the same: the run is still not clean, as its exit code says)."""
        return not self.findings and not self.not_verified and all(rem.get("ok") for rem in self.remedies)

    @property
    def astro_org(self) -> str:
        """Astro's organization id: the last segment of its SCIM URL (.../scim/v2/<organization-id>)."""
        return urlsplit(self.scim_url).path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def astro_host(self) -> str:
        return urlsplit(self.scim_url).netloc


def run_audit(idp: IdpView, astro: AstroView, seconds: float = 0.0, *, at: datetime | None = None,
              prepared: Prepared | None = None, foreign: Collection[str] | None = frozenset(),
              no_orphans: bool = False, unverified: Collection[str] = frozenset(),
              foreign_teams: Collection[str] | None = frozenset()) -> AuditResult:
    findings = audit(idp, astro, prepared, foreign, no_orphans=no_orphans, unverified=unverified,
                     foreign_teams=foreign_teams)
    active = sum(1 for u in idp.users if u.active)
    return AuditResult(
        idp=idp.idp, scim_url=astro.scim_url, findings=findings,
        active_users=active, users_in_astro=active - sum(1 for f in findings if f.kind is Kind.USER_MISSING),
        idp_users=len(idp.users),
        idp_groups=len(idp.groups), astro_users=len(astro.users), astro_teams=len(astro.teams),
        deviations=list(astro.deviations), seconds=seconds,
        group_sizes={g.name: len(g.members) for g in idp.groups}, audited_at=at,
    )
