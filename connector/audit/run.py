"""The drift pipeline, as `astro-scim drift` runs it: read the IdP and Astro side by side, reconcile, and with
--fix plan the remedies, carry them out and re-audit until what was fixed stays fixed.

    IdPView.read_view + astro.reader.read_astro -> reconcile.run_audit -> remedies.plan_remedies
        -> remedies.execute -> settle (re-audit) -> team_roles (access templates) -> report
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from connector import output
from connector.astro.beside import AstroRead
from connector.audit.reconcile import AuditResult, Finding, Kind, Prepared, compared, fold, prepare, run_audit
from connector.audit.remedies import Outcome, check_limits, execute, plan_remedies
from connector.audit.report import render, terminal_per_kind
from connector.config.load import AstroConfig, ProjectConfig
from connector.errors import ConnectorError, NotFound, UnsafePlan
from connector.plan.model import Action, Plan
from connector.plan.view import show_plans
from connector.providers import registry
from connector.providers.base import AuditTarget, IdPView, SetupAudit, not_set_up
from connector.support import clock
from connector.support.gcpause import collection_paused
from connector.support.progress import Progress, Silent, Stage
from connector.views import MAX_INACTIVE_LOOKUPS, AstroView, IdpView

# After remedies, IdPs provision asynchronously (Okta's engine, Entra's cycle): re-audit until what was fixed
# stays fixed, or this long has passed.
SETTLE_SECONDS = 20.0

Say = Callable[[str], None]


@runtime_checkable
class _KnowsTargets(Protocol):
    """An IdP view that can say which SCIM paths its users' expected values may hold (both providers' views)."""

    def compared_paths(self) -> list[str]: ...


@dataclass
class FixOptions:
    """What `drift` was asked to do about its findings."""

    fix: bool = False  # plan remedies
    yes: bool = False  # and carry them out
    delete_orphans: bool = False
    force: bool = False  # past the deletion limits


@dataclass
class DriftRun:
    results: list[AuditResult] = field(default_factory=list)
    # Text reports already printed before a --fix plan, with their finding count then (see `drift`).
    shown: list[tuple[AuditResult, int]] = field(default_factory=list)
    recorded: list[AuditResult] = field(default_factory=list)  # results whose remedies are in the audit trail

    def unseen(self) -> list[AuditResult]:
        return [r for r in self.results if not any(r is seen and len(r.findings) == n for seen, n in self.shown)]


def audit_once(view: IdPView, astro: AstroConfig, *, setup: SetupAudit | None = None,
               progress: Progress | None = None, watch: Collection[str] = (),
               others: Sequence[IdPView] = (), read_names: dict[str, Known] | None = None) -> AuditResult:
    """Read the IdP's setup, the IdP's view and Astro side by side (independent reads, threads), then reconcile.

    The three reads run at once (Entra's two interleave on its provider's one event loop). An IdP that is not set
    up has no view worth reading (Entra has no app yet: its read fails), and the audit then reports only that.
    Each read is a stage of `progress` (users and Teams counted as pages arrive). `watch`: user and group names
    whose presence in the IdP's view (its scope) the result's `in_scope` records. `others`: the views of the other
    IdPs provisioning into the same Astro organization (AuditTarget.others): an account one of them knows is
    theirs, never an orphan of this IdP (read beside the rest, only for the accounts this IdP does not know).
    `read_names`: what each IdP's view held (Known), by IdP, shared by the audits of one `drift` run: an IdP
    audited already is not read again as another's sibling, and this one's are added when others will ask.
    """
    progress = progress or Silent()
    started = time.perf_counter()
    at = datetime.fromtimestamp(clock.current().time(), UTC)  # the report's "as of"; a fake clock in tests

    # Only the values the audit compares are kept per user (the JSON was ~1.4 KB a user: 140 MB at 100,000); the
    # mapping they come from is read when the first page of users arrives.
    compare = (lambda: compared(view.compared_paths())) if isinstance(view, _KnowsTargets) else None
    # Astro is read by a child process beside this one where the OS allows (connector.astro.beside: the two reads'
    # CPU on two cores), forked now, before the threads below start.
    astro_read = AstroRead.start(astro, compare=compare, rebuild=compared)
    try:
        return _audit(view, astro_read, setup, progress, started, at, {w.casefold() for w in watch}, others,
                      read_names)
    finally:
        astro_read.close()  # the child, if any, reaped (stopped first if the audit failed before its answer)


def _audit(view: IdPView, astro_read: AstroRead, setup: SetupAudit | None, progress: Progress, started: float,
           at: datetime, watch: set[str], others: Sequence[IdPView] = (),
           read_names: dict[str, Known] | None = None) -> AuditResult:
    def read_idp() -> IdpView:
        with progress.stage(f"read {view.name} users", unit="users") as users:
            return view.read_view(progress=users.update)

    def read_astro_org() -> tuple[AstroView, Prepared]:
        with progress.stage("read Astro users", unit="users") as users, \
                progress.stage("read Astro Teams", unit="Teams") as teams:
            counts = {"users": users, "Teams": teams}
            got = astro_read.result(progress=lambda kind, done, total: counts[kind].update(done, total))
        # Reconcile's index of Astro's side is made here, while the IdP's pages may still be on their way.
        return got, prepare(got)

    # The collector stays off through the reads and reconcile (connector.support.gcpause): the views are
    # millions of containers and no cycles; its passes over them were ~1.1 s of CPU at 100,000 Okta users.
    with collection_paused():
        # On an error here the Astro child is stopped first (`_stopping`), then the pool waits for its threads.
        with ThreadPoolExecutor(max_workers=3 + len(others), thread_name_prefix="drift-read") as pool, \
                _stopping(astro_read):
            astro_future = pool.submit(read_astro_org)
            view_future = pool.submit(read_idp)
            # The users the IdPs sharing this Astro organization know (folded): read beside the rest.
            other_futures = [_done(read_names[other.name]) if read_names is not None and other.name in read_names
                             else pool.submit(_known_names, other) for other in others]
            with progress.stage(f"check {view.name} setup"):
                gaps = setup.setup_gaps() if setup is not None else []
            if not_set_up(gaps):
                view_future.exception()  # what the read met (no app) is what the not_set_up finding reports
                idp_view = IdpView(view.name)
            else:
                idp_view = view_future.result()
            idp_view.setup = gaps
            astro_view, prepared = astro_future.result()
            foreign: set[str] | None = set()  # None: another IdP of this organization could not be read
            foreign_teams: set[str] | None = set()  # their groups' names (casefolded): their Teams
            unjudged: list[str] = []
            for other, future in zip(others, other_futures, strict=True):
                try:
                    theirs = future.result()
                except ConnectorError as exc:
                    why = f"{other.name} provisions into the same Astro organization and could not be read ({exc})"
                    output.warn(f"note: {why}: no account is judged an orphan or a deprovision in this audit")
                    unjudged.append(f"orphaned accounts and deprovisions not reported: {why}")
                    foreign = foreign_teams = None
                    continue
                if foreign is not None and foreign_teams is not None:
                    foreign |= theirs.users
                    foreign_teams |= theirs.teams
        # An IdP may know, as inactive, users its view of the app leaves out (Okta unassigns whom it deactivates).
        known = {fold(u.user_name) for u in idp_view.users}
        external = {u.user_name: u.external_id for u in astro_view.users if u.active
                    and fold(u.user_name) not in known and (foreign is None or fold(u.user_name) not in foreign)}
        # Past the lookups' bound the accounts are not asked about: orphans not verified (no remedy deletes them).
        accounts = list(external)
        unknown, unasked = accounts[:MAX_INACTIVE_LOOKUPS], accounts[MAX_INACTIVE_LOOKUPS:]
        in_view = len(idp_view.users)  # what the reports count as the IdP's users: the read, not the lookups below
        if read_names is not None and not not_set_up(gaps):
            read_names[view.name] = Known.of(idp_view, users=known)  # what _known_names reads of it
        # A folded name per user (~18 MB at 100,000): not kept alive through reconcile, the audit's peak, unless
        # the other IdP's audit reads it.
        del known
        if unknown and foreign is not None and not not_set_up(gaps):
            idp_view.users.extend(view.inactive_users(unknown, external))
            # What neither this IdP's view nor its lookup knows may still be a user another IdP of the same
            # organization deprovisioned: its account, not an orphan of this one.
            left = {fold(u.user_name) for u in idp_view.users}
            unknown = [n for n in unknown if fold(n) not in left]
            for other in others:
                if unknown:
                    foreign |= {fold(u.user_name) for u in other.inactive_users(unknown, external)}
        with progress.stage(f"reconcile {view.name}", total=len(idp_view.users), unit="users") as stage:
            result = run_audit(idp_view, astro_view, time.perf_counter() - started, at=at, prepared=prepared,
                               foreign=foreign, no_orphans=foreign is None, unverified={fold(n) for n in unasked},
                               foreign_teams=foreign_teams)
            result.idp_users = in_view
            result.not_verified = unjudged
            stage.update(len(idp_view.users))
    if watch:
        # Active users only: the kinds judged by scope (user_missing, attribute and membership findings) are about
        # people the IdP provisions; one it now lists as inactive has left that scope.
        names = (n.casefold() for n in [*(u.user_name for u in idp_view.users if u.active),
                                         *(g.name for g in idp_view.groups)])
        result.in_scope = {n for n in names if n in watch}
    return result


@contextmanager
def _stopping(read: AstroRead) -> Iterator[None]:
    try:
        yield
    except BaseException:
        read.close()
        raise


@dataclass(frozen=True)
class Known:
    """What an IdP's view holds, folded: the userNames of every user (active or not) and the names of its groups
    (casefolded, as Teams are matched): the accounts and Teams that IdP provisions."""

    users: set[str]
    teams: set[str]

    @staticmethod
    def of(view: IdpView, users: set[str] | None = None) -> Known:
        """`users`: the view's folded userNames when the caller has them already (100,000 folds at 100k)."""
        return Known({fold(u.user_name) for u in view.users} if users is None else users,
                     {g.name.casefold() for g in view.groups})


