"""Entra test-connection and status: the Graph credential, the app, the permissions the jobs need, the job's
state, quarantine, last run and recent provisioning failures, and Entra's own test of the Astro token."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from connector.errors import Ambiguous, AuthError, NotFound, RemoteError
from connector.providers.base import Check, astro_token_check
from connector.providers.entra.app import (
    NEVER,
    EntraApp,
    current_failures,
    log_line,
    log_status,
    misspelt_app_hint,
)
from connector.providers.entra.tenant import pick_job


class EntraHealth(EntraApp):
    """The Health capability."""

    def test_connection(self) -> list[Check]:
        return self._run(self._test_connection())

    async def _test_connection(self) -> list[Check]:
        # Ours (astro.token straight against Astro) whatever Graph answers; Entra's own test (validateCredentials)
        # needs the job.
        return [*await self._idp_checks(), await astro_token_check(self.astro)]

    async def _idp_checks(self) -> list[Check]:
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
            checks.append(await self._missing_app_check())
        else:
            checks.append(Check(f"app {self.app_label!r}", True, f"service principal {sp['id']}"))

        async def probe(name: str, op: Coroutine[Any, Any, Any]) -> Any:
            try:
                result = await op
                checks.append(Check(name, True, "granted"))
                return result
            except AuthError as exc:
                checks.append(Check(name, False, str(exc), exc.hint))
            except (NotFound, Ambiguous) as exc:
                checks.append(Check(name, False, str(exc), exc.hint))
            except RemoteError as exc:
                checks.append(Check(name, False, str(exc), exc.hint))
            return None

        job = None
        if sp is not None:
            jobs = await probe("permission Synchronization.ReadWrite.All", self.tenant.jobs(str(sp["id"])))
            job = pick_job(jobs or [])  # the SCIM job, as every other command picks it: not the first listed
            await probe("permission AppRoleAssignment.ReadWrite.All", self.tenant.assignments(str(sp["id"])))
            await probe("permission AuditLog.Read.All", self.tenant.provisioning_log(str(sp["id"]), top=1))
        for name in self.az.assign_groups:
            group = await probe(f"group {name!r}", self.tenant.find_group(name))
            if group is not None:
                checks[-1].detail = f"found ({group['id']})"
        if sp is None or job is None:
            # Before apply (it creates the app and its job): Entra's own test has nothing to run on. Information, as
            # Okta's provisioning not yet enabled is: not a failure, and never "ok" (nothing was verified).
            missing = "no app" if sp is None else "the app has no provisioning job"
            checks.append(Check("Astro SCIM (validateCredentials)", None,
                                f"not verified: not set up yet ({missing} for Entra to test the Tenant URL and token "
                                "with)", "run 'astro-scim apply --idp azure', then test-connection again"))
            return checks
        try:
            await self._validate(sp, job)
            checks.append(Check("Astro SCIM (validateCredentials)", True,
                                f"Entra reached {self.astro.scim_url} with astro.token"))
        except RemoteError as exc:
            checks.append(Check("Astro SCIM (validateCredentials)", False, str(exc), exc.hint))
        return checks

    async def _missing_app_check(self) -> Check:
        """No app of the configured name: before the first apply (which creates it) that is the state to expect,
        information with the next step; a name close to one in the tenant (a typo: apply would create a second
        app) or a configured app id (apply creates none by id) is a failure."""
        name = f"app {self.app_label!r}"
        if self.az.app_id:
            return Check(name, False, "not found in the tenant",
                         "check azure.app.app_id: apply creates an app by its display name, never by id")
        match = await self._closest_app_name()
        if match is not None:
            return Check(name, False, "not found in the tenant", misspelt_app_hint(match))
        return Check(name, None, "not set up yet: no enterprise app of that name in the tenant",
                     "run 'astro-scim apply --idp azure': it creates the app from the non-gallery template")

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
            hint = "fix the cause (often the Astro token), then 'astro-scim apply' restarts the job"
            if str(q.get("reason") or "").lower() == "toomanydeletes":
                # Accidental-deletions prevention: apply does not start the job over deletions nobody reviewed.
                hint = ("Entra held back deletions over its threshold: review them in the provisioning logs, then "
                        "allow them (Allow deletes) or fix the assignments; 'astro-scim plan' shows the steps")
            checks.append(Check("quarantine", False, detail, hint))
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
        failed = current_failures(entries)
        history = sum(1 for e in entries if log_status(e) == "failure") - len(failed)
        since = f" ({history} failure(s) since exported)" if history else ""
        if failed:
            shown = "; ".join(log_line(e) for e in failed[:3])
            checks.append(Check("provisioning log", False, f"{len(failed)} recent failure(s): {shown}{since}",
                                "fix the cause, then 'astro-scim provision --user/--group' retries one subject"))
        else:
            checks.append(Check("provisioning log", True,
                                f"no failure left in the last {len(entries)} entries{since}"))
        return checks

