"""The Team-roles audit: each Team's roles in Astro against its access template (`access:` in the config).

It runs after the SCIM audit of each IdP, adds `team_roles_mismatch` findings to it and, with --fix --yes,
re-applies the role sets through the Astro access provider (connector/access/provider.py, the Platform API).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from connector.access.model import require_templates
from connector.access.provider import AstroAccessProvider
from connector.audit import reconcile as drift
from connector.config.load import ProjectConfig
from connector.errors import ConfigError
from connector.plan.model import Plan


def team_role_findings(idp: str, plan: Plan) -> list[drift.Finding]:
    """`team_roles_mismatch` findings from an access plan: one per Team whose roles differ from its template.

    A Team that is not in Astro yet is left out: drift reports it as `team_missing` already (one root cause,
    one finding).
    """
    out = []
    for change in plan.changes:
        if change.data.get("idp") != idp or change.data.get("team_id") is None:
            continue
        group = str(change.data["group"])
        detail = "Team roles differ from the access template: " + "; ".join(change.data.get("diff") or [])
        out.append(
            drift.Finding(
                id=drift.finding_id(idp, drift.Kind.TEAM_ROLES_MISMATCH, group),
                kind=drift.Kind.TEAM_ROLES_MISMATCH,
                idp=idp,
                subject=group,
                detail=detail,
                remedy="Re-apply the Team's role set from the config's access template: "
                "`astro-scim drift --fix --yes` (or `astro-scim apply --idp astro`) sets it with "
                "POST .../teams/{id}/roles.",
                expected=change.after,
                actual=change.before,
                team=group,
                astro_id=str(change.data["team_id"]),
            )
        )
    return out


Say = Callable[[str], None]


def audit_team_roles(
    cfg: ProjectConfig,
    results: Iterable[drift.AuditResult],
    *,
    fix: bool = False,
    yes: bool = False,
    say: Say | None = None,
) -> None:
    """Add `team_roles_mismatch` findings to each IdP's audit; with fix and yes, re-apply the role sets.

    Called by `astro-scim drift` after the SCIM audit. Does nothing when the config has no access section.
    """
    if not cfg.access:
        return
    for result in results:
        if not any(result.idp in t.idps for t in require_templates(cfg)):
            continue
        provider = AstroAccessProvider(cfg, idps=[result.idp])
        try:
            plan = provider.plan()
            found = team_role_findings(result.idp, plan)
            result.findings.extend(found)
            if not fix or not found:
                continue
            targets = {f.subject for f in found}
            if say is not None:
                for change in plan.changes:
                    if change.data.get("group") in targets:
                        say("  " + change.describe())
            if not yes:
                # What --yes would carry out, in the JSON as every other remedy's is (README: `planned`).
                result.planned.extend(c.to_json() for c in plan.changes if c.data.get("group") in targets)
                if say is not None:
                    say(f"{result.idp}: {len(found)} Team role set(s) to re-apply; nothing done "
                        "(add --yes to act)")
                continue
            plan.changes = [c for c in plan.changes if c.data.get("group") in targets]
            refused = ""
            try:
                provider.apply(plan)
            except ConfigError as exc:  # a role Astro refuses (its line named): a remedy that failed, not the run
                refused = str(exc)
                if say is not None:
                    say(f"{result.idp}: {refused}")
            left = {f.subject for f in team_role_findings(result.idp, provider.plan())}
            fixed = [f for f in found if f.subject not in left]
            result.findings = [f for f in result.findings if f not in fixed]
            result.fixed.extend(fixed)
            for c in plan.changes:
                ok = c.data["group"] not in left
                result.remedies.append(
                    {
                        **c.to_json(),
                        "ok": ok,
                        "message": "role set re-applied" if ok else refused or "roles still differ",
                    }
                )
            if say is not None:
                say(f"{result.idp}: re-applied {len(fixed)} Team role set(s)")
        finally:
            provider.close()
