"""The config's fingerprint: what a saved plan and the audit trail say the tool was told to do.

A digest per input, so that `apply FILE` can name what changed: the project file, each mapping file it uses (the
shipped one when it names none), and the environment variables the loader falls back on for non-secret settings.
Secret values never enter it: a digest of a token is still something derived from the token, and a rotated token
does not change what the plan does (the IdPs' answers, which the state fingerprint covers, do).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from connector.config.load import ProjectConfig
from connector.errors import ConfigError
from connector.support.packaged import default_mapping

# Read by config.load when the file leaves the setting out; none of them holds a secret.
_ENV_FALLBACKS = ("OKTA_CLIENT_ORGURL", "AZURE_TENANT_ID", "AZURE_CLIENT_ID")


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:32]
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _label(path: Path, base: Path) -> str:
    """`path` as the same in every checkout names it: relative to the config's folder when inside it or written
    relative to it (`../mappings/x.yaml`: named by its absolute path, the same tree planned in one checkout and
    applied from another was refused, and the plan file held the runner's paths); else as written (absolute)."""
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        pass
    try:  # the loader joined a relative path to `base`: that text is the config's own
        return os.path.normpath(path.relative_to(base))
    except ValueError:
        return str(path)


def config_inputs(cfg: ProjectConfig) -> dict[str, str]:
    """Input name (a file, relative to the config's folder when inside it, or `env NAME`) -> digest."""
    config = Path(cfg.file)
    base = config.resolve().parent
    out = {_label(config, base): _file_digest(config)}
    for idp, section in (("okta", cfg.okta), ("azure", cfg.azure)):
        if section is None:
            continue
        if section.mapping is not None:
            out[_label(section.mapping, base)] = _file_digest(section.mapping)
        else:  # by a name that does not depend on where the package is installed (CI runners differ)
            out[f"(shipped) mappings/{idp}.yaml"] = _file_digest(default_mapping(idp))
    for name in _ENV_FALLBACKS:
        if os.environ.get(name):
            out[f"env {name}"] = hashlib.sha256(os.environ[name].encode()).hexdigest()[:32]
    return out


def combined(inputs: dict[str, str]) -> str:
    text = "\n".join(f"{k}={v}" for k, v in sorted(inputs.items()))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def config_fingerprint(cfg: ProjectConfig) -> str:
    """One value for the whole config (the audit trail's `config_fingerprint`)."""
    return combined(config_inputs(cfg))
