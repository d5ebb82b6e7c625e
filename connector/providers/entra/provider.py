"""Microsoft Entra ID provider: the enterprise app, its assignments, secrets, job, schema and job state.

plan() reads and never writes. apply() re-reads what it needs as it goes, so it is idempotent and a retried step
never duplicates an object. Graph calls live in azure_tenant.Tenant; the schema merge is azure_schema (pure).

Secrets cannot be read back (Graph masks SecretToken), so plan decides like this:
  - no secrets saved, or BaseAddress differs from the configured Astro SCIM URL -> change;
  - otherwise ask Entra whether the SAVED token works (validateCredentials with useSavedCredentials=true, the
    portal's "Test connection"; a POST that changes nothing) -> change when Astro refuses it.
  A rotated Astro token that still works is not detected; `apply` always validates the configured one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from connector.config.load import AstroConfig, AzureConfig, ProjectConfig
from connector.errors import ConfigError, NotFound, RemoteError
from connector.mapping.model import MappingFile, Severity
from connector.plan.model import Action, Change, Plan
from connector.providers.base import Check, Progress
from connector.providers.entra import schema as azure_schema
from connector.providers.entra.client import GraphClient
from connector.providers.entra.ondemand import (
    OnDemandResult,
    SlidingWindow,
    group_subject,
    member_chunks,
    parse_response,
    user_subject,
)
from connector.providers.entra.tenant import NON_GALLERY_TEMPLATE, Tenant, is_guid, odata_quote
from connector.providers.entra.view import (
    compile_mappings,
    idp_group,
    idp_user,
    user_select,
)
from connector.support.packaged import default_mapping
from connector.support.suggest import closest
from connector.views import IdpIssue, IdpView

log = logging.getLogger("connector.azure")
T = TypeVar("T")

NEVER = "0001-01-01"  # Graph's "not yet" timestamp prefix
MASK_CHARS = frozenset("*")


def load_azure_mapping(path: Path | None) -> MappingFile:
    """The azure mapping file, checked: structural errors and unparsable expressions stop here with file:line."""
    from connector.mapping.expr import entra as entra_expr
    from connector.mapping.load import load_mapping

    path = path or default_mapping("azure")
    mapping, findings = load_mapping(path)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if mapping is None or errors:
        first = errors[0] if errors else None
        raise ConfigError(
            f"the mapping file has {len(errors) or 1} error(s)" + (f"; first: {first.message}" if first else ""),
            location=first.location if first else None,
            hint=f"run 'astro-scim validate {path}'",
        )
    if mapping.idp != "azure":
        raise ConfigError(f"azure.mapping points to a mapping for idp {mapping.idp!r}", location=mapping.location,
                          hint="use a mapping file with 'idp: azure'")
    for m in [*mapping.users, *mapping.groups]:
        try:
            entra_expr.parse(m.source or "")
        except entra_expr.ExpressionError as exc:
            raise ConfigError(f"{m.target}: {exc.message}", location=m.location, hint=exc.hint) from None
    return mapping


@dataclass
class _Applying:
    """What apply learned so far (ids of objects it found or made)."""

    sp: Any = None
    fresh_app: bool = False
    job: Any = None
    schema_done: bool = False
    validated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class AzureProvider:
    name = "azure"

    def __init__(self, cfg: ProjectConfig, *, pause: bool = False) -> None:
        if cfg.azure is None:
            raise ConfigError("the config has no 'azure' section")
        self.cfg = cfg
        self.az: AzureConfig = cfg.azure
        self.pause = pause
        self.graph = GraphClient(self.az)
        self.tenant = Tenant(self.graph)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # one call at a time on our loop, whichever thread calls (drift uses a pool)
        self._mapping: MappingFile | None = None
        # provisionOnDemand's limit is per app: one window for every call this provider makes.
        self.window = SlidingWindow()

    # --- plumbing ----------------------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """One sync entry point per public method; the provider keeps one event loop for its HTTP client."""
        with self._lock:
            return self._run_locked(coro)

    def _run_locked(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        loop = self._loop
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return loop.run_until_complete(coro)
        # Called from async code (e.g. a concurrent drift run): drive our loop from a worker thread.
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="azure")
        return self._pool.submit(loop.run_until_complete, coro).result()

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._loop is not None:
            loop, self._loop = self._loop, None
            if self._pool is not None:
                self._pool.submit(loop.run_until_complete, self.graph.aclose()).result()
                self._pool.shutdown()
                self._pool = None
            else:
                loop.run_until_complete(self.graph.aclose())
            loop.close()

    @property
    def mapping(self) -> MappingFile:
        if self._mapping is None:
            self._mapping = load_azure_mapping(self.az.mapping)
        return self._mapping

    @property
    def astro(self) -> AstroConfig:
        return self.cfg.astro_for("azure")

    @property
    def app_label(self) -> str:
        return self.az.app_display_name or self.az.app_id or "Astro"

    def _desired_secrets(self) -> dict[str, str]:
        # SyncAll=false: only assigned users and groups are in scope (the portal's "Sync only assigned").
        return {"BaseAddress": self.astro.scim_url, "SecretToken": self.astro.token.reveal(), "SyncAll": "false"}

    async def _find_sp(self) -> Any | None:
        return await self.tenant.find_service_principal(display_name=self.az.app_display_name, app_id=self.az.app_id)

    async def _require_sp(self) -> Any:
        sp = await self._find_sp()
        if sp is None:
            raise NotFound(f"no enterprise app {self.app_label!r} in the tenant", hint=await self._missing_app_hint())
        return sp

    async def _missing_app_hint(self) -> str:
        """What to do about an app that is not in the tenant: the closest name there (among one page of apps
        whose name starts like it: a tenant can hold thousands), else create it."""
        create = "run 'astro-scim apply --idp azure' to create it"
        name = self.az.app_display_name
        if not name:
            return create
        try:
            sps = await self.tenant.list_service_principals(
                filter=f"startswith(displayName,{odata_quote(name[:3])})", top=999)
        except RemoteError:
            return create
        match = closest(name, [str(sp.get("displayName") or "") for sp in sps])
        return f"did you mean {match!r} (azure.app.display_name)? Otherwise {create}" if match else create

    async def _require_job(self, sp: Any) -> Any:
        job = await self.tenant.find_job(str(sp["id"]))
        if job is None:
            raise NotFound(f"the app {self.app_label!r} has no provisioning job",
                           hint="run 'astro-scim apply --idp azure' to create it")
        return job

    # --- plan --------------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        return self._run(self._plan())

    async def _plan(self) -> Plan:
        plan = Plan("azure")
        add = plan.changes.append
        mapping = self.mapping
        sp = await self._find_sp()
        sp_id = str(sp["id"]) if sp is not None else None
        if sp is None:
            if self.az.app_id and not self.az.app_display_name:
                raise NotFound(f"no enterprise app with appId {self.az.app_id}",
                               hint="set azure.app.display_name instead to have it created")
            add(Change(Action.CREATE, "azure.app", self.app_label,
                       detail=f"instantiate the non-gallery app template {NON_GALLERY_TEMPLATE}"))

        assigned = {str(a.get("principalId")) for a in await self.tenant.assignments(sp_id)} if sp_id else set()
        for name in self.az.assign_groups:
            group = await self.tenant.find_group(name)
            if str(group["id"]) not in assigned:
                add(Change(Action.CREATE, "azure.assignment", str(group.get("displayName") or name),
                           detail="assign the group to the app (role User)", data={"group_id": str(group["id"])}))

        job = await self.tenant.find_job(sp_id) if sp_id else None
        if job is None:
            add(Change(Action.CREATE, "azure.job", "scim", detail="create the provisioning job (templateId scim)"))

        secrets_change = await self._plan_secrets(sp_id, job)
        if secrets_change is not None:
            add(secrets_change)

        plan.changes.extend(await self._plan_schema(sp_id, job, mapping))

        state_change = self._plan_job_state(job)
        if state_change is not None:
            add(state_change)
        return plan

    async def _plan_secrets(self, sp_id: str | None, job: Any) -> Change | None:
        url = self.astro.scim_url
        saved = await self.tenant.read_secrets(sp_id) if sp_id else {}
        if not saved or not saved.get("BaseAddress"):
            return Change(Action.CREATE, "azure.secrets", "BaseAddress, SecretToken", after=url,
                          detail=f"set the Tenant URL to {url} and the Secret Token to astro.token")
        if saved.get("BaseAddress", "").rstrip("/") != url.rstrip("/"):
            return Change(Action.UPDATE, "azure.secrets", "BaseAddress, SecretToken", before=saved["BaseAddress"],
                          after=url, detail=f"Tenant URL {saved['BaseAddress']} -> {url}; Secret Token = astro.token")
        token = saved.get("SecretToken", "")
        if token and not set(token) <= MASK_CHARS:
            # The service echoed a real value: compare it (never print it).
            if token != self.astro.token.reveal():
                return Change(Action.UPDATE, "azure.secrets", "SecretToken",
                              detail="the saved Secret Token differs from astro.token")
            return None
        if job is None:
            return Change(Action.UPDATE, "azure.secrets", "SecretToken",
                          detail="the saved Secret Token cannot be checked before the job exists; set astro.token")
        try:
            await self.tenant.validate_credentials(str(sp_id), str(job["id"]), None)
        except RemoteError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 429):
                return Change(Action.UPDATE, "azure.secrets", "SecretToken",
                              detail=f"Astro refuses the saved Secret Token ({exc.message}); set astro.token")
            raise
        return None

    async def _current_schema(self, sp_id: str, job: Any) -> dict[str, Any] | None:
        if job is not None:
            return await self.tenant.get_schema(sp_id, str(job["id"]))
        for tpl in await self.tenant.templates(sp_id):
            if str(tpl.get("id", "")).lower() == "scim" or str(tpl.get("factoryTag", "")).lower() == "scim":
                schema = tpl.get("schema")
                return schema if isinstance(schema, dict) and schema.get("synchronizationRules") else None
        return None

    async def _plan_schema(self, sp_id: str | None, job: Any, mapping: MappingFile) -> list[Change]:
        n = len(mapping.users) + len(mapping.groups)
        schema = await self._current_schema(sp_id, job) if sp_id else None
        if schema is None:
            return [Change(Action.UPDATE, "azure.schema", "attribute mappings",
                           detail=f"apply the {n} attribute mappings of {Path(mapping.file).name} "
                                  "(the diff is shown once the job exists)")]
        _merged, diffs = azure_schema.merge(schema, mapping)
        return [
            Change(Action.CREATE if d.before is None else Action.UPDATE, "azure.schema", d.key,
                   before=d.before, after=d.after, detail=d.describe())
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
            return Change(Action.RUN, "azure.job_state", str(job["id"]), before="Quarantine", after="Active",
                          detail=f"start the job to leave quarantine ({reason or 'no reason given'})",
                          data={"op": "start"})
        return None

    # --- apply -------------------------------------------------------------------------------------------

    def apply(self, plan: Plan, progress: Progress | None = None) -> int:
        return self._run(self._apply(plan, progress))

    async def _apply(self, plan: Plan, progress: Progress | None) -> int:
        ctx = _Applying()
        done = 0
        for change in plan.changes:
            handler = {
                "azure.app": self._apply_app,
                "azure.assignment": self._apply_assignment,
                "azure.job": self._apply_job,
                "azure.secrets": self._apply_secrets,
                "azure.schema": self._apply_schema,
                "azure.job_state": self._apply_job_state,
            }.get(change.resource)
            if handler is None:
                raise ConfigError(f"the azure provider cannot apply {change.resource}")
            await handler(ctx, change)
            done += 1
            if progress is not None:
                progress(change)
        return done

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
            await self.tenant.wait_until_visible(str(sp["id"]))

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
                if k not in values and v and not set(v) <= MASK_CHARS and k in _SECRET_KEYS}
        await self.tenant.put_secrets(str(sp["id"]), {**keep, **values})
        job = ctx.job or await self.tenant.find_job(str(sp["id"]))
        if job is not None:
            ctx.job = job
            await self._validate(sp, job)
            ctx.validated = True

    async def _validate(self, sp: Any, job: Any) -> None:
        """The seed's "Test connection": Entra calls Astro with the configured URL and token."""
        creds = {"BaseAddress": self.astro.scim_url, "SecretToken": self.astro.token.reveal()}
        try:
            await self.tenant.validate_credentials(str(sp["id"]), str(job["id"]), creds)
        except RemoteError as exc:
            raise RemoteError(
                f"Test connection failed: Entra could not use the Astro SCIM endpoint ({exc.message})",
                service="graph", endpoint="validateCredentials", status=exc.status, code=exc.code,
                hint="check astro.scim_url and that astro.token is an Organization API token with the "
                     "Organization Owner role",
            ) from None

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

    # --- test-connection and status ----------------------------------------------------------------------

    def test_connection(self) -> list[Check]:
        return self._run(self._test_connection())

    async def _test_connection(self) -> list[Check]:
        from connector.errors import AuthError

        checks: list[Check] = []
        try:
            await self.tenant.list_service_principals(top=1)
            checks.append(Check("Graph credential", True, f"{self.az.credential.kind} credential accepted by "
                                                          f"{self.az.graph_url}"))
        except RemoteError as exc:
            checks.append(Check("Graph credential", False, str(exc), exc.hint))
            return checks
        try:
            sp = await self._find_sp()
        except RemoteError as exc:
            checks.append(Check(f"app {self.app_label!r}", False, str(exc), exc.hint))
            return checks
        if sp is None:
            checks.append(Check(f"app {self.app_label!r}", False, "not found in the tenant",
                                await self._missing_app_hint()))
        else:
            checks.append(Check(f"app {self.app_label!r}", True, f"service principal {sp['id']}"))

        async def probe(name: str, op: Coroutine[Any, Any, Any]) -> Any:
            try:
                result = await op
                checks.append(Check(name, True, "granted"))
                return result
            except AuthError as exc:
                checks.append(Check(name, False, str(exc), exc.hint))
            except NotFound as exc:
                checks.append(Check(name, False, str(exc), exc.hint))
            except RemoteError as exc:
                checks.append(Check(name, False, str(exc), exc.hint))
            return None

        job = None
        if sp is not None:
            jobs = await probe("permission Synchronization.ReadWrite.All", self.tenant.jobs(str(sp["id"])))
            job = next(iter(jobs or []), None)
            await probe("permission AppRoleAssignment.ReadWrite.All", self.tenant.assignments(str(sp["id"])))
            await probe("permission AuditLog.Read.All", self.tenant.provisioning_log(str(sp["id"]), top=1))
        for name in self.az.assign_groups:
            group = await probe(f"group {name!r}", self.tenant.find_group(name))
            if group is not None:
                checks[-1].detail = f"found ({group['id']})"
        if sp is None:
            return checks
        if job is None:
            checks.append(Check("Astro SCIM (validateCredentials)", False, "no provisioning job to test with",
                                "run 'astro-scim apply --idp azure' first"))
            return checks
        try:
            await self._validate(sp, job)
            checks.append(Check("Astro SCIM (validateCredentials)", True,
                                f"Entra reached {self.astro.scim_url} with astro.token"))
        except RemoteError as exc:
            checks.append(Check("Astro SCIM (validateCredentials)", False, str(exc), exc.hint))
        return checks

    def status(self) -> list[Check]:
        return self._run(self._status())

    async def _status(self) -> list[Check]:
        sp = await self._require_sp()
        job = await self.tenant.find_job(str(sp["id"]))
        checks = [Check(f"app {self.app_label!r}", True, f"service principal {sp['id']}")]
        if job is None:
            checks.append(Check("provisioning job", False, "none", "run 'astro-scim apply --idp azure'"))
            return checks
        job = await self.tenant.get_job(str(sp["id"]), str(job["id"]))
        state = str((job.get("schedule") or {}).get("state") or "unknown")
        ok_state: bool | None = True if state == "Active" else None if state == "Paused" else False
        checks.append(Check("job state", ok_state, f"{state} ({job['id']})",
                            "run 'astro-scim apply --idp azure' to start it" if ok_state is False else None))
        st: dict[str, Any] = job.get("status") or {}
        code = str(st.get("code") or "")
        q = st.get("quarantine") or {}
        if code == "Quarantine":
            detail = (f"{q.get('reason') or 'Unknown'} since {q.get('currentBegan') or '?'}; "
                      f"next attempt {q.get('nextAttempt') or '?'}")
            err = q.get("error") or {}
            if err.get("code") or err.get("message"):
                detail += f"; {err.get('code') or ''}: {' '.join(str(err.get('message') or '').split())}"
            checks.append(Check("quarantine", False, detail,
                                "fix the cause (often the Astro token), then 'astro-scim apply' restarts the job"))
        else:
            checks.append(Check("quarantine", True, f"not quarantined (status {code or 'unknown'})"))
        last = st.get("lastExecution") or {}
        if last.get("timeBegan") and not str(last["timeBegan"]).startswith(NEVER):
            run_state = str(last.get("state") or "")
            detail = (f"{run_state} at {last.get('timeEnded') or last['timeBegan']}: "
                      f"{last.get('countExported') or 0} exported, {last.get('countImported') or 0} imported, "
                      f"{last.get('countEntitled') or 0} in scope")
            err = last.get("error") or {}
            if err.get("code") or err.get("message"):
                detail += f"; error {err.get('code')}: {' '.join(str(err.get('message') or '').split())}"
            checks.append(Check("last run", run_state == "Succeeded", detail))
        else:
            checks.append(Check("last run", None, "the job has not run yet"))
        steady = str(st.get("steadyStateLastAchievedTime") or "")
        checks.append(Check("steady state", None, f"last reached {steady}" if steady and not steady.startswith(NEVER)
                            else "not reached yet"))
        try:
            entries = await self.tenant.provisioning_log(str(sp["id"]), top=50)
        except RemoteError as exc:
            checks.append(Check("provisioning log", False, str(exc), exc.hint))
            return checks
        failed = [e for e in entries if _log_status(e) == "failure"]
        if failed:
            shown = "; ".join(_log_line(e) for e in failed[:3])
            checks.append(Check("provisioning log", False, f"{len(failed)} recent failure(s): {shown}",
                                "fix the cause, then 'astro-scim provision --user/--group' retries one subject"))
        else:
            checks.append(Check("provisioning log", True, f"no failures in the last {len(entries)} entries"))
        return checks

    # --- provision on demand -----------------------------------------------------------------------------

    def provision(self, *, user: str | None = None, group: str | None = None) -> list[OnDemandResult]:
        return self._run(self._provision_on_demand([user] if user else [], [group] if group else []))

    def provision_on_demand(self, *, users: list[str] | None = None, groups: list[str] | None = None,
                            ) -> list[OnDemandResult]:
        """For the drift fixer: users by userPrincipalName or id, groups by name or id."""
        return self._run(self._provision_on_demand(users or [], groups or []))

    async def _provision_on_demand(self, users: list[str], groups: list[str]) -> list[OnDemandResult]:
        sp = await self._require_sp()
        job = await self._require_job(sp)
        sp_id, job_id = str(sp["id"]), str(job["id"])
        rule = azure_schema.rule_id(await self.tenant.get_schema(sp_id, job_id))
        results: list[OnDemandResult] = []
        for u in users:
            person = await self.tenant.find_user(u, ["id", "userPrincipalName", "displayName"])
            results.extend(await self._on_demand_call(sp_id, job_id, rule, user_subject(str(person["id"])),
                                                      str(person.get("userPrincipalName") or u), "User"))
        for g in groups:
            grp = await self.tenant.find_group(g)
            members = await self.tenant.group_members(str(grp["id"]), ["id", "userPrincipalName"])
            for chunk in member_chunks([str(m["id"]) for m in members]):
                results.extend(await self._on_demand_call(sp_id, job_id, rule, group_subject(str(grp["id"]), chunk),
                                                          str(grp.get("displayName") or g), "Group"))
        return results

    async def _on_demand_call(self, sp_id: str, job_id: str, rule: str, subject: dict[str, Any], label: str,
                              object_type: str) -> list[OnDemandResult]:
        from connector.support.http import is_retryable

        def retry_on(exc: BaseException) -> bool:
            if isinstance(exc, RemoteError) and exc.status == 429:
                self.window.penalize()  # the service's window is full whatever ours says
            return is_retryable(exc)

        await self.window.acquire()
        pair = await self.tenant.provision_on_demand(sp_id, job_id, rule, subject, retry_on=retry_on)
        return parse_response(pair.get("key"), pair.get("value"), subject=label,
                              object_type=object_type)

    # --- the IdP view for drift --------------------------------------------------------------------------

    def read_view(self) -> IdpView:
        return self._run(self._read_view())

    async def _read_view(self) -> IdpView:
        mapping = self.mapping
        sp = await self._require_sp()
        sp_id = str(sp["id"])
        select = user_select(mapping)
        user_maps = compile_mappings(mapping.users)
        group_maps = compile_mappings(mapping.groups)
        view = IdpView("azure")
        assignments = await self.tenant.assignments(sp_id)
        profiles: dict[str, dict[str, Any]] = {}
        sem = asyncio.Semaphore(8)

        async def members_of(a: Any) -> tuple[Any, list[dict[str, Any]]]:
            async with sem:
                return a, await self.tenant.group_members(str(a.get("principalId")), select)

        async def direct_user(a: Any) -> dict[str, Any] | None:
            async with sem:
                try:
                    return await self.tenant.get_user(str(a.get("principalId")), select)
                except NotFound:
                    return None

        group_assignments = [a for a in assignments if str(a.get("principalType") or "").lower() == "group"]
        user_assignments = [a for a in assignments if str(a.get("principalType") or "").lower() == "user"]
        group_results = await asyncio.gather(*(members_of(a) for a in group_assignments))
        user_results = await asyncio.gather(*(direct_user(a) for a in user_assignments))
        for profile in user_results:
            if profile:
                profiles[str(profile["id"])] = profile
        seen_groups: set[str] = set()
        mapped: dict[str, Any] = {}  # user id -> IdpUser | None, each profile evaluated once

        def user_of(profile: dict[str, Any]) -> Any:
            uid = str(profile.get("id"))
            if uid not in mapped:
                profiles.setdefault(uid, profile)
                mapped[uid] = idp_user(profile, user_maps)
            return mapped[uid]

        for a, members in group_results:
            gid = str(a.get("principalId"))
            if gid in seen_groups:
                continue
            seen_groups.add(gid)
            names = {u.user_name for u in map(user_of, members) if u is not None and u.active}
            view.groups.append(idp_group({"id": gid, "displayName": a.get("principalDisplayName")}, group_maps, names))
        for profile in list(profiles.values()):
            u = user_of(profile)
            if u is not None:
                view.users.append(u)
        view.issues.extend(await self._issues(sp))
        return view

    async def _issues(self, sp: Any) -> list[IdpIssue]:
        issues: list[IdpIssue] = []
        job = await self.tenant.find_job(str(sp["id"]))
        if job is not None:
            job = await self.tenant.get_job(str(sp["id"]), str(job["id"]))
            st = job.get("status") or {}
            if st.get("code") == "Quarantine":
                reason = (st.get("quarantine") or {}).get("reason") or "Unknown"
                issues.append(IdpIssue("entra.quarantine", self.app_label,
                                       f"provisioning job {job['id']} is in quarantine ({reason})"))
        for e in await self.tenant.provisioning_log(str(sp["id"]), top=50):
            if _log_status(e) == "failure":
                issues.append(IdpIssue("entra.failed_export", _log_subject(e), _log_error(e)))
        return issues


