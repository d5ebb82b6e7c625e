"""Provision on demand: Graph's limits (5 calls per 10 s; one group with at most 5 members per call) and the
JSON-in-a-string answer. Pure apart from the pacer's clock (connector.support.clock), which tests replace."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from connector.support import clock as clocks
from connector.support.clock import Clock
from connector.views import IdpGroup, IdpUser

MAX_MEMBERS_PER_CALL = 5
CALLS_PER_WINDOW = 5
WINDOW_SECONDS = 10.0


def member_chunks(member_ids: list[str], size: int = MAX_MEMBERS_PER_CALL) -> list[list[str]]:
    """Split a group's members into calls of at most `size`; a group without members still gets one call."""
    if not member_ids:
        return [[]]
    return [member_ids[i:i + size] for i in range(0, len(member_ids), size)]


def user_subject(user_id: str) -> dict[str, Any]:
    return {"objectId": user_id, "objectTypeName": "User"}


def group_subject(group_id: str, member_ids: list[str]) -> dict[str, Any]:
    return {
        "objectId": group_id,
        "objectTypeName": "Group",
        "links": {"members": [user_subject(m) for m in member_ids]},
    }


class SlidingWindow:
    """At most `limit` calls in any `period` seconds. Waits before a call rather than collecting a 429."""

    def __init__(self, limit: int = CALLS_PER_WINDOW, period: float = WINDOW_SECONDS, *,
                 clock: Clock | None = None) -> None:
        self.limit = limit
        self.period = period
        self._clock = clock
        self.stamps: deque[float] = deque()

    @property
    def clock(self) -> Clock:
        """The clock given, else the process-wide one at the time of asking (tests replace it)."""
        return self._clock or clocks.current()

    async def acquire(self) -> float:
        """Wait for a free slot; return how long we waited."""
        waited = 0.0
        while True:
            now = self.clock.monotonic()
            while self.stamps and now - self.stamps[0] >= self.period:
                self.stamps.popleft()
            if len(self.stamps) < self.limit:
                self.stamps.append(now)
                return waited
            delay = self.period - (now - self.stamps[0]) + 0.01
            waited += delay
            await self.clock.asleep(delay)

    def penalize(self) -> None:
        """After a 429 the server's window is full whatever ours says: count the window as used from now."""
        now = self.clock.monotonic()
        self.stamps = deque([now] * self.limit)


@dataclass
class OnDemandResult:
    """What Entra reported for one subject of one provisionOnDemand call."""

    subject: str  # display name / id of the source object
    object_type: str  # "User" | "Group"
    action: str  # Create | Update | Delete | Other | ""
    status: str  # success | failure | skipped | warning | ...
    error_code: str = ""
    reason: str = ""
    source_id: str = ""  # the Entra object id the result is about (sourceIdentity.id), when the answer says
    # What Astro should hold for this subject, by the mapping (expected.py, as drift computes it): set by the
    # provider for the subjects it sent, None when it cannot tell. The command reads Astro back against it.
    expected: IdpUser | IdpGroup | None = None
    # The provisionOnDemand request itself failed (after retries): Entra gave no answer for the subject. The
    # error, for the command to report it (exit 3) after the subjects the other calls did provision.
    request_error: str = ""

    @property
    def failed(self) -> bool:
        return self.status.lower() in ("failure", "failed", "error")

    @property
    def ok(self) -> bool:
        """Provisioned, or skipped only because Astro already matches (RedundantExport)."""
        status = self.status.lower()
        if status in ("success", "succeeded"):
            return True
        return status == "skipped" and "redundantexport" in (self.error_code + self.reason).lower()

    def describe(self) -> str:
        text = f"{self.object_type} {self.subject}: {self.action or 'no action'}, {self.status}"
        parts = [p for p in dict.fromkeys((self.error_code, self.reason)) if p]
        if parts:
            text += f" ({': '.join(parts)})"
        hint = SKIP_HINTS.get(self.error_code or self.reason)
        if hint and not self.ok:
            text += f"; {hint}"
        return text