def _done(value: Known) -> Future[Known]:
    future: Future[Known] = Future()
    future.set_result(value)
    return future


def _known_names(view: IdPView) -> Known:
    """What another IdP of the organization provisions (Known). An IdP whose app is not there yet provisions no
    one; any other error is this audit's (it cannot tell an orphan, or whose a Team is, then)."""
    try:
        return Known.of(view.read_view())
    except NotFound:
        return Known(set(), set())  # any other error: the caller's note, and no orphan judged


def settle(target: AuditTarget, astro: AstroConfig, targeted: set[str], *, timeout: float = SETTLE_SECONDS,
           watch: Collection[str] = ()) -> AuditResult:
    """Re-audit until none of the targeted findings is left (or the timeout): what is left is then real.
    `watch`: names whose presence in the IdP's scope the result records (audit_once)."""
    clk = clock.current()
    deadline = clk.monotonic() + timeout
    delay = 0.25
    while True:
        result = audit_once(target.view, astro, setup=target.setup, watch=watch, others=target.others)
        left = {f.id for f in result.findings} & targeted
        if not left or clk.monotonic() + delay > deadline:
            return result
        clk.sleep(delay)
        delay = min(delay * 2, 2.0)


def narrator(machine_on_stdout: bool) -> Say:
    # A JSON/JUnit/... document on stdout must stay parseable: narration then goes to stderr.
    return output.warn if machine_on_stdout else output.say


