"""Write what `astro-scim render` renders: the IdP's files (generate.py) and the access templates' Terraform
(access.py), into the --out folder, each file replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from connector.errors import ConfigError
from connector.mapping.model import MappingFile
from connector.render import generate
from connector.render.access import render_files as access_files

if TYPE_CHECKING:
    from connector.config.load import ProjectConfig


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# Terraform takes one required_providers block per module (two files each with one: "Duplicate required providers
# configuration"), so astro.tf's provider is required in the IdP's file.
_ASTRO_PROVIDER = """    astro = {
      source  = "astronomer/astro"
      version = ">= 1.0.0"
    }
"""


def _require_astro_provider(files: dict[str, str], idp: str) -> None:
    name = f"terraform/{idp}.tf"
    text = files.get(name)
    anchor = "  required_providers {\n"
    if text is None or text.count(anchor) != 1:
        raise RuntimeError(f"{name}: no single required_providers block to add the astro provider to")
    files[name] = text.replace(anchor, anchor + _ASTRO_PROVIDER, 1)


def render_idp(
    idp: str,
    mapping: MappingFile,
    config: ProjectConfig | None,
    out_dir: str | Path,
    *,
    mapping_path: str | None = None,
    command: str | None = None,
) -> list[Path]:
    """Render every output for `idp` into `out_dir`; returns the files written."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    ctx = generate.build_context(
        idp, mapping, config,
        mapping_path=mapping_path or mapping.file,
        command=command or f"astro-scim render --idp {idp}",
    )
    files = generate.render_files(ctx)
    if config is not None and config.access:  # Team access templates: terraform/astro.tf (render/access.py)
        access = access_files(idp, config, command=ctx.command)
        if access:
            _require_astro_provider(files, idp)
        files.update(access)
    written = []
    try:
        for rel, text in files.items():
            target = out / rel
            _write(target, text)
            written.append(target)
    except OSError as exc:
        raise ConfigError(f"cannot write to {out}: {exc.strerror}") from exc
    return written
