"""Findings as a large drift makes them, for the report tests and benchmarks/report_scale.py: the real `Finding`s
of connector/audit/reconcile.py, every kind, in reconcile's order, with the details reconcile writes, long
userNames, names in other scripts (wide CJK, combining accents) and, every few dozen, a hostile one (rich markup,
a terminal escape, control characters, a lone surrogate, a tab, a newline in a detail)."""

from __future__ import annotations

import random

from connector.audit.reconcile import AuditResult, Finding, Kind, finding_id, remedy_text
from connector.mapping.model import Severity

# Rough shares of a large drift (a whole group unassigned: most findings are users missing); every kind appears.
SHARES: dict[Kind, float] = {
    Kind.USER_MISSING: 0.62, Kind.ATTRIBUTE_MISMATCH: 0.12, Kind.MEMBERSHIP_MISSING: 0.08,
    Kind.MEMBERSHIP_EXTRA: 0.04, Kind.ORPHANED: 0.05, Kind.DEACTIVATION_NOT_PROPAGATED: 0.03,
    Kind.IDP_ERROR: 0.02, Kind.TEAM_MISSING: 0.015, Kind.TEAM_RENAMED: 0.005, Kind.TEAM_ROLES_MISMATCH: 0.005,
    Kind.GROUP_NOT_PROVISIONED: 0.005,
}
SETUP = [
    (Kind.NOT_SET_UP, "Astro", "not set up: provisioning is not switched on", Severity.ERROR),
    (Kind.PROVISIONING_OFF, "Astro SCIM app", "provisioning is switched off: updateUser is disabled",
     Severity.WARNING),
    (Kind.CONNECTION_BROKEN, "Astro SCIM app", "the last test of the connection failed: 401 Unauthorized",
     Severity.ERROR),
    (Kind.MAPPING_NOT_APPLIED, "name.familyName",
     "the app maps user.lastName, the mapping file says user.lastName ?: user.login", Severity.WARNING),
    (Kind.SSO_MISSING, "Astro", "no SAML or OIDC app for Astro: users cannot sign in", Severity.ERROR),
    (Kind.PROVISIONING_LIMITED, "User scoping filter",
     "a scoping filter limits who is provisioned: department EQUALS 'Sales'", Severity.ERROR),
]
HOSTILE = ["mark[/b]up@x.example", "[bold red]loud[/]@x.example", "esc\x1b]8;;http://evil\x1b\\link@x.example",
           "ctl\x01\x7f\x85@x.example", "half\ud800@x.example", "tab\there@x.example", "[link=http://e]x[/link]"]
GIVEN = ["ada", "bob", "zoë", "józef", "renée", "田中", "mohammed", "siobhán", "bartholomew-alexander", "li"]
FAMILY = ["lovelace", "o'brien", "núñez", "山田太郎", "van-der-berg-oosterhuis", "x", "smith", "kowalczyk-nowak"]
DOMAINS = ["acme.example", "emea.subsidiary-holdings-international.example", "a.example", "東京.example"]
TEAMS = ["Data Engineering", "Platform — EMEA", "R&D <Ops> 100% | a:b", "analytics", "Финансы",
         "a-very-long-team-name-for-the-machine-learning-platform-operations-group"]