def _show_plan(plan: Plan, machine_on_stdout: bool) -> None:
    if machine_on_stdout:
        for change in plan.changes:
            output.warn("  " + change.describe())
    else:
        show_plans([plan])


def _outcome_line(o: Outcome) -> str:
    return f"  {'done' if o.ok else 'FAILED'} {o.change.describe()}: {o.message}"


def fix(cfg: ProjectConfig, target: AuditTarget, astro: AstroConfig, result: AuditResult, options: FixOptions,
        machine_on_stdout: bool, progress: Progress | None = None) -> AuditResult:
    """Plan the remedies of `result`; with options.yes carry them out and return the settled re-audit."""
    say = narrator(machine_on_stdout)
    plan = plan_remedies(result.idp, result.findings, delete_orphans=options.delete_orphans,
                         group_sizes=result.group_sizes)
    if not plan:
        return result
    _show_plan(plan, machine_on_stdout)
    actionable = [c for c in plan.changes if c.action is not Action.MANUAL]
    if not options.yes:
        say(f"{result.idp}: {len(actionable)} remedy action(s) planned; nothing done (add --yes to act)")
        result.planned = [c.to_json() for c in plan.changes]  # the JSON report's plan (text: shown above)
        try:
            check_limits(plan, astro_users=result.astro_users, safety=cfg.safety, force=options.force)
        except UnsafePlan as exc:  # the preview only warns; acting would refuse
            output.warn(f"note: with --yes this would be refused: {exc}")
            result.refused_with_yes = str(exc)
        return result
    check_limits(plan, astro_users=result.astro_users, safety=cfg.safety, force=options.force)
    if not actionable:
        return result
    progress = progress or Silent()

    def report(o: Outcome, stage: Stage) -> None:
        say(_outcome_line(o))
        stage.advance()

    carried_out: list[Outcome] = []  # as they come: an interruption (Ctrl-C, a bug) must not lose them

    def report_and_keep(o: Outcome, stage: Stage) -> None:
        carried_out.append(o)
        report(o, stage)

    try:
        with progress.stage(f"fix {result.idp}", total=len(actionable), unit="remedies") as stage:
            outcomes = execute(plan, provider=target, astro=astro, report=lambda o: report_and_keep(o, stage))
    except BaseException:
        result.remedies = [{**o.change.to_json(), "ok": o.ok, "message": o.message} for o in carried_out]
        raise
    targeted = {fid for o in outcomes if o.ok for fid in o.change.data.get("findings", [])}
    remedies = [{**o.change.to_json(), "ok": o.ok, "message": o.message} for o in outcomes]
    try:
        with progress.stage(f"re-audit {result.idp} until the fixes show"):
            after = settle(target, astro, targeted, watch={_scope_name(f) for f in result.findings})
    except BaseException:
        # What was done must not be lost with the re-audit: the audit before the fix, with the remedies carried
        # out (unverified: nothing was read back), is what `drift` reports beside the error.
        result.remedies = remedies
        raise
    failed = {fid for o in outcomes if not o.ok for fid in o.change.data.get("findings", [])}
    after.fixed, not_fixed = judge(result.findings, after, failed)
    after.not_fixed = not_fixed
    after.idp_org = result.idp_org
    after.remedies = remedies
    say(f"{result.idp}: after the fix, {len(after.findings)} finding(s) left "
        f"({len(after.fixed)} of {len(result.findings)} fixed)")
    for f, why in not_fixed:
        say(f"  not fixed: {f.kind.value} {f.subject}: {why}")
    return after


