"""`Sandbox`: emulated Okta, emulated Microsoft Graph and an Astro-like SCIM server, on loopback, in one process.

    with Sandbox(users=20, groups=4, seed=1) as sb:
        sb.write_config(tmp / "astro-scim.yaml")   # a project file that works as-is against this sandbox

Every service is a real HTTP server on 127.0.0.1 with an ephemeral port and a random token, so the connector is
exercised through the official SDKs exactly as against the real services. The sandbox is the test double: its
tokens are NOT registered for redaction (the connector registers what it reads; tests check that it does).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from connector.sandbox.astro.platform import AstroPlatform
from connector.sandbox.astro.scim import AstroScim
from connector.sandbox.faults import FaultConfig, FaultMiddleware, FaultRule, RequestLog
from connector.sandbox.graph.api import GraphEmulator
from connector.sandbox.okta.api import OktaEmulator
from connector.sandbox.seed import ASSIGNED_TEAM, SeedOrg, generate
from connector.sandbox.server import ServedApp
from connector.sandbox.snapshot import replacer
from connector.support.packaged import default_mapping

IDPS = ("okta", "azure")
# Token files written next to a config; `write_config` references them as `file:<name>`.
TOKEN_FILES = {"okta": "okta.token", "graph": "graph.token", "astro-okta": "astro-okta.token",
               "astro-azure": "astro-azure.token"}


@dataclass(frozen=True)
class AstroOrg:
    org_id: str
    scim_url: str
    token: str = field(repr=False)  # keep it out of assertion messages and logs


@dataclass(frozen=True)
class SandboxSnapshot:
    """`Sandbox.snapshot()`: the services' data, and the sandbox identity and addresses it was taken under."""

    identity: tuple[Any, ...]
    addresses: dict[str, str] = field(repr=False)  # URLs and tokens of the sandbox it was taken in
    okta: dict[str, Any] = field(repr=False)
    graph: dict[str, Any] = field(repr=False)
    astro: dict[str, Any] = field(repr=False)
    platform: dict[str, Any] = field(repr=False)


def _cuid(rng: random.Random) -> str:
    # Astro organization ids look like cuids; deterministic from the seed so configs are reproducible.
    return "cl" + "".join(rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(23))


