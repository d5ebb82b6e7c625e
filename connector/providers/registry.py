"""Hand out providers by capability, typed (connector.providers.base). SDK modules are imported here, when a
command asks for a provider, not at start-up.

A capability an IdP does not have is a usage error naming the IdP that has it, never an AttributeError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.config.load import ProjectConfig
from connector.errors import ConfigError, UsageError
from connector.providers.base import (
    AuditTarget,
    ConfigProvider,
    Discover,
    GroupPush,
    Health,
    IdPView,
    ProvisionOnDemand,
)

if TYPE_CHECKING:
    from connector.access.provider import AstroAccessProvider
    from connector.providers.entra.provider import AzureProvider
    from connector.providers.okta.provider import OktaProvider


def selected_idps(cfg: ProjectConfig, idp: str) -> list[str]:
    names = cfg.idps() if idp == "all" else [idp]
    for name in names:
        if (cfg.okta if name == "okta" else cfg.azure) is None:
            raise ConfigError(f"the config has no '{name}' section", hint=f"add '{name}:' to {cfg.file}")
    if not names:
        raise ConfigError("the config names no identity provider",
                          hint=f"add an 'okta:' or 'azure:' section to {cfg.file}")
    return names


def _okta(cfg: ProjectConfig, *, prune: bool = False) -> OktaProvider:
    from connector.providers.okta.provider import OktaProvider

    return OktaProvider(cfg, prune=prune)


def _azure(cfg: ProjectConfig, *, pause: bool = False) -> AzureProvider:
    from connector.providers.entra.provider import AzureProvider

    return AzureProvider(cfg, pause=pause)


def _access(cfg: ProjectConfig) -> AstroAccessProvider:
    from connector.access.provider import AstroAccessProvider

    return AstroAccessProvider(cfg)


def _all(cfg: ProjectConfig, idp: str, *, prune: bool = False, pause: bool = False
         ) -> list[OktaProvider | AzureProvider | AstroAccessProvider]:
    providers: list[OktaProvider | AzureProvider | AstroAccessProvider] = [
        _okta(cfg, prune=prune) if name == "okta" else _azure(cfg, pause=pause)
        for name in ([] if idp == "astro" else selected_idps(cfg, idp))
    ]
    # Team access templates: after the IdPs, which push the Teams the templates give roles to.
    if idp in ("all", "astro"):
        if cfg.access:
            providers.append(_access(cfg))
        elif idp == "astro":
            raise ConfigError("the config has no 'access' section", hint=f"add 'access:' to {cfg.file}")
    return providers


def config_providers(cfg: ProjectConfig, idp: str, *, prune: bool = False, pause: bool = False
                     ) -> list[ConfigProvider]:
    """plan/apply: the selected IdPs, then the Team access templates (idp 'all' or 'astro')."""
    return list(_all(cfg, idp, prune=prune, pause=pause))


def health(cfg: ProjectConfig, idp: str) -> list[Health]:
    """test-connection and status: the selected IdPs, then the Team access templates when idp is 'all'."""
    return list(_all(cfg, idp))


def idp_view(cfg: ProjectConfig, idp: str) -> IdPView:
    """The audit's reader of one IdP ('okta' or 'azure')."""
    (name,) = selected_idps(cfg, idp)
    return _okta(cfg) if name == "okta" else _azure(cfg)


def audit_target(cfg: ProjectConfig, idp: str) -> AuditTarget:
    (name,) = selected_idps(cfg, idp)
    others: list[IdPView] = [_okta(cfg) if other == "okta" else _azure(cfg) for other in sharing_astro(cfg, name)]
    if name == "okta":
        okta = _okta(cfg)
        return AuditTarget("okta", okta, okta, remedies=okta, others=others)
    azure = _azure(cfg)
    return AuditTarget("azure", azure, azure, on_demand=azure, others=others)


def sharing_astro(cfg: ProjectConfig, idp: str) -> list[str]:
    """The other configured IdPs that provision into the Astro organization `idp` does (one top-level `astro:`
    for both, or the same scim_url twice)."""
    mine = cfg.astro_for(idp).scim_url.rstrip("/").casefold()
    return [o for o in cfg.idps() if o != idp and cfg.astro_for(o).scim_url.rstrip("/").casefold() == mine]


def group_push(cfg: ProjectConfig) -> GroupPush:
    if cfg.okta is None:
        raise ConfigError("push-groups is for Okta, and the config has no 'okta' section",
                          hint=f"add 'okta:' to {cfg.file}")
    return _okta(cfg)


def check_provision_idp(idp: str) -> None:
    """provision is Entra's: any other IdP is a usage error saying what to run instead (before any config is read)."""
    if idp != "azure":
        raise UsageError(f"provision is for Entra ID (--idp azure); {idp} has no provision on demand",
                         hint="for Okta: 'astro-scim push-groups GROUP --yes' pushes a group again, and "
                              "'astro-scim drift --fix --yes' re-assigns a user Astro lacks")


def provision_on_demand(cfg: ProjectConfig, idp: str = "azure") -> ProvisionOnDemand:
    check_provision_idp(idp)
    selected_idps(cfg, "azure")
    return _azure(cfg)


def discovery(cfg: ProjectConfig, idp: str) -> Discover:
    """init: what one IdP ('okta' or 'azure') already holds."""
    (name,) = selected_idps(cfg, idp)
    if name == "okta":
        from connector.providers.okta.discover import OktaDiscovery

        return OktaDiscovery(cfg)
    from connector.providers.entra.discover import EntraDiscovery

    return EntraDiscovery(cfg)