# Kinds about a user or group in the IdP's scope: one that went away because its subject left the scope (a failed
# re-assign that left the user out of the app's group) was not fixed; the re-audit just no longer sees it.
_IN_SCOPE_KINDS = frozenset({Kind.USER_MISSING, Kind.ATTRIBUTE_MISMATCH, Kind.TEAM_MISSING, Kind.TEAM_RENAMED,
                             Kind.MEMBERSHIP_MISSING, Kind.MEMBERSHIP_EXTRA, Kind.IDP_ERROR})


_TEAM_KINDS = frozenset({Kind.TEAM_MISSING, Kind.TEAM_RENAMED, Kind.MEMBERSHIP_MISSING, Kind.MEMBERSHIP_EXTRA})


def _scope_name(f: Finding) -> str:
    """The user or group whose presence in the IdP's scope the finding needs."""
    return (f.team if f.kind in _TEAM_KINDS else f.user or f.team) or f.subject


def _in_scope_kind(f: Finding) -> bool:
    # an idp_error names a user or group, or the app itself (Entra's quarantine): only the former can leave scope
    return f.kind in _IN_SCOPE_KINDS and (f.kind is not Kind.IDP_ERROR or bool(f.user or f.team))


def judge(before: list[Finding], after: AuditResult, failed: set[str]
          ) -> tuple[list[Finding], list[tuple[Finding, str]]]:
    """Which findings of `before` the fix fixed, read back in `after` (the settled re-audit), and which went away
    without being fixed, with why. By subject as well as by id: a finding is not fixed when its remedy failed,
    when its subject now has another finding (a group whose re-push left its mapping INACTIVE:
    group_not_provisioned), or when its subject left the IdP's scope during the fix; the last kind is carried
    over into `after.findings`, as no re-audit can see it any more."""
    left = {f.id for f in after.findings}
    # Only what the fix brought (a finding the subject already had, e.g. another attribute of the same user that
    # no remedy touched, does not make this one "not fixed").
    had = {f.id for f in before}
    now = {f.subject.casefold(): f for f in after.findings if f.id not in had}
    fixed: list[Finding] = []
    not_fixed: list[tuple[Finding, str]] = []
    for f in before:
        if f.id in left:
            continue
        why = ["its remedy failed"] if f.id in failed else []
        if after.not_verified and f.kind in (Kind.ORPHANED, Kind.DEACTIVATION_NOT_PROPAGATED):
            # Gone because the re-audit judged no account (another IdP of the organization unreadable): not
            # verified fixed (the re-audit is not clean either: its not_verified says why).
            why.append("the re-audit could not judge it (" + "; ".join(after.not_verified) + ")")
        other = now.get(f.subject.casefold())
        gone = _in_scope_kind(f) and _scope_name(f).casefold() not in after.in_scope
        if other is not None:
            why.append(f"it is now {other.kind.value}: {other.detail}")
        elif gone:
            why.append("it left the IdP's scope during the fix (the re-audit no longer sees it)")
        if not why:
            fixed.append(f)
            continue
        not_fixed.append((f, "; ".join(why)))
        if gone and other is None:
            after.findings.append(replace(f, detail=f"{f.detail} (not fixed: {'; '.join(why)})"))
    return fixed, not_fixed


