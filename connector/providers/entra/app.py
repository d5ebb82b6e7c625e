"""The Entra enterprise app and its provisioning job, as every Entra job finds them; and the event loop each call
runs on. Each job (plan/apply in provider.py, health.py, provision.py, view.py) is a class on top of
`EntraApp`; `AzureProvider` composes them. Graph calls live in tenant.Tenant.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from connector.config.load import AstroConfig, AzureConfig, ProjectConfig
from connector.errors import ConfigError, Location, NotFound, RemoteError
from connector.mapping.model import MappingFile
from connector.providers.entra.client import GraphClient, GraphCredential
from connector.providers.entra.ondemand import SlidingWindow
from connector.providers.entra.reads import GraphReader
from connector.providers.entra.tenant import Tenant, odata_quote
from connector.support.packaged import default_mapping
from connector.support.suggest import closest

log = logging.getLogger("connector.azure")
CLOSE_SECONDS = 30.0  # how long close() waits for the loop's calls to cancel and the client to close
T = TypeVar("T")

NEVER = "0001-01-01"  # Graph's "not yet" timestamp prefix
MASK_CHARS = frozenset("*")


def unmasked(value: str) -> bool:
    """Whether a saved secret's value came back in clear (Graph masks them: only MASK_CHARS), not empty."""
    return bool(value) and not set(value) <= MASK_CHARS


def load_azure_mapping(path: Path | None, named_at: Location | None = None) -> MappingFile:
    """The azure mapping file, checked: structural errors and unparsable expressions stop here with file:line;
    `named_at` is where the config names it (for a file that cannot be read at all)."""
    from connector.mapping.validate import checked_mapping

    # Everything `validate` checks (duplicate targets and matching precedences, SCIM paths...), not only what
    # loading needs: plan must not push a mapping validate rejects.
    mapping = checked_mapping(path or default_mapping("azure"), named_at=named_at if path is not None else None)
    if mapping.idp != "azure":
        raise ConfigError(f"azure.mapping points to a mapping for idp {mapping.idp!r}", location=mapping.location,
                          hint="use a mapping file with 'idp: azure'")
    return mapping



CREATE_APP = "run 'astro-scim apply --idp azure' to create it"


def misspelt_app_hint(match: str) -> str:
    """The fix when the tenant has no app of the configured name but one close to it (apply would make another)."""
    return f"did you mean {match!r} (azure.app.display_name)? Otherwise {CREATE_APP}"