@dataclass
class Sandbox:
    """Start with `with Sandbox(...) as sb:` (or `start()`/`stop()`); see the module docstring."""

    users: int = 20
    groups: int = 4
    seed: int = 1
    faults: FaultConfig = field(default_factory=FaultConfig)  # for the IdP emulators (Okta, Graph)
    astro_faults: FaultConfig = field(default_factory=FaultConfig)  # off by default
    org_name: str = "acme"
    # The emulated Astro organizations announce and keep only what Astro's setup page documents (the default:
    # a complete SCIM server). Either way, what an organization cannot keep is refused with the RFC's error.
    astro_documented_only: bool = False
    # SSO for Astro set up in both IdPs (the seed's first prerequisite), so a freshly applied sandbox audits
    # clean; False leaves it out (Okta's Astro apps without SAML, Entra's new apps without a sign-on mode).
    sso: bool = True

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.tenant_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self._org_ids = {idp: _cuid(rng) for idp in IDPS}
        self.okta_token = secrets.token_urlsafe(30)
        self.graph_token = secrets.token_urlsafe(30)
        self._astro_tokens = {idp: secrets.token_urlsafe(30) for idp in IDPS}
        self.seed_org: SeedOrg = generate(self.users, self.groups, self.seed)
        self.logs: dict[str, RequestLog] = {"okta": RequestLog(), "graph": RequestLog(), "astro": RequestLog()}
        self.okta: Any | None = None
        self.graph: Any | None = None
        self.astro = AstroScim()
        self.astro_platform = AstroPlatform(self.astro)  # Team roles (Platform API) under /v1, same Teams
        self._middleware: dict[str, FaultMiddleware] = {}
        self._served: dict[str, ServedApp] = {}
        self.okta_url: str | None = None
        self.graph_url: str | None = None
        self.astro_url = ""
        self.astro_orgs: dict[str, AstroOrg] = {}

    # -- lifecycle ----------------------------------------------------------------------------------------

    def _wrap(self, name: str, app: Any, emulator: Any, config: FaultConfig) -> FaultMiddleware:
        mw = FaultMiddleware(app, config, throttle=emulator.throttle_response,
                             server_error=emulator.server_error_response, log=self.logs[name])
        self._middleware[name] = mw
        return mw

    def _serve(self, name: str, app: Any) -> str:
        served = ServedApp(name, app)
        # Register before starting, so stop() closes the socket even if starting fails.
        self._served[name] = served
        served.start()
        return served.url

    def start(self) -> Sandbox:
        try:
            for idp in IDPS:
                self.astro.add_org(self._org_ids[idp], self._astro_tokens[idp],
                                   documented_only=self.astro_documented_only)
            self.astro_url = self._serve(
                "astro", self._wrap("astro", self.astro_platform.mount(self.astro.app), self.astro_platform,
                                    self.astro_faults)
            )
            self.astro.base_url = self.astro_url
            self.astro_orgs = {
                idp: AstroOrg(self._org_ids[idp], self.astro.scim_url(self._org_ids[idp]), self._astro_tokens[idp])
                for idp in IDPS
            }
            self.okta = OktaEmulator(self.okta_token, org_name=self.org_name)
            self.okta.load(self.seed_org)
            if not self.sso:
                for label in ("Astro", "Astro SCIM (custom)"):
                    self.okta.set_sign_on_mode(str(self.okta.app_by_label(label)["id"]), "AUTO_LOGIN")
            self.okta_url = self._serve("okta", self._wrap("okta", self.okta.app, self.okta, self.faults))
            self.graph = GraphEmulator(self.graph_token, tenant_id=self.tenant_id)
            self.graph.sso_mode_for_new_apps = "saml" if self.sso else None
            self.graph.load(self.seed_org)
            self.graph_url = self._serve(
                "graph", self._wrap("graph", self.graph.app, self.graph, self.faults)
            ) + "/v1.0"
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        served, self._served = self._served, {}
        # Each server's stop waits for its accept loop to notice (up to its poll interval): stopping them side by
        # side waits once instead of three times, on every sandbox a test starts.
        errors: list[BaseException] = []

        def stop_one(app: ServedApp) -> None:
            try:
                app.stop()
            except BaseException as exc:  # raised below, in the caller's thread, as before
                errors.append(exc)

        stoppers = [threading.Thread(target=stop_one, args=(app,), name=f"stop-{name}")
                    for name, app in served.items()]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        if errors:
            raise errors[0]

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> dict[str, str]:
        """Service name -> base URL of every server currently up."""
        return {name: app.url for name, app in self._served.items()}

    def fail(self, service: str, rule: FaultRule) -> FaultRule:
        """Fail the requests to `service` ("okta", "graph", "astro") that `rule` matches (faults.FaultRule)."""
        return self._middleware[service].fail(rule)

    def set_faults(self, config: FaultConfig, *, service: str | None = None) -> None:
        """Change fault rates live. service: "okta", "graph", "astro", "all", or None for both IdP emulators."""
        if service is None:
            names = ["okta", "graph"]
        elif service == "all":
            names = ["okta", "graph", "astro"]
        elif service in self.logs:
            names = [service]
        else:
            raise ValueError(f"unknown service {service!r}; one of okta, graph, astro, all")
        if "okta" in names:
            self.faults = config
        if "astro" in names:
            self.astro_faults = config
        for name in names:
            mw = self._middleware.get(name)
            if mw is not None:
                mw.config = config

    # -- snapshots --------------------------------------------------------------------------------------------

    def _identity(self) -> tuple[Any, ...]:
        # What a snapshot's data depends on besides URLs and tokens (which restore translates): the seed's ids.
        return (self.users, self.groups, self.seed, self.org_name, self.sso, self.astro_documented_only)

    def _addresses(self) -> dict[str, str]:
        graph = (self.graph_url or "").removesuffix("/v1.0")
        return {"okta_url": self.okta_url or "", "graph_url": graph, "astro_url": self.astro_url,
                "okta_token": self.okta_token, "graph_token": self.graph_token,
                **{f"astro_token_{idp}": token for idp, token in self._astro_tokens.items()}}

    def _settle(self) -> None:
        # A background Entra cycle writes to the job and Astro while it runs: a snapshot taken then would hold half
        # a cycle, and a restore under it would be overwritten by the rest.
        assert self.graph is not None
        if not self.graph.wait_for_cycles():
            raise RuntimeError("an Entra provisioning cycle is still running; snapshot and restore need it finished")

    def snapshot(self) -> SandboxSnapshot:
        """What the three services hold now (not their request logs, faults or rate windows), to `restore` into
        another running sandbox of the same seed: e.g. the state `apply --yes` left, for tests that start there."""
        if self.okta is None or self.graph is None:
            raise RuntimeError("the sandbox is not running")
        self._settle()
        return SandboxSnapshot(identity=self._identity(), addresses=self._addresses(), okta=self.okta.snapshot(),
                               graph=self.graph.snapshot(), astro=self.astro.snapshot(),
                               platform=self.astro_platform.snapshot())

    def restore(self, snap: SandboxSnapshot) -> None:
        """Replace what the services hold with `snap`, taken from this sandbox or another running one of the same
        seed and size: its URLs and tokens in the data (the Okta app's and the Entra job's Astro URL and token)
        become this sandbox's. Request logs, faults and rate windows are left as they are."""
        if self.okta is None or self.graph is None:
            raise RuntimeError("the sandbox is not running")
        if snap.identity != self._identity():
            raise ValueError("the snapshot is of a sandbox with another seed or size")
        self._settle()
        mine = self._addresses()
        translate = replacer({old: mine[key] for key, old in snap.addresses.items()})
        self.okta.restore(snap.okta, translate)
        self.graph.restore(snap.graph, translate)
        self.astro.restore(snap.astro)
        self.astro_platform.restore(snap.platform)

    # -- files for the connector --------------------------------------------------------------------------

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        # Token-bearing files are owner-only, like a real credentials file should be.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, 0o600)

    def _write_tokens(self, directory: Path) -> None:
        values = {"okta": self.okta_token, "graph": self.graph_token,
                  "astro-okta": self._astro_tokens["okta"], "astro-azure": self._astro_tokens["azure"]}
        for key, name in TOKEN_FILES.items():
            self._write_private(directory / name, values[key] + "\n")

    def default_team_names(self, count: int = 2) -> list[str]:
        return [t.name for t in self.seed_org.teams if t.name != ASSIGNED_TEAM][:count]

    def config_data(
        self,
        *,
        okta_push_groups: list[str] | None = None,
        okta_assign_groups: list[str] | None = None,
        azure_assign_groups: list[str] | None = None,
        okta_integration: str = "oin",
        okta_app_label: str = "Astro",
        azure_app_name: str = "Astro",
        idps: tuple[str, ...] = IDPS,
    ) -> dict[str, Any]:
        """The astro-scim.yaml content (tokens as `file:` references) for the running services."""
        teams = self.default_team_names()
        data: dict[str, Any] = {}
        if "okta" in idps and self.okta_url:
            data["okta"] = {
                "org_url": self.okta_url,
                "token": f"file:{TOKEN_FILES['okta']}",
                "app": {"label": okta_app_label},
                "integration": okta_integration,
                "mapping": str(default_mapping("okta")),
                "assign_groups": okta_assign_groups if okta_assign_groups is not None else [ASSIGNED_TEAM],
                "push_groups": okta_push_groups if okta_push_groups is not None else teams,
                "astro": {"scim_url": self.astro_orgs["okta"].scim_url, "api_url": f"{self.astro_url}/v1",
                          "token": f"file:{TOKEN_FILES['astro-okta']}"},
            }
        if "azure" in idps and self.graph_url:
            data["azure"] = {
                "tenant_id": self.tenant_id,
                "graph_url": self.graph_url,
                "credential": {"token": f"file:{TOKEN_FILES['graph']}"},
                "app": {"display_name": azure_app_name},
                "mapping": str(default_mapping("azure")),
                "assign_groups": (
                    azure_assign_groups if azure_assign_groups is not None else [ASSIGNED_TEAM, *teams]
                ),
                "astro": {"scim_url": self.astro_orgs["azure"].scim_url, "api_url": f"{self.astro_url}/v1",
                          "token": f"file:{TOKEN_FILES['astro-azure']}"},
            }
        return data

    def write_config(self, path: str | Path, **options: Any) -> Path:
        """Write an astro-scim.yaml for this sandbox, and its token files next to it. Options: `config_data`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_tokens(path.parent)
        header = (
            "# astro-scim project file for a local sandbox (loopback, throwaway tokens in the *.token files).\n"
            "# It stops working when the sandbox stops: its ports and tokens are new on every start.\n"
        )
        body = yaml.safe_dump(self.config_data(**options), sort_keys=False, allow_unicode=True)
        path.write_text(header + body, encoding="utf-8")
        return path

    def json_data(self) -> dict[str, Any]:
        okta_org = self.astro_orgs["okta"]
        return {
            "okta": {"org_url": self.okta_url, "token": self.okta_token},
            "graph": {"base_url": self.graph_url, "token": self.graph_token},
            "astro": {"scim_url": okta_org.scim_url, "token": okta_org.token},
            "astro_orgs": {
                idp: {"org_id": org.org_id, "scim_url": org.scim_url, "token": org.token}
                for idp, org in self.astro_orgs.items()
            },
        }

    def write_json(self, path: str | Path) -> Path:
        """URLs and tokens as JSON for scripts (owner-only file: it holds the tokens)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_private(path, json.dumps(self.json_data(), indent=2) + "\n")
        return path