_SECRET_KEYS = frozenset({
    "SyncNotificationSettings", "SyncAll", "SkipOutOfScopeDeletions", "HardDeletesEnabled",
    "SynchronizationSchedule", "UpdateKeyOnSoftDelete", "TestReferences",
})


def _log_status(entry: dict[str, Any]) -> str:
    return str((entry.get("provisioningStatusInfo") or {}).get("status") or "").lower()


def _log_error(entry: dict[str, Any]) -> str:
    err = (entry.get("provisioningStatusInfo") or {}).get("errorInformation") or {}
    code = str(err.get("errorCode") or "")
    reason = " ".join(str(err.get("reason") or "").split())
    return f"{code}: {reason}" if code and reason else code or reason or "failed"


def _log_subject(entry: dict[str, Any]) -> str:
    for key in ("sourceIdentity", "targetIdentity"):
        ident = entry.get(key) or {}
        if ident.get("displayName") or ident.get("id"):
            return str(ident.get("displayName") or ident.get("id"))
    return str(entry.get("id") or "")


def _log_line(entry: dict[str, Any]) -> str:
    action = entry.get("provisioningAction") or "action?"
    return f"{_log_subject(entry)} ({action}) {_log_error(entry)}"


__all__ = ["AzureProvider", "load_azure_mapping", "is_guid"]
