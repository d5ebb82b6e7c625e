"""`astro-scim render`: IdP configuration generated from a mapping file (and optionally the project config).

One jinja2 environment over the packaged templates, `connector/data/templates/<idp>/`. In a checkout the
top-level `templates/` is a symlink to that folder, so a wheel renders exactly what a checkout renders. Every file
under `<idp>/` becomes one output with the same relative path minus `.j2`; names starting with `_` are macros.

Secrets never reach a template: the context carries the *names* of the environment variables that hold them.
Values the render does not know are `${NAME}` references in JSON and Markdown (so `envsubst` can complete a body
at the point of use) and Terraform variables without a default in HCL.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from connector import __version__
from connector.errors import ConfigError, Location
from connector.mapping.model import ApplyOn, AttributeMapping, MappingFile
from connector.support.packaged import data_dir
from connector.support.redact import redact

if TYPE_CHECKING:
    import jinja2

    from connector.config.load import AstroConfig, ProjectConfig
    from connector.support.secret import Secret

TEMPLATE_DIR = data_dir("templates")
IDPS = ("okta", "azure")

# Microsoft's application template for non-gallery ("create your own") enterprise applications.
ENTRA_NON_GALLERY_TEMPLATE_ID = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
ENTRA_USER_TARGET = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ENTRA_GROUP_TARGET = "urn:ietf:params:scim:schemas:core:2.0:Group"

# Labels the Okta admin console shows next to each Astro app attribute (the seed page's table).
OKTA_ATTRIBUTE_LABELS = {
    "userName": "Username",
    "givenName": "Given name",
    "familyName": "Family name",
    "email": "Email",
    "displayName": "Display name",
    "profileUrl": "Profile Url",
}


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Value:
    """A value a template writes. Unless `known`, `text` is a `${env}` placeholder the user fills in."""

    text: str
    origin: str  # config | default | placeholder
    env: str | None = None  # the environment variable that holds (or would hold) it
    note: str | None = None  # where the value comes from, for runbooks

    @property
    def known(self) -> bool:
        return self.origin != "placeholder"

    @classmethod
    def of(cls, value: str | None, env: str, note: str | None = None, *, origin: str = "config") -> Value:
        if value:
            return cls(value, origin, env, note)
        return cls("${" + env + "}", "placeholder", env, note)


def secret_value(secret: Secret | None, default_env: str, what: str) -> tuple[Value, str | None]:
    """A secret as a reference, plus a warning for the runbook when the config does not keep it in the
    environment. Never calls reveal(): the value must not exist in this process."""
    ref = secret.ref if secret is not None else f"env:{default_env}"
    if ref.startswith("env:"):
        name = ref[4:]
        return Value("${" + name + "}", "placeholder", name, what), None
    if ref.startswith("file:"):
        path = ref[5:]
        return Value("${" + default_env + "}", "placeholder", default_env, what), (
            f"Your config reads the {what} from {path}: export {default_env}=\"$(cat {path})\" before using "
            "these files."
        )
    return Value("${" + default_env + "}", "placeholder", default_env, what), (
        f"Your config holds the {what} literally; it is not rendered. Move it to the environment variable "
        f"{default_env} and reference it as env:{default_env}."
    )


def env_name(text: str) -> str:
    """An environment-variable-safe upper-case slug: "Astro Admins" -> ASTRO_ADMINS."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()
    return slug if slug and not slug[0].isdigit() else f"G_{slug}"


def distinct(keys: list[str]) -> list[str]:
    """`keys` made distinct: a key seen before gets the first free `_2`, `_3`... suffix, never one another key holds
    ("Data Eng", "Data-Eng", "Data Eng 2" slug to DATA_ENG, DATA_ENG, DATA_ENG_2: the second must not take _2)."""
    taken = set(keys)
    out: list[str] = []
    used: set[str] = set()
    for key in keys:
        name, n = key, 1
        while name in used or (name != key and name in taken):
            n += 1
            name = f"{key}_{n}"
        used.add(name)
        out.append(name)
    return out


