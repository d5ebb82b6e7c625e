"""What providers offer, as typed capabilities, and the plan/apply flow written once (modelled on octodns).

A provider class declares the capabilities it implements by the Protocols below; commands and the audit ask
`providers.registry` for a capability and get it typed, never by probing an object with getattr:

    ConfigProvider     plan / apply the IdP (or Astro access) setup          every provider
    Health             test_connection / status                              every provider
    IdPView            what the audit reads: read_view, inactive_users       okta, azure
    Remedies           the FAQ's Okta fixes: reassign, re-push, re-link      okta
    ProvisionOnDemand  Entra's provisionOnDemand                             azure
    GroupPush          push-groups: inspect and repair Group Push            okta
    Discover           init: the app and candidate groups                    okta, azure (discover.py)
    SetupAudit         what the config expects of the IdP and is not so      okta, azure (BaseProvider)

`BaseProvider` is the ConfigProvider template method: `plan` never writes; after `apply`, `plan` is empty.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, TypeVar

from connector import output
from connector.config.load import AstroConfig
from connector.errors import ConnectorError, ManualStepRequired, UsageError, WrittenButFailing
from connector.plan.model import Action, Change, Plan, state_digests
from connector.support.progress import Count
from connector.views import AstroTeam, IdpGroup, IdpUser, IdpView, SetupGap

Progress = Callable[[Change], None]
T = TypeVar("T")
S = TypeVar("S")  # what the provider's calls run with (Okta: an SDK session; Entra: the tenant)
State = TypeVar("State")  # what populate read
Ctx = TypeVar("Ctx")  # what apply learns as it goes (ids of objects it found or made)


@dataclass
class Check:
    """One line of test-connection or status output. ok=None is information, not a verdict."""

    name: str
    ok: bool | None
    detail: str = ""
    hint: str | None = None


# ------------------------------------------------------------------------------------------ capabilities


class Closable(Protocol):
    name: str  # "okta" | "azure" | "astro"

    def close(self) -> None:
        """Release what the provider holds (HTTP sessions, its event loop). Safe to call twice."""
        ...


class ConfigProvider(Closable, Protocol):
    def plan(self) -> Plan:
        """Read the current state and return what `apply` would change. Never writes."""
        ...

    def apply(self, plan: Plan, progress: Progress | None = None) -> int:
        """Make the changes of `plan`, calling `progress` after each; return how many were made.

        Raises ManualStepRequired when it reaches a step no API can do (after the steps before it are done).
        """
        ...


class Health(Closable, Protocol):
    def test_connection(self) -> list[Check]:
        """Can we reach the IdP with these credentials, find the app, and does Astro take its token?"""
        ...

    def status(self) -> list[Check]:
        """Provisioning health as the IdP reports it (job state, quarantine, errors)."""
        ...


class SetupAudit(Closable, Protocol):
    def setup_gaps(self) -> list[SetupGap]:
        """Every expectation of the configuration the IdP does not meet: what `apply` would still change (one
        source of truth: the plan), plus what only the IdP's running state shows (the app deactivated, its token
        for Astro refused, SSO absent). Never writes."""
        ...


def missing_group_hint(name: str, key: str, where: str, known: str) -> str:
    """The fix for a configured group the IdP no longer has (deleted there, or misspelt here): drift, plan, status
    and apply stop on it with this hint, never a verdict, since every check of that group would be a guess.
    `key`: the config list (`okta.push_groups`); `where`: the IdP's console page that creates groups; `known`:
    close names (`did you mean ...`) or some of the IdP's groups."""
    return (f"if {name!r} was deleted in the IdP, re-create it ({where}) and run 'astro-scim apply', or drop it "
            f"from {key} in the config; if it is misspelt, {known}")


def setup_checks(gaps: Sequence[SetupGap]) -> list[Check]:
    """Setup gaps as status lines (`status` and `drift` say the same thing about the same state)."""
    if not gaps:
        return [Check("setup", True, "provisioning on, connection working, every configured group in place")]
    return [Check(f"setup: {g.kind.replace('_', ' ')}", None if g.warning else False,
                  f"{g.subject}: {g.message}", g.remedy) for g in gaps]


