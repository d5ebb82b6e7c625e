"""What each side holds, as plain values: the IdP view (from a provider) and the Astro view (from SCIM).

Drift compares the two; neither side knows about HTTP here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

# The audit (audit/run.py) asks IdPView.inactive_users about at most this many Astro accounts the view does not hold
# (one request each). The accounts past it are reported orphans not verified (Finding.unverified): each may be a
# deprovision that did not reach Astro, so no remedy deletes it.
MAX_INACTIVE_LOOKUPS = 200


@dataclass(slots=True)  # one per user or Team: 100,000 of them in a large audit
class IdpUser:
    id: str  # the IdP's object id (Okta 00u..., Entra objectId)
    user_name: str  # what Astro's userName must be
    active: bool  # in scope and enabled: Astro should hold an active account
    expected: dict[str, Any] = field(default_factory=dict)  # SCIM path -> value the mapping yields
    scim_id: str | None = None  # the Astro id the IdP recorded (Okta app user externalId), if any
    error: str | None = None  # the IdP's own provisioning error for this user (Okta syncState ERROR)


@dataclass(slots=True)
class IdpGroup:
    id: str
    name: str  # the Team's displayName in Astro
    members: set[str] = field(default_factory=set)  # userNames, lower-cased
    scim_id: str | None = None
    error: str | None = None  # Okta push mapping ERROR summary
    # The IdP reports it pushed (Okta: the push mapping ACTIVE with a lastPush): nothing is in flight for it.
    pushed: bool = False


@dataclass
class IdpIssue:
    """An IdP-side problem not tied to one user or group row (quarantine, failed log entries)."""

    kind: str  # e.g. "entra.quarantine", "entra.failed_export", "okta.push_error"
    subject: str
    message: str


@dataclass
class SetupGap:
    """An expectation the configuration sets that the IdP does not meet (provisioning off, a group not pushed,
    the IdP's token for Astro refused, SSO absent...): found by reading the IdP's setup, not by comparing users.

    `kind` is one of the audit's setup finding kinds (connector/audit/reconcile.SETUP_KINDS). `remedy` names the
    fix with the exact values (the provider knows them). `explains` lists subjects (userNames, group names)
    whose own IdP errors this gap is the cause of: the audit reports the cause once instead of each symptom.
    """

    kind: str  # not_set_up | provisioning_off | connection_broken | group_not_provisioned | mapping_not_applied
    #            | provisioning_limited | sso_missing
    subject: str
    message: str
    remedy: str
    warning: bool = False  # a prerequisite worth fixing that does not stop provisioning (SSO)
    explains: tuple[str, ...] = ()


@dataclass
class IdpView:
    idp: str  # "okta" | "azure"
    users: list[IdpUser] = field(default_factory=list)
    groups: list[IdpGroup] = field(default_factory=list)
    issues: list[IdpIssue] = field(default_factory=list)
    setup: list[SetupGap] = field(default_factory=list)  # what the config expects and the IdP does not meet


@dataclass(slots=True)  # one per user or Team: 100,000 of them in a large audit
class AstroUser:
    id: str
    user_name: str
    active: bool
    external_id: str | None
    # The SCIM resource JSON, for attribute comparison; empty when `values` holds what the audit compares.
    data: dict[str, Any]
    # The compared attributes' values, in AstroView.compared's order (a read given a `Compared`): ~0.1 KB a user
    # where the JSON took ~1.4 KB (140 MB of a 100,000-user audit).
    values: tuple[Any, ...] | None = None


@dataclass(slots=True)
class AstroTeam:
    id: str
    name: str
    # SCIM user ids, each once. The reader gives a tuple: 8 bytes a membership where a set took ~85 (500,000
    # memberships at 100,000 users: 4 MB instead of 42).
    members: Collection[str]
    external_id: str | None = None


@dataclass(frozen=True)
class Compared:
    """What an audit compares on each Astro user: the mapping's SCIM targets (`paths`) and how to read their values
    from a user's JSON (`read`, one value per path, as the audit's own readers give them)."""

    paths: tuple[str, ...]
    read: Callable[[dict[str, Any]], tuple[Any, ...]]


@dataclass
class AstroView:
    scim_url: str
    users: list[AstroUser] = field(default_factory=list)
    teams: list[AstroTeam] = field(default_factory=list)
    deviations: list[str] = field(default_factory=list)  # vendor deviations tolerated while reading
    compared: tuple[str, ...] = ()  # the paths of each user's `values` (when the read kept only those)