SKIP_HINTS = {
    "NotEffectivelyEntitled": "not in scope: assign the user (or a group it is a direct member of) to the app",
    "RedundantExport": "already in sync",
    # Astro answered Entra's request with 401: the Secret Token Entra saved is wrong or revoked, for every subject.
    "SystemForCrossDomainIdentityManagementCredentialValidationUnauthorized":
        "Astro refuses the Secret Token Entra holds: run 'astro-scim apply --idp azure' (saves astro.token as it), "
        "then provision again",
    # Astro answered Entra's request with an error of its own (a 5xx: its side failed; the reason quotes it).
    "SystemForCrossDomainIdentityManagementServiceFailure":
        "Astro answered Entra with an error: on a 5xx, provision again later ('astro-scim test-connection' shows "
        "whether Astro answers)",
}


def _loads(text: Any) -> Any:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _ci(d: dict[str, Any], *names: str) -> Any:
    """A field by any of several names, case-insensitively (the documented shapes differ in casing)."""
    lowered = {str(k).lower(): v for k, v in d.items()}
    for n in names:
        if n.lower() in lowered and lowered[n.lower()] is not None:
            return lowered[n.lower()]
    return None


def _one(entry: dict[str, Any], fallback_subject: str, key_info: dict[str, Any]) -> OnDemandResult:
    """One subject's result. `key_info` (the call's overall result) only fills in what the entry lacks."""
    status_info = _ci(entry, "statusInfo", "provisioningStatusInfo") or {}
    if not isinstance(status_info, dict):
        status_info = {}
    error_info = _ci(status_info, "errorInformation") or {}
    if not isinstance(error_info, dict):
        error_info = {}
    details = key_info.get("details") if isinstance(key_info.get("details"), dict) else {}
    status = str(_ci(status_info, "status") or key_info.get("result") or "unknown")
    code = str(_ci(status_info, "errorCode") or _ci(error_info, "errorCode") or _ci(details or {}, "errorCode")
               or "")
    reason = str(_ci(status_info, "reason") or _ci(error_info, "reason") or _ci(details or {}, "reason") or "")
    if not reason and status.lower() in ("failure", "skipped", "warning"):
        # The step that failed or skipped says why when statusInfo does not.
        for step in _ci(entry, "provisioningSteps") or []:
            if isinstance(step, dict) and str(step.get("status", "")).lower() in ("failure", "skipped", "warning"):
                reason = str(step.get("description") or step.get("name") or "")
                break
    source = _ci(entry, "sourceIdentity") or {}
    subject = fallback_subject
    object_type = ""
    source_id = ""
    if isinstance(source, dict):
        subject = str(_ci(source, "displayName", "id") or fallback_subject)
        object_type = str(_ci(source, "identityType", "type") or "")
        source_id = str(_ci(source, "id") or "")
    return OnDemandResult(
        subject=subject,
        object_type=object_type.capitalize() if object_type else "",
        action=str(_ci(entry, "action", "provisioningAction") or ""),
        status=status,
        error_code=code,
        reason=" ".join(reason.split()),
        source_id=source_id,
    )


def parse_response(key: str | None, value: str | None, *, subject: str, object_type: str) -> list[OnDemandResult]:
    """Parse provisionOnDemand's StringKeyStringValuePair: both `key` and `value` are JSON text; `value` is an
    object (v1.0 docs) or an array (cross-tenant docs). Anything else becomes one 'unknown' result."""
    key_info = _loads(key)
    if not isinstance(key_info, dict):
        key_info = {}
    parsed = _loads(value)
    entries = parsed if isinstance(parsed, list) else [parsed] if isinstance(parsed, dict) else []
    dicts = [e for e in entries if isinstance(e, dict)]
    # The key summarises the whole call: attribute its details to an entry only when there is one entry.
    results = [_one(e, subject, key_info if len(dicts) == 1 else {}) for e in dicts]
    if not results:
        results = [_one({}, subject, key_info)]
    for r in results:
        if not r.object_type:
            r.object_type = object_type
    return results