def direction_check(name: str, audit: SetupAudit, *, unknown: str, inferred: bool = False) -> Check:
    """test-connection's verdict on the IdP -> Astro direction (the token the IdP holds), from the setup audit.
    `unknown` is what to say when nothing shows either way (Okta cannot be asked to test its token). `inferred`:
    the verdict is read from the IdP's provisioning errors (Okta), so with provisioning off (an app deactivated,
    To App features off) their absence proves nothing: the IdP sends nothing to Astro to fail on. That is "not
    verified" (information, as provisioning not enabled yet is: the state before `apply`), never "ok"."""
    try:
        gaps = audit.setup_gaps()
    except ConnectorError as exc:  # e.g. a configured group the IdP does not have: a failed check, not a crash
        return Check(name, False, f"cannot read the IdP's setup: {exc}", exc.hint)
    if not_set_up(gaps):
        return Check(name, None, "not set up yet: nothing to test", next(g.remedy for g in gaps))
    broken = [g for g in gaps if g.kind == "connection_broken"]
    if broken:
        return Check(name, False, broken[0].message, broken[0].remedy)
    off = [g for g in gaps if g.kind == "provisioning_off"]
    if inferred and off:
        return Check(name, None, f"not verified: provisioning is off ({off[0].subject}: {off[0].message}); the "
                                  "token is only tested by what the IdP sends to Astro", off[0].remedy)
    return Check(name, True, unknown)


def not_set_up(gaps: Sequence[SetupGap]) -> bool:
    return any(g.kind == "not_set_up" for g in gaps)


CONNECTION_TEST_USER = "astro-scim-connection-test"  # looked up (never created) to prove the token may read Users


async def astro_token_check(astro: AstroConfig) -> Check:
    """test-connection's check of our side's `astro.token`, straight against Astro: the ServiceProviderConfig and
    a Users lookup (a token Astro refuses, or one that may not read Users, fails here)."""
    from connector.astro.client import AstroScimClient

    try:
        async with AstroScimClient(astro) as client:
            spc = await client.service_provider_config()
            await client.find_user(CONNECTION_TEST_USER)
    except ConnectorError as exc:
        return Check("Astro SCIM token", False, str(exc), exc.hint)
    filtering = "filter supported" if (spc.get("filter") or {}).get("supported") else "filter not advertised"
    return Check("Astro SCIM token", True, f"{astro.scim_url} accepts it ({filtering})")


def in_astro_checks(view: IdPView, astro: AstroConfig) -> list[Check]:
    """`status`'s read-back: the in-scope users the IdP should have provisioned (its view) against Astro's active
    accounts, and the groups it should have provisioned as Teams against Astro's Teams. The IdP's own records (a
    job "successful", app users marked provisioned, a push mapping ACTIVE) are not proof: a wrong token on either
    side, or a deleted account or Team, leaves them unchanged."""
    from connector.astro.reader import read_astro

    try:
        idp_view, in_astro_view = view.read_view(), read_astro(astro)
    except ConnectorError as exc:
        return [Check("users in scope", False, f"could not compare with Astro: {exc}", exc.hint)]
    in_astro = {u.user_name.casefold() for u in in_astro_view.users if u.active}
    in_scope = [u for u in idp_view.users if u.active]
    missing = [u.user_name for u in in_scope if u.user_name.casefold() not in in_astro]
    detail = f"{len(in_scope)} in scope, {len(in_scope) - len(missing)} active in Astro"
    if missing:
        users = Check("users in scope", False, f"{detail}; not in Astro: {_shown(missing)}",
                      f"see 'astro-scim drift --idp {view.name}' for why"
                      + ("; 'astro-scim provision --user' provisions one now" if view.name == "azure" else ""))
    else:
        users = Check("users in scope", None if not in_scope else True, detail)
    return [users, _teams_check(view.name, idp_view.groups, in_astro_view.teams)]


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")


def _teams_check(idp: str, groups: Sequence[IdpGroup], teams: Sequence[AstroTeam]) -> Check:
    """The groups the IdP provisions as Teams (Okta: pushed; Entra: assigned) against Astro's Teams, by name: a
    Team deleted in Astro leaves the IdP's push mapping ACTIVE or its job Succeeded, so only Astro can say."""
    have = {t.name.casefold() for t in teams}
    missing = [g.name for g in groups if g.name.casefold() not in have]
    detail = f"{len(groups)} group(s) provisioned as Teams, {len(groups) - len(missing)} in Astro"
    if not missing:
        return Check("Teams", None if not groups else True, detail)
    fix = (f"push it again with: astro-scim push-groups {shlex.quote(missing[0])} --yes" if idp == "okta"
           else f"provision it now with: astro-scim provision --group {shlex.quote(missing[0])}")
    return Check("Teams", False, f"{detail}; no Team in Astro for: {_shown(missing)}",
                 f"{fix}; or, for every one: astro-scim drift --idp {idp} --fix --yes")


