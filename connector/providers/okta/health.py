"""Okta test-connection and status: the credential, the app and its provisioning, app users and push mappings in
ERROR, and whether Astro's SCIM endpoint takes the configured token."""

from __future__ import annotations

import asyncio
from typing import Any

from connector.errors import ConnectorError
from connector.providers.base import Check, astro_token_check
from connector.providers.okta import plan as P
from connector.providers.okta.client import OktaClient
from connector.providers.okta.org import (
    OUT_OF_SCOPE_APP_USER,
    OktaOrg,
    app_user_error,
    app_user_name,
    integration_token_steps,
    refused_by_astro,
)


class OktaHealth(OktaOrg):
    """The Health capability."""

    def test_connection(self) -> list[Check]:
        return self._call(self._test_connection)

    async def _test_connection(self, c: OktaClient) -> list[Check]:
        checks: list[Check] = []
        try:
            me = await c.call("GET", "/api/v1/users/me", lambda s: s.get_user("me"))
            login = getattr(getattr(me, "profile", None), "login", None) or getattr(me, "id", "?")
            checks.append(Check(f"Okta {c.credential_name}", True, f"{c.org_url} accepts it (acting as {login})"))
        except ConnectorError as exc:
            checks.append(Check(f"Okta {c.credential_name}", False, str(exc), exc.hint))
        if checks[-1].ok:
            try:
                app = await self._find_app(c)
                checks.append(Check("Okta app", True, f"{app.get('label')} ({app.get('id')}, {app.get('status')})"))
                enabled, feature, conn = await self._provisioning(c, str(app["id"]))
                if enabled:
                    caps = P.capability_statuses(feature)
                    text = ", ".join(f"{k} {v}" for k, v in caps.items())
                    checks.append(Check("Okta provisioning", True, f"API integration enabled; To App: {text}"))
                    checks.append(self._organization_check(app))
                else:
                    checks.append(Check(
                        "Okta provisioning", None,
                        f"not enabled yet (connections API: {conn}); 'astro-scim plan' shows the Admin Console steps",
                    ))
                if (note := P.username_note(app)) is not None:
                    checks.append(Check("Okta app username", None, note))
            except ConnectorError as exc:  # NotFound carries the candidate labels in its hint
                checks.append(Check("Okta app", False, str(exc), exc.hint))
        checks.append(await astro_token_check(self.astro))
        return checks

    def _organization_check(self, app: dict[str, Any]) -> Check:
        have = P.configured_organization(app)
        want = self.astro.organization_id
        if have is None:
            return Check("Astro organization", None, f"the app does not show it; the config says {want}")
        if have != want:
            return Check("Astro organization", False, f"the app's API integration uses {have}, the config says {want}",
                         "run 'astro-scim plan' for the steps to fix it")
        return Check("Astro organization", True, f"the app's API integration uses {want}")

    def status(self) -> list[Check]:
        return self._call(self._status)

    async def _status(self, c: OktaClient) -> list[Check]:
        app = await self._find_app(c)
        app_id = str(app["id"])
        checks: list[Check] = []
        enabled, feature, conn = await self._provisioning(c, app_id)
        if not enabled:
            checks.append(Check("provisioning", False, f"not enabled (connections API: {conn})",
                                "run 'astro-scim plan' for the Admin Console steps"))
            return checks
        checks.append(Check("provisioning", True, f"enabled for {app.get('label')} ({app_id})"))
        checks.append(self._organization_check(app))
        caps = P.capability_statuses(feature)
        wrong = {k: v for k, v in caps.items() if v != P.DESIRED_CAPABILITIES[k]}
        checks.append(Check(
            "To App features", not wrong,
            ", ".join(f"{k} {v}" for k, v in caps.items()),
            "run 'astro-scim apply' to set Create Users, Update User Attributes, Deactivate Users" if wrong else None,
        ))
        app_users, mappings = await asyncio.gather(
            c.pages(f"/api/v1/apps/{app_id}/users", {"limit": 500}), self._push_mappings(c, app_id)
        )
        in_error = [u for u in app_users if u.get("syncState") == "ERROR"]
        # Astro's 401 on every error: the token in the app's integration, which neither a re-assignment nor a
        # re-push gets past (the setup line says so too).
        token_fix = (f"{integration_token_steps(str(app.get('label') or app_id), self.astro.organization_id)}; "
                     "then 'astro-scim drift --fix --yes' re-pushes users and groups")
        provisioned = sum(1 for u in app_users if u.get("externalId"))
        # Users in scope that Okta has not provisioned (no Astro id recorded) are not in Astro: not healthy.
        # In scope as the setup audit counts them (OktaProvider._runtime_gaps' connection_broken): the same users.
        in_scope = [u for u in app_users if u.get("status") not in OUT_OF_SCOPE_APP_USER]
        pending = [u for u in in_scope if not u.get("externalId")]
        checks.append(Check(
            "app users", None if not app_users else not pending,
            f"{len(app_users)} assigned, {provisioned} provisioned to Astro"
            + (f"; {len(pending)} in scope but not in Astro" if pending else ""),
            "see 'astro-scim drift' for why (provisioning off, the token Okta holds for Astro, errors)"
            if pending else None,
        ))
        push_errors = [m for m in mappings if m.get("status") == "ERROR" or m.get("errorSummary")]
        push_refused = bool(push_errors) and all(refused_by_astro(str(m.get("errorSummary") or ""))
                                                 for m in push_errors)
        # Okta's app-user errors seldom quote Astro's answer: every user failed and none reached Astro while the
        # pushes show the 401 is the same cause (the setup audit's connection_broken).
        users_refused = bool(in_error) and (
            all(refused_by_astro(app_user_error(u)) for u in in_error)
            or (push_refused and len(in_error) == len(in_scope) and not provisioned))
        if in_error:
            shown = "; ".join(f"{app_user_name(u)}: {app_user_error(u)}" for u in in_error[:5])
            more = f" (+{len(in_error) - 5} more)" if len(in_error) > 5 else ""
            checks.append(Check(
                "app users in ERROR", False, f"{len(in_error)}: {shown}{more}",
                token_fix if users_refused else
                "resolve the task in Okta (Dashboard > Tasks) or remove and re-assign the user "
                "('astro-scim drift --fix --yes' can re-assign)",
            ))
        else:
            checks.append(Check("app users in ERROR", True, "none"))
        names = await self._group_names(c, [str(m.get("sourceGroupId")) for m in mappings])
        active = sum(1 for m in mappings if m.get("status") == "ACTIVE")
        checks.append(Check("push mappings", None, f"{len(mappings)} ({active} ACTIVE)"))
        if push_errors:
            shown = "; ".join(
                f"{names.get(str(m.get('sourceGroupId')), m.get('sourceGroupId'))}: {m.get('errorSummary') or 'ERROR'}"
                for m in push_errors[:5]
            )
            checks.append(Check("push mappings in ERROR", False, shown,
                                token_fix if push_refused else "run 'astro-scim push-groups' to re-push and verify"))
        else:
            checks.append(Check("push mappings in ERROR", True, "none"))
        return checks