class EntraApp:
    name = "azure"

    def __init__(self, cfg: ProjectConfig, *, pause: bool = False) -> None:
        if cfg.azure is None:
            raise ConfigError("the config has no 'azure' section")
        self.cfg = cfg
        self.az: AzureConfig = cfg.azure
        self.pause = pause
        # One credential for both Graph clients: the reader (every read, no SDK) and the SDK's (writes, built on
        # the first write only).
        self.credential = GraphCredential(self.az)
        self.graph = GraphClient(self.az, credential=self.credential)
        self.reads = GraphReader(self.az, self.credential, policy=self.graph.policy)
        self.tenant = Tenant(self.graph, self.reads)
        # One event loop for the Graph client (its connections belong to it), run by a thread of its own so that
        # calls from several threads share it: drift's setup audit and its view read then run side by side on
        # the loop, not one after the other (the lock only guards starting and stopping it).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._mapping: MappingFile | None = None
        self._mapping_lock = threading.Lock()
        # provisionOnDemand's limit is per app: one window for every call this provider makes.
        self.window = SlidingWindow()

    # --- plumbing ----------------------------------------------------------------------------------------

    def _call(self, fn: Callable[[Tenant], Awaitable[T]]) -> T:
        async def run() -> T:
            return await fn(self.tenant)

        return self._run(run())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """One sync entry point per public method: `coro` runs on the provider's loop, the caller waits for it.

        Any thread may call, at the same time as others (their coroutines interleave on the one loop); the
        caller's context variables (the trail's recorder) go with the coroutine (call_soon_threadsafe copies
        them). A caller inside a running loop (its own) only blocks that loop while it waits, as before."""
        loop = self._started()
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError("a provider call made from its own event loop would wait for itself")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # interrupted while waiting (Ctrl-C): the coroutine does not run on unobserved
            raise

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="azure-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=CLOSE_SECONDS)
        except concurrent.futures.TimeoutError:
            log.warning("azure: the Graph client did not close within %ss; closing anyway", CLOSE_SECONDS)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    async def _shutdown(self) -> None:
        """On the provider's loop: cancel the calls still running (a thread waiting in _run then gets
        CancelledError instead of waiting for ever once the loop stops: a second Ctrl-C during drift's join),
        then close the Graph clients and their credential."""
        current = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        try:
            await self.reads.aclose()
            await self.graph.aclose()
        finally:
            self.credential.close()

    @property
    def mapping(self) -> MappingFile:
        # drift asks from three threads at once (the setup audit on the loop, the view's worker, the Astro read
        # for compared_paths): loaded once, the others wait for it.
        with self._mapping_lock:
            if self._mapping is None:
                doc = self.cfg.document
                self._mapping = load_azure_mapping(self.az.mapping,
                                                   doc.loc(("azure", "mapping")) if doc is not None else None)
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
        match = await self._closest_app_name()
        return misspelt_app_hint(match) if match else CREATE_APP

    async def _closest_app_name(self) -> str | None:
        """The app name in the tenant closest to the configured one, if any is close (a misspelt name)."""
        name = self.az.app_display_name
        if not name:
            return None
        try:
            sps = await self.tenant.list_service_principals(
                filter=f"startswith(displayName,{odata_quote(name[:3])})", top=999)
        except RemoteError:
            return None
        return closest(name, [str(sp.get("displayName") or "") for sp in sps])

    async def _require_job(self, sp: Any) -> Any:
        job = await self.tenant.find_job(str(sp["id"]))
        if job is None:
            raise NotFound(f"the app {self.app_label!r} has no provisioning job",
                           hint="run 'astro-scim apply --idp azure' to create it")
        return job

    async def _validate(self, sp: Any, job: Any) -> None:
        """The seed's "Test connection": Entra calls Astro with the configured URL and token."""
        creds = {"BaseAddress": self.astro.scim_url, "SecretToken": self.astro.token.reveal()}
        try:
            await self.tenant.validate_credentials(str(sp["id"]), str(job["id"]), creds)
        except RemoteError as exc:
            if exc.status != 400:
                # Graph's own failure (401/403: our credential or permission; 429/5xx; unreachable), not the
                # credential test's verdict on Astro (a 400 with the test's error): its own message and hint.
                raise
            raise RemoteError(
                f"Test connection failed: Entra could not use the Astro SCIM endpoint ({exc.message})",
                service="graph", endpoint="validateCredentials", status=exc.status, code=exc.code,
                hint="check astro.scim_url and that astro.token is an Organization API token with the "
                     "Organization Owner role",
            ) from exc


def log_status(entry: dict[str, Any]) -> str:
    return str((entry.get("provisioningStatusInfo") or {}).get("status") or "").lower()


def log_error(entry: dict[str, Any]) -> str:
    err = (entry.get("provisioningStatusInfo") or {}).get("errorInformation") or {}
    code = str(err.get("errorCode") or "")
    reason = " ".join(str(err.get("reason") or "").split())
    return f"{code}: {reason}" if code and reason else code or reason or "failed"


def log_subject(entry: dict[str, Any]) -> str:
    for key in ("sourceIdentity", "targetIdentity"):
        ident = entry.get(key) or {}
        if ident.get("displayName") or ident.get("id"):
            return str(ident.get("displayName") or ident.get("id"))
    return str(entry.get("id") or "")


def current_failures(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failures among provisioning log `entries` (newest first) that are each object's newest entry: a failure
    Entra has since exported (a later cycle, or provision on demand by `drift --fix`) is history. What drift
    reports and what status counts (they disagreed: status failed on a failure drift called history)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in entries:
        source = e.get("sourceIdentity") or {}
        key = (str(source.get("identityType") or ""), str(source.get("id") or log_subject(e)))
        if key in seen:
            continue
        seen.add(key)
        if log_status(e) == "failure":
            out.append(e)
    return out


def log_line(entry: dict[str, Any]) -> str:
    action = entry.get("provisioningAction") or "action?"
    return f"{log_subject(entry)} ({action}) {log_error(entry)}"

