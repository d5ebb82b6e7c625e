"""The `--config FILE` argument of every command that reads the project config."""

from __future__ import annotations

import os

from connector.config.load import ProjectConfig, load_config
from connector.errors import ConfigError


def load_config_arg(path: str) -> ProjectConfig:
    """Load --config, with a friendly error when the default file is absent."""
    if not os.path.exists(path):
        raise ConfigError(
            f"config file {path} not found",
            hint="pass --config FILE, or run 'astro-scim sandbox --write-config astro-scim.yaml' to rehearse",
        )
    return load_config(path)