class IdPView(Closable, Protocol):
    def read_view(self, progress: Count | None = None) -> IdpView:
        """The IdP's in-scope users and groups, mapped through the mapping file: what Astro should hold.
        `progress` is told the users read so far (and their total, when the IdP says it) as pages arrive."""
        ...

    def inactive_users(self, user_names: Sequence[str],
                       external_ids: Mapping[str, str | None] | None = None) -> list[IdpUser]:
        """Among `user_names` (Astro accounts read_view does not account for), the ones the IdP deprovisioned, as
        inactive IdP users: users it deactivated, and users out of the app's scope whose Astro account it did
        provision (`external_ids`: each account's externalId, the IdP's mark on what it created). A name the IdP
        knows for another account (one it never provisioned: an admin's own, a manual invite) is left out: an
        orphan, which only --delete-orphans touches, within the safety limits."""
        ...


class PushOutcome(Protocol):
    """What a re-push did: verified in Astro (None: not checked), and a one-line account of it."""

    @property
    def verified(self) -> bool | None: ...

    @property
    def result(self) -> str: ...

    @property
    def failed_halfway(self) -> bool:
        """A request failed (or a step was left halfway): `result` says what, without a "pushed" preamble."""
        ...

    @property
    def renamed_back(self) -> bool:
        """A relink found the Team missing by name only: the re-push brought it back, nothing was unlinked."""
        ...

    @property
    def unread(self) -> str:
        """Done, but Astro could not be read back to verify it: the error ("" otherwise)."""
        ...


# A batch repair's report of one subject's end: its index in the batch, and what was done or the error that stopped it.
RepairEnded = Callable[[int, "str | ConnectorError"], None]


class Remedies(Closable, Protocol):
    """The Astro SCIM FAQ's fixes on the Okta side (drift --fix)."""

    def reassign_users(self, logins: Sequence[str], done: RepairEnded | None = None) -> list[str | ConnectorError]:
        """Remove and re-assign each user in the IdP, side by side. Per login, in order: what was done, or the
        error that stopped it (the others still run); `done(i, result)` is called as each one ends."""
        ...

    def update_users(self, logins: Sequence[str], done: RepairEnded | None = None) -> list[str | ConnectorError]:
        """Make the IdP push each user's mapped profile to Astro again, without unassigning; as reassign_users."""
        ...

    def repush_group(self, name: str) -> PushOutcome:
        """Push the group again and verify its Team in Astro."""
        ...

    def relink_group(self, name: str, *, group_ids: Sequence[str] | None = None) -> PushOutcome:
        """Unlink the pushed group (keeping the Team) and push it again, which recreates a missing Team."""
        ...


class OnDemandOutcome(Protocol):
    """Entra's verdict on one subject of one provisionOnDemand call."""

    subject: str
    object_type: str
    action: str
    status: str
    reason: str
    expected: IdpUser | IdpGroup | None  # what Astro should hold for it by the mapping, for the read-back
    request_error: str  # the provisionOnDemand request failed: no answer from Entra for it ("" otherwise)

    @property
    def failed(self) -> bool: ...

    @property
    def ok(self) -> bool: ...

    def describe(self) -> str: ...


class ProvisionOnDemand(Closable, Protocol):
    def provision_on_demand(self, *, users: list[str] | None = None, groups: list[str] | None = None,
                            progress: Count | None = None) -> Sequence[OnDemandOutcome]:
        """Provision users (userPrincipalName or id) and groups (name or id) now, paced to the IdP's limit.
        `progress` is told the calls made and the calls known to make (a group's count is known once read)."""
        ...


