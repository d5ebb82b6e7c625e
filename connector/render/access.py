"""Render the Team access templates (`access:` in the config) as Terraform: terraform/astro.tf."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from connector import __version__
from connector.access.model import looks_like_id, require_templates
from connector.render.generate import Value, distinct, env_name, hcl, render_text, secret_value

if TYPE_CHECKING:
    from connector.config.load import ProjectConfig


def render_files(idp: str, cfg: ProjectConfig | None, *, command: str = "") -> dict[str, str]:
    """`terraform/astro.tf`: an `astro_team_roles` resource per template of `idp`'s groups; {} when none."""
    if cfg is None or not cfg.access:
        return {}
    templates = [t for t in require_templates(cfg) if idp in t.idps]
    if not templates:
        return {}
    astro = cfg.astro_for(idp)
    token, _ = secret_value(astro.token, "ASTRO_API_TOKEN", "Astro Organization API token")

    def workspace_expr(ref: str) -> str:
        return hcl(ref) if looks_like_id(ref) else f"local.workspace_ids[{hcl(ref)}]"

    def deployment_expr(ref: str) -> str:
        if looks_like_id(ref):
            return hcl(ref)
        ws, name = ref.split("/", 1)
        return f'local.deployment_ids[format("%s/%s", {workspace_expr(ws)}, {hcl(name)})]'

    named = [d for t in templates for d in t.deployments if not looks_like_id(d.ref)]
    workspaces = sorted(
        {w.ref for t in templates for w in t.workspaces if not looks_like_id(w.ref)}
        | {str(d.workspace) for d in named if not looks_like_id(str(d.workspace))}
    )
    rows = []
    for t, slug in zip(templates, distinct([env_name(t.group).lower() for t in templates]), strict=True):
        rows.append(
            {
                "group": t.group,
                "slug": slug,
                "organization_role": t.organization_role,
                "workspaces": [{"expr": workspace_expr(w.ref), "role": w.role} for w in t.workspaces],
                "deployments": [{"expr": deployment_expr(d.ref), "role": d.role} for d in t.deployments],
            }
        )
    api = urlsplit(astro.api_url)
    host = f"{api.scheme}://{api.netloc}"
    context = {
        "command": command or f"astro-scim render --idp {idp}",
        "version": __version__,
        "idp": idp,
        "config_path": cfg.file,
        "organization_id": Value.of(astro.organization_id, "ASTRO_ORGANIZATION_ID"),
        "token": token,
        "teams": rows,
        "workspaces": workspaces,
        "deployments": sorted({str(d.name) for d in named}),
        "host": None if host == "https://api.astronomer.io" else host,
    }
    return {"terraform/astro.tf": render_text("terraform/astro.tf.j2", context)}