def _name(rng: random.Random, i: int) -> str:
    if i % 23 == 5:
        return HOSTILE[(i // 23) % len(HOSTILE)] + str(i)
    return f"{rng.choice(GIVEN)}.{rng.choice(FAMILY)}{i}@{rng.choice(DOMAINS)}"


def _finding(idp: str, kind: Kind, subject: str, detail: str, severity: Severity = Severity.ERROR,
             key: str = "", **fields: object) -> Finding:
    return Finding(id=finding_id(idp, kind, subject, key), kind=kind, idp=idp, subject=subject, detail=detail,
                   remedy=remedy_text(idp, kind), severity=severity, **fields)  # type: ignore[arg-type]


def findings(n: int, idp: str = "okta", seed: int = 7) -> list[Finding]:
    """About `n` findings (at least one of every kind), sorted as reconcile sorts them."""
    rng = random.Random(seed)
    out = [_finding(idp, kind, subject, detail, severity) for kind, subject, detail, severity in SETUP]
    order = list(Kind)
    i = 0
    for kind, share in SHARES.items():
        for _ in range(max(1, round(n * share))):
            i += 1
            user, team = _name(rng, i), rng.choice(TEAMS) + ("" if i % 3 else f" {i}")
            if kind is Kind.USER_MISSING:
                teams = sorted(rng.sample(TEAMS, rng.randint(0, 3)))
                also = f" (and from {len(teams)} Team{'s' * (len(teams) != 1)}: {', '.join(teams)})" if teams else ""
                out.append(_finding(idp, kind, user, f"no Astro account{also}", user=user, teams=tuple(teams)))
            elif kind is Kind.ATTRIBUTE_MISMATCH:
                path = rng.choice(["name.givenName", "title", 'emails[type eq "work"].value', "displayName"])
                want = user if i % 11 else f"{user}\nsecond line"
                out.append(_finding(idp, kind, user, f"{path}: expected {want!r}, Astro has {path[:4]!r}",
                                    Severity.WARNING, key=path, attribute=path, user=user))
            elif kind is Kind.MEMBERSHIP_MISSING:
                out.append(_finding(idp, kind, team, f"{user} is in the {idp} group but not in the Team", key=user))
            elif kind is Kind.MEMBERSHIP_EXTRA:
                out.append(_finding(idp, kind, team, f"{user} is in the Team but not in the {idp} group", key=user))
            elif kind is Kind.ORPHANED:
                out.append(_finding(idp, kind, user, f"active in Astro, unknown to {idp}"))
            elif kind is Kind.DEACTIVATION_NOT_PROPAGATED:
                out.append(_finding(idp, kind, user, f"inactive or out of scope in {idp}, but the Astro account "
                                                     "is active"))
            elif kind is Kind.IDP_ERROR:
                out.append(_finding(idp, kind, user, f"{idp} reports: Error while trying to push profile update "
                                                     f"for {user}: Bad Request. Errors reported by remote server: "
                                                     "userName: must be unique", key="user"))
            elif kind is Kind.TEAM_MISSING:
                out.append(_finding(idp, kind, team, f"no Astro Team for this group ({rng.randint(1, 9999)} "
                                                     f"members in {idp})"))
            elif kind is Kind.TEAM_RENAMED:
                out.append(_finding(idp, kind, team, f"Team renamed in Astro: expected name {team!r}, found "
                                                     f"{team + ' (old)'!r}, same Team (id cl{i:022x}, known by "
                                                     "its id)"))
            elif kind is Kind.TEAM_ROLES_MISMATCH:
                out.append(_finding(idp, kind, team, "Team roles differ from the access template: workspace "
                                                     f"ws-{i}: expected WORKSPACE_OPERATOR, Astro has "
                                                     "WORKSPACE_MEMBER; organization: expected ORGANIZATION_MEMBER"))
            else:
                out.append(_finding(idp, kind, team, f"the group {team!r} is neither assigned to the app nor "
                                                     "pushed"))
    out.sort(key=lambda f: (order.index(f.kind), f.subject.casefold(), f.detail))
    return out


def results(n: int) -> list[AuditResult]:
    """An Okta audit with about `n` findings, with tolerated deviations, and a clean Entra one."""
    okta = AuditResult("okta", "https://api.astronomer.io/scim/v2/clorgokta0000000000000000", findings(n),
                       idp_users=n * 5, idp_groups=200, astro_users=n * 4, astro_teams=190, idp_org="acme.okta.com",
                       deviations=["responses are JSON served as 'text/plain', not application/scim+json"])
    azure = AuditResult("azure", "https://api.astronomer.io/scim/v2/clorgentra", [], idp_users=40, astro_users=40,
                        idp_org="0000-tenant")
    return [okta, azure]
