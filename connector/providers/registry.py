"""Build the providers a command needs from the config. SDK modules are imported here, not at start-up."""

from __future__ import annotations

from connector.config.load import ProjectConfig
from connector.errors import ConfigError
from connector.providers.base import Provider


def selected_idps(cfg: ProjectConfig, idp: str) -> list[str]:
    names = cfg.idps() if idp == "all" else [idp]
    for name in names:
        if getattr(cfg, name) is None:
            raise ConfigError(f"the config has no '{name}' section", hint=f"add '{name}:' to {cfg.file}")
    if not names:
        raise ConfigError("the config names no identity provider", hint="add an 'okta:' or 'azure:' section")
    return names


def build(cfg: ProjectConfig, idp: str, *, prune: bool = False, pause: bool = False) -> list[Provider]:
    providers: list[Provider] = []
    for name in [] if idp == "astro" else selected_idps(cfg, idp):
        if name == "okta":
            from connector.providers.okta.provider import OktaProvider

            providers.append(OktaProvider(cfg, prune=prune))
        else:
            from connector.providers.entra.provider import AzureProvider

            providers.append(AzureProvider(cfg, pause=pause))
    # Team access templates: after the IdPs, which push the Teams the templates give roles to.
    if idp in ("all", "astro"):
        if cfg.access:
            from connector.access.provider import AstroAccessProvider

            providers.append(AstroAccessProvider(cfg))
        elif idp == "astro":
            raise ConfigError("the config has no 'access' section", hint=f"add 'access:' to {cfg.file}")
    return providers