@dataclass
class PushState:
    """One group's Group Push state, what push-groups would do about it, and what happened."""

    name: str
    group_id: str
    mapping_id: str | None
    status: str | None  # ACTIVE | INACTIVE | ERROR | None (no mapping)
    error: str | None
    expected: set[str]  # userNames (lower-cased) the IdP should have pushed: members who are provisioned users
    in_astro: set[str] | None  # the Team's members in Astro; None = no such Team
    action: str | None = None  # create | activate | repush | None (in sync)
    reason: str = ""
    verified: bool | None = None  # set once acted upon
    result: str = ""
    in_astro_before: set[str] | None = None  # the Team's members before acting (in_astro is then re-read)
    left_state: str = ""  # acting failed halfway and could not be undone: the state it left (result: how to undo)
    failure: str = ""  # acting failed on a request (nothing left halfway): the error
    unread: str = ""  # acted, but Astro could not be read back (verified stays None): the error
    refused: bool = False  # not in Astro after acting, and Okta records Astro's 401 for the push
    # The mapping targets a Team that is gone from Astro: act by unlinking it and pushing again (a new Team).
    relink: bool = False
    renamed_back: bool = False  # the Team was missing by name only: a re-push brought it back, nothing unlinked

    @property
    def failed_halfway(self) -> bool:
        return bool(self.left_state or self.failure)

    def describe_action(self) -> str:
        if self.relink:
            return ("re-push (a Team renamed in Astro comes back under the group's name); if the Team was deleted, "
                    "unlink the push mapping (it targets the deleted Team; deleteTargetGroup=false) and push the group "
                    "again, which creates the Team (Push now cannot)")
        return {
            "create": "create the push mapping (push as a Team)",
            "activate": "activate the push mapping",
            "repush": "re-push: set the mapping INACTIVE then ACTIVE (a workaround: Okta has no Push now API)",
        }.get(self.action or "", "nothing to do")


@dataclass
class PushReport:
    groups: list[PushState] = field(default_factory=list)
    acted: bool = False
    manual_steps: str = ""  # how to push by hand when the API route did not take

    @property
    def pending(self) -> list[PushState]:
        return [g for g in self.groups if g.action]

    @property
    def failed(self) -> list[PushState]:
        return [g for g in self.groups if g.verified is False]


class GroupPush(Closable, Protocol):
    def push_groups(self, names: list[str] | None, yes: bool, progress: Count | None = None) -> PushReport:
        """Inspect the groups' push state against Astro; with `yes`, create/activate/re-push and verify.
        `progress` is told the groups inspected of all, then (acting) the groups pushed and verified of those."""
        ...


@dataclass
class Discovery:
    """What `init` found in an IdP, through the same reads as plan: the app, and the groups it could use."""

    idp: str
    app: str | None  # "<name> (<id>, <status>)"; None: no app of that name
    app_hint: str = ""  # when there is none: what to do (close names, or that apply creates it)
    assigned: list[str] = field(default_factory=list)  # groups assigned to the app
    pushed: list[str] = field(default_factory=list)  # groups pushed as Teams (Okta)
    candidates: list[str] = field(default_factory=list)  # groups whose name mentions Astro


class Discover(Closable, Protocol):
    def discover(self) -> Discovery:
        """Find the app and the groups `init` could write into a config. Never writes."""
        ...


@dataclass
class AuditTarget:
    """One IdP as drift uses it: the view it reads and the remedies it offers (None where the IdP has none).

    The capabilities are one provider object seen through each Protocol, so they share its session and the
    pacing of its limits (Entra's on-demand window).
    """

    idp: str
    view: IdPView
    setup: SetupAudit
    remedies: Remedies | None = None  # Okta
    on_demand: ProvisionOnDemand | None = None  # Entra
    # The other configured IdPs that provision into the same Astro organization: the accounts they know are
    # theirs, not this IdP's orphans (audit_once reads their users for that).
    others: list[IdPView] = field(default_factory=list)

    def close(self) -> None:
        self.view.close()
        for other in self.others:
            other.close()


# ------------------------------------------------------------------------------------- the template method