# ---------------------------------------------------------------------------------------------- filters


def tojson(value: Any, indent: int | None = None) -> str:
    """JSON for a template: unlike jinja's HTML-oriented filter, no \\u003c escapes, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False, indent=indent)


_HCL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def hcl(value: Any) -> str:
    """An HCL literal. Strings are quoted with `${` and `%{` escaped, so no value can start an interpolation."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(hcl(v) for v in value) + "]"
    text = str(value)
    out = []
    for ch in text:
        if ch in _HCL_ESCAPES:
            out.append(_HCL_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    quoted = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return f'"{quoted}"'


def oneline(value: Any) -> str:
    """Text for a `#` comment or a Markdown line: a newline in a name must not end the comment."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(value)).strip()


def code(value: Any, *, in_table: bool = False) -> str:
    """A Markdown code span (backticks fenced). Pipes are escaped only in a table cell (`cell_code`): elsewhere
    GitHub shows the backslash inside a code span, a name Okta or Entra does not hold."""
    text = oneline(value)
    if in_table:
        text = text.replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def sh(value: Value) -> str:
    """A shell word: a known value quoted literally, a placeholder double-quoted so the shell expands it."""
    if value.known:
        return shlex.quote(oneline(value.text))
    return f'"{oneline(value.text)}"'


def cell_code(value: Any) -> str:
    """A Markdown code span for a table cell (pipes escaped)."""
    return code(value, in_table=True)


def cell(value: Any) -> str:
    """Plain Markdown table cell text."""
    return oneline(value).replace("|", "\\|")


# ---------------------------------------------------------------------------------------------- environment


def template_dir() -> Path:
    return TEMPLATE_DIR


@lru_cache(maxsize=4)
def environment(directory: str | None = None) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory or str(template_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # JSON, HCL and Markdown: each value is escaped by the filter for its language
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(tojson=tojson, hcl=hcl, oneline=oneline, code=code, cell_code=cell_code, cell=cell, env_name=env_name, sh=sh)
    return env


def outputs_for(idp: str, directory: Path | None = None) -> list[str]:
    """Template names (relative to the template dir) that produce files for `idp`, in a stable order."""
    root = (directory or template_dir()) / idp
    names = []
    for path in sorted(root.rglob("*.j2")):
        rel = path.relative_to(root)
        if any(part.startswith("_") for part in rel.parts):
            continue
        names.append(f"{idp}/{rel.as_posix()}")
    return names


# ---------------------------------------------------------------------------------------------- rows


@dataclass
class EntraRow:
    target: str
    expression: str
    mapping_type: str  # the portal's "Mapping type": Direct | Constant | Expression
    source_attribute: str | None  # for Direct mappings
    source_tree: dict[str, Any]
    flow_type: str  # Always | ObjectAddOnly
    apply_text: str
    matching: int
    default: str | None


@dataclass
class OktaRow:
    target: str
    attribute: str  # the Okta app-user attribute the profile mapping writes
    label: str
    expression: str | None
    push_status: str  # PUSH | DONT_PUSH
    apply_text: str
    from_sign_on: bool


def _entra_row(m: AttributeMapping) -> EntraRow:
    from connector.mapping.expr import entra as entra_expr

    if m.source is None:
        raise ConfigError(f"{m.target}: an Entra mapping needs a source expression", location=m.location)
    try:
        tree = entra_expr.to_source_tree(entra_expr.parse(m.source))
    except Exception as exc:  # the validator reports these first; this guards templates against bad input
        raise ConfigError(f"{m.target}: cannot parse {m.source!r}: {exc}", location=m.location) from exc
    kind = tree.get("type")
    mapping_type = {"Attribute": "Direct", "Constant": "Constant"}.get(str(kind), "Expression")
    create_only = m.apply_on == ApplyOn.CREATE_ONLY
    return EntraRow(
        target=m.target,
        expression=m.source,
        mapping_type=mapping_type,
        source_attribute=str(tree.get("name")) if kind == "Attribute" else None,
        source_tree=tree,
        flow_type="ObjectAddOnly" if create_only else "Always",
        apply_text="Only during object creation" if create_only else "Always",
        matching=m.matching,
        default=m.default,
    )


def okta_attribute(target: str) -> str:
    """The Okta app-user attribute for a SCIM path (name.givenName -> givenName)."""
    from connector.mapping import idp_attributes

    known = idp_attributes.okta_app_user_attribute(target)
    if known:
        return known
    # Outside the app template (custom extension attributes): a custom SCIM app names the attribute after the
    # path's last segment, which is also what the admin console suggests.
    last = re.sub(r"\[.*?\]", "", target).rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    return last or target


def _okta_row(m: AttributeMapping) -> OktaRow:
    attr = "userName" if m.from_sign_on else okta_attribute(m.target)
    create_only = m.apply_on == ApplyOn.CREATE_ONLY
    return OktaRow(
        target=m.target,
        attribute=attr,
        label=OKTA_ATTRIBUTE_LABELS.get(attr, attr),
        expression=m.source,
        push_status="DONT_PUSH" if create_only else "PUSH",
        apply_text="Create" if create_only else "Create and update",
        from_sign_on=m.from_sign_on,
    )


# ---------------------------------------------------------------------------------------------- context


@dataclass
class Group:
    name: str
    env: str  # the ${...} reference for its IdP object id


@dataclass
class RenderContext:
    idp: str
    mapping: MappingFile
    mapping_path: str
    config_path: str | None
    command: str
    values: dict[str, Value] = field(default_factory=dict)
    assign_groups: list[Group] = field(default_factory=list)
    push_groups: list[Group] = field(default_factory=list)
    integration: str | None = None  # okta: oin | manual, when the config says
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        users = [self._row(m) for m in self.mapping.users]
        groups = [self._row(m) for m in self.mapping.groups]
        return {
            "idp": self.idp,
            "version": __version__,
            "command": self.command,
            "mapping_path": self.mapping_path,
            "config_path": self.config_path,
            "v": self.values,
            "users": users,
            "groups": groups,
            "assign_groups": self.assign_groups,
            "push_groups": self.push_groups,
            "overlap": sorted({g.name for g in self.assign_groups} & {g.name for g in self.push_groups}),
            "integration": self.integration,
            "notes": self.notes,
            "entra": {
                "template_id": ENTRA_NON_GALLERY_TEMPLATE_ID,
                "user_target": ENTRA_USER_TARGET,
                "group_target": ENTRA_GROUP_TARGET,
            },
        }

    def _row(self, m: AttributeMapping) -> EntraRow | OktaRow:
        return _entra_row(m) if self.idp == "azure" else _okta_row(m)


def _okta_org(org_url: str | None) -> tuple[str | None, str | None]:
    """https://acme.okta.com -> ("acme", "okta.com"), as the Terraform provider wants it; None when not an org."""
    if not org_url:
        return None, None
    host = urlsplit(org_url).hostname or ""
    parts = host.split(".")
    if len(parts) < 3 or host.replace(".", "").isdigit():
        return None, None
    return parts[0], ".".join(parts[1:])


def _groups(names: list[str], prefix: str) -> list[Group]:
    """Groups with distinct `${PREFIX_NAME}` references, even when two names slug alike ("Data-Eng", "Data Eng")."""
    envs = distinct([f"{prefix}_{env_name(name)}" for name in names])
    return [Group(name, env) for name, env in zip(names, envs, strict=True)]


def build_context(
    idp: str, mapping: MappingFile, config: ProjectConfig | None, *, mapping_path: str, command: str
) -> RenderContext:
    if idp not in IDPS:
        raise ConfigError(f"unknown identity provider {idp!r}", hint="use --idp okta or --idp azure")
    ctx = RenderContext(
        idp=idp, mapping=mapping, mapping_path=mapping_path,
        config_path=config.file if config else None, command=command,
    )
    astro: AstroConfig | None = None
    section = getattr(config, idp, None) if config else None
    if config is not None and (config.astro is not None or getattr(section, "astro", None) is not None):
        astro = config.astro_for(idp)
    v = ctx.values
    v["scim_url"] = Value.of(astro.scim_url if astro else None, "ASTRO_SCIM_URL",
                             "Astro Cloud UI > Settings > Authentication > SCIM Integration URL")
    v["organization_id"] = Value.of(astro.organization_id if astro else None, "ASTRO_ORGANIZATION_ID",
                                    "Astro Cloud UI > Settings > General")
    v["astro_token"], warning = secret_value(astro.token if astro else None, "ASTRO_API_TOKEN",
                                             "Astro Organization API token")
    if astro is None:
        ctx.notes.append("Rendered without an Astro section in a config: the Astro values are ${...} placeholders.")
    if warning:
        ctx.notes.append(warning)

    if idp == "okta":
        okta = config.okta if config else None
        org_name, base_url = _okta_org(okta.org_url if okta else None)
        v["okta_org_url"] = Value.of(okta.org_url if okta else None, "OKTA_ORG_URL", "your Okta org URL")
        v["okta_org_name"] = Value.of(org_name, "OKTA_ORG_NAME")
        v["okta_base_url"] = Value.of(base_url, "OKTA_BASE_URL")
        v["okta_token"], warning = secret_value(okta.token if okta else None, "OKTA_CLIENT_TOKEN", "Okta API token")
        if warning:
            ctx.notes.append(warning)
        v["app"] = Value.of(okta.app_label if okta else "Astro", "OKTA_APP_LABEL", "the Okta app's label",
                            origin="config" if okta and okta.app_label else "default")
        v["app_id"] = Value.of(okta.app_id if okta else None, "OKTA_APP_ID", "the Okta app's id (0oa...)")
        if okta is not None:
            ctx.integration = okta.integration
            ctx.assign_groups = _groups(okta.assign_groups, "OKTA_GROUP_ID")
            ctx.push_groups = _groups(okta.push_groups, "OKTA_GROUP_ID")
    else:
        az = config.azure if config else None
        v["tenant_id"] = Value.of(az.tenant_id if az else None, "AZURE_TENANT_ID", "Microsoft Entra tenant ID")
        v["app"] = Value.of(az.app_display_name if az else "Astro", "AZURE_APP_DISPLAY_NAME",
                            "the enterprise application's display name",
                            origin="config" if az and az.app_display_name else "default")
        if az is not None:
            ctx.assign_groups = _groups(az.assign_groups, "AZURE_GROUP_ID")
    return ctx


# ---------------------------------------------------------------------------------------------- rendering


def render_text(template_name: str, context: dict[str, Any]) -> str:
    """Render one template; JSON outputs are parsed back so a broken (or customised) template fails here."""
    import jinja2

    try:
        text = environment().get_template(template_name).render(**context)
    except jinja2.TemplateError as exc:
        lineno = getattr(exc, "lineno", None) or 0
        raise ConfigError(
            f"template {template_name} failed: {exc}",
            location=Location(str(template_dir() / template_name), lineno),
        ) from exc
    if template_name.endswith(".json.j2"):
        try:
            json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"template {template_name} produced invalid JSON: {exc}") from exc
    # Belt and braces: a secret registered anywhere in this process never reaches a file.
    return redact(text)


def render_files(ctx: RenderContext) -> dict[str, str]:
    """Relative output path -> text, for every template of the context's IdP."""
    data = ctx.as_dict()
    out: dict[str, str] = {}
    for name in outputs_for(ctx.idp):
        rel = name.split("/", 1)[1]
        out[rel[: -len(".j2")]] = render_text(name, data)
    return out
