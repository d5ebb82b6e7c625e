"""Microsoft Entra ID provider: the enterprise app, its assignments, secrets, job, schema and job state.

plan() reads and never writes. apply() re-reads what it needs as it goes, so it is idempotent and a retried step
never duplicates an object. Graph calls live in tenant.Tenant; the schema merge is schema.py (pure).

Secrets cannot be read back (Graph masks SecretToken), so plan decides like this:
  - no secrets saved, or BaseAddress differs from the configured Astro SCIM URL -> change;
  - otherwise ask Entra whether the SAVED token works (validateCredentials with useSavedCredentials=true, the
    portal's "Test connection"; a POST that changes nothing) -> change when Astro refuses it.
  A rotated Astro token that still works is not detected; `apply` always validates the configured one.

The other Entra jobs are composed into the provider class: health.py (test-connection, status), provision.py
(provision on demand), view.py (the audit's IdP view); what they share is app.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.errors import Ambiguous, NotFound, RemoteError, WrittenButFailing
from connector.mapping.model import MappingFile
from connector.plan.model import Action, Change, Plan
from connector.providers.base import (
    BaseProvider,
    Check,
    direction_check,
    in_astro_checks,
    missing_group_hint,
    not_set_up,
    setup_checks,
)
from connector.providers.entra import schema as azure_schema
from connector.providers.entra.app import load_azure_mapping, misspelt_app_hint, unmasked
from connector.providers.entra.health import EntraHealth
from connector.providers.entra.provision import EntraOnDemand
from connector.providers.entra.tenant import NON_GALLERY_TEMPLATE, Tenant, is_guid
from connector.providers.entra.view import EntraView
from connector.views import SetupGap

# The quarantine reason of Entra's accidental-deletions prevention (synchronizationQuarantine.reason).
TOO_MANY_DELETES = "TooManyDeletes"
# preferredSingleSignOnMode values that are federated SSO Astro can use (the seed's first prerequisite).
SSO_MODES = frozenset({"saml", "oidc"})

log = logging.getLogger("connector.azure")


@dataclass
class AzureState:
    """What plan reads of the tenant (populate)."""

    mapping: MappingFile
    sp: Any  # the service principal, None when the app does not exist yet
    groups: list[dict[str, Any]]  # azure.assign_groups, found
    assigned: set[str]  # principal ids assigned to the app
    job: Any
    saved: dict[str, str]  # the job's saved secrets (SecretToken masked)
    token_refusal: str | None  # why Astro refuses the saved Secret Token, when Entra was asked
    schema: dict[str, Any] | None
    # Assigned principals azure.assign_groups does not name ("display name (type)"): Entra provisions them too.
    unconfigured: list[str] = field(default_factory=list)


@dataclass
class _Applying:
    """What apply learned so far (ids of objects it found or made)."""

    sp: Any = None
    fresh_app: bool = False
    job: Any = None
    schema_done: bool = False
    validated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# The not_set_up gap of a missing app begins with this (its job missing is another gap); _setup_gaps then looks
# for a close name, which a misspelt azure.app.display_name has.
NO_APP = "no enterprise app"

class AzureProvider(EntraHealth, EntraView, EntraOnDemand, BaseProvider[Tenant, AzureState, _Applying]):
    """ConfigProvider, Health, IdPView and ProvisionOnDemand for Entra ID."""

    # --- plan --------------------------------------------------------------------------------------------

    async def _configured_group(self, t: Tenant, index: int, name: str) -> dict[str, Any]:
        """A group of azure.assign_groups; one the tenant lacks (deleted in Entra since apply, or misspelt) stops
        plan, drift and status at its config line, with both fixes; so does a name several groups have, with
        their ids."""
        doc = self.cfg.document
        where = doc.loc(("azure", "assign_groups", index)) if doc is not None else self.az.location
        try:
            return await t.find_group(name)
        except Ambiguous as exc:
            raise Ambiguous(f"{exc.message} (azure.assign_groups)", location=where, hint=exc.hint) from exc
        except NotFound as exc:
            known = exc.hint or "did you mean: " + ", ".join(repr(c) for c in exc.candidates) + "?"
            raise NotFound(
                f"{exc.message} (azure.assign_groups)", candidates=exc.candidates,  # by name, or by id
                location=where,
                hint=missing_group_hint(name, "azure.assign_groups", "Entra admin center > Groups > New group; "
                                        "then assign it to the app", known),
            ) from exc

    async def _populate(self, t: Tenant) -> AzureState:
        mapping = self.mapping
        sp = await self._find_sp()
        sp_id = str(sp["id"]) if sp is not None else None
        if sp is None and self.az.app_id and not self.az.app_display_name:
            raise NotFound(f"no enterprise app with appId {self.az.app_id}",
                           hint="set azure.app.display_name instead to have it created")
        assignments = await t.assignments(sp_id) if sp_id else []
        assigned = {str(a.get("principalId")) for a in assignments}
        groups = [await self._configured_group(t, index, name) for index, name in enumerate(self.az.assign_groups)]
        wanted = {str(g["id"]) for g in groups}
        unconfigured = sorted({f"{a.get('principalDisplayName') or a.get('principalId')} "
                               f"({str(a.get('principalType') or 'principal').lower()})"
                               for a in assignments if str(a.get("principalId")) not in wanted})
        job = await t.find_job(sp_id) if sp_id else None
        saved = await t.read_secrets(sp_id) if sp_id else {}
        refusal = await self._token_refusal(t, sp_id, job, saved or {})
        schema = await self._current_schema(t, sp_id, job) if sp_id else None
        return AzureState(mapping, sp, groups, assigned, job, saved or {}, refusal, schema, unconfigured)

    async def _token_refusal(self, t: Tenant, sp_id: str | None, job: Any, saved: dict[str, str]) -> str | None:
        """Ask Entra whether the SAVED token works, when nothing else decides (see the module docstring)."""
        if not saved.get("BaseAddress") or saved["BaseAddress"].rstrip("/") != self.astro.scim_url.rstrip("/"):
            return None
        token = saved.get("SecretToken", "")
        if unmasked(token) or job is None:
            return None
        try:
            await t.validate_credentials(str(sp_id), str(job["id"]), None)
        except RemoteError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 429):
                return exc.message
            raise
        return None

    async def _current_schema(self, t: Tenant, sp_id: str, job: Any) -> dict[str, Any] | None:
        if job is not None:
            return await t.get_schema(sp_id, str(job["id"]))
        for tpl in await t.templates(sp_id):
            if str(tpl.get("id", "")).lower() == "scim" or str(tpl.get("factoryTag", "")).lower() == "scim":
                schema = tpl.get("schema")
                return schema if isinstance(schema, dict) and schema.get("synchronizationRules") else None
        return None

    def _changes(self, state: AzureState) -> list[Change]:
        changes: list[Change] = []
        add = changes.append
        if state.sp is None:
            add(Change(Action.CREATE, "azure.app", self.app_label,
                       detail=f"instantiate the non-gallery app template {NON_GALLERY_TEMPLATE}"))
        for name, group in zip(self.az.assign_groups, state.groups, strict=True):
            if str(group["id"]) not in state.assigned:
                add(Change(Action.CREATE, "azure.assignment", str(group.get("displayName") or name),
                           detail="assign the group to the app (role User)", data={"group_id": str(group["id"])}))
        if state.job is None:
            add(Change(Action.CREATE, "azure.job", "scim", detail="create the provisioning job (templateId scim)"))
        if (secrets_change := self._secrets_change(state)) is not None:
            add(secrets_change)
        changes.extend(self._schema_changes(state))
        if (state_change := self._plan_job_state(state.job)) is not None:
            add(state_change)
        return changes

    def _fingerprint(self, state: AzureState) -> dict[str, object]:
        # The job's status carries run times and counts that change every provisioning cycle (about every 40
        # minutes) without changing the plan: only its state, status code and quarantine reason count.
        sp, job = state.sp or {}, state.job or {}
        status = job.get("status") or {}
        return {
            "azure.app": [sp.get(k) for k in ("id", "appId", "displayName", "accountEnabled")],
            "azure.groups": [[g.get("id"), g.get("displayName")] for g in state.groups],
            "azure.assignment": sorted(state.assigned),
            "azure.job": [job.get("id"), job.get("templateId"), (job.get("schedule") or {}).get("state"),
                          status.get("code"), (status.get("quarantine") or {}).get("reason")],
            "azure.secrets": [self._saved_for_digest(state.saved), state.token_refusal],
            "azure.schema": state.schema,
        }

    def _saved_for_digest(self, saved: dict[str, str]) -> dict[str, str]:
        """The saved secrets as a saved plan may hold their digest: a SecretToken Graph echoed unmasked becomes
        whether it is astro.token (an unsalted digest of the token in the plan file let a guess be checked
        offline); a masked one is kept (it says nothing)."""
        token = saved.get("SecretToken", "")
        if unmasked(token):
            return {**saved, "SecretToken": "astro.token" if token == self.astro.token.reveal() else "another"}
        return saved

    # --- setup audit (drift and status) ------------------------------------------------------------------

    def _gap(self, change: Change) -> SetupGap | None:
        label = self.app_label
        where = f"Entra admin center > Enterprise applications > {label}"

        def rerun(what: str) -> str:
            return f"run 'astro-scim apply --idp azure' ({what})"

        if change.resource in ("azure.app", "azure.job"):
            what = NO_APP if change.resource == "azure.app" else "the app has no provisioning job"
            # The message says what is missing; the kind already says "not set up" wherever it is shown.
            return SetupGap("not_set_up", label, f"{what} {label!r}" if change.resource == "azure.app" else what,
                            "run 'astro-scim apply --idp azure' (creates the app, assigns the groups, "
                            "saves the Astro URL and token, maps the attributes and starts provisioning)")
        if change.resource == "azure.assignment":
            return SetupGap("group_not_provisioned", change.key, "in azure.assign_groups but not assigned to the "
                            "app: Entra provisions none of its members",
                            rerun(f"assigns it; by hand: {where} > Users and groups > Add user/group"))
        if change.resource == "azure.secrets" and change.data.get("op") == "scope":
            # Not the connection: what Entra sends (every user and group of the tenant, not the assigned groups).
            return SetupGap("mapping_not_applied", label, "Entra's provisioning scope is 'Sync all users and "
                            "groups': every user and group of the tenant is provisioned to Astro, not only the "
                            "assigned groups",
                            rerun(f"sets it back; by hand: {where} > Provisioning > Settings > Scope: Sync only "
                                  "assigned users and groups"))
        if change.resource == "azure.secrets":
            return SetupGap("connection_broken", label, f"Entra's credentials for Astro are wrong: {change.detail}",
                            rerun(f"saves the Tenant URL {self.astro.scim_url} and astro.token; by hand: {where} > "
                                  "Provisioning > Admin Credentials, then Test Connection"))
        if change.resource == "azure.schema" and change.data.get("op") == "limits":
            # Not how an attribute maps but whether Entra provisions (or deprovisions) the objects at all.
            obj = change.key.split(" ", 1)[0]
            page = f"Provision Microsoft Entra ID {obj}s"
            return SetupGap("provisioning_limited", change.key, f"Entra's {obj} object mapping provisions less than "
                            f"the setup: {change.detail}",
                            rerun(f"enables the object mapping, removes its scoping filter and ticks Create, Update "
                                  f"and Delete; by hand: {where} > Provisioning > Mappings > {page}: Enabled Yes, "
                                  "Source Object Scope: no scoping filter, Target Object Actions: all three ticked. "
                                  "To provision fewer users, assign fewer groups (azure.assign_groups)"))
        if change.resource == "azure.schema":
            return SetupGap("mapping_not_applied", change.key, f"the job's attribute mapping differs from the "
                            f"mapping file: {change.detail}", rerun("writes the attribute mappings"))
        if change.resource == "azure.job_state" and change.data.get("op") == "start" \
                and change.before != "Quarantine":  # quarantine is reported as the IdP's own error
            return SetupGap("provisioning_off", label, f"the provisioning job is {change.before}: nothing is "
                            "provisioned", rerun(f"starts it; by hand: {where} > Provisioning > Start provisioning"))
        return None

    def _sso_gap(self, sp: Any) -> SetupGap | None:
        mode = str((sp or {}).get("preferredSingleSignOnMode") or "")
        if sp is None or mode in SSO_MODES:
            return None
        return SetupGap(
            "sso_missing", self.app_label,
            f"the app's single sign-on mode is {mode or 'not set'}, not SAML or OIDC: users provisioned to Astro "
            "cannot sign in through Entra",
            f"set up SSO (the seed's prerequisite): Entra admin center > Enterprise applications > {self.app_label} "
            "> Single sign-on > SAML, with the Identifier and Reply URL Astro shows under Settings > "
            "Authentication > SSO (or PATCH the service principal's preferredSingleSignOnMode to saml)",
            warning=True)

    async def _runtime_gaps(self, t: Tenant, state: AzureState) -> list[SetupGap]:
        gap = self._sso_gap(state.sp)
        return [gap] if gap is not None else []

    def _notes(self, state: AzureState) -> list[str]:
        gap = self._sso_gap(state.sp)
        notes = [f"SSO: {gap.message}; {gap.remedy}"] if gap is not None else []
        if state.unconfigured:
            # apply never removes an assignment (someone made it in the portal): say what else Entra provisions.
            notes.append(f"also assigned to the app, not in azure.assign_groups: {', '.join(state.unconfigured)}; "
                         "Entra provisions them to Astro too, and apply leaves them: add them to "
                         "azure.assign_groups, or remove them in Entra admin center > Enterprise applications > "
                         f"{self.app_label} > Users and groups")
        return notes

    async def _setup_gaps(self, t: Tenant) -> list[SetupGap]:
        gaps = await super()._setup_gaps(t)
        if not_set_up(gaps) and gaps[0].message.startswith(NO_APP):  # _gap's message: the app, not its job
            match = await self._closest_app_name()
            if match is not None:  # a misspelt name, not a missing app
                gaps[0].remedy = misspelt_app_hint(match)
        return gaps

    def test_connection(self) -> list[Check]:
        """Both directions: ours (Graph, astro.token through validateCredentials) and Entra's (the Tenant URL and
        Secret Token it saved, which Entra tests with useSavedCredentials)."""
        checks = super().test_connection()
        if any(c.ok is False for c in checks):
            return checks
        checks.append(direction_check("Entra -> Astro (the saved Tenant URL and Secret Token)", self,
                                      unknown="Entra's test of its saved credentials passes"))
        return checks

    def status(self) -> list[Check]:
        """Healthy only when the setup audit finds nothing blocking, the job's own state is healthy and the users
        in scope are in Astro (a job can run "successfully" and still leave them out)."""
        gaps = self.setup_gaps()
        checks = setup_checks(gaps)
        if not_set_up(gaps):
            return checks
        return [*checks, *super().status(), *in_astro_checks(self, self.astro)]

    def _secrets_change(self, state: AzureState) -> Change | None:
        change = self._credentials_change(state)
        if not sync_all(state.saved):
            return change
        # The portal's Scope "Sync all users and groups": Entra sends every user and group of the tenant to Astro,
        # not the assigned groups. Saving the secrets (which apply does with SyncAll=false) narrows it back.
        scope = "Scope 'Sync all users and groups' (every user and group of the tenant goes to Astro) -> 'Sync " \
                "only assigned users and groups'"
        if change is not None:
            change.detail += f"; {scope}"
            return change
        return Change(Action.UPDATE, "azure.secrets", "SyncAll", before=state.saved.get("SyncAll"), after="false",
                      detail=f"{scope}; Entra saves its secrets all at once, so the Tenant URL and astro.token are "
                             "saved with it", data={"op": "scope"})

    def _credentials_change(self, state: AzureState) -> Change | None:
        url, saved = self.astro.scim_url, state.saved
        if not saved or not saved.get("BaseAddress"):
            return Change(Action.CREATE, "azure.secrets", "BaseAddress, SecretToken", after=url,
                          detail=f"set the Tenant URL to {url} and the Secret Token to astro.token")
        if saved.get("BaseAddress", "").rstrip("/") != url.rstrip("/"):
            return Change(Action.UPDATE, "azure.secrets", "BaseAddress, SecretToken", before=saved["BaseAddress"],
                          after=url, detail=f"Tenant URL {saved['BaseAddress']} -> {url}; Secret Token = astro.token")
        token = saved.get("SecretToken", "")
        if unmasked(token):
            # The service echoed a real value: compare it (never print it).
            if token != self.astro.token.reveal():
                return Change(Action.UPDATE, "azure.secrets", "SecretToken",
                              detail="the saved Secret Token differs from astro.token")
            return None
        if state.job is None:
            return Change(Action.UPDATE, "azure.secrets", "SecretToken",
                          detail="the saved Secret Token cannot be checked before the job exists; set astro.token")
        if state.token_refusal is not None:
            return Change(Action.UPDATE, "azure.secrets", "SecretToken",
                          detail=f"Astro refuses the saved Secret Token ({state.token_refusal}); set astro.token")
        return None

    def _schema_changes(self, state: AzureState) -> list[Change]:
        mapping = state.mapping
        n = len(mapping.users) + len(mapping.groups)
        if state.schema is None:
            return [Change(Action.UPDATE, "azure.schema", "attribute mappings",
                           detail=f"apply the {n} attribute mappings of {Path(mapping.file).name} and remove "
                                  "the template's mappings it does not name, except active and a Group's members "
                                  "(the diff is shown once the job exists)")]
        _merged, diffs = azure_schema.merge(state.schema, mapping)
        return [
            Change(Action.CREATE if d.before is None else Action.UPDATE, "azure.schema", d.key,
                   before=d.before, after=None if d.removed else d.after, detail=d.describe(),
                   data={"op": "limits"} if d.limits else {})
            for d in diffs
        ]

    def _plan_job_state(self, job: Any) -> Change | None:
        if job is None:
            if self.pause:
                return None
            return Change(Action.RUN, "azure.job_state", "scim", before="Disabled", after="Active",
                          detail="start provisioning", data={"op": "start"})
        state = str((job.get("schedule") or {}).get("state") or "")
        status = job.get("status") or {}
        code = str(status.get("code") or "")
        if self.pause:
            if state.lower() == "active":
                return Change(Action.RUN, "azure.job_state", str(job["id"]), before=state, after="Paused",
                              detail="pause provisioning", data={"op": "pause"})
            return None
        if state.lower() != "active":
            return Change(Action.RUN, "azure.job_state", str(job["id"]), before=state or "unknown", after="Active",
                          detail=f"start provisioning ({state or 'unknown'} -> Active)", data={"op": "start"})
        if code.lower() == "quarantine":
            reason = str((status.get("quarantine") or {}).get("reason") or "")
            if reason.lower() == TOO_MANY_DELETES.lower():
                return self._deletions_held_back(str(job["id"]))
            return Change(Action.RUN, "azure.job_state", str(job["id"]), before="Quarantine", after="Active",
                          detail=f"start the job to leave quarantine ({reason or 'no reason given'})",
                          data={"op": "start"})
        return None

    def _deletions_held_back(self, job_id: str) -> Change:
        """Entra's accidental-deletions prevention stopped the job (quarantine reason TooManyDeletes): starting it
        would clear the quarantine, and the deletions would go through unreviewed. A decision for a person, not
        apply: a manual step (apply stops there, exit 1) until the quarantine is gone."""
        where = f"Entra admin center > Enterprise applications > {self.app_label} > Provisioning"
        steps = "\n".join([
            f"1. {where} > Provisioning logs: filter on the Delete and Disable actions to see what Entra held back.",
            "2. If the deletions are wanted: allow them (the provisioning page's Allow deletes; Graph: POST "
            f".../synchronization/jobs/{job_id}/restart with resetScope ForceDeletes).",
            "3. If not: fix the assignments or the scope that removed those users, then Restart provisioning.",
            "4. Re-run 'astro-scim apply --idp azure'.",
        ])
        return Change(Action.MANUAL, "azure.job_state", job_id, before="Quarantine",
                      detail="Entra held back more deletions than its accidental-deletion threshold allows "
                             "(quarantine TooManyDeletes): review them; apply does not start the job over them",
                      data={"op": "review_deletes", "steps": steps})

    async def _recheck_manual(self, t: Tenant, ctx: _Applying, change: Change) -> None:
        if change.data.get("op") == "review_deletes":
            job = await self.tenant.find_job(str((await self._sp(ctx))["id"]))
            status = (job or {}).get("status") or {}
            reason = str((status.get("quarantine") or {}).get("reason") or "")
            if str(status.get("code") or "").lower() != "quarantine" or reason.lower() != TOO_MANY_DELETES.lower():
                return  # someone reviewed the deletions since the plan was made
        await super()._recheck_manual(t, ctx, change)

    # --- apply -------------------------------------------------------------------------------------------

    async def _begin_apply(self, t: Tenant, plan: Plan) -> _Applying:
        return _Applying()

    async def _apply_change(self, t: Tenant, ctx: _Applying, change: Change) -> None:
        handler = {
            "azure.app": self._apply_app,
            "azure.assignment": self._apply_assignment,
            "azure.job": self._apply_job,
            "azure.secrets": self._apply_secrets,
            "azure.schema": self._apply_schema,
            "azure.job_state": self._apply_job_state,
        }.get(change.resource)
        if handler is None:
            await super()._apply_change(t, ctx, change)  # refuses it
            return
        await handler(ctx, change)

    async def _sp(self, ctx: _Applying) -> Any:
        if ctx.sp is None:
            ctx.sp = await self._require_sp()
        return ctx.sp

    async def _job(self, ctx: _Applying) -> Any:
        if ctx.job is None:
            ctx.job = await self._require_job(await self._sp(ctx))
        return ctx.job

    async def _apply_app(self, ctx: _Applying, change: Change) -> None:
        sp, created = await self.tenant.ensure_service_principal(self.app_label)
        ctx.sp, ctx.fresh_app = sp, created
        if created:
            try:
                await self.tenant.wait_until_visible(str(sp["id"]))
            except RemoteError as exc:
                # The app exists: this change is done. The next ones retry Entra's propagation themselves (and
                # stop, saying so, if it lasts), so a long replication does not report the app "not applied".
                log.warning("azure: the new app %s is not visible to the synchronization service yet (%s); "
                            "going on", sp["id"], exc.message)

    async def _apply_assignment(self, ctx: _Applying, change: Change) -> None:
        await self.tenant.assign(await self._sp(ctx), change.data["group_id"], fresh=ctx.fresh_app)

    async def _apply_job(self, ctx: _Applying, change: Change) -> None:
        sp = await self._sp(ctx)
        ctx.job = await self.tenant.ensure_job(str(sp["id"]), fresh=ctx.fresh_app)

    async def _apply_secrets(self, ctx: _Applying, change: Change) -> None:
        sp = await self._sp(ctx)
        values = self._desired_secrets()
        saved = await self.tenant.read_secrets(str(sp["id"])) or {}
        # PUT replaces every secret: keep settings we do not own (e.g. notification e-mail), not masked values.
        keep = {k: v for k, v in saved.items()
                if k not in values and unmasked(v) and k in _SECRET_KEYS}
        job = ctx.job or await self.tenant.find_job(str(sp["id"]))
        if job is not None:
            # Test the new credentials before saving them (validateCredentials takes them in its body and saves
            # nothing): a URL or token Astro refuses must not replace saved ones that work.
            ctx.job = job
            try:
                await self._validate(sp, job)
            except RemoteError as exc:
                exc.message += "; nothing was saved: Entra keeps its current Tenant URL and Secret Token"
                raise
        try:
            await self.tenant.put_secrets(str(sp["id"]), {**keep, **values})
        except RemoteError as exc:
            if exc.status is not None:
                raise  # Graph answered with an error: nothing was saved
            # No answer (retried): Entra may have saved them before the connection dropped. Its saved Tenant URL
            # tells, when it changes; the Secret Token reads back masked.
            try:
                now = await self.tenant.read_secrets(str(sp["id"])) or {}
            except RemoteError:
                now = {}
            url = values.get("BaseAddress")
            if not (url and now.get("BaseAddress") == url and saved.get("BaseAddress") != url):
                exc.message += ("; Entra's answer was lost: it may or may not hold the new Tenant URL and Secret "
                                "Token ('astro-scim plan --idp azure' shows which)")
                raise
            log.info("azure: the secrets' save answer was lost, but Entra holds the new Tenant URL: saved")
        if job is None:
            return  # nothing to test with yet: starting the job tests them first (_apply_job_state)
        # The read-back: Entra's own test of what it now holds (useSavedCredentials).
        try:
            await self.tenant.validate_credentials(str(sp["id"]), str(job["id"]), None)
        except RemoteError as exc:
            raise WrittenButFailing(
                change, f"azure: saved the Tenant URL {self.astro.scim_url} and astro.token, but Entra's test of "
                f"its saved credentials then failed: {exc}",
                hint="re-run 'astro-scim test-connection --idp azure'; if it still fails, check astro.scim_url and "
                     "astro.token, then re-run apply") from exc
        ctx.validated = True

    async def _apply_schema(self, ctx: _Applying, change: Change) -> None:
        if ctx.schema_done:
            return  # one PUT carries every attribute mapping change of the plan
        sp = await self._sp(ctx)
        job = await self._job(ctx)
        schema = await self.tenant.get_schema(str(sp["id"]), str(job["id"]))
        merged, diffs = azure_schema.merge(schema, self.mapping)
        if diffs:
            await self.tenant.put_schema(str(sp["id"]), str(job["id"]), merged)
        ctx.schema_done = True

    async def _apply_job_state(self, ctx: _Applying, change: Change) -> None:
        sp = await self._sp(ctx)
        job = await self._job(ctx)
        if change.data.get("op") == "pause":
            await self.tenant.pause(str(sp["id"]), str(job["id"]))
            return
        if not ctx.validated:
            await self._validate(sp, job)  # never start a job into quarantine
        await self.tenant.start(str(sp["id"]), str(job["id"]))


def sync_all(saved: dict[str, str]) -> bool:
    """The saved scope is "Sync all users and groups" (SyncAll true; absent is Entra's default, assigned only)."""
    return saved.get("SyncAll", "").strip().lower() == "true"


_SECRET_KEYS = frozenset({
    "SyncNotificationSettings", "SyncAll", "SkipOutOfScopeDeletions", "HardDeletesEnabled",
    "SynchronizationSchedule", "UpdateKeyOnSoftDelete", "TestReferences",
})


__all__ = ["AzureProvider", "load_azure_mapping", "is_guid"]