class BaseProvider(ABC, Generic[S, State, Ctx]):
    """ConfigProvider, written once. A subclass supplies the per-IdP hooks:

    plan():  `_call(fn)` runs fn with the provider's session S  ->  `_populate(s)` reads the current state
             ->  `_changes(state)` computes the changes (pure)  ->  Plan(name, changes); `_notes(state)` are
             printed as warnings (things to know that no change fixes).
    apply(plan): refuses another provider's plan  ->  `_begin_apply(s, plan)` makes the context  ->  for each
             batch of consecutive changes of one resource (`_batches`): a MANUAL change is re-checked with
             `_recheck_manual` (someone may have done it since the plan), which stops apply with
             ManualStepRequired when it is still to do, after the steps before it are done; other batches go to `_apply_batch`
             (default: `_apply_change` one by one, `progress` after each). Returns how many changes were made.
    """

    name: ClassVar[str]

    # -- hooks ----------------------------------------------------------------------------------------------

    @abstractmethod
    def _call(self, fn: Callable[[S], Awaitable[T]]) -> T:
        """Run `fn` to completion with the provider's session; the one sync entry point of each public call."""

    @abstractmethod
    async def _populate(self, s: S) -> State:
        """Read the current state. Never writes."""

    @abstractmethod
    def _changes(self, state: State) -> list[Change]:
        """The changes that make `state` what the config asks for. Pure."""

    def _notes(self, state: State) -> list[str]:
        return []

    def _fingerprint(self, state: State) -> dict[str, object]:
        """What populate read, by resource kind (digested into `Plan.state`; `apply FILE` names the kinds that
        differ). Leave out what moves on its own without changing the plan (timestamps of job runs): a saved plan
        would never apply. Default: the whole state, as one kind."""
        return {self.name: state}

    def _gap(self, change: Change) -> SetupGap | None:
        """The setup gap a planned change stands for (None: the change is not an unmet expectation)."""
        return None

    async def _runtime_gaps(self, s: S, state: State) -> list[SetupGap]:
        """Gaps no plan change fixes and only the IdP's running state shows."""
        return []

    def _existing(self, state: State) -> int:
        """How many objects exist of the kinds the plan may delete (the base of the deletion limit)."""
        return 0

    @abstractmethod
    async def _begin_apply(self, s: S, plan: Plan) -> Ctx:
        """The context apply carries from change to change."""

    async def _recheck_manual(self, s: S, ctx: Ctx, change: Change) -> None:
        """Raise ManualStepRequired unless the manual step of `change` has been done since the plan was made."""
        raise ManualStepRequired(f"{self.name}: {change.describe()}: do it by hand, then re-run apply",
                                 steps=str(change.data.get("steps", "")))

    def _batches(self, changes: list[Change]) -> Iterator[list[Change]]:
        batch: list[Change] = []
        for change in changes:
            if batch and (change.resource != batch[0].resource or Action.MANUAL in (change.action, batch[0].action)):
                yield batch
                batch = []
            batch.append(change)
        if batch:
            yield batch

    async def _apply_batch(self, s: S, ctx: Ctx, batch: list[Change], progress: Progress) -> int:
        for change in batch:
            try:
                await self._apply_change(s, ctx, change)
            except WrittenButFailing as exc:
                if exc.change is change:
                    progress(change)  # it was written: apply must say so, and that it fails
                raise
            progress(change)
        return len(batch)

    async def _apply_change(self, s: S, ctx: Ctx, change: Change) -> None:
        raise UsageError(f"the {self.name} provider cannot apply {change.resource}")

    # -- the flow -------------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        state, plan = self._call(self._plan)
        for note in self._notes(state):
            output.warn(f"{self.name}: note: {note}")
        return plan

    def setup_gaps(self) -> list[SetupGap]:
        return self._call(self._setup_gaps)

    async def _setup_gaps(self, s: S) -> list[SetupGap]:
        state, plan = await self._plan(s)
        gaps = [g for change in plan.changes if (g := self._gap(change)) is not None]
        if not_set_up(gaps):
            # One finding: the rest (groups, mappings, job state) are what setting it up does.
            return [next(g for g in gaps if g.kind == "not_set_up")]
        return gaps + await self._runtime_gaps(s, state)

    async def _plan(self, s: S) -> tuple[State, Plan]:
        state = await self._populate(s)
        return state, Plan(self.name, self._changes(state), existing=self._existing(state),
                           state=state_digests(self._fingerprint(state)))

    def apply(self, plan: Plan, progress: Progress | None = None) -> int:
        if plan.provider != self.name:
            raise UsageError(f"the {self.name} provider cannot apply a plan for {plan.provider}")
        if not plan.changes:
            return 0
        return self._call(lambda s: self._apply(s, plan, progress or _nothing))

    async def _apply(self, s: S, plan: Plan, progress: Progress) -> int:
        ctx = await self._begin_apply(s, plan)
        done = 0
        for batch in self._batches(plan.changes):
            first = batch[0]
            if first.action is Action.MANUAL:
                await self._recheck_manual(s, ctx, first)
                progress(first)  # verified: someone did the manual step since the plan was made
                continue
            done += await self._apply_batch(s, ctx, batch, progress)
        return done


def _nothing(change: Change) -> None:
    pass
