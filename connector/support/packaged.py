"""Files shipped inside the package (`connector/data/`): the default mappings, JSON Schemas and templates.

Found with importlib.resources, never through the checkout, so an installed wheel works from any folder. The
top-level `mappings/`, `schemas/` and `templates/` of a checkout are symlinks to these folders: one copy only.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from connector.errors import ConnectorError


def data_dir(*parts: str) -> Path:
    """A folder or file under connector/data as a filesystem path (wheels are installed unpacked)."""
    root = resources.files("connector") / "data"
    target = root.joinpath(*parts)
    path = Path(str(target))
    if not path.exists():
        raise ConnectorError(f"packaged data {'/'.join(parts)} is missing from this installation",
                             hint="reinstall astro-scim-connector (pip install --force-reinstall)")
    return path


def default_mapping(idp: str) -> Path:
    """The shipped mapping for an IdP: the tables of Astro's setup page."""
    return data_dir("mappings", f"{idp}.yaml")