def idp_org(cfg: ProjectConfig, idp: str) -> str:
    """What names the IdP's organization in a report: Okta's org host, Entra's tenant id."""
    if idp == "okta" and cfg.okta is not None:
        return urlsplit(cfg.okta.org_url).netloc
    if idp == "azure" and cfg.azure is not None:
        return cfg.azure.tenant_id
    return ""


def drift(cfg: ProjectConfig, idp: str, options: FixOptions, *, fmt: str, to_stdout: bool,
          progress: Progress | None = None, run: DriftRun | None = None) -> DriftRun:
    """Audit each selected IdP against its Astro organization (and fix, per `options`), then the Team roles.

    Results go into `run` as each IdP is done: when a later IdP fails (the error propagates), the caller still
    holds the earlier ones, and an IdP whose remedies were carried out before its re-audit failed.

    Text reports printed before a --fix plan are recorded in `shown`: when nothing was done since (no --yes, or
    only manual remedies: `fix` returns the same result), the final report would repeat them word for word. A
    fix that acted returns a new result, which is reported.
    """
    machine_on_stdout = fmt != "text" and to_stdout
    run = run if run is not None else DriftRun()
    selected = registry.selected_idps(cfg, idp)
    # IdPs of one Astro organization audited in one run: the view an IdP's own audit read serves the later audits
    # that need its users, instead of a whole read again (at 100,000 users, seconds). The one audited later is
    # still read as the earlier one's sibling, then for its own audit.
    shared = len(selected) > 1 and any(registry.sharing_astro(cfg, name) for name in selected)
    read_names: dict[str, Known] | None = {} if shared else None
    for name in selected:
        astro = cfg.astro_for(name)
        target = registry.audit_target(cfg, name)
        result: AuditResult | None = None
        try:
            result = audit_once(target.view, astro, setup=target.setup, progress=progress, others=target.others,
                                read_names=read_names)
            result.idp_org = idp_org(cfg, name)
            if options.fix and result.findings:
                if fmt == "text" and to_stdout:
                    print_report([result], "text")
                    run.shown.append((result, len(result.findings)))
                result = fix(cfg, target, astro, result, options, machine_on_stdout, progress)
            run.results.append(result)
        except BaseException:
            if result is not None and result.remedies:  # acted, then stopped: keep what was done
                run.results.append(result)
            raise
        finally:
            target.close()
    if cfg.access:
        # Team access templates add team_roles_mismatch findings and re-apply role sets.
        from connector.audit.team_roles import audit_team_roles

        audit_team_roles(cfg, run.results, fix=options.fix, yes=options.yes, say=narrator(machine_on_stdout))
    return run


def print_report(results: list[AuditResult], fmt: str) -> None:
    """The report on stdout as its reader gets it: on a terminal the text wraps at its width and lists the first
    findings of a large kind (terminal_per_kind); in a file or a pipe every finding, lines whole (for grep)."""
    terminal = output.terminal_width() is not None
    output.raw(render(results, fmt, color=fmt == "text" and sys.stdout.isatty(), width=output.table_width(),
                      wrap=terminal, per_kind=terminal_per_kind(terminal)))
