"""`provision`'s read-back: what Entra says it provisioned on demand, checked in Astro.

Entra's provisionOnDemand answer is Entra's claim. The evidence is Astro itself: after the calls, a few small
reads through the one Astro SCIM client (connector.astro.client) — one filtered Users query for every user
subject, and per group its Team by displayName with the userNames of its members — compared with what the
mapping gives for each subject (`OnDemandOutcome.expected`, built by providers/entra/expected.py as drift builds
it), value by value with drift's own comparison (reconcile.same_value: case, "True"/"False" strings, lists of
complex values).

Verdict per subject:
- verified: Entra provisioned it (or found it already in sync) and Astro holds what the mapping gives;
- failed: Entra reports a failure, or Astro disagrees (the differences are named);
- not_verified: Entra provisioned it but Astro could not be read, or the tool cannot tell what to expect;
- not_provisioned: Entra skipped it (not in scope...): there is nothing Astro should show.

Entra's engine exports during the provisionOnDemand call (the sandbox's too), so Astro normally agrees at the
first read. A subject that disagrees is read again, backing off, for at most READBACK_SECONDS on the injectable
clock (connector.support.clock) in case Astro's reads lag its writes; then the difference is the verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.astro.client import AstroScimClient
from connector.audit.reconcile import same_value
from connector.config.load import AstroConfig
from connector.errors import ConnectorError
from connector.mapping.scim_paths import get_value
from connector.providers.base import OnDemandOutcome
from connector.support import clock as clocks
from connector.views import IdpGroup, IdpUser

READBACK_SECONDS = 10.0  # how long a disagreeing subject is re-read before the difference is the verdict
FIRST_DELAY = 0.5
MAX_DELAY = 4.0

VERIFIED, FAILED, NOT_VERIFIED, NOT_PROVISIONED = "verified", "failed", "not_verified", "not_provisioned"
# verification.status: the read-back itself; not_checked when Entra did not provision the subject.
NOT_CHECKED = "not_checked"

Say = Callable[[str], None]


@dataclass
class Difference:
    attribute: str  # a SCIM path, "active", "userName" (the user is missing), "displayName" (the Team is
    # missing) or "members"
    expected: Any
    actual: Any

    def text(self) -> str:
        if self.attribute == "members":
            return f"members missing from the Team: {', '.join(sorted(self.expected))}"
        if self.actual is None and self.attribute in ("userName", "displayName"):
            what = "user with userName" if self.attribute == "userName" else "Team named"
            return f"Astro has no {what} {self.expected!r}"
        return f"{self.attribute}: expected {self.expected!r}, Astro has {self.actual!r}"

    def to_json(self) -> dict[str, Any]:
        expected = sorted(self.expected) if isinstance(self.expected, set) else self.expected
        return {"attribute": self.attribute, "expected": expected, "actual": self.actual}


@dataclass
class Verification:
    """The read-back of one subject. `verdict` is the subject's outcome; `status` the read-back's own."""

    verdict: str  # verified | failed | not_verified | not_provisioned
    status: str  # verified | failed | not_verified | not_checked
    detail: str  # what was checked, what differs, or why it could not be checked
    hint: str | None = None
    astro_id: str | None = None
    checked: list[str] = field(default_factory=list)  # what was compared: userName, active, SCIM paths, members
    differences: list[Difference] = field(default_factory=list)
    error: ConnectorError | None = None  # why Astro could not be read (not_verified)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "hint": self.hint, "astro_id": self.astro_id,
                "checked": self.checked, "differences": [d.to_json() for d in self.differences]}


def compare_user(want: IdpUser, have: dict[str, Any] | None) -> Verification:
    """One user: present under its userName, active as Entra says (accountEnabled), each mapped value equal."""
    if have is None:
        return _failed([Difference("userName", want.user_name, None)], ["userName"], None,
                       "Entra reports the user exported, but Astro does not have it: see its provisioning log "
                       "('astro-scim status') and the userName mapping; 'astro-scim drift' shows every difference")
    checked = ["userName", "active"]
    differences: list[Difference] = []
    active = _active(have.get("active"))
    if active is not want.active:
        differences.append(Difference("active", want.active, active))
    for path in sorted(want.expected):
        if path.rsplit(":", 1)[-1].casefold() in ("username", "active"):
            continue  # judged above: userName found the user, activity comes from accountEnabled
        value = get_value(have, path)
        checked.append(path)
        if not same_value(want.expected[path], value, path):
            differences.append(Difference(path, want.expected[path], value))
    astro_id = str(have.get("id") or "") or None
    if differences:
        return _failed(differences, checked, astro_id,
                       "Astro holds other values than the mapping gives: it did not keep what Entra sent, or "
                       "something changed the user after the export; 'astro-scim drift' shows every difference, "
                       "'astro-scim drift --fix --yes' provisions the user again")
    state = "active" if want.active else "deactivated"
    return Verification(VERIFIED, VERIFIED, f"in Astro as {want.user_name}, {state}, "
                        f"{len(checked) - 2} mapped attribute(s) equal", astro_id=astro_id, checked=checked)


def compare_team(want: IdpGroup, team: dict[str, Any] | None, member_names: set[str]) -> Verification:
    """One group: a Team of its mapped displayName holding the members this call provisioned (userNames,
    lower-cased; members the Team holds beyond those are not this call's business)."""
    checked = ["displayName", f"members ({len(want.members)})"]
    if team is None:
        return _failed([Difference("displayName", want.name, None)], checked, None,
                       "Entra reports the group exported, but Astro has no Team of that name: see its provisioning "
                       "log ('astro-scim status') and the group's displayName mapping")
    astro_id = str(team.get("id") or "") or None
    missing = want.members - member_names
    if missing:
        return _failed([Difference("members", missing, None)], checked, astro_id,
                       f"run 'astro-scim provision --group \"{want.name}\"' again, or 'astro-scim drift --fix --yes'")
    return Verification(VERIFIED, VERIFIED, f"Team {want.name!r} in Astro holds the {len(want.members)} "
                        "member(s) provisioned", astro_id=astro_id, checked=checked)


def _failed(differences: list[Difference], checked: list[str], astro_id: str | None, hint: str) -> Verification:
    return Verification(FAILED, FAILED, "Astro disagrees: " + "; ".join(d.text() for d in differences), hint=hint,
                        astro_id=astro_id, checked=checked, differences=differences)


def _active(value: Any) -> bool:
    # Absent means active (Astro lists live accounts); Entra without aadOptscim062020 sends "False" strings.
    if isinstance(value, str):
        return value.strip().casefold() != "false"
    return value is not False


def _unchecked(r: OnDemandOutcome) -> Verification | None:
    """The verdict of a subject that needs no read of Astro, or None when it needs one."""
    if r.request_error:
        return Verification(FAILED, NOT_CHECKED, "the provisionOnDemand request failed, Entra did not answer for "
                            "it: nothing to read back in Astro", hint="run the same command again (what is already "
                            "in Astro is answered RedundantExport), or 'astro-scim drift' to see what is missing")
    if r.failed:
        return Verification(FAILED, NOT_CHECKED, "Entra reports a failure: nothing to read back in Astro")
    if not r.ok:
        return Verification(NOT_PROVISIONED, NOT_CHECKED, "Entra did not provision it: nothing to read back")
    if r.expected is None:
        return Verification(NOT_VERIFIED, NOT_VERIFIED,
                            "not verified: the tool cannot tell what Astro should hold for it (Entra's answer "
                            "names no object it was sent, or the mapping gives it no userName)",
                            hint="check it with 'astro-scim drift'")
    return None


async def _read(scim: AstroScimClient, subjects: dict[int, IdpUser | IdpGroup]) -> dict[int, Verification]:
    users = {i: s for i, s in subjects.items() if isinstance(s, IdpUser)}
    groups = {i: s for i, s in subjects.items() if isinstance(s, IdpGroup)}

    async def team(want: IdpGroup) -> Verification:
        found = await scim.find_group(want.name)
        ids = {str(m["value"]) for m in (found or {}).get("members") or [] if isinstance(m, dict) and m.get("value")}
        names = set((await scim.user_names(ids)).values()) if ids else set()
        return compare_team(want, found, names)

    found_users, teams = await asyncio.gather(
        scim.find_users([u.user_name for u in users.values()]) if users else _nothing(),
        asyncio.gather(*(team(g) for g in groups.values())))
    out = {i: compare_user(u, found_users.get(u.user_name.casefold())) for i, u in users.items()}
    out.update(zip(groups, teams, strict=True))
    return out


async def _nothing() -> dict[str, dict[str, Any]]:
    return {}


def verify(astro: AstroConfig, results: Sequence[OnDemandOutcome], *, say: Say,
           timeout: float = READBACK_SECONDS) -> list[Verification]:
    """The verdict of each result, in order: Astro read back for every subject Entra provisioned or found in
    sync. An error reading Astro (unreachable, refused, a token that cannot be read) makes those subjects
    not_verified (the error is their detail and hint); it is not raised: the caller decides the exit."""
    out: list[Verification | None] = [_unchecked(r) for r in results]
    todo: dict[int, IdpUser | IdpGroup] = {}
    for i, r in enumerate(results):
        if out[i] is None and r.expected is not None:
            todo[i] = r.expected
    if not todo:
        return [v for v in out if v is not None]

    async def main() -> dict[int, Verification]:
        clock = clocks.current()
        started, delay = clock.monotonic(), FIRST_DELAY
        done: dict[int, Verification] = {}
        async with AstroScimClient(astro) as scim:
            pending = dict(todo)
            while True:
                got = await _read(scim, pending)
                done.update(got)
                pending = {i: s for i, s in pending.items() if got[i].verdict != VERIFIED}
                left = timeout - (clock.monotonic() - started)
                if not pending or left < delay:
                    return done
                say(f"  astro: {len(pending)} subject(s) not as Entra reports yet; reading again in {delay:g}s "
                    f"(up to {left:.0f}s more)")
                await clock.asleep(delay)
                delay = min(delay * 2, MAX_DELAY)

    try:
        checked = asyncio.run(main())
    except ConnectorError as exc:  # unreachable, refused, or a token that cannot be read: Entra has acted anyway
        hint = exc.hint or "check astro.scim_url and astro.token in the config; then 'astro-scim drift'"
        for i in todo:
            out[i] = Verification(NOT_VERIFIED, NOT_VERIFIED, f"not verified: Astro could not be read: {exc}",
                                  hint=hint, error=exc)
    else:
        for i, v in checked.items():
            out[i] = v
    return [v for v in out if v is not None]
