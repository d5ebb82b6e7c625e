"""What `apply` says at the end: "applied" only when the IdP's provisioning was seen to work.

After an IdP's changes are made, the IdPs provision asynchronously (Okta's engine after assignments and pushes,
Entra's cycle after the job starts). `verify_applied` re-runs the audit (the setup expectations and IdP vs Astro)
until one of these, within a bound:
- the IdP reports a blocking problem (a setup finding or its own error, e.g. Astro's 401 seen by Okta): no point
  waiting, the verdict is failed, naming that error and its remedy;
- the IdP considers a missing user or Team done (Okta: the app user has its Astro id, the push mapping was pushed)
  and Astro lacks it (deleted there since): nothing is in flight, waiting will not bring it. Failed, naming the
  subjects and the remedy (`drift --fix --yes`), once two audits in a row agree (the IdP and Astro are read side
  by side: a first read may see the IdP's record of a create before Astro's answer to it); at the bound, one
  more audit at once confirms what was seen done only once, and what it does not confirm stays pending;
- nothing is pending any more (every in-scope user and configured group is in Astro): verified;
- the time is up: failed when nothing reached Astro, else "partly verified" with what is still pending (the users,
  Teams and memberships counted apart).
The clock and the sleep are injectable, so tests decide how long "waiting" is without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from connector.audit.reconcile import AuditResult, Finding, Kind
from connector.audit.run import audit_once
from connector.config.load import ProjectConfig
from connector.providers import registry
from connector.support import clock as clocks

VERIFY_SECONDS = 120.0  # Okta usually provisions within seconds; Entra's first cycle can take minutes

# Problems the IdP reports that waiting does not cure: apply's outcome is a failure.
BLOCKING = frozenset({Kind.NOT_SET_UP, Kind.PROVISIONING_OFF, Kind.CONNECTION_BROKEN, Kind.GROUP_NOT_PROVISIONED,
                      Kind.PROVISIONING_LIMITED, Kind.IDP_ERROR})
# What the IdP has not done yet: worth waiting for.
PENDING = frozenset({Kind.USER_MISSING, Kind.TEAM_MISSING, Kind.MEMBERSHIP_MISSING})

Say = Callable[[str], None]


REMEDY_DONE = "astro-scim drift --fix --yes"


def counted(findings: list[Finding]) -> str:
    """"2 user(s), 1 Team(s)": each kind of pending subject counted apart."""
    n = {kind: sum(1 for f in findings if f.kind is kind) for kind in PENDING}
    words = ((Kind.USER_MISSING, "user(s)"), (Kind.TEAM_MISSING, "Team(s)"), (Kind.MEMBERSHIP_MISSING,
                                                                                  "membership(s)"))
    return ", ".join(f"{n[kind]} {word}" for kind, word in words if n[kind]) or "nothing"


def _subject(f: Finding) -> str:
    return f"{'Team' if f.kind is Kind.TEAM_MISSING else 'user'} {f.subject}"


@dataclass
class Verdict:
    idp: str
    result: AuditResult
    seconds: float
    blocking: list[Finding] = field(default_factory=list)  # the IdP's problems, then what it considers done
    pending: list[Finding] = field(default_factory=list)

    @property
    def nothing_reached(self) -> bool:
        # The IdP's own users, not the organization's: an owner's or another IdP's account is no sign of provisioning
        return self.result.active_users > 0 and self.result.users_in_astro == 0

    @property
    def ok(self) -> bool:
        return not self.blocking and not self.nothing_reached

    def summary(self) -> str:
        r = self.result
        done = [f for f in self.blocking if f.kind in PENDING]
        if done and len(done) == len(self.blocking):
            names = ", ".join(_subject(f) for f in done[:5]) + (f" (+{len(done) - 5} more)" if len(done) > 5 else "")
            return (f"{self.idp}: provisioning FAILED: {counted(done)} that {self.idp} reports provisioned "
                    f"{'is' if len(done) == 1 else 'are'} not in Astro (nothing will send "
                    f"{'it' if len(done) == 1 else 'them'} again): {names}")
        if self.blocking:
            first = self.blocking[0]
            more = f" (+{len(self.blocking) - 1} more)" if len(self.blocking) > 1 else ""
            return f"{self.idp}: provisioning FAILED: {first.kind.value} {first.subject}: {first.detail}{more}"
        if self.nothing_reached:
            return (f"{self.idp}: provisioning not verified: none of {r.active_users} user(s) in scope reached Astro "
                    f"after {self.seconds:.0f}s")
        if self.pending:
            return (f"{self.idp}: partly verified: {r.users_in_astro} of {r.active_users} user(s) in scope in Astro; "
                    f"{counted(self.pending)} still "
                    f"pending after {self.seconds:.0f}s (the IdP is still provisioning them: run 'astro-scim drift' "
                    "later)")
        return (f"{self.idp}: verified: {r.idp_users} user(s) and {r.idp_groups} group(s) in scope, all in Astro")

    def hint(self) -> str:
        if self.blocking:
            if self.blocking[0].kind in PENDING:
                return f"run '{REMEDY_DONE}' (provisions them again through {self.idp})"
            return self.blocking[0].remedy
        return "run 'astro-scim status' and 'astro-scim drift' to see what the IdP reports"


def verify_applied(cfg: ProjectConfig, idp: str, *, timeout: float = VERIFY_SECONDS, say: Say,
                   clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None
                   ) -> Verdict:
    """Audit `idp` until its outcome is known (see the module docstring), saying what it waits for. The wait is
    on the project's clock (connector.support.clock) unless a test passes its own."""
    clock = clock or clocks.current().monotonic
    sleep = sleep or clocks.current().sleep
    target = registry.audit_target(cfg, idp)
    astro = cfg.astro_for(idp)
    started = clock()
    delay = 0.5
    seen_done: set[str] = set()  # ids of findings the previous audit found done in the IdP
    confirming = False  # at the bound: one more audit to confirm what was seen done only once
    try:
        while True:
            result = audit_once(target.view, astro, setup=target.setup)  # no orphans judged: no `others`
            blocking = [f for f in result.findings if f.kind in BLOCKING]
            missing = [f for f in result.findings if f.kind in PENDING]
            done = [f for f in missing if f.idp_done]
            left = timeout - (clock() - started)
            confirmed = [f for f in done if f.id in seen_done]
            at_bound = left < delay
            if at_bound and not confirming and not blocking and len(confirmed) < len(done):
                # Seen done once only: the IdP may have marked it a moment before Astro's list was read. One more
                # audit at once (no wait) tells a race from an object nothing will send.
                seen_done, confirming = {f.id for f in done}, True
                continue
            if blocking or confirmed or not missing or at_bound:
                settled_ids = {f.id for f in confirmed}
                pending = [f for f in missing if f.id not in settled_ids]
                return Verdict(idp, result, clock() - started, blocking + confirmed, pending)
            seen_done = {f.id for f in done}
            say(f"  {idp}: waiting for {idp} to provision: {counted(missing)} not in Astro yet "
                f"({left:.0f}s left)")
            sleep(delay)
            delay = min(delay * 2, 5.0)
    finally:
        target.close()
