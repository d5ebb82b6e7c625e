"""The project file `astro-scim.yaml` -> typed, validated models. Secrets stay references until used."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from connector.errors import ConfigError, ConfigErrors, Location
from connector.support import yamlsrc
from connector.support.secret import Secret
from connector.support.suggest import closest
from connector.support.urls import check_endpoint, display

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
AUDIT_LOG_DEFAULT = ".astro-scim/audit.log"


@dataclass
class AstroConfig:
    scim_url: str
    token: Secret
    api_url: str = "https://api.astronomer.io/v1"
    organization_id: str = ""
    team_wait_seconds: float = 60.0  # access templates: how long apply waits for an IdP to push a Team
    # Resources per SCIM list page the drift reader asks for; None: what the server says it honours (maxResults)
    page_size: int | None = None


@dataclass
class OktaConfig:
    org_url: str
    token: Secret | None = None
    client_id: str | None = None
    private_key: Secret | None = None
    scopes: list[str] = field(default_factory=list)
    app_label: str | None = "Astro"
    app_id: str | None = None
    integration: str = "oin"  # oin = Okta's Astro catalogue app; manual = custom SCIM app
    mapping: Path | None = None
    assign_groups: list[str] = field(default_factory=list)
    push_groups: list[str] = field(default_factory=list)
    astro: AstroConfig | None = None  # overrides the top-level astro section for this IdP
    location: Location | None = None


@dataclass
class AzureCredential:
    kind: str  # secret | certificate | cli | default | workload | token
    client_id: str | None = None
    client_secret: Secret | None = None
    certificate_path: Path | None = None
    token: Secret | None = None


@dataclass
class AzureConfig:
    tenant_id: str
    credential: AzureCredential
    graph_url: str = DEFAULT_GRAPH_URL
    authority: str | None = None  # the sign-in's host (https://login.microsoftonline.us); None: azure-identity's
    app_display_name: str | None = "Astro"
    app_id: str | None = None
    mapping: Path | None = None
    assign_groups: list[str] = field(default_factory=list)
    astro: AstroConfig | None = None  # overrides the top-level astro section for this IdP
    location: Location | None = None


@dataclass
class SafetyConfig:
    max_delete_fraction: float = 0.10
    max_delete_count: int = 25


@dataclass
class ProjectConfig:
    file: str
    astro: AstroConfig | None = None
    okta: OktaConfig | None = None
    azure: AzureConfig | None = None
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    access: dict[str, Any] = field(default_factory=dict)
    document: yamlsrc.Document | None = None
    audit_log_setting: Path | None = None  # `audit_log:`, resolved against the config's folder

    @property
    def audit_log(self) -> Path:
        """Where the audit trail goes: $ASTRO_SCIM_AUDIT_LOG, else `audit_log:`, else .astro-scim/audit.log next
        to the config (the environment wins, so CI can collect every run's trail in one place)."""
        env = os.environ.get("ASTRO_SCIM_AUDIT_LOG", "").strip()
        if env:
            return Path(env).expanduser()
        return self.audit_log_setting or Path(self.file).resolve().parent / AUDIT_LOG_DEFAULT

    def idps(self) -> list[str]:
        return [name for name in ("okta", "azure") if getattr(self, name) is not None]

    def astro_for(self, idp: str) -> AstroConfig:
        """The Astro organization an IdP provisions into: its own `astro:` block, else the top-level one."""
        section = getattr(self, idp, None)
        target = getattr(section, "astro", None) or self.astro
        if target is None:
            raise ConfigError(
                f"no Astro SCIM endpoint configured for {idp}",
                location=self.document.loc(()) if self.document else None,
                hint="add an 'astro:' section with scim_url and token",
            )
        return target


def _key_hint(key: str, allowed: set[str]) -> str:
    guess = closest(key, allowed)
    return f"did you mean '{guess}'?" if guess else "allowed keys: " + ", ".join(sorted(allowed))


T = TypeVar("T")



NAME_HINT = "give each group's name as the IdP shows it, on one line"


def bad_name(name: str) -> str | None:
    """What is wrong with a group's name, or None. A blank name matches no group (or every one, to a search); a
    control character (a newline from a YAML block scalar, a tab) is no group's name either, and the rendered
    runbooks showed it on two lines."""
    if not name.strip():
        return "an empty name"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        return f"{name!r} holds a control character"
    return None

class _Errors:
    """Every independent mistake of the project file, collected while it is read (a read that fails gives its
    default and the reading goes on), so one run reports them all."""

    def __init__(self) -> None:
        self.found: list[ConfigError] = []

    def add(self, error: ConfigError) -> None:
        self.found.append(error)

    def check(self, read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except ConfigError as exc:
            self.found.append(exc)
            return default


class _Section:
    """Reads one mapping of the document with location-aware type checks and unknown-key detection. A value of the
    wrong type is recorded in `errors` and read as its default, so the other keys are still checked."""

    def __init__(self, doc: yamlsrc.Document, path: tuple[str | int, ...], allowed: set[str], base: Path,
                 errors: _Errors) -> None:
        self.doc, self.path, self.base, self.errors = doc, path, base, errors
        node: Any = doc.data
        for p in path:
            node = node[p]
        if not isinstance(node, dict):
            raise ConfigError(f"'{'.'.join(map(str, path))}' must be a mapping", location=doc.loc(path),
                              hint="indent its keys under it, one 'key: value' per line")
        self.data: dict[str, Any] = {}
        # Allowed keys an unknown one is probably a misspelling of: their absence is not reported again
        self.misspelt: set[str] = set()
        for key, value in node.items():
            if key in allowed:
                self.data[key] = value
            else:
                if (guess := closest(str(key), allowed)) is not None:
                    self.misspelt.add(guess)
                errors.add(ConfigError(
                    f"unknown key '{key}' in '{'.'.join(map(str, path))}'",
                    location=doc.loc((*path, key), key=True), hint=_key_hint(str(key), allowed),
                ))

    def loc(self, key: str) -> Location:
        return self.doc.loc((*self.path, key))

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required and key not in self.misspelt:  # a misspelt key is reported as such, once
                self.errors.add(ConfigError(
                    f"'{'.'.join(map(str, self.path))}.{key}' is required", location=self.doc.loc(self.path),
                    hint=f"add '{key}:' under '{'.'.join(map(str, self.path))}'"))
            return default
        if not isinstance(value, str | int) or isinstance(value, bool):
            self.errors.add(ConfigError(f"'{key}' must be a string", location=self.loc(key),
                                        hint=f"write {key}: followed by one value, quoted if it holds ': ' or '#'"))
            return default
        return str(value)

    def secret(self, key: str, *, multiline: bool = False) -> Secret | None:
        value = self.text(key)
        if value is None:
            return None
        return self.errors.check(
            lambda: Secret(value, location=self.loc(key), base_dir=self.base, multiline=multiline), None)

    def str_list(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.errors.add(ConfigError(f"'{key}' must be a list of strings", location=self.loc(key),
                                        hint=f"write {key}: [Name One, Name Two], or one '- name' per line"))
            return []
        first: dict[str, int] = {}
        where = f"'{'.'.join(map(str, self.path))}.{key}'"
        for i, item in enumerate(value):
            if (problem := bad_name(item)) is not None:
                self.errors.add(ConfigError(f"{problem} in {where}", location=self.doc.loc((*self.path, key, i)),
                                            hint=NAME_HINT))
                continue
            if item in first:  # one object in the IdP: apply counted it twice, push-groups raced itself over it
                at = self.doc.loc((*self.path, key, first[item]))
                self.errors.add(ConfigError(
                    f"'{item}' is listed twice in {where}"
                    + (f" (first at line {at.line})" if at.line else ""),
                    location=self.doc.loc((*self.path, key, i)), hint="remove one of them"))
            first.setdefault(item, i)
        return list(value)

    def path_value(self, key: str) -> Path | None:
        value = self.text(key)
        if value is None:
            return None
        p = Path(value)
        return p if p.is_absolute() else self.base / p

    def endpoint(self, key: str, url: str, what: str) -> str:
        """`url` checked as an endpoint (connector.support.urls); a bad one is recorded and read as given."""
        return self.errors.check(lambda: check_endpoint(url, what=what, location=self.loc(key)), url)

    def names(self, *keys: str) -> None:
        """Each of `keys`, when given, names something: a blank name would match nothing (or fall back to the
        default name, and plan would create a second app beside the one it should find)."""
        for key in keys:
            value = self.data.get(key)
            if isinstance(value, str) and not value.strip():
                self.errors.add(ConfigError(f"'{'.'.join(map(str, (*self.path, key)))}' is empty",
                                            location=self.loc(key),
                                            hint="give the name, or leave the key out for the default"))

    def sub(self, key: str, allowed: set[str]) -> _Section | None:
        if self.data.get(key) is None:
            return None
        return self.errors.check(lambda: _Section(self.doc, (*self.path, key), allowed, self.base, self.errors),
                                 None)


ASTRO_KEYS = ("scim_url", "token", "api_url", "organization_id", "team_wait_seconds", "page_size")


def _astro(doc: yamlsrc.Document, base: Path, errors: _Errors, path: tuple[str, ...] = ("astro",)) -> AstroConfig:
    s = _Section(doc, path, set(ASTRO_KEYS), base, errors)
    given = s.text("scim_url", required=True)
    scim_url = s.endpoint("scim_url", given, "astro.scim_url") if given is not None else ""
    token = s.secret("token") or Secret("env:ASTRO_API_TOKEN", location=s.loc("token"))
    api_url = s.endpoint("api_url", s.text("api_url", "https://api.astronomer.io/v1") or "", "astro.api_url")
    org_id = s.text("organization_id") or scim_url.rstrip("/").rsplit("/", 1)[-1]
    wait = s.data.get("team_wait_seconds", 60.0)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
        errors.add(ConfigError("team_wait_seconds must be a number of seconds (>= 0)",
                               location=s.loc("team_wait_seconds"), hint="60 waits a minute; 0 does not wait"))
        wait = 60.0
    page_size = s.data.get("page_size")
    if page_size is not None and (isinstance(page_size, bool) or not isinstance(page_size, int)
                                  or not 1 <= page_size <= 1000):
        errors.add(ConfigError("page_size must be a whole number from 1 to 1000 (resources per SCIM list page)",
                               location=s.loc("page_size"), hint="leave it out for what the server says it honours"))
        page_size = None
    return AstroConfig(scim_url=scim_url, token=token, api_url=api_url, organization_id=org_id,
                       team_wait_seconds=float(wait), page_size=page_size)


def _own_astro(s: _Section) -> AstroConfig | None:
    """An IdP section's own `astro:` block (it overrides the top-level one)."""
    if s.data.get("astro") is None:
        return None
    return s.errors.check(lambda: _astro(s.doc, s.base, s.errors, (*map(str, s.path), "astro")), None)


def _okta(doc: yamlsrc.Document, base: Path, errors: _Errors) -> OktaConfig:
    s = _Section(
        doc,
        ("okta",),
        {"org_url", "token", "client_id", "private_key", "scopes", "app", "integration", "mapping",
         "assign_groups", "push_groups", "astro"},
        base,
        errors,
    )
    org_url = s.text("org_url") or os.environ.get("OKTA_CLIENT_ORGURL")
    if org_url:
        org_url = s.endpoint("org_url", org_url, "okta.org_url")
    elif "org_url" not in s.misspelt:
        errors.add(ConfigError("okta.org_url is required (or set OKTA_CLIENT_ORGURL)", location=doc.loc(("okta",)),
                               hint="add org_url: https://<your-org>.okta.com under okta:"))
    token = s.secret("token")
    private_key = s.secret("private_key", multiline=True)  # a PEM key is lines
    client_id = s.text("client_id")
    if token is None and private_key is None and s.data.get("token") is None and s.data.get("private_key") is None:
        token = Secret("env:OKTA_CLIENT_TOKEN", location=doc.loc(("okta",)))
    if private_key is not None and not client_id:
        errors.add(ConfigError("okta.private_key needs okta.client_id (the OAuth service app)",
                               location=s.loc("private_key"),
                               hint="add client_id: the service app's client ID, or use token: env:NAME instead"))
    app = s.sub("app", {"label", "id"})
    if app is not None:
        app.names("label", "id")
    integration = s.text("integration", "oin") or "oin"
    if integration not in ("oin", "manual"):
        errors.add(ConfigError(
            f"okta.integration must be 'oin' or 'manual', not {integration!r}", location=s.loc("integration"),
            hint="oin: Okta's Astro catalogue app; manual: a custom SCIM app"))
    app_id = app.text("id") if app else None
    return OktaConfig(
        org_url=org_url or "",
        token=token,
        client_id=client_id,
        private_key=private_key,
        scopes=s.str_list("scopes"),
        app_label=(app.text("label") if app else "Astro") if not app_id else None,
        app_id=app_id,
        integration=integration,
        mapping=s.path_value("mapping"),
        assign_groups=s.str_list("assign_groups"),
        push_groups=s.str_list("push_groups"),
        astro=_own_astro(s),
        location=doc.loc(("okta",)),
    )


def _azure(doc: yamlsrc.Document, base: Path, errors: _Errors) -> AzureConfig:
    s = _Section(
        doc, ("azure",), {"tenant_id", "credential", "graph_url", "authority", "app", "mapping", "assign_groups",
                          "astro"}, base, errors
    )
    tenant = s.text("tenant_id") or os.environ.get("AZURE_TENANT_ID")
    if not tenant and "tenant_id" not in s.misspelt:
        errors.add(ConfigError("azure.tenant_id is required (or set AZURE_TENANT_ID)", location=doc.loc(("azure",)),
                               hint="add tenant_id: the directory (tenant) ID from the Entra admin center"))
    c = s.sub("credential", {"type", "client_id", "client_secret", "certificate_path", "token"})
    cred: AzureCredential
    if c is None:
        client_id = os.environ.get("AZURE_CLIENT_ID")
        if client_id and os.environ.get("AZURE_CLIENT_SECRET"):
            cred = AzureCredential("secret", client_id=client_id, client_secret=Secret("env:AZURE_CLIENT_SECRET"))
        else:
            cred = AzureCredential("default")
    else:
        kind = c.text("type")
        if c.data.get("token") is not None:
            cred = AzureCredential(kind or "token", token=c.secret("token"))
        elif c.data.get("client_secret") is not None:
            cred = AzureCredential(
                kind or "secret", client_id=c.text("client_id", required=True), client_secret=c.secret("client_secret")
            )
        elif c.data.get("certificate_path") is not None:
            cred = AzureCredential(
                kind or "certificate", client_id=c.text("client_id", required=True),
                certificate_path=c.path_value("certificate_path"),
            )
        else:
            cred = AzureCredential(kind or "default", client_id=c.text("client_id"))
        if cred.kind not in ("secret", "certificate", "cli", "default", "workload", "token"):
            errors.add(ConfigError(
                f"unknown azure.credential.type {cred.kind!r}",
                location=c.loc("type"),
                hint="use one of: secret, certificate, cli, default, workload, token",
            ))
    app = s.sub("app", {"display_name", "app_id"})
    if app is not None:
        app.names("display_name", "app_id")
    graph_url = s.endpoint("graph_url", s.text("graph_url", DEFAULT_GRAPH_URL) or "", "azure.graph_url")
    authority = s.text("authority")
    app_id = app.text("app_id") if app else None
    return AzureConfig(
        tenant_id=tenant or "",
        credential=cred,
        graph_url=graph_url,
        authority=(errors.check(lambda: _authority(authority, s.loc("authority")), None)
                   if authority is not None else None),
        app_display_name=(app.text("display_name") if app else "Astro") if not app_id else None,
        app_id=app_id,
        mapping=s.path_value("mapping"),
        assign_groups=s.str_list("assign_groups"),
        astro=_own_astro(s),
        location=doc.loc(("azure",)),
    )


def _authority(url: str, location: Location | None) -> str:
    """azure.authority: the https origin Entra's sign-in goes to (a sovereign cloud's, e.g. login.microsoftonline.us
    or login.chinacloudapi.cn); the tenant is azure.tenant_id, so no path. https even on loopback: azure-identity and
    MSAL refuse any other scheme for an authority."""
    if "://" not in url:  # a bare host, as AZURE_AUTHORITY_HOST takes it
        raise ConfigError(f"azure.authority is a URL, not a bare host: {url}", location=location,
                          hint=f"use https://{url.strip().rstrip('/')}")
    url = check_endpoint(url, what="azure.authority", location=location)
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ConfigError(f"azure.authority must use https, loopback included: {display(url)}", location=location,
                          hint="azure-identity signs in over https only, e.g. https://login.microsoftonline.us")
    if parts.path or parts.query or parts.fragment:
        raise ConfigError(f"azure.authority is a host, without a path: {display(url)}", location=location,
                          hint=f"use https://{parts.netloc}; the tenant comes from azure.tenant_id")
    return url


def _safety(s: _Section) -> SafetyConfig:
    """The deletion limits of drift --fix. A limit that is not a number in range would silently widen what may be
    deleted (5 read as 500%, .nan compares false with everything), so each is checked with its line."""
    fraction = s.data.get("max_delete_fraction", SafetyConfig.max_delete_fraction)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        s.errors.add(ConfigError(
            f"safety.max_delete_fraction must be a fraction from 0 to 1, not {fraction!r}",
            location=s.loc("max_delete_fraction"), hint="0.10 allows deleting at most 10% of the Astro accounts",
        ))
        fraction = SafetyConfig.max_delete_fraction
    count = s.data.get("max_delete_count", SafetyConfig.max_delete_count)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        s.errors.add(ConfigError(
            f"safety.max_delete_count must be a whole number >= 0, not {count!r}",
            location=s.loc("max_delete_count"), hint="25 allows deleting at most 25 Astro accounts per run",
        ))
        count = SafetyConfig.max_delete_count
    return SafetyConfig(max_delete_fraction=float(fraction), max_delete_count=count)


def load_config(path: str | Path) -> ProjectConfig:
    """The project file read and checked; every independent mistake is raised at once (ConfigErrors, sorted by
    line; a lone one as itself). A file that is no YAML mapping (it does not parse, or is a list) stops there: no
    key of it can be checked."""
    cfg, errors = load_config_collecting(path)
    ConfigErrors.raise_all(errors)
    return cfg


def load_config_collecting(path: str | Path) -> tuple[ProjectConfig, list[ConfigError]]:
    """The project file read as far as it can be, and every independent mistake in it (`validate` reports them
    beside what else it checks). The config is only usable when the list is empty. YAML that does not parse, or is
    not a mapping, is raised: nothing after it could be checked, and its message says so."""
    raw = yamlsrc.read_bytes(path)  # missing or unreadable: its own error (there is nothing else to check)
    try:
        doc = yamlsrc.decode(raw, path)
    except ConfigError as exc:
        exc.hint = ((exc.hint + "; ") if exc.hint else "") + "nothing else in the file was checked: fix this first"
        raise
    if not isinstance(doc.data, dict):
        raise ConfigError("the config file must be a YAML mapping", location=doc.loc(()),
                          hint="nothing else in the file was checked: it holds keys such as astro:, okta:, azure:")
    errors = _Errors()
    for key, loc in doc.duplicates:
        errors.add(ConfigError(f"duplicate key '{key[-1]}'", location=loc,
                               hint="YAML keeps only the last: remove one of them"))
    base = Path(path).resolve().parent
    allowed = {"astro", "okta", "azure", "safety", "access", "audit_log"}
    for key in doc.data:
        if key not in allowed:
            errors.add(ConfigError(
                f"unknown top-level key '{key}'", location=doc.loc((key,), key=True),
                hint=_key_hint(str(key), allowed),
            ))
    cfg = ProjectConfig(file=str(path), document=doc)
    if doc.data.get("astro") is not None:
        cfg.astro = errors.check(lambda: _astro(doc, base, errors), None)
    if doc.data.get("okta") is not None:
        cfg.okta = errors.check(lambda: _okta(doc, base, errors), None)
    if doc.data.get("azure") is not None:
        cfg.azure = errors.check(lambda: _azure(doc, base, errors), None)
    if doc.data.get("safety") is not None:
        safety = errors.check(
            lambda: _Section(doc, ("safety",), {"max_delete_fraction", "max_delete_count"}, base, errors), None)
        if safety is not None:
            cfg.safety = _safety(safety)
    if doc.data.get("audit_log") is not None:
        top = _Section(doc, (), set(doc.data), base, errors)  # its unknown keys are reported above
        cfg.audit_log_setting = top.path_value("audit_log")
    access = doc.data.get("access")
    if access is not None:
        if not isinstance(access, dict):
            errors.add(ConfigError("'access' must be a mapping of group name -> roles", location=doc.loc(("access",)),
                                   hint="one key per group, e.g. 'Data Engineering: {organization: ...}'"))
        else:
            cfg.access = access
    return cfg, errors.found
